"""Properties of the Trino-semantics layer, checked against independent oracles.

Trino's documented rules, computed in Python: integer division truncates toward
zero; decimal division has scale max(s1, s2) and precision
min(38, p1 + s2 + max(0, s2 - s1)) and rounds half up; avg of a decimal keeps its
type, rounded half up; an integer cast of text accepts Java's Long.parseLong syntax
after trimming, nothing else; a Joda pattern of translatable letters formats as
Python's own formatting of the same fields.
"""

from __future__ import annotations

import datetime as dt
import decimal
import re
from collections.abc import Iterator
from typing import Any

import duckdb
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from panorama_kpi.engines import trino
from panorama_kpi.errors import EngineError

HALF_UP = decimal.Context(prec=200, rounding=decimal.ROUND_HALF_UP)


@pytest.fixture(scope="module")
def con() -> Iterator[duckdb.DuckDBPyConnection]:
    connection = duckdb.connect()
    connection.execute("SET TimeZone = 'UTC'")
    trino.install(connection)
    yield connection
    connection.close()


def one(con: duckdb.DuckDBPyConnection, athena: str, params: list[Any] | None = None) -> Any:
    return con.execute(trino.translate(athena), params or []).fetchone()[0]  # type: ignore[index]


def decimal_values(precision: int, scale: int) -> st.SearchStrategy[decimal.Decimal]:
    """Exact values of DECIMAL(precision, scale), built from their unscaled integer."""
    bound = 10**precision - 1
    return st.integers(-bound, bound).map(lambda unscaled: decimal.Decimal(f"{unscaled}E-{scale}"))


@st.composite
def decimal_pairs(draw: st.DrawFn) -> tuple[decimal.Decimal, int, int, decimal.Decimal, int, int]:
    p1 = draw(st.integers(1, 38))
    s1 = draw(st.integers(0, p1))
    p2 = draw(st.integers(1, 38))
    s2 = draw(st.integers(0, p2))
    a = draw(decimal_values(p1, s1))
    b = draw(decimal_values(p2, s2).filter(lambda v: v != 0))
    return a, p1, s1, b, p2, s2


@settings(max_examples=200, deadline=None)
@given(decimal_pairs())
def test_decimal_division_is_trinos(con: duckdb.DuckDBPyConnection, case: tuple[Any, ...]) -> None:
    a, p1, s1, b, p2, s2 = case
    scale = max(s1, s2)
    precision = min(38, p1 + s2 + max(0, s2 - s1))
    expected = HALF_UP.divide(a, b).quantize(decimal.Decimal(1).scaleb(-scale), context=HALF_UP)
    sql = f"CAST('{a:f}' AS DECIMAL({p1}, {s1})) / CAST('{b:f}' AS DECIMAL({p2}, {s2}))"
    if len(expected.as_tuple().digits) > precision and expected != 0:
        with pytest.raises(duckdb.Error):  # Trino: decimal overflow
            one(con, f"SELECT {sql}")
        return
    got = one(con, f"SELECT {sql}")
    assert isinstance(got, decimal.Decimal)
    assert got == expected and got.as_tuple().exponent == -scale, (sql, got, expected)


@settings(max_examples=150, deadline=None)
@given(st.integers(-(2**62), 2**62), st.integers(-(2**40), 2**40).filter(lambda v: v != 0))
def test_integer_division_truncates_toward_zero(con: duckdb.DuckDBPyConnection, a: int, b: int) -> None:
    quotient = abs(a) // abs(b) * (1 if (a < 0) == (b < 0) else -1)
    assert one(con, f"SELECT CAST({a} AS bigint) / CAST({b} AS bigint)") == quotient
    assert one(con, f"SELECT CAST({a} AS bigint) % CAST({b} AS bigint)") == a - quotient * b


@settings(max_examples=60, deadline=None)
@given(
    st.integers(1, 18)
    .flatmap(lambda p: st.tuples(st.just(p), st.integers(0, p)))
    .flatmap(lambda ps: st.tuples(st.just(ps), st.lists(decimal_values(*ps), min_size=1, max_size=8)))
)
def test_avg_of_decimal_keeps_the_type(con: duckdb.DuckDBPyConnection, case: Any) -> None:
    (precision, scale), values = case
    expected = HALF_UP.divide(sum(values, decimal.Decimal(0)), decimal.Decimal(len(values)))
    expected = expected.quantize(decimal.Decimal(1).scaleb(-scale), context=HALF_UP)
    array = ", ".join(f"CAST('{v:f}' AS DECIMAL({precision}, {scale}))" for v in values)
    got = one(con, f"SELECT avg(x) FROM UNNEST(ARRAY[{array}]) AS t(x)")
    assert isinstance(got, decimal.Decimal) and got == expected


JAVA_LONG = re.compile(r"[+-]?[0-9]+")


@settings(max_examples=200, deadline=None)
@given(
    st.one_of(
        st.integers(-(2**63), 2**63 - 1).map(str), st.text(alphabet="0123456789+-. eE\t\nx", max_size=12)
    )
)
def test_integer_cast_of_text_follows_parse_long(con: duckdb.DuckDBPyConnection, text: str) -> None:
    trimmed = "".join(text).strip("".join(chr(c) for c in range(33)))
    valid = JAVA_LONG.fullmatch(trimmed) is not None and -(2**63) <= int(trimmed) < 2**63
    assert one(con, "SELECT TRY_CAST(? AS bigint)", [text]) == (int(trimmed) if valid else None)
    if not valid:
        with pytest.raises((duckdb.Error, EngineError)):
            one(con, "SELECT CAST(? AS bigint)", [text])


JODA_TO_PYTHON = {
    "yyyy": "%Y",
    "yy": "%y",
    "MMMM": "%B",
    "MMM": "%b",
    "MM": "%m",
    "dd": "%d",
    "HH": "%H",
    "hh": "%I",
    "mm": "%M",
    "ss": "%S",
    "a": "%p",
    "EEEE": "%A",
    "EEE": "%a",
    "DDD": "%j",
}


@settings(max_examples=100, deadline=None)
@given(
    st.datetimes(min_value=dt.datetime(1900, 1, 1), max_value=dt.datetime(2200, 1, 1)),
    st.lists(st.sampled_from(sorted(JODA_TO_PYTHON)), min_size=1, max_size=5),
    st.sampled_from(["-", " ", "/", ":", "', '"]),
)
def test_format_datetime_patterns(
    con: duckdb.DuckDBPyConnection, when: dt.datetime, letters: list[str], separator: str
) -> None:
    pattern = separator.join(letters)
    python = (separator.strip("'") if separator.startswith("'") else separator).join(
        JODA_TO_PYTHON[x] for x in letters
    )
    when = when.replace(microsecond=0)
    got = one(
        con,
        f"SELECT format_datetime(CAST(? AS timestamp), '{pattern.replace(chr(39), chr(39) * 2)}')",
        [when],
    )
    assert got == when.strftime(python)


def test_unsupported_is_raised_before_running() -> None:
    with pytest.raises(trino.Unsupported) as failure:
        trino.translate("SELECT format_datetime(current_timestamp, 'ww')")
    assert str(failure.value) == "format_datetime pattern letter 'ww' is not supported by the local engine"


def test_insert_and_create_table_as_select_get_trino_semantics(con: duckdb.DuckDBPyConnection) -> None:
    con.execute("CREATE TABLE IF NOT EXISTS halves (x BIGINT, y BIGINT)")
    con.execute(trino.translate("INSERT INTO halves SELECT 7 / 2, CAST(? AS bigint)"), [" 5 "])
    schema = {"halves": {"x": "BIGINT", "y": "BIGINT"}}
    con.execute(trino.translate("CREATE TABLE halves_copy AS SELECT x / 2 AS q FROM halves", schema, "main"))
    with pytest.raises(trino.Unsupported):  # without the catalog's types the division is refused
        trino.translate("SELECT x / 2 FROM halves")
    assert con.execute("SELECT x, y FROM halves").fetchall() == [(3, 5)]
    assert con.execute("SELECT q FROM halves_copy").fetchall() == [(1,)]
