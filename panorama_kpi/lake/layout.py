"""Hive-style object keys, compatible with panorama-elt:

[<base_prefix>/]<table>/[<base k>=<v>/...][<field k>=<v>/...]<table>.csv[.gz]

A partition value is percent-encoded as `urllib.parse.quote(value, safe="")`. A
value too long for a folder name (file systems allow 255 bytes) is keyed by a
digest instead: `<name>=<first characters>@<sha256 hex>` (`@` never appears in a
quoted value, so the two forms cannot meet), and the folder holds the full values
in `_panorama_values.csv`, which Hive readers skip (a leading `_` hides a file) and
the local engine joins back.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from urllib.parse import quote, unquote

from panorama_kpi.lake.csv import render

#: Hive's name for the partition of NULL values.
NULL_PARTITION = "__HIVE_DEFAULT_PARTITION__"

#: Folder of the lake reserved for panorama-kpi's own files (catalog, state).
META_PREFIX = "_panorama"


def site_folder(kind: str, base_prefix: str, base: Sequence[tuple[str, str]]) -> str:
    """`_panorama/<kind>/site=<prefix>/<base k>=<v>/...`: one site's own files of a kind
    (locks, manifests), apart from other sites sharing the lake."""
    parts = [encode_segment("site", base_prefix), *(encode_segment(k, v) for k, v in base)]
    return f"{META_PREFIX}/{kind}/{'/'.join(parts)}"


def partition_text(value: object) -> str:
    """The partition value as the catalog shows it (canonical text; NULL -> Hive default)."""
    text = render(value)
    return NULL_PARTITION if text is None else text


#: Longest `name=value` folder name keyed by the value itself.
MAX_SEGMENT = 200
#: Characters of the encoded value kept before the digest, for people reading keys.
DIGEST_HEAD = 40
#: The file, in a partition folder keyed by digest, holding that folder's full values.
VALUES_FILE = "_panorama_values.csv"


def encode_segment(name: str, value: str) -> str:
    # safe="" so that '/' cannot open a sub-folder (panorama-elt kept '/', which split such keys).
    encoded = quote(value, safe="")
    if len(name) + 1 + len(encoded.encode()) <= MAX_SEGMENT:
        return f"{name}={encoded}"
    head = ""
    for char in value:  # whole characters: a cut UTF-8 sequence would not decode
        piece = quote(char, safe="")
        if len(head) + len(piece) > DIGEST_HEAD:
            break
        head += piece
    return f"{name}={head}@{hashlib.sha256(value.encode('utf-8')).hexdigest()}"


def keyed_by_digest(segment: str) -> bool:
    return "@" in segment.partition("=")[2]


def decode_segment(segment: str) -> tuple[str, str]:
    """(name, value) of a segment; a digest-keyed one gives its key text (see VALUES_FILE)."""
    name, _, value = segment.partition("=")
    return name, value if keyed_by_digest(segment) else unquote(value)


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
