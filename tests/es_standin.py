"""An Elasticsearch stand-in: an HTTP server on 127.0.0.1 answering the endpoints a
dump uses, in the shapes each server version documents. No Elasticsearch server
can be installed on these machines; this is written from Elastic's reference
pages (cited beside each behaviour), not from what our client sends.

Documents are held in memory per index as (id, _source). Scrolls and points in
time keep the list of documents as it was when they opened (a snapshot), so a
document indexed afterwards is not seen, as on a real cluster.
"""

from __future__ import annotations

import base64
import bisect
import datetime as dt
import fnmatch
import itertools
import json
import ssl
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit


@dataclass
class Index:
    mappings: dict[str, Any]  # the `properties` of the index's mapping
    docs: list[tuple[str, dict[str, Any]]] = field(default_factory=list)


class _Same:
    """index_of for a one-index snapshot: every position is in the same index."""

    def __init__(self, name: str) -> None:
        self.name = name

    def __getitem__(self, _pos: int) -> str:
        return self.name


class _Reordered:
    """A sequence seen in another order (a sorted search's view of its snapshot), built lazily."""

    def __init__(self, items: Any, positions: list[int]) -> None:
        self.items, self.positions = items, positions

    def __len__(self) -> int:
        return len(self.positions)

    def __getitem__(self, pos: int) -> Any:
        return self.items[self.positions[pos]]


class _Computed:
    """A sequence whose items a function computes from their position."""

    def __init__(self, fn: Any) -> None:
        self.fn = fn

    def __getitem__(self, pos: int) -> Any:
        return self.fn(pos)


class _Reverse:
    """Descending order of a sort key."""

    def __init__(self, value: Any) -> None:
        self.value = value

    def __lt__(self, other: _Reverse) -> bool:
        return bool(other.value < self.value)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, _Reverse) and other.value == self.value


class ESError(Exception):
    def __init__(self, status: int, body: Any, headers: dict[str, str] | None = None) -> None:
        self.status, self.body, self.headers = status, body, headers or {}


def error(status: int, type_: str, reason: str, **extra: Any) -> ESError:
    # Error body shape: {"error": {"root_cause": [...], "type", "reason", ...}, "status"}
    # https://www.elastic.co/guide/en/elasticsearch/reference/current/common-options.html#common-options-error-options
    cause = {"type": type_, "reason": reason, **extra}
    return ESError(status, {"error": {"root_cause": [cause], **cause}, "status": status})


def _lookup(doc: Any, parts: list[str]) -> list[Any]:
    """Values at a dotted path, as the field's doc values see them (arrays flattened)."""
    if isinstance(doc, list):
        return [v for item in doc for v in _lookup(item, parts)]
    if not parts:
        return [v for v in (doc if isinstance(doc, list) else [doc]) if v is not None]
    if not isinstance(doc, dict):
        return []
    out: list[Any] = []
    for i in range(1, len(parts) + 1):
        key = ".".join(parts[:i])
        if key in doc:
            out += _lookup(doc[key], parts[i:])
    return out


def _instant(value: Any) -> dt.datetime | None:
    if value is None or isinstance(value, bool):
        return None
    if isinstance(value, (int, float)):
        return dt.datetime(1970, 1, 1, tzinfo=dt.UTC) + dt.timedelta(milliseconds=value)
    try:
        parsed = dt.datetime.fromisoformat(str(value).replace("z", "Z"))
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=dt.UTC)


class Cluster:
    """State of one stand-in cluster."""

    def __init__(self, version: str, users: dict[str, str] | None = None, api_keys: set[str] | None = None):
        self.version = version
        self.major, self.minor = (int(x) for x in version.split(".")[:2])
        self.users = users or {}
        self.api_keys = api_keys or set()
        self.indices: dict[str, Index] = {}
        self.aliases: dict[str, list[str]] = {}
        self.contexts: dict[str, tuple[list[tuple[str, dict[str, Any]]], dict[str, Any]]] = {}
        self.ids = itertools.count(1)
        self.expire_next = 0  # that many next page requests find their context gone
        self.lose_hits = 0  # a faulty node: the first page of a search misses that many hits
        self.requests: list[tuple[str, str]] = []
        self.bodies: list[bytes] = []  # bodies of search requests, for tests of paging
        self.search_params: list[dict[str, str]] = []
        self.lock = threading.Lock()
        #: Called with (method, path, body) after each answer is computed: a test's way to
        #: change the index while a read is under way.
        self.after: Any = None

    # ------------------------------------------------------------ helpers
    def resolve(self, expr: str) -> list[str]:
        names: list[str] = []
        for part in unquote(expr).split(","):
            if "*" in part:
                names += [n for n in sorted(self.indices) if fnmatch.fnmatchcase(n, part)]
            elif part in self.aliases:
                names += self.aliases[part]
            elif part in self.indices:
                names.append(part)
            else:
                # https://www.elastic.co/guide/en/elasticsearch/reference/7.17/indices-get-index.html
                # (404 index_not_found_exception naming the index)
                raise error(
                    404,
                    "index_not_found_exception",
                    f"no such index [{part}]",
                    **{
                        "resource.type": "index_or_alias",
                        "resource.id": part,
                        "index_uuid": "_na_",
                        "index": part,
                    },
                )
        return names

    def field_type(self, names: list[str], path: str) -> str | None:
        for n in names:
            props: Any = self.indices[n].mappings
            spec: Any = None
            for part in path.split("."):
                spec = (props or {}).get(part)
                props = (spec or {}).get("properties")
            if spec:
                return spec.get("type", "object")
        return None

    def matches(self, names: list[str], query: dict[str, Any], doc_id: str, source: dict[str, Any]) -> bool:
        # Query DSL subset: match_all, bool.filter/must_not, term, ids, range, exists
        # https://www.elastic.co/guide/en/elasticsearch/reference/7.17/query-dsl.html
        (kind, spec), *_ = query.items()
        if kind == "match_all":
            return True
        if kind == "bool":
            filters = spec.get("filter", [])
            filters = filters if isinstance(filters, list) else [filters]
            nots = spec.get("must_not", [])
            nots = nots if isinstance(nots, list) else [nots]
            return all(self.matches(names, q, doc_id, source) for q in filters) and not any(
                self.matches(names, q, doc_id, source) for q in nots
            )
        if kind == "ids":
            return doc_id in spec["values"]
        if kind == "exists":
            return bool(_lookup(source, spec["field"].split(".")))
        if kind == "term":
            (path, wanted), *_ = spec.items()
            wanted = wanted.get("value") if isinstance(wanted, dict) else wanted
            values = _lookup(source, path.split("."))
            if self.field_type(names, path) in ("date", "date_nanos"):
                return _instant(wanted) in {_instant(v) for v in values}
            return wanted in values
        if kind == "range":
            (path, bounds), *_ = spec.items()
            low, high = _instant(bounds.get("gte")), _instant(bounds.get("lt"))
            return any(
                (i := _instant(v)) is not None and (low is None or i >= low) and (high is None or i < high)
                for v in _lookup(source, path.split("."))
            )
        raise error(400, "parsing_exception", f"unknown query [{kind}]")

    def page(
        self, snapshot: list[tuple[str, dict[str, Any]]], ctx: dict[str, Any], start: int, size: int
    ) -> list[Any]:
        hits = []
        includes = ctx["source"]
        for pos in range(start, min(start + size, len(snapshot))):
            doc_id, source = snapshot[pos]
            hit: dict[str, Any] = {"_index": ctx["index_of"][pos], "_id": doc_id, "_score": None}
            if self.major < 7:
                hit["_type"] = "_doc"
            if includes is not False:
                hit["_source"] = _filter_source(source, includes)
            if ctx.get("keys") is not None:
                hit["sort"] = ctx["keys"][pos]
            hits.append(hit)
        return hits

    def sort_order(
        self, names: list[str], snapshot: list[tuple[str, dict[str, Any]]], sort: list[Any]
    ) -> tuple[list[int], Any]:
        """The positions of the documents in the order a sorted search returns them, and
        a function giving a document's sort values (what each hit shows as `sort`).

        Sort on field values: ascending by default; a field with several values sorts
        by its lowest one (mode `min`) ascending; documents without a value go last
        (`missing: _last`); `_doc` is index order. Keywords compare as UTF-8 bytes,
        numbers and dates by value. A field missing from the mapping is an error, and so
        is a `text` field (no doc values, fielddata disabled).
        https://www.elastic.co/guide/en/elasticsearch/reference/7.17/sort-search-results.html
        https://www.elastic.co/guide/en/elasticsearch/reference/7.17/text.html#fielddata-mapping-param
        """
        specs: list[tuple[str, str, str]] = []
        for item in sort:
            path, opts = (item, {}) if isinstance(item, str) else next(iter(item.items()))
            opts = {"order": opts} if isinstance(opts, str) else opts
            order, missing = opts.get("order", "asc"), opts.get("missing", "_last")
            if path != "_doc":
                kind = self.field_type(names, path)
                if kind is None:
                    raise error(
                        400, "query_shard_exception", f"No mapping found for [{path}] in order to sort on"
                    )
                if kind == "text":
                    raise error(
                        400,
                        "illegal_argument_exception",
                        "Text fields are not optimised for operations that require per-document field data "
                        "like aggregations and sorting, so these operations are disabled by default. Please "
                        f"use a keyword field instead. Alternatively, set fielddata=true on [{path}] in order "
                        "to load field data by uninverting the inverted index.",
                    )
            specs.append((path, order, missing))

        def value(pos: int, path: str) -> Any:
            kind = self.field_type(names, path)
            found = _lookup(snapshot[pos][1], path.split("."))
            if kind in ("date", "date_nanos"):
                stamps = [i for v in found if (i := _instant(v)) is not None]
                return int(min(stamps).timestamp() * 1000) if stamps else None
            if kind == "keyword":
                texts = [str(v).encode() for v in found]
                return min(texts) if texts else None
            numbers = [v for v in found if isinstance(v, (int, float)) and not isinstance(v, bool)]
            if kind == "boolean":
                numbers = [int(v in (True, "true")) for v in found]
            return min(numbers) if numbers else None

        def key(pos: int) -> tuple[Any, ...]:
            out: list[Any] = []
            for path, order, missing in specs:
                if path == "_doc":
                    out.append((0, pos if order == "asc" else -pos))
                    continue
                v = value(pos, path)
                last = missing == "_last"
                if v is None:
                    out.append((1 if last else -1, 0))
                elif order == "asc":
                    out.append((0, v))
                else:
                    out.append((0, _Reverse(v)))
            return tuple(out)

        def shown(pos: int) -> list[Any]:
            return [
                pos
                if p == "_doc"
                else (None if (v := value(pos, p)) is None else (v.decode() if isinstance(v, bytes) else v))
                for p, _o, _m in specs
            ]

        return sorted(range(len(snapshot)), key=key), shown

    def total(self, n: int, track: Any) -> Any:
        # hits.total: a number in 6.x; {"value", "relation"} from 7.0, exact only up to
        # 10,000 unless track_total_hits is true; absent when track_total_hits is false.
        # https://www.elastic.co/guide/en/elasticsearch/reference/7.17/breaking-changes-7.0.html#hits-total-now-object-search-response
        # https://www.elastic.co/guide/en/elasticsearch/reference/7.17/search-your-data.html#track-total-hits
        if self.major < 7:
            return n
        if track is False:
            return None
        if track is True or n <= 10000:
            return {"value": n, "relation": "eq"}
        return {"value": 10000, "relation": "gte"}


def _filter_source(source: dict[str, Any], includes: Any) -> dict[str, Any]:
    # _source filtering keeps the listed paths (and objects under them)
    # https://www.elastic.co/guide/en/elasticsearch/reference/7.17/search-fields.html#source-filtering
    if includes is True or includes is None:
        return source
    paths = includes["includes"] if isinstance(includes, dict) else includes
    if set(source) <= set(paths):  # every field asked for whole
        return source
    out: dict[str, Any] = {}
    for key, value in source.items():
        if any(key == p or p.startswith(key + ".") for p in paths):
            if any(key == p for p in paths):
                out[key] = value
            elif isinstance(value, dict):
                sub = _filter_source(value, [p[len(key) + 1 :] for p in paths if p.startswith(key + ".")])
                if sub:
                    out[key] = sub
            elif isinstance(value, list):
                subs = [
                    _filter_source(v, [p[len(key) + 1 :] for p in paths if p.startswith(key + ".")])
                    for v in value
                    if isinstance(v, dict)
                ]
                out[key] = [s for s in subs if s]
        elif any(fnmatch.fnmatchcase(key, p) for p in paths):
            out[key] = value
    return out


class Handler(BaseHTTPRequestHandler):
    cluster: Cluster
    protocol_version = "HTTP/1.1"

    def log_message(self, *args: Any) -> None:
        pass

    def do_GET(self) -> None:
        self.handle_any("GET")

    def do_POST(self) -> None:
        self.handle_any("POST")

    def do_DELETE(self) -> None:
        self.handle_any("DELETE")

    def handle_any(self, method: str) -> None:
        c = self.cluster
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        url = urlsplit(self.path)
        params = {k: v[-1] for k, v in parse_qs(url.query).items()}
        c.requests.append((method, url.path))
        if url.path.endswith("_search") and raw:
            c.bodies.append(raw)
            c.search_params.append(params)
        headers: dict[str, str] = {}
        if (c.major, c.minor) >= (7, 14):
            # From 7.14 every answer carries X-Elastic-Product: Elasticsearch (clients check it)
            # https://www.elastic.co/guide/en/elasticsearch/reference/7.14/release-notes-7.14.0.html
            headers["X-Elastic-Product"] = "Elasticsearch"
        try:
            self.check_media_types(raw)
            self.authenticate()
            self.check_params(url.path, params)
            body = json.loads(raw) if raw else None
            with c.lock:
                status, answer = self.route(method, url.path, params, body)
                if c.after is not None:
                    c.after(method, url.path, body)
        except ESError as exc:
            status, answer = exc.status, exc.body
            headers.update(exc.headers)
        data = json.dumps(answer).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json; charset=UTF-8")
        self.send_header("Content-Length", str(len(data)))
        for k, v in headers.items():
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(data)

    def check_media_types(self, raw: bytes) -> None:
        c = self.cluster
        ctype = self.headers.get("Content-Type") or ""
        accept = self.headers.get("Accept") or ""
        if c.major < 7 or (c.major, c.minor) < (7, 11):
            # Before REST API compatibility (7.11) a body's Content-Type must be one of the
            # plain types: anything else is refused with 406 and a string error.
            # https://www.elastic.co/blog/strict-content-type-checking-for-elasticsearch-rest-requests
            base = ctype.split(";")[0].strip().lower()
            if raw and base not in (
                "application/json",
                "application/x-ndjson",
                "application/smile",
                "application/yaml",
                "application/cbor",
                "text/plain",
            ):
                raise ESError(
                    406, {"error": f"Content-Type header [{ctype}] is not supported", "status": 406}
                )
            return
        # From 7.11 (compatible-with=7) and in 8.x (compatible-with=7 or 8) the vendor media
        # type names the REST API version; any other version is a 400.
        # https://www.elastic.co/guide/en/elasticsearch/reference/8.13/rest-api-compatibility.html
        allowed = {str(c.major), str(c.major - 1)} if c.major >= 8 else {"7"}
        for value in (ctype, accept):
            if "compatible-with=" in value:
                version = value.split("compatible-with=")[1].split(";")[0].strip()
                if version not in allowed:
                    raise error(
                        400,
                        "media_type_header_exception",
                        "Invalid media-type value on headers [Accept, Content-Type]",
                    )

    def check_params(self, path: str, params: dict[str, str]) -> None:
        # Unknown query parameters are refused (400 illegal_argument_exception).
        # https://www.elastic.co/guide/en/elasticsearch/reference/7.17/search-search.html#search-search-api-query-params
        # https://www.elastic.co/guide/en/elasticsearch/reference/7.17/point-in-time-api.html
        # https://www.elastic.co/guide/en/elasticsearch/reference/7.17/cat.html#common-parameters
        known = {"pretty", "error_trace", "filter_path"}
        if path.endswith("/_search"):
            known |= {"scroll", "allow_partial_search_results", "track_total_hits", "size"}
        elif path.endswith("/_pit"):
            known |= {"keep_alive"}
        elif path.startswith("/_cat/"):
            known |= {"format", "h", "expand_wildcards", "s", "v"}
        unknown = sorted(set(params) - known)
        if unknown:
            raise error(
                400,
                "illegal_argument_exception",
                f"request [{path}] contains unrecognized parameter: [{unknown[0]}]",
            )

    def authenticate(self) -> None:
        # Security: a missing or wrong Authorization header is a 401 security_exception
        # with a WWW-Authenticate challenge.
        # https://www.elastic.co/guide/en/elasticsearch/reference/7.17/security-api-authenticate.html
        c = self.cluster
        if not c.users and not c.api_keys:
            return
        auth = self.headers.get("Authorization") or ""
        scheme, _, token = auth.partition(" ")
        if scheme == "Basic":
            user, _, password = base64.b64decode(token).decode().partition(":")
            if c.users.get(user) == password:
                return
            reason = f"unable to authenticate user [{user}] for REST request [{self.path}]"
        elif scheme == "ApiKey" and token in c.api_keys:
            return
        else:
            reason = f"missing authentication credentials for REST request [{self.path}]"
        exc = error(401, "security_exception", reason)
        exc.headers["WWW-Authenticate"] = 'Basic realm="security" charset="UTF-8", ApiKey'
        raise exc

    def route(self, method: str, path: str, params: dict[str, str], body: Any) -> tuple[int, Any]:
        c = self.cluster
        parts = [p for p in path.split("/") if p]
        if method == "GET" and not parts:
            return 200, self.info()
        if parts == ["_cat", "indices"]:
            # https://www.elastic.co/guide/en/elasticsearch/reference/7.17/cat-indices.html
            return 200, [{"index": n} for n in c.indices]
        if len(parts) == 2 and parts[1] == "_mapping":
            names = c.resolve(parts[0])
            # 6.x answers typed mappings ({"mappings": {"_doc": {"properties"}}}); 7.0 removed types.
            # https://www.elastic.co/guide/en/elasticsearch/reference/6.8/indices-get-mapping.html
            # https://www.elastic.co/guide/en/elasticsearch/reference/7.17/removal-of-types.html
            out = {}
            for n in names:
                props = {"properties": c.indices[n].mappings}
                out[n] = {"mappings": {"_doc": props} if c.major < 7 else props}
            return 200, out
        if len(parts) == 2 and parts[1] == "_pit" and method == "POST":
            # Point in time: 7.10+.
            # https://www.elastic.co/guide/en/elasticsearch/reference/7.17/point-in-time-api.html
            if (c.major, c.minor) < (7, 10):
                raise error(
                    400, "illegal_argument_exception", "request [/_pit] contains unrecognized parameter"
                )
            names = c.resolve(parts[0])
            pit = base64.b64encode(f"pit-{next(c.ids)}".encode()).decode()
            snapshot, index_of = self.snapshot(names)
            c.contexts[pit] = (snapshot, {"index_of": index_of, "names": names})
            return 200, {"id": pit}
        if parts == ["_pit"] and method == "DELETE":
            found = c.contexts.pop(body["id"], None)
            return (200 if found else 404), {"succeeded": bool(found), "num_freed": int(bool(found))}
        if parts[-1:] == ["_search"] and len(parts) <= 2:
            return 200, self.search(parts[0] if len(parts) == 2 else None, params, body or {})
        if parts == ["_search", "scroll"] and method == "POST":
            return 200, self.scroll(body)
        if parts == ["_search", "scroll"] and method == "DELETE":
            # https://www.elastic.co/guide/en/elasticsearch/reference/7.17/clear-scroll-api.html
            freed = sum(c.contexts.pop(i, None) is not None for i in body["scroll_id"])
            return 200, {"succeeded": True, "num_freed": freed}
        raise error(
            400, "illegal_argument_exception", f"no handler found for uri [{path}] and method [{method}]"
        )

    def info(self) -> dict[str, Any]:
        # https://www.elastic.co/guide/en/elasticsearch/reference/7.17/index.html (root endpoint)
        c = self.cluster
        version: dict[str, Any] = {"number": c.version, "build_type": "tar", "lucene_version": "9.10.0"}
        if c.major >= 8:
            version["build_flavor"] = "default"
        return {
            "name": "node-1",
            "cluster_name": "standin",
            "version": version,
            "tagline": "You Know, for Search",
        }

    def snapshot(self, names: list[str]) -> tuple[Any, Any]:
        """The documents as they are now (references, not copies), and the index of each."""
        if len(names) == 1:
            return self.cluster.indices[names[0]].docs[:], _Same(names[0])
        docs, index_of = [], []
        for n in names:
            for d in self.cluster.indices[n].docs:
                docs.append(d)
                index_of.append(n)
        return docs, index_of

    def expired(self, id_: str) -> ESError:
        # An expired scroll or point in time: 404, root cause search_context_missing_exception.
        # https://www.elastic.co/guide/en/elasticsearch/reference/7.17/paginate-search-results.html#scroll-search-results
        return ESError(
            404,
            {
                "error": {
                    "root_cause": [
                        {
                            "type": "search_context_missing_exception",
                            "reason": f"No search context found for id [{id_}]",
                        }
                    ],
                    "type": "search_phase_execution_exception",
                    "reason": "all shards failed",
                    "phase": "query",
                    "grouped": True,
                },
                "status": 404,
            },
        )

    def search(self, index: str | None, params: dict[str, str], body: dict[str, Any]) -> dict[str, Any]:
        c = self.cluster
        allowed = {"size", "query", "_source", "sort", "track_total_hits", "search_after"}
        if (c.major, c.minor) >= (7, 10):
            allowed.add("pit")
        for key in body:
            if key not in allowed:
                # https://www.elastic.co/guide/en/elasticsearch/reference/6.8/search-request-body.html
                raise error(400, "parsing_exception", f"Unknown key for a START_OBJECT in [{key}].")
        size = int(body.get("size", 10))
        sort = body.get("sort") or []
        if any(s == {"_shard_doc": "asc"} or s == "_shard_doc" for s in sort) and (c.major, c.minor) < (
            7,
            12,
        ):
            # _shard_doc is the implicit tiebreaker of a point in time from 7.12
            # https://www.elastic.co/guide/en/elasticsearch/reference/7.17/paginate-search-results.html#search-after
            raise error(400, "query_shard_exception", "No mapping found for [_shard_doc] in order to sort on")
        if "pit" in body:
            if index is not None:
                raise error(
                    400,
                    "action_request_validation_exception",
                    "Validation Failed: 1: [indices] cannot be used with point in time;",
                )
            pit = body["pit"]["id"]
            if c.expire_next and body.get("search_after"):
                c.expire_next -= 1
                c.contexts.pop(pit, None)
            if pit not in c.contexts:
                raise self.expired(pit)
            snapshot, ctx = c.contexts[pit]
            matching = self.matching(ctx, snapshot, body.get("query", {"match_all": {}}))
            after = body.get("search_after")
            start = 0 if after is None else bisect.bisect_right(matching, after[0])
            chosen = matching[start : start + size]
            view = [snapshot[i] for i in chosen]
            page_ctx = dict(ctx, source=body.get("_source"), index_of=[ctx["index_of"][i] for i in chosen])
            hits = c.page(view, page_ctx, 0, size)
            for h, i in zip(hits, chosen, strict=True):
                h["sort"] = [i]  # the _shard_doc value: shard and Lucene doc id packed in a long
            if c.lose_hits and after is None:
                hits, c.lose_hits = hits[c.lose_hits :], 0
            out: dict[str, Any] = {
                "pit_id": pit,
                "took": 1,
                "timed_out": False,
                "hits": {"max_score": None, "hits": hits},
            }
            total = c.total(len(matching), body.get("track_total_hits"))
            if total is not None:
                out["hits"]["total"] = total
            return out
        names = c.resolve(index or "*")
        snapshot, index_of = self.snapshot(names)
        query = body.get("query", {"match_all": {}})
        if query != {"match_all": {}}:
            keep = [i for i, (d, s) in enumerate(snapshot) if c.matches(names, query, d, s)]
            snapshot, index_of = [snapshot[i] for i in keep], [index_of[i] for i in keep]
        keys = None
        if any(s not in ("_doc", {"_doc": "asc"}) for s in sort):
            positions, shown = c.sort_order(names, snapshot, sort)
            snapshot, index_of = _Reordered(snapshot, positions), _Reordered(index_of, positions)
            keys = _Reordered(_Computed(shown), positions)
        ctx = {"index_of": index_of, "source": body.get("_source"), "size": size, "pos": 0, "keys": keys}
        out = {"took": 1, "timed_out": False, "hits": {"max_score": None, "hits": []}}
        total = c.total(len(snapshot), body.get("track_total_hits"))
        if total is not None:
            out["hits"]["total"] = total
        if "scroll" in params:
            # https://www.elastic.co/guide/en/elasticsearch/reference/7.17/paginate-search-results.html#scroll-search-results
            scroll_id = base64.b64encode(f"scroll-{next(c.ids)}".encode()).decode()
            c.contexts[scroll_id] = (snapshot, ctx)
            out["_scroll_id"] = scroll_id
        out["hits"]["hits"] = c.page(snapshot, ctx, 0, size)
        if c.lose_hits:
            out["hits"]["hits"], c.lose_hits = out["hits"]["hits"][c.lose_hits :], 0
        ctx["pos"] = size
        return out

    def matching(self, ctx: dict[str, Any], snapshot: Any, query: dict[str, Any]) -> Any:
        """Positions of the snapshot's documents matching a query (kept per context)."""
        key = json.dumps(query, sort_keys=True)
        cache = ctx.setdefault("matching", {})
        if key not in cache:
            if query == {"match_all": {}}:
                cache[key] = range(len(snapshot))
            else:
                names = ctx["names"]
                cache[key] = [
                    i for i, (d, s) in enumerate(snapshot) if self.cluster.matches(names, query, d, s)
                ]
        return cache[key]

    def scroll(self, body: dict[str, Any]) -> dict[str, Any]:
        c = self.cluster
        scroll_id = body["scroll_id"]
        if c.expire_next:
            c.expire_next -= 1
            c.contexts.pop(scroll_id, None)
        if scroll_id not in c.contexts:
            raise self.expired(scroll_id)
        snapshot, ctx = c.contexts[scroll_id]
        hits = c.page(snapshot, ctx, ctx["pos"], ctx["size"])
        ctx["pos"] += ctx["size"]
        total = c.total(len(snapshot), True)
        return {
            "_scroll_id": scroll_id,
            "took": 1,
            "timed_out": False,
            "hits": {"total": total, "max_score": None, "hits": hits},
        }


class ESStandin:
    """Start with `with ESStandin(Cluster("8.13.4")) as es:`; `es.url` is its address."""

    def __init__(self, cluster: Cluster, certfile: str | None = None, keyfile: str | None = None) -> None:
        self.cluster = cluster
        handler = type("BoundHandler", (Handler,), {"cluster": cluster})
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self.server.daemon_threads = True
        scheme = "http"
        if certfile:  # HTTPS, as xpack.security.http.ssl serves it
            context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            context.load_cert_chain(certfile, keyfile)
            self.server.socket = context.wrap_socket(self.server.socket, server_side=True)
            scheme = "https"
        self.url = f"{scheme}://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> ESStandin:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()
