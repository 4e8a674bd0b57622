"""MongoDB snapshot reads: every read of a table at one point in time, where the server can.

MongoDB 5.0+ replica sets and sharded clusters read at a snapshot outside transactions
(read concern level "snapshot"): the first read takes the latest majority-committed
point in time and answers it as `atClusterTime`, and later reads naming that time see
the same data (pymongo: `start_session(snapshot=True)`). Each of a table's connections
(--workers) holds such a session, all at the first one's time, so the partition list
and every partition read one state of the collection. A standalone server or one older
than 5.0 cannot: the table is read with plain finds, and the run says so.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

#: Snapshot reads outside transactions exist from MongoDB 5.0 (wire version 13).
SNAPSHOT_WIRE_VERSION = 13
#: Answers meaning the server cannot read at a snapshot after all (NotAReplicaSet,
#: ReadConcernMajorityNotEnabled, NotImplemented): the table is read without one.
#: https://www.mongodb.com/docs/manual/reference/error-codes/
NO_SNAPSHOT = {123, 148, 238}
#: The snapshot is older than the history the server keeps (minSnapshotHistoryWindowInSeconds).
SNAPSHOT_TOO_OLD = 239


def unsupported(hello: Mapping[str, Any]) -> str | None:
    """Why the server answering `hello` cannot read at a snapshot; None when it can."""
    if int(hello.get("maxWireVersion") or 0) < SNAPSHOT_WIRE_VERSION:
        return "the server is older than MongoDB 5.0"
    if not hello.get("setName") and hello.get("msg") != "isdbgrid":
        return "a standalone server (snapshot reads need a replica set or a sharded cluster)"
    return None


@dataclass
class SharedSnapshot:
    """The point in time a table's connections read at, once the first read answered."""

    time: Any = None  # bson.Timestamp
    refused: str | None = None  # why the table is read without a snapshot, once known


class SnapshotSession:
    """One connection's snapshot session for one table."""

    def __init__(self, client: Any, shared: SharedSnapshot) -> None:
        self.session = client.start_session(snapshot=True)
        self.shared = shared

    def for_read(self) -> Any:
        """The session a read passes (None once the server refused snapshots), set to the
        table's time when another connection read first."""
        if self.shared.refused:
            return None
        if self.shared.time is not None and _time(self.session) is None:
            # pymongo has no public way to give a snapshot session its time: it takes it
            # from the session's first answer, which is what the other connection had.
            self.session._snapshot_time = self.shared.time
        return self.session

    def read_done(self) -> None:
        """After a read's first answer: its time is the table's, if none was yet."""
        if self.shared.time is None:
            self.shared.time = _time(self.session)

    def end(self) -> None:
        self.session.end_session()


def _time(session: Any) -> Any:
    return getattr(session, "_snapshot_time", None)
