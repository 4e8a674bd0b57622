"""KPI definitions, placeholders, compute-kpis and its history, on a small SQLite source and
the embedded engine: what is written, what replaces what, and how bad input is reported."""

from __future__ import annotations

import datetime as dt
import decimal
import json
import sqlite3
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from hypothesis import given
from hypothesis import strategies as st

from panorama_kpi.cli import main
from panorama_kpi.engines import open_engine
from panorama_kpi.engines.duckdb import DuckDBEngine
from panorama_kpi.errors import KpiError, SettingsError
from panorama_kpi.kpi.compute import number
from panorama_kpi.kpi.definitions import NAME_RE, load_kpis, parse_file
from panorama_kpi.kpi.report import series_label
from panorama_kpi.kpi.template import render
from panorama_kpi.settings import load_settings

ROWS = [
    (1, "a", 10.0, "2026-11-29 10:00:00.000000"),
    # the last millisecond before the snapshot (Athena's TIMESTAMP has milliseconds:
    # 23:59:59.999999 would round to the next day in the typed view, on both engines)
    (2, "a", 5.5, "2026-11-29 23:59:59.999000"),
    (3, "b", 1.0, "2026-11-30 00:00:00.000000"),
    (4, None, 2.0, "2026-11-28 00:00:00.000000"),
]


def cli(settings: Path, *args: str) -> Any:
    return CliRunner().invoke(main, ["--settings", str(settings), *args])


def write(folder: Path, name: str, text: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    path.write_text(text, encoding="utf-8")
    return path


def t_site(settings: Path, datalake: str, db: Path, rows: list[tuple[Any, ...]], kpis: Path) -> Path:
    """Settings of a site whose SQLite source `db` has table t with `rows`, KPIs in `kpis`;
    `datalake` is the inline mapping of the datalake block."""
    conn = sqlite3.connect(db)
    conn.execute("CREATE TABLE t (id INTEGER, grp VARCHAR, amount DOUBLE, created DATETIME)")
    conn.executemany("INSERT INTO t VALUES (?, ?, ?, ?)", rows)
    conn.commit()
    conn.close()
    settings.write_text(
        f"""datalake: {datalake}
kpis: [{kpis}]
datasources:
- type: sqlite
  name: src
  database: {db}
  tables:
  - name: t
    fields: [{{name: id, type: int}}, {{name: grp, type: varchar}}, {{name: amount, type: double}},
             {{name: created, type: datetime}}]
""",
        encoding="utf-8",
    )
    return settings


@pytest.fixture
def site(tmp_path: Path) -> Path:
    """A SQLite source with table t, loaded into a local lake; KPIs go in tmp_path/kpis."""
    settings = t_site(
        tmp_path / "settings.yaml",
        f"{{type: local, path: {tmp_path / 'lake'}, base_prefix: site,\n"
        "  base_partitions: [{name: lms, value: one.example.com}]}",
        tmp_path / "src.sqlite3",
        ROWS,
        tmp_path / "kpis",
    )
    for command in ("create-datalake-tables", "extract-and-load", "create-datalake-views"):
        result = cli(settings, command, "--all")
        assert result.exit_code == 0, result.output
    return settings


def history(settings: Path, where: str = "true", params: list[Any] | None = None) -> list[tuple[Any, ...]]:
    engine = open_engine(load_settings(settings))
    try:
        _, rows = engine.query(
            "SELECT kpi, snapshot_time, dimensions, value, numerator, denominator, unit, aggregation, lms "
            f"FROM kpi_history WHERE {where} ORDER BY kpi, snapshot_time, dimensions",
            params,
        )
        return list(rows)
    finally:
        engine.close()


GOOD = """-- name: amount_by_group
-- description: Amount per group, rows created before the snapshot
-- unit: EUR
SELECT grp, SUM(amount) AS value
FROM {{ table('t') }}
WHERE created < {{ snapshot }}
GROUP BY grp
"""


def test_compute_writes_long_format_history(site: Path) -> None:
    kpis = site.parent / "kpis"
    write(kpis, "amount_by_group.sql", GOOD)
    write(kpis, "rows.sql", "SELECT COUNT(*) FROM {{ table('t') }} WHERE created < {{ snapshot }}")
    write(
        kpis,
        "share_a.sql",
        "-- numerator: in_a\n-- denominator: total\n"
        "SELECT COUNT_IF(grp = 'a') AS in_a, COUNT(*) AS total FROM {{ table('t') }}",
    )
    result = cli(site, "compute-kpis", "--at", "2026-11-30 00:00")
    assert result.exit_code == 0, result.output
    assert "3 KPI(s) computed for 2026-11-30 00:00:00 UTC, 0 failed, 4 row(s) written" in result.output
    at = dt.datetime(2026, 11, 30)
    assert history(site) == [
        ("amount_by_group", at, '{"grp":"a"}', 15.5, None, None, "EUR", "last", "one.example.com"),
        ("amount_by_group", at, '{"grp":null}', 2.0, None, None, "EUR", "last", "one.example.com"),
        ("rows", at, "{}", 3.0, None, None, "", "last", "one.example.com"),
        ("share_a", at, "{}", 0.5, 2.0, 4.0, "", "ratio", "one.example.com"),
    ]
    objects = sorted(
        p.relative_to(site.parent / "lake").as_posix() for p in (site.parent / "lake").rglob("*.csv")
    )
    assert (
        "site/kpi_history/lms=one.example.com/snapshot_date=2026-11-30/kpi=rows/20261130T000000.csv"
        in objects
    )


def test_rerunning_a_snapshot_replaces_it_and_a_failure_keeps_it(site: Path) -> None:
    kpis = site.parent / "kpis"
    write(kpis, "amount_by_group.sql", GOOD)
    for _ in range(2):
        assert cli(site, "compute-kpis", "--at", "2026-11-30").exit_code == 0
    assert cli(site, "compute-kpis", "--at", "2026-11-29").exit_code == 0
    rows = history(site)
    assert len(rows) == 3  # two groups at 11-30, one at 11-29, never duplicated
    assert [r[3] for r in rows if r[1] == dt.datetime(2026, 11, 29)] == [2.0]
    write(kpis, "amount_by_group.sql", GOOD.replace("SUM(amount)", "SUM(amount) * 2"))
    assert cli(site, "compute-kpis", "--at", "2026-11-30").exit_code == 0
    assert [r[3] for r in history(site) if r[1] == dt.datetime(2026, 11, 30)] == [31.0, 4.0]
    write(kpis, "amount_by_group.sql", GOOD.replace("SUM(amount)", "max(grp)"))  # now fails
    result = cli(site, "compute-kpis", "--at", "2026-11-30")
    assert result.exit_code == 1
    assert [r[3] for r in history(site) if r[1] == dt.datetime(2026, 11, 30)] == [31.0, 4.0]


def test_bad_kpis_are_one_line_each_and_the_others_are_written(site: Path) -> None:
    kpis = site.parent / "kpis"
    files = {
        "amount_by_group": GOOD,
        "syntax": "-- unit: x\nSELECT COUNT(*)\nFROM {{ table('t') }} WHERE (\n",
        "unknown_table": "SELECT 1 AS value\nFROM {{ table('tt') }}\n",
        "missing_view": "SELECT COUNT(*) FROM no_such_view",
        "empty": "SELECT grp, COUNT(*) AS value FROM {{ table('t') }} WHERE id > 99 GROUP BY grp",
        "text": "SELECT 'many' AS value",
        "twice": "SELECT 'x' AS k, 1 AS value UNION ALL SELECT 'x', 2",
        "typo": "-- denominater: total\nSELECT 1",
        "half": "-- numerator: a\nSELECT 1 AS a",
    }
    for name, text in files.items():
        write(kpis, f"{name}.sql", text)
    result = cli(site, "compute-kpis", "--at", "2026-11-30")
    assert result.exit_code == 1
    failed = [line for line in result.output.splitlines() if line.startswith("failed: ")]
    assert len(failed) == 8, result.output
    text = "\n".join(failed)
    assert f"{kpis / 'syntax.sql'}: not valid Athena SQL: line 3" in text
    assert (
        f"{kpis / 'unknown_table.sql'}:2: table 'tt' is not configured in the settings (did you mean 't'?)"
        in text
    )
    assert "missing_view.sql" in text and "no_such_view" in text
    assert "empty.sql): returned no rows" in text
    assert "text.sql): the value is not a number: 'many'" in text
    assert 'twice.sql): returns two rows for the dimensions {"k":"x"}' in text
    assert f"{kpis / 'typo.sql'}:1: unknown header key 'denominater' (did you mean 'denominator'?)" in text
    assert "half.sql: KPI 'half' names a numerator or a denominator: name both" in text
    assert "1 KPI(s) computed" in result.output
    assert {r[0] for r in history(site)} == {"amount_by_group"}


def test_kpis_in_the_settings_and_selection(site: Path) -> None:
    text = site.read_text(encoding="utf-8").replace(
        f"kpis: [{site.parent / 'kpis'}]",
        "kpis:\n- {name: users, sql: 'SELECT COUNT(*) FROM site_table_t', description: Interlink style}\n"
        "- {name: groups, sql: 'SELECT COUNT(DISTINCT grp) AS value FROM site_table_t'}\n",
    )
    site.write_text(text, encoding="utf-8")
    result = cli(site, "compute-kpis", "--kpi", "users", "--at", "2026-12-01 10:30")
    assert result.exit_code == 0, result.output
    assert [(r[0], r[1], r[3]) for r in history(site)] == [("users", dt.datetime(2026, 12, 1, 10, 30), 4.0)]
    result = cli(site, "compute-kpis", "--kpi", "user")
    assert result.exit_code == 1
    assert "no KPI named 'user' (did you mean 'users'?)" in result.output
    site.write_text(text.replace("sql: 'SELECT COUNT(*)", "sqll: 'SELECT COUNT(*)"), encoding="utf-8")
    result = cli(site, "compute-kpis", "--at", "2026-12-01")
    assert result.exit_code == 1
    assert "kpis[0]: unknown key 'sqll' (did you mean 'sql'?)" in result.output
    assert "1 KPI(s) computed" in result.output


def test_bad_view_files_are_one_line_each_and_the_others_are_created(site: Path) -> None:
    views = site.parent / "views"
    files = {
        "kpi_ok": "SELECT grp, COUNT(*) AS n FROM {{ table('t') }} GROUP BY grp",
        "kpi_syntax": "-- broken\nSELECT grp\nFROM {{ table('t') }} WHERE (\n",
        "kpi_a": "SELECT * FROM kpi_b",
        "kpi_b": "SELECT * FROM kpi_a",
        "kpi_missing": "SELECT * FROM site_table_nothing",
        "kpi_snapshot": "SELECT 1 AS x WHERE now() < {{ snapshot }}",
    }
    for name, text in files.items():
        write(views, f"{name}.sql", text)
    text = site.read_text(encoding="utf-8") + f"kpi_views: [{views}]\n"
    site.write_text(text, encoding="utf-8")
    result = cli(site, "create-datalake-views", "--all")
    assert result.exit_code == 1
    failed = [line for line in result.output.splitlines() if line.startswith("FAILED ")]
    assert len(failed) == 4, result.output
    joined = "\n".join(failed)
    assert f"view kpi_syntax: {views / 'kpi_syntax.sql'}: not valid Athena SQL: line 3" in joined
    assert "views form a cycle: kpi_a -> kpi_b -> kpi_a" in joined
    assert f"view kpi_missing ({views / 'kpi_missing.sql'}): DuckDB:" in joined
    assert "{{ snapshot }} is for KPI queries, not views" in joined
    assert "created view kpi_ok" in result.output
    assert result.output.splitlines()[-1].startswith(
        "error: 4 of 9 view(s) failed: kpi_snapshot, kpi_syntax, kpi_a, "
    )


def test_placeholders() -> None:
    def names(table: str) -> str:
        return f"p_table_{table}"

    sql = "SELECT *\nFROM {{ table('auth_user') }} JOIN {{table( 'x\"y' )}} ON {{ snapshot }} > {{snapshot}}"
    out = render(sql, names, "f.sql", allow_snapshot=True)
    assert out.sql == (
        'SELECT *\nFROM "p_table_auth_user" JOIN "p_table_x""y" ON CAST(? AS TIMESTAMP) > CAST(? AS TIMESTAMP)'
    )
    assert out.snapshot_params == 2
    with pytest.raises(SettingsError, match=r"^f.sql:3: unknown placeholder \"\{\{ tabel\('x'\) \}\}\""):
        render("SELECT 1\n\nFROM {{ tabel('x') }}", names, "f.sql")
    with pytest.raises(SettingsError, match=r"^f.sql:2: malformed placeholder"):
        render("SELECT 1\nFROM {{ table(auth_user) }}", names, "f.sql")


def test_engine_binds_parameters(tmp_path: Path) -> None:
    engine = DuckDBEngine(tmp_path, "panorama")
    try:
        hostile = "x' OR '1'='1"
        _, rows = engine.query(
            "SELECT ? AS a, CAST(? AS TIMESTAMP) AS b", [hostile, "2026-11-30 01:02:03.456"]
        )
        assert list(rows) == [(hostile, dt.datetime(2026, 11, 30, 1, 2, 3, 456000))]
    finally:
        engine.close()


def test_header_and_settings_parsing(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "rate.sql",
        "-- A remark: not a header key\n-- name: pass.rate-2\n-- description: Pass rate: passed / enrolled\n"
        "-- numerator: passed\n-- denominator: enrolled\n-- aggregation: last\n\nSELECT 1 AS passed, 2 AS enrolled\n",
    )
    kpi = parse_file(path)
    assert (kpi.name, kpi.description, kpi.numerator, kpi.denominator, kpi.aggregation) == (
        "pass.rate-2",
        "Pass rate: passed / enrolled",
        "passed",
        "enrolled",
        "last",
    )
    write(tmp_path, "bad name.sql", "SELECT 1")
    write(tmp_path, "agg.sql", "-- aggregation: mean\nSELECT 1")
    settings_file = write(
        tmp_path, "s.yaml", f"kpis: [{tmp_path}, {{name: rate, sql: SELECT 1}}, {{sql: SELECT 2}}]\n"
    )
    kpis, problems = load_kpis(load_settings(settings_file))
    assert [k.name for k in kpis] == ["pass.rate-2", "rate"]
    assert any("bad name.sql: KPI name 'bad name' must be" in p for p in problems)
    assert any("agg.sql: aggregation 'mean' is not one of last, sum, ratio" in p for p in problems)
    assert any(p.startswith("kpis[2]: KPI name '' must be") for p in problems)


@given(
    st.one_of(
        st.integers(),
        st.decimals(allow_nan=False, allow_infinity=False),
        st.floats(allow_nan=False, allow_infinity=False),
    )
)
def test_number_keeps_every_numeric_value(value: Any) -> None:
    text = number(value, "the value")
    assert text is not None
    assert decimal.Decimal(text) == decimal.Decimal(str(value)) or float(text) == value
    again = number(text, "the value")  # an engine returning text gives the same number
    assert again is not None and decimal.Decimal(again) == decimal.Decimal(text)


@given(st.text(max_size=20).filter(lambda s: s.strip() != "" and not _numeric(s)))
def test_number_refuses_text(value: str) -> None:
    with pytest.raises(KpiError, match="not a number"):
        number(value, "the value")


def _numeric(text: str) -> bool:
    try:
        return decimal.Decimal(text.strip()).is_finite()
    except (decimal.InvalidOperation, ValueError):
        return False


@given(
    st.from_regex(NAME_RE, fullmatch=True),
    st.text(alphabet=st.characters(blacklist_categories=("Cc", "Cs", "Zl", "Zp")), max_size=60),
)
def test_header_round_trip(tmp_path_factory: pytest.TempPathFactory, name: str, description: str) -> None:
    folder = tmp_path_factory.mktemp("h")
    path = write(folder, "k.sql", f"-- name: {name}\n-- description: {description}\nSELECT 1")
    kpi = parse_file(path)
    assert (kpi.name, kpi.description) == (name, description.strip())


@given(
    st.dictionaries(st.text(max_size=5), st.one_of(st.none(), st.text(max_size=5), st.integers()), max_size=3)
)
def test_series_label_names_each_dimension(dims: dict[str, Any]) -> None:
    label = series_label(json.dumps(dims))
    assert label == (
        "total" if not dims else ", ".join(f"{k}={'NULL' if v is None else v}" for k, v in dims.items())
    )


def test_hostile_dimensions_and_values(site: Path) -> None:
    kpis = site.parent / "kpis"
    hostile = 'O\'Brien "q" \\ \n\r\t🎓 \\N'
    write(
        kpis,
        "odd.sql",
        "SELECT ? AS label, DATE '2026-01-02' AS day, CAST(1.5 AS DECIMAL(10, 2)) AS value".replace(
            "?", "'" + hostile.replace("'", "''") + "'"
        ),
    )
    write(kpis, "nan.sql", "SELECT CAST('NaN' AS DOUBLE) AS value")
    write(kpis, "flag.sql", "SELECT true AS value")
    result = cli(site, "compute-kpis", "--at", "2026-11-30")
    assert result.exit_code == 1
    assert "nan.sql): the value is nan, not a finite number" in result.output
    assert "flag.sql): the value is a boolean (True), not a number" in result.output
    ((kpi, _at, dims, value, *_rest),) = history(site)
    assert (kpi, json.loads(dims), value) == ("odd", {"label": hostile, "day": "2026-01-02"}, 1.5)


def test_a_table_cannot_take_the_history_folder(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "s.yaml",
        "datasources:\n- {type: sqlite, name: s, database: x.db, tables: [{name: kpi_history}]}\n",
    )
    with pytest.raises(SettingsError, match="is the KPI history's folder; set the table's datalake_s3_table"):
        load_settings(path)
    path.write_text(
        path.read_text().replace("name: kpi_history}", "name: kpi_history, datalake_s3_table: kh}")
    )
    load_settings(path)


def test_report_on_a_lake_without_history(site: Path) -> None:
    out = site.parent / "empty.html"
    result = cli(site, "report", "--out", str(out))
    assert result.exit_code == 0, result.output
    assert '"kpis":[]' in out.read_text(encoding="utf-8")
    assert cli(site, "report", "--since", "yesterday").exit_code == 2


def test_shipped_view_pack_follows_the_sites_prefix(tmp_path: Path) -> None:
    """The same sql/views files, for a site whose base_prefix is not `openedx`: valid Athena SQL
    naming that site's typed views, and DuckDB SQL after transpilation."""
    import sqlglot
    import yaml

    from panorama_kpi.catalog import views_sql
    from panorama_kpi.selection import select

    root = Path(__file__).resolve().parent.parent
    raw = yaml.safe_load((root / "demo" / "settings.yaml").read_text(encoding="utf-8"))
    raw["datalake"]["base_prefix"] = "campus"
    raw["kpi_views"] = [str(root / "sql" / "views")]
    path = write(tmp_path, "s.yaml", yaml.safe_dump(raw))
    settings = load_settings(path)
    statements = dict(views_sql(settings, select(settings, True, None, None), True))
    kpi_views = {
        name: sql for name, sql in statements.items() if name.startswith("kpi_") and "history" not in name
    }
    assert len(kpi_views) == len(list((root / "sql" / "views").glob("*.sql")))
    for name, sql in kpi_views.items():
        assert "{{" not in sql and "openedx" not in sql, name
        assert '"campus_table_' in sql, name
        sqlglot.parse_one(sql, read="athena")
        assert sqlglot.transpile(sql, read="athena", write="duckdb"), name


def test_kpi_paths_and_entries_read_the_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    write(tmp_path / "pack", "n.sql", "SELECT 1")
    monkeypatch.setenv("PACKS", str(tmp_path))
    path = write(tmp_path, "s.yaml", "kpis: ['${PACKS}/pack', {name: '${NAME:-inline}', sql: SELECT 2}]\n")
    kpis, problems = load_kpis(load_settings(path))
    assert ([k.name for k in kpis], problems) == (["n", "inline"], [])
    path.write_text("kpis: [7]\n", encoding="utf-8")
    with pytest.raises(SettingsError, match=r"kpis\[0\]: expected str/dict, got int"):
        load_settings(path)


@given(
    st.text(
        alphabet=st.characters(blacklist_characters="'\n\r{}", blacklist_categories=("Cs",)),
        min_size=1,
        max_size=30,
    )
)
def test_table_placeholder_is_one_quoted_identifier(table: str) -> None:
    import sqlglot
    from sqlglot import exp

    out = render("SELECT * FROM {{ table('" + table + "') }} AS t", lambda name: f"p_table_{name}", "f.sql")
    if table != table.strip():  # the placeholder's own spaces are not part of the name
        return
    (found,) = list(sqlglot.parse_one(out.sql, read="athena").find_all(exp.Table))
    assert found.name == f"p_table_{table}"


def test_report_shows_the_top_series(site: Path) -> None:
    from panorama_kpi.kpi.report import TOP_N, report_data

    write(
        site.parent / "kpis",
        "many.sql",
        "SELECT id * 10 + n AS k, n AS value FROM {{ table('t') }}, (VALUES 1, 2, 3) AS v(n)",
    )
    for day in ("2026-11-29", "2026-11-30"):
        assert cli(site, "compute-kpis", "--at", day).exit_code == 0
    engine = open_engine(load_settings(site))
    try:
        data = report_data(load_settings(site), engine, dt.date(2026, 11, 1), dt.datetime(2026, 12, 1))
    finally:
        engine.close()
    (kpi,) = data["kpis"]
    assert (len(kpi["series"]), kpi["hidden_series"]) == (TOP_N, 12 - TOP_N)
    assert kpi["series"][:4] == ["k=13", "k=23", "k=33", "k=43"]  # the largest latest values first
    assert kpi["periods"]["day"]["x"] == [1795910400, 1795996800]  # 2026-11-29 and 30, 00:00 UTC
    assert [row["change"] for row in data["latest"]] == [0.0] * TOP_N
