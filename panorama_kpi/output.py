"""How `query` prints results: a table for people, CSV and JSON for programs.

The table is for reading, so it is unambiguous rather than raw: NULL prints as a
bare `NULL`; text escapes the backslash (`\\\\`) and every control character the
same way (`\\n`, `\\r`, `\\t`, `\\x01`), and is wrapped in double quotes when it would
otherwise read as NULL, is empty, starts with a double quote or has leading or
trailing spaces, so no two values look alike.
Cells wider than the terminal allows are cut with `…` (CSV and JSON carry full
values). CSV follows PostgreSQL's convention: NULL is an empty unquoted field, the
empty string is `""`.
"""

from __future__ import annotations

import datetime as dt
import decimal
import json
import re
from collections.abc import Iterable, Iterator, Sequence
from typing import Any

NULL_CELL = "NULL"
ELLIPSIS = "…"
MIN_CELL = 6  # narrowest a truncated column gets

_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\\]")
_NAMED = {"\\": "\\\\", "\n": "\\n", "\r": "\\r", "\t": "\\t"}


def text(value: Any) -> str:
    """The value's canonical text (what CSV and JSON carry); None is not handled here."""
    if isinstance(value, dt.datetime):
        return value.isoformat(" ")
    if isinstance(value, (bytes, bytearray, memoryview)):
        return bytes(value).decode("utf-8", "replace")
    return str(value)


def _escape(match: re.Match[str]) -> str:
    char = match.group(0)
    return _NAMED.get(char) or f"\\x{ord(char):02x}"


def cell(value: Any) -> str:
    """One value as a table cell: unambiguous, on one line."""
    if value is None:
        return NULL_CELL
    shown = _CONTROL.sub(_escape, text(value))
    if isinstance(value, str) and (
        shown in ("", NULL_CELL) or shown.startswith('"') or shown != shown.strip(" ")
    ):
        shown = '"' + shown.replace('"', '\\"') + '"'
    return shown


def _fit(widths: list[int], total: int) -> list[int]:
    """Shrink the widest columns until the row (two spaces between cells) fits `total`."""
    widths = list(widths)
    budget = total - 2 * (len(widths) - 1)
    while sum(widths) > budget:
        i = max(range(len(widths)), key=widths.__getitem__)
        if widths[i] <= MIN_CELL:
            break  # too many columns for the terminal: let lines wrap
        target = max(MIN_CELL, widths[i] - (sum(widths) - budget))
        runner_up = max((w for j, w in enumerate(widths) if j != i), default=0)
        if runner_up < widths[i]:
            target = max(target, runner_up)
        widths[i] = target
    return widths


def _cut(value: str, width: int) -> str:
    return value if len(value) <= width else value[: width - 1] + ELLIPSIS


def table_lines(columns: Sequence[str], rows: Iterable[Sequence[Any]], width: int) -> Iterator[str]:
    """Aligned columns fitted to `width` characters, then a row count."""
    cells = [[cell(v) for v in row] for row in rows]
    heads = [cell(c) for c in columns]
    natural = [max([len(h), *(len(r[i]) for r in cells)]) for i, h in enumerate(heads)]
    widths = _fit(natural, width) if heads else []

    def line(values: Sequence[str]) -> str:
        return "  ".join(_cut(v, w).ljust(w) for v, w in zip(values, widths, strict=True)).rstrip()

    yield line(heads)
    yield "  ".join("-" * w for w in widths)
    for r in cells:
        yield line(r)
    yield f"({len(cells)} row{'s' if len(cells) != 1 else ''})"


def csv_field(value: Any) -> str:
    if value is None:
        return ""
    t = text(value)
    if t == "" or any(c in t for c in ',"\r\n'):
        return '"' + t.replace('"', '""') + '"'
    return t


def csv_lines(columns: Sequence[str], rows: Iterable[Sequence[Any]]) -> Iterator[str]:
    yield ",".join(csv_field(c) for c in columns)
    for row in rows:
        yield ",".join(csv_field(v) for v in row)


def _jsonable(value: Any) -> Any:
    if isinstance(value, decimal.Decimal):
        return str(value)
    if isinstance(value, (dt.date, dt.datetime, dt.time)):
        return value.isoformat(" ") if isinstance(value, dt.datetime) else value.isoformat()
    if isinstance(value, (bytes, bytearray, memoryview)):
        return text(value)
    return value


def json_text(columns: Sequence[str], rows: Iterable[Sequence[Any]]) -> str:
    return json.dumps(
        [{c: _jsonable(v) for c, v in zip(columns, row, strict=True)} for row in rows],
        ensure_ascii=False,
        indent=1,
        default=str,
    )
