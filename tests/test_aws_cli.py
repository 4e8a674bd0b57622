"""Every command on `datalake.type: aws` against the moto server, through the CLI."""

from __future__ import annotations

import datetime as dt
import json
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from click.testing import CliRunner, Result

from panorama_kpi import demo
from panorama_kpi.cli import main
from panorama_kpi.lake.layout import decode_segment
from panorama_kpi.lakes import open_engine
from panorama_kpi.settings import load_settings
from tests.aws import (
    Recorder,
    aws_env,
    client,
    error_answer,
    glue_partitions,
    glue_tables,
    prepare,
    queue_results,
    recording,
    shadow,
)

ROOT = Path(__file__).resolve().parent.parent
BUCKET = "panorama-cli-lake"


def run(settings: Path, *args: str) -> Result:
    return CliRunner().invoke(main, ["--settings", str(settings), *args], catch_exceptions=False)


@pytest.fixture
def aws(moto_endpoint: str, monkeypatch: pytest.MonkeyPatch) -> Recorder:
    aws_env(monkeypatch, moto_endpoint)
    prepare(moto_endpoint, BUCKET, "panorama")
    return recording(monkeypatch)


@pytest.fixture
def project(tmp_path: Path, aws: Recorder) -> Path:
    db = sqlite3.connect(tmp_path / "app.sqlite3")
    db.execute("CREATE TABLE notes (id INTEGER, body TEXT, course TEXT, modified TEXT)")
    db.executemany(
        "INSERT INTO notes VALUES (?, ?, ?, ?)",
        [
            (i, ["a", None, 'q"\\\n'][i % 3], ["c1", "it's/x", None][i % 3], "2024-01-01 00:00:00")
            for i in range(9)
        ],
    )
    db.execute("CREATE TABLE users (id INTEGER, name TEXT)")
    db.executemany("INSERT INTO users VALUES (?, ?)", [(1, "ann"), (2, None)])
    db.commit()
    db.close()
    settings = tmp_path / "settings.yaml"
    settings.write_text(
        f"""datalake:
  type: aws
  panorama_raw_data_bucket: {BUCKET}
  base_prefix: app
  base_partitions: [{{name: site, value: example.com}}]
  datalake_database: panorama
  datalake_workgroup: primary
  aws_region: us-east-1
datasources:
- type: sqlite
  name: local
  database: {tmp_path / "app.sqlite3"}
  tables:
  - name: notes
    fields: [{{name: id, type: int}}, {{name: body, type: text}}, {{name: course, type: varchar}},
             {{name: modified, type: datetime}}]
    partitions: {{partition_fields: [course], interval: 2 hour, timestamp_field: modified}}
  - name: users
    fields: [{{name: id, type: int}}, {{name: name, type: varchar}}]
""",
        encoding="utf-8",
    )
    return settings


def _keys(prefix: str = "") -> list[str]:
    out: list[str] = []
    for page in client("s3").get_paginator("list_objects_v2").paginate(Bucket=BUCKET, Prefix=prefix):
        out += [o["Key"] for o in page.get("Contents", ())]
    return sorted(out)


def test_test_connections(project: Path, aws: Recorder) -> None:
    result = run(project, "test-connections")
    assert result.exit_code == 0, result.output
    assert f"ok   lake: s3://{BUCKET}/ is writable" in result.output
    assert (
        "ok   engine: Glue database 'panorama' in us-east-1; Athena workgroup 'primary' ran query"
        in result.output
    )
    assert _keys("_panorama/") == []  # the probe object is gone
    assert aws.count("s3", "PutObject") == 1 and aws.count("s3", "DeleteObject") == 1


def test_test_connections_names_denied_permission(project: Path, aws: Recorder) -> None:
    aws.hooks.append(
        (
            "before-call.athena.StartQueryExecution",
            lambda **_: error_answer(400, "AccessDeniedException", "denied"),
        )
    )
    result = run(project, "test-connections")
    assert result.exit_code == 1
    line = next(x for x in result.output.splitlines() if x.startswith("FAIL engine"))
    assert "athena:StartQueryExecution on arn:aws:athena:us-east-1:<account>:workgroup/primary" in line


def test_load_registers_partitions_and_keeps_state_in_the_bucket(
    project: Path, aws: Recorder, tmp_path: Path
) -> None:
    assert run(project, "create-datalake-tables", "--all").exit_code == 0
    result = run(project, "extract-and-load", "--all")
    assert result.exit_code == 0, result.output
    records = [k for k in _keys("app/") if k.startswith("app/_panorama_runs/")]
    assert [k.rsplit("/", 2)[1] for k in records] == ["table_name=notes", "table_name=users"]
    assert [k for k in _keys("app/") if k not in records] == [
        "app/notes/site=example.com/course=__HIVE_DEFAULT_PARTITION__/notes.csv",
        "app/notes/site=example.com/course=c1/notes.csv",
        "app/notes/site=example.com/course=it%27s%2Fx/notes.csv",
        "app/users/site=example.com/users.csv",
    ]
    body = client("s3").get_object(
        Bucket=BUCKET, Key="app/notes/site=example.com/course=it%27s%2Fx/notes.csv"
    )
    assert body["Body"].read().decode() == (
        '"id","body","modified"\n' + "".join(f'"{i}","\\\\N","2024-01-01 00:00:00"\n' for i in (1, 4, 7))
    )
    assert glue_partitions("panorama", "app_raw_notes") == {
        ("example.com", "c1"),
        ("example.com", "it's/x"),
        ("example.com", "__HIVE_DEFAULT_PARTITION__"),
    }
    assert glue_partitions("panorama", "app_raw_users") == {("example.com",)}
    assert aws.count("athena") == 0  # partitions through the Glue API, never one query each
    assert glue_partitions("panorama", "app_runs_raw") == {
        ("example.com", "local", "notes"),
        ("example.com", "local", "users"),
    }
    # the lock is gone; the partition counts of the partitioned table stay for the next run
    assert _keys("_panorama/") == [
        "_panorama/manifests/site=app/site=example.com/datasource=local/table=notes.json"
    ]
    # Another machine (another working directory, nothing local) sees the same state: an incremental load.
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    copy = elsewhere / "settings.yaml"
    copy.write_text(project.read_text(encoding="utf-8"), encoding="utf-8")
    again = run(copy, "extract-and-load", "-t", "notes")
    assert again.exit_code == 0 and "incremental since" in again.output


def test_removed_partition_is_deleted_from_s3_and_glue(project: Path, aws: Recorder) -> None:
    run(project, "create-datalake-tables", "--all")
    assert run(project, "extract-and-load", "--all").exit_code == 0
    db = sqlite3.connect(project.parent / "app.sqlite3")
    db.execute("DELETE FROM notes WHERE course = 'c1'")
    db.commit()
    db.close()
    result = run(project, "extract-and-load", "-t", "notes", "--force")
    assert result.exit_code == 0 and "removed 1 partition(s)" in result.output
    assert ("example.com", "c1") not in glue_partitions("panorama", "app_raw_notes")
    assert not [k for k in _keys("app/notes/") if "course=c1/" in k]
    assert aws.count("glue", "BatchDeletePartition") == 1


def test_views_and_queries_run_on_athena(
    project: Path, aws: Recorder, tmp_path: Path, moto_endpoint: str
) -> None:
    run(project, "create-datalake-tables", "--all")
    run(project, "extract-and-load", "--all")
    result = run(project, "create-datalake-views", "--all")
    assert result.exit_code == 0, result.output
    views = [sql for sql, _ in aws.statements() if sql.startswith("CREATE OR REPLACE VIEW")]
    settings = load_settings(project)
    from panorama_kpi.catalog import views_sql

    selected = [(ds, t) for ds in settings.datasources for t in ds.tables]
    assert views == [sql for _name, sql in views_sql(settings, selected, True)]  # exactly the local text
    duck = shadow(settings, aws.statements(), tmp_path / "shadow")
    try:
        _, rows = duck.query('SELECT id, body, course, site FROM "app_table_notes" ORDER BY id')
        got = list(rows)
    finally:
        duck.close()
    assert got[:3] == [
        (0, "a", "c1", "example.com"),
        (1, None, "it's/x", "example.com"),
        (2, 'q"\\\n', None, "example.com"),
    ]
    queue_results(moto_endpoint, ["id", "name"], [(1, "ann"), (2, None)])
    out = run(project, "query", "SELECT id, name FROM app_table_users ORDER BY id", "--format", "csv")
    assert out.exit_code == 0 and out.output == "id,name\n1,ann\n2,\n"
    queue_results(moto_endpoint, ["id", "name"], [(1, "ann"), (2, None)])
    out = run(project, "query", "SELECT id, name FROM app_table_users ORDER BY id", "--format", "json")
    assert json.loads(out.output) == [{"id": "1", "name": "ann"}, {"id": "2", "name": None}]


def test_drop_keeps_objects_unless_purge(project: Path, aws: Recorder) -> None:
    run(project, "create-datalake-tables", "--all")
    run(project, "extract-and-load", "--all")
    run(project, "create-datalake-views", "--all")
    result = run(project, "drop-datalake-tables", "-t", "users")
    assert result.exit_code == 0, result.output
    names = {t["Name"] for t in glue_tables("panorama")}
    assert "app_raw_users" not in names and "app_raw_notes" in names
    assert "app/users/site=example.com/users.csv" in _keys()
    result = run(project, "drop-datalake-tables", "-t", "notes", "--purge")
    assert result.exit_code == 0 and "purged 3 object(s)" in result.output
    assert not _keys("app/notes/") and "_panorama/state/local/notes.json" not in _keys()
    assert "app/users/site=example.com/users.csv" in _keys()


def test_missing_bucket_fails_each_table_with_one_line(project: Path, aws: Recorder) -> None:
    text = project.read_text(encoding="utf-8").replace(BUCKET, "no-such-bucket-x")
    project.write_text(text, encoding="utf-8")
    result = run(project, "extract-and-load", "--all")
    assert result.exit_code == 1
    failed = [x for x in result.output.splitlines() if x.startswith("failed:")]
    assert len(failed) == 2 and all("does not exist" in x for x in failed)


def test_dry_run_prints_glue_calls_and_ddl(project: Path, aws: Recorder) -> None:
    result = run(project, "create-datalake-tables", "--all", "--dry-run")
    assert result.exit_code == 0
    assert result.output.count("-- glue:CreateTable panorama.") == 4  # and the runs and KPI history tables
    assert "LOCATION 's3://panorama-cli-lake/app/notes/'" in result.output
    assert aws.calls == []


# ---------------------------------------------------------------- the demo, on aws


@pytest.fixture(scope="module")
def demo_db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("demo") / "small.sqlite3"
    demo.generate(path, seed=11, scale=0.02, now=dt.datetime.now(dt.UTC).replace(tzinfo=None))
    return path


def _demo_settings(path: Path, db: Path, lake: dict[str, Any]) -> Path:
    raw = yaml.safe_load((ROOT / "demo" / "settings.yaml").read_text(encoding="utf-8"))
    raw["datalake"].update(lake)
    raw["datasources"][0]["database"] = str(db)
    raw["kpi_views"] = [str(ROOT / "sql" / "views")]
    raw["kpis"] = [str(ROOT / "sql" / "kpis")]
    path.write_text(yaml.safe_dump(raw, allow_unicode=True), encoding="utf-8")
    return path


def _demo_steps(settings: Path) -> Iterator[Result]:
    for command in (
        ["create-datalake-tables", "--all"],
        ["create-datalake-views", "--all"],
        ["extract-and-load", "--all", "--force"],
        ["extract-and-load", "--all"],
    ):
        result = run(settings, *command)
        assert result.exit_code == 0, (command, result.output)
        yield result


def test_demo_flow_on_aws(demo_db: Path, tmp_path: Path, aws: Recorder) -> None:
    """`make demo`'s steps on an aws lake; the KPI queries, computed over the bucket's content
    by the statements Athena received, equal the local lake's answers."""
    local = _demo_settings(
        tmp_path / "local.yaml", demo_db, {"type": "local", "path": str(tmp_path / "lake")}
    )
    remote = _demo_settings(
        tmp_path / "aws.yaml",
        demo_db,
        {"type": "aws", "panorama_raw_data_bucket": BUCKET, "datalake_database": "panorama"},
    )
    list(_demo_steps(local))
    outputs = list(_demo_steps(remote))
    assert "0 failed" in outputs[-1].output and "incremental since" in outputs[-1].output
    settings = load_settings(remote)
    tables = {t["Name"]: t for t in glue_tables("panorama")}
    for ds in settings.datasources:
        for table in ds.tables:
            glue = tables[settings.raw_table_name(table)]
            assert [c["Name"] for c in glue["StorageDescriptor"]["Columns"]] == [
                f.name for f in table.file_fields
            ]
            prefix = f"openedx/{table.name}/"
            keys = _keys(prefix)
            assert keys and all(k.endswith(f"/{table.name}.csv") for k in keys)
            on_s3 = {tuple(decode_segment(s)[1] for s in k[len(prefix) :].split("/")[:-1]) for k in keys}
            assert glue_partitions("panorama", glue["Name"]) == on_s3
    for sql in demo.DEMO_QUERIES:
        queue_results(aws_endpoint(aws), ["x"], [])
        assert run(remote, "query", sql).exit_code == 0
    duck = shadow(
        settings,
        [s for s in aws.statements() if not s[0].lstrip().upper().startswith("SELECT")],
        tmp_path / "shadow",
    )
    engine = open_engine(load_settings(local))
    try:
        for sql in demo.DEMO_QUERIES:
            want = list(engine.query(sql)[1])
            got = list(duck.query(sql)[1])
            assert got == want and want, sql
    finally:
        duck.close()
        engine.close()
    queries = [s for s, _ in aws.statements() if s in demo.DEMO_QUERIES]
    assert queries == demo.DEMO_QUERIES


def aws_endpoint(_: Recorder) -> str:
    import os

    return os.environ["AWS_ENDPOINT_URL"]


def test_a_failing_view_does_not_stop_the_others(project: Path, aws: Recorder) -> None:
    run(project, "create-datalake-tables", "--all")
    first: list[str] = []

    def fail_first(parsed: dict[str, Any], **_: Any) -> None:
        execution = parsed["QueryExecution"]
        first.append(first[0] if first else execution["QueryExecutionId"])
        if execution["QueryExecutionId"] == first[0]:
            execution["Status"] = {
                "State": "FAILED",
                "StateChangeReason": "line 3:5: Function 'nope' not registered",
            }

    aws.hooks.append(("after-call.athena.GetQueryExecution", fail_first))
    result = run(project, "create-datalake-views", "--all")
    assert result.exit_code == 1
    lines = result.output.splitlines()
    failed = [x for x in lines if x.startswith("FAILED view app_table_notes: Athena query ")]
    assert len(failed) == 1 and failed[0].endswith("FAILED: line 3:5: Function 'nope' not registered")
    assert "created view app_table_users" in lines
    assert lines[-1] == "error: 1 of 5 view(s) failed: app_table_notes (see above)"
    assert aws.count("athena", "StartQueryExecution") == 5  # typed views, the runs view, the history views


def test_endpoint_url_setting_reaches_every_service(
    project: Path, aws: Recorder, moto_endpoint: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("AWS_ENDPOINT_URL")
    text = project.read_text(encoding="utf-8")
    project.write_text(
        text.replace(
            "  aws_region: us-east-1\n", f"  aws_region: us-east-1\n  endpoint_url: {moto_endpoint}\n"
        )
    )
    result = run(project, "test-connections")
    assert result.exit_code == 0, result.output
    assert aws.count("s3") and aws.count("glue") and aws.count("athena")


def test_load_creates_a_missing_raw_table(project: Path, aws: Recorder) -> None:
    result = run(project, "extract-and-load", "-t", "notes")
    assert result.exit_code == 0, result.output
    table = client("glue").get_table(DatabaseName="panorama", Name="app_raw_notes")["Table"]
    assert [c["Name"] for c in table["PartitionKeys"]] == ["site", "course"]
    assert len(glue_partitions("panorama", "app_raw_notes")) == 3


def test_wrong_region_names_the_region(project: Path, aws: Recorder) -> None:
    project.write_text(
        project.read_text(encoding="utf-8").replace("aws_region: us-east-1", "aws_region: eu-west-3")
    )
    result = run(project, "test-connections")
    assert result.exit_code == 1
    line = next(x for x in result.output.splitlines() if x.startswith("FAIL engine"))
    assert "Glue database 'panorama' does not exist in eu-west-3" in line and "aws_region" in line


def test_denied_table_fails_alone_and_damages_nothing(project: Path, aws: Recorder) -> None:
    assert run(project, "extract-and-load", "--all").exit_code == 0
    before = {k: client("s3").get_object(Bucket=BUCKET, Key=k)["Body"].read() for k in _keys("app/")}

    def deny_notes(params: dict[str, Any], **_: Any) -> Any:
        if "/app/notes/" in str(params.get("url_path", "")):
            return error_answer(403, "AccessDenied", "Access Denied")
        return None

    aws.hooks.append(("before-call.s3.PutObject", deny_notes))
    db = sqlite3.connect(project.parent / "app.sqlite3")
    db.execute("UPDATE notes SET body = 'new' WHERE id = 0")
    db.execute("INSERT INTO users VALUES (3, 'cy')")
    db.commit()
    db.close()
    result = run(project, "extract-and-load", "--all", "--force")
    assert result.exit_code == 1
    failed = [x for x in result.output.splitlines() if x.startswith("failed:")]
    assert len(failed) == 1 and failed[0].startswith("failed: local.notes: cannot write s3://")
    assert (
        "access denied: the AWS identity needs s3:PutObject on arn:aws:s3:::panorama-cli-lake/app/notes/"
        in failed[0]
    )
    after = {k: client("s3").get_object(Bucket=BUCKET, Key=k)["Body"].read() for k in _keys("app/")}
    assert {k: v for k, v in after.items() if "/notes/" in k} == {
        k: v for k, v in before.items() if "/notes/" in k
    }
    assert b'"3","cy"' in after["app/users/site=example.com/users.csv"]
    assert len(glue_partitions("panorama", "app_raw_notes")) == 3


def test_switching_to_gzip_replaces_the_objects(project: Path, aws: Recorder) -> None:
    run(project, "create-datalake-tables", "--all")
    assert run(project, "extract-and-load", "--all").exit_code == 0
    text = project.read_text(encoding="utf-8")
    project.write_text(
        text.replace("  aws_region: us-east-1\n", "  aws_region: us-east-1\n  compression: gzip\n")
    )
    assert run(project, "create-datalake-tables", "--all").exit_code == 0
    assert client("glue").get_table(DatabaseName="panorama", Name="app_raw_notes")["Table"][
        "StorageDescriptor"
    ]["Compressed"]
    result = run(project, "extract-and-load", "--all", "--force")
    assert result.exit_code == 0, result.output
    keys = [k for k in _keys("app/") if not k.startswith("app/_panorama_runs/")]
    assert len(keys) == 4 and all(k.endswith(".csv.gz") for k in keys)
    assert len(glue_partitions("panorama", "app_raw_notes")) == 3
