"""The Engine protocol: a catalog of raw tables and views plus a SQL runner."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterator, Sequence
from typing import Any

from panorama_kpi.views import RawTable

Partition = Sequence[tuple[str, str]]
"""(column, value text) pairs of one partition, base partitions first."""


class Engine(ABC):
    """Constructing an engine connects to nothing: `dry_run` callers rely on it."""

    @abstractmethod
    def check(self) -> str: ...

    @abstractmethod
    def raw_table_ddl(self, table: RawTable) -> list[str]:
        """Statements that (re)create a raw table, as `--dry-run` prints them."""

    @abstractmethod
    def create_raw_table(self, table: RawTable) -> None: ...

    @abstractmethod
    def add_partitions(self, table: RawTable, partitions: Sequence[Partition]) -> None:
        """Make freshly written partitions visible (idempotent)."""

    @abstractmethod
    def remove_partitions(self, table: RawTable, partitions: Sequence[Partition]) -> None:
        """Forget partitions whose objects were deleted (`partitions` hold field partitions only)."""

    @abstractmethod
    def drop_raw_table(self, table: RawTable) -> None: ...

    @abstractmethod
    def view_ddl(self, name: str, create_view_sql: str) -> list[str]:
        """Statements run for an Athena-dialect CREATE OR REPLACE VIEW."""

    @abstractmethod
    def create_view(self, name: str, create_view_sql: str) -> None: ...

    @abstractmethod
    def drop_view(self, name: str) -> None: ...

    @abstractmethod
    def query(self, sql: str) -> tuple[list[str], Iterator[tuple[Any, ...]]]:
        """Run one Athena-dialect statement; column names and a row iterator."""

    def explain(self, sql: str) -> str:
        """The statement this engine runs for an Athena-dialect one (Athena runs it as written)."""
        return sql

    def close(self) -> None:  # noqa: B027 - optional hook
        pass
