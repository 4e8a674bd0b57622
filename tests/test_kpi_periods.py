"""kpi_history_periods when a KPI is computed several times a day (an hourly schedule): each
day counts once, by its last snapshot, so a week of a `sum` or `ratio` KPI equals the same
KPI computed directly over that week, however many snapshots each day had."""

from __future__ import annotations

import datetime as dt
import sqlite3
from pathlib import Path
from typing import Any

from panorama_kpi.engines import open_engine
from panorama_kpi.settings import load_settings
from tests.test_kpis import cli, site, write  # noqa: F401 - `site` is a fixture

MONDAY = dt.datetime(2026, 11, 23)
HOUR = 20  # every day's last snapshot
WINDOW = "created >= {{ snapshot }} - INTERVAL '1' DAY AND created < {{ snapshot }}"
KPIS = {
    "daily_rows": f"-- aggregation: sum\nSELECT COUNT(*) AS value FROM {{{{ table('t') }}}} WHERE {WINDOW}",
    "daily_rows_by_group": (
        "-- aggregation: sum\nSELECT grp, COUNT(*) AS value FROM {{ table('t') }}\n"
        f"WHERE {WINDOW} GROUP BY grp"
    ),
    "daily_mean_amount": (
        "-- numerator: total\n-- denominator: n\n"
        f"SELECT SUM(amount) AS total, COUNT(amount) AS n FROM {{{{ table('t') }}}} WHERE {WINDOW}"
    ),
    "rows_total": "SELECT COUNT(*) AS value FROM {{ table('t') }} WHERE created < {{ snapshot }}",
}


def ts(value: dt.datetime) -> str:
    return value.isoformat(" ", "microseconds")


def add_rows(settings: Path, rows: list[tuple[int, str | None, float, dt.datetime]]) -> None:
    """New source rows, then a full reload of the lake."""
    conn = sqlite3.connect(settings.parent / "src.sqlite3")
    conn.executemany("INSERT INTO t VALUES (?, ?, ?, ?)", [(i, g, a, ts(c)) for i, g, a, c in rows])
    conn.commit()
    conn.close()
    result = cli(settings, "extract-and-load", "--all", "--force")
    assert result.exit_code == 0, result.output


def compute(settings: Path, at: dt.datetime) -> None:
    result = cli(settings, "compute-kpis", "--at", f"{at:%Y-%m-%d %H:%M}")
    assert result.exit_code == 0, result.output


def direct(settings: Path, sql: str, params: list[Any]) -> list[tuple[Any, ...]]:
    conn = sqlite3.connect(settings.parent / "src.sqlite3")
    try:
        return conn.execute(sql, params).fetchall()
    finally:
        conn.close()


def test_a_week_counts_each_day_once(site: Path) -> None:  # noqa: F811
    for name, sql in KPIS.items():
        write(site.parent / "kpis", f"{name}.sql", sql)
    start = MONDAY - dt.timedelta(days=1, hours=12)
    add_rows(
        site,
        [
            (100 + i, "ab"[i % 2], i % 7 + 0.5, start + dt.timedelta(hours=5 * i + i % 3))
            for i in range(45)  # every ~5 hours, from Saturday noon to the Monday after the week
        ],
    )
    wednesday = MONDAY + dt.timedelta(days=2)
    # Wednesday is computed three times, the data changing in between (late rows arrive)
    compute(site, wednesday.replace(hour=4))
    add_rows(
        site, [(200, "a", 100.0, wednesday.replace(hour=2)), (201, "b", 3.0, wednesday.replace(hour=11))]
    )
    compute(site, wednesday.replace(hour=12))
    add_rows(site, [(202, "b", 7.0, wednesday.replace(hour=16)), (203, None, 1.0, MONDAY.replace(hour=10))])
    for day in range(7):
        compute(site, (MONDAY + dt.timedelta(days=day)).replace(hour=HOUR))

    first, last = (
        MONDAY - dt.timedelta(days=1) + dt.timedelta(hours=HOUR),
        MONDAY + dt.timedelta(days=6, hours=HOUR),
    )
    span = "created >= ? AND created < ?"
    ((rows, total, counted),) = direct(
        site, f"SELECT COUNT(*), SUM(amount), COUNT(amount) FROM t WHERE {span}", [ts(first), ts(last)]
    )
    by_group = dict(
        direct(site, f"SELECT grp, COUNT(*) FROM t WHERE {span} GROUP BY grp", [ts(first), ts(last)])
    )
    ((level,),) = direct(site, "SELECT COUNT(*) FROM t WHERE created < ?", [ts(last)])

    engine = open_engine(load_settings(site))
    try:
        _, result = engine.query(
            "SELECT kpi, dimensions, value, numerator, denominator, snapshots, days FROM kpi_history_periods "
            "WHERE period = 'week' AND period_start = ? ORDER BY kpi, dimensions",
            [MONDAY.date()],
        )
        week = {(r[0], r[1]): r[2:] for r in result}
        _, result = engine.query(
            "SELECT kpi, value, snapshots FROM kpi_history_periods "
            "WHERE period = 'day' AND period_start = ? AND dimensions = '{}'",
            [wednesday.date()],
        )
        day = {r[0]: r[1:] for r in result}
    finally:
        engine.close()

    assert week[("daily_rows", "{}")] == (rows, None, None, 9, 7)
    assert {k[1]: v[0] for k, v in week.items() if k[0] == "daily_rows_by_group"} == {
        '{"grp":"a"}': by_group["a"],
        '{"grp":"b"}': by_group["b"],
        '{"grp":null}': by_group[None],
    }
    value, numerator, denominator, snapshots, days = week[("daily_mean_amount", "{}")]
    assert (numerator, denominator, snapshots, days) == (total, counted, 9, 7)
    assert value == total / counted
    assert week[("rows_total", "{}")][:1] == (level,)
    # Wednesday alone is its last snapshot: the 24 hours before 20:00
    ((wednesday_rows,),) = direct(
        site,
        f"SELECT COUNT(*) FROM t WHERE {span}",
        [ts(wednesday.replace(hour=HOUR) - dt.timedelta(days=1)), ts(wednesday.replace(hour=HOUR))],
    )
    assert day["daily_rows"] == (wednesday_rows, 3)
