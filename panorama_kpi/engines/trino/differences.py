"""The one table of differences between Trino (Athena engine v3) and DuckDB that the
local engine handles: what the construct is, what Trino answers, and the rewrite
that makes DuckDB answer the same, or fail loudly where it cannot.

A difference matches a sqlglot node class, or (for functions sqlglot does not model)
a function name. To handle a new difference: add a row here, its rewrite in
`numbers.py` or `functions.py` (or a macro in `macros.py`), and conformance cases in
tests/test_trino_conformance.py.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from sqlglot import exp

from panorama_kpi.engines.trino import functions as f
from panorama_kpi.engines.trino import numbers as n
from panorama_kpi.engines.trino.nodes import unsupported

Rewrite = Callable[[Any], exp.Expr | None]


@dataclass(frozen=True)
class Difference:
    construct: str
    trino: str  # what Trino answers (DuckDB answered otherwise without the rewrite)
    match: type[exp.Expr] | str  # node class, or function name for unmodelled functions
    rewrite: Rewrite


def _loud(construct: str, hint: str = "") -> Rewrite:
    return unsupported(construct, hint)


DIFFERENCES: tuple[Difference, ...] = (
    # type errors: Trino converts between text and numbers only with CAST
    Difference("text = number", "an error", exp.EQ, n.type_mismatch),
    Difference("text <> number", "an error", exp.NEQ, n.type_mismatch),
    Difference("text < number", "an error", exp.LT, n.type_mismatch),
    Difference("text <= number", "an error", exp.LTE, n.type_mismatch),
    Difference("text > number", "an error", exp.GT, n.type_mismatch),
    Difference("text >= number", "an error", exp.GTE, n.type_mismatch),
    Difference("text + number", "an error", exp.Add, n.type_mismatch),
    Difference("text - number", "an error", exp.Sub, n.type_mismatch),
    Difference("text * number", "an error", exp.Mul, n.type_mismatch),
    Difference("text / number", "an error", exp.Div, n.type_mismatch),
    Difference("text % number", "an error", exp.Mod, n.type_mismatch),
    Difference("text || number", "an error", exp.DPipe, n.type_mismatch),
    # arithmetic and aggregates
    Difference(
        "x / y", "integers truncate toward zero; decimals keep max scale, round half up", exp.Div, n.division
    ),
    Difference("avg(decimal)", "a decimal of the argument's type, not DOUBLE", exp.Avg, n.average),
    Difference("sum(integer)", "BIGINT (overflow is an error)", exp.Sum, n.bigint_aggregate),
    Difference("count_if(x)", "BIGINT", exp.CountIf, n.bigint_aggregate),
    Difference("sum/count_if OVER (...)", "BIGINT", exp.Window, n.bigint_aggregate),
    Difference(
        "approx_distinct(x)",
        "HyperLogLog estimate, standard error 2.3%",
        exp.ApproxDistinct,
        n.exact_distinct,
    ),
    Difference(
        "approx_percentile",
        "a q-digest estimate DuckDB's t-digest does not reproduce",
        exp.ApproxQuantile,
        _loud("approx_percentile", "use an exact percentile over a window"),
    ),
    Difference("max_by(x, y)", "x of the row with the largest y, NULL x included", exp.ArgMax, n.by_value),
    Difference("min_by(x, y)", "x of the row with the smallest y, NULL x included", exp.ArgMin, n.by_value),
    Difference("cbrt(x)", "exact for perfect cubes", exp.Cbrt, f.macro("trino_cbrt", 1, "DOUBLE")),
    Difference("e()", "Euler's number", "e", f.macro("trino_e", 0, "DOUBLE")),
    Difference("infinity()", "positive infinity", "infinity", f.macro("trino_infinity", 0, "DOUBLE")),
    Difference("nan()", "not a number", "nan", f.macro("trino_nan", 0, "DOUBLE")),
    Difference(
        "hamming_distance(a, b)", "positions that differ", "hamming_distance", f.macro("hamming", 2, "BIGINT")
    ),
    Difference("is_finite(x)", "neither infinite nor NaN", "is_finite", f.macro("isfinite", 1, "BOOLEAN")),
    Difference("is_infinite(x)", "infinite", "is_infinite", f.macro("isinf", 1, "BOOLEAN")),
    # casts
    Difference(
        "CAST / TRY_CAST",
        "strict integer and boolean text; TIMESTAMP is timestamp(3)",
        exp.Cast,
        n.conversion,
    ),
    Difference("TRY_CAST", "as CAST, NULL instead of the error", exp.TryCast, n.conversion),
    # date and time
    Difference("date_trunc(unit, DATE)", "a DATE", exp.TimestampTrunc, f.truncate_date),
    Difference("date_trunc(unit, DATE)", "a DATE", exp.DateTrunc, f.truncate_date),
    Difference("date_add(unit, n, DATE)", "a DATE", exp.DateAdd, f.add_to_date),
    Difference("DATE + INTERVAL", "a DATE", exp.Add, f.date_interval),
    Difference("DATE - INTERVAL", "a DATE", exp.Sub, f.date_interval),
    Difference("date_diff(unit, a, b)", "whole units elapsed", exp.DateDiff, f.whole_units_between),
    Difference("format_datetime(ts, joda)", "Joda-Time pattern", "format_datetime", f.format_datetime),
    Difference(
        "date_format(ts, fmt)", "MySQL specifiers; %D %U %u %V %w %X rejected", exp.TimeToStr, f.mysql_format
    ),
    Difference("date_parse(s, fmt)", "MySQL specifiers", exp.StrToTime, f.mysql_format),
    Difference("at_timezone(ts, zone)", "ts AT TIME ZONE zone", "at_timezone", f.at_timezone_function),
    Difference("from_unixtime(x, zone)", "a timestamp in that zone", exp.UnixToTime, f.from_unixtime_zone),
    Difference("to_iso8601(x)", "ISO 8601 text", "to_iso8601", f.to_iso8601),
    Difference("current_timezone()", "UTC, Athena's session zone", exp.CurrentTimezone, f.current_timezone),
    Difference(
        "extract(DOW | DOY | YOW ... FROM x)", "ISO day of week (Sunday is 7)", exp.Extract, f.extract_field
    ),
    Difference(
        "millisecond(ts)",
        "the millisecond of the second",
        "millisecond",
        f.macro("trino_millisecond", 1, "BIGINT"),
    ),
    Difference("ts AT TIME ZONE zone", "a timestamp with time zone", exp.AtTimeZone, f.at_time_zone),
    Difference(
        "sequence(start, stop)",
        "steps -1 when stop < start; DATEs stay DATEs",
        exp.GenerateSeries,
        f.sequence,
    ),
    Difference(
        "UNNEST(a, b) AS t(x, y)",
        "the arrays zipped, the shorter padded with NULL",
        exp.Unnest,
        f.zipped_unnest,
    ),
    # strings and regular expressions
    Difference("trim/ltrim/rtrim(s)", "Java whitespace removed, not only spaces", exp.Trim, f.trim),
    Difference("format(fmt, ...)", "Java's Formatter", exp.Format, f.format_text),
    Difference(
        "split(s, d, limit)", "at most limit elements, the last holding the rest", exp.Split, f.split_limit
    ),
    Difference("split_part(s, d, i)", "NULL past the last field", exp.SplitPart, f.split_part),
    Difference(
        "substr(s, start[, n])", "'' when start is 0 or outside the string", exp.Substring, f.substring
    ),
    Difference("strpos(s, sub, instance)", "the instance-th match", exp.StrPosition, f.strpos),
    Difference("regexp_replace(s, p, '$1')", "Java replacement syntax", exp.RegexpReplace, f.regexp_replace),
    Difference("regexp_extract(s, p)", "NULL when nothing matches", exp.RegexpExtract, f.regexp_extract),
    # URLs
    Difference("url_decode(s)", "'+' decodes to a space", "url_decode", f.macro("trino_url_decode", 1)),
    Difference("url_encode(s)", "space as '+', only .-*_ kept", "url_encode", f.macro("trino_url_encode", 1)),
    Difference("url_extract_host", "RFC 3986 host", "url_extract_host", f.macro("trino_url_host", 1)),
    Difference(
        "url_extract_port", "port or NULL", "url_extract_port", f.macro("trino_url_port", 1, "BIGINT")
    ),
    Difference("url_extract_path", "path", "url_extract_path", f.macro("trino_url_path", 1)),
    Difference("url_extract_query", "query or NULL", "url_extract_query", f.macro("trino_url_query", 1)),
    Difference(
        "url_extract_fragment", "fragment or NULL", "url_extract_fragment", f.macro("trino_url_fragment", 1)
    ),
    Difference("url_extract_protocol", "scheme", "url_extract_protocol", f.macro("trino_url_protocol", 1)),
    Difference(
        "url_extract_parameter",
        "first value of a query parameter",
        "url_extract_parameter",
        f.macro("trino_url_parameter", 2),
    ),
    # JSON and arrays
    Difference(
        "json_extract_scalar(j, p)",
        "NULL for objects, arrays, invalid JSON",
        exp.JSONExtractScalar,
        f.json_path,
    ),
    Difference("json_extract(j, p)", "NULL for invalid JSON", exp.JSONExtract, f.json_path),
    Difference(
        "json_array_length(j)",
        "NULL unless an array",
        "json_array_length",
        f.macro("trino_json_array_length", 1, "BIGINT"),
    ),
    Difference(
        "a[i], m[k], element_at(a, 0)", "an error out of range or for a missing key", exp.Bracket, f.subscript
    ),
    Difference("cardinality(map)", "the number of entries", exp.ArraySize, f.cardinality),
    Difference("array_position(a, x)", "0 when absent", exp.ArrayPosition, f.array_position),
    Difference(
        "slice(a, start, length)",
        "a length; a negative start counts from the end",
        exp.ArraySlice,
        f.array_slice,
    ),
    Difference(
        "contains(array, x)",
        "NULL when not found and the array has NULLs",
        exp.ArrayContains,
        f.array_contains,
    ),
)

BY_CLASS: dict[type[exp.Expr], list[Rewrite]] = {}
BY_NAME: dict[str, list[Rewrite]] = {}
for _d in DIFFERENCES:
    if isinstance(_d.match, str):
        BY_NAME.setdefault(_d.match, []).append(_d.rewrite)
    else:
        BY_CLASS.setdefault(_d.match, []).append(_d.rewrite)


def rewrites_for(node: exp.Expr) -> list[Rewrite]:
    if isinstance(node, exp.Anonymous):
        return BY_NAME.get(node.name.lower(), [])
    return BY_CLASS.get(type(node), [])
