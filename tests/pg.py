"""A real PostgreSQL server for the tests, from Debian's binaries (``make system`` installs the
``postgresql`` package), on a free port of 127.0.0.1, trusting local logins, with no disk
syncs; stopped and removed when the session ends. Each test gets a database of its own.

initdb and postgres refuse to run as root: when the tests do, the server runs as the
``postgres`` system user in a temporary directory it owns.
"""

from __future__ import annotations

import os
import pwd
import re
import shutil
import signal
import subprocess
import tempfile
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest

from tests.ports import free_port

INSTALLED = Path("/usr/lib/postgresql")


def _binaries() -> Path:
    """The bin directory of the newest installed major version; skips the test without one."""
    versions = [d for d in INSTALLED.glob("*") if re.fullmatch(r"\d+(\.\d+)?", d.name)]
    found = sorted(
        (d / "bin" for d in versions if (d / "bin" / "initdb").is_file()),
        key=lambda bin_dir: tuple(int(part) for part in bin_dir.parent.name.split(".")),
    )
    if not found:
        pytest.skip(
            f"PostgreSQL is not installed (no {INSTALLED}/*/bin/initdb): run `make system`"
            " (Debian's postgresql package) to run the PostgreSQL registry tests"
        )
    return found[-1]


def _run_as() -> dict[str, Any]:
    """The postgres user's ids when the tests run as root; none for anyone else."""
    if os.geteuid() != 0:
        return {}
    try:
        user = pwd.getpwnam("postgres")
    except KeyError:
        pytest.skip("PostgreSQL refuses to run as root and there is no postgres user to run as")
    return {"user": user.pw_uid, "group": user.pw_gid}


def _as(run_as: dict[str, Any]) -> list[str]:
    """The command prefix that runs a program as that user. setpriv rather than Popen's user=:
    without it Popen can spawn without forking the test process, whose gRPC threads must not
    run their fork handlers in a child (a restart mid-test happens beside live channels)."""
    if not run_as:
        return []
    return [
        "setpriv",
        f"--reuid={run_as['user']}",
        f"--regid={run_as['group']}",
        "--clear-groups",
    ]


def _tail(path: Path) -> str:
    return path.read_text(errors="replace")[-2000:] if path.exists() else ""


class PostgresServer:
    """A PostgreSQL server of the tests' own in a temporary directory: started, stopped (as
    ``pg_ctl stop -m immediate`` does, for the fault tests) and started again on its data."""

    def __init__(self) -> None:
        self.bin_dir = _binaries()
        self.run_as = _run_as()
        # As root, in /tmp: the postgres user may not traverse root's own TMPDIR.
        self.work = Path(tempfile.mkdtemp(prefix="saoy-pg-", dir="/tmp" if self.run_as else None))
        if self.run_as:
            os.chown(self.work, self.run_as["user"], self.run_as["group"])
        self.data, self.log = self.work / "data", self.work / "postgres.log"
        self.port = free_port()
        self.proc: subprocess.Popen[bytes] | None = None
        with self.log.open("ab") as out:
            done = subprocess.run(
                [
                    *_as(self.run_as),
                    self.bin_dir / "initdb",
                    *("-D", self.data, "-U", "postgres", "--auth=trust", "--encoding=UTF8"),
                    *("--no-locale", "--no-sync"),
                ],
                stdout=out,
                stderr=subprocess.STDOUT,
                timeout=120,
                check=False,
                cwd=self.work,
                stdin=subprocess.DEVNULL,
            )
        if done.returncode != 0:
            pytest.fail(f"initdb failed ({done.returncode}):\n{_tail(self.log)}")

    @property
    def url(self) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/postgres"

    def start(self) -> None:
        settings = {
            "listen_addresses": "127.0.0.1",
            "port": self.port,
            "unix_socket_directories": "",
            "fsync": "off",
            "synchronous_commit": "off",
            "full_page_writes": "off",
            "max_connections": 200,
        }
        flags = [f"-c{name}={value}" for name, value in settings.items()]
        with self.log.open("ab") as out:
            self.proc = subprocess.Popen(
                [*_as(self.run_as), self.bin_dir / "postgres", "-D", self.data, *flags],
                stdout=out,
                stderr=subprocess.STDOUT,
                cwd=self.work,
                stdin=subprocess.DEVNULL,
            )
        deadline = time.monotonic() + 30
        while True:
            try:
                psycopg.connect(self.url, connect_timeout=1).close()
                return
            except psycopg.OperationalError:
                pass
            if self.proc.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"PostgreSQL did not start on port {self.port}:\n{_tail(self.log)}")
            time.sleep(0.05)

    def stop(self, *, immediate: bool = False) -> None:
        """Fast shutdown (SIGINT: clients disconnected, then a clean stop), or immediate
        (SIGQUIT: no checkpoint, recovery at the next start — ``pg_ctl stop -m immediate``)."""
        if self.proc is None:
            return
        self.proc.send_signal(signal.SIGQUIT if immediate else signal.SIGINT)
        try:
            self.proc.wait(15)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self.proc = None

    def remove(self) -> None:
        self.stop()
        shutil.rmtree(self.work, ignore_errors=True)


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[str]:
    """The URL of the ``postgres`` database of a server of our own (never the machine's 5432)."""
    server = PostgresServer()
    try:
        server.start()
        yield server.url
    finally:
        server.remove()


@pytest.fixture
def postgresql_url(postgres_server: str) -> Iterator[str]:
    """A new, empty database on the test server, dropped after the test."""
    name = f"saoy_{uuid.uuid4().hex}"
    with psycopg.connect(postgres_server, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    try:
        yield postgres_server.rsplit("/", 1)[0] + "/" + name
    finally:
        with psycopg.connect(postgres_server, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
