"""Trino (Athena engine v3) semantics for statements run on DuckDB.

`translate` parses one Athena statement, types it with the catalog's schema
(sqlglot cannot tell integer from decimal division without it), applies the table
of differences (`differences.py`) and names unaliased result columns as Trino does
(`_col0`, `_col1`, ...), then writes DuckDB SQL. The SQL it writes calls macros
that `install` defines on each DuckDB connection. A construct DuckDB cannot answer
as Trino does raises `Unsupported` here, before anything runs.
"""

from __future__ import annotations

import contextlib
from collections.abc import Mapping

from sqlglot import exp
from sqlglot.errors import SqlglotError
from sqlglot.optimizer.annotate_types import annotate_types
from sqlglot.optimizer.qualify import qualify
from sqlglot.schema import MappingSchema

from panorama_kpi.engines.athena_sql import parse_statement
from panorama_kpi.engines.trino.differences import DIFFERENCES, rewrites_for
from panorama_kpi.engines.trino.errors import Unsupported, error_message
from panorama_kpi.engines.trino.macros import install
from panorama_kpi.engines.trino.nodes import DECIMAL_LITERAL

__all__ = ["DIFFERENCES", "Schema", "Unsupported", "error_message", "install", "translate"]

Schema = Mapping[str, Mapping[str, str]]
"""Table name -> column name -> DuckDB type, for the tables of one database."""

_UNNAMED = "trino_unnamed"


def translate(sql: str, schema: Schema | None = None, db: str | None = None) -> str:
    """One Athena statement as DuckDB SQL with Trino's results, types and column names."""
    tree = parse_statement(sql)
    _mark_decimal_literals(tree, sql)
    if isinstance(tree, (exp.Create, exp.Insert)) and isinstance(tree.expression, exp.Query):
        tree.set("expression", _translate_query(tree.expression, schema, db))
    elif isinstance(tree, exp.Query):
        tree = _translate_query(tree, schema, db)
    return tree.sql(dialect="duckdb")


def _mark_decimal_literals(tree: exp.Expr, sql: str) -> None:
    """`DECIMAL '1.5'` and `CAST('1.5' AS DECIMAL)` parse alike but type differently in Trino."""
    for node in tree.find_all(exp.Cast):
        literal = node.this
        if node.to.this == exp.DataType.Type.DECIMAL and isinstance(literal, exp.Literal):
            start = literal.meta.get("start")
            if isinstance(start, int) and sql[:start].rstrip().upper().endswith("DECIMAL"):
                literal.meta[DECIMAL_LITERAL] = True


def _translate_query(query: exp.Expr, schema: Schema | None, db: str | None) -> exp.Expr:
    for select in query.find_all(exp.Select):
        for projection in select.expressions:
            if not isinstance(projection, (exp.Alias, exp.Column, exp.Star)):
                projection.meta[_UNNAMED] = True
    query = _annotate(query, schema, db)
    for node in list(query.walk(bfs=False))[::-1]:  # children before parents
        for rewrite in rewrites_for(node):
            parent, key, index = node.parent, node.arg_key, node.index
            replacement = rewrite(node)  # may wrap the node, which re-parents it
            if replacement is None or replacement is node:
                continue
            if node.meta.get(_UNNAMED):
                replacement.meta[_UNNAMED] = True
            if parent is None or key is None:
                query = replacement
            else:
                parent.set(key, replacement, index)
            break
    _name_columns(query)
    return query


def _annotate(query: exp.Expr, schema: Schema | None, db: str | None) -> exp.Expr:
    mapping = MappingSchema({db: dict(schema)} if db and schema else {}, dialect="duckdb")
    # Left unqualified if sqlglot cannot: columns then stay untyped, and typed decisions fail loudly.
    with contextlib.suppress(SqlglotError):
        query = qualify(
            query,
            dialect="athena",
            db=db,
            schema=mapping,
            validate_qualify_columns=False,
            quote_identifiers=False,
            identify=False,
        )
    return annotate_types(query, schema=mapping, dialect="athena")


def _name_columns(query: exp.Expr) -> None:
    """Trino names an expression column `_col<position>` and lowercases every name."""
    for select in query.find_all(exp.Select):
        after_star = False
        for i, projection in enumerate(select.expressions):
            if isinstance(projection, exp.Star) or (
                isinstance(projection, exp.Column) and isinstance(projection.this, exp.Star)
            ):
                after_star = True
                continue
            inner = projection.this if isinstance(projection, exp.Alias) else projection
            if inner.meta.get(_UNNAMED):
                if after_star:
                    raise Unsupported(
                        "an unaliased expression after * of a table the local engine does not know",
                        "give it an alias",
                    )
                name = f"_col{i}"
            elif isinstance(projection, exp.Alias):
                name = projection.alias.lower()
            else:
                continue
            if isinstance(projection, exp.Alias):
                projection.set("alias", exp.to_identifier(name, quoted=not name.isidentifier()))
            else:
                projection.replace(exp.alias_(projection, name, quoted=not name.isidentifier()))
