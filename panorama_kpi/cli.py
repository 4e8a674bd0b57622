"""Command line: parse options, call the library, print results. No logic lives here."""

from __future__ import annotations

import csv
import datetime as dt
import decimal
import json
import logging
import sys
from collections.abc import Iterator, Sequence
from typing import Any

import click

from panorama_kpi import __version__
from panorama_kpi.errors import PanoramaError

DEFAULT_SETTINGS = "panorama_settings.yaml"


def _progress(message: str) -> None:
    click.echo(message, err=True)


class PanoramaGroup(click.Group):
    """Turns every PanoramaError into one line and its exit code, in one place."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except PanoramaError as exc:
            if ctx.meta.get("panorama.debug"):
                raise
            click.echo(f"error: {exc}", err=True)
            ctx.exit(exc.exit_code)


@click.group(cls=PanoramaGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.option(
    "--settings", "settings_path", default=DEFAULT_SETTINGS, show_default=True, help="Settings file."
)
@click.option("--debug", is_flag=True, help="Verbose logging and full tracebacks.")
@click.version_option(__version__, prog_name="panorama-kpi")
@click.pass_context
def main(ctx: click.Context, settings_path: str, debug: bool) -> None:
    """Extract operational tables to a CSV lake and keep KPI views over it."""
    ctx.meta["panorama.debug"] = debug
    logging.basicConfig(
        level=logging.DEBUG if debug else logging.WARNING, format="%(levelname)s %(name)s: %(message)s"
    )
    ctx.obj = {"settings_path": settings_path}


def _settings(ctx: click.Context) -> Any:
    from panorama_kpi.settings import load_settings

    if "settings" not in ctx.obj:
        ctx.obj["settings"] = load_settings(ctx.obj["settings_path"])
    return ctx.obj["settings"]


def _selection(ctx: click.Context, all_: bool, datasource: str | None, tables: str | None) -> Any:
    from panorama_kpi.selection import select

    return select(_settings(ctx), all_, datasource, tables)


def selection_options(f: Any) -> Any:
    f = click.option("-t", "--tables", help="Comma-separated table names.")(f)
    f = click.option("-d", "--datasource", help="Only this datasource.")(f)
    f = click.option("--all", "all_", is_flag=True, help="Every configured table.")(f)
    return f


def _engine(ctx: click.Context) -> Any:
    from panorama_kpi.engines import open_engine

    engine = open_engine(_settings(ctx))
    ctx.call_on_close(engine.close)
    return engine


@main.command("test-connections")
@click.pass_context
def test_connections(ctx: click.Context) -> None:
    """Check every datasource and the lake; exit 1 if any fails."""
    from panorama_kpi.connections import check_all

    failures = 0
    for name, ok, message in check_all(_settings(ctx)):
        click.echo(f"{'ok  ' if ok else 'FAIL'} {name}: {message}")
        failures += not ok
    if failures:
        ctx.exit(1)


@main.command("set-tables")
@click.option("-d", "--datasource", help="Only this datasource.")
@click.option(
    "-t", "--tables", help="Comma-separated table names to add (default: every table of the source)."
)
@click.pass_context
def set_tables(ctx: click.Context, datasource: str | None, tables: str | None) -> None:
    """Write the source's table list into the settings file."""
    from panorama_kpi.introspect import set_tables as run

    run(_settings(ctx), datasource, tables, _progress)


@main.command("set-tables-fields")
@selection_options
@click.pass_context
def set_tables_fields(ctx: click.Context, all_: bool, datasource: str | None, tables: str | None) -> None:
    """Write each table's fields and types, read from the source, into the settings file."""
    from panorama_kpi.introspect import set_tables_fields as run

    run(_settings(ctx), _selection(ctx, all_, datasource, tables), _progress)


@main.command("create-datalake-tables")
@selection_options
@click.option("--dry-run", is_flag=True, help="Print the DDL; connect to nothing.")
@click.pass_context
def create_datalake_tables(
    ctx: click.Context, all_: bool, datasource: str | None, tables: str | None, dry_run: bool
) -> None:
    """Register raw tables (string columns, Hive partitions) in the catalog."""
    from panorama_kpi import catalog

    selected = _selection(ctx, all_, datasource, tables)
    if dry_run:
        _print_statements(catalog.create_tables_ddl(_settings(ctx), selected, _dry_engine(ctx)))
        return
    catalog.create_tables(_settings(ctx), selected, _engine(ctx), _progress)


def _dry_engine(ctx: click.Context) -> Any:
    """The local engine prints its own DDL; an aws lake prints Athena's."""
    return _engine(ctx) if _settings(ctx).datalake.type == "local" else None


def _print_statements(statements: Sequence[str]) -> None:
    for sql in statements:
        click.echo(sql.rstrip(";") + ";\n")


@main.command("create-datalake-views")
@selection_options
@click.option("--dry-run", is_flag=True, help="Print the view SQL; connect to nothing.")
@click.pass_context
def create_datalake_views(
    ctx: click.Context, all_: bool, datasource: str | None, tables: str | None, dry_run: bool
) -> None:
    """Create typed views over the raw tables (and, with --all, the KPI views)."""
    from panorama_kpi import catalog

    selected = _selection(ctx, all_, datasource, tables)
    if dry_run:
        _print_statements([sql for _name, sql in catalog.views_sql(_settings(ctx), selected, all_)])
        return
    catalog.create_views(_settings(ctx), selected, _engine(ctx), all_, _progress)


main.add_command(create_datalake_views, "create-table-views")


@main.command("drop-datalake-tables")
@selection_options
@click.pass_context
def drop_datalake_tables(ctx: click.Context, all_: bool, datasource: str | None, tables: str | None) -> None:
    """Remove raw tables from the catalog (the files stay in the lake)."""
    from panorama_kpi import catalog

    catalog.drop_tables(_settings(ctx), _selection(ctx, all_, datasource, tables), _engine(ctx), _progress)


@main.command("extract-and-load")
@selection_options
@click.option("--force", is_flag=True, help="Full dump of every partition, ignoring incremental windows.")
@click.option(
    "--workers",
    type=click.IntRange(1, 16),
    default=2,
    show_default=True,
    help="Connections per datasource dumping partitions in parallel.",
)
@click.pass_context
def extract_and_load(
    ctx: click.Context, all_: bool, datasource: str | None, tables: str | None, force: bool, workers: int
) -> None:
    """Dump the selected tables into the lake and register new partitions."""
    from panorama_kpi.lake import open_storage
    from panorama_kpi.pipeline import extract_and_load as run

    settings = _settings(ctx)
    selected = _selection(ctx, all_, datasource, tables)
    summary = run(
        settings,
        selected,
        open_storage(settings),
        _engine(ctx),
        force=force,
        report=_progress,
        workers=workers,
    )
    ok = len(summary.results) - len(summary.failed)
    rows = sum(r.rows for r in summary.results)
    click.echo(f"{ok} table(s) loaded, {len(summary.failed)} failed, {rows} rows")
    for r in summary.failed:
        click.echo(f"failed: {r.datasource}.{r.table}: {r.error}")
    if summary.failed:
        ctx.exit(1)


@main.command("query")
@click.argument("sql")
@click.option(
    "--format", "fmt", type=click.Choice(["table", "csv", "json"]), default="table", show_default=True
)
@click.option(
    "--explain", is_flag=True, help="Print the SQL the engine would run (the local translation); run nothing."
)
@click.pass_context
def query(ctx: click.Context, sql: str, fmt: str, explain: bool) -> None:
    """Run SQL (Athena dialect) on the configured engine."""
    if explain:
        click.echo(_engine(ctx).explain(sql))
        return
    columns, rows = _engine(ctx).query(sql)
    if fmt == "json":
        _print_json(columns, rows)
    elif fmt == "csv":
        writer = csv.writer(sys.stdout, lineterminator="\n")
        writer.writerow(columns)
        writer.writerows([_text(v) for v in row] for row in rows)
    else:
        _print_table(columns, list(rows))


def _jsonable(value: Any) -> Any:
    if isinstance(value, decimal.Decimal):
        return str(value)
    if isinstance(value, (dt.date, dt.datetime, dt.time)):
        return value.isoformat(" ") if isinstance(value, dt.datetime) else value.isoformat()
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    return value


def _print_json(columns: list[str], rows: Iterator[tuple[Any, ...]]) -> None:
    click.echo(
        json.dumps(
            [{c: _jsonable(v) for c, v in zip(columns, row, strict=True)} for row in rows],
            ensure_ascii=False,
            indent=1,
            default=str,
        )
    )


def _text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, dt.datetime):
        return value.isoformat(" ")
    return str(value)


def _print_table(columns: list[str], rows: list[tuple[Any, ...]]) -> None:
    cells = [[("NULL" if v is None else _text(v)).replace("\n", "\\n") for v in row] for row in rows]
    widths = [max([len(c), *(len(r[i]) for r in cells)]) for i, c in enumerate(columns)]
    click.echo("  ".join(c.ljust(w) for c, w in zip(columns, widths, strict=True)).rstrip())
    click.echo("  ".join("-" * w for w in widths))
    for r in cells:
        click.echo("  ".join(v.ljust(w) for v, w in zip(r, widths, strict=True)).rstrip())
    click.echo(f"({len(rows)} row{'s' if len(rows) != 1 else ''})")
