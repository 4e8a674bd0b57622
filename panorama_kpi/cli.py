"""Command line: parse options, call the library, print results. No logic lives here."""

from __future__ import annotations

import logging
import shutil
import signal
import sys
import traceback
from typing import Any

import click

from panorama_kpi import __version__, allocator
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
            if ctx.meta.get("panorama.debug"):  # the traceback too; the exit code stays the same
                click.echo(traceback.format_exc().rstrip(), err=True)
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
    allocator.tune()
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


def _engine(ctx: click.Context, dry_run: bool = False) -> Any:
    """The configured engine; with `dry_run` it prints each statement or API call instead."""
    from panorama_kpi.lakes import open_engine

    engine = open_engine(_settings(ctx), echo=_print_statement if dry_run else None)
    ctx.call_on_close(engine.close)
    return engine


@main.command("init")
@click.option(
    "--type",
    "source_type",
    type=click.Choice(["mysql", "postgresql", "sqlite", "csv", "xls"]),
    default="mysql",
    show_default=True,
    help="Type of the first datasource.",
)
@click.option("--output", help="File to write (default: the --settings file).")
@click.pass_context
def init(ctx: click.Context, source_type: str, output: str | None) -> None:
    """Write a minimal commented settings file (local lake, one datasource, no tables)."""
    from panorama_kpi.scaffold import write_settings

    path = write_settings(output or ctx.obj["settings_path"], source_type)
    click.echo(
        f"wrote {path}: fill in the datasource (secrets as environment variables), then run set-tables"
    )


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
@click.option(
    "--include-views",
    is_flag=True,
    help="Also add views and materialized views (left out by default; named ones are always added).",
)
@click.pass_context
def set_tables(ctx: click.Context, datasource: str | None, tables: str | None, include_views: bool) -> None:
    """Write the source's table list into the settings file."""
    from panorama_kpi.introspect import set_tables as run

    run(_settings(ctx), datasource, tables, _progress, include_views=include_views)


@main.command("set-tables-fields")
@selection_options
@click.option(
    "--sample",
    type=click.IntRange(min=1),
    default=None,
    help="Documents read to infer a MongoDB collection's fields (default 1000).",
)
@click.pass_context
def set_tables_fields(
    ctx: click.Context, all_: bool, datasource: str | None, tables: str | None, sample: int | None
) -> None:
    """Write each table's fields and types, read from the source, into the settings file."""
    from panorama_kpi.introspect import set_tables_fields as run

    run(_settings(ctx), _selection(ctx, all_, datasource, tables), _progress, sample)


@main.command("create-datalake-tables")
@selection_options
@click.option("--dry-run", is_flag=True, help="Print the statements and catalog calls; connect to nothing.")
@click.pass_context
def create_datalake_tables(
    ctx: click.Context, all_: bool, datasource: str | None, tables: str | None, dry_run: bool
) -> None:
    """Register raw tables (string columns, Hive partitions) in the catalog."""
    from panorama_kpi import catalog

    selected = _selection(ctx, all_, datasource, tables)
    catalog.create_tables(_settings(ctx), selected, _engine(ctx, dry_run), _report(dry_run))


def _report(dry_run: bool) -> Any:
    """Progress lines; a dry run prints only its statements."""
    return (lambda _message: None) if dry_run else _progress


def _print_statement(sql: str) -> None:
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
    catalog.create_views(_settings(ctx), selected, _engine(ctx, dry_run), all_, _report(dry_run))


main.add_command(create_datalake_views, "create-table-views")


@main.command("drop-datalake-tables")
@selection_options
@click.option("--purge", is_flag=True, help="Also delete the tables' objects and load records from the lake.")
@click.pass_context
def drop_datalake_tables(
    ctx: click.Context, all_: bool, datasource: str | None, tables: str | None, purge: bool
) -> None:
    """Remove raw tables and their typed views (with --all, KPI views) from the catalog.

    The files stay in the lake unless --purge is given.
    """
    from panorama_kpi import catalog
    from panorama_kpi.lakes import open_storage

    settings = _settings(ctx)
    selected = _selection(ctx, all_, datasource, tables)
    storage = open_storage(settings) if purge else None
    catalog.drop_tables(settings, selected, _engine(ctx), _progress, with_kpis=all_, storage=storage)


@main.command("extract-and-load")
@selection_options
@click.option("--force", is_flag=True, help="Full dump of every partition, ignoring incremental windows.")
@click.option(
    "--since",
    metavar="'YYYY-MM-DD[ HH:MM[:SS]]'",
    help="Re-dump partitions with rows changed since then (UTC), e.g. to backfill.",
)
@click.option(
    "--workers",
    type=click.IntRange(1, 16),
    default=2,
    show_default=True,
    help="Connections per datasource dumping partitions in parallel.",
)
@click.option(
    "--wait",
    type=click.FloatRange(0),
    default=0,
    show_default=True,
    help="Seconds to wait for another run holding a datasource's lock (then exit 3).",
)
@click.option(
    "--tries",
    type=click.IntRange(1, 20),
    default=3,
    show_default=True,
    help="Attempts per table when a failure is transient (dropped connection, deadlock...).",
)
@click.option("-q", "--quiet", is_flag=True, help="Print only failures and the summary.")
@click.pass_context
def extract_and_load(
    ctx: click.Context,
    all_: bool,
    datasource: str | None,
    tables: str | None,
    force: bool,
    since: str | None,
    workers: int,
    wait: float,
    tries: int,
    quiet: bool,
) -> None:
    """Dump the selected tables into the lake and register new partitions."""
    from panorama_kpi.lakes import open_storage
    from panorama_kpi.pipeline import Interrupted, RunOptions
    from panorama_kpi.pipeline import extract_and_load as run
    from panorama_kpi.progress import Printer
    from panorama_kpi.timeparse import parse_since

    settings = _settings(ctx)
    selected = _selection(ctx, all_, datasource, tables)
    options = RunOptions(
        force=force, since=parse_since(since) if since else None, workers=workers, wait=wait, tries=tries
    )
    printer = Printer(sys.stderr, tty=sys.stderr.isatty(), quiet=quiet)

    def stop(signum: int, _frame: Any) -> None:
        raise Interrupted(signal.Signals(signum).name, 128 + signum)

    previous = {sig: signal.signal(sig, stop) for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        summary = run(settings, selected, open_storage(settings), _engine(ctx), options, printer)
    except Interrupted as exc:
        printer.close()
        click.echo(f"interrupted by {exc.args[0]}: the partition in flight was abandoned", err=True)
        ctx.exit(exc.exit_code)
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        printer.close()
    ok = len(summary.results) - len(summary.failed)
    rows = sum(r.rows for r in summary.results)
    size = sum(r.bytes for r in summary.results) / 1e6
    for r in summary.failed:
        click.echo(f"failed: {r.datasource}.{r.table}: {r.error}")
    click.echo(
        f"{ok} table(s) loaded, {len(summary.failed)} failed, {rows} rows, {size:.1f} MB, {summary.seconds:.1f}s"
    )
    if summary.failed:
        ctx.exit(1)


@main.command("status")
@click.option("--all", "all_", is_flag=True, hidden=True, help="Every configured table (the default).")
@click.option("-d", "--datasource", help="Only this datasource.")
@click.option("-t", "--tables", help="Comma-separated table names.")
@click.option("--format", "fmt", type=click.Choice(["table", "json"]), default="table", show_default=True)
@click.option("--max-age", help="Exit 1 when a table's last success is older than this (e.g. 2h, 90m, 1d).")
@click.pass_context
def status(
    ctx: click.Context, all_: bool, datasource: str | None, tables: str | None, fmt: str, max_age: str | None
) -> None:
    """Each table's last successful load, its age, rows, partitions and last error."""
    from panorama_kpi import output
    from panorama_kpi.lakes import open_storage
    from panorama_kpi.runs.status import rows_for_display, table_status
    from panorama_kpi.timeparse import parse_age

    limit = parse_age(max_age) if max_age else None
    settings = _settings(ctx)
    selected = _selection(ctx, not (datasource or tables), datasource, tables)
    statuses = table_status(settings, open_storage(settings), selected)
    columns, rows = rows_for_display(statuses)
    if fmt == "json":
        click.echo(output.json_text(columns, rows))
    else:
        for line in output.table_lines(columns, rows, shutil.get_terminal_size().columns):
            click.echo(line)
    if limit is not None:
        stale = [s for s in statuses if s.stale(limit)]
        for s in stale:
            click.echo(
                f"stale: {s.datasource}.{s.table}: last success {output.cell(s.last_success)}", err=True
            )
        if stale:
            ctx.exit(1)


@main.command("query")
@click.argument("sql")
@click.option(
    "--format", "fmt", type=click.Choice(["table", "csv", "json"]), default="table", show_default=True
)
@click.option(
    "--allow-ddl",
    is_flag=True,
    help="Also run statements that change the catalog or write (CREATE, DROP...).",
)
@click.option(
    "--explain", is_flag=True, help="Print the SQL the engine would run (the local translation); run nothing."
)
@click.pass_context
def query(ctx: click.Context, sql: str, fmt: str, allow_ddl: bool, explain: bool) -> None:
    """Run SQL (Athena dialect) on the configured engine; it only reads unless --allow-ddl.

    table: for reading (NULL bare, text escaped, long values cut to the terminal);
    csv: NULL is an empty field, '' is ""; json: a list of objects keyed by column.
    """
    from panorama_kpi import output
    from panorama_kpi.engines.readonly import require_read_only

    if not allow_ddl:
        require_read_only(sql)
    engine = _engine(ctx)
    if explain:
        click.echo(engine.explain(sql))
        return
    engine.allow_writes = allow_ddl
    columns, rows = engine.query(sql)
    if fmt == "json":
        click.echo(output.json_text(columns, rows))
    elif fmt == "csv":
        for line in output.csv_lines(columns, rows):
            click.echo(line)
    else:
        width = shutil.get_terminal_size().columns
        for line in output.table_lines(columns, rows, width):
            click.echo(line)


@main.command("compute-kpis")
@click.option("--kpi", "kpis", multiple=True, help="Only this KPI (repeat, or comma-separate, for several).")
@click.option(
    "--at",
    metavar="'YYYY-MM-DD[ HH:MM]'",
    help="Snapshot time (UTC) the KPIs are computed for; default: the start of the current hour.",
)
@click.pass_context
def compute_kpis(ctx: click.Context, kpis: tuple[str, ...], at: str | None) -> None:
    """Run each KPI and write its values for the snapshot to kpi_history (replacing that snapshot's)."""
    from panorama_kpi.kpi.compute import compute_kpis as run
    from panorama_kpi.kpi.compute import default_snapshot
    from panorama_kpi.lake import open_storage
    from panorama_kpi.timeparse import parse_since

    settings = _settings(ctx)
    snapshot = parse_since(at, "--at") if at else default_snapshot()
    names = [n.strip() for item in kpis for n in item.split(",") if n.strip()]
    results = run(settings, _engine(ctx), open_storage(settings), snapshot, names, _progress)
    failed = [r for r in results if r.error]
    for r in failed:
        click.echo(f"failed: {r.error}")
    rows = sum(r.rows for r in results)
    click.echo(
        f"{len(results) - len(failed)} KPI(s) computed for {snapshot:%Y-%m-%d %H:%M:%S} UTC, "
        f"{len(failed)} failed, {rows} row(s) written"
    )
    if failed:
        ctx.exit(1)


@main.command("report")
@click.option("--out", help="File to write.  [default: kpis.html, or kpis.json with --format json]")
@click.option(
    "--since",
    default="90d",
    show_default=True,
    help="History to show: an age (90d, 12w) or a date (YYYY-MM-DD).",
)
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["html", "json"]),
    default="html",
    show_default=True,
    help="html: the page; json: the same series as data.",
)
@click.pass_context
def report(ctx: click.Context, out: str | None, since: str, fmt: str) -> None:
    """Write one self-contained HTML page of the KPI history: charts, latest values, freshness."""
    from pathlib import Path

    from panorama_kpi.kpi.report import write_report
    from panorama_kpi.timeparse import parse_age, parse_since, utcnow

    now = utcnow()
    start = (
        parse_since(since, "--since")
        if since[:1].isdigit() and "-" in since
        else now - parse_age(since, "--since")
    )
    path = write_report(_settings(ctx), _engine(ctx), Path(out or f"kpis.{fmt}"), start.date(), now, fmt)
    click.echo(f"wrote {path}")
