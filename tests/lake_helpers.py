"""Helpers shared by the source tests: run the CLI, load a settings file's tables
through the real pipeline into its local lake and read a typed view back."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from click.testing import CliRunner

from panorama_kpi.catalog import create_tables, create_views
from panorama_kpi.cli import main
from panorama_kpi.engines.duckdb import DuckDBEngine
from panorama_kpi.lake.local import LocalStorage
from panorama_kpi.pipeline import RunOptions, extract_and_load
from panorama_kpi.settings import load_settings


def run(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(main, list(args), catch_exceptions=False)
    return result.exit_code, result.output


def load_all(path: Path, view: str, order: str = '"_id"') -> list[dict[str, Any]]:
    """Register, fully load and view every table of the settings file; the view's rows."""
    settings = load_settings(path)
    selected = [(ds, t) for ds in settings.datasources for t in ds.tables]
    lake = Path(settings.datalake.path)
    engine = DuckDBEngine(lake, "panorama")
    try:
        create_tables(settings, selected, engine, lambda _: None)
        summary = extract_and_load(
            settings, selected, LocalStorage(lake), engine, RunOptions(force=True, backoff=0)
        )
        assert not summary.failed, summary.failed[0].error
        create_views(settings, selected, engine, False, lambda _: None)
        columns, rows = engine.query(f"SELECT * FROM {view} ORDER BY {order}")
        return [dict(zip(columns, r, strict=True)) for r in rows]
    finally:
        engine.close()
