"""The AWS engine: raw tables and partitions in the Glue catalog, views and queries on Athena.

In this version it only runs in dry-run mode (printing what it would do).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING, Any

from panorama_kpi.engines.athena_sql import create_table_ddl
from panorama_kpi.engines.base import Echo, Engine, Partition
from panorama_kpi.errors import SettingsError
from panorama_kpi.views import RawTable

if TYPE_CHECKING:
    from panorama_kpi.settings import DatalakeSettings


class AthenaEngine(Engine):
    def __init__(self, lake: DatalakeSettings, echo: Echo | None = None) -> None:
        super().__init__(echo)
        self.lake = lake
        self.database = lake.datalake_database

    def location(self, prefix: str) -> str:
        return f"s3://{self.lake.panorama_raw_data_bucket}/{prefix}"

    def _live(self) -> None:
        raise SettingsError(
            "datalake.type 'aws': the Athena engine is not available in this version; "
            "use 'type: local' (commands with --dry-run still print the Athena DDL)"
        )

    def check(self) -> str:
        self._live()
        return ""

    def create_raw_table(self, table: RawTable) -> None:
        if self.echo is None:
            self._live()
        else:
            self.echo(create_table_ddl(table, self.location(table.prefix), self.database))

    def add_partitions(self, table: RawTable, partitions: Sequence[Partition]) -> None:
        self._live()

    def remove_partitions(self, table: RawTable, partitions: Sequence[Partition]) -> None:
        self._live()

    def drop_raw_table(self, table: RawTable) -> None:
        self._live()

    def create_view(self, name: str, create_view_sql: str) -> None:
        if self.echo is None:
            self._live()
        else:
            self.echo(create_view_sql)

    def drop_view(self, name: str) -> None:
        self._live()

    def query(self, sql: str, params: Sequence[Any] = ()) -> tuple[list[str], Iterator[tuple[Any, ...]]]:
        self._live()
        return [], iter(())
