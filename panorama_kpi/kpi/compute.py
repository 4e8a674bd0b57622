"""`compute-kpis`: run each KPI for one snapshot time and write its rows to `kpi_history`.

Each KPI's rows are validated while they stream into their object; a KPI that
fails (at query time, or returning no rows, a non-numeric value, the same
dimensions twice) leaves its previous object for that snapshot untouched and the
others are still written.
"""

from __future__ import annotations

import datetime as dt
import decimal
import json
import math
import re
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from panorama_kpi.engines.base import Engine
from panorama_kpi.errors import KpiError, PanoramaError
from panorama_kpi.kpi.definitions import KpiDefinition, check_syntax, load_kpis
from panorama_kpi.kpi.history import (
    COLUMNS,
    history_raw_table,
    history_views_sql,
    snapshot_key,
    snapshot_partition,
)
from panorama_kpi.kpi.template import TableNamer, table_namer
from panorama_kpi.lake.csv import encode_row, header_line, render
from panorama_kpi.lake.storage import Storage
from panorama_kpi.settings import Settings
from panorama_kpi.timeparse import utcnow

Report = Callable[[str], None]


@dataclass
class KpiResult:
    name: str  # the KPI, or the file/key that could not be read
    rows: int = 0
    error: str | None = None


def default_snapshot(now: dt.datetime | None = None) -> dt.datetime:
    """The start of the current UTC hour: a re-run within the hour replaces its snapshot."""
    now = now or utcnow()
    return now.replace(minute=0, second=0, microsecond=0)


def snapshot_param(at: dt.datetime) -> str:
    """The snapshot time as the bound parameter of `CAST(? AS TIMESTAMP)` (Athena keeps milliseconds)."""
    return f"{at:%Y-%m-%d %H:%M:%S.%f}"[:-3]


def number(value: Any, what: str) -> str | None:
    """Canonical text of a numeric result; KpiError for anything else."""
    if value is None:
        return None
    if isinstance(value, bool):
        raise KpiError(f"{what} is a boolean ({value}), not a number")
    if isinstance(value, (int, decimal.Decimal)):
        return render(value)
    if isinstance(value, float):
        if not math.isfinite(value):
            raise KpiError(f"{what} is {value}, not a finite number")
        return render(value)
    if isinstance(value, str):
        try:
            parsed = decimal.Decimal(value.strip())
        except decimal.InvalidOperation:
            parsed = None
        if parsed is not None and parsed.is_finite():
            return render(parsed)
    raise KpiError(f"{what} is not a number: {str(value)[:40]!r}")


def _dimension(value: Any) -> Any:
    return value if value is None or isinstance(value, (str, int, float)) else render(value)


class _Shape:
    """Which result column is the value, the numerator, the denominator, the dimensions."""

    def __init__(self, kpi: KpiDefinition, columns: list[str]) -> None:
        lower = [c.lower() for c in columns]

        def find(name: str | None, required: bool) -> int | None:
            if name is None:
                return None
            if name.lower() in lower:
                return lower.index(name.lower())
            if required:
                raise KpiError(f"returns no column {name!r} (its columns: {', '.join(columns)})")
            return None

        self.numerator = find(kpi.numerator, True)
        self.denominator = find(kpi.denominator, True)
        self.value = 0 if len(columns) == 1 else find(kpi.value, self.numerator is None)
        used = {self.value, self.numerator, self.denominator}
        self.dimensions = [(i, c) for i, c in enumerate(columns) if i not in used]


def _rows(
    kpi: KpiDefinition, shape: _Shape, rows: Iterator[tuple[Any, ...]], at: dt.datetime, counted: list[int]
) -> Iterator[str]:
    now = utcnow()
    seen: set[str] = set()
    yield header_line([c for c, _ in COLUMNS])
    for row in rows:
        dims = json.dumps(
            {c: _dimension(row[i]) for i, c in shape.dimensions}, ensure_ascii=False, separators=(",", ":")
        )
        if dims in seen:
            raise KpiError(f"returns two rows for the dimensions {dims}; group by every dimension column")
        seen.add(dims)
        num = number(row[shape.numerator], "the numerator") if shape.numerator is not None else None
        den = number(row[shape.denominator], "the denominator") if shape.denominator is not None else None
        if shape.value is not None:
            value = number(row[shape.value], "the value")
        elif num is not None and den is not None and decimal.Decimal(den) != 0:
            value = render(float(decimal.Decimal(num) / decimal.Decimal(den)))
        else:
            value = None
        yield encode_row([at, dims, value, num, den, kpi.unit, kpi.aggregation, now])
        counted[0] += 1
    if not counted[0]:
        raise KpiError("returned no rows")


def compute_one(
    kpi: KpiDefinition,
    tables: TableNamer,
    settings: Settings,
    engine: Engine,
    storage: Storage,
    at: dt.datetime,
) -> int:
    """Run one KPI and replace its object for the snapshot; returns the rows written."""
    rendered = check_syntax(kpi, tables, settings.datalake.base_partitions)
    columns, rows = engine.query(rendered.sql, rendered.bind(snapshot_param(at)))
    counted = [0]
    storage.write(snapshot_key(settings, at, kpi.name), _rows(kpi, _Shape(kpi, columns), rows, at, counted))
    return counted[0]


def ensure_history(settings: Settings, engine: Engine) -> None:
    """The history's raw table and views, so the first snapshot is queryable at once."""
    engine.create_raw_table(history_raw_table(settings))
    for name, sql in history_views_sql(settings):
        engine.create_view(name, sql)


def compute_kpis(
    settings: Settings,
    engine: Engine,
    storage: Storage,
    at: dt.datetime,
    only: Sequence[str] = (),
    report: Report = lambda _line: None,
) -> list[KpiResult]:
    """Compute the selected KPIs (all by default) for snapshot `at` (naive UTC)."""
    kpis, problems = load_kpis(settings)
    results = [KpiResult(name=p.split(":", 1)[0], error=p) for p in problems]
    if only:
        known = {k.name for k in kpis}
        for name in only:
            if name not in known:
                results.append(KpiResult(name, error=f"no KPI named {name!r}{_suggest(name, known)}"))
        kpis = [k for k in kpis if k.name in only]
    if not kpis and not results:
        results.append(KpiResult("kpis", error="no KPIs configured: list KPI files or entries under kpis:"))
    if kpis:
        ensure_history(settings, engine)
    tables = table_namer(settings)
    written = []
    for kpi in kpis:
        try:
            rows = compute_one(kpi, tables, settings, engine, storage, at)
        except PanoramaError as exc:
            message = re.sub(r"\s*[\r\n]+\s*", " ", str(exc))  # one line, whatever the engine said
            where = "" if message.startswith(kpi.where) else f" ({kpi.where})"
            results.append(KpiResult(kpi.name, error=f"KPI {kpi.name}{where}: {message}"))
            continue
        written.append(snapshot_partition(settings, at, kpi.name))
        results.append(KpiResult(kpi.name, rows=rows))
        report(f"computed {kpi.name}: {rows} row(s)")
    if written:  # one catalog update for the whole snapshot
        engine.add_partitions(history_raw_table(settings), written)
    return results


def _suggest(name: str, known: set[str]) -> str:
    import difflib

    close = difflib.get_close_matches(name, sorted(known), n=1)
    return f" (did you mean {close[0]!r}?)" if close else ""
