"""The Engine contract, on every engine: full partition keys on add and remove,
create-or-update of raw tables, bound query parameters, dry-run mode."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from panorama_kpi.engines.base import Engine
from panorama_kpi.lake.csv import encode_rows, header_line
from panorama_kpi.lake.layout import object_key
from panorama_kpi.lake.storage import Storage
from panorama_kpi.lakes import LAKE_TYPES, open_engine
from panorama_kpi.settings import BasePartition, DatalakeSettings, Settings, TableSettings
from panorama_kpi.views import RawTable, raw_table
from tests.lakes import Lake, make_lake

TABLE = TableSettings("things", partition_fields=["p"])


@pytest.fixture(
    params=[pytest.param(k, marks=[pytest.mark.aws] if k == "aws" else []) for k in sorted(LAKE_TYPES)]
)
def lake(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Lake]:
    with make_lake(request.param, tmp_path, request) as made:
        yield made


def _raw(lake: Lake, columns: tuple[str, ...] = ("id", "txt")) -> RawTable:
    return RawTable(
        name="x_raw_things",
        table="things",
        prefix="x/things/",
        columns=columns,
        partition_columns=("site", "p"),
        compression=lake.settings.datalake.compression,
    )


def _write(storage: Storage, raw: RawTable, p: str, rows: list[list[object]]) -> None:
    key = object_key("x", "things", [("site", "s1"), ("p", p)], raw.compression)
    storage.write(key, [header_line(raw.columns), *encode_rows(rows)])


def test_partitions_take_the_full_key_on_add_and_remove(lake: Lake) -> None:
    raw = _raw(lake)
    lake.engine.create_raw_table(raw)
    for p in ("a", "b/c", "it's"):
        _write(lake.storage, raw, p, [[1, p], [2, None]])
    full = [[("site", "s1"), ("p", p)] for p in ("a", "b/c", "it's")]
    lake.engine.add_partitions(raw, full)
    lake.engine.add_partitions(raw, full[:1])  # idempotent
    assert lake.partitions(raw) == {("s1", "a"), ("s1", "b/c"), ("s1", "it's")}
    lake.storage.delete(object_key("x", "things", full[1], raw.compression))
    lake.engine.remove_partitions(raw, [full[1]])
    lake.engine.remove_partitions(raw, [full[1]])  # absent: ignored
    assert lake.partitions(raw) == {("s1", "a"), ("s1", "it's")}


def test_a_partition_without_the_base_key_is_refused(lake: Lake) -> None:
    raw = _raw(lake)
    lake.engine.create_raw_table(raw)
    with pytest.raises(ValueError, match="not keyed by"):
        lake.engine.add_partitions(raw, [[("p", "a")]])
    with pytest.raises(ValueError, match="not keyed by"):
        lake.engine.remove_partitions(raw, [[("p", "a")]])


def test_create_raw_table_is_create_or_update(lake: Lake) -> None:
    raw = _raw(lake)
    lake.engine.create_raw_table(raw)
    _write(lake.storage, raw, "a", [[1, "x"]])
    lake.engine.add_partitions(raw, [[("site", "s1"), ("p", "a")]])
    lake.engine.create_raw_table(raw)  # unchanged: no error, nothing lost
    assert lake.partitions(raw) == {("s1", "a")}
    wider = _raw(lake, ("id", "txt", "added"))
    lake.engine.create_raw_table(wider)
    assert lake.columns(wider) == ["id", "txt", "added", "site", "p"]
    assert lake.partitions(wider) == {("s1", "a")}


def test_query_binds_parameters(lake: Lake) -> None:
    raw = _raw(lake)
    lake.engine.create_raw_table(raw)
    _write(lake.storage, raw, "a", [[1, "it's"], [2, "x"]])
    lake.engine.add_partitions(raw, [[("site", "s1"), ("p", "a")]])
    rows = lake.select("SELECT id FROM x_raw_things WHERE txt = ? AND p = ?", ["it's", "a"], [("1",)])
    assert rows == [("1",)]


def test_dry_run_connects_to_nothing_and_prints(tmp_path: Path) -> None:
    for kind in sorted(LAKE_TYPES):
        lake = DatalakeSettings(
            type=kind,
            path=str(tmp_path / "lake"),
            panorama_raw_data_bucket="nowhere-bucket",
            base_partitions=[BasePartition("site", "s1")],
        )
        settings = Settings(tmp_path / "s.yaml", lake, [])
        printed: list[str] = []
        engine: Engine = open_engine(settings, echo=printed.append)
        raw = raw_table(settings, TableSettings("t", partition_fields=[]))
        engine.create_raw_table(raw)
        engine.create_view("v", 'CREATE OR REPLACE VIEW "v" AS SELECT 1 AS x')
        assert len(printed) == 2, kind
        assert not (tmp_path / "lake").exists() or kind == "local"


def test_an_unpartitioned_table_takes_its_one_empty_key(lake: Lake) -> None:
    raw = RawTable("x_raw_flat", "flat", "x/flat/", ("id",), ())
    lake.engine.create_raw_table(raw)
    lake.storage.write("x/flat/flat.csv", ['"id"\n', '"1"\n'])
    lake.engine.add_partitions(raw, [[]])
    lake.engine.remove_partitions(raw, [[]])
    assert lake.columns(raw) == ["id"]
    assert lake.select("SELECT id FROM x_raw_flat", [], [("1",)]) == [("1",)]
    if "recorder" in lake.extra:  # Glue has no partitions for a table without partition keys
        assert lake.extra["recorder"].count("glue", "BatchCreatePartition") == 0
        assert lake.extra["recorder"].count("glue", "BatchDeletePartition") == 0


@pytest.mark.parametrize(
    "kind", [pytest.param(k, marks=[pytest.mark.aws] if k == "aws" else []) for k in sorted(LAKE_TYPES)]
)
def test_gzip_objects_read_back(kind: str, request: pytest.FixtureRequest, tmp_path: Path) -> None:
    if kind == "aws":
        request.getfixturevalue("moto_endpoint")
    with make_lake(kind, tmp_path, request, compression="gzip") as lake:
        raw = _raw(lake)
        assert raw.file_name == "things.csv.gz"
        lake.engine.create_raw_table(raw)
        _write(lake.storage, raw, "a", [[1, 'é,"x"\n'], [2, None]])
        _write(lake.storage, raw, "b", [[3, "y"]])  # several compressed files in one read
        lake.engine.add_partitions(raw, [[("site", "s1"), ("p", "a")], [("site", "s1"), ("p", "b")]])
        want = [("1", 'é,"x"\\n'), ("2", "\\N"), ("3", "y")]
        rows = lake.select("SELECT id, txt FROM x_raw_things ORDER BY id", [], want)
        assert rows == want
