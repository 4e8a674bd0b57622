"""Elasticsearch source against the HTTP stand-in of each server version:
values end to end through the typed view, paging, snapshots, bad input."""

from __future__ import annotations

import datetime as dt
import json
import logging
import re
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from panorama_kpi.errors import SourceError
from panorama_kpi.settings import load_settings
from panorama_kpi.sources import open_source
from tests.es_standin import Cluster, ESStandin, Index
from tests.lake_helpers import load_all, run

VERSIONS = ["6.8.23", "7.10.2", "7.17.18", "8.13.4"]

MAPPING = {
    "site": {"type": "keyword"},
    "text": {"type": "text", "fields": {"raw": {"type": "keyword"}}},
    "count": {"type": "long"},
    "score": {"type": "double"},
    "ok": {"type": "boolean"},
    "created": {"type": "date"},
    "tags": {"type": "keyword"},
    "user": {"properties": {"id": {"type": "long"}, "name": {"type": "keyword"}}},
    "events": {"type": "nested", "properties": {"kind": {"type": "keyword"}}},
}

HOSTILE = [
    "",
    "NULL",
    "\\N",
    "a\nb\r\nc",
    'q"uote, comma\ttab',
    "back\\slash \\n end\\",
    "emoji 🎉 𝄞",
    "x" * 100_000,
]

# (stored date, the UTC timestamp it means)
DATES = [
    ("2024-03-01T10:00:00+02:00", dt.datetime(2024, 3, 1, 8, 0)),
    (1709287200123, dt.datetime(2024, 3, 1, 10, 0, 0, 123000)),
    ("2024-02-29", dt.datetime(2024, 2, 29)),
    ("2024-03-01T08:00:00.123456789Z", dt.datetime(2024, 3, 1, 8, 0, 0, 123456)),
    ("1709287200000", dt.datetime(2024, 3, 1, 10, 0)),
    ("2024-03-01T23:59:59.5-05:30", dt.datetime(2024, 3, 2, 5, 29, 59, 500000)),
]


def millis(t: dt.datetime) -> dt.datetime:
    """A timestamp at Athena's TIMESTAMP precision (milliseconds; the lake text keeps microseconds)."""
    unit = dt.timedelta(milliseconds=1)
    return dt.datetime.min + round((t - dt.datetime.min) / unit) * unit


def documents() -> list[tuple[str, dict[str, Any]]]:
    docs = []
    for i in range(24):
        src: dict[str, Any] = {
            "site": ["a", "b/é's%", "c"][i % 3],
            "text": HOSTILE[i % len(HOSTILE)],
            "count": [2**63 - 1, -(2**62), i][i % 3],
            "score": [0.1 + 0.2, -1e300, 5e-324][i % 3],
            "ok": i % 2 == 0,
            "created": DATES[i % len(DATES)][0],
            "tags": ["x", f"t{i}"],
            "user": {"id": i, "name": f"u{i}"},
            "events": [{"kind": "view"}, {"kind": "click"}],
        }
        if i == 5:
            del src["user"]  # a missing path is NULL
        if i == 6:
            src["count"] = "not a number"  # kept as text, counted
        if i == 7:
            src["user.name"] = src["user"].pop("name")  # a literal dotted key
        docs.append((f"id-{i:02d}", src))
    return docs


@pytest.fixture(params=VERSIONS)
def es(request: pytest.FixtureRequest) -> Iterator[ESStandin]:
    cluster = Cluster(request.param, users={"elastic": "s3cret"})
    cluster.indices["logs-2024"] = Index(MAPPING, documents())
    cluster.indices[".kibana_1"] = Index({"x": {"type": "keyword"}})
    cluster.aliases["logs"] = ["logs-2024"]
    with ESStandin(cluster) as server:
        yield server


def settings_file(tmp_path: Path, es_url: str, extra: str = "", tables: str = "") -> Path:
    path = tmp_path / "s.yaml"
    path.write_text(
        f"""datalake: {{type: local, path: {tmp_path / "lake"}, base_prefix: e}}
datasources:
- type: elasticsearch
  name: search
  hosts: [{es_url}]
  username: elastic
  password: s3cret
  page_size: 5
{extra}
  tables:
  - name: activity
    index: logs
{tables}
""",
        encoding="utf-8",
    )
    return path


def test_check_list_and_describe(es: ESStandin, tmp_path: Path) -> None:
    settings = load_settings(settings_file(tmp_path, es.url))
    with open_source(settings.datasources[0]) as source:
        assert source.check().startswith(f"Elasticsearch {es.cluster.version} at {es.url}")
        assert ("point in time" in source.check()) == (es.cluster.version >= "7.12")
        assert source.list_tables() == {"logs-2024": "table"}  # .kibana_1 is a system index
        fields = source.describe("activity")
    assert [(f.name, f.type, f.path) for f in fields] == [
        ("_id", "keyword", None),
        ("site", "keyword", None),
        ("text", "text", None),
        ("count", "long", None),
        ("score", "double", None),
        ("ok", "boolean", None),
        ("created", "date", None),
        ("tags", "keyword", None),
        ("user_id", "long", "user.id"),
        ("user_name", "keyword", "user.name"),
        ("events", "nested", None),
    ]


def test_values_through_the_typed_view(
    es: ESStandin, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = settings_file(tmp_path, es.url, tables="    partitions: {partition_fields: [site]}")
    assert run("--settings", str(path), "set-tables-fields", "--all")[0] == 0
    with caplog.at_level(logging.WARNING):
        rows = load_all(path, "e_table_activity")
    docs = dict(documents())
    assert [r["_id"] for r in rows] == sorted(docs)
    for r in rows:
        src = docs[r["_id"]]
        i = int(r["_id"][3:])
        assert r["site"] == src["site"]
        assert r["text"] == src["text"]
        assert r["count"] == (None if i == 6 else src["count"])  # TRY_CAST of the kept text
        assert r["score"] == src["score"]
        assert r["ok"] is src["ok"]
        assert r["created"] == millis(DATES[i % len(DATES)][1])  # the typed view's TIMESTAMP is Athena's (ms)
        assert json.loads(r["tags"]) == src["tags"]
        assert r["user_id"] == (None if i == 5 else i)
        assert r["user_name"] == (None if i == 5 else f"u{i}")
        assert json.loads(r["events"]) == src["events"]
    raw = (tmp_path / "lake/e/activity/site=a/activity.csv").read_text(encoding="utf-8")
    assert '"not a number"' in raw
    assert (
        "search.activity: 1 value(s) not of their declared type were kept as text (count: 1)" in caplog.text
    )
    assert len(list((tmp_path / "lake/e/activity").glob("site=*/activity.csv"))) == 3


def test_snapshot_paging_protocol(es: ESStandin, tmp_path: Path) -> None:
    """Scroll before 7.12, point in time + _shard_doc after; contexts are released."""
    settings = load_settings(settings_file(tmp_path, es.url))
    table = settings.datasources[0].tables[0]
    with open_source(settings.datasources[0]) as source:
        table.fields = source.describe("activity")
        text = "".join(source.dump(table, ["_id"]))
    assert text.count("\n") == 24
    paths = [p for _m, p in es.cluster.requests]
    if es.cluster.version >= "7.12":
        assert "/logs/_pit" in paths and "/_search/scroll" not in paths
    else:
        assert "/_search/scroll" in paths and "/logs/_pit" not in paths
    assert es.cluster.contexts == {}


def test_documents_missing_from_the_snapshot_fail_the_table(es: ESStandin, tmp_path: Path) -> None:
    settings = load_settings(settings_file(tmp_path, es.url))
    table = settings.datasources[0].tables[0]
    es.cluster.lose_hits = 1
    with open_source(settings.datasources[0]) as source, pytest.raises(SourceError) as err:
        table.fields = source.describe("activity")
        "".join(source.dump(table, ["_id"]))
    # a scroll reads on (23 of 24), a point in time ends at the short page
    assert re.search(r"read (23|4) of 24 documents of the snapshot; run again", str(err.value))
    assert all(p.get("allow_partial_search_results") == "false" for p in es.cluster.search_params)


def test_expired_context_is_retried_once(es: ESStandin, tmp_path: Path) -> None:
    path = settings_file(tmp_path, es.url)
    assert run("--settings", str(path), "set-tables-fields", "--all")[0] == 0
    es.cluster.expire_next = 1
    assert len(load_all(path, "e_table_activity")) == 24
    es.cluster.expire_next = 2  # the retry expires too
    code, out = run("--settings", str(path), "extract-and-load", "--all", "--tries", "2")
    assert code == 1
    assert "expired mid-read" in out and "raise 'keep_alive'" in out


def test_incremental_window_filters_on_the_date_path(es: ESStandin, tmp_path: Path) -> None:
    settings = load_settings(
        settings_file(
            tmp_path,
            es.url,
            tables="    partitions: {partition_fields: [site], interval: 1 hour, timestamp_field: created}",
        )
    )
    table = settings.datasources[0].tables[0]
    with open_source(settings.datasources[0]) as source:
        table.fields = source.describe("activity")
        since = dt.datetime(2024, 3, 1, 9, 0)
        values = list(source.partition_values(table, since))
    later = {documents()[i][1]["site"] for i in range(24) if DATES[i % len(DATES)][1] >= since}
    assert sorted(v for (v,) in values) == sorted(later)


def test_bad_input_one_line_each(es: ESStandin, tmp_path: Path) -> None:
    good = settings_file(tmp_path, es.url)
    assert run("--settings", str(good), "set-tables-fields", "--all")[0] == 0
    text = good.read_text(encoding="utf-8")
    missing = text + "  - name: gone\n    fields: [{name: _id, type: keyword}]\n"
    good.write_text(missing, encoding="utf-8")
    code, out = run("--settings", str(good), "extract-and-load", "--all")
    assert code == 1
    assert "ok search.activity: 24 rows" in out
    assert "index 'gone' not found at Elasticsearch at" in out and "fix 'index'" in out

    wrong = text.replace("s3cret", "wrong")
    good.write_text(wrong, encoding="utf-8")
    code, out = run("--settings", str(good), "extract-and-load", "--all")
    assert code == 1
    assert "refused the credentials (security_exception) - check username/password or api_key" in out
    assert "wrong" not in out

    good.write_text(text.replace(es.url, "http://127.0.0.1:9"), encoding="utf-8")
    code, out = run("--settings", str(good), "test-connections")
    assert code == 1
    assert "cannot reach Elasticsearch at http://127.0.0.1:9" in out


def test_mapping_conflict_names_the_field_and_indices(tmp_path: Path) -> None:
    cluster = Cluster("8.13.4")
    cluster.indices["a-1"] = Index({"n": {"type": "long"}})
    cluster.indices["a-2"] = Index({"n": {"type": "keyword"}})
    expected = {
        "a-*": "mapping conflict: field 'n' is 'long' in index 'a-1' and 'keyword' in 'a-2'",
        "b-*": "index pattern 'b-*' matches no index at http://127.0.0.1:",
    }
    with ESStandin(cluster) as es:
        for pattern, message in expected.items():
            ds = load_settings(settings_file(tmp_path, es.url)).datasources[0]
            ds.tables[0].options["index"] = pattern
            with open_source(ds) as source, pytest.raises(SourceError) as err:
                source.describe("activity")
            assert message in str(err.value)


def load_dates(tmp_path: Path, version: str, stored: list[Any], tables: str) -> list[dict[str, Any]]:
    """Typed-view rows of an index whose documents hold `stored` dates in `created`."""
    cluster = Cluster(version)
    cluster.indices["logs"] = Index(
        MAPPING, [(f"d{i}", {"created": v, "count": i}) for i, v in enumerate(stored)]
    )
    with ESStandin(cluster) as es:
        return load_all(settings_file(tmp_path, es.url, tables=tables), "e_table_activity")


@pytest.mark.parametrize("version", ["6.8.23", "7.17.18"])  # one sorted scroll; a term per partition
def test_date_partitions_select_the_same_instant(tmp_path: Path, version: str) -> None:
    """A partition on a date field: stored in several formats, keyed by its UTC
    timestamp, selected back with a term query on that instant (or cut from one scroll
    sorted by the date)."""
    stored = ["2024-03-01T10:00:00+02:00", 1709280000000, "2024-03-01T08:00:00Z", "2024-03-02"]
    rows = load_dates(
        tmp_path,
        version,
        stored,
        "    fields: [{name: _id, type: keyword}, {name: count, type: long}, {name: created, type: date}]\n"
        "    partitions: {partition_fields: [created]}",
    )
    assert [(r["_id"], r["created"]) for r in rows] == [
        ("d0", dt.datetime(2024, 3, 1, 8)),
        ("d1", dt.datetime(2024, 3, 1, 8)),
        ("d2", dt.datetime(2024, 3, 1, 8)),
        ("d3", dt.datetime(2024, 3, 2)),
    ]
    keys = sorted(p.parent.name for p in (tmp_path / "lake/e/activity").glob("*/activity.csv"))
    assert keys == ["created=2024-03-01%2008%3A00%3A00.000000", "created=2024-03-02%2000%3A00%3A00.000000"]


def test_api_key_and_many_hosts(tmp_path: Path) -> None:
    import base64

    key = base64.b64encode(b"kid:ksecret").decode()
    cluster = Cluster("8.13.4", api_keys={key})
    cluster.indices["logs"] = Index(MAPPING, documents()[:3])
    with ESStandin(cluster) as es:
        path = settings_file(tmp_path, f"'http://127.0.0.1:9', '{es.url}'", extra="  api_key: kid:ksecret")
        text = path.read_text().replace("  username: elastic\n  password: s3cret\n", "")
        path.write_text(text)
        ds = load_settings(path).datasources[0]
        with open_source(ds) as source:
            assert source.list_tables() == {"logs": "table"}


@pytest.mark.parametrize(
    ("version", "media_type", "status"),
    [
        ("8.13.4", "application/vnd.elasticsearch+json; compatible-with=9", 400),
        ("8.13.4", "application/vnd.elasticsearch+json; compatible-with=8", 200),
        ("7.17.18", "application/vnd.elasticsearch+json; compatible-with=8", 400),
        ("6.8.23", "application/vnd.elasticsearch+json; compatible-with=8", 406),
        ("6.8.23", "application/json", 200),
    ],
)
def test_standin_media_types_as_documented(version: str, media_type: str, status: int) -> None:
    """The stand-in refuses what the real servers refuse, so a client that sent a
    newer client's media type would fail here as it does in production."""
    cluster = Cluster(version)
    cluster.indices["i"] = Index({})
    with ESStandin(cluster) as es:
        req = urllib.request.Request(
            es.url + "/i/_search", data=b"{}", method="POST", headers={"Content-Type": media_type}
        )
        try:
            with urllib.request.urlopen(req) as resp:
                got, headers = resp.status, resp.headers
        except urllib.error.HTTPError as exc:
            got, headers = exc.code, exc.headers
    assert got == status
    assert (headers.get("X-Elastic-Product") == "Elasticsearch") == (version >= "7.14")


def test_tls_options(tmp_path: Path) -> None:
    import subprocess

    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(
        [
            "openssl",
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "1",
            "-subj",
            "/CN=127.0.0.1",
            "-addext",
            "subjectAltName=IP:127.0.0.1",
            "-keyout",
            str(key),
            "-out",
            str(cert),
        ],
        check=True,
        capture_output=True,
    )
    cluster = Cluster("7.17.18")
    cluster.indices["logs"] = Index(MAPPING, documents()[:2])
    with ESStandin(cluster, str(cert), str(key)) as es:
        base = settings_file(tmp_path, es.url).read_text()

        def tables(extra: str) -> list[str]:
            (tmp_path / "s.yaml").write_text(base.replace("  page_size: 5\n", f"  page_size: 5\n{extra}"))
            with open_source(load_settings(tmp_path / "s.yaml").datasources[0]) as source:
                return list(source.list_tables())

        assert tables(f"  ca_certs: {cert}\n") == ["logs"]
        assert tables("  verify_certs: false\n") == ["logs"]
        with pytest.raises(SourceError) as err:
            tables("")
        assert "TLS certificate of https://127.0.0.1:" in str(err.value) and "set 'ca_certs'" in str(
            err.value
        )


def test_large_documents_load_in_smaller_pages(tmp_path: Path) -> None:
    import panorama_kpi.sources.elasticsearch as es_source

    cluster = Cluster("8.13.4")
    big = "é" * (16 * 1024 * 1024)
    cluster.indices["logs"] = Index(MAPPING, [(f"d{i}", {"text": big if i == 1 else "s"}) for i in range(12)])
    with ESStandin(cluster) as es:
        ds = load_settings(settings_file(tmp_path, es.url)).datasources[0]
        table = ds.tables[0]
        with open_source(ds) as source:
            table.fields = source.describe("activity")
            old, es_source.PAGE_BYTES = es_source.PAGE_BYTES, 1 << 20
            try:
                text = "".join(source.dump(table, ["_id", "text"]))
            finally:
                es_source.PAGE_BYTES = old
    assert text.count("\n") == 12 and big in text
    sizes = [json.loads(b)["size"] for b in cluster.bodies if "size" in json.loads(b)]
    assert sizes[:3] == [5, 2, 2]


def test_consistent_read_shares_one_point_in_time(es: ESStandin, tmp_path: Path) -> None:
    """Inside consistent_read, the partition list and every partition, on this
    connection and another one, read one snapshot: a document indexed meanwhile
    is not seen, and a single point in time is opened and released."""
    settings = load_settings(
        settings_file(tmp_path, es.url, tables="    partitions: {partition_fields: [site]}")
    )
    ds = settings.datasources[0]
    table = ds.tables[0]
    with open_source(ds) as source, open_source(ds) as other:
        table.fields = source.describe("activity")
        columns = [f.name for f in table.fields if f.name != "site"]
        with source.consistent_read([other], "activity"):
            values = list(source.partition_values(table, None))
            es.cluster.indices["logs-2024"].docs.append(("late", {"site": "a", "text": "late"}))
            rows = sum(
                "".join(src.dump(table, columns, {"site": v})).count("\n")
                for (v,), src in zip(values, [source, other, source], strict=True)
            )
        after = "".join(source.dump(table, columns, {"site": "a"})).count("\n")
    opened = [r for r in es.cluster.requests if r[1].endswith("/_pit")]
    if es.cluster.version >= "7.12":
        assert rows == 24 and after == 9  # 8 + the late one, in a new snapshot
        assert opened.count(("POST", "/logs/_pit")) == 2 and opened.count(("DELETE", "/_pit")) == 2
    else:  # scroll: each partition is its own snapshot
        assert rows == 25 and opened == []
    assert es.cluster.contexts == {}


@pytest.mark.parametrize("version", ["6.8.23", "8.13.4"])  # one sorted scroll; a point in time
def test_partitions_derived_from_a_date(tmp_path: Path, version: str) -> None:
    stored = ["2024-03-01T23:30:00-02:00", 1709280000000, "2024-03-01T08:00:00Z", "2024-02-29", None]
    rows = load_dates(
        tmp_path,
        version,
        stored,
        "    fields: [{name: _id, type: keyword}, {name: created, type: date}]\n"
        "    partitions: {partition_fields: [{name: day, from: created, granularity: day}]}",
    )
    assert [(r["_id"], r["day"]) for r in rows] == [
        ("d0", dt.date(2024, 3, 2)),  # 23:30 at -02:00 is the next day in UTC
        ("d1", dt.date(2024, 3, 1)),
        ("d2", dt.date(2024, 3, 1)),
        ("d3", dt.date(2024, 2, 29)),
        ("d4", None),
    ]
    keys = sorted(p.parent.name for p in (tmp_path / "lake/e/activity").glob("*/activity.csv"))
    assert keys == ["day=2024-02-29", "day=2024-03-01", "day=2024-03-02", "day=__HIVE_DEFAULT_PARTITION__"]


@pytest.mark.parametrize("plan", ["routed", "sorted"])
def test_a_partitioned_load_reads_one_snapshot(
    es: ESStandin, tmp_path: Path, plan: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A full load of a partitioned table sees the index at one moment: a document
    indexed once the dump has started is in no partition. Before 7.12 the whole table
    is one scroll cut into objects as it streams (in index order, routed to open
    objects; or, when too many objects would be open, sorted by the partition field);
    from 7.12 every partition query reads the table's one point in time."""
    if plan == "sorted":
        monkeypatch.setattr("panorama_kpi.dumping.open_budget", lambda: 0)
    path = settings_file(tmp_path, es.url, tables="    partitions: {partition_fields: [site]}")
    assert run("--settings", str(path), "set-tables-fields", "--all")[0] == 0
    late = ("late", {"site": "c", "text": "indexed during the dump"})

    def index_late(method: str, path: str, body: Any) -> None:
        if not isinstance(body, dict):
            return
        source = body.get("_source")
        dumping = (
            body.get("sort", [None])[0] == {"site": {"order": "asc", "missing": "_last"}}
            or "term" in json.dumps(body.get("query"))
            or (isinstance(source, dict) and source.get("includes") != ["site"])  # not the partition list
        )
        if dumping and late not in es.cluster.indices["logs-2024"].docs:
            es.cluster.indices["logs-2024"].docs.append(late)

    es.cluster.after = index_late
    rows = load_all(path, "e_table_activity")
    assert late in es.cluster.indices["logs-2024"].docs
    assert len(rows) == 24 and "late" not in {r["_id"] for r in rows}
    objects = {
        p.parent.name: p.read_text(encoding="utf-8").count("\n") - 1
        for p in (tmp_path / "lake/e/activity").glob("*/activity.csv")
    }
    assert objects == {"site=a": 8, "site=b%2F%C3%A9%27s%25": 8, "site=c": 8}
    searches = [json.loads(b) for b in es.cluster.bodies]
    if es.cluster.version >= "7.12":
        assert [r for r in es.cluster.requests if r == ("POST", "/logs/_pit")] == [("POST", "/logs/_pit")]
    else:
        assert "term" not in json.dumps(searches)  # no query per partition
        listing, data = searches  # the partition list, then the one scroll of the table
        assert listing["sort"] == ["_doc"] and listing["_source"] == {"includes": ["site"]}
        if plan == "sorted":
            assert data["sort"] == [{"site": {"order": "asc", "missing": "_last"}}, "_doc"]
        else:
            assert data["sort"] == ["_doc"]
    assert es.cluster.contexts == {}


@pytest.mark.parametrize("version", ["6.8.23", "8.13.4"])
def test_boolean_and_float_partitions(tmp_path: Path, version: str) -> None:
    """Partitions on boolean and double fields: keyed by their text, selected back with a
    term of the field's type (8.13), or cut from one sorted scroll (6.8)."""
    cluster = Cluster(version)
    docs = [(f"d{i}", {"ok": i % 2 == 0, "score": [0.1 + 0.2, -1e300, 2.5][i % 3]}) for i in range(9)]
    docs.append(("none", {}))
    cluster.indices["logs"] = Index(MAPPING, docs)
    tables = (
        "    fields: [{name: _id, type: keyword}, {name: ok, type: boolean}, {name: score, type: double}]\n"
        "    partitions: {partition_fields: [ok, score]}"
    )
    with ESStandin(cluster) as es:
        rows = load_all(settings_file(tmp_path, es.url, tables=tables), "e_table_activity")
        searches = [json.loads(b) for b in cluster.bodies]
    assert [(r["_id"], r["ok"], r["score"]) for r in rows] == [
        *((f"d{i}", i % 2 == 0, [0.1 + 0.2, -1e300, 2.5][i % 3]) for i in range(9)),
        ("none", None, None),
    ]
    keys = sorted(
        str(p.parent.relative_to(tmp_path / "lake/e/activity"))
        for p in (tmp_path / "lake/e/activity").rglob("activity.csv")
    )
    assert keys == [
        "ok=__HIVE_DEFAULT_PARTITION__/score=__HIVE_DEFAULT_PARTITION__",
        "ok=false/score=-1e%2B300",
        "ok=false/score=0.30000000000000004",
        "ok=false/score=2.5",
        "ok=true/score=-1e%2B300",
        "ok=true/score=0.30000000000000004",
        "ok=true/score=2.5",
    ]
    terms = [b["query"] for b in searches if "term" in json.dumps(b.get("query"))]
    if version < "7.12":
        assert terms == []  # one sorted scroll
    else:
        assert any({"term": {"ok": True}} in t["bool"]["filter"] for t in terms)
        assert any({"term": {"score": 2.5}} in t["bool"]["filter"] for t in terms)
