"""PostgreSQL's COPY text output turned into the lake's CSV (panorama_kpi.sources.pg_copy).

`copy_text` models what COPY ... TO STDOUT (FORMAT text) writes, from PostgreSQL's
COPY reference: NULL as \\N, backslash doubled, BS FF LF CR TAB VT as \\b \\f \\n \\r \\t \\v,
every other character as it is, fields separated by TAB, rows ended by LF. Whatever
the values, `to_csv` of that output must be exactly the contract's encoder's lines,
however the output is cut into buffers. tests/test_roundtrip.py runs the same path
against a real server.
"""

from __future__ import annotations

import io
from collections.abc import Sequence

from hypothesis import example, given
from hypothesis import strategies as st
from test_csv_contract import PROPERTY, SPECIAL_CHARS, SPECIAL_STRINGS, VALUE

from panorama_kpi.lake.csv import encode_row
from panorama_kpi.sources.pg_copy import read_lines, to_csv

_ESCAPES = {"\\": "\\\\", "\b": "\\b", "\f": "\\f", "\n": "\\n", "\r": "\\r", "\t": "\\t", "\v": "\\v"}


def copy_text(rows: Sequence[Sequence[str | None]]) -> bytes:
    def field(value: str | None) -> str:
        if value is None:
            return "\\N"
        return "".join(_ESCAPES.get(c, c) for c in value)

    return "".join("\t".join(field(v) for v in row) + "\n" for row in rows).encode("utf-8")


# COPY's own escape letters, next to backslashes and tabs, are what could confuse the mapping.
EXTRA = ["\b", "\f", "\v", "\\t", "\\b", "\\f", "\\v", "\\\\t", "\t\\", "\\\t", "\xff", "\xfe"]
PIECES = st.sampled_from(SPECIAL_STRINGS + SPECIAL_CHARS + EXTRA)
COPY_VALUE = VALUE | st.lists(PIECES, max_size=10).map("".join)
ROWS = st.integers(min_value=1, max_value=5).flatmap(
    lambda width: st.lists(st.lists(COPY_VALUE, min_size=width, max_size=width), min_size=1, max_size=8)
)


@PROPERTY
@given(ROWS)
@example([["\\N", None, ""], ["\b\\b", "\t", "\\t\t"], ['"\\"', "a\nb\rc", "\\\\N"]])
def test_copy_text_becomes_the_contract(rows: list[list[str | None]]) -> None:
    assert to_csv(copy_text(rows)) == "".join(encode_row(r) for r in rows)


@PROPERTY
@given(ROWS, st.integers(min_value=1, max_value=64))
def test_buffers_end_at_row_ends(rows: list[list[str | None]], size: int) -> None:
    data = copy_text(rows)
    buffers = list(read_lines(io.BufferedReader(io.BytesIO(data), buffer_size=8), size))
    assert b"".join(buffers) == data
    assert all(b.endswith(b"\n") for b in buffers)
    assert "".join(to_csv(b) for b in buffers) == "".join(encode_row(r) for r in rows)
