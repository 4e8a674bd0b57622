"""A local lake's batch of writes: objects land whole, a failure is raised once all had their chance."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from panorama_kpi.errors import LakeError
from panorama_kpi.lake.local import COMMIT_THREADS, LocalStorage


def test_batch_puts_every_object_in_place(tmp_path: Path) -> None:
    storage = LocalStorage(tmp_path)
    storage.write("t/p=0/t.csv", ["old\n"])
    count = 10 * COMMIT_THREADS  # more than the temporary files allowed in flight
    with storage.batch() as batch:
        sizes = [batch.write(f"t/p={i}/t.csv", [f"row {i}\n", "é\n"]) for i in range(count)]
    assert sizes == [len(f"row {i}\né\n".encode()) for i in range(count)]
    assert [storage.read_text(f"t/p={i}/t.csv") for i in range(count)] == [
        f"row {i}\né\n" for i in range(count)
    ]
    assert not list(tmp_path.rglob("*.tmp"))


def test_a_failed_commit_is_raised_after_the_others(tmp_path: Path) -> None:
    storage = LocalStorage(tmp_path)
    (tmp_path / "t" / "p=1" / "t.csv").mkdir(parents=True)  # nothing can be renamed over a directory
    with pytest.raises(LakeError, match="p=1"), storage.batch() as batch:
        for i in range(3):
            batch.write(f"t/p={i}/t.csv", [f"row {i}\n"])
    assert storage.read_text("t/p=0/t.csv") == "row 0\n"
    assert storage.read_text("t/p=2/t.csv") == "row 2\n"
    assert not list(tmp_path.rglob("*.tmp"))


def test_an_abandoned_batch_leaves_no_temporary_file(tmp_path: Path) -> None:
    storage = LocalStorage(tmp_path)

    def chunks() -> Iterator[str]:
        yield "partial\n"
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt), storage.batch() as batch:
        batch.write("t/p=0/t.csv", ["whole\n"])
        batch.write("t/p=1/t.csv", chunks())
    assert storage.read_text("t/p=0/t.csv") == "whole\n"
    assert storage.read_text("t/p=1/t.csv") is None
    assert not list(tmp_path.rglob("*.tmp"))
