"""What the tool holds on a source while it reads: a reader that stops reading (a stopped
process, a hung disk) is dropped by the server after `read_timeout` seconds, so it
cannot keep MySQL's metadata lock (blocking ALTER TABLE and the writes behind it) or
PostgreSQL's snapshot (holding back vacuum) for long."""

from __future__ import annotations

import threading
import time
import uuid

import pytest

from panorama_kpi.settings import DatasourceSettings, TableSettings
from panorama_kpi.sources import open_source
from tests.servers import DBServer

ROWS = 200_000  # ~40 MB of text: far more than the queue and the socket buffers hold


@pytest.mark.parametrize("kind", ["mysql", "postgresql"])
def test_a_stalled_reader_is_dropped_by_the_server(kind: str, request: pytest.FixtureRequest) -> None:
    server: DBServer = request.getfixturevalue("mysql_server" if kind == "mysql" else "pg_server")
    admin = server.connect()
    name = f"stall_{uuid.uuid4().hex[:8]}"
    with admin.cursor() as cur:
        if kind == "mysql":
            cur.execute(f"CREATE TABLE {name} (id INT PRIMARY KEY, body TEXT)")
            cur.execute(f"INSERT INTO {name} SELECT seq, REPEAT('x', 200) FROM seq_1_to_{ROWS}")
        else:
            cur.execute(
                f"CREATE TABLE {name} AS SELECT i AS id, repeat('x', 200) AS body FROM generate_series(1, {ROWS}) i"
            )
    ds = DatasourceSettings(kind, "db", {**server.settings_dict(), "read_timeout": 2}, [])
    table = TableSettings(name)
    source = open_source(ds)
    try:
        chunks = source.dump(table, ["id", "body"])
        next(iter(chunks))  # the query runs; now the reader stops reading
        backend = source.conn.get_backend_pid() if kind == "postgresql" else None  # type: ignore[attr-defined]
        if kind == "mysql":
            done = threading.Event()

            def alter() -> None:
                with server.connect() as other, other.cursor() as cur:
                    cur.execute("SET SESSION lock_wait_timeout = 30")
                    cur.execute(f"ALTER TABLE {name} ADD COLUMN extra INT")
                done.set()

            started = time.monotonic()
            threading.Thread(target=alter, daemon=True).start()
            assert done.wait(20), "ALTER TABLE stayed blocked behind the stalled reader"
            assert time.monotonic() - started < 15
        else:
            deadline = time.monotonic() + 20
            holding = 1
            while time.monotonic() < deadline and holding:
                time.sleep(0.5)
                with admin.cursor() as cur:
                    cur.execute(
                        "SELECT count(*) FROM pg_stat_activity WHERE pid = %s AND backend_xmin IS NOT NULL",
                        (backend,),
                    )
                    holding = cur.fetchone()[0]
            assert holding == 0, "the stalled reader still holds its snapshot"
        with pytest.raises(Exception):  # noqa: B017 - the reader finds its query gone, in one line
            for _ in chunks:
                pass
    finally:
        source.close()
        with admin.cursor() as cur:
            cur.execute(f"DROP TABLE {name}")
        admin.close()
