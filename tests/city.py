"""saoy in its city shape for the tests: fronts and workers as processes of their own on one
data dir, sharing a Redis work queue (and, when given, PostgreSQL as the record); and the
checker run after every fault: nothing acknowledged lost, no copy doubled, every issued copy
stored and proven in the transparency log."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import psycopg
import pytest

from saoy.clients.sdk import KioskClient
from saoy.core.trust.translog import InclusionProof, parse_verifier_key
from saoy.v1 import verification_pb2 as vpb
from tests.ports import free_port


def _command(name: str) -> list[str]:
    return [
        sys.executable,
        "-c",
        f"import sys; from saoy.server.main import {name}; sys.exit({name}(sys.argv[1:]))",
    ]


RATE_LIMITS_OFF = [f"--{s}-rate=0" for s in ("authenticate", "certify", "http", "upload")]


def spawn(data_dir: Path, name: str, args: list[str], ready: bytes) -> subprocess.Popen[bytes]:
    """Start a saoy process logging to ``<data_dir>/<name>.log``; wait for ``ready`` there."""
    log = data_dir / f"{name}.log"
    env = {**os.environ, "OMP_THREAD_LIMIT": "1"}
    with log.open("ab") as out:
        proc = subprocess.Popen(args, stdout=out, stderr=subprocess.STDOUT, env=env)
    deadline = time.monotonic() + 120
    while ready not in log.read_bytes():
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            pytest.fail(f"{name} did not start:\n{log.read_text()[-3000:]}")
        time.sleep(0.2)
    return proc


def start_worker(
    data_dir: Path, name: str, common: list[str], public_url: str
) -> subprocess.Popen[bytes]:
    """A ``saoy worker`` with the fronts' settings (``common``), printing ``public_url``."""
    args = [
        *_command("worker_command"),
        *common,
        "--grpc-port=0",
        "--http-port=0",
        f"--public-url={public_url}",
    ]
    return spawn(data_dir, name, args, b"taking dossiers")


class City:
    """Front and worker processes. ``start_front`` may be called again after ``kill_front``:
    the new front takes the same ports, as a restarted replica behind its address would."""

    def __init__(
        self,
        data_dir: Path,
        queue_url: str,
        *,
        registry_url: str = "",
        claim_seconds: float = 2.0,
        extra: tuple[str, ...] = (),
    ) -> None:
        self.data_dir = data_dir
        self.grpc_port, self.http_port = free_port(), free_port()
        common = [
            f"--data-dir={data_dir}",
            f"--queue-url={queue_url}",
            "--host=127.0.0.1",
            "--identity=off",
            "--workers=1",
            f"--queue-claim-seconds={claim_seconds}",
            "--checkpoint-seconds=0.5",
            *RATE_LIMITS_OFF,
            *extra,
        ]
        if registry_url:
            common.append(f"--registry-url={registry_url}")
        self.registry_url = registry_url
        self.common = common
        self.front: subprocess.Popen[bytes] | None = None
        self.fronts = 0
        self.workers: list[subprocess.Popen[bytes]] = []

    @property
    def target(self) -> str:
        return f"127.0.0.1:{self.grpc_port}"

    @property
    def http(self) -> str:
        return f"http://127.0.0.1:{self.http_port}"

    def start_front(self) -> None:
        self.fronts += 1
        self.front = spawn(
            self.data_dir,
            f"front-{self.fronts}",
            [
                *_command("serve_command"),
                *self.common,
                f"--grpc-port={self.grpc_port}",
                f"--http-port={self.http_port}",
            ],
            b"serving gRPC on",
        )

    def kill_front(self) -> None:
        assert self.front is not None
        self.front.send_signal(signal.SIGKILL)
        self.front.wait(10)

    def add_worker(self) -> subprocess.Popen[bytes]:
        name = f"worker-{len(self.workers)}"
        proc = start_worker(self.data_dir, name, self.common, self.http)
        self.workers.append(proc)
        return proc

    def logs(self) -> str:
        return "\n".join(p.read_text(errors="replace") for p in sorted(self.data_dir.glob("*.log")))

    def stop(self) -> None:
        procs = [p for p in (self.front, *self.workers) if p is not None and p.poll() is None]
        for proc in procs:
            proc.send_signal(signal.SIGTERM)
        for proc in procs:
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()

    def copies_per_request(self) -> dict[str, int]:
        query = (
            "SELECT dossiers.request_id, count(*) FROM copies"
            " JOIN dossiers ON dossiers.id = copies.dossier_id GROUP BY dossiers.request_id"
        )
        if self.registry_url:
            with psycopg.connect(self.registry_url) as db:
                rows = db.execute(query).fetchall()
        else:
            with sqlite3.connect(self.data_dir / "registry.sqlite3") as db:
                rows = db.execute(query).fetchall()
        return {str(r): int(n) for r, n in rows}


@dataclass
class Tally:
    """What the checker counted after a run."""

    acknowledged: int  # copies the kiosks were told were issued
    lost: int  # of those, not in the registry or without their file
    duplicates: int  # requests with more than one copy
    unproven: int  # issued copies without a verifying inclusion proof


def check(city: City, issued: dict[str, str], *, wait_seconds: float = 30.0) -> Tally:
    """Count, for the copies whose ISSUED reached a kiosk (request_id -> code): the lost, the
    doubled, and those without a log leaf whose inclusion proof verifies."""
    with urllib.request.urlopen(f"{city.http}/log/key") as response:
        origin, key = parse_verifier_key(response.read().decode())
    copies = city.copies_per_request()
    lost = unproven = 0
    with KioskClient(city.target) as kiosk:
        for request_id, code in issued.items():
            if copies.get(request_id, 0) < 1:
                lost += 1
                continue
            result = kiosk.verify_code(code)
            deadline = time.monotonic() + wait_seconds
            while not result.HasField("inclusion") and time.monotonic() < deadline:
                time.sleep(0.2)
                result = kiosk.verify_code(code)
            if result.verdict != vpb.VerificationResult.VALID:
                lost += 1
                continue
            import hashlib

            if hashlib.sha256(kiosk.download(code)).hexdigest() != result.sha256:
                lost += 1
                continue
            proof = result.inclusion
            proven = result.HasField("inclusion") and InclusionProof(
                proof.leaf_index,
                proof.tree_size,
                proof.leaf_hash,
                tuple(proof.hashes),
                proof.checkpoint,
                proof.entry,
            ).verify(key, origin=origin)
            unproven += not proven
    duplicates = sum(1 for n in copies.values() if n > 1)
    return Tally(len(issued), lost, duplicates, unproven)
