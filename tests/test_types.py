"""Types real schemas have, on the real servers: what `describe` reports, what the lake
holds, and what the typed view gives back on DuckDB (from the same Athena text).

Expected values come from the Python values inserted; the typed view's DuckDB types
are read back with `typeof`, so a column that silently became DOUBLE or VARCHAR fails.
"""

from __future__ import annotations

import base64
import datetime as dt
import json
from decimal import Decimal
from pathlib import Path
from typing import Any

import duckdb
import pytest
import sqlglot
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from panorama_kpi.catalog import create_tables, create_views
from panorama_kpi.engines.athena_sql import MAX_DECIMAL_PRECISION
from panorama_kpi.engines.duckdb import DuckDBEngine, to_duckdb
from panorama_kpi.lake.csv import decode_raw
from panorama_kpi.lake.local import LocalStorage
from panorama_kpi.pipeline import RunOptions, extract_and_load
from panorama_kpi.settings import DatalakeSettings, DatasourceSettings, Settings, TableSettings
from panorama_kpi.sources import open_source
from panorama_kpi.views import athena_type, typed_value_sql, typed_view_sql
from tests.opencsv_serde import read_table
from tests.servers import DBServer

PROPERTY = settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])

TEXTS = ["a b", None, 'q"x', "back\\slash", "new\nline\r", "Trailers", "", "NULL", "{}", "é😀,"]
EXACT = Decimal("0.1000000000000000055511151231257827")
HUGE = Decimal("123456789012345678901234567890.123456789")


def load(tmp_path: Path, ds: DatasourceSettings, name: str) -> tuple[DuckDBEngine, Settings, TableSettings]:
    """describe -> create tables -> full load -> typed view, on a fresh local lake."""
    with open_source(ds) as source:
        fields = source.describe(name)
    table = TableSettings(name, fields=fields)
    ds.tables = [table]
    settings = Settings(
        path=tmp_path / "s.yaml",
        datalake=DatalakeSettings(type="local", path=str(tmp_path / "lake"), base_prefix="x"),
        datasources=[ds],
    )
    engine = DuckDBEngine(tmp_path / "lake", "panorama")
    selected = [(ds, table)]
    create_tables(settings, selected, engine, lambda _: None)
    summary = extract_and_load(
        settings, selected, LocalStorage(tmp_path / "lake"), engine, RunOptions(force=True)
    )
    assert not summary.failed, summary.failed[0].error
    create_views(settings, selected, engine, False, lambda _: None)
    return engine, settings, table


def query(engine: DuckDBEngine, sql: str) -> list[tuple[Any, ...]]:
    _cols, rows = engine.query(sql)
    return list(rows)


def typed_row(engine: DuckDBEngine, table: str, columns: list[str], key: int) -> dict[str, tuple[Any, str]]:
    """column -> (value, DuckDB type) of one row of the typed view."""
    select = ", ".join(f'"{c}", typeof("{c}")' for c in columns)
    (row,) = query(engine, f"SELECT {select} FROM x_table_{table} WHERE id = {key}")
    return {c: (row[2 * i], row[2 * i + 1]) for i, c in enumerate(columns)}


def check_types(
    tmp_path: Path, ds: DatasourceSettings, types: dict[str, tuple[str, str]], values: dict[str, Any]
) -> DuckDBEngine:
    """Load table `typed`; check what describe reports (`types` [0]) and the typed view's
    values and DuckDB types (`types` [1]) in row id 1. Returns the engine for more checks."""
    engine, _settings, table = load(tmp_path, ds, "typed")
    assert {f.name: f.type for f in table.fields if f.name != "id"} == {c: t for c, (t, _) in types.items()}
    got = typed_row(engine, "typed", list(types), 1)
    assert {c: v for c, (v, _) in got.items()} == values
    assert {c: t for c, (_, t) in got.items()} == {c: t for c, (_, t) in types.items()}
    return engine


# ================================================================= PostgreSQL
PG_SETUP = [
    "DROP TABLE IF EXISTS typed",
    "DROP DOMAIN IF EXISTS big_id2, big_id, money2, tags CASCADE",
    "DROP TYPE IF EXISTS mood",
    "CREATE DOMAIN big_id AS bigint CHECK (VALUE > 0)",
    "CREATE DOMAIN big_id2 AS big_id",  # a domain over a domain
    "CREATE DOMAIN money2 AS numeric(12,2)",
    "CREATE DOMAIN tags AS text[]",
    "CREATE TYPE mood AS ENUM ('sad', 'ok')",
    "CREATE TABLE typed (id int, n numeric, nw numeric(50,10), nneg numeric(5,-2), d big_id, dd big_id2,"
    " m money2, tg tags, arr text[], iarr integer[], narr numeric[], darr numeric(10,2)[],"
    " farr double precision[], barr boolean[], tzarr timestamptz[], jarr jsonb[], grid integer[][],"
    " tsv tsvector, tz timestamptz, mo mood, ids big_id[])",
]
PG_ROW = {
    "id": 1,
    "n": EXACT,
    "nw": HUGE,
    "nneg": Decimal("1234500"),
    "d": 2**63 - 1,
    "dd": 42,
    "m": Decimal("1234567890.25"),
    "tg": ["x", None],
    "arr": TEXTS,
    "iarr": [1, None, 2**31 - 1],
    "narr": [EXACT, None, HUGE],
    "darr": [Decimal("1.25"), None],
    "farr": [0.1 + 0.2, -1e300, None],
    "barr": [True, False, None],
    "tzarr": ["2024-03-01 10:00:00+05:30"],
    "jarr": ['{"k": "v\\n"}'],
    "grid": [[1, 2], [3, None]],
    "tsv": "'brown':3 'quick':2",
    "tz": "2024-03-01 10:00:00.5+05:30",
    "mo": "ok",
    "ids": [7, 8],
}
PG_TYPES = {  # describe() -> typed view (DuckDB type)
    "n": ("numeric", "VARCHAR"),
    "nw": ("numeric(50,10)", "VARCHAR"),
    "nneg": ("numeric(5,-2)", "DECIMAL(7,0)"),
    "d": ("bigint", "BIGINT"),
    "dd": ("bigint", "BIGINT"),
    "m": ("numeric(12,2)", "DECIMAL(12,2)"),
    "tg": ("text[]", "VARCHAR[]"),
    "arr": ("text[]", "VARCHAR[]"),
    "iarr": ("integer[]", "BIGINT[]"),
    "narr": ("numeric[]", "VARCHAR[]"),
    "darr": ("numeric(10,2)[]", "DECIMAL(10,2)[]"),
    "farr": ("double precision[]", "DOUBLE[]"),
    "barr": ("boolean[]", "BOOLEAN[]"),
    "tzarr": ("timestamptz[]", "VARCHAR[]"),
    "jarr": ("jsonb[]", "VARCHAR[]"),
    "grid": ("integer[][]", "BIGINT[][]"),
    "tsv": ("tsvector", "VARCHAR"),
    "tz": ("timestamptz", "TIMESTAMP_MS"),  # Athena: timestamp(3)
    "mo": ("mood", "VARCHAR"),
    "ids": ("bigint[]", "BIGINT[]"),
}
PG_VALUES = {  # what the typed view gives back: the values inserted, but
    **{c: v for c, v in PG_ROW.items() if c != "id"},
    "n": str(EXACT),  # exact text
    "nw": f"{HUGE:.10f}",
    "narr": [str(EXACT), None, str(HUGE)],
    "tzarr": ["2024-03-01 04:30:00+00"],  # elements keep PostgreSQL's text, in UTC
    "tz": dt.datetime(2024, 3, 1, 4, 30, 0, 500000),
}


@pytest.fixture
def pg_typed(pg_conn: Any) -> None:
    cur = pg_conn.cursor()
    for statement in PG_SETUP:
        cur.execute(statement)
    cur.execute("SET TIME ZONE 'America/Sao_Paulo'")
    cols = list(PG_ROW)
    casts = {"tzarr": "::timestamptz[]", "jarr": "::jsonb[]"}  # psycopg2 sends lists of str as text[]
    marks = ", ".join(f"%s{casts.get(c, '')}" for c in cols)
    cur.execute(f"INSERT INTO typed ({', '.join(cols)}) VALUES ({marks})", list(PG_ROW.values()))
    cur.execute("INSERT INTO typed (id) VALUES (2)")  # every column NULL


def test_pg_types_describe_lake_and_view(tmp_path: Path, pg_server: DBServer, pg_typed: None) -> None:
    ds = DatasourceSettings("postgresql", "pg", pg_server.settings_dict())
    engine = check_types(tmp_path, ds, PG_TYPES, PG_VALUES)
    nulls = typed_row(engine, "typed", list(PG_TYPES), 2)
    assert all(v is None for v, _ in nulls.values())
    # The raw table holds JSON arrays, not PostgreSQL's {"a b",NULL} literal.
    (raw,) = query(engine, "SELECT arr, narr, grid FROM x_raw_typed WHERE id = '1'")
    assert json.loads(raw[0].replace("\\n", "\n").replace("\\r", "\r").replace("\\b", "\\")) == TEXTS
    assert json.loads(raw[1]) == [str(EXACT), None, str(HUGE)]
    assert json.loads(raw[2]) == [[1, 2], [3, None]]
    engine.close()


def test_pg_arrays_work_with_contains_and_unnest(tmp_path: Path, pg_server: DBServer, pg_typed: None) -> None:
    ds = DatasourceSettings("postgresql", "pg", pg_server.settings_dict())
    engine, settings, table = load(tmp_path, ds, "typed")
    # Athena SQL, transpiled to DuckDB by the engine, as a user would write it.
    assert query(engine, "SELECT id FROM x_table_typed WHERE contains(arr, 'Trailers')") == [(1,)]
    assert query(engine, "SELECT id FROM x_table_typed WHERE contains(arr, 'Trailer')") == []
    assert query(engine, "SELECT id FROM x_table_typed WHERE contains(iarr, 2147483647)") == [(1,)]
    rows = query(engine, "SELECT t.id, f.v FROM x_table_typed t CROSS JOIN UNNEST(t.arr) AS f(v)")
    assert sorted(rows, key=lambda r: (r[1] is None, r[1] or "")) == sorted(
        [(1, v) for v in TEXTS], key=lambda r: (r[1] is None, r[1] or "")
    )
    assert query(engine, "SELECT cardinality(arr), element_at(arr, 6) FROM x_table_typed WHERE id = 1") == [
        (len(TEXTS), "Trailers")
    ]
    engine.close()


def test_array_view_text_is_athena_sql(tmp_path: Path) -> None:
    """The typed view's Athena text casts the JSON array (valid Trino: CAST(json_parse(x) AS ARRAY(...)))."""
    from panorama_kpi.settings import Field

    table = TableSettings(
        "t", fields=[Field("a", "text[]"), Field("g", "integer[][]"), Field("n", "numeric")]
    )
    settings = Settings(
        path=tmp_path / "s.yaml",
        datalake=DatalakeSettings(type="local", path=str(tmp_path), base_prefix="x"),
        datasources=[DatasourceSettings("postgresql", "pg", tables=[table])],
    )
    sql = typed_view_sql(settings, table)
    assert 'AS ARRAY(VARCHAR)) AS "a"' in sql and 'AS ARRAY(ARRAY(BIGINT))) AS "g"' in sql
    assert "TRY_CAST(try(json_parse(CASE WHEN" in sql
    (n_column,) = [line for line in sql.splitlines() if line.endswith('AS "n"')]
    assert "CAST" not in n_column  # kept as exact text
    tree = sqlglot.parse_one(sql, read="athena")
    casts = [c.to.sql(dialect="athena") for c in tree.find_all(sqlglot.exp.Cast)]
    assert casts == ["ARRAY(VARCHAR)", "ARRAY(ARRAY(BIGINT))"]


def test_pg_old_array_literal_in_lake_reads_as_null(
    tmp_path: Path, pg_server: DBServer, pg_typed: None
) -> None:
    """A lake object written before arrays were JSON gives NULL in the view, not a failing query."""
    ds = DatasourceSettings("postgresql", "pg", pg_server.settings_dict())
    engine, settings, table = load(tmp_path, ds, "typed")
    (path,) = (tmp_path / "lake").rglob("typed.csv")
    text = path.read_text(encoding="utf-8")
    start = text.index('"[\\"x\\",null]"')
    path.write_text(text[:start] + '"{x,NULL}"' + text[start + len('"[\\"x\\",null]"') :], encoding="utf-8")
    assert query(engine, "SELECT tg, arr[1] FROM x_table_typed WHERE id = 1") == [(None, "a b")]
    engine.close()


@pytest.fixture(scope="module")
def pg_array_table(pg_server: DBServer) -> Any:
    """A connection and a source on a one-row table of a text[] column, for property tests."""
    conn = pg_server.connect()
    with conn.cursor() as cur:
        cur.execute("DROP TABLE IF EXISTS prop_arr")
        cur.execute("CREATE TABLE prop_arr (id int, a text[], g text[][])")
    ds = DatasourceSettings("postgresql", "pg", pg_server.settings_dict())
    with open_source(ds) as source:
        yield conn, source
    conn.close()


# Any text PostgreSQL can store (no NUL, no lone surrogates).
ELEMENT = st.one_of(
    st.none(), st.text(st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"))
)


@PROPERTY
@given(
    values=st.lists(ELEMENT, max_size=6), grid=st.lists(st.lists(ELEMENT, min_size=2, max_size=2), max_size=3)
)
def test_pg_text_arrays_survive_lake_and_view(
    pg_array_table: Any, values: list[Any], grid: list[Any]
) -> None:
    """Any text[] value: the lake holds its JSON array (read as Athena's SerDe reads it),
    and the typed view's expression gives back the very same elements."""
    conn, source = pg_array_table
    with conn.cursor() as cur:
        cur.execute("TRUNCATE prop_arr")
        cur.execute("INSERT INTO prop_arr VALUES (1, %s::text[], %s::text[][])", [values, grid or None])
    text = "".join(source.dump(TableSettings("prop_arr"), ["a", "g"]))
    assert text.count("\n") == 1  # not splitlines: U+0085, U+2028... are data
    line = text
    (fields,) = read_table(line, 2, skip_header=0)
    texts = [decode_raw(f or "") for f in fields]
    assert json.loads(texts[0] or "") == values
    assert (None if texts[1] is None else json.loads(texts[1])) == (grid or None)
    con = duckdb.connect()
    con.execute("CREATE TABLE t (a VARCHAR, g VARCHAR)")
    con.execute("INSERT INTO t VALUES (?, ?)", texts)
    a_sql, g_sql = typed_value_sql('"a"', "text[]"), typed_value_sql('"g"', "text[][]")
    assert con.execute(to_duckdb(f"SELECT {a_sql}, {g_sql} FROM t")).fetchall() == [(values, grid or None)]
    con.close()


@PROPERTY
@given(precision=st.integers(1, 1000), scale=st.integers(-1000, 1000))
def test_decimal_view_type_holds_every_value_of_the_source_type(precision: int, scale: int) -> None:
    """numeric(p,s) holds max(p-s, 0) integer and max(s, 0) fraction digits: the view's
    DECIMAL holds at least those, or the column stays text when no DECIMAL(38) can."""
    integer_digits, fraction_digits = max(precision - scale, 0), max(scale, 0)
    typed = athena_type(f"numeric({precision},{scale})")
    if integer_digits + fraction_digits > MAX_DECIMAL_PRECISION:
        assert typed is None
        return
    assert typed is not None
    p, s = (int(x) for x in typed.removeprefix("DECIMAL(").removesuffix(")").split(","))
    assert 0 <= s <= p <= MAX_DECIMAL_PRECISION
    assert p - s >= integer_digits and s >= fraction_digits


# ================================================================= MySQL / MariaDB
MYSQL_DDL = (
    "CREATE TABLE typed (id INT, g GEOMETRY, pt POINT, en ENUM('a','b c'), st SET('x','y','z'), yr YEAR,"
    " bn BINARY(4), vb VARBINARY(10), bl BLOB, ub BIGINT UNSIGNED, ui INT UNSIGNED, wide DECIMAL(65,30),"
    " ts TIMESTAMP(6) NULL, dt DATETIME(6), bo TINYINT(1)) CHARACTER SET utf8mb4"
)
WIDE = Decimal("12345678901234567890123456789012345.123456789012345678901234567891")
MYSQL_TYPES = {
    "g": ("geometry", "VARCHAR"),
    "pt": ("point", "VARCHAR"),
    "en": ("enum", "VARCHAR"),
    "st": ("set", "VARCHAR"),
    "yr": ("year", "BIGINT"),
    "bn": ("binary", "VARCHAR"),
    "vb": ("varbinary", "VARCHAR"),
    "bl": ("blob", "VARCHAR"),
    "ub": ("bigint unsigned", "DECIMAL(20,0)"),
    "ui": ("int unsigned", "BIGINT"),
    "wide": ("decimal(65,30)", "VARCHAR"),
    "ts": ("timestamp", "TIMESTAMP_MS"),  # Athena: timestamp(3)
    "dt": ("datetime", "TIMESTAMP_MS"),  # Athena: timestamp(3)
    "bo": ("tinyint", "BIGINT"),
}
MYSQL_VALUES = {
    "g": "POLYGON((0 0,10 0,10 10,0 0))",
    "pt": "POINT(1.5 -2)",
    "en": "b c",
    "st": "x,z",
    "yr": 2024,
    "bn": base64.b64encode(b"ab\x00\x00").decode(),
    "vb": base64.b64encode(b"\xff\n\x00").decode(),
    "bl": base64.b64encode(bytes(range(256))).decode(),
    "ub": Decimal(2**64 - 1),
    "ui": 2**32 - 1,
    "wide": str(WIDE),
    "ts": dt.datetime(2024, 3, 1, 4, 30, 0, 123000),  # read as Athena does: milliseconds
    "dt": dt.datetime(2024, 3, 1, 10, 0, 0, 123000),
    "bo": 1,
}


def test_mysql_types_describe_lake_and_view(tmp_path: Path, mysql_server: DBServer, mysql_conn: Any) -> None:
    with mysql_conn.cursor() as cur:
        cur.execute("DROP TABLE IF EXISTS typed")
        cur.execute(MYSQL_DDL)
        cur.execute("SET time_zone = '+05:30'")
        cur.execute(
            "INSERT INTO typed VALUES (1, ST_GeomFromText('POLYGON((0 0,10 0,10 10,0 0))'), POINT(1.5, -2),"
            " 'b c', 'z,x', 2024, %s, %s, %s, %s, %s, %s, '2024-03-01 10:00:00.123456',"
            " '2024-03-01 10:00:00.123456', 1)",
            [b"ab", b"\xff\n\x00", bytes(range(256)), 2**64 - 1, 2**32 - 1, WIDE],
        )
        cur.execute("INSERT INTO typed (id, st) VALUES (2, '')")
    ds = DatasourceSettings("mysql", "my", mysql_server.settings_dict())
    engine = check_types(tmp_path, ds, MYSQL_TYPES, MYSQL_VALUES)
    empty = typed_row(engine, "typed", list(MYSQL_TYPES), 2)
    assert empty["st"][0] == "" and all(v is None for c, (v, _) in empty.items() if c != "st")
    engine.close()
