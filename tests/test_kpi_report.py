"""The KPI report in a real headless Chromium (Debian's `chromium`, installed by `make test`):
the page opens from disk with no network, logs no console message, draws one chart per KPI
with one point per period of the history, daily and weekly; a screenshot is kept in
test-artifacts/ for a person to look at."""

from __future__ import annotations

import datetime as dt
import re
import shutil
import subprocess
import tempfile
from pathlib import Path
from typing import Any

import pytest

from panorama_kpi.engines import open_engine
from panorama_kpi.settings import load_settings
from tests.test_kpis import cli, site, write  # noqa: F401 - `site` is a fixture

ARTIFACTS = Path(__file__).resolve().parent.parent / "test-artifacts"
#: Daily snapshots over three ISO weeks (Wednesday 2026-11-11 to Sunday 2026-11-29).
SNAPSHOTS = [dt.date(2026, 11, 11) + dt.timedelta(days=i) for i in range(0, 19, 3)]


def chromium() -> str:
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    if not found:  # fail, never skip: `make test` installs it (scripts/install-system-deps.sh)
        pytest.fail("chromium is not installed; run `make test` (or scripts/install-system-deps.sh)")
    return found


def browse(tmp: Path, url: str, *extra: str) -> subprocess.Popen[str]:
    """Chromium headless on `url`, offline: every host name fails to resolve."""
    profile = tempfile.mkdtemp(prefix="profile-", dir=tmp)  # one per browser: it locks its profile
    args = [
        chromium(),
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-background-networking",
        "--disable-component-update",
        "--no-first-run",
        f"--user-data-dir={profile}",
        "--host-resolver-rules=MAP * ~NOTFOUND",
        "--enable-logging=stderr",
        "--v=0",
        "--virtual-time-budget=1000",
        *extra,
        url,
    ]
    return subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def finish(proc: subprocess.Popen[str]) -> tuple[str, list[str]]:
    """(stdout, the page's console lines) of a finished Chromium."""
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err[-2000:]
    return out, [line for line in err.splitlines() if ":CONSOLE" in line]


def charts(dom: str) -> dict[str, dict[str, str]]:
    """data-* attributes of each chart container, by KPI."""
    found = {}
    for tag in re.findall(r"<div [^>]*data-kpi=[^>]*>", dom):
        attrs = dict(re.findall(r'data-([a-z]+)="([^"]*)"', tag))
        found[attrs["kpi"]] = attrs
    return found


def expected_points(settings: Path, period: str) -> dict[str, int]:
    """Periods per KPI counted from kpi_history itself (not from the page's data)."""
    trunc = {"day": "snapshot_date", "week": "CAST(date_trunc('week', snapshot_date) AS DATE)"}[period]
    engine = open_engine(load_settings(settings))
    try:
        _, rows = engine.query(f"SELECT kpi, COUNT(DISTINCT {trunc}) FROM kpi_history GROUP BY kpi")
        return dict(rows)
    finally:
        engine.close()


def test_the_console_check_can_fail(tmp_path: Path) -> None:
    page = write(tmp_path, "bad.html", "<html><body><script>undefinedFunction();</script></body></html>")
    _, console = finish(browse(tmp_path, page.as_uri(), "--dump-dom"))
    assert any("undefinedFunction is not defined" in line for line in console)


def test_report_in_chromium(site: Path, tmp_path: Path) -> None:  # noqa: F811
    kpis = site.parent / "kpis"
    write(
        kpis,
        "amount.sql",
        "-- unit: EUR\nSELECT grp, SUM(amount) AS value FROM {{ table('t') }} GROUP BY grp",
    )
    write(kpis, "rows.sql", "-- description: Rows </script><b>x</b>\nSELECT COUNT(*) FROM {{ table('t') }}")
    write(
        kpis,
        "share.sql",
        "-- numerator: a\n-- denominator: n\nSELECT COUNT_IF(grp = 'a') AS a, COUNT(*) AS n FROM {{ table('t') }}",
    )
    for day in SNAPSHOTS:
        result = cli(site, "compute-kpis", "--at", day.isoformat())
        assert result.exit_code == 0, result.output
    out = tmp_path / "kpis.html"
    result = cli(site, "report", "--out", str(out), "--since", "2026-11-01")
    assert result.exit_code == 0, result.output
    html = out.read_text(encoding="utf-8")
    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:)?//""", html), "the page fetches nothing"
    assert (
        "<b>x</b>" not in html.split('id="kpi-data"')[1].split("</script>")[0]
    )  # data cannot end the script

    ARTIFACTS.mkdir(exist_ok=True)
    shot = ARTIFACTS / "kpi_report.png"
    shot.unlink(missing_ok=True)
    procs: dict[str, Any] = {
        "day": browse(tmp_path, out.as_uri(), "--dump-dom"),
        "week": browse(tmp_path, out.as_uri() + "#week", "--dump-dom"),
        "shot": browse(tmp_path, out.as_uri(), f"--screenshot={shot}", "--window-size=1200,1800"),
    }
    results = {name: finish(proc) for name, proc in procs.items()}
    for name, (_, console) in results.items():
        assert console == [], (name, console)
    for period in ("day", "week"):
        drawn = charts(results[period][0])
        want = expected_points(site, period)
        assert sorted(drawn) == ["amount", "rows", "share"]
        assert (
            want == {"amount": len(SNAPSHOTS), "rows": len(SNAPSHOTS), "share": len(SNAPSHOTS)}
            or period != "day"
        )
        for kpi, attrs in drawn.items():
            assert attrs["period"] == period
            assert int(attrs["points"]) == int(attrs["rendered"]) == want[kpi], (period, kpi, attrs)
        assert drawn["amount"]["series"] == "3" and drawn["rows"]["series"] == "1"
    assert charts(results["week"][0])["rows"]["points"] == "3"
    dom = results["day"][0]
    assert "Rows &lt;/script&gt;&lt;b&gt;x&lt;/b&gt;" in dom  # text, not markup
    assert "amount</td><td>grp=a</td><td>2026-11-29</td>" in dom.replace("\n", "")
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and shot.stat().st_size > 20_000
