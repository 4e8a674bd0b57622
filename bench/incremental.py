"""make bench, incremental part: how long an hourly run takes when little changed.

After a full load of the studentmodule-like table (bench/studentmodule.py) with one
object per course (200), change rows in 2 courses and time an incremental run, then
delete 2 rows (2 courses) and time another. Each run re-dumps only the partitions
whose rows changed or whose row count differs; the target is <= 5 % of the full load.

    python bench/incremental.py [--rows 1000000] [--engines mysql,postgresql]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(BENCH))

import studentmodule as sm  # noqa: E402

from tests.servers import start_mariadb, start_postgres  # noqa: E402

STARTERS = {"mysql": start_mariadb, "postgresql": start_postgres}
LABEL = {"mysql": "MariaDB", "postgresql": "PostgreSQL"}
TARGET = 0.05


def timed(settings: Path, *args: str) -> tuple[float, str]:
    started = time.monotonic()
    done = subprocess.run(
        [
            sys.executable,
            str(ROOT / "panorama.py"),
            "--settings",
            str(settings),
            "extract-and-load",
            "--all",
            *args,
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    seconds = time.monotonic() - started
    if done.returncode != 0:
        raise SystemExit(f"extract-and-load failed:\n{done.stdout}\n{done.stderr}")
    return seconds, done.stdout.strip().splitlines()[-1]


def bench(engine: str, rows: int, work: Path) -> list[tuple[str, float, str]]:
    server = STARTERS[engine](work / "server")
    try:
        conn = server.connect()
        print(f"{LABEL[engine]}: building {rows:,} rows", file=sys.stderr, flush=True)
        sm.build(conn, engine, rows)
        types = sm.FIELD_TYPES[engine]
        table = {
            "name": sm.TABLE,
            "fields": [{"name": c, "type": types[c]} for c in sm.COLUMNS],
            "partitions": {
                "partition_fields": ["course_id"],
                "interval": "2 hour",
                "timestamp_field": "modified",
            },
        }
        settings = work / "settings.yaml"
        settings.write_text(
            json.dumps(
                {
                    "datalake": {"type": "local", "path": str(work / "lake")},
                    "datasources": [
                        {"type": engine, "name": "bench", **server.settings_dict(), "tables": [table]}
                    ],
                }
            )
        )
        full, full_line = timed(settings, "--force")
        now = "UTC_TIMESTAMP(6)" if engine == "mysql" else "now()"
        with conn.cursor() as cur:  # two rows, each in its own course
            cur.execute(f"UPDATE {sm.TABLE} SET modified = {now}, grade = 1 WHERE id IN (1, 2)")
        changed, changed_line = timed(settings)
        with conn.cursor() as cur:
            cur.execute(f"DELETE FROM {sm.TABLE} WHERE id IN (3, 4)")
        deleted, deleted_line = timed(settings)
        conn.close()
        return [
            ("full load", full, full_line),
            ("2 partitions changed", changed, changed_line),
            ("2 rows deleted", deleted, deleted_line),
        ]
    finally:
        server.stop(cleanup=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--engines", default="mysql,postgresql")
    args = parser.parse_args(argv)
    lines = [
        f"Incremental runs on a {args.rows:,}-row table, 200 partitions (one run each; target <= {TARGET:.0%} of the full load)",
        "",
        "| engine | run | seconds | share of full | target met | summary |",
        "|---|---|---:|---:|---|---|",
    ]
    for engine in args.engines.split(","):
        with tempfile.TemporaryDirectory(prefix=f"bench-incr-{engine}-") as tmp:
            results = bench(engine, args.rows, Path(tmp))
        full = results[0][1]
        for name, seconds, summary in results:
            share = seconds / full
            met = "" if name == "full load" else ("yes" if share <= TARGET else "no")
            lines.append(f"| {LABEL[engine]} | {name} | {seconds:.2f} | {share:.1%} | {met} | {summary} |")
    text = "\n".join(lines)
    print(text)
    out = BENCH / "out"
    out.mkdir(exist_ok=True)
    (out / "incremental.md").write_text(text + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
