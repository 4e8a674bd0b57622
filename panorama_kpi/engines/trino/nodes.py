"""Building blocks of the rewrites: typed DuckDB calls and casts, Athena text for messages."""

from __future__ import annotations

from collections.abc import Callable

from sqlglot import exp

from panorama_kpi.engines.trino.errors import Unsupported

T = exp.DataType.Type
Node = exp.Expr
DECIMAL_LITERAL = "trino_decimal_literal"  # meta flag: the string of a DECIMAL '...' literal


def call(name: str, *args: Node, returns: str | None = None) -> exp.Anonymous:
    """A DuckDB function or macro call, typed for the rewrites of its parents."""
    out = exp.Anonymous(this=name, expressions=list(args))
    if returns:
        out.type = exp.DataType.build(returns, dialect="duckdb")
    return out


def cast(node: Node, to: str | exp.DataType) -> exp.Cast:
    target = exp.DataType.build(to, dialect="duckdb") if isinstance(to, str) else to
    out = exp.Cast(this=node, to=target)
    out.type = target
    return out


def athena(node: Node) -> str:
    return node.sql("athena")


def hugeint(value: int) -> exp.Cast:
    return cast(exp.Literal.string(str(value)), "HUGEINT")


def unsupported(construct: str, hint: str = "") -> Callable[[Node], Node]:
    def rewrite(node: Node) -> Node:
        raise Unsupported(construct, hint)

    return rewrite
