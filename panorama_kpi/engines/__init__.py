"""Query engines: the embedded DuckDB catalog and (next) Glue + Athena."""

from __future__ import annotations

from typing import TYPE_CHECKING

from panorama_kpi.errors import SettingsError

if TYPE_CHECKING:
    from panorama_kpi.engines.base import Engine
    from panorama_kpi.settings import Settings


def open_engine(settings: Settings) -> Engine:
    """Build the configured engine; connects to nothing until first used."""
    from panorama_kpi.engines.duckdb import DuckDBEngine

    lake = settings.datalake
    if lake.type == "local":
        return DuckDBEngine(lake.path, lake.datalake_database)
    raise SettingsError(
        f"datalake.type {lake.type!r}: the Athena engine is not available in this version; "
        "use 'type: local' (commands with --dry-run still print the Athena DDL)"
    )
