"""The demo dataset: deterministic, scaled, hostile where it should be, consistent, and lossless end to end."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import re
import sqlite3
from pathlib import Path
from typing import Any

import pytest
import yaml
from click.testing import CliRunner

from panorama_kpi import demo
from panorama_kpi.settings import load_settings

ROOT = Path(__file__).resolve().parent.parent
NOW = dt.datetime(2026, 3, 14, 15, 9, 26, 535897)
SMALL = 0.02
TS_RE = re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{6}$")


def content_hash(path: Path) -> str:
    """Hash of every table's rows in id order, with their storage classes (not the file's bytes)."""
    h = hashlib.sha256()
    conn = sqlite3.connect(path)
    try:
        for table in demo.SCHEMA:
            h.update(table.encode())
            for row in conn.execute(f'SELECT * FROM "{table}" ORDER BY id'):
                h.update(repr(row).encode())
    finally:
        conn.close()
    return h.hexdigest()


@pytest.fixture(scope="module")
def small(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, int]]:
    path = tmp_path_factory.mktemp("demo") / "small.sqlite3"
    return path, demo.generate(path, seed=7, scale=SMALL, now=NOW)


@pytest.fixture
def db(small: tuple[Path, dict[str, int]]) -> Any:
    conn = sqlite3.connect(small[0])
    yield conn
    conn.close()


def one(conn: sqlite3.Connection, sql: str) -> Any:
    return conn.execute(sql).fetchone()[0]


def test_same_seed_same_content(small: tuple[Path, dict[str, int]], tmp_path: Path) -> None:
    again = demo.generate(tmp_path / "again.sqlite3", seed=7, scale=SMALL, now=NOW)
    assert again == small[1]
    assert content_hash(tmp_path / "again.sqlite3") == content_hash(small[0])


def test_other_seed_or_now_other_content(small: tuple[Path, dict[str, int]], tmp_path: Path) -> None:
    demo.generate(tmp_path / "seed.sqlite3", seed=8, scale=SMALL, now=NOW)
    demo.generate(tmp_path / "now.sqlite3", seed=7, scale=SMALL, now=NOW + dt.timedelta(seconds=1))
    reference = content_hash(small[0])
    assert content_hash(tmp_path / "seed.sqlite3") != reference
    assert content_hash(tmp_path / "now.sqlite3") != reference


def test_counts_are_the_table_sizes(small: tuple[Path, dict[str, int]], db: sqlite3.Connection) -> None:
    path, counts = small
    assert list(counts) == list(demo.SCHEMA)
    for table, count in counts.items():
        assert one(db, f'SELECT COUNT(*) FROM "{table}"') == count, table
        assert count > 0, table


def test_row_counts_scale(small: tuple[Path, dict[str, int]], tmp_path: Path) -> None:
    double = demo.generate(tmp_path / "double.sqlite3", seed=7, scale=2 * SMALL, now=NOW)
    counts = small[1]
    assert counts["auth_user"] == 400 and double["auth_user"] == 800
    assert double["auth_userprofile"] == double["auth_user"]
    for table in ("student_courseenrollment", "courseware_studentmodule"):
        assert 1.5 < double[table] / counts[table] < 2.5, table


@pytest.mark.slow
def test_full_scale_sizes(tmp_path: Path) -> None:
    counts = demo.generate(tmp_path / "full.sqlite3", seed=42, scale=1.0)
    assert counts["auth_user"] == 20_000
    assert counts["course_overviews_courseoverview"] >= 50
    assert counts["courseware_studentmodule"] >= 200_000
    assert counts["student_courseenrollment"] >= 40_000
    assert counts["grades_persistentcoursegrade"] >= 10_000
    assert counts["certificates_generatedcertificate"] >= 500


def test_schema_matches_the_settings(small: tuple[Path, dict[str, int]], db: sqlite3.Connection) -> None:
    """The database, demo/settings.yaml and panorama-elt's Open edX field lists agree."""
    settings = load_settings(ROOT / "demo" / "settings.yaml")
    (source,) = settings.datasources
    assert source.type == "sqlite"
    assert [t.name for t in source.tables] == list(demo.SCHEMA)
    for table in source.tables:
        declared = [
            (r[1], r[2].lower()) for r in db.execute("SELECT * FROM pragma_table_info(?)", [table.name])
        ]
        assert declared == demo.fields(table.name)
        assert [(f.name, f.type) for f in table.fields] == declared
    studentmodule = source.tables[list(demo.SCHEMA).index("courseware_studentmodule")]
    assert studentmodule.partition_fields == ["course_id"]
    assert (studentmodule.interval, studentmodule.timestamp_field) == ("2 hour", "modified")
    lake = settings.datalake
    assert (lake.type, lake.base_prefix, lake.datalake_database) == ("local", "openedx", "panorama")
    assert [(p.name, p.type, p.value) for p in lake.base_partitions] == [
        ("lms", "varchar", "demo.example.com")
    ]
    raw = yaml.safe_load((ROOT / "demo" / "settings.yaml").read_text(encoding="utf-8"))
    assert not any(
        str(v).startswith("/") for v in (raw["datalake"]["path"], raw["datasources"][0]["database"])
    )


def test_course_ids_need_partition_encoding(db: sqlite3.Connection) -> None:
    ids = [r[0] for r in db.execute("SELECT id FROM course_overviews_courseoverview")]
    assert len(ids) == len(set(ids)) >= 5
    assert "course-v1:Org+CS101+2023_T1" in ids
    assert "edX/DemoX/Demo_Course" in ids  # an old slash-separated key
    assert all(":" in i and "+" in i for i in ids if i.startswith("course-v1:"))


def test_hostile_content_present(db: sqlite3.Connection) -> None:
    states = [r[0] for r in db.execute("SELECT state FROM courseware_studentmodule")]
    for state in states:
        json.loads(state)  # always valid JSON, like Open edX's
    assert any("\n" in s for s in states), "a pretty-printed state with raw newlines"
    assert any('\\"' in s for s in states), "escaped quotes"
    assert any("\\\\" in s for s in states), "escaped backslashes"
    assert any("\\n" in s for s in states), "JSON-escaped newlines"
    assert any("🎓" in s for s in states), "emoji"
    assert 150 < sum(map(len, states)) / len(states) < 400
    text = "".join(
        str(v)
        for row in db.execute("SELECT name, mailing_address, city, goals, bio FROM auth_userprofile")
        for v in row
    )
    assert "\r\n" in text and "\t" in text and "\\N" in text
    genders = {r[0] for r in db.execute("SELECT DISTINCT gender FROM auth_userprofile")}
    assert {None, ""} <= genders, "NULL and '' side by side"
    assert one(db, "SELECT COUNT(*) FROM student_courseaccessrole WHERE course_id = ''") > 0


def test_nulls_where_open_edx_has_them(db: sqlite3.Connection) -> None:
    assert (
        0
        < one(db, "SELECT COUNT(*) FROM auth_user WHERE last_login IS NULL")
        < one(db, "SELECT COUNT(*) FROM auth_user")
    )
    assert one(db, "SELECT COUNT(*) FROM grades_persistentcoursegrade WHERE passed_timestamp IS NULL") > 0
    assert one(db, "SELECT COUNT(*) FROM grades_persistentcoursegrade WHERE passed_timestamp IS NOT NULL") > 0
    assert one(db, "SELECT COUNT(*) FROM courseware_studentmodule WHERE grade IS NULL") > 0


def test_foreign_keys_hold(db: sqlite3.Connection) -> None:
    orphans = {
        "enrolment user": "SELECT COUNT(*) FROM student_courseenrollment e LEFT JOIN auth_user u ON u.id = e.user_id WHERE u.id IS NULL",
        "enrolment course": "SELECT COUNT(*) FROM student_courseenrollment e LEFT JOIN course_overviews_courseoverview c ON c.id = e.course_id WHERE c.id IS NULL",
        "profile user": "SELECT COUNT(*) FROM auth_userprofile p LEFT JOIN auth_user u ON u.id = p.user_id WHERE u.id IS NULL",
        "module enrolment": "SELECT COUNT(*) FROM courseware_studentmodule m LEFT JOIN student_courseenrollment e ON e.user_id = m.student_id AND e.course_id = m.course_id WHERE e.id IS NULL",
        "grade enrolment": "SELECT COUNT(*) FROM grades_persistentcoursegrade g LEFT JOIN student_courseenrollment e ON e.user_id = g.user_id AND e.course_id = g.course_id WHERE e.id IS NULL",
        "certificate grade": "SELECT COUNT(*) FROM certificates_generatedcertificate c LEFT JOIN grades_persistentcoursegrade g ON g.user_id = c.user_id AND g.course_id = c.course_id WHERE g.passed_timestamp IS NULL",
        "role user": "SELECT COUNT(*) FROM student_courseaccessrole r LEFT JOIN auth_user u ON u.id = r.user_id WHERE u.id IS NULL",
        "role course": "SELECT COUNT(*) FROM student_courseaccessrole r LEFT JOIN course_overviews_courseoverview c ON c.id = r.course_id WHERE r.course_id <> '' AND c.id IS NULL",
    }
    for what, sql in orphans.items():
        assert one(db, sql) == 0, what
    for table in demo.SCHEMA:
        assert one(db, f'SELECT COUNT(*) - COUNT(DISTINCT id) FROM "{table}"') == 0, table
    assert (
        one(
            db,
            "SELECT COUNT(*) FROM (SELECT 1 FROM student_courseenrollment GROUP BY user_id, course_id HAVING COUNT(*) > 1)",
        )
        == 0
    )
    assert (
        one(
            db,
            "SELECT COUNT(*) FROM (SELECT 1 FROM courseware_studentmodule GROUP BY student_id, module_id HAVING COUNT(*) > 1)",
        )
        == 0
    )


def test_timestamps(db: sqlite3.Connection) -> None:
    now = NOW.isoformat(" ", "microseconds")
    for table in demo.SCHEMA:
        for name, kind in demo.fields(table):
            if kind != "datetime":
                continue
            for (value,) in db.execute(f'SELECT "{name}" FROM "{table}" WHERE "{name}" IS NOT NULL'):
                assert TS_RE.match(value), (table, name, value)
    assert one(db, "SELECT MAX(modified) FROM courseware_studentmodule") <= now
    assert one(db, "SELECT COUNT(*) FROM courseware_studentmodule WHERE modified < created") == 0
    assert (
        one(
            db,
            "SELECT COUNT(*) FROM student_courseenrollment e JOIN courseware_studentmodule m "
            "ON m.student_id = e.user_id AND m.course_id = e.course_id WHERE m.created < e.created",
        )
        == 0
    )
    # Recent activity for the incremental window, in some courses only.
    since = (NOW - dt.timedelta(hours=2)).isoformat(" ", "microseconds")
    recent = one(
        db, f"SELECT COUNT(DISTINCT course_id) FROM courseware_studentmodule WHERE modified >= '{since}'"
    )
    assert 0 < recent < one(db, "SELECT COUNT(DISTINCT course_id) FROM courseware_studentmodule")


def test_freshness_stamp(tmp_path: Path) -> None:
    path = tmp_path / "fresh.sqlite3"
    assert not demo.is_fresh(path, 1, SMALL)
    demo.generate(path, seed=1, scale=SMALL)
    assert demo.is_fresh(path, 1, SMALL)
    assert not demo.is_fresh(path, 2, SMALL)
    assert not demo.is_fresh(path, 1, 2 * SMALL)
    assert not demo.is_fresh(path, 1, SMALL, max_age=dt.timedelta(0))


def test_generate_command(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "cli.sqlite3"
    demo.main(["generate", "--out", str(out), "--seed", "3", "--scale", "0.01"])
    printed = capsys.readouterr().out
    assert "courseware_studentmodule" in printed and str(out) in printed
    assert one(sqlite3.connect(out), "SELECT COUNT(*) FROM auth_user") == 200
    with pytest.raises(SystemExit):
        demo.main(["generate"])  # --out is required


def test_demo_lake_is_lossless(small: tuple[Path, dict[str, int]], tmp_path: Path) -> None:
    """The demo settings, pointed at a small database: every typed view gives back the source rows."""
    from panorama_kpi.cli import main
    from panorama_kpi.engines import open_engine

    raw = yaml.safe_load((ROOT / "demo" / "settings.yaml").read_text(encoding="utf-8"))
    raw["datalake"]["path"] = str(tmp_path / "lake")
    raw["datasources"][0]["database"] = str(small[0])
    raw["kpi_views"] = [str(ROOT / "sql" / "views")]
    settings_path = tmp_path / "settings.yaml"
    settings_path.write_text(yaml.safe_dump(raw, allow_unicode=True), encoding="utf-8")
    runner = CliRunner()
    for command in (
        ["create-datalake-tables", "--all"],
        ["extract-and-load", "--all", "--force"],
        ["create-datalake-views", "--all"],
    ):
        result = runner.invoke(main, ["--settings", str(settings_path), *command])
        assert result.exit_code == 0, (command, result.output)

    engine = open_engine(load_settings(settings_path))
    source = sqlite3.connect(small[0])
    try:
        for table in demo.SCHEMA:
            names = [n for n, _ in demo.fields(table)]
            select = ", ".join(f'"{n}"' for n in names)
            expected = source.execute(f'SELECT {select} FROM "{table}" ORDER BY id').fetchall()
            _, rows = engine.query(f"SELECT {select}, lms FROM openedx_table_{table} ORDER BY id")
            got = list(rows)
            assert len(got) == len(expected), table
            for want, row in zip(expected, got, strict=True):
                assert row[-1] == "demo.example.com"
                assert [_text(v) for v in row[:-1]] == [_text(_athena(v)) for v in want], (table, want[0])
        _, rows = engine.query("SELECT SUM(enrollments) FROM kpi_enrollments_per_course")
        assert list(rows) == [(small[1]["student_courseenrollment"],)]
        _, rows = engine.query("SELECT COUNT(*), SUM(certificates) FROM kpi_course_summary")
        courses, certificates = next(rows)
        assert courses == small[1]["course_overviews_courseoverview"]
        assert certificates == one(
            source, "SELECT COUNT(*) FROM certificates_generatedcertificate WHERE status = 'downloadable'"
        )
    finally:
        source.close()
        engine.close()


def _athena(value: Any) -> Any:
    """A source timestamp as Athena's TIMESTAMP (timestamp(3)) reads it: rounded half up to the millisecond."""
    if isinstance(value, str) and re.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{6}", value):
        t = dt.datetime.fromisoformat(value)
        return t.replace(microsecond=0) + dt.timedelta(milliseconds=(t.microsecond + 500) // 1000)
    return value


def _text(value: Any) -> Any:
    """Source and typed-view values on one footing: SQLite keeps datetimes as text, ints for tinyints."""
    if isinstance(value, dt.datetime):
        return value.isoformat(" ", "microseconds")
    if isinstance(value, bool):
        return int(value)
    if isinstance(value, int):
        return float(value)
    return value
