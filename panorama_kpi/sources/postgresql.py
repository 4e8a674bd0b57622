"""PostgreSQL source (psycopg2).

Wire shape: `COPY (SELECT ...) TO STDOUT` in text format, turned into the lake's CSV
in Python with a few `bytes.replace` calls per ~1 MB (pg_copy.py says how). COPY
cannot take bound parameters: filter values are merged by psycopg2's own client-side
binding (`cursor.mogrify`), never by string formatting. `copy_expert` pushes rows into
a pipe from a thread and returns only at the end; the consumer reads the other end,
so memory stays flat and abandoning the iterator cancels the query.

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
import threading
from collections.abc import Iterator, Sequence
from typing import Any, ClassVar

from panorama_kpi.errors import SourceError
from panorama_kpi.sources.base import ScanStats, TableKind
from panorama_kpi.sources.pg_copy import open_pipe, read_lines, render_sql, to_csv
from panorama_kpi.sources.sql import (
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
# fmt: on
_KINDS: dict[str, TableKind] = {"v": "view", "m": "materialized view"}  # r, p, f: tables
_SESSION = (
    "SET LOCAL TimeZone = 'UTC'; SET LOCAL DateStyle = 'ISO, YMD'; "
    "SET LOCAL extra_float_digits = 3; SET LOCAL IntervalStyle = 'postgres'"
)

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


_RELATION_SQL = (
    "SELECT c.oid, c.reltuples::bigint, c.relkind FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace"
    " WHERE n.nspname = %s AND c.relname = %s"
)
#: Each whole-table index's columns in order (NULL for an expression).
_INDEXES_SQL = (
    "SELECT array_agg(a.attname::text ORDER BY k.n) FROM pg_index i"
    " CROSS JOIN LATERAL unnest(i.indkey::int2[]) WITH ORDINALITY AS k(attnum, n)"
    " LEFT JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = k.attnum"
    " WHERE i.indrelid = %s AND i.indpred IS NULL AND i.indisvalid GROUP BY i.indexrelid"
)


def _shown(base: str, formatted: str) -> str:
    """The type name describe() reports for a (domain-resolved) base type."""
    if base == "numeric":
        return formatted.replace(" ", "")  # numeric(10,2), or numeric: any precision
    return _NAMES.get(base, base)


#: SQLSTATEs worth retrying (besides class 08, connection exceptions): serialization
#: failure (also a replica's conflict with recovery), deadlock, lock not available,
#: admin/crash shutdown, cannot connect now, too many connections.
_TRANSIENT = frozenset({"40001", "40P01", "55P03", "57P01", "57P02", "57P03", "53300"})


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

    def __init__(self, settings: Any) -> None:
        super().__init__(settings)
        self._ctid: dict[str, bool] = {}

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

    def _scan_stats(self, table: str, fields: list[str]) -> ScanStats | None:
        found = self._rows(_RELATION_SQL, [self.schema, table])
        if not found:
            return None
        oid, estimate, kind = found[0]
        self._ctid[table] = kind in ("r", "m")  # tables and materialized views have row addresses
        leading = [set(names[: len(fields)]) for (names,) in self._rows(_INDEXES_SQL, [oid])]
        return ScanStats(max(int(estimate), 0), set(fields) in leading)

    # A per-partition query returns a partition's rows in heap order whichever scan it
    # uses (sequential, bitmap, or a B-tree's equal keys, kept in heap order since
    # PostgreSQL 12): the ordered scan breaks ties on ctid to give the same bytes.
    def _scan_order(self, table: str, keys: list[Column]) -> list[str]:
        ref = self.table_ref(table)  # qualified: never one of the rendered output columns
        return [f"{ref}.{self.quote(k.name)}" for k in keys] + (["ctid"] if self._ctid.get(table) else [])

    def _stream(self, table: str, columns: list[Column], where: str, params: list[Any]) -> Iterator[str]:
        select = ", ".join(render_sql(c, self.quote(c.name)) for c in columns)
        sql = f"COPY (SELECT {select} FROM {self.table_ref(table)}{where}) TO STDOUT"
        cur = self._begin()
        try:
            sql = cur.mogrify(sql, tuple(params)).decode("utf-8")
        except BaseException:
            self._end()
            raise
        reader, writer = open_pipe()
        failed: list[BaseException] = []

        def run() -> None:
            try:
                try:
                    cur.copy_expert(sql, writer)
                finally:
                    writer.close()  # flushes; the reader sees the end
            except BaseException as exc:  # handed over to the consuming thread
                failed.append(exc)

        worker = threading.Thread(target=run, name=f"copy {self.name}.{table}", daemon=True)
        worker.start()
        finished = cut = False
        try:
            for buf in read_lines(reader):
                cut = not buf.endswith(b"\n")  # the last piece, cut short: the COPY failed
                if cut:
                    break
                yield to_csv(buf)
            worker.join()
            finished = True
            if failed:
                raise failed[0]
            if cut:
                raise self.fail(table, "the server's COPY output ended inside a row; run again")
        finally:
            if not finished:
                self.conn.cancel()
            reader.close()  # a writer still at work gets a broken pipe
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
