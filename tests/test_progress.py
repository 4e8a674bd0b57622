"""How a run's events are printed: live on a terminal, timestamped under cron, quiet on demand."""

from __future__ import annotations

import io
import re
import sqlite3
from pathlib import Path

import pytest
from click.testing import CliRunner

from panorama_kpi.cli import main
from panorama_kpi.loading import TableResult
from panorama_kpi.progress import Printer
from panorama_kpi.runs.events import Note, PartitionDone, TableFinished, TableStarted

EVENTS = [
    TableStarted("db", "t", "full", 4),
    PartitionDone("db", "t", 1, 4, 1000, 2_000_000, 1.0),
    PartitionDone("db", "t", 2, 4, 2000, 4_000_000, 2.0),
    Note("db.t: removed 1 partition(s) no longer in the source"),
    TableFinished(TableResult("db", "t", rows=4000, partitions=4, bytes=8_000_000, seconds=4.0)),
    TableFinished(TableResult("db", "u", error="access denied", status="failed")),
]


def render(tty: bool, quiet: bool = False) -> str:
    out = io.StringIO()
    printer = Printer(out, tty=tty, quiet=quiet, min_interval=0)
    for event in EVENTS:
        printer(event)
    printer.close()
    return out.getvalue()


def test_terminal_shows_a_live_line_then_the_result() -> None:
    text = render(tty=True)
    assert "\r\x1b[Kdb.t: 2/4 partitions, 2,000 rows, 4.0 MB, 2.0 MB/s, ETA 0m02s" in text
    assert "ok db.t: 4000 rows in 4 partition(s), 8.0 MB, 4.0s\n" in text
    assert not re.search(r"^\d{4}-\d\d-\d\d ", text, re.M)


def test_cron_gets_timestamped_lines_and_no_live_line() -> None:
    lines = render(tty=False).splitlines()
    assert all(re.match(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d ", line) for line in lines)
    assert "\r" not in "".join(lines) and not any("partitions," in line for line in lines)
    assert lines[-1].endswith("FAILED db.u: access denied")


def test_quiet_prints_only_failures() -> None:
    lines = render(tty=False, quiet=True).splitlines()
    assert len(lines) == 1 and lines[0].endswith("FAILED db.u: access denied")


def test_since_backfills_what_changed_after_a_time(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    db = sqlite3.connect(tmp_path / "a.db")
    db.execute("CREATE TABLE t (id INTEGER, p TEXT, m TEXT)")
    db.executemany(
        "INSERT INTO t VALUES (?, ?, ?)", [(1, "a", "2026-01-01 00:00:00"), (2, "b", "2026-03-01 00:00:00")]
    )
    db.commit()
    (tmp_path / "panorama_settings.yaml").write_text(
        "datalake: {type: local, base_prefix: s}\ndatasources:\n- type: sqlite\n  name: db\n  database: a.db\n"
        "  tables:\n  - name: t\n    fields: [{name: id, type: int}, {name: p}, {name: m, type: datetime}]\n"
        "    partitions: {partition_fields: [p], interval: 1 hour, timestamp_field: m}\n",
        encoding="utf-8",
    )
    runner = CliRunner()
    assert runner.invoke(main, ["extract-and-load", "--all"]).exit_code == 0
    result = runner.invoke(main, ["extract-and-load", "--all", "--since", "2026-02-01 00:00", "-q"])
    assert result.exit_code == 0, result.output
    assert result.output.splitlines()[-1].startswith("1 table(s) loaded, 0 failed, 1 rows")
    bad = runner.invoke(main, ["extract-and-load", "--all", "--since", "last tuesday"])
    assert bad.exit_code == 2 and "--since: 'last tuesday' is not a date/time" in bad.output
