"""KPI views (sql/views/*.sql): valid Athena SQL, free of the constructs whose meaning
changes between Trino and DuckDB, and right on hand-made rows.

The rows live in an in-memory DuckDB, in tables named and typed like the typed views
(`openedx_table_<table>`: BIGINT, TIMESTAMP, DOUBLE, VARCHAR, plus `lms`). Two sites
share a course id, so every join and grouping must carry `lms`.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import duckdb
import pytest
import sqlglot
from sqlglot import exp

from panorama_kpi.demo import SCHEMA, fields
from panorama_kpi.engines import trino
from panorama_kpi.engines.duckdb import to_duckdb
from panorama_kpi.kpi.template import render
from panorama_kpi.views import athena_type, load_kpi_views

VIEWS_DIR = Path(__file__).resolve().parent.parent / "sql" / "views"
FILES = sorted(VIEWS_DIR.glob("*.sql"))

A, B = "a.example.com", "b.example.com"
C1 = "course-v1:Org+CS101+2024_T1"
C2 = "edX/DemoX/Demo_Course"
C3 = "course-v1:O'Reilly+X1+2024"  # no enrolments, no activity


def openedx(table: str) -> str:
    """Typed-view names of a site whose base_prefix is `openedx`."""
    return f"openedx_table_{table}"


def rendered(path: Path) -> str:
    return render(path.read_text(encoding="utf-8"), openedx, str(path)).sql


def T(text: str) -> dt.datetime:
    return dt.datetime.fromisoformat(text)


def D(text: str) -> dt.date:
    return dt.date.fromisoformat(text)


ROWS: dict[str, list[dict[str, Any]]] = {
    "auth_user": [
        dict(lms=A, id=1, date_joined=T("2024-01-01 08:00:00"), last_login=T("2024-02-01 00:00:00")),
        dict(lms=A, id=2, date_joined=T("2024-01-01 20:00:00"), last_login=None),
        dict(lms=A, id=3, date_joined=T("2024-01-03 00:00:00"), last_login=None),
        dict(lms=A, id=4, date_joined=None, last_login=None),
        dict(lms=A, id=5, date_joined=T("2024-01-03 05:00:00"), last_login=T("2024-01-04 00:00:00")),
        dict(lms=B, id=1, date_joined=T("2024-01-02 00:00:00"), last_login=T("2024-01-05 00:00:00")),
    ],
    "course_overviews_courseoverview": [
        dict(
            lms=A,
            id=C1,
            display_name='Intro to "CS" \\ 🎓',
            org="Org",
            start=T("2024-01-10 00:00:00"),
            end=T("2024-06-01 00:00:00"),
        ),
        dict(lms=A, id=C2, display_name="Demo", org="edX", start=T("2023-01-01 00:00:00"), end=None),
        dict(lms=A, id=C3, display_name="Course'3", org="O'Reilly", start=None, end=None),
        dict(lms=B, id=C1, display_name="Site B name", org="Org", start=T("2024-02-01 00:00:00"), end=None),
    ],
    "student_courseenrollment": [
        dict(
            lms=A,
            id=1,
            course_id=C1,
            user_id=1,
            created=T("2024-01-01 10:00:00"),
            is_active=1,
            mode="verified",
        ),
        dict(
            lms=A,
            id=2,
            course_id=C1,
            user_id=2,
            created=T("2024-01-01 23:59:59.999999"),
            is_active=1,
            mode="audit",
        ),
        dict(
            lms=A, id=3, course_id=C1, user_id=3, created=T("2024-01-02 00:00:00"), is_active=0, mode="audit"
        ),
        dict(
            lms=A, id=4, course_id=C2, user_id=1, created=T("2024-01-31 23:00:00"), is_active=1, mode="honor"
        ),
        dict(
            lms=A,
            id=5,
            course_id=C2,
            user_id=2,
            created=T("2024-02-01 00:30:00"),
            is_active=1,
            mode="verified",
        ),
        dict(lms=A, id=6, course_id=C1, user_id=4, created=None, is_active=1, mode="audit"),
        dict(
            lms=B,
            id=1,
            course_id=C1,
            user_id=1,
            created=T("2024-01-01 12:00:00"),
            is_active=1,
            mode="verified",
        ),
    ],
    "courseware_studentmodule": [
        dict(
            lms=A,
            id=1,
            course_id=C1,
            student_id=1,
            module_type="problem",
            grade=1.0,
            max_grade=2.0,
            state='{"attempts": 2, "done": true}',
            modified=T("2024-03-01 08:00:00"),
        ),
        dict(
            lms=A,
            id=2,
            course_id=C1,
            student_id=1,
            module_type="video",
            grade=None,
            max_grade=None,
            state='{"saved_video_position": "00:01:00"}',
            modified=T("2024-03-01 09:00:00"),
        ),
        dict(
            lms=A,
            id=3,
            course_id=C1,
            student_id=2,
            module_type="problem",
            grade=3.0,
            max_grade=3.0,
            state='{"attempts": 1}',
            modified=T("2024-03-01 23:59:59.999999"),
        ),
        dict(
            lms=A,
            id=4,
            course_id=C2,
            student_id=1,
            module_type="problem",
            grade=None,
            max_grade=None,
            state='{"attempts": 0}',
            modified=T("2024-03-02 00:00:00"),
        ),
        # max_grade 0: no score; a state that is not JSON: no attempts, and no error
        dict(
            lms=A,
            id=5,
            course_id=C2,
            student_id=3,
            module_type="problem",
            grade=0.0,
            max_grade=0.0,
            state="not json {",
            modified=T("2024-03-02 10:00:00"),
        ),
        dict(
            lms=A,
            id=6,
            course_id=C1,
            student_id=2,
            module_type="chapter",
            grade=None,
            max_grade=None,
            state='{"position": 1}',
            modified=None,
        ),
        # attempts is an object: json_extract_scalar gives NULL on Trino, JSON text on DuckDB; both count nothing
        dict(
            lms=A,
            id=7,
            course_id=C1,
            student_id=4,
            module_type="problem",
            grade=1.0,
            max_grade=4.0,
            state='{"attempts": {"nested": 1}}',
            modified=T("2024-03-02 11:00:00"),
        ),
        dict(
            lms=A,
            id=8,
            course_id=C1,
            student_id=2,
            module_type="problem",
            grade=2.0,
            max_grade=4.0,
            state='{\n "attempts": 3,\n "student_answers": {"x": "a \\"quoted\\" \\\\ 🎓"}\n}',
            modified=T("2024-03-02 12:00:00"),
        ),
        dict(
            lms=B,
            id=1,
            course_id=C1,
            student_id=1,
            module_type="video",
            grade=None,
            max_grade=None,
            state="{}",
            modified=T("2024-03-01 10:00:00"),
        ),
    ],
    "grades_persistentcoursegrade": [
        dict(
            lms=A, id=1, user_id=1, course_id=C1, percent_grade=0.8, passed_timestamp=T("2024-03-05 00:00:00")
        ),
        dict(lms=A, id=2, user_id=2, course_id=C1, percent_grade=0.3, passed_timestamp=None),
        # user 3's enrolment is inactive: not counted
        dict(
            lms=A, id=3, user_id=3, course_id=C1, percent_grade=0.9, passed_timestamp=T("2024-03-06 00:00:00")
        ),
        dict(
            lms=A,
            id=4,
            user_id=1,
            course_id=C2,
            percent_grade=0.75,
            passed_timestamp=T("2024-03-07 00:00:00"),
        ),
        dict(lms=B, id=1, user_id=1, course_id=C1, percent_grade=0.6, passed_timestamp=None),
    ],
    "certificates_generatedcertificate": [
        dict(
            lms=A,
            id=1,
            course_id=C1,
            user_id=1,
            status="downloadable",
            mode="verified",
            created_date=T("2024-03-05 00:00:00"),
        ),
        dict(
            lms=A,
            id=2,
            course_id=C1,
            user_id=5,
            status="downloadable",
            mode="honor",
            created_date=T("2024-03-04 00:00:00"),
        ),
        dict(
            lms=A,
            id=3,
            course_id=C1,
            user_id=2,
            status="audit_passing",
            mode="audit",
            created_date=T("2024-03-06 00:00:00"),
        ),
        dict(
            lms=A,
            id=4,
            course_id=C2,
            user_id=1,
            status="error",
            mode="verified",
            created_date=T("2024-03-07 00:00:00"),
        ),
        dict(lms=A, id=5, course_id=C2, user_id=2, status="generating", mode="honor", created_date=None),
        dict(
            lms=A,
            id=6,
            course_id=C2,
            user_id=3,
            status="notpassing",
            mode="audit",
            created_date=T("2024-03-08 00:00:00"),
        ),
        dict(
            lms=B,
            id=1,
            course_id=C1,
            user_id=1,
            status="downloadable",
            mode="honor",
            created_date=T("2024-03-09 00:00:00"),
        ),
    ],
}

# Expected rows, worked out by hand from ROWS above.
EXPECTED: dict[str, list[dict[str, Any]]] = {
    "kpi_enrollments_per_course": [
        dict(
            lms=A,
            course_id=C1,
            course_name='Intro to "CS" \\ 🎓',
            enrollments=4,
            active_enrollments=3,
            verified_enrollments=1,
            audit_enrollments=3,
            learners=4,
            first_enrollment=T("2024-01-01 10:00:00"),
            last_enrollment=T("2024-01-02 00:00:00"),
        ),
        dict(
            lms=A,
            course_id=C2,
            course_name="Demo",
            enrollments=2,
            active_enrollments=2,
            verified_enrollments=1,
            audit_enrollments=0,
            learners=2,
            first_enrollment=T("2024-01-31 23:00:00"),
            last_enrollment=T("2024-02-01 00:30:00"),
        ),
        dict(
            lms=B,
            course_id=C1,
            course_name="Site B name",
            enrollments=1,
            active_enrollments=1,
            verified_enrollments=1,
            audit_enrollments=0,
            learners=1,
            first_enrollment=T("2024-01-01 12:00:00"),
            last_enrollment=T("2024-01-01 12:00:00"),
        ),
    ],
    "kpi_enrollments_daily": [
        dict(
            lms=A,
            enrollment_date=D("2024-01-01"),
            course_id=C1,
            enrollments=2,
            verified_enrollments=1,
            cumulative_enrollments=2,
        ),
        dict(
            lms=A,
            enrollment_date=D("2024-01-02"),
            course_id=C1,
            enrollments=1,
            verified_enrollments=0,
            cumulative_enrollments=3,
        ),
        dict(
            lms=A,
            enrollment_date=D("2024-01-31"),
            course_id=C2,
            enrollments=1,
            verified_enrollments=0,
            cumulative_enrollments=1,
        ),
        dict(
            lms=A,
            enrollment_date=D("2024-02-01"),
            course_id=C2,
            enrollments=1,
            verified_enrollments=1,
            cumulative_enrollments=2,
        ),
        dict(
            lms=B,
            enrollment_date=D("2024-01-01"),
            course_id=C1,
            enrollments=1,
            verified_enrollments=1,
            cumulative_enrollments=1,
        ),
    ],
    "kpi_enrollments_monthly": [
        dict(lms=A, enrollment_month=D("2024-01-01"), enrollments=4, learners=3, courses=2),
        dict(lms=A, enrollment_month=D("2024-02-01"), enrollments=1, learners=1, courses=1),
        dict(lms=B, enrollment_month=D("2024-01-01"), enrollments=1, learners=1, courses=1),
    ],
    "kpi_active_users_daily": [
        dict(lms=A, activity_date=D("2024-03-01"), active_users=2, active_courses=1, modules_touched=3),
        dict(lms=A, activity_date=D("2024-03-02"), active_users=4, active_courses=2, modules_touched=4),
        dict(lms=B, activity_date=D("2024-03-01"), active_users=1, active_courses=1, modules_touched=1),
    ],
    "kpi_course_engagement": [
        dict(
            lms=A,
            course_id=C1,
            active_learners=3,
            modules_touched=6,
            problems_answered=4,
            average_problem_score=(0.5 + 1.0 + 0.25 + 0.5) / 4,
            problem_attempts=2 + 1 + 3,
            last_activity=T("2024-03-02 12:00:00"),
        ),
        dict(
            lms=A,
            course_id=C2,
            active_learners=2,
            modules_touched=2,
            problems_answered=1,
            average_problem_score=None,
            problem_attempts=0,
            last_activity=T("2024-03-02 10:00:00"),
        ),
        dict(
            lms=B,
            course_id=C1,
            active_learners=1,
            modules_touched=1,
            problems_answered=0,
            average_problem_score=None,
            problem_attempts=None,
            last_activity=T("2024-03-01 10:00:00"),
        ),
    ],
    "kpi_course_completion": [
        dict(lms=A, course_id=C1, enrolled=3, graded=2, passed=1, completion_rate=1 / 3, average_grade=0.55),
        dict(lms=A, course_id=C2, enrolled=2, graded=1, passed=1, completion_rate=0.5, average_grade=0.75),
        dict(lms=B, course_id=C1, enrolled=1, graded=1, passed=0, completion_rate=0.0, average_grade=0.6),
    ],
    "kpi_certificates_per_course": [
        dict(
            lms=A,
            course_id=C1,
            certificates=2,
            verified_certificates=1,
            honor_certificates=1,
            audit_passing=1,
            pending_or_failed=0,
            first_certificate=T("2024-03-04 00:00:00"),
            last_certificate=T("2024-03-05 00:00:00"),
        ),
        dict(
            lms=A,
            course_id=C2,
            certificates=0,
            verified_certificates=0,
            honor_certificates=0,
            audit_passing=0,
            pending_or_failed=2,
            first_certificate=None,
            last_certificate=None,
        ),
        dict(
            lms=B,
            course_id=C1,
            certificates=1,
            verified_certificates=0,
            honor_certificates=1,
            audit_passing=0,
            pending_or_failed=0,
            first_certificate=T("2024-03-09 00:00:00"),
            last_certificate=T("2024-03-09 00:00:00"),
        ),
    ],
    "kpi_registrations_daily": [
        dict(lms=A, registration_date=D("2024-01-01"), new_users=2, never_logged_in=1, total_users=2),
        dict(lms=A, registration_date=D("2024-01-03"), new_users=2, never_logged_in=1, total_users=4),
        dict(lms=B, registration_date=D("2024-01-02"), new_users=1, never_logged_in=0, total_users=1),
    ],
    "kpi_course_summary": [
        dict(
            lms=A,
            course_id=C1,
            course_name='Intro to "CS" \\ 🎓',
            org="Org",
            course_start=T("2024-01-10 00:00:00"),
            course_end=T("2024-06-01 00:00:00"),
            enrollments=4,
            active_enrollments=3,
            active_learners=3,
            passed=1,
            completion_rate=1 / 3,
            certificates=2,
        ),
        dict(
            lms=A,
            course_id=C2,
            course_name="Demo",
            org="edX",
            course_start=T("2023-01-01 00:00:00"),
            course_end=None,
            enrollments=2,
            active_enrollments=2,
            active_learners=2,
            passed=1,
            completion_rate=0.5,
            certificates=0,
        ),
        dict(
            lms=A,
            course_id=C3,
            course_name="Course'3",
            org="O'Reilly",
            course_start=None,
            course_end=None,
            enrollments=0,
            active_enrollments=0,
            active_learners=0,
            passed=0,
            completion_rate=None,
            certificates=0,
        ),
        dict(
            lms=B,
            course_id=C1,
            course_name="Site B name",
            org="Org",
            course_start=T("2024-02-01 00:00:00"),
            course_end=None,
            enrollments=1,
            active_enrollments=1,
            active_learners=1,
            passed=0,
            completion_rate=0.0,
            certificates=1,
        ),
    ],
}

#: DuckDB type of each typed-view type (None: the text stays VARCHAR).
DUCKDB_TYPES = {"BIGINT": "BIGINT", "DOUBLE": "DOUBLE", "TIMESTAMP": "TIMESTAMP", None: "VARCHAR"}


def typed_tables(con: duckdb.DuckDBPyConnection) -> None:
    """The typed views as tables: every demo table with its columns, types, and `lms`."""
    for table in SCHEMA:
        columns = [(name, DUCKDB_TYPES[athena_type(kind)]) for name, kind in fields(table)] + [
            ("lms", "VARCHAR")
        ]
        con.execute(
            f'CREATE TABLE "openedx_table_{table}" ({", ".join(f"{chr(34)}{n}{chr(34)} {t}" for n, t in columns)})'
        )
        for row in ROWS.get(table, []):
            names = ", ".join(f'"{n}"' for n in row)
            marks = ", ".join("?" for _ in row)
            con.execute(f'INSERT INTO "openedx_table_{table}" ({names}) VALUES ({marks})', list(row.values()))


@pytest.fixture(scope="module")
def con() -> Any:
    """In-memory DuckDB with the typed tables and every KPI view, translated the way the engine does."""
    connection = duckdb.connect()
    trino.install(connection)
    typed_tables(connection)
    for view in load_kpi_views([VIEWS_DIR], openedx):
        athena = f'CREATE OR REPLACE VIEW "{view.name}" AS\n{view.sql}'
        schema: dict[str, dict[str, str]] = {}
        for table, column, kind in connection.execute(
            "SELECT table_name, column_name, data_type FROM information_schema.columns WHERE table_schema = 'main'"
        ).fetchall():
            schema.setdefault(table, {})[column] = kind
        connection.execute(to_duckdb(athena, schema, "main"))
    yield connection
    connection.close()


def result(con: duckdb.DuckDBPyConnection, view: str) -> tuple[list[str], list[dict[str, Any]]]:
    cur = con.execute(f'SELECT * FROM "{view}"')
    columns = [d[0] for d in cur.description]
    rows = [dict(zip(columns, r, strict=True)) for r in cur.fetchall()]
    return columns, rows


def _key(row: dict[str, Any]) -> tuple[str, ...]:
    return tuple(str(v) for v in row.values())


def test_every_view_file_has_expected_rows() -> None:
    assert FILES, "no KPI views in sql/views"
    assert sorted(f.stem for f in FILES) == sorted(EXPECTED)


@pytest.mark.parametrize("path", FILES, ids=lambda p: p.stem)
def test_view_file_is_one_athena_select(path: Path) -> None:
    text = path.read_text(encoding="utf-8")
    first = text.splitlines()[0]
    assert first.startswith("-- ") and len(first) > 20, "the first line describes the KPI"
    assert path.stem.startswith("kpi_") and path.stem.isidentifier()
    assert "openedx_" not in text, "name typed views as {{ table('...') }}, not with a base_prefix"
    text = rendered(path)
    statements = [s for s in sqlglot.parse(text, read="athena") if s is not None]
    assert len(statements) == 1
    assert isinstance(statements[0], exp.Query), "a SELECT (the loader wraps it in CREATE VIEW)"
    (duck,) = sqlglot.transpile(text, read="athena", write="duckdb")
    assert duck.strip()


@pytest.mark.parametrize("path", FILES, ids=lambda p: p.stem)
def test_view_avoids_constructs_whose_meaning_changes(path: Path) -> None:
    """What FACTS.md lists as transpiling with another meaning on DuckDB."""
    tree = sqlglot.parse_one(rendered(path), read="athena")
    doubles = {name for table in SCHEMA for name, kind in fields(table) if athena_type(kind) == "DOUBLE"}

    def is_double(node: exp.Expression) -> bool:
        if isinstance(node, (exp.Cast, exp.TryCast)):
            return node.to.this in (exp.DataType.Type.DOUBLE, exp.DataType.Type.DECIMAL)
        if isinstance(node, exp.Column):
            return node.name in doubles
        if isinstance(node, exp.Literal):
            return not node.is_string and "." in node.this
        return False

    for div in tree.find_all(exp.Div):
        assert is_double(div.this) or is_double(div.expression), (
            f"integer division in Trino: {div.sql('athena')}"
        )
    for trunc in tree.find_all(exp.DateTrunc, exp.TimestampTrunc):
        assert isinstance(trunc.parent, exp.Cast), f"cast date_trunc's result: {trunc.sql('athena')}"
    for fn in tree.find_all(exp.Anonymous):
        assert fn.name.lower() not in {"format_datetime", "url_decode"}, fn.sql("athena")
    for node in tree.find_all(exp.DateDiff, exp.DateAdd, exp.TsOrDsAdd, exp.ApproxDistinct):
        pytest.fail(f"differs between Trino and DuckDB: {node.sql('athena')}")
    for node in tree.find_all(exp.RegexpReplace):  # back-references and lambdas do not carry over
        replacement = node.args.get("replacement")
        assert replacement is None or (
            isinstance(replacement, exp.Literal) and "$" not in replacement.this
        ), node.sql("athena")
    for node in tree.find_all(exp.JSONExtractScalar):
        assert isinstance(node.parent, exp.Try), f"wrap json_extract_scalar in try(): {node.sql('athena')}"
    for cast in tree.find_all(exp.Cast):  # CAST('12.5' AS bigint): an error in Trino, 13 in DuckDB
        if cast.to.this == exp.DataType.Type.BIGINT and not isinstance(cast, exp.TryCast):
            assert isinstance(cast.this, (exp.Sum, exp.Count, exp.Window, exp.Column)), cast.sql("athena")


@pytest.mark.parametrize("view", sorted(EXPECTED))
def test_view_results(con: duckdb.DuckDBPyConnection, view: str) -> None:
    columns, rows = result(con, view)
    expected = EXPECTED[view]
    assert columns == list(expected[0]), "columns and their order"
    assert len(rows) == len(expected), rows
    for got, want in zip(sorted(rows, key=_key), sorted(expected, key=_key), strict=True):
        for column, value in want.items():
            if isinstance(value, float):
                assert got[column] == pytest.approx(value), (column, got)
            else:
                assert got[column] == value, (column, got)
                assert type(got[column]) is type(value), (column, type(got[column]))


def test_views_depend_on_typed_views_and_each_other() -> None:
    views = {v.name: v for v in load_kpi_views([VIEWS_DIR], openedx)}
    known = {f"openedx_table_{t}" for t in SCHEMA} | set(views)
    order = list(views)
    for view in views.values():
        ctes = {c.alias for c in sqlglot.parse_one(view.sql, read="athena").find_all(exp.CTE)}
        assert view.depends_on - ctes <= known, view.name
        for dep in view.depends_on & set(views):
            assert order.index(dep) < order.index(view.name)
    assert {"kpi_enrollments_per_course", "kpi_course_completion"} <= views["kpi_course_summary"].depends_on
