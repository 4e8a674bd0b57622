"""Hostile credentials and values on the real servers."""

from __future__ import annotations

import json
import uuid
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner

from panorama_kpi.cli import main
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


@pytest.mark.parametrize("collation", ["utf8mb4_general_ci", "utf8mb4_bin", "utf8mb4_unicode_ci"])
def test_collation_equal_values_stay_distinct_partitions(
    mysql_server: DBServer, tmp_path: Path, collation: str
) -> None:
    """'ABC', 'abc ', 'ábc', ' ' and '' compare equal under these collations (PAD SPACE
    included); each must still be its own partition holding exactly its own rows."""
    name = f"coll_{uuid.uuid4().hex[:8]}"
    values = ["ABC", "abc", "abc ", "ábc", " ", "", None]
    conn = mysql_server.connect()
    with conn.cursor() as cur:
        cur.execute(f"CREATE TABLE {name} (id INT, p VARCHAR(20) COLLATE {collation}, KEY (p))")
        cur.executemany(f"INSERT INTO {name} VALUES (%s, %s)", list(enumerate(values)))
    settings = tmp_path / "s.yaml"
    settings.write_text(
        yaml.safe_dump(
            {
                "datalake": {"type": "local", "path": str(tmp_path / "lake"), "base_prefix": "x"},
                "datasources": [
                    {
                        "type": "mysql",
                        "name": "db",
                        **mysql_server.settings_dict(),
                        "tables": [
                            {
                                "name": name,
                                "fields": [{"name": "id", "type": "int"}, {"name": "p", "type": "varchar"}],
                                "partitions": {"partition_fields": ["p"]},
                            }
                        ],
                    }
                ],
            }
        ),
        encoding="utf-8",
    )
    runner = CliRunner()
    try:
        for command in ("create-datalake-tables", "create-datalake-views", "extract-and-load"):
            result = runner.invoke(main, ["--settings", str(settings), command, "--all"])
            assert result.exit_code == 0, result.output
        assert f"{len(values)} partition(s)" in result.output
        out = runner.invoke(
            main,
            [
                "--settings",
                str(settings),
                "query",
                f"SELECT id, p FROM x_table_{name} ORDER BY id",
                "--format",
                "json",
            ],
        )
        assert [(r["id"], r["p"]) for r in json.loads(out.output)] == list(enumerate(values))
        with conn.cursor() as cur:  # an incremental run compares counts per exact value too
            cur.execute(f"DELETE FROM {name} WHERE id = 2")
        result = runner.invoke(main, ["--settings", str(settings), "extract-and-load", "--all"])
        assert result.exit_code == 0, result.output
        out = runner.invoke(
            main,
            [
                "--settings",
                str(settings),
                "query",
                f"SELECT id FROM x_table_{name} ORDER BY id",
                "--format",
                "json",
            ],
        )
        assert [r["id"] for r in json.loads(out.output)] == [0, 1, 3, 4, 5, 6]
    finally:
        with conn.cursor() as cur:
            cur.execute(f"DROP TABLE {name}")
        conn.close()
