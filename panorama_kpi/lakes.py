"""Lake types: one registry entry per `datalake.type`, yielding its Storage and its Engine.

Nothing else in the package branches on the lake type: the pipeline, the catalog
commands and the CLI only see the Storage and Engine protocols.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import TYPE_CHECKING

from panorama_kpi.errors import SettingsError

if TYPE_CHECKING:
    from panorama_kpi.engines.base import Echo, Engine
    from panorama_kpi.lake.storage import Storage
    from panorama_kpi.settings import DatalakeSettings, Settings


class LakeType(ABC):
    """How one kind of lake stores objects and catalogs them. Building either connects to nothing."""

    @abstractmethod
    def storage(self, lake: DatalakeSettings) -> Storage: ...

    @abstractmethod
    def engine(self, lake: DatalakeSettings, echo: Echo | None = None) -> Engine:
        """The catalog/query engine; with `echo`, in dry-run mode (see Engine)."""


class LocalLake(LakeType):
    """A directory on this machine with an embedded DuckDB catalog inside it."""

    def storage(self, lake: DatalakeSettings) -> Storage:
        from panorama_kpi.lake.local import LocalStorage

        return LocalStorage(lake.path)

    def engine(self, lake: DatalakeSettings, echo: Echo | None = None) -> Engine:
        from panorama_kpi.engines.duckdb import DuckDBEngine

        return DuckDBEngine(lake.path, lake.datalake_database, echo=echo)


class AwsLake(LakeType):
    """S3 objects, the Glue catalog for tables and partitions, Athena for views and queries."""

    def storage(self, lake: DatalakeSettings) -> Storage:
        from panorama_kpi.lake.s3 import S3Storage

        return S3Storage(lake)

    def engine(self, lake: DatalakeSettings, echo: Echo | None = None) -> Engine:
        from panorama_kpi.engines.athena import AthenaEngine

        return AthenaEngine(lake, echo=echo)


LAKE_TYPES: dict[str, LakeType] = {"local": LocalLake(), "aws": AwsLake()}


def lake_type(settings: Settings) -> LakeType:
    name = settings.datalake.type
    try:
        return LAKE_TYPES[name]
    except KeyError:
        raise SettingsError(f"datalake.type: {name!r} is not one of {', '.join(LAKE_TYPES)}") from None


def open_storage(settings: Settings) -> Storage:
    return lake_type(settings).storage(settings.datalake)


def open_engine(settings: Settings, echo: Echo | None = None) -> Engine:
    """Build the configured engine; connects to nothing until first used."""
    return lake_type(settings).engine(settings.datalake, echo=echo)
