"""Catalog objects derived from the settings: raw tables, typed views, KPI views.

All SQL here is Athena (Trino) dialect; the DuckDB engine transpiles it.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import sqlglot
from sqlglot import exp

from panorama_kpi.engines.athena_sql import athena_type, quote_ident, quote_literal
from panorama_kpi.errors import SettingsError
from panorama_kpi.lake.csv import decode_sql
from panorama_kpi.lake.layout import NULL_PARTITION, SUFFIXES, file_name, table_prefix
from panorama_kpi.settings import Settings, TableSettings


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


def typed_value_sql(value: str, declared: str) -> str:
    """`value` (decoded text) as the typed view's column of a `declared` source type."""
    cast = athena_type(declared)
    if cast is None:
        return value
    if cast.startswith("ARRAY("):  # a JSON array; text that is not one (an old lake) gives NULL
        return f"TRY_CAST(try(json_parse({value})) AS {cast})"
    return f"TRY_CAST({value} AS {cast})"


def typed_view_sql(settings: Settings, table: TableSettings) -> str:
    """CREATE OR REPLACE VIEW for a table: decode the lake encoding, cast each declared type."""
    raw = raw_table(settings, table)
    columns = []
    for f in table.fields:
        if f.name in table.partition_fields:
            value = f"NULLIF({quote_ident(f.name)}, {quote_literal(NULL_PARTITION)})"
        else:
            value = decode_sql(quote_ident(f.name))
        columns.append(f"{typed_value_sql(value, f.type)} AS {quote_ident(f.name)}")
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
    sql: str  # the SELECT, Athena dialect
    path: Path
    depends_on: frozenset[str]


def load_kpi_views(paths: list[Path]) -> list[KpiView]:
    """Read `*.sql` files (one SELECT each, view name = file stem) in dependency order."""
    views: dict[str, KpiView] = {}
    for base in paths:
        files = sorted(base.glob("*.sql")) if base.is_dir() else [base]
        if not files or not all(f.is_file() for f in files):
            raise SettingsError(f"kpi_views: {str(base)!r} has no .sql files")
        for f in files:
            text = f.read_text(encoding="utf-8").strip().rstrip(";")
            try:
                tree = sqlglot.parse_one(text, read="athena")
            except sqlglot.errors.ParseError as exc:
                first = str(exc).splitlines()[0]
                raise SettingsError(f"view {f.name}: not valid Athena SQL: {first}") from None
            ctes = {c.alias_or_name for c in tree.find_all(exp.CTE)}
            refs = frozenset(t.name for t in tree.find_all(exp.Table) if t.name not in ctes)
            views[f.stem] = KpiView(f.stem, text, f, refs)
    ordered: list[KpiView] = []
    state: dict[str, int] = {}

    def visit(name: str, chain: tuple[str, ...]) -> None:
        if state.get(name) == 2:
            return
        if state.get(name) == 1:
            raise SettingsError(f"views form a cycle: {' -> '.join((*chain, name))}")
        state[name] = 1
        for dep in sorted(views[name].depends_on):
            if dep in views and dep != name:
                visit(dep, (*chain, name))
        state[name] = 2
        ordered.append(views[name])

    for name in sorted(views):
        visit(name, ())
    return ordered
