"""Files the tool reads, damaged or odd: each affects only what it belongs to, in one line."""

from __future__ import annotations

import json
import sqlite3
import time
from pathlib import Path

import click.testing
import pytest
from click.testing import CliRunner

from panorama_kpi.cli import main

SETTINGS = """datalake: {type: local, path: ./lake, base_prefix: app}
datasources:
- type: sqlite
  name: local
  database: ./app.sqlite3
  tables:
  - name: a
    fields: [{name: id, type: int}, {name: p, type: varchar}, {name: m, type: datetime}]
    partitions: {partition_fields: [p], interval: 2 hour, timestamp_field: m}
  - name: b
    fields: [{name: id, type: int}]
"""


def run(*args: str) -> click.testing.Result:
    return CliRunner().invoke(main, list(args), catch_exceptions=False)


@pytest.fixture()
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    db = sqlite3.connect(tmp_path / "app.sqlite3")
    db.execute("CREATE TABLE a (id INTEGER, p TEXT, m TEXT)")
    db.executemany("INSERT INTO a VALUES (?, ?, '2024-01-01 00:00:00')", [(1, "x"), (2, "y"), (3, None)])
    db.execute("CREATE TABLE b (id INTEGER)")
    db.execute("INSERT INTO b VALUES (7)")
    db.commit()
    db.close()
    (tmp_path / "panorama_settings.yaml").write_text(SETTINGS, encoding="utf-8")
    return tmp_path


@pytest.mark.parametrize(
    "content", ["null", "[]", "5", '{"last_success_start": "yesterday"}', "{not json", "DIR"]
)
def test_a_damaged_load_record_of_an_older_version_costs_one_full_load(project: Path, content: str) -> None:
    state = project / "lake/_panorama/state/local/a.json"
    state.parent.mkdir(parents=True)
    if content == "DIR":
        state.mkdir()
    else:
        state.write_text(content, encoding="utf-8")
    result = run("extract-and-load", "--all")
    assert result.exit_code == 0, result.output
    assert "2 table(s) loaded, 0 failed" in result.output and "Traceback" not in result.output
    again = run("extract-and-load", "--all")
    assert again.exit_code == 0 and "incremental since" in again.output


def test_damaged_run_records_are_skipped(project: Path) -> None:
    assert run("extract-and-load", "--all").exit_code == 0
    folder = project / "lake/app/_panorama_runs/datasource=local/table_name=a"
    (folder / "99999999T000000.000000Z-zzzzzz.csv").write_text('"run_id"\n"x","y"\n', encoding="utf-8")
    (folder / "99999999T000000.000000Z-zzzzzy.csv").mkdir()
    result = run("extract-and-load", "--all")
    assert result.exit_code == 0, result.output
    assert "incremental since" in result.output  # the good record still gives the watermark


def test_the_literal_default_partition_text_is_refused_in_one_line(project: Path) -> None:
    db = sqlite3.connect(project / "app.sqlite3")
    db.execute("INSERT INTO a VALUES (9, '__HIVE_DEFAULT_PARTITION__', '2024-01-01 00:00:00')")
    db.commit()
    db.close()
    result = run("extract-and-load", "--all")
    assert result.exit_code == 1
    assert "1 table(s) loaded, 1 failed" in result.output
    assert (
        "partition field 'p' holds the text '__HIVE_DEFAULT_PARTITION__', which Hive reserves for NULL"
        in result.output
    )


def test_a_corrupt_catalog_is_told_from_a_lock_and_rebuilt_from_the_lake(project: Path) -> None:
    for command in ("create-datalake-tables", "create-datalake-views", "extract-and-load"):
        assert run(command, "--all").exit_code == 0
    catalog = project / "lake/_panorama/catalog.duckdb"
    data = bytearray(catalog.read_bytes())
    data[4096:12288] = b"\xab" * 8192
    catalog.write_bytes(bytes(data))
    started = time.monotonic()
    result = run("query", "SELECT count(*) FROM app_table_b")
    assert time.monotonic() - started < 30
    assert result.exit_code == 1 and result.output.count("\n") == 1
    assert f"the DuckDB catalog {catalog} is damaged" in result.output
    assert "create-datalake-tables --all && create-datalake-views --all" in result.output
    catalog.unlink()
    for command in ("create-datalake-tables", "create-datalake-views"):
        assert run(command, "--all").exit_code == 0
    out = run("query", "SELECT id FROM app_table_b", "--format", "json")
    assert json.loads(out.output) == [{"id": 7}]


def test_set_tables_writes_through_a_symlinked_settings_file(project: Path) -> None:
    real = project / "conf" / "real.yaml"
    real.parent.mkdir()
    (project / "panorama_settings.yaml").rename(real)
    (project / "panorama_settings.yaml").symlink_to(real)
    db = sqlite3.connect(project / "app.sqlite3")
    db.execute("CREATE TABLE c (id INTEGER)")
    db.commit()
    db.close()
    result = run("set-tables", "-t", "c")
    assert result.exit_code == 0, result.output
    link = project / "panorama_settings.yaml"
    assert link.is_symlink() and link.resolve() == real.resolve()
    assert "name: c" in real.read_text(encoding="utf-8")


LONG = [
    "x" * 300,
    "é" * 60,
    "x" * 300 + "/",  # same head, another value
    "a@b" * 80,
    "short",
    None,
]


def test_partition_values_of_any_length_round_trip(project: Path) -> None:
    db = sqlite3.connect(project / "app.sqlite3")
    db.execute("DELETE FROM a")
    db.executemany("INSERT INTO a VALUES (?, ?, '2024-01-01 00:00:00')", list(enumerate(LONG)))
    db.commit()
    db.close()
    for command in ("create-datalake-tables", "create-datalake-views", "extract-and-load"):
        result = run(command, "--all")
        assert result.exit_code == 0, result.output
    assert all(len(p.name.encode()) <= 255 for p in (project / "lake").rglob("*"))
    out = run("query", "SELECT id, p FROM app_table_a ORDER BY id", "--format", "json")
    assert [(r["id"], r["p"]) for r in json.loads(out.output)] == list(enumerate(LONG))
    raw = run("query", "SELECT count(DISTINCT p) AS n FROM app_raw_a WHERE p IS NOT NULL", "--format", "json")
    assert json.loads(raw.output) == [{"n": len(LONG) - 1}]  # the NULL partition reads as NULL here
    # a vanished long value is removed with its values file
    db = sqlite3.connect(project / "app.sqlite3")
    db.execute("DELETE FROM a WHERE id = 0")
    db.commit()
    db.close()
    assert run("extract-and-load", "--all", "--force").exit_code == 0
    out = run("query", "SELECT id FROM app_table_a ORDER BY id", "--format", "json")
    assert [r["id"] for r in json.loads(out.output)] == [1, 2, 3, 4, 5]
    values_files = list((project / "lake/app/a").rglob("_panorama_values.csv"))
    assert len(values_files) == 3


@pytest.mark.parametrize(
    ("sql", "expected"),
    [
        ("COPY (SELECT 1) TO 'out.csv'", "COPY changes the catalog or the files: pass --allow-ddl"),
        ("DROP VIEW app_table_b", "DROP changes the catalog"),
        ("CREATE VIEW x AS SELECT 1", "CREATE changes the catalog"),
        ("SELECT * FROM read_csv('/etc/passwd')", "Permission Error"),
        ("SELECT * FROM read_csv('../../../../../../etc/passwd')", "Permission Error"),
        ("SELECT 1; SELECT 2", "expected one SQL statement, got 2"),
    ],
)
def test_query_only_reads_the_lake(project: Path, sql: str, expected: str) -> None:
    for command in ("create-datalake-tables", "create-datalake-views", "extract-and-load"):
        assert run(command, "--all").exit_code == 0
    result = run("query", sql)
    assert result.exit_code == 1 and result.output.count("\n") == 1, result.output
    assert expected in result.output
    assert not (project / "out.csv").exists()
    ok = run("query", "SELECT id FROM app_table_b", "--format", "csv")
    assert ok.output == "id\n7\n"  # the view is still there, and the lake still reads


def test_allow_ddl_lets_query_change_the_catalog(project: Path) -> None:
    for command in ("create-datalake-tables", "create-datalake-views"):
        assert run(command, "--all").exit_code == 0
    result = run("query", "CREATE OR REPLACE VIEW app_extra AS SELECT 1 AS one", "--allow-ddl")
    assert result.exit_code == 0, result.output
    assert run("query", "SELECT one FROM app_extra", "--format", "csv").output == "one\n1\n"
