"""Bad input across the document sources in one settings file: each failing table is one
line naming the thing and the fix, every other table (of the same datasource or of
another) is still described and loaded, and the exit code is 1."""

from __future__ import annotations

import re
from pathlib import Path

from panorama_kpi.settings import load_settings
from tests.es_standin import Cluster, ESStandin, Index
from tests.lake_helpers import run
from tests.mongo_standin import MongoStandin
from tests.servers import free_port

#: The tables that cannot be described nor loaded, one reason each.
FAILING = {
    "search.conflict",  # a mapping conflict across the indices of its pattern
    "search.gone",  # a missing index
    "search_down.logs",  # an unreachable server
    "search_wrong.good_again",  # bad credentials
    "mongo_down.events_down",  # an unreachable server
    "mongo.missing",  # a missing collection
}


def _failures(out: str) -> dict[str, str]:
    """Table -> its FAILED line's message (progress lines carry a timestamp first)."""
    found = re.findall(r"FAILED (\S+): (.*)", out)
    return dict(found)


def test_each_failure_is_one_line_and_the_rest_loads(tmp_path: Path) -> None:
    cluster = Cluster("7.10.2", users={"elastic": "s3cret"})
    cluster.indices["a-1"] = Index({"n": {"type": "long"}}, [("1", {"n": 1})])
    cluster.indices["a-2"] = Index({"n": {"type": "keyword"}}, [("2", {"n": "x"})])
    cluster.indices["good"] = Index(
        {"n": {"type": "long"}, "m": {"type": "keyword"}}, [("3", {"n": 3}), ("4", {"m": "y"})]
    )
    down = free_port()
    with ESStandin(cluster) as es, MongoStandin({"app": {"events": [{"_id": 1, "v": "w"}]}}) as mongo:
        path = tmp_path / "s.yaml"
        path.write_text(
            f"""datalake: {{type: local, path: {tmp_path / "lake"}, base_prefix: b}}
datasources:
- type: elasticsearch
  name: search
  hosts: [{es.url}]
  username: elastic
  password: s3cret
  tables:
  - name: conflict
    index: "a-*"
  - name: good
  - name: gone
- type: elasticsearch
  name: search_down
  hosts: [http://127.0.0.1:{down}]
  tables:
  - name: logs
    fields: [{{name: _id, type: keyword}}]
- type: elasticsearch
  name: search_wrong
  hosts: [{es.url}]
  username: elastic
  password: wrong-secret
  tables:
  - name: good_again
    index: good
    fields: [{{name: _id, type: keyword}}]
- type: mongodb
  name: mongo_down
  uri: "mongodb://127.0.0.1:{down}/?directConnection=true"
  database: app
  timeout: 1
  tables:
  - name: events_down
    collection: events
    fields: [{{name: _id, type: int}}]
- type: mongodb
  name: mongo
  uri: "{mongo.uri}"
  database: app
  tables:
  - name: events
  - name: missing
""",
            encoding="utf-8",
        )
        code, out = run("--settings", str(path), "set-tables-fields", "--all")
        assert code == 1
        failed = _failures(out)
        assert set(failed) == FAILING
        assert failed["search.conflict"].endswith(
            "mapping conflict: field 'n' is 'long' in index 'a-1' and 'keyword' in 'a-2' - point 'index' at "
            "indices that agree, or declare the field's type by hand"
        )
        assert "index 'gone' not found" in failed["search.gone"]
        assert f"cannot reach Elasticsearch at http://127.0.0.1:{down}" in failed["search_down.logs"]
        assert "refused the credentials" in failed["search_wrong.good_again"]
        assert f"cannot reach MongoDB at 127.0.0.1:{down}" in failed["mongo_down.events_down"]
        assert "collection 'missing' not found in database 'app'" in failed["mongo.missing"]
        assert "wrong-secret" not in out
        assert "error: 6 of 8 table(s) failed" in out
        written = {
            t.name: [f.name for f in t.fields] for ds in load_settings(path).datasources for t in ds.tables
        }
        assert written["good"] == ["_id", "n", "m"] and written["events"] == ["_id", "v"]

        code, out = run("--settings", str(path), "extract-and-load", "--all")
    assert code == 1
    assert "ok search.good: 2 rows" in out and "ok mongo.events: 1 rows" in out
    failed = _failures(out)
    assert set(failed) == FAILING
    assert all("\n" not in line for line in failed.values())
    assert "run set-tables-fields -t conflict" in failed["search.conflict"]
    assert "2 table(s) loaded, 6 failed" in out
