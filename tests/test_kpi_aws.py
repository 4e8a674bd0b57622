"""compute-kpis and report on an aws lake, through the CLI, against the moto server.

Athena's answers come from `ComputingAthena` (DuckDB over the objects of registered Glue
partitions, with every view Athena received replayed), so the history the aws lake
writes is checked against the same commands run on a local lake over the same source.
"""

from __future__ import annotations

import datetime as dt
import json
import re
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result

from panorama_kpi import demo
from panorama_kpi.cli import main
from panorama_kpi.engines import open_engine
from panorama_kpi.lake.layout import decode_segment
from panorama_kpi.settings import load_settings
from tests.athena_standin import ComputingAthena
from tests.aws import Recorder, aws_env, client, glue_partitions, prepare, recording
from tests.test_aws_cli import _demo_settings
from tests.test_kpi_correctness import build
from tests.test_kpis import t_site

BUCKET = "panorama-kpi-lake"
NOW = dt.datetime(2026, 3, 14, 15, 9, 26, 535897)
SNAPSHOTS = ["2026-03-09 00:00", "2026-03-10 00:00", "2026-03-10 12:00"]
HISTORY = (
    "SELECT kpi, snapshot_time, dimensions, value, numerator, denominator, unit, aggregation, "
    "snapshot_date, lms FROM kpi_history ORDER BY kpi, snapshot_time, dimensions"
)


def run(settings: Path, *args: str) -> Result:
    return CliRunner().invoke(main, ["--settings", str(settings), *args], catch_exceptions=False)


@pytest.fixture(scope="module")
def demo_db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("demo") / "small.sqlite3"
    demo.generate(path, seed=5, scale=0.02, now=NOW)
    return path


@pytest.fixture
def athena(
    moto_endpoint: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path, demo_db: Path
) -> Iterator[tuple[Path, Recorder, ComputingAthena]]:
    aws_env(monkeypatch, moto_endpoint)
    prepare(moto_endpoint, BUCKET, "panorama")
    recorder = recording(monkeypatch)
    remote = _demo_settings(
        tmp_path / "aws.yaml",
        demo_db,
        {"type": "aws", "panorama_raw_data_bucket": BUCKET, "datalake_database": "panorama"},
    )
    standin = ComputingAthena(load_settings(remote), moto_endpoint, tmp_path / "athena").install(recorder)
    try:
        yield remote, recorder, standin
    finally:
        standin.close()


def local_history(settings: Path) -> list[tuple[Any, ...]]:
    engine = open_engine(load_settings(settings))
    try:
        return list(engine.query(HISTORY)[1])
    finally:
        engine.close()


def _keys(prefix: str) -> list[str]:
    out: list[str] = []
    for page in client("s3").get_paginator("list_objects_v2").paginate(Bucket=BUCKET, Prefix=prefix):
        out += [o["Key"] for o in page.get("Contents", ())]
    return sorted(out)


def report_payload(path: Path) -> dict[str, Any]:
    html = path.read_text(encoding="utf-8")
    match = re.search(r'<script id="kpi-data" type="application/json">(.*?)</script>', html, re.S)
    assert match, "no data in the page"
    data: dict[str, Any] = json.loads(match.group(1).replace("<\\/", "</"))
    return data


def snapshot_literal(at: str) -> str:
    return f"'{at}:00.000'"


def test_compute_kpis_and_report_on_aws(
    athena: tuple[Path, Recorder, ComputingAthena], tmp_path: Path, demo_db: Path
) -> None:
    """The pack computed on an aws lake: history objects in S3, their partitions registered in
    Glue in one call per run, each KPI query run by Athena with the snapshot as an execution
    parameter, the same history as a local lake's, a re-run replacing its snapshot, and a
    report that reads the history through Athena."""
    remote, recorder, standin = athena
    db = tmp_path / "app.sqlite3"
    db.write_bytes(demo_db.read_bytes())
    for path in (remote,):
        path.write_text(path.read_text(encoding="utf-8").replace(str(demo_db), str(db)), encoding="utf-8")
    local = _demo_settings(tmp_path / "local.yaml", db, {"type": "local", "path": str(tmp_path / "lake")})
    build(local)
    build(remote)
    for at in SNAPSHOTS:
        assert run(local, "compute-kpis", "--at", at).exit_code == 0
        before = len(recorder.calls)
        result = run(remote, "compute-kpis", "--at", at)
        assert result.exit_code == 0, result.output
        assert "12 KPI(s) computed" in result.output and "0 failed" in result.output
        calls = recorder.calls[before:]
        assert [o for s, o, _ in calls if (s, o) == ("glue", "BatchCreatePartition")] == [
            "BatchCreatePartition"
        ]
        queries = [
            (p["QueryString"], p.get("ExecutionParameters", []))
            for s, o, p in calls
            if o == "StartQueryExecution" and not p["QueryString"].startswith("CREATE")
        ]
        assert len(queries) == 12
        for sql, params in queries:  # the snapshot and the site's base partition, bound
            assert "CAST(? AS TIMESTAMP)" in sql and at[:10] not in sql and "demo.example.com" not in sql
            assert set(params) == {snapshot_literal(at), "'demo.example.com'"}

    history = standin.query(HISTORY)
    assert history == local_history(local) and len(history) > 100
    keys = _keys("openedx/kpi_history/")
    assert len(keys) == 12 * len(SNAPSHOTS)
    on_s3 = {tuple(decode_segment(s)[1] for s in k.split("/")[2:-1]) for k in keys}
    assert glue_partitions("panorama", "kpi_history_raw") == on_s3
    assert len(on_s3) == 12 * 2  # two snapshot dates

    # a re-run after the source changed replaces that snapshot's rows
    conn = sqlite3.connect(db)
    conn.execute(
        "INSERT INTO auth_user (id, username, date_joined, is_active, is_staff, is_superuser) "
        "VALUES (999999, 'late', '2026-03-10 01:00:00.000000', 1, 0, 0)"
    )
    conn.commit()
    conn.close()
    assert run(remote, "extract-and-load", "--all", "--force").exit_code == 0
    assert run(remote, "compute-kpis", "--at", SNAPSHOTS[2]).exit_code == 0
    again = standin.query(HISTORY)
    assert len(again) == len(history) and _keys("openedx/kpi_history/") == keys
    changed = [(a, b) for a, b in zip(history, again, strict=True) if a != b]
    assert [(a[0], a[1], a[3], b[3]) for a, b in changed if a[0] == "total_users"] == [
        (
            "total_users",
            dt.datetime(2026, 3, 10, 12),
            history_value(history, "total_users", 2),
            history_value(history, "total_users", 2) + 1,
        )
    ]
    assert all(a[1] == dt.datetime(2026, 3, 10, 12) for a, _ in changed)

    # the report reads the history through Athena
    assert run(local, "extract-and-load", "--all", "--force").exit_code == 0
    assert run(local, "compute-kpis", "--at", SNAPSHOTS[2]).exit_code == 0
    assert local_history(local) == again
    answered = len(standin.answered)
    for settings, out in ((local, tmp_path / "local.html"), (remote, tmp_path / "aws.html")):
        result = run(settings, "report", "--out", str(out), "--since", "2026-03-01")
        assert result.exit_code == 0, result.output
    periods = [sql for sql, _p, _rows in standin.answered[answered:] if "kpi_history_periods" in sql]
    assert len(periods) == 1
    want, got = report_payload(tmp_path / "local.html"), report_payload(tmp_path / "aws.html")
    assert got["kpis"] == want["kpis"] and got["latest"] == want["latest"] and len(got["kpis"]) == 12
    assert got["last_computed"] and got["last_loaded"]


def history_value(history: list[tuple[Any, ...]], kpi: str, index: int) -> float:
    return [r[3] for r in history if r[0] == kpi][index]


SITE_KPIS = {
    "rows": "SELECT COUNT(*) FROM {{ table('t') }} WHERE created < {{ snapshot }}",
    "amount_by_group": (
        "-- aggregation: sum\nSELECT grp, SUM(amount) AS value FROM {{ table('t') }}\n"
        "WHERE created < {{ snapshot }} GROUP BY grp"
    ),
}


def test_two_sites_in_one_bucket(athena: tuple[Path, Recorder, ComputingAthena], tmp_path: Path) -> None:
    """Two sites sharing base_prefix and tables: each one's KPIs count its own rows, and the
    second site's compute leaves the first one's history objects and partitions alone."""
    _remote, _recorder, standin = athena
    kpis = tmp_path / "kpis"
    kpis.mkdir()
    for name, sql in SITE_KPIS.items():
        (kpis / f"{name}.sql").write_text(sql, encoding="utf-8")
    sites: dict[str, tuple[Path, Path]] = {}
    for site, n in (("a.example.com", 5), ("b.example.com", 9)):
        db = tmp_path / f"{site}.sqlite3"
        rows = [(i, "xy"[i % 2], i * 1.5, f"2026-03-0{1 + i % 8} 10:00:00.000000") for i in range(n)]
        datalake = (
            f"{{type: aws, panorama_raw_data_bucket: {BUCKET}, datalake_database: panorama,\n"
            f"  base_prefix: campus, base_partitions: [{{name: lms, value: {site}}}]}}"
        )
        settings = t_site(tmp_path / f"{site}.yaml", datalake, db, rows, kpis)
        build(settings)
        sites[site] = (settings, db)
    first: list[str] = []
    for settings, _db in sites.values():
        result = run(settings, "compute-kpis", "--at", "2026-03-05")
        assert result.exit_code == 0, result.output
        first = first or _keys("campus/kpi_history/")
    assert set(first) < set(_keys("campus/kpi_history/"))
    assert glue_partitions("panorama", "kpi_history_raw") == {
        (site, "2026-03-05", kpi) for site in sites for kpi in SITE_KPIS
    }
    got = standin.query("SELECT lms, kpi, dimensions, value FROM kpi_history ORDER BY lms, kpi, dimensions")
    want = []
    for site, (_settings, db) in sites.items():
        conn = sqlite3.connect(db)
        cutoff = "2026-03-05 00:00:00.000000"
        sums = conn.execute(
            "SELECT grp, SUM(amount) FROM t WHERE created < ? GROUP BY grp ORDER BY grp", [cutoff]
        )
        want += [(site, "amount_by_group", f'{{"grp":"{g}"}}', v) for g, v in sums]
        ((count,),) = conn.execute("SELECT COUNT(*) FROM t WHERE created < ?", [cutoff])
        want.append((site, "rows", "{}", float(count)))
        conn.close()
    assert got == want

    # bad KPIs on Athena: one line each naming the file, the others still written
    written = _keys("campus/kpi_history/")
    bad = {
        "missing_view": "SELECT COUNT(*) FROM no_such_view",
        "syntax": "-- unit: x\nSELECT COUNT(*)\nFROM {{ table('t') }} WHERE (\n",
        "words": "SELECT 'many' AS value",
        "nothing": "SELECT grp, COUNT(*) AS value FROM {{ table('t') }} WHERE id < 0 GROUP BY grp",
    }
    for name, sql in bad.items():
        (kpis / f"{name}.sql").write_text(sql, encoding="utf-8")
    settings_a = next(iter(sites.values()))[0]
    result = run(settings_a, "compute-kpis", "--at", "2026-03-05")
    assert result.exit_code == 1
    failed = [x for x in result.output.splitlines() if x.startswith("failed: ")]
    assert len(failed) == 4 and "2 KPI(s) computed" in result.output
    assert any(
        "missing_view.sql): Athena query " in x and "FAILED" in x and "no_such_view" in x for x in failed
    )
    assert any(f"{kpis / 'syntax.sql'}: not valid Athena SQL: line 3" in x for x in failed)
    assert any("words.sql): the value is not a number: 'many'" in x for x in failed)
    assert any("nothing.sql): returned no rows" in x for x in failed)
    assert _keys("campus/kpi_history/") == written
    assert (
        standin.query("SELECT lms, kpi, dimensions, value FROM kpi_history ORDER BY lms, kpi, dimensions")
        == want
    )
