"""The embedded engine: a DuckDB catalog file inside the lake directory.

Raw tables are views over the partition files read with the semantics Athena's
OpenCSVSerde gives them (all strings, backslash escape, header skipped, empty
field = ''), partition values taken from the Hive keys. Every statement arrives
in Athena dialect and goes through the Trino-semantics layer (`engines/trino`), so
a view tested here gives the answers Athena gives for the same view.
"""

from __future__ import annotations

import contextlib
import glob
import logging
import os
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from panorama_kpi.engines import trino
from panorama_kpi.engines.base import Echo, Engine, Partition, check_partitions
from panorama_kpi.errors import EngineError
from panorama_kpi.lake.layout import META_PREFIX, VALUES_FILE
from panorama_kpi.views import RawTable

CATALOG_FILE = f"{META_PREFIX}/catalog.duckdb"
log = logging.getLogger(__name__)

# OpenCSVSerde reading: quote ", escape \, header skipped, no NULL at this level
# (nullstr is a line break, which a parsed field can never contain). Escaping can
# triple a value's size, so lines may be far longer than DuckDB's 2 MB default. Files
# written before columns were added at the end read them as NULL, as Athena does.
# The buffer is sized explicitly: its default, 16 lines of the longest, asked for 16 GiB
# when one read spans several gzip-compressed objects (and failed); it is reserved as
# lines need it, not up front.
_MAX_LINE = 1 << 30
_CSV_OPTIONS = (
    "delim=',', quote='\"', escape='\\', header=true, strict_mode=false, auto_detect=false, "
    f"nullstr=chr(10), parallel=false, max_line_size={_MAX_LINE}, buffer_size={_MAX_LINE + 1}, "
    "null_padding=true"
)


def quote_ident(name: str) -> str:
    """DuckDB quotes identifiers with double quotes."""
    return '"' + name.replace('"', '""') + '"'


def quote_literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def _with_long_values(table: RawTable, source: str, values: str) -> str:
    """The raw table's SELECT when some partition folders are keyed by digest: their full
    values come from each folder's values file instead of the folder name."""
    folder = "regexp_replace(_panorama_file, '/[^/]*$', '')"
    decoded = "replace(replace(replace(value, '\\n', chr(10)), '\\r', chr(13)), '\\b', '\\')"
    pivot = ", ".join(
        f'max(CASE WHEN "column" = {quote_literal(c)} THEN {decoded} END) AS {quote_ident(c)}'
        for c in table.partition_columns
    )
    long = (
        f"SELECT {folder} AS _folder, {pivot} FROM read_csv({quote_literal(values)}, {_CSV_OPTIONS}, "
        "columns={'column': 'VARCHAR', 'value': 'VARCHAR'}, filename='_panorama_file') GROUP BY 1"
    )
    cols = [f"d.{quote_ident(c)}" for c in table.columns] + [
        f"coalesce(v.{quote_ident(c)}, d.{quote_ident(c)}) AS {quote_ident(c)}"
        for c in table.partition_columns
    ]
    source = source[:-1] + ", filename='_panorama_file')"
    return (
        f"SELECT {', '.join(cols)} FROM (SELECT *, {folder} AS _folder FROM {source}) AS d "
        f"LEFT JOIN ({long}) AS v ON v._folder = d._folder"
    )


def _is_lock_conflict(msg: str) -> bool:
    """Another process holds the file (DuckDB: 'Could not set lock on file ... Conflicting lock')."""
    low = msg.lower()
    return "could not set lock" in low or "conflicting lock" in low


def glob_escape(text: str) -> str:
    """A name matched literally in a DuckDB file pattern (`inj*` must not read `injx`)."""
    return "".join(f"[{c}]" if c in "*?[" else c for c in text)


def to_duckdb(sql: str, schema: trino.Schema | None = None, database: str | None = None) -> str:
    """One Athena statement as the DuckDB SQL that answers as Trino does (see engines/trino)."""
    return trino.translate(sql, schema, database)


def _offline(sql: str) -> str:
    """The translation without the catalog's types (a dry run reads nothing); where those
    types decide the result (a division), the Athena statement itself."""
    try:
        return to_duckdb(sql)
    except EngineError:
        return sql


class DuckDBEngine(Engine):
    def __init__(self, lake_root: str | os.PathLike[str], database: str, echo: Echo | None = None) -> None:
        super().__init__(echo)
        self.root = Path(lake_root).resolve()
        self.database = database
        # One process cannot hold read-only and writable connections to the file at
        # once: queries share one held connection (a cursor each), writes release it.
        self._held: Any = None
        self._held_read_only = True
        self._cursors: list[Any] = []

    lock_timeout = 60.0

    @property
    def catalog_path(self) -> Path:
        return self.root / CATALOG_FILE

    def _open(self, read_only: bool = False) -> Any:
        """A connection for one operation. The catalog file admits one writing process,
        so connections are short-lived, and a lock held by another run is waited for."""
        import duckdb

        read_only = read_only and self.catalog_path.exists()
        self.catalog_path.parent.mkdir(parents=True, exist_ok=True)
        deadline = time.monotonic() + self.lock_timeout
        while True:
            try:
                con = duckdb.connect(str(self.catalog_path), read_only=read_only)
                break
            except duckdb.Error as exc:
                msg = str(exc).splitlines()[0]
                if not _is_lock_conflict(msg):
                    raise self._damaged(msg) or EngineError(
                        f"cannot open DuckDB catalog {self.catalog_path}: {msg}"
                    ) from None
                if time.monotonic() > deadline:
                    raise EngineError(
                        f"DuckDB catalog {self.catalog_path} stayed locked by another process for "
                        f"{self.lock_timeout:.0f}s; retry when it ends"
                    ) from None
                time.sleep(0.25)
        if not read_only:
            con.execute(f"CREATE SCHEMA IF NOT EXISTS {quote_ident(self.database)}")
        elif not self.allow_writes:
            # queries read the lake and nothing else: no file outside it, no extension, no
            # setting that reopens access (relative paths resolve in the lake: file_search_path)
            con.execute("SET allowed_directories = ['./', ?]", [f"{self.root}/"])
            con.execute("SET enable_external_access = false")
        return self._session(con)

    def _damaged(self, msg: str) -> EngineError | None:
        """A damaged catalog file, said so (it is rebuilt from the lake alone), or None."""
        low = msg.lower()
        if "corrupt" in low or "not a valid duckdb database" in low or "checksum" in low:
            return EngineError(
                f"the DuckDB catalog {self.catalog_path} is damaged ({msg}); delete it and rebuild it from "
                "the lake: create-datalake-tables --all && create-datalake-views --all"
            )
        return None

    def _session(self, con: Any) -> Any:
        """Session settings every connection (and cursor: they do not inherit them) needs."""
        import duckdb

        con.execute("SET file_search_path = ?", [str(self.root)])
        con.execute("SET TimeZone = 'UTC'")  # Athena's session zone
        trino.install(con)
        # A read-only catalog may lack our schema yet: queries will then say what is missing.
        with contextlib.suppress(duckdb.Error):
            con.execute(f"SET schema = {quote_literal(self.database)}")
        return con

    def _schema(self, con: Any) -> trino.Schema:
        """Column types of the catalog's tables and views, which typed translation needs."""
        schema: dict[str, dict[str, str]] = {}
        rows = con.execute(
            "SELECT table_name, column_name, data_type FROM information_schema.columns "
            "WHERE table_schema = ? ORDER BY table_name, ordinal_position",
            [self.database],
        )
        for table, column, kind in rows.fetchall():  # one row per column: catalog-sized
            schema.setdefault(table, {})[column] = kind
        return schema

    def _translate(self, con: Any, sql: str) -> str:
        return to_duckdb(sql, self._schema(con), self.database)

    def _run(self, statements: Sequence[str], athena: bool = False) -> None:
        import duckdb

        if self.echo is not None:  # dry run: nothing is read, so no catalog types either
            for sql in statements:
                self.echo(_offline(sql) if athena else sql)
            return
        self.close()  # results of earlier queries must have been read by now
        con = self._open()
        try:
            for sql in statements:
                statement = self._translate(con, sql) if athena else sql
                log.debug("SQL sent to DuckDB: %s", statement)
                try:
                    con.execute(statement)
                except duckdb.Error as exc:
                    msg = str(exc).splitlines()[0]
                    raise self._damaged(msg) or EngineError(f"DuckDB: {msg}") from None
        finally:
            con.close()

    def check(self) -> str:
        import duckdb

        self._run(["SELECT 1"])
        return f"DuckDB {duckdb.__version__} catalog {self.catalog_path}"

    def _glob(self, table: RawTable) -> str:
        # Naming each partition column keeps objects of another layout (left by an
        # interrupted reload, or another site's) out of the table.
        depth = "".join(f"{glob_escape(c)}=*/" for c in table.partition_columns)
        name = table.file_pattern if table.file_glob else glob_escape(table.file_name)
        return f"{glob_escape(table.prefix)}{depth}{name}"

    def raw_table_ddl(self, table: RawTable) -> list[str]:
        name = f"{quote_ident(self.database)}.{quote_ident(table.name)}"
        names = [*table.columns, *table.partition_columns]
        select = ", ".join(quote_ident(c) for c in names)
        pattern = self._glob(table)
        if not glob.glob(str(self.root / pattern)):
            empty = ", ".join(f"CAST(NULL AS VARCHAR) AS {quote_ident(c)}" for c in names)
            return [f"CREATE OR REPLACE VIEW {name} AS SELECT {empty} WHERE false"]
        columns = ", ".join(f"{quote_literal(c)}: 'VARCHAR'" for c in table.columns)
        options = f"{_CSV_OPTIONS}, columns={{{columns}}}"
        if table.partition_columns:
            hive = ", ".join(f"{quote_literal(c)}: 'VARCHAR'" for c in table.partition_columns)
            options += f", hive_partitioning=true, hive_types={{{hive}}}, hive_types_autocast=false"
        else:
            options += ", hive_partitioning=false"
        source = f"read_csv({quote_literal(pattern)}, {options})"
        values = f"{glob_escape(table.prefix)}**/{VALUES_FILE}"
        if table.partition_columns and glob.glob(str(self.root / values), recursive=True):
            return [f"CREATE OR REPLACE VIEW {name} AS {_with_long_values(table, source, values)}"]
        return [f"CREATE OR REPLACE VIEW {name} AS SELECT {select} FROM {source}"]

    def create_raw_table(self, table: RawTable) -> str:
        self._run(self.raw_table_ddl(table))
        return "created"  # a view over the files: recreating it is the update

    def add_partitions(self, table: RawTable, partitions: Sequence[Partition]) -> None:
        # The view reads a glob, so partitions appear and vanish with their files. Rebuilding
        # it (catalog metadata only) turns the empty placeholder of a table that had no
        # files into the real view, or back.
        check_partitions(table, partitions)
        self.create_raw_table(table)

    def remove_partitions(self, table: RawTable, partitions: Sequence[Partition]) -> None:
        check_partitions(table, partitions)
        self.create_raw_table(table)

    def drop_raw_table(self, table: RawTable) -> None:
        self._run([f"DROP VIEW IF EXISTS {quote_ident(self.database)}.{quote_ident(table.name)}"])

    def create_view(self, name: str, create_view_sql: str) -> None:
        self._run([create_view_sql], athena=True)

    def explain(self, sql: str) -> str:
        return self._translate(self._cursor(read_only=True), sql)

    def drop_view(self, name: str) -> None:
        self._run([f"DROP VIEW IF EXISTS {quote_ident(self.database)}.{quote_ident(name)}"])

    def _cursor(self, read_only: bool) -> Any:
        if self._held is None or (self._held_read_only and not read_only):
            self.close()
            self._held_read_only = read_only and self.catalog_path.exists()
            self._held = self._open(read_only=read_only)
        cursor = self._session(self._held.cursor())
        self._cursors.append(cursor)
        return cursor

    def query(self, sql: str, params: Sequence[Any] = ()) -> tuple[list[str], Iterator[tuple[Any, ...]]]:
        import duckdb

        if self.echo is not None:
            self.echo(_offline(sql))
            return [], iter(())
        # Read-only first, so queries run beside a loading process; a statement
        # that writes (CREATE VIEW ...) is retried on a writable connection.
        statement = None
        for read_only in (True, False):
            cur = self._cursor(read_only)
            if statement is None:
                statement = self._translate(cur, sql)
                log.debug("SQL sent to DuckDB: %s", statement)
            try:
                cur.execute(statement, list(params) if params else None)
                break
            except duckdb.Error as exc:
                if not (read_only and self.allow_writes and "read-only" in str(exc).lower()):
                    msg = str(exc).splitlines()[0]
                    raise self._damaged(msg) or EngineError(
                        f"query failed: {trino.error_message(exc)}"
                    ) from None
        columns = [d[0] for d in (cur.description or [])]

        def rows() -> Iterator[tuple[Any, ...]]:
            while True:
                try:
                    batch = cur.fetchmany(1000)
                except duckdb.Error as exc:
                    raise EngineError(f"query failed: {trino.error_message(exc)}") from None
                if not batch:
                    return
                yield from batch

        return columns, rows()

    def close(self) -> None:
        for con in [*self._cursors, self._held]:
            if con is not None:
                con.close()
        self._cursors.clear()
        self._held = None
