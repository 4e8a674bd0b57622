"""Typed views: the same Athena SQL text, run on DuckDB, gives back typed source values."""

from __future__ import annotations

import datetime as dt
import decimal
from pathlib import Path

import pytest
import sqlglot

from panorama_kpi.engines.duckdb import DuckDBEngine
from panorama_kpi.errors import EngineError, SettingsError
from panorama_kpi.lake.csv import encode_rows, header_line
from panorama_kpi.lake.layout import object_key
from panorama_kpi.lake.local import LocalStorage
from panorama_kpi.settings import (
    BasePartition,
    DatalakeSettings,
    DatasourceSettings,
    Field,
    Settings,
    TableSettings,
)
from panorama_kpi.views import athena_type, load_kpi_views, raw_table, typed_view_sql

FIELDS = [
    Field("i", "int"),
    Field("big", "bigint"),
    Field("dec", "decimal(20,6)"),
    Field("dbl", "double"),
    Field("ts", "datetime"),
    Field("d", "date"),
    Field("b", "boolean"),
    Field("js", "json"),
    Field("txt", "longtext"),
    Field("p", "varchar"),
]
ROWS = [
    [
        1,
        2**63 - 1,
        decimal.Decimal("12345678901234.123456"),
        0.1 + 0.2,
        dt.datetime(2024, 2, 29, 23, 59, 59, 123456),
        dt.date(1999, 12, 31),
        True,
        {"a": [1, "x\ny"]},
        "multi\nline \\n",
        "p1",
    ],
    [None, -(2**63), decimal.Decimal("-0.000001"), -1e300, None, None, False, None, "", "p1"],
    [None, None, None, None, None, None, None, None, None, None],
]


def make(tmp_path: Path, rows: list[list[object]] = ROWS) -> tuple[Settings, TableSettings, DuckDBEngine]:
    table = TableSettings("things", fields=FIELDS, partition_fields=["p"])
    settings = Settings(
        path=tmp_path / "s.yaml",
        datalake=DatalakeSettings(
            type="local", path=str(tmp_path), base_prefix="x", base_partitions=[BasePartition("site", "s1")]
        ),
        datasources=[DatasourceSettings("sqlite", "src", tables=[table])],
    )
    raw = raw_table(settings, table)
    storage = LocalStorage(tmp_path)
    by_p: dict[object, list[list[object]]] = {}
    for row in rows:
        by_p.setdefault(row[-1], []).append(row[:-1])
    for p, prow in by_p.items():
        key = object_key(
            "x", "things", [("site", "s1"), ("p", "__HIVE_DEFAULT_PARTITION__" if p is None else str(p))]
        )
        storage.write(key, [header_line(raw.columns), *encode_rows(prow)])
    engine = DuckDBEngine(tmp_path, "panorama")
    engine.create_raw_table(raw)
    engine.create_view(settings.view_name(table), typed_view_sql(settings, table))
    return settings, table, engine


def test_typed_view_values(tmp_path: Path) -> None:
    _s, _t, engine = make(tmp_path)
    cols, rows = engine.query("SELECT * FROM x_table_things ORDER BY big NULLS LAST")
    assert cols == [f.name for f in FIELDS] + ["site"]
    got = list(rows)
    assert got[0] == (
        -(2**63) + 0 if False else None,
        -(2**63),
        decimal.Decimal("-0.000001"),
        -1e300,
        None,
        None,
        False,
        None,
        "",
        "p1",
        "s1",
    )
    assert got[1] == (
        1,
        2**63 - 1,
        decimal.Decimal("12345678901234.123456"),
        0.1 + 0.2,
        dt.datetime(2024, 2, 29, 23, 59, 59, 123000),  # Athena: TIMESTAMP is timestamp(3)
        dt.date(1999, 12, 31),
        True,
        '{"a":[1,"x\\ny"]}',
        "multi\nline \\n",
        "p1",
        "s1",
    )
    assert got[2] == (None,) * 10 + ("s1",)
    engine.close()


def test_typed_view_sql_is_athena(tmp_path: Path) -> None:
    settings, table, engine = make(tmp_path)
    sql = typed_view_sql(settings, table)
    sqlglot.parse_one(sql, read="athena")
    assert 'FROM "panorama"."x_raw_things"' in sql
    assert "TRY_CAST(CASE WHEN \"ts\" = '\\N' THEN NULL" in sql
    engine.close()


def test_raw_table_reads_like_the_serde(tmp_path: Path) -> None:
    _s, _t, engine = make(tmp_path)
    _cols, rows = engine.query("SELECT txt, i FROM x_raw_things WHERE p = 'p1' ORDER BY big")
    assert list(rows) == [("", "\\N"), ("multi\\nline \\bn", "1")]
    engine.close()


def test_empty_table_is_queryable(tmp_path: Path) -> None:
    _s, _t, engine = make(tmp_path, rows=[])
    _cols, rows = engine.query("SELECT count(*) FROM x_table_things")
    assert list(rows) == [(0,)]
    engine.close()


@pytest.mark.parametrize(
    ("declared", "expected"),
    [
        ("int", "BIGINT"),
        ("tinyint", "BIGINT"),
        ("int(11) unsigned", "BIGINT"),
        ("decimal", "DOUBLE"),
        ("decimal(10,2)", "DECIMAL(10, 2)"),
        ("numeric(65,30)", None),  # wider than DECIMAL(38): exact text
        ("numeric(38,0)", "DECIMAL(38, 0)"),
        ("numeric", None),  # PostgreSQL's arbitrary precision: exact text
        ("numeric(5,-2)", "DECIMAL(7, 0)"),
        ("numeric(3,5)", "DECIMAL(5, 5)"),
        ("bigint unsigned", "DECIMAL(20, 0)"),
        ("bigint(20) unsigned zerofill", "DECIMAL(20, 0)"),
        ("year", "BIGINT"),
        ("text[]", "ARRAY(VARCHAR)"),
        ("integer[][]", "ARRAY(ARRAY(BIGINT))"),
        ("numeric(10,2)[]", "ARRAY(DECIMAL(10, 2))"),
        ("numeric[]", "ARRAY(VARCHAR)"),
        ("timestamptz[]", "ARRAY(VARCHAR)"),
        ("double precision[]", "ARRAY(DOUBLE)"),
        ("tsvector", None),
        ("geometry", None),
        ("enum", None),
        ("set", None),
        ("datetime", "TIMESTAMP"),
        ("timestamptz", "TIMESTAMP"),
        ("date", "DATE"),
        ("boolean", "BOOLEAN"),
        ("varchar", None),
        ("json", None),
        ("double precision", "DOUBLE"),
        ("time", None),
        ("bytea", None),
    ],
)
def test_athena_type(declared: str, expected: str | None) -> None:
    assert athena_type(declared) == expected


def test_kpi_views_are_ordered_by_dependency(tmp_path: Path) -> None:
    (tmp_path / "b_total.sql").write_text("SELECT sum(n) AS total FROM a_counts", encoding="utf-8")
    (tmp_path / "a_counts.sql").write_text("-- counts\nSELECT count(*) AS n FROM z_base", encoding="utf-8")
    (tmp_path / "z_base.sql").write_text("SELECT 1 AS one", encoding="utf-8")
    assert [v.name for v in load_kpi_views([tmp_path])] == ["z_base", "a_counts", "b_total"]
    (tmp_path / "z_base.sql").write_text("SELECT * FROM b_total", encoding="utf-8")
    with pytest.raises(SettingsError, match="cycle"):
        load_kpi_views([tmp_path])


def test_engine_errors_are_one_line(tmp_path: Path) -> None:
    engine = DuckDBEngine(tmp_path, "panorama")
    with pytest.raises(EngineError, match="not valid Athena SQL"):
        engine.query("SELEC 1 FROM")
    engine.close()


def test_catalog_locked_by_another_process(tmp_path: Path) -> None:
    import subprocess
    import sys

    engine = DuckDBEngine(tmp_path, "panorama")
    engine.check()
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import duckdb, sys, time; c = duckdb.connect(sys.argv[1]); print('held', flush=True); time.sleep(30)",
            str(engine.catalog_path),
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
        engine.lock_timeout = 0.5
        with pytest.raises(EngineError, match="stayed locked by another process"):
            engine.check()
    finally:
        holder.kill()
        holder.wait()
    assert engine.check().startswith("DuckDB")


def test_cte_names_are_not_dependencies(tmp_path: Path) -> None:
    (tmp_path / "daily.sql").write_text(
        "WITH totals AS (SELECT 1 AS n) SELECT n FROM totals", encoding="utf-8"
    )
    (tmp_path / "totals.sql").write_text(
        "WITH daily AS (SELECT 2 AS n) SELECT n FROM daily", encoding="utf-8"
    )
    views = load_kpi_views([tmp_path])
    assert {v.name: v.depends_on for v in views} == {"daily": frozenset(), "totals": frozenset()}


def test_query_that_writes_gets_a_writable_connection(tmp_path: Path) -> None:
    engine = DuckDBEngine(tmp_path, "panorama")
    engine.check()  # the catalog exists, so queries first open it read-only
    engine.allow_writes = True  # what query --allow-ddl sets
    _cols, rows = engine.query("CREATE OR REPLACE VIEW answer AS SELECT 42 AS x")
    list(rows)
    _cols, rows = engine.query("SELECT x FROM answer")
    assert list(rows) == [(42,)]
    engine.close()


def test_reads_and_writes_interleave_in_one_engine(tmp_path: Path) -> None:
    _s, _t, engine = make(tmp_path)
    _cols, first = engine.query("SELECT count(*) FROM x_table_things")
    _cols, second = engine.query("SELECT count(*) FROM x_raw_things")
    assert list(first) == [(3,)] and list(second) == [(3,)]
    engine.create_view("again", "CREATE OR REPLACE VIEW again AS SELECT 1 AS one")
    _cols, rows = engine.query("SELECT one FROM again")
    assert list(rows) == [(1,)]
    engine.close()
