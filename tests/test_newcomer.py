"""What a new user meets first: `init`, secrets only where needed, readable `query` output."""

from __future__ import annotations

import logging
import sqlite3
from pathlib import Path

import click.testing
import pytest
from click.testing import CliRunner
from hypothesis import given
from hypothesis import strategies as st

from panorama_kpi import output
from panorama_kpi.cli import main
from panorama_kpi.scaffold import DATASOURCES
from panorama_kpi.settings import load_settings


def run(*args: str, env: dict[str, str] | None = None) -> click.testing.Result:
    return CliRunner().invoke(main, list(args), catch_exceptions=False, env=env)


@pytest.fixture()
def workdir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    db = sqlite3.connect(tmp_path / "app.sqlite3")
    db.execute("CREATE TABLE t (id INTEGER, name TEXT)")
    db.executemany(
        "INSERT INTO t VALUES (?, ?)",
        [(1, "\\N"), (2, None), (3, "NULL"), (4, "a\tb\nc\rd"), (5, ""), (6, "x" * 500)],
    )
    db.commit()
    db.close()
    return tmp_path


# ---------------------------------------------------------------- init


@pytest.mark.parametrize("source_type", sorted(DATASOURCES))
def test_init_writes_a_loadable_file_with_secrets_in_the_environment(
    tmp_path: Path, source_type: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    for var in ("MYSQL_USER", "MYSQL_PASSWORD", "PG_USER", "PG_PASSWORD"):
        monkeypatch.delenv(var, raising=False)
    target = tmp_path / "s.yaml"
    result = run("init", "--type", source_type, "--output", str(target))
    assert result.exit_code == 0, result.output
    settings = load_settings(target)  # loads although the secrets are not exported
    assert settings.datalake.type == "local"
    (ds,) = settings.datasources
    assert ds.type == source_type and ds.tables == []
    text = target.read_text(encoding="utf-8")
    if source_type in ("mysql", "postgresql"):
        assert "password: ${" in text and "username: ${" in text


def test_init_never_overwrites(tmp_path: Path) -> None:
    target = tmp_path / "panorama_settings.yaml"
    target.write_text("mine\n", encoding="utf-8")
    result = run("--settings", str(target), "init")
    assert result.exit_code == 2
    assert result.output == (
        f"error: init: {str(target)!r} already exists; choose another file with --output, or remove it\n"
    )
    assert target.read_text(encoding="utf-8") == "mine\n"


def test_quick_start_from_init(workdir: Path) -> None:
    steps = [
        ["init", "--type", "sqlite"],
        ["set-tables"],
        ["set-tables-fields", "--all"],
        ["create-datalake-tables", "--all"],
        ["create-datalake-views", "--all"],
        ["extract-and-load", "--all", "--force"],
    ]
    for step in steps:
        result = run(*step)
        assert result.exit_code == 0, (step, result.output)
    out = run("query", "SELECT id, name FROM app_table_t ORDER BY id", "--format", "csv")
    assert out.output == 'id,name\n1,\\N\n2,\n3,NULL\n4,"a\tb\nc\rd"\n5,""\n6,' + "x" * 500 + "\n"


# ---------------------------------------------------------------- secrets only when needed

SECRET_SETTINGS = """
datalake: {type: local, path: ./lake, base_prefix: app}
datasources:
- type: sqlite
  name: app
  database: ./app.sqlite3
  tables:
  - name: t
    fields: [{name: id, type: int}, {name: name, type: varchar}]
- type: mysql
  name: sakila
  host: 127.0.0.1
  port: 1
  database: sakila
  username: sakila
  password: ${SAKILA_PW}
  tables:
  - name: payment
    fields: [{name: payment_id, type: int}]
"""


def test_query_needs_no_secret_of_a_source(workdir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("SAKILA_PW", raising=False)
    (workdir / "panorama_settings.yaml").write_text(SECRET_SETTINGS, encoding="utf-8")
    for command in ("create-datalake-tables", "create-datalake-views"):
        assert run(command, "--all").exit_code == 0
    assert run("extract-and-load", "-d", "app").exit_code == 0
    result = run("query", "SELECT count(*) AS n FROM app_table_t")
    assert result.exit_code == 0, result.output
    assert result.output.splitlines()[2].strip() == "6"
    failed = run("extract-and-load", "-d", "sakila")
    assert failed.exit_code == 1
    assert "datasources[sakila].password: environment variable SAKILA_PW is not set" in failed.output
    assert "datasources[1]" not in failed.output


# ---------------------------------------------------------------- query output


def test_table_output_is_unambiguous_and_fits_the_terminal(workdir: Path) -> None:
    (workdir / "panorama_settings.yaml").write_text(SECRET_SETTINGS, encoding="utf-8")
    run("create-datalake-tables", "-d", "app")
    run("create-datalake-views", "-d", "app")
    run("extract-and-load", "-d", "app")
    result = run("query", "SELECT id, name FROM app_table_t ORDER BY id", env={"COLUMNS": "40"})
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert [line.split("  ", 1)[1].strip() for line in lines[2:8]] == [
        "\\\\N",
        "NULL",
        '"NULL"',
        "a\\tb\\nc\\rd",
        '""',
        "x" * 35 + "…",
    ]
    assert max(len(line) for line in lines) <= 40
    full = run(
        "query", "SELECT name FROM app_table_t WHERE id = 6", "--format", "json", env={"COLUMNS": "40"}
    )
    assert '"' + "x" * 500 + '"' in full.output


def test_csv_output_tells_null_from_empty() -> None:
    lines = list(output.csv_lines(["a", "b"], [(None, ""), ("x,y", 'q"')]))
    assert lines == ["a,b", ',""', '"x,y","q"""']


def test_debug_logs_the_sql_sent_to_duckdb(workdir: Path, caplog: pytest.LogCaptureFixture) -> None:
    (workdir / "panorama_settings.yaml").write_text(SECRET_SETTINGS, encoding="utf-8")
    with caplog.at_level(logging.DEBUG, logger="panorama_kpi"):
        result = run("--debug", "query", "SELECT 7 / 2 AS half")
    assert result.exit_code == 0, result.output
    assert any(r.getMessage().startswith("SQL sent to DuckDB: SELECT") for r in caplog.records)


values = st.one_of(st.none(), st.text())


@given(values, values)
def test_cells_are_distinct_and_one_line(a: str | None, b: str | None) -> None:
    ca, cb = output.cell(a), output.cell(b)
    assert "\n" not in ca and "\r" not in ca
    assert (ca == cb) == (a == b)


@given(st.lists(st.integers(0, 300), min_size=1, max_size=12), st.integers(20, 200))
def test_fitted_widths_fit_or_stop_at_the_minimum(widths: list[int], total: int) -> None:
    fitted = output._fit(widths, total)
    assert all(f <= w for f, w in zip(fitted, widths, strict=True))
    assert sum(fitted) + 2 * (len(widths) - 1) <= total or all(
        f <= output.MIN_CELL or f == w for f, w in zip(fitted, widths, strict=True)
    )
