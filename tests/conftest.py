"""Shared fixtures: throwaway MariaDB and PostgreSQL servers (see tests/servers.py).

The servers start lazily, once per session, the first time a test asks for
``mysql_server`` / ``pg_server`` (or a connection fixture built on them), and
are stopped and removed when the session ends. If the server binaries are
missing the tests FAIL rather than skip: run ``make test``, which installs them.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.aws import moto_endpoint  # noqa: F401 - the moto server fixture, for every test module
from tests.servers import DBServer, ServerError, start_mariadb, start_postgres


def _start(
    what: str, starter: Callable[[Path], DBServer], tmp_path_factory: pytest.TempPathFactory
) -> DBServer:
    try:
        return starter(tmp_path_factory.mktemp(what))
    except ServerError as exc:
        message = f"Cannot start a throwaway {what} server for the tests: {exc}"
    # Fail, never skip: a skipped database test hides missing work. `make test` installs the servers.
    pytest.fail(message, pytrace=False)


@pytest.fixture(scope="session")
def mysql_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DBServer]:
    """A MariaDB server on 127.0.0.1 with database ``panorama_test`` and user ``panorama``."""
    server = _start("mariadb", start_mariadb, tmp_path_factory)
    yield server
    server.stop(cleanup=True)


@pytest.fixture(scope="session")
def pg_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DBServer]:
    """A PostgreSQL server on 127.0.0.1 with database ``panorama_test`` owned by role ``panorama``."""
    server = _start("postgres", start_postgres, tmp_path_factory)
    yield server
    server.stop(cleanup=True)


@pytest.fixture
def mysql_conn(mysql_server: DBServer) -> Iterator[Any]:
    """An autocommit pymysql connection (utf8mb4) to ``panorama_test`` as ``panorama``."""
    conn = mysql_server.connect()
    yield conn
    conn.close()


@pytest.fixture
def pg_conn(pg_server: DBServer) -> Iterator[Any]:
    """An autocommit psycopg2 connection to ``panorama_test`` as ``panorama``."""
    conn = pg_server.connect()
    yield conn
    conn.close()


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Mark tests by the servers they use, so `-m "not mysql"` etc. select them."""
    for item in items:
        names = getattr(item, "fixturenames", ())
        if "mysql_server" in names:
            item.add_marker(pytest.mark.mysql)
        if "pg_server" in names:
            item.add_marker(pytest.mark.postgres)
        if "moto_endpoint" in names:
            item.add_marker(pytest.mark.aws)
