"""MySQL / MariaDB source (pymysql).

How rows are read and rendered is mysql_wire.py's.

`describe` reports information_schema's DATA_TYPE (as panorama-elt did), with the
precision of decimals (`decimal(10,2)`) and ` unsigned` on unsigned integers.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any, ClassVar

from panorama_kpi.errors import SourceError
from panorama_kpi.sources.base import ScanStats, TableKind
from panorama_kpi.sources.mysql_wire import (
    INTEGERS,
    TooLarge,
    fast_path_ok,
    fetch_batches,
    line_sql,
    raw_rows,
    to_csv,
)
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
            elif t in INTEGERS and "unsigned" in _text(column_type).lower():
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
            if fast_path_ok(conn, cur):
                batches: Iterator[list[bytes]] = raw_rows(conn, cur._result, CHUNK_BYTES)
            else:
                batches = fetch_batches(cur)
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
        except TooLarge:
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
