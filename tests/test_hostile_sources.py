"""Hostile credentials and values on the real servers."""

from __future__ import annotations

import uuid

from panorama_kpi.settings import DatasourceSettings
from panorama_kpi.sources import open_source
from tests.servers import DBServer


def test_mysql_password_beyond_latin1(mysql_server: DBServer) -> None:
    user, password = f"u{uuid.uuid4().hex[:8]}", "pässwörd ✓ 密码"
    admin = mysql_server.connect()
    with admin.cursor() as cur:
        cur.execute(f"CREATE USER '{user}'@'%%' IDENTIFIED BY %s", (password,))  # %% : pymysql formats
        cur.execute(f"GRANT SELECT ON {mysql_server.database}.* TO '{user}'@'%'")
    try:
        options = {**mysql_server.settings_dict(), "username": user, "password": password}
        with open_source(DatasourceSettings("mysql", "db", options, [])) as source:
            assert source.check().startswith(("MariaDB", "MySQL"))
    finally:
        with admin.cursor() as cur:
            cur.execute(f"DROP USER '{user}'@'%'")
        admin.close()
