"""SQLite source (stdlib sqlite3), opened read-only.

SQLite columns have no enforced types, so each value is rendered by its storage
class at dump time: `CASE typeof(x)` picks integer text, REAL through Python's
`repr` (SQLite's own real-to-text keeps only 15 digits), base64 for BLOBs (both as
registered functions), and text with the lake's escapes done by `replace`. Each
row arrives as one finished CSV line. Text is returned as stored (dates included).

`describe` reports the declared type in lower case without its length
(`varchar(255)` -> `varchar`, `decimal(10,2)` kept whole); no declared type -> `text`.
"""

from __future__ import annotations

import base64
import datetime as dt
import os
import re
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any, ClassVar

from panorama_kpi.errors import SourceError
from panorama_kpi.lake.csv import render
from panorama_kpi.sources.base import TableKind
from panorama_kpi.sources.sql import Column, SQLSource, fetch_rows

_TEXT_SQL = (
    "'\"' || replace(replace(replace(replace({q}, '\\', '\\\\b'), char(10), '\\\\n'), char(13), '\\\\r'),"
    " '\"', '\\\"') || '\"'"
)


def _real(value: float) -> str | None:
    return render(value)


def _b64(value: bytes) -> str:
    return base64.b64encode(value).decode("ascii")


def field_sql(quote: str) -> str:
    """Expression giving the CSV field of one value (layer 1 and 2 of the lake encoding)."""
    return (
        f"CASE typeof({quote}) WHEN 'null' THEN '\"\\\\N\"'"
        f" WHEN 'integer' THEN '\"' || {quote} || '\"'"
        f" WHEN 'real' THEN '\"' || panorama_real({quote}) || '\"'"
        f" WHEN 'blob' THEN '\"' || panorama_b64({quote}) || '\"'"
        f" ELSE {_TEXT_SQL.format(q=quote)} END"
    )


class SQLiteSource(SQLSource):
    """A SQLite database file."""

    type_name = "sqlite"
    settings_keys: ClassVar[dict[str, type]] = {"database": str}
    placeholder = "?"
    server_name = "SQLite"

    @property
    def path(self) -> Path:
        location = self.option("database")
        if not location:
            raise SourceError(f"datasource {self.name!r}: 'database' is not set; point it at the SQLite file")
        return Path(location)

    @property
    def where_text(self) -> str:
        return f"file {str(self.path)!r}"

    def _connect(self) -> Any:
        import sqlite3

        path = self.path
        if not path.is_file():
            raise SourceError(
                f"datasource {self.name!r}: SQLite file {str(path)!r} not found — fix 'database'"
            )
        # Used by one thread at a time, not always the one that opened it (pipeline workers).
        conn = sqlite3.connect(path.absolute().as_uri() + "?mode=ro", uri=True, check_same_thread=False)
        conn.create_function("panorama_real", 1, _real, deterministic=True)
        conn.create_function("panorama_b64", 1, _b64, deterministic=True)
        return conn

    def table_ref(self, table: str) -> str:
        return self.quote(table)

    def _bucket(self, column: Column, granularity: str) -> str:
        modifier = ", 'start of month'" if granularity == "month" else ""
        return f"date({self.quote(column.name)}{modifier})"

    def _bind(self, value: Any, column: Column) -> Any:
        if isinstance(value, dt.datetime):  # compared with text as SQLite stores it
            return value.isoformat(" ")
        return value

    def _rows(self, sql: str, params: Sequence[Any]) -> list[tuple[Any, ...]]:
        cur = self.conn.execute(sql, tuple(params))
        try:
            return fetch_rows(cur)
        finally:
            cur.close()

    def check(self) -> str:
        import sqlite3

        with self.errors():
            (tables,) = self._rows("SELECT COUNT(*) FROM sqlite_master WHERE type IN ('table', 'view')", [])[
                0
            ]
        return f"SQLite {sqlite3.sqlite_version} file {self.path} ({tables} tables, {os.path.getsize(self.path)} bytes)"

    def list_tables(self) -> dict[str, TableKind]:
        with self.errors():
            rows = self._rows(
                "SELECT name, type FROM sqlite_master WHERE type IN ('table', 'view') AND name NOT LIKE 'sqlite\\_%' "
                "ESCAPE '\\' ORDER BY name",
                [],
            )
        return {name: "view" if kind == "view" else "table" for name, kind in rows}

    def _introspect(self, table: str) -> list[Column]:
        rows = self._rows('SELECT name, type, "notnull" FROM pragma_table_info(?)', [table])
        return [Column(name, _type_name(declared), not notnull) for name, declared, notnull in rows]

    def _stream(self, table: str, columns: list[Column], where: str, params: list[Any]) -> Iterator[str]:
        line = " || ',' || ".join(field_sql(self.quote(c.name)) for c in columns)
        cur = self.conn.execute(f"SELECT {line} FROM {self.table_ref(table)}{where}", tuple(params))
        try:
            while batch := cur.fetchmany(2000):
                yield "\n".join([r[0] for r in batch]) + "\n"
        finally:
            cur.close()

    def _translate(self, exc: Exception, table: str | None) -> SourceError | None:
        import sqlite3

        if not isinstance(exc, sqlite3.Error):
            return None
        text = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        if "no such table" in text:
            return SourceError(
                f"table {table!r} not found in datasource {self.name!r} ({self.where_text}) "
                "— run set-tables or fix the name"
            )
        if "file is not a database" in text or "unable to open" in text:
            return self.fail(
                None, f"cannot open {str(self.path)!r} as a SQLite database ({text}) — fix 'database'"
            )
        return self.fail(table, f"SQLite error: {text}")


def _type_name(declared: str) -> str:
    t = " ".join((declared or "").lower().split())
    if not t:
        return "text"
    if re.match(r"^(decimal|numeric)\s*\(", t):
        return t.replace(" ", "")
    return re.sub(r"\s*\(.*\)", "", t)
