"""PostgreSQL source (psycopg2).

Wire shape. `COPY (SELECT ...) TO STDOUT` with the CSV options of the lake itself:
`FORMAT csv, QUOTE '"', ESCAPE '\\', FORCE_QUOTE *`. PostgreSQL then writes every
field in double quotes with `"` and `\\` preceded by a backslash, which is layer 2
of the lake encoding, in C, in one pass. The SELECT supplies the canonical text with
backslashes escaped (`\\` -> `\\b`, the first step of layer 1) and NULL as the raw
text `\\N` (which layer 2 turns into the contract's `"\\\\N"`; a stored `\\N` became
`\\bN`, so they cannot meet). The one thing left to Python is a CR or LF inside a
value: COPY delivers one row per write, so a batch with more LFs than rows (or any
CR) is fixed row by row; other batches are only decoded. Measured on 1M rows, this
split cost the server about 25% less CPU than escaping line breaks with `replace`
too, and the client about half of what doing all the escaping in Python costs.
COPY cannot take bound parameters: filter values are merged by psycopg2's own
client-side binding (`cursor.mogrify`), never by string formatting.

`copy_expert` pushes into a file object and returns only at the end, so it runs in
a thread writing ~1 MB chunks into a small bounded queue: memory stays flat and the
consumer sees an ordinary iterator. Abandoning the iterator cancels the query.

Every statement runs in a read-only transaction that first pins the session
settings the rendering depends on (`SET LOCAL`, so it also holds behind
PgBouncer's transaction pooling): TimeZone UTC, DateStyle ISO, extra_float_digits 3
(shortest round-trip float text from PostgreSQL 12 on), IntervalStyle postgres.

Types reported by `describe` (from pg_type; a domain is its base type, through
domains over domains, so a domain over bigint is `bigint`):
  int2 smallint, int4 integer, int8 bigint, float4 real, float8 double precision,
  numeric(p,s) (or numeric), bool boolean, varchar, bpchar char, text,
  timestamp, timestamptz, date, time, timetz, interval, json, jsonb, bytea, uuid,
  arrays as '<element>[]' (one '[]' per declared dimension), anything else (enums,
  tsvector...) its type name.

Canonical text: timestamps `YYYY-MM-DD HH24:MI:SS.US` (timestamptz converted to
UTC; `infinity` as PostgreSQL spells it; BC dates lose their era, as psycopg2 cannot
read them at all); booleans true/false; bytea base64 without line breaks; floats
shortest round-trip (1e+300, NaN, Infinity); char(n) blank-padded as the driver
returns it; every other type its text output (numeric exact, json as stored, jsonb
normalised by the server). Arrays become JSON arrays (`to_json`): integer, float and
boolean elements as JSON numbers and booleans, every other element as a JSON string
of its exact text (numeric digits, timestamps as PostgreSQL prints them in UTC), NULL
elements as null, nested arrays for more dimensions (lower bounds are not kept).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import queue
import threading
from collections.abc import Iterator, Sequence
from typing import Any, ClassVar

from panorama_kpi.errors import SourceError
from panorama_kpi.sources.base import TableKind
from panorama_kpi.sources.sql import (
    CHUNK_BYTES,
    CONNECT_TIMEOUT,
    READ_TIMEOUT,
    SERVER_KEYS,
    Column,
    SQLSource,
    fetch_rows,
)

# fmt: off
_NAMES = {
    "int2": "smallint", "int4": "integer", "int8": "bigint", "float4": "real", "float8": "double precision",
    "bool": "boolean", "bpchar": "char", "timestamp": "timestamp", "timestamptz": "timestamptz",
}
#: Base types whose text can hold no backslash, LF or CR: no layer-1 escaping needed.
_PLAIN = {"int2", "int4", "int8", "float4", "float8", "numeric", "bool", "oid", "date", "time", "timetz",
          "interval", "uuid", "inet", "cidr", "macaddr", "macaddr8", "money", "bit", "varbit", "pg_lsn"}
#: Array element types whose JSON rendering (numbers, true/false) every reader takes exactly.
_JSON_NATIVE = {"int2", "int4", "int8", "float4", "float8", "bool"}
# fmt: on
_KINDS: dict[str, TableKind] = {"v": "view", "m": "materialized view"}  # r, p, f: tables
_TS_FORMAT = "'YYYY-MM-DD HH24:MI:SS.US'"
_SESSION = (
    "SET LOCAL TimeZone = 'UTC'; SET LOCAL DateStyle = 'ISO, YMD'; "
    "SET LOCAL extra_float_digits = 3; SET LOCAL IntervalStyle = 'postgres'"
)
_COPY_OPTIONS = "(FORMAT csv, QUOTE '\"', ESCAPE E'\\\\', FORCE_QUOTE *)"

#: Every domain with the type it finally stands for: a domain over a domain takes the
#: inner one's base, and the outermost declared type modifier (e.g. numeric(10,2)).
_DOMAINS_SQL = (
    "WITH RECURSIVE dom(oid, base, typmod) AS ("
    " SELECT oid, typbasetype, typtypmod FROM pg_type WHERE typtype = 'd'"
    " UNION ALL SELECT dom.oid, t.typbasetype, CASE WHEN dom.typmod = -1 THEN t.typtypmod ELSE dom.typmod END"
    " FROM dom JOIN pg_type t ON t.oid = dom.base AND t.typtype = 'd')"
    " SELECT dom.oid, dom.base, dom.typmod FROM dom JOIN pg_type t ON t.oid = dom.base AND t.typtype <> 'd'"
)
#: A table's columns: base type (domains resolved), nullability, type modifier, its
#: display, and for arrays the element's base type, its display, and declared dimensions.
_COLUMNS_SQL = (
    f"WITH domains AS ({_DOMAINS_SQL})"
    " SELECT a.attname, t.typname, NOT a.attnotnull, coalesce(d.typmod, a.atttypmod),"
    " format_type(t.oid, coalesce(d.typmod, a.atttypmod)), e.typname,"
    " format_type(e.oid, CASE WHEN coalesce(de.typmod, -1) = -1 THEN coalesce(d.typmod, a.atttypmod)"
    " ELSE de.typmod END), a.attndims"
    " FROM pg_attribute a"
    " JOIN pg_class c ON c.oid = a.attrelid JOIN pg_namespace n ON n.oid = c.relnamespace"
    " LEFT JOIN domains d ON d.oid = a.atttypid"
    " JOIN pg_type t ON t.oid = coalesce(d.base, a.atttypid)"
    " LEFT JOIN domains de ON de.oid = t.typelem AND t.typcategory = 'A'"
    " LEFT JOIN pg_type e ON e.oid = coalesce(de.base, t.typelem) AND t.typcategory = 'A'"
    " WHERE n.nspname = %s AND c.relname = %s AND a.attnum > 0 AND NOT a.attisdropped"
    " ORDER BY a.attnum"
)


def _shown(base: str, formatted: str) -> str:
    """The type name describe() reports for a (domain-resolved) base type."""
    if base == "numeric":
        return formatted.replace(" ", "")  # numeric(10,2), or numeric: any precision
    return _NAMES.get(base, base)


def _literal(text: str) -> str:
    """An E'' literal: means the same whatever standard_conforming_strings says."""
    return (
        "E'" + text.replace("\\", "\\\\").replace("'", "\\'").replace("\n", "\\n").replace("\r", "\\r") + "'"
    )


_NULL = _literal("\\N")
_BACKSLASH = (_literal("\\"), _literal("\\b"))


def render_sql(col: Column, quote: str) -> str:
    """The column's text with backslashes escaped (layer 1 but for line breaks); NULL as \\N."""
    base, typmod, element = col.detail
    if element:  # a JSON array (line breaks arrive escaped by JSON)
        if element not in _JSON_NATIVE:  # elements as their exact text: JSON strings
            quote = f"{quote}::text[]"
        args = [f"replace(to_json({quote})::text, {_BACKSLASH[0]}, {_BACKSLASH[1]})"]
    elif base in _PLAIN and base != "bool" and not col.nullable:
        return quote  # COPY writes what ::text would, without the cast
    elif base == "timestamp":  # to_char gives NULL for infinity: then PostgreSQL's own text
        args = [f"to_char({quote}, {_TS_FORMAT})", f"{quote}::text"]
    elif base == "timestamptz":
        args = [f"to_char({quote} AT TIME ZONE 'UTC', {_TS_FORMAT})", f"{quote}::text"]
    elif base == "bytea":
        args = [f"replace(encode({quote}, 'base64'), {_literal(chr(10))}, '')"]
    elif base in _PLAIN:  # bool included: ::text says true/false where COPY says t/f
        args = [f"{quote}::text"]
    else:  # char(n) keeps the padding the driver shows; a cast to text would strip it
        text = f"rpad({quote}::text, {typmod - 4})" if base == "bpchar" and typmod > 4 else f"{quote}::text"
        args = [f"replace({text}, {_BACKSLASH[0]}, {_BACKSLASH[1]})"]
    if col.nullable:
        args.append(_NULL)
    return args[0] if len(args) == 1 else f"coalesce({', '.join(args)})"


def to_csv(rows: list[bytes]) -> str:
    """Finish a batch of COPY rows: line breaks inside values become \\\\n and \\\\r.

    PostgreSQL quoted every value and escaped quotes and backslashes (layer 2); the
    only thing left raw is a CR or LF inside a value: escaping them with `replace` in
    the SELECT costs two more scans of every text value on the server, while here one
    count per batch finds the rare batch that has any.
    """
    body = b"".join(rows)
    if body.count(b"\n") == len(rows) and b"\r" not in body:
        return body.decode("utf-8")
    return b"".join([r[:-1].replace(b"\n", b"\\\\n").replace(b"\r", b"\\\\r") + b"\n" for r in rows]).decode(
        "utf-8"
    )


#: SQLSTATEs worth retrying (besides class 08, connection exceptions): serialization
#: failure (also a replica's conflict with recovery), deadlock, lock not available,
#: admin/crash shutdown, cannot connect now, too many connections.
_TRANSIENT = frozenset({"40001", "40P01", "55P03", "57P01", "57P02", "57P03", "53300"})


class _Sink:
    """File-like target of copy_expert: gathers rows into chunks on a bounded queue."""

    def __init__(self, out: queue.Queue[Any], stop: threading.Event) -> None:
        self.out, self.stop = out, stop
        self.parts: list[bytes] = []
        self.size = 0

    def write(self, data: bytes) -> None:
        self.parts.append(data)
        self.size += len(data)
        if self.size >= CHUNK_BYTES:
            self.flush()

    def flush(self) -> None:
        if self.stop.is_set():
            raise _Stopped()
        if self.parts:
            self.out.put(self.parts)
            self.parts, self.size = [], 0


class _Stopped(Exception):
    """The consumer went away."""


_DONE = object()


class PostgreSQLSource(SQLSource):
    """PostgreSQL through psycopg2; rows leave the server already in the lake encoding."""

    type_name = "postgresql"
    settings_keys: ClassVar[dict[str, type]] = {
        **SERVER_KEYS,
        "schema": str,
        "sslmode": str,
    }
    server_name = "PostgreSQL"
    clock_sql = "SELECT clock_timestamp() AT TIME ZONE 'UTC'"
    default_port = 5432

    @property
    def schema(self) -> str:
        return str(self.option("schema", "public"))

    @property
    def where_text(self) -> str:
        return f"database {self.option('database', '')}, schema {self.schema} at {self.address}"

    def _connect(self) -> Any:
        import psycopg2

        params = {
            "host": self.option("host"),
            "port": self.option("port"),
            "user": self.option("username"),
            "password": self.option("password"),
            "dbname": self.option("database"),
            "sslmode": self.option("sslmode"),
        }
        conn = psycopg2.connect(
            **{k: v for k, v in params.items() if v is not None},
            connect_timeout=CONNECT_TIMEOUT,
            application_name="panorama-kpi",
        )
        conn.set_client_encoding("UTF8")
        conn.set_session(readonly=True, autocommit=False)
        return conn

    def _begin(self) -> Any:
        cur = self.conn.cursor()
        cur.execute(_SESSION)
        # unacknowledged or unsendable data for longer than this closes the connection on
        # the server's side: a stopped reader does not hold back vacuum for hours
        timeout_ms = int(self.option("read_timeout", READ_TIMEOUT)) * 1000
        cur.execute(f"SET LOCAL tcp_user_timeout = {timeout_ms}")
        return cur

    # A table's reads share one snapshot: the first connection exports its snapshot
    # (REPEATABLE READ), the others adopt it, and every statement runs in that one
    # transaction until the table is done.
    _in_snapshot = False

    def _bucket(self, column: Column, granularity: str) -> str:
        # sessions run in UTC: a timestamptz falls on its UTC date
        return f"CAST(date_trunc('{granularity}', {self.quote(column.name)}) AS date)"

    def _snapshot_begin(self) -> Any:
        self._in_snapshot = False
        self._end()
        with self.conn.cursor() as cur:
            cur.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
            cur.execute("SELECT pg_export_snapshot()")
            (token,) = cur.fetchone()
        self._in_snapshot = True
        return token

    def _snapshot_join(self, token: Any) -> None:
        self._in_snapshot = False
        self._end()
        with self.conn.cursor() as cur:
            cur.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
            cur.execute("SET TRANSACTION SNAPSHOT %s", (token,))
        self._in_snapshot = True

    def _snapshot_end(self) -> None:
        self._in_snapshot = False
        self._end()

    def _end(self) -> None:
        """Close the transaction (nothing to commit), unless a snapshot is being shared;
        a broken connection is dropped."""
        if self._conn is not None and not self._in_snapshot:
            try:
                self._conn.rollback()
            except Exception:
                self.drop_connection()

    def table_ref(self, table: str) -> str:
        return f"{self.quote(self.schema)}.{self.quote(table)}"

    def _bind(self, value: Any, column: Column) -> Any:
        if column.detail[0] == "timestamptz" and isinstance(value, dt.datetime) and value.tzinfo is None:
            return value.replace(tzinfo=dt.UTC)  # naive means UTC throughout panorama
        return value

    def _rows(self, sql: str, params: Sequence[Any]) -> list[tuple[Any, ...]]:
        try:
            with self._begin() as cur:
                cur.execute(sql, tuple(params))
                return fetch_rows(cur)
        finally:
            self._end()

    def check(self) -> str:
        version, db = self._rows("SELECT current_setting('server_version'), current_database()", [])[0]
        return f"PostgreSQL {version.split()[0]} at {self.address}/{db}"

    def list_tables(self) -> dict[str, TableKind]:
        with self.errors():
            rows = self._rows(
                "SELECT c.relname, c.relkind FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace"
                " WHERE n.nspname = %s AND c.relkind IN ('r', 'p', 'v', 'm', 'f') AND NOT c.relispartition"
                " ORDER BY c.relname",
                [self.schema],
            )
        return {name: _KINDS.get(kind, "table") for name, kind in rows}

    def _introspect(self, table: str) -> list[Column]:
        rows = self._rows(_COLUMNS_SQL, [self.schema, table])
        cols = []
        for name, base, nullable, typmod, formatted, element, element_formatted, dims in rows:
            if element:
                shown = _shown(element, element_formatted) + "[]" * max(dims, 1)
            else:
                shown = _shown(base, formatted)
            cols.append(Column(name, shown, bool(nullable), (base, typmod, element)))
        return cols

    def _stream(self, table: str, columns: list[Column], where: str, params: list[Any]) -> Iterator[str]:
        select = ", ".join(render_sql(c, self.quote(c.name)) for c in columns)
        sql = f"COPY (SELECT {select} FROM {self.table_ref(table)}{where}) TO STDOUT WITH {_COPY_OPTIONS}"
        cur = self._begin()
        try:
            sql = cur.mogrify(sql, tuple(params)).decode("utf-8")
        except BaseException:
            self._end()
            raise
        chunks: queue.Queue[Any] = queue.Queue(maxsize=4)
        stop = threading.Event()
        sink = _Sink(chunks, stop)

        def run() -> None:
            try:
                cur.copy_expert(sql, sink)
                sink.flush()
                chunks.put(_DONE)
            except BaseException as exc:  # handed over to the consuming thread
                chunks.put(exc)

        worker = threading.Thread(target=run, name=f"copy {self.name}.{table}", daemon=True)
        worker.start()
        finished = False
        try:
            while True:
                item = chunks.get()
                if item is _DONE:
                    finished = True
                    break
                if isinstance(item, BaseException):
                    finished = True
                    raise item
                yield to_csv(item)
        finally:
            if not finished:
                stop.set()
                self.conn.cancel()
                while worker.is_alive() or not chunks.empty():
                    with contextlib.suppress(queue.Empty):
                        chunks.get(timeout=0.05)
            worker.join()
            with contextlib.suppress(Exception):
                cur.close()
            if finished:
                self._end()
            else:
                self.drop_connection()

    def _is_transient(self, exc: Exception) -> bool:
        import psycopg2

        code = getattr(exc, "pgcode", None) or ""
        if code:
            return code in _TRANSIENT or code.startswith("08")
        # no SQLSTATE: the connection broke (server gone, network) rather than a statement failing
        return isinstance(exc, (psycopg2.OperationalError, psycopg2.InterfaceError))

    def _translate(self, exc: Exception, table: str | None) -> SourceError | None:
        import psycopg2

        if not isinstance(exc, psycopg2.Error):
            return None
        code = getattr(exc, "pgcode", None) or ""
        text = (getattr(exc, "pgerror", None) or str(exc)).strip()
        first = text.splitlines()[0] if text else type(exc).__name__
        for prefix in ("ERROR:", "FATAL:"):
            first = first.removeprefix(prefix).strip()
        at, user, db = self.address, self.option("username", ""), self.option("database", "")
        if not code and isinstance(exc, psycopg2.OperationalError):  # connection time
            reason = first.split(" failed: ", 1)[-1]
            if "password authentication failed" in text or ("role" in text and "does not exist" in text):
                return self.fail(None, f"access denied for user {user!r} at {at} — check username/password")
            if "database" in text and "does not exist" in text:
                return self.fail(None, f"database {db!r} does not exist at {at} — fix 'database'")
            if "no pg_hba.conf entry" in text:
                return self.fail(
                    None, f"the server at {at} refuses this client ({reason}) — check pg_hba.conf/sslmode"
                )
            return self.fail(
                None,
                f"cannot reach the PostgreSQL server at {at} ({reason}) "
                "— check host/port and that the server is running",
            )
        if code == "42P01":
            return SourceError(
                f"table {table!r} not found in datasource {self.name!r} ({self.where_text}) "
                "— run set-tables or fix the name"
            )
        if code == "3F000":
            return self.fail(
                None, f"schema {self.schema!r} does not exist in {self.where_text} — fix 'schema'"
            )
        if code == "42501":
            return self.fail(table, f"permission denied — grant SELECT to {user!r} ({first})")
        hint = (getattr(getattr(exc, "diag", None), "message_hint", None) or "").strip()
        hint = f" — {hint.splitlines()[0]}" if hint else ""  # e.g. REFRESH a materialized view
        return self.fail(table, f"PostgreSQL error {code or type(exc).__name__}: {first}{hint}")
