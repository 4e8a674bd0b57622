"""Placeholders in view and KPI files, so a pack works for any site.

A file names a typed view as ``{{ table('auth_user') }}`` instead of
``openedx_table_auth_user``: the placeholder becomes that table's typed-view name
under the settings (base_prefix, datalake_table_view), quoted, and the file stays
valid Athena SQL. KPI files may also write ``{{ snapshot }}``, the time the KPI is
computed for; it becomes ``CAST(? AS TIMESTAMP)`` and the time a bound parameter,
never text pasted into the SQL. A placeholder never spans lines, so the parser's
line numbers still point into the file.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from panorama_kpi.errors import SettingsError

if TYPE_CHECKING:
    from panorama_kpi.settings import Settings

#: `{{ name }}` or `{{ name('argument') }}`.
PLACEHOLDER = re.compile(r"\{\{\s*([A-Za-z_]+)\s*(?:\(\s*'([^'\n]*)'\s*\))?\s*\}\}")
SNAPSHOT_SQL = "CAST(? AS TIMESTAMP)"

TableNamer = Callable[[str], str]
"""Typed-view name of a table named in a `{{ table('...') }}` placeholder."""


@dataclass(frozen=True)
class Rendered:
    sql: str
    snapshot_params: int  # how many `?` stand for the snapshot time, in order


def line_of(text: str, offset: int) -> int:
    return text.count("\n", 0, offset) + 1


def render(text: str, tables: TableNamer, where: str, allow_snapshot: bool = False) -> Rendered:
    """Substitute every placeholder; an unknown one is a SettingsError naming `where` and its line."""
    from panorama_kpi.views import quote_ident

    count = 0

    def sub(m: re.Match[str]) -> str:
        nonlocal count
        name, arg = m.group(1), m.group(2)
        at = f"{where}:{line_of(text, m.start())}"
        if name == "table" and arg:
            try:
                return quote_ident(tables(arg))
            except SettingsError as exc:
                raise SettingsError(f"{at}: {exc}") from None
        if name == "snapshot" and arg is None:
            if not allow_snapshot:
                raise SettingsError(f"{at}: {{{{ snapshot }}}} is for KPI queries, not views")
            count += 1
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
    return Rendered(sql, count)


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
