"""AWS in the tests: a moto server on 127.0.0.1 reached over HTTP by the normal clients.

moto does not enforce AWS's per-call limits and executes no Athena SQL, so the
recorder here checks every call the product makes against AWS's documented
limits, parses every Athena statement with sqlglot's athena dialect, and a
DuckDB "shadow" runs those statements' transpilation over a copy of the same
S3 content, so a statement Athena would reject or compute differently is caught.
"""

from __future__ import annotations

import json
import urllib.request
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import boto3
import pytest
import sqlglot
from sqlglot import exp

from panorama_kpi.aws import Aws
from panorama_kpi.engines.duckdb import DuckDBEngine
from panorama_kpi.lakes import open_engine, open_storage
from panorama_kpi.settings import Settings
from panorama_kpi.views import RawTable
from tests.lakes import Lake

REGION = "us-east-1"

#: AWS's documented maxima per call (Glue API reference).
LIMITS = {
    ("glue", "BatchCreatePartition"): ("PartitionInputList", 100),
    ("glue", "BatchUpdatePartition"): ("Entries", 100),
    ("glue", "BatchDeletePartition"): ("PartitionsToDelete", 25),
    ("s3", "DeleteObjects"): ("Delete.Objects", 1000),
}


@pytest.fixture(scope="session")
def moto_endpoint() -> Iterator[str]:
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    yield f"http://{host}:{port}"
    server.stop()


def moto_post(endpoint: str, path: str, body: dict[str, Any] | None = None) -> None:
    data = json.dumps(body or {}).encode()
    req = urllib.request.Request(f"{endpoint}{path}", data=data, method="POST")
    with urllib.request.urlopen(req) as answer:
        answer.read()


@dataclass
class Recorder:
    """Every AWS call the product makes: (service, operation, parameters)."""

    calls: list[tuple[str, str, dict[str, Any]]] = field(default_factory=list)
    #: (event, handler) registered on every client built after this was made
    hooks: list[tuple[str, Any]] = field(default_factory=list)

    def __call__(self, params: dict[str, Any], model: Any, **_: Any) -> None:
        service = model.service_model.endpoint_prefix  # s3, glue, athena
        self.calls.append((service, model.name, dict(params)))
        limit = LIMITS.get((service, model.name))
        if limit:
            value: Any = params
            for part in limit[0].split("."):
                value = value[part]
            assert len(value) <= limit[1], f"{model.name} with {len(value)} items (AWS allows {limit[1]})"
        if (service, model.name) == ("glue", "GetPartitions"):
            assert params.get("MaxResults", 0) <= 1000
        if (service, model.name) == ("athena", "StartQueryExecution"):
            sqlglot.parse_one(params["QueryString"], read="athena")  # would Athena parse it?

    def count(self, service: str, operation: str | None = None) -> int:
        return sum(1 for s, o, _ in self.calls if s == service and operation in (None, o))

    def statements(self) -> list[tuple[str, list[str]]]:
        return [
            (p["QueryString"], list(p.get("ExecutionParameters", [])))
            for s, o, p in self.calls
            if (s, o) == ("athena", "StartQueryExecution")
        ]


def recording(monkeypatch: pytest.MonkeyPatch) -> Recorder:
    """Record the calls of every client the product builds from now on."""
    recorder = Recorder()
    make = Aws._make

    def _make(self: Aws, service: str) -> Any:
        client = make(self, service)
        client.meta.events.register("before-parameter-build", recorder)
        for event, handler in recorder.hooks:
            client.meta.events.register(event, handler)
        return client

    monkeypatch.setattr(Aws, "_make", _make)
    return recorder


def aws_env(monkeypatch: pytest.MonkeyPatch, endpoint: str) -> None:
    monkeypatch.setenv("AWS_ENDPOINT_URL", endpoint)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", REGION)
    for name in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_CONFIG_FILE", "AWS_SHARED_CREDENTIALS_FILE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", "/dev/null")
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", "/dev/null")


def client(service: str) -> Any:
    return boto3.client(service, region_name=REGION)


def prepare(endpoint: str, bucket: str, database: str) -> None:
    moto_post(endpoint, "/moto-api/reset")
    client("s3").create_bucket(Bucket=bucket)
    client("glue").create_database(DatabaseInput={"Name": database})


def queue_results(
    endpoint: str, columns: Sequence[str], rows: Sequence[Sequence[Any]], types: Sequence[str] = ()
) -> None:
    """What moto's Athena answers to the next query (it computes nothing itself); every
    column is a varchar unless `types` names Athena's types."""
    data = [{"Data": [{"VarCharValue": c} for c in columns]}] + [
        {"Data": [{} if v is None else {"VarCharValue": str(v)} for v in row]} for row in rows
    ]
    kinds = list(types) or ["varchar"] * len(columns)
    info = [{"Name": c, "Label": c, "Type": t} for c, t in zip(columns, kinds, strict=True)]
    moto_post(
        endpoint, "/moto-api/static/athena/query-results", {"results": [{"rows": data, "column_info": info}]}
    )


def shadow(settings: Settings, statements: Sequence[tuple[str, list[str]]], root: Path) -> DuckDBEngine:
    """A DuckDB catalog over a copy of the bucket, with the Glue tables as raw tables and
    every recorded Athena statement replayed (parameters bound)."""
    lake = settings.datalake
    bucket = lake.panorama_raw_data_bucket
    s3 = client("s3")
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket):
        for item in page.get("Contents", ()):
            path = root / item["Key"]
            path.parent.mkdir(parents=True, exist_ok=True)
            s3.download_file(bucket, item["Key"], str(path))
    engine = DuckDBEngine(root, lake.datalake_database)
    engine.allow_writes = True  # the replay runs the CREATE VIEWs Athena received
    for table in glue_tables(lake.datalake_database):
        if table.get("TableType") != "EXTERNAL_TABLE":
            continue
        sd = table["StorageDescriptor"]
        prefix = sd["Location"].removeprefix(f"s3://{bucket}/")
        engine.create_raw_table(
            RawTable(
                name=table["Name"],
                table=prefix.rstrip("/").rpartition("/")[2],
                prefix=prefix,
                columns=tuple(c["Name"] for c in sd["Columns"]),
                partition_columns=tuple(c["Name"] for c in table.get("PartitionKeys", ())),
                compression="gzip" if sd.get("Compressed") else "none",
            )
        )
    for sql, params in statements:
        if sql.strip().upper() != "SELECT 1":
            list(engine.query(bind(sql, params))[1])
    return engine


def bind(sql: str, params: Sequence[str]) -> str:
    """Substitute Athena execution parameters (literal texts) for the `?` placeholders."""
    if not params:
        return sql
    values = iter(params)
    tree = sqlglot.parse_one(sql, read="athena")
    tree = tree.transform(
        lambda node: (
            sqlglot.parse_one(next(values), read="athena") if isinstance(node, exp.Placeholder) else node
        )
    )
    return tree.sql("athena")


def glue_tables(database: str) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for page in client("glue").get_paginator("get_tables").paginate(DatabaseName=database):
        out += page["TableList"]
    return out


def glue_partitions(database: str, table: str) -> set[tuple[str, ...]]:
    out: set[tuple[str, ...]] = set()
    for page in (
        client("glue").get_paginator("get_partitions").paginate(DatabaseName=database, TableName=table)
    ):
        out |= {tuple(p["Values"]) for p in page["Partitions"]}
    return out


def aws_lake(settings: Settings, request: pytest.FixtureRequest) -> Lake:
    endpoint = request.getfixturevalue("moto_endpoint")
    monkeypatch = request.getfixturevalue("monkeypatch")
    tmp_path: Path = request.getfixturevalue("tmp_path")
    aws_env(monkeypatch, endpoint)
    lake = settings.datalake
    assert lake.panorama_raw_data_bucket
    prepare(endpoint, lake.panorama_raw_data_bucket, lake.datalake_database)
    recorder = recording(monkeypatch)
    engine = open_engine(settings)
    db = lake.datalake_database

    def partitions(raw: RawTable) -> set[tuple[str, ...]]:
        return glue_partitions(db, raw.name)

    def columns(raw: RawTable) -> list[str]:
        table = client("glue").get_table(DatabaseName=db, Name=raw.name)["Table"]
        return [c["Name"] for c in table["StorageDescriptor"]["Columns"] + table.get("PartitionKeys", [])]

    shadows = iter(range(1_000_000))

    def select(sql: str, params: Sequence[Any], expected: list[tuple[Any, ...]]) -> list[tuple[Any, ...]]:
        """Athena answers what was queued; the shadow computes what Athena would have."""
        names = [e.alias_or_name for e in sqlglot.parse_one(sql, read="athena").expressions]
        queue_results(endpoint, names, expected)
        got = list(engine.query(sql, params)[1])
        assert [tuple(str(v) for v in r) for r in got] == [tuple(str(v) for v in r) for r in expected]
        *before, last = recorder.statements()
        duck = shadow(settings, before, tmp_path / f"shadow{next(shadows)}")
        try:
            return list(duck.query(bind(*last))[1])
        finally:
            duck.close()

    made = Lake(settings, open_storage(settings), engine, partitions, columns, select)
    made.extra.update(recorder=recorder, endpoint=endpoint)
    return made


def error_answer(status: int, code: str, message: str) -> tuple[Any, dict[str, Any]]:
    """A before-call answer: what botocore parses from an AWS error response."""
    from botocore.awsrequest import AWSResponse

    parsed = {"Error": {"Code": code, "Message": message}, "ResponseMetadata": {"HTTPStatusCode": status}}
    return AWSResponse("https://aws.invalid/", status, {}, None), parsed


class _Raw:
    def __init__(self, body: bytes) -> None:
        self.body = body

    def stream(self, **_: Any) -> Iterator[bytes]:
        yield self.body


def json_error_response(status: int, error_type: str, message: str) -> Any:
    """A before-send answer: an AWS JSON-protocol error on the wire (Glue, Athena)."""
    from botocore.awsrequest import AWSResponse

    body = json.dumps({"__type": error_type, "message": message}).encode()
    return AWSResponse(
        "https://aws.invalid/", status, {"Content-Type": "application/x-amz-json-1.1"}, _Raw(body)
    )
