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
from typing import Any, ClassVar

from panorama_kpi.errors import SourceError
from panorama_kpi.settings import DatasourceSettings, Field, TableSettings

PartitionFilter = Mapping[str, Any]
"""Field name -> value a dump is restricted to (None means IS NULL)."""


class SnapshotExpired(SourceError):
    """A server-side read context (scroll, point in time, cursor) expired mid-dump.
    The dump can be started again from scratch: the pipeline retries it once."""


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

    def option(self, key: str, default: Any = None) -> Any:
        value = self.settings.options.get(key)
        return default if value is None or value == "" else value

    @abstractmethod
    def check(self) -> str:
        """Connect and return a short description ("MariaDB 10.11 at host:port/db")."""

    @abstractmethod
    def list_tables(self) -> list[str]:
        """Names of the tables (collections, sheets...) this source can dump."""

    @abstractmethod
    def describe(self, table: str) -> list[Field]:
        """Fields of a table with their source type names (lower case, e.g. 'int', 'datetime')."""

    @abstractmethod
    def partition_values(self, table: TableSettings, since: dt.datetime | None) -> Iterator[tuple[Any, ...]]:
        """Distinct values of table.partition_fields, only among rows with
        table.timestamp_field >= since when `since` is given (naive UTC)."""

    @abstractmethod
    def dump(
        self,
        table: TableSettings,
        columns: Sequence[str],
        where: PartitionFilter | None = None,
    ) -> Iterator[str]:
        """Stream the rows of `table` restricted to `where`, as encoded CSV text
        chunks (whole lines, no header), columns in the given order."""

    def close(self) -> None:  # noqa: B027 - optional hook
        """Release connections."""

    def __enter__(self) -> Source:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
