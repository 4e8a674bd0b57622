"""Rows per partition object, as the last successful load left them.

An incremental run compares these with the source's grouped counts to re-dump
partitions whose count changed (deleted rows, rows that moved in or out) and to
remove partitions that no longer exist, without scanning the lake (on Athena a
scan of every object each hour would cost more than the load). It is a cache of
what the loads wrote, replaced whole while the run holds the datasource's lock;
when it is missing or damaged the table gets a full load, which rebuilds it.
"""

from __future__ import annotations

import json
import logging

from panorama_kpi.errors import PanoramaError
from panorama_kpi.lake.layout import encode_segment, site_folder
from panorama_kpi.lake.storage import Storage

log = logging.getLogger(__name__)

Counts = dict[tuple[str, ...], int]
"""Partition field values (catalog text, base partitions excluded) -> rows."""


def manifest_key(base_prefix: str, base: list[tuple[str, str]], datasource: str, table: str) -> str:
    folder = f"{site_folder('manifests', base_prefix, base)}/{encode_segment('datasource', datasource)}"
    return f"{folder}/{encode_segment('table', table)}.json"


def load_counts(storage: Storage, key: str) -> Counts | None:
    try:
        text = storage.read_text(key)
        if text is None:
            return None
        data = json.loads(text)
        return {tuple(str(v) for v in item[:-1]): int(item[-1]) for item in data["partitions"]}
    except (ValueError, TypeError, KeyError, IndexError, OSError, PanoramaError) as exc:
        log.warning("ignoring damaged partition manifest %s: %s", key, exc)
        return None


def save_counts(storage: Storage, key: str, counts: Counts) -> None:
    items = [[*values, rows] for values, rows in sorted(counts.items())]
    storage.write(key, [json.dumps({"partitions": items}, ensure_ascii=False) + "\n"])
