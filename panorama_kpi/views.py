"""Catalog objects derived from the settings: raw tables, typed views, KPI views.

All SQL here is Athena (Trino) dialect; the DuckDB engine transpiles it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import sqlglot
from sqlglot import exp

from panorama_kpi.engines.athena_sql import athena_type, quote_ident, quote_literal
from panorama_kpi.errors import SettingsError
from panorama_kpi.lake.csv import decode_sql
from panorama_kpi.lake.layout import NULL_PARTITION, SUFFIXES, file_name, table_prefix
from panorama_kpi.settings import Settings, TableSettings

if TYPE_CHECKING:
    from panorama_kpi.kpi.template import TableNamer


@dataclass(frozen=True)
class RawTable:
    """A raw table as the catalog sees it: every column a string."""

    name: str  # catalog name, e.g. openedx_raw_auth_user
    table: str  # source table name: folder and file name in the lake
    prefix: str  # key prefix of the table's objects, with trailing slash
    columns: tuple[str, ...]  # columns inside the files
    partition_columns: tuple[str, ...]  # base partitions, then field partitions
    file_glob: str | None = None  # name pattern of the objects when not one `<table>.csv` each
    compression: str = "none"  # datalake.compression: the objects' suffix and encoding

    @property
    def file_name(self) -> str:
        return file_name(self.table, self.compression)

    @property
    def file_names(self) -> tuple[str, ...]:
        """Every name an object of this table may have (compression may have changed)."""
        return tuple(file_name(self.table, c) for c in SUFFIXES)

    @property
    def file_pattern(self) -> str:
        return self.file_glob or self.file_name


def raw_table(settings: Settings, table: TableSettings) -> RawTable:
    lake = settings.datalake
    return RawTable(
        name=settings.raw_table_name(table),
        table=table.folder,
        prefix=table_prefix(lake.base_prefix, table.folder),
        columns=tuple(f.name for f in table.file_fields),
        partition_columns=tuple([p.name for p in lake.base_partitions] + table.partition_fields),
        compression=lake.compression,
    )


def typed_value_sql(value: str, declared: str, source_type: Callable[[str], str | None] | None = None) -> str:
    """`value` (decoded text) as the typed view's column of a `declared` source type.

    `source_type` is the source's own type map (`Source.view_type`); where it
    answers None the shared mapping (`athena_type`) applies.
    """
    cast = (source_type and source_type(declared)) or athena_type(declared)
    if cast is None or cast == "VARCHAR":
        return value
    if cast == "JSON" or cast.startswith("ARRAY("):
        # the lake holds JSON text; text that is not JSON (or not an array) gives NULL
        parsed = f"try(json_parse({value}))"
        return parsed if cast == "JSON" else f"TRY_CAST({parsed} AS {cast})"
    return f"TRY_CAST({value} AS {cast})"


def typed_view_sql(
    settings: Settings, table: TableSettings, source_type: Callable[[str], str | None] | None = None
) -> str:
    """CREATE OR REPLACE VIEW for a table: decode the lake encoding, cast each declared type
    (`source_type`: the table's source's own type map, see `typed_value_sql`)."""
    raw = raw_table(settings, table)
    columns = []
    for f in table.fields:
        if f.name in table.partition_fields:
            value = f"NULLIF({quote_ident(f.name)}, {quote_literal(NULL_PARTITION)})"
        else:
            value = decode_sql(quote_ident(f.name))
        columns.append(f"{typed_value_sql(value, f.type, source_type)} AS {quote_ident(f.name)}")
    for name in table.derived:  # dates of the timestamp they come from
        value = f"NULLIF({quote_ident(name)}, {quote_literal(NULL_PARTITION)})"
        columns.append(f"{typed_value_sql(value, 'date')} AS {quote_ident(name)}")
    for p in settings.datalake.base_partitions:
        columns.append(f"{typed_value_sql(quote_ident(p.name), p.type)} AS {quote_ident(p.name)}")
    if not columns:
        raise SettingsError(f"table {table.name!r} has no fields; run set-tables-fields first")
    select = ",\n  ".join(columns)
    source = f"{quote_ident(settings.datalake.datalake_database)}.{quote_ident(raw.name)}"
    return f"CREATE OR REPLACE VIEW {quote_ident(settings.view_name(table))} AS\nSELECT\n  {select}\nFROM {source}"


@dataclass(frozen=True)
class KpiView:
    name: str
    sql: str  # the SELECT, Athena dialect, placeholders substituted
    path: Path
    depends_on: frozenset[str]


def _default_tables(name: str) -> str:
    return f"table_{name}"


def parse_error_line(exc: sqlglot.errors.ParseError) -> str:
    """`line N: message` from sqlglot's first error (its message is several lines long)."""
    first = exc.errors[0] if exc.errors else {}
    message = str(first.get("description") or str(exc).splitlines()[0])
    return f"line {first['line']}: {message}" if first.get("line") else message


def read_kpi_views(paths: list[Path], tables: TableNamer | None = None) -> tuple[list[KpiView], list[str]]:
    """Read `*.sql` files (one SELECT each, view name = file stem) in dependency order.

    Returns the views that can be created and one line per file that cannot (a
    syntax error, an unknown placeholder, a cycle), so the others still are.
    `tables` names the typed view of a `{{ table('x') }}` placeholder.
    """
    from panorama_kpi.kpi.template import render

    views: dict[str, KpiView] = {}
    problems: list[str] = []
    for base in paths:
        files = sorted(base.glob("*.sql")) if base.is_dir() else [base]
        if not files or not all(f.is_file() for f in files):
            problems.append(f"kpi_views: {str(base)!r} has no .sql files")
            continue
        for f in files:
            try:
                with open(f, encoding="utf-8", newline="") as handle:  # a CR inside a literal stays
                    raw = handle.read()
                text = render(raw, tables or _default_tables, str(f)).sql.rstrip().rstrip(";")
                tree = sqlglot.parse_one(text, read="athena")
            except SettingsError as exc:
                problems.append(f"view {f.stem}: {exc}")
                continue
            except (OSError, UnicodeDecodeError) as exc:
                problems.append(f"view {f.stem}: cannot read {f}: {exc}")
                continue
            except sqlglot.errors.ParseError as exc:
                problems.append(f"view {f.stem}: {f}: not valid Athena SQL: {parse_error_line(exc)}")
                continue
            if not isinstance(tree, exp.Query):
                problems.append(f"view {f.stem}: {f}: expected one SELECT, got {tree.key.upper()}")
                continue
            ctes = {c.alias_or_name for c in tree.find_all(exp.CTE)}
            refs = frozenset(t.name for t in tree.find_all(exp.Table) if t.name not in ctes)
            views[f.stem] = KpiView(f.stem, text.strip(), f, refs)
    ordered: list[KpiView] = []
    state: dict[str, int] = {}

    def visit(name: str, chain: tuple[str, ...]) -> bool:
        if state.get(name) == 2:
            return True
        if state.get(name) in (1, 3):
            if state[name] == 1:
                cycle = chain[chain.index(name) :] + (name,)
                problems.append(
                    f"views form a cycle: {' -> '.join(cycle)} ({', '.join(str(views[v].path) for v in cycle[:-1])})"
                )
                for member in cycle:
                    state[member] = 3
            return False
        state[name] = 1
        ok = True
        for dep in sorted(views[name].depends_on):
            if dep in views and dep != name:
                ok = visit(dep, (*chain, name)) and ok
        if state[name] == 3 or not ok:
            if state[name] != 3:
                problems.append(f"view {name}: not created: it reads a view of a cycle ({views[name].path})")
            state[name] = 3
            return False
        state[name] = 2
        ordered.append(views[name])
        return True

    for name in sorted(views):
        visit(name, ())
    return ordered, problems


def load_kpi_views(paths: list[Path], tables: TableNamer | None = None) -> list[KpiView]:
    """Like `read_kpi_views`, but the first problem is an error."""
    views, problems = read_kpi_views(paths, tables)
    if problems:
        raise SettingsError(problems[0])
    return views
