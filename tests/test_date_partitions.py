"""Partitions derived from a timestamp (day or month): the source is read by range, and an
append-only table rewrites only the days that changed."""

from __future__ import annotations

import datetime as dt
import json
import sqlite3
import uuid
from pathlib import Path
from typing import Any

import pytest
import yaml
from click.testing import CliRunner

from panorama_kpi.cli import main
from panorama_kpi.errors import SettingsError
from panorama_kpi.settings import load_settings

EVENTS = [
    (1, dt.datetime(2026, 11, 29, 23, 59, 59, 999999), "a"),
    (2, dt.datetime(2026, 11, 30, 0, 0), "b"),
    (3, dt.datetime(2026, 11, 30, 12, 0), "c"),
    (4, dt.datetime(2026, 10, 1, 0, 0), "d"),
    (5, None, "e"),
]


def run(settings: Path, *args: str) -> Any:
    return CliRunner().invoke(main, ["--settings", str(settings), *args], catch_exceptions=False)


def setup(
    kind: str, request: pytest.FixtureRequest, tmp_path: Path, granularity: str
) -> tuple[Path, Any, str]:
    name = f"ev_{uuid.uuid4().hex[:8]}"
    if kind == "sqlite":
        conn: Any = sqlite3.connect(tmp_path / "app.sqlite3", isolation_level=None)
        conn.execute(f"CREATE TABLE {name} (id INTEGER, created TEXT, kind TEXT)")
        conn.executemany(
            f"INSERT INTO {name} VALUES (?, ?, ?)",
            [(i, None if c is None else f"{c:%Y-%m-%d %H:%M:%S.%f}", k) for i, c, k in EVENTS],
        )
        options: dict[str, Any] = {"database": str(tmp_path / "app.sqlite3")}
    else:
        server = request.getfixturevalue("mysql_server" if kind == "mysql" else "pg_server")
        conn = server.connect()
        ts = "DATETIME(6)" if kind == "mysql" else "TIMESTAMP(6)"
        with conn.cursor() as cur:
            cur.execute(f"CREATE TABLE {name} (id INT, created {ts}, kind VARCHAR(5))")
            for row in EVENTS:
                cur.execute(f"INSERT INTO {name} VALUES (%s, %s, %s)", row)
        options = server.settings_dict()
    settings = tmp_path / "s.yaml"
    settings.write_text(
        yaml.safe_dump(
            {
                "datalake": {"type": "local", "path": str(tmp_path / "lake"), "base_prefix": "x"},
                "datasources": [
                    {
                        "type": kind,
                        "name": "db",
                        **options,
                        "tables": [
                            {
                                "name": name,
                                "fields": [
                                    {"name": "id", "type": "int"},
                                    {"name": "created", "type": "datetime"},
                                    {"name": "kind", "type": "varchar"},
                                ],
                                "partitions": {
                                    "partition_fields": [
                                        {"name": "dt", "from": "created", "granularity": granularity}
                                    ],
                                    "interval": "2 hour",
                                    "timestamp_field": "created",
                                },
                            }
                        ],
                    }
                ],
            }
        ),
        encoding="utf-8",
    )
    return settings, conn, name


def execute(conn: Any, sql: str, params: tuple[Any, ...]) -> None:
    if isinstance(conn, sqlite3.Connection):
        conn.execute(sql.replace("%s", "?"), params)
    else:
        with conn.cursor() as cur:
            cur.execute(sql, params)


@pytest.mark.parametrize("kind", ["sqlite", "mysql", "postgresql"])
def test_day_partitions_from_a_timestamp(kind: str, request: pytest.FixtureRequest, tmp_path: Path) -> None:
    settings, conn, name = setup(kind, request, tmp_path, "day")
    for command in ("create-datalake-tables", "create-datalake-views", "extract-and-load"):
        result = run(settings, command, "--all")
        assert result.exit_code == 0, result.output
    folder = tmp_path / "lake/x" / name
    days = sorted(p.parent.name for p in folder.rglob(f"{name}.csv"))
    assert days == ["dt=2026-10-01", "dt=2026-11-29", "dt=2026-11-30", "dt=__HIVE_DEFAULT_PARTITION__"]
    out = run(
        settings,
        "query",
        f"SELECT id, dt, typeof(dt) AS t FROM x_table_{name} ORDER BY id",
        "--format",
        "json",
    )
    rows = json.loads(out.output)
    assert [(r["id"], r["dt"]) for r in rows] == [
        (1, "2026-11-29"),
        (2, "2026-11-30"),
        (3, "2026-11-30"),
        (4, "2026-10-01"),
        (5, None),
    ]
    assert {r["t"] for r in rows} == {"DATE"}
    # an event appended to one day rewrites that day only
    mtimes = {p: p.stat().st_mtime_ns for p in folder.rglob(f"{name}.csv")}
    now = dt.datetime.now(dt.UTC).replace(tzinfo=None)
    execute(
        conn,
        f"INSERT INTO {name} VALUES (%s, %s, %s)",
        (6, f"{now:%Y-%m-%d %H:%M:%S.%f}" if kind == "sqlite" else now, "f"),
    )
    result = run(settings, "extract-and-load", "--all")
    assert result.exit_code == 0, result.output
    changed = [p for p in folder.rglob(f"{name}.csv") if mtimes.get(p) != p.stat().st_mtime_ns]
    assert [p.parent.name for p in changed] == [f"dt={now:%Y-%m-%d}"]
    conn.close()


@pytest.mark.parametrize("kind", ["sqlite", "postgresql", "mysql"])
def test_month_partitions(kind: str, request: pytest.FixtureRequest, tmp_path: Path) -> None:
    settings, conn, name = setup(kind, request, tmp_path, "month")
    for command in ("create-datalake-tables", "create-datalake-views", "extract-and-load"):
        assert run(settings, command, "--all").exit_code == 0
    out = run(settings, "query", f"SELECT id, dt FROM x_table_{name} ORDER BY id", "--format", "json")
    assert [(r["id"], r["dt"]) for r in json.loads(out.output)] == [
        (1, "2026-11-01"),
        (2, "2026-11-01"),
        (3, "2026-11-01"),
        (4, "2026-10-01"),
        (5, None),
    ]
    conn.close()


@pytest.mark.parametrize(
    ("item", "expected"),
    [
        ("{name: dt, from: nope}", "partition_fields[dt].from: 'nope' is not in the table's field list"),
        ("{name: id, from: created}", "'id' is a field of the table"),
        ("{name: dt, from: created, granularity: week}", "granularity: 'week' is not one of day, month"),
        ("{name: dt}", ".from: required"),
    ],
)
def test_bad_derived_partitions(tmp_path: Path, item: str, expected: str) -> None:
    path = tmp_path / "s.yaml"
    path.write_text(
        "datasources:\n- type: sqlite\n  name: db\n  database: x\n  tables:\n  - name: t\n"
        "    fields: [{name: id}, {name: created}]\n"
        f"    partitions: {{partition_fields: [{item}]}}\n",
        encoding="utf-8",
    )
    with pytest.raises(
        SettingsError, match=expected.replace("[", r"\[").replace("]", r"\]").replace("(", r"\(")
    ):
        load_settings(path)
