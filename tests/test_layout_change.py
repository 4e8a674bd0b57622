"""A table whose layout changes (partition fields, base partitions, field list) is
reloaded in full and keeps no object of the old layout."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import click.testing
import pytest
from click.testing import CliRunner

from panorama_kpi.cli import main

SETTINGS = """
datalake: {{type: local, path: ./lake, base_prefix: app{base}}}
datasources:
- type: sqlite
  name: local
  database: ./app.sqlite3
  tables:
  - name: notes
    fields:
{fields}
{partitions}
"""
FIELDS = ["id: int", "body: varchar", "course: varchar", "modified: datetime"]


def write_settings(root: Path, fields: list[str], partitions: str = "", base: str = "") -> None:
    lines = "\n".join(f"    - {{name: {f.split(':')[0]}, type: {f.split(': ')[1]}}}" for f in fields)
    (root / "panorama_settings.yaml").write_text(
        SETTINGS.format(fields=lines, partitions=partitions, base=base), encoding="utf-8"
    )


def run(*args: str) -> click.testing.Result:
    return CliRunner().invoke(main, list(args), catch_exceptions=False)


def rows() -> list[dict[str, object]]:
    out = run("query", "SELECT * FROM app_table_notes ORDER BY id", "--format", "json")
    assert out.exit_code == 0, out.output
    return json.loads(out.output)


def objects(root: Path) -> list[str]:
    return sorted(str(p.relative_to(root / "lake")) for p in (root / "lake/app/notes").rglob("*.csv"))


@pytest.fixture()
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    db = sqlite3.connect(tmp_path / "app.sqlite3")
    db.execute("CREATE TABLE notes (id INTEGER, body TEXT, course TEXT, modified TEXT)")
    db.executemany(
        "INSERT INTO notes VALUES (?, ?, ?, '2024-01-01 00:00:00.000000')",
        [(i, f"n{i}", ["c1", "c2", None][i % 3]) for i in range(7)],
    )
    db.commit()
    db.close()
    write_settings(tmp_path, FIELDS)
    for command in ("create-datalake-tables", "create-datalake-views", "extract-and-load"):
        assert run(command, "--all").exit_code == 0
    assert objects(tmp_path) == ["app/notes/notes.csv"]
    return tmp_path


PARTITIONED = "    partitions: {partition_fields: [course], interval: 2 hour, timestamp_field: modified}"


def test_adding_partition_fields_reloads_and_removes_old_objects(project: Path) -> None:
    before = rows()
    write_settings(project, FIELDS, PARTITIONED)
    assert run("create-datalake-tables", "--all").exit_code == 0
    assert run("create-datalake-views", "--all").exit_code == 0
    result = run("extract-and-load", "--all")  # no --force
    assert result.exit_code == 0, result.output
    assert (
        "partition fields changed ([] -> ['course']) since the last load; reloading in full" in result.output
    )
    assert "removed 1 object(s) of the previous layout" in result.output
    assert objects(project) == [
        "app/notes/course=__HIVE_DEFAULT_PARTITION__/notes.csv",
        "app/notes/course=c1/notes.csv",
        "app/notes/course=c2/notes.csv",
    ]
    assert rows() == before
    # the layout is recorded: the next run is an ordinary incremental one
    again = run("extract-and-load", "--all")
    assert "incremental since" in again.output and "layout" not in again.output


def test_removing_partition_fields(project: Path) -> None:
    write_settings(project, FIELDS, PARTITIONED)
    assert run("extract-and-load", "--all").exit_code == 0
    assert len(objects(project)) == 3
    before = rows()
    write_settings(project, FIELDS)
    for command in ("create-datalake-tables", "create-datalake-views", "extract-and-load"):
        result = run(command, "--all")
        assert result.exit_code == 0, result.output
    assert "partition fields changed (['course'] -> [])" in result.output
    assert "removed 3 object(s) of the previous layout" in result.output
    assert objects(project) == ["app/notes/notes.csv"]
    assert rows() == before


def test_a_new_base_partition_is_a_new_site_whose_view_reads_only_its_objects(project: Path) -> None:
    before = rows()
    write_settings(project, FIELDS, base=", base_partitions: [{name: site, value: a.org}]")
    for command in ("create-datalake-tables", "create-datalake-views", "extract-and-load"):
        result = run(command, "--all")
        assert result.exit_code == 0, result.output
    assert "app/notes/site=a.org/notes.csv" in objects(project)
    assert [{k: v for k, v in r.items() if k != "site"} for r in rows()] == before


def test_changed_field_list_rewrites_every_object(project: Path) -> None:
    write_settings(project, FIELDS, PARTITIONED)
    assert run("extract-and-load", "--all").exit_code == 0
    fewer = [f for f in FIELDS if not f.startswith("body")]
    write_settings(project, fewer, PARTITIONED)
    for command in ("create-datalake-tables", "create-datalake-views", "extract-and-load"):
        result = run(command, "--all")
        assert result.exit_code == 0, result.output
    assert "the field list changed (3 -> 2 columns in the files)" in result.output
    for key in objects(project):
        header = (project / "lake" / key).read_text(encoding="utf-8").splitlines()[0]
        assert header == '"id","modified"', key
    assert [r["id"] for r in rows()] == list(range(7))
    assert "body" not in rows()[0]
