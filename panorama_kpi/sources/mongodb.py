"""MongoDB source (pymongo): a table is a collection, a field is a dotted path.

pymongo decodes BSON in C; values are rendered here in Python (ObjectId as hex,
Decimal128 exact, binary as base64, UUIDs as text, dates as UTC timestamps), not
with aggregation expressions whose output differs between server versions.
Partition values are grouped on the server (`$group` keeps BSON types, so a value
read back matches the documents exactly); rows stream through a cursor in
batches. Field types are BSON type names as `$type` spells them, in lower case.
"""

from __future__ import annotations

import base64
import datetime as dt
import logging
import uuid
from collections import Counter
from collections.abc import Callable, Generator, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any, ClassVar

from panorama_kpi.errors import SourceError
from panorama_kpi.lake.csv import encode_rows
from panorama_kpi.settings import Field, TableSettings
from panorama_kpi.sources.base import PartitionFilter, Source, TableKind
from panorama_kpi.sources.documents import (
    DocumentRows,
    DocumentSource,
    ancestors_removed,
    bucket_end,
    field_name,
    sort_combos,
)
from panorama_kpi.sources.mongo_client import (
    CONNECTION_KEYS,
    connect,
    errors_module,
    server_version,
    translated,
)
from panorama_kpi.sources.mongo_snapshot import (
    NO_SNAPSHOT,
    SharedSnapshot,
    SnapshotSession,
    unsupported,
)

log = logging.getLogger(__name__)

#: BSON type name (lower case) -> value kind (see documents.VIEW_TYPES).
KINDS = {
    "int": "int",
    "long": "int",
    "double": "float",
    "decimal": "float",
    "bool": "bool",
    "date": "timestamp",
    "timestamp": "timestamp",
    "object": "json",
    "array": "json",
}

BATCH = 1000


def kind_of(declared: str) -> str:
    return KINDS.get(declared.strip().lower(), "text")


def normalize(value: Any) -> Any:
    """BSON-specific Python types -> plain values the lake encoder renders."""
    import bson

    if isinstance(value, (str, int, float, bool)) or value is None:
        return value
    if isinstance(value, dict):
        return {k: normalize(v) for k, v in value.items()}
    if isinstance(value, list):
        return [normalize(v) for v in value]
    if isinstance(value, bson.ObjectId):
        return str(value)
    if isinstance(value, bson.Decimal128):
        return value.to_decimal()
    if isinstance(value, bson.Binary):
        if value.subtype in (3, 4) and len(value) == 16:
            return str(uuid.UUID(bytes=bytes(value)))
        return base64.b64encode(bytes(value)).decode("ascii")
    if isinstance(value, uuid.UUID):
        return str(value)
    if isinstance(value, bson.Timestamp):
        return value.as_datetime().replace(tzinfo=None)
    if isinstance(value, bson.DatetimeMS):  # outside Python's datetime range: kept as epoch millis
        try:
            return value.as_datetime()
        except (OverflowError, ValueError, bson.errors.InvalidBSON):
            return int(value)
    if isinstance(value, bson.Regex):
        return value.pattern
    return value if isinstance(value, (dt.datetime, bytes)) else str(value)


def bson_type(value: Any) -> str:
    """The `$type` name of a decoded value."""
    import bson

    if value is None:
        return "null"
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, bson.Int64) or (isinstance(value, int) and not -(2**31) <= value < 2**31):
        return "long"
    names = [
        (int, "int"),
        (float, "double"),
        (str, "string"),
        (bson.ObjectId, "objectid"),
        (bson.Decimal128, "decimal"),
        (dt.datetime, "date"),
        (bson.DatetimeMS, "date"),
        (bson.Timestamp, "timestamp"),
        (bytes, "bindata"),
        (uuid.UUID, "bindata"),
        (dict, "object"),
        (list, "array"),
        (bson.Regex, "regex"),
    ]
    return next((name for cls, name in names if isinstance(value, cls)), "string")


def infer_fields(docs: Iterable[Mapping[str, Any]]) -> list[Field]:
    """Fields of sampled documents: sub-documents flattened to dotted paths, `_id`
    first, then in order of first appearance; each path's most common type (ints
    widened to long, mixed numbers to double)."""
    seen: dict[str, Counter[str]] = {}

    def walk(doc: Mapping[str, Any], prefix: str) -> None:
        for key, value in doc.items():
            path = f"{prefix}{key}"
            if isinstance(value, dict) and value:
                walk(value, path + ".")
            else:
                seen.setdefault(path, Counter())[bson_type(value)] += 1

    for doc in docs:
        walk(doc, "")
    fields = []
    taken: set[str] = set()
    for path in sorted(seen, key=lambda p: p != "_id"):
        counts = seen[path]
        kinds = set(counts) - {"null"}
        if kinds and kinds <= {"int", "long"}:
            kind = "long" if "long" in kinds else "int"
        elif kinds and kinds <= {"int", "long", "double"}:
            kind = "double"
        else:
            kind = next((k for k, _ in counts.most_common() if k != "null"), "string")
        name = field_name(path, taken)
        fields.append(Field(name, kind, path if path != name else None))
    return fields


class MongoDBSource(DocumentSource):
    """A MongoDB database; one table per collection."""

    type_name = "mongodb"
    settings_keys: ClassVar[dict[str, type]] = {**CONNECTION_KEYS, "batch_size": int}
    table_keys: ClassVar[dict[str, type]] = {"collection": str}
    kind_of = staticmethod(kind_of)
    normalize_value = staticmethod(normalize)

    def __init__(self, settings: Any) -> None:
        super().__init__(settings)
        self._client: Any = None
        self._db_name = ""
        self._where = ""
        self._snapshot: SnapshotSession | None = None  # inside consistent_read, where the server can

    @property
    def db(self) -> Any:
        if self._client is None:
            self._client, self._db_name, self._where = connect(self.options(), self.name)
        return self._client[self._db_name]

    def errors(self, table: str | None = None) -> Any:
        self.db  # noqa: B018 - connect first so the host is known
        return translated(self.name, self._where, table)

    def _collection(self, table: str) -> Any:
        """The table's collection, checked to exist (a read of a missing one returns nothing)."""
        spec = next((t for t in self.settings.tables if t.name == table), None)
        name = (spec.options.get("collection") if spec else None) or table
        with self.errors(table):
            # authorizedCollections: a user allowed to read some collections may list them
            found = self.db.list_collection_names(filter={"name": name}, authorizedCollections=True)
        if not found:
            raise SourceError(
                f"datasource {self.name!r}, table {table!r}: collection {name!r} not found in database "
                f"{self._db_name!r} - run set-tables or fix 'collection'"
            )
        return self.db[name]

    @contextmanager
    def consistent_read(self, others: Sequence[Source] = (), table: str | None = None) -> Iterator[None]:
        """Every read of the table, on this connection and on `others`, at one point in time
        (snapshot sessions, see mongo_snapshot.py); where the server cannot, plain reads and
        a note in the run record."""
        if table is None:
            yield
            return
        with self.errors(table):
            hello = self.db.command("hello")
        shared = SharedSnapshot(refused=unsupported(hello))
        members = [self, *(o for o in others if isinstance(o, MongoDBSource))]
        if shared.refused:
            self._no_snapshot(table, shared.refused)
        else:
            for member in members:
                member._snapshot = SnapshotSession(member.db.client, shared)
        try:
            yield
        except BaseException:
            self.drain_warnings()  # a failed table's notes must not land in the next table's record
            raise
        finally:
            for member in members:
                snapshot, member._snapshot = member._snapshot, None
                if snapshot is not None:
                    snapshot.end()

    def _no_snapshot(self, table: str, why: str) -> None:
        line = (
            f"{self.name}.{table}: read without a snapshot: {why}; documents changed during the load "
            "may be seen in either state"
        )
        log.debug("%s", line)
        self.warn(line)

    def _read(self, table: str, open_cursor: Callable[[Any], Any]) -> Generator[Any, None, None]:
        """Documents of `open_cursor(session)` (a find or an aggregate), at the table's
        snapshot when it has one. A server that refuses the snapshot read (a member without
        majority read concern, say) is read again without, once for the table, saying so."""
        snapshot = self._snapshot
        session = snapshot.for_read() if snapshot else None
        end = object()
        cursor = None
        try:
            try:
                cursor = open_cursor(session)
                first = next(cursor, end)
            except errors_module().OperationFailure as exc:
                if snapshot is None or session is None or exc.code not in NO_SNAPSHOT:
                    raise
                snapshot.shared.refused = str((exc.details or {}).get("errmsg") or exc).splitlines()[0]
                self._no_snapshot(table, f"the server refused it ({snapshot.shared.refused})")
                if cursor is not None:
                    cursor.close()
                cursor = open_cursor(None)
                first = next(cursor, end)
            if snapshot is not None and not snapshot.shared.refused:
                snapshot.read_done()
            if first is not end:
                yield first
                yield from cursor
        finally:
            if cursor is not None:
                cursor.close()

    def check(self) -> str:
        with self.errors():
            version = server_version(self.db)
            count = len(self.db.list_collection_names(authorizedCollections=True))
        return f"MongoDB {version} at {self._where}/{self._db_name} ({count} collections)"

    def list_tables(self) -> dict[str, TableKind]:
        """Collections and views, without the system ones (`system.*`)."""
        with self.errors():
            found = {
                c["name"]: c.get("type")
                for c in self.db.list_collections(authorizedCollections=True, nameOnly=True)
            }
        kinds: dict[str, TableKind] = {}
        for name in sorted(found):
            if not name.startswith("system."):
                kinds[name] = "view" if found[name] == "view" else "table"
        return kinds

    def describe(self, table: str) -> list[Field]:
        coll = self._collection(table)
        with self.errors(table):
            return infer_fields(coll.aggregate([{"$sample": {"size": self.sample_size}}], batchSize=BATCH))

    def _groups(self, table: TableSettings, since: dt.datetime | None) -> list[tuple[tuple[Any, ...], int]]:
        """(partition values, documents) per combination, grouped on the server: `$group`
        keeps BSON types, so a value read back selects exactly its documents."""
        coll = self._collection(table.name)
        paths = self.paths(table)
        match = {}
        if since is not None and table.timestamp_field:
            match = {paths[table.timestamp_field]: {"$gte": since}}
        if set(table.partition_fields) & set(getattr(table, "derived", {})):
            return self._bucketed(coll, table, match)
        pipeline: list[dict[str, Any]] = [{"$match": match}] if match else []
        group = {f"p{i}": "$" + paths[f] for i, f in enumerate(table.partition_fields)}
        pipeline.append({"$group": {"_id": group, "n": {"$sum": 1}}})
        with self.errors(table.name):
            found = list(
                self._read(
                    table.name,
                    lambda s: coll.aggregate(pipeline, allowDiskUse=True, batchSize=BATCH, session=s),
                )
            )
        out = [(tuple(d["_id"].get(f"p{i}") for i in range(len(group))), int(d["n"])) for d in found]
        return sorted(out, key=lambda item: tuple((v is None, str(v)) for v in item[0]))

    def _bucketed(
        self, coll: Any, table: TableSettings, match: dict[str, Any]
    ) -> list[tuple[tuple[Any, ...], int]]:
        """Partitions derived from a timestamp: the dates are computed here from the
        decoded values (a server-side date expression's output varies by version),
        reading only the partition paths."""
        spec = self.partition_spec(table)
        projection = dict.fromkeys(ancestors_removed(f.path or f.name for f, _g in spec), 1)
        counts: Counter[tuple[Any, ...]] = Counter()
        batch = int(self.option("batch_size", BATCH))
        with self.errors(table.name):
            for doc in self._read(
                table.name, lambda s: coll.find(match, projection, batch_size=batch, session=s)
            ):
                counts[self.partition_combo(doc, spec)] += 1
        return [(combo, counts[combo]) for combo in sort_combos(counts)]

    def partition_values(self, table: TableSettings, since: dt.datetime | None) -> Iterator[tuple[Any, ...]]:
        return iter([values for values, _n in self._groups(table, since)])

    def partition_counts(self, table: TableSettings) -> Iterator[tuple[tuple[Any, ...], int]] | None:
        return iter(self._groups(table, None))

    def clock(self) -> dt.datetime:
        """The server's time (`hello` reports it), so windows follow the server's clock."""
        with self.errors():
            now = self.db.command("hello").get("localTime")
        if not isinstance(now, dt.datetime):
            return super().clock()
        return now.astimezone(dt.UTC).replace(tzinfo=None) if now.tzinfo else now

    def dump(
        self, table: TableSettings, columns: Sequence[str], where: PartitionFilter | None = None
    ) -> Iterator[str]:
        coll = self._collection(table.name)
        fields = self.fields_named(table, columns)
        paths = self.paths(table)
        derived = getattr(table, "derived", {})
        query: dict[str, Any] = {}
        for name, value in (where or {}).items():
            bucket = derived.get(name)
            if bucket and value is not None:  # a range on the timestamp itself
                day = value if isinstance(value, dt.date) else dt.date.fromisoformat(str(value)[:10])
                start = dt.datetime(day.year, day.month, day.day)
                query[paths[bucket.source]] = {"$gte": start, "$lt": bucket_end(day, bucket.granularity)}
            else:
                query[paths[bucket.source if bucket else name]] = value
        wanted = ancestors_removed(f.path or f.name for f in fields)
        projection: dict[str, int] = {p: 1 for p in wanted}
        if "_id" not in wanted:
            projection["_id"] = 0
        rows = DocumentRows(fields, kind_of, normalize=normalize)

        batch = int(self.option("batch_size", BATCH))

        def chunks() -> Iterator[str]:
            with self.errors(table.name):
                docs = self._read(
                    table.name, lambda s: coll.find(query, projection, batch_size=batch, session=s)
                )
                try:
                    yield from encode_rows(rows.rows(docs))
                finally:
                    docs.close()
            self.warn(rows.report(f"{self.name}.{table.name}"))

        return chunks()

    def close(self) -> None:
        self._snapshot = None  # its client is closed with it
        if self._client is not None:
            self._client.close()
            self._client = None
