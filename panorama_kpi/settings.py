"""Settings: YAML loading, ${ENV} interpolation, validation, panorama-elt compatibility."""

from __future__ import annotations

import datetime as dt
import difflib
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from panorama_kpi import naming
from panorama_kpi.errors import SettingsError


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
        return _typed(interpolate(self.text, self.where), self.expected, self.where)


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
            f"no datasource named {name!r}{_suggest(name, [d.name for d in self.datasources])}"
        )


# ---------------------------------------------------------------- loading

_ENV_RE = re.compile(r"\$\$|\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")

_DATALAKE_KEYS: dict[str, type | tuple[type, ...]] = {
    "type": str,
    "path": str,
    "base_prefix": str,
    "base_partitions": list,
    "panorama_raw_data_bucket": str,
    "datalake_database": str,
    "datalake_workgroup": str,
    "aws_access_key": str,
    "aws_secret_access_key": str,
    "aws_region": str,
    "aws_profile": str,
    "endpoint_url": str,
    "compression": str,
    "kms_key_id": str,
    "athena_output_location": str,
    "athena_query_timeout": int,
}
_LAKE_TYPES = ("local", "aws")
_AWS_CREDENTIALS = ("aws_access_key", "aws_secret_access_key")
_TABLE_KEYS = {
    "name",
    "fields",
    "partitions",
    "datalake_table_name",
    "datalake_table_view",
    "datalake_s3_table",
}
_PARTITION_KEYS = {"partition_fields", "interval", "timestamp_field", "timestamp_timezone"}
_INTERVAL_UNITS = {"second": 1, "minute": 60, "hour": 3600, "day": 86400, "week": 604800}

#: panorama-elt's prefixed keys -> the generic key every source type reads.
ALIASES = {f"mysql_{k}": k for k in ("host", "port", "username", "password", "database")}


def _suggest(word: str, choices: Any) -> str:
    close = difflib.get_close_matches(word, list(choices), n=1)
    return f" (did you mean {close[0]!r}?)" if close else ""


def _unset_vars(text: str) -> list[str]:
    return [
        m.group(1)
        for m in _ENV_RE.finditer(text)
        if m.group(0) != "$$" and m.group(1) not in os.environ and m.group(2) is None
    ]


def interpolate(value: Any, where: str) -> Any:
    """Replace ${NAME} and ${NAME:-default} in every string; `$$` is a literal `$`."""
    if isinstance(value, str):

        def sub(m: re.Match[str]) -> str:
            if m.group(0) == "$$":
                return "$"
            name, default = m.group(1), m.group(2)
            if name in os.environ:
                return os.environ[name]
            if default is not None:
                return default
            raise SettingsError(
                f"{where}: environment variable {name} is not set (export it, or write ${{{name}:-default}})"
            )

        return _ENV_RE.sub(sub, value) if "$" in value else value
    if isinstance(value, dict):
        return {k: interpolate(v, f"{where}.{k}") for k, v in value.items()}
    if isinstance(value, list):
        return [interpolate(v, f"{where}[{i}]") for i, v in enumerate(value)]
    return value


def parse_interval(text: str, where: str) -> dt.timedelta:
    """panorama-elt intervals are MySQL-style: '2 hour', '30 minute', '1 day'."""
    parts = str(text).strip().lower().split()
    if len(parts) == 2 and parts[0].isdigit():
        unit = parts[1].rstrip("s")
        if unit in _INTERVAL_UNITS:
            return dt.timedelta(seconds=int(parts[0]) * _INTERVAL_UNITS[unit])
    units = ", ".join(_INTERVAL_UNITS)
    raise SettingsError(
        f"{where}: invalid interval {text!r}; write '<number> <unit>' with unit one of {units}"
    )


def _check_zone(zone: str, where: str) -> None:
    from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

    try:
        ZoneInfo(zone)
    except (ZoneInfoNotFoundError, ValueError):
        raise SettingsError(
            f"{where}: unknown time zone {zone!r}; use an IANA name such as 'America/Sao_Paulo' or 'UTC'"
        ) from None


def _check_keys(mapping: dict[str, Any], allowed: Any, where: str) -> None:
    for key in mapping:
        if key not in allowed:
            raise SettingsError(f"{where}: unknown key {key!r}{_suggest(str(key), allowed)}")


_SECRET_KEY = re.compile(r"password|secret|token|api_key|credential|private|uri$|dsn$", re.IGNORECASE)


def _typed(value: Any, expected: type | tuple[type, ...], where: str) -> Any:
    if value is None:
        return None
    if expected is int and isinstance(value, str) and value.strip().isdigit():
        return int(value)
    if expected is str and isinstance(value, (int, float)) and not isinstance(value, bool):
        return str(value)
    if not isinstance(value, expected) or (expected is int and isinstance(value, bool)):
        names = expected.__name__ if isinstance(expected, type) else "/".join(t.__name__ for t in expected)
        kind = {"str": "a string", "int": "an integer", "list": "a list", "dict": "a mapping"}.get(
            names, names
        )
        shown = "" if _SECRET_KEY.search(where.rsplit(".", 1)[-1]) else f" {value!r}"  # never echo a secret
        raise SettingsError(f"{where}: expected {kind}, got {type(value).__name__}{shown}")
    return value


def _as_list(value: Any, where: str) -> list[Any]:
    """panorama-elt examples sometimes write a single mapping where a list is meant."""
    if value is None:
        return []
    if isinstance(value, dict):
        return [value]
    return list(_typed(value, list, where))


def load_settings(path: str | os.PathLike[str]) -> Settings:
    """Read, interpolate and validate a settings file; every problem names its key path."""
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise SettingsError(
            f"settings file {str(p)!r} not found (pass --settings FILE, or copy settings.template.yaml)"
        ) from None
    except OSError as exc:
        raise SettingsError(f"cannot read settings file {str(p)!r}: {exc.strerror}") from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        at = f" line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise SettingsError(f"{p}:{at}: YAML syntax error: {problem}") from None
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise SettingsError(f"{p}: expected a mapping with 'datalake' and 'datasources' at the top")
    _check_size(data, str(p))
    _check_keys(data, ("datalake", "datasources", "kpi_views", "kpis"), str(p))
    datalake = _load_datalake(data.get("datalake") or {})
    datasources = [
        _load_datasource(item, f"datasources[{i}]")
        for i, item in enumerate(_as_list(data.get("datasources"), "datasources"))
    ]
    names = [d.name for d in datasources]
    for name in names:
        if names.count(name) > 1:
            raise SettingsError(f"datasources: name {name!r} is used twice; datasource names must be unique")
    kpi = interpolate(data.get("kpi_views"), "kpi_views")
    kpi_views = [str(v) for v in ([kpi] if isinstance(kpi, str) else _as_list(kpi, "kpi_views"))]
    kpis = [
        _typed(k, (str, dict), f"kpis[{i}]")
        for i, k in enumerate(_as_list(interpolate(data.get("kpis"), "kpis"), "kpis"))
    ]
    settings = Settings(path=p, datalake=datalake, datasources=datasources, kpi_views=kpi_views, kpis=kpis)
    naming.check_settings(settings)
    return settings


#: More values than any real settings file holds: YAML aliases nested to blow up (a
#: "billion laughs" document) are refused before anything walks the document.
MAX_VALUES = 500_000


def _check_size(data: Any, where: str) -> None:
    stack, seen = [data], 0
    while stack:
        item = stack.pop()
        seen += 1
        if seen > MAX_VALUES:
            raise SettingsError(
                f"{where}: the document expands to more than {MAX_VALUES:,} values (nested YAML aliases?); "
                "write the settings without such aliases"
            )
        if isinstance(item, dict):
            stack.extend(item.keys())
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)


def _load_datalake(raw: Any) -> DatalakeSettings:
    raw = _typed(raw, dict, "datalake")
    _check_keys(raw, _DATALAKE_KEYS, "datalake")
    lake_type = interpolate(raw.get("type"), "datalake.type") or (
        "aws" if raw.get("panorama_raw_data_bucket") else "local"
    )
    # a local lake never reads the AWS credentials: their ${VAR}s need not be set
    skip = _AWS_CREDENTIALS if lake_type == "local" else ()
    values = {
        k: None if k in skip else _typed(interpolate(raw.get(k), f"datalake.{k}"), t, f"datalake.{k}")
        for k, t in _DATALAKE_KEYS.items()
    }
    if lake_type not in _LAKE_TYPES:
        raise SettingsError(f"datalake.type: {lake_type!r} is not one of {', '.join(_LAKE_TYPES)}")
    if lake_type == "aws" and not values["panorama_raw_data_bucket"]:
        raise SettingsError("datalake.panorama_raw_data_bucket: required when datalake.type is aws")
    partitions = []
    for i, item in enumerate(_as_list(values["base_partitions"], "datalake.base_partitions")):
        where = f"datalake.base_partitions[{i}]"
        item = _typed(item, dict, where)
        _check_keys(item, ("name", "type", "value"), where)
        for key in ("name", "value"):
            if item.get(key) in (None, ""):
                raise SettingsError(f"{where}.{key}: required")
        partitions.append(
            BasePartition(
                name=_typed(item["name"], str, f"{where}.name"),
                value=_typed(item["value"], str, f"{where}.value"),
                type=_typed(item.get("type"), str, f"{where}.type") or "varchar",
            )
        )
    return DatalakeSettings(
        type=lake_type,
        path=values["path"] or "./lake",
        base_prefix=values["base_prefix"] or "",
        base_partitions=partitions,
        panorama_raw_data_bucket=values["panorama_raw_data_bucket"],
        datalake_database=values["datalake_database"] or "panorama",
        datalake_workgroup=values["datalake_workgroup"],
        aws_access_key=values["aws_access_key"],
        aws_secret_access_key=values["aws_secret_access_key"],
        aws_region=values["aws_region"] or "us-east-1",
        aws_profile=values["aws_profile"],
        endpoint_url=values["endpoint_url"],
        compression=values["compression"] or "none",
        kms_key_id=values["kms_key_id"],
        athena_output_location=values["athena_output_location"],
        athena_query_timeout=values["athena_query_timeout"] or 1800,
    )


def _load_datasource(raw: Any, where: str) -> DatasourceSettings:
    from panorama_kpi.sources import source_class

    raw = _typed(raw, dict, where)
    for key in ("type", "name"):
        if not raw.get(key):
            raise SettingsError(f"{where}.{key}: required")
    raw = {**raw, "type": interpolate(raw["type"], f"{where}.type")}
    name = _typed(interpolate(raw["name"], f"{where}.name"), str, f"{where}.name")
    where = f"datasources[{name}]"
    raw["tables"] = interpolate(raw.get("tables"), f"{where}.tables")
    try:
        cls = source_class(_typed(raw["type"], str, f"{where}.type"))
    except SettingsError as exc:
        raise SettingsError(f"{where}.type: {exc}") from None
    allowed = dict(cls.settings_keys)
    allowed.update({alias: allowed[k] for alias, k in ALIASES.items() if k in allowed})
    _check_keys(raw, {"type", "name", "tables", *allowed}, where)
    options: dict[str, Any] = {}
    for key, value in raw.items():
        if key in ("type", "name", "tables") or value is None or value == "":
            continue
        canonical = ALIASES.get(key, key)
        if canonical in allowed and key in ALIASES and raw.get(canonical) not in (None, ""):
            continue  # the generic key wins over panorama-elt's prefixed one
        value = _option(value, allowed[key], f"{where}.{key}")
        if value not in (None, ""):
            options[canonical] = value
    tables = [
        _load_table(item, f"{where}.tables[{i}]", cls.table_keys)
        for i, item in enumerate(_as_list(raw.get("tables"), f"{where}.tables"))
    ]
    return DatasourceSettings(type=raw["type"], name=name, options=options, tables=tables)


def _option(value: Any, expected: type | tuple[type, ...], where: str) -> Any:
    """A datasource option: interpolated now if it can be, else deferred until read."""
    if isinstance(value, str) and _unset_vars(value):
        return Deferred(value, expected, where)
    return _typed(interpolate(value, where), expected, where)


def _derived(item: dict[str, Any], where: str) -> tuple[str, DerivedPartition]:
    _check_keys(item, ("name", "from", "granularity"), where)
    for key in ("name", "from"):
        if not item.get(key):
            raise SettingsError(
                f"{where}.{key}: required (a derived partition is {{name, from, granularity}})"
            )
    granularity = str(item.get("granularity") or "day")
    if granularity not in GRANULARITIES:
        raise SettingsError(f"{where}.granularity: {granularity!r} is not one of {', '.join(GRANULARITIES)}")
    return str(item["name"]), DerivedPartition(str(item["from"]), granularity)


def _load_table(raw: Any, where: str, extra_keys: dict[str, type] | None = None) -> TableSettings:
    raw = _typed(raw, dict, where)
    extra_keys = extra_keys or {}
    _check_keys(raw, _TABLE_KEYS | set(extra_keys), where)
    if not raw.get("name"):
        raise SettingsError(f"{where}.name: required")
    name = _typed(raw["name"], str, f"{where}.name")
    where = f"{where.rsplit('.tables', 1)[0]}.tables[{name}]"
    fields = []
    for i, item in enumerate(_as_list(raw.get("fields"), f"{where}.fields")):
        fwhere = f"{where}.fields[{i}]"
        if isinstance(item, str):
            item = {"name": item}
        item = _typed(item, dict, fwhere)
        _check_keys(item, ("name", "type", "path"), fwhere)
        if not item.get("name"):
            raise SettingsError(f"{fwhere}.name: required")
        fields.append(
            Field(
                _typed(item["name"], str, f"{fwhere}.name"),
                str(item.get("type") or "varchar").lower(),
                _typed(item.get("path"), str, f"{fwhere}.path") or None,
            )
        )
    table = TableSettings(
        name=name,
        fields=fields,
        datalake_table_name=_typed(raw.get("datalake_table_name"), str, f"{where}.datalake_table_name"),
        datalake_table_view=_typed(raw.get("datalake_table_view"), str, f"{where}.datalake_table_view"),
        datalake_s3_table=_typed(raw.get("datalake_s3_table"), str, f"{where}.datalake_s3_table"),
        options={
            k: _typed(raw[k], t, f"{where}.{k}") for k, t in extra_keys.items() if raw.get(k) is not None
        },
    )
    parts = raw.get("partitions")
    if parts:
        pwhere = f"{where}.partitions"
        parts = _typed(parts, dict, pwhere)
        _check_keys(parts, _PARTITION_KEYS, pwhere)
        pf = parts.get("partition_fields") or []
        for i, item in enumerate([pf] if isinstance(pf, (str, dict)) else _typed(pf, list, pwhere)):
            if isinstance(item, dict):
                name, derived = _derived(item, f"{pwhere}.partition_fields[{i}]")
                table.derived[name] = derived
                item = name
            table.partition_fields.append(str(item))
        table.timestamp_field = _typed(parts.get("timestamp_field"), str, f"{pwhere}.timestamp_field")
        zone = _typed(parts.get("timestamp_timezone"), str, f"{pwhere}.timestamp_timezone")
        if zone:
            _check_zone(zone, f"{pwhere}.timestamp_timezone")
            table.timestamp_timezone = zone
        if parts.get("interval"):
            table.interval = str(parts["interval"])
            parse_interval(table.interval, f"{pwhere}.interval")
            if not table.timestamp_field:
                raise SettingsError(f"{pwhere}.timestamp_field: required when an interval is set")
    names = table.field_names
    if names:
        for name, derived in table.derived.items():
            dwhere = f"{where}.partitions.partition_fields[{name}]"
            if name in names:
                raise SettingsError(
                    f"{dwhere}: {name!r} is a field of the table; name the derived partition otherwise"
                )
            if derived.source not in names:
                raise SettingsError(
                    f"{dwhere}.from: {derived.source!r} is not in the table's field list{_suggest(derived.source, names)}"
                )
        for pfield in table.partition_fields:
            if pfield not in names and pfield not in table.derived:
                raise SettingsError(
                    f"{where}.partitions.partition_fields: {pfield!r} is not in the table's field list{_suggest(pfield, names)}"
                )
        if table.timestamp_field and table.timestamp_field not in names:
            raise SettingsError(
                f"{where}.partitions.timestamp_field: {table.timestamp_field!r} is not in the table's field list"
                f"{_suggest(table.timestamp_field, names)}"
            )
    return table
