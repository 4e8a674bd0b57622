"""Rewrites for numbers: division, decimal arithmetic, aggregates' types, casts, type errors.

Each function takes one annotated node (children already rewritten) and returns its
replacement, or None to keep it; `differences.py` lists them with what they fix.
"""

from __future__ import annotations

from sqlglot import exp

from panorama_kpi.engines.trino import types
from panorama_kpi.engines.trino.errors import Unsupported
from panorama_kpi.engines.trino.nodes import DECIMAL_LITERAL, Node, T, athena, call, cast, hugeint
from panorama_kpi.errors import EngineError


def _exact_decimal(
    numerator: Node, denominator: Node, shift: int, digits: tuple[int, int], scale: int, precision: int
) -> exp.Cast:
    """CAST(round-half-up(numerator * 10^shift / denominator) / 10^scale AS DECIMAL) on unscaled
    128-bit integers, by long division whose steps cannot overflow: `digits` bound the
    numerator's and the denominator's digits. 10^first multiplies the numerator; each later
    step multiplies the remainder, by 10^step where 10^38 allows it, else digit by digit by
    doubling in unsigned 128 bits (a divisor of 37 or 38 digits)."""
    numerator_digits, denominator_digits = digits
    first = min(shift, max(types.MAX_PRECISION - numerator_digits, 0))
    rest = shift - first
    step = types.MAX_PRECISION - denominator_digits
    if rest and step < 2:
        q = call("trino_divide_wide", numerator, denominator, hugeint(10**first), exp.Literal.number(rest))
    else:
        steps = [step] * (rest // step) + ([rest % step] if rest % step else []) if rest else []
        factors = exp.cast(exp.Array(expressions=[hugeint(10**f) for f in steps]), "HUGEINT[]")
        q = call("trino_divide", numerator, denominator, hugeint(10**first), factors)
    text = call("trino_scaled", q, exp.Literal.number(scale), hugeint(10**scale))
    return cast(text, f"DECIMAL({precision}, {scale})")


def _unscaled(node: Node, precision: int, scale: int) -> Node:
    """The unscaled integer of a value at Trino's (precision, scale), whatever DuckDB typed it."""
    return call("trino_unscaled", cast(node, f"DECIMAL({precision}, {scale})"))


# --- arithmetic -----------------------------------------------------------------


def division(node: exp.Div) -> Node | None:
    """Integer operands truncate; decimals divide exactly (half up) at Trino's scale."""
    left, right = node.left, node.right
    lk, rk = types.kind(left), types.kind(right)
    if lk in types.FLOAT or rk in types.FLOAT or T.NULL in (lk, rk):
        return None
    if (
        lk in types.INTEGER
        and rk in types.INTEGER
        and not types.is_decimal(left)
        and not types.is_decimal(right)
    ):
        out = exp.IntDiv(this=left, expression=right)
        out.type = exp.DataType.build("BIGINT")
        return out
    ld, rd = types.decimal(left), types.decimal(right)
    if ld is None or rd is None:
        raise Unsupported(
            f"division {athena(node)} of operands whose types the local engine cannot tell",
            "CAST the operands (Athena truncates integer division)",
        )
    (p1, s1), (p2, s2) = ld, rd
    scale = max(s1, s2)
    precision = min(types.MAX_PRECISION, p1 + s2 + max(0, s2 - s1))
    numerator, denominator = _unscaled(left, p1, s1), _unscaled(right, p2, s2)
    return _exact_decimal(numerator, denominator, scale + s2 - s1, (p1, p2), scale, precision)


def average(node: exp.Avg) -> Node | None:
    """avg of a decimal is a decimal of the same type, rounded half up (DuckDB: DOUBLE)."""
    arg = node.this.this if isinstance(node.this, exp.Distinct) else node.this
    if types.kind(arg) != T.DECIMAL:
        return None
    if isinstance(node.parent, exp.Window):
        raise Unsupported("avg of a decimal over a window", "CAST the argument to DOUBLE")
    precision, scale = types.decimal(arg) or (types.MAX_PRECISION, 0)
    total = exp.Sum(this=node.this.copy())
    count = exp.Count(this=node.this.copy())
    total_unscaled = _unscaled(total, types.MAX_PRECISION, scale)
    return _exact_decimal(total_unscaled, count, 0, (types.MAX_PRECISION, 19), scale, precision)


def bigint_aggregate(node: Node) -> Node | None:
    """sum of integers and count_if are BIGINT in Trino (DuckDB: HUGEINT, no overflow error)."""
    target = node.this if isinstance(node, exp.Window) else node
    if isinstance(node, (exp.Sum, exp.CountIf)) and isinstance(node.parent, exp.Window):
        return None
    if isinstance(target, exp.Sum) and types.kind(target.this) not in types.INTEGER:
        return None
    if not isinstance(target, (exp.Sum, exp.CountIf)):
        return None
    return cast(node, "BIGINT")


# --- type errors -----------------------------------------------------------------

_NUMERIC = types.INTEGER | types.FLOAT | {T.DECIMAL}


def type_mismatch(node: exp.Binary) -> None:
    """Trino never converts between text and numbers implicitly: '1' = 1 and 'a' || 1 are errors
    there (DuckDB answers them), so they are errors here too, before anything runs."""
    kinds = [types.kind(node.left), types.kind(node.right)]
    other = kinds[1] if kinds[0] in types.TEXT else kinds[0]
    if isinstance(node, exp.DPipe):  # || joins two strings (or two arrays), nothing else
        mismatch = other not in types.TEXT and other not in (None, T.UNKNOWN, T.NULL, T.ARRAY)
    else:
        mismatch = other in _NUMERIC
    if set(kinds) & types.TEXT and mismatch:
        left, right = (types.trino_name(k) for k in kinds)
        raise EngineError(
            f"{athena(node)}: Athena cannot apply this operator to {left} and {right}; CAST one side"
        )


# --- casts ----------------------------------------------------------------------


_TYPE_NAMES = {
    T.INT: "INT",
    T.BIGINT: "BIGINT",
    T.SMALLINT: "SMALLINT",
    T.TINYINT: "TINYINT",
    T.FLOAT: "REAL",
}


def conversion(node: exp.Cast) -> Node | None:
    """Casts Trino performs differently: strict integer and boolean text, millisecond timestamps."""
    to, source = node.to, types.kind(node.this)
    safe = isinstance(node, exp.TryCast)
    untyped = source in (None, T.UNKNOWN)
    if (to.this in types.INTEGER or to.this in types.FLOAT) and (source in types.TEXT or untyped):
        # Java's parseLong/parseDouble on the trimmed text: '12.5' is no integer, 'inf' no double.
        family = "int" if to.this in types.INTEGER else "double"
        suffix = "any" if untyped else "text"
        if safe:
            node.set("this", call(f"trino_{family}_{suffix}", node.this))
        else:
            name = exp.Literal.string(_TYPE_NAMES.get(to.this, str(to.this.value)))
            node.set("this", call(f"trino_strict_{family}_{suffix}", node.this, name))
        return None
    if to.this == T.BOOLEAN and source in types.TEXT:
        return call("trino_bool_text" if safe else "trino_strict_bool_text", node.this)
    if to.this in types.TEXT and to.expressions and source in types.TEXT:
        # varchar(n): Trino truncates to n characters; DuckDB ignores the length.
        lengths = types.params(to)
        if lengths:
            node.set("to", exp.DataType.build("VARCHAR", dialect="duckdb"))
            first, count = exp.Literal.number(1), exp.Literal.number(lengths[0])
            return call("substring", node, first, count, returns="VARCHAR")
    if to.this in types.TEXT and source in types.FLOAT:
        raise Unsupported(
            f"{athena(node)} (Athena writes doubles in scientific notation)", "CAST it to DECIMAL first"
        )
    if to.this in types.TEXT and source == T.TIMESTAMPTZ:
        raise Unsupported(f"{athena(node)} of a timestamp with time zone", "format it with date_format")
    precision = types.timestamp_precision(node.this)
    if to.this in types.TEXT and precision is not None:
        fraction = {0: "", 3: ".%g", 6: ".%f"}.get(precision)
        if fraction is None:
            raise Unsupported(f"{athena(node)} of a timestamp({precision})")
        return call("strftime", node.this, exp.Literal.string(f"%Y-%m-%d %H:%M:%S{fraction}"))
    if to.this == T.DECIMAL and not to.expressions:
        # DECIMAL '1.50' is DECIMAL(3,2); CAST(x AS DECIMAL) is DECIMAL(38,0) (DuckDB: (18,3)).
        literal = node.this.meta.get(DECIMAL_LITERAL) and types.decimal_of_literal(node.this.this.strip())
        precision, scale = literal or (types.MAX_PRECISION, 0)
        node.set("to", exp.DataType.build(f"DECIMAL({precision}, {scale})", dialect="duckdb"))
        node.type = node.to
        return None
    if to.this in (T.TIMESTAMP, T.TIMESTAMPNTZ) and not to.expressions:
        # Trino's TIMESTAMP is timestamp(3): values round to the millisecond.
        node.set("to", exp.DataType.build("TIMESTAMP_MS", dialect="duckdb"))
        node.type = node.to
    return None


# --- aggregates ---------------------------------------------------------------


def by_value(node: exp.ArgMax | exp.ArgMin) -> Node | None:
    """max_by/min_by return x of the extreme row even when that x is NULL (DuckDB skips NULL x)."""
    if node.args.get("count") is not None:
        return None
    name = "arg_max_null" if isinstance(node, exp.ArgMax) else "arg_min_null"
    return call(name, node.this, node.expression)


def exact_distinct(node: exp.ApproxDistinct) -> Node:
    """approx_distinct: the exact count, which is within Athena's documented 2.3% error."""
    out = exp.Count(this=exp.Distinct(expressions=[node.this]))
    out.type = exp.DataType.build("BIGINT")
    return out
