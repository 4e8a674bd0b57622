"""Rendering a run's events for people (a terminal) and for logs (cron).

On a terminal one line per table is rewritten in place (partitions done/total,
rows, MB, rate, ETA) and replaced by its result; without a terminal each event
worth keeping is a timestamped line; `quiet` keeps only failures (and the
caller's summary).
"""

from __future__ import annotations

import datetime as dt
import time
from typing import TextIO

from panorama_kpi.runs.events import Event, Note, PartitionDone, TableFinished, TableStarted


def describe(result: object) -> str:
    r = result
    if getattr(r, "error", None):
        return f"FAILED {r.datasource}.{r.table}: {r.error}"  # type: ignore[attr-defined]
    return (
        f"ok {r.datasource}.{r.table}: {r.rows} rows in {r.partitions} partition(s), "  # type: ignore[attr-defined]
        f"{r.bytes / 1e6:.1f} MB, {r.seconds:.1f}s"  # type: ignore[attr-defined]
    )


class Printer:
    def __init__(self, stream: TextIO, tty: bool, quiet: bool = False, min_interval: float = 0.2) -> None:
        self.stream, self.tty, self.quiet = stream, tty, quiet
        self.min_interval = min_interval
        self._live = False
        self._last = 0.0

    def _line(self, text: str) -> None:
        if self._live:
            self.stream.write("\r\x1b[K")
            self._live = False
        stamp = "" if self.tty else f"{dt.datetime.now():%Y-%m-%d %H:%M:%S} "
        self.stream.write(f"{stamp}{text}\n")
        self.stream.flush()

    def __call__(self, event: Event) -> None:
        if isinstance(event, TableFinished):
            failed = bool(getattr(event.result, "error", None))
            if failed or not self.quiet:
                self._line(describe(event.result))
        elif self.quiet:
            if isinstance(event, Note) and event.warning:
                self._line(event.text)
        elif isinstance(event, TableStarted):
            self._line(f"{event.datasource}.{event.table}: {event.partitions} partition(s), {event.mode}")
        elif isinstance(event, Note):
            self._line(event.text)
        elif isinstance(event, PartitionDone) and self.tty:
            now = time.monotonic()
            if now - self._last < self.min_interval and event.done < event.total:
                return
            self._last = now
            self.stream.write("\r\x1b[K" + live_text(event))
            self.stream.flush()
            self._live = True

    def close(self) -> None:
        if self._live:
            self.stream.write("\n")
            self._live = False


def live_text(e: PartitionDone) -> str:
    rate = e.bytes / e.elapsed / 1e6 if e.elapsed > 0 else 0.0
    eta = ""
    if 0 < e.done < e.total and e.elapsed > 0:
        left = e.elapsed / e.done * (e.total - e.done)
        eta = f", ETA {int(left // 60)}m{int(left % 60):02d}s"
    return (
        f"{e.datasource}.{e.table}: {e.done}/{e.total} partitions, {e.rows:,} rows, "
        f"{e.bytes / 1e6:.1f} MB, {rate:.1f} MB/s{eta}"
    )
