"""Rewrites for functions: dates and times, strings, regular expressions, URLs, JSON, arrays.

Each function takes one annotated node (children already rewritten) and returns its
replacement, or None to keep it; `differences.py` lists them with what they fix.
"""

from __future__ import annotations

import re
from collections.abc import Callable

from sqlglot import exp

from panorama_kpi.engines.trino import types
from panorama_kpi.engines.trino.errors import Unsupported
from panorama_kpi.engines.trino.formats import joda_to_strftime, mysql_to_strftime
from panorama_kpi.engines.trino.nodes import Node, T, athena, call, cast

# --- date and time --------------------------------------------------------------

_DATE_UNITS = {"DAY", "WEEK", "MONTH", "QUARTER", "YEAR"}


def _unit(node: Node) -> str:
    unit = node.args.get("unit")
    return (unit.name if unit is not None else "DAY").upper()


def truncate_date(node: Node) -> Node | None:
    """date_trunc of a DATE is a DATE (DuckDB: TIMESTAMP)."""
    return cast(node, "DATE") if types.kind(node.this) == T.DATE else None


def add_to_date(node: exp.DateAdd) -> Node | None:
    """date_add on a DATE is a DATE; a time unit on a DATE is an error in Trino."""
    if types.kind(node.this) != T.DATE:
        return None
    if _unit(node) not in _DATE_UNITS:
        raise Unsupported(f"{athena(node)}: '{_unit(node).lower()}' is not a valid DATE field")
    return cast(node, "DATE")


def date_interval(node: exp.Add | exp.Sub) -> Node | None:
    """DATE +/- INTERVAL of days, months or years is a DATE (DuckDB: TIMESTAMP)."""
    pairs = [(node.left, node.right)] + ([(node.right, node.left)] if isinstance(node, exp.Add) else [])
    for date, interval in pairs:
        if types.kind(date) == T.DATE and isinstance(interval, exp.Interval):
            unit = interval.unit.name.upper() if interval.unit else ""
            if unit.rstrip("S") not in _DATE_UNITS:
                raise Unsupported(f"{athena(node)}: adding a time interval to a DATE")
            return cast(node, "DATE")
    return None


def whole_units_between(node: exp.DateDiff) -> Node:
    """date_diff counts whole units elapsed (DuckDB's date_diff counts boundaries)."""
    unit = exp.Literal.string(_unit(node).lower())
    return call("date_sub", unit, node.expression, node.this, returns="BIGINT")


def format_datetime(node: exp.Anonymous) -> Node:
    value, pattern = (node.expressions + [None, None])[:2]
    if not isinstance(pattern, exp.Literal) or not pattern.is_string or value is None:
        raise Unsupported("format_datetime with a pattern that is not a string literal")
    return call("strftime", value, exp.Literal.string(joda_to_strftime(pattern.this)))


def mysql_format(node: exp.TimeToStr | exp.StrToTime) -> Node:
    """date_format/date_parse: MySQL specifiers; the ones Trino rejects are rejected."""
    fmt = node.args.get("format")
    if not (isinstance(fmt, exp.Literal) and fmt.is_string):
        raise Unsupported(f"{athena(node)} with a format that is not a string literal")
    pattern = exp.Literal.string(mysql_to_strftime(fmt.this))
    if isinstance(node, exp.TimeToStr):
        return call("strftime", node.this, pattern, returns="VARCHAR")
    return call("strptime", node.this, pattern, returns="TIMESTAMP")


_WALL_CLOCK = (
    exp.Cast,
    exp.TimeToStr,
    exp.Year,
    exp.Month,
    exp.Day,
    exp.Hour,
    exp.Minute,
    exp.Second,
    exp.Quarter,
    exp.DayOfWeekIso,
    exp.DayOfYear,
    exp.Extract,
)


def at_timezone_function(node: exp.Anonymous) -> Node:
    """at_timezone(ts, zone) is ts AT TIME ZONE zone."""
    if len(node.expressions) != 2:
        raise Unsupported(f"{athena(node)} with {len(node.expressions)} arguments")
    zoned = exp.AtTimeZone(this=node.expressions[0], zone=node.expressions[1])
    return at_time_zone(zoned, node.parent) or zoned


def at_time_zone(node: exp.AtTimeZone, parent: exp.Expr | None = None) -> Node | None:
    """AT TIME ZONE: a zoned value DuckDB cannot keep; only its wall-clock reading is reproduced."""
    parent = parent or node.parent
    wall = (
        isinstance(parent, _WALL_CLOCK)
        or (isinstance(parent, exp.Anonymous) and parent.name.lower() == "strftime")
        or (isinstance(parent, exp.Anonymous) and parent.name.lower() in {"strftime", "format_datetime"})
    )
    if not wall:
        raise Unsupported(
            "AT TIME ZONE outside a cast, date_format or field extraction",
            "wrap it in CAST(... AS timestamp) or date_format",
        )
    if types.kind(node.this) in types.TIMESTAMP:
        # A zoneless timestamp is read in the session zone (UTC) first, as Trino does.
        node.set("this", cast(node.this, "TIMESTAMPTZ"))
    return None


def from_unixtime_zone(node: exp.UnixToTime) -> Node | None:
    """from_unixtime(x, zone) is in that zone (sqlglot drops the zone): x AT TIME ZONE zone."""
    if node.args.get("hours") is not None or node.args.get("minutes") is not None:
        raise Unsupported("from_unixtime with an hours and minutes offset")
    zone, parent = node.args.get("zone"), node.parent
    if zone is None:
        return None
    node.set("zone", None)
    zoned = exp.AtTimeZone(this=node, zone=zone)
    return at_time_zone(zoned, parent) or zoned


def to_iso8601(node: exp.Anonymous) -> Node:
    """to_iso8601 of a date or a timestamp, with the timestamp's fraction digits."""
    (value,) = node.expressions if len(node.expressions) == 1 else (None,)
    if value is None:
        raise Unsupported(f"{athena(node)} with {len(node.expressions)} arguments")
    if types.kind(value) == T.DATE:
        return call("strftime", value, exp.Literal.string("%Y-%m-%d"), returns="VARCHAR")
    fraction = {0: "", 3: ".%g", 6: ".%f"}.get(types.timestamp_precision(value) or -1)
    if fraction is None:
        raise Unsupported("to_iso8601 of a value that is not a date or a timestamp")
    return call("strftime", value, exp.Literal.string(f"%Y-%m-%dT%H:%M:%S{fraction}"), returns="VARCHAR")


# EXTRACT fields Trino names differently from DuckDB (DOW: DuckDB counts Sunday as 0).
_EXTRACT = {
    "DOW": "isodow",
    "DAY_OF_WEEK": "isodow",
    "DOY": "doy",
    "DAY_OF_YEAR": "doy",
    "DAY_OF_MONTH": "day",
    "YOW": "isoyear",
    "YEAR_OF_WEEK": "isoyear",
    "WEEK": "week",
}


def extract_field(node: exp.Extract) -> Node | None:
    field = node.this.name.upper() if isinstance(node.this, (exp.Var, exp.Identifier)) else ""
    if field not in _EXTRACT:
        return None
    return call("date_part", exp.Literal.string(_EXTRACT[field]), node.expression, returns="BIGINT")


def current_timezone(node: exp.CurrentTimezone) -> Node:
    return exp.Literal.string("UTC")  # Athena's session zone, as the engine's


def sequence(node: exp.GenerateSeries) -> Node | None:
    """sequence() steps by -1 when stop < start, and of DATEs is an array of DATEs."""
    start, end = node.args["start"], node.args["end"]
    date = types.kind(start) == T.DATE
    if node.args.get("step") is None:
        up, down = ("INTERVAL '1' DAY", "INTERVAL '-1' DAY") if date else ("1", "-1")
        step = exp.If(
            this=exp.GTE(this=end.copy(), expression=start.copy()),
            true=exp.maybe_parse(up, dialect="duckdb"),
            false=exp.maybe_parse(down, dialect="duckdb"),
        )
        node.set("step", step)
    return cast(node, "DATE[]") if date else node


# --- strings, regular expressions, URLs, JSON, arrays ------------------------


def macro(name: str, arity: int = 0, returns: str = "VARCHAR") -> Callable[[Node], Node]:
    """A rewrite calling a macro of `macros.py` with the node's arguments."""

    def rewrite(node: Node) -> Node:
        args = list(node.expressions) if isinstance(node, exp.Anonymous) else _arguments(node)
        if arity and len(args) != arity:
            raise Unsupported(f"{athena(node)} with {len(args)} arguments")
        return call(name, *args, returns=returns)

    return rewrite


def _arguments(node: Node) -> list[Node]:
    return [v for v in node.args.values() if isinstance(v, exp.Expr)]


def trim(node: exp.Trim) -> Node | None:
    """trim/ltrim/rtrim remove Java whitespace (tabs, line breaks, ...), DuckDB's only spaces."""
    if node.args.get("expression") is not None:
        return None  # trim(s, chars): the same on both
    position = str(node.args.get("position") or "BOTH").upper()
    name = {"LEADING": "trino_ltrim", "TRAILING": "trino_rtrim"}.get(position, "trino_trim_whitespace")
    return call(name, node.this, returns="VARCHAR")


def format_text(node: exp.Format) -> Node:
    """format(): Java's Formatter. DuckDB's format() is another syntax, printf takes C's; only
    the conversions that print alike are translated: %s of non-floats, %d of integers, %%."""
    fmt, args = node.this, list(node.expressions)
    if not (isinstance(fmt, exp.Literal) and fmt.is_string):
        raise Unsupported("format with a format that is not a string literal")
    specs = re.findall(r"%(-?\d*)([a-zA-Z%])", fmt.this)
    used = [conv for _, conv in specs if conv != "%"]
    if any(conv not in "sd" for conv in used) or len(used) != len(args) or "$" in fmt.this:
        raise Unsupported("format conversions other than %s, %d and %%")
    printed = []
    for conv, arg in zip(used, args, strict=True):
        k = types.kind(arg)
        if conv == "s" and (k in types.TEXT or k in types.INTEGER or k == T.BOOLEAN):
            printed.append(arg if k in types.TEXT else cast(arg, "VARCHAR"))
        elif conv == "d" and k in types.INTEGER:
            printed.append(arg)
        else:
            raise Unsupported(f"format %{conv} of a {types.trino_name(k)}")
    return call("printf", fmt, *printed, returns="VARCHAR")


def split_limit(node: exp.Split) -> Node | None:
    """split(s, d, limit): the last element holds the rest (sqlglot drops the limit)."""
    limit = node.args.get("limit")
    if limit is None:
        return None
    return call("trino_split_limit", node.this, node.expression, limit, returns="VARCHAR[]")


def split_part(node: exp.SplitPart) -> Node:
    return call(
        "trino_split_part", node.this, node.args["delimiter"], node.args["part_index"], returns="VARCHAR"
    )


def substring(node: exp.Substring) -> Node:
    length = node.args.get("length") or exp.Literal.number(2**31 - 1)
    return call("trino_substr", node.this, node.args["start"], length, returns="VARCHAR")


def strpos(node: exp.StrPosition) -> Node | None:
    occurrence = node.args.get("occurrence")
    if occurrence is not None and not (isinstance(occurrence, exp.Literal) and occurrence.this == "1"):
        raise Unsupported(f"{athena(node)}: strpos with an instance")
    return None


def regexp_replace(node: exp.RegexpReplace) -> Node | None:
    """Java replacement syntax ($1, \\$) to RE2's (\\1, $)."""
    replacement = node.args.get("replacement")
    if replacement is None:
        return None
    if isinstance(replacement, exp.Lambda):
        raise Unsupported("regexp_replace with a lambda")
    if not (isinstance(replacement, exp.Literal) and replacement.is_string):
        raise Unsupported("regexp_replace with a replacement that is not a string literal")
    text, out, i = replacement.this, [], 0
    while i < len(text):
        c = text[i]
        if c == "\\" and i + 1 < len(text):
            out.append("\\\\" if text[i + 1] == "\\" else text[i + 1])
            i += 2
        elif c == "$" and i + 1 < len(text) and text[i + 1].isdigit():
            out.append("\\" + text[i + 1])
            i += 2
        elif c == "$":
            raise Unsupported(f"regexp_replace replacement {text!r} (named or malformed group reference)")
        else:
            out.append(c)
            i += 1
    node.set("replacement", exp.Literal.string("".join(out)))
    return None


def regexp_extract(node: exp.RegexpExtract) -> Node:
    group = node.args.get("group") or exp.Literal.number(0)
    return call("trino_regexp_extract", node.this, node.expression, group, returns="VARCHAR")


def json_path(node: exp.JSONExtract | exp.JSONExtractScalar) -> Node:
    name = "trino_json_extract_scalar" if isinstance(node, exp.JSONExtractScalar) else "trino_json_extract"
    path = node.expression
    if not isinstance(path, exp.JSONPath):
        raise Unsupported(f"{athena(node)} with a path that is not a literal")
    plain = (exp.JSONPath, exp.JSONPathRoot, exp.JSONPathKey, exp.JSONPathSubscript)
    if any(not isinstance(part, plain) for part in path.find_all(exp.JSONPathPart)):
        raise Unsupported("a JSON path with wildcards, slices or filters")
    text = exp.Literal.string(path.sql("duckdb").strip("'"))  # DuckDB spells $["a b"] as $."a b"
    returns = "VARCHAR" if isinstance(node, exp.JSONExtractScalar) else "JSON"
    return call(name, node.this, text, returns=returns)


def array_contains(node: exp.ArrayContains) -> Node:
    return call("trino_contains", node.this, node.expression)


def subscript(node: exp.Bracket) -> Node | None:
    """a[i] and m[k] are errors when out of range or absent; element_at(a, 0) too (DuckDB: NULL)."""
    container = types.kind(node.this)
    if container not in (T.ARRAY, T.MAP) or len(node.expressions) != 1:
        return None
    index = node.expressions[0]
    if container == T.MAP:
        return None if node.args.get("safe") else call("trino_map_subscript", node.this, index)
    if not node.args.get("offset") and index.is_int:  # sqlglot keeps a literal a[i] 0-based
        index = exp.Literal.number(int(index.to_py()) + 1)
    name = "trino_element_at" if node.args.get("safe") else "trino_subscript"
    return call(name, node.this, index)


def cardinality(node: exp.ArraySize) -> Node | None:
    return call("cardinality", node.this, returns="BIGINT") if types.kind(node.this) == T.MAP else None


def array_position(node: exp.ArrayPosition) -> Node:
    """0 when the element is absent (DuckDB: NULL)."""
    return call("trino_array_position", node.this, node.expression, returns="BIGINT")


def array_slice(node: exp.ArraySlice) -> Node:
    """slice(array, start, length): a length, not an end index as DuckDB's list_slice takes."""
    return call("trino_slice", node.this, node.args["start"], node.args["end"])


def zipped_unnest(node: exp.Unnest) -> Node | None:
    """UNNEST(a, b) AS t(x, y) zips the arrays (DuckDB's UNNEST takes one): one UNNEST per column."""
    arrays = node.expressions
    if len(arrays) < 2:
        return None
    alias = node.args.get("alias")
    names = alias.columns if alias is not None else []
    if alias is None or node.args.get("offset") or len(names) != len(arrays):
        raise Unsupported("UNNEST of several arrays WITH ORDINALITY or without column names")
    select = exp.select(
        *(exp.alias_(exp.Unnest(expressions=[a]), n) for a, n in zip(arrays, names, strict=True))
    )
    return exp.Subquery(this=select, alias=exp.TableAlias(this=alias.this.copy()))
