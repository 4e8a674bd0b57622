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

from panorama_kpi.errors import SettingsError


@dataclass(frozen=True)
class Field:
    name: str
    type: str = "varchar"
    #: Dotted path into a document (document sources); None means the field's name.
    path: str | None = None


@dataclass
class TableSettings:
    name: str
    fields: list[Field] = field(default_factory=list)
    partition_fields: list[str] = field(default_factory=list)
    interval: str | None = None
    timestamp_field: str | None = None
    datalake_table_name: str | None = None
    datalake_table_view: str | None = None
    #: Table keys a source type adds (its `table_keys`), e.g. an Elasticsearch `index`.
    options: dict[str, Any] = field(default_factory=dict)

    @property
    def field_names(self) -> list[str]:
        return [f.name for f in self.fields]

    @property
    def file_fields(self) -> list[Field]:
        """Fields written into the CSV files: partition fields live in the key only."""
        return [f for f in self.fields if f.name not in self.partition_fields]


@dataclass
class DatasourceSettings:
    type: str
    name: str
    options: dict[str, Any] = field(default_factory=dict)
    tables: list[TableSettings] = field(default_factory=list)


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


@dataclass
class Settings:
    path: Path
    datalake: DatalakeSettings
    datasources: list[DatasourceSettings]
    #: Folders (or files) of KPI views: one SELECT per .sql file, Athena dialect.
    kpi_views: list[str] = field(default_factory=list)

    def raw_table_name(self, table: TableSettings) -> str:
        return table.datalake_table_name or _prefixed(self.datalake.base_prefix, "raw", table.name)

    def view_name(self, table: TableSettings) -> str:
        return table.datalake_table_view or _prefixed(self.datalake.base_prefix, "table", table.name)

    def datasource(self, name: str) -> DatasourceSettings:
        for ds in self.datasources:
            if ds.name == name:
                return ds
        raise SettingsError(
            f"no datasource named {name!r}{_suggest(name, [d.name for d in self.datasources])}"
        )


def _prefixed(prefix: str, kind: str, table: str) -> str:
    return f"{prefix}_{kind}_{table}" if prefix else f"{kind}_{table}"


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
}
_LAKE_TYPES = ("local", "aws")
_TABLE_KEYS = {"name", "fields", "partitions", "datalake_table_name", "datalake_table_view"}
_PARTITION_KEYS = {"partition_fields", "interval", "timestamp_field"}
_INTERVAL_UNITS = {"second": 1, "minute": 60, "hour": 3600, "day": 86400, "week": 604800}

#: panorama-elt's prefixed keys -> the generic key every source type reads.
ALIASES = {f"mysql_{k}": k for k in ("host", "port", "username", "password", "database")}


def _suggest(word: str, choices: Any) -> str:
    close = difflib.get_close_matches(word, list(choices), n=1)
    return f" (did you mean {close[0]!r}?)" if close else ""


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


def _check_keys(mapping: dict[str, Any], allowed: Any, where: str) -> None:
    for key in mapping:
        if key not in allowed:
            raise SettingsError(f"{where}: unknown key {key!r}{_suggest(str(key), allowed)}")


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
        raise SettingsError(f"{where}: expected {kind}, got {type(value).__name__} {value!r}")
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
    _check_keys(data, ("datalake", "datasources", "kpi_views"), str(p))
    data = interpolate(data, "settings")
    datalake = _load_datalake(data.get("datalake") or {})
    datasources = [
        _load_datasource(item, f"datasources[{i}]")
        for i, item in enumerate(_as_list(data.get("datasources"), "datasources"))
    ]
    names = [d.name for d in datasources]
    for name in names:
        if names.count(name) > 1:
            raise SettingsError(f"datasources: name {name!r} is used twice; datasource names must be unique")
    kpi = data.get("kpi_views")
    kpi_views = [str(v) for v in ([kpi] if isinstance(kpi, str) else _as_list(kpi, "kpi_views"))]
    return Settings(path=p, datalake=datalake, datasources=datasources, kpi_views=kpi_views)


def _load_datalake(raw: Any) -> DatalakeSettings:
    raw = _typed(raw, dict, "datalake")
    _check_keys(raw, _DATALAKE_KEYS, "datalake")
    values = {k: _typed(raw.get(k), t, f"datalake.{k}") for k, t in _DATALAKE_KEYS.items()}
    lake_type = values["type"] or ("aws" if values["panorama_raw_data_bucket"] else "local")
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
    )


def _load_datasource(raw: Any, where: str) -> DatasourceSettings:
    from panorama_kpi.sources import source_class

    raw = _typed(raw, dict, where)
    for key in ("type", "name"):
        if not raw.get(key):
            raise SettingsError(f"{where}.{key}: required")
    name = _typed(raw["name"], str, f"{where}.name")
    where = f"datasources[{name}]"
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
        options[canonical] = _typed(value, allowed[key], f"{where}.{key}")
    tables = [
        _load_table(item, f"{where}.tables[{i}]", cls.table_keys)
        for i, item in enumerate(_as_list(raw.get("tables"), f"{where}.tables"))
    ]
    return DatasourceSettings(type=raw["type"], name=name, options=options, tables=tables)


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
        table.partition_fields = [str(f) for f in ([pf] if isinstance(pf, str) else _typed(pf, list, pwhere))]
        table.timestamp_field = _typed(parts.get("timestamp_field"), str, f"{pwhere}.timestamp_field")
        if parts.get("interval"):
            table.interval = str(parts["interval"])
            parse_interval(table.interval, f"{pwhere}.interval")
            if not table.timestamp_field:
                raise SettingsError(f"{pwhere}.timestamp_field: required when an interval is set")
    names = table.field_names
    if names:
        for pfield in table.partition_fields:
            if pfield not in names:
                raise SettingsError(
                    f"{where}.partitions.partition_fields: {pfield!r} is not in the table's field list{_suggest(pfield, names)}"
                )
        if table.timestamp_field and table.timestamp_field not in names:
            raise SettingsError(
                f"{where}.partitions.timestamp_field: {table.timestamp_field!r} is not in the table's field list"
                f"{_suggest(table.timestamp_field, names)}"
            )
    return table
