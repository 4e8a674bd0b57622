"""Where lake objects live. The pipeline only sees this protocol.

`write` replaces an object atomically: readers see the old object or the new one,
never a partial file, and a failed write leaves the old object untouched. An object
whose key ends in `.gz` is stored gzip-compressed (`datalake.compression: gzip`).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import zlib
from abc import ABC, abstractmethod
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

from panorama_kpi.lake.batch import Batch


class Encoder:
    """An object's text as stored: UTF-8, gzip-compressed on the fly when the key ends in .gz."""

    def __init__(self, key: str) -> None:
        # wbits 31: a gzip member, as gunzip and Athena read
        self.gz = zlib.compressobj(6, zlib.DEFLATED, 31) if key.endswith(".gz") else None

    def encode(self, text: str) -> bytes:
        data = text.encode("utf-8")
        return data if self.gz is None else self.gz.compress(data)

    def finish(self) -> bytes:
        return b"" if self.gz is None else self.gz.flush()


def encoded(key: str, chunks: Iterable[str]) -> Iterator[bytes]:
    """The stored bytes of an object made of these chunks (see Encoder)."""
    encoder = Encoder(key)
    for chunk in chunks:
        data = encoder.encode(chunk)
        if data:
            yield data
    tail = encoder.finish()
    if tail:
        yield tail


@dataclass(frozen=True)
class Versioned:
    """A small object with what compare-and-swap needs: its version token and when it was written
    (on the storage's own clock where it has one)."""

    text: str
    token: str
    modified: dt.datetime  # UTC, naive


class Storage(ABC):
    #: Whether a batch can hold many objects open and append to each (`Batch.open`).
    writes_in_place = False

    @abstractmethod
    def write(self, key: str, chunks: Iterable[str]) -> int:
        """Stream text chunks into `key` (UTF-8), replacing it atomically. Returns bytes stored."""

    @contextlib.contextmanager
    def batch(self) -> Iterator[Batch]:
        """Many objects in a row (a table's partitions; see lake/batch.py). An object may
        become visible only when the block ends, which waits for all of them and raises the
        first failure; each is still replaced atomically."""
        yield Batch(self.write)

    @abstractmethod
    def read_text(self, key: str) -> str | None:
        """Whole text of a small object (state files), None if absent."""

    @abstractmethod
    def list(self, prefix: str) -> Iterator[str]:
        """Keys under a prefix, recursively."""

    @abstractmethod
    def delete(self, key: str) -> None: ...

    # Primitives a lock is built on (small objects only).
    @abstractmethod
    def create_exclusive(self, key: str, text: str) -> bool:
        """Create `key` only if it does not exist; False if it does."""

    @abstractmethod
    def read_versioned(self, key: str) -> Versioned | None: ...

    @abstractmethod
    def replace_if(self, key: str, text: str, token: str) -> bool:
        """Replace `key` only if it still has version `token`; False otherwise."""

    @abstractmethod
    def delete_if(self, key: str, token: str) -> bool:
        """Delete `key` only if it still has version `token`; False otherwise."""

    @abstractmethod
    def remove_temporaries(self, prefix: str) -> int:
        """Delete what interrupted writes under `prefix` left behind; returns how many."""
    def delete_prefix(self, prefix: str) -> int:
        """Delete every object under a prefix; returns how many."""
        keys = list(self.list(prefix))
        for key in keys:
            self.delete(key)
        return len(keys)

    @abstractmethod
    def check(self) -> str:
        """Prove we can write and delete; return a short description."""

    @abstractmethod
    def uri(self, key: str = "") -> str: ...
