"""Stopping a real `extract-and-load` process mid-table: SIGTERM stops it cleanly,
SIGKILL leaves nothing a reader can see, and the next run converges."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.servers import DBServer

ROOT = Path(__file__).resolve().parent.parent
ROWS, GROUPS = 500_000, 50


@pytest.fixture()
def big(pg_server: DBServer, tmp_path: Path) -> Iterator[tuple[Path, str, Any]]:
    conn = pg_server.connect()
    name = f"big_{uuid.uuid4().hex[:8]}"
    with conn.cursor() as cur:
        cur.execute(
            f"CREATE TABLE {name} AS SELECT i AS id, 'g' || (i % {GROUPS}) AS grp, "
            f"'old' AS version, repeat('x', 100) AS payload, now() AS modified "
            f"FROM generate_series(1, {ROWS}) AS i"
        )
    settings = tmp_path / "settings.yaml"
    fields = [
        ("id", "int"),
        ("grp", "varchar"),
        ("version", "varchar"),
        ("payload", "text"),
        ("modified", "timestamptz"),
    ]
    settings.write_text(
        yaml.safe_dump(
            {
                "datalake": {"type": "local", "path": str(tmp_path / "lake"), "base_prefix": "s"},
                "datasources": [
                    {
                        "type": "postgresql",
                        "name": "pg",
                        **pg_server.settings_dict(),
                        "tables": [
                            {
                                "name": name,
                                "fields": [{"name": n, "type": t} for n, t in fields],
                                "partitions": {"partition_fields": ["grp"]},
                            }
                        ],
                    }
                ],
            }
        ),
        encoding="utf-8",
    )
    for command in (
        ["create-datalake-tables", "--all"],
        ["create-datalake-views", "--all"],
        ["extract-and-load", "--all"],
    ):
        done = cli(settings, *command)
        assert done.returncode == 0, done.stderr
    with conn.cursor() as cur:
        cur.execute(f"UPDATE {name} SET version = 'new'")
    yield settings, name, conn
    with conn.cursor() as cur:
        cur.execute(f"DROP TABLE {name}")
    conn.close()


def cli(settings: Path, *args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(ROOT / "panorama.py"), "--settings", str(settings), *args],
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, **(env or {})},
    )


def start_and_stop(settings: Path, name: str, sig: int) -> subprocess.Popen[str]:
    """Start a full reload and send `sig` once it has replaced a couple of objects."""
    proc = subprocess.Popen(
        [
            sys.executable,
            str(ROOT / "panorama.py"),
            "--settings",
            str(settings),
            "extract-and-load",
            "--all",
            "--force",
            "--workers",
            "1",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    folder = settings.parent / "lake/s" / name
    start = {p: p.stat().st_mtime_ns for p in folder.rglob("*.csv")}
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        fresh = [p for p in folder.rglob("*.csv") if p.stat().st_mtime_ns != start.get(p)]
        if len(fresh) >= 1:
            break
        assert proc.poll() is None, proc.communicate()
        time.sleep(0.01)
    proc.send_signal(sig)
    proc.wait(timeout=60)
    return proc


def view(settings: Path, name: str) -> list[dict[str, Any]]:
    out = cli(
        settings,
        "query",
        f"SELECT version, count(*) AS n FROM s_table_{name} GROUP BY version",
        "--format",
        "json",
    )
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout)


def temporaries(settings: Path) -> list[Path]:
    return [p for p in (settings.parent / "lake").rglob("*") if p.name.endswith(".tmp")]


def lock_files(settings: Path) -> list[Path]:
    return list((settings.parent / "lake/_panorama/locks").rglob("*.lock"))


def test_sigterm_stops_cleanly(big: tuple[Path, str, Any]) -> None:
    settings, name, _conn = big
    proc = start_and_stop(settings, name, signal.SIGTERM)
    _out, err = proc.communicate()
    assert proc.returncode == 143, err
    assert "interrupted by SIGTERM" in err and "Traceback" not in err
    assert temporaries(settings) == [] and lock_files(settings) == []
    rows = view(settings, name)
    assert sum(r["n"] for r in rows) == ROWS and {r["version"] for r in rows} == {"old", "new"}, (rows, err)
    runs = json.loads(
        cli(settings, "query", "SELECT status FROM s_runs ORDER BY started", "--format", "json").stdout
    )
    assert [r["status"] for r in runs] == ["ok", "interrupted"]
    again = cli(settings, "extract-and-load", "--all", "--force")
    assert again.returncode == 0, again.stderr
    assert view(settings, name) == [{"version": "new", "n": ROWS}]


def test_sigkill_leaves_the_lake_readable_and_the_next_run_converges(big: tuple[Path, str, Any]) -> None:
    settings, name, _conn = big
    proc = start_and_stop(settings, name, signal.SIGKILL)
    assert proc.returncode == -signal.SIGKILL
    rows = view(settings, name)  # readers never see a temporary object or a partial file
    assert sum(r["n"] for r in rows) == ROWS
    (lock,) = lock_files(settings)
    busy = cli(settings, "extract-and-load", "--all")
    assert busy.returncode == 3 and "is being loaded by host" in busy.stderr + busy.stdout
    os.utime(lock, (time.time() - 3600, time.time() - 3600))  # the dead run's heartbeat is an hour old
    again = cli(settings, "extract-and-load", "--all", "--force")
    assert again.returncode == 0, again.stderr
    assert "took over the lock" in again.stderr
    assert temporaries(settings) == [] and lock_files(settings) == []
    assert view(settings, name) == [{"version": "new", "n": ROWS}]
