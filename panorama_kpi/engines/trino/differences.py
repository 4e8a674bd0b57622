"""The one table of differences between Trino (Athena engine v3) and DuckDB that the
local engine handles: what the construct is, what Trino answers, and the rewrite
that makes DuckDB answer the same, or fail loudly where it cannot.

A difference matches a sqlglot node class, or (for functions sqlglot does not model)
a function name. To handle a new difference: add a row here, its rewrite in
`rewrites.py` (or a macro in `macros.py`), and conformance cases in
tests/test_trino_conformance.py.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from sqlglot import exp

from panorama_kpi.engines.trino import rewrites as r

Rewrite = Callable[[Any], exp.Expr | None]


@dataclass(frozen=True)
class Difference:
    construct: str
    trino: str  # what Trino answers (DuckDB answered otherwise without the rewrite)
    match: type[exp.Expr] | str  # node class, or function name for unmodelled functions
    rewrite: Rewrite


def _loud(construct: str, hint: str = "") -> Rewrite:
    return r.unsupported(construct, hint)


DIFFERENCES: tuple[Difference, ...] = (
    # type errors: Trino converts between text and numbers only with CAST
    Difference("text = number", "an error", exp.EQ, r.type_mismatch),
    Difference("text <> number", "an error", exp.NEQ, r.type_mismatch),
    Difference("text < number", "an error", exp.LT, r.type_mismatch),
    Difference("text <= number", "an error", exp.LTE, r.type_mismatch),
    Difference("text > number", "an error", exp.GT, r.type_mismatch),
    Difference("text >= number", "an error", exp.GTE, r.type_mismatch),
    Difference("text + number", "an error", exp.Add, r.type_mismatch),
    Difference("text - number", "an error", exp.Sub, r.type_mismatch),
    Difference("text * number", "an error", exp.Mul, r.type_mismatch),
    Difference("text / number", "an error", exp.Div, r.type_mismatch),
    Difference("text % number", "an error", exp.Mod, r.type_mismatch),
    Difference("text || number", "an error", exp.DPipe, r.type_mismatch),
    # arithmetic and aggregates
    Difference(
        "x / y", "integers truncate toward zero; decimals keep max scale, round half up", exp.Div, r.division
    ),
    Difference("avg(decimal)", "a decimal of the argument's type, not DOUBLE", exp.Avg, r.average),
    Difference("sum(integer)", "BIGINT (overflow is an error)", exp.Sum, r.bigint_aggregate),
    Difference("count_if(x)", "BIGINT", exp.CountIf, r.bigint_aggregate),
    Difference("sum/count_if OVER (...)", "BIGINT", exp.Window, r.bigint_aggregate),
    Difference(
        "approx_distinct(x)",
        "HyperLogLog estimate, standard error 2.3%",
        exp.ApproxDistinct,
        r.exact_distinct,
    ),
    Difference(
        "approx_percentile",
        "a q-digest estimate DuckDB's t-digest does not reproduce",
        exp.ApproxQuantile,
        _loud("approx_percentile", "use an exact percentile over a window"),
    ),
    Difference("max_by(x, y)", "x of the row with the largest y, NULL x included", exp.ArgMax, r.by_value),
    Difference("min_by(x, y)", "x of the row with the smallest y, NULL x included", exp.ArgMin, r.by_value),
    # casts
    Difference(
        "CAST / TRY_CAST",
        "strict integer and boolean text; TIMESTAMP is timestamp(3)",
        exp.Cast,
        r.conversion,
    ),
    Difference("TRY_CAST", "as CAST, NULL instead of the error", exp.TryCast, r.conversion),
    Difference("typeof(x)", "Trino type names", exp.Typeof, _loud("typeof")),
    # date and time
    Difference("date_trunc(unit, DATE)", "a DATE", exp.TimestampTrunc, r.truncate_date),
    Difference("date_trunc(unit, DATE)", "a DATE", exp.DateTrunc, r.truncate_date),
    Difference("date_add(unit, n, DATE)", "a DATE", exp.DateAdd, r.add_to_date),
    Difference("DATE + INTERVAL", "a DATE", exp.Add, r.date_interval),
    Difference("DATE - INTERVAL", "a DATE", exp.Sub, r.date_interval),
    Difference("date_diff(unit, a, b)", "whole units elapsed", exp.DateDiff, r.whole_units_between),
    Difference("format_datetime(ts, joda)", "Joda-Time pattern", "format_datetime", r.format_datetime),
    Difference(
        "date_format(ts, fmt)", "MySQL specifiers; %D %U %u %V %w %X rejected", exp.TimeToStr, r.mysql_format
    ),
    Difference("date_parse(s, fmt)", "MySQL specifiers", exp.StrToTime, r.mysql_format),
    Difference("at_timezone(ts, zone)", "ts AT TIME ZONE zone", "at_timezone", r.at_timezone_function),
    Difference("ts AT TIME ZONE zone", "a timestamp with time zone", exp.AtTimeZone, r.at_time_zone),
    Difference(
        "sequence(start, stop)",
        "steps -1 when stop < start; DATEs stay DATEs",
        exp.GenerateSeries,
        r.sequence,
    ),
    Difference(
        "UNNEST(a, b) AS t(x, y)",
        "the arrays zipped, the shorter padded with NULL",
        exp.Unnest,
        r.zipped_unnest,
    ),
    # strings and regular expressions
    Difference("split_part(s, d, i)", "NULL past the last field", exp.SplitPart, r.split_part),
    Difference(
        "substr(s, start[, n])", "'' when start is 0 or outside the string", exp.Substring, r.substring
    ),
    Difference("strpos(s, sub, instance)", "the instance-th match", exp.StrPosition, r.strpos),
    Difference("regexp_replace(s, p, '$1')", "Java replacement syntax", exp.RegexpReplace, r.regexp_replace),
    Difference("regexp_extract(s, p)", "NULL when nothing matches", exp.RegexpExtract, r.regexp_extract),
    # URLs
    Difference("url_decode(s)", "'+' decodes to a space", "url_decode", r.macro("trino_url_decode", 1)),
    Difference("url_encode(s)", "space as '+', only .-*_ kept", "url_encode", r.macro("trino_url_encode", 1)),
    Difference("url_extract_host", "RFC 3986 host", "url_extract_host", r.macro("trino_url_host", 1)),
    Difference(
        "url_extract_port", "port or NULL", "url_extract_port", r.macro("trino_url_port", 1, "BIGINT")
    ),
    Difference("url_extract_path", "path", "url_extract_path", r.macro("trino_url_path", 1)),
    Difference("url_extract_query", "query or NULL", "url_extract_query", r.macro("trino_url_query", 1)),
    Difference(
        "url_extract_fragment", "fragment or NULL", "url_extract_fragment", r.macro("trino_url_fragment", 1)
    ),
    Difference("url_extract_protocol", "scheme", "url_extract_protocol", r.macro("trino_url_protocol", 1)),
    Difference(
        "url_extract_parameter",
        "first value of a query parameter",
        "url_extract_parameter",
        r.macro("trino_url_parameter", 2),
    ),
    # JSON and arrays
    Difference(
        "json_extract_scalar(j, p)",
        "NULL for objects, arrays, invalid JSON",
        exp.JSONExtractScalar,
        r.json_path,
    ),
    Difference("json_extract(j, p)", "NULL for invalid JSON", exp.JSONExtract, r.json_path),
    Difference(
        "json_array_length(j)",
        "NULL unless an array",
        "json_array_length",
        r.macro("trino_json_array_length", 1, "BIGINT"),
    ),
    Difference(
        "a[i], m[k], element_at(a, 0)", "an error out of range or for a missing key", exp.Bracket, r.subscript
    ),
    Difference("cardinality(map)", "the number of entries", exp.ArraySize, r.cardinality),
    Difference("array_position(a, x)", "0 when absent", exp.ArrayPosition, r.array_position),
    Difference(
        "slice(a, start, length)",
        "a length; a negative start counts from the end",
        exp.ArraySlice,
        r.array_slice,
    ),
    Difference(
        "contains(array, x)",
        "NULL when not found and the array has NULLs",
        exp.ArrayContains,
        r.array_contains,
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
