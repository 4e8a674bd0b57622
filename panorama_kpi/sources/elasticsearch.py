"""Elasticsearch source (6.8, 7.x, 8.x): a table is a consistent snapshot of an
index, alias or pattern; a field is a dotted path into `_source` (`_id` included).

The server version, read from `GET /`, picks how to page: a point in time with
`search_after` on the `_shard_doc` tiebreaker from 7.12 (where `_shard_doc`
exists), a scroll before that; both read one snapshot, and neither loses
documents the way `search_after` on a non-unique field does. Pages shrink when
documents are large, so memory stays bounded. Field types are mapping types
(`keyword`, `long`, `date`...); a `date` is a timestamp in the typed view and is
written in UTC whatever its stored format (ISO text with offset, epoch millis).
"""

from __future__ import annotations

import datetime as dt
import logging
import math
from collections import deque
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any, ClassVar

from panorama_kpi.errors import SourceError
from panorama_kpi.lake.csv import encode_rows, render
from panorama_kpi.settings import Field, TableSettings
from panorama_kpi.sources.base import PartitionFilter, ScanStats, Source, TableKind
from panorama_kpi.sources.documents import (
    DocumentRows,
    DocumentSource,
    ancestors_removed,
    bucket_end,
    field_name,
    parse_timestamp,
    sort_combos,
)
from panorama_kpi.sources.es_http import ESHttp, flatten_mapping, index_properties, total_hits

log = logging.getLogger(__name__)

_INT = {"long", "integer", "short", "byte", "unsigned_long", "token_count"}
_FLOAT = {"double", "float", "half_float", "scaled_float"}
#: Sub-documents (JSON in the typed view). `geo_shape` is GeoJSON or WKT text: VARCHAR.
_JSON = {"object", "nested", "flattened"}


def kind_of(declared: str) -> str:
    t = declared.strip().lower()
    if t in _INT:
        return "int"
    if t in _FLOAT:
        return "float"
    if t == "boolean":
        return "bool"
    if t in ("date", "date_nanos"):
        return "timestamp"
    return "json" if t in _JSON else "text"


#: A shard that fails or times out is an error, not a page with documents missing (6.3+).
STRICT = {"allow_partial_search_results": "false"}

#: Bytes of one answer above which the next pages ask for fewer documents.
PAGE_BYTES = 32 << 20


class ElasticsearchSource(DocumentSource):
    """An Elasticsearch cluster; one table per index (or alias, or pattern)."""

    type_name = "elasticsearch"
    settings_keys: ClassVar[dict[str, type]] = {
        "hosts": list,
        "host": str,
        "username": str,
        "password": str,
        "api_key": str,
        "ca_certs": str,
        "verify_certs": bool,
        "timeout": int,
        "page_size": int,
        "keep_alive": str,
    }
    table_keys: ClassVar[dict[str, type]] = {"index": str}
    kind_of = staticmethod(kind_of)
    scalar_is_array = True

    def __init__(self, settings: Any) -> None:
        super().__init__(settings)
        self._http: ESHttp | None = None
        self._info: dict[str, Any] | None = None
        #: (index, [point-in-time id]) shared by the connections of one consistent read.
        self._shared: tuple[str, list[str]] | None = None
        #: Documents the last complete read of each table returned.
        self._counted: dict[str, int] = {}

    @property
    def http(self) -> ESHttp:
        if self._http is None:
            self._http = ESHttp(self.options(), self.name)
        return self._http

    @property
    def info(self) -> dict[str, Any]:
        if self._info is None:
            body, _headers = self.http.request("GET", "/")
            version = body.get("version") or {}
            self._info = {
                "number": str(version.get("number", "0")),
                "distribution": version.get("distribution", "elasticsearch"),
                "cluster": body.get("cluster_name", "?"),
            }
        return self._info

    @property
    def version(self) -> tuple[int, int]:
        major, minor, *_ = (self.info["number"].split("-")[0].split(".") + ["0", "0"])[:2]
        return int(major), int(minor)

    @property
    def uses_pit(self) -> bool:
        """Point in time with `_shard_doc` exists from Elasticsearch 7.12."""
        return self.info["distribution"] == "elasticsearch" and self.version >= (7, 12)

    def _index(self, table: str) -> str:
        spec = next((t for t in self.settings.tables if t.name == table), None)
        return str((spec.options.get("index") if spec else None) or table)

    def check(self) -> str:
        info = self.info
        paging = "point in time" if self.uses_pit else "scroll"
        return f"Elasticsearch {info['number']} at {self.http.where} (cluster {info['cluster']}; {paging})"

    def list_tables(self) -> dict[str, TableKind]:
        """Indices, without the dot-prefixed system and hidden ones."""
        rows, _ = self.http.request("GET", "/_cat/indices", params={"format": "json", "h": "index"})
        names = sorted({r["index"] for r in rows if not str(r.get("index", ".")).startswith(".")})
        return dict.fromkeys(names, "table")

    def describe(self, table: str) -> list[Field]:
        index = self._index(table)
        body, _ = self.http.request("GET", f"/{_path(index)}/_mapping", subject=f"table {table!r}")
        if not body:
            raise SourceError(
                f"datasource {self.name!r}, table {table!r}: index pattern {index!r} matches no index "
                f"at {self.http.where} - run set-tables or fix 'index'"
            )
        types: dict[str, tuple[str, str]] = {}
        for name in sorted(body):
            for props in index_properties(body[name].get("mappings") or {}):
                for path, kind in flatten_mapping(props):
                    seen = types.setdefault(path, (kind, name))
                    if seen[0] != kind:
                        raise SourceError(
                            f"datasource {self.name!r}, table {table!r}: mapping conflict: field {path!r} is "
                            f"{seen[0]!r} in index {seen[1]!r} and {kind!r} in {name!r} - point 'index' at "
                            "indices that agree, or declare the field's type by hand"
                        )
        taken = {"_id"}
        fields = [Field("_id", "keyword")]
        for path, (kind, _name) in types.items():
            name = field_name(path, taken)
            fields.append(Field(name, kind, path if path != name else None))
        return fields

    # ------------------------------------------------------------ reading
    def _query(self, table: TableSettings, where: PartitionFilter | None, since: dt.datetime | None) -> Any:
        paths = self.paths(table)
        derived = getattr(table, "derived", {})
        filters: list[Any] = []
        for name, value in (where or {}).items():
            bucket = derived.get(name)
            path = paths[bucket.source if bucket else name]
            if value is None:
                filters.append({"bool": {"must_not": {"exists": {"field": path}}}})
            elif bucket:  # a range on the timestamp itself
                day = _day(value)
                rng = {"gte": _term(day), "lt": _term(bucket_end(day, bucket.granularity))}
                rng["format"] = "strict_date_optional_time"
                filters.append({"range": {path: rng}})
            elif path == "_id":
                filters.append({"ids": {"values": [value]}})
            else:
                kind = kind_of(self.fields_named(table, [name])[0].type)
                filters.append({"term": {path: _term(_typed(kind, value))}})
        if since is not None and table.timestamp_field:
            stamp = since.isoformat(timespec="milliseconds") + "Z"
            filters.append(
                {
                    "range": {
                        paths[table.timestamp_field]: {"gte": stamp, "format": "strict_date_optional_time"}
                    }
                }
            )
        return {"bool": {"filter": filters}} if filters else {"match_all": {}}

    def _hits(
        self, table: TableSettings, query: Any, source: Any, sort: list[Any] | None = None
    ) -> Iterator[dict[str, Any]]:
        """Every matching hit of one snapshot, page by page (a scroll sorted by `sort`
        then `_doc`, when given)."""
        size = int(self.option("page_size", 1000))
        keep = str(self.option("keep_alive", "5m"))
        index = self._index(table.name)
        subject = f"table {table.name!r}"
        body: dict[str, Any] = {"size": size, "query": query, "_source": source}
        if self.version >= (7, 0):
            body["track_total_hits"] = True
        read, expected = 0, None
        if self.uses_pit:
            shared = self._shared[1] if self._shared and self._shared[0] == index else None
            pit = shared[0] if shared else self._open_pit(index, subject)
            body["sort"] = [{"_shard_doc": "asc"}]
            try:
                while True:
                    body["pit"] = {"id": pit, "keep_alive": keep}
                    answer, _ = self.http.request("POST", "/_search", body, params=STRICT, subject=subject)
                    pit = answer.get("pit_id", pit)
                    if shared:
                        shared[0] = pit
                    hits = answer["hits"]
                    if expected is None:
                        expected = total_hits(hits)
                        body["track_total_hits"] = False
                    page = hits["hits"]
                    read += len(page)
                    yield from page
                    if len(page) < body["size"]:
                        break
                    body["search_after"] = page[-1]["sort"]
                    body["size"] = _next_size(body["size"], answer)
            finally:
                if not shared:
                    self._quietly("DELETE", "/_pit", {"id": pit})
        else:
            body["sort"] = [*(sort or []), "_doc"]
            answer, _ = self.http.request(
                "POST", f"/{_path(index)}/_search", body, params={"scroll": keep, **STRICT}, subject=subject
            )
            scroll_id = answer.get("_scroll_id")
            expected = total_hits(answer["hits"])
            try:
                while page := answer["hits"]["hits"]:
                    read += len(page)
                    yield from page
                    scroll_id = answer.get("_scroll_id", scroll_id)
                    answer, _ = self.http.request(
                        "POST", "/_search/scroll", {"scroll": keep, "scroll_id": scroll_id}, subject=subject
                    )
            finally:
                if scroll_id:
                    self._quietly("DELETE", "/_search/scroll", {"scroll_id": [scroll_id]})
        total, exact = expected or (None, False)
        self._counted[table.name] = read
        if exact and total is not None and read != total:
            raise SourceError(
                f"datasource {self.name!r}, table {table.name!r}: read {read} of {total} documents of the "
                "snapshot; run again"
            )

    def _open_pit(self, index: str, subject: str = "") -> str:
        keep = str(self.option("keep_alive", "5m"))
        opened, _ = self.http.request(
            "POST", f"/{_path(index)}/_pit", params={"keep_alive": keep}, subject=subject
        )
        return str(opened["id"])

    @contextmanager
    def consistent_read(self, others: Sequence[Source] = (), table: str | None = None) -> Iterator[None]:
        """From 7.12, one point in time for the whole table: the partition list and
        every partition, on this connection and on `others`, read the same snapshot.
        Before 7.12 each scroll is its own snapshot."""
        if table is None or not self.uses_pit:
            yield
            return
        index = self._index(table)
        holder = [self._open_pit(index, f"table {table!r}")]
        members = [self, *(o for o in others if isinstance(o, ElasticsearchSource))]
        for member in members:
            member._shared = (index, holder)
        try:
            yield
        finally:
            for member in members:
                member._shared = None
            self._quietly("DELETE", "/_pit", {"id": holder[0]})

    def _quietly(self, method: str, path: str, body: Any) -> None:
        try:
            self.http.request(method, path, body)
        except SourceError as exc:  # the context expires by itself
            log.debug("releasing a search context failed: %s", exc)

    def _documents(
        self, table: TableSettings, fields: Sequence[Field], query: Any, sort: list[Any] | None = None
    ) -> Iterator[dict[str, Any]]:
        paths = ancestors_removed(f.path or f.name for f in fields)
        in_source = [p for p in paths if p != "_id"]
        for hit in self._hits(table, query, {"includes": in_source} if in_source else False, sort):
            doc = dict(hit.get("_source") or {})
            doc.setdefault("_id", hit.get("_id"))
            yield doc

    def partition_combo(
        self, doc: Mapping[str, Any], spec: list[tuple[Field, str | None]], epoch_millis: bool = False
    ) -> tuple[Any, ...]:
        """As documents.py computes them, but booleans, floats and dates as their lake text
        (the partition key's text either way): the ordered scan matches partitions by that
        text, and `_query` turns it back into a term of the field's declared type."""
        return tuple(
            v if v is None or (isinstance(v, (str, int)) and not isinstance(v, bool)) else render(v)
            for v in super().partition_combo(doc, spec, epoch_millis)
        )

    def partition_values(self, table: TableSettings, since: dt.datetime | None) -> Iterator[tuple[Any, ...]]:
        spec = self.partition_spec(table)
        docs = self._documents(table, [f for f, _g in spec], self._query(table, None, since))
        return iter(sort_combos({self.partition_combo(doc, spec, epoch_millis=True) for doc in docs}))

    def dump(
        self, table: TableSettings, columns: Sequence[str], where: PartitionFilter | None = None
    ) -> Iterator[str]:
        fields = self.fields_named(table, columns)
        rows = DocumentRows(fields, kind_of, epoch_millis=True, scalar_is_array=self.scalar_is_array)
        docs = self._documents(table, fields, self._query(table, where, None))

        def chunks() -> Iterator[str]:
            yield from encode_rows(rows.rows(docs))
            self.warn(rows.report(f"{self.name}.{table.name}"))

        return chunks()

    def scan_stats(self, table: TableSettings) -> ScanStats | None:
        """Before 7.12 (no point in time) a full load reads the table through one scroll,
        one search context and so one snapshot, cut into partitions as it streams (see
        `dump_keyed`); a scroll per partition would read each at another moment. From
        7.12 the partitions share the table's point in time: one query each."""
        if self.uses_pit or not table.partition_fields:
            return None
        # the estimate (for the debug log) is what listing the partitions counted
        return ScanStats(rows=self._counted.get(table.name, 0), indexed=False)

    def dump_keyed(self, table: TableSettings, columns: Sequence[str], ordered: bool) -> Iterator[str]:
        """The whole table through one scroll, each line starting with the document's
        partition values as `partition_values` computes them, so split_scan cuts the
        stream into objects: in index order (`_doc`, the cheapest scroll), or (`ordered`)
        sorted by the partition fields' values (a derived partition: by its timestamp)
        then `_doc`, so one object is open at a time."""
        spec = self.partition_spec(table)
        fields = self.fields_named(table, columns)
        sort = [{f.path or f.name: {"order": "asc", "missing": "_last"}} for f, _g in spec] if ordered else []
        docs = self._documents(table, [*fields, *(f for f, _g in spec)], {"match_all": {}}, sort)
        rows = DocumentRows(fields, kind_of, epoch_millis=True, scalar_is_array=self.scalar_is_array)
        combos: deque[tuple[Any, ...]] = deque()

        def tapped() -> Iterator[dict[str, Any]]:
            for doc in docs:
                combos.append(self.partition_combo(doc, spec, epoch_millis=True))
                yield doc

        def chunks() -> Iterator[str]:
            yield from encode_rows([*combos.popleft(), *row] for row in rows.rows(tapped()))
            self.warn(rows.report(f"{self.name}.{table.name}"))

        return chunks()

    def close(self) -> None:
        if self._http is not None:
            self._http.pool.clear()
            self._http = None


def _path(index: str) -> str:
    from urllib.parse import quote

    return quote(index, safe=",*")


def _term(value: Any) -> Any:
    if isinstance(value, dt.date) and not isinstance(value, dt.datetime):
        value = dt.datetime(value.year, value.month, value.day)
    if isinstance(value, dt.datetime):
        return value.isoformat(timespec="microseconds") + "Z"
    return value


def _typed(kind: str, value: Any) -> Any:
    """A partition value's text back as the declared type's term value."""
    if not isinstance(value, str):
        return value
    if kind == "timestamp":
        return parse_timestamp(value, epoch_millis=False) or value
    if kind == "bool" and value in ("true", "false"):
        return value == "true"
    if kind == "float":
        try:
            return float(value) if math.isfinite(float(value)) else value
        except ValueError:
            return value
    return value


def _day(value: Any) -> dt.date:
    return value if isinstance(value, dt.date) else dt.date.fromisoformat(str(value)[:10])


def _next_size(size: int, answer: Mapping[str, Any]) -> int:
    """Halve the page when documents are large, so one answer stays under PAGE_BYTES."""
    hits = answer["hits"]["hits"]
    approx = sum(len(str(h.get("_source", ""))) for h in hits[:10]) / max(1, min(10, len(hits))) * len(hits)
    return max(1, size // 2) if approx > PAGE_BYTES else size
