"""The shipped KPI pack (sql/kpis) on the demo dataset: each KPI in kpi_history equals the
same number computed directly on the source database (SQLite here, MariaDB and PostgreSQL
for two of them), never through the lake; and a ratio KPI aggregated over a week from the
history equals the ratio computed over that week directly.
"""

from __future__ import annotations

import datetime as dt
import json
import math
import sqlite3
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from click.testing import CliRunner

from panorama_kpi import demo
from panorama_kpi.cli import main
from panorama_kpi.engines import open_engine
from panorama_kpi.settings import load_settings

ROOT = Path(__file__).resolve().parent.parent
KPI_DIR = ROOT / "sql" / "kpis"
NOW = dt.datetime(2026, 3, 14, 15, 9, 26, 535897)  # a Saturday
#: A full ISO week (Monday to Sunday) of daily snapshots at 00:00, plus the day after it.
WEEK = [dt.datetime(2026, 3, 2) + dt.timedelta(days=i) for i in range(7)]
SNAPSHOTS = [*WEEK, dt.datetime(2026, 3, 14, 12)]

Expected = dict[tuple[tuple[str, Any], ...], tuple[float | None, float | None, float | None]]


def ts(value: dt.datetime) -> str:
    """The demo database's text form of a timestamp (compares correctly as text)."""
    return value.isoformat(" ", "microseconds")


def run(settings: Path, *args: str) -> Any:
    return CliRunner().invoke(main, ["--settings", str(settings), *args])


def build_lake(tmp: Path, database: Path, datasource: dict[str, Any] | None = None) -> Path:
    """The demo settings pointed at `database` (or another datasource), loaded into a lake in `tmp`."""
    raw = yaml.safe_load((ROOT / "demo" / "settings.yaml").read_text(encoding="utf-8"))
    raw["datalake"]["path"] = str(tmp / "lake")
    raw["kpi_views"] = [str(ROOT / "sql" / "views")]
    raw["kpis"] = [str(KPI_DIR)]
    if datasource is None:
        raw["datasources"][0]["database"] = str(database)
    else:  # a few tables only: the views over the others are left out
        raw["kpi_views"] = []
        tables = [t for t in raw["datasources"][0]["tables"] if t["name"] in datasource["tables"]]
        raw["datasources"] = [{**datasource, "tables": tables}]
    path = tmp / "settings.yaml"
    path.write_text(yaml.safe_dump(raw, allow_unicode=True), encoding="utf-8")
    return build(path)


def build(settings: Path) -> Path:
    """Tables, a full load and the views of a site's settings."""
    for command in (
        ["create-datalake-tables", "--all"],
        ["extract-and-load", "--all", "--force"],
        ["create-datalake-views", "--all"],
    ):
        result = run(settings, *command)
        assert result.exit_code == 0, (command, result.output)
    return settings


@pytest.fixture(scope="module")
def lake(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[tuple[Path, sqlite3.Connection, dict[dt.datetime, dict[str, Expected]]]]:
    tmp = tmp_path_factory.mktemp("kpi")
    database = tmp / "demo.sqlite3"
    demo.generate(database, seed=7, scale=0.02, now=NOW)
    settings = build_lake(tmp, database)
    for snapshot in SNAPSHOTS:
        result = run(settings, "compute-kpis", "--at", f"{snapshot:%Y-%m-%d %H:%M}")
        assert result.exit_code == 0, result.output
        assert "12 KPI(s) computed" in result.output, result.output
    conn = sqlite3.connect(database)
    yield settings, conn, history(settings)
    conn.close()


def history(settings: Path) -> dict[dt.datetime, dict[str, Expected]]:
    """kpi_history as {snapshot: {kpi: {dimensions: (value, numerator, denominator)}}}."""
    engine = open_engine(load_settings(settings))
    try:
        _, rows = engine.query(
            "SELECT snapshot_time, kpi, dimensions, value, numerator, denominator FROM kpi_history"
        )
        out: dict[dt.datetime, dict[str, Expected]] = {}
        for snapshot, name, dims, value, num, den in rows:
            kpis = out.setdefault(snapshot, {})
            kpis.setdefault(name, {})[tuple(json.loads(dims).items())] = (value, num, den)
        return out
    finally:
        engine.close()


# ---------------------------------------------------------------- independent computations


def counts(conn: Any, sql: str, params: list[Any], dimension: str | None = None) -> Expected:
    """{dims: (value, None, None)} from rows (dimension value, count) or (count,)."""
    out: Expected = {}
    for row in conn.execute(sql, params).fetchall():
        key = ((dimension, row[0]),) if dimension else ()
        out[key] = (float(row[-1]), None, None)
    return out


def enrollments_per_course(conn: Any, s: dt.datetime) -> Expected:
    return counts(
        conn,
        "SELECT course_id, COUNT(*) FROM student_courseenrollment WHERE created < ? GROUP BY course_id",
        [ts(s)],
        "course_id",
    )


def new_enrollments_daily(conn: Any, s: dt.datetime) -> Expected:
    sql = "SELECT COUNT(*) FROM student_courseenrollment WHERE created >= ? AND created < ?"
    return counts(conn, sql, [ts(s - dt.timedelta(days=1)), ts(s)])


def enrollments_by_status(conn: Any, s: dt.datetime) -> Expected:
    out: Expected = {}
    sql = "SELECT is_active, COUNT(*) FROM student_courseenrollment WHERE created < ? GROUP BY is_active"
    for active, n in conn.execute(sql, [ts(s)]):
        key = (("status", "active" if active == 1 else "inactive"),)
        out[key] = (out.get(key, (0.0, None, None))[0] + n, None, None)  # type: ignore[operator]
    return out


def new_users_daily(conn: Any, s: dt.datetime) -> Expected:
    sql = "SELECT COUNT(*) FROM auth_user WHERE date_joined >= ? AND date_joined < ?"
    return counts(conn, sql, [ts(s - dt.timedelta(days=1)), ts(s)])


def total_users(conn: Any, s: dt.datetime) -> Expected:
    return counts(conn, "SELECT COUNT(*) FROM auth_user WHERE date_joined < ?", [ts(s)])


def active_learners(days: int) -> Callable[[Any, dt.datetime], Expected]:
    def compute(conn: Any, s: dt.datetime) -> Expected:
        sql = "SELECT COUNT(DISTINCT student_id) FROM courseware_studentmodule WHERE modified >= ? AND modified < ?"
        return counts(conn, sql, [ts(s - dt.timedelta(days=days)), ts(s)])

    return compute


def course_completion_rate(conn: Any, s: dt.datetime) -> Expected:
    out: Expected = {}
    sql = (
        "SELECT e.course_id, COUNT(*), SUM(CASE WHEN g.passed_timestamp < ? THEN 1 ELSE 0 END) "
        "FROM student_courseenrollment e LEFT JOIN grades_persistentcoursegrade g "
        "ON g.course_id = e.course_id AND g.user_id = e.user_id "
        "WHERE e.is_active = 1 AND e.created < ? GROUP BY e.course_id"
    )
    for course, enrolled, passed in conn.execute(sql, [ts(s), ts(s)]):
        out[(("course_id", course),)] = (passed / enrolled, float(passed), float(enrolled))
    return out


def grade_distribution(conn: Any, s: dt.datetime) -> Expected:
    deciles: dict[int, int] = {}
    sql = "SELECT percent_grade FROM grades_persistentcoursegrade WHERE created < ? AND percent_grade IS NOT NULL"
    for (grade,) in conn.execute(sql, [ts(s)]):
        decile = min(math.floor(grade * 10), 9)
        deciles[decile] = deciles.get(decile, 0) + 1
    return {(("grade_decile", d),): (float(n), None, None) for d, n in deciles.items()}


def certificates_issued(conn: Any, s: dt.datetime) -> Expected:
    sql = (
        "SELECT mode, COUNT(*) FROM certificates_generatedcertificate "
        "WHERE status = 'downloadable' AND created_date < ? GROUP BY mode"
    )
    return counts(conn, sql, [ts(s)], "mode")


def enrollments_by_country(conn: Any, s: dt.datetime) -> Expected:
    out: dict[str, int] = {}
    sql = (
        "SELECT p.country FROM student_courseenrollment e LEFT JOIN auth_userprofile p ON p.user_id = e.user_id "
        "WHERE e.created < ?"
    )
    for (country,) in conn.execute(sql, [ts(s)]):
        key = country if country else "unknown"
        out[key] = out.get(key, 0) + 1
    return {(("country", c),): (float(n), None, None) for c, n in out.items()}


def problem_score(conn: Any, start: dt.datetime, end: dt.datetime) -> tuple[float | None, ...]:
    sql = (
        "SELECT SUM(grade), SUM(max_grade) FROM courseware_studentmodule WHERE module_type = 'problem' "
        "AND max_grade > 0 AND grade IS NOT NULL AND modified >= ? AND modified < ?"
    )
    points, possible = conn.execute(sql, [ts(start), ts(end)]).fetchone()
    value = points / possible if possible else None
    return (value, points, possible)


def problem_score_daily(conn: Any, s: dt.datetime) -> Expected:
    return {(): problem_score(conn, s - dt.timedelta(days=1), s)}  # type: ignore[dict-item]


EXPECTED: dict[str, Callable[[Any, dt.datetime], Expected]] = {
    "enrollments_per_course": enrollments_per_course,
    "new_enrollments_daily": new_enrollments_daily,
    "enrollments_by_status": enrollments_by_status,
    "new_users_daily": new_users_daily,
    "total_users": total_users,
    "active_learners_7d": active_learners(7),
    "active_learners_30d": active_learners(30),
    "course_completion_rate": course_completion_rate,
    "grade_distribution": grade_distribution,
    "certificates_issued": certificates_issued,
    "enrollments_by_country": enrollments_by_country,
    "problem_score_daily": problem_score_daily,
}


def same(got: Expected, want: Expected) -> None:
    assert sorted(got) == sorted(want)
    for key, values in want.items():
        for g, w in zip(got[key], values, strict=True):
            if w is None:
                assert g is None, (key, got[key], values)
            else:
                assert g == pytest.approx(w, rel=1e-12), (key, got[key], values)


def test_every_shipped_kpi_has_an_independent_check() -> None:
    assert sorted(p.stem for p in KPI_DIR.glob("*.sql")) == sorted(EXPECTED)


@pytest.mark.parametrize("kpi", sorted(EXPECTED))
def test_shipped_kpi_equals_the_source(lake: tuple[Path, sqlite3.Connection, Any], kpi: str) -> None:
    _settings, conn, lake_history = lake
    assert sorted(lake_history) == SNAPSHOTS
    nonzero = False
    for snapshot in SNAPSHOTS:
        want = EXPECTED[kpi](conn, snapshot)
        got = lake_history[snapshot].get(kpi, {})
        same(got, want)
        nonzero = nonzero or any(v[0] for v in want.values())
    assert nonzero, f"{kpi} is zero or NULL at every snapshot: the check proves nothing"


def test_a_ratio_over_a_week_sums_its_parts(lake: tuple[Path, sqlite3.Connection, Any]) -> None:
    """problem_score_daily aggregated over the week from the history (kpi_history_periods) equals
    the score computed over that week directly; averaging the daily ratios would not."""
    settings, conn, _history = lake
    engine = open_engine(load_settings(settings))
    try:
        _, rows = engine.query(
            "SELECT kpi, value, numerator, denominator, snapshots FROM kpi_history_periods "
            "WHERE period = 'week' AND period_start = DATE '2026-03-02' "
            "AND kpi IN ('problem_score_daily', 'new_enrollments_daily', 'total_users')"
        )
        week = {r[0]: r[1:] for r in rows}
    finally:
        engine.close()
    # the week's snapshots (Monday to Sunday, 00:00) count the days from Sunday 1 March to Saturday 7 March
    value, points, possible = problem_score(conn, WEEK[0] - dt.timedelta(days=1), WEEK[-1])
    assert week["problem_score_daily"] == (pytest.approx(value), points, possible, 7)
    daily = [problem_score(conn, s - dt.timedelta(days=1), s)[0] for s in WEEK]
    assert sum(d for d in daily if d is not None) / len(daily) != pytest.approx(value)  # the wrong way
    enrolled = new_enrollments_daily(conn, WEEK[-1])  # a sum KPI: the week's enrolments
    span = counts(
        conn,
        "SELECT COUNT(*) FROM student_courseenrollment WHERE created >= ? AND created < ?",
        [ts(WEEK[0] - dt.timedelta(days=1)), ts(WEEK[-1])],
    )
    assert enrolled and week["new_enrollments_daily"][0] == span[()][0]
    assert week["total_users"][0] == total_users(conn, WEEK[-1])[()][0]  # a level: its last value


SERVER_TABLES = ("student_courseenrollment", "courseware_studentmodule")
COLUMN_TYPES = {
    "mariadb": {"int": "INT", "varchar": "VARCHAR(255)", "datetime": "DATETIME(6)", "tinyint": "TINYINT"},
    "postgres": {"int": "INTEGER", "varchar": "TEXT", "datetime": "TIMESTAMP(6)", "tinyint": "SMALLINT"},
}
COLUMN_TYPES["mariadb"].update(longtext="LONGTEXT", double="DOUBLE")
COLUMN_TYPES["postgres"].update(longtext="TEXT", double="DOUBLE PRECISION")


@pytest.mark.parametrize("kind", ["mysql", "postgresql"])
def test_two_kpis_equal_the_source_on_real_servers(
    request: pytest.FixtureRequest, tmp_path: Path, kind: str
) -> None:
    """enrollments_per_course and problem_score_daily over a MariaDB / PostgreSQL copy of the
    demo tables, checked with SQL run on that server."""
    server = request.getfixturevalue("mysql_server" if kind == "mysql" else "pg_server")
    source = tmp_path / "demo.sqlite3"
    demo.generate(source, seed=11, scale=0.02, now=NOW)
    lite = sqlite3.connect(source)
    conn = server.connect()
    cur = conn.cursor()
    try:
        for table in SERVER_TABLES:
            columns = demo.fields(table)
            cur.execute(f"DROP TABLE IF EXISTS {table}")
            types = COLUMN_TYPES[server.kind]
            cur.execute(f"CREATE TABLE {table} ({', '.join(f'{n} {types[t]}' for n, t in columns)})")
            names = ", ".join(n for n, _ in columns)
            rows = lite.execute(f"SELECT {names} FROM {table}").fetchall()
            marks = ", ".join(["%s"] * len(columns))
            cur.executemany(f"INSERT INTO {table} ({names}) VALUES ({marks})", rows)
        datasource = {"type": kind, "name": "lms", **server.settings_dict(), "tables": SERVER_TABLES}
        settings = build_lake(tmp_path, source, datasource)
        at = dt.datetime(2026, 3, 10)
        result = run(
            settings,
            "compute-kpis",
            "--kpi",
            "enrollments_per_course,problem_score_daily",
            "--at",
            "2026-03-10",
        )
        assert result.exit_code == 0, result.output
        got = history(settings)[at]
        cur.execute(
            "SELECT course_id, COUNT(*) FROM student_courseenrollment WHERE created < %s GROUP BY course_id",
            (at,),
        )
        want: Expected = {(("course_id", c),): (float(n), None, None) for c, n in cur.fetchall()}
        same(got["enrollments_per_course"], want)
        cur.execute(
            "SELECT SUM(grade), SUM(max_grade) FROM courseware_studentmodule WHERE module_type = 'problem' "
            "AND max_grade > 0 AND grade IS NOT NULL AND modified >= %s AND modified < %s",
            (at - dt.timedelta(days=1), at),
        )
        points, possible = cur.fetchone()
        assert possible, "no problem answered that day: the check proves nothing"
        same(
            got["problem_score_daily"],
            {(): (float(points) / float(possible), float(points), float(possible))},
        )
    finally:
        for table in SERVER_TABLES:
            cur.execute(f"DROP TABLE IF EXISTS {table}")
        conn.close()
        lite.close()
