"""extract-and-load: one table at a time, one object per partition, replaced atomically.

For each table: plan the partitions (all of them, or those with rows changed in
the incremental window), stream each from the source into its object, make the
new partitions visible in the catalog, then record the load in the lake. A
failing table is reported and the run moves on to the next one.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import logging
import queue
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from panorama_kpi.engines.base import Engine, Partition
from panorama_kpi.errors import PanoramaError, SourceError
from panorama_kpi.lake.csv import header_line
from panorama_kpi.lake.layout import decode_segment, object_key, partition_prefix, partition_text
from panorama_kpi.lake.storage import Storage
from panorama_kpi.selection import Selected
from panorama_kpi.settings import DatasourceSettings, Settings, TableSettings, parse_interval
from panorama_kpi.sources import open_source
from panorama_kpi.sources.base import SnapshotExpired, Source
from panorama_kpi.state import TableState, load_state, save_state
from panorama_kpi.views import RawTable, raw_table

Report = Callable[[str], None]
log = logging.getLogger(__name__)


@dataclass
class TableResult:
    datasource: str
    table: str
    rows: int = 0
    partitions: int = 0
    bytes: int = 0
    seconds: float = 0.0
    mode: str = "full"
    error: str | None = None


@dataclass
class RunSummary:
    results: list[TableResult] = field(default_factory=list)

    @property
    def failed(self) -> list[TableResult]:
        return [r for r in self.results if r.error]


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC).replace(tzinfo=None)


class _Counter:
    """Counts rows (lines) of the chunks flowing through it."""

    def __init__(self, chunks: Iterator[str]) -> None:
        self.chunks = chunks
        self.rows = 0

    def __iter__(self) -> Iterator[str]:
        for chunk in self.chunks:
            self.rows += chunk.count("\n")
            yield chunk


def window_start(
    table: TableSettings, state: TableState, now: dt.datetime, force: bool
) -> dt.datetime | None:
    """Start of the incremental window, None for a full load.

    panorama-elt reloads partitions changed within `interval`; we also reach back
    to the last successful load, so runs that failed or did not happen leave no gap.
    A table never loaded before gets a full load.
    """
    if force or not table.interval or not table.partition_fields or state.watermark is None:
        return None
    since = now - parse_interval(table.interval, f"table {table.name}")
    return min(since, state.watermark)


def load_table(
    settings: Settings,
    source: Source,
    table: TableSettings,
    storage: Storage,
    engine: Engine,
    force: bool = False,
    now: dt.datetime | None = None,
    report: Report = lambda _: None,
    extra_sources: Sequence[Source] = (),
) -> TableResult:
    """Load one table; raises PanoramaError on failure (nothing already in the lake is touched).

    `extra_sources` (more connections to the same datasource) dump partitions in
    parallel: while one partition's rows are encoded and written here, the next
    one's query is already running on the server.
    """
    started = time.monotonic()
    now = now or utcnow()
    ds = source.settings
    result = TableResult(ds.name, table.name)
    if not table.fields:
        raise SourceError(
            f"datasource {ds.name!r}, table {table.name!r}: no fields configured; run set-tables-fields -t {table.name}"
        )
    state = load_state(storage, ds.name, table.name)
    since = window_start(table, state, now, force)
    result.mode = "full" if since is None else f"changed since {since:%Y-%m-%d %H:%M:%S}"
    raw = raw_table(settings, table)
    lake = settings.datalake
    base = [(p.name, p.value) for p in lake.base_partitions]
    columns = list(raw.columns)
    header = header_line(columns)

    plan: list[tuple[Partition, dict[str, Any] | None]]
    if table.partition_fields:
        values = list(source.partition_values(table, since))
        plan = [
            (
                base + [(f, partition_text(v)) for f, v in zip(table.partition_fields, combo, strict=True)],
                dict(zip(table.partition_fields, combo, strict=True)),
            )
            for combo in values
        ]
    else:
        plan = [(base, None)]
    report(f"{ds.name}.{table.name}: {len(plan)} partition(s), {result.mode}")

    def dump_one(src: Source, partition: Partition, where: dict[str, Any] | None) -> tuple[str, int, int]:
        key = object_key(lake.base_prefix, table.name, partition)

        def write() -> tuple[str, int, int]:
            body = _Counter(src.dump(table, columns, where))
            return key, storage.write(key, _prepend(header, body)), body.rows

        try:
            return write()
        except SnapshotExpired as exc:  # the object was not replaced: dump it again, once
            report(f"{ds.name}.{table.name}: {exc}; retrying the partition once")
            return write()

    written = [partition for partition, _ in plan]
    keys: set[str] = set()
    for key, size, rows in _run_partitions(plan, [source, *extra_sources], dump_one):
        result.bytes += size
        result.rows += rows
        keys.add(key)
    engine.add_partitions(raw, written)
    if since is None and table.partition_fields:
        stale = _prune(
            storage, engine, raw, table, partition_prefix(lake.base_prefix, table.name, base), keys
        )
        if stale:
            report(f"{ds.name}.{table.name}: removed {stale} partition(s) no longer in the source")
    result.partitions = len(written)
    result.seconds = time.monotonic() - started
    save_state(
        storage,
        ds.name,
        table.name,
        TableState(
            last_success_start=now.isoformat(),
            last_run_start=now.isoformat(),
            rows=result.rows,
            partitions=result.partitions,
            bytes=result.bytes,
            seconds=round(result.seconds, 3),
            full=since is None,
        ),
    )
    return result


def _run_partitions(
    plan: Sequence[tuple[Partition, dict[str, Any] | None]],
    sources: Sequence[Source],
    dump_one: Callable[[Source, Partition, dict[str, Any] | None], tuple[str, int, int]],
) -> Iterator[tuple[str, int, int]]:
    """Dump every planned partition, one per source connection at a time; the first
    failure cancels what has not started and is raised."""
    if len(sources) < 2 or len(plan) < 2:
        for partition, where in plan:
            yield dump_one(sources[0], partition, where)
        return
    free: queue.SimpleQueue[Source] = queue.SimpleQueue()
    for src in sources:
        free.put(src)

    def job(partition: Partition, where: dict[str, Any] | None) -> tuple[str, int, int]:
        src = free.get()
        try:
            return dump_one(src, partition, where)
        finally:
            free.put(src)

    with ThreadPoolExecutor(max_workers=len(sources), thread_name_prefix="dump") as pool:
        futures = [pool.submit(job, partition, where) for partition, where in plan]
        try:
            for future in futures:
                yield future.result()
        finally:
            for future in futures:
                future.cancel()


def _prune(
    storage: Storage, engine: Engine, raw: RawTable, table: TableSettings, prefix: str, keep: set[str]
) -> int:
    """After a full load, drop partitions whose values vanished from the source.

    Only under this installation's base partitions: other sites sharing the
    table prefix are never touched.
    """
    stale: list[Partition] = []
    for key in list(storage.list(prefix)):
        segments = key[len(prefix) :].split("/")
        if key in keep or segments[-1] != raw.file_name or len(segments) != len(table.partition_fields) + 1:
            continue
        pairs = [decode_segment(s) for s in segments[:-1]]
        if [name for name, _ in pairs] != table.partition_fields:
            continue
        storage.delete(key)
        stale.append(pairs)
    if stale:
        engine.remove_partitions(raw, stale)
    return len(stale)


def _prepend(first: str, rest: Iterator[str] | _Counter) -> Iterator[str]:
    yield first
    yield from rest


def extract_and_load(
    settings: Settings,
    selected: Selected,
    storage: Storage,
    engine: Engine,
    force: bool = False,
    report: Report = lambda _: None,
    workers: int = 2,
) -> RunSummary:
    """Load the selected tables; `workers` connections per datasource dump partitions in parallel."""
    summary = RunSummary()
    by_source: dict[str, tuple[DatasourceSettings, list[TableSettings]]] = {}
    for ds, table in selected:
        by_source.setdefault(ds.name, (ds, []))[1].append(table)
    for ds, tables in by_source.values():
        try:
            source = open_source(ds)
        except PanoramaError as exc:
            summary.results += [TableResult(ds.name, t.name, error=str(exc)) for t in tables]
            continue
        extra = [open_source(ds) for _ in range(max(0, workers - 1))]
        with source, contextlib.ExitStack() as stack:
            for src in extra:
                stack.enter_context(src)
            for table in tables:
                try:
                    result = load_table(
                        settings,
                        source,
                        table,
                        storage,
                        engine,
                        force=force,
                        report=report,
                        extra_sources=extra,
                    )
                except Exception as exc:  # one table's failure must not stop the others
                    message = (
                        str(exc)
                        if isinstance(exc, PanoramaError)
                        else f"unexpected {type(exc).__name__}: {exc}"
                    )
                    log.debug("loading %s.%s failed", ds.name, table.name, exc_info=True)
                    result = TableResult(ds.name, table.name, error=message)
                    _record_failure(storage, ds.name, table.name, message)
                summary.results.append(result)
                report(_describe(result))
    return summary


def _record_failure(storage: Storage, datasource: str, table: str, error: str) -> None:
    try:
        state = load_state(storage, datasource, table)
        state.last_run_start = utcnow().isoformat()
        state.last_error = error
        save_state(storage, datasource, table, state)
    except PanoramaError:
        pass  # the failure itself is what gets reported


def _describe(r: TableResult) -> str:
    if r.error:
        return f"FAILED {r.datasource}.{r.table}: {r.error}"
    return (
        f"ok {r.datasource}.{r.table}: {r.rows} rows in {r.partitions} partition(s), "
        f"{r.bytes / 1e6:.1f} MB, {r.seconds:.1f}s"
    )
