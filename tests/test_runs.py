"""Hourly runs you can trust (real MariaDB and PostgreSQL): deletes and moves caught
incrementally, windows on the source's clock, retries, the lock, run records, status."""

from __future__ import annotations

import datetime as dt
import json
import threading
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import click.testing
import pytest
import yaml
from click.testing import CliRunner
from hypothesis import given
from hypothesis import strategies as st

from panorama_kpi.cli import main
from panorama_kpi.lake.csv import encode_row, header_line
from panorama_kpi.lake.local import LocalStorage
from panorama_kpi.runs.lock import RunLock, lock_key
from panorama_kpi.runs.records import RunRecord, parse_record
from tests.servers import DBServer

KINDS = ["mysql", "postgresql"]


def run(settings: Path, *args: str) -> click.testing.Result:
    return CliRunner().invoke(main, ["--settings", str(settings), *args], catch_exceptions=False)


def query(settings: Path, sql: str) -> list[dict[str, Any]]:
    result = run(settings, "query", sql, "--format", "json")
    assert result.exit_code == 0, result.output
    return json.loads(result.output)


class Site:
    """A lake directory and settings over one table `name` on a real server."""

    def __init__(self, root: Path, kind: str, server: DBServer, conn: Any) -> None:
        self.root, self.kind, self.server, self.conn = root, kind, server, conn
        self.name = f"ev_{uuid.uuid4().hex[:8]}"
        self.settings = root / "settings.yaml"

    def sql(self, statement: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
        with self.conn.cursor() as cur:
            cur.execute(statement.replace("{t}", self.name), params or None)
            return list(cur.fetchall()) if cur.description else []

    def create(self, rows: list[tuple[int, str | None, dt.datetime]]) -> None:
        ts = "DATETIME(6)" if self.kind == "mysql" else "TIMESTAMP(6)"
        self.sql(f"CREATE TABLE {{t}} (id INT PRIMARY KEY, grp VARCHAR(20), modified {ts})")
        for row in rows:
            self.sql("INSERT INTO {t} VALUES (%s, %s, %s)", row)

    def write_settings(
        self, extra_datasources: list[dict[str, Any]] | None = None, **partitions: Any
    ) -> None:
        parts = {
            "partition_fields": ["grp"],
            "interval": "2 hour",
            "timestamp_field": "modified",
            **partitions,
        }
        data = {
            "datalake": {"type": "local", "path": str(self.root / "lake"), "base_prefix": "site"},
            "datasources": [
                {
                    "type": self.kind,
                    "name": "db",
                    **self.server.settings_dict(),
                    "tables": [
                        {
                            "name": self.name,
                            "fields": [
                                {"name": "id", "type": "int"},
                                {"name": "grp", "type": "varchar"},
                                {"name": "modified", "type": "datetime"},
                            ],
                            "partitions": parts,
                        }
                    ],
                },
                *(extra_datasources or []),
            ],
        }
        self.settings.write_text(yaml.safe_dump(data), encoding="utf-8")

    def server_now(self) -> dt.datetime:
        if self.kind == "mysql":
            return self.sql("SELECT UTC_TIMESTAMP(6)")[0][0]
        return self.sql("SELECT clock_timestamp() AT TIME ZONE 'UTC'")[0][0]

    def lake_rows(self) -> list[tuple[int, str | None]]:
        rows = query(self.settings, f"SELECT id, grp FROM site_table_{self.name} ORDER BY id")
        return [(r["id"], r["grp"]) for r in rows]

    def source_rows(self) -> list[tuple[int, str | None]]:
        return [(int(i), g) for i, g in self.sql("SELECT id, grp FROM {t} ORDER BY id")]

    def objects(self) -> dict[str, int]:
        base = self.root / "lake/site" / self.name
        return {str(p.relative_to(base)): p.stat().st_mtime_ns for p in sorted(base.rglob("*.csv"))}


@pytest.fixture(params=KINDS)
def site(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Site]:
    kind = request.param
    server: DBServer = request.getfixturevalue("mysql_server" if kind == "mysql" else "pg_server")
    conn = server.connect()
    s = Site(tmp_path, kind, server, conn)
    old = dt.datetime(2020, 1, 1)
    s.create([(i, ["a", "b", "c", None][i % 4], old) for i in range(40)])
    s.write_settings()
    for command in ("create-datalake-tables", "create-datalake-views"):
        assert run(s.settings, command, "--all").exit_code == 0
    result = run(s.settings, "extract-and-load", "--all")
    assert result.exit_code == 0, result.output
    yield s
    s.sql("DROP TABLE IF EXISTS {t}")
    conn.close()


def test_deletes_moves_and_emptied_partitions_are_caught_incrementally(site: Site) -> None:
    site.sql("DELETE FROM {t} WHERE id IN (1, 5)")  # rows gone from partition b
    site.sql("UPDATE {t} SET grp = 'a' WHERE id = 2")  # moves c -> a, `modified` untouched
    site.sql("DELETE FROM {t} WHERE grp IS NULL")  # a whole partition emptied
    result = run(site.settings, "extract-and-load", "--all")
    assert result.exit_code == 0, result.output
    assert "removed 1 partition(s) no longer in the source" in result.output
    assert site.lake_rows() == site.source_rows()
    assert not any("__HIVE_DEFAULT_PARTITION__" in key for key in site.objects())


def test_a_change_rewrites_only_its_partition(site: Site) -> None:
    before = site.objects()
    now = site.server_now()
    site.sql("UPDATE {t} SET modified = %s WHERE id = 4", (now,))  # partition a
    result = run(site.settings, "extract-and-load", "--all")
    assert result.exit_code == 0, result.output
    after = site.objects()
    changed = sorted(k for k in after if after[k] != before.get(k))
    assert changed == ["grp=a/" + site.name + ".csv"]


def test_changes_made_during_a_gap_longer_than_the_interval(
    site: Site, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The next run happens 5 hours later (the source's clock is injected): a change made
    3 hours before it, outside `now - interval`, is still picked up."""
    from panorama_kpi.sources.sql import SQLSource

    later = site.server_now() + dt.timedelta(hours=5)
    site.sql("UPDATE {t} SET modified = %s, grp = 'z' WHERE id = 3", (later - dt.timedelta(hours=3),))
    monkeypatch.setattr(SQLSource, "clock", lambda self: later)
    result = run(site.settings, "extract-and-load", "--all")
    assert result.exit_code == 0, result.output
    assert site.lake_rows() == site.source_rows()


def test_window_uses_the_source_clock_not_the_tool_clock(site: Site) -> None:
    """Records carry the server's time: a tool machine whose clock is off changes nothing."""
    store_rows = query(
        site.settings, f"SELECT started, status FROM site_runs WHERE table_name = '{site.name}'"
    )
    assert [r["status"] for r in store_rows] == ["ok"]
    started = dt.datetime.fromisoformat(store_rows[0]["started"])
    assert abs((site.server_now() - started).total_seconds()) < 60


def test_local_times_of_the_application(site: Site) -> None:
    """An application writing local time 5 hours behind UTC (America/Bogota, no DST)."""
    site.write_settings(timestamp_timezone="America/Bogota")
    local_now = site.server_now() - dt.timedelta(hours=5)
    site.sql("UPDATE {t} SET grp = 'new', modified = %s WHERE id = 7", (local_now,))
    result = run(site.settings, "extract-and-load", "--all")
    assert result.exit_code == 0, result.output
    assert site.lake_rows() == site.source_rows()
    # a swap between two partitions keeps every count: only the window can see it
    site.sql("UPDATE {t} SET grp = 'a', modified = %s WHERE id = 9", (local_now,))
    site.sql("UPDATE {t} SET grp = 'b', modified = %s WHERE id = 8", (local_now,))
    result = run(site.settings, "extract-and-load", "--all")
    assert result.exit_code == 0, result.output
    assert site.lake_rows() == site.source_rows()


def test_transient_error_is_retried(site: Site, monkeypatch: pytest.MonkeyPatch) -> None:
    """The server kills the dumping connection once; the table is retried and loads."""
    from panorama_kpi.sources import source_class
    from panorama_kpi.sources.sql import SQLSource

    cls = source_class(site.kind)
    admin = site.server.connect()
    original = cls._stream  # type: ignore[attr-defined]
    killed: list[int] = []

    def stream_then_die(self: SQLSource, *args: Any) -> Iterator[str]:
        if not killed:
            if site.kind == "mysql":
                (cid,) = self._rows("SELECT CONNECTION_ID()", [])[0]
                with admin.cursor() as cur:
                    cur.execute(f"KILL {int(cid)}")
            else:
                (pid,) = self._rows("SELECT pg_backend_pid()", [])[0]
                with admin.cursor() as cur:
                    cur.execute("SELECT pg_terminate_backend(%s)", (pid,))
            killed.append(1)
        return original(self, *args)

    monkeypatch.setattr(cls, "_stream", stream_then_die)
    site.sql("UPDATE {t} SET modified = %s WHERE id = 4", (site.server_now(),))
    result = run(site.settings, "extract-and-load", "--all", "--workers", "1", "--force")
    admin.close()
    assert result.exit_code == 0, result.output
    assert killed and "retrying in" in result.output
    assert site.lake_rows() == site.source_rows()


def test_a_failing_datasource_does_not_stop_another_and_status_shows_both(site: Site) -> None:
    bad = {
        "type": site.kind,
        "name": "broken",
        **{**site.server.settings_dict(), "password": "wrong"},
        "tables": [{"name": f"{site.name}_other", "fields": [{"name": "id", "type": "int"}]}],
    }
    site.write_settings(extra_datasources=[bad])
    assert run(site.settings, "create-datalake-tables", "--all").exit_code == 0
    assert run(site.settings, "create-datalake-views", "--all").exit_code == 0
    site.sql("UPDATE {t} SET modified = %s WHERE id = 4", (site.server_now(),))
    result = run(site.settings, "extract-and-load", "--all")
    assert result.exit_code == 1
    assert "1 table(s) loaded, 1 failed" in result.output and "access denied" in result.output
    runs = query(site.settings, "SELECT datasource, status, error FROM site_runs ORDER BY started")
    assert {(r["datasource"], r["status"]) for r in runs} == {("db", "ok"), ("broken", "failed")}
    status = run(site.settings, "status", "--format", "json")
    assert status.exit_code == 0, status.output
    by_ds = {s["datasource"]: s for s in json.loads(status.output)}
    assert by_ds["db"]["last_status"] == "ok" and by_ds["db"]["rows"] == 40
    assert by_ds["broken"]["last_success"] is None and "access denied" in by_ds["broken"]["last_error"]
    stale = run(site.settings, "status", "--max-age", "2h")
    assert stale.exit_code == 1 and "stale: broken." in stale.output
    assert run(site.settings, "status", "-d", "db", "--max-age", "2h").exit_code == 0


def test_a_second_run_exits_3_naming_the_holder_or_waits(site: Site) -> None:
    storage = LocalStorage(site.root / "lake")
    key = lock_key("site", [], "db")
    holder = RunLock(storage, key, "other-run", "datasource 'db'")
    holder.acquire()
    try:
        result = run(site.settings, "extract-and-load", "--all")
        assert result.exit_code == 3
        assert "datasource 'db' is being loaded by host" in result.output and "other-run" in result.output
        assert result.output.count("\n") == 1
        threading.Timer(0.5, holder.release).start()
        result = run(site.settings, "extract-and-load", "--all", "--wait", "20")
        assert result.exit_code == 0, result.output
    finally:
        holder.release()


def test_a_dead_runs_lock_is_taken_over(site: Site, monkeypatch: pytest.MonkeyPatch) -> None:
    storage = LocalStorage(site.root / "lake")
    key = lock_key("site", [], "db")
    assert storage.create_exclusive(
        key, json.dumps({"run_id": "dead", "host": "h", "pid": 1, "started": "x"})
    )
    monkeypatch.setenv("PANORAMA_LOCK_TTL", "1")
    import os

    os.utime(storage.root / key, (1, 1))  # silent since 1970
    result = run(site.settings, "extract-and-load", "--all")
    assert result.exit_code == 0, result.output
    assert "took over the lock of datasource 'db' from host h pid 1" in result.output
    assert storage.read_versioned(key) is None  # released at the end


def test_a_lock_taken_over_stops_its_holder(tmp_path: Path) -> None:
    storage = LocalStorage(tmp_path)
    lock = RunLock(storage, "_panorama/locks/x.lock", "mine", "datasource 'x'", ttl=100)
    lock.acquire()
    current = storage.read_versioned("_panorama/locks/x.lock")
    assert current is not None
    assert storage.replace_if("_panorama/locks/x.lock", '{"run_id": "thief"}', current.token)
    lock.heartbeat()
    with pytest.raises(Exception, match="taken over by another run"):
        lock.check()
    lock.release()
    assert storage.read_versioned("_panorama/locks/x.lock").text == '{"run_id": "thief"}'  # type: ignore[union-attr]


texts = st.one_of(st.none(), st.text())


@given(texts, texts, st.integers(0, 2**62), st.sampled_from(["ok", "failed", "interrupted"]))
def test_run_records_round_trip(error: str | None, layout: str | None, rows: int, status: str) -> None:
    record = RunRecord(run_id="r1", rows=rows, status=status, error=error, layout=layout, seconds=1.5)
    text = header_line(RunRecord.columns()) + encode_row(record.values())
    assert parse_record(text) == record


@pytest.mark.parametrize("kind", KINDS)
def test_rows_moving_during_a_full_load_are_read_once(
    kind: str, request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    """While a full partitioned load runs (two connections), another client keeps moving
    rows between partitions: the lake holds every id exactly once (one snapshot)."""
    server: DBServer = request.getfixturevalue("mysql_server" if kind == "mysql" else "pg_server")
    conn = server.connect()
    s = Site(tmp_path, kind, server, conn)
    n = 200_000
    ts = "DATETIME(6)" if kind == "mysql" else "TIMESTAMP(6)"
    s.sql(f"CREATE TABLE {{t}} (id INT PRIMARY KEY, grp VARCHAR(20), modified {ts}, pad VARCHAR(100))")
    if kind == "mysql":
        s.sql(
            f"INSERT INTO {{t}} SELECT seq, CONCAT('g', seq % 40), '2020-01-01', REPEAT('x', 80) FROM seq_1_to_{n}"
        )
    else:
        s.sql(
            f"INSERT INTO {{t}} SELECT i, 'g' || (i % 40), '2020-01-01', repeat('x', 80) FROM generate_series(1, {n}) i"
        )
    s.write_settings()
    stop = threading.Event()
    moved = [0]

    def mover() -> None:
        other = server.connect()
        step = 0
        with other.cursor() as cur:
            while not stop.is_set():
                step += 1
                low = (step * 7919) % n
                cur.execute(
                    f"UPDATE {s.name} SET grp = CASE WHEN grp = 'g0' THEN 'g39' ELSE 'g0' END "
                    f"WHERE id BETWEEN {low} AND {low + 50}"
                )
                moved[0] += 1
        other.close()

    try:
        for command in ("create-datalake-tables", "create-datalake-views"):
            assert run(s.settings, command, "--all").exit_code == 0
        thread = threading.Thread(target=mover, daemon=True)
        thread.start()
        result = run(s.settings, "extract-and-load", "--all", "--force", "--workers", "2")
        stop.set()
        thread.join()
        assert result.exit_code == 0, result.output
        assert moved[0] > 10  # the mover really ran during the load
        counts = query(
            s.settings, f"SELECT count(*) AS rows, count(DISTINCT id) AS ids FROM site_table_{s.name}"
        )
        assert counts == [{"rows": n, "ids": n}]
    finally:
        stop.set()
        s.sql("DROP TABLE IF EXISTS {t}")
        conn.close()
