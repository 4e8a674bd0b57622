"""Catalog commands: create and drop raw tables, typed views and KPI views."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from panorama_kpi.engines.athena import create_table_ddl
from panorama_kpi.engines.base import Engine
from panorama_kpi.runs.table import runs_raw_table, runs_table
from panorama_kpi.selection import Selected
from panorama_kpi.settings import Settings
from panorama_kpi.views import load_kpi_views, quote_ident, raw_table, typed_view_sql

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


def create_tables_ddl(settings: Settings, selected: Selected, engine: Engine | None) -> list[str]:
    """What create-datalake-tables would run: the engine's statements, or Athena's for an aws lake."""
    statements = []
    raws = [raw_table(settings, t) for _ds, t in selected if t.fields] + [runs_raw_table(settings)]
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
    # the run records are a table too: create (or refresh) it with the others
    for raw in [*(raw_table(settings, t) for _ds, t in selected), runs_raw_table(settings)]:
        engine.create_raw_table(raw)
        report(f"created table {raw.name}")
    return len(selected)


def drop_tables(settings: Settings, selected: Selected, engine: Engine, report: Report) -> int:
    for _ds, table in selected:
        raw = raw_table(settings, table)
        engine.drop_raw_table(raw)
        report(f"dropped table {raw.name}")
    return len(selected)


def views_sql(settings: Settings, selected: Selected, with_kpis: bool) -> list[tuple[str, str]]:
    """(view name, Athena CREATE OR REPLACE VIEW) in creation order: typed views, then KPI views."""
    typed = [t for _ds, t in selected if t.fields] + [runs_table(settings)]
    out = [(settings.view_name(t), typed_view_sql(settings, t)) for t in typed]
    if with_kpis and settings.kpi_views:
        base = settings.path.parent
        paths = [Path(p) if Path(p).exists() else base / p for p in settings.kpi_views]
        for view in load_kpi_views(paths):
            out.append((view.name, f"CREATE OR REPLACE VIEW {quote_ident(view.name)} AS\n{view.sql}"))
    return out


def create_views(
    settings: Settings, selected: Selected, engine: Engine, with_kpis: bool, report: Report
) -> int:
    selected = _skip_fieldless(selected, report)
    views = views_sql(settings, selected, with_kpis)
    for name, sql in views:
        engine.create_view(name, sql)
        report(f"created view {name}")
    return len(views)
