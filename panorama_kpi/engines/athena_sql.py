"""Athena's SQL dialect: identifier quoting, literals, the declared-type map, Hive DDL.

The catalog's SQL is authored once in this dialect (Trino for queries and views,
Hive for table DDL); the DuckDB engine transpiles what it runs.
"""

from __future__ import annotations

import datetime as dt
import decimal
import re
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from sqlglot import exp

    from panorama_kpi.views import RawTable

__all__ = ["athena_type", "create_table_ddl", "hive_ident", "param_literal", "quote_ident", "quote_literal"]


def parse_statement(sql: str) -> exp.Expr:
    """The one Athena-dialect statement of `sql`; EngineError (one line) otherwise."""
    import sqlglot

    from panorama_kpi.errors import EngineError

    try:
        statements = [s for s in sqlglot.parse(sql, read="athena") if s is not None]
    except sqlglot.errors.ParseError as exc:
        raise EngineError(f"not valid Athena SQL: {str(exc).splitlines()[0]}") from None
    if len(statements) != 1:
        raise EngineError(f"expected one SQL statement, got {len(statements)}")
    return statements[0]


def quote_ident(name: str) -> str:
    """Trino (Athena DML) quotes identifiers with double quotes."""
    return '"' + name.replace('"', '""') + '"'


def quote_literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


_INT = {
    "int",
    "integer",
    "tinyint",
    "smallint",
    "mediumint",
    "bigint",
    "year",
    "int2",
    "int4",
    "int8",
    "serial",
    "bigserial",
    "smallserial",
    "unsigned",
}
_FLOAT = {"float", "double", "real", "double precision", "float4", "float8", "decimal"}
_TIMESTAMP = {
    "datetime",
    "timestamp",
    "timestamptz",
    "timestamp with time zone",
    "timestamp without time zone",
}
_BOOL = {"bool", "boolean"}
_DECIMAL_RE = re.compile(r"^(?:decimal|numeric)\s*\(\s*(\d+)\s*(?:,\s*(-?\d+)\s*)?\)")
#: Widest DECIMAL Athena (Trino) has.
MAX_DECIMAL_PRECISION = 38
#: Element types Trino casts from JSON (numbers or their text) the way DuckDB does.
_JSON_ELEMENTS = ("BIGINT", "DOUBLE", "BOOLEAN", "DECIMAL(")


def athena_type(declared: str) -> str | None:
    """Typed-view type for a declared source type; None keeps the text (varchar).

    Follows panorama-elt's view typing so BI queries keep working (integers BIGINT,
    floats and a bare `decimal`, the type name panorama-elt wrote for MySQL decimals,
    DOUBLE), except where that would lose values: a decimal with its precision stays
    exact, and one wider than Athena's DECIMAL(38), a bare `numeric` (PostgreSQL's
    arbitrary-precision type) and `bigint unsigned` keep every digit (text, or a
    DECIMAL wide enough). Arrays (`text[]`, lake text a JSON array) are ARRAY(...)
    of their element type, or of VARCHAR. The README's type table is this function.
    """
    t = " ".join(declared.strip().lower().split())
    if t.endswith("[]"):
        depth = 0
        while t.endswith("[]"):
            t, depth = t[:-2].rstrip(), depth + 1
        element = athena_type(t)
        if element is None or not element.startswith(_JSON_ELEMENTS):
            element = "VARCHAR"  # dates, times and text arrive as their text
        return "ARRAY(" * depth + element + ")" * depth
    m = _DECIMAL_RE.match(t)
    if m:
        precision, scale = int(m.group(1)), int(m.group(2) or 0)
        if scale < 0:  # PostgreSQL 15: numeric(5,-2) rounds to hundreds, holds 7 digits
            precision, scale = precision - scale, 0
        precision = max(precision, scale)  # numeric(3,5): 0.00123
        if precision > MAX_DECIMAL_PRECISION:
            return None
        return f"DECIMAL({precision}, {scale})"
    base = re.sub(r"\(.*?\)", "", t).strip()
    unsigned = base.endswith(" unsigned") or base.endswith(" unsigned zerofill")
    base = base.replace(" zerofill", "").replace(" unsigned", "").strip()
    if base == "bigint" and unsigned:
        return "DECIMAL(20, 0)"  # up to 2^64 - 1, beyond BIGINT
    if base in _INT:
        return "BIGINT"
    if base in _FLOAT:
        return "DOUBLE"
    if base in _TIMESTAMP:
        return "TIMESTAMP"
    if base == "date":
        return "DATE"
    if base in _BOOL:
        return "BOOLEAN"
    return None


def param_literal(value: Any) -> str:
    """An Athena execution parameter: Athena takes each value as the text of a SQL literal."""
    if value is None:
        return "NULL"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float, decimal.Decimal)):
        return repr(value) if isinstance(value, float) else str(value)
    if isinstance(value, dt.datetime):
        return f"TIMESTAMP {quote_literal(value.isoformat(' '))}"
    if isinstance(value, dt.date):
        return f"DATE {quote_literal(value.isoformat())}"
    return quote_literal(str(value))


def hive_ident(name: str) -> str:
    """Hive DDL quotes identifiers with backticks."""
    return "`" + name.replace("`", "``") + "`"


def hive_literal(text: str) -> str:
    """Hive DDL string literal: backslash is an escape character there."""
    return "'" + text.replace("\\", "\\\\").replace("'", "\\'") + "'"


#: The SerDe and its properties: the CSV contract (README) as Athena reads it.
SERDE = "org.apache.hadoop.hive.serde2.OpenCSVSerde"
SERDE_PARAMETERS = {"separatorChar": ",", "quoteChar": '"', "escapeChar": "\\"}
TABLE_PARAMETERS = {"skip.header.line.count": "1", "classification": "csv", "EXTERNAL": "TRUE"}


def create_table_ddl(table: RawTable, location: str, database: str) -> str:
    """The Athena DDL equivalent to the Glue table we register (what panorama-elt issued)."""
    columns = ",\n  ".join(f"{hive_ident(c)} string" for c in table.columns)
    parts = ""
    if table.partition_columns:
        parts = (
            "\nPARTITIONED BY (" + ", ".join(f"{hive_ident(c)} string" for c in table.partition_columns) + ")"
        )
    serde = ", ".join(f"{hive_literal(k)} = {hive_literal(v)}" for k, v in SERDE_PARAMETERS.items())
    return (
        f"CREATE EXTERNAL TABLE IF NOT EXISTS {hive_ident(database)}.{hive_ident(table.name)} (\n  {columns}\n)"
        f"{parts}\n"
        f"ROW FORMAT SERDE {hive_literal(SERDE)}\n"
        f"WITH SERDEPROPERTIES ({serde})\n"
        "STORED AS TEXTFILE\n"
        f"LOCATION {hive_literal(location)}\n"
        "TBLPROPERTIES ('skip.header.line.count' = '1')"
    )
