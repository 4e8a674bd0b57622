"""MongoDB source through the real pymongo against the wire-protocol stand-in:
inferred fields, BSON values end to end through the typed view, bad input."""

from __future__ import annotations

import base64
import datetime as dt
import decimal
import json
import logging
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import bson
import pytest

from panorama_kpi.errors import SourceError
from panorama_kpi.settings import load_settings
from panorama_kpi.sources import open_source
from tests.lake_helpers import load_all, run
from tests.mongo_standin import MongoStandin
from tests.servers import free_port

HOSTILE = ["", "NULL", "\\N", "a\nb\r\nc", 'q"uote, comma\ttab', "back\\slash \\n end\\", "emoji 🎉 𝄞"]
OIDS = [bson.ObjectId(f"65e1f0a0{i:016x}") for i in range(20)]
T0 = dt.datetime(2024, 3, 1, 8, 0, 0, 123000)  # BSON dates keep milliseconds


def documents() -> list[dict[str, Any]]:
    docs = []
    for i in range(20):
        doc: dict[str, Any] = {
            "_id": OIDS[i],
            "site": ["a", "b/é's%", None][i % 3],
            "text": HOSTILE[i % len(HOSTILE)],
            "n": bson.Int64([2**63 - 1, -(2**62), i][i % 3]),
            "small": i,
            "price": bson.Decimal128(decimal.Decimal(f"-12345678901234567890.{i:09d}")),
            "x": [0.1 + 0.2, -1e300, 5e-324][i % 3],
            "ok": i % 2 == 0,
            "at": T0 + dt.timedelta(hours=i),
            "blob": bson.Binary(bytes(range(i, i + 12))),
            "uid": bson.Binary(uuid.UUID(int=i).bytes, 4),
            "actor": {"name": f"user{i}", "roles": ["r1", {"k": OIDS[0]}]},
            "tags": ["t", i],
        }
        if i == 4:
            del doc["actor"]  # a missing path is NULL
        if i == 9:
            doc["small"] = "nine"  # not an int: kept as text, counted
        docs.append(doc)
    return docs


@pytest.fixture()
def mongo() -> Iterator[MongoStandin]:
    with MongoStandin(
        {"app": {"events": documents(), "other": [{"_id": 1, "v": "w"}], "system.views": [], "recent": []}},
        views={"recent"},
    ) as m:
        yield m


def settings_file(
    tmp_path: Path,
    mongo: MongoStandin,
    extra: str = "",
    tables: str = "",
    first: str = "  - name: activity\n    collection: events",
) -> Path:
    """Settings of one MongoDB datasource: its `first` table, then `tables`."""
    path = tmp_path / "s.yaml"
    path.write_text(
        f"""datalake: {{type: local, path: {tmp_path / "lake"}, base_prefix: m}}
datasources:
- type: mongodb
  name: mongo
  uri: "{mongo.uri}"
  database: app
  timeout: 2
{extra}
  tables:
{first}
{tables}
""",
        encoding="utf-8",
    )
    return path


def test_check_list_and_sampled_fields(mongo: MongoStandin, tmp_path: Path) -> None:
    path = settings_file(tmp_path, mongo)
    with open_source(load_settings(path).datasources[0]) as source:
        assert source.check() == f"MongoDB 7.0.12 at 127.0.0.1:{mongo.port}/app (4 collections)"
        assert source.list_tables() == {"events": "table", "other": "table", "recent": "view"}
    code, out = run("--settings", str(path), "set-tables-fields", "--all", "--sample", "50")
    assert code == 0, out
    fields = load_settings(path).datasources[0].tables[0].fields
    assert [(f.name, f.type, f.path) for f in fields] == [
        ("_id", "objectid", None),
        ("site", "string", None),
        ("text", "string", None),
        ("n", "long", None),
        ("small", "int", None),
        ("price", "decimal", None),
        ("x", "double", None),
        ("ok", "bool", None),
        ("at", "date", None),
        ("blob", "bindata", None),
        ("uid", "bindata", None),
        ("actor_name", "string", "actor.name"),
        ("actor_roles", "array", "actor.roles"),
        ("tags", "array", None),
    ]
    assert "aggregate" in mongo.commands  # $sample on the server


def test_bson_values_through_the_typed_view(
    mongo: MongoStandin, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = settings_file(tmp_path, mongo, tables="    partitions: {partition_fields: [site]}")
    assert run("--settings", str(path), "set-tables-fields", "--all")[0] == 0
    with caplog.at_level(logging.WARNING):
        rows = load_all(path, "m_table_activity")
    docs = {str(d["_id"]): d for d in documents()}
    assert [r["_id"] for r in rows] == sorted(docs)
    for r in rows:
        d = docs[r["_id"]]
        i = OIDS.index(d["_id"])
        assert r["site"] == d["site"]
        assert r["text"] == d["text"]
        assert r["n"] == int(d["n"])
        assert r["small"] == (None if i == 9 else i)
        assert r["price"] == float(d["price"].to_decimal())
        assert r["x"] == d["x"]
        assert r["ok"] is d["ok"]
        assert r["at"] == T0 + dt.timedelta(hours=i)
        assert r["blob"] == base64.b64encode(bytes(range(i, i + 12))).decode()
        assert r["uid"] == str(uuid.UUID(int=i))
        assert r["actor_name"] == (None if i == 4 else f"user{i}")
        roles = None if r["actor_roles"] is None else json.loads(r["actor_roles"])
        assert roles == (None if i == 4 else ["r1", {"k": str(OIDS[0])}])
        assert json.loads(r["tags"]) == ["t", i]
    raw = "".join(
        p.read_text(encoding="utf-8") for p in (tmp_path / "lake/m/activity").glob("*/activity.csv")
    )
    assert '"-12345678901234567890.000000019"' in raw  # Decimal128 exact in the raw table
    assert '"nine"' in raw
    assert "mongo.activity: 1 value(s) not of their declared type were kept as text (small: 1)" in caplog.text
    code, out = run("--settings", str(path), "query", "SELECT warnings FROM m_runs", "--format", "json")
    assert code == 0 and "1 value(s) not of their declared type" in json.loads(out)[0]["warnings"]
    nulls = tmp_path / "lake/m/activity/site=__HIVE_DEFAULT_PARTITION__/activity.csv"
    assert nulls.read_text(encoding="utf-8").count("\n") == 1 + 6  # header + documents without a site


def windowed(tmp_path: Path, mongo: MongoStandin) -> Path:
    """Settings of an incremental table partitioned by site, fields written."""
    path = settings_file(
        tmp_path,
        mongo,
        tables="    partitions: {partition_fields: [site], interval: 1 hour, timestamp_field: at}",
    )
    assert run("--settings", str(path), "set-tables-fields", "--all")[0] == 0
    return path


def test_incremental_window_matches_dates_on_the_server(mongo: MongoStandin, tmp_path: Path) -> None:
    path = windowed(tmp_path, mongo)
    ds = load_settings(path).datasources[0]
    with open_source(ds) as source:
        values = list(source.partition_values(ds.tables[0], T0 + dt.timedelta(hours=18)))
    assert values == [("a",), ("b/é's%",)]  # documents 18 and 19 only


def test_expired_cursor_is_retried_once(mongo: MongoStandin, tmp_path: Path) -> None:
    path = settings_file(tmp_path, mongo, extra="  batch_size: 3")
    assert run("--settings", str(path), "set-tables-fields", "--all")[0] == 0
    mongo.expire_next = 1
    assert len(load_all(path, "m_table_activity")) == 20
    assert mongo.commands.count("find") >= 2  # read twice
    mongo.expire_next = 2  # the retry expires too
    code, out = run("--settings", str(path), "extract-and-load", "--all", "--tries", "2")
    assert code == 1
    assert "the cursor expired mid-read" in out


def test_bad_input_one_line_each(mongo: MongoStandin, tmp_path: Path) -> None:
    big = "b" * (16 * 1024 * 1024 - 200)
    mongo.dbs["app"]["huge"] = [{"_id": 1, "body": big}, {"_id": 2, "body": "small"}]
    path = settings_file(
        tmp_path,
        mongo,
        tables="""    fields: [{name: _id, type: objectid}, {name: text, type: string}]
  - name: huge
    fields: [{name: _id, type: int}, {name: body, type: string}]
  - name: gone
    fields: [{name: _id, type: objectid}]""",
    )
    code, out = run("--settings", str(path), "extract-and-load", "--all")
    assert code == 1
    assert "ok mongo.activity: 20 rows" in out
    assert "ok mongo.huge: 2 rows" in out
    assert (
        "FAILED mongo.gone: datasource 'mongo', table 'gone': collection 'gone' not found in database 'app'"
        " - run set-tables or fix 'collection'" in out
    )
    lake = (tmp_path / "lake/m/huge/huge.csv").read_text(encoding="utf-8")
    assert big in lake

    text = path.read_text()
    path.write_text(text.replace(mongo.uri, f"mongodb://127.0.0.1:{free_port()}/?directConnection=true"))
    code, out = run("--settings", str(path), "test-connections")
    assert code == 1
    assert "cannot reach MongoDB at 127.0.0.1:" in out and "check host/port (or uri)" in out

    mongo.reject_auth = True
    path.write_text(
        text.replace("  database: app\n", "  database: app\n  username: ann\n  password: hunter2\n")
    )
    code, out = run("--settings", str(path), "extract-and-load", "--all")
    assert code == 1
    assert "refused the credentials" in out and "check username, password and authSource" in out
    assert "hunter2" not in out


# mockupdb's accept loop ends when a client refuses its certificate (an exception in
# its thread): each case gets its own stand-in.
@pytest.mark.filterwarnings("ignore::pytest.PytestUnhandledThreadExceptionWarning")
@pytest.mark.filterwarnings("ignore::DeprecationWarning")  # mockupdb wraps its socket the pre-3.12 way
@pytest.mark.parametrize("trust", [False, True])
def test_tls_options(tmp_path: Path, trust: bool) -> None:
    with MongoStandin({"app": {"events": documents()[:2]}}, tls=True) as mongo:
        extra = "  tls: true" + ("\n  tlsAllowInvalidCertificates: true" if trust else "")
        ds = load_settings(settings_file(tmp_path, mongo, extra=extra)).datasources[0]
        with open_source(ds) as source:
            if trust:
                assert list(source.list_tables()) == ["events"]
                return
            with pytest.raises(SourceError) as err:
                source.list_tables()
    assert f"the TLS certificate of MongoDB at 127.0.0.1:{mongo.port} was not accepted" in str(err.value)
    assert "set tlsCAFile to the CA that signed it (or tlsAllowInvalidCertificates: true)" in str(err.value)


def test_table_keys_belong_to_their_source_type(tmp_path: Path) -> None:
    from panorama_kpi.errors import SettingsError

    path = tmp_path / "s.yaml"
    path.write_text(
        """datasources:
- {type: mongodb, name: m, uri: "mongodb://127.0.0.1", database: app,
   tables: [{name: t, collection: c, fields: [{name: user_id, path: user.id, type: long}]}]}
- {type: elasticsearch, name: e, tables: [{name: t2, index: "logs-*"}]}
"""
    )
    settings = load_settings(path)
    table = settings.datasources[0].tables[0]
    assert table.options == {"collection": "c"}
    assert (table.fields[0].name, table.fields[0].path) == ("user_id", "user.id")
    assert settings.datasources[1].tables[0].options == {"index": "logs-*"}
    path.write_text(
        "datasources:\n- {type: mongodb, name: m, database: app, tables: [{name: t, collections: c}]}\n"
    )
    with pytest.raises(SettingsError) as err:
        load_settings(path)
    assert (
        str(err.value) == "datasources[m].tables[0]: unknown key 'collections' (did you mean 'collection'?)"
    )
    path.write_text("datasources:\n- {type: sqlite, name: s, database: x, tables: [{name: t, index: i}]}\n")
    with pytest.raises(SettingsError, match="unknown key 'index'"):
        load_settings(path)


def test_incremental_run_reloads_a_partition_whose_count_changed(mongo: MongoStandin, tmp_path: Path) -> None:
    """No document is recent, but one was deleted: the grouped counts show it."""
    path = windowed(tmp_path, mongo)
    assert run("--settings", str(path), "extract-and-load", "--all")[0] == 0
    a = tmp_path / "lake/m/activity/site=a/activity.csv"
    b = tmp_path / "lake/m/activity/site=b%2F%C3%A9%27s%25/activity.csv"
    assert a.read_text(encoding="utf-8").count("\n") == 1 + 7
    before_b = b.stat().st_mtime_ns
    events = mongo.dbs["app"]["events"]
    events.remove(next(d for d in events if d["site"] == "a"))
    code, out = run("--settings", str(path), "extract-and-load", "--all")
    assert code == 0, out
    assert a.read_text(encoding="utf-8").count("\n") == 1 + 6
    assert b.stat().st_mtime_ns == before_b  # unchanged partitions are not rewritten


def test_partitions_derived_from_a_date(mongo: MongoStandin, tmp_path: Path) -> None:
    path = settings_file(
        tmp_path,
        mongo,
        tables="    fields: [{name: _id, type: objectid}, {name: at, type: date}]\n"
        "    partitions: {partition_fields: [{name: month, from: at, granularity: month}]}",
    )
    mongo.dbs["app"]["events"][3]["at"] = dt.datetime(2023, 12, 31, 23, 59, 59)
    rows = load_all(path, "m_table_activity")
    assert len(rows) == 20
    assert {r["month"] for r in rows} == {dt.date(2024, 3, 1), dt.date(2023, 12, 1)}
    assert [r["_id"] for r in rows if r["month"] == dt.date(2023, 12, 1)] == [str(OIDS[3])]
    assert "aggregate" not in mongo.commands  # dates bucketed here, not with server expressions


def _partitioned(tmp_path: Path, mongo: MongoStandin) -> Path:
    path = settings_file(
        tmp_path, mongo, extra="  batch_size: 3", tables="    partitions: {partition_fields: [site]}"
    )
    assert run("--settings", str(path), "set-tables-fields", "--all")[0] == 0
    return path


def _load(path: Path) -> tuple[int, str, list[dict[str, Any]]]:
    """extract-and-load with two connections, then the run records."""
    code, out = run("--settings", str(path), "extract-and-load", "--all", "--workers", "2")
    assert run("--settings", str(path), "create-datalake-views", "--all")[0] == 0
    _code, records = run(
        "--settings", str(path), "query", "SELECT status, warnings FROM m_runs", "--format", "json"
    )
    return code, out, json.loads(records)


def test_a_replica_set_is_read_at_one_snapshot(tmp_path: Path) -> None:
    """MongoDB 5.0+ replica set: the partition list and every partition, on both
    connections, read at the cluster time of the first read; documents written once
    the load has started (one added, one removed) are not seen."""
    with MongoStandin({"app": {"events": documents()}}, replica_set="rs0") as mongo:
        path = _partitioned(tmp_path, mongo)
        mongo.read_concerns.clear()
        late = [{"_id": bson.ObjectId(), "site": site, "text": "late"} for site in ("a", "b/é's%", None)]
        changed = [*(dict(d, text="changed") for d in documents()[1:]), *late]

        def write_once(name: str, _doc: Any) -> None:
            if name == "find" and mongo.dbs["app"]["events"] is not changed:
                mongo.write("app", "events", changed)

        mongo.after = write_once
        code, out, records = _load(path)
        assert code == 0, out
        lake = "".join(
            p.read_text(encoding="utf-8") for p in (tmp_path / "lake/m/activity").glob("*/activity.csv")
        )
        assert lake.count("\n") == 3 + 20  # the first state, whole
        assert '"changed"' not in lake and '"late"' not in lake
        concerns = mongo.read_concerns
        assert concerns and all(c and c["level"] == "snapshot" for c in concerns)
        assert "atClusterTime" not in concerns[0]  # the first read takes the latest time...
        times = {c["atClusterTime"] for c in concerns[1:]}
        assert times == {bson.Timestamp(1, 1)}  # ...every later one names it
        assert len(concerns) == 1 + 3  # the grouped partition list, then one find per partition
        assert records[0]["status"] == "ok" and "without a snapshot" not in (records[0]["warnings"] or "")


@pytest.mark.parametrize(
    ("options", "why"),
    [
        ({}, "a standalone server"),
        ({"replica_set": "rs0", "version": "4.4.29"}, "older than MongoDB 5.0"),
        (
            {"replica_set": "rs0", "refuse_snapshot": True},
            "the server refused it (read concern level snapshot",
        ),
    ],
)
def test_without_snapshots_plain_reads_and_a_note(
    tmp_path: Path, options: dict[str, Any], why: str, caplog: pytest.LogCaptureFixture
) -> None:
    with MongoStandin({"app": {"events": documents()}}, **options) as mongo:
        path = _partitioned(tmp_path, mongo)
        mongo.read_concerns.clear()
        with caplog.at_level(logging.DEBUG, logger="panorama_kpi.sources.mongodb"):
            code, out, records = _load(path)
    assert code == 0, out
    note = "mongo.activity: read without a snapshot: "
    assert note in caplog.text and why in caplog.text
    assert note in records[0]["warnings"] and why in records[0]["warnings"]
    assert records[0]["warnings"].count(note) == 1
    if "refused" not in why:  # the server was never asked for what it cannot do
        assert all(c is None for c in mongo.read_concerns)
    else:  # asked once, then plain reads
        assert [c is None for c in mongo.read_concerns] == [False, True, True, True, True]


def test_a_snapshot_older_than_the_history_window_is_one_line_and_retried(tmp_path: Path) -> None:
    with MongoStandin({"app": {"events": documents()}}, replica_set="rs0") as mongo:
        path = _partitioned(tmp_path, mongo)
        mongo.too_old_next = 1
        code, out, records = _load(path)
        assert code == 0, out
        assert "SnapshotTooOld" in out and "retrying" in out
        mongo.too_old_next = 2  # the retry too (one connection, so each attempt meets one)
        code, out = run(
            "--settings", str(path), "extract-and-load", "--all", "--tries", "2", "--workers", "1"
        )
    assert code == 1
    failed = [line.partition(" FAILED ")[2] for line in out.splitlines() if " FAILED " in line]
    assert failed == [
        "mongo.activity: datasource 'mongo', table 'activity': the read outlived the snapshot history "
        f"MongoDB at 127.0.0.1:{mongo.port} keeps (SnapshotTooOld) - raise the server parameter "
        "minSnapshotHistoryWindowInSeconds (default 300) above the table's load time"
    ]


def test_a_failed_table_leaves_its_notes_behind(mongo: MongoStandin, tmp_path: Path) -> None:
    path = settings_file(
        tmp_path,
        mongo,
        first="  - name: gone\n    fields: [{name: _id, type: objectid}]",
        tables="  - name: other\n    fields: [{name: _id, type: int}, {name: v, type: string}]",
    )
    code, out = run("--settings", str(path), "extract-and-load", "--all")
    assert code == 1 and "FAILED mongo.gone" in out and "ok mongo.other: 1 rows" in out
    assert run("--settings", str(path), "create-datalake-views", "-t", "other")[0] == 0
    _code, records = run(
        "--settings",
        str(path),
        "query",
        "SELECT table_name, warnings FROM m_runs WHERE status = 'ok'",
        "--format",
        "json",
    )
    assert json.loads(records) == [
        {
            "table_name": "other",
            "warnings": "mongo.other: read without a snapshot: a standalone server (snapshot reads need a replica "
            "set or a sharded cluster); documents changed during the load may be seen in either state",
        }
    ]
