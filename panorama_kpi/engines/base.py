"""The Engine protocol: a catalog of raw tables and views plus a SQL runner."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator, Sequence
from typing import Any

from panorama_kpi.views import RawTable

Partition = Sequence[tuple[str, str]]
"""(column, value text) pairs of one partition: the full key, base partitions first,
in the order of the table's partition columns."""

Echo = Callable[[str], None]
"""Where an engine in dry-run mode describes each statement or API call instead of making it."""


class Engine(ABC):
    """Constructing an engine connects to nothing.

    With `echo` set the engine is in dry-run mode: every statement or catalog API
    call it would make is passed to `echo` and nothing is executed or read.
    """

    def __init__(self, echo: Echo | None = None) -> None:
        self.echo = echo
        #: `query` may change the catalog (the CLI's --allow-ddl); otherwise it only reads.
        self.allow_writes = False

    @property
    def dry_run(self) -> bool:
        return self.echo is not None

    @abstractmethod
    def check(self) -> str: ...

    @abstractmethod
    def create_raw_table(self, table: RawTable) -> str:
        """Create the raw table, or update it in place (columns, partitions' schemas) if it
        exists; says what it did ("created", "updated ...", "unchanged")."""

    @abstractmethod
    def add_partitions(self, table: RawTable, partitions: Sequence[Partition]) -> None:
        """Make freshly written partitions visible; existing ones are left alone (idempotent)."""

    @abstractmethod
    def remove_partitions(self, table: RawTable, partitions: Sequence[Partition]) -> None:
        """Forget partitions whose objects were deleted (absent ones are ignored)."""

    @abstractmethod
    def drop_raw_table(self, table: RawTable) -> None: ...

    @abstractmethod
    def create_view(self, name: str, create_view_sql: str) -> None:
        """Run an Athena-dialect CREATE OR REPLACE VIEW."""

    @abstractmethod
    def drop_view(self, name: str) -> None: ...

    @abstractmethod
    def query(self, sql: str, params: Sequence[Any] = ()) -> tuple[list[str], Iterator[tuple[Any, ...]]]:
        """Run one Athena-dialect statement with `?` placeholders bound to `params`;
        column names and a row iterator."""

    def explain(self, sql: str) -> str:
        """The statement this engine runs for an Athena-dialect one (Athena runs it as written)."""
        return sql

    def close(self) -> None:  # noqa: B027 - optional hook
        pass


def check_partitions(table: RawTable, partitions: Sequence[Partition]) -> list[list[str]]:
    """Values of each partition, checked against the table's partition columns (the full key)."""
    out = []
    for partition in partitions:
        names = [name for name, _ in partition]
        if tuple(names) != table.partition_columns:
            raise ValueError(
                f"partition {names} of {table.name} is not keyed by {list(table.partition_columns)}"
            )
        out.append([value for _, value in partition])
    return out
