"""What the SQL sources (MySQL/MariaDB, PostgreSQL, SQLite) share.

Every dialect renders rows to the lake's CSV text *on the server*, from the column
types it finds in the catalog at dump time (not the types declared in the settings),
so a pure-Python driver decodes one string per row instead of one typed value per
field: that per-field decoding is what makes pymysql and psycopg2 cursors slow.
Each dialect chooses the cheapest wire shape for its server (see its module); the
lines that leave `dump` are always exactly `panorama_kpi.lake.csv.encode_row` of the
values' canonical text.

Values are never formatted into SQL: filters are bound parameters, identifiers go
through `quote`, and the few constants the expressions need are written so that no
server setting (sql_mode, standard_conforming_strings) changes their meaning.
"""

from __future__ import annotations

import contextlib
import datetime as dt
from abc import abstractmethod
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, ClassVar

from panorama_kpi.errors import PanoramaError, SourceError
from panorama_kpi.settings import DerivedPartition, Field, TableSettings
from panorama_kpi.sources.base import PartitionFilter, ScanStats, Source

#: Seconds to wait for a server to answer a connection attempt.
CONNECT_TIMEOUT = 10

#: About this many bytes of CSV text per chunk handed to the pipeline.
CHUNK_BYTES = 1 << 20


def as_date(value: Any) -> dt.date | None:
    """A bucket value as the server returns it (date, datetime or ISO text) as a date."""
    if value is None or isinstance(value, dt.date) and not isinstance(value, dt.datetime):
        return value
    if isinstance(value, dt.datetime):
        return value.date()
    return dt.date.fromisoformat(str(value)[:10])


def bucket_range(value: Any, granularity: str) -> tuple[dt.datetime, dt.datetime]:
    """[start, end) of the timestamps whose bucket is `value` (a date or its text)."""
    day = as_date(value)
    assert day is not None
    start = dt.datetime(day.year, day.month, 1 if granularity == "month" else day.day)
    if granularity == "month":
        end = dt.datetime(day.year + day.month // 12, day.month % 12 + 1, 1)
    else:
        end = start + dt.timedelta(days=1)
    return start, end


def fetch_rows(cur: Any) -> list[tuple[Any, ...]]:
    """All rows of a small result (catalog lookups, distinct partition values), in batches."""
    out: list[tuple[Any, ...]] = []
    while batch := cur.fetchmany(1000):
        out.extend(batch)
    return out


#: Connection keys every database-server source type accepts.
SERVER_KEYS: dict[str, type] = {
    "host": str,
    "port": int,
    "username": str,
    "password": str,
    "database": str,
    # seconds the server waits on a reader that stopped reading before it drops the query
    # (and the locks and snapshot the query holds)
    "read_timeout": int,
}

#: Default of `read_timeout`.
READ_TIMEOUT = 60


@dataclass(frozen=True)
class Column:
    """A column as the source's catalog describes it."""

    name: str
    type: str  # what describe() reports, e.g. 'varchar', 'decimal(10,2)', 'timestamptz'
    nullable: bool = True
    detail: Any = None  # dialect facts the rendering needs (charset, precision, base type...)


class SQLSource(Source):
    """A database reached through a DB-API driver; subclasses supply the dialect."""

    #: Identifier quote character; doubled inside names.
    quote_char: ClassVar[str] = '"'
    #: Driver parameter marker. With "%s" every literal % in a statement is doubled.
    placeholder: ClassVar[str] = "%s"
    #: Human name of the server kind, for messages.
    server_name: ClassVar[str] = "SQL"
    #: A query answering the server's current UTC time (naive), to microseconds.
    clock_sql: ClassVar[str] = ""

    def __init__(self, settings: Any) -> None:
        super().__init__(settings)
        self._conn: Any = None
        self._catalog: dict[str, list[Column]] = {}
        self._indexed: dict[str, bool] = {}

    # ------------------------------------------------------------ dialect hooks
    @abstractmethod
    def _connect(self) -> Any:
        """Open a driver connection (errors are translated by the caller)."""

    @abstractmethod
    def _introspect(self, table: str) -> list[Column]:
        """Columns of `table` in order; empty when the table does not exist."""

    @abstractmethod
    def _rows(self, sql: str, params: Sequence[Any]) -> list[tuple[Any, ...]]:
        """Run a statement with a small result (catalog, distinct values) and return its rows."""

    @abstractmethod
    def _stream(self, table: str, columns: list[Column], where: str, params: list[Any]) -> Iterator[str]:
        """CSV text chunks (whole lines) of `SELECT columns FROM table WHERE where`."""

    @abstractmethod
    def _translate(self, exc: Exception, table: str | None) -> SourceError | None:
        """One-line SourceError for a driver error; None for anything else."""

    def _is_transient(self, exc: Exception) -> bool:
        """Whether a driver error is worth retrying as it is (dialects list their codes)."""
        return False

    @abstractmethod
    def table_ref(self, table: str) -> str:
        """The table as it is written in a FROM clause."""

    def _bind(self, value: Any, column: Column) -> Any:
        """Parameter for a value compared with `column` (dialects adjust time zones)."""
        return value

    # Partition values must be told apart byte for byte: a collation that folds case,
    # accents or trailing spaces would merge distinct values into one partition.
    def _exact(self, column: Column) -> str:
        """Expression grouping `column`'s values exactly (DISTINCT, GROUP BY)."""
        return self.quote(column.name)

    def _from_exact(self, column: Column, value: Any) -> Any:
        """The value `_exact` returned, as the partition's value."""
        return value

    def _equals(self, column: Column, value: Any) -> tuple[str, list[Any]]:
        """Condition matching exactly `value` (not NULL), index-friendly, with its parameters."""
        return f"{self.quote(column.name)} = {self.placeholder}", [self._bind(value, column)]

    # ------------------------------------------------------------ shared parts
    #: Port the driver uses when none is configured (for messages).
    default_port: ClassVar[int | None] = None

    @property
    def address(self) -> str:
        """host:port as the driver will reach it, for messages."""
        port = self.option("port", self.default_port)
        return f"{self.option('host', 'localhost')}{f':{port}' if port else ''}"

    @property
    def where_text(self) -> str:
        """Where the tables live, for messages: 'database d at host:port'."""
        return f"database {self.option('database', '')} at {self.address}"

    def quote(self, name: str) -> str:
        q = self.quote_char
        text = q + name.replace(q, q + q) + q
        return text.replace("%", "%%") if self.placeholder == "%s" else text

    @property
    def conn(self) -> Any:
        if self._conn is None:
            with self.errors():
                self._conn = self._connect()
        return self._conn

    def close(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            with contextlib.suppress(Exception):  # closing a broken connection may fail
                conn.close()

    def drop_connection(self) -> None:
        """Forget a connection left mid-result (an abandoned stream); the next call reconnects."""
        self.close()

    @contextmanager
    def errors(self, table: str | None = None) -> Iterator[None]:
        """Turn driver errors into one-line SourceErrors (PanoramaErrors pass through)."""
        try:
            yield
        except PanoramaError:
            raise
        except Exception as exc:
            err = self._translate(exc, table)
            if err is None:
                raise
            err.transient = self._is_transient(exc)
            raise err from None

    def fail(self, table: str | None, text: str) -> SourceError:
        where = f", table {table!r}" if table else ""
        return SourceError(f"datasource {self.name!r}{where}: {text}")

    def columns(self, table: str) -> list[Column]:
        if table not in self._catalog:
            with self.errors(table):
                cols = self._introspect(table)
            if not cols:
                raise SourceError(
                    f"table {table!r} not found in datasource {self.name!r} ({self.where_text}) "
                    "— run set-tables or fix the name"
                )
            self._catalog[table] = cols
        return self._catalog[table]

    def pick(self, table: str, names: Sequence[str], role: str = "field") -> list[Column]:
        """The named columns, in that order; a name the table lacks is an error naming it."""
        by_name = {c.name: c for c in self.columns(table)}
        for name in names:
            if name not in by_name:
                hint = {
                    "field": "run set-tables-fields or fix the table's fields",
                    "partition field": "fix partitions.partition_fields",
                    "timestamp field": "fix partitions.timestamp_field",
                }.get(role, "fix the settings")
                raise self.fail(table, f"{role} {name!r} is not a column of the table in the source — {hint}")
        return [by_name[n] for n in names]

    def describe(self, table: str) -> list[Field]:
        return [Field(c.name, c.type) for c in self.columns(table)]

    def where_clause(
        self, table: str, where: PartitionFilter | None, derived: Mapping[str, DerivedPartition] | None = None
    ) -> tuple[str, list[Any]]:
        if not where:
            return "", []
        derived = derived or {}
        parts, params = [], []
        for name, value in where.items():
            bucket = derived.get(name)
            col = self.pick(table, [bucket.source if bucket else name], "partition field")[0]
            if value is None:
                parts.append(f"{self.quote(col.name)} IS NULL")
                continue
            if bucket:  # a range on the timestamp itself, so an index on it is used
                start, end = bucket_range(value, bucket.granularity)
                sql, values = (
                    f"{self.quote(col.name)} >= {self.placeholder} AND {self.quote(col.name)} < {self.placeholder}",
                    [self._bind(start, col), self._bind(end, col)],
                )
            else:
                sql, values = self._equals(col, value)
            parts.append(sql)
            params += values
        return " WHERE " + " AND ".join(parts), params

    def _partition_exprs(self, table: TableSettings) -> list[tuple[Column, str | None, str]]:
        """(column, granularity or None, expression grouping its partition values exactly)."""
        out: list[tuple[Column, str | None, str]] = []
        for name in table.partition_fields:
            bucket = table.derived.get(name)
            if bucket:
                col = self.pick(table.name, [bucket.source], "timestamp field")[0]
                out.append((col, bucket.granularity, self._bucket(col, bucket.granularity)))
            else:
                col = self.pick(table.name, [name], "partition field")[0]
                out.append((col, None, self._exact(col)))
        return out

    def _bucket(self, column: Column, granularity: str) -> str:
        """Expression of the date (day) or first day of the month (month) of a timestamp."""
        raise self.fail(None, f"partitions derived from a timestamp are not supported by {self.server_name}")

    def _exact_bounds(self, column: Column) -> tuple[str, str] | None:
        """MIN and MAX expressions telling whether a GROUP BY group of `column` holds one exact
        value, for dialects whose grouping merges distinct values (None: it never does)."""
        return None

    def _groups(self, table: TableSettings, since: dt.datetime | None) -> list[tuple[tuple[Any, ...], int]]:
        """Exact partition values (of rows with timestamp_field >= since, if given) and their
        row counts. Where an index leads with the partition fields, grouped on the plain
        columns so the index is used, and a group that a collation merged from distinct
        values (its MIN and MAX differ) is split again; without one, grouped on the exact
        values at once (comparing bytes costs the server far less than collation weights:
        9 s against 3.5 s for 1M MariaDB rows)."""
        exprs = self._partition_exprs(table)
        bounds = [None if g else self._exact_bounds(c) for c, g, _e in exprs]
        if any(bounds) and not self._partition_index(table.name, [c.name for c, g, _e in exprs if not g]):
            bounds = [None] * len(exprs)
            plain = [e for _c, _g, e in exprs]
        else:
            plain = [self._bucket(c, g) if g else self.quote(c.name) for c, g, _e in exprs]
        extra = [b for pair in bounds if pair for b in pair]
        where, params = "", []
        if since is not None and table.timestamp_field:
            ts = self.pick(table.name, [table.timestamp_field], "timestamp field")[0]
            where, params = f" WHERE {self.quote(ts.name)} >= {self.placeholder}", [self._bind(since, ts)]
        columns = ", ".join([*plain, "COUNT(*)", *extra])
        order = ", ".join(str(i + 1) for i in range(len(plain)))
        sql = (
            f"SELECT {columns} FROM {self.table_ref(table.name)}{where} "
            f"GROUP BY {', '.join(plain)} ORDER BY {order}"
        )
        with self.errors(table.name):
            rows = self._rows(sql, params)
        out: list[tuple[tuple[Any, ...], int]] = []
        for row in rows:
            values, count, rest = list(row[: len(plain)]), int(row[len(plain)]), list(row[len(plain) + 1 :])
            merged = False
            for i, pair in enumerate(bounds):
                if pair:
                    low, high = rest.pop(0), rest.pop(0)
                    merged = merged or low != high
                    values[i] = low
            if merged:
                out += self._split_group(table, exprs, plain, row[: len(plain)], where, params)
            else:
                out.append((self._partition_row(exprs, values), count))
        return out

    def _split_group(
        self,
        table: TableSettings,
        exprs: list[tuple[Column, str | None, str]],
        plain: list[str],
        group: Sequence[Any],
        where: str,
        params: list[Any],
    ) -> list[tuple[tuple[Any, ...], int]]:
        """The exact values and counts of one group that a collation merged."""
        conditions, values = ([where[len(" WHERE ") :]] if where else []), list(params)
        for (col, _g, _e), expr, value in zip(exprs, plain, group, strict=True):
            if value is None:
                conditions.append(f"{expr} IS NULL")
            else:
                conditions.append(f"{expr} = {self.placeholder}")
                values.append(self._bind(value, col))
        exact = ", ".join(e for _c, _g, e in exprs)
        sql = (
            f"SELECT {exact}, COUNT(*) FROM {self.table_ref(table.name)} "
            f"WHERE {' AND '.join(conditions)} GROUP BY {exact}"
        )
        with self.errors(table.name):
            rows = self._rows(sql, values)
        return [(self._partition_row(exprs, r[:-1]), int(r[-1])) for r in rows]

    def _partition_row(
        self, exprs: list[tuple[Column, str | None, str]], row: Sequence[Any]
    ) -> tuple[Any, ...]:
        return tuple(
            as_date(v) if granularity else self._from_exact(col, v)
            for (col, granularity, _e), v in zip(exprs, row, strict=False)
        )

    def partition_values(self, table: TableSettings, since: dt.datetime | None) -> Iterator[tuple[Any, ...]]:
        if not table.partition_fields:
            return iter([()])
        return iter([values for values, _count in self._groups(table, since)])

    def partition_counts(self, table: TableSettings) -> Iterator[tuple[tuple[Any, ...], int]] | None:
        if not table.partition_fields:
            return None
        return iter(self._groups(table, None))

    # ------------------------------------------------------------ ordered scans (split_scan.py)
    def _scan_stats(self, table: str, fields: list[str]) -> ScanStats | None:
        """What the catalog says about reading `table` by `fields`; None if unknown."""
        return None

    def _scan_order(self, table: str, keys: list[Column]) -> list[str]:
        """ORDER BY terms of an ordered scan: the keys' exact values as `partition_values`
        orders them, then whatever makes rows of one partition come in the order a
        per-partition query gives them (so both plans write the same bytes)."""
        return [self._exact(k) for k in keys]

    def _partition_index(self, table: str, fields: list[str]) -> bool:
        """Whether an index leads with these columns (unknown: assume one)."""
        if table not in self._indexed:
            with self.errors(table):
                stats = self._scan_stats(table, fields)
            self._indexed[table] = stats is None or stats.indexed
        return self._indexed[table]

    def scan_stats(self, table: TableSettings) -> ScanStats | None:
        if not table.partition_fields or table.derived:  # derived partitions: read by range, one by one
            return None
        fields = self.pick(table.name, table.partition_fields, "partition field")
        with self.errors(table.name):
            return self._scan_stats(table.name, [f.name for f in fields])

    def dump_keyed(self, table: TableSettings, columns: Sequence[str], ordered: bool) -> Iterator[str]:
        keys = self.pick(table.name, table.partition_fields, "partition field")
        cols = self.pick(table.name, columns)
        order = " ORDER BY " + ", ".join(self._scan_order(table.name, keys)) if ordered else ""
        return self._guarded(table.name, [*keys, *cols], order, [])

    @contextmanager
    def consistent_read(self, others: Sequence[Source] = (), table: str | None = None) -> Iterator[None]:
        peers = [o for o in others if isinstance(o, SQLSource) and o is not self]
        try:
            with self.errors(), self._frozen(table if peers else None):
                token = self._snapshot_begin()
                for peer in peers:
                    peer._snapshot_join(token)
            yield
        finally:
            for src in (self, *peers):
                src._snapshot_end()

    @contextmanager
    def _frozen(self, table: str | None) -> Iterator[None]:
        """Hold writes to `table` back while the connections open their snapshots (dialects
        that cannot share one snapshot make theirs identical this way)."""
        yield

    # Snapshot hooks: by default every statement reads the latest data.
    def _snapshot_begin(self) -> Any:
        """Open a transaction with a snapshot other connections can join; returns its token."""
        return None

    def _snapshot_join(self, token: Any) -> None:
        """Open a transaction on the snapshot `token` (or one as close to it as the server allows)."""

    def _snapshot_end(self) -> None:
        """Close the snapshot's transaction (never raises)."""

    def clock(self) -> dt.datetime:
        if not self.clock_sql:
            return super().clock()
        with self.errors():
            (value,) = self._rows(self.clock_sql, [])[0]
        if isinstance(value, str):
            value = dt.datetime.fromisoformat(value)
        return value.replace(tzinfo=None)

    def dump(
        self, table: TableSettings, columns: Sequence[str], where: PartitionFilter | None = None
    ) -> Iterator[str]:
        cols = self.pick(table.name, columns)
        where_sql, params = self.where_clause(table.name, where, table.derived)
        return self._guarded(table.name, cols, where_sql, params)

    def _guarded(self, table: str, cols: list[Column], where: str, params: list[Any]) -> Iterator[str]:
        with self.errors(table):
            if cols:
                yield from self._stream(table, cols, where, params)
            else:  # no columns in the files: one empty line per row
                (count,) = self._rows(f"SELECT COUNT(*) FROM {self.table_ref(table)}{where}", params)[0]
                for start in range(0, count, 100_000):
                    yield "\n" * min(100_000, count - start)
