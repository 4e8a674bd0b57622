"""KPI definitions: `.sql` files with a header, and `kpis:` entries in the settings.

A KPI is one query returning one value, or one value per dimension. Its columns:
the value (`value`, or the header's `value:` column; a one-column result is the
value whatever its name, so `SELECT COUNT(*) FROM ...` works as written), the
numerator and denominator the header names (for ratios and averages, so history
can be aggregated exactly), and every other column is a dimension. A file starts
with `-- key: value` lines:

    -- name: course_completion_rate
    -- description: Share of active enrolments whose learner passed
    -- unit: ratio
    -- numerator: passed
    -- denominator: enrolled
    -- aggregation: last
    SELECT course_id, ... FROM {{ table('student_courseenrollment') }} ...
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import sqlglot

from panorama_kpi.errors import SettingsError
from panorama_kpi.kpi.template import Rendered, TableNamer, render
from panorama_kpi.settings import BasePartition, Settings

HEADER_KEYS = ("name", "description", "unit", "value", "numerator", "denominator", "aggregation")
AGGREGATIONS = ("last", "sum", "ratio")
NAME_RE = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$")
_HEADER_RE = re.compile(r"^--\s*([A-Za-z_]+)\s*:\s*(.*?)\s*$")


@dataclass(frozen=True)
class KpiDefinition:
    name: str
    sql: str  # Athena dialect, placeholders not yet substituted
    where: str  # the file, or the settings key, for messages
    description: str = ""
    unit: str = ""
    value: str = "value"
    numerator: str | None = None
    denominator: str | None = None
    aggregation: str = "last"  # how snapshots combine over a span: last | sum | ratio

    def render(self, tables: TableNamer, site: Sequence[BasePartition] = ()) -> Rendered:
        """The query with its placeholders substituted, its tables restricted to `site`."""
        out = render(self.sql, tables, self.where, allow_snapshot=True, site=site)
        return Rendered(out.sql.rstrip().rstrip(";"), out.params)


def _build(values: dict[str, Any], sql: str, where: str) -> KpiDefinition:
    name = str(values.get("name") or "")
    if not NAME_RE.match(name):
        raise SettingsError(
            f"{where}: KPI name {name!r} must be 1-128 letters, digits, '_', '.' or '-' (not first)"
        )
    if not sql.strip():
        raise SettingsError(f"{where}: KPI {name!r} has no SQL")
    numerator, denominator = values.get("numerator") or None, values.get("denominator") or None
    if (numerator is None) != (denominator is None):
        raise SettingsError(f"{where}: KPI {name!r} names a numerator or a denominator: name both")
    aggregation = str(values.get("aggregation") or ("ratio" if numerator else "last"))
    if aggregation not in AGGREGATIONS:
        raise SettingsError(f"{where}: aggregation {aggregation!r} is not one of {', '.join(AGGREGATIONS)}")
    if aggregation == "ratio" and not numerator:
        raise SettingsError(f"{where}: aggregation 'ratio' needs a numerator and a denominator")
    return KpiDefinition(
        name=name,
        sql=sql,
        where=where,
        description=str(values.get("description") or ""),
        unit=str(values.get("unit") or ""),
        value=str(values.get("value") or "value"),
        numerator=None if numerator is None else str(numerator),
        denominator=None if denominator is None else str(denominator),
        aggregation=aggregation,
    )


def parse_file(path: Path) -> KpiDefinition:
    """A KPI file: its header lines, then the query (the header stays in the SQL as comments)."""
    try:
        with open(path, encoding="utf-8", newline="") as handle:  # a CR inside a literal stays a CR
            text = handle.read()
    except (OSError, UnicodeDecodeError) as exc:
        raise SettingsError(f"{path}: cannot read: {exc}") from None
    values: dict[str, Any] = {"name": path.stem}
    for number, line in enumerate(text.split("\n"), 1):
        if not line.strip():
            continue
        if not line.lstrip().startswith("--"):
            break
        m = _HEADER_RE.match(line.strip())
        if not m:
            continue
        key = m.group(1).lower()
        if key in HEADER_KEYS:
            values[key] = m.group(2)
            continue
        close = difflib.get_close_matches(key, HEADER_KEYS, n=1, cutoff=0.75)
        if close:  # a typo of a header key, not a remark
            raise SettingsError(f"{path}:{number}: unknown header key {key!r} (did you mean {close[0]!r}?)")
    return _build(values, text, str(path))


def _from_settings(item: dict[str, Any], where: str) -> KpiDefinition:
    for key in item:
        if key not in (*HEADER_KEYS, "sql"):
            close = difflib.get_close_matches(str(key), [*HEADER_KEYS, "sql"], n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            raise SettingsError(f"{where}: unknown key {key!r}{hint}")
    sql = item.get("sql")
    if not isinstance(sql, str):
        raise SettingsError(f"{where}.sql: required, the KPI's query")
    return _build(item, sql, where)


def _resolve(settings: Settings, text: str) -> Path:
    path = Path(text)
    return path if path.exists() or path.is_absolute() else settings.path.parent / path


def load_kpis(settings: Settings) -> tuple[list[KpiDefinition], list[str]]:
    """Every KPI the settings declare (folders of files, files, inline entries), and one line per
    one that cannot be read, so the others still run."""
    found: list[KpiDefinition] = []
    problems: list[str] = []
    for i, item in enumerate(settings.kpis):
        where = f"kpis[{i}]"
        try:
            if isinstance(item, dict):
                found.append(_from_settings(item, where))
                continue
            base = _resolve(settings, str(item))
            files = sorted(base.glob("*.sql")) if base.is_dir() else [base] if base.is_file() else []
            if not files:
                raise SettingsError(
                    f"{where}: {str(item)!r} is neither a .sql file nor a folder holding some"
                )
        except SettingsError as exc:
            problems.append(str(exc))
            continue
        for f in files:
            try:
                found.append(parse_file(f))
            except SettingsError as exc:
                problems.append(str(exc))
    seen: dict[str, str] = {}
    unique = []
    for kpi in found:
        if kpi.name in seen:
            problems.append(f"{kpi.where}: KPI name {kpi.name!r} is already used by {seen[kpi.name]}")
            continue
        seen[kpi.name] = kpi.where
        unique.append(kpi)
    return unique, problems


def check_syntax(kpi: KpiDefinition, tables: TableNamer, site: Sequence[BasePartition] = ()) -> Rendered:
    """The rendered query, if it parses as one Athena SELECT; else SettingsError with the line."""
    from panorama_kpi.views import parse_error_line

    rendered = kpi.render(tables, site)
    sql = rendered.sql
    try:
        statements = [s for s in sqlglot.parse(sql, read="athena") if s is not None]
    except sqlglot.errors.ParseError as exc:
        raise SettingsError(f"{kpi.where}: not valid Athena SQL: {parse_error_line(exc)}") from None
    if len(statements) != 1 or not isinstance(statements[0], sqlglot.exp.Query):
        raise SettingsError(f"{kpi.where}: expected one SELECT")
    return rendered
