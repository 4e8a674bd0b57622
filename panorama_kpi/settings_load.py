"""Reading a settings file: YAML, size limits, interpolation and validation into the
model of settings.py, with panorama-elt's keys and shapes. Every problem names its key
path."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import yaml

from panorama_kpi import naming
from panorama_kpi.errors import SettingsError
from panorama_kpi.settings import (
    GRANULARITIES,
    BasePartition,
    DatalakeSettings,
    DatasourceSettings,
    Deferred,
    DerivedPartition,
    Field,
    Settings,
    TableSettings,
)
from panorama_kpi.settings_text import interpolate, parse_interval, suggest, typed, unset_vars

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

#: panorama-elt's prefixed keys -> the generic key every source type reads.
ALIASES = {f"mysql_{k}": k for k in ("host", "port", "username", "password", "database")}


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
            raise SettingsError(f"{where}: unknown key {key!r}{suggest(str(key), allowed)}")


def _as_list(value: Any, where: str) -> list[Any]:
    """panorama-elt examples sometimes write a single mapping where a list is meant."""
    if value is None:
        return []
    if isinstance(value, dict):
        return [value]
    return list(typed(value, list, where))


def load(path: str | os.PathLike[str]) -> Settings:
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
        typed(k, (str, dict), f"kpis[{i}]")
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
    raw = typed(raw, dict, "datalake")
    _check_keys(raw, _DATALAKE_KEYS, "datalake")
    lake_type = interpolate(raw.get("type"), "datalake.type") or (
        "aws" if raw.get("panorama_raw_data_bucket") else "local"
    )
    # a local lake never reads the AWS credentials: their ${VAR}s need not be set
    skip = _AWS_CREDENTIALS if lake_type == "local" else ()
    values = {
        k: None if k in skip else typed(interpolate(raw.get(k), f"datalake.{k}"), t, f"datalake.{k}")
        for k, t in _DATALAKE_KEYS.items()
    }
    if lake_type not in _LAKE_TYPES:
        raise SettingsError(f"datalake.type: {lake_type!r} is not one of {', '.join(_LAKE_TYPES)}")
    if lake_type == "aws" and not values["panorama_raw_data_bucket"]:
        raise SettingsError("datalake.panorama_raw_data_bucket: required when datalake.type is aws")
    partitions = []
    for i, item in enumerate(_as_list(values["base_partitions"], "datalake.base_partitions")):
        where = f"datalake.base_partitions[{i}]"
        item = typed(item, dict, where)
        _check_keys(item, ("name", "type", "value"), where)
        for key in ("name", "value"):
            if item.get(key) in (None, ""):
                raise SettingsError(f"{where}.{key}: required")
        partitions.append(
            BasePartition(
                name=typed(item["name"], str, f"{where}.name"),
                value=typed(item["value"], str, f"{where}.value"),
                type=typed(item.get("type"), str, f"{where}.type") or "varchar",
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

    raw = typed(raw, dict, where)
    for key in ("type", "name"):
        if not raw.get(key):
            raise SettingsError(f"{where}.{key}: required")
    raw = {**raw, "type": interpolate(raw["type"], f"{where}.type")}
    name = typed(interpolate(raw["name"], f"{where}.name"), str, f"{where}.name")
    where = f"datasources[{name}]"
    raw["tables"] = interpolate(raw.get("tables"), f"{where}.tables")
    try:
        cls = source_class(typed(raw["type"], str, f"{where}.type"))
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
    if isinstance(value, str) and unset_vars(value):
        return Deferred(value, expected, where)
    return typed(interpolate(value, where), expected, where)


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
    raw = typed(raw, dict, where)
    extra_keys = extra_keys or {}
    _check_keys(raw, _TABLE_KEYS | set(extra_keys), where)
    if not raw.get("name"):
        raise SettingsError(f"{where}.name: required")
    name = typed(raw["name"], str, f"{where}.name")
    where = f"{where.rsplit('.tables', 1)[0]}.tables[{name}]"
    fields = []
    for i, item in enumerate(_as_list(raw.get("fields"), f"{where}.fields")):
        fwhere = f"{where}.fields[{i}]"
        if isinstance(item, str):
            item = {"name": item}
        item = typed(item, dict, fwhere)
        _check_keys(item, ("name", "type", "path"), fwhere)
        if not item.get("name"):
            raise SettingsError(f"{fwhere}.name: required")
        fields.append(
            Field(
                typed(item["name"], str, f"{fwhere}.name"),
                str(item.get("type") or "varchar").lower(),
                typed(item.get("path"), str, f"{fwhere}.path") or None,
            )
        )
    table = TableSettings(
        name=name,
        fields=fields,
        datalake_table_name=typed(raw.get("datalake_table_name"), str, f"{where}.datalake_table_name"),
        datalake_table_view=typed(raw.get("datalake_table_view"), str, f"{where}.datalake_table_view"),
        datalake_s3_table=typed(raw.get("datalake_s3_table"), str, f"{where}.datalake_s3_table"),
        options={
            k: typed(raw[k], t, f"{where}.{k}") for k, t in extra_keys.items() if raw.get(k) is not None
        },
    )
    parts = raw.get("partitions")
    if parts:
        pwhere = f"{where}.partitions"
        parts = typed(parts, dict, pwhere)
        _check_keys(parts, _PARTITION_KEYS, pwhere)
        pf = parts.get("partition_fields") or []
        for i, item in enumerate([pf] if isinstance(pf, (str, dict)) else typed(pf, list, pwhere)):
            if isinstance(item, dict):
                name, derived = _derived(item, f"{pwhere}.partition_fields[{i}]")
                table.derived[name] = derived
                item = name
            table.partition_fields.append(str(item))
        table.timestamp_field = typed(parts.get("timestamp_field"), str, f"{pwhere}.timestamp_field")
        zone = typed(parts.get("timestamp_timezone"), str, f"{pwhere}.timestamp_timezone")
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
                    f"{dwhere}.from: {derived.source!r} is not in the table's field list{suggest(derived.source, names)}"
                )
        for pfield in table.partition_fields:
            if pfield not in names and pfield not in table.derived:
                raise SettingsError(
                    f"{where}.partitions.partition_fields: {pfield!r} is not in the table's field list{suggest(pfield, names)}"
                )
        if table.timestamp_field and table.timestamp_field not in names:
            raise SettingsError(
                f"{where}.partitions.timestamp_field: {table.timestamp_field!r} is not in the table's field list"
                f"{suggest(table.timestamp_field, names)}"
            )
    return table
