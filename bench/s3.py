"""The S3 side of `make bench`: a moto server process on 127.0.0.1 standing in for S3 and
Glue, the environment that points panorama.py at it, and a row count of what landed."""

from __future__ import annotations

import contextlib
import json
import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

BUCKET = "panorama-bench"
DATABASE = "panorama"
REGION = "us-east-1"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass(frozen=True)
class MotoServer:
    endpoint: str
    pid: int


@contextlib.contextmanager
def moto_server(log: Path) -> Iterator[MotoServer]:
    """Start `python -m moto.server` on 127.0.0.1; stop it (by its PID) on exit."""
    port = _free_port()
    endpoint = f"http://127.0.0.1:{port}"
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
        )
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                _post(endpoint, "/moto-api/reset")
                break
            except (urllib.error.URLError, ConnectionError):
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"moto server did not start (see {log})") from None
                time.sleep(0.2)
        yield MotoServer(endpoint, proc.pid)
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def _post(endpoint: str, path: str) -> None:
    req = urllib.request.Request(f"{endpoint}{path}", data=b"{}", method="POST")
    with urllib.request.urlopen(req, timeout=10) as answer:
        answer.read()


def env(endpoint: str) -> dict[str, str]:
    """The environment of a panorama.py run against the moto server (no real credentials)."""
    out = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    out.update(
        AWS_ENDPOINT_URL=endpoint,
        AWS_ACCESS_KEY_ID="bench",
        AWS_SECRET_ACCESS_KEY="bench",
        AWS_DEFAULT_REGION=REGION,
        AWS_CONFIG_FILE=os.devnull,
        AWS_SHARED_CREDENTIALS_FILE=os.devnull,
    )
    return out


def _client(endpoint: str, service: str) -> Any:
    import boto3

    return boto3.client(
        service,
        endpoint_url=endpoint,
        region_name=REGION,
        aws_access_key_id="bench",
        aws_secret_access_key="bench",
    )


def reset(endpoint: str) -> None:
    """An empty bucket and Glue database before each run."""
    _post(endpoint, "/moto-api/reset")
    _client(endpoint, "s3").create_bucket(Bucket=BUCKET)
    _client(endpoint, "glue").create_database(DatabaseInput={"Name": DATABASE})


def datalake(bucket: str = BUCKET) -> dict[str, Any]:
    return {
        "type": "aws",
        "panorama_raw_data_bucket": bucket,
        "datalake_database": DATABASE,
        "aws_region": REGION,
    }


def lake_rows(endpoint: str, table: str) -> tuple[int, int, int]:
    """(data rows, objects, registered Glue partitions) of the table in the bucket."""
    s3 = _client(endpoint, "s3")
    rows = objects = 0
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=BUCKET, Prefix=f"{table}/"):
        for item in page.get("Contents", ()):
            if not item["Key"].endswith(f"/{table}.csv"):
                continue
            body = s3.get_object(Bucket=BUCKET, Key=item["Key"])["Body"]
            rows -= 1  # the header line
            while chunk := body.read(1 << 20):
                rows += chunk.count(b"\n")
            objects += 1
    glue = _client(endpoint, "glue")
    partitions = 0
    for page in glue.get_paginator("get_partitions").paginate(
        DatabaseName=DATABASE, TableName=f"raw_{table}"
    ):
        partitions += len(page["Partitions"])
    return rows, objects, partitions


def json_settings(settings: dict[str, Any], path: Path) -> Path:
    path.write_text(json.dumps(settings, indent=2) + "\n")
    return path
