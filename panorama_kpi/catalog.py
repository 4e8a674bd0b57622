"""Catalog commands: create and drop raw tables, typed views and KPI views."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from panorama_kpi.engines.athena import create_table_ddl
from panorama_kpi.engines.base import Engine
from panorama_kpi.errors import EngineError, SettingsError
from panorama_kpi.kpi.history import history_raw_table, history_views_sql
from panorama_kpi.kpi.template import table_namer
from panorama_kpi.runs.table import runs_raw_table, runs_table
from panorama_kpi.selection import Selected
from panorama_kpi.settings import Settings
from panorama_kpi.views import KpiView, RawTable, quote_ident, raw_table, read_kpi_views, typed_view_sql

Report = Callable[[str], None]


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


def _own_tables(settings: Settings) -> list[RawTable]:
    return [runs_raw_table(settings), history_raw_table(settings)]


def create_tables_ddl(settings: Settings, selected: Selected, engine: Engine | None) -> list[str]:
    """What create-datalake-tables would run: the engine's statements, or Athena's for an aws lake."""
    statements = []
    raws = [raw_table(settings, t) for _ds, t in selected if t.fields] + _own_tables(settings)
    for raw in raws:
        if engine is None:
            lake = settings.datalake
            statements.append(
                create_table_ddl(raw, lake.panorama_raw_data_bucket or "", lake.datalake_database)
            )
        else:
            statements += engine.raw_table_ddl(raw)
    return statements


def create_tables(settings: Settings, selected: Selected, engine: Engine, report: Report) -> int:
    selected = _skip_fieldless(selected, report)
    # the run records and the KPI history are tables too: create (or refresh) them with the others
    for raw in [*(raw_table(settings, t) for _ds, t in selected), *_own_tables(settings)]:
        engine.create_raw_table(raw)
        report(f"created table {raw.name}")
    return len(selected)


def drop_tables(settings: Settings, selected: Selected, engine: Engine, report: Report) -> int:
    for _ds, table in selected:
        raw = raw_table(settings, table)
        engine.drop_raw_table(raw)
        report(f"dropped table {raw.name}")
    return len(selected)


def _kpi_views(settings: Settings, problems: list[str] | None) -> list[KpiView]:
    """The KPI views in creation order; files that cannot be read go to `problems`
    (when given; otherwise the first is an error)."""
    base = settings.path.parent
    paths = [Path(p) if Path(p).exists() else base / p for p in settings.kpi_views]
    views, found = read_kpi_views(paths, table_namer(settings))
    if found and problems is None:
        raise SettingsError(found[0])
    (problems if problems is not None else []).extend(found)
    return views


def views_sql(
    settings: Settings, selected: Selected, with_kpis: bool, problems: list[str] | None = None
) -> list[tuple[str, str]]:
    """(view name, Athena CREATE OR REPLACE VIEW) in creation order: typed views, the KPI
    history's views, then KPI views."""
    typed = [t for _ds, t in selected if t.fields] + [runs_table(settings)]
    out = [(settings.view_name(t), typed_view_sql(settings, t)) for t in typed]
    out += history_views_sql(settings)
    if with_kpis and settings.kpi_views:
        for view in _kpi_views(settings, problems):
            out.append((view.name, f"CREATE OR REPLACE VIEW {quote_ident(view.name)} AS\n{view.sql}"))
    return out


def create_views(
    settings: Settings, selected: Selected, engine: Engine, with_kpis: bool, report: Report
) -> int:
    """Create every view; one that fails is reported and the others are still created, then
    an EngineError says how many failed (exit code 1)."""
    selected = _skip_fieldless(selected, report)
    problems: list[str] = []
    views = views_sql(settings, selected, with_kpis, problems)
    files = {v.name: v.path for v in _kpi_views(settings, [])} if with_kpis and settings.kpi_views else {}
    for line in problems:
        report(f"failed: {line}")
    failed = len(problems)
    engine.create_raw_table(history_raw_table(settings))  # its views below read it
    for name, sql in views:
        try:
            engine.create_view(name, sql)
        except EngineError as exc:
            where = f" ({files[name]})" if name in files else ""
            report(f"failed: view {name}{where}: {exc}")
            failed += 1
            continue
        report(f"created view {name}")
    if failed:
        raise EngineError(f"{failed} view(s) not created (see the lines above); the others were")
    return len(views)
