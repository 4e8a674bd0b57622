"""Two Open edX sites in one lake: same base_prefix and tables, different base partition
values. Each site's KPIs count only its own rows (checked against SQL on that site's own
source database), and each site's compute-kpis and report leave the other's history alone."""

from __future__ import annotations

import datetime as dt
import json
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from panorama_kpi import demo
from panorama_kpi.engines import open_engine
from panorama_kpi.settings import load_settings
from tests.test_kpi_aws import report_payload
from tests.test_kpi_correctness import EXPECTED, NOW, ROOT, build, run, same

SITES = {"site-a.example.com": 3, "site-b.example.com": 4}  # site -> demo seed
SNAPSHOT = dt.datetime(2026, 3, 10)


def site_settings(tmp: Path, site: str, database: Path) -> Path:
    raw = yaml.safe_load((ROOT / "demo" / "settings.yaml").read_text(encoding="utf-8"))
    raw["datalake"]["path"] = str(tmp / "lake")  # one lake for both
    raw["datalake"]["base_partitions"][0]["value"] = site
    raw["datasources"][0]["database"] = str(database)
    raw["kpi_views"] = [str(ROOT / "sql" / "views")]
    raw["kpis"] = [str(ROOT / "sql" / "kpis")]
    path = tmp / f"{site}.yaml"
    path.write_text(yaml.safe_dump(raw, allow_unicode=True), encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def sites(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, tuple[Path, sqlite3.Connection]]]:
    tmp = tmp_path_factory.mktemp("sites")
    out: dict[str, tuple[Path, sqlite3.Connection]] = {}
    for site, seed in SITES.items():
        database = tmp / f"{site}.sqlite3"
        demo.generate(database, seed=seed, scale=0.01, now=NOW)
        settings = build(site_settings(tmp, site, database))
        out[site] = (settings, sqlite3.connect(database))
    yield out
    for _settings, conn in out.values():
        conn.close()


def history(settings: Path, site: str) -> dict[str, dict[tuple[tuple[str, Any], ...], tuple[Any, ...]]]:
    engine = open_engine(load_settings(settings))
    try:
        _, rows = engine.query(
            "SELECT kpi, dimensions, value, numerator, denominator FROM kpi_history "
            "WHERE lms = ? AND snapshot_time = ?",
            [site, SNAPSHOT],
        )
        out: dict[str, dict[tuple[tuple[str, Any], ...], tuple[Any, ...]]] = {}
        for kpi, dims, *values in rows:
            out.setdefault(kpi, {})[tuple(json.loads(dims).items())] = tuple(values)
        return out
    finally:
        engine.close()


def test_each_site_counts_only_its_rows(sites: dict[str, tuple[Path, sqlite3.Connection]]) -> None:
    (a, (settings_a, conn_a)), (b, (settings_b, conn_b)) = sites.items()
    for settings in (settings_a, settings_b):
        result = run(settings, "compute-kpis", "--at", f"{SNAPSHOT:%Y-%m-%d %H:%M}")
        assert result.exit_code == 0, result.output
        assert "12 KPI(s) computed" in result.output
    for site, (settings, conn) in sites.items():
        got = history(settings, site)
        assert sorted(got) == sorted(EXPECTED)
        for kpi, expected in EXPECTED.items():
            same(got[kpi], expected(conn, SNAPSHOT))
    # the two sites' sources differ, so a merged count could not pass the check above
    assert EXPECTED["total_users"](conn_a, SNAPSHOT) != EXPECTED["total_users"](conn_b, SNAPSHOT)
    # each site's objects sit under its own base partition
    root = settings_a.parent / "lake" / "openedx" / "kpi_history"
    assert sorted(p.name for p in root.iterdir()) == [f"lms={a}", f"lms={b}"]


def test_a_sites_rerun_and_report_leave_the_other_alone(
    sites: dict[str, tuple[Path, sqlite3.Connection]], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (a, (settings_a, conn_a)), (b, (settings_b, _conn_b)) = sites.items()
    at = f"{SNAPSHOT:%Y-%m-%d %H:%M}"
    assert run(settings_a, "compute-kpis", "--at", at).exit_code == 0
    before = history(settings_a, a)
    assert run(settings_b, "compute-kpis", "--at", at).exit_code == 0
    assert run(settings_b, "compute-kpis", "--at", at, "--kpi", "total_users").exit_code == 0
    assert history(settings_a, a) == before
    out = tmp_path / "a.html"
    assert run(settings_a, "report", "--out", str(out), "--since", "2026-03-01").exit_code == 0
    page = report_payload(out)
    latest = {(r["kpi"], r["series"]): r["value"] for r in page["latest"]}
    ((users,),) = [v[:1] for v in EXPECTED["total_users"](conn_a, SNAPSHOT).values()]
    assert latest[("total_users", "total")] == users
    engine = open_engine(load_settings(settings_b))
    try:
        _, rows = engine.query(
            "SELECT lms, value FROM kpi_history_periods WHERE kpi = 'total_users' AND period = 'day' "
            "AND period_start = ? ORDER BY lms",
            [SNAPSHOT.date()],
        )
        values = dict(rows)
    finally:
        engine.close()
    assert values[a] == users and values[b] == history(settings_b, b)["total_users"][()][0]
    # the same numbers as JSON, for other tools
    monkeypatch.chdir(tmp_path)
    result = run(settings_a, "report", "--format", "json", "--since", "2026-03-01")
    assert result.exit_code == 0 and result.output == f"wrote {Path('kpis.json')}\n"
    data = json.loads((tmp_path / "kpis.json").read_text(encoding="utf-8"))
    assert {k: v for k, v in data.items() if k != "generated"} == {
        k: v for k, v in page.items() if k != "generated"
    }
    assert len(data["kpis"]) == 12 and data["kpis"][0]["periods"]["day"]["x"]
    assert data["site"] == {"lms": a} and f"<h1>KPIs — openedx (lms={a})</h1>" in out.read_text(
        encoding="utf-8"
    )


def test_sites_keyed_by_an_integer_partition(tmp_path: Path) -> None:
    """A base partition declared `int`: the site's rows are selected by the typed value."""
    kpis = tmp_path / "kpis"
    kpis.mkdir()
    (kpis / "rows.sql").write_text("SELECT COUNT(*) FROM {{ table('t') }}", encoding="utf-8")
    for site, n in ((7, 3), (70, 5)):
        db = tmp_path / f"{site}.sqlite3"
        conn = sqlite3.connect(db)
        conn.execute("CREATE TABLE t (id INTEGER)")
        conn.executemany("INSERT INTO t VALUES (?)", [(i,) for i in range(n)])
        conn.commit()
        conn.close()
        settings = tmp_path / f"{site}.yaml"
        settings.write_text(
            f"""datalake: {{type: local, path: {tmp_path / "lake"}, base_prefix: campus,
  base_partitions: [{{name: site_id, type: int, value: '{site}'}}]}}
kpis: [{kpis}]
datasources:
- {{type: sqlite, name: src, database: {db}, tables: [{{name: t, fields: [{{name: id, type: int}}]}}]}}
""",
            encoding="utf-8",
        )
        for command in ("create-datalake-tables", "extract-and-load", "create-datalake-views"):
            assert run(settings, command, "--all").exit_code == 0
        assert run(settings, "compute-kpis", "--at", "2026-03-10").exit_code == 0
        out = tmp_path / f"{site}.json"
        assert (
            run(settings, "report", "--format", "json", "--out", str(out), "--since", "2026-03-01").exit_code
            == 0
        )
        ((row,),) = [json.loads(out.read_text(encoding="utf-8"))["latest"]]
        assert (row["kpi"], row["value"]) == ("rows", n)
    engine = open_engine(load_settings(settings))
    try:
        rows = list(engine.query("SELECT site_id, value FROM kpi_history ORDER BY site_id")[1])
    finally:
        engine.close()
    assert rows == [(7, 3.0), (70, 5.0)]
