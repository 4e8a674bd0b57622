"""Trino types of annotated expressions: what the rewrites decide on.

sqlglot annotates from the catalog's schema; decimals need Trino's own precision
and scale rules (and its literal typing: `1.5` is DECIMAL(2,1)), so they are
derived here rather than trusted from the annotation.
"""

from __future__ import annotations

from typing import Any

from sqlglot import exp

T = exp.DataType.Type
INTEGER = {T.TINYINT, T.SMALLINT, T.INT, T.BIGINT, T.INT128, T.UTINYINT, T.USMALLINT, T.UINT, T.UBIGINT}
FLOAT = {T.FLOAT, T.DOUBLE}
TEXT = {T.VARCHAR, T.TEXT, T.CHAR, T.NCHAR, T.NVARCHAR}
TIMESTAMP = {T.TIMESTAMP, T.TIMESTAMPNTZ, T.TIMESTAMP_S, T.TIMESTAMP_MS, T.TIMESTAMP_NS, T.DATETIME}
_INT_DIGITS = {T.TINYINT: 3, T.SMALLINT: 5, T.INT: 10, T.UTINYINT: 3, T.USMALLINT: 5, T.UINT: 10}

MAX_PRECISION = 38
# String functions sqlglot leaves untyped in the Athena dialect.
_TEXT = (
    exp.Replace,
    exp.JSONExtractScalar,
    exp.Concat,
    exp.DPipe,
    exp.Upper,
    exp.Lower,
    exp.Trim,
    exp.Substring,
    exp.SplitPart,
    exp.RegexpExtract,
    exp.RegexpReplace,
    exp.TimeToStr,
    exp.Pad,
    exp.Reverse,
    exp.Chr,
)
# Functions whose result has the argument's type in Trino (sqlglot types round() as DOUBLE).
_SAME_TYPE = (exp.Floor, exp.Ceil, exp.Round, exp.Abs, exp.Trunc)


def datatype(node: exp.Expr) -> exp.DataType | None:
    if isinstance(node, exp.Cast):
        return node.to
    if isinstance(node, exp.Paren):
        return datatype(node.this)
    return node.type if isinstance(node.type, exp.DataType) else None


def kind(node: exp.Expr) -> Any:
    """The node's type; number literals typed as Trino types them (1.5 is a DECIMAL, not a DOUBLE)."""
    if isinstance(node, exp.Null):
        return T.NULL
    literal = node.this if isinstance(node, (exp.Neg, exp.Paren)) else node
    if isinstance(literal, exp.Literal) and not literal.is_string:
        text = str(literal.this).lower()
        if "e" in text:
            return T.DOUBLE
        if "." in text:
            return T.DECIMAL
        return T.INT if abs(int(text)) < 2**31 else T.BIGINT
    if isinstance(node, _SAME_TYPE):
        return kind(node.this)  # Trino keeps the argument's type (decimals: see decimal())
    if isinstance(node, _TEXT):
        return T.VARCHAR
    branches = _branches(node)
    if branches:  # CASE, if, coalesce, try: the type of the first branch that is not NULL
        kinds = [kind(b) for b in branches]
        return next((k for k in kinds if k not in (None, T.NULL, T.UNKNOWN)), kinds[0])
    t = datatype(node)
    return None if t is None else t.this


def _branches(node: exp.Expr) -> list[exp.Expr]:
    if isinstance(node, exp.Try):
        return [node.this]
    if isinstance(node, (exp.Coalesce, exp.Nullif)):
        return [node.this, *node.expressions] if isinstance(node, exp.Coalesce) else [node.this]
    if isinstance(node, exp.Case):
        return [i.args["true"] for i in node.args.get("ifs", [])] + [
            d for d in [node.args.get("default")] if d
        ]
    if isinstance(node, exp.If):
        return [b for b in (node.args.get("true"), node.args.get("false")) if b is not None]
    return []


_NAMES = {T.INT: "integer", T.INT128: "bigint", T.TEXT: "varchar", T.DOUBLE: "double", T.FLOAT: "real"}


def trino_name(k: Any) -> str:
    """Trino's name of a type, for messages."""
    if k in TIMESTAMP:
        return "timestamp"
    return _NAMES.get(k) or str(getattr(k, "value", k)).lower()


def params(t: exp.DataType) -> list[int]:
    out = []
    for p in t.expressions:
        value = p.this if isinstance(p, exp.DataTypeParam) else p
        if isinstance(value, exp.Literal) and value.is_int:
            out.append(int(value.this))
    return out


def timestamp_precision(node: exp.Expr) -> int | None:
    """Fraction digits Trino renders for a timestamp value (None: not a plain timestamp)."""
    t = datatype(node)
    if t is None or t.this not in TIMESTAMP:
        return None
    fixed = {T.TIMESTAMP_S: 0, T.TIMESTAMP_MS: 3, T.TIMESTAMP_NS: 9}
    if t.this in fixed:
        return fixed[t.this]
    p = params(t)
    return p[0] if p else 6


def decimal_of_literal(text: str) -> tuple[int, int]:
    whole, _, frac = text.partition(".")
    return max(len(whole.lstrip("0")) + len(frac), 1), len(frac)


def decimal(node: exp.Expr) -> tuple[int, int] | None:
    """(precision, scale) of an exact numeric expression as Trino types it, else None."""
    if isinstance(node, exp.Paren):
        return decimal(node.this)
    if isinstance(node, exp.Neg):
        return decimal(node.this)
    if isinstance(node, exp.Literal) and not node.is_string:
        text = str(node.this)
        if "e" in text.lower():
            return None
        if "." in text:
            return decimal_of_literal(text)
        return (10, 0) if abs(int(text)) < 2**31 else (19, 0)
    if isinstance(node, (exp.Add, exp.Sub, exp.Mul)):
        left, right = decimal(node.left), decimal(node.right)
        if left is None or right is None:
            return None
        (p1, s1), (p2, s2) = left, right
        if isinstance(node, exp.Mul):
            return min(MAX_PRECISION, p1 + p2), s1 + s2
        s = max(s1, s2)
        return min(MAX_PRECISION, 1 + s + max(p1 - s1, p2 - s2)), s
    if isinstance(node, exp.Sum):
        inner = decimal(node.this)
        return None if inner is None else (MAX_PRECISION, inner[1])
    if isinstance(node, (exp.Min, exp.Max, exp.Abs)):
        return decimal(node.this)
    if isinstance(node, _SAME_TYPE):
        inner = decimal(node.this)
        if inner is None or (isinstance(node, exp.Round) and node.args.get("decimals")):
            return None if inner is None else (min(MAX_PRECISION, inner[0] + 1), inner[1])
        return inner[0] - inner[1] + min(inner[1], 1), 0  # Trino: decimal(p - s + min(s, 1), 0)
    t = datatype(node)
    if t is None:
        return None
    if t.this in _INT_DIGITS:
        return _INT_DIGITS[t.this], 0
    if t.this in INTEGER:
        return 19, 0
    if t.this == T.DECIMAL:
        p = params(t)
        return (p[0], p[1] if len(p) > 1 else 0) if p else (MAX_PRECISION, 0)
    return None


def is_decimal(node: exp.Expr) -> bool:
    return kind(node) == T.DECIMAL
