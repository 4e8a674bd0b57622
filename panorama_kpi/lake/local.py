"""A local lake: a directory on this machine (`datalake.type: local`).

An object is written under a temporary name beside its key (`.<name>.<pid>-<n>.tmp`),
flushed to disk and renamed over the key, so readers see the old object or the new
one and a crash never leaves a renamed but empty object. A batch (a table's
partitions) writes small objects on 8 threads and lands everything written at its
end: one syncfs of the filesystem for many objects (one fsync each cost seconds for
thousands of partitions), then the renames; see `LocalStorage.batch` and `_land`.
"""

from __future__ import annotations

import contextlib
import ctypes
import datetime as dt
import fcntl
import hashlib
import itertools
import os
import threading
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path

from panorama_kpi.errors import LakeError
from panorama_kpi.lake.batch import Batch, ObjectWriter
from panorama_kpi.lake.storage import Encoder, Storage, Versioned, encoded


#: Threads of a batch writing small objects, or flushing a few objects to disk.
COMMIT_THREADS = 8
#: Objects up to this size (bytes) are written whole by a commit thread inside a batch.
SMALL_OBJECT = 1 << 20


def _commit(fd: int, tmp: str, path: Path) -> None:
    """Flush a complete temporary file (open as `fd`) to disk, close it, rename it over `path`."""
    try:
        os.fsync(fd)
        os.fchmod(fd, 0o644)
        os.close(fd)
        fd = -1
        os.replace(tmp, path)
    except BaseException as exc:
        _discard(fd, tmp)
        if isinstance(exc, OSError):
            raise LakeError(f"cannot write {path}: {exc.strerror}") from None
        raise


#: From this many objects, a batch flushes them with one syncfs of the lake's filesystem
#: rather than one fsync each (on the bench machine 20,000 small objects: 0.5 s against
#: 13 s one at a time).
SYNCFS_FROM = 64


def _land(root: Path, made: list[tuple[str, Path]]) -> list[BaseException]:
    """Flush complete temporary files to disk, then rename each over its object (renamed only
    once its bytes are on disk: a crash never leaves a renamed but empty object). Returns the
    failures; a temporary file that could not land is removed."""
    if not made:
        return []
    failures: list[BaseException] = []
    left = list(made)  # not landed yet: removed if this is interrupted
    try:
        try:
            if len(made) < SYNCFS_FROM or not _syncfs(root):
                with ThreadPoolExecutor(max_workers=COMMIT_THREADS, thread_name_prefix="fsync") as pool:
                    list(pool.map(_fsync_path, [tmp for tmp, _path in made]))
        except OSError as exc:
            return [LakeError(f"cannot flush the lake's new objects to disk under {root}: {exc.strerror}")]
        while left:
            tmp, path = left[-1]
            try:
                os.replace(tmp, path)
            except OSError as exc:
                _discard(-1, tmp)
                failures.append(LakeError(f"cannot write {path}: {exc.strerror}"))
            left.pop()
    finally:
        for tmp, _path in left:
            _discard(-1, tmp)
    return failures


def _fsync_path(path: str) -> None:
    fd = os.open(path, os.O_RDONLY | getattr(os, "O_CLOEXEC", 0))
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _syncfs(root: Path) -> bool:
    """Flush the filesystem holding `root` (Linux's syncfs); False where there is none."""
    try:
        syncfs = ctypes.CDLL(None, use_errno=True).syncfs
    except (OSError, AttributeError):
        return False
    fd = os.open(root, os.O_RDONLY | getattr(os, "O_CLOEXEC", 0))
    try:
        if syncfs(fd) != 0:
            err = ctypes.get_errno()
            raise OSError(err, os.strerror(err))
    finally:
        os.close(fd)
    return True


_CREATE = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0)
_TEMPORARIES = itertools.count()


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]


def _discard(fd: int, tmp: str) -> None:
    with contextlib.suppress(OSError):
        if fd >= 0:
            os.close(fd)
    with contextlib.suppress(OSError):
        os.unlink(tmp)


class LocalStorage(Storage):
    """A directory on this machine."""

    writes_in_place = True

    def __init__(self, root: str | os.PathLike[str]) -> None:
        self.root = Path(root).resolve()

    def _path(self, key: str) -> Path:
        # normalised as text: keys never hold symlinks, and resolving one costs a stat per
        # folder level, per object (a visible cost with thousands of partitions)
        root = str(self.root)
        path = os.path.normpath(os.path.join(root, key))
        if path != root and not path.startswith(root.rstrip(os.sep) + os.sep):
            raise LakeError(f"object key {key!r} escapes the lake directory")
        return Path(path)

    def uri(self, key: str = "") -> str:
        return str(self.root / key)

    def write(self, key: str, chunks: Iterable[str]) -> int:
        path, fd, tmp, written = self._write_temporary(key, encoded(key, chunks))
        _commit(fd, tmp, path)
        return written

    def _create_temporary(self, key: str) -> tuple[Path, int, str]:
        """A new, empty temporary file beside `key`'s path: (path, its descriptor, its name).
        Named by process and counter (`remove_temporaries` knows the shape); the folder is
        made only when the first attempt finds it missing."""
        path = self._path(key)
        folder = str(path.parent)
        while True:
            tmp = os.path.join(folder, f".{path.name}.{os.getpid()}-{next(_TEMPORARIES)}.tmp")
            try:
                return path, os.open(tmp, _CREATE, 0o600), tmp
            except FileExistsError:
                continue
            except FileNotFoundError:
                try:
                    os.makedirs(folder, exist_ok=True)
                except OSError as exc:
                    raise LakeError(f"cannot write to the lake at {folder}: {exc.strerror}") from None
            except OSError as exc:
                raise LakeError(f"cannot write to the lake at {folder}: {exc.strerror}") from None

    def _write_temporary(self, key: str, stored: Iterable[bytes]) -> tuple[Path, int, str, int]:
        """Write an object's stored bytes (`encoded`) into a new temporary file beside
        `key`'s path; returns it still open (its descriptor), not yet flushed to disk."""
        path, fd, tmp = self._create_temporary(key)
        written = 0
        try:
            # a small buffer joins the header and short chunks; big chunks go straight through
            with os.fdopen(fd, "wb", buffering=1 << 16, closefd=False) as out:
                for data in stored:
                    out.write(data)
                    written += len(data)
        except BaseException as exc:
            _discard(fd, tmp)
            if isinstance(exc, OSError):
                raise LakeError(f"cannot write {path}: {exc.strerror}") from None
            raise
        return path, fd, tmp, written

    # Each object is flushed to disk before its rename, so a crash never leaves a renamed
    # but empty object. One fsync waits milliseconds on many disks, which dominated a
    # load of thousands of small partitions; several at once cost little more than one.
    @contextlib.contextmanager
    def batch(self) -> Iterator[Batch]:
        pool = ThreadPoolExecutor(max_workers=COMMIT_THREADS, thread_name_prefix="commit")
        slots = threading.BoundedSemaphore(4 * COMMIT_THREADS)  # small objects in flight
        pending: list[Future[None]] = []
        made: list[tuple[str, Path]] = []  # complete temporary files, closed, not yet renamed

        def hand_over(path: Path, fd: int, tmp: str) -> None:
            try:
                os.fchmod(fd, 0o644)
                os.close(fd)
            except BaseException as exc:
                _discard(fd, tmp)
                if isinstance(exc, OSError):
                    raise LakeError(f"cannot write {path}: {exc.strerror}") from None
                raise
            made.append((tmp, path))

        def write_whole(key: str, data: bytes) -> None:
            try:
                path, fd, tmp, _written = self._write_temporary(key, [data])
                hand_over(path, fd, tmp)
            finally:
                slots.release()

        def write(key: str, chunks: Iterable[str]) -> int:
            # A small object (most partitions of a table cut into thousands) is made in
            # memory and its file created and written on a commit thread, so the folder
            # and file creation overlap the next objects' rows.
            stream = encoded(key, chunks)
            head: list[bytes] = []
            size = 0
            for data in stream:
                head.append(data)
                size += len(data)
                if size > SMALL_OBJECT:
                    break
            else:
                slots.acquire()
                pending.append(pool.submit(write_whole, key, b"".join(head)))
                return size
            path, fd, tmp, written = self._write_temporary(key, itertools.chain(head, stream))
            hand_over(path, fd, tmp)
            return written

        try:
            yield _LocalBatch(write, self, hand_over)
        finally:
            pool.shutdown(wait=True)
            failures = [exc for exc in (f.exception() for f in pending) if exc is not None]
            failures += _land(self.root, made)  # what was written whole lands, even if the block failed
        if failures:
            raise failures[0]  # the first failure, once every object had its chance

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


class _LocalBatch(Batch):
    """A local lake's batch: an open object is written in place, in its temporary file."""

    def __init__(
        self,
        write: Callable[[str, Iterable[str]], int],
        storage: LocalStorage,
        hand_over: Callable[[Path, int, str], None],
    ) -> None:
        super().__init__(write)
        self.storage, self.hand_over = storage, hand_over

    def open(self, key: str) -> ObjectWriter:
        return _LocalWriter(key, self.storage, self.hand_over)


class _LocalWriter(ObjectWriter):
    def __init__(self, key: str, storage: LocalStorage, hand_over: Callable[[Path, int, str], None]) -> None:
        super().__init__()
        self.path, self.fd, self.tmp = storage._create_temporary(key)
        self.encoder, self.hand_over = Encoder(key), hand_over
        self.written = 0

    def _put(self, text: str) -> None:
        self._store(self.encoder.encode(text))

    def _store(self, data: bytes) -> None:
        try:
            _write_all(self.fd, data)
        except OSError as exc:
            raise LakeError(f"cannot write {self.path}: {exc.strerror}") from None
        self.written += len(data)

    def close(self) -> int:
        self.flush()
        self._store(self.encoder.finish())
        fd, self.fd = self.fd, -1
        self.hand_over(self.path, fd, self.tmp)
        return self.written

    def abort(self) -> None:
        if self.fd >= 0:
            _discard(self.fd, self.tmp)
            self.fd = -1
