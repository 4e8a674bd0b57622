"""What a run reports while it works: structured events the CLI renders.

The library never prints; it calls a listener with these. A live progress line on
a terminal, timestamped log lines under cron and `--quiet` are the CLI's choice.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class TableStarted:
    datasource: str
    table: str
    mode: str  # "full", "incremental since ...", ...
    partitions: int


@dataclass(frozen=True)
class PartitionDone:
    datasource: str
    table: str
    done: int
    total: int
    rows: int  # so far, this table
    bytes: int  # so far, this table
    elapsed: float  # seconds since the table started


@dataclass(frozen=True)
class TableFinished:
    result: Any  # pipeline.TableResult


@dataclass(frozen=True)
class Note:
    """Anything else worth a line: a layout change, a retry, pruned partitions, a lock taken over."""

    text: str
    warning: bool = False


Event = TableStarted | PartitionDone | TableFinished | Note
Listener = Callable[[Event], None]


def ignore(_event: Event) -> None:
    pass
