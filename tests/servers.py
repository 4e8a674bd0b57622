"""Throwaway MariaDB and PostgreSQL servers for the test suite and the benchmark.

Each server lives entirely in a directory we create: data, socket, pid file and log.
It listens on 127.0.0.1 on a free random port, and is stopped by the PID we
started (never by name). Nothing here touches the machine's own database services.

Library use (see tests/conftest.py)::

    server = start_mariadb(tmpdir)      # or start_postgres(tmpdir)
    server.settings_dict()              # {'host', 'port', 'username', 'password', 'database'}
    server.stop()

Command line (used by the benchmark)::

    python tests/servers.py start mariadb --dir DIR    # prints JSON, leaves the server running
    python tests/servers.py start postgres --dir DIR
    python tests/servers.py stop --dir DIR             # stops every server started in DIR

Run as root (as in CI), MariaDB runs with ``--user=root`` and PostgreSQL, which
refuses root, runs as the ``postgres`` system user on a directory that user owns.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import glob
import json
import os
import pwd
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

DATABASE = "panorama_test"
USER = "panorama"
PASSWORD = "panorama-pw"
HOST = "127.0.0.1"

START_TIMEOUT = 60.0
STOP_TIMEOUT = 30.0
_MAX_SOCKET_PATH = 100  # sun_path is 108 bytes on Linux; keep a margin

INSTALL_HINT = "run `make test` (it runs scripts/install-system-deps.sh) or install the packages by hand"


class ServerError(RuntimeError):
    """A test database server could not be started or stopped."""


@dataclasses.dataclass
class DBServer:
    """Connection facts and process handle for one throwaway server."""

    kind: str  # "mariadb" or "postgres"
    port: int
    user: str
    password: str
    database: str
    pid: int
    datadir: str
    host: str = HOST
    socket: str = ""  # unix socket file (mariadb) or socket directory (postgres)
    admin_user: str = ""  # superuser reachable through the unix socket without a password
    basedir: str = ""  # everything of this server lives here; removed by stop(cleanup=True)
    log: str = ""
    _proc: subprocess.Popen[bytes] | None = dataclasses.field(default=None, repr=False, compare=False)

    # -- connection helpers -------------------------------------------------
    @property
    def url(self) -> str:
        scheme = "mysql" if self.kind == "mariadb" else "postgresql"
        return f"{scheme}://{self.user}:{self.password}@{self.host}:{self.port}/{self.database}"

    def settings_dict(self) -> dict[str, Any]:
        return {
            "host": self.host,
            "port": self.port,
            "username": self.user,
            "password": self.password,
            "database": self.database,
        }

    def to_json(self) -> dict[str, Any]:
        data = {f.name: getattr(self, f.name) for f in dataclasses.fields(self) if not f.name.startswith("_")}
        data["url"] = self.url
        return data

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> DBServer:
        names = {f.name for f in dataclasses.fields(cls) if not f.name.startswith("_")}
        return cls(**{k: v for k, v in data.items() if k in names})

    def connect(self, **kwargs: Any) -> Any:
        """A new autocommit DB-API connection as the test user, over TCP."""
        if self.kind == "mariadb":
            import pymysql

            params: dict[str, Any] = dict(
                host=self.host,
                port=self.port,
                user=self.user,
                password=self.password,
                database=self.database,
                charset="utf8mb4",
                autocommit=True,
            )
            params.update(kwargs)
            return pymysql.connect(**params)
        import psycopg2

        params = dict(
            host=self.host, port=self.port, user=self.user, password=self.password, dbname=self.database
        )
        params.update(kwargs)
        conn = psycopg2.connect(**params)
        conn.autocommit = True
        return conn

    # -- process control ----------------------------------------------------
    def is_running(self) -> bool:
        if self._proc is not None:
            return self._proc.poll() is None
        return _pid_is_ours(self.pid, self.datadir)

    def stop(self, cleanup: bool = False, timeout: float = STOP_TIMEOUT) -> None:
        """Shut the server down by its PID; kill it if it does not stop in time.

        With ``cleanup`` the server's directory (data, socket, log) is removed too.
        """
        # PostgreSQL: SIGINT is a "fast" shutdown (SIGTERM would wait for clients
        # to disconnect). MariaDB: SIGTERM is its normal shutdown.
        first = signal.SIGINT if self.kind == "postgres" else signal.SIGTERM
        if self.is_running():
            _signal(self.pid, first)
            if not self._wait_exit(timeout):
                _signal(self.pid, signal.SIGKILL)
                if not self._wait_exit(10):
                    raise ServerError(f"{self.kind} server (pid {self.pid}) did not die")
        elif self._proc is not None:
            self._proc.wait()
        if cleanup and self.basedir:
            shutil.rmtree(self.basedir, ignore_errors=True)
            # a socket directory made outside basedir because basedir's path was too long
            sockdir = Path(self.socket if self.kind == "postgres" else os.path.dirname(self.socket))
            if self.socket and sockdir.name.startswith("pk-sock-"):
                shutil.rmtree(sockdir, ignore_errors=True)

    def _wait_exit(self, timeout: float) -> bool:
        if self._proc is not None:
            try:
                self._proc.wait(timeout)
                return True
            except subprocess.TimeoutExpired:
                return False
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not _pid_is_ours(self.pid, self.datadir):
                return True
            time.sleep(0.05)
        return False


# ---------------------------------------------------------------------------
# helpers


def _signal(pid: int, sig: int) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, sig)


def _pid_is_ours(pid: int, datadir: str) -> bool:
    """True if ``pid`` is alive (not a zombie) and is the server of ``datadir``.

    Guards the CLI's ``stop`` against a PID that was recycled by another process.
    """
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
        status = Path(f"/proc/{pid}/status").read_text()
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        return False
    if "\nState:\tZ" in status:
        return False
    return os.path.realpath(datadir).encode() in cmdline or datadir.encode() in cmdline


def _die_with_parent(sig: int) -> Any:
    """A preexec_fn asking Linux to send ``sig`` to the child when its parent dies."""
    try:
        import ctypes

        # Loaded here, before the fork: the child may already run as `postgres`,
        # which cannot read this interpreter's modules.
        prctl = ctypes.CDLL(None, use_errno=True).prctl
    except (ImportError, OSError, AttributeError):
        return None

    def preexec() -> None:
        prctl(1, int(sig), 0, 0, 0)  # PR_SET_PDEATHSIG; runs after setuid, so it persists

    return preexec


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((HOST, 0))
        return int(s.getsockname()[1])


def _is_root() -> bool:
    return os.geteuid() == 0


def _which(name: str, extra_dirs: tuple[str, ...] = ("/usr/sbin", "/usr/local/sbin", "/sbin")) -> str | None:
    found = shutil.which(name)
    if found:
        return found
    for d in extra_dirs:
        candidate = os.path.join(d, name)
        if os.access(candidate, os.X_OK):
            return candidate
    return None


def _tail(path: str | os.PathLike[str], lines: int = 30) -> str:
    try:
        text = Path(path).read_text(errors="replace")
    except OSError:
        return "(no log)"
    return "\n".join(text.splitlines()[-lines:])


def _socket_dir(preferred: Path, name_len: int) -> Path:
    """``preferred`` unless a socket path inside it would be too long for AF_UNIX."""
    if len(str(preferred)) + 1 + name_len <= _MAX_SOCKET_PATH:
        return preferred
    return Path(tempfile.mkdtemp(prefix="pk-sock-"))


def _new_basedir(parent: Path, kind: str) -> Path:
    parent.mkdir(parents=True, exist_ok=True)
    return Path(tempfile.mkdtemp(prefix=f"{kind}-", dir=parent))


def _wait_until(check: Any, proc: subprocess.Popen[bytes], what: str, log: str, timeout: float) -> Any:
    deadline = time.monotonic() + timeout
    last_error: BaseException | None = None
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise ServerError(
                f"{what} exited with code {proc.returncode} while starting. Log tail:\n{_tail(log)}"
            )
        try:
            return check()
        except Exception as exc:  # noqa: BLE001 - any failure means "not ready yet"
            last_error = exc
            time.sleep(0.05)
    raise ServerError(
        f"{what} did not accept connections within {timeout:.0f}s ({last_error}). Log:\n{_tail(log)}"
    )


# ---------------------------------------------------------------------------
# MariaDB


def mariadb_binaries() -> tuple[str, str]:
    server = _which("mariadbd") or _which("mysqld")
    install = _which("mariadb-install-db") or _which("mysql_install_db")
    if not server or not install:
        raise ServerError(f"MariaDB server binaries (mariadbd, mariadb-install-db) not found: {INSTALL_HINT}")
    return server, install


# Small, fast, throwaway: nothing here is meant to survive a crash.
_MARIADB_OPTIONS = [
    "--character-set-server=utf8mb4",
    "--collation-server=utf8mb4_general_ci",
    "--default-time-zone=+00:00",
    "--innodb-buffer-pool-size=128M",
    "--innodb-log-file-size=64M",
    "--innodb-flush-log-at-trx-commit=0",
    "--innodb-doublewrite=0",
    "--skip-name-resolve",
    "--skip-log-bin",
    "--performance-schema=OFF",
    "--max-connections=200",
]


def start_mariadb(
    tmpdir: str | os.PathLike[str], timeout: float = START_TIMEOUT, detach: bool = False
) -> DBServer:
    """Start MariaDB in a new directory under ``tmpdir``.

    Unless ``detach``, the server is killed by the kernel if this process dies
    without calling ``stop()`` (e.g. a CI timeout), so no server is left behind.
    """
    server_bin, install_bin = mariadb_binaries()
    base = _new_basedir(Path(tmpdir), "mariadb")
    datadir = base / "data"
    log = base / "mariadbd.log"
    user_opt = ["--user=root"] if _is_root() else []

    install = subprocess.run(
        [
            install_bin,
            "--no-defaults",
            *user_opt,
            f"--datadir={datadir}",
            "--auth-root-authentication-method=normal",
            "--skip-test-db",
            *_MARIADB_OPTIONS,
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
        cwd=base,
    )
    if install.returncode != 0:
        raise ServerError(f"mariadb-install-db failed:\n{install.stdout.decode(errors='replace')[-3000:]}")

    sock = _socket_dir(base, len("mysqld.sock")) / "mysqld.sock"
    tmp = base / "tmp"  # its own: a shared /tmp may be cleaned under a running server
    tmp.mkdir(exist_ok=True)
    for attempt in range(3):
        port = free_port()
        proc = subprocess.Popen(
            [
                server_bin,
                "--no-defaults",
                *user_opt,
                f"--datadir={datadir}",
                f"--socket={sock}",
                f"--port={port}",
                f"--bind-address={HOST}",
                f"--pid-file={base / 'mariadbd.pid'}",
                f"--log-error={log}",
                f"--tmpdir={tmp}",
                *_MARIADB_OPTIONS,
            ],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            cwd=base,
            start_new_session=True,  # no terminal signals: Ctrl-C reaches pytest, which stops us
            preexec_fn=None if detach else _die_with_parent(signal.SIGTERM),
        )
        srv = DBServer(
            kind="mariadb",
            port=port,
            user=USER,
            password=PASSWORD,
            database=DATABASE,
            pid=proc.pid,
            datadir=str(datadir),
            socket=str(sock),
            admin_user="root",
            basedir=str(base),
            log=str(log),
            _proc=proc,
        )
        try:
            conn = _wait_until(lambda: _mariadb_admin(str(sock)), proc, "mariadbd", str(log), timeout)
        except ServerError:
            if proc.poll() is not None and "Address already in use" in _tail(log, 200) and attempt < 2:
                continue  # lost the race for the port: try another
            srv.stop(cleanup=False)
            raise
        try:
            with conn.cursor() as cur:
                for stmt in (
                    # anonymous accounts, and password-less root over TCP: root only via the socket
                    "DELETE FROM mysql.global_priv WHERE User = '' OR (User = 'root' AND Host <> 'localhost')",
                    "FLUSH PRIVILEGES",
                    f"CREATE DATABASE {DATABASE} CHARACTER SET utf8mb4 COLLATE utf8mb4_general_ci",
                    *(
                        s
                        for h in ("%", "127.0.0.1", "localhost")
                        for s in (
                            f"CREATE USER '{USER}'@'{h}' IDENTIFIED BY '{PASSWORD}'",
                            # global privileges: tests and the benchmark may create scratch databases
                            f"GRANT ALL PRIVILEGES ON *.* TO '{USER}'@'{h}' WITH GRANT OPTION",
                        )
                    ),
                ):
                    cur.execute(stmt)
        except Exception as exc:
            conn.close()
            srv.stop(cleanup=True)
            raise ServerError(f"setting up the {srv.kind} test database failed: {exc}") from exc
        conn.close()
        return srv
    raise ServerError("could not find a free port for mariadbd")  # pragma: no cover


def _mariadb_admin(sock: str) -> Any:
    import pymysql

    return pymysql.connect(unix_socket=sock, user="root", password="", autocommit=True, connect_timeout=2)


# ---------------------------------------------------------------------------
# PostgreSQL


def postgres_bindir() -> str:
    """The ``bin`` directory of the newest PostgreSQL server installed."""
    candidates = []
    for initdb in glob.glob("/usr/lib/postgresql/*/bin/initdb"):
        version = Path(initdb).parent.parent.name
        try:
            key = tuple(int(p) for p in version.split("."))
        except ValueError:
            continue
        candidates.append((key, str(Path(initdb).parent)))
    if not candidates:
        # Non-Debian layouts: initdb on PATH.
        on_path = shutil.which("initdb")
        if on_path:
            return str(Path(on_path).parent)
        raise ServerError(
            f"PostgreSQL server binaries (/usr/lib/postgresql/*/bin/initdb) not found: {INSTALL_HINT}"
        )
    return max(candidates)[1]


def _pg_account() -> pwd.struct_passwd | None:
    """The unprivileged account PostgreSQL runs as: ``postgres`` when we are root, else ourselves."""
    if not _is_root():
        return None
    try:
        return pwd.getpwnam("postgres")
    except KeyError:
        raise ServerError(
            "running as root but there is no `postgres` system user to run PostgreSQL as"
        ) from None


def _usable_by(account: pwd.struct_passwd | None, path: Path) -> bool:
    if account is None:
        return True
    res = subprocess.run(
        ["test", "-w", str(path), "-a", "-x", str(path)],
        user=account.pw_uid,
        group=account.pw_gid,
        extra_groups=[],
        stdin=subprocess.DEVNULL,
    )
    return res.returncode == 0


def _as(account: pwd.struct_passwd | None) -> dict[str, Any]:
    if account is None:
        return {}
    return {"user": account.pw_uid, "group": account.pw_gid, "extra_groups": []}


def _pg_env(account: pwd.struct_passwd | None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PG")}
    env["LC_ALL"] = "C"
    env.pop("LANG", None)
    if account is not None:
        env["HOME"] = account.pw_dir
        env["USER"] = env["LOGNAME"] = account.pw_name
    return env


def start_postgres(
    tmpdir: str | os.PathLike[str], timeout: float = START_TIMEOUT, detach: bool = False
) -> DBServer:
    """Start PostgreSQL in a new directory under ``tmpdir`` (see ``start_mariadb`` for ``detach``)."""
    bindir = postgres_bindir()
    account = _pg_account()
    parent = Path(tmpdir)
    parent.mkdir(parents=True, exist_ok=True)
    base = _new_basedir(parent, "postgres")
    if account is not None:
        os.chown(base, account.pw_uid, account.pw_gid)
        if not _usable_by(account, base):
            # e.g. pytest's tmp dirs are 0700 root: the postgres user cannot reach them.
            shutil.rmtree(base)
            base = Path(tempfile.mkdtemp(prefix="panorama-postgres-"))
            os.chown(base, account.pw_uid, account.pw_gid)
    datadir = base / "data"
    log = base / "postgres.log"
    sockdir = _socket_dir(base, len("/.s.PGSQL.65535"))
    if account is not None and sockdir != base:
        os.chown(sockdir, account.pw_uid, account.pw_gid)
    env = _pg_env(account)

    init = subprocess.run(
        [
            os.path.join(bindir, "initdb"),
            "-D",
            str(datadir),
            "-U",
            "postgres",
            "--encoding=UTF8",
            "--no-locale",
            "--auth-local=trust",
            "--auth-host=scram-sha-256",
            "--no-sync",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
        cwd=base,
        env=env,
        **_as(account),
    )
    if init.returncode != 0:
        raise ServerError(f"initdb failed:\n{init.stdout.decode(errors='replace')[-3000:]}")

    for attempt in range(3):
        port = free_port()
        with open(log, "ab") as logf:
            proc = subprocess.Popen(
                [
                    os.path.join(bindir, "postgres"),
                    "-D",
                    str(datadir),
                    "-p",
                    str(port),
                    "-k",
                    str(sockdir),
                    "-c",
                    f"listen_addresses={HOST}",
                    "-c",
                    "unix_socket_permissions=0700",
                    "-c",
                    "fsync=off",
                    "-c",
                    "full_page_writes=off",
                    "-c",
                    "synchronous_commit=off",
                    "-c",
                    "timezone=UTC",
                    "-c",
                    "log_timezone=UTC",
                    "-c",
                    "max_connections=200",
                    "-c",
                    "password_encryption=scram-sha-256",
                ],
                stdin=subprocess.DEVNULL,
                stdout=logf,
                stderr=subprocess.STDOUT,
                cwd=base,
                env=env,
                start_new_session=True,
                # SIGQUIT: immediate shutdown (the children exit too)
                preexec_fn=None if detach else _die_with_parent(signal.SIGQUIT),
                **_as(account),
            )
        srv = DBServer(
            kind="postgres",
            port=port,
            user=USER,
            password=PASSWORD,
            database=DATABASE,
            pid=proc.pid,
            datadir=str(datadir),
            socket=str(sockdir),
            admin_user="postgres",
            basedir=str(base),
            log=str(log),
            _proc=proc,
        )
        try:
            conn = _wait_until(lambda p=port: _pg_admin(str(sockdir), p), proc, "postgres", str(log), timeout)
        except ServerError:
            if proc.poll() is not None and "already in use" in _tail(log, 200) and attempt < 2:
                continue
            srv.stop(cleanup=False)
            raise
        try:
            with conn.cursor() as cur:
                cur.execute(f"CREATE ROLE {USER} LOGIN CREATEDB PASSWORD %s", (PASSWORD,))
                cur.execute(f"CREATE DATABASE {DATABASE} OWNER {USER} ENCODING 'UTF8' TEMPLATE template0")
        except Exception as exc:
            conn.close()
            srv.stop(cleanup=True)
            raise ServerError(f"setting up the {srv.kind} test database failed: {exc}") from exc
        conn.close()
        return srv
    raise ServerError("could not find a free port for postgres")  # pragma: no cover


def _pg_admin(sockdir: str, port: int) -> Any:
    import psycopg2

    conn = psycopg2.connect(host=sockdir, port=port, user="postgres", dbname="postgres", connect_timeout=2)
    conn.autocommit = True
    return conn


STARTERS = {
    "mariadb": start_mariadb,
    "mysql": start_mariadb,
    "postgres": start_postgres,
    "postgresql": start_postgres,
}


# ---------------------------------------------------------------------------
# command line


def _state_files(directory: Path) -> list[Path]:
    return sorted(directory.glob("server-*.json"))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    sub = parser.add_subparsers(dest="command", required=True)
    p_start = sub.add_parser(
        "start", help="start a server, print its connection info as JSON, leave it running"
    )
    p_start.add_argument("kind", choices=sorted(STARTERS))
    p_start.add_argument("--dir", required=True, type=Path, help="directory for the server's files and state")
    p_stop = sub.add_parser("stop", help="stop the servers started in --dir and remove their files")
    p_stop.add_argument("--dir", required=True, type=Path)
    p_stop.add_argument("--keep", action="store_true", help="keep the data directories")
    args = parser.parse_args(argv)

    directory: Path = args.dir.absolute()
    if args.command == "start":
        try:
            server = STARTERS[args.kind](directory, detach=True)
        except ServerError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 1
        info = server.to_json()
        (directory / f"server-{server.kind}-{server.port}.json").write_text(json.dumps(info, indent=2) + "\n")
        print(json.dumps(info))
        return 0

    status = 0
    for state in _state_files(directory):
        server = DBServer.from_json(json.loads(state.read_text()))
        try:
            server.stop(cleanup=not args.keep)
        except ServerError as exc:
            print(f"error: {exc}", file=sys.stderr)
            status = 1
            continue
        state.unlink()
        print(f"stopped {server.kind} (pid {server.pid}, port {server.port})")
    return status


if __name__ == "__main__":
    sys.exit(main())
