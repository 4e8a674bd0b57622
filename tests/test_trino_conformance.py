"""Conformance of the local engine with Trino (Athena engine v3).

Each case is Athena SQL with the result Trino gives, taken from the Trino
documentation's examples and documented semantics (the page is cited as
`DOCS + page`). Every case runs through the DuckDB engine itself: literals, and
columns of a typed view built the way the pipeline builds one (lake files, raw
table, typed view with real types). A value must match Trino's in value and in
Python type (3 is not 3.5, nor 3.0, nor Decimal('3')).

ERROR marks a statement Trino rejects: the local engine must reject it too.
LOUD marks a construct the local engine cannot reproduce: it must fail with one
line naming it and "not supported by the local engine".

To add a case: append to the table it belongs to, with the page that documents it.
"""

from __future__ import annotations

import datetime as dt
import decimal
from collections.abc import Iterator
from pathlib import Path
from typing import Any, NamedTuple

import pytest

from panorama_kpi.engines.duckdb import DuckDBEngine
from panorama_kpi.errors import EngineError
from panorama_kpi.lake.csv import encode_rows, header_line
from panorama_kpi.lake.layout import object_key
from panorama_kpi.lake.local import LocalStorage
from panorama_kpi.settings import DatalakeSettings, DatasourceSettings, Field, Settings, TableSettings
from panorama_kpi.views import raw_table, typed_view_sql

DOCS = "https://trino.io/docs/current/"
D = decimal.Decimal
UTC = dt.UTC


class Loud(NamedTuple):
    construct: str


ERROR = object()


def ts(text: str) -> dt.datetime:
    return dt.datetime.fromisoformat(text)


def day(text: str) -> dt.date:
    return dt.date.fromisoformat(text)


# (Athena SQL: an expression, or a query returning one row of one column; Trino's result; doc page)
CASES: list[tuple[str, Any, str]] = [
    # --- arithmetic: functions/math, "Mathematical operators" ---------------------------
    ("7 / 2", 3, "functions/math"),
    ("-7 / 2", -3, "functions/math"),
    ("7 / -2", -3, "functions/math"),
    ("5 / 2 * 2", 4, "functions/math"),
    ("CAST(9 AS bigint) / 2", 4, "functions/math"),
    ("7 % 3", 1, "functions/math"),
    ("-7 % 3", -1, "functions/math"),
    ("mod(-7, 3)", -1, "functions/math"),
    ("7e0 / 2", 3.5, "functions/math"),
    ("1 / 0", ERROR, "functions/math"),
    ("1e0 / 0", float("inf"), "functions/math"),
    ("2147483647 + 1", ERROR, "language/types"),
    ("9223372036854775807 + 1", ERROR, "language/types"),
    ("abs(-5)", 5, "functions/math"),
    ("ceil(4.2e0)", 5.0, "functions/math"),
    ("floor(-4.2e0)", -5.0, "functions/math"),
    ("round(2.5e0)", 3.0, "functions/math"),
    ("round(-2.5e0)", -3.0, "functions/math"),
    ("round(3.14159e0, 2)", 3.14, "functions/math"),
    ("truncate(4.7e0)", 4.0, "functions/math"),
    ("power(2, 10)", 1024.0, "functions/math"),
    ("sqrt(16)", 4.0, "functions/math"),
    ("sign(-3)", -1, "functions/math"),
    ("ln(1)", 0.0, "functions/math"),
    ("log10(1000)", 3.0, "functions/math"),
    ("log2(8)", 3.0, "functions/math"),
    ("cbrt(27)", 3.0, "functions/math"),
    ("e() = exp(1)", True, "functions/math"),
    ("infinity()", float("inf"), "functions/math"),
    ("is_nan(nan())", True, "functions/math"),
    ("is_finite(1e0 / 0)", False, "functions/math"),
    ("greatest(1, 5, 3)", 5, "functions/comparison"),
    ("least(1, NULL)", None, "functions/comparison"),
    # --- decimals: functions/decimal -------------------------------------------------
    ("1.5 + 2.25", D("3.75"), "functions/decimal"),
    ("1.5 * 2.25", D("3.375"), "functions/decimal"),
    ("0.1 + 0.2", D("0.3"), "functions/decimal"),
    ("7.0 / 2", D("3.5"), "functions/decimal"),
    ("1.0 / 3", D("0.3"), "functions/decimal"),
    ("10 / 4.0", D("2.5"), "functions/decimal"),
    ("DECIMAL '10.5' / 3", D("3.5"), "functions/decimal"),
    ("DECIMAL '0000012345.1234500000'", D("12345.1234500000"), "functions/decimal"),
    ("CAST(10 AS DECIMAL(10, 2)) / 3", D("3.33"), "functions/decimal"),
    ("CAST(2 AS DECIMAL(10, 2)) / 3", D("0.67"), "functions/decimal"),
    ("CAST(-2 AS DECIMAL(10, 2)) / 3", D("-0.67"), "functions/decimal"),
    ("CAST(1 AS DECIMAL(10, 4)) / CAST(3 AS DECIMAL(10, 2))", D("0.3333"), "functions/decimal"),
    ("CAST(12345.678 AS DECIMAL(38, 3)) / 1000", D("12.346"), "functions/decimal"),
    ("CAST(1 AS DECIMAL(10, 2)) / 0", ERROR, "functions/decimal"),
    ("CAST(1.005 AS DECIMAL(10, 2))", D("1.01"), "functions/decimal"),
    ("CAST('10.5' AS DECIMAL)", D("11"), "language/types"),
    ("-DECIMAL '1.50'", D("-1.50"), "functions/decimal"),
    ("round(CAST(1.25 AS DECIMAL(10, 2))) / 3", D("0"), "functions/math"),
    ("round(CAST(2.5 AS DECIMAL(10, 2))) / 3", D("1"), "functions/math"),
    ("floor(CAST(2.5 AS DECIMAL(10, 1))) / 4", D("1"), "functions/math"),
    ("round(CAST(1.25 AS DECIMAL(10, 2)), 1) / 3", D("0.43"), "functions/math"),
    ("abs(CAST(-7 AS DECIMAL(5, 1))) / 2", D("3.5"), "functions/math"),
    ("round(7e0) / 2", 3.5, "functions/math"),
    # --- casts: functions/conversion ---------------------------------------------------
    ("CAST('12' AS bigint)", 12, "functions/conversion"),
    ("CAST(' 12 ' AS bigint)", 12, "functions/conversion"),
    ("CAST('Infinity' AS double)", float("inf"), "functions/conversion"),
    ("TRY_CAST('inf' AS double)", None, "functions/conversion"),
    ("CAST('abc' AS double)", ERROR, "functions/conversion"),
    ("CAST(' 2.5e1 ' AS double)", 25.0, "functions/conversion"),
    ("CAST('-12' AS integer)", -12, "functions/conversion"),
    ("CAST('12.5' AS bigint)", ERROR, "functions/conversion"),
    ("CAST('1e2' AS bigint)", ERROR, "functions/conversion"),
    ("CAST('abc' AS integer)", ERROR, "functions/conversion"),
    ("TRY_CAST('12.5' AS bigint)", None, "functions/conversion"),
    ("try_cast('abc' AS integer)", None, "functions/conversion"),
    ("try(CAST('abc' AS integer))", None, "functions/conversion"),
    ("try(1 / 0)", None, "functions/conversion"),
    ("CAST(12.5 AS bigint)", 13, "functions/conversion"),
    ("CAST(-12.5 AS bigint)", -13, "functions/conversion"),
    ("CAST(12.4e0 AS integer)", 12, "functions/conversion"),
    ("CAST(true AS integer)", 1, "functions/conversion"),
    ("CAST('true' AS boolean)", True, "functions/conversion"),
    ("CAST('FALSE' AS boolean)", False, "functions/conversion"),
    ("CAST('1' AS boolean)", True, "functions/conversion"),
    ("TRY_CAST('yes' AS boolean)", None, "functions/conversion"),
    ("CAST('yes' AS boolean)", ERROR, "functions/conversion"),
    ("CAST(123 AS varchar)", "123", "functions/conversion"),
    ("CAST(1.50 AS varchar)", "1.50", "functions/conversion"),
    ("CAST(DATE '2020-01-01' AS varchar)", "2020-01-01", "functions/conversion"),
    ("CAST('2020-01-01' AS date)", day("2020-01-01"), "functions/conversion"),
    ("CAST('2020-01-01 10:00:00.123456' AS timestamp)", ts("2020-01-01 10:00:00.123"), "language/types"),
    ("CAST('2020-01-01 23:59:59.9996' AS timestamp)", ts("2020-01-02 00:00:00"), "language/types"),
    (
        "CAST('2020-01-01 10:00:00.123456' AS timestamp(6))",
        ts("2020-01-01 10:00:00.123456"),
        "language/types",
    ),
    ("CAST(TIMESTAMP '2020-01-01 10:00:00.123' AS varchar)", "2020-01-01 10:00:00.123", "language/types"),
    ("CAST(TIMESTAMP '2020-01-01 10:00:00' AS varchar)", "2020-01-01 10:00:00", "language/types"),
    (
        "CAST(CAST('2020-01-01 10:00:00.5' AS timestamp) AS varchar)",
        "2020-01-01 10:00:00.500",
        "language/types",
    ),
    # --- date and time: functions/datetime ----------------------------------------------
    (
        "date_trunc('second', TIMESTAMP '2001-08-22 03:04:05.321')",
        ts("2001-08-22 03:04:05"),
        "functions/datetime",
    ),
    (
        "date_trunc('minute', TIMESTAMP '2001-08-22 03:04:05.321')",
        ts("2001-08-22 03:04:00"),
        "functions/datetime",
    ),
    (
        "date_trunc('hour', TIMESTAMP '2001-08-22 03:04:05.321')",
        ts("2001-08-22 03:00:00"),
        "functions/datetime",
    ),
    (
        "date_trunc('day', TIMESTAMP '2001-08-22 03:04:05.321')",
        ts("2001-08-22 00:00:00"),
        "functions/datetime",
    ),
    (
        "date_trunc('week', TIMESTAMP '2001-08-22 03:04:05.321')",
        ts("2001-08-20 00:00:00"),
        "functions/datetime",
    ),
    (
        "date_trunc('month', TIMESTAMP '2001-08-22 03:04:05.321')",
        ts("2001-08-01 00:00:00"),
        "functions/datetime",
    ),
    (
        "date_trunc('quarter', TIMESTAMP '2001-08-22 03:04:05.321')",
        ts("2001-07-01 00:00:00"),
        "functions/datetime",
    ),
    (
        "date_trunc('year', TIMESTAMP '2001-08-22 03:04:05.321')",
        ts("2001-01-01 00:00:00"),
        "functions/datetime",
    ),
    ("date_trunc('day', DATE '2001-08-22')", day("2001-08-22"), "functions/datetime"),
    ("date_trunc('week', DATE '2001-08-22')", day("2001-08-20"), "functions/datetime"),
    ("date_trunc('month', DATE '2001-08-22')", day("2001-08-01"), "functions/datetime"),
    ("date_trunc('quarter', DATE '2001-08-22')", day("2001-07-01"), "functions/datetime"),
    ("date_trunc('year', DATE '2001-08-22')", day("2001-01-01"), "functions/datetime"),
    ("date_add('day', 3, DATE '2020-01-01')", day("2020-01-04"), "functions/datetime"),
    ("date_add('month', 1, DATE '2020-01-31')", day("2020-02-29"), "functions/datetime"),
    ("date_add('day', -1, DATE '2020-03-01')", day("2020-02-29"), "functions/datetime"),
    ("date_add('year', 1, DATE '2020-02-29')", day("2021-02-28"), "functions/datetime"),
    ("date_add('hour', 3, TIMESTAMP '2020-01-01 22:00:00')", ts("2020-01-02 01:00:00"), "functions/datetime"),
    (
        "date_add('minute', -30, TIMESTAMP '2020-01-01 00:10:00')",
        ts("2019-12-31 23:40:00"),
        "functions/datetime",
    ),
    (
        "date_diff('day', TIMESTAMP '2005-05-24 22:53:30', TIMESTAMP '2005-05-26 22:04:30')",
        1,
        "functions/datetime",
    ),
    ("date_diff('day', DATE '2020-01-01', DATE '2020-03-01')", 60, "functions/datetime"),
    ("date_diff('day', DATE '2020-01-10', DATE '2020-01-01')", -9, "functions/datetime"),
    (
        "date_diff('hour', TIMESTAMP '2020-01-01 00:00:00', TIMESTAMP '2020-01-01 05:59:59')",
        5,
        "functions/datetime",
    ),
    ("date_diff('month', DATE '2020-01-15', DATE '2020-02-14')", 0, "functions/datetime"),
    ("date_diff('month', DATE '2020-01-15', DATE '2020-02-15')", 1, "functions/datetime"),
    ("date_diff('year', DATE '2019-06-01', DATE '2020-05-31')", 0, "functions/datetime"),
    ("date_diff('week', DATE '2020-01-01', DATE '2020-01-14')", 1, "functions/datetime"),
    ("day_of_week(DATE '2020-01-05')", 7, "functions/datetime"),
    ("dow(DATE '2020-01-06')", 1, "functions/datetime"),
    ("day_of_year(DATE '2020-02-01')", 32, "functions/datetime"),
    ("week(DATE '2020-01-01')", 1, "functions/datetime"),
    ("week(DATE '2021-01-01')", 53, "functions/datetime"),
    ("year_of_week(DATE '2021-01-01')", 2020, "functions/datetime"),
    ("quarter(DATE '2020-05-05')", 2, "functions/datetime"),
    ("last_day_of_month(DATE '2020-02-05')", day("2020-02-29"), "functions/datetime"),
    ("year(DATE '2020-05-06')", 2020, "functions/datetime"),
    ("month(DATE '2020-05-06')", 5, "functions/datetime"),
    ("day(DATE '2020-05-06')", 6, "functions/datetime"),
    ("hour(TIMESTAMP '2020-01-01 13:14:15')", 13, "functions/datetime"),
    ("minute(TIMESTAMP '2020-01-01 13:14:15')", 14, "functions/datetime"),
    ("second(TIMESTAMP '2020-01-01 13:14:15')", 15, "functions/datetime"),
    ("extract(YEAR FROM DATE '2020-05-05')", 2020, "functions/datetime"),
    ("extract(DOW FROM DATE '2020-01-05')", 7, "functions/datetime"),
    ("extract(DAY_OF_WEEK FROM DATE '2020-01-06')", 1, "functions/datetime"),
    ("extract(DOY FROM DATE '2020-02-01')", 32, "functions/datetime"),
    ("extract(YEAR_OF_WEEK FROM DATE '2021-01-01')", 2020, "functions/datetime"),
    ("millisecond(TIMESTAMP '2020-01-01 00:00:05.321')", 321, "functions/datetime"),
    (
        "date_format(TIMESTAMP '2001-08-22 03:04:05.321', '%Y-%m-%d %H:%i:%s')",
        "2001-08-22 03:04:05",
        "functions/datetime",
    ),
    (
        "date_format(TIMESTAMP '2001-08-22 03:04:05.321', '%M %e, %Y')",
        "August 22, 2001",
        "functions/datetime",
    ),
    ("date_format(TIMESTAMP '2001-08-22 03:04:05.321', '%h:%i %p')", "03:04 AM", "functions/datetime"),
    ("date_format(TIMESTAMP '2001-08-22 03:04:05.321', '%f')", "321000", "functions/datetime"),
    ("date_format(TIMESTAMP '2001-08-22 03:04:05.321', '%j')", "234", "functions/datetime"),
    (
        "date_parse('2001-08-22 03:04:05', '%Y-%m-%d %H:%i:%s')",
        ts("2001-08-22 03:04:05"),
        "functions/datetime",
    ),
    ("date_parse('22/08/2001', '%d/%m/%Y')", ts("2001-08-22 00:00:00"), "functions/datetime"),
    (
        "format_datetime(TIMESTAMP '2001-08-22 03:04:05.321', 'yyyy-MM-dd HH:mm:ss')",
        "2001-08-22 03:04:05",
        "functions/datetime",
    ),
    (
        "format_datetime(TIMESTAMP '2001-08-22 03:04:05.321', 'yyyy-MM-dd''T''HH:mm:ss.SSS')",
        "2001-08-22T03:04:05.321",
        "functions/datetime",
    ),
    (
        "format_datetime(TIMESTAMP '2001-08-22 03:04:05.321', 'EEEE, MMMM d, yyyy')",
        "Wednesday, August 22, 2001",
        "functions/datetime",
    ),
    ("format_datetime(TIMESTAMP '2001-08-22 03:04:05.321', 'hh:mm a')", "03:04 AM", "functions/datetime"),
    ("format_datetime(DATE '2001-08-02', 'd/M/yy')", "2/8/01", "functions/datetime"),
    ("from_unixtime(0)", dt.datetime(1970, 1, 1, tzinfo=UTC), "functions/datetime"),
    ("hour(from_unixtime(0, 'Asia/Tokyo'))", 9, "functions/datetime"),
    ("to_iso8601(TIMESTAMP '2020-01-01 10:00:00.123')", "2020-01-01T10:00:00.123", "functions/datetime"),
    ("to_iso8601(DATE '2020-01-01')", "2020-01-01", "functions/datetime"),
    ("current_timezone()", "UTC", "functions/datetime"),
    ("to_unixtime(TIMESTAMP '1970-01-02 00:00:00')", 86400.0, "functions/datetime"),
    ("from_iso8601_date('2020-05-11')", day("2020-05-11"), "functions/datetime"),
    (
        "from_iso8601_timestamp('2020-05-11T11:15:05.123Z')",
        dt.datetime(2020, 5, 11, 11, 15, 5, 123000, tzinfo=UTC),
        "functions/datetime",
    ),
    ("to_unixtime(from_iso8601_timestamp('2020-05-11T11:15:05+02:00'))", 1589188505.0, "functions/datetime"),
    (
        "CAST(TIMESTAMP '2020-01-01 00:00:00' AT TIME ZONE 'America/Los_Angeles' AS timestamp)",
        ts("2019-12-31 16:00:00"),
        "functions/datetime",
    ),
    ("hour(TIMESTAMP '2020-01-01 00:00:00 UTC' AT TIME ZONE 'Asia/Kolkata')", 5, "functions/datetime"),
    ("hour(at_timezone(TIMESTAMP '2020-01-01 00:00:00 UTC', 'Asia/Tokyo'))", 9, "functions/datetime"),
    (
        "date_format(TIMESTAMP '2020-07-01 12:00:00' AT TIME ZONE 'Europe/Paris', '%H:%i')",
        "14:00",
        "functions/datetime",
    ),
    ("DATE '2020-01-31' + INTERVAL '1' MONTH", day("2020-02-29"), "functions/datetime"),
    ("DATE '2020-03-01' - INTERVAL '1' DAY", day("2020-02-29"), "functions/datetime"),
    ("DATE '2012-08-08' + INTERVAL '2' DAY", day("2012-08-10"), "functions/datetime"),
    (
        "TIMESTAMP '2020-01-01 00:00:00' + INTERVAL '90' MINUTE",
        ts("2020-01-01 01:30:00"),
        "functions/datetime",
    ),
    ("TIMESTAMP '2012-10-31 01:00' + INTERVAL '1' MONTH", ts("2012-11-30 01:00:00"), "functions/datetime"),
    ("current_date = CAST(current_timestamp AT TIME ZONE 'UTC' AS date)", True, "functions/datetime"),
    ("date_format(TIMESTAMP '2001-08-02 15:04:05.321', '%c/%e %k:%i')", "8/2 15:04", "functions/datetime"),
    ("date_format(TIMESTAMP '2001-08-02 15:04:05.321', '%l %p')", "3 PM", "functions/datetime"),
    ("date_format(TIMESTAMP '2001-08-02 15:04:05.321', '%r')", "03:04:05 PM", "functions/datetime"),
    ("date_format(TIMESTAMP '2001-08-02 15:04:05.321', '%T')", "15:04:05", "functions/datetime"),
    (
        "date_format(TIMESTAMP '2001-08-02 15:04:05.321', '%W %a %b')",
        "Thursday Thu Aug",
        "functions/datetime",
    ),
    ("date_format(TIMESTAMP '2001-08-02 15:04:05.321', '%x-%v')", "2001-31", "functions/datetime"),
    ("date_format(TIMESTAMP '2001-08-02 15:04:05.321', '100%% %y')", "100% 01", "functions/datetime"),
    ("date_diff('day', DATE '2020-01-01', DATE '2020-01-15') / 7", 2, "functions/datetime"),
    # --- strings: functions/string ----------------------------------------------------
    ("split_part('a,b,c', ',', 2)", "b", "functions/string"),
    ("split_part('a,b,c', ',', 4)", None, "functions/string"),
    ("split_part('a,b,c', ',', 0)", ERROR, "functions/string"),
    ("strpos('high', 'ig')", 2, "functions/string"),
    ("strpos('high', 'x')", 0, "functions/string"),
    ("position('b' IN 'abc')", 2, "functions/string"),
    ("substr('hello', 2)", "ello", "functions/string"),
    ("substr('hello', -3)", "llo", "functions/string"),
    ("substr('hello', 2, 3)", "ell", "functions/string"),
    ("substr('hello', -10)", "", "functions/string"),
    ("substr('hello', 0)", "", "functions/string"),
    ("substr('hello', 10)", "", "functions/string"),
    ("substring('hello', -4, 2)", "el", "functions/string"),
    ("lpad('ab', 5, 'x')", "xxxab", "functions/string"),
    ("lpad('abcdef', 3, 'x')", "abc", "functions/string"),
    ("rpad('ab', 4, '-')", "ab--", "functions/string"),
    ("length('hello')", 5, "functions/string"),
    ("upper('abc')", "ABC", "functions/string"),
    ("lower('ABC')", "abc", "functions/string"),
    ("trim('  a  ')", "a", "functions/string"),
    ("ltrim('  a  ')", "a  ", "functions/string"),
    ("trim(chr(9) || 'a' || chr(10))", "a", "functions/string"),
    ("rtrim(' a ' || chr(13))", " a", "functions/string"),
    ("trim('xxaxx', 'x')", "a", "functions/string"),
    ("format('%s-%s', 1, 'a')", "1-a", "functions/conversion"),
    ("format('%5s|%-3d|%%', 'ab', 7)", "   ab|7  |%", "functions/conversion"),
    ("CAST('abcdef' AS varchar(3))", "abc", "functions/conversion"),
    ("replace('abcabc', 'b', 'x')", "axcaxc", "functions/string"),
    ("replace('abcabc', 'b')", "acac", "functions/string"),
    ("reverse('abc')", "cba", "functions/string"),
    ("concat('a', 'b', 'c')", "abc", "functions/string"),
    ("concat('a', NULL)", None, "functions/string"),
    ("'a' || 'b'", "ab", "functions/string"),
    ("starts_with('abc', 'ab')", True, "functions/string"),
    ("chr(65)", "A", "functions/string"),
    ("split('a,b,c', ',')", ["a", "b", "c"], "functions/string"),
    ("split('a,b,c', ',', 2)", ["a", "b,c"], "functions/string"),
    ("split('a,b,c', ',', 5)", ["a", "b", "c"], "functions/string"),
    ("hamming_distance('abc', 'abd')", 1, "functions/string"),
    ("levenshtein_distance('kitten', 'sitting')", 3, "functions/string"),
    ("lower(NULL)", None, "functions/string"),
    # --- LIKE and NULL: functions/comparison, functions/logical, functions/conditional --
    ("'abc' LIKE 'a%'", True, "functions/comparison"),
    ("'abc' LIKE 'a_c'", True, "functions/comparison"),
    ("'abc' LIKE 'A%'", False, "functions/comparison"),
    ("'a%c' LIKE 'a\\%c' ESCAPE '\\'", True, "functions/comparison"),
    ("'abc' LIKE NULL", None, "functions/comparison"),
    ("'a' = 'a '", False, "functions/comparison"),
    ("NULL = NULL", None, "functions/comparison"),
    ("1 IS DISTINCT FROM NULL", True, "functions/comparison"),
    ("NULL IS NOT DISTINCT FROM NULL", True, "functions/comparison"),
    ("5 BETWEEN 1 AND 10", True, "functions/comparison"),
    ("1 IN (1, NULL)", True, "functions/comparison"),
    ("2 IN (1, NULL)", None, "functions/comparison"),
    ("2 NOT IN (1, NULL)", None, "functions/comparison"),
    ("NULL AND false", False, "functions/logical"),
    ("NULL AND true", None, "functions/logical"),
    ("NULL OR true", True, "functions/logical"),
    ("NOT NULL", None, "functions/logical"),
    ("'1' = 1", ERROR, "functions/comparison"),
    ("'a' || 1", ERROR, "functions/string"),
    ("'a' || CAST(1 AS varchar)", "a1", "functions/string"),
    ("if(1 > 2, 'a', 'b')", "b", "functions/conditional"),
    ("if(false, 1)", None, "functions/conditional"),
    ("coalesce(NULL, 2)", 2, "functions/conditional"),
    ("nullif(1, 1)", None, "functions/conditional"),
    ("CASE WHEN NULL THEN 1 ELSE 2 END", 2, "functions/conditional"),
    ("CASE 2 WHEN 1 THEN 'one' WHEN 2 THEN 'two' END", "two", "functions/conditional"),
    # --- regular expressions: functions/regexp ------------------------------------------
    ("regexp_extract('1a 2b 14m', '\\d+')", "1", "functions/regexp"),
    ("regexp_extract('1a 2b 14m', '(\\d+)([a-z]+)', 2)", "a", "functions/regexp"),
    ("regexp_extract('abc', '\\d+')", None, "functions/regexp"),
    ("regexp_extract_all('1a 2b 14m', '\\d+')", ["1", "2", "14"], "functions/regexp"),
    ("regexp_like('1a 2b 14m', '\\d+b')", True, "functions/regexp"),
    ("regexp_replace('1a 2b 14m', '\\d+[ab] ')", "14m", "functions/regexp"),
    ("regexp_replace('1a 2b 14m', '(\\d+)([ab]) ', '3c$2 ')", "3ca 3cb 14m", "functions/regexp"),
    ("regexp_replace('abc', 'b', '\\$')", "a$c", "functions/regexp"),
    ("regexp_replace('abc', '(b)', '[$1$1]')", "a[bb]c", "functions/regexp"),
    ("regexp_split('1a 2b 14m', '\\s*[a-z]+\\s*')", ["1", "2", "14", ""], "functions/regexp"),
    # --- URLs: functions/url ---------------------------------------------------------
    (
        "url_extract_protocol('https://user@www.example.com:8080/a/b.html?q=1&lang=en#top')",
        "https",
        "functions/url",
    ),
    (
        "url_extract_host('https://user@www.example.com:8080/a/b.html?q=1&lang=en#top')",
        "www.example.com",
        "functions/url",
    ),
    ("url_extract_port('https://user@www.example.com:8080/a/b.html?q=1&lang=en#top')", 8080, "functions/url"),
    (
        "url_extract_path('https://user@www.example.com:8080/a/b.html?q=1&lang=en#top')",
        "/a/b.html",
        "functions/url",
    ),
    (
        "url_extract_query('https://user@www.example.com:8080/a/b.html?q=1&lang=en#top')",
        "q=1&lang=en",
        "functions/url",
    ),
    (
        "url_extract_fragment('https://user@www.example.com:8080/a/b.html?q=1&lang=en#top')",
        "top",
        "functions/url",
    ),
    ("url_extract_parameter('https://www.example.com/a?q=1&lang=en&q=2', 'q')", "1", "functions/url"),
    ("url_extract_parameter('https://www.example.com/a?q=1&lang=en', 'lang')", "en", "functions/url"),
    ("url_extract_parameter('https://www.example.com/a?q=1', 'x')", None, "functions/url"),
    ("url_extract_port('http://example.com/')", None, "functions/url"),
    ("url_extract_query('http://example.com/path')", None, "functions/url"),
    ("url_extract_fragment('http://example.com/path')", None, "functions/url"),
    ("url_decode('a+b%20c%2B')", "a b c+", "functions/url"),
    ("url_encode('a b*~')", "a+b*%7E", "functions/url"),
    ("url_encode('é/')", "%C3%A9%2F", "functions/url"),
    # --- JSON: functions/json ---------------------------------------------------------
    (
        """json_extract_scalar('{"store": {"book": [{"author": "Nigel Rees"}]}}', '$.store.book[0].author')""",
        "Nigel Rees",
        "functions/json",
    ),
    ("""json_extract_scalar('{"a": {"b": 1}}', '$.a')""", None, "functions/json"),
    ("""json_extract_scalar('{"a": [1, 2]}', '$.a')""", None, "functions/json"),
    ("""json_extract_scalar('{"a": 1}', '$.a')""", "1", "functions/json"),
    ("""json_extract_scalar('{"a": true}', '$.a')""", "true", "functions/json"),
    ("""json_extract_scalar('{"a": null}', '$.a')""", None, "functions/json"),
    ("""json_extract_scalar('{"a": "x\\"y"}', '$.a')""", 'x"y', "functions/json"),
    ("""json_extract_scalar('{"a": [10, 20]}', '$.a[1]')""", "20", "functions/json"),
    ("json_extract_scalar('not json', '$.a')", None, "functions/json"),
    ("""json_extract_scalar('{"a b": {"c": 5}}', '$["a b"].c')""", "5", "functions/json"),
    ("json_array_length('[1, 2, 3]')", 3, "functions/json"),
    ("""json_array_length('{"a": 1}')""", None, "functions/json"),
    ("json_format(json_parse('[1, 2, 3]'))", "[1,2,3]", "functions/json"),
    ("""json_format(json_extract('{"a": {"b": 1}}', '$.a'))""", '{"b":1}', "functions/json"),
    ("json_array_length('[1, 2, 3]') / 2", 1, "functions/json"),
    ("url_extract_port('http://a.com:8080/') / 100", 80, "functions/url"),
    # --- arrays and maps: functions/array, functions/map, functions/lambda -------------
    ("cardinality(ARRAY[1, 2, 3])", 3, "functions/array"),
    ("contains(ARRAY[1, 2, 3], 2)", True, "functions/array"),
    ("contains(ARRAY[1, 2], 3)", False, "functions/array"),
    ("contains(ARRAY[1, NULL], 2)", None, "functions/array"),
    ("element_at(ARRAY[1, 2, 3], 2)", 2, "functions/array"),
    ("element_at(ARRAY[1, 2, 3], 5)", None, "functions/array"),
    ("element_at(ARRAY[1, 2, 3], -1)", 3, "functions/array"),
    ("ARRAY[1, 2, 3][2]", 2, "functions/array"),
    ("array_join(ARRAY[1, NULL, 2], ',')", "1,2", "functions/array"),
    ("array_join(ARRAY[1, NULL, 2], ',', 'x')", "1,x,2", "functions/array"),
    ("array_position(ARRAY[10, 20], 20)", 2, "functions/array"),
    ("array_position(ARRAY[10, 20], 30)", 0, "functions/array"),
    ("array_max(ARRAY[1, 3, 2])", 3, "functions/array"),
    ("array_min(ARRAY[1, 3, 2])", 1, "functions/array"),
    ("array_sort(ARRAY[3, 1, 2])", [1, 2, 3], "functions/array"),
    ("slice(ARRAY[1, 2, 3, 4], 2, 2)", [2, 3], "functions/array"),
    ("slice(ARRAY[1, 2, 3, 4], -2, 2)", [3, 4], "functions/array"),
    ("flatten(ARRAY[ARRAY[1], ARRAY[2, 3]])", [1, 2, 3], "functions/array"),
    ("sequence(1, 5)", [1, 2, 3, 4, 5], "functions/array"),
    ("sequence(5, 1)", [5, 4, 3, 2, 1], "functions/array"),
    ("sequence(1, 10, 3)", [1, 4, 7, 10], "functions/array"),
    (
        "sequence(DATE '2020-01-01', DATE '2020-01-03')",
        [day("2020-01-01"), day("2020-01-02"), day("2020-01-03")],
        "functions/array",
    ),
    (
        "sequence(DATE '2020-01-01', DATE '2020-03-01', INTERVAL '1' MONTH)",
        [day("2020-01-01"), day("2020-02-01"), day("2020-03-01")],
        "functions/array",
    ),
    ("filter(ARRAY[5, -6, NULL, 7], x -> x > 0)", [5, 7], "functions/lambda"),
    ("transform(ARRAY[5, 6], x -> x + 1)", [6, 7], "functions/lambda"),
    ("reduce(ARRAY[5, 20, 50], 0, (s, x) -> s + x, s -> s)", 75, "functions/lambda"),
    ("element_at(MAP(ARRAY['a'], ARRAY[1]), 'a')", 1, "functions/map"),
    ("element_at(MAP(ARRAY['a'], ARRAY[1]), 'b')", None, "functions/map"),
    ("map_keys(MAP(ARRAY['a'], ARRAY[1]))", ["a"], "functions/map"),
    ("SELECT x FROM UNNEST(ARRAY[1, 2, 3]) AS t(x) WHERE x > 2", 3, "sql/select"),
    ("SELECT n FROM UNNEST(ARRAY['a', 'b']) WITH ORDINALITY AS t(x, n) WHERE x = 'b'", 2, "sql/select"),
    ("array_position(ARRAY[5, 6, 7], 7) / 2", 1, "functions/array"),
    ("ARRAY[1, 2][3]", ERROR, "functions/array"),
    ("ARRAY[1, 2][0]", ERROR, "functions/array"),
    ("try(ARRAY[1, 2][5])", None, "functions/array"),
    ("element_at(ARRAY[1, 2], 0)", ERROR, "functions/array"),
    ("MAP(ARRAY['a'], ARRAY[1])['a']", 1, "functions/map"),
    ("MAP(ARRAY['a'], ARRAY[1])['b']", ERROR, "functions/map"),
    ("cardinality(MAP(ARRAY['a', 'b'], ARRAY[1, 2]))", 2, "functions/map"),
    # --- aggregates and windows: functions/aggregate, functions/window ------------------
    ("SELECT count_if(x > 1) FROM UNNEST(ARRAY[1, 2, 3]) AS t(x)", 2, "functions/aggregate"),
    (
        "SELECT max_by(n, x) FROM UNNEST(ARRAY[1, 3, 2], ARRAY['a', 'b', 'c']) AS t(x, n)",
        "b",
        "functions/aggregate",
    ),
    (
        "SELECT min_by(n, x) FROM UNNEST(ARRAY[1, 3, 2], ARRAY['a', 'b', 'c']) AS t(x, n)",
        "a",
        "functions/aggregate",
    ),
    (
        "SELECT array_agg(x ORDER BY x DESC) FROM UNNEST(ARRAY[1, 3, 2]) AS t(x)",
        [3, 2, 1],
        "functions/aggregate",
    ),
    ("SELECT approx_distinct(x) FROM UNNEST(ARRAY[1, 1, 2]) AS t(x)", 2, "functions/aggregate"),
    ("SELECT avg(x) FROM UNNEST(ARRAY[1, 2]) AS t(x)", 1.5, "functions/aggregate"),
    ("SELECT sum(x) / count(*) FROM UNNEST(ARRAY[1, 2, 2]) AS t(x)", 1, "functions/aggregate"),
    ("SELECT sum(x) FROM UNNEST(ARRAY[1, 2]) AS t(x)", 3, "functions/aggregate"),
    ("SELECT bool_and(x) FROM UNNEST(ARRAY[true, false]) AS t(x)", False, "functions/aggregate"),
    ("SELECT bool_or(x) FROM UNNEST(ARRAY[true, false]) AS t(x)", True, "functions/aggregate"),
    ("SELECT count(DISTINCT x) FROM UNNEST(ARRAY[1, 1, NULL]) AS t(x)", 1, "functions/aggregate"),
    ("SELECT arbitrary(x) FROM UNNEST(ARRAY[4]) AS t(x)", 4, "functions/aggregate"),
    ("SELECT sum(x) FROM UNNEST(ARRAY[9223372036854775807, 1]) AS t(x)", ERROR, "functions/aggregate"),
    (
        "SELECT max(r) FROM (SELECT row_number() OVER (ORDER BY x) AS r FROM UNNEST(ARRAY[5, 6]) AS t(x))",
        2,
        "functions/window",
    ),
    (
        "SELECT array_agg(r ORDER BY x) FROM (SELECT x, rank() OVER (ORDER BY x) AS r "
        "FROM UNNEST(ARRAY[1, 1, 2]) AS t(x))",
        [1, 1, 3],
        "functions/window",
    ),
    (
        "SELECT array_agg(r ORDER BY x) FROM (SELECT x, dense_rank() OVER (ORDER BY x) AS r "
        "FROM UNNEST(ARRAY[1, 1, 2]) AS t(x))",
        [1, 1, 2],
        "functions/window",
    ),
    (
        "SELECT array_agg(p ORDER BY x) FROM (SELECT x, lag(x) OVER (ORDER BY x) AS p "
        "FROM UNNEST(ARRAY[1, 2, 3]) AS t(x))",
        [None, 1, 2],
        "functions/window",
    ),
    (
        "SELECT array_agg(s ORDER BY x) FROM (SELECT x, sum(x) OVER (ORDER BY x) AS s "
        "FROM UNNEST(ARRAY[1, 2, 3]) AS t(x))",
        [1, 3, 6],
        "functions/window",
    ),
    (
        "SELECT array_agg(b ORDER BY x) FROM (SELECT x, ntile(2) OVER (ORDER BY x) AS b "
        "FROM UNNEST(ARRAY[1, 2, 3]) AS t(x))",
        [1, 1, 2],
        "functions/window",
    ),
    # --- columns of a typed view (BIGINT, DECIMAL(10,2), DOUBLE, TIMESTAMP, DATE, VARCHAR, BOOLEAN)
    ("SELECT n / 2 FROM c_table_conf WHERE id = 1", 3, "functions/math"),
    ("SELECT n / 2 FROM c_table_conf WHERE id = 3", -3, "functions/math"),
    ("SELECT n % 3 FROM c_table_conf WHERE id = 3", -1, "functions/math"),
    ("SELECT sum(n) / count(*) FROM c_table_conf", 0, "functions/math"),
    ("SELECT ratio / 2 FROM c_table_conf WHERE id = 1", 0.25, "functions/math"),
    ("SELECT amount / 3 FROM c_table_conf WHERE id = 1", D("0.42"), "functions/decimal"),
    ("SELECT amount / n FROM c_table_conf WHERE id = 2", D("1.25"), "functions/decimal"),
    ("SELECT amount * n FROM c_table_conf WHERE id = 1", D("8.75"), "functions/decimal"),
    ("SELECT avg(amount) FROM c_table_conf", D("1.23"), "functions/aggregate"),
    ("SELECT sum(amount) FROM c_table_conf", D("3.70"), "functions/aggregate"),
    ("SELECT avg(n) FROM c_table_conf", 2 / 3, "functions/aggregate"),
    ("SELECT ts FROM c_table_conf WHERE id = 1", ts("2001-08-22 03:04:05.321"), "language/types"),
    ("SELECT ts FROM c_table_conf WHERE id = 2", ts("2020-03-01 00:00:00"), "language/types"),
    (
        "SELECT CAST(ts AS varchar) FROM c_table_conf WHERE id = 1",
        "2001-08-22 03:04:05.321",
        "language/types",
    ),
    ("SELECT date_trunc('month', d) FROM c_table_conf WHERE id = 1", day("2001-08-01"), "functions/datetime"),
    (
        "SELECT date_diff('day', d, DATE '2001-09-01') FROM c_table_conf WHERE id = 1",
        10,
        "functions/datetime",
    ),
    ("SELECT date_add('day', 1, d) FROM c_table_conf WHERE id = 2", day("2020-03-01"), "functions/datetime"),
    ("SELECT d - INTERVAL '1' YEAR FROM c_table_conf WHERE id = 2", day("2019-02-28"), "functions/datetime"),
    ("SELECT day_of_week(d) FROM c_table_conf WHERE id = 1", 3, "functions/datetime"),
    (
        "SELECT format_datetime(ts, 'yyyy-MM-dd HH:mm:ss.SSS') FROM c_table_conf WHERE id = 1",
        "2001-08-22 03:04:05.321",
        "functions/datetime",
    ),
    (
        "SELECT date_diff('second', ts, TIMESTAMP '2001-08-22 03:04:07') FROM c_table_conf WHERE id = 1",
        1,
        "functions/datetime",
    ),
    ("SELECT json_extract_scalar(js, '$.a') FROM c_table_conf WHERE id = 1", None, "functions/json"),
    ("SELECT json_extract_scalar(js, '$.c') FROM c_table_conf WHERE id = 1", "x", "functions/json"),
    ("SELECT json_array_length(js) FROM c_table_conf WHERE id = 2", 3, "functions/json"),
    ("SELECT url_extract_host(url) FROM c_table_conf WHERE id = 1", "www.example.com", "functions/url"),
    ("SELECT url_extract_parameter(url, 'q') FROM c_table_conf WHERE id = 1", "1", "functions/url"),
    ("SELECT split_part(name, 'i', 2) FROM c_table_conf WHERE id = 1", "ce", "functions/string"),
    ("SELECT substr(name, -2) FROM c_table_conf WHERE id = 2", "ob", "functions/string"),
    ("SELECT odd FROM c_table_conf WHERE id = 1", None, "functions/conversion"),
    ("SELECT odd FROM c_table_conf WHERE id = 2", 42, "functions/conversion"),
    ("SELECT odd FROM c_table_conf WHERE id = 3", 7, "functions/conversion"),
    ("SELECT odd_flag FROM c_table_conf WHERE id = 1", None, "functions/conversion"),
    ("SELECT odd_flag FROM c_table_conf WHERE id = 2", True, "functions/conversion"),
    ("SELECT odd_flag FROM c_table_conf WHERE id = 3", False, "functions/conversion"),
    ("SELECT count_if(flag) FROM c_table_conf", 1, "functions/aggregate"),
    ("SELECT count(flag) FROM c_table_conf", 2, "functions/aggregate"),
    ("SELECT max_by(name, n) FROM c_table_conf", "alice", "functions/aggregate"),
    ("SELECT min_by(name, n) FROM c_table_conf", None, "functions/aggregate"),
    ("SELECT array_agg(name ORDER BY id) FROM c_table_conf", ["alice", "bob", None], "functions/aggregate"),
    ("SELECT count(*) FROM c_table_conf WHERE name LIKE 'a%'", 1, "functions/comparison"),
    ("SELECT count(*) FROM c_table_conf WHERE name <> 'alice'", 1, "functions/comparison"),
    ("SELECT count(*) FROM c_table_conf WHERE id = '1'", ERROR, "functions/comparison"),
    (
        "SELECT sum(n) OVER (ORDER BY id ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW) "
        "FROM c_table_conf ORDER BY id DESC LIMIT 1",
        2,
        "functions/window",
    ),
]

# Constructs the local engine cannot answer as Trino does: they must fail loudly, naming the construct.
LOUD_CASES: list[tuple[str, str, str]] = [
    ("CAST(1.5e0 AS varchar)", "CAST(1.5e0 AS VARCHAR)", "functions/conversion"),
    ("format('%.2f', 3.14159e0)", "format conversions", "functions/conversion"),
    ("format('%s', 1.5e0)", "format %s of a double", "functions/conversion"),
    ("TIMESTAMP '2020-01-01 00:00:00' AT TIME ZONE 'UTC'", "AT TIME ZONE", "functions/datetime"),
    ("DATE '2020-01-01' + INTERVAL '2' HOUR", "time interval to a DATE", "functions/datetime"),
    ("date_add('hour', 1, DATE '2020-01-01')", "not a valid DATE field", "functions/datetime"),
    ("format_datetime(TIMESTAMP '2020-01-01 00:00:00', 'ww')", "'ww'", "functions/datetime"),
    (
        "regexp_replace('new york', '(\\w)(\\w*)', x -> upper(x[1]))",
        "regexp_replace with a lambda",
        "functions/regexp",
    ),
    ("regexp_replace('abc', '(?<l>b)', '${l}')", "named or malformed group", "functions/regexp"),
    ("strpos('a.b.c', '.', 2)", "strpos with an instance", "functions/string"),
    ("""json_extract('{"a": [1, 2]}', '$.a[*]')""", "JSON path with wildcards", "functions/json"),
    ("date_format(DATE '2020-01-01', '%D')", "date_format/date_parse specifier", "functions/datetime"),
    ("date_format(DATE '2020-01-01', '%U')", "Athena rejects %D %U", "functions/datetime"),
    ("date_parse('2020 1', '%Y %w')", "date_format/date_parse specifier", "functions/datetime"),
    (
        "SELECT approx_percentile(x, 0.5) FROM UNNEST(ARRAY[1, 2]) AS t(x)",
        "approx_percentile",
        "functions/aggregate",
    ),
    ("json_array_contains('[1, 2, 3]', 2)", "json_array_contains", "functions/json"),
    ("SELECT n / x FROM c_table_conf, UNNEST(ARRAY[json_parse('1')]) AS t(x)", "division", "functions/math"),
]

# Result column names: unaliased expressions are _col<position>, names are lowercased.
NAME_CASES: list[tuple[str, list[str], str]] = [
    ("SELECT count(*), id FROM c_table_conf GROUP BY id", ["_col0", "id"], "sql/select"),
    ("SELECT 1, 2 AS Two", ["_col0", "two"], "sql/select"),
    ('SELECT 1 AS "MiXed"', ["mixed"], "sql/select"),
    ("SELECT t.name, upper(t.name) FROM c_table_conf AS t", ["name", "_col1"], "sql/select"),
    (
        "SELECT *, 1 FROM c_table_conf",
        ["id", "n", "amount", "ratio", "ts", "d", "name", "flag", "js", "url", "odd", "odd_flag", "_col12"],
        "sql/select",
    ),
]

FIELDS = [
    Field("id", "bigint"),
    Field("n", "int"),
    Field("amount", "decimal(10,2)"),
    Field("ratio", "double"),
    Field("ts", "datetime"),
    Field("d", "date"),
    Field("name", "varchar"),
    Field("flag", "boolean"),
    Field("js", "json"),
    Field("url", "varchar"),
    Field("odd", "int"),  # text that is not an integer: the typed view's TRY_CAST gives NULL in Athena
    Field("odd_flag", "boolean"),
]
ROWS = [
    [
        1,
        7,
        D("1.25"),
        0.5,
        ts("2001-08-22 03:04:05.321456"),
        day("2001-08-22"),
        "alice",
        True,
        '{"a": {"b": 1}, "c": "x"}',
        "https://www.example.com:8080/p?q=1#f",
        "12.5",
        "yes",
    ],
    [
        2,
        2,
        D("2.50"),
        1.5,
        ts("2020-02-29 23:59:59.999600"),
        day("2020-02-29"),
        "bob",
        False,
        "[1,2,3]",
        "",
        "42",
        "T",
    ],
    [3, -7, D("-0.05"), None, None, None, None, None, None, None, " 7", "0"],
]


@pytest.fixture(scope="module")
def engine(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DuckDBEngine]:
    """A lake with one table loaded the way the pipeline loads it, and its typed view."""
    root: Path = tmp_path_factory.mktemp("lake")
    table = TableSettings("conf", fields=FIELDS)
    settings = Settings(
        path=root / "settings.yaml",
        datalake=DatalakeSettings(type="local", path=str(root), base_prefix="c"),
        datasources=[DatasourceSettings("sqlite", "src", tables=[table])],
    )
    raw = raw_table(settings, table)
    LocalStorage(root).write(object_key("c", "conf", []), [header_line(raw.columns), *encode_rows(ROWS)])
    eng = DuckDBEngine(root, "panorama")
    eng.create_raw_table(raw)
    eng.create_view(settings.view_name(table), typed_view_sql(settings, table))
    yield eng
    eng.close()


def _sql(case: str) -> str:
    return case if case.lstrip().upper().startswith(("SELECT", "WITH")) else f"SELECT {case}"


def _same(got: Any, want: Any) -> bool:
    if isinstance(want, list):
        return isinstance(got, list) and len(got) == len(want) and all(map(_same, got, want))
    if isinstance(want, float) and isinstance(got, float):
        return got == pytest.approx(want, rel=1e-15)
    return type(got) is type(want) and got == want


def test_enough_cases_each_citing_the_documentation() -> None:
    assert len(CASES) + len(LOUD_CASES) + len(NAME_CASES) >= 150
    for *_, page in [*CASES, *LOUD_CASES, *NAME_CASES]:
        assert page.split("/")[0] in {"functions", "language", "sql"}, page


@pytest.mark.parametrize(("sql", "expected", "page"), CASES, ids=[c[0][:80] for c in CASES])
def test_trino_result(engine: DuckDBEngine, sql: str, expected: Any, page: str) -> None:
    if expected is ERROR:
        with pytest.raises(EngineError) as failure:
            _columns, rows = engine.query(_sql(sql))
            list(rows)
        assert "not supported by the local engine" not in str(failure.value)
        assert "\n" not in str(failure.value)
        return
    _columns, rows = engine.query(_sql(sql))
    got = list(rows)
    assert len(got) == 1 and len(got[0]) == 1, got
    assert _same(got[0][0], expected), f"{got[0][0]!r} != Trino's {expected!r} ({DOCS}{page}.html)"


@pytest.mark.parametrize(("sql", "construct", "page"), LOUD_CASES, ids=[c[0][:80] for c in LOUD_CASES])
def test_fails_loudly(engine: DuckDBEngine, sql: str, construct: str, page: str) -> None:
    with pytest.raises(EngineError) as failure:
        _columns, rows = engine.query(_sql(sql))
        list(rows)
    message = str(failure.value)
    assert "not supported by the local engine" in message and construct in message, message
    assert "\n" not in message


@pytest.mark.parametrize(("sql", "names", "page"), NAME_CASES, ids=[c[0][:80] for c in NAME_CASES])
def test_column_names(engine: DuckDBEngine, sql: str, names: list[str], page: str) -> None:
    columns, rows = engine.query(sql)
    list(rows)
    assert columns == names
