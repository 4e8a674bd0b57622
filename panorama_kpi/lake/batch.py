"""Writing many objects as one batch, some of them piece by piece while others are open.

A table's partitions are written in a batch (`Storage.batch`): every object is in
place when the block ends. Most partitions are written whole, from one stream
(`Batch.write`). A scan routed into partitions (split_scan.dump_routed) instead keeps
one object per partition open and appends to whichever a row belongs to
(`Batch.open`). Only a storage that can append to many objects at once without holding
them in memory (`Storage.writes_in_place`: a local lake, one temporary file each) is
read that way; S3 objects stream one at a time.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable

#: Text an open object holds in memory before it goes to its file.
PIECE_CHARS = 1 << 16


class ObjectWriter(ABC):
    """An object written piece by piece. `close` hands it to its batch (it is in place
    when the batch ends) and returns the bytes stored; `abort` drops it."""

    def __init__(self) -> None:
        self.pieces: list[str] = []
        self.size = 0

    def write(self, text: str) -> None:
        self.pieces.append(text)
        self.size += len(text)
        if self.size >= PIECE_CHARS:
            self.flush()

    def flush(self) -> None:
        if self.pieces:
            text = "".join(self.pieces)
            self.pieces, self.size = [], 0
            self._put(text)

    @abstractmethod
    def _put(self, text: str) -> None:
        """Append text to what is stored."""

    @abstractmethod
    def close(self) -> int: ...

    @abstractmethod
    def abort(self) -> None: ...


class Batch:
    """What `Storage.batch` yields: `write(key, chunks)` for a whole object, `open(key)`
    for one written piece by piece."""

    def __init__(self, write: Callable[[str, Iterable[str]], int]) -> None:
        self.write = write

    def open(self, key: str) -> ObjectWriter:
        """Only where the storage has `writes_in_place` (a routed scan is planned there only)."""
        raise NotImplementedError
