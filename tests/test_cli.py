"""The CLI end to end on the embedded default (local lake, DuckDB, SQLite source)."""

from __future__ import annotations

import datetime as dt
import json
import os
import sqlite3
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from panorama_kpi.cli import main

COMPAT = Path(__file__).resolve().parent / "fixtures" / "panorama_elt"

HOSTILE = [
    None,
    "",
    "NULL",
    "\\N",
    "line\nbreak",
    "cr\rlf\r\n",
    'quote " inside',
    'back\\slash \\n \\" end\\',
    "comma, tab\tctrl\x01\x1f",
    "emoji 🎉 𝄞 and ünïcödé",
    "x" * 1_000_000,
]


@pytest.fixture()
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A working directory with a SQLite database and settings for it."""
    monkeypatch.chdir(tmp_path)
    db = sqlite3.connect(tmp_path / "app.sqlite3")
    db.execute("CREATE TABLE notes (id INTEGER, body TEXT, course TEXT, modified TEXT, score REAL)")
    db.executemany(
        "INSERT INTO notes VALUES (?, ?, ?, ?, ?)",
        [
            (i, v, ["c1", "it's/50%=x é", None][i % 3], "2024-01-01 00:00:00.000000", i / 4)
            for i, v in enumerate(HOSTILE)
        ],
    )
    db.execute("CREATE TABLE users (id INTEGER, name TEXT)")
    db.executemany("INSERT INTO users VALUES (?, ?)", [(1, "ann"), (2, None)])
    db.commit()
    db.close()
    (tmp_path / "panorama_settings.yaml").write_text(
        """# my settings
datalake:
  type: local
  path: ./lake   # the lake
  base_prefix: app
  base_partitions:
  - {name: site, value: example.com}
datasources:
- type: sqlite
  name: local
  database: ./app.sqlite3
  tables:
  - name: notes
    fields:
    - {name: id, type: int}
    - {name: body, type: longtext}
    - {name: course, type: varchar}
    - {name: modified, type: datetime}
    - {name: score, type: double}
    partitions:
      partition_fields: [course]
      interval: 2 hour
      timestamp_field: modified
  - name: users
    fields:
    - {name: id, type: int}
    - {name: name, type: varchar}
""",
        encoding="utf-8",
    )
    return tmp_path


def run(*args: str) -> click.testing.Result:
    return CliRunner().invoke(main, list(args), catch_exceptions=False)


def test_every_command_has_help() -> None:
    assert main.help
    for name, command in main.commands.items():
        assert command.help, f"command {name} has no help text"
        result = run(name, "--help")
        assert result.exit_code == 0, name


def test_version() -> None:
    result = run("--version")
    assert result.exit_code == 0 and "panorama-kpi" in result.output


def test_missing_settings_is_one_line_exit_2(tmp_path: Path) -> None:
    result = run("--settings", str(tmp_path / "nope.yaml"), "extract-and-load", "--all")
    assert result.exit_code == 2
    assert result.output.count("\n") == 1 and result.output.startswith("error: settings file")
    assert "Traceback" not in result.output


@pytest.mark.parametrize(
    "name",
    [
        "openedx.yaml",
        "mysql.yaml",
        "csv.yaml",
    ],
)
def test_compat_dry_run_prints_athena_ddl(name: str) -> None:
    from panorama_kpi.settings import load_settings

    path = COMPAT / name
    settings = load_settings(path)
    with_fields = [t for ds in settings.datasources for t in ds.tables if t.fields]
    result = run("--settings", str(path), "create-datalake-tables", "--all", "--dry-run")
    assert result.exit_code == 0, result.output
    # every table with fields, the run records table and the KPI history
    assert result.output.count("CREATE EXTERNAL TABLE IF NOT EXISTS") == len(with_fields) + 2
    assert f"LOCATION 's3://panorama/{settings.datalake.base_prefix}/_panorama_runs/'" in result.output
    assert f"LOCATION 's3://panorama/{settings.datalake.base_prefix}/kpi_history/'" in result.output
    for table in with_fields:
        assert f"`{settings.raw_table_name(table)}`" in result.output
        assert f"LOCATION 's3://panorama/{settings.datalake.base_prefix}/{table.name}/'" in result.output
    if with_fields:
        assert "'org.apache.hadoop.hive.serde2.OpenCSVSerde'" in result.output
        assert "'escapeChar' = '\\\\'" in result.output


def test_compat_dry_run_views(tmp_path: Path) -> None:
    import sqlglot

    from panorama_kpi.settings import load_settings

    result = run(
        "--settings",
        str(COMPAT / "openedx.yaml"),
        "create-table-views",
        "--all",
        "--dry-run",
    )
    assert result.exit_code == 0, result.output
    statements = [s for s in result.output.split(";\n") if s.strip()]
    settings = load_settings(COMPAT / "openedx.yaml")
    # the typed views, the run records' and the KPI history's two (with its raw table, which they read)
    assert len(statements) == sum(1 for ds in settings.datasources for t in ds.tables if t.fields) + 4 == 14
    assert 'CREATE OR REPLACE VIEW "openedx_runs"' in result.output
    assert 'CREATE OR REPLACE VIEW "kpi_history_periods"' in result.output
    for sql in statements:
        sqlglot.parse_one(sql, read="athena")
    assert (
        "TRY_CAST(NULLIF(\"course_id\", '__HIVE_DEFAULT_PARTITION__') AS" not in result.output
    )  # varchar: no cast
    assert 'TRY_CAST(CASE WHEN "modified" = ' in result.output


def test_end_to_end_round_trip(project: Path) -> None:
    assert run("create-datalake-tables", "--all").exit_code == 0
    assert run("create-datalake-views", "--all").exit_code == 0
    result = run("extract-and-load", "--all")
    assert result.exit_code == 0, result.output
    assert "2 table(s) loaded, 0 failed, 13 rows" in result.output
    assert (
        project / "lake/app/notes/site=example.com/course=it%27s%2F50%25%3Dx%20%C3%A9/notes.csv"
    ).is_file()
    assert (project / "lake/app/notes/site=example.com/course=__HIVE_DEFAULT_PARTITION__/notes.csv").is_file()
    out = run(
        "query",
        "SELECT id, body, course, modified, score, site FROM app_table_notes ORDER BY id",
        "--format",
        "json",
    )
    assert out.exit_code == 0, out.output
    rows = json.loads(out.output)
    assert [r["body"] for r in rows] == HOSTILE
    assert [r["course"] for r in rows] == [["c1", "it's/50%=x é", None][i % 3] for i in range(len(HOSTILE))]
    assert {r["site"] for r in rows} == {"example.com"}
    assert rows[1]["modified"] == "2024-01-01 00:00:00" and rows[3]["score"] == 0.75
    users = json.loads(run("query", "SELECT * FROM app_table_users ORDER BY id", "--format", "json").output)
    assert users == [
        {"id": 1, "name": "ann", "site": "example.com"},
        {"id": 2, "name": None, "site": "example.com"},
    ]


def test_query_formats(project: Path) -> None:
    run("create-datalake-tables", "--all")
    run("extract-and-load", "-t", "users")
    run("create-datalake-views", "-t", "users")
    csv_out = run("query", "SELECT id, name FROM app_table_users ORDER BY id", "--format", "csv").output
    assert csv_out == "id,name\n1,ann\n2,\n"
    table = run("query", "SELECT id, name FROM app_table_users ORDER BY id").output
    assert table.splitlines() == ["id  name", "--  ----", "1   ann", "2   NULL", "(2 rows)"]
    bad = run("query", "SELECT * FROM no_such_view")
    assert (
        bad.exit_code == 1 and bad.output.startswith("error: query failed:") and bad.output.count("\n") == 1
    )


def test_failing_table_does_not_stop_others_nor_damage_lake(project: Path) -> None:
    assert run("extract-and-load", "--all").exit_code == 0
    key = project / "lake/app/users/site=example.com/users.csv"
    before = key.read_bytes()
    db = sqlite3.connect(project / "app.sqlite3")
    db.execute("ALTER TABLE users RENAME COLUMN name TO full_name")
    db.execute("INSERT INTO notes VALUES (99, 'new', 'c1', '2999-01-01 00:00:00.000000', 1)")
    db.commit()
    db.close()
    result = run("extract-and-load", "--all")
    assert result.exit_code == 1
    assert "1 table(s) loaded, 1 failed" in result.output
    assert "failed: local.users:" in result.output and "'name'" in result.output
    assert key.read_bytes() == before
    assert "Traceback" not in result.output


def test_incremental_window_reloads_only_changed_partitions(project: Path) -> None:
    assert run("extract-and-load", "--all").exit_code == 0
    c1 = project / "lake/app/notes/site=example.com/course=c1/notes.csv"
    other = project / "lake/app/notes/site=example.com/course=__HIVE_DEFAULT_PARTITION__/notes.csv"
    os.utime(c1, (1, 1))
    os.utime(other, (1, 1))
    db = sqlite3.connect(project / "app.sqlite3")
    now = dt.datetime.now(dt.UTC)
    db.execute("INSERT INTO notes VALUES (100, 'fresh', 'c1', ?, 2)", [f"{now:%Y-%m-%d %H:%M:%S.%f}"])
    db.commit()
    db.close()
    result = run("extract-and-load", "-t", "notes")
    assert result.exit_code == 0, result.output
    assert c1.stat().st_mtime > 1 and other.stat().st_mtime == 1
    assert "fresh" in c1.read_text(encoding="utf-8")


def test_set_tables_and_fields_keep_comments(project: Path) -> None:
    settings = project / "panorama_settings.yaml"
    text = settings.read_text(encoding="utf-8").replace(
        "  - name: users\n    fields:\n    - {name: id, type: int}\n    - {name: name, type: varchar}\n", ""
    )
    settings.write_text(text, encoding="utf-8")
    result = run("set-tables", "-d", "local")
    assert result.exit_code == 0, result.output
    result = run("set-tables-fields", "-t", "users")
    assert result.exit_code == 0, result.output
    new = settings.read_text(encoding="utf-8")
    assert "# my settings" in new and "# the lake" in new
    from panorama_kpi.settings import load_settings

    users = next(t for t in load_settings(settings).datasources[0].tables if t.name == "users")
    assert [(f.name, f.type) for f in users.fields] == [("id", "integer"), ("name", "text")]


def test_selection_errors(project: Path) -> None:
    result = run("extract-and-load")
    assert result.exit_code == 2 and "choose what to act on" in result.output
    result = run("extract-and-load", "-t", "userz")
    assert result.exit_code == 2 and "did you mean 'users'" in result.output
    result = run("extract-and-load", "-d", "nope")
    assert result.exit_code == 2 and "no datasource named 'nope'" in result.output


def test_test_connections(project: Path) -> None:
    result = run("test-connections")
    assert result.exit_code == 0, result.output
    assert result.output.startswith("ok   datasource local:")
    (project / "app.sqlite3").unlink()
    result = run("test-connections")
    assert result.exit_code == 1
    assert "FAIL datasource local:" in result.output and "app.sqlite3" in result.output


def test_drop_tables(project: Path) -> None:
    run("create-datalake-tables", "--all")
    assert run("drop-datalake-tables", "-t", "users").exit_code == 0
    result = run("query", "SELECT * FROM app_raw_users")
    assert result.exit_code == 1


def test_full_load_removes_vanished_partitions_only_for_this_site(project: Path) -> None:
    assert run("extract-and-load", "-t", "notes").exit_code == 0
    base = project / "lake/app/notes"
    other_site = base / "site=other.org/course=c1/notes.csv"
    other_site.parent.mkdir(parents=True)
    other_site.write_text('"id"\n', encoding="utf-8")
    db = sqlite3.connect(project / "app.sqlite3")
    db.execute("DELETE FROM notes WHERE course = 'c1'")
    db.commit()
    db.close()
    # incremental: the partition's row count went to zero in the source, so it goes
    result = run("extract-and-load", "-t", "notes")
    assert result.exit_code == 0, result.output
    assert "removed 1 partition(s) no longer in the source" in result.output
    assert not (base / "site=example.com/course=c1/notes.csv").exists()
    assert other_site.exists()
    result = run("extract-and-load", "-t", "notes", "--force")
    assert result.exit_code == 0, result.output
    assert other_site.exists()
    assert (base / "site=example.com/course=__HIVE_DEFAULT_PARTITION__/notes.csv").exists()


def test_debug_shows_the_traceback_and_keeps_the_exit_code(tmp_path: Path) -> None:
    result = CliRunner().invoke(
        main, ["--debug", "--settings", str(tmp_path / "nope.yaml"), "test-connections"]
    )
    assert result.exit_code == 2
    assert "Traceback (most recent call last)" in result.output
    assert result.output.rstrip().splitlines()[-1].startswith("error: settings file")


def test_parallel_workers_write_the_same_lake(project: Path) -> None:
    def snapshot() -> dict[str, bytes]:
        root = project / "lake/app"
        return {
            str(p.relative_to(root)): p.read_bytes()
            for p in sorted(root.rglob("*.csv"))
            if not p.relative_to(root).parts[0].startswith("_")  # run records differ
        }

    assert run("extract-and-load", "--all", "--workers", "1").exit_code == 0
    one = snapshot()
    assert run("extract-and-load", "--all", "--force", "--workers", "3").exit_code == 0
    assert snapshot() == one and len(one) == 4


def test_query_explain_shows_the_local_sql(project: Path) -> None:
    run("create-datalake-tables", "-t", "users")
    run("extract-and-load", "-t", "users")
    run("create-datalake-views", "-t", "users")
    explained = run("query", "--explain", "SELECT id / 2, count(*) FROM app_table_users GROUP BY id")
    assert explained.exit_code == 0, explained.output
    assert "//" in explained.output and "AS _col0" in explained.output and "AS _col1" in explained.output
    answer = run("query", "SELECT max(id) / 2, count(*) FROM app_table_users", "--format", "csv")
    assert answer.output == "_col0,_col1\n1,2\n"
    loud = run("query", "SELECT approx_percentile(id, 0.5) FROM app_table_users")
    assert loud.exit_code == 1
    assert loud.output.startswith("error: approx_percentile is not supported by the local engine")
    assert loud.output.count("\n") == 1
