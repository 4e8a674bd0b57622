"""Settings loading: panorama-elt files load unchanged; every mistake names its key."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from panorama_kpi.errors import SettingsError
from panorama_kpi.settings import load_settings
from panorama_kpi.settings_text import parse_interval

COMPAT = Path(__file__).resolve().parent / "fixtures" / "panorama_elt"
REPO = Path(__file__).resolve().parents[1]


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "settings.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def compat_files() -> list[Path]:
    files = sorted(COMPAT.glob("*.yaml"))
    assert len(files) == 3, f"panorama-elt format fixtures missing from {COMPAT}"
    return files


@pytest.mark.parametrize("path", compat_files(), ids=lambda p: p.name)
def test_panorama_elt_examples_load(path: Path) -> None:
    settings = load_settings(path)
    assert settings.datalake.type == "aws"
    assert settings.datalake.panorama_raw_data_bucket == "panorama"
    assert settings.datasources
    for ds in settings.datasources:
        assert ds.tables, f"{ds.name} lost its tables"


def test_openedx_example_shapes() -> None:
    settings = load_settings(COMPAT / "openedx.yaml")
    mysql = settings.datasource("openedx_mysql")
    assert mysql.options == {
        "database": "edxapp"
    }  # empty mysql_* keys are unset, mysql_database maps to database
    sm = next(t for t in mysql.tables if t.name == "courseware_studentmodule")
    assert sm.partition_fields == ["course_id"]
    assert sm.interval == "2 hour" and sm.timestamp_field == "modified"
    assert [f.name for f in sm.file_fields][:3] == ["id", "module_type", "module_id"]
    assert "course_id" not in [f.name for f in sm.file_fields]
    assert settings.raw_table_name(sm) == "openedx_raw_courseware_studentmodule"
    assert settings.view_name(sm) == "openedx_table_courseware_studentmodule"
    assert [(p.name, p.value) for p in settings.datalake.base_partitions] == [("lms", "lms.example.com")]


@pytest.mark.parametrize(("name", "source_type"), [("mysql.yaml", "mysql"), ("csv.yaml", "csv")])
def test_single_mapping_tables_are_a_list(tmp_path: Path, name: str, source_type: str) -> None:
    shutil.copy(COMPAT / name, tmp_path / "s.yaml")
    settings = load_settings(tmp_path / "s.yaml")
    assert settings.datasources[0].type == source_type
    assert [t.name for t in settings.datasources[0].tables] == ["orders"]


def test_env_interpolation(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PANORAMA_TEST_PW", "s3cr$t")
    monkeypatch.delenv("PANORAMA_UNSET", raising=False)
    path = write(
        tmp_path,
        """
datalake: {type: local, path: "${PANORAMA_UNSET:-./lk}"}
datasources:
- {type: mysql, name: db, mysql_password: "${PANORAMA_TEST_PW}", host: "h$$x", port: "3307"}
""",
    )
    s = load_settings(path)
    assert s.datalake.path == "./lk"
    assert s.datasources[0].options == {"password": "s3cr$t", "host": "h$x", "port": 3307}


def test_unset_secret_fails_only_when_read(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("PANORAMA_NOPE", raising=False)
    path = write(
        tmp_path,
        "datalake: {type: local, aws_secret_access_key: '${PANORAMA_NOPE}'}\n"
        "datasources:\n- {type: mysql, name: sakila, host: db, port: '${PANORAMA_NOPE:-3306}',"
        " password: 'pre-${PANORAMA_NOPE}'}\n",
    )
    ds = load_settings(path).datasource("sakila")
    assert ds.option("host") == "db" and ds.option("port") == 3306
    with pytest.raises(SettingsError) as info:
        ds.option("password")
    assert str(info.value).startswith(
        "datasources[sakila].password: environment variable PANORAMA_NOPE is not set"
    )
    monkeypatch.setenv("PANORAMA_NOPE", "x")
    assert ds.option("password") == "pre-x"


def test_generic_key_wins_over_prefixed(tmp_path: Path) -> None:
    path = write(tmp_path, "datasources:\n- {type: mysql, name: db, host: a, mysql_host: b}\n")
    assert load_settings(path).datasources[0].options["host"] == "a"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("datalake: {type: local, pathh: x}\n", "datalake: unknown key 'pathh' (did you mean 'path'?)"),
        ("datalake: {type: s3}\n", "datalake.type: 's3' is not one of local, aws"),
        ("datalake: {type: aws}\n", "datalake.panorama_raw_data_bucket: required when datalake.type is aws"),
        (
            "datasources:\n- {type: mysql, name: db, mysql_hots: x}\n",
            "datasources[db]: unknown key 'mysql_hots' (did you mean 'mysql_host'?)",
        ),
        ("datasources:\n- {type: mysq, name: db}\n", "datasources[db].type: unknown datasource type 'mysq'"),
        ("datasources:\n- {type: mysql, name: db, port: [1]}\n", "datasources[db].port: expected an integer"),
        (
            "datalake: {type: local, path: '${PANORAMA_NOPE}'}\n",
            "datalake.path: environment variable PANORAMA_NOPE is not set",
        ),
        ("datasources:\n- {type: mysql, name: db}\n- {type: mysql, name: db}\n", "name 'db' is used twice"),
        (
            "datasources:\n- type: mysql\n  name: db\n  tables:\n  - name: t\n    fields: [{name: a}]\n"
            "    partitions: {partition_fields: [b]}\n",
            "datasources[db].tables[t].partitions.partition_fields: 'b' is not in the table's field list",
        ),
        (
            "datasources:\n- type: mysql\n  name: db\n  tables:\n  - name: t\n    fields: [{name: a}]\n"
            "    partitions: {partition_fields: [a], interval: 2 fortnight, timestamp_field: a}\n",
            "datasources[db].tables[t].partitions.interval: invalid interval '2 fortnight'",
        ),
        (
            "datasources:\n- type: mysql\n  name: db\n  tables:\n  - name: t\n    feilds: []\n",
            "datasources[db].tables[0]: unknown key 'feilds' (did you mean 'fields'?)",
        ),
        ("datalake: [1]\n", "datalake: expected a mapping"),
        ("datalake:\n  type: local\n   path: x\n", "YAML syntax error"),
    ],
)
def test_bad_settings_name_the_key(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, text: str, expected: str
) -> None:
    monkeypatch.delenv("PANORAMA_NOPE", raising=False)
    with pytest.raises(SettingsError) as info:
        load_settings(write(tmp_path, text))
    assert expected in str(info.value)
    assert "\n" not in str(info.value)
    assert info.value.exit_code == 2


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(SettingsError, match="not found"):
        load_settings(tmp_path / "nope.yaml")


@pytest.mark.parametrize(
    ("text", "seconds"), [("2 hour", 7200), ("30 minutes", 1800), ("1 DAY", 86400), ("1 week", 604800)]
)
def test_intervals(text: str, seconds: int) -> None:
    assert parse_interval(text, "x").total_seconds() == seconds


def test_template_loads() -> None:
    settings = load_settings(REPO / "settings.template.yaml")
    assert settings.datalake.type == "local"
