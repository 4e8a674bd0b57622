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
from panorama_kpi.errors import SourceError
from panorama_kpi.lake.batch import ObjectWriter
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


def _chunked(lines: list[str], cuts: list[int]) -> list[str]:
    chunks, start = [], 0
    for n in cuts * (len(lines) // max(sum(cuts), 1) + 1):  # chunks of whole lines, of any size
        if start >= len(lines):
            break
        chunks.append("".join(lines[start : start + n]))
        start += n
    chunks.append("".join(lines[start:]))
    return chunks


@PROPERTY
@given(ordered_scans(), st.lists(st.integers(min_value=1, max_value=4), min_size=1, max_size=30))
def test_groups_cut_an_ordered_scan_into_partitions(
    scan: tuple[int, list[tuple[tuple[Any, ...], list[list[Any]]]]], cuts: list[int]
) -> None:
    keys, partitions = scan
    lines = [encode_row([*combo, *row]) for combo, rows in partitions for row in rows]
    chunks = _chunked(lines, cuts)
    got = [(prefix, "".join(texts)) for prefix, texts in split_scan.groups(iter(chunks), keys)]
    assert got == [
        (",".join(encode_field(v) for v in combo) + ",", "".join(encode_row(r) for r in rows))
        for combo, rows in partitions
    ]


class _Scan:
    """A source that only scans: the chunks given, in the order given."""

    name = "fake"

    def __init__(self, chunks: list[str]) -> None:
        self.chunks = chunks

    def dump_keyed(self, table: TableSettings, columns: Any, ordered: bool) -> Iterator[str]:
        assert not ordered
        return iter(self.chunks)


class _Memory(ObjectWriter):
    def __init__(self, store: dict[str, str], key: str) -> None:
        super().__init__()
        self.store, self.key, self.text = store, key, ""

    def _put(self, text: str) -> None:
        self.text += text

    def close(self) -> int:
        self.flush()
        self.store[self.key] = self.text
        return len(self.text)

    def abort(self) -> None:
        self.store[self.key] = "ABORTED"


@PROPERTY
@given(
    ordered_scans(),
    st.randoms(use_true_random=False),
    st.lists(st.integers(min_value=1, max_value=4), min_size=1, max_size=30),
)
def test_a_routed_scan_gives_each_partition_its_rows_in_arrival_order(
    scan: tuple[int, list[tuple[tuple[Any, ...], list[list[Any]]]]], rnd: Any, cuts: list[int]
) -> None:
    keys, partitions = scan
    tagged = [(i, row) for i, (_combo, rows) in enumerate(partitions) for row in rows]
    rnd.shuffle(tagged)  # rows of all partitions interleaved, as a table stores them
    lines = [encode_row([*partitions[i][0], *row]) for i, row in tagged]
    store: dict[str, str] = {}

    def open_object(index: int) -> tuple[str, ObjectWriter]:
        writer = _Memory(store, f"k{index}")
        writer.write("HEADER\n")
        return f"k{index}", writer

    table = TableSettings(name="t", partition_fields=[f"p{k}" for k in range(keys)])
    done = list(
        split_scan.dump_routed(
            _Scan(_chunked(lines, cuts)),
            table,
            [],
            [(i, combo) for i, (combo, _rows) in enumerate(partitions)],
            open_object,
            lambda: None,
        )
    )
    assert sorted((i, rows) for i, _k, _s, rows in done) == [
        (i, len(r)) for i, (_c, r) in enumerate(partitions)
    ]
    assert store == {
        f"k{i}": "HEADER\n" + "".join(encode_row(row) for j, row in tagged if j == i)
        for i in range(len(partitions))
    }


def test_a_routed_scan_refuses_values_it_was_not_told_of() -> None:
    store: dict[str, str] = {}

    def open_object(index: int) -> tuple[str, ObjectWriter]:
        return f"k{index}", _Memory(store, f"k{index}")

    table = TableSettings(name="t", partition_fields=["p"])
    lines = encode_row(["a", 1]) + encode_row(["b", 2])
    with pytest.raises(SourceError, match="partition list does not have"):
        list(split_scan.dump_routed(_Scan([lines]), table, [], [(0, ("a",))], open_object, lambda: None))
    assert store == {"k0": "ABORTED"}  # nothing half-written lands


def test_choice_follows_the_statistics() -> None:
    indexed, bare = ScanStats(1_000_000, True), ScanStats(1_000_000, False)
    lookups = ScanStats(1_000_000, True, lookup_per_row=True)
    per, sorted_, routed = split_scan.PER_PARTITION, split_scan.SORTED, split_scan.ROUTED
    assert split_scan.choose(bare, 200, full=False, max_open=256).plan == per  # incremental
    assert split_scan.choose(None, 200, full=True, max_open=256).plan == per
    assert split_scan.choose(bare, 1, full=True, max_open=256).plan == per
    for stats in (indexed, bare, lookups):  # a full load that can hold every object open
        assert split_scan.choose(stats, 200, full=True, max_open=256).plan == routed
    # more partitions than objects it may hold open
    assert split_scan.choose(indexed, 4, full=True).plan == per
    assert split_scan.choose(indexed, 200, full=True).plan == per  # 5,000 rows each, read in order
    assert split_scan.choose(lookups, 200, full=True).plan == sorted_
    assert split_scan.choose(lookups, 4, full=True).plan == per
    assert split_scan.choose(indexed, 20_000, full=True, max_open=256).plan == sorted_  # 50 rows each
    assert split_scan.choose(bare, 4, full=True).plan == sorted_
    assert split_scan.choose(bare, 1, full=True).plan == per


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


@pytest.mark.parametrize("indexed", [False, True], ids=["no index", "indexed"])
@pytest.mark.parametrize("fields", [["p"], ["p", "n"]], ids=["one field", "two fields"])
def test_one_scan_writes_what_per_partition_queries_write(
    engine: str,
    server: DBServer,
    hostile: tuple[str, Any],
    tmp_path: Path,
    fields: list[str],
    indexed: bool,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Also the partition listing: grouped on exact bytes without an index, on the column
    (its collation-merged groups split again) with one."""
    table, conn = hostile
    if indexed:
        with conn.cursor() as cur:
            cur.execute(f"CREATE INDEX {table}_p ON {table} ({', '.join(fields)})")
    lakes = {}
    for plan in (split_scan.PER_PARTITION, split_scan.SORTED, split_scan.ROUTED):
        monkeypatch.setattr(
            split_scan, "choose", lambda *_a, plan=plan, **_k: split_scan.Choice(plan, "test")
        )
        where = tmp_path / plan.split()[1]
        settings = _settings(where, engine, server, table, fields)
        result = CliRunner().invoke(main, ["--settings", str(settings), "extract-and-load", "--all"])
        assert result.exit_code == 0, result.output
        lakes[plan] = _lake_files(where / "lake")
    per_partition = lakes.pop(split_scan.PER_PARTITION)
    assert sum(1 for k in per_partition if k.endswith(f"{table}.csv")) >= len(P_VALUES)
    assert any(k.endswith("_panorama_values.csv") for k in per_partition)
    for lake in lakes.values():
        assert lake == per_partition


def test_plan_taken_from_the_servers_statistics(
    engine: str, server: DBServer, hostile: tuple[str, Any], caplog: pytest.LogCaptureFixture
) -> None:
    table, conn = hostile
    ds = DatasourceSettings(engine, "db", server.settings_dict(), [])
    settings = TableSettings(name=table, partition_fields=["p"])
    with open_source(ds) as source, caplog.at_level(logging.DEBUG, logger="panorama_kpi.split_scan"):
        stats = source.scan_stats(settings)
        assert stats is not None and not stats.indexed
        assert split_scan.plan_scan(source, settings, 4, full=True) == split_scan.SORTED
        assert "no index on the partition fields" in caplog.text
        assert split_scan.plan_scan(source, settings, 4, full=False) == split_scan.PER_PARTITION
        with conn.cursor() as cur:
            cur.execute(f"CREATE INDEX {table}_p ON {table} (p)")
        stats = source.scan_stats(settings)
        assert stats is not None and stats.indexed
        assert split_scan.plan_scan(source, settings, 1, full=True) == split_scan.PER_PARTITION
        assert split_scan.plan_scan(source, settings, 20, full=True) == split_scan.SORTED  # one row each
        assert split_scan.plan_scan(source, settings, 20, full=True, max_open=20) == split_scan.ROUTED
