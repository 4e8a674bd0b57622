"""The demo: a deterministic Open edX-like SQLite database, and `make demo` end to end.

`generate` writes the tables panorama-elt's Open edX settings list, with the same
column names and declared types, filled with plausible rows: users, courses whose
ids contain ':' '+' and (one legacy key) '/', enrolments, student-module rows with
JSON state, grades, certificates and staff roles. Every value is drawn from one
seeded random stream and every timestamp is an offset from `now`, so a seed and a
`now` give the same rows every time, and a run at the real current time has rows
modified within the last hours for the incremental window to pick up.

A few rows carry hostile text on purpose (quotes, backslashes, raw CR/LF, tabs,
emoji, '' next to NULL, the literal text ``\\N``): the lake encoding must keep them.
"""

from __future__ import annotations

import argparse
import datetime as dt
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path

from panorama_kpi.demo.generator import generate, is_fresh, stamp
from panorama_kpi.demo.schema import SCHEMA, fields

__all__ = ["SCHEMA", "fields", "generate", "is_fresh", "main", "run", "stamp"]

# ---------------------------------------------------------------- make demo

ROOT = Path(__file__).resolve().parents[2]
DEMO_QUERIES = [
    "SELECT course_id, enrollments, active_enrollments, verified_enrollments "
    "FROM kpi_enrollments_per_course ORDER BY enrollments DESC, course_id LIMIT 10",
    "SELECT activity_date, active_users, active_courses FROM kpi_active_users_daily "
    "ORDER BY activity_date DESC LIMIT 7",
    "SELECT course_id, enrolled, passed, round(100 * completion_rate, 1) AS pass_pct FROM kpi_course_completion "
    "ORDER BY passed DESC, course_id LIMIT 10",
    "SELECT course_id, enrollments, active_learners, passed, certificates FROM kpi_course_summary "
    "ORDER BY certificates DESC, course_id LIMIT 10",
]


#: Daily KPI snapshots the demo computes (the last ones, today's 00:00 included).
SNAPSHOT_DAYS = 8


def _step(label: str, args: Sequence[str], timings: list[tuple[str, float]]) -> None:
    print(f"\n$ {label}", flush=True)
    started = time.monotonic()
    done = subprocess.run(args, cwd=ROOT, check=False)
    seconds = time.monotonic() - started
    timings.append((label, seconds))
    print(f"[{seconds:.1f}s]", flush=True)
    if done.returncode:
        raise SystemExit(f"demo: step failed with exit code {done.returncode}: {label}")


def run(seed: int = 42, scale: float = 1.0, regenerate: bool = False) -> list[tuple[str, float]]:
    """`make demo`: (re)generate the database, then what a user types, one command at a time."""
    settings = Path("demo") / "settings.yaml"
    database = ROOT / "demo" / "openedx.sqlite3"
    if not (ROOT / settings).is_file() or not (ROOT / "panorama.py").is_file():
        raise SystemExit(f"demo: needs a source checkout ({settings} and panorama.py under {ROOT})")
    timings: list[tuple[str, float]] = []
    if regenerate or not is_fresh(database, seed, scale):
        print(f"$ generate {database.relative_to(ROOT)} (seed {seed}, scale {scale})", flush=True)
        started = time.monotonic()
        counts = generate(database, seed, scale)
        seconds = time.monotonic() - started
        timings.append(("generate", seconds))
        for table, count in counts.items():
            print(f"  {table:36} {count:>9,} rows")
        print(f"[{seconds:.1f}s]")
    else:
        print(f"{database.relative_to(ROOT)} is fresh (seed {seed}, scale {scale}); not regenerated")
    cli = [sys.executable, "panorama.py", "--settings", str(settings)]
    for command in (
        ["create-datalake-tables", "--all"],
        ["create-datalake-views", "--all"],
        ["extract-and-load", "--all", "--force"],
        ["extract-and-load", "--all"],
    ):
        _step("panorama.py " + " ".join(command), [*cli, *command], timings)
    for sql in DEMO_QUERIES:
        _step(f'panorama.py query "{sql}"', [*cli, "query", sql], timings)
    # KPI history: a snapshot at 00:00 UTC of each of the last days, then the report
    today = dt.datetime.now(dt.UTC).date()
    for days in range(SNAPSHOT_DAYS, 0, -1):
        at = f"{today - dt.timedelta(days=days - 1):%Y-%m-%d} 00:00"
        _step(f'panorama.py compute-kpis --at "{at}"', [*cli, "compute-kpis", "--at", at], timings)
    query = "SELECT kpi, period_start, value, numerator, denominator FROM kpi_history_periods WHERE period = 'week' AND kpi = 'problem_score_daily' ORDER BY period_start"
    _step(f'panorama.py query "{query}"', [*cli, "query", query], timings)
    report = ["report", "--out", "demo/out/kpis.html", "--since", "90d"]
    _step("panorama.py " + " ".join(report), [*cli, *report], timings)
    print("\nTimings:")
    for label, seconds in timings:
        print(f"  {seconds:6.1f}s  {label[:100]}")
    print(f"  {sum(s for _, s in timings):6.1f}s  total")
    return timings


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m panorama_kpi.demo", description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    gen = sub.add_parser("generate", help="write the demo SQLite database")
    gen.add_argument("--out", type=Path, required=True, help="database file to write (replaced)")
    run_p = sub.add_parser("run", help="generate the database if needed, load the demo lake, print KPIs")
    run_p.add_argument("--regenerate", action="store_true", help="regenerate even if the database is fresh")
    for p in (gen, run_p):
        p.add_argument("--seed", type=int, default=42, help="random seed (default 42)")
        p.add_argument("--scale", type=float, default=1.0, help="size factor; 1.0 = ~20k users (default 1.0)")
    args = parser.parse_args(argv)
    if args.command == "generate":
        started = time.monotonic()
        counts = generate(args.out, args.seed, args.scale)
        for table, count in counts.items():
            print(f"{table:36} {count:>9,}")
        print(f"{sum(counts.values()):,} rows in {time.monotonic() - started:.1f}s -> {args.out}")
    else:
        run(args.seed, args.scale, args.regenerate)
