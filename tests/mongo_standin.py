"""A MongoDB stand-in: mockupdb speaks the wire protocol on 127.0.0.1 and this
module answers the commands pymongo sends for a read, from documents held in
memory, in the shapes the MongoDB manual documents (cited per command). The
real pymongo connects over TCP and decodes real BSON.

No MongoDB server can be installed on these machines; mongomock would bypass
the driver's wire and BSON layers entirely.
"""

from __future__ import annotations

import datetime as dt
import itertools
import random
import threading
from typing import Any

import bson
from mockupdb import Matcher, MockupDB

MAX_BSON = 16 * 1024 * 1024

#: maxWireVersion by server release (hello's minWireVersion/maxWireVersion).
#: https://www.mongodb.com/docs/manual/reference/command/hello/#mongodb-data-hello.maxWireVersion
WIRE_VERSIONS = {"4.0": 7, "4.2": 8, "4.4": 9, "5.0": 13, "6.0": 17, "7.0": 21, "8.0": 25}

#: Error codes, https://www.mongodb.com/docs/manual/reference/error-codes/
NOT_A_REPLICA_SET = 123
READ_CONCERN_MAJORITY_NOT_ENABLED = 148
SNAPSHOT_TOO_OLD = 239

_MISSING = object()


def _get(doc: Any, path: str) -> Any:
    for part in path.split("."):
        if not isinstance(doc, dict) or part not in doc:
            return _MISSING
        doc = doc[part]
    return doc


def matches(doc: dict[str, Any], query: dict[str, Any]) -> bool:
    """Query operators used by readers: equality (null matches missing), $gte, $in, $exists.
    https://www.mongodb.com/docs/manual/reference/operator/query/"""
    for path, cond in query.items():
        value = _get(doc, path)
        if isinstance(cond, dict) and cond and all(k.startswith("$") for k in cond):
            for op, arg in cond.items():
                if op == "$gte":
                    if value is _MISSING or value is None or type(value) is not type(arg) or value < arg:
                        return False
                elif op == "$lt":
                    if value is _MISSING or value is None or type(value) is not type(arg) or not value < arg:
                        return False
                elif op == "$in":
                    if value not in arg and not (isinstance(value, list) and set(value) & set(arg)):
                        return False
                elif op == "$exists":
                    if (value is not _MISSING) != bool(arg):
                        return False
                else:
                    raise ValueError(f"operator {op} not supported by the stand-in")
        elif cond is None:
            if value is not _MISSING and value is not None:
                return False
        elif value != cond and not (isinstance(value, list) and cond in value):
            return False
    return True


def project(doc: dict[str, Any], projection: dict[str, Any] | None) -> dict[str, Any]:
    """Inclusion projection of dotted paths; `_id` unless excluded.
    https://www.mongodb.com/docs/manual/reference/method/db.collection.find/#projection"""
    if not projection:
        return doc
    include = [p for p, v in projection.items() if v and p != "_id"]
    out: dict[str, Any] = {}
    if projection.get("_id", 1) and "_id" in doc:
        out["_id"] = doc["_id"]
    for path in include:
        value = _get(doc, path)
        if value is _MISSING:
            continue
        parts = path.split(".")
        node = out
        for part in parts[:-1]:
            node = node.setdefault(part, {})
        node[parts[-1]] = value
    return out


class MongoStandin:
    """`with MongoStandin({"db": {"coll": [docs]}}) as m:` then `m.uri`."""

    def __init__(
        self,
        dbs: dict[str, dict[str, list[dict[str, Any]]]],
        version: str = "7.0.12",
        reject_auth: bool = False,
        tls: bool = False,
        views: set[str] | None = None,
        replica_set: str | None = None,
        refuse_snapshot: bool = False,
    ) -> None:
        self.dbs = dbs
        self.replica_set = replica_set  # a replica set member (primary) of that name; else standalone
        self.refuse_snapshot = refuse_snapshot  # a member started with enableMajorityReadConcern false
        #: (cluster time, documents) per (db, collection), oldest first: what a snapshot read sees
        self.history: dict[tuple[str, str], list[tuple[int, list[dict[str, Any]]]]] = {}
        self.tick = 1  # the cluster time's seconds (bson.Timestamp(tick, 1))
        self.read_concerns: list[dict[str, Any] | None] = []  # of each find and aggregate
        self.too_old_next = 0  # that many next getMore of snapshot cursors fail with SnapshotTooOld
        #: called with each command's name and document after its answer: a test changes data here
        self.after: Any = None
        self.views = views or set()  # names listed as views (type "view")
        self.version = version
        self.reject_auth = reject_auth
        self.cursors: dict[int, tuple[str, list[Any]]] = {}
        self.ids = itertools.count(1_000_001)
        self.lock = threading.Lock()
        self.commands: list[str] = []
        self.expire_next = 0  # that many next getMore requests find their cursor gone
        # tls: mockupdb serves TLS with the self-signed certificate it ships
        self.server = MockupDB(request_timeout=int(1e6), ssl=tls)
        self.server.autoresponds(Matcher(), self.handle)

    def __enter__(self) -> MongoStandin:
        port = self.server.run()
        self.host, self.port = "127.0.0.1", port
        self.uri = f"mongodb://127.0.0.1:{port}/?directConnection=true"
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.stop()

    # ------------------------------------------------------------ data
    def write(self, db: str, coll: str, docs: list[dict[str, Any]]) -> None:
        """Replace a collection's documents, as writes committed at the next cluster time;
        snapshot reads at an earlier time keep seeing the previous documents."""
        with self.lock:
            versions = self.history.setdefault((db, coll), [(0, self.dbs[db].get(coll, []))])
            self.tick += 1
            versions.append((self.tick, docs))
            self.dbs[db][coll] = docs

    def documents(self, db: str, coll: str, at: int | None) -> list[dict[str, Any]]:
        """A collection's documents now, or as of cluster time `at`."""
        versions = self.history.get((db, coll))
        if at is None or not versions:
            return self.dbs.get(db, {}).get(coll, [])
        return [docs for tick, docs in versions if tick <= at][-1]

    def read_at(self, request: Any, doc: dict[str, Any]) -> tuple[int | None, Any]:
        """(cluster time to read at, error answer) for a find or aggregate's readConcern.

        Level "snapshot" reads one majority-committed point in time: the one named by
        `atClusterTime`, else the latest, which the answer reports as `atClusterTime`
        (in `cursor`). Only replica set members and mongos accept it: a standalone
        answers NotAReplicaSet, a member without majority read concern
        ReadConcernMajorityNotEnabled.
        https://www.mongodb.com/docs/manual/reference/read-concern-snapshot/
        https://www.mongodb.com/docs/manual/reference/command/find/#output
        https://www.mongodb.com/docs/manual/reference/error-codes/
        """
        concern = doc.get("readConcern")
        self.read_concerns.append(dict(concern) if concern else None)
        if not concern or concern.get("level") != "snapshot":
            return None, None
        if not self.replica_set:
            return None, request.command_err(
                code=NOT_A_REPLICA_SET,
                codeName="NotAReplicaSet",
                errmsg="node needs to be a replica set member to use read concern",
            )
        if self.refuse_snapshot:
            return None, request.command_err(
                code=READ_CONCERN_MAJORITY_NOT_ENABLED,
                codeName="ReadConcernMajorityNotEnabled",
                errmsg="read concern level snapshot is not supported when enableMajorityReadConcern=false",
            )
        at = concern.get("atClusterTime")
        return (at.time if isinstance(at, bson.Timestamp) else self.tick), None

    # ------------------------------------------------------------ commands
    def handle(self, request: Any) -> bool:
        answered = self.answer(request)
        if self.after is not None:
            self.after(request.command_name, request.doc)
        return answered

    def answer(self, request: Any) -> bool:
        name = request.command_name
        db = (request.namespace or "").split(".")[0]
        doc = request.doc
        self.commands.append(name)
        with self.lock:
            if name in ("ismaster", "isMaster", "hello"):
                # https://www.mongodb.com/docs/manual/reference/command/hello/
                # (a replica set member adds setName, hosts, primary and me)
                member: dict[str, Any] = {}
                if self.replica_set:
                    me = f"{self.host}:{self.port}"
                    member = {
                        "setName": self.replica_set,
                        "hosts": [me],
                        "primary": me,
                        "me": me,
                        "secondary": False,
                    }
                return request.ok(
                    ismaster=True,
                    isWritablePrimary=True,
                    helloOk=True,
                    maxBsonObjectSize=MAX_BSON,
                    maxMessageSizeBytes=48_000_000,
                    maxWriteBatchSize=100_000,
                    localTime=dt.datetime.now(dt.UTC),
                    logicalSessionTimeoutMinutes=30,
                    connectionId=1,
                    minWireVersion=0,
                    maxWireVersion=WIRE_VERSIONS[".".join(self.version.split(".")[:2])],
                    **member,
                )
            if name in ("saslStart", "authenticate") and self.reject_auth:
                # A wrong user or password: code 18 AuthenticationFailed.
                # https://www.mongodb.com/docs/manual/reference/error-codes/
                return request.command_err(code=18, errmsg="Authentication failed.")
            if name in ("buildinfo", "buildInfo"):
                # https://www.mongodb.com/docs/manual/reference/command/buildInfo/
                parts = [int(x) for x in self.version.split(".")]
                return request.ok(version=self.version, versionArray=[*parts, 0])
            if name in ("ping", "endSessions"):
                return request.ok()
            collections = self.dbs.get(db, {})
            if name == "listCollections":
                # https://www.mongodb.com/docs/manual/reference/command/listCollections/
                batch = [
                    {
                        "name": n,
                        "type": "view" if n in self.views else "collection",
                        "options": {},
                        "info": {"readOnly": n in self.views},
                    }
                    for n in collections
                    if matches({"name": n}, doc.get("filter") or {})
                ]
                return request.ok(
                    cursor={"id": bson.Int64(0), "ns": f"{db}.$cmd.listCollections", "firstBatch": batch}
                )
            if name == "count":
                return request.ok(n=len(collections.get(doc["count"], [])))
            if name == "find":
                # https://www.mongodb.com/docs/manual/reference/command/find/
                coll = doc["find"]
                at, refused = self.read_at(request, doc)
                if refused:
                    return bool(refused)
                docs = [
                    project(d, doc.get("projection"))
                    for d in self.documents(db, coll, at)
                    if matches(d, doc.get("filter") or {})
                ]
                if doc.get("limit"):
                    docs = docs[: doc["limit"]]
                return self.first_batch(request, f"{db}.{coll}", docs, doc.get("batchSize"), at)
            if name == "aggregate":
                # https://www.mongodb.com/docs/manual/reference/command/aggregate/
                coll = doc["aggregate"]
                at, refused = self.read_at(request, doc)
                if refused:
                    return bool(refused)
                docs = self.pipeline(list(self.documents(db, coll, at)), doc["pipeline"])
                return self.first_batch(
                    request, f"{db}.{coll}", docs, (doc.get("cursor") or {}).get("batchSize"), at
                )
            if name == "getMore":
                # https://www.mongodb.com/docs/manual/reference/command/getMore/
                cursor_id = int(doc["getMore"])
                if self.expire_next:  # the server's idle cursor timeout ran out
                    self.expire_next -= 1
                    self.cursors.pop(cursor_id, None)
                if cursor_id not in self.cursors:
                    return request.command_err(code=43, errmsg=f"cursor id {cursor_id} not found")
                ns, cursor = self.cursors[cursor_id]
                if self.too_old_next and cursor[3] is not None:
                    # A snapshot cursor read past the server's snapshot history window
                    # (minSnapshotHistoryWindowInSeconds, 300 s by default).
                    # https://www.mongodb.com/docs/manual/reference/parameters/#mongodb-parameter-param.minSnapshotHistoryWindowInSeconds
                    self.too_old_next -= 1
                    del self.cursors[cursor_id]
                    return request.command_err(
                        code=SNAPSHOT_TOO_OLD,
                        codeName="SnapshotTooOld",
                        errmsg=f"Read timestamp Timestamp({cursor[3]}, 1) is older than the oldest available timestamp.",
                    )
                cursor[2] = doc.get("batchSize") or cursor[2]
                batch = self.take(cursor)
                more = cursor[1] < len(cursor[0])
                if not more:
                    del self.cursors[cursor_id]
                return request.ok(
                    cursor={"id": bson.Int64(cursor_id if more else 0), "ns": ns, "nextBatch": batch}
                )
            if name == "killCursors":
                # https://www.mongodb.com/docs/manual/reference/command/killCursors/
                ids = [int(i) for i in doc["cursors"]]
                killed = [i for i in ids if self.cursors.pop(i, None) is not None]
                return request.ok(
                    cursorsKilled=killed,
                    cursorsNotFound=[i for i in ids if i not in killed],
                    cursorsAlive=[],
                    cursorsUnknown=[],
                )
        return request.command_err(code=59, errmsg=f"no such command: '{name}'")

    def take(self, cursor: list[Any]) -> list[dict[str, Any]]:
        """One batch from cursor [docs, position, batch size, snapshot time]: `size`
        documents (101 for a first batch without one), at most 16 MiB unless a single
        document is larger.
        https://www.mongodb.com/docs/manual/tutorial/iterate-a-cursor/#cursor-batches"""
        docs, pos, size, _at = cursor
        batch: list[dict[str, Any]] = []
        total = 0
        while pos < len(docs) and len(batch) < size:
            length = len(bson.encode(docs[pos]))
            if batch and total + length > MAX_BSON:
                break
            batch.append(docs[pos])
            total += length
            pos += 1
        cursor[1] = pos
        return batch

    def first_batch(
        self, request: Any, ns: str, docs: list[dict[str, Any]], size: int | None, at: int | None = None
    ) -> bool:
        cursor = [docs, 0, size or 101, at]
        batch = self.take(cursor)
        cursor_id = 0
        if cursor[1] < len(docs):
            cursor_id = next(self.ids)
            self.cursors[cursor_id] = (ns, cursor)
        answer: dict[str, Any] = {"id": bson.Int64(cursor_id), "ns": ns, "firstBatch": batch}
        if at is not None:  # a snapshot read says which point in time it read
            answer["atClusterTime"] = bson.Timestamp(at, 1)
        return request.ok(cursor=answer)

    def pipeline(self, docs: list[dict[str, Any]], stages: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """$match, $sample and $group on field paths, as readers use them.
        https://www.mongodb.com/docs/manual/reference/operator/aggregation-pipeline/"""
        for stage in stages:
            (op, arg), *_ = stage.items()
            if op == "$match":
                docs = [d for d in docs if matches(d, arg)]
            elif op == "$sample":
                docs = random.Random(0).sample(docs, min(arg["size"], len(docs)))
            elif op == "$group":
                groups: dict[bytes, dict[str, Any]] = {}
                for d in docs:
                    key = {}
                    for k, expr in arg["_id"].items():
                        value = _get(d, expr[1:])
                        if value is not _MISSING:  # a missing path leaves the key out
                            key[k] = value
                    entry = groups.setdefault(bson.encode(key), {"_id": key})
                    for out, acc in arg.items():  # accumulators: {"$sum": 1} counts
                        if out != "_id":
                            entry[out] = entry.get(out, 0) + acc["$sum"]
                docs = list(groups.values())
            else:
                raise ValueError(f"stage {op} not supported by the stand-in")
        return docs
