"""Talking to Elasticsearch 6.8, 7.x and 8.x over plain HTTP (urllib3).

Why not the official client: each major of `elasticsearch-py` speaks to one
server major. The 9.x client sends `compatible-with=9`, which an 8.x server
refuses (400 media_type_header_exception); an 8.x client refuses a 6.8 server
(no X-Elastic-Product header) and 6.8 refuses its media type (406); and one
environment can hold one major only. Plain `application/json` is accepted by
every server version, and the few endpoints a dump needs (info, _cat/indices,
_mapping, _search with scroll or point in time) have stable JSON shapes.
"""

from __future__ import annotations

import base64
import json
import re
from collections.abc import Mapping, Sequence
from typing import Any
from urllib.parse import urlencode, urlsplit, urlunsplit

from panorama_kpi.errors import SourceError
from panorama_kpi.sources.base import SnapshotExpired

#: Error types meaning a scroll or point in time expired (or its node went away).
EXPIRED = {"search_context_missing_exception", "search_phase_execution_exception"}


class ESRequestError(SourceError):
    """An error answer; `type` is Elasticsearch's error type (e.g. index_not_found_exception)."""

    def __init__(self, message: str, status: int, type_: str) -> None:
        super().__init__(message)
        self.status = status
        self.type = type_


def _strip_userinfo(url: str) -> tuple[str, str | None, str | None]:
    parts = urlsplit(url if "://" in url else f"http://{url}")
    netloc = parts.hostname or ""
    if parts.port:
        netloc += f":{parts.port}"
    clean = urlunsplit((parts.scheme, netloc, parts.path.rstrip("/"), "", ""))
    return clean, parts.username, parts.password


class ESHttp:
    """One datasource's HTTP connection pool; tries each host in turn."""

    def __init__(self, options: Mapping[str, Any], datasource: str) -> None:
        import urllib3

        self.datasource = datasource
        raw_hosts = options.get("hosts") or [options.get("host") or "http://127.0.0.1:9200"]
        if isinstance(raw_hosts, str):
            raw_hosts = [h.strip() for h in raw_hosts.split(",") if h.strip()]
        self.hosts: list[str] = []
        user, password = options.get("username"), options.get("password")
        for h in raw_hosts:
            clean, u, p = _strip_userinfo(str(h))
            self.hosts.append(clean)
            user, password = user or u, password or p
        self.headers = {"Accept": "application/json", "User-Agent": "panorama-kpi"}
        api_key = options.get("api_key")
        if api_key:
            key = str(api_key)
            if ":" in key:  # "id:secret" as shown by the create-API-key answer
                key = base64.b64encode(key.encode()).decode("ascii")
            self.headers["Authorization"] = f"ApiKey {key}"
        elif user:
            token = base64.b64encode(f"{user}:{password or ''}".encode()).decode("ascii")
            self.headers["Authorization"] = f"Basic {token}"
        verify = options.get("verify_certs")
        tls: dict[str, Any] = {}
        if verify is False:
            tls["cert_reqs"] = "CERT_NONE"
            urllib3.disable_warnings(urllib3.exceptions.InsecureRequestWarning)
        else:
            tls["cert_reqs"] = "CERT_REQUIRED"
            if options.get("ca_certs"):
                tls["ca_certs"] = options["ca_certs"]
        timeout = float(options.get("timeout") or 60)
        self.pool = urllib3.PoolManager(
            num_pools=4,
            retries=False,
            timeout=urllib3.Timeout(connect=min(timeout, 10.0), read=timeout),
            **tls,
        )
        self.current = 0

    @property
    def where(self) -> str:
        return self.hosts[self.current]

    def request(
        self,
        method: str,
        path: str,
        body: Any = None,
        params: Mapping[str, Any] | None = None,
        subject: str = "",
    ) -> tuple[Any, Mapping[str, str]]:
        """JSON answer and headers; errors become one line naming host and fix."""
        import urllib3

        data = None if body is None else json.dumps(body, separators=(",", ":"), default=str).encode()
        headers = dict(self.headers)
        if data is not None:
            headers["Content-Type"] = "application/json"
        query = f"?{urlencode(params)}" if params else ""
        last: Exception | None = None
        for attempt in range(len(self.hosts)):
            index = (self.current + attempt) % len(self.hosts)
            url = self.hosts[index] + path + query
            try:
                resp = self.pool.request(method, url, body=data, headers=headers)
            except urllib3.exceptions.SSLError as exc:
                found = re.search(
                    r"(certificate verify failed[^(']*|wrong version number|[A-Z_]{6,})", str(exc)
                )
                reason = found.group(1).strip() if found else type(exc).__name__
                raise SourceError(
                    f"{self._subject(subject)}: TLS certificate of {self.hosts[index]} not accepted ({reason}) "
                    "- set 'ca_certs' to the CA that signed it (or verify_certs: false)"
                ) from None
            except urllib3.exceptions.HTTPError as exc:
                last = exc
                continue
            self.current = index
            return self._answer(resp, subject), resp.headers
        reason = str(getattr(last, "reason", None) or last).split(": ")[-1]
        if isinstance(last, urllib3.exceptions.ProtocolError) and last.args:
            reason = str(last.args[0])
        raise SourceError(
            f"{self._subject(subject)}: cannot reach Elasticsearch at {', '.join(self.hosts)} ({reason}) "
            "- check 'hosts' and that the server is running"
        )

    def _subject(self, subject: str) -> str:
        return f"datasource {self.datasource!r}" + (f", {subject}" if subject else "")

    def _answer(self, resp: Any, subject: str) -> Any:
        text = resp.data.decode("utf-8", "replace")
        try:
            payload = json.loads(text) if text else {}
        except ValueError:
            payload = None
        if resp.status < 400 and payload is not None:
            return payload
        error = payload.get("error") if isinstance(payload, dict) else None
        if isinstance(error, dict):
            type_, reason = str(error.get("type", "")), str(error.get("reason", ""))
            root = error.get("root_cause") or []
            if not reason and root:
                reason = str(root[0].get("reason", ""))
        else:
            type_, reason = "", str(error or text or resp.reason)[:200]
        where = f"Elasticsearch at {self.where}"
        head = self._subject(subject)
        if resp.status == 401:
            message = (
                f"{head}: {where} refused the credentials ({type_}) - check username/password or api_key"
            )
        elif resp.status == 403:
            message = f"{head}: {where} denied access ({reason}) - grant the user read and view_index_metadata on the index"
        elif type_ == "index_not_found_exception":
            index = error.get("index") if isinstance(error, dict) else None
            message = f"{head}: index {index!r} not found at {where} - run set-tables or fix 'index'"
        elif type_ in EXPIRED and "No search context" in (reason + json.dumps(error)):
            message = f"{head}: the scroll or point in time expired mid-read at {where}; raise 'keep_alive'"
        else:
            message = f"{head}: {where} answered {resp.status} {type_ or ''}: {reason}".replace("  ", " ")
        if message.endswith("raise 'keep_alive'"):
            raise SnapshotExpired(message)
        raise ESRequestError(message.replace("\n", " "), resp.status, type_)


def total_hits(hits: Mapping[str, Any]) -> tuple[int | None, bool]:
    """(hits.total, whether exact): a number before 7.0, {value, relation} since."""
    total = hits.get("total")
    if isinstance(total, dict):
        return int(total.get("value", 0)), total.get("relation", "eq") == "eq"
    if isinstance(total, int):
        return total, True
    return None, False


def flatten_mapping(properties: Mapping[str, Any], prefix: str = "") -> list[tuple[str, str]]:
    """(dotted path, type) of every field in a mapping's `properties`, objects
    flattened; a `nested` field stays whole (its value is an array of objects)."""
    out: list[tuple[str, str]] = []
    for name, spec in properties.items():
        path = f"{prefix}{name}"
        kind = spec.get("type")
        if kind == "alias":  # not in _source
            continue
        if "properties" in spec and kind in (None, "object"):
            out += flatten_mapping(spec["properties"], path + ".")
        else:
            out.append((path, str(kind or "object")))
    return out


def index_properties(mappings: Mapping[str, Any]) -> Sequence[Mapping[str, Any]]:
    """The `properties` of one index's mappings: typeless (7.0+) or one per mapping type (6.x)."""
    if "properties" in mappings or not mappings:
        return [mappings.get("properties") or {}]
    return [m.get("properties") or {} for m in mappings.values() if isinstance(m, dict)]
