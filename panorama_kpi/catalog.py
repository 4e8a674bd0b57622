"""Catalog commands: create and drop raw tables, typed views and KPI views.

Each goes through the configured Engine; an engine in dry-run mode prints what it
would do instead (see engines.base), so `--dry-run` follows the same path.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TypeVar

from panorama_kpi.engines.athena_sql import quote_ident
from panorama_kpi.engines.base import Engine
from panorama_kpi.errors import EngineError, PanoramaError
from panorama_kpi.lake.layout import partition_prefix
from panorama_kpi.lake.storage import Storage
from panorama_kpi.runs.manifest import manifest_key
from panorama_kpi.runs.table import runs_raw_table, runs_table
from panorama_kpi.selection import Selected
from panorama_kpi.settings import Settings
from panorama_kpi.views import load_kpi_views, raw_table, typed_view_sql

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
    items: Sequence[T], kind: str, name: Callable[[T], str], do: Callable[[T], str], report: Report
) -> int:
    """Run `do` on every item; a failing one is reported and the others still run.
    Raises one EngineError naming the failures at the end."""
    failed = []
    for item in items:
        try:
            report(do(item))
        except PanoramaError as exc:
            failed.append(name(item))
            report(f"FAILED {kind} {name(item)}: {exc}")
    if failed:
        raise EngineError(f"{len(failed)} of {len(items)} {kind}(s) failed: {', '.join(failed)} (see above)")
    return len(items)


def create_tables(settings: Settings, selected: Selected, engine: Engine, report: Report) -> int:
    """Create each raw table, or update it in place when its definition changed."""
    raws = [raw_table(settings, table) for _ds, table in _skip_fieldless(selected, report)]
    raws.append(runs_raw_table(settings))  # the run records are a table too
    return _each(
        raws,
        "table",
        lambda raw: raw.name,
        lambda raw: f"table {raw.name}: {engine.create_raw_table(raw)}",
        report,
    )


def views_sql(settings: Settings, selected: Selected, with_kpis: bool) -> list[tuple[str, str]]:
    """(view name, Athena CREATE OR REPLACE VIEW) in creation order: typed views, then KPI views."""
    typed = [t for _ds, t in selected if t.fields] + [runs_table(settings)]
    out = [(settings.view_name(t), typed_view_sql(settings, t)) for t in typed]
    if with_kpis:
        out += [
            (name, f"CREATE OR REPLACE VIEW {quote_ident(name)} AS\n{sql}")
            for name, sql in kpi_views(settings)
        ]
    return out


def kpi_views(settings: Settings) -> list[tuple[str, str]]:
    """(name, SELECT) of the configured KPI views, dependencies first."""
    if not settings.kpi_views:
        return []
    base = settings.path.parent
    paths = [Path(p) if Path(p).exists() else base / p for p in settings.kpi_views]
    return [(view.name, view.sql) for view in load_kpi_views(paths)]


def create_views(
    settings: Settings, selected: Selected, engine: Engine, with_kpis: bool, report: Report
) -> int:
    selected = _skip_fieldless(selected, report)

    def create(view: tuple[str, str]) -> str:
        engine.create_view(*view)
        return f"{_done(engine, 'create')} view {view[0]}"

    return _each(views_sql(settings, selected, with_kpis), "view", lambda view: view[0], create, report)


def drop_tables(
    settings: Settings,
    selected: Selected,
    engine: Engine,
    report: Report,
    with_kpis: bool = False,
    storage: Storage | None = None,
) -> int:
    """Drop each table's typed view and raw table (with `with_kpis`, the KPI views first).

    With `storage` (`--purge`) this installation's objects of the table and its load
    record are deleted too; otherwise the lake is not touched.
    """
    if with_kpis:
        for name, _sql in reversed(kpi_views(settings)):
            engine.drop_view(name)
            report(f"{_done(engine, 'drop')} view {name}")
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
            # without its partition counts the next load is a full one
            storage.delete(manifest_key(lake.base_prefix, base, ds.name, table.name))
            report(f"purged {deleted} object(s) under {storage.uri(prefix)}")
    return len(selected)
