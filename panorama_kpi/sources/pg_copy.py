"""PostgreSQL's wire shape: `COPY (SELECT ...) TO STDOUT` in text format, turned into the
lake's CSV with a few `bytes.replace` calls over ~1 MB buffers.

COPY's text format already is almost the lake's raw text (layer 1): NULL is `\\N`,
and inside a value a backslash is `\\\\`, LF `\\n`, CR `\\r`; it also writes TAB, BS,
FF and VT as `\\t`, `\\b`, `\\f`, `\\v` (never octal or hex escapes, per the COPY
reference), fields are separated by TAB and rows end with LF. So the SELECT only
renders what the server's text output spells differently from the canonical text
(timestamps, booleans, bytea, arrays) and leaves text columns and NULLs alone: no
per-value `replace`/`coalesce` on the server, which is what the CSV-format shape
spent its CPU on. `to_csv` then maps COPY's escapes onto the contract in C-speed
passes over the whole buffer (see its docstring).

Rows travel from psycopg2's `copy_expert` (which calls `write` once per row) into a
pipe through a C `BufferedWriter`, so no Python code runs per row; the reading side
takes ~1 MB at a time and cuts it at the last line end. The pipe's capacity bounds
what is in flight.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import re
from collections.abc import Iterator
from typing import Any, BinaryIO

from panorama_kpi.sources.sql import CHUNK_BYTES, Column

# fmt: off
#: Array element types whose JSON rendering (numbers, true/false) every reader takes exactly.
_JSON_NATIVE = {"int2", "int4", "int8", "float4", "float8", "bool"}
# fmt: on
_TS_FORMAT = "'YYYY-MM-DD HH24:MI:SS.US'"


def _literal(text: str) -> str:
    """An E'' literal: means the same whatever standard_conforming_strings says."""
    return (
        "E'" + text.replace("\\", "\\\\").replace("'", "\\'").replace("\n", "\\n").replace("\r", "\\r") + "'"
    )


def render_sql(col: Column, quote: str) -> str:
    """The column's canonical text where COPY's text output differs from it (NULL stays NULL)."""
    base, _typmod, element = col.detail
    if element:  # a JSON array; to_json(NULL) is NULL
        if element not in _JSON_NATIVE:  # elements as their exact text: JSON strings
            quote = f"{quote}::text[]"
        return f"to_json({quote})::text"
    if base == "timestamp":  # to_char gives NULL for infinity: then PostgreSQL's own text
        return f"coalesce(to_char({quote}, {_TS_FORMAT}), {quote}::text)"
    if base == "timestamptz":
        return f"coalesce(to_char({quote} AT TIME ZONE 'UTC', {_TS_FORMAT}), {quote}::text)"
    if base == "bytea":
        return f"replace(encode({quote}, 'base64'), {_literal(chr(10))}, '')"
    if base == "bool":  # COPY says t/f, ::text says true/false
        return f"{quote}::text"
    # Everything else: COPY writes the type's output function, i.e. what ::text gives
    # (char(n) with its padding, numbers, dates, json, enums...).
    return quote


# Bytes that never occur in UTF-8 (the connection's encoding): placeholders.
_BACKSLASH, _SEP = b"\xff", b"\xfe"
#: COPY's escapes that stand for characters the lake keeps raw (may also match the
#: second half of an escaped backslash: that only takes the slower, exact path).
_RAW_ESCAPES = re.compile(rb"\\[tbfv]")


def to_csv(body: bytes) -> str:
    """CSV lines (the lake contract) of whole rows of COPY text output.

    Usually the only escapes are `\\\\`, `\\n`, `\\r` and `\\N`: then doubling every
    backslash is layer 2 of the last three, and an escaped backslash, now four, becomes
    the lake's `\\\\b` (replacing left to right keeps the pairs aligned). When COPY's
    `\\t \\b \\f \\v` may be there, escaped backslashes and separators are first set
    aside, so those four can be turned back into their characters. Then quotes are
    escaped, TABs become `","` and each row is wrapped in quotes. Single-byte patterns
    throughout where possible: they are several times faster to replace than longer ones.
    """
    sep = b"\t"
    if _RAW_ESCAPES.search(body) is None:
        body = body.replace(b"\\", b"\\\\").replace(b"\\\\\\\\", b"\\\\b")
    else:
        sep = _SEP
        body = (
            body.replace(b"\\\\", _BACKSLASH)
            .replace(b"\t", _SEP)
            .replace(b"\\t", b"\t")
            .replace(b"\\b", b"\x08")
            .replace(b"\\f", b"\x0c")
            .replace(b"\\v", b"\x0b")
            .replace(b"\\", b"\\\\")
            .replace(_BACKSLASH, b"\\\\b")
        )
    body = body[:-1].replace(b'"', b'\\"').replace(sep, b'","').replace(b"\n", b'"\n"')
    return (b'"' + body + b'"\n').decode("utf-8")


#: Bytes moved through the pipe at a time.
_PIECE = 1 << 16


def open_pipe() -> tuple[BinaryIO, BinaryIO]:
    """(reader, writer) of a pipe whose writer buffers ~1 MB in C; the pipe is enlarged
    where the kernel allows, so fewer, larger reads cross it."""
    r, w = os.pipe()
    with contextlib.suppress(OSError, AttributeError):
        fcntl.fcntl(w, fcntl.F_SETPIPE_SZ, CHUNK_BYTES)
    # small buffers on both sides: the pipe does the batching, and 1 MB allocations made
    # on the COPY threads stay in their malloc arenas (peak RSS grew by ~150 MB with two)
    return os.fdopen(r, "rb", buffering=0), os.fdopen(w, "wb", buffering=_PIECE)


def read_lines(reader: Any, chunk_bytes: int = CHUNK_BYTES) -> Iterator[bytes]:
    """Buffers of whole lines (about `chunk_bytes` each) read from `reader` until EOF.
    A trailing piece without a line end is returned last as it is."""
    pending: list[bytes] = []
    size = 0
    while True:
        data = reader.read(min(max(chunk_bytes - size, 1 << 12), _PIECE))
        if not data:
            break
        pending.append(data)
        size += len(data)
        if size < chunk_bytes:
            continue
        buf = b"".join(pending)
        cut = buf.rfind(b"\n") + 1
        if cut == 0:  # one very long row: keep reading
            pending, size = [buf], len(buf)
            continue
        yield buf[:cut]
        rest = buf[cut:]
        pending, size = ([rest], len(rest)) if rest else ([], 0)
    if pending:
        yield b"".join(pending)
