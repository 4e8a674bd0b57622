"""`kpi_history`: every computed KPI value, long format, as a table of the lake.

One object per KPI and snapshot, so re-computing a snapshot replaces exactly its
rows and a failing KPI leaves its previous object untouched:

    [<base_prefix>/]kpi_history/[<base k>=<v>/...]snapshot_date=<YYYY-MM-DD>/kpi=<name>/<YYYYmmddTHHMMSS>.csv

The raw table `kpi_history_raw` and the typed view `kpi_history` are created on
both engines like any other table; `kpi_history_periods` turns the history into a
KPI per day, week and month by adding numerators and denominators (never by
averaging averages).
"""

from __future__ import annotations

import dataclasses
import datetime as dt

from panorama_kpi.lake.layout import partition_prefix
from panorama_kpi.naming import KPI_HISTORY_FOLDER
from panorama_kpi.settings import Field, Settings, TableSettings
from panorama_kpi.views import RawTable, quote_ident, raw_table

HISTORY_FOLDER = KPI_HISTORY_FOLDER
HISTORY_VIEW = "kpi_history"
HISTORY_RAW = "kpi_history_raw"
PERIODS_VIEW = "kpi_history_periods"
PARTITIONS = ("snapshot_date", "kpi")

#: Columns inside each object, in file order (append new ones at the end).
COLUMNS: tuple[tuple[str, str], ...] = (
    ("snapshot_time", "timestamp"),
    ("dimensions", "varchar"),  # JSON object of the dimension columns, '{}' for a scalar KPI
    ("value", "double"),
    ("numerator", "double"),
    ("denominator", "double"),
    ("unit", "varchar"),
    ("aggregation", "varchar"),  # last | sum | ratio: how a span of snapshots combines
    ("computed_at", "timestamp"),
)


def history_table(settings: Settings) -> TableSettings:
    return TableSettings(
        name=HISTORY_FOLDER,
        fields=[*(Field(n, t) for n, t in COLUMNS), Field("snapshot_date", "date"), Field("kpi")],
        partition_fields=list(PARTITIONS),
        datalake_table_name=HISTORY_RAW,
        datalake_table_view=HISTORY_VIEW,
    )


def history_raw_table(settings: Settings) -> RawTable:
    return dataclasses.replace(raw_table(settings, history_table(settings)), file_glob="*.csv")


def snapshot_partition(settings: Settings, snapshot: dt.datetime, kpi: str) -> list[tuple[str, str]]:
    base = [(p.name, p.value) for p in settings.datalake.base_partitions]
    return [*base, ("snapshot_date", snapshot.date().isoformat()), ("kpi", kpi)]


def snapshot_key(settings: Settings, snapshot: dt.datetime, kpi: str) -> str:
    parts = snapshot_partition(settings, snapshot, kpi)
    return (
        partition_prefix(settings.datalake.base_prefix, HISTORY_FOLDER, parts)
        + f"{snapshot:%Y%m%dT%H%M%S}.csv"
    )


def periods_view_sql(settings: Settings) -> str:
    """The history over days, ISO weeks (from Monday) and calendar months.

    A KPI computed several times a day (an hourly schedule) counts once per day: only
    each day's last snapshot enters a span, so adding days never counts a window twice.
    The days then combine by the KPI's aggregation: `ratio` = sum(numerator) /
    sum(denominator), `sum` = sum(value), `last` = the value of the period's last snapshot.
    """
    base = [quote_ident(p.name) for p in settings.datalake.base_partitions]
    keys = ", ".join([*base, "kpi", "dimensions"])
    last = ",\n    ".join(f"max_by({c}, snapshot_time) AS {c}" for c, _ in COLUMNS[2:7])
    days = (
        f"  SELECT {keys}, snapshot_date,\n    {last},\n"
        "    count(*) AS snapshots, min(snapshot_time) AS first_snapshot, max(snapshot_time) AS last_snapshot\n"
        f"  FROM {quote_ident(HISTORY_VIEW)}\n  GROUP BY {keys}, snapshot_date"
    )
    columns = ", ".join([keys, *(c for c, _ in COLUMNS[2:7]), "snapshots", "first_snapshot", "last_snapshot"])
    spans = "\n  UNION ALL\n".join(
        f"  SELECT '{period}' AS period, {start} AS period_start, {columns} FROM days"
        for period, start in (
            ("day", "snapshot_date"),
            ("week", "CAST(date_trunc('week', snapshot_date) AS DATE)"),
            ("month", "CAST(date_trunc('month', snapshot_date) AS DATE)"),
        )
    )
    aggregation = "max_by(aggregation, last_snapshot)"  # the latest definition's

    def combined(column: str) -> str:
        return f"CASE WHEN {aggregation} = 'last' THEN max_by({column}, last_snapshot) ELSE sum({column}) END"

    return (
        f"CREATE OR REPLACE VIEW {quote_ident(PERIODS_VIEW)} AS\n"
        f"WITH days AS (\n{days}\n),\nspans AS (\n{spans}\n)\n"
        f"SELECT {keys}, period, period_start,\n"
        "  sum(snapshots) AS snapshots, count(*) AS days,\n"
        "  min(first_snapshot) AS first_snapshot, max(last_snapshot) AS last_snapshot,\n"
        f"  CASE {aggregation}\n"
        "    WHEN 'ratio' THEN CAST(sum(numerator) AS DOUBLE) / nullif(CAST(sum(denominator) AS DOUBLE), 0)\n"
        "    WHEN 'sum' THEN sum(value)\n"
        "    ELSE max_by(value, last_snapshot) END AS value,\n"
        f"  {combined('numerator')} AS numerator,\n"
        f"  {combined('denominator')} AS denominator,\n"
        f"  max_by(unit, last_snapshot) AS unit, {aggregation} AS aggregation\n"
        f"FROM spans\nGROUP BY {keys}, period, period_start"
    )


def history_views_sql(settings: Settings) -> list[tuple[str, str]]:
    """(name, Athena CREATE VIEW) of the typed history view and its period view, in order."""
    from panorama_kpi.views import typed_view_sql

    return [
        (HISTORY_VIEW, typed_view_sql(settings, history_table(settings))),
        (PERIODS_VIEW, periods_view_sql(settings)),
    ]
