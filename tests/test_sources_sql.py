"""SQL sources against real servers (MariaDB, PostgreSQL, SQLite).

Each engine gets a table of hostile values. Expectations are computed from the Python
values inserted, never by running the sources' SQL: every dumped line must equal
`encode_row` of the values' canonical text, and reading the lines back the way
Athena's OpenCSVSerde does (tests/opencsv_serde.py) and undoing the raw layer with
`decode_raw` must give that text again. Floats are the one place where the server's
spelling differs from Python's `repr` (`1e300` vs `1e+300`): there the text must
parse back to the very same double.
"""

from __future__ import annotations

import base64
import datetime as dt
import json
import math
import sqlite3
import struct
import uuid
from collections.abc import Callable, Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from panorama_kpi.errors import SourceError
from panorama_kpi.lake.csv import decode_raw, encode_row, render
from panorama_kpi.settings import DatasourceSettings, TableSettings
from panorama_kpi.sources import open_source
from panorama_kpi.sources.base import Source
from tests.opencsv_serde import read_table
from tests.servers import DBServer, free_port

MB_TEXT = '0123456789abcdef\\\n",' * (1 << 16)  # 1.25 MB, every escape on every line

TEXTS: list[str | None] = [
    None, "", "NULL", "\\N", "N", "\\", "end\\", "\\n", '\\"', 'q"', '""', "a\nb", "a\rb", "a\r\nb", "\n",
    "\r\n\r\n", "a,b", ",", "tab\tx", "ctl \x01\x02\x07\x08\x0b\x0c\x1b\x7f", "emoji 😀 𝄞 non-BMP",
    "ünï ñ 中文", "'", "\\b\\r\\n literal escapes", " lead and trail ", MB_TEXT,
]  # fmt: skip


def cycle(values: list[Any], i: int) -> Any:
    return values[i % len(values)]


# ---------------------------------------------------------------- helpers
def dump_lines(
    source: Source, table: str, columns: list[str], where: dict[str, Any] | None = None
) -> list[str]:
    chunks = list(source.dump(TableSettings(name=table), columns, where))
    assert all(c.endswith("\n") for c in chunks)
    text = "".join(chunks)
    return [line + "\n" for line in text.split("\n")[:-1]]  # not splitlines: \x0b, \x85... are data


def check_dump(source: Source, table: str, columns: list[str], expected: dict[int, list[Any]]) -> None:
    """Dump `table` and compare each line (keyed by its first column, the id) with `expected`.

    `expected` holds canonical texts, or for floats the float value, which the
    dumped text must parse back to (sign of zero and NaN included).
    """
    lines = dump_lines(source, table, columns)
    assert len(lines) == len(expected)
    for line in lines:
        if len(line) > 100_000:  # the SerDe model is slow on a megabyte: a plain reader
            raw: list[str | None] = split_fields(line)
        else:
            (raw,) = read_table(line, len(columns), skip_header=0)
        key = int(raw[0] or 0)
        want = list(expected[key])
        for i, value in enumerate(want):
            if isinstance(value, float):
                assert raw[i] is not None, (key, columns[i])
                got_text = decode_raw(raw[i])
                assert got_text is not None
                got = float(got_text)
                assert got == value or (math.isnan(got) and math.isnan(value)), (key, columns[i], got_text)
                assert math.copysign(1, got) == math.copysign(1, value), (key, columns[i], got_text)
                want[i] = got_text
        assert line == encode_row(want), (key, line[:300])
        assert [None if r is None else decode_raw(r) for r in raw] == want


def split_fields(line: str) -> list[str | None]:
    """Fields of one line under the contract's layer 2: quoted, backslash escapes the next character."""
    fields: list[str | None] = []
    chars: list[str] = []
    i, end = 0, len(line) - 1  # the line ends with its newline
    while i < end:
        assert line[i] == '"', (i, line[i : i + 20])
        i += 1
        chars.clear()
        while line[i] != '"':
            if line[i] == "\\":
                i += 1
            chars.append(line[i])
            i += 1
        fields.append("".join(chars))
        i += 1
        assert line[i] in ",\n"
        i += 1
    return fields


def utc(*args: int) -> dt.datetime:
    return dt.datetime(*args)  # naive = UTC, as panorama passes windows


def ds(kind: str, options: dict[str, Any], name: str = "db") -> DatasourceSettings:
    return DatasourceSettings(type=kind, name=name, options=dict(options), tables=[])


def expect_error(call: Callable[[], Any], *fragments: str) -> str:
    with pytest.raises(SourceError) as info:
        call()
    text = str(info.value)
    assert "\n" not in text and "Traceback" not in text, text
    exc = info.value
    assert exc.__cause__ is None and (exc.__context__ is None or exc.__suppress_context__), (
        "driver error leaked"
    )
    for fragment in fragments:
        assert fragment in text, (fragment, text)
    return text


# ---------------------------------------------------------------- shared partition table
PART_ROWS = [
    (1, "it's", utc(2024, 1, 1)),
    (2, "a/b", utc(2024, 1, 2)),
    (3, "50%", utc(2024, 1, 3, 12, 30, 0, 500)),
    (4, "k=v", utc(2024, 1, 4)),
    (5, "ñandú 😀", utc(2024, 1, 5)),
    (6, None, utc(2024, 1, 6)),
    (7, "it's", utc(2023, 12, 1)),
    (8, "old only", utc(2023, 12, 2)),
]
PART_TABLE = 'part %tbl "q`'
RECENT = ["50%", "a/b", "it's", "k=v", "ñandú 😀"]


def check_partitions(source: Source) -> None:
    table = TableSettings(name=PART_TABLE, partition_fields=["c%1"], timestamp_field="ts")
    recent = list(source.partition_values(table, utc(2024, 1, 1)))
    assert sorted(recent, key=lambda t: (t[0] is None, t[0] or "")) == [(v,) for v in RECENT] + [(None,)]
    ordered = [v for (v,) in recent if v is not None]
    assert ordered == sorted(ordered)
    everything = {v for (v,) in source.partition_values(table, None)}
    assert everything == {*RECENT, None, "old only"}
    assert {v for (v,) in source.partition_values(table, utc(2024, 1, 3, 12, 30, 0, 500))} == {
        "50%",
        "k=v",
        "ñandú 😀",
        None,
    }
    for value in [*RECENT, None]:
        lines = dump_lines(source, PART_TABLE, ["id", "c%1"], {"c%1": value})
        ids = sorted(int(line.split(",")[0].strip('"')) for line in lines)
        assert ids == sorted(r[0] for r in PART_ROWS if r[1] == value), value
        assert all(line.endswith("," + encode_row([value])) for line in lines)
    assert dump_lines(source, PART_TABLE, ["id"], {"c%1": "nothing'; DROP TABLE x; --"}) == []


def check_missing(source: Source, table: str) -> None:
    expect_error(
        lambda: source.describe("no_such_table"),
        "table 'no_such_table' not found in datasource 'db'",
        "run set-tables",
    )
    expect_error(
        lambda: source.dump(TableSettings(name=table), ["id", "gone_field"]), "'gone_field'", "table"
    )
    expect_error(
        lambda: source.partition_values(TableSettings(name=table, partition_fields=["gone_part"]), None),
        "partition field 'gone_part'",
    )
    expect_error(
        lambda: source.partition_values(
            TableSettings(name=table, partition_fields=["id"], timestamp_field="gone_ts"), utc(2024, 1, 1)
        ),
        "timestamp field 'gone_ts'",
    )
    expect_error(lambda: source.dump(TableSettings(name=table), ["id"], {"gone_where": 1}), "'gone_where'")


# ================================================================= MySQL / MariaDB
MYSQL_COLUMNS = {
    "id": ("INT PRIMARY KEY", None),
    "t": ("LONGTEXT", TEXTS + ["nul \x00 byte"]),
    "i": ("BIGINT", [None, 0, -1, 2**63 - 1, -(2**63), 42]),
    "u": ("BIGINT UNSIGNED", [None, 0, 2**64 - 1]),
    "de": (
        "DECIMAL(30,10)",
        [None, Decimal("0"), Decimal("-1.5"), Decimal("12345678901234567890.0123456789")],
    ),
    "db": (
        "DOUBLE",
        [None, 0.1, 0.1 + 0.2, 1e300, -1.5e-7, 5e-324, 1.7976931348623157e308, 1.2345678901234568e17, 3.0],
    ),
    "fl": ("FLOAT", [None, 0.1, 16777217.0, 3.4e38, -1.25]),
    "ti": ("TINYINT(1)", [None, 0, 1, -128, 127]),
    "d6": (
        "DATETIME(6)",
        [None, dt.datetime(2024, 2, 29, 23, 59, 59, 999999), dt.datetime(1000, 1, 1, 0, 0, 0, 1)],
    ),
    "d0": ("DATETIME", [None, dt.datetime(2024, 1, 2, 3, 4, 5), dt.datetime(9999, 12, 31, 23, 59, 59)]),
    "d3": ("DATETIME(3)", [None, dt.datetime(2024, 1, 2, 3, 4, 5, 678000)]),
    "ts": ("TIMESTAMP(6) NULL", [None, dt.datetime(2024, 3, 1, 10, 0, 0, 123456)]),
    "da": ("DATE", [None, dt.date(2024, 2, 29), dt.date(1000, 1, 1)]),
    "tm": ("TIME", [None, "-838:59:59", "25:00:01", "00:00:00"]),
    "yr": ("YEAR", [None, 2024, 1901]),
    "js": ("JSON", [None, '{"k": "line\\nbreak \\"q\\" back\\\\slash", "n": null, "e": "😀"}', "[]"]),
    "vb": ("VARBINARY(600)", [None, b"", bytes(range(256)), b'\x00\n\r"\\,\xff\xfe\xfd']),
    "bl": ("BLOB", [None, bytes(range(256)) * 3]),
    "en": ("ENUM('a','b,c','d\"e','f\\\\g')", [None, "a", "b,c", 'd"e', "f\\g"]),
    "bi": ("BIT(8)", [None, 0, 255, 5]),
    "la": ("VARCHAR(50) CHARACTER SET latin1", [None, "café ÿ ý þ", "plain"]),
    "u3": ("VARCHAR(50) CHARACTER SET utf8mb3", [None, "ñandú", 'x\\y"z']),
}


def mysql_expected(column: str, value: Any) -> Any:
    if value is None or column in ("db",):
        return value
    if column == "fl":
        return struct.unpack("f", struct.pack("f", value))[0]
    if column == "de":
        return f"{value:.10f}"
    if column == "ts":  # inserted in a +05:30 session: stored and dumped in UTC
        return render(value - dt.timedelta(hours=5, minutes=30))
    if column in ("vb", "bl"):
        return base64.b64encode(value).decode()
    return render(value)


@pytest.fixture(scope="module")
def mysql_tables(mysql_server: DBServer) -> dict[int, list[Any]]:
    conn = mysql_server.connect(max_allowed_packet=64 << 20)
    with conn.cursor() as cur:
        cur.execute("DROP TABLE IF EXISTS hostile")
        cur.execute(
            f"CREATE TABLE hostile ({', '.join(f'`{c}` {t}' for c, (t, _) in MYSQL_COLUMNS.items())})"
        )
        cur.execute("SET time_zone = '+05:30'")
        expected = {}
        for i in range(len(MYSQL_COLUMNS["t"][1])):
            row = [i] + [cycle(vals, i) for _, vals in list(MYSQL_COLUMNS.values())[1:]]
            marks = ", ".join(["%s"] * len(row))
            cur.execute(f"INSERT INTO hostile VALUES ({marks})", row)
            expected[i] = [str(i)] + [
                mysql_expected(c, v) for c, v in zip(list(MYSQL_COLUMNS)[1:], row[1:], strict=True)
            ]
        cur.execute('DROP TABLE IF EXISTS `part %tbl "q```')
        cur.execute('CREATE TABLE `part %tbl "q``` (id INT, `c%1` VARCHAR(50), ts DATETIME(6))')
        cur.executemany('INSERT INTO `part %%tbl "q``` VALUES (%s, %s, %s)', PART_ROWS)
    conn.close()
    return expected


@pytest.fixture
def mysql_source(mysql_server: DBServer) -> Iterator[Source]:
    with open_source(ds("mysql", mysql_server.settings_dict())) as source:
        yield source


def test_mysql_hostile_values(
    mysql_source: Source, mysql_tables: dict[int, list[Any]], mysql_conn: Any
) -> None:
    with mysql_conn.cursor() as cur:  # our session must pin UTC whatever the server's zone
        cur.execute("SET GLOBAL time_zone = '+03:00'")
    try:
        check_dump(mysql_source, "hostile", list(MYSQL_COLUMNS), mysql_tables)
    finally:
        with mysql_conn.cursor() as cur:
            cur.execute("SET GLOBAL time_zone = '+00:00'")


def test_mysql_fallback_reader_gives_the_same_lines(
    mysql_source: Source, mysql_tables: dict[int, list[Any]], monkeypatch: pytest.MonkeyPatch
) -> None:
    fast = sorted(dump_lines(mysql_source, "hostile", list(MYSQL_COLUMNS)))
    monkeypatch.setattr("panorama_kpi.sources.mysql.fast_path_ok", lambda conn, cur: False)
    assert sorted(dump_lines(mysql_source, "hostile", list(MYSQL_COLUMNS))) == fast


def test_mysql_describe_check_list(
    mysql_source: Source, mysql_tables: dict[int, list[Any]], mysql_server: DBServer
) -> None:
    types = {f.name: f.type for f in mysql_source.describe("hostile")}
    assert types == {
        "id": "int", "t": "longtext", "i": "bigint", "u": "bigint unsigned", "de": "decimal(30,10)", "db": "double",
        "fl": "float", "ti": "tinyint", "d6": "datetime", "d0": "datetime", "d3": "datetime", "ts": "timestamp",
        "da": "date", "tm": "time", "yr": "year", "js": "longtext", "vb": "varbinary", "bl": "blob", "en": "enum",
        "bi": "bit", "la": "varchar", "u3": "varchar",
    }  # fmt: skip
    assert {"hostile", PART_TABLE} <= set(mysql_source.list_tables())
    assert mysql_source.check().startswith("MariaDB 1")
    assert f"{mysql_server.host}:{mysql_server.port}/{mysql_server.database}" in mysql_source.check()


def test_mysql_partitions_and_filters(mysql_source: Source, mysql_tables: dict[int, list[Any]]) -> None:
    check_partitions(mysql_source)


def test_mysql_streams_in_chunks_and_survives_abandonment(mysql_source: Source, mysql_conn: Any) -> None:
    with mysql_conn.cursor() as cur:
        cur.execute("DROP TABLE IF EXISTS many")
        cur.execute("CREATE TABLE many (id INT PRIMARY KEY, s VARCHAR(200))")
        cur.execute("INSERT INTO many SELECT seq, REPEAT('x', 150) FROM seq_1_to_20000")
    chunks = list(mysql_source.dump(TableSettings(name="many"), ["id", "s"]))
    assert len(chunks) >= 3 and all(c.endswith("\n") for c in chunks)
    assert sum(c.count("\n") for c in chunks) == 20000
    stream = mysql_source.dump(TableSettings(name="many"), ["id", "s"])
    next(stream)
    stream.close()  # leaves the server mid-result: the source must reconnect
    assert sum(c.count("\n") for c in mysql_source.dump(TableSettings(name="many"), ["id"])) == 20000


def test_mysql_rows_beyond_one_packet(mysql_source: Source, mysql_conn: Any, mysql_server: DBServer) -> None:
    big = 'é\\\n"' * (7 << 19)  # 18 MB of UTF-8: more than one 16 MB protocol packet
    with mysql_conn.cursor() as cur:
        cur.execute("SELECT @@GLOBAL.max_allowed_packet")
        (old,) = cur.fetchone()
        cur.execute("SET GLOBAL max_allowed_packet = %s", (256 << 20,))
    try:
        conn = mysql_server.connect(max_allowed_packet=256 << 20)
        with conn.cursor() as cur:
            cur.execute("DROP TABLE IF EXISTS big")
            cur.execute("CREATE TABLE big (id INT PRIMARY KEY, s LONGTEXT)")
            cur.execute("INSERT INTO big VALUES (1, %s), (2, 'small')", (big,))
        conn.close()
        with open_source(ds("mysql", mysql_server.settings_dict())) as source:
            assert sorted(dump_lines(source, "big", ["id", "s"])) == [
                encode_row(["1", big]),
                encode_row(["2", "small"]),
            ]
        with mysql_conn.cursor() as cur:
            cur.execute("SET GLOBAL max_allowed_packet = %s", (1 << 20,))
        with open_source(ds("mysql", mysql_server.settings_dict())) as source:
            expect_error(lambda: dump_lines(source, "big", ["id", "s"]), "max_allowed_packet", "'big'")
    finally:
        with mysql_conn.cursor() as cur:
            cur.execute("SET GLOBAL max_allowed_packet = %s", (old,))
            cur.execute("DROP TABLE IF EXISTS big")


def test_mysql_not_null_columns_skip_the_null_marker(mysql_source: Source, mysql_conn: Any) -> None:
    with mysql_conn.cursor() as cur:
        cur.execute("DROP TABLE IF EXISTS strict_t")
        cur.execute(
            "CREATE TABLE strict_t (id INT NOT NULL, s VARCHAR(20) NOT NULL, d DATETIME(6) NOT NULL,"
            " d0 DATETIME NOT NULL, f DOUBLE NOT NULL, b VARBINARY(10) NOT NULL, l VARCHAR(9) CHARACTER SET latin1 NOT NULL)"
        )
        cur.execute(
            "INSERT INTO strict_t VALUES (1, %s, '2024-01-02 03:04:05.000006', '2024-01-02 03:04:05', 0.5, %s, %s)",
            ('\\N\n"', b"\x00", "ÿ"),
        )
    assert dump_lines(mysql_source, "strict_t", ["id", "s", "d", "d0", "f", "b", "l"]) == [
        encode_row(
            ["1", '\\N\n"', "2024-01-02 03:04:05.000006", "2024-01-02 03:04:05.000000", "0.5", "AA==", "ÿ"]
        )
    ]


def test_mysql_errors(
    mysql_source: Source, mysql_tables: dict[int, list[Any]], mysql_server: DBServer
) -> None:
    opts = mysql_server.settings_dict()
    at = f"{mysql_server.host}:{mysql_server.port}"
    with open_source(ds("mysql", {**opts, "password": "wrong"})) as bad:
        expect_error(
            bad.check,
            f"datasource 'db': access denied for user '{mysql_server.user}' at {at}",
            "check username/password",
        )
    port = free_port()
    with open_source(ds("mysql", {**opts, "port": port})) as bad:
        expect_error(
            bad.check, f"cannot reach the MySQL server at {mysql_server.host}:{port}", "check host/port"
        )
    with open_source(ds("mysql", {**opts, "database": "nope"})) as bad:
        expect_error(bad.list_tables, "database 'nope' does not exist")
    check_missing(mysql_source, "hostile")


# ================================================================= PostgreSQL
PG_COLUMNS = {
    "id": ("integer PRIMARY KEY", None),
    "t": ("text", TEXTS),
    "vc": ("varchar(20)", [None, "it's", "ñ"]),
    "ch": ("char(5)", [None, "ab"]),
    "i8": ("bigint", [None, 0, -1, 2**63 - 1, -(2**63)]),
    "i2": ("smallint", [None, -32768, 32767]),
    "n": (
        "numeric(30,10)",
        [None, Decimal("0"), Decimal("-1.5"), Decimal("12345678901234567890.0123456789")],
    ),
    "nu": ("numeric", [None, Decimal("1.50"), Decimal("-0.000001"), Decimal("NaN")]),
    "f8": (
        "double precision",
        [None, 0.1, 0.1 + 0.2, 1e300, -1.5e-7, 5e-324, math.nan, math.inf, -math.inf, "-0", 1e15],
    ),
    "f4": ("real", [None, 0.5, 1.25, 0.1, 16777216.0]),
    "b": ("boolean", [None, True, False]),
    "ts": (
        "timestamp(6)",
        [None, dt.datetime(2024, 2, 29, 23, 59, 59, 999999), dt.datetime(2024, 1, 1), "infinity"],
    ),
    "tz": (
        "timestamptz",
        [None, "2024-03-01 10:00:00.5+05:30", "2024-06-30 23:59:59.999999-03", "-infinity"],
    ),
    "d": ("date", [None, dt.date(2024, 2, 29), "infinity"]),
    "tm": ("time", [None, "12:34:56.5", "00:00:00"]),
    "j": ("json", [None, '{\r\n "k": "a\\nb \\"q\\" \\\\",\n "raw": "x"}']),
    "jb": ("jsonb", [None, '{"a": 1, "b": "x\\"y\\\\z\\n"}']),
    "by": ("bytea", [None, b"", bytes(range(256)), b'\x00\n\r"\\']),
    "u": ("uuid", [None, str(uuid.UUID(int=0x12345678123456781234567812345678))]),
    "arr": ("text[]", [None, ["a", "b c", None, 'q"x', "back\\slash", "new\nline"]]),
    "iv": ("interval", [None, "1 day 02:00:00"]),
}
PG_TEXT = {  # canonical text of values whose Python form does not render to it
    "ab": "ab   ",
    "2024-03-01 10:00:00.5+05:30": "2024-03-01 04:30:00.500000",
    "2024-06-30 23:59:59.999999-03": "2024-07-01 02:59:59.999999",
    '{"a": 1, "b": "x\\"y\\\\z\\n"}': '{"a": 1, "b": "x\\"y\\\\z\\n"}',
}
# Arrays leave PostgreSQL as JSON (to_json's spelling: no spaces, JSON escapes).
PG_ARRAY_TEXT = json.dumps(PG_COLUMNS["arr"][1][1], ensure_ascii=False, separators=(",", ":"))


def pg_expected(column: str, value: Any) -> Any:
    if value is None or column in ("f8", "f4"):  # "-0": psycopg2 would send -0.0 as the numeric 0
        return float(value) if isinstance(value, str) else value
    if column == "n":
        return f"{value:.10f}"
    if column == "by":
        return base64.b64encode(value).decode()
    if column == "arr":
        return PG_ARRAY_TEXT
    if column == "ch":
        return value.ljust(5)
    return PG_TEXT.get(value, render(value)) if isinstance(value, str) else render(value)


@pytest.fixture(scope="module")
def pg_tables(pg_server: DBServer) -> dict[int, list[Any]]:
    conn = pg_server.connect()
    with conn.cursor() as cur:
        cur.execute("SET TIME ZONE 'America/Sao_Paulo'")
        cur.execute("DROP TABLE IF EXISTS hostile")
        cur.execute(f"CREATE TABLE hostile ({', '.join(f'{c} {t}' for c, (t, _) in PG_COLUMNS.items())})")
        expected = {}
        for i in range(len(TEXTS)):
            row = [i] + [cycle(vals, i) for _, vals in list(PG_COLUMNS.values())[1:]]
            cur.execute(f"INSERT INTO hostile VALUES ({', '.join(['%s'] * len(row))})", row)
            expected[i] = [str(i)] + [
                pg_expected(c, v) for c, v in zip(list(PG_COLUMNS)[1:], row[1:], strict=True)
            ]
        cur.execute('DROP TABLE IF EXISTS "part %tbl ""q`"')
        cur.execute('CREATE TABLE "part %tbl ""q`" (id int, "c%1" text, ts timestamptz)')
        cur.executemany(
            'INSERT INTO "part %%tbl ""q`" VALUES (%s, %s, %s)',
            [(i, c, t.replace(tzinfo=dt.UTC)) for i, c, t in PART_ROWS],
        )
    conn.close()
    return expected


@pytest.fixture
def pg_source(pg_server: DBServer, monkeypatch: pytest.MonkeyPatch) -> Iterator[Source]:
    monkeypatch.setenv("PGTZ", "Asia/Kolkata")  # a non-UTC session: the source must not depend on it
    with open_source(ds("postgresql", pg_server.settings_dict())) as source:
        yield source


def test_pg_hostile_values(pg_source: Source, pg_tables: dict[int, list[Any]]) -> None:
    check_dump(pg_source, "hostile", list(PG_COLUMNS), pg_tables)


def test_pg_describe_check_list(
    pg_source: Source, pg_tables: dict[int, list[Any]], pg_server: DBServer
) -> None:
    types = {f.name: f.type for f in pg_source.describe("hostile")}
    assert types == {
        "id": "integer", "t": "text", "vc": "varchar", "ch": "char", "i8": "bigint", "i2": "smallint",
        "n": "numeric(30,10)", "nu": "numeric", "f8": "double precision", "f4": "real", "b": "boolean",
        "ts": "timestamp", "tz": "timestamptz", "d": "date", "tm": "time", "j": "json", "jb": "jsonb",
        "by": "bytea", "u": "uuid", "arr": "text[]", "iv": "interval",
    }  # fmt: skip
    assert {"hostile", PART_TABLE} <= set(pg_source.list_tables())
    assert (
        pg_source.check()
        == f"PostgreSQL {pg_source.check().split()[1]} at {pg_server.host}:{pg_server.port}/{pg_server.database}"
    )


def test_pg_partitions_and_filters(pg_source: Source, pg_tables: dict[int, list[Any]]) -> None:
    check_partitions(pg_source)


def test_pg_streams_in_chunks_and_survives_abandonment(pg_source: Source, pg_conn: Any) -> None:
    with pg_conn.cursor() as cur:
        cur.execute("DROP TABLE IF EXISTS many")
        cur.execute(
            "CREATE TABLE many AS SELECT g AS id, repeat('x', 150) AS s FROM generate_series(1, 20000) g"
        )
    chunks = list(pg_source.dump(TableSettings(name="many"), ["id", "s"]))
    assert len(chunks) >= 3 and all(c.endswith("\n") for c in chunks)
    assert sum(c.count("\n") for c in chunks) == 20000
    stream = pg_source.dump(TableSettings(name="many"), ["id", "s"])
    next(stream)
    stream.close()
    assert sum(c.count("\n") for c in pg_source.dump(TableSettings(name="many"), ["id"])) == 20000


def test_pg_not_null_columns_skip_the_null_marker(pg_source: Source, pg_conn: Any) -> None:
    with pg_conn.cursor() as cur:
        cur.execute("DROP TABLE IF EXISTS strict_t")
        cur.execute(
            "CREATE TABLE strict_t (id int NOT NULL, s text NOT NULL, c char(4) NOT NULL, b bool NOT NULL,"
            " f float8 NOT NULL, d date NOT NULL, z timestamptz NOT NULL, y bytea NOT NULL, n numeric NOT NULL)"
        )
        cur.execute(
            "INSERT INTO strict_t VALUES (1, %s, 'x', false, 0.5, '2024-02-29', '2024-01-01 00:00+02', %s, 1.10)",
            ('\\N\r\n"', b"\x00"),
        )
    assert dump_lines(pg_source, "strict_t", ["id", "s", "c", "b", "f", "d", "z", "y", "n"]) == [
        encode_row(
            [
                "1",
                '\\N\r\n"',
                "x   ",
                "false",
                "0.5",
                "2024-02-29",
                "2023-12-31 22:00:00.000000",
                "AA==",
                "1.10",
            ]
        )
    ]


def test_pg_schema_option(pg_server: DBServer, pg_conn: Any) -> None:
    with pg_conn.cursor() as cur:
        cur.execute('CREATE SCHEMA IF NOT EXISTS "Other"')
        cur.execute('CREATE TABLE IF NOT EXISTS "Other".t (id int)')
        cur.execute('TRUNCATE "Other".t')
        cur.execute('INSERT INTO "Other".t VALUES (7)')
    with open_source(ds("postgresql", {**pg_server.settings_dict(), "schema": "Other"})) as source:
        assert source.list_tables() == {"t": "table"}
        assert dump_lines(source, "t", ["id"]) == ['"7"\n']
    with open_source(ds("postgresql", {**pg_server.settings_dict(), "schema": "nope"})) as source:
        assert source.list_tables() == {}
        expect_error(lambda: source.describe("t"), "table 't' not found", "schema nope")


def test_pg_errors(pg_source: Source, pg_tables: dict[int, list[Any]], pg_server: DBServer) -> None:
    opts = pg_server.settings_dict()
    at = f"{pg_server.host}:{pg_server.port}"
    with open_source(ds("postgresql", {**opts, "password": "wrong"})) as bad:
        expect_error(
            bad.check,
            f"datasource 'db': access denied for user '{pg_server.user}' at {at}",
            "check username/password",
        )
    port = free_port()
    with open_source(ds("postgresql", {**opts, "port": port})) as bad:
        expect_error(
            bad.check, f"cannot reach the PostgreSQL server at {pg_server.host}:{port}", "check host/port"
        )
    with open_source(ds("postgresql", {**opts, "database": "nope"})) as bad:
        expect_error(bad.list_tables, "database 'nope' does not exist")
    check_missing(pg_source, "hostile")


# ================================================================= SQLite
SQLITE_VALUES = {
    "t": ("TEXT", [*TEXTS, "nul \x00 byte"]),
    "i": ("INTEGER", [None, 0, -1, 2**63 - 1, -(2**63)]),
    "r": ("REAL", [None, 0.1, 0.1 + 0.2, 1e300, -1.5e-7, 5e-324, math.inf, 1e16, 2.0]),
    "bl": ("BLOB", [None, b"", bytes(range(256)) * 2, b'\x00\n\r"\\']),
    "dyn": ("", [None, 7, 2.5, 'text\n"', b"\x01\x02", "2024-01-01 00:00:00"]),
    "de": ("DECIMAL(10, 2)", [None, 12.5, 3]),  # NUMERIC affinity: stored as REAL / INTEGER
    "vc": ("VARCHAR(255)", [None, "x"]),
}


@pytest.fixture
def sqlite_db(tmp_path: Path) -> tuple[Path, dict[int, list[Any]]]:
    path = tmp_path / "data base?#%.sqlite"
    conn = sqlite3.connect(path)
    conn.execute(
        f"CREATE TABLE hostile (id INTEGER PRIMARY KEY, {', '.join(f'{c} {t}' for c, (t, _) in SQLITE_VALUES.items())})"
    )
    expected = {}
    for i in range(len(SQLITE_VALUES["t"][1])):
        row = [i] + [cycle(vals, i) for _, vals in SQLITE_VALUES.values()]
        conn.execute(f"INSERT INTO hostile VALUES ({', '.join(['?'] * len(row))})", row)
        expected[i] = [str(i)] + [v if isinstance(v, float) else render(v) for v in row[1:]]
    conn.execute('CREATE TABLE "part %tbl ""q`" (id INTEGER, "c%1" TEXT, ts TEXT)')
    conn.executemany(
        'INSERT INTO "part %tbl ""q`" VALUES (?, ?, ?)', [(i, c, t.isoformat(" ")) for i, c, t in PART_ROWS]
    )
    conn.commit()
    conn.close()
    return path, expected


def test_sqlite_source(sqlite_db: tuple[Path, dict[int, list[Any]]]) -> None:
    path, expected = sqlite_db
    with open_source(ds("sqlite", {"database": str(path)})) as source:
        check_dump(source, "hostile", ["id", *SQLITE_VALUES], expected)
        # repr is SQLite's real rendering here: the text equals Python's exactly
        lines = dump_lines(source, "hostile", ["id", "r"])
        assert encode_row(["2", repr(0.1 + 0.2)]) in lines and encode_row(["3", "1e+300"]) in lines
        types = {f.name: f.type for f in source.describe("hostile")}
        assert types == {
            "id": "integer",
            "t": "text",
            "i": "integer",
            "r": "real",
            "bl": "blob",
            "dyn": "text",
            "de": "decimal(10,2)",
            "vc": "varchar",
        }
        assert source.list_tables() == {"hostile": "table", PART_TABLE: "table"}
        assert source.check().startswith("SQLite 3.")
        check_partitions(source)
        check_missing(source, "hostile")
    assert path.read_bytes()  # opened read-only, left as it was
    with open_source(ds("sqlite", {"database": str(path.with_name("missing.db"))})) as source:
        expect_error(source.check, "datasource 'db'", "missing.db", "not found")
