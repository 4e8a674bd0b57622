"""One ordered scan split into partition objects (panorama_kpi.split_scan).

On both servers, with hostile partition values (quotes, slashes, NULL, collation-equal
strings, values long enough to be keyed by digest) and hostile column values, the
split scan must leave exactly the bytes the per-partition queries leave: objects,
values files and the manifest's row counts. The plan itself is chosen from the real
servers' statistics.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from click.testing import CliRunner
from hypothesis import given
from hypothesis import strategies as st
from test_csv_contract import PROPERTY, VALUE

from panorama_kpi import split_scan
from panorama_kpi.cli import main
from panorama_kpi.lake.csv import encode_field, encode_row
from panorama_kpi.settings import DatasourceSettings, TableSettings
from panorama_kpi.sources import open_source
from panorama_kpi.sources.base import ScanStats
from tests.servers import DBServer

# ------------------------------------------------------------------ the splitting, in memory


@st.composite
def ordered_scans(draw: st.DrawFn) -> tuple[int, list[tuple[tuple[Any, ...], list[list[Any]]]]]:
    keys = draw(st.integers(min_value=1, max_value=2))
    width = draw(st.integers(min_value=1, max_value=3))
    combos = draw(st.lists(st.tuples(*[VALUE] * keys), min_size=1, max_size=6, unique=True))
    rows = st.lists(st.lists(VALUE, min_size=width, max_size=width), min_size=1, max_size=5)
    return keys, [(combo, draw(rows)) for combo in combos]


@PROPERTY
@given(ordered_scans(), st.lists(st.integers(min_value=1, max_value=4), min_size=1, max_size=30))
def test_groups_cut_an_ordered_scan_into_partitions(
    scan: tuple[int, list[tuple[tuple[Any, ...], list[list[Any]]]]], cuts: list[int]
) -> None:
    keys, partitions = scan
    lines = [encode_row([*combo, *row]) for combo, rows in partitions for row in rows]
    chunks, start = [], 0
    for n in cuts * (len(lines) // max(sum(cuts), 1) + 1):  # chunks of whole lines, of any size
        if start >= len(lines):
            break
        chunks.append("".join(lines[start : start + n]))
        start += n
    chunks.append("".join(lines[start:]))
    got = [(prefix, "".join(texts)) for prefix, texts in split_scan.groups(iter(chunks), keys)]
    assert got == [
        (",".join(encode_field(v) for v in combo) + ",", "".join(encode_row(r) for r in rows))
        for combo, rows in partitions
    ]


def test_choice_follows_the_statistics() -> None:
    indexed, bare = ScanStats(1_000_000, True), ScanStats(1_000_000, False)
    lookups = ScanStats(1_000_000, True, lookup_per_row=True)
    assert not split_scan.choose(bare, 200, full=False).split  # incremental: per partition
    assert not split_scan.choose(None, 200, full=True).split
    assert not split_scan.choose(indexed, 4, full=True).split
    assert not split_scan.choose(indexed, 200, full=True).split  # 5,000 rows each, read in order
    assert split_scan.choose(lookups, 200, full=True).split
    assert not split_scan.choose(lookups, 4, full=True).split
    assert split_scan.choose(indexed, 20_000, full=True).split  # 50 rows each
    assert split_scan.choose(bare, 4, full=True).split
    assert not split_scan.choose(bare, 1, full=True).split


# ------------------------------------------------------------------ both plans on real servers

LONG = "é" * 150  # its folder name passes 200 bytes: keyed by digest
P_VALUES = ["ABC", "abc", "abc ", "ábc", " ", "", "a/b", "it's", 'say "x"', "back\\slash", "50%", LONG, None]
BODY = ["plain", "", None, "line\nbreak\r", 'q"uo,te', "\\N", "tab\there", "😀"]

DDL = {
    "mysql": "CREATE TABLE {t} (id INT PRIMARY KEY, p VARCHAR(400) COLLATE utf8mb4_general_ci, n INT, body TEXT)",
    "postgresql": "CREATE TABLE {t} (id INT PRIMARY KEY, p VARCHAR(400), n INT, body TEXT)",
}
TYPES = {"mysql": ["int", "varchar", "int", "text"], "postgresql": ["integer", "varchar", "integer", "text"]}


@pytest.fixture(params=["mysql", "postgresql"])
def engine(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def server(engine: str, request: pytest.FixtureRequest) -> DBServer:
    return request.getfixturevalue("mysql_server" if engine == "mysql" else "pg_server")


@pytest.fixture
def hostile(engine: str, server: DBServer) -> Iterator[tuple[str, Any]]:
    """A table of hostile partition and column values (dropped afterwards), and an
    autocommit connection to its server."""
    table = f"split_{uuid.uuid4().hex[:8]}"
    conn = server.connect()
    with conn.cursor() as cur:
        cur.execute(DDL[engine].format(t=table))
        cur.executemany(f"INSERT INTO {table} VALUES (%s, %s, %s, %s)", list(_rows()))
    try:
        yield table, conn
    finally:
        with conn.cursor() as cur:
            cur.execute(f"DROP TABLE {table}")
        conn.close()


def _rows() -> Iterator[tuple[int, str | None, int, str | None]]:
    n = 0
    for i, p in enumerate(P_VALUES):
        for j in range(1 + i % 3):
            n += 1
            yield 1000 - n * 7 % 997, p, (i * j) % 4, BODY[(i + j) % len(BODY)]


def _settings(path: Path, engine: str, server: DBServer, table: str, fields: list[str]) -> Path:
    types = dict(zip(["id", "p", "n", "body"], TYPES[engine], strict=True))
    doc = {
        "datalake": {"type": "local", "path": str(path / "lake"), "base_prefix": "x"},
        "datasources": [
            {
                "type": engine,
                "name": "db",
                **server.settings_dict(),
                "tables": [
                    {
                        "name": table,
                        "fields": [{"name": f, "type": types[f]} for f in ["id", "p", "n", "body"]],
                        "partitions": {"partition_fields": fields},
                    }
                ],
            }
        ],
    }
    path.mkdir(parents=True, exist_ok=True)
    (path / "s.yaml").write_text(yaml.safe_dump(doc), encoding="utf-8")
    return path / "s.yaml"


def _lake_files(root: Path) -> dict[str, bytes]:
    """Data objects, values files and manifests (not the catalog nor the run records)."""
    return {
        str(p.relative_to(root)): p.read_bytes()
        for p in sorted(root.rglob("*"))
        if p.is_file() and (p.suffix == ".csv" or "manifests" in p.parts) and "_panorama_runs" not in p.parts
    }


@pytest.mark.parametrize("fields", [["p"], ["p", "n"]], ids=["one field", "two fields"])
def test_split_scan_writes_what_per_partition_queries_write(
    engine: str,
    server: DBServer,
    hostile: tuple[str, Any],
    tmp_path: Path,
    fields: list[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    table, _conn = hostile
    lakes = {}
    for split in (False, True):
        monkeypatch.setattr(
            split_scan, "choose", lambda *_a, split=split, **_k: split_scan.Choice(split, "test")
        )
        settings = _settings(tmp_path / str(split), engine, server, table, fields)
        result = CliRunner().invoke(main, ["--settings", str(settings), "extract-and-load", "--all"])
        assert result.exit_code == 0, result.output
        lakes[split] = _lake_files(tmp_path / str(split) / "lake")
    assert sum(1 for k in lakes[False] if k.endswith(f"{table}.csv")) >= len(P_VALUES)
    assert any(k.endswith("_panorama_values.csv") for k in lakes[False])
    assert lakes[True] == lakes[False]


def test_plan_taken_from_the_servers_statistics(
    engine: str, server: DBServer, hostile: tuple[str, Any], caplog: pytest.LogCaptureFixture
) -> None:
    table, conn = hostile
    ds = DatasourceSettings(engine, "db", server.settings_dict(), [])
    settings = TableSettings(name=table, partition_fields=["p"])
    with open_source(ds) as source, caplog.at_level(logging.DEBUG, logger="panorama_kpi.split_scan"):
        stats = source.scan_stats(settings)
        assert stats is not None and not stats.indexed
        assert split_scan.scan_in_one(source, settings, 4, full=True)
        assert "no index on the partition fields" in caplog.text
        assert not split_scan.scan_in_one(source, settings, 4, full=False)
        with conn.cursor() as cur:
            cur.execute(f"CREATE INDEX {table}_p ON {table} (p)")
        stats = source.scan_stats(settings)
        assert stats is not None and stats.indexed
        assert not split_scan.scan_in_one(source, settings, 1, full=True)
        assert split_scan.scan_in_one(source, settings, 20, full=True)  # one row each
