"""Open edX course structures: one row per block of every published course, with
panorama-elt's columns, so the views built on its `course_structures` table keep
working.

The active versions come from MongoDB's `modulestore.active_versions`, or, when a
MySQL host is configured (Open edX Nutmeg and later keep the course index there),
from MySQL's `split_modulestore_django_splitmodulestorecourseindex`. Each
course's published structure (`modulestore.structures`) is read one at a time and
its block tree walked from the course block, filling each block's ancestors the
way panorama-elt does (same values, same gaps: the course row has no course_name,
a block's own type column is only set on its descendants).
"""

from __future__ import annotations

import datetime as dt
import logging
import re
from collections.abc import Iterator, Mapping, Sequence
from typing import Any, ClassVar

from panorama_kpi.errors import SourceError
from panorama_kpi.lake.csv import encode_rows
from panorama_kpi.settings import Field, TableSettings
from panorama_kpi.sources.base import PartitionFilter, Source, TableKind
from panorama_kpi.sources.mongo_client import CONNECTION_KEYS, connect, server_version, translated
from panorama_kpi.sources.sql import SERVER_KEYS

log = logging.getLogger(__name__)

TABLE = "course_structures"
#: The split modulestore's collections read here (active versions first).
MODULESTORE = ("modulestore.active_versions", "modulestore.structures", "modulestore.definitions")
#: Where Open edX (Nutmeg and later) keeps the active course versions in MySQL.
COURSE_INDEX = "split_modulestore_django_splitmodulestorecourseindex"
COLUMNS = (
    "module_location",
    "course_id",
    "organization",
    "course_code",
    "course_edition",
    "parent",
    "block_type",
    "block_id",
    "display_name",
    "course_name",
    "chapter",
    "sequential",
    "vertical",
    "library",
    "component",
    "weight",
)
#: Block types that hold others; the rest, when childless, are components.
CONTAINERS = ("course", "chapter", "sequential", "vertical", "library_content")
#: Capa response tags: a problem without an explicit weight weighs one per response.
RESPONSE_TAGS = re.compile(
    "<(?:choice|multiplechoice|truefalse|option|numerical|string|custom|symbolic|code|external"
    "|formula|schematic|image|annotation|choicetext)response"
)


def block_location(org: str, course: str, run: str, block_type: str, block_id: str) -> str:
    return f"block-v1:{org}+{course}+{run}+type@{block_type}+block@{block_id}"


def course_rows(
    course_id: str, org: str, course: str, run: str, structure: Mapping[str, Any], weights: Mapping[Any, Any]
) -> list[list[Any]]:
    """Rows of one course structure. `weights`: definition id -> problem weight
    counted from its XML, for problems without an explicit weight."""
    blocks: dict[str, dict[str, Any]] = {}
    for block in structure.get("blocks") or []:
        block_type, block_id = block.get("block_type"), block.get("block_id")
        fields = block.get("fields") or {}
        location = (
            course_id if block_type == "course" else block_location(org, course, run, block_type, block_id)
        )
        weight: Any = ""
        if block_type == "problem":
            weight = fields.get("weight")
            if not weight:
                weight = weights.get(block.get("definition"), weight)
        blocks[location] = {
            "block_type": block_type,
            "block_id": block_id,
            "display_name": fields.get("display_name"),
            "children": fields.get("children"),
            "weight": weight,
        }
    if course_id not in blocks:
        log.warning("course %s: no course block in its published structure", course_id)
    else:
        _fill(blocks, (org, course, run), course_id, None, frozenset())
    return [
        [
            location,
            course_id,
            org,
            course,
            run,
            b.get("parent"),
            b["block_type"],
            b["block_id"],
            b["display_name"],
            b.get("course"),
            b.get("chapter"),
            b.get("sequential"),
            b.get("vertical"),
            b.get("library_content"),
            b.get("component"),
            b["weight"],
        ]
        for location, b in blocks.items()
    ]


def _fill(
    blocks: dict[str, dict[str, Any]],
    key: tuple[str, str, str],
    location: str,
    parent: str | None,
    above: frozenset[str],
) -> None:
    """Depth first from the course block: each block learns its parent and the
    display names of the containers above it."""
    block = blocks.get(location)
    if block is None or location in above:
        return
    if parent is not None:
        up = blocks[parent]
        block["parent"] = parent
        block[up["block_type"]] = up["display_name"]
        for kind in CONTAINERS:
            if kind in up:
                block[kind] = up[kind]
    children = block.get("children")
    if children:
        for child in children:
            _fill(blocks, key, block_location(*key, child[0], child[1]), location, above | {location})
    elif block["block_type"] not in CONTAINERS:
        block["component"] = block["display_name"]


class CourseStructuresSource(Source):
    """panorama-elt's `openedx_course_structures` datasource."""

    type_name = "openedx_course_structures"
    settings_keys: ClassVar[dict[str, type]] = {
        **{f"mongodb_{k}": t for k, t in CONNECTION_KEYS.items()},
        **SERVER_KEYS,  # MySQL (panorama-elt's mysql_* keys land here)
    }

    def __init__(self, settings: Any) -> None:
        super().__init__(settings)
        self._client: Any = None
        self._db: Any = None
        self._where = ""

    @property
    def db(self) -> Any:
        if self._db is None:
            opts = {k[len("mongodb_") :]: v for k, v in self.options().items() if k.startswith("mongodb_")}
            host = str(opts.get("host") or "")
            if host.startswith(("mongodb://", "mongodb+srv://")):
                opts["uri"] = opts.pop("host")
            opts.setdefault("database", "edxapp")
            opts.setdefault("authSource", opts["database"])
            opts.setdefault("readPreference", "secondaryPreferred")
            self._client, name, self._where = connect(opts, self.name)
            self._db = self._client[name]
        return self._db

    def errors(self) -> Any:
        self.db  # noqa: B018 - connect first so the host is known
        return translated(self.name, self._where, TABLE)

    def check(self) -> str:
        with self.errors():
            version = server_version(self._db)
            found = self._db.list_collection_names(
                filter={"name": {"$in": MODULESTORE}}, authorizedCollections=True
            )
        missing = sorted(set(MODULESTORE) - set(found) - ({MODULESTORE[0]} if self.option("host") else set()))
        if missing:
            raise SourceError(
                f"datasource {self.name!r}: MongoDB at {self._where} has no {missing[0]} collection in database "
                f"{self._db.name!r} - check mongodb_database"
            )
        if self.option("host"):
            (courses,) = next(self._mysql(f"SELECT COUNT(*) FROM {COURSE_INDEX}"))
            source = f"{courses} courses in the MySQL course index"
        else:
            source = "active versions in MongoDB"
        return f"MongoDB {version} at {self._where} (course structures; {source})"

    def list_tables(self) -> dict[str, TableKind]:
        return {TABLE: "table"}

    def describe(self, table: str) -> list[Field]:
        return [Field(c, "varchar") for c in COLUMNS]

    def _active_versions(self) -> Iterator[tuple[str, str, str, str, Any]]:
        """(course_id, org, course, run, published structure id) of every course."""
        if self.option("host"):
            yield from self._mysql_versions()
            return
        coll = self.db["modulestore.active_versions"]
        with self.errors():
            for rec in coll.find({"versions.published-branch": {"$exists": True}}):
                branch = (rec.get("versions") or {}).get("published-branch")
                course_id = f"course-v1:{rec.get('org')}+{rec.get('course')}+{rec.get('run')}"
                if branch:
                    yield course_id, rec.get("org"), rec.get("course"), rec.get("run"), branch
                else:
                    log.warning("course %s: active version without a published branch", course_id)

    def _mysql(self, sql: str) -> Iterator[tuple[Any, ...]]:
        """Rows of a query on the MySQL course index, streamed (no parameters needed)."""
        import pymysql

        try:
            conn = pymysql.connect(
                host=self.option("host"),
                port=int(self.option("port", 3306)),
                user=self.option("username", "root"),
                password=self.option("password", ""),
                database=self.option("database", "edxapp"),
                connect_timeout=10,
                cursorclass=pymysql.cursors.SSCursor,
            )
        except pymysql.Error as exc:
            raise SourceError(
                f"datasource {self.name!r}: cannot connect to MySQL at {self.option('host')}:"
                f"{self.option('port', 3306)} ({exc.args[-1]}) - check mysql_host/port/username/password"
            ) from None
        try:
            with conn.cursor() as cur:
                cur.execute(sql)
                yield from cur
        except pymysql.Error as exc:
            raise SourceError(
                f"datasource {self.name!r}: reading the MySQL course index failed: {exc.args[-1]}"
            ) from None
        finally:
            conn.close()

    def _mysql_versions(self) -> Iterator[tuple[str, str, str, str, Any]]:
        import bson

        for published, course_id in self._mysql(
            f"SELECT published_version, course_id FROM {COURSE_INDEX} ORDER BY id"
        ):
            if course_id.startswith("course") and published:
                org = course_id[10:].split("+")[0]
                parts = course_id.split("+")
                yield course_id, org, parts[1], parts[2], bson.ObjectId(published)

    def _rows(self) -> Iterator[list[Any]]:
        structures = self.db["modulestore.structures"]
        definitions = self.db["modulestore.definitions"]
        for course_id, org, course, run, branch in self._active_versions():
            with self.errors():
                structure = structures.find_one({"_id": branch})
                if structure is None:
                    log.warning("course %s: published structure %s not found", course_id, branch)
                    continue
                wanted = [
                    b.get("definition")
                    for b in structure.get("blocks") or []
                    if b.get("block_type") == "problem" and not (b.get("fields") or {}).get("weight")
                ]
                weights = {}
                if wanted:
                    for d in definitions.find({"_id": {"$in": wanted}}, {"fields.data": 1}):
                        data = (d.get("fields") or {}).get("data")
                        if data:
                            weights[d["_id"]] = len(RESPONSE_TAGS.findall(data))
            yield from course_rows(course_id, org, course, run, structure, weights)

    def partition_values(self, table: TableSettings, since: dt.datetime | None) -> Iterator[tuple[Any, ...]]:
        idx = [COLUMNS.index(f) for f in table.partition_fields]
        seen = {tuple(row[i] for i in idx) for row in self._rows()}
        return iter(sorted(seen, key=lambda t: tuple((v is None, str(v)) for v in t)))

    def dump(
        self, table: TableSettings, columns: Sequence[str], where: PartitionFilter | None = None
    ) -> Iterator[str]:
        unknown = [c for c in columns if c not in COLUMNS]
        if unknown:
            raise SourceError(
                f"datasource {self.name!r}: course_structures has no column {unknown[0]!r}; "
                f"its columns are {', '.join(COLUMNS)}"
            )
        idx = [COLUMNS.index(c) for c in columns]
        conds = [(COLUMNS.index(k), v) for k, v in (where or {}).items()]
        rows = (r for r in self._rows() if all(r[i] == v for i, v in conds))
        return encode_rows([r[i] for i in idx] for r in rows)

    def close(self) -> None:
        if self._client is not None:
            self._client.close()
            self._client = self._db = None
