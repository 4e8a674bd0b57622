"""The aws lake against a moto server over HTTP: S3 objects, Glue definitions and
partitions within AWS's limits, Athena statements, and errors as one line each."""

from __future__ import annotations

import gzip
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from panorama_kpi.aws import Aws
from panorama_kpi.engines.athena import AthenaEngine
from panorama_kpi.errors import EngineError, LakeError, SourceError
from panorama_kpi.lake.s3 import S3Storage
from panorama_kpi.views import RawTable
from tests.aws import (
    client,
    error_answer,
    glue_partitions,
    json_error_response,
)
from tests.lakes import Lake, make_lake

BUCKET = "panorama-test-lake"
MiB = 1024 * 1024


@pytest.fixture
def lake(request: pytest.FixtureRequest, tmp_path: Path, moto_endpoint: str) -> Iterator[Lake]:
    with make_lake("aws", tmp_path, request) as made:
        yield made


def _raw(name: str = "x_raw_things", columns: tuple[str, ...] = ("id", "txt")) -> RawTable:
    return RawTable(name, "things", "x/things/", columns, ("site", "p"))


def _big(total: int, marker: list[int] | None = None) -> Iterator[str]:
    """`total` bytes of text in 64 KiB chunks; `marker` gets how many were produced so far."""
    line = ("0123456789abcdef" * 4095) + "\n"
    produced = 0
    while produced < total:
        chunk = line[: min(len(line), total - produced)]
        produced += len(chunk)
        if marker is not None:
            marker.append(produced)
        yield chunk


def _body(key: str) -> bytes:
    return bytes(client("s3").get_object(Bucket=BUCKET, Key=key)["Body"].read())


def _uploads() -> list[Any]:
    return list(client("s3").list_multipart_uploads(Bucket=BUCKET).get("Uploads", []))


# ---------------------------------------------------------------- S3 storage


def test_small_object_is_one_put(lake: Lake) -> None:
    size = lake.storage.write("x/t/t.csv", ['"a"\n', '"é"\n'])
    assert _body("x/t/t.csv") == '"a"\n"é"\n'.encode()
    assert size == len('"a"\n"é"\n'.encode())
    recorder = lake.extra["recorder"]
    assert recorder.count("s3", "PutObject") == 1 and recorder.count("s3", "CreateMultipartUpload") == 0
    assert lake.storage.read_text("x/t/t.csv") == '"a"\n"é"\n'
    assert lake.storage.read_text("x/t/missing.csv") is None
    assert list(lake.storage.list("x/")) == ["x/t/t.csv"]


def test_large_object_streams_in_parts_while_the_source_runs(
    lake: Lake, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert isinstance(lake.storage, S3Storage)
    monkeypatch.setattr(S3Storage, "part_size", 5 * MiB)
    recorder = lake.extra["recorder"]
    parts_when_produced: list[int] = []

    def source() -> Iterator[str]:
        for chunk in _big(17 * MiB):
            parts_when_produced.append(recorder.count("s3", "UploadPart"))
            yield chunk

    size = lake.storage.write("x/big/big.csv", source())
    data = _body("x/big/big.csv")
    assert size == len(data) == 17 * MiB
    assert data == "".join(_big(17 * MiB)).encode()
    assert recorder.count("s3", "UploadPart") == 4 and recorder.count("s3", "CompleteMultipartUpload") == 1
    assert parts_when_produced[-1] >= 1, "no part was uploaded before the source finished"
    assert _uploads() == []


def test_failing_source_aborts_upload_and_keeps_old_object(
    lake: Lake, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(S3Storage, "part_size", 5 * MiB)
    lake.storage.write("x/big/big.csv", ["old\n"])

    def failing() -> Iterator[str]:
        yield from _big(12 * MiB)
        raise SourceError("source went away")

    with pytest.raises(SourceError, match="went away"):
        lake.storage.write("x/big/big.csv", failing())
    assert _body("x/big/big.csv") == b"old\n"
    assert _uploads() == []
    assert lake.extra["recorder"].count("s3", "AbortMultipartUpload") == 1


def test_network_drop_mid_upload_is_one_line_and_no_orphan(
    lake: Lake, monkeypatch: pytest.MonkeyPatch
) -> None:
    from botocore.exceptions import EndpointConnectionError

    monkeypatch.setattr(S3Storage, "part_size", 5 * MiB)
    monkeypatch.setattr(Aws, "max_attempts", 2)
    lake.storage.write("x/big/big.csv", ["old\n"])
    seen: list[int] = []

    def drop(request: Any, **_: Any) -> None:
        """The connection fails while part 2 is on the wire, on every attempt."""
        if "partNumber=2" in request.url:
            seen.append(2)
            raise EndpointConnectionError(endpoint_url="https://s3.amazonaws.com")

    recorder = lake.extra["recorder"]
    recorder.hooks.append(("before-send.s3.UploadPart", drop))
    storage = S3Storage(lake.settings.datalake)  # a fresh client, with the hook
    with pytest.raises(LakeError) as err:
        storage.write("x/big/big.csv", _big(16 * MiB))
    message = str(err.value)
    assert (
        "\n" not in message
        and "s3://panorama-test-lake/x/big/big.csv" in message
        and "cannot reach" in message
    )
    assert _body("x/big/big.csv") == b"old\n"
    assert _uploads() == []
    assert seen == [2, 2, 2]  # the first attempt and two retries (botocore), then given up


def test_gzip_and_sse_kms(request: pytest.FixtureRequest, tmp_path: Path, moto_endpoint: str) -> None:
    key_id = "arn:aws:kms:us-east-1:123456789012:key/0f1e2d3c-0000-4000-8000-000000000001"
    with make_lake("aws", tmp_path, request, compression="gzip", kms_key_id=key_id) as lake:
        lake.storage.write("x/t/t.csv.gz", ['"a"\n', '"b"\n'])
        assert gzip.decompress(_body("x/t/t.csv.gz")) == b'"a"\n"b"\n'
        head = client("s3").head_object(Bucket=BUCKET, Key="x/t/t.csv.gz")
        assert head["ServerSideEncryption"] == "aws:kms" and head["SSEKMSKeyId"] == key_id
        calls = [p for s, o, p in lake.extra["recorder"].calls if o == "PutObject"]
        assert calls[0]["SSEKMSKeyId"] == key_id


def test_delete_prefix_batches(lake: Lake) -> None:
    for i in range(5):
        lake.storage.write(f"x/t/p={i}/t.csv", ["x\n"])
    lake.storage.write("x/other/o.csv", ["x\n"])
    assert lake.storage.delete_prefix("x/t/") == 5
    assert list(lake.storage.list("x/")) == ["x/other/o.csv"]


# ---------------------------------------------------------------- Glue


def test_glue_table_definition(lake: Lake) -> None:
    raw = _raw()
    assert lake.engine.create_raw_table(raw) == "created"
    table = client("glue").get_table(DatabaseName="panorama", Name=raw.name)["Table"]
    sd = table["StorageDescriptor"]
    assert [c["Name"] for c in sd["Columns"]] == ["id", "txt"]
    assert {c["Type"] for c in sd["Columns"] + table["PartitionKeys"]} == {"string"}
    assert [c["Name"] for c in table["PartitionKeys"]] == ["site", "p"]
    assert sd["Location"] == f"s3://{BUCKET}/x/things/"
    assert sd["SerdeInfo"]["SerializationLibrary"] == "org.apache.hadoop.hive.serde2.OpenCSVSerde"
    assert sd["SerdeInfo"]["Parameters"] == {"separatorChar": ",", "quoteChar": '"', "escapeChar": "\\"}
    assert table["Parameters"]["skip.header.line.count"] == "1"
    assert table["TableType"] == "EXTERNAL_TABLE"
    assert lake.engine.create_raw_table(raw) == "unchanged"


def test_2000_new_partitions_take_20_glue_calls(lake: Lake) -> None:
    raw = _raw()
    lake.engine.create_raw_table(raw)
    recorder = lake.extra["recorder"]
    before = recorder.count("glue")
    partitions = [[("site", "s1"), ("p", f"v{i}")] for i in range(2000)]
    lake.engine.add_partitions(raw, partitions)
    assert recorder.count("glue") - before == 20
    assert recorder.count("glue", "BatchCreatePartition") == 20
    assert len(glue_partitions("panorama", raw.name)) == 2000
    part = client("glue").get_partition(
        DatabaseName="panorama", TableName=raw.name, PartitionValues=["s1", "v7"]
    )
    assert part["Partition"]["StorageDescriptor"]["Location"] == f"s3://{BUCKET}/x/things/site=s1/p=v7/"
    lake.engine.add_partitions(raw, partitions)  # all exist: skipped, no error
    assert recorder.count("glue", "BatchCreatePartition") == 40
    lake.engine.remove_partitions(raw, partitions[:60])
    assert recorder.count("glue", "BatchDeletePartition") == 3
    assert len(glue_partitions("panorama", raw.name)) == 1940


def test_partition_location_encodes_values(lake: Lake) -> None:
    raw = _raw()
    lake.engine.create_raw_table(raw)
    lake.engine.add_partitions(raw, [[("site", "s1"), ("p", "it's/50%=x é")]])
    part = client("glue").get_partition(
        DatabaseName="panorama", TableName=raw.name, PartitionValues=["s1", "it's/50%=x é"]
    )
    assert part["Partition"]["StorageDescriptor"]["Location"].endswith("/p=it%27s%2F50%25%3Dx%20%C3%A9/")


def test_batch_errors_are_reported(lake: Lake) -> None:
    raw = _raw()
    lake.engine.create_raw_table(raw)

    def fail_one(parsed: dict[str, Any], **_: Any) -> None:
        parsed.setdefault("Errors", []).append(
            {
                "PartitionValues": ["s1", "a"],
                "ErrorDetail": {"ErrorCode": "InternalServiceException", "ErrorMessage": "try again"},
            }
        )

    lake.extra["recorder"].hooks.append(("after-call.glue.BatchCreatePartition", fail_one))
    engine = AthenaEngine(lake.settings.datalake)
    with pytest.raises(
        EngineError, match=r"1 failed, first \['s1', 'a'\]: InternalServiceException: try again"
    ):
        engine.add_partitions(raw, [[("site", "s1"), ("p", "a")]])


def test_changed_columns_update_table_and_every_partition(lake: Lake) -> None:
    """GetPartitions answered page by page (as AWS does; moto never paginates)."""
    raw = _raw()
    lake.engine.create_raw_table(raw)
    lake.engine.add_partitions(raw, [[("site", "s1"), ("p", f"v{i}")] for i in range(7)])
    tokens: list[str | None] = []

    def page_in(params: dict[str, Any], context: dict[str, Any], **_: Any) -> None:
        tokens.append(params.get("NextToken"))
        context["offset"] = int(params.pop("NextToken", None) or 0)

    def page_out(parsed: dict[str, Any], context: dict[str, Any], **_: Any) -> None:
        offset = context["offset"]
        everything = parsed.get("Partitions", [])
        parsed["Partitions"] = everything[offset : offset + 3]
        if offset + 3 < len(everything):
            parsed["NextToken"] = str(offset + 3)
        else:
            parsed.pop("NextToken", None)

    recorder = lake.extra["recorder"]
    recorder.hooks += [
        ("before-parameter-build.glue.GetPartitions", page_in),
        ("after-call.glue.GetPartitions", page_out),
    ]
    engine = AthenaEngine(lake.settings.datalake)
    wider = _raw(columns=("id", "txt", "added"))
    assert engine.create_raw_table(wider) == "updated in place (7 partition(s) given the new columns)"
    assert tokens == [None, "3", "6"]
    assert recorder.count("glue", "UpdateTable") == 1 and recorder.count("glue", "BatchUpdatePartition") == 1
    recorder.hooks.clear()
    parts = client("glue").get_partitions(DatabaseName="panorama", TableName=raw.name)["Partitions"]
    assert len(parts) == 7
    for part in parts:
        assert [c["Name"] for c in part["StorageDescriptor"]["Columns"]] == ["id", "txt", "added"]
        assert part["StorageDescriptor"]["Location"].endswith(f"/p={part['Values'][1]}/")


def test_changed_partition_keys_recreate_table(lake: Lake) -> None:
    lake.engine.create_raw_table(_raw())
    other = RawTable("x_raw_things", "things", "x/things/", ("id", "txt"), ("site",))
    assert lake.engine.create_raw_table(other).startswith("recreated")
    table = client("glue").get_table(DatabaseName="panorama", Name="x_raw_things")["Table"]
    assert [c["Name"] for c in table["PartitionKeys"]] == ["site"]


# ---------------------------------------------------------------- errors


def test_access_denied_names_the_action_and_resource(lake: Lake) -> None:
    message = (
        "User: arn:aws:iam::123456789012:user/etl is not authorized to perform: glue:GetDatabase "
        "on resource: arn:aws:glue:us-east-1:123456789012:database/panorama"
    )
    lake.extra["recorder"].hooks.append(
        ("before-call.glue.GetDatabase", lambda **_: error_answer(400, "AccessDeniedException", message))
    )
    engine = AthenaEngine(lake.settings.datalake)
    with pytest.raises(EngineError) as err:
        engine.check()
    text = str(err.value)
    assert "access denied" in text and "glue:GetDatabase" in text
    assert "arn:aws:glue:us-east-1:<account>:database/panorama" in text and "\n" not in text


def test_s3_access_denied_names_the_iam_action(lake: Lake) -> None:
    lake.extra["recorder"].hooks.append(
        ("before-call.s3.PutObject", lambda **_: error_answer(403, "AccessDenied", "Access Denied"))
    )
    with pytest.raises(LakeError, match=r"needs s3:PutObject on arn:aws:s3:::panorama-test-lake/x/t.csv"):
        S3Storage(lake.settings.datalake).write("x/t.csv", ["a\n"])


def test_missing_bucket_and_database(lake: Lake, tmp_path: Path, request: pytest.FixtureRequest) -> None:
    from dataclasses import replace

    missing = replace(lake.settings.datalake, panorama_raw_data_bucket="no-such-bucket-here")
    with pytest.raises(LakeError, match="bucket 'no-such-bucket-here' does not exist"):
        S3Storage(missing).check()
    with pytest.raises(LakeError, match="the bucket does not exist"):
        S3Storage(missing).write("k.csv", ["a\n"])
    no_db = replace(lake.settings.datalake, datalake_database="nodb")
    with pytest.raises(EngineError, match="Glue database 'nodb' does not exist in us-east-1"):
        AthenaEngine(no_db).check()
    with pytest.raises(EngineError, match="Glue database 'nodb' does not exist"):
        AthenaEngine(no_db).create_raw_table(_raw())


def test_throttling_is_retried_by_botocore(lake: Lake) -> None:
    sent: list[int] = []

    def throttle(**_: Any) -> Any:
        sent.append(1)
        if len(sent) <= 2:
            return json_error_response(400, "ThrottlingException", "Rate exceeded")
        return None

    lake.extra["recorder"].hooks.append(("before-send.glue.GetDatabase", throttle))
    AthenaEngine(lake.settings.datalake).glue.check_database()
    assert len(sent) == 3


def test_failed_athena_query_reports_id_state_and_message(lake: Lake) -> None:
    def failed(parsed: dict[str, Any], **_: Any) -> None:
        parsed["QueryExecution"]["Status"] = {
            "State": "FAILED",
            "StateChangeReason": "line 1:8: Column 'nope' cannot be resolved",
        }

    lake.extra["recorder"].hooks.append(("after-call.athena.GetQueryExecution", failed))
    engine = AthenaEngine(lake.settings.datalake)
    with pytest.raises(EngineError) as err:
        engine.create_view("v", 'CREATE OR REPLACE VIEW "v" AS SELECT "nope" FROM "x_raw_things"')
    text = str(err.value)
    assert text.startswith("Athena query ") and "FAILED: line 1:8: Column 'nope' cannot be resolved" in text


def test_athena_timeout_stops_the_query(
    request: pytest.FixtureRequest, tmp_path: Path, moto_endpoint: str
) -> None:
    with make_lake("aws", tmp_path, request, athena_query_timeout=1) as lake:

        def running(parsed: dict[str, Any], **_: Any) -> None:
            parsed["QueryExecution"]["Status"] = {"State": "RUNNING"}

        recorder = lake.extra["recorder"]
        recorder.hooks.append(("after-call.athena.GetQueryExecution", running))
        engine = AthenaEngine(lake.settings.datalake)
        with pytest.raises(EngineError, match=r"still RUNNING after 1s; stopped it"):
            engine.query("SELECT 1")
        assert recorder.count("athena", "StopQueryExecution") == 1
        assert 2 <= recorder.count("athena", "GetQueryExecution") <= 6  # backoff, not a busy loop


def test_query_results_are_typed_and_streamed(lake: Lake) -> None:
    from tests.aws import moto_post

    data = [{"Data": [{"VarCharValue": "n"}, {"VarCharValue": "d"}, {"VarCharValue": "t"}]}] + [
        {"Data": [{"VarCharValue": str(i)}, {"VarCharValue": "1.50"}, {}]} for i in range(3)
    ]
    info = [
        {"Name": "n", "Type": "bigint"},
        {"Name": "d", "Type": "decimal", "Precision": 10, "Scale": 2},
        {"Name": "t", "Type": "varchar"},
    ]
    moto_post(
        lake.extra["endpoint"],
        "/moto-api/static/athena/query-results",
        {"results": [{"rows": data, "column_info": info}]},
    )
    columns, rows = lake.engine.query("SELECT n, d, t FROM x WHERE n > ?", [0])
    import decimal

    assert columns == ["n", "d", "t"]
    assert list(rows) == [(i, decimal.Decimal("1.50"), None) for i in range(3)]
    start = [p for s, o, p in lake.extra["recorder"].calls if o == "StartQueryExecution"][-1]
    assert start["ExecutionParameters"] == ["0"]
    assert start["QueryExecutionContext"] == {"Database": "panorama"} and start["WorkGroup"] == "primary"


def test_half_a_key_pair_is_a_settings_error(lake: Lake) -> None:
    from dataclasses import replace

    from panorama_kpi.errors import SettingsError

    half = replace(lake.settings.datalake, aws_access_key="AKIAEXAMPLE", aws_secret_access_key=None)
    with pytest.raises(SettingsError, match="set both, or neither"):
        S3Storage(half).check()


def test_glue_names_are_lowercase(lake: Lake) -> None:
    """Glue stores table and column names in lowercase, and Athena resolves them so: a
    mixed-case definition must not look changed on every run."""
    raw = RawTable("X_Raw_Things", "Things", "x/Things/", ("Id", "Txt"), ("Site", "p"))
    assert lake.engine.create_raw_table(raw) == "created"
    table = client("glue").get_table(DatabaseName="panorama", Name="x_raw_things")["Table"]
    assert [c["Name"] for c in table["StorageDescriptor"]["Columns"] + table["PartitionKeys"]] == [
        "id",
        "txt",
        "site",
        "p",
    ]
    assert lake.engine.create_raw_table(raw) == "unchanged"
    lake.engine.add_partitions(raw, [[("Site", "S1"), ("p", "A")]])
    assert glue_partitions("panorama", "x_raw_things") == {("S1", "A")}
    lake.engine.drop_raw_table(raw)
    assert "x_raw_things" not in {
        t["Name"] for t in client("glue").get_tables(DatabaseName="panorama")["TableList"]
    }


def test_compare_and_swap_primitives(lake: Lake) -> None:
    """What a lock object needs, on S3's conditional writes."""
    storage = lake.storage
    assert isinstance(storage, S3Storage)
    key = "_panorama/locks/site=x/datasource=d.lock"
    assert storage.create_exclusive(key, "mine") is True
    assert storage.create_exclusive(key, "theirs") is False
    first = storage.read_versioned(key)
    assert first is not None and first.text == "mine" and first.token
    assert storage.replace_if(key, "beat", '"not-the-etag"') is False
    assert storage.replace_if(key, "beat", first.token) is True
    second = storage.read_versioned(key)
    assert second is not None and second.text == "beat" and second.token != first.token
    assert second.modified.tzinfo is None
    assert storage.delete_if(key, first.token) is False
    assert storage.delete_if(key, second.token) is True
    assert storage.read_versioned(key) is None
    assert storage.replace_if(key, "gone", second.token) is False


def test_remove_temporaries_aborts_only_stale_uploads(lake: Lake) -> None:
    """moto dates every upload 2010-11-10; a hook gives them today's date, as AWS would."""
    import datetime as dt

    client("s3").create_multipart_upload(Bucket=BUCKET, Key="x/things/site=s1/things.csv")
    client("s3").create_multipart_upload(Bucket=BUCKET, Key="x/other/other.csv")

    def today(parsed: dict[str, Any], **_: Any) -> None:
        for upload in parsed.get("Uploads", []):
            upload["Initiated"] = dt.datetime.now(dt.UTC)

    recorder = lake.extra["recorder"]
    recorder.hooks.append(("after-call.s3.ListMultipartUploads", today))
    young = S3Storage(lake.settings.datalake)
    assert young.remove_temporaries("x/things/") == 0  # maybe another site's write in progress
    recorder.hooks.clear()
    old = S3Storage(lake.settings.datalake)
    assert old.remove_temporaries("x/things/") == 1
    assert [u["Key"] for u in _uploads()] == ["x/other/other.csv"]
