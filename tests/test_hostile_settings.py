"""Settings the lake cannot hold, secrets in messages, alias bombs: one clear line each."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from click.testing import CliRunner

from panorama_kpi.cli import main
from panorama_kpi.errors import SettingsError
from panorama_kpi.settings import load_settings

TABLE = "  - name: {table}\n    fields: [{{name: id}}, {{name: '{field}'}}]\n    partitions: {{partition_fields: ['{field}']}}\n"


def settings_file(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "s.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def one_source(table: str = "t", field: str = "p", prefix: str = "app") -> str:
    return (
        f"datalake: {{type: local, base_prefix: '{prefix}'}}\n"
        "datasources:\n- type: sqlite\n  name: db\n  database: x.db\n  tables:\n"
        + TABLE.format(table=table, field=field)
    )


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            one_source(field="p/q"),
            "datasources[db].tables[t].partitions.partition_fields: 'p/q' contains '/'",
        ),
        (one_source(field="e=f"), "'e=f' contains '='"),
        (one_source(field="a\\nb").replace("'a\\nb'", '"a\\nb"'), "contains '\\n'"),
        (one_source(field="c*"), "'c*' contains '*'"),
        (one_source(table="a/b"), "datasources[db].tables[a/b].name: 'a/b' contains '/'"),
        (one_source(table=".."), "'..' is a relative path"),
        (one_source(table="_panorama_runs"), "is reserved for panorama-kpi's own files"),
        (one_source(prefix="_panorama"), "datalake.base_prefix: '_panorama' is reserved"),
        (one_source(prefix="*"), "datalake.base_prefix: '*' contains '*'"),
        (one_source(prefix="a/b"), "datalake.base_prefix: 'a/b' contains '/'"),
    ],
)
def test_names_the_layout_cannot_hold(tmp_path: Path, text: str, expected: str) -> None:
    with pytest.raises(SettingsError) as info:
        load_settings(settings_file(tmp_path, text))
    assert expected in str(info.value) and "\n" not in str(info.value)


TWO = """
datalake: {{type: local, base_prefix: app}}
datasources:
- type: sqlite
  name: one
  database: a.db
  tables:
  - {{name: users, fields: [{{name: id}}]{one}}}
- type: sqlite
  name: two
  database: b.db
  tables:
  - {{name: users, fields: [{{name: id}}]{two}}}
"""


def test_two_datasources_writing_one_table_are_refused(tmp_path: Path) -> None:
    with pytest.raises(SettingsError) as info:
        load_settings(settings_file(tmp_path, TWO.format(one="", two="")))
    assert str(info.value).startswith(
        "datasources[one].tables[users] and datasources[two].tables[users] would write the same objects"
    )


def test_datalake_table_name_keeps_them_apart(tmp_path: Path) -> None:
    text = TWO.format(
        one=", datalake_table_name: app_raw_users_one", two=", datalake_table_name: app_raw_users_two"
    )
    settings = load_settings(settings_file(tmp_path, text))
    tables = [t for ds in settings.datasources for t in ds.tables]
    assert [t.folder for t in tables] == ["app_raw_users_one", "app_raw_users_two"]
    assert [settings.view_name(t) for t in tables] == ["app_table_users_one", "app_table_users_two"]


def test_one_table_loads_end_to_end_from_each_datasource(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import sqlite3

    monkeypatch.chdir(tmp_path)
    for name, ids in (("a.db", [1, 2]), ("b.db", [3])):
        db = sqlite3.connect(tmp_path / name)
        db.execute("CREATE TABLE users (id INTEGER)")
        db.executemany("INSERT INTO users VALUES (?)", [(i,) for i in ids])
        db.commit()
        db.close()
    text = TWO.format(
        one=", datalake_table_name: app_raw_users_one, datalake_table_view: app_users_one",
        two=", datalake_table_name: app_raw_users_two, datalake_table_view: app_users_two",
    )
    path = settings_file(tmp_path, text)
    runner = CliRunner()
    for command in ("create-datalake-tables", "create-datalake-views", "extract-and-load"):
        result = runner.invoke(main, ["--settings", str(path), command, "--all"])
        assert result.exit_code == 0, result.output
    for view, ids in (("app_users_one", "1\n2"), ("app_users_two", "3")):
        out = runner.invoke(
            main, ["--settings", str(path), "query", f"SELECT id FROM {view} ORDER BY id", "--format", "csv"]
        )
        assert out.output == f"id\n{ids}\n"


def test_glob_characters_in_a_table_name_read_only_that_table(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import sqlite3

    monkeypatch.chdir(tmp_path)
    db = sqlite3.connect(tmp_path / "a.db")
    db.execute('CREATE TABLE "inj*" (id INTEGER)')
    db.execute("CREATE TABLE injx (id INTEGER)")
    db.execute('INSERT INTO "inj*" VALUES (1)')
    db.execute("INSERT INTO injx VALUES (2)")
    db.commit()
    db.close()
    path = settings_file(
        tmp_path,
        "datalake: {type: local, base_prefix: app}\ndatasources:\n- type: sqlite\n  name: db\n  database: a.db\n"
        "  tables:\n  - {name: 'inj*', fields: [{name: id}]}\n  - {name: injx, fields: [{name: id}]}\n",
    )
    runner = CliRunner()
    for command in ("create-datalake-tables", "create-datalake-views", "extract-and-load"):
        assert runner.invoke(main, ["--settings", str(path), command, "--all"]).exit_code == 0
    out = runner.invoke(
        main, ["--settings", str(path), "query", 'SELECT id FROM "app_table_inj*"', "--format", "csv"]
    )
    assert out.output == "id\n1\n"


@pytest.mark.parametrize("key", ["password", "mysql_password"])
def test_a_secret_is_never_echoed(tmp_path: Path, key: str) -> None:
    path = settings_file(tmp_path, f"datasources:\n- {{type: mysql, name: db, {key}: [hunter2-secret, x]}}\n")
    result = CliRunner().invoke(main, ["--settings", str(path), "query", "SELECT 1"])
    assert result.exit_code == 2
    assert "hunter2" not in result.output
    assert f"datasources[db].{key}: expected a string, got list" in result.output
    debug = CliRunner().invoke(main, ["--debug", "--settings", str(path), "query", "SELECT 1"])
    assert debug.exit_code == 2 and "hunter2" not in debug.output


def test_yaml_alias_bomb_is_refused_quickly(tmp_path: Path) -> None:
    lines = ['a0: &a0 ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
    for i in range(1, 9):
        lines.append(f"a{i}: &a{i} [" + ",".join([f"*a{i - 1}"] * 9) + "]")
    lines.append("kpi_views: *a8")
    path = settings_file(tmp_path, "\n".join(lines) + "\n")
    started = time.monotonic()
    with pytest.raises(SettingsError, match="expands to more than"):
        load_settings(path)
    assert time.monotonic() - started < 30  # generous: the point is that it ends at all
