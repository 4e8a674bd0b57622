"""The throwaway database servers behind the mysql_* and pg_* fixtures work as promised."""

from __future__ import annotations

import psycopg2
import pymysql
import pytest

from tests.servers import DBServer


def test_mysql_query(mysql_server: DBServer, mysql_conn) -> None:
    with mysql_conn.cursor() as cur:
        cur.execute("SELECT DATABASE(), CURRENT_USER(), @@character_set_server, @@collation_server")
        db, user, charset, collation = cur.fetchone()
    assert db == "panorama_test"
    assert user.startswith("panorama@")
    assert (charset, collation) == ("utf8mb4", "utf8mb4_general_ci")
    assert mysql_server.host == "127.0.0.1"
    assert set(mysql_server.settings_dict()) == {"host", "port", "username", "password", "database"}


def test_mysql_round_trips_utf8mb4(mysql_conn) -> None:
    with mysql_conn.cursor() as cur:
        cur.execute("CREATE TABLE t_servers_emoji (v VARCHAR(20))")
        try:
            cur.execute("INSERT INTO t_servers_emoji VALUES (%s)", ("ok 🎉 ñ",))
            cur.execute("SELECT v FROM t_servers_emoji")
            assert cur.fetchone() == ("ok 🎉 ñ",)
        finally:
            cur.execute("DROP TABLE t_servers_emoji")


def test_mysql_wrong_password_refused(mysql_server: DBServer) -> None:
    with pytest.raises(pymysql.err.OperationalError):
        mysql_server.connect(password="wrong-password")


def test_mysql_root_not_reachable_over_tcp(mysql_server: DBServer) -> None:
    with pytest.raises(pymysql.err.OperationalError):
        mysql_server.connect(user="root", password="")


def test_pg_query(pg_server: DBServer, pg_conn) -> None:
    with pg_conn.cursor() as cur:
        cur.execute("SELECT current_database(), current_user, current_setting('server_encoding')")
        assert cur.fetchone() == ("panorama_test", "panorama", "UTF8")
        cur.execute("CREATE TABLE t_servers (v text)")
        cur.execute("INSERT INTO t_servers VALUES (%s)", ("ok 🎉",))
        cur.execute("SELECT v FROM t_servers")
        assert cur.fetchone() == ("ok 🎉",)
        cur.execute("DROP TABLE t_servers")
    assert pg_server.url.startswith("postgresql://panorama:")


def test_pg_wrong_password_refused(pg_server: DBServer) -> None:
    with pytest.raises(psycopg2.OperationalError, match="password authentication failed"):
        pg_server.connect(password="wrong-password")


def test_pg_superuser_not_reachable_over_tcp(pg_server: DBServer) -> None:
    with pytest.raises(psycopg2.OperationalError):
        pg_server.connect(user="postgres", password="")
