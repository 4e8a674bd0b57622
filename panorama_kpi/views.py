"""Catalog objects derived from the settings: raw tables, typed views, KPI views.

All SQL here is Athena (Trino) dialect; the DuckDB engine transpiles it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import sqlglot
from sqlglot import exp

from panorama_kpi.errors import SettingsError
from panorama_kpi.lake.csv import decode_sql
from panorama_kpi.lake.layout import NULL_PARTITION, table_prefix
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

    @property
    def file_name(self) -> str:
        return f"{self.table}.csv"

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
    )


def quote_ident(name: str) -> str:
    """The one identifier quoting helper (Trino and DuckDB both use double quotes)."""
    return '"' + name.replace('"', '""') + '"'


def quote_literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


_INT = {
    "int",
    "integer",
    "tinyint",
    "smallint",
    "mediumint",
    "bigint",
    "year",
    "int2",
    "int4",
    "int8",
    "serial",
    "bigserial",
    "smallserial",
    "unsigned",
}
_FLOAT = {"float", "double", "real", "double precision", "float4", "float8", "decimal"}
_TIMESTAMP = {
    "datetime",
    "timestamp",
    "timestamptz",
    "timestamp with time zone",
    "timestamp without time zone",
}
_BOOL = {"bool", "boolean"}
_DECIMAL_RE = re.compile(r"^(?:decimal|numeric)\s*\(\s*(\d+)\s*(?:,\s*(-?\d+)\s*)?\)")
#: Widest DECIMAL Athena (Trino) has.
MAX_DECIMAL_PRECISION = 38
#: Element types Trino casts from JSON (numbers or their text) the way DuckDB does.
_JSON_ELEMENTS = ("BIGINT", "DOUBLE", "BOOLEAN", "DECIMAL(")


def athena_type(declared: str) -> str | None:
    """Typed-view type for a declared source type; None keeps the text (varchar).

    Follows panorama-elt's view typing so BI queries keep working (integers BIGINT,
    floats and a bare `decimal`, the type name panorama-elt wrote for MySQL decimals,
    DOUBLE), except where that would lose values: a decimal with its precision stays
    exact, and one wider than Athena's DECIMAL(38), a bare `numeric` (PostgreSQL's
    arbitrary-precision type) and `bigint unsigned` keep every digit (text, or a
    DECIMAL wide enough). Arrays (`text[]`, lake text a JSON array) are ARRAY(...)
    of their element type, or of VARCHAR. The README's type table is this function.
    """
    t = " ".join(declared.strip().lower().split())
    if t.endswith("[]"):
        depth = 0
        while t.endswith("[]"):
            t, depth = t[:-2].rstrip(), depth + 1
        element = athena_type(t)
        if element is None or not element.startswith(_JSON_ELEMENTS):
            element = "VARCHAR"  # dates, times and text arrive as their text
        return "ARRAY(" * depth + element + ")" * depth
    m = _DECIMAL_RE.match(t)
    if m:
        precision, scale = int(m.group(1)), int(m.group(2) or 0)
        if scale < 0:  # PostgreSQL 15: numeric(5,-2) rounds to hundreds, holds 7 digits
            precision, scale = precision - scale, 0
        precision = max(precision, scale)  # numeric(3,5): 0.00123
        if precision > MAX_DECIMAL_PRECISION:
            return None
        return f"DECIMAL({precision}, {scale})"
    base = re.sub(r"\(.*?\)", "", t).strip()
    unsigned = base.endswith(" unsigned") or base.endswith(" unsigned zerofill")
    base = base.replace(" zerofill", "").replace(" unsigned", "").strip()
    if base == "bigint" and unsigned:
        return "DECIMAL(20, 0)"  # up to 2^64 - 1, beyond BIGINT
    if base in _INT:
        return "BIGINT"
    if base in _FLOAT:
        return "DOUBLE"
    if base in _TIMESTAMP:
        return "TIMESTAMP"
    if base == "date":
        return "DATE"
    if base in _BOOL:
        return "BOOLEAN"
    return None


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
