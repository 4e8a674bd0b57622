"""panorama-elt's file sources (csv, xls) through the real pipeline into a local lake."""

from __future__ import annotations

import csv
import datetime as dt
import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from panorama_kpi.cli import main
from panorama_kpi.errors import SourceError
from panorama_kpi.settings import DatasourceSettings, TableSettings
from panorama_kpi.sources import open_source

ROWS = [
    ["1", "plain", "c1"],
    ["2", 'quote " and, comma', "c/2"],
    ["3", "multi\nline\r\nvalue \\n", "c1"],
    ["4", "", "c1"],
    ["5", "emoji 🎉", "é'%="],
]


def run(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(main, list(args), catch_exceptions=False)
    return result.exit_code, result.output


def settings_file(tmp_path: Path, datasource: str) -> Path:
    path = tmp_path / "s.yaml"
    path.write_text(
        f"""datalake: {{type: local, path: {tmp_path / "lake"}, base_prefix: f}}
datasources:
{datasource}
""",
        encoding="utf-8",
    )
    return path


def test_csv_file_round_trip(tmp_path: Path) -> None:
    data = tmp_path / "data.csv"
    with data.open("w", newline="", encoding="utf-8") as out:
        writer = csv.writer(out)
        writer.writerow(["id", "body", "course"])
        writer.writerows(ROWS)
    s = settings_file(
        tmp_path,
        f"""- type: csv
  name: file
  location: {data}
  tables:
    name: data
    fields: [{{name: id, type: int}}, {{name: body}}, {{name: course}}]
    partitions: {{partition_fields: [course]}}
""",
    )
    assert run("--settings", str(s), "extract-and-load", "--all")[0] == 0
    assert run("--settings", str(s), "create-datalake-views", "--all")[0] == 0
    code, out = run(
        "--settings", str(s), "query", "SELECT * FROM f_table_data ORDER BY id", "--format", "json"
    )
    assert code == 0, out
    assert [[str(r["id"]), r["body"], r["course"]] for r in json.loads(out)] == ROWS
    assert len(list((tmp_path / "lake/f/data").glob("course=*/data.csv"))) == 3


def test_xls_sheets_are_tables(tmp_path: Path) -> None:
    import openpyxl

    book = openpyxl.Workbook()
    sheet = book.active
    sheet.title = "people"
    sheet.append(["id", "name", "joined", "score"])
    sheet.append([1, "ann\nsmith", dt.datetime(2024, 5, 1, 12, 30, 0, 250000), 1.5])
    sheet.append([2, None, None, None])
    book.create_sheet("other").append(["x"])
    path = tmp_path / "book.xlsx"
    book.save(path)
    ds = DatasourceSettings("xls", "book", {"location": str(path)}, [TableSettings("people")])
    with open_source(ds) as source:
        assert source.list_tables() == {"people": "table", "other": "table"}
        assert [f.name for f in source.describe("people")] == ["id", "name", "joined", "score"]
    s = settings_file(
        tmp_path,
        f"""- type: xls
  name: book
  location: {path}
  tables:
  - name: people
    fields: [{{name: id, type: int}}, {{name: name}}, {{name: joined, type: datetime}}, {{name: score, type: double}}]
""",
    )
    assert run("--settings", str(s), "extract-and-load", "--all")[0] == 0
    assert run("--settings", str(s), "create-datalake-views", "--all")[0] == 0
    code, out = run(
        "--settings", str(s), "query", "SELECT * FROM f_table_people ORDER BY id", "--format", "json"
    )
    assert code == 0, out
    assert json.loads(out) == [
        {"id": 1, "name": "ann\nsmith", "joined": "2024-05-01 12:30:00.250000", "score": 1.5},
        {"id": 2, "name": None, "joined": None, "score": None},
    ]


@pytest.mark.parametrize(
    ("options", "table", "expected"),
    [
        ({"location": "nope.csv"}, "t", "file 'nope.csv' not found"),
        ({}, "t", "'location' is not set"),
    ],
)
def test_file_source_errors(options: dict[str, str], table: str, expected: str) -> None:
    ds = DatasourceSettings("csv", "file", options, [TableSettings(table)])
    with open_source(ds) as source, pytest.raises(SourceError, match=expected):
        source.check()


def test_missing_field_and_sheet(tmp_path: Path) -> None:
    data = tmp_path / "d.csv"
    data.write_text("a,b\n1,2\n", encoding="utf-8")
    ds = DatasourceSettings("csv", "file", {"location": str(data)}, [TableSettings("d")])
    with open_source(ds) as source, pytest.raises(SourceError, match="field 'c' is not in the file's header"):
        list(source.dump(TableSettings("d"), ["a", "c"]))
    import openpyxl

    book = openpyxl.Workbook()
    book.active.title = "s1"
    book.save(tmp_path / "b.xlsx")
    ds = DatasourceSettings("xls", "book", {"location": str(tmp_path / "b.xlsx")}, [TableSettings("s2")])
    with open_source(ds) as source, pytest.raises(SourceError, match="sheet 's2' not found"):
        source.describe("s2")
