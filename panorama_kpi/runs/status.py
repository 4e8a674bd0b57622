"""`status`: how fresh each table is, from the run records (no source is contacted)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass

from panorama_kpi.lake.storage import Storage
from panorama_kpi.runs.manifest import load_counts, manifest_key
from panorama_kpi.runs.records import RunStore
from panorama_kpi.selection import Selected
from panorama_kpi.settings import Settings
from panorama_kpi.timeparse import utcnow


@dataclass
class TableStatus:
    datasource: str
    table: str
    last_success: dt.datetime | None  # when the last successful load finished (UTC)
    age_seconds: float | None
    rows: int | None  # rows the lake holds for this table (this site)
    partitions: int | None
    last_status: str | None  # of the newest run: ok / failed / interrupted
    last_error: str | None
    last_run: dt.datetime | None

    def stale(self, max_age: dt.timedelta) -> bool:
        return self.age_seconds is None or self.age_seconds > max_age.total_seconds()


def table_status(
    settings: Settings, storage: Storage, selected: Selected, now: dt.datetime | None = None
) -> list[TableStatus]:
    lake = settings.datalake
    base = [(p.name, p.value) for p in lake.base_partitions]
    store = RunStore(storage, lake.base_prefix, base)
    now = now or utcnow()
    out = []
    for ds, table in selected:
        newest, success = store.last(ds.name, table.name)
        finished = success.finished_at or success.started_at if success else None
        rows: int | None = success.rows if success else None
        partitions: int | None = success.partitions_written if success else None
        if table.partition_fields and success:
            counts = load_counts(storage, manifest_key(lake.base_prefix, base, ds.name, table.name))
            if counts is not None:
                rows, partitions = sum(counts.values()), len(counts)
        out.append(
            TableStatus(
                datasource=ds.name,
                table=table.name,
                last_success=finished,
                age_seconds=None if finished is None else max(0.0, (now - finished).total_seconds()),
                rows=rows,
                partitions=partitions,
                last_status=newest.status if newest else None,
                last_error=newest.error if newest and newest.status != "ok" else None,
                last_run=newest.started_at if newest else None,
            )
        )
    return out


def age_text(seconds: float | None) -> str:
    if seconds is None:
        return "never"
    s = int(seconds)
    if s < 120:
        return f"{s}s"
    if s < 7200:
        return f"{s // 60}m"
    if s < 172800:
        return f"{s // 3600}h{(s % 3600) // 60:02d}m"
    return f"{s // 86400}d{(s % 86400) // 3600}h"


def rows_for_display(statuses: Sequence[TableStatus]) -> tuple[list[str], list[tuple[object, ...]]]:
    columns = [
        "datasource",
        "table",
        "last_success",
        "age",
        "rows",
        "partitions",
        "last_status",
        "last_error",
    ]
    rows: list[tuple[object, ...]] = [
        (
            s.datasource,
            s.table,
            None if s.last_success is None else f"{s.last_success:%Y-%m-%d %H:%M:%S}",
            age_text(s.age_seconds),
            s.rows,
            s.partitions,
            s.last_status,
            s.last_error,
        )
        for s in statuses
    ]
    return columns, rows
