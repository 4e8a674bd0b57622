"""Full values of partition folders keyed by digest (see layout.py).

Such a folder holds `_panorama_values.csv` (CSV contract, header `column,value`,
one row per digest-keyed column of its path). Writers put it there before the data
object; it goes with the object. Athena never needs it (Glue keeps each partition's
values); the local engine joins it back, and it is what lets a key be read back
into its values (pruning, rebuilding the catalog from the lake alone).
"""

from __future__ import annotations

import csv
from collections.abc import Sequence

from panorama_kpi.lake.csv import decode_raw, encode_row, header_line
from panorama_kpi.lake.layout import VALUES_FILE, encode_segment, keyed_by_digest
from panorama_kpi.lake.storage import Storage

Pairs = Sequence[tuple[str, str]]


def folder_of(key: str) -> str:
    return key.rsplit("/", 1)[0] + "/"


def write_values(storage: Storage, folder: str, partition: Pairs) -> None:
    """Record the full values of `partition`'s digest-keyed segments in its folder (if any)."""
    long = [(k, v) for k, v in partition if keyed_by_digest(encode_segment(k, v))]
    if long:
        storage.write(folder + VALUES_FILE, [header_line(["column", "value"]), *(encode_row(p) for p in long)])


def read_values(storage: Storage, folder: str) -> dict[str, str]:
    text = storage.read_text(folder + VALUES_FILE)
    if not text:
        return {}
    rows = list(csv.reader(text.split("\n")[1:-1], escapechar="\\", doublequote=False))
    return {decode_raw(c) or "": decode_raw(v) or "" for c, v in rows}


def real_pairs(storage: Storage, folder: str, pairs: Pairs) -> list[tuple[str, str]]:
    """Pairs decoded from a key, with digest-keyed values replaced by the full ones."""
    if not any("@" in v for _k, v in pairs):
        return list(pairs)
    full = read_values(storage, folder)
    return [(k, full.get(k, v)) for k, v in pairs]


def delete_object(storage: Storage, key: str) -> None:
    """Delete a data object and its folder's values file."""
    storage.delete(key)
    storage.delete(folder_of(key) + VALUES_FILE)
