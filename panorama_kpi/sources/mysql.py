"""MySQL / MariaDB source (pymysql).

Wire shape. The server sends one *binary* string per row: the fields' canonical
text joined by the byte 0xFF, NULL as the byte 0xFE. Neither byte occurs in UTF-8,
so they cannot collide with data (every text column reaches the row as UTF-8:
utf8mb4/utf8mb3/ascii columns as stored, others through CONVERT ... USING utf8mb4).
Python then turns a batch of rows into CSV lines with a handful of C-speed
single-byte `bytes.replace` calls and one UTF-8 decode. Measured on a 1M-row table,
letting MariaDB escape instead (REPLACE on quotes, backslashes, line breaks) cost
more server CPU than the whole native dump; this shape costs about one IFNULL and
one CONCAT_WS per row.

Rows are read straight off pymysql's socket buffer (`_raw_rows`): pymysql's own
unbuffered reading spends several microseconds per row in Python, which alone
caps it near 0.4x the native client. The fast reader only relies on the documented
wire protocol (packet header, length-encoded string, EOF/ERR packets) and on the
two connection attributes pymysql uses for it; if they are missing it falls back
to `SSCursor.fetchmany`.

`describe` reports information_schema's DATA_TYPE (as panorama-elt did), with the
precision of decimals (`decimal(10,2)`) and ` unsigned` on unsigned integers.

Canonical text per column type (information_schema DATA_TYPE):
  integers, decimal, double, year, date, time  the server's text (double: shortest
                                               round-trip digits, e.g. 1e300, 0.1)
  float                                        widened to double: exact value of the
                                               stored float (0.1 -> 0.10000000149011612)
  bit                                          the integer value
  datetime, timestamp                          YYYY-MM-DD HH:MM:SS.ffffff, session
                                               time zone +00:00 (TIMESTAMP in UTC)
  binary, varbinary, *blob                     base64, no line breaks
  geometry types                               WKT (ST_AsText)
  strings, enum, set, json, others             their text, as UTF-8
"""

from __future__ import annotations

import contextlib
import logging
import struct
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any, ClassVar

from panorama_kpi.errors import SourceError
from panorama_kpi.sources.base import ScanStats, TableKind
from panorama_kpi.sources.sql import (
    CHUNK_BYTES,
    CONNECT_TIMEOUT,
    READ_TIMEOUT,
    SERVER_KEYS,
    Column,
    SQLSource,
    fetch_rows,
)

log = logging.getLogger(__name__)

# fmt: off
_UTF8_CHARSETS = {"utf8mb4", "utf8mb3", "utf8", "ascii"}
_AS_IS = {"tinyint", "smallint", "mediumint", "int", "integer", "bigint", "decimal", "numeric", "double",
          "real", "year", "date", "time"}
_INTEGERS = {"tinyint", "smallint", "mediumint", "int", "integer", "bigint"}
_BINARY = {"binary", "varbinary", "tinyblob", "blob", "mediumblob", "longblob"}
_GEOMETRY = {"geometry", "point", "linestring", "polygon", "multipoint", "multilinestring", "multipolygon",
             "geometrycollection", "geomcollection"}
_TEXT = {"char", "varchar", "tinytext", "text", "mediumtext", "longtext", "enum", "set"}
# fmt: on

SEP, NUL, EOL = b"\xff", b"\xfe", b"\xfd"
_SEP_SQL, _NULL_SQL = "_binary X'FF'", "_binary X'FE'"
_LF_SQL = "_utf8mb4 X'0A'"

_HEADER = struct.Struct("<I").unpack_from
_MAX_PACKET = 0xFFFFFF


def render_sql(col: Column, quote: str) -> str:
    """Expression giving the column's canonical text (NULL stays NULL)."""
    t = col.type.split("(")[0].split(" ")[0]
    charset, dt_precision = col.detail
    if t in _AS_IS:
        return quote
    if t == "float":
        return f"({quote} + 0e0)"
    if t == "bit":
        return f"({quote} + 0)"
    if t in ("datetime", "timestamp"):
        zeros = 6 - (dt_precision or 0)
        if zeros <= 0:
            return quote
        return f"CONCAT({quote}, '{'.' if zeros == 6 else ''}{'0' * zeros}')"
    if t in _BINARY:
        return f"REPLACE(TO_BASE64({quote}), {_LF_SQL}, '')"
    if t in _GEOMETRY:
        return f"ST_AsText({quote})"
    if t in _TEXT and (charset or "").lower() in _UTF8_CHARSETS:
        return quote
    if t in _TEXT:
        return f"CONVERT({quote} USING utf8mb4)"
    return f"CAST({quote} AS CHAR)"  # json, uuid, inet6...: their text, in the connection's utf8mb4


def line_sql(columns: Sequence[Column], quote: Any) -> str:
    """One binary string per row: fields joined by 0xFF, NULL as 0xFE."""
    parts = []
    for col in columns:
        expr = render_sql(col, quote(col.name))
        if col.nullable or expr != quote(col.name):
            expr = f"IFNULL(CAST({expr} AS BINARY), {_NULL_SQL})"
        parts.append(expr)
    return f"CONCAT_WS({_SEP_SQL}, {', '.join(parts)})"


def to_csv(rows: list[bytes], ncols: int) -> str:
    """CSV lines of a batch of rows in the wire shape above."""
    body = EOL.join(rows)
    if body.count(SEP) != len(rows) * (ncols - 1) or body.count(EOL) != len(rows) - 1:
        raise ValueError("a field holds bytes that are not UTF-8 text")
    body = (
        body.replace(b"\\", b"\\\\b")
        .replace(b"\n", b"\\\\n")
        .replace(b"\r", b"\\\\r")
        .replace(b'"', b'\\"')
        .replace(SEP, b'","')
        .replace(NUL, b"\\\\N")
        .replace(EOL, b'"\n"')
    )
    return (b'"' + body + b'"\n').decode("utf-8")


def _raw_rows(conn: Any, result: Any, chunk_bytes: int) -> Iterator[list[bytes]]:
    """Batches of row payloads of the unbuffered one-column result pending on `conn`.

    At the end `result` (pymysql's) is closed the way pymysql closes it, with the
    EOF packet's warning count.
    """
    import pymysql

    rfile, seq = conn._rfile, conn._next_seq_id
    buf, pos, taken = b"", 0, 0
    rows: list[bytes] = []
    append = rows.append
    pending: list[bytes] = []  # pieces of a row longer than one packet
    while True:
        end = len(buf)
        while pos + 4 <= end:
            header = _HEADER(buf, pos)[0]
            length = header & _MAX_PACKET
            start = pos + 4
            stop = start + length
            if stop > end:
                break
            if header >> 24 != seq:
                raise pymysql.err.InternalError(
                    f"packet sequence number wrong: got {header >> 24}, expected {seq}"
                )
            seq = (seq + 1) & 0xFF
            pos = stop
            if length == _MAX_PACKET or pending:
                pending.append(buf[start:stop])
                if length == _MAX_PACKET:
                    continue
                payload = b"".join(pending)
                pending.clear()
                first = payload[0]
                skip = {0xFC: 3, 0xFD: 4, 0xFE: 9}.get(first, 1)
                append(payload[skip:])
                continue
            first = buf[start]
            if first < 0xFB:
                append(buf[start + 1 : stop])
            elif first == 0xFC or first == 0xFD:
                append(buf[start + first - 0xF9 : stop])
            elif first == 0xFE and length < 9:  # EOF: end of rows
                conn._next_seq_id = seq
                result.warning_count = buf[start + 1] | buf[start + 2] << 8 if length >= 3 else 0
                result.unbuffered_active = False
                result.connection = None
                if rows:
                    yield rows
                return
            elif first == 0xFF:
                conn._next_seq_id = seq
                pymysql.err.raise_mysql_exception(buf[start:stop])
            elif first == 0xFB:
                raise _TooLarge()
            else:
                append(buf[start + 9 : stop])
        if taken >= chunk_bytes and rows:
            yield rows
            rows = []
            append = rows.append
            taken = 0
        missing = stop - end if pos + 4 <= end else 0  # the rest of a long packet: one read, one copy
        more = rfile.read(missing) if missing > 1 << 18 else rfile.read1(1 << 18)
        if not more:
            raise pymysql.err.OperationalError(2013, "Lost connection to MySQL server during query")
        taken += len(more)
        buf = buf[pos:] + more
        pos = 0


class _TooLarge(Exception):
    """CONCAT_WS gave NULL: the row is longer than the server's max_allowed_packet."""


class MySQLSource(SQLSource):
    """MySQL or MariaDB through pymysql (pure Python, so the work is pushed to the server)."""

    type_name = "mysql"
    settings_keys: ClassVar[dict[str, type]] = SERVER_KEYS
    quote_char = "`"
    server_name = "MySQL"
    clock_sql = "SELECT UTC_TIMESTAMP(6)"
    default_port = 3306

    def __init__(self, settings: Any) -> None:
        super().__init__(settings)
        self._primary: dict[str, list[str]] = {}

    def _connect(self) -> Any:
        import pymysql

        if not self.option("database"):
            raise SourceError(f"datasource {self.name!r}: 'database' is not set — add it (or mysql_database)")
        return pymysql.connect(
            host=self.option("host", "localhost"),
            port=int(self.option("port", 3306)),
            user=self.option("username"),
            # pymysql encodes a str password as Latin-1 (a traceback for anything else);
            # servers compare the bytes the client sends, which is UTF-8 for utf8mb4 clients
            password=str(self.option("password", "")).encode("utf-8"),
            database=self.option("database"),
            charset="utf8mb4",
            autocommit=True,
            connect_timeout=CONNECT_TIMEOUT,
            # TIMESTAMP columns read in UTC; a reader that stops reading (a stopped or hung
            # process) is dropped after read_timeout seconds, releasing its metadata lock
            init_command=(
                f"SET time_zone = '+00:00', net_write_timeout = {int(self.option('read_timeout', READ_TIMEOUT))}"
            ),
        )

    def table_ref(self, table: str) -> str:
        return self.quote(table)

    def _rows(self, sql: str, params: Sequence[Any]) -> list[tuple[Any, ...]]:
        with self.conn.cursor() as cur:
            cur.execute(sql, tuple(params))
            return fetch_rows(cur)

    def check(self) -> str:
        (version,) = self._rows("SELECT VERSION()", [])[0]
        kind = "MariaDB" if "mariadb" in version.lower() else "MySQL"
        return f"{kind} {version.split('-')[0]} at {self.address}/{self.option('database')}"

    def list_tables(self) -> dict[str, TableKind]:
        with self.errors():  # MariaDB lists its sequences here too: nothing to dump
            rows = self._rows(
                "SELECT TABLE_NAME, TABLE_TYPE FROM information_schema.TABLES"
                " WHERE TABLE_SCHEMA = %s AND TABLE_TYPE <> 'SEQUENCE' ORDER BY TABLE_NAME",
                [self.option("database")],
            )
        return {_text(name): "view" if "VIEW" in _text(kind) else "table" for name, kind in rows}

    def _introspect(self, table: str) -> list[Column]:
        rows = self._rows(
            "SELECT COLUMN_NAME, DATA_TYPE, IS_NULLABLE, CHARACTER_SET_NAME, NUMERIC_PRECISION, NUMERIC_SCALE,"
            " DATETIME_PRECISION, COLUMN_TYPE FROM information_schema.COLUMNS"
            " WHERE TABLE_SCHEMA = %s AND TABLE_NAME = %s ORDER BY ORDINAL_POSITION",
            [self.option("database"), table],
        )
        cols = []
        for name, data_type, nullable, charset, precision, scale, dt_precision, column_type in rows:
            t = _text(data_type).lower()
            if t in ("decimal", "numeric") and precision is not None:
                t = f"{t}({precision},{scale or 0})"
            elif t in _INTEGERS and "unsigned" in _text(column_type).lower():
                t += " unsigned"  # bigint unsigned goes beyond BIGINT: the typed view needs to know
            cols.append(
                Column(_text(name), t, _text(nullable) == "YES", (_text(charset or ""), dt_precision))
            )
        return cols

    def _stream(self, table: str, columns: list[Column], where: str, params: list[Any]) -> Iterator[str]:
        from pymysql.cursors import SSCursor

        sql = f"SELECT {line_sql(columns, self.quote)} FROM {self.table_ref(table)}{where}"
        conn = self.conn
        cur = conn.cursor(SSCursor)
        done = False
        try:
            cur.execute(sql, tuple(params))
            if _fast_path_ok(conn, cur):
                batches: Iterator[list[bytes]] = _raw_rows(conn, cur._result, CHUNK_BYTES)
            else:
                batches = _fetch_batches(cur)
            for rows in batches:
                try:
                    yield to_csv(rows, len(columns))
                except (ValueError, UnicodeDecodeError):
                    raise self.fail(
                        table,
                        "a text column holds bytes that are not valid UTF-8; "
                        "fix the data or the column's character set",
                    ) from None
            if getattr(getattr(cur, "_result", None), "warning_count", 0):
                self._check_warnings(table)
            done = True
        except _TooLarge:
            raise self.fail(
                table,
                "a row is longer than the server's max_allowed_packet; "
                "raise max_allowed_packet on the server",
            ) from None
        finally:
            # The fast reader consumed the result itself; if we stop early the rest of it
            # is still on the wire: either way pymysql must not try to read it.
            result = getattr(cur, "_result", None)
            if result is not None:
                result.unbuffered_active = False
                result.connection = None
            if done:
                cur.close()
            else:  # abandoned or failed mid-result: the connection cannot be reused
                self.drop_connection()

    def _check_warnings(self, table: str) -> None:
        """A string function that outgrows max_allowed_packet gives NULL with a mere warning."""
        for _level, code, message in self._rows("SHOW WARNINGS", []):
            if code == 1301:
                raise self.fail(
                    table,
                    f"a value is too long for the server ({message}); raise max_allowed_packet on the server",
                )

    def drop_connection(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            with contextlib.suppress(Exception):  # already broken
                conn._force_close()

    # Character columns compare under their collation, which folds case and accents and
    # (PAD SPACE) trailing spaces: 'ABC', 'abc ' and 'ábc' would be one partition. Their
    # partition values are grouped and matched on the UTF-8 bytes instead; the plain
    # `=` stays in the condition so an index on the column is still used.
    def _exact(self, column: Column) -> str:
        if not column.detail[0]:  # no character set: not a character column
            return super()._exact(column)
        return f"CAST(CONVERT({self.quote(column.name)} USING utf8mb4) AS BINARY)"

    def _bucket(self, column: Column, granularity: str) -> str:
        q = self.quote(column.name)
        if granularity == "month":  # no DATE_FORMAT: its % would need doubling for the driver
            return f"DATE({q}) - INTERVAL (DAYOFMONTH({q}) - 1) DAY"
        return f"DATE({q})"

    def _exact_bounds(self, column: Column) -> tuple[str, str] | None:
        if not column.detail[0]:
            return None
        utf8 = column.detail[0].startswith("utf8")
        exact = f"BINARY {self.quote(column.name)}" if utf8 else self._exact(column)
        return f"MIN({exact})", f"MAX({exact})"

    def _from_exact(self, column: Column, value: Any) -> Any:
        return value.decode("utf-8") if column.detail[0] and isinstance(value, (bytes, bytearray)) else value

    def _equals(self, column: Column, value: Any) -> tuple[str, list[Any]]:
        sql, params = super()._equals(column, value)
        if not column.detail[0] or not isinstance(value, str):
            return sql, params
        return f"{sql} AND {self._exact(column)} = %s", [*params, value.encode("utf-8")]

    def _scan_stats(self, table: str, fields: list[str]) -> ScanStats | None:
        db = self.option("database")
        found = self._rows(
            "SELECT TABLE_ROWS FROM information_schema.TABLES WHERE TABLE_SCHEMA = %s AND TABLE_NAME = %s",
            [db, table],
        )
        if not found:
            return None
        indexes: dict[str, list[str]] = {}
        for index, column in self._rows(
            "SELECT INDEX_NAME, COLUMN_NAME FROM information_schema.STATISTICS"
            " WHERE TABLE_SCHEMA = %s AND TABLE_NAME = %s ORDER BY INDEX_NAME, SEQ_IN_INDEX",
            [db, table],
        ):
            indexes.setdefault(_text(index), []).append(_text(column) if column is not None else "")
        self._primary[table] = indexes.get("PRIMARY", [])
        leading = [set(cols[: len(fields)]) for cols in indexes.values()]
        return ScanStats(int(found[0][0] or 0), set(fields) in leading, lookup_per_row=True)

    # A per-partition query returns a partition's rows in primary key order (InnoDB's
    # secondary index entries end with it, and a full scan follows it): the ordered scan
    # breaks ties on it to give the same bytes.
    def _scan_order(self, table: str, keys: list[Column]) -> list[str]:
        return [self._exact(k) for k in keys] + [self.quote(c) for c in self._primary.get(table, [])]

    # MySQL cannot share a snapshot between connections: each opens its own consistent
    # snapshot, while a short-lived extra connection holds `LOCK TABLES t READ` so no
    # write to the table can commit between them (needs the LOCK TABLES privilege;
    # without it, or after 5 s waiting for the lock, the snapshots open milliseconds
    # apart instead).
    @contextmanager
    def _frozen(self, table: str | None) -> Iterator[None]:
        if table is None:
            yield
            return
        import pymysql

        locker = None
        try:
            locker = self._connect()
            with locker.cursor() as cur:
                cur.execute("SET SESSION lock_wait_timeout = 5")
                cur.execute(f"LOCK TABLES {self.table_ref(table)} READ")
        except pymysql.err.Error as exc:
            log.debug("snapshots of %s open without a table lock: %s", table, exc)
        try:
            yield
        finally:
            if locker is not None:
                with contextlib.suppress(Exception):
                    locker.close()  # releases the lock

    def _snapshot_begin(self) -> Any:
        self._rows("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ", [])
        self._rows("START TRANSACTION WITH CONSISTENT SNAPSHOT, READ ONLY", [])

    def _snapshot_join(self, token: Any) -> None:
        self._snapshot_begin()

    def _snapshot_end(self) -> None:
        if self._conn is not None:
            try:
                self._rows("COMMIT", [])
            except Exception:
                self.drop_connection()

    def _is_transient(self, exc: Exception) -> bool:
        code = exc.args[0] if exc.args and isinstance(exc.args[0], int) else 0
        return code in _TRANSIENT

    def _translate(self, exc: Exception, table: str | None) -> SourceError | None:
        import pymysql

        if not isinstance(exc, pymysql.err.Error):
            return None
        code = exc.args[0] if exc.args and isinstance(exc.args[0], int) else 0
        msg = str(exc.args[1] if len(exc.args) > 1 else exc).splitlines()[0]
        at = self.address
        user, db = self.option("username", ""), self.option("database", "")
        if code == 1045:
            return self.fail(None, f"access denied for user {user!r} at {at} — check username/password")
        if code == 1044:
            return self.fail(
                None, f"user {user!r} may not use database {db!r} at {at} — grant access or fix 'database'"
            )
        if code == 1049:
            return self.fail(None, f"database {db!r} does not exist at {at} — fix 'database'")
        if code in (2002, 2003, 2005, 2006, 2013):
            reason = msg[msg.rfind("(") + 1 : msg.rfind(")")] if "(" in msg else msg
            return self.fail(
                None,
                f"cannot reach the MySQL server at {at} ({reason}) "
                "— check host/port and that the server is running",
            )
        if code == 1146:
            return SourceError(
                f"table {table!r} not found in datasource {self.name!r} ({self.where_text}) "
                "— run set-tables or fix the name"
            )
        if code in (1142, 1143):
            return self.fail(table, f"user {user!r} may not read this table — grant SELECT ({msg})")
        return self.fail(table, f"MySQL error {code}: {msg}")


#: Errors worth retrying: lost, refused or killed connections (2002, 2003, 2006, 2013,
#: MariaDB 1927, MySQL 4031), too many connections (1040), server shutdown (1053), lock
#: wait timeout (1205), deadlock (1213), query interrupted by KILL QUERY (1317).
_TRANSIENT = frozenset({1040, 1053, 1205, 1213, 1317, 1927, 2002, 2003, 2006, 2013, 4031})


def _text(value: Any) -> str:
    return value.decode("utf-8") if isinstance(value, (bytes, bytearray)) else str(value)


def _fast_path_ok(conn: Any, cur: Any) -> bool:
    """pymysql internals the fast reader needs are where it expects them."""
    from pymysql.constants import CLIENT

    result = getattr(cur, "_result", None)
    return (
        getattr(result, "unbuffered_active", False) is True
        and getattr(result, "field_count", 0) == 1
        and hasattr(conn, "_rfile")
        and isinstance(getattr(conn, "_next_seq_id", None), int)
        and not getattr(conn, "client_flag", 0) & CLIENT.DEPRECATE_EOF
        and hasattr(getattr(conn, "_rfile", None), "read1")
    )


def _fetch_batches(cur: Any) -> Iterator[list[bytes]]:
    while batch := cur.fetchmany(2000):
        rows = [r[0] for r in batch]
        if any(r is None for r in rows):
            raise _TooLarge()
        yield rows
