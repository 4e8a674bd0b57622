"""Connecting to MongoDB (a URI, or host/port and credentials) and turning pymongo's
errors into one line naming the thing and the fix; shared by the mongodb and
openedx_course_structures sources."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any

from panorama_kpi.errors import SourceError
from panorama_kpi.sources.base import SnapshotExpired
from panorama_kpi.sources.mongo_snapshot import SNAPSHOT_TOO_OLD

#: Connection keys; `uri` (a mongodb:// or mongodb+srv:// URI) replaces host/port/credentials.
CONNECTION_KEYS: dict[str, type] = {
    "uri": str,
    "host": str,
    "port": int,
    "username": str,
    "password": str,
    "database": str,
    "authSource": str,
    "tls": bool,
    "tlsCAFile": str,
    "tlsAllowInvalidCertificates": bool,
    "readPreference": str,
    "directConnection": bool,
    "timeout": int,
}


def connect(options: Mapping[str, Any], datasource: str) -> tuple[Any, str, str]:
    """(MongoClient, database name, host text for messages) from connection options."""
    import pymongo
    from pymongo.errors import ConfigurationError, InvalidURI

    timeout_ms = int(options.get("timeout") or 10) * 1000
    kwargs: dict[str, Any] = {
        "serverSelectionTimeoutMS": timeout_ms,
        "connectTimeoutMS": timeout_ms,
        "appname": "panorama-kpi",
        "datetime_conversion": "DATETIME_AUTO",
    }
    for key in CONNECTION_KEYS.keys() - {"uri", "host", "port", "database", "timeout"}:
        if options.get(key) not in (None, ""):
            kwargs[key] = options[key]
    uri = options.get("uri")
    try:
        if uri:
            parsed = pymongo.uri_parser.parse_uri(uri)
            where = ",".join(f"{h}:{p}" for h, p in parsed["nodelist"]) or "the URI's hosts"
            database = options.get("database") or parsed.get("database")
            client = pymongo.MongoClient(uri, **kwargs)
        else:
            host, port = options.get("host") or "127.0.0.1", int(options.get("port") or 27017)
            where = f"{host}:{port}"
            database = options.get("database")
            client = pymongo.MongoClient(host=host, port=port, **kwargs)
    except (ConfigurationError, InvalidURI, ValueError, TypeError) as exc:
        raise SourceError(f"datasource {datasource!r}: invalid MongoDB connection settings: {exc}") from None
    if not database:
        client.close()
        raise SourceError(
            f"datasource {datasource!r}: no database named; set 'database' (or put it in the uri)"
        )
    return client, str(database), where


def errors_module() -> Any:
    from pymongo import errors

    return errors


def server_version(db: Any) -> str:
    """The server's version (buildInfo), or "?" where the command is not allowed."""
    from pymongo.errors import OperationFailure

    try:
        return str(db.command("buildInfo").get("version", "?"))
    except OperationFailure:
        return "?"


@contextmanager
def translated(datasource: str, where: str, table: str | None = None) -> Iterator[None]:
    """pymongo errors -> one SourceError line naming the thing and the fix."""
    from bson.errors import InvalidBSON
    from pymongo import errors

    at = f"MongoDB at {where}"
    subject = f"datasource {datasource!r}" + (f", table {table!r}" if table else "")
    try:
        yield
    except errors.ServerSelectionTimeoutError as exc:
        if "CERTIFICATE_VERIFY_FAILED" in str(exc) or "hostname" in str(exc).lower():
            raise SourceError(
                f"{subject}: the TLS certificate of {at} was not accepted - set tlsCAFile to the CA that "
                "signed it (or tlsAllowInvalidCertificates: true)"
            ) from None
        raise SourceError(
            f"{subject}: cannot reach {at} - check host/port (or uri) and that the server is running"
        ) from None
    except errors.CursorNotFound:
        raise SnapshotExpired(
            f"{subject}: the cursor expired mid-read at {at} (the server times out idle cursors); run again"
        ) from None
    except errors.OperationFailure as exc:
        if exc.code == SNAPSHOT_TOO_OLD:
            raise SnapshotExpired(
                f"{subject}: the read outlived the snapshot history {at} keeps (SnapshotTooOld) - raise the "
                "server parameter minSnapshotHistoryWindowInSeconds (default 300) above the table's load time"
            ) from None
        if exc.code in (18, 13) or "auth" in str(exc).lower():
            raise SourceError(
                f"{subject}: {at} refused the credentials ({exc.details.get('errmsg') if exc.details else exc}) "
                "- check username, password and authSource"
            ) from None
        raise SourceError(f"{subject}: {at} answered: {str(exc).splitlines()[0]}") from None
    except (errors.PyMongoError, InvalidBSON) as exc:
        raise SourceError(f"{subject}: {at}: {type(exc).__name__}: {str(exc).splitlines()[0]}") from None
