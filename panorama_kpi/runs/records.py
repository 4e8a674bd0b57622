"""Run records: one small CSV object per run and table, never rewritten.

What the next run needs (the incremental watermark, the layout the table's
objects were written with) is derived from the newest successful record, so a
crashed run can never leave a half-updated state behind: its record is simply
missing or says `failed`. The records are a table of the lake like any other
(`<base_prefix>_runs`), written in the CSV contract under the site's own prefix:

    [<base_prefix>/]_panorama_runs/[<base k>=<v>/...]datasource=<ds>/table_name=<t>/<run_id>.csv
"""

from __future__ import annotations

import csv
import datetime as dt
import json
import logging
import os
import secrets
import socket
from collections.abc import Iterator
from dataclasses import dataclass, field, fields
from typing import Any

from panorama_kpi.errors import PanoramaError
from panorama_kpi.lake.csv import decode_raw, encode_row, header_line
from panorama_kpi.lake.layout import META_PREFIX, partition_prefix
from panorama_kpi.lake.storage import Storage

log = logging.getLogger(__name__)

#: Folder (under the site's base prefix) holding the run records.
RUNS_FOLDER = "_panorama_runs"
#: Partition columns of the runs table after the site's base partitions.
RUN_PARTITIONS = ("datasource", "table_name")
#: How many of a table's newest records are read looking for its last success.
HISTORY_LIMIT = 500


def new_run_id(now: dt.datetime | None = None) -> str:
    """Sortable by start time (UTC), unique across machines."""
    now = now or dt.datetime.now(dt.UTC)
    return f"{now:%Y%m%dT%H%M%S.%fZ}-{secrets.token_hex(3)}"


def timestamp_text(value: dt.datetime | None) -> str | None:
    """A run record's timestamp column (naive UTC, microseconds)."""
    return None if value is None else f"{value:%Y-%m-%d %H:%M:%S.%f}"


@dataclass
class RunRecord:
    """What one run did to one table. Column order is the file's (append new ones at the end)."""

    run_id: str
    mode: str = "full"  # full | incremental | since
    window_start: str | None = None
    partitions_written: int = 0
    partitions_removed: int = 0
    rows: int = 0
    bytes: int = 0
    started: str | None = None  # on the source's clock (UTC)
    finished: str | None = None
    status: str = "ok"  # ok | failed | interrupted
    error: str | None = None
    host: str = field(default_factory=socket.gethostname)
    pid: int = field(default_factory=os.getpid)
    layout: str | None = None  # JSON: base partitions, partition fields, columns
    seconds: float = 0.0
    warnings: str | None = None  # what the source noticed in the data (e.g. values not of their type)

    @classmethod
    def columns(cls) -> list[str]:
        return [f.name for f in fields(cls)]

    def values(self) -> list[Any]:
        return [getattr(self, c) for c in self.columns()]

    @property
    def started_at(self) -> dt.datetime | None:
        return _parse_ts(self.started)

    @property
    def finished_at(self) -> dt.datetime | None:
        return _parse_ts(self.finished)

    @property
    def layout_data(self) -> dict[str, Any] | None:
        try:
            data = json.loads(self.layout) if self.layout else None
        except ValueError:
            return None
        return data if isinstance(data, dict) else None


def _parse_ts(text: str | None) -> dt.datetime | None:
    if not text:
        return None
    try:
        return dt.datetime.fromisoformat(text).replace(tzinfo=None)
    except ValueError:
        return None


#: Declared types of the typed view over the records.
RECORD_TYPES = {
    "partitions_written": "bigint",
    "partitions_removed": "bigint",
    "rows": "bigint",
    "bytes": "bigint",
    "pid": "bigint",
    "seconds": "double",
    "window_start": "timestamp",
    "started": "timestamp",
    "finished": "timestamp",
}


def parse_record(text: str) -> RunRecord:
    """Read one record object back (header + one line in the CSV contract)."""
    # split on LF only: the contract escapes every LF and CR inside values, while
    # str.splitlines would also break at form feeds and other separators that are data
    physical = text.split("\n")
    if physical and physical[-1] == "":
        physical.pop()
    lines = list(csv.reader(physical, escapechar="\\", doublequote=False, strict=True))
    if len(lines) != 2:
        raise ValueError(f"expected a header and one row, got {len(lines)} lines")
    names = [decode_raw(n) for n in lines[0]]
    values = dict(zip(names, [decode_raw(v) for v in lines[1]], strict=True))
    known = {f.name: f for f in fields(RunRecord)}
    kwargs: dict[str, Any] = {}
    for name, value in values.items():
        if name not in known or value is None:
            continue
        kind = known[name].type
        kwargs[name] = int(value) if kind == "int" else float(value) if kind == "float" else value
    if "run_id" not in kwargs:
        raise ValueError("no run_id")
    return RunRecord(**kwargs)


class RunStore:
    """The records of one site (base prefix + base partitions) in one lake."""

    def __init__(self, storage: Storage, base_prefix: str, base: list[tuple[str, str]]) -> None:
        self.storage = storage
        self.base_prefix = base_prefix
        self.base = base

    @property
    def prefix(self) -> str:
        """Key prefix of the runs table (its location)."""
        return partition_prefix(self.base_prefix, RUNS_FOLDER, [])

    def partition(self, datasource: str, table: str) -> list[tuple[str, str]]:
        return [*self.base, ("datasource", datasource), ("table_name", table)]

    def _folder(self, datasource: str, table: str) -> str:
        return partition_prefix(self.base_prefix, RUNS_FOLDER, self.partition(datasource, table))

    def write(self, datasource: str, table: str, record: RunRecord) -> str:
        key = self._folder(datasource, table) + f"{record.run_id}.csv"
        self.storage.write(key, [header_line(RunRecord.columns()), encode_row(record.values())])
        return key

    def history(self, datasource: str, table: str, limit: int = HISTORY_LIMIT) -> Iterator[RunRecord]:
        """The table's records, newest first; a damaged one is skipped with a warning."""
        folder = self._folder(datasource, table)
        keys = sorted((k for k in self.storage.list(folder) if k.endswith(".csv")), reverse=True)
        for key in keys[:limit]:
            try:
                text = self.storage.read_text(key)
                if text is not None:
                    yield parse_record(text)
            except (ValueError, TypeError, csv.Error, UnicodeDecodeError, OSError, PanoramaError) as exc:
                log.warning("ignoring damaged run record %s: %s", key, exc)

    def last(self, datasource: str, table: str) -> tuple[RunRecord | None, RunRecord | None]:
        """(newest record, newest successful record)."""
        newest = success = None
        for record in self.history(datasource, table):
            newest = newest or record
            if record.status == "ok":
                success = record
                break
        if success is None:
            success = legacy_record(self.storage, datasource, table)
        return newest, success


def legacy_record(storage: Storage, datasource: str, table: str) -> RunRecord | None:
    """The load record of versions before run records (one JSON per table), if any."""
    try:
        text = storage.read_text(f"{META_PREFIX}/state/{datasource}/{table}.json")
        data = json.loads(text) if text else None
        if not isinstance(data, dict) or not isinstance(data.get("last_success_start"), str):
            return None
        started = dt.datetime.fromisoformat(data["last_success_start"])
    except (ValueError, PanoramaError, OSError) as exc:
        log.warning("ignoring damaged legacy load record of %s.%s: %s", datasource, table, exc)
        return None
    layout = data.get("layout")
    return RunRecord(
        run_id="legacy",
        started=timestamp_text(started),
        layout=json.dumps(layout) if isinstance(layout, dict) else None,
    )
