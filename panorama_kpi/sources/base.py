"""The Source protocol: what the pipeline needs from any datasource.

A source never knows where its rows go. It yields CSV text chunks already in the
lake's encoding (panorama_kpi.lake.csv): SQL sources render each row to one CSV
line on the server (one string column per row is what makes pure-Python drivers
fast), the others encode Python rows with `encode_rows`.
"""

from __future__ import annotations

import datetime as dt
from abc import ABC, abstractmethod
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, ClassVar, Literal

from panorama_kpi.errors import SourceError
from panorama_kpi.settings import DatasourceSettings, Field, TableSettings
from panorama_kpi.timeparse import utcnow

PartitionFilter = Mapping[str, Any]
"""Field name -> value a dump is restricted to (None means IS NULL)."""

TableKind = Literal["table", "view", "materialized view"]
"""What a listed name is in the source: views are reported apart by set-tables."""


class SnapshotExpired(SourceError):
    """A server-side read context (scroll, point in time, cursor) expired mid-dump.
    Nothing is lost by starting the table again: the run retries it."""

    transient = True


@dataclass(frozen=True)
class ScanStats:
    """What the source's own statistics say about reading a table by partition."""

    rows: int  # the planner's row estimate
    indexed: bool  # an index leads with the partition fields (in any order)
    #: Rows found through that index cost one more lookup each (InnoDB's secondary
    #: indexes lead to the primary key), rather than reading pages in order.
    lookup_per_row: bool = False


class Source(ABC):
    """One configured datasource. Connects lazily; `close` is always safe."""

    type_name: ClassVar[str]
    #: Settings keys this type accepts besides type/name/tables, with their Python type.
    settings_keys: ClassVar[dict[str, type]] = {}
    #: Keys a table of this type accepts besides the common ones (name, fields, partitions...).
    table_keys: ClassVar[dict[str, type]] = {}
    #: Documents a schema is inferred from, for sources that sample (set-tables-fields --sample).
    sample_size: int = 1000

    @classmethod
    def view_type(cls, declared: str) -> str | None:
        """Typed-view type (Athena) for a type in this source's vocabulary, or None to
        use the shared SQL mapping. Sources whose type names mean something else
        (an Elasticsearch `date` is a timestamp) override it."""
        return None

    def __init__(self, settings: DatasourceSettings) -> None:
        self.settings = settings
        self.name = settings.name

    def warn(self, line: str | None) -> None:
        """Note something about the data read (kept in the table's run record)."""
        if line:
            self.__dict__.setdefault("_warnings", []).append(line)

    def drain_warnings(self) -> list[str]:
        """The notes since the last call."""
        return self.__dict__.pop("_warnings", [])

    def option(self, key: str, default: Any = None) -> Any:
        value = self.settings.option(key)
        return default if value is None or value == "" else value

    def options(self) -> dict[str, Any]:
        """Every option set, ${VAR} references resolved (for drivers that take a mapping)."""
        return {key: self.settings.option(key) for key in self.settings.options}

    @abstractmethod
    def check(self) -> str:
        """Connect and return a short description ("MariaDB 10.11 at host:port/db")."""

    @abstractmethod
    def list_tables(self) -> dict[str, TableKind]:
        """Name -> kind of everything this source can dump (tables, views, collections,
        sheets...), in a stable order. set-tables adds views only when asked to: a
        view re-runs its query on every dump and repeats rows of its base tables."""

    @abstractmethod
    def describe(self, table: str) -> list[Field]:
        """Fields of a table with their source type names (lower case, e.g. 'int', 'datetime')."""

    @abstractmethod
    def partition_values(self, table: TableSettings, since: dt.datetime | None) -> Iterator[tuple[Any, ...]]:
        """Distinct values of table.partition_fields, only among rows with
        table.timestamp_field >= since when `since` is given (naive UTC)."""

    def partition_counts(self, table: TableSettings) -> Iterator[tuple[tuple[Any, ...], int]] | None:
        """Rows per combination of table.partition_fields (one grouped query), or None when
        this source cannot count cheaply. Incremental runs compare these with the lake's
        counts to catch deleted rows and rows that moved to another partition."""
        return None

    @contextmanager
    def consistent_read(self, others: Sequence[Source] = (), table: str | None = None) -> Iterator[None]:
        """Inside, every read of this source and of `others` (more connections to it) sees
        one snapshot of the data (of `table` at least), where the source can give one. A
        table is loaded inside one, so rows updated during the load are neither missed
        nor read twice."""
        yield

    def clock(self) -> dt.datetime:
        """The source's current time (naive UTC): incremental windows are computed on it,
        so a tool machine whose clock runs ahead loses no change."""
        return utcnow()

    @abstractmethod
    def dump(
        self,
        table: TableSettings,
        columns: Sequence[str],
        where: PartitionFilter | None = None,
    ) -> Iterator[str]:
        """Stream the rows of `table` restricted to `where`, as encoded CSV text
        chunks (whole lines, no header), columns in the given order."""

    def scan_stats(self, table: TableSettings) -> ScanStats | None:
        """Statistics to choose how a full load reads the partitions (split_scan.py);
        None keeps one dump per partition."""
        return None

    def dump_keyed(self, table: TableSettings, columns: Sequence[str], ordered: bool) -> Iterator[str]:
        """The whole table as `dump` gives it, with table.partition_fields' values as leading
        fields of each line: in the table's own order, or (`ordered`) by those exact values
        in the order of `partition_values`. Only called on sources whose `scan_stats` is not
        None."""
        raise NotImplementedError

    def close(self) -> None:  # noqa: B027 - optional hook
        """Release connections."""

    def __enter__(self) -> Source:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
