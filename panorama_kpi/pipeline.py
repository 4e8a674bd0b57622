"""extract-and-load: one datasource at a time under its lock, one table at a time.

For each datasource: take the lake's lock for it (one run per lake, site and
datasource), open its connections, then load each table (loading.py), retrying
transient failures, and append a run record for each table whatever happened. A
failing table is reported and the run moves on; an interruption (SIGTERM, Ctrl-C)
abandons the partition in flight, records the table as interrupted, releases the
lock and propagates.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import logging
import random
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from panorama_kpi.dumping import Cancelled
from panorama_kpi.engines.base import Engine
from panorama_kpi.errors import PanoramaError
from panorama_kpi.lake.storage import Storage
from panorama_kpi.loading import TableJob, TableResult, load_table
from panorama_kpi.runs.events import Listener, Note, TableFinished, ignore
from panorama_kpi.runs.lock import LockBusy, RunLock, lock_key
from panorama_kpi.runs.records import RunRecord, RunStore, new_run_id, timestamp_text
from panorama_kpi.runs.table import runs_raw_table
from panorama_kpi.selection import Selected
from panorama_kpi.settings import DatasourceSettings, Settings, TableSettings
from panorama_kpi.sources import open_source
from panorama_kpi.sources.base import Source
from panorama_kpi.timeparse import utcnow
from panorama_kpi.views import RawTable

log = logging.getLogger(__name__)

__all__ = ["Interrupted", "RunOptions", "RunSummary", "TableResult", "extract_and_load", "run_store"]


class Interrupted(Cancelled):
    """Raised (by the CLI's signal handler) to stop the run cleanly."""

    def __init__(self, signal_name: str = "SIGTERM", exit_code: int = 143) -> None:
        super().__init__(signal_name)
        self.exit_code = exit_code


@dataclass
class RunSummary:
    run_id: str = ""
    results: list[TableResult] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def failed(self) -> list[TableResult]:
        return [r for r in self.results if r.error]


@dataclass
class RunOptions:
    force: bool = False
    since: dt.datetime | None = None
    workers: int = 2
    tries: int = 3  # attempts per table when the failure is transient
    wait: float = 0.0  # seconds to wait for another run's lock
    backoff: float = 1.0  # first retry delay; doubles each time, plus jitter
    sleep: Callable[[float], None] = time.sleep


def run_store(settings: Settings, storage: Storage) -> RunStore:
    lake = settings.datalake
    return RunStore(storage, lake.base_prefix, [(p.name, p.value) for p in lake.base_partitions])


@dataclass
class _Run:
    """What every datasource and table of one run shares."""

    settings: Settings
    storage: Storage
    engine: Engine
    store: RunStore
    options: RunOptions
    listen: Listener
    record: Recorder
    run_id: str


def extract_and_load(
    settings: Settings,
    selected: Selected,
    storage: Storage,
    engine: Engine,
    options: RunOptions | None = None,
    listen: Listener = ignore,
) -> RunSummary:
    """Load the selected tables; see the module docstring."""
    options = options or RunOptions()
    started = time.monotonic()
    summary = RunSummary(run_id=new_run_id())
    store = run_store(settings, storage)
    recorder = Recorder(store, engine, runs_raw_table(settings), summary.run_id, listen)
    run = _Run(settings, storage, engine, store, options, listen, recorder, summary.run_id)
    by_source: dict[str, tuple[DatasourceSettings, list[TableSettings]]] = {}
    for ds, table in selected:
        by_source.setdefault(ds.name, (ds, []))[1].append(table)
    for ds, tables in by_source.values():
        summary.results += _load_datasource(run, ds, tables)
    summary.seconds = time.monotonic() - started
    return summary


def _load_datasource(run: _Run, ds: DatasourceSettings, tables: list[TableSettings]) -> list[TableResult]:
    lake = run.settings.datalake
    base = [(p.name, p.value) for p in lake.base_partitions]
    lock = RunLock(
        run.storage, lock_key(lake.base_prefix, base, ds.name), run.run_id, f"datasource {ds.name!r}"
    )
    try:
        note = lock.acquire(run.options.wait)
    except LockBusy:
        raise
    except PanoramaError as exc:
        return [_failed(run, ds, t, f"cannot take the run lock: {exc}") for t in tables]
    if note:
        run.listen(Note(note, warning=True))
    with lock, contextlib.ExitStack() as stack:
        sources = [stack.enter_context(open_source(ds)) for _ in range(max(1, run.options.workers))]
        try:  # one connection test for the datasource, so an unreachable one fails fast
            _retrying(run, sources[0].check, ds.name, sources)
        except PanoramaError as exc:
            return [_failed(run, ds, t, str(exc)) for t in tables]
        results = []
        for table in tables:
            result = _load_with_retries(run, table, sources, lock)
            results.append(result)
            run.listen(TableFinished(result))
    return results


def _retrying(run: _Run, call: Callable[[], object], what: str, sources: Sequence[Source]) -> None:
    for attempt in range(1, max(1, run.options.tries) + 1):
        try:
            call()
            return
        except PanoramaError as exc:
            if not exc.transient or attempt >= run.options.tries:
                raise
            _pause(run, f"{what}: {exc}", attempt, sources)


def _pause(run: _Run, message: str, attempt: int, sources: Sequence[Source]) -> None:
    """Before another attempt: say so, drop the connections (they may be broken), back off."""
    options = run.options
    delay = options.backoff * 2 ** (attempt - 1) * (1 + random.random())
    run.listen(
        Note(f"{message}; retrying in {delay:.1f}s (attempt {attempt + 1} of {options.tries})", warning=True)
    )
    for src in sources:
        src.close()
    options.sleep(delay)


def _load_with_retries(
    run: _Run, table: TableSettings, sources: Sequence[Source], lock: RunLock
) -> TableResult:
    ds = sources[0].settings
    started_wall = time.monotonic()
    now: dt.datetime | None = None
    for attempt in range(1, max(1, run.options.tries) + 1):
        cancel = threading.Event()
        try:
            _newest, success = run.store.last(ds.name, table.name)
            now = sources[0].clock()
            job = TableJob(
                settings=run.settings,
                sources=sources,
                storage=run.storage,
                engine=run.engine,
                last_success=success,
                now=now,
                force=run.options.force,
                since=run.options.since,
                listen=run.listen,
                cancel=cancel,
                checkpoint=lock.check,
            )
            with sources[0].consistent_read(sources[1:], table.name):
                result = load_table(table, job)
            run.record(result, now)
            return result
        except Cancelled as exc:
            cancel.set()
            result = TableResult(ds.name, table.name, status="interrupted", error=f"interrupted ({exc})")
            result.seconds = time.monotonic() - started_wall
            run.record(result, now)
            raise
        except Exception as exc:  # one table's failure must not stop the others
            transient = isinstance(exc, PanoramaError) and exc.transient
            message = (
                str(exc) if isinstance(exc, PanoramaError) else f"unexpected {type(exc).__name__}: {exc}"
            )
            log.debug("loading %s.%s failed", ds.name, table.name, exc_info=True)
            if transient and attempt < run.options.tries:
                _pause(run, f"{ds.name}.{table.name}: {message}", attempt, sources)
                continue
            result = TableResult(ds.name, table.name, status="failed", error=message)
            result.seconds = time.monotonic() - started_wall
            run.record(result, now)
            return result
    raise AssertionError("unreachable")


def _failed(run: _Run, ds: DatasourceSettings, table: TableSettings, error: str) -> TableResult:
    result = TableResult(ds.name, table.name, status="failed", error=error)
    run.record(result, None)
    run.listen(TableFinished(result))
    return result


@dataclass
class Recorder:
    """Appends each table's run record and makes it visible in the runs table."""

    store: RunStore
    engine: Engine
    runs_raw: RawTable
    run_id: str
    listen: Listener

    def __call__(self, r: TableResult, now: dt.datetime | None) -> None:
        """Failing to write a record fails nothing else: it is reported."""
        now = now or utcnow()
        record = RunRecord(
            run_id=self.run_id,
            mode=r.mode,
            window_start=timestamp_text(r.window_start),
            partitions_written=r.partitions,
            partitions_removed=r.removed,
            rows=r.rows,
            bytes=r.bytes,
            started=timestamp_text(now),
            finished=timestamp_text(now + dt.timedelta(seconds=r.seconds)),
            status=r.status,
            error=r.error,
            layout=json.dumps(r.layout) if r.layout and r.status == "ok" else None,
            seconds=round(r.seconds, 3),
            warnings="; ".join(r.warnings) or None,
        )
        where = f"{r.datasource}.{r.table}"
        try:
            self.store.write(r.datasource, r.table, record)
        except PanoramaError as exc:
            self.listen(Note(f"{where}: could not write its run record: {exc}", warning=True))
            return
        try:
            self.engine.add_partitions(self.runs_raw, [self.store.partition(r.datasource, r.table)])
        except PanoramaError as exc:
            self.listen(
                Note(
                    f"the runs table does not show {where}'s record ({exc}); run create-datalake-tables",
                    warning=True,
                )
            )
