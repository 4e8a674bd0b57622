"""Sub-documents and arrays of the document sources, typed in the view: `object`/`nested`
(and MongoDB's untyped `array`) as JSON, a field declared `T[]` as ARRAY(T). Values go
source -> lake -> typed view on both engines: DuckDB locally, and on the aws lake the
Athena statements replayed on DuckDB (tests/aws.py)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import bson
import pytest

from panorama_kpi.catalog import create_tables, create_views
from panorama_kpi.lakes import open_engine, open_storage
from panorama_kpi.pipeline import RunOptions, extract_and_load
from panorama_kpi.settings import load_settings
from panorama_kpi.sources.elasticsearch import ElasticsearchSource
from panorama_kpi.sources.mongodb import MongoDBSource
from panorama_kpi.views import typed_value_sql
from tests.es_standin import Cluster, ESStandin, Index
from tests.lakes import Lake
from tests.mongo_standin import MongoStandin

TRICKY = 'he said "hi", back\\slash \\n \\" end\\'
NESTED = {"a": {"b": [1, "x", None, {"c": TRICKY}]}, "u": "é 🎉 𝄞", "q": TRICKY, "n": None, "e": {}}
MIXED = [1, "a", {"k": "v"}, None, 2.5, True, [], "línea\nnueva\r\n"]

# (object, untyped array, long[] value, string[] value, object[] value) per document
CASES: list[tuple[Any, Any, Any, Any, Any]] = [
    (NESTED, MIXED, [1, -(2**62), 2**63 - 1], ["x", TRICKY, "é🎉"], [{"k": TRICKY}, {}]),
    ({}, [], [], [], []),
    (None, None, None, None, None),
    ("missing", "missing", "missing", "missing", "missing"),
    ({"only": [None]}, [None], [7], [""], [{"z": [None, 1]}]),
]

LAKES = [pytest.param("local"), pytest.param("aws", marks=pytest.mark.aws)]


def test_view_types_per_declared_type() -> None:
    assert MongoDBSource.view_type("object") == "JSON"
    assert MongoDBSource.view_type("array") == "JSON"
    assert MongoDBSource.view_type("long[]") == "ARRAY(BIGINT)"
    assert MongoDBSource.view_type("date[]") == "ARRAY(VARCHAR)"
    assert MongoDBSource.view_type("object[]") == "ARRAY(JSON)"
    assert ElasticsearchSource.view_type("nested") == "JSON"
    assert ElasticsearchSource.view_type("object") == "JSON"
    assert ElasticsearchSource.view_type("flattened") == "JSON"
    assert ElasticsearchSource.view_type("geo_shape") == "VARCHAR"  # GeoJSON or WKT text
    assert ElasticsearchSource.view_type("keyword[]") == "ARRAY(VARCHAR)"
    assert ElasticsearchSource.view_type("double[]") == "ARRAY(DOUBLE)"
    sql = typed_value_sql("c", "object", MongoDBSource.view_type)
    assert sql == "try(json_parse(c))"
    assert (
        typed_value_sql("c", "long[]", MongoDBSource.view_type)
        == "TRY_CAST(try(json_parse(c)) AS ARRAY(BIGINT))"
    )


def _lake(kind: str, path: Path, request: pytest.FixtureRequest) -> Lake:
    settings = load_settings(path)
    if kind == "aws":
        from tests.aws import aws_lake

        return aws_lake(settings, request)
    engine = open_engine(settings)
    return Lake(
        settings,
        open_storage(settings),
        engine,
        lambda _r: set(),
        lambda _r: [],
        lambda sql, params, _e: list(engine.query(sql, params)[1]),
    )


def _settings(tmp_path: Path, kind: str, datasource: str) -> Path:
    if kind == "aws":
        lake = "{type: aws, panorama_raw_data_bucket: panorama-test-lake, base_prefix: d, datalake_database: panorama}"
    else:
        lake = f"{{type: local, path: {tmp_path / 'lake'}, base_prefix: d}}"
    path = tmp_path / "s.yaml"
    path.write_text(f"datalake: {lake}\ndatasources:\n{datasource}", encoding="utf-8")
    return path


def _typed_rows(
    kind: str, path: Path, request: pytest.FixtureRequest, select: str, *more: str
) -> list[tuple[Any, ...]]:
    """Load every table, create the typed views and run `select` on the engine (aws: the
    shadow DuckDB replaying what Athena received)."""
    lake = _lake(kind, path, request)
    try:
        settings = lake.settings
        selected = [(ds, t) for ds in settings.datasources for t in ds.tables]
        create_tables(settings, selected, lake.engine, lambda _: None)
        summary = extract_and_load(
            settings, selected, lake.storage, lake.engine, RunOptions(force=True, backoff=0)
        )
        assert not summary.failed, summary.failed[0].error
        create_views(settings, selected, lake.engine, False, lambda _: None)  # raises if one fails
        expected = [tuple(str(i) for i in range(6)) for _ in CASES]  # what moto's Athena answers
        rows = lake.select(select, [], expected)
        for sql in more:  # further queries, whose rows follow
            rows += lake.select(sql, [], expected)
        return rows
    finally:
        lake.engine.close()


SELECT = 'SELECT "_id", obj, arr, nums, words, objs FROM d_table_things ORDER BY "_id"'


def _check(rows: list[tuple[Any, ...]], untyped_array: bool) -> None:
    """Each typed value is the document's value: JSON as its text, arrays as lists."""
    assert len(rows) == len(CASES)
    for (_id, obj, arr, nums, words, objs), case in zip(rows, CASES, strict=True):
        want = [None if v == "missing" else v for v in case]
        assert (None if obj is None else json.loads(obj)) == want[0], _id
        if untyped_array:
            assert (None if arr is None else json.loads(arr)) == want[1], _id
        assert nums == want[2], _id
        assert words == want[3], _id
        assert (None if objs is None else [json.loads(o) for o in objs]) == want[4], _id


@pytest.mark.parametrize("kind", LAKES)
def test_mongodb_objects_and_arrays_through_the_typed_view(
    kind: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    docs = []
    for i, case in enumerate(CASES):
        doc: dict[str, Any] = {"_id": bson.ObjectId(f"65e1f0a0{i:016x}")}
        for name, value in zip(["obj", "arr", "nums", "words", "objs"], case, strict=True):
            if value != "missing":
                doc[name] = [bson.Int64(v) for v in value] if name == "nums" and value else value
        docs.append(doc)
    with MongoStandin({"app": {"things": docs}}) as mongo:
        datasource = f"""- type: mongodb
  name: mongo
  uri: "{mongo.uri}"
  database: app
  tables:
  - name: things
    fields:
    - {{name: _id, type: objectid}}
    - {{name: obj, type: object}}
    - {{name: arr, type: array}}
    - {{name: nums, type: "long[]"}}
    - {{name: words, type: "string[]"}}
    - {{name: objs, type: "object[]"}}
"""
        functions = (
            "SELECT json_extract_scalar(obj, '$.q') AS q, json_extract_scalar(obj, '$.a.b[3].c') AS c, "
            "json_array_length(arr) AS n, cardinality(nums) AS k, element_at(words, 2) AS w, "
            "json_extract_scalar(objs[1], '$.k') AS o FROM d_table_things WHERE \"_id\" = '65e1f0a00000000000000000'"
        )
        *rows, used = _typed_rows(kind, _settings(tmp_path, kind, datasource), request, SELECT, functions)
    _check(rows, untyped_array=True)
    assert used == (TRICKY, TRICKY, len(MIXED), 3, TRICKY, TRICKY)  # Athena's JSON and array functions


@pytest.mark.parametrize("kind", LAKES)
def test_elasticsearch_objects_and_arrays_through_the_typed_view(
    kind: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    mapping = {
        "obj": {"type": "object"},
        "nums": {"type": "long"},
        "words": {"type": "keyword"},
        "objs": {"type": "nested"},
    }
    docs = []
    for i, (obj, _arr, nums, words, objs) in enumerate(CASES):
        source = {"obj": obj, "nums": nums, "words": words, "objs": objs}
        docs.append((f"d{i}", {k: v for k, v in source.items() if v != "missing"}))
    docs.append(("single", {"nums": 5, "words": "one"}))  # a single value is an array of one
    cluster = Cluster("8.13.4")
    cluster.indices["things"] = Index(mapping, docs)
    with ESStandin(cluster) as es:
        datasource = f"""- type: elasticsearch
  name: search
  hosts: [{es.url}]
  tables:
  - name: things
    fields:
    - {{name: _id, type: keyword}}
    - {{name: obj, type: object}}
    - {{name: arr, type: keyword}}
    - {{name: nums, type: "long[]"}}
    - {{name: words, type: "keyword[]"}}
    - {{name: objs, type: nested}}
"""
        select = (
            'SELECT "_id", obj, arr, nums, words, '
            'CAST(objs AS ARRAY(JSON)) AS objs FROM d_table_things ORDER BY "_id"'
        )
        rows = _typed_rows(kind, _settings(tmp_path, kind, datasource), request, select)
    *rows, single = rows
    _check(rows, untyped_array=False)
    assert single[3:5] == ([5], ["one"])
