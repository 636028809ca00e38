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
    """Popen arguments that drop root to the postgres user; none for anyone else."""
    if os.geteuid() != 0:
        return {}
    try:
        user = pwd.getpwnam("postgres")
    except KeyError:
        pytest.skip("PostgreSQL refuses to run as root and there is no postgres user to run as")
    return {"user": user.pw_uid, "group": user.pw_gid, "extra_groups": []}


def _tail(path: Path) -> str:
    return path.read_text(errors="replace")[-2000:] if path.exists() else ""


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[str]:
    """The URL of the ``postgres`` database of a server of our own (never the machine's 5432)."""
    bin_dir = _binaries()
    run_as = _run_as()
    # As root, in /tmp: the postgres user may not traverse root's own TMPDIR.
    work = Path(tempfile.mkdtemp(prefix="saoy-pg-", dir="/tmp" if run_as else None))
    if run_as:
        os.chown(work, run_as["user"], run_as["group"])
    data, log = work / "data", work / "postgres.log"
    common = {"cwd": work, "stdin": subprocess.DEVNULL, **run_as}
    proc: subprocess.Popen[bytes] | None = None
    try:
        with log.open("ab") as out:
            done = subprocess.run(
                [
                    bin_dir / "initdb",
                    *("-D", data, "-U", "postgres", "--auth=trust", "--encoding=UTF8"),
                    *("--no-locale", "--no-sync"),
                ],
                stdout=out,
                stderr=subprocess.STDOUT,
                timeout=120,
                check=False,
                **common,
            )
        if done.returncode != 0:
            pytest.fail(f"initdb failed ({done.returncode}):\n{_tail(log)}")
        port = free_port()
        settings = {
            "listen_addresses": "127.0.0.1",
            "port": port,
            "unix_socket_directories": "",
            "fsync": "off",
            "synchronous_commit": "off",
            "full_page_writes": "off",
            "max_connections": 200,
        }
        flags = [f"-c{name}={value}" for name, value in settings.items()]
        with log.open("ab") as out:
            proc = subprocess.Popen(
                [bin_dir / "postgres", "-D", data, *flags],
                stdout=out,
                stderr=subprocess.STDOUT,
                **common,
            )
        url = f"postgresql://postgres@127.0.0.1:{port}/postgres"
        deadline = time.monotonic() + 30
        while True:
            try:
                psycopg.connect(url, connect_timeout=1).close()
                break
            except psycopg.OperationalError:
                pass
            if proc.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"PostgreSQL did not start on port {port}:\n{_tail(log)}")
            time.sleep(0.05)
        yield url
    finally:
        if proc is not None:
            proc.send_signal(signal.SIGINT)  # fast shutdown: disconnects clients
            try:
                proc.wait(15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        shutil.rmtree(work, ignore_errors=True)


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
