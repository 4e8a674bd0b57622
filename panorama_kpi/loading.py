"""Loading one table: plan the partitions, have dumping.py stream each into its object,
make the catalog follow, and say what was done. Orchestration (locks, retries, run
records) is pipeline.py's.

Plans:
- full: every partition (first load, `--force`, a changed layout, a table without
  an incremental window, or a table whose partition counts were never recorded);
  afterwards objects of partitions that vanished, or of an older layout, are removed.
- incremental: partitions with rows whose `timestamp_field` is inside the window,
  plus partitions whose row count in the source differs from what the lake holds
  (deleted rows, rows that moved between partitions), minus partitions that no
  longer exist in the source, whose objects are removed.
- since: like incremental with the window start given on the command line.
"""

from __future__ import annotations

import datetime as dt
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any
from zoneinfo import ZoneInfo

from panorama_kpi.dumping import Dump, dump_partitions
from panorama_kpi.engines.base import Engine, Partition
from panorama_kpi.errors import SourceError
from panorama_kpi.lake.layout import (
    NULL_PARTITION,
    SUFFIXES,
    decode_segment,
    object_key,
    partition_prefix,
    partition_text,
)
from panorama_kpi.lake.long_values import delete_object, folder_of, real_pairs
from panorama_kpi.lake.storage import Storage
from panorama_kpi.runs.events import Listener, Note, PartitionDone, TableStarted
from panorama_kpi.runs.manifest import Counts, load_counts, manifest_key, save_counts
from panorama_kpi.runs.records import RunRecord
from panorama_kpi.settings import Settings, TableSettings
from panorama_kpi.settings_text import parse_interval
from panorama_kpi.sources.base import Source
from panorama_kpi.views import RawTable, raw_table


@dataclass
class TableResult:
    datasource: str
    table: str
    rows: int = 0
    partitions: int = 0
    removed: int = 0
    bytes: int = 0
    seconds: float = 0.0
    mode: str = "full"
    window_start: dt.datetime | None = None
    layout: dict[str, Any] | None = None
    error: str | None = None
    status: str = "ok"
    warnings: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class Layout:
    """How a table's objects are keyed and what columns they hold."""

    base: list[tuple[str, str]]
    partition_fields: list[str]
    columns: list[str]

    @classmethod
    def from_state(cls, data: Any) -> Layout | None:
        try:
            return cls(
                [(str(k), str(v)) for k, v in data["base"]],
                [str(f) for f in data["partition_fields"]],
                [str(c) for c in data["columns"]],
            )
        except (TypeError, KeyError, ValueError):
            return None  # not recorded (an older version's load): nothing to compare with

    def to_state(self) -> dict[str, Any]:
        return {
            "base": [list(p) for p in self.base],
            "partition_fields": self.partition_fields,
            "columns": self.columns,
        }

    def change_to(self, new: Layout) -> str:
        if self.base != new.base:
            return f"base partitions changed ({_pairs(self.base)} -> {_pairs(new.base)})"
        if self.partition_fields != new.partition_fields:
            return f"partition fields changed ({self.partition_fields} -> {new.partition_fields})"
        return f"the field list changed ({len(self.columns)} -> {len(new.columns)} columns in the files)"


def _pairs(pairs: Sequence[tuple[str, str]]) -> str:
    return "/".join(f"{k}={v}" for k, v in pairs) or "none"


@dataclass
class TableJob:
    """Everything one table's load needs besides the table itself."""

    settings: Settings
    sources: Sequence[Source]  # one or more connections to the same datasource
    storage: Storage
    engine: Engine
    last_success: RunRecord | None
    now: dt.datetime  # the source's clock at the start of the table (naive UTC)
    force: bool = False
    since: dt.datetime | None = None  # --since
    listen: Listener = lambda _e: None
    #: Set to stop: checked between chunks and partitions.
    cancel: threading.Event = field(default_factory=threading.Event)
    #: Raises when the run must stop before the next partition (a lost lock).
    checkpoint: Callable[[], None] = lambda: None


def window_start(table: TableSettings, job: TableJob) -> dt.datetime | None:
    """Start of the incremental window (UTC), None for a full load.

    panorama-elt reloads partitions changed within `interval`; we also reach back
    to the start of the last successful load, so runs that failed or did not happen
    leave no gap. A table never loaded before gets a full load.
    """
    if job.since is not None:
        return job.since
    watermark = job.last_success.started_at if job.last_success else None
    if job.force or not table.interval or not table.partition_fields or watermark is None:
        return None
    since = job.now - parse_interval(table.interval, f"table {table.name}")
    return min(since, watermark)


def to_source_time(table: TableSettings, utc: dt.datetime) -> dt.datetime:
    """A UTC instant as the application stores `timestamp_field` (naive, in its zone)."""
    if not table.timestamp_timezone or table.timestamp_timezone == "UTC":
        return utc
    local = utc.replace(tzinfo=dt.UTC).astimezone(ZoneInfo(table.timestamp_timezone))
    return local.replace(tzinfo=None)


def load_table(table: TableSettings, job: TableJob) -> TableResult:
    """Load one table; raises PanoramaError on failure (nothing already in the lake is touched)."""
    started = time.monotonic()
    settings, storage, engine, source = job.settings, job.storage, job.engine, job.sources[0]
    ds = source.settings
    result = TableResult(ds.name, table.name)
    if not table.fields:
        raise SourceError(
            f"datasource {ds.name!r}, table {table.name!r}: no fields configured; "
            f"run set-tables-fields -t {table.name}"
        )
    raw = raw_table(settings, table)
    lake = settings.datalake
    base = [(p.name, p.value) for p in lake.base_partitions]
    columns = list(raw.columns)
    layout = Layout(base, list(table.partition_fields), columns)
    result.layout = layout.to_state()
    old = Layout.from_state(job.last_success.layout_data) if job.last_success else None
    relayout = old is not None and old != layout
    if relayout:
        assert old is not None
        job.listen(
            Note(f"{ds.name}.{table.name}: {old.change_to(layout)} since the last load; reloading in full")
        )
    leftovers = storage.remove_temporaries(raw.prefix)
    if leftovers:
        job.listen(
            Note(f"{ds.name}.{table.name}: removed {leftovers} temporary object(s) of an interrupted run")
        )

    counts_key = manifest_key(lake.base_prefix, base, ds.name, table.name)
    since = None if relayout else window_start(table, job)
    lake_counts = load_counts(storage, counts_key) if since is not None and table.partition_fields else None
    source_counts: Counts | None = None
    combos: dict[tuple[str, ...], tuple[Any, ...]] = {}
    if since is not None and table.partition_fields:
        found = source.partition_counts(table)
        if found is not None:
            source_counts = {}
            for combo, n in found:
                texts = _texts(combo, table)
                combos[texts] = combo
                source_counts[texts] = source_counts.get(texts, 0) + n
        if lake_counts is None and source_counts is not None:
            job.listen(Note(f"{ds.name}.{table.name}: no partition counts recorded; loading in full"))
            since = None
    result.window_start = since
    if since is None:
        result.mode = "full"
    else:
        result.mode = "since" if job.since is not None else "incremental"

    # ---- plan
    by_text: dict[tuple[str, ...], tuple[Any, ...]] = {}
    if table.partition_fields:
        window = None if since is None else to_source_time(table, since)
        for combo in source.partition_values(table, window):
            by_text[_texts(combo, table)] = combo
        if since is not None and source_counts is not None and lake_counts is not None:
            for texts, n in source_counts.items():
                if lake_counts.get(texts) != n and texts not in by_text:
                    by_text[texts] = combos[texts]
    order = sorted(by_text) if table.partition_fields else [()]
    plan: list[tuple[Partition, dict[str, Any] | None]] = [
        (
            base + list(zip(table.partition_fields, texts, strict=True)),
            dict(zip(table.partition_fields, by_text[texts], strict=True))
            if table.partition_fields
            else None,
        )
        for texts in order
    ]
    described = result.mode if since is None else f"{result.mode} since {since:%Y-%m-%d %H:%M:%S}"
    job.listen(TableStarted(ds.name, table.name, described, len(plan)))

    # ---- dump
    dump = Dump(table, raw, columns, lake.base_prefix, job.sources, storage, job.checkpoint, job.cancel)
    keys: set[str] = set()
    written: Counts = {}
    with storage.batch() as batch:  # every object is in place when the block ends
        for i, (j, key, size, rows) in enumerate(
            dump_partitions(dump, batch, plan, order, by_text, since is None)
        ):
            result.bytes += size
            result.rows += rows
            keys.add(key)
            written[order[j]] = rows
            job.listen(
                PartitionDone(
                    ds.name,
                    table.name,
                    i + 1,
                    len(plan),
                    result.rows,
                    result.bytes,
                    time.monotonic() - started,
                )
            )
    engine.add_partitions(raw, [partition for partition, _ in plan])
    for src in job.sources:  # what the sources noticed in the data (kept in the run record)
        for line in src.drain_warnings():
            result.warnings.append(line)
            job.listen(Note(line, warning=True))

    # ---- remove what the source no longer has
    if since is None:
        result.removed = _prune(storage, engine, raw, lake.base_prefix, layout, keys)
        if relayout:
            assert old is not None
            gone = _prune(storage, None, raw, lake.base_prefix, old, keys)
            job.listen(Note(f"{ds.name}.{table.name}: removed {gone} object(s) of the previous layout"))
        counts = written
    else:
        counts = dict(lake_counts or {})
        counts.update(written)
        if source_counts is not None:
            vanished = [t for t in counts if t not in source_counts and t not in written]
            result.removed = _remove(storage, engine, raw, lake.base_prefix, base, table, vanished)
            for texts in vanished:
                counts.pop(texts, None)
    if result.removed:
        job.listen(
            Note(f"{ds.name}.{table.name}: removed {result.removed} partition(s) no longer in the source")
        )
    if table.partition_fields:
        save_counts(storage, counts_key, counts)
    result.partitions = len(plan)
    result.seconds = time.monotonic() - started
    return result


def _texts(combo: Sequence[Any], table: TableSettings) -> tuple[str, ...]:
    """Catalog texts of a partition's values. NULL is Hive's `__HIVE_DEFAULT_PARTITION__`, so
    that text itself cannot be a value: Athena and every Hive reader would read it as NULL."""
    texts = tuple(partition_text(v) for v in combo)
    for name, value, text in zip(table.partition_fields, combo, texts, strict=True):
        if value is not None and text == NULL_PARTITION:
            raise SourceError(
                f"table {table.name!r}: partition field {name!r} holds the text {NULL_PARTITION!r}, which "
                "Hive reserves for NULL; change that value in the source or partition by another field"
            )
    return texts


def _prune(
    storage: Storage,
    engine: Engine | None,
    raw: RawTable,
    base_prefix: str,
    layout: Layout,
    keep: set[str],
) -> int:
    """After a full load, delete the objects of `layout` that the load did not write:
    partitions whose values vanished from the source, or every object of a previous
    layout. Only under that layout's base partitions: other sites sharing the table
    prefix are never touched. `engine` forgets the deleted partitions (current layout).
    """
    prefix = partition_prefix(base_prefix, raw.table, layout.base)
    kept_folders = {folder_of(key) for key in keep}
    stale: dict[str, Partition] = {}
    for key in list(storage.list(prefix)):
        segments = key[len(prefix) :].split("/")
        if (
            key in keep
            or segments[-1] not in raw.file_names  # also an object left under the other compression
            or len(segments) != len(layout.partition_fields) + 1
        ):
            continue
        pairs = [decode_segment(s) for s in segments[:-1]]
        if [name for name, _ in pairs] != layout.partition_fields:
            continue
        folder = folder_of(key)
        full = real_pairs(storage, folder, [*layout.base, *pairs])
        if folder in kept_folders:
            storage.delete(key)  # the partition stays: only its old-named object goes
        else:
            delete_object(storage, key)
            stale[folder] = full
    if stale and engine is not None:
        engine.remove_partitions(raw, list(stale.values()))
    return len(stale)


def _remove(
    storage: Storage,
    engine: Engine,
    raw: RawTable,
    base_prefix: str,
    base: list[tuple[str, str]],
    table: TableSettings,
    vanished: Sequence[tuple[str, ...]],
) -> int:
    partitions: list[Partition] = [base + list(zip(table.partition_fields, t, strict=True)) for t in vanished]
    for partition in partitions:
        for compression in SUFFIXES:
            delete_object(storage, object_key(base_prefix, raw.table, partition, compression))
    if partitions:
        engine.remove_partitions(raw, partitions)
    return len(partitions)
