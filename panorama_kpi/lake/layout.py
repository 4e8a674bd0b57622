"""Hive-style object keys, compatible with panorama-elt:

[<base_prefix>/]<table>/[<base k>=<v>/...][<field k>=<v>/...]<table>.csv[.gz]
"""

from __future__ import annotations

from collections.abc import Sequence
from urllib.parse import quote, unquote

from panorama_kpi.lake.csv import render

#: Hive's name for the partition of NULL values.
NULL_PARTITION = "__HIVE_DEFAULT_PARTITION__"

#: Folder of the lake reserved for panorama-kpi's own files (catalog, state).
META_PREFIX = "_panorama"


def partition_text(value: object) -> str:
    """The partition value as the catalog shows it (canonical text; NULL -> Hive default)."""
    text = render(value)
    return NULL_PARTITION if text is None else text


def encode_segment(name: str, value: str) -> str:
    # safe="" so that '/' cannot open a sub-folder (panorama-elt kept '/', which split such keys).
    return f"{name}={quote(value, safe='')}"


def decode_segment(segment: str) -> tuple[str, str]:
    name, _, value = segment.partition("=")
    return name, unquote(value)


def table_prefix(base_prefix: str, table: str) -> str:
    """Key prefix (with trailing slash) holding every object of a table."""
    return f"{base_prefix}/{table}/" if base_prefix else f"{table}/"


def partition_prefix(base_prefix: str, table: str, partitions: Sequence[tuple[str, str]]) -> str:
    """Key prefix of one partition; `partitions` are (name, text) pairs, base partitions first."""
    return table_prefix(base_prefix, table) + "".join(encode_segment(k, v) + "/" for k, v in partitions)


#: Object name suffix per `datalake.compression`; storages gzip an object whose key ends in .gz.
SUFFIXES = {"none": ".csv", "gzip": ".csv.gz"}


def file_name(table: str, compression: str = "none") -> str:
    return table + SUFFIXES[compression]


def object_key(
    base_prefix: str, table: str, partitions: Sequence[tuple[str, str]], compression: str = "none"
) -> str:
    return partition_prefix(base_prefix, table, partitions) + file_name(table, compression)
