"""Writing a load's planned partitions into their objects.

loading.py plans which partitions a load writes; this module writes them, by the read
plan split_scan chooses for the table: one query per partition (on up to `--workers`
connections), one sorted scan cut into objects, or one scan routed into open objects.
Every object gets the header line first, and its long partition values file before it.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from panorama_kpi.engines.base import Partition
from panorama_kpi.lake.batch import Batch, ObjectWriter
from panorama_kpi.lake.csv import header_line
from panorama_kpi.lake.layout import object_key
from panorama_kpi.lake.long_values import folder_of, write_values
from panorama_kpi.lake.storage import Storage
from panorama_kpi.settings import TableSettings
from panorama_kpi.sources.base import Source
from panorama_kpi.split_scan import (
    PER_PARTITION,
    ROUTED,
    SORTED,
    dump_routed,
    dump_split,
    expected_prefix,
    open_budget,
    plan_scan,
)
from panorama_kpi.views import RawTable

#: A load's plan: each partition's key pairs and, when partitioned, its values by field.
Plan = Sequence[tuple[Partition, dict[str, Any] | None]]


class Cancelled(BaseException):
    """The run was told to stop (SIGTERM, SIGINT, a lost lock): abandon the partition in flight.

    A BaseException, so no `except Exception` on the way swallows it."""


@dataclass
class Dump:
    """What writing a table's partitions needs."""

    table: TableSettings
    raw: RawTable
    columns: list[str]
    base_prefix: str
    sources: Sequence[Source]  # one or more connections to the same datasource
    storage: Storage
    checkpoint: Callable[[], None]  # raises when the run must stop (a lost lock)
    cancel: threading.Event  # set to stop: checked between chunks and partitions


def dump_partitions(
    d: Dump,
    batch: Batch,
    plan: Plan,
    order: Sequence[tuple[str, ...]],
    by_text: dict[tuple[str, ...], tuple[Any, ...]],
    full: bool,
) -> Iterator[tuple[int, str, int, int]]:
    """Write every planned partition into `batch`; yields (plan index, key, bytes, rows) as
    each is written. `order[j]` is plan entry j's partition texts, `by_text` maps texts to
    the source's values in the source's order."""
    source = d.sources[0]
    header = header_line(d.columns)

    def write_one(partition: Partition, chunks: Iterator[str]) -> tuple[str, int, int]:
        try:
            d.checkpoint()
            key = object_key(d.base_prefix, d.raw.table, partition, d.raw.compression)
            write_values(d.storage, folder_of(key), partition)  # before its object, as readers expect
            body = _Counter(chunks, d.cancel)
            size = batch.write(key, _prepend(header, body))
            return key, size, body.rows
        finally:  # a write that failed mid-stream stops the query now, on an open connection
            close = getattr(chunks, "close", None)
            if close is not None:
                close()

    def open_one(j: int) -> tuple[str, ObjectWriter]:
        partition = plan[j][0]
        key = object_key(d.base_prefix, d.raw.table, partition, d.raw.compression)
        write_values(d.storage, folder_of(key), partition)
        writer = batch.open(key)
        writer.write(header)
        return key, writer

    def between_chunks() -> None:
        d.checkpoint()
        if d.cancel.is_set():
            raise Cancelled()

    def dump_one(src: Source, partition: Partition, where: dict[str, Any] | None) -> tuple[str, int, int]:
        return write_one(partition, src.dump(d.table, d.columns, where))

    # one scan only where every partition is recognised by how the server renders its
    # values (matching by position would trust two queries to sort alike)
    how = PER_PARTITION
    if (
        d.table.partition_fields
        and d.columns
        and all(expected_prefix(c) is not None for c in by_text.values())
    ):
        budget = open_budget() if d.storage.writes_in_place else 0
        how = plan_scan(source, d.table, len(plan), full, budget)
    position = {texts: j for j, texts in enumerate(order)}  # by_text is in the source's order
    in_scan_order = [(position[texts], combo) for texts, combo in by_text.items()]
    if how == ROUTED:
        return dump_routed(source, d.table, d.columns, in_scan_order, open_one, between_chunks)
    elif how == SORTED:
        return dump_split(source, d.table, d.columns, in_scan_order, lambda j, c: write_one(plan[j][0], c))
    else:
        return ((j, *r) for j, r in enumerate(_run_partitions(plan, d.sources, dump_one, d.cancel)))


class _Counter:
    """Counts rows (lines) of the chunks flowing through it; stops when cancelled."""

    def __init__(self, chunks: Iterator[str], cancel: threading.Event) -> None:
        self.chunks, self.cancel = chunks, cancel
        self.rows = 0

    def __iter__(self) -> Iterator[str]:
        for chunk in self.chunks:
            if self.cancel.is_set():
                raise Cancelled()
            self.rows += chunk.count("\n")
            yield chunk


def _run_partitions(
    plan: Sequence[tuple[Partition, dict[str, Any] | None]],
    sources: Sequence[Source],
    dump_one: Callable[[Source, Partition, dict[str, Any] | None], tuple[str, int, int]],
    cancel: threading.Event,
) -> Iterator[tuple[str, int, int]]:
    """Dump every planned partition, one per source connection at a time; the first
    failure (or a cancellation) stops what has not started and is raised."""
    if len(sources) < 2 or len(plan) < 2:
        for partition, where in plan:
            yield dump_one(sources[0], partition, where)
        return
    free: queue.SimpleQueue[Source] = queue.SimpleQueue()
    for src in sources:
        free.put(src)

    def job(partition: Partition, where: dict[str, Any] | None) -> tuple[str, int, int]:
        if cancel.is_set():
            raise Cancelled()
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
        except BaseException:
            cancel.set()  # partitions in flight stop at their next chunk, deleting their temp objects
            raise
        finally:
            for future in futures:
                future.cancel()


def _prepend(first: str, rest: Iterator[str] | _Counter) -> Iterator[str]:
    yield first
    yield from rest
