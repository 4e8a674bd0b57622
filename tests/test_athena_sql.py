"""Athena's dialect helpers: literals and identifiers survive any text (property tests)."""

from __future__ import annotations

import datetime as dt
import decimal

import sqlglot
from hypothesis import given
from hypothesis import strategies as st
from sqlglot import exp

from panorama_kpi.engines.athena_sql import hive_ident, hive_literal, param_literal, quote_ident
from tests.aws import bind

TEXT = st.text(alphabet=st.characters(blacklist_categories=("Cs",)), max_size=40)


@given(TEXT)
def test_string_parameter_is_one_literal_of_that_text(text: str) -> None:
    tree = sqlglot.parse_one(param_literal(text), read="athena")
    assert isinstance(tree, exp.Literal) and tree.is_string and tree.this == text


@given(st.integers(min_value=-(2**63), max_value=2**63 - 1))
def test_integer_parameter(value: int) -> None:
    tree = sqlglot.parse_one(param_literal(value), read="athena")
    assert int(tree.sql("athena")) == value


@given(st.decimals(allow_nan=False, allow_infinity=False, places=6, min_value=-(10**12), max_value=10**12))
def test_decimal_parameter(value: decimal.Decimal) -> None:
    assert decimal.Decimal(
        sqlglot.parse_one(param_literal(value), read="athena").sql("athena").strip("-")
    ) == abs(value)


def test_other_parameters() -> None:
    assert param_literal(None) == "NULL" and param_literal(True) == "true"
    assert param_literal(dt.date(2024, 2, 29)) == "DATE '2024-02-29'"
    assert param_literal(dt.datetime(2024, 2, 29, 1, 2, 3, 4)) == "TIMESTAMP '2024-02-29 01:02:03.000004'"


@given(TEXT)
def test_bound_statement_selects_the_text(text: str) -> None:
    sql = bind("SELECT ? AS v", [param_literal(text)])
    (row,) = sqlglot.parse_one(sql, read="athena").expressions
    assert row.this.this == text


@given(TEXT)
def test_identifiers_round_trip(name: str) -> None:
    select = sqlglot.parse_one(f"SELECT {quote_ident(name)} FROM t", read="athena")
    assert select.expressions[0].name == name
    ddl = sqlglot.parse_one(f"SELECT {hive_ident(name)} FROM t", read="hive")
    assert ddl.expressions[0].name == name


@given(TEXT)
def test_hive_literal_round_trip(text: str) -> None:
    """Hive string literals treat backslash as an escape: a location or SerDe property must survive."""
    tree = sqlglot.parse_one(hive_literal(text), read="hive")
    assert isinstance(tree, exp.Literal) and tree.is_string and tree.this == text
