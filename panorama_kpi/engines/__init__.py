"""Query engines: the embedded DuckDB catalog, and Glue + Athena."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from panorama_kpi.engines.base import Echo, Engine
    from panorama_kpi.settings import Settings


def open_engine(settings: Settings, echo: Echo | None = None) -> Engine:
    """Build the configured engine (see panorama_kpi.lakes); connects to nothing until first used."""
    from panorama_kpi.lakes import open_engine as open_

    return open_(settings, echo=echo)
