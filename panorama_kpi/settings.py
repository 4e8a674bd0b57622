"""Settings: the model every command works from. Reading a file into it is
settings_load.py's (YAML, ${ENV} interpolation, validation, panorama-elt compatibility)."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from panorama_kpi import naming
from panorama_kpi.errors import SettingsError
from panorama_kpi.settings_text import interpolate, suggest, typed


@dataclass(frozen=True)
class Field:
    name: str
    type: str = "varchar"
    #: Dotted path into a document (document sources); None means the field's name.
    path: str | None = None


GRANULARITIES = ("day", "month")


@dataclass(frozen=True)
class DerivedPartition:
    """A partition field computed from a timestamp field: its date (day) or first day of
    its month, so append-only tables rewrite only the days that changed."""

    source: str
    granularity: str = "day"


@dataclass
class TableSettings:
    name: str
    fields: list[Field] = field(default_factory=list)
    partition_fields: list[str] = field(default_factory=list)
    #: Partition fields derived from a timestamp field (not columns of the source).
    derived: dict[str, DerivedPartition] = field(default_factory=dict)
    interval: str | None = None
    timestamp_field: str | None = None
    #: Zone in which the application writes timestamp_field (naive local times); UTC by default.
    timestamp_timezone: str | None = None
    datalake_table_name: str | None = None
    datalake_table_view: str | None = None
    #: Folder (and file name) of the table's objects; panorama-elt's `datalake_s3_table`.
    datalake_s3_table: str | None = None
    #: Table keys a source type adds (its `table_keys`), e.g. an Elasticsearch `index`.
    options: dict[str, Any] = field(default_factory=dict)

    @property
    def folder(self) -> str:
        return self.datalake_s3_table or self.name

    @property
    def field_names(self) -> list[str]:
        return [f.name for f in self.fields]

    @property
    def file_fields(self) -> list[Field]:
        """Fields written into the CSV files: partition fields live in the key only."""
        return [f for f in self.fields if f.name not in self.partition_fields]


@dataclass(frozen=True)
class Deferred:
    """An option whose ${VAR} was unset when the settings loaded.

    Resolved (and type-checked) only when a command reads it, so `query` does not
    need every datasource's password exported.
    """

    text: str
    expected: type | tuple[type, ...]
    where: str

    def resolve(self) -> Any:
        return typed(interpolate(self.text, self.where), self.expected, self.where)


@dataclass
class DatasourceSettings:
    type: str
    name: str
    options: dict[str, Any] = field(default_factory=dict)
    tables: list[TableSettings] = field(default_factory=list)

    def option(self, key: str) -> Any:
        """An option's value, its ${VAR} references resolved now (SettingsError if unset)."""
        value = self.options.get(key)
        return value.resolve() if isinstance(value, Deferred) else value


@dataclass(frozen=True)
class BasePartition:
    name: str
    value: str
    type: str = "varchar"


@dataclass
class DatalakeSettings:
    type: str = "local"
    path: str = "./lake"
    base_prefix: str = ""
    base_partitions: list[BasePartition] = field(default_factory=list)
    panorama_raw_data_bucket: str | None = None
    datalake_database: str = "panorama"
    datalake_workgroup: str | None = None
    aws_access_key: str | None = None
    aws_secret_access_key: str | None = None
    aws_region: str = "us-east-1"
    aws_profile: str | None = None
    #: One endpoint for every AWS client (LocalStack, moto, an S3-compatible store); boto3's
    #: AWS_ENDPOINT_URL_<SERVICE> variables still win for their service.
    endpoint_url: str | None = None
    compression: str = "none"
    kms_key_id: str | None = None
    athena_output_location: str | None = None
    athena_query_timeout: int = 1800

    def __post_init__(self) -> None:
        if self.compression not in ("none", "gzip"):
            raise SettingsError(f"datalake.compression: {self.compression!r} is not one of none, gzip")
        if self.athena_query_timeout <= 0:
            raise SettingsError("datalake.athena_query_timeout: must be a positive number of seconds")


@dataclass
class Settings:
    path: Path
    datalake: DatalakeSettings
    datasources: list[DatasourceSettings]
    #: Folders (or files) of KPI views: one SELECT per .sql file, Athena dialect.
    kpi_views: list[str] = field(default_factory=list)
    #: KPIs: folders or files of KPI queries, or inline `{name, sql, description, ...}` entries.
    kpis: list[Any] = field(default_factory=list)

    def raw_table_name(self, table: TableSettings) -> str:
        return table.datalake_table_name or naming.prefixed(self.datalake.base_prefix, "raw", table.name)

    def view_name(self, table: TableSettings) -> str:
        return table.datalake_table_view or naming.prefixed(self.datalake.base_prefix, "table", table.name)

    def datasource(self, name: str) -> DatasourceSettings:
        for ds in self.datasources:
            if ds.name == name:
                return ds
        raise SettingsError(
            f"no datasource named {name!r}{suggest(name, [d.name for d in self.datasources])}"
        )


def load_settings(path: str | os.PathLike[str]) -> Settings:
    """Read, interpolate and validate a settings file; every problem names its key path."""
    from panorama_kpi.settings_load import load

    return load(path)
