"""Placeholders in view and KPI files, so a pack works for any site.

A file names a typed view as ``{{ table('auth_user') }}`` instead of
``openedx_table_auth_user``: the placeholder becomes that table's typed-view name
under the settings (base_prefix, datalake_table_view), quoted, and the file stays
valid Athena SQL. KPI files may also write ``{{ snapshot }}``, the time the KPI is
computed for; it becomes ``CAST(? AS TIMESTAMP)`` and the time a bound parameter,
never text pasted into the SQL. A placeholder never spans lines, so the parser's
line numbers still point into the file.

Several sites may share one lake (same base_prefix and tables, other base partition
values), and so one typed view. In a KPI query, ``{{ table('x') }}`` is therefore that
view restricted to this site's base partitions, ``(SELECT * FROM "v" WHERE "lms" = ?)``
with the values bound, so a site's KPIs never count another site's rows. Views stay
over every site: they are shared catalog objects.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from panorama_kpi.errors import SettingsError

if TYPE_CHECKING:
    from panorama_kpi.settings import BasePartition, Settings

#: `{{ name }}` or `{{ name('argument') }}`.
PLACEHOLDER = re.compile(r"\{\{\s*([A-Za-z_]+)\s*(?:\(\s*'([^'\n]*)'\s*\))?\s*\}\}")
SNAPSHOT_SQL = "CAST(? AS TIMESTAMP)"

TableNamer = Callable[[str], str]
"""Typed-view name of a table named in a `{{ table('...') }}` placeholder."""


class _Snapshot:
    def __repr__(self) -> str:
        return "SNAPSHOT"


#: In `Rendered.params`, the place of the snapshot time.
SNAPSHOT = _Snapshot()


@dataclass(frozen=True)
class Rendered:
    sql: str
    params: tuple[str | _Snapshot, ...]  # one per `?` the placeholders wrote, in order

    @property
    def snapshot_params(self) -> int:
        return sum(1 for p in self.params if p is SNAPSHOT)

    def bind(self, snapshot: str) -> list[str]:
        """The query's parameters, with `snapshot` for the snapshot time."""
        return [p if isinstance(p, str) else snapshot for p in self.params]


def line_of(text: str, offset: int) -> int:
    return text.count("\n", 0, offset) + 1


def site_condition(site: Sequence[BasePartition]) -> tuple[str, list[str]]:
    """(`"lms" = ? AND ...`, the values) selecting one site's rows of a typed view; each value
    is cast as the typed view casts its partition text, so any declared type compares."""
    from panorama_kpi.views import quote_ident, typed_value_sql

    where = " AND ".join(f"{quote_ident(p.name)} = {typed_value_sql('?', p.type)}" for p in site)
    return where, [p.value for p in site]


def site_source(view: str, site: Sequence[BasePartition]) -> tuple[str, list[str]]:
    """A typed view restricted to one site's base partitions: (SQL of the relation, its parameters)."""
    from panorama_kpi.views import quote_ident

    if not site:
        return quote_ident(view), []
    where, values = site_condition(site)
    return f"(SELECT * FROM {quote_ident(view)} WHERE {where})", values


def render(
    text: str,
    tables: TableNamer,
    where: str,
    allow_snapshot: bool = False,
    site: Sequence[BasePartition] | None = None,
) -> Rendered:
    """Substitute every placeholder; an unknown one is a SettingsError naming `where` and its line.

    With `site` (KPI queries), a table placeholder reads only that site's rows."""
    from panorama_kpi.views import quote_ident

    params: list[str | _Snapshot] = []

    def sub(m: re.Match[str]) -> str:
        name, arg = m.group(1), m.group(2)
        at = f"{where}:{line_of(text, m.start())}"
        if name == "table" and arg:
            try:
                view = tables(arg)
            except SettingsError as exc:
                raise SettingsError(f"{at}: {exc}") from None
            if site is None:
                return quote_ident(view)
            sql, values = site_source(view, site)
            params.extend(values)
            return sql
        if name == "snapshot" and arg is None:
            if not allow_snapshot:
                raise SettingsError(f"{at}: {{{{ snapshot }}}} is for KPI queries, not views")
            params.append(SNAPSHOT)
            return SNAPSHOT_SQL
        raise SettingsError(
            f"{at}: unknown placeholder {m.group(0)!r}; write {{{{ table('name') }}}} or {{{{ snapshot }}}}"
        )

    sql = PLACEHOLDER.sub(sub, text)
    stray = sql.find("{{")
    if stray >= 0:
        raise SettingsError(
            f"{where}:{line_of(sql, stray)}: malformed placeholder; write {{{{ table('name') }}}}"
        )
    return Rendered(sql, tuple(params))


def table_namer(settings: Settings) -> TableNamer:
    """`{{ table('x') }}` -> the typed view of the configured table `x` (or the KPI history)."""
    from panorama_kpi.kpi.history import HISTORY_FOLDER, history_table

    names = {t.name: settings.view_name(t) for ds in settings.datasources for t in ds.tables}
    names.setdefault(HISTORY_FOLDER, settings.view_name(history_table(settings)))

    def name(table: str) -> str:
        if table in names:
            return names[table]
        close = difflib.get_close_matches(table, list(names), n=1)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        raise SettingsError(f"table {table!r} is not configured in the settings{hint}")

    return name
