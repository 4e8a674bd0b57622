"""Open edX course structures: a realistic split-modulestore course flattened into
panorama-elt's columns, active versions read from MongoDB or from MySQL."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import bson
import pytest
from click.testing import CliRunner

from panorama_kpi.cli import main
from panorama_kpi.settings import load_settings
from panorama_kpi.sources import open_source
from panorama_kpi.sources.course_structures import COLUMNS
from tests.lake_helpers import load_all, run
from tests.mongo_standin import MongoStandin

PUBLISHED = bson.ObjectId("65e1f0a0aaaaaaaaaaaaaaaa")
DRAFT = bson.ObjectId("65e1f0a0bbbbbbbbbbbbbbbb")
MISSING = bson.ObjectId("65e1f0a0cccccccccccccccc")
DEF_P2 = bson.ObjectId("65e1f0a0dddddddddddddd01")
DEF_LP1 = bson.ObjectId("65e1f0a0dddddddddddddd02")
COURSE = "course-v1:Org+CS101+2024_T1"
NAME = 'Intro, "101"'
HTML_NAME = "Text, with\nline break \\ and é"


def block(
    block_type: str, block_id: str, name: str, children: list[tuple[str, str]] = (), **fields: Any
) -> dict[str, Any]:  # type: ignore[assignment]
    f: dict[str, Any] = {"display_name": name, **fields}
    if children:
        f["children"] = [list(c) for c in children]
    return {
        "block_type": block_type,
        "block_id": block_id,
        "definition": fields.pop("definition", bson.ObjectId()),
        "fields": f,
        "edit_info": {"edited_by": 3},
    }


def modulestore() -> dict[str, list[dict[str, Any]]]:
    blocks = [
        block("course", "course", NAME, [("chapter", "ch1"), ("chapter", "ch2")]),
        block("chapter", "ch1", "Week 1", [("sequential", "s1")]),
        block("chapter", "ch2", "Empty week"),
        block("sequential", "s1", "Lesson", [("vertical", "v1")]),
        block(
            "vertical",
            "v1",
            "Unit",
            [("problem", "p1"), ("problem", "p2"), ("html", "h1"), ("library_content", "lib1")],
        ),
        block("problem", "p1", "Quiz 1", weight=2.0),
        block("problem", "p2", "Quiz 2"),
        block("html", "h1", HTML_NAME),
        block("library_content", "lib1", "Library block", [("problem", "lp1")]),
        block("problem", "lp1", "Lib problem"),
    ]
    blocks[6]["definition"] = DEF_P2
    blocks[9]["definition"] = DEF_LP1
    return {
        "modulestore.active_versions": [
            {
                "_id": bson.ObjectId(),
                "org": "Org",
                "course": "CS101",
                "run": "2024_T1",
                "versions": {"published-branch": PUBLISHED, "draft-branch": DRAFT},
            },
            {
                "_id": bson.ObjectId(),
                "org": "Org",
                "course": "LIB",
                "run": "library",
                "versions": {"library": bson.ObjectId()},
            },  # a library: no published branch
            {
                "_id": bson.ObjectId(),
                "org": "Org",
                "course": "GONE",
                "run": "1",
                "versions": {"published-branch": MISSING},
            },  # structure missing: skipped
        ],
        "modulestore.structures": [
            {"_id": DRAFT, "blocks": [block("course", "course", "draft only")]},
            {"_id": PUBLISHED, "root": ["course", "course"], "blocks": blocks},
        ],
        "modulestore.definitions": [
            {
                "_id": DEF_P2,
                "block_type": "problem",
                "fields": {
                    "data": "<problem><multiplechoiceresponse><choicegroup/></multiplechoiceresponse>"
                    "<p>text</p><stringresponse answer='x'/><choicetextresponse/></problem>"
                },
            },
            {"_id": DEF_LP1, "block_type": "problem", "fields": {}},
        ],
    }


def loc(block_type: str, block_id: str) -> str:
    return f"block-v1:Org+CS101+2024_T1+type@{block_type}+block@{block_id}"


# module_location, parent, block_type, block_id, display_name, course_name, chapter,
# sequential, vertical, library, component, weight (course_id, org, code, edition are constant)
EXPECTED = [
    (COURSE, None, "course", "course", NAME, None, None, None, None, None, None, ""),
    (loc("chapter", "ch1"), COURSE, "chapter", "ch1", "Week 1", NAME, None, None, None, None, None, ""),
    (loc("chapter", "ch2"), COURSE, "chapter", "ch2", "Empty week", NAME, None, None, None, None, None, ""),
    (
        loc("sequential", "s1"),
        loc("chapter", "ch1"),
        "sequential",
        "s1",
        "Lesson",
        NAME,
        "Week 1",
        None,
        None,
        None,
        None,
        "",
    ),
    (
        loc("vertical", "v1"),
        loc("sequential", "s1"),
        "vertical",
        "v1",
        "Unit",
        NAME,
        "Week 1",
        "Lesson",
        None,
        None,
        None,
        "",
    ),
    (
        loc("problem", "p1"),
        loc("vertical", "v1"),
        "problem",
        "p1",
        "Quiz 1",
        NAME,
        "Week 1",
        "Lesson",
        "Unit",
        None,
        "Quiz 1",
        "2.0",
    ),
    (
        loc("problem", "p2"),
        loc("vertical", "v1"),
        "problem",
        "p2",
        "Quiz 2",
        NAME,
        "Week 1",
        "Lesson",
        "Unit",
        None,
        "Quiz 2",
        "3",
    ),
    (
        loc("html", "h1"),
        loc("vertical", "v1"),
        "html",
        "h1",
        HTML_NAME,
        NAME,
        "Week 1",
        "Lesson",
        "Unit",
        None,
        HTML_NAME,
        "",
    ),
    (
        loc("library_content", "lib1"),
        loc("vertical", "v1"),
        "library_content",
        "lib1",
        "Library block",
        NAME,
        "Week 1",
        "Lesson",
        "Unit",
        None,
        None,
        "",
    ),
    (
        loc("problem", "lp1"),
        loc("library_content", "lib1"),
        "problem",
        "lp1",
        "Lib problem",
        NAME,
        "Week 1",
        "Lesson",
        "Unit",
        "Library block",
        "Lib problem",
        None,
    ),
]


@pytest.fixture()
def mongo() -> Iterator[MongoStandin]:
    with MongoStandin({"edxapp": modulestore()}) as m:
        yield m


def settings_file(tmp_path: Path, mongo: MongoStandin, extra: str = "") -> Path:
    """panorama-elt's own datasource block (empty MySQL keys included)."""
    fields = "\n".join(f"    - name: {c}\n      type: varchar" for c in COLUMNS)
    path = tmp_path / "s.yaml"
    path.write_text(
        f"""datalake: {{type: local, path: {tmp_path / "lake"}, base_prefix: openedx}}
datasources:
- type: openedx_course_structures
  name: openedx_course_structures
  mongodb_host: 127.0.0.1
  mongodb_port: {mongo.port}
  mongodb_username: ''
  mongodb_password: ''
  mongodb_database: edxapp
  mongodb_directConnection: true
  mysql_username:
  mysql_password:
  mysql_host:
  mysql_database: edxapp
{extra}
  tables:
  - name: course_structures
    fields:
{fields}
""",
        encoding="utf-8",
    )
    return path


def expected_rows() -> list[tuple[Any, ...]]:
    return sorted((e[0], COURSE, "Org", "CS101", "2024_T1", *e[1:]) for e in EXPECTED)


def test_blocks_flattened_like_panorama_elt(mongo: MongoStandin, tmp_path: Path) -> None:
    path = settings_file(tmp_path, mongo)
    with open_source(load_settings(path).datasources[0]) as source:
        assert (
            source.check()
            == f"MongoDB 7.0.12 at 127.0.0.1:{mongo.port} (course structures; active versions in MongoDB)"
        )
    rows = load_all(path, "openedx_table_course_structures", "module_location")
    assert [tuple(r[c] for c in COLUMNS) for r in rows] == expected_rows()


def test_active_versions_from_mysql(
    mongo: MongoStandin, tmp_path: Path, mysql_server: Any, mysql_conn: Any
) -> None:
    cur = mysql_conn.cursor()
    cur.execute("DROP TABLE IF EXISTS split_modulestore_django_splitmodulestorecourseindex")
    cur.execute(
        "CREATE TABLE split_modulestore_django_splitmodulestorecourseindex (id INT PRIMARY KEY, course_id VARCHAR(255),"
        " published_version VARCHAR(24), draft_version VARCHAR(24))"
    )
    cur.executemany(
        "INSERT INTO split_modulestore_django_splitmodulestorecourseindex VALUES (%s, %s, %s, %s)",
        [
            (1, COURSE, str(PUBLISHED), str(DRAFT)),
            (2, "library-v1:Org+LIB", None, None),
            (3, "course-v1:Org+X+1", "", ""),
        ],
    )
    mysql_conn.commit()
    s = mysql_server.settings_dict()
    path = settings_file(tmp_path, mongo)
    text = path.read_text()
    for key in ("host", "username", "password", "database"):
        text = text.replace(
            f"  mysql_{key}:{' edxapp' if key == 'database' else ''}\n", f"  mysql_{key}: '{s[key]}'\n"
        )
    path.write_text(text.replace("  mysql_database:", f"  mysql_port: {s['port']}\n  mysql_database:"))
    mongo.dbs["edxapp"]["modulestore.active_versions"] = []  # only MySQL knows the course now
    with open_source(load_settings(path).datasources[0]) as source:
        assert source.check().endswith("(course structures; 3 courses in the MySQL course index)")
    rows = load_all(path, "openedx_table_course_structures", "module_location")
    assert [tuple(r[c] for c in COLUMNS) for r in rows] == expected_rows()


def test_missing_modulestore_is_one_line(tmp_path: Path) -> None:
    with MongoStandin({"edxapp": {"modulestore.active_versions": []}}) as mongo:
        code, out = run("--settings", str(settings_file(tmp_path, mongo)), "test-connections")
    assert code == 1
    assert (
        f"MongoDB at 127.0.0.1:{mongo.port} has no modulestore.definitions collection in database 'edxapp'"
        in out
    )


def test_unreachable_mongodb_is_one_line(tmp_path: Path, mongo: MongoStandin) -> None:
    path = settings_file(tmp_path, mongo, extra="  mongodb_timeout: 1")
    path.write_text(path.read_text().replace(f"mongodb_port: {mongo.port}", "mongodb_port: 9"))
    result = CliRunner().invoke(main, ["--settings", str(path), "extract-and-load", "--all"])
    assert result.exit_code == 1
    assert "cannot reach MongoDB at 127.0.0.1:9" in result.output
