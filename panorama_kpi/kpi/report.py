"""`report`: one self-contained HTML file of the KPI history, readable from disk.

The numbers come from `kpi_history_periods` (the same aggregation rules as any
query over the history); the charts are drawn by uPlot, a small charting library
vendored in `assets/` and inlined into the page with its stylesheet, so the file
makes no network request. The page's JavaScript only picks the period and draws.
"""

from __future__ import annotations

import datetime as dt
import json
import re
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from panorama_kpi.engines.base import Engine
from panorama_kpi.errors import EngineError
from panorama_kpi.kpi.definitions import load_kpis
from panorama_kpi.kpi.history import HISTORY_VIEW, PERIODS_VIEW
from panorama_kpi.kpi.template import site_condition
from panorama_kpi.runs.table import runs_table
from panorama_kpi.settings import Settings
from panorama_kpi.timeparse import utcnow
from panorama_kpi.views import quote_ident

ASSETS = Path(__file__).resolve().parent / "assets"
PERIODS = ("day", "week", "month")
#: Series drawn per chart; a KPI with more dimensions shows those with the largest latest value.
TOP_N = 8


@dataclass
class Series:
    points: dict[str, dict[dt.date, float | None]] = field(default_factory=lambda: defaultdict(dict))


def _last_value(series: Series) -> float:
    days = series.points["day"]
    value = days[max(days)] if days else None
    return float("-inf") if value is None else value


def _epoch(day: dt.date) -> int:
    return int(dt.datetime(day.year, day.month, day.day, tzinfo=dt.UTC).timestamp())


def series_label(dimensions: str | None) -> str:
    """`{"course_id": "x", "mode": "y"}` -> `course_id=x, mode=y`; a scalar KPI is `total`."""
    try:
        data = json.loads(dimensions or "{}")
    except ValueError:
        return str(dimensions)
    if not isinstance(data, dict) or not data:
        return "total"
    return ", ".join(f"{k}={'NULL' if v is None else v}" for k, v in data.items())


def _site_filter(settings: Settings) -> tuple[str, list[str]]:
    where, values = site_condition(settings.datalake.base_partitions)
    return (f" AND {where}" if where else ""), values


def _scalar(engine: Engine, sql: str, params: list[Any]) -> Any:
    try:
        _columns, rows = engine.query(sql, params)
        row = next(rows, None)
        for _ in rows:
            pass
    except EngineError:
        return None
    return None if row is None else row[0]


def _text_time(value: Any) -> str | None:
    if isinstance(value, dt.datetime):
        return f"{value:%Y-%m-%d %H:%M}"
    return None if value is None else str(value)[:16]


def report_data(settings: Settings, engine: Engine, since: dt.date, now: dt.datetime) -> dict[str, Any]:
    """Everything the page shows, as one JSON-ready mapping."""
    definitions, _problems = load_kpis(settings)
    info = {k.name: k for k in definitions}
    site, params = _site_filter(settings)
    _columns, rows = engine.query(
        f"SELECT kpi, dimensions, period, period_start, value FROM {quote_ident(PERIODS_VIEW)} "
        f"WHERE period_start >= CAST(? AS DATE){site}",
        [since.isoformat(), *params],
    )
    by_kpi: dict[str, dict[str, Series]] = defaultdict(dict)
    for kpi, dimensions, period, start, value in rows:
        start = start if isinstance(start, dt.date) else dt.date.fromisoformat(str(start)[:10])
        label = series_label(dimensions)
        series = by_kpi[kpi].setdefault(label, Series())
        series.points[period][start] = None if value is None else float(value)
    names = [n for n in info if n in by_kpi] + sorted(n for n in by_kpi if n not in info)
    kpis, latest = [], []
    for name in names:
        definition = info.get(name)
        unit = definition.unit if definition else ""
        all_series = by_kpi[name]
        labels = sorted(all_series, key=lambda s: (-_last_value(all_series[s]), s))
        shown = labels[:TOP_N]
        periods = {}
        for period in PERIODS:
            starts = sorted({d for s in shown for d in all_series[s].points[period]})
            periods[period] = {
                "x": [_epoch(d) for d in starts],
                "y": [[all_series[s].points[period].get(d) for d in starts] for s in shown],
            }
        kpis.append(
            {
                "name": name,
                "description": definition.description if definition else "",
                "unit": unit,
                "aggregation": definition.aggregation if definition else "",
                "series": shown,
                "hidden_series": len(labels) - len(shown),
                "periods": periods,
            }
        )
        for label in shown:
            days = sorted(all_series[label].points["day"].items())
            if not days:
                continue
            (day, value), previous = days[-1], days[-2][1] if len(days) > 1 else None
            change = None if value is None or previous is None else value - previous
            latest.append(
                {
                    "kpi": name,
                    "series": label,
                    "snapshot": day.isoformat(),
                    "value": value,
                    "change": change,
                    "unit": unit,
                }
            )
    runs = quote_ident(settings.view_name(runs_table(settings)))
    return {
        "site": {p.name: p.value for p in settings.datalake.base_partitions},  # sites may share a lake
        "generated": f"{now:%Y-%m-%d %H:%M}",
        "since": since.isoformat(),
        "last_loaded": _text_time(
            _scalar(engine, f"SELECT max(finished) FROM {runs} WHERE status = ?", ["ok"])
        ),
        "last_computed": _text_time(
            _scalar(
                engine, f"SELECT max(computed_at) FROM {quote_ident(HISTORY_VIEW)} WHERE true{site}", params
            )
        ),
        "kpis": kpis,
        "latest": latest,
    }


def _script_safe(text: str) -> str:
    """Text placed inside a <script> element cannot close it early."""
    return text.replace("</", "<\\/").replace("<!--", "<\\!--")


def render_html(data: dict[str, Any], title: str) -> str:
    import html

    template = (ASSETS / "report.html").read_text(encoding="utf-8")
    payload = json.dumps(data, ensure_ascii=False, allow_nan=False, separators=(",", ":"))
    parts = {
        "__TITLE__": html.escape(title),
        "__UPLOT_CSS__": (ASSETS / "uPlot.min.css").read_text(encoding="utf-8"),
        "__UPLOT_JS__": _script_safe((ASSETS / "uPlot.iife.min.js").read_text(encoding="utf-8")),
        "__DATA__": _script_safe(payload),
    }
    # one pass over the template: inserted text is never searched for markers
    return re.sub("|".join(parts), lambda m: parts[m.group(0)], template)


def render_json(data: dict[str, Any], _title: str) -> str:
    """The page's numbers alone, for other tools (dashboards, scripts) to read."""
    return json.dumps(data, ensure_ascii=False, allow_nan=False, indent=1) + "\n"


FORMATS = {"html": render_html, "json": render_json}


def write_report(
    settings: Settings,
    engine: Engine,
    out: Path,
    since: dt.date,
    now: dt.datetime | None = None,
    fmt: str = "html",
) -> Path:
    """Write the report as `fmt` (one of FORMATS), replacing `out` in one step."""
    from panorama_kpi.kpi.compute import ensure_history

    now = now or utcnow()
    ensure_history(settings, engine)  # a site with no history yet gets an empty page
    data = report_data(settings, engine, since, now)
    site = ", ".join(f"{k}={v}" for k, v in data["site"].items())
    title = settings.datalake.base_prefix or settings.datalake.datalake_database
    text = FORMATS[fmt](data, f"{title} ({site})" if site else title)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f".{out.name}.tmp")
    tmp.write_text(text, encoding="utf-8")
    tmp.replace(out)
    return out
