"""One run per lake, site and datasource at a time.

The lock is a small object in the lake created only if absent (local: O_EXCL;
S3: a conditional PUT), so it works wherever the lake is, across machines. Its
holder rewrites it every `ttl / 4` seconds (a heartbeat, compare-and-swap on its
version); a lock whose object has not changed for `ttl` seconds belongs to a run
that died (kill -9, a lost machine) and is taken over, again by compare-and-swap,
so two waiting runs cannot both take it. A holder whose heartbeat finds the lock
taken over stops before its next partition.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import os
import socket
import threading
import time
from collections.abc import Callable
from typing import Any

from panorama_kpi.errors import PanoramaError
from panorama_kpi.lake.layout import encode_segment, site_folder
from panorama_kpi.lake.storage import Storage, Versioned
from panorama_kpi.timeparse import utcnow

log = logging.getLogger(__name__)

#: Seconds without a heartbeat after which a lock is taken over (PANORAMA_LOCK_TTL overrides).
DEFAULT_TTL = 300.0


class LockBusy(PanoramaError):
    """Another run holds the lock."""

    exit_code = 3


class LockLost(PanoramaError):
    """Our lock was taken over (we stalled longer than its time to live)."""


def lock_key(base_prefix: str, base: list[tuple[str, str]], datasource: str) -> str:
    return f"{site_folder('locks', base_prefix, base)}/{encode_segment('datasource', datasource)}.lock"


def default_ttl() -> float:
    try:
        return max(1.0, float(os.environ.get("PANORAMA_LOCK_TTL", DEFAULT_TTL)))
    except ValueError:
        return DEFAULT_TTL


class RunLock:
    def __init__(
        self,
        storage: Storage,
        key: str,
        run_id: str,
        what: str,
        ttl: float | None = None,
        now: Callable[[], dt.datetime] = utcnow,
    ) -> None:
        self.storage, self.key, self.run_id, self.what = storage, key, run_id, what
        self.ttl = ttl or default_ttl()
        self.now = now
        self._token: str | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.lost = False
        self.started = utcnow()

    def _body(self) -> str:
        return json.dumps(
            {
                "run_id": self.run_id,
                "host": socket.gethostname(),
                "pid": os.getpid(),
                "started": f"{self.started:%Y-%m-%d %H:%M:%S}",
                "heartbeat": f"{utcnow():%Y-%m-%d %H:%M:%S.%f}",
            }
        )

    def acquire(self, wait: float = 0.0) -> str | None:
        """Take the lock, waiting up to `wait` seconds; returns a note when a dead run's lock
        was taken over. Raises LockBusy naming the holder."""
        deadline = time.monotonic() + wait
        while True:
            if self.storage.create_exclusive(self.key, self._body()):
                return self._held(None)
            current = self.storage.read_versioned(self.key)
            if current is None:
                continue  # released between our two calls: try again at once
            silent = (self.now() - current.modified).total_seconds()
            if silent > self.ttl and self.storage.replace_if(self.key, self._body(), current.token):
                return self._held(
                    f"took over the lock of {self.what} from {_holder(current)}, silent for {silent:.0f}s"
                )
            if time.monotonic() >= deadline:
                raise LockBusy(
                    f"{self.what} is being loaded by {_holder(current)}; "
                    "retry when it ends, or pass --wait SECONDS"
                )
            time.sleep(min(1.0, max(0.05, deadline - time.monotonic())))

    def _held(self, note: str | None) -> str | None:
        found = self.storage.read_versioned(self.key)
        self._token = found.token if found else None
        self._thread = threading.Thread(target=self._beat, name="lock-heartbeat", daemon=True)
        self._thread.start()
        return note

    def _beat(self) -> None:
        while not self._stop.wait(self.ttl / 4):
            try:
                self.heartbeat()
            except PanoramaError as exc:  # a storage hiccup: the next beat tries again
                log.warning("lock heartbeat failed: %s", exc)
            if self.lost:
                return

    def heartbeat(self) -> None:
        body = self._body()
        if self._token is None or not self.storage.replace_if(self.key, body, self._token):
            self.lost = True
            return
        found = self.storage.read_versioned(self.key)
        self._token = found.token if found and found.text == body else None

    def check(self) -> None:
        """Raise if another run took the lock over (call between units of work)."""
        if self.lost:
            raise LockLost(f"the lock of {self.what} was taken over by another run; stopping")

    def release(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        if self._token is not None and not self.lost:
            self.storage.delete_if(self.key, self._token)
        self._token = None

    def __enter__(self) -> RunLock:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.release()


def _holder(current: Versioned) -> str:
    try:
        data = json.loads(current.text)
        return f"host {data['host']} pid {data['pid']} (run {data['run_id']}, started {data['started']} UTC)"
    except (ValueError, KeyError, TypeError):
        return f"another run (lock object written {current.modified:%Y-%m-%d %H:%M:%S} UTC)"
