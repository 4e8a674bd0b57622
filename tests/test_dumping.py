"""Writing a load's partitions (panorama_kpi/dumping.py): a write that fails mid-stream
stops the source's query at once, while its connection is still open."""

from __future__ import annotations

import threading
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import pytest

from panorama_kpi.dumping import Dump, dump_partitions
from panorama_kpi.errors import LakeError
from panorama_kpi.lake.batch import Batch
from panorama_kpi.lake.local import LocalStorage
from panorama_kpi.settings import TableSettings
from panorama_kpi.views import RawTable


class _Source:
    """A source whose one stream says whether it was finished, and how."""

    name = "fake"

    def __init__(self) -> None:
        self.ended: list[str] = []

    def scan_stats(self, table: TableSettings) -> None:
        return None

    def dump(self, table: TableSettings, columns: Any, where: Any) -> Iterator[str]:
        try:
            for i in range(100):
                yield f'"{i}"\n'
            self.ended.append("read to the end")
        finally:
            self.ended.append("closed")


def test_a_write_failing_mid_stream_closes_the_query_at_once(tmp_path: Path) -> None:
    source = _Source()
    table = TableSettings(name="t")
    raw = RawTable("x_raw_t", "t", "x/t/", ("id",), ())

    def failing_write(key: str, chunks: Iterable[str]) -> int:
        for n, _chunk in enumerate(chunks):
            if n == 3:
                raise LakeError("the bucket said no")
        return 0

    sources: list[Any] = [source]
    dump = Dump(table, raw, ["id"], "x", sources, LocalStorage(tmp_path), lambda: None, threading.Event())
    with pytest.raises(LakeError, match="said no") as failure:
        list(dump_partitions(dump, Batch(failing_write), [([], None)], [()], {}, True))
    # closed now, not whenever the garbage collector frees the frames of the traceback
    # (kept here, as an error report keeps it): by then the connection may be gone, and
    # the stream's cleanup fails unseen
    assert failure.value.__traceback__ is not None
    assert source.ended == ["closed"]
