"""Where lake objects live. The pipeline only sees this protocol.

`write` replaces an object atomically: readers see the old object or the new one,
never a partial file, and a failed write leaves the old object untouched. An object
whose key ends in `.gz` is stored gzip-compressed (`datalake.compression: gzip`).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import fcntl
import hashlib
import os
import tempfile
import zlib
from abc import ABC, abstractmethod
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

from panorama_kpi.errors import LakeError


def encoded(key: str, chunks: Iterable[str]) -> Iterator[bytes]:
    """UTF-8 bytes of the chunks, gzip-compressed on the fly when the key ends in .gz."""
    if not key.endswith(".gz"):
        for chunk in chunks:
            yield chunk.encode("utf-8")
        return
    gz = zlib.compressobj(6, zlib.DEFLATED, 31)  # wbits 31: a gzip member, as gunzip and Athena read
    for chunk in chunks:
        out = gz.compress(chunk.encode("utf-8"))
        if out:
            yield out
    yield gz.flush()


@dataclass(frozen=True)
class Versioned:
    """A small object with what compare-and-swap needs: its version token and when it was written
    (on the storage's own clock where it has one)."""

    text: str
    token: str
    modified: dt.datetime  # UTC, naive


class Storage(ABC):
    @abstractmethod
    def write(self, key: str, chunks: Iterable[str]) -> int:
        """Stream text chunks into `key` (UTF-8), replacing it atomically. Returns bytes stored."""

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


class LocalStorage(Storage):
    """A directory on this machine."""

    def __init__(self, root: str | os.PathLike[str]) -> None:
        self.root = Path(root).resolve()

    def _path(self, key: str) -> Path:
        path = (self.root / key).resolve()
        if path != self.root and self.root not in path.parents:
            raise LakeError(f"object key {key!r} escapes the lake directory")
        return path

    def uri(self, key: str = "") -> str:
        return str(self.root / key)

    def write(self, key: str, chunks: Iterable[str]) -> int:
        path = self._path(key)
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
        except OSError as exc:
            raise LakeError(f"cannot write to the lake at {path.parent}: {exc.strerror}") from None
        written = 0
        try:
            with os.fdopen(fd, "wb", buffering=1 << 20) as out:
                for data in encoded(key, chunks):
                    out.write(data)
                    written += len(data)
                out.flush()
                os.fsync(out.fileno())
            os.chmod(tmp, 0o644)
            os.replace(tmp, path)
        except BaseException as exc:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
            if isinstance(exc, OSError):
                raise LakeError(f"cannot write {path}: {exc.strerror}") from None
            raise
        return written

    def read_text(self, key: str) -> str | None:
        try:
            return self._path(key).read_text(encoding="utf-8")
        except FileNotFoundError:
            return None

    def list(self, prefix: str) -> Iterator[str]:
        base = self._path(prefix) if prefix else self.root
        if not base.is_dir():
            return
        for dirpath, _dirs, files in os.walk(base):
            for name in sorted(files):
                if not name.endswith(".tmp"):
                    yield str(Path(dirpath, name).relative_to(self.root).as_posix())

    def delete(self, key: str) -> None:
        with contextlib.suppress(FileNotFoundError):
            self._path(key).unlink()

    # Compare-and-swap runs under an flock on one guard file: every process using
    # this lake directory takes it for the few microseconds a swap lasts.
    @contextlib.contextmanager
    def _guard(self) -> Iterator[None]:
        path = self._path("_panorama/.guard")
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(path, "a") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)

    def create_exclusive(self, key: str, text: str) -> bool:
        path = self._path(key)
        path.parent.mkdir(parents=True, exist_ok=True)
        with self._guard():
            try:
                fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
            except FileExistsError:
                return False
            with os.fdopen(fd, "w", encoding="utf-8") as out:
                out.write(text)
        return True

    def read_versioned(self, key: str) -> Versioned | None:
        path = self._path(key)
        try:
            data = path.read_bytes()
            mtime = path.stat().st_mtime
        except FileNotFoundError:
            return None
        modified = dt.datetime.fromtimestamp(mtime, dt.UTC).replace(tzinfo=None)
        return Versioned(data.decode("utf-8", "replace"), hashlib.sha256(data).hexdigest(), modified)

    def _current_token(self, key: str) -> str | None:
        found = self.read_versioned(key)
        return None if found is None else found.token

    def replace_if(self, key: str, text: str, token: str) -> bool:
        with self._guard():
            if self._current_token(key) != token:
                return False
            self.write(key, [text])
        return True

    def delete_if(self, key: str, token: str) -> bool:
        with self._guard():
            if self._current_token(key) != token:
                return False
            self.delete(key)
        return True

    def remove_temporaries(self, prefix: str) -> int:
        base = self._path(prefix) if prefix else self.root
        removed = 0
        for dirpath, _dirs, files in os.walk(base):
            for name in files:
                if name.startswith(".") and name.endswith(".tmp"):
                    with contextlib.suppress(FileNotFoundError):
                        os.unlink(os.path.join(dirpath, name))
                        removed += 1
        return removed

    def check(self) -> str:
        key = "_panorama/connection-test"
        self.write(key, ["ok\n"])
        self.delete(key)
        return f"local lake at {self.root} is writable"
