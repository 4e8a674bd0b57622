"""The lake's CSV contract: how a value becomes a field Athena's OpenCSVSerde reads back intact.

Two layers, both lossless:

1. *Raw text* (what the raw table shows for a value). NULL is the two characters
   ``\\N``. Otherwise the value's canonical text with three escapes, so that no raw
   line break ever reaches the file (Hadoop's line reader would split the row):
   backslash -> ``\\b``, LF -> ``\\n``, CR -> ``\\r``. Every escape is a backslash
   followed by a character that is *not* a backslash, so decoding is three plain
   left-to-right ``replace`` calls (see :func:`decode_sql`) with no ambiguity, on
   Trino and DuckDB alike, with no regex and no lambda.

2. *CSV field*: the raw text in double quotes, with ``\\`` -> ``\\\\`` and ``"`` -> ``\\"``
   (OpenCSVSerde's escape character is the backslash; it honours it inside quotes
   before a quote or another backslash). Doubled quotes are never written: DuckDB
   and the SerDe read them differently. Rows end with ``\\n``; a header line names the
   columns and is skipped by both readers.
"""

from __future__ import annotations

import base64
import datetime as dt
import decimal
import json
import math
from collections.abc import Iterable, Iterator, Sequence
from typing import Any

NULL_RAW = "\\N"
"""Raw-table text of NULL."""

NULL_FIELD = '"\\\\N"'
"""How NULL is written in the file."""

ROW_SEPARATOR = "\n"


def _json_default(value: Any) -> Any:
    if isinstance(value, (bytes, bytearray, memoryview)):
        return base64.b64encode(bytes(value)).decode("ascii")
    text = render(value)
    return text


def render(value: Any) -> str | None:
    """Canonical text of a Python value (None stays None)."""
    if value is None:
        return None
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if math.isnan(value):
            return "NaN"
        if math.isinf(value):
            return "Infinity" if value > 0 else "-Infinity"
        return repr(value)
    if isinstance(value, decimal.Decimal):
        return format(value, "f")
    if isinstance(value, dt.datetime):
        if value.tzinfo is not None:
            value = value.astimezone(dt.UTC).replace(tzinfo=None)
        return value.isoformat(" ", "microseconds")
    if isinstance(value, dt.date):
        return value.isoformat()
    if isinstance(value, dt.time):
        return value.isoformat("microseconds") if value.microsecond else value.isoformat()
    if isinstance(value, dt.timedelta):
        return _render_timedelta(value)
    if isinstance(value, (bytes, bytearray, memoryview)):
        return base64.b64encode(bytes(value)).decode("ascii")
    if isinstance(value, (dict, list, tuple)):
        try:
            return json.dumps(
                value, ensure_ascii=False, separators=(",", ":"), default=_json_default, allow_nan=False
            )
        except ValueError:  # NaN/Infinity inside a document: not JSON; Trino would reject it
            return render(_finite(value))
    return str(value)


def _finite(value: Any) -> Any:
    """Replace non-finite floats inside a document by their names as strings."""
    if isinstance(value, float) and not math.isfinite(value):
        return render(value)
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_finite(v) for v in value]
    return value


def _render_timedelta(value: dt.timedelta) -> str:
    """MySQL TIME arrives as a timedelta; render it the way MySQL prints it."""
    sign = "-" if value < dt.timedelta(0) else ""
    total = abs(value)
    hours, rest = divmod(total.days * 86400 + total.seconds, 3600)
    minutes, seconds = divmod(rest, 60)
    text = f"{sign}{hours:02d}:{minutes:02d}:{seconds:02d}"
    return f"{text}.{total.microseconds:06d}" if total.microseconds else text


def encode_raw(text: str | None) -> str:
    """Raw-table text of a value's canonical text (layer 1)."""
    if text is None:
        return NULL_RAW
    return text.replace("\\", "\\b").replace("\n", "\\n").replace("\r", "\\r")


def decode_raw(raw: str) -> str | None:
    """Inverse of :func:`encode_raw`; the same three replaces the typed views run."""
    if raw == NULL_RAW:
        return None
    return raw.replace("\\n", "\n").replace("\\r", "\r").replace("\\b", "\\")


def quote_field(raw: str) -> str:
    """CSV field of a raw text (layer 2)."""
    return '"' + raw.replace("\\", "\\\\").replace('"', '\\"') + '"'


def encode_field(value: Any) -> str:
    """One value straight to its CSV field (both layers, one pass over the text)."""
    if value is None:
        return NULL_FIELD
    text = value if isinstance(value, str) else render(value)
    assert text is not None
    return (
        '"'
        + text.replace("\\", "\\\\b").replace("\n", "\\\\n").replace("\r", "\\\\r").replace('"', '\\"')
        + '"'
    )


def encode_row(values: Sequence[Any]) -> str:
    """One CSV line, newline included."""
    return ",".join([encode_field(v) for v in values]) + ROW_SEPARATOR


def header_line(columns: Sequence[str]) -> str:
    return ",".join([quote_field(encode_raw(c)) for c in columns]) + ROW_SEPARATOR


def encode_rows(rows: Iterable[Sequence[Any]], batch: int = 2000) -> Iterator[str]:
    """Encode rows into text chunks of about `batch` lines each (fewer, larger writes)."""
    chunk: list[str] = []
    append = chunk.append
    for row in rows:
        append(",".join([encode_field(v) for v in row]))
        if len(chunk) >= batch:
            yield "\n".join(chunk) + "\n"
            chunk.clear()
    if chunk:
        yield "\n".join(chunk) + "\n"


def decode_sql(column_sql: str) -> str:
    """Athena-dialect expression turning a raw column back into the value (NULL included).

    The same text runs on DuckDB after sqlglot transpiles it; `replace` is plain
    left-to-right, non-overlapping substitution on both engines.
    """
    return (
        f"CASE WHEN {column_sql} = '\\N' THEN NULL ELSE "
        f"replace(replace(replace({column_sql}, '\\n', chr(10)), '\\r', chr(13)), '\\b', '\\') END"
    )
