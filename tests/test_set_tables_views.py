"""set-tables and views: views and materialized views are listed apart, left out by
default (the output says which and how to add them), added with --include-views or
by name. On the suite's PostgreSQL and MariaDB servers, and on SQLite."""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from panorama_kpi.cli import main
from panorama_kpi.settings import DatasourceSettings, load_settings
from panorama_kpi.sources import open_source
from tests.servers import DBServer


def run(settings: Path, *args: str) -> tuple[int, str]:
    result = CliRunner().invoke(main, ["--settings", str(settings), *args], catch_exceptions=False)
    return result.exit_code, result.output


def write_settings(tmp_path: Path, kind: str, options: dict[str, Any]) -> Path:
    keys = "".join(f"  {k}: {v!r}\n" for k, v in options.items())
    path = tmp_path / "s.yaml"
    path.write_text(
        f"# kept\ndatalake: {{type: local, path: {str(tmp_path / 'lake')!r}, base_prefix: k}}\n"
        f"datasources:\n- type: {kind}\n  name: src\n{keys}  tables: []\n",
        encoding="utf-8",
    )
    return path


def configured(settings: Path) -> list[str]:
    return [t.name for t in load_settings(settings).datasources[0].tables]


@pytest.fixture
def pg_kinds(pg_conn: Any) -> None:
    with pg_conn.cursor() as cur:
        cur.execute("DROP SCHEMA IF EXISTS kinds CASCADE")
        cur.execute("CREATE SCHEMA kinds")
        cur.execute("CREATE TABLE kinds.base (id int, name text)")
        cur.execute("INSERT INTO kinds.base VALUES (1, 'a'), (2, 'b')")
        cur.execute("CREATE TABLE kinds.parted (id int) PARTITION BY RANGE (id)")
        cur.execute("CREATE TABLE kinds.parted_1 PARTITION OF kinds.parted FOR VALUES FROM (0) TO (10)")
        cur.execute("CREATE VIEW kinds.v_base AS SELECT id FROM kinds.base")
        cur.execute("CREATE MATERIALIZED VIEW kinds.mv_base AS SELECT count(*) AS n FROM kinds.base")
        cur.execute("CREATE MATERIALIZED VIEW kinds.mv_empty AS SELECT id FROM kinds.base WITH NO DATA")


def test_pg_list_tables_reports_kinds(pg_server: DBServer, pg_kinds: None) -> None:
    ds = DatasourceSettings("postgresql", "pg", {**pg_server.settings_dict(), "schema": "kinds"})
    with open_source(ds) as source:
        assert source.list_tables() == {
            "base": "table",
            "mv_base": "materialized view",
            "mv_empty": "materialized view",
            "parted": "table",  # a partitioned table, without its partitions
            "v_base": "view",
        }


def test_pg_set_tables_leaves_views_out_and_says_so(
    tmp_path: Path, pg_server: DBServer, pg_kinds: None
) -> None:
    settings = write_settings(tmp_path, "postgresql", {**pg_server.settings_dict(), "schema": "kinds"})
    code, out = run(settings, "set-tables")
    assert code == 0, out
    assert configured(settings) == ["base", "parted"]
    assert out.strip() == (
        "src: 2 table(s) configured, 2 added; not added: 1 view(s) (v_base), "
        "2 materialized view(s) (mv_base, mv_empty) (add them with --include-views)"
    )
    assert settings.read_text(encoding="utf-8").startswith("# kept\n")

    code, out = run(settings, "set-tables", "--include-views")
    assert code == 0, out
    assert configured(settings) == ["base", "parted", "mv_base", "mv_empty", "v_base"]
    assert out.strip() == "src: 5 table(s) configured, 3 added (of which 1 view(s), 2 materialized view(s))"

    code, out = run(settings, "set-tables")  # nothing new, nothing left out
    assert (code, out.strip()) == (0, "src: 5 table(s) configured, 0 added")


def test_pg_named_view_is_added(tmp_path: Path, pg_server: DBServer, pg_kinds: None) -> None:
    settings = write_settings(tmp_path, "postgresql", {**pg_server.settings_dict(), "schema": "kinds"})
    code, out = run(settings, "set-tables", "-t", "v_base,base")
    assert code == 0, out
    assert configured(settings) == ["v_base", "base"]
    assert out.strip() == "src: 2 table(s) configured, 2 added (of which 1 view(s))"


def test_pg_unpopulated_materialized_view_fails_in_one_line(
    tmp_path: Path, pg_server: DBServer, pg_kinds: None
) -> None:
    settings = write_settings(tmp_path, "postgresql", {**pg_server.settings_dict(), "schema": "kinds"})
    assert run(settings, "set-tables", "--include-views")[0] == 0
    assert run(settings, "set-tables-fields", "--all")[0] == 0
    assert run(settings, "create-datalake-tables", "--all")[0] == 0
    code, out = run(settings, "extract-and-load", "--all", "--force")
    assert code == 1, out
    failures = [line for line in out.splitlines() if "mv_empty" in line and "populated" in line]
    assert failures and all(
        line.endswith(
            "table 'mv_empty': PostgreSQL error 55000: materialized view \"mv_empty\" has not been populated"
            " — Use the REFRESH MATERIALIZED VIEW command."
        )
        for line in failures
    ), failures
    assert "Traceback" not in out
    assert (tmp_path / "lake" / "k" / "mv_base" / "mv_base.csv").is_file()  # the others were loaded


def test_mysql_set_tables_views(tmp_path: Path, mysql_server: DBServer, mysql_conn: Any) -> None:
    with mysql_conn.cursor() as cur:
        cur.execute("DROP DATABASE IF EXISTS kinds")
        cur.execute("CREATE DATABASE kinds")
        cur.execute("CREATE TABLE kinds.base (id INT)")
        cur.execute("CREATE VIEW kinds.v_base AS SELECT id FROM kinds.base")
        cur.execute("CREATE SEQUENCE kinds.seq")  # MariaDB: listed in TABLES, nothing to dump
    options = {**mysql_server.settings_dict(), "database": "kinds"}
    with open_source(DatasourceSettings("mysql", "my", options)) as source:
        assert source.list_tables() == {"base": "table", "v_base": "view"}
    settings = write_settings(tmp_path, "mysql", options)
    code, out = run(settings, "set-tables")
    assert code == 0, out
    assert configured(settings) == ["base"]
    assert "not added: 1 view(s) (v_base) (add them with --include-views)" in out
    assert run(settings, "set-tables", "--include-views")[0] == 0
    assert configured(settings) == ["base", "v_base"]


def test_sqlite_set_tables_views(tmp_path: Path) -> None:
    db = sqlite3.connect(tmp_path / "app.sqlite3")
    db.execute("CREATE TABLE base (id INTEGER)")
    db.execute("CREATE VIEW v_base AS SELECT id FROM base")
    db.commit()
    db.close()
    settings = write_settings(tmp_path, "sqlite", {"database": str(tmp_path / "app.sqlite3")})
    code, out = run(settings, "set-tables")
    assert code == 0, out
    assert configured(settings) == ["base"]
    assert out.strip() == (
        "src: 1 table(s) configured, 1 added; not added: 1 view(s) (v_base) (add them with --include-views)"
    )
    assert run(settings, "set-tables", "--include-views")[0] == 0
    assert configured(settings) == ["base", "v_base"]
