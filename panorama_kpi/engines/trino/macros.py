"""DuckDB macros for Trino functions DuckDB lacks or answers differently.

Installed as TEMP macros on every connection and cursor the DuckDB engine opens
(they do not survive the connection), so views stored in the catalog may call them.
A failure that Trino raises is raised by `trino_fail`, a cast that cannot succeed:
deterministic, so `TRY(...)` turns it into NULL as Trino's `try` does (DuckDB
refuses `TRY` around its volatile `error()`).
"""

from __future__ import annotations

from typing import Any

# RFC 3986, appendix B: 2 scheme, 4 authority, 5 path, 6 ?query, 7 query, 8 #fragment, 9 fragment.
_URL = r"'^(([^:/?#]+):)?(//([^/?#]*))?([^?#]*)(\?([^#]*))?(#(.*))?'"

_SPACE = r"[\t\n\x0B\f\r\x1C-\x20\x{1680}\x{2000}-\x{2006}\x{2008}-\x{200A}\x{2028}\x{2029}\x{205F}\x{3000}]"

MACROS: dict[str, str] = {
    "trino_fail(msg)": "CAST('[Athena semantics] ' || msg AS INTEGER)",
    # Exact decimal arithmetic on unscaled 128-bit integers: DuckDB divides decimals in DOUBLE.
    "trino_unscaled(x)": "CAST(replace(CAST(x AS VARCHAR), '.', '') AS HUGEINT)",
    # round-half-up(n * f0 * product(fs) / d) by long division in 128-bit steps: each step's
    # multiplier is chosen (at translation) so that no intermediate can overflow.
    "trino_divide(n, d, f0, fs)": (
        "CASE WHEN n IS NULL OR d IS NULL THEN NULL "
        "WHEN d = 0 THEN CAST(trino_fail('Division by zero') AS HUGEINT) "
        "ELSE sign(n) * sign(d) * trino_round_half_up(list_reduce(fs, "
        "lambda acc, f: {'q': acc.q * f + (acc.r * f) // abs(d), 'r': (acc.r * f) % abs(d)}, "
        "{'q': abs(n) * f0 // abs(d), 'r': abs(n) * f0 % abs(d)}), abs(d)) END"
    ),
    # The same when a remainder times 10 could overflow: x10 as 2x + 8x by doublings, unsigned.
    "trino_divide_wide(n, d, f0, k)": (
        "CASE WHEN n IS NULL OR d IS NULL THEN NULL "
        "WHEN d = 0 THEN CAST(trino_fail('Division by zero') AS HUGEINT) "
        "ELSE sign(n) * sign(d) * trino_round_half_up(list_reduce(range(k), "
        "lambda acc, i: trino_times10(acc, CAST(abs(d) AS UHUGEINT)), "
        "{'q': CAST(abs(n) * f0 // abs(d) AS UHUGEINT), 'r': CAST(abs(n) * f0 % abs(d) AS UHUGEINT)}), "
        "CAST(abs(d) AS UHUGEINT)) END"
    ),
    "trino_double_qr(q, r, d)": (
        "{'q': q + q + CASE WHEN r >= d - r THEN CAST(1 AS UHUGEINT) ELSE CAST(0 AS UHUGEINT) END, "
        "'r': CASE WHEN r >= d - r THEN r - (d - r) ELSE r + r END}"
    ),
    "trino_sum_qr(a, b, d)": (
        "{'q': a.q + b.q + CASE WHEN a.r >= d - b.r THEN CAST(1 AS UHUGEINT) ELSE CAST(0 AS UHUGEINT) END, "
        "'r': CASE WHEN a.r >= d - b.r THEN a.r - (d - b.r) ELSE a.r + b.r END}"
    ),
    "trino_times10(v, d)": (
        "list_transform([trino_double_qr(v.q, v.r, d)], lambda v2: list_transform([trino_double_qr(v2.q, v2.r, d)], "
        "lambda v4: trino_sum_qr(trino_double_qr(v4.q, v4.r, d), v2, d))[1])[1]"
    ),
    "trino_round_half_up(qr, d)": "CAST(qr.q AS HUGEINT) + CASE WHEN qr.r >= d - qr.r THEN 1 ELSE 0 END",
    # q / 10^s as exact decimal text; f = 10^s as HUGEINT (DuckDB's ** is DOUBLE).
    "trino_scaled(q, s, f)": (
        "(CASE WHEN q < 0 THEN '-' ELSE '' END) || CAST((abs(q) // f) AS VARCHAR) "
        "|| (CASE WHEN s > 0 THEN '.' || lpad(CAST((abs(q) % f) AS VARCHAR), s, '0') ELSE '' END)"
    ),
    # Java's String.trim (code points <= U+0020), then Long.parseLong / Double.parseDouble syntax.
    "trino_trim(x)": r"regexp_replace(x, '^[\x00-\x20]+|[\x00-\x20]+$', '', 'g')",
    "trino_int_text(x)": "CASE WHEN regexp_full_match(trino_trim(x), '[+-]?[0-9]+') THEN trino_trim(x) END",
    "trino_strict_int_text(x, t)": (
        "CASE WHEN x IS NULL OR trino_int_text(x) IS NOT NULL THEN trino_int_text(x) "
        "ELSE CAST(trino_fail('Cannot cast ''' || x || ''' to ' || t) AS VARCHAR) END"
    ),
    "trino_double_text(x)": (
        "CASE WHEN regexp_full_match(trino_trim(x), "
        r"'[+-]?(NaN|Infinity|([0-9]+\.?[0-9]*|\.[0-9]+)([eE][+-]?[0-9]+)?[fFdD]?)') "
        "THEN regexp_replace(trino_trim(x), '[fFdD]$', '') END"
    ),
    "trino_strict_double_text(x, t)": (
        "CASE WHEN x IS NULL OR trino_double_text(x) IS NOT NULL THEN trino_double_text(x) "
        "ELSE CAST(trino_fail('Cannot cast ''' || x || ''' to ' || t) AS VARCHAR) END"
    ),
    "trino_bool_text(x)": (
        "CASE WHEN lower(x) IN ('true', 't', '1') THEN true WHEN lower(x) IN ('false', 'f', '0') THEN false END"
    ),
    "trino_strict_bool_text(x)": (
        "CASE WHEN x IS NULL THEN NULL WHEN trino_bool_text(x) IS NOT NULL THEN trino_bool_text(x) "
        "ELSE CAST(trino_fail('Cannot cast ''' || x || ''' to BOOLEAN') AS BOOLEAN) END"
    ),
    # Java's Character.isWhitespace: what Trino's trim, ltrim and rtrim remove.
    "trino_ltrim(s)": f"regexp_replace(s, '^{_SPACE}+', '')",
    "trino_rtrim(s)": f"regexp_replace(s, '{_SPACE}+$', '')",
    "trino_trim_whitespace(s)": "trino_rtrim(trino_ltrim(s))",
    "trino_split_limit(s, d, n)": (
        "CASE WHEN n < 1 THEN string_split(s, d)[1:trino_fail('Limit must be positive')] "
        "WHEN n >= len(string_split(s, d)) THEN string_split(s, d) "
        "ELSE list_append(string_split(s, d)[1:n - 1], array_to_string(string_split(s, d)[n:], d)) END"
    ),
    "trino_millisecond(t)": "millisecond(t) % 1000",
    "trino_cbrt(x)": "CASE WHEN round(cbrt(x)) * round(cbrt(x)) * round(cbrt(x)) = x THEN round(cbrt(x)) ELSE cbrt(x) END",
    "trino_e()": "exp(1)",
    "trino_infinity()": "CAST('Infinity' AS DOUBLE)",
    "trino_nan()": "CAST('NaN' AS DOUBLE)",
    "trino_split_part(s, d, i)": (
        "CASE WHEN i < 1 THEN CAST(trino_fail('Index must be greater than zero') AS VARCHAR) "
        "WHEN i > len(string_split(s, d)) THEN NULL ELSE split_part(s, d, i) END"
    ),
    "trino_substr(s, st, n)": (
        "CASE WHEN st = 0 OR st > length(s) OR -st > length(s) OR n < 0 THEN '' "
        "ELSE substring(s, CASE WHEN st < 0 THEN length(s) + st + 1 ELSE st END, n) END"
    ),
    "trino_regexp_extract(s, p, g)": "CASE WHEN regexp_matches(s, p) THEN regexp_extract(s, p, g) END",
    "trino_contains(a, x)": (
        "CASE WHEN a IS NULL OR x IS NULL THEN NULL WHEN list_contains(a, x) THEN true "
        "WHEN len(list_filter(a, lambda e: e IS NULL)) > 0 THEN NULL ELSE false END"
    ),
    # true, NULL, or Trino's error: a guard for expressions whose type a failing cast cannot take.
    "trino_check(ok, msg)": "CASE WHEN ok IS NULL OR ok THEN ok ELSE CAST(trino_fail(msg) AS BOOLEAN) END",
    "trino_element_at(a, i)": "CASE WHEN trino_check(i <> 0, 'SQL array indices start at 1') THEN a[i] END",
    "trino_subscript(a, i)": (
        "CASE WHEN trino_check(i >= 1 AND i <= len(a), 'Array subscript must be between 1 and the array length') "
        "THEN a[i] END"
    ),
    "trino_map_subscript(m, k)": (
        "CASE WHEN trino_check(list_contains(map_keys(m), k), 'Key not present in map') THEN m[k] END"
    ),
    "trino_array_position(a, x)": "CASE WHEN a IS NOT NULL AND x IS NOT NULL THEN coalesce(list_position(a, x), 0) END",
    "trino_slice(a, st, n)": (
        "CASE WHEN st = 0 THEN list_slice(a, trino_fail('SQL array indices start at 1'), 0) "
        "WHEN st < 0 AND -st > len(a) THEN a[1:0] "
        "ELSE list_slice(a, CASE WHEN st < 0 THEN len(a) + st + 1 ELSE st END, "
        "CASE WHEN st < 0 THEN len(a) + st + n ELSE st + n - 1 END) END"
    ),
    "trino_array_join(a, d, r)": "array_to_string(list_transform(a, lambda e: coalesce(CAST(e AS VARCHAR), r)), d)",
    "trino_json_valid(j)": "coalesce(TRY(json_valid(j)), false)",
    "trino_json_extract_scalar(j, p)": (
        "CASE WHEN NOT trino_json_valid(j) THEN NULL "
        "WHEN json_type(j, p) IN ('OBJECT', 'ARRAY') THEN NULL ELSE j ->> p END"
    ),
    "trino_json_extract(j, p)": "CASE WHEN trino_json_valid(j) THEN json_extract(j, p) END",
    "trino_json_array_length(j)": (
        "CASE WHEN trino_json_valid(j) AND json_type(j) = 'ARRAY' THEN CAST(json_array_length(j) AS BIGINT) END"
    ),
    "trino_url_decode(s)": "url_decode(replace(s, '+', ' '))",
    "trino_url_encode(s)": ("replace(replace(replace(url_encode(s), '%20', '+'), '~', '%7E'), '%2A', '*')"),
    "trino_url_part(u, g)": f"CASE WHEN regexp_matches(u, {_URL}) THEN regexp_extract(u, {_URL}, g) END",
    "trino_url_protocol(u)": "nullif(trino_url_part(u, 2), '')",
    "trino_url_host_port(u)": "regexp_replace(trino_url_part(u, 4), '^.*@', '')",
    "trino_url_host(u)": (
        "CASE WHEN trino_url_part(u, 3) = '' THEN NULL "
        "ELSE regexp_replace(trino_url_host_port(u), ':[0-9]*$', '') END"
    ),
    "trino_url_port(u)": "TRY_CAST(nullif(regexp_extract(trino_url_host_port(u), ':([0-9]+)$', 1), '') AS BIGINT)",
    "trino_url_path(u)": "trino_url_part(u, 5)",
    "trino_url_query(u)": "CASE WHEN trino_url_part(u, 6) <> '' THEN trino_url_part(u, 7) END",
    "trino_url_fragment(u)": "CASE WHEN trino_url_part(u, 8) <> '' THEN trino_url_part(u, 9) END",
    "trino_url_parameter(u, name)": (
        "list_transform(list_filter(string_split(trino_url_query(u), '&'), "
        "lambda kv: split_part(kv, '=', 1) = name), "
        "lambda kv: CASE WHEN strpos(kv, '=') > 0 THEN substring(kv, strpos(kv, '=') + 1) ELSE '' END)[1]"
    ),
}


def _any_type(checked: str) -> str:
    """The text checks for a value whose type only DuckDB knows (a bound parameter): text is
    checked, a boolean is 1 or 0, a number keeps DuckDB's rounding (Trino's: half away from 0)."""
    return (
        f"CASE typeof(x) WHEN 'VARCHAR' THEN {checked} "
        "WHEN 'BOOLEAN' THEN CAST(CAST(x AS INTEGER) AS VARCHAR) ELSE CAST(x AS VARCHAR) END"
    )


for _family in ("int", "double"):
    MACROS[f"trino_{_family}_any(x)"] = _any_type(f"trino_{_family}_text(CAST(x AS VARCHAR))")
    MACROS[f"trino_strict_{_family}_any(x, t)"] = _any_type(
        f"trino_strict_{_family}_text(CAST(x AS VARCHAR), t)"
    )


def install(con: Any) -> None:
    """Define every macro on a DuckDB connection or cursor (TEMP: read-only catalogs allow it)."""
    for signature, body in MACROS.items():
        con.execute(f"CREATE OR REPLACE TEMP MACRO {signature} AS {body}")
