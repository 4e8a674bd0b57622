"""Proof of the lake's CSV contract (panorama_kpi.lake.csv).

A value written by the encoder must come back exactly, NULL included:
  * through Athena's reader (modelled by tests/opencsv_serde.py) and ``decode_raw``;
  * through DuckDB's ``read_csv`` with the lake's options, and the Athena-dialect
    ``decode_sql`` transpiled to DuckDB by sqlglot;
and both readers must show the same raw strings.
"""

from __future__ import annotations

import base64
import datetime as dt
import decimal
import itertools
import json
import math
import re
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import duckdb
import pytest
import sqlglot
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from opencsv_serde import deserialize, parse_field, read_next, read_table, split_records
from sqlglot import exp

from panorama_kpi.engines.duckdb import _CSV_OPTIONS as ENGINE_CSV_OPTIONS
from panorama_kpi.lake.csv import (
    NULL_FIELD,
    NULL_RAW,
    decode_raw,
    decode_sql,
    encode_field,
    encode_raw,
    encode_row,
    encode_rows,
    header_line,
    quote_field,
    render,
)

PROPERTY = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])

# The brief's DuckDB reading, with a NULL string that never occurs in a parsed field.
BRIEF_CSV_OPTIONS = (
    "delim=',', quote='\"', escape='\\', header=true, strict_mode=false, auto_detect=false, "
    "nullstr=chr(1) || chr(2) || 'never'"
)
READ_OPTIONS = {"engine": ENGINE_CSV_OPTIONS, "brief": BRIEF_CSV_OPTIONS}
# DuckDB refuses lines over 2,000,000 bytes unless told otherwise.

# --------------------------------------------------------------------------- strategies

SPECIAL_CHARS = [
    "\\", '"', ",", "\n", "\r", "\t", " ", "N", "b", "n", "r", "'",
    "\x01", "\x0b", "\x0c", "\x1c", "\x1f", "\x7f", "\x85", "\u00a0", "\u2028", "\u2029",
    "\ufeff", "\ufffd", "é", "中", "😀", "\U0010fffd",
]  # fmt: skip
SPECIAL_STRINGS = [
    "", "NULL", "null", "\\N", "N", "\\", "\\\\", "\\b", "\\n", "\\r", "\\bn", "\\\\n",
    "\r\n", "\n\r", "\r\r", '"', '""', '\\"', '"\\', ",", ", ", ' "x"', "a,b", "\\N\\N",
]  # fmt: skip

# Full Unicode except NUL (tested on its own) and surrogates (not encodable in UTF-8).
CHARS = st.characters(exclude_characters="\x00", exclude_categories=["Cs"]) | st.sampled_from(SPECIAL_CHARS)
TEXT = (
    st.text(CHARS)
    | st.sampled_from(SPECIAL_STRINGS)
    | st.lists(st.sampled_from(SPECIAL_STRINGS + SPECIAL_CHARS), max_size=12).map("".join)
)
VALUE = st.none() | TEXT


@st.composite
def tables(draw: st.DrawFn, values: st.SearchStrategy[Any] = VALUE) -> tuple[list[str], list[list[Any]]]:
    width = draw(st.integers(min_value=1, max_value=4))
    rows = draw(st.lists(st.lists(values, min_size=width, max_size=width), max_size=6))
    return [f"c{i}" for i in range(width)], rows


FINITE_FLOATS = st.floats(allow_nan=False, allow_infinity=False)
JSON_DOCS = st.recursive(
    st.none() | st.booleans() | st.integers() | FINITE_FLOATS | TEXT,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(TEXT, inner, max_size=4),
    max_leaves=12,
)
FIXED_OFFSETS = st.integers(min_value=-1439, max_value=1439).map(
    lambda minutes: dt.timezone(dt.timedelta(minutes=minutes))
)
# Keep a day away from the ends of Python's range: converting to UTC must not overflow.
AWARE_DATETIMES = st.datetimes(
    min_value=dt.datetime(1, 1, 2),
    max_value=dt.datetime(9999, 12, 30),
    timezones=st.timezones() | FIXED_OFFSETS,
)
ANY_VALUE = (
    VALUE
    | st.booleans()
    | st.integers()
    | st.decimals(allow_nan=False, allow_infinity=False)
    | st.floats()
    | st.datetimes()
    | AWARE_DATETIMES
    | st.dates()
    | st.times()
    | st.timedeltas()
    | st.binary()
    | JSON_DOCS
)

# --------------------------------------------------------------------------- helpers


def build_file(columns: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    return header_line(columns) + "".join(encode_row(row) for row in rows)


@pytest.fixture(scope="module")
def con() -> Iterator[duckdb.DuckDBPyConnection]:
    connection = duckdb.connect()
    yield connection
    connection.close()


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A fresh file name per use (``next(files)``), so no reader cache can serve an older file."""
    directory = tmp_path_factory.mktemp("csv")
    return (directory / f"t{n}.csv" for n in itertools.count())


def write_file(path: Path, text: str) -> None:
    path.write_bytes(text.encode("utf-8"))


def duck_read(
    con: duckdb.DuckDBPyConnection, path: Path, columns: Sequence[str], options: str, decoded: bool = False
) -> list[list[str | None]]:
    spec = ", ".join(f"'{c}': 'VARCHAR'" for c in columns)
    if decoded:
        select = ", ".join(
            f'{sqlglot.transpile(decode_sql(f"{chr(34)}{c}{chr(34)}"), read="athena", write="duckdb")[0]} AS "{c}"'
            for c in columns
        )
    else:
        select = ", ".join(f'"{c}"' for c in columns)
    sql = f"SELECT {select} FROM read_csv(?, {options}, columns={{{spec}}})"
    return [list(row) for row in con.execute(sql, [str(path)]).fetchall()]


# --------------------------------------------------------------------------- the serde port itself


@pytest.mark.parametrize(
    ("field", "expected"),
    [
        ('"x\\"y"', 'x"y'),
        ('"x\\\\y"', "x\\y"),
        ('"x\\ny"', "xny"),  # a lone escape before another character is dropped
        ('"end\\\\"', "end\\"),
        ('"a,b"', "a,b"),
        ("", ""),
        ('""', ""),
        ('"x""y"', 'x"y'),  # a doubled quote reads as one (DuckDB keeps both)
        ("a\\nb", "anb"),
        ("\\\\", ""),  # escapes outside a started field: both dropped, nothing appended
        ("a\\\\b", "a\\b"),  # ...but honoured once the field has started
        ("abc", "abc"),
        ("\\N", "N"),
        ('"\\\\N"', "\\N"),
    ],
)
def test_port_single_field(field: str, expected: str) -> None:
    assert read_next(f"{field},z") == [expected, "z"]
    assert read_next(f"z,{field}") == ["z", expected]
    if field:  # an empty *record* is not an empty field: the SerDe makes it all NULL
        assert parse_field(field) == expected


def test_port_odd_rules() -> None:
    # The embedded quote in the middle of an unquoted field is kept.
    assert read_next('a,bc"d"ef,g') == ["a", 'bc"d"ef', "g"]
    # Whitespace before an opening quote is dropped (ignoreLeadingWhiteSpace)...
    assert read_next('a, "b",c') == ["a", "b", "c"]
    # Unquoted text around quotes is kept; separators split outside quotes only.
    assert read_next('"a,b",c') == ["a,b", "c"]
    assert read_next('xyz"a,b"w,c') == ['xyz"a,b"w', "c"]
    # ...except a quote within the first three characters of the line (the i > 2 test).
    assert read_next('x"a,b"y,c') == ['xa,b"y', "c"]
    # An unterminated quote: the fields before it survive, the pending one is lost.
    assert read_next('a,"bc') == ["a"]
    assert read_next('"bc') is None
    # Fewer fields pad with NULL, more are dropped; an empty record is all NULL.
    assert deserialize('"a"', 3) == ["a", None, None]
    assert deserialize('"a","b","c"', 2) == ["a", "b"]
    assert deserialize("", 2) == [None, None]
    assert deserialize('"bc', 2) == [None, None]


def test_port_leading_whitespace_near_line_start() -> None:
    # Quote at index 1: the embedded-quote rule is off, the space stays, quotes are stripped.
    assert read_next(' "b"') == [" b"]
    # Quote at index 3 after whitespace only: the whitespace is discarded.
    assert read_next('   "b"') == ["b"]
    # A non-BMP character counts as two Java chars for the i > 2 test.
    assert read_next('😀x"b"') == ['😀x"b']
    assert read_next('éx"b"') == ["éxb"]


def test_port_line_splitting() -> None:
    # LF, CR and CRLF end a record, quoted or not; a final terminator adds nothing.
    assert list(split_records(b'"a\nb"\r"c\rd"\r\ne')) == ['"a', 'b"', '"c', 'd"', "e"]
    assert list(split_records(b"a\n")) == ["a"]
    assert list(split_records(b"a\n\n")) == ["a", ""]
    assert list(split_records(b"\r\r\n")) == ["", ""]
    assert list(split_records(b"")) == []
    assert list(split_records(b"\xef\xbb\xbfa")) == ["a"]
    # Only CR and LF: other Unicode line breaks stay inside the record.
    assert list(split_records("a\u2028b\x85c\x0bd\x0ce".encode())) == ["a\u2028b\x85c\x0bd\x0ce"]
    # The header is skipped; a quoted line break splits the row (why the encoder escapes it).
    # ("a is an unterminated quote with no field before it, b" too: both rows are all NULL.)
    assert read_table('"h"\n"a\nb"\n', 1) == [[None], [None]]


# --------------------------------------------------------------------------- the contract


@PROPERTY
@given(tables())
@example((["c0", "c1"], [[None, ""], ["NULL", "\\N"], ["\r\n", '\\"'], ["\\", "😀,\t\x01"]]))
def test_round_trip_through_serde(table: tuple[list[str], list[list[str | None]]]) -> None:
    columns, rows = table
    raw = read_table(build_file(columns, rows), len(columns))
    # The raw table shows layer 1 exactly, and decode_raw inverts it.
    assert raw == [[encode_raw(v) for v in row] for row in rows]
    assert [[decode_raw(f) for f in row] for row in raw] == rows  # type: ignore[arg-type]


@PROPERTY
@given(tables())
def test_duckdb_reads_what_the_serde_reads(
    con: duckdb.DuckDBPyConnection, files: Iterator[Path], table: tuple[list[str], list[list[str | None]]]
) -> None:
    columns, rows = table
    text = build_file(columns, rows)
    path = next(files)
    write_file(path, text)
    serde_raw = read_table(text, len(columns))
    for options in READ_OPTIONS.values():
        assert duck_read(con, path, columns, options) == serde_raw
        assert duck_read(con, path, columns, options, decoded=True) == rows


@PROPERTY
@given(tables())
def test_file_has_one_line_per_row(table: tuple[list[str], list[list[str | None]]]) -> None:
    columns, rows = table
    data = build_file(columns, rows).encode("utf-8")
    assert b"\r" not in data
    lines = data.split(b"\n")
    assert lines[-1] == b""  # every row, the last one included, ends with LF
    assert len(lines) - 1 == len(rows) + 1
    assert list(split_records(data)) == [line.decode("utf-8") for line in lines[:-1]]
    for line in lines[:-1]:
        fields = read_next(line.decode("utf-8"))
        assert fields is not None
        assert len(fields) == len(columns)


@PROPERTY
@given(
    st.lists(st.lists(ANY_VALUE, min_size=1, max_size=3), max_size=8), st.integers(min_value=1, max_value=4)
)
def test_encode_rows_matches_encode_row(rows: list[list[Any]], batch: int) -> None:
    assert "".join(encode_rows(rows, batch=batch)) == "".join(encode_row(row) for row in rows)


@PROPERTY
@given(VALUE)
def test_one_pass_field_equals_both_layers(value: str | None) -> None:
    assert encode_field(value) == quote_field(encode_raw(value))


@PROPERTY
@given(ANY_VALUE)
def test_any_value_reads_back_as_its_canonical_text(value: Any) -> None:
    field = parse_field(encode_field(value))
    assert field is not None
    assert decode_raw(field) == render(value)


def test_null_and_lookalikes() -> None:
    assert encode_field(None) == NULL_FIELD
    assert parse_field(NULL_FIELD) == NULL_RAW
    values = [None, "", "NULL", "\\N", "\\\\N", "N"]
    fields = [parse_field(encode_field(v)) for v in values]
    assert fields == ["\\N", "", "NULL", "\\bN", "\\b\\bN", "N"]
    assert [decode_raw(f) for f in fields if f is not None] == values


def test_nul_character(con: duckdb.DuckDBPyConnection, files: Iterator[Path]) -> None:
    """NUL is kept by Hadoop, Java strings and DuckDB alike."""
    rows: list[list[str | None]] = [["\x00"], ["a\x00b"], ["\x00\\\x00\n"]]
    text = build_file(["c0"], rows)
    assert read_table(text, 1) == [[encode_raw(v) for v in row] for row in rows]
    path = next(files)
    write_file(path, text)
    for options in READ_OPTIONS.values():
        assert duck_read(con, path, ["c0"], options, decoded=True) == rows


MEGABYTE_VALUE = ('lorem, "ipsum" \\ dolor\nsit\r\namet\t😀 é \\N NULL ' * 30_000)[:1_000_000]


def test_one_megabyte_value(con: duckdb.DuckDBPyConnection, files: Iterator[Path]) -> None:
    rows: list[list[str | None]] = [[MEGABYTE_VALUE, "after"], [None, MEGABYTE_VALUE[::-1]]]
    text = build_file(["c0", "c1"], rows)
    assert [[decode_raw(f) for f in row] for row in read_table(text, 2)] == rows  # type: ignore[arg-type]
    path = next(files)
    write_file(path, text)
    for options in READ_OPTIONS.values():
        assert duck_read(con, path, ["c0", "c1"], options, decoded=True) == rows


@pytest.mark.parametrize(
    "value", ["\\" * 1_000_000, "\n" * 1_000_000, "😀" * 600_000], ids=["backslashes", "newlines", "emoji"]
)
def test_long_escaped_line_serde(value: str) -> None:
    assert decode_raw(parse_field(encode_field(value)) or "") == value


@pytest.mark.parametrize("value", ["\\" * 1_000_000, "😀" * 600_000], ids=["backslashes", "emoji"])
def test_long_escaped_line_duckdb_engine_options(
    con: duckdb.DuckDBPyConnection, files: Iterator[Path], value: str
) -> None:
    path = next(files)
    write_file(path, build_file(["c0"], [[value]]))
    assert duck_read(con, path, ["c0"], ENGINE_CSV_OPTIONS, decoded=True) == [[value]]


# --------------------------------------------------------------------------- decode_sql


def _string_literals(tree: exp.Expr) -> list[str]:
    return sorted(lit.this for lit in tree.find_all(exp.Literal) if lit.is_string)


@pytest.mark.parametrize("column", ['"c"', '"weird ""name"""', "t.c"])
def test_decode_sql_parses_as_athena(column: str) -> None:
    sql = decode_sql(column)
    tree = sqlglot.parse_one(sql, read="athena")
    # Backslashes are plain characters in Trino string literals: no escape was interpreted.
    assert _string_literals(tree) == sorted(["\\N", "\\n", "\\r", "\\b", "\\"])
    for dialect in ("duckdb", "trino"):
        out = sqlglot.transpile(sql, read="athena", write=dialect)
        assert len(out) == 1
        assert _string_literals(sqlglot.parse_one(out[0], read=dialect)) == _string_literals(tree)


@PROPERTY
@given(st.lists(VALUE, max_size=8))
def test_decode_sql_on_duckdb_equals_decode_raw(
    con: duckdb.DuckDBPyConnection, values: list[str | None]
) -> None:
    expression = sqlglot.transpile(decode_sql('"c"'), read="athena", write="duckdb")[0]
    raws = [encode_raw(v) for v in values]
    got = con.execute(
        f'SELECT {expression} FROM (SELECT unnest(?::VARCHAR[]) AS "c", generate_subscripts(?::VARCHAR[], 1) AS i) '
        "ORDER BY i",
        [raws, raws],
    ).fetchall()
    assert [row[0] for row in got] == values == [decode_raw(r) for r in raws]


# --------------------------------------------------------------------------- canonical renderings


def test_render_scalars() -> None:
    assert render(None) is None
    assert render(True) == "true"
    assert render(False) == "false"
    assert render(2**63 - 1) == "9223372036854775807"
    assert render(-(2**63)) == "-9223372036854775808"
    assert render(float("nan")) == "NaN"
    assert render(float("inf")) == "Infinity"
    assert render(float("-inf")) == "-Infinity"
    assert render(-0.0) == "-0.0"
    assert render(decimal.Decimal("1.50")) == "1.50"
    assert render(decimal.Decimal("1E+3")) == "1000"
    assert render(decimal.Decimal("-1E-7")) == "-0.0000001"
    assert render(dt.datetime(2024, 2, 29, 23, 59, 59)) == "2024-02-29 23:59:59.000000"
    assert render(dt.datetime(1, 1, 1, 0, 0, 0, 7)) == "0001-01-01 00:00:00.000007"
    tz = dt.timezone(dt.timedelta(hours=-5, minutes=-30))
    assert render(dt.datetime(2024, 12, 31, 20, 0, tzinfo=tz)) == "2025-01-01 01:30:00.000000"
    assert render(dt.date(2024, 1, 5)) == "2024-01-05"
    assert render(b"\x00\xff") == "AP8="
    assert render({"a": [1, "é", None, True]}) == '{"a":[1,"é",null,true]}'
    assert render(dt.timedelta(hours=-838, minutes=-59, seconds=-59)) == "-838:59:59"


@PROPERTY
@given(st.integers() | st.sampled_from([2**63 - 1, -(2**63), 2**64, -1, 0]))
def test_render_int(value: int) -> None:
    text = render(value)
    assert text == str(value)
    assert int(text) == value


@PROPERTY
@given(st.decimals(allow_nan=False, allow_infinity=False))
def test_render_decimal_is_exact_plain_text(value: decimal.Decimal) -> None:
    text = render(value)
    assert text is not None
    assert re.fullmatch(r"-?\d+(\.\d+)?", text)
    back = decimal.Decimal(text)
    assert back == value
    if value.as_tuple().exponent <= 0:  # type: ignore[operator]
        assert back.as_tuple() == value.as_tuple()  # same digits, scale and sign


@PROPERTY
@given(FINITE_FLOATS)
def test_render_float_round_trips(con: duckdb.DuckDBPyConnection, value: float) -> None:
    text = render(value)
    assert text is not None
    back = float(text)
    assert back == value
    assert math.copysign(1.0, back) == math.copysign(1.0, value)
    cast = sqlglot.transpile("SELECT CAST(? AS double)", read="athena", write="duckdb")[0]
    assert con.execute(cast, [text]).fetchone() == (value,)


@PROPERTY
@given(st.datetimes())
def test_render_naive_datetime(value: dt.datetime) -> None:
    text = render(value)
    assert text is not None
    assert re.fullmatch(r"\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}\.\d{6}", text)
    assert dt.datetime.strptime(text, "%Y-%m-%d %H:%M:%S.%f") == value


@PROPERTY
@given(AWARE_DATETIMES)
def test_render_aware_datetime_is_utc(value: dt.datetime) -> None:
    text = render(value)
    assert text is not None
    assert re.fullmatch(r"\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}\.\d{6}", text)
    naive_utc = dt.datetime.strptime(text, "%Y-%m-%d %H:%M:%S.%f")
    offset = value.utcoffset()
    assert offset is not None
    assert naive_utc == value.replace(tzinfo=None) - offset


@PROPERTY
@given(st.dates())
def test_render_date(value: dt.date) -> None:
    text = render(value)
    assert text is not None
    assert re.fullmatch(r"\d{4}-\d{2}-\d{2}", text)
    assert dt.date.fromisoformat(text) == value


@PROPERTY
@given(st.times())
def test_render_time(value: dt.time) -> None:
    text = render(value)
    assert text is not None
    assert dt.time.fromisoformat(text) == value


@PROPERTY
@given(st.timedeltas())
def test_render_timedelta(value: dt.timedelta) -> None:
    text = render(value)
    assert text is not None
    match = re.fullmatch(r"(-?)(\d{2,}):(\d{2}):(\d{2})(?:\.(\d{6}))?", text)
    assert match
    sign, hours, minutes, seconds, micros = match.groups()
    back = dt.timedelta(
        hours=int(hours), minutes=int(minutes), seconds=int(seconds), microseconds=int(micros or 0)
    )
    assert (-back if sign else back) == value


@PROPERTY
@given(st.binary())
def test_render_bytes_is_base64(value: bytes) -> None:
    text = render(value)
    assert text is not None
    assert base64.b64decode(text, validate=True) == value
    assert render(bytearray(value)) == text == render(memoryview(value))


@PROPERTY
@given(JSON_DOCS.filter(lambda doc: isinstance(doc, (dict, list))))
def test_render_document_is_compact_json(value: dict[str, Any] | list[Any]) -> None:
    text = render(value)
    assert text is not None
    assert json.loads(text) == value
    assert text == json.dumps(json.loads(text), ensure_ascii=False, separators=(",", ":"))


def _reject_constant(name: str) -> Any:
    raise ValueError(f"not JSON: {name}")


def test_render_document_with_non_finite_float_is_json() -> None:
    json.loads(render({"x": float("nan"), "y": [float("inf")]}) or "", parse_constant=_reject_constant)
