"""Catalog commands: create and drop raw tables, typed views and KPI views.

Each goes through the configured Engine; an engine in dry-run mode prints what it
would do instead (see engines.base), so `--dry-run` follows the same path.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TypeVar

from panorama_kpi.engines.athena_sql import quote_ident
from panorama_kpi.engines.base import Engine
from panorama_kpi.errors import EngineError, PanoramaError, SettingsError
from panorama_kpi.kpi.history import history_raw_table, history_views_sql
from panorama_kpi.kpi.template import table_namer
from panorama_kpi.lake.layout import partition_prefix
from panorama_kpi.lake.storage import Storage
from panorama_kpi.runs.manifest import manifest_key
from panorama_kpi.runs.table import runs_raw_table, runs_table
from panorama_kpi.selection import Selected
from panorama_kpi.settings import Settings
from panorama_kpi.views import KpiView, RawTable, raw_table, read_kpi_views, typed_view_sql

Report = Callable[[str], None]
T = TypeVar("T")


def _skip_fieldless(selected: Selected, report: Report) -> Selected:
    kept = []
    for ds, table in selected:
        if table.fields:
            kept.append((ds, table))
        else:
            report(
                f"skipped {ds.name}.{table.name}: no fields configured (run set-tables-fields -t {table.name})"
            )
    return kept


def _done(engine: Engine, verb: str) -> str:
    past = {"create": "created", "drop": "dropped"}[verb]
    return f"would {verb}" if engine.dry_run else past


def _each(
    items: Sequence[T],
    kind: str,
    name: Callable[[T], str],
    do: Callable[[T], str],
    report: Report,
    failed_before: Sequence[str] = (),
) -> int:
    """Run `do` on every item; a failing one is reported and the others still run.
    Raises one EngineError naming the failures (and `failed_before`) at the end."""
    failed = list(failed_before)
    for item in items:
        try:
            report(do(item))
        except PanoramaError as exc:
            failed.append(name(item))
            report(f"FAILED {kind} {name(item)}: {exc}")
    if failed:
        total = len(items) + len(failed_before)
        raise EngineError(f"{len(failed)} of {total} {kind}(s) failed: {', '.join(failed)} (see above)")
    return len(items)


def own_tables(settings: Settings) -> list[RawTable]:
    """The lake's own tables, created with the others: run records and KPI history."""
    return [runs_raw_table(settings), history_raw_table(settings)]


def create_tables(settings: Settings, selected: Selected, engine: Engine, report: Report) -> int:
    """Create each raw table, or update it in place when its definition changed."""
    raws = [raw_table(settings, table) for _ds, table in _skip_fieldless(selected, report)]
    raws += own_tables(settings)
    return _each(
        raws,
        "table",
        lambda raw: raw.name,
        lambda raw: f"table {raw.name}: {engine.create_raw_table(raw)}",
        report,
    )


def _kpi_views(settings: Settings, problems: list[str] | None) -> list[KpiView]:
    """The KPI views in creation order; files that cannot be read go to `problems`
    (when given; otherwise the first is an error)."""
    if not settings.kpi_views:
        return []
    base = settings.path.parent
    paths = [Path(p) if Path(p).exists() else base / p for p in settings.kpi_views]
    views, found = read_kpi_views(paths, table_namer(settings))
    if found and problems is None:
        raise SettingsError(found[0])
    if problems is not None:
        problems.extend(found)
    return views


def views_sql(
    settings: Settings, selected: Selected, with_kpis: bool, problems: list[str] | None = None
) -> list[tuple[str, str]]:
    """(view name, Athena CREATE OR REPLACE VIEW) in creation order: typed views (and the
    runs view), the KPI history's views, then KPI views."""
    typed = [t for _ds, t in selected if t.fields] + [runs_table(settings)]
    out = [(settings.view_name(t), typed_view_sql(settings, t)) for t in typed]
    out += history_views_sql(settings)
    if with_kpis:
        for view in _kpi_views(settings, problems):
            out.append((view.name, f"CREATE OR REPLACE VIEW {quote_ident(view.name)} AS\n{view.sql}"))
    return out


def create_views(
    settings: Settings, selected: Selected, engine: Engine, with_kpis: bool, report: Report
) -> int:
    """Create every view; one that fails (or a view file that cannot be read) is reported
    and the others are still created, then one EngineError says which failed (exit 1)."""
    selected = _skip_fieldless(selected, report)
    problems: list[str] = []
    views = views_sql(settings, selected, with_kpis, problems)
    files = {v.name: v.path for v in _kpi_views(settings, [])} if with_kpis else {}
    for line in problems:
        report(f"FAILED {line}")
    engine.create_raw_table(history_raw_table(settings))  # its views read it

    def create(view: tuple[str, str]) -> str:
        engine.create_view(*view)
        return f"{_done(engine, 'create')} view {view[0]}"

    def name(view: tuple[str, str]) -> str:
        return f"{view[0]} ({files[view[0]]})" if view[0] in files else view[0]

    unreadable = [m.group(1) if (m := re.search(r"([^/\s]+)\.sql", line)) else line for line in problems]
    return _each(views, "view", name, create, report, failed_before=unreadable)


def drop_tables(
    settings: Settings,
    selected: Selected,
    engine: Engine,
    report: Report,
    with_kpis: bool = False,
    storage: Storage | None = None,
) -> int:
    """Drop each table's typed view and raw table (with `with_kpis`, the KPI views first).

    With `storage` (`--purge`) this installation's objects of the table are deleted
    too, with its partition counts (its next load is a full one); otherwise the lake
    is not touched.
    """
    if with_kpis:
        for view in reversed(_kpi_views(settings, [])):
            engine.drop_view(view.name)
            report(f"{_done(engine, 'drop')} view {view.name}")
    lake = settings.datalake
    base = [(p.name, p.value) for p in lake.base_partitions]
    for ds, table in selected:
        raw = raw_table(settings, table)
        engine.drop_view(settings.view_name(table))
        engine.drop_raw_table(raw)
        report(f"{_done(engine, 'drop')} view {settings.view_name(table)} and table {raw.name}")
        if storage is not None:
            prefix = partition_prefix(lake.base_prefix, table.folder, base)
            deleted = storage.delete_prefix(prefix)
            storage.delete(manifest_key(lake.base_prefix, base, ds.name, table.name))
            report(f"purged {deleted} object(s) under {storage.uri(prefix)}")
    return len(selected)
