"""A server whose page scans and copies live in S3 (a real SeaweedFS): copies issued into the
bucket and served back by code; the blob URL checked at start; an unreachable or refusing store
answered with UNAVAILABLE in seconds, leaving no record without its blobs, and the server
carrying on once the store is back."""

from __future__ import annotations

import hashlib
import shutil
import socket
import sqlite3
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest
from google.rpc import error_details_pb2
from grpc_status import rpc_status

from saoy.clients.sdk import CertifyResult
from saoy.core.errors import Unavailable
from saoy.core.storage.blob_stores import open_blob_backend
from saoy.core.storage.blobs import key_of
from saoy.core.storage.blobs_s3 import S3BlobStore, S3Bucket, parse_s3_url
from saoy.server.main import purge_command, serve_command
from saoy.server.settings import Settings
from saoy.v1 import verification_pb2 as vpb
from tests.ports import free_port
from tests.s3 import SeaweedFS, blob_url, bucket_of, s3_env, seaweedfs, seaweedfs_at

from .conftest import RunningServer, start_server

__all__ = ["blob_url", "s3_env", "seaweedfs"]


@pytest.fixture(scope="module")
def letter(reference_dossier: list[tuple[str, bytes]]) -> bytes:
    return reference_dossier[3][1]  # an A4 letter: a generic document, issued when readable


def certify(running: RunningServer, page: bytes, *, retries: int = 3) -> CertifyResult:
    with running.client(kiosk_id="kiosk-s3", retries=retries) as client:
        return client.certify([page])


def rows(data_dir: Path) -> tuple[int, int, int]:
    with sqlite3.connect(data_dir / "registry.sqlite3") as db:
        return tuple(  # type: ignore[return-value]
            int(db.execute(f"SELECT count(*) FROM {table}").fetchone()[0])
            for table in ("dossiers", "pages", "copies")
        )


def download(running: RunningServer, code: str) -> bytes:
    with urllib.request.urlopen(f"{running.http}/v/{code}/copy.pdf", timeout=30) as response:
        return bytes(response.read())


def reason_of(error: grpc.RpcError) -> str:
    """The ErrorInfo reason of a failed call's google.rpc.Status."""
    status = rpc_status.from_call(error)
    assert status is not None, "the status carries google.rpc details"
    for detail in status.details:
        if detail.Is(error_details_pb2.ErrorInfo.DESCRIPTOR):
            info = error_details_pb2.ErrorInfo()
            detail.Unpack(info)
            return str(info.reason)
    raise AssertionError("no ErrorInfo in the status details")


def local_blob_files(data_dir: Path) -> list[Path]:
    return [
        p for folder in ("blobs", "sealed") for p in (data_dir / folder).rglob("*") if p.is_file()
    ]


# -- the URL -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "says"),
    [
        ("s3://?endpoint=http://127.0.0.1:9000", "bucket name"),
        ("s3://ab", "bucket name"),
        ("s3://bucket?endpoint=http://h:1&secret=x", "unknown parameter"),
        ("s3://key:secret@bucket", "must not carry credentials"),
        ("s3://bucket?endpoint=ftp://h:1", "endpoint must be"),
        ("gs://bucket", "blob_url must be"),
        ("file:relative/folder", "absolute local folder"),
    ],
)
def test_a_bad_blob_url_is_refused_with_what_is_wrong(url: str, says: str) -> None:
    with pytest.raises(ValueError, match=says):
        Settings(blob_url=url)


def test_the_blob_url_comes_from_the_flag_or_the_environment() -> None:
    url = "s3://copies/hanoi?endpoint=http://10.0.0.5:8333&region=ap-southeast-1"
    assert Settings.load({"blob_url": url}, environ={}).blob_url == url
    assert Settings.load({}, environ={"SAOY_BLOB_URL": url}).blob_url == url
    where = parse_s3_url(url)
    assert (where.bucket, where.prefix, where.endpoint, where.region) == (
        "copies",
        "hanoi/",
        "http://10.0.0.5:8333",
        "ap-southeast-1",
    )


# -- failures of the store ----------------------------------------------------------------------


@pytest.mark.usefixtures("some_credentials")
def test_an_unreachable_store_fails_in_seconds_and_says_what_to_check(tmp_path: Path) -> None:
    url = f"s3://saoy-copies?endpoint=http://127.0.0.1:{free_port()}"
    start = time.monotonic()
    with pytest.raises(Unavailable) as raised:
        open_blob_backend(url, tmp_path)
    assert time.monotonic() - start < 15
    message = raised.value.message
    assert "127.0.0.1" in message and "cannot be reached" in message and "blob_url" in message
    assert "Traceback" not in message and raised.value.status == "UNAVAILABLE"


@pytest.fixture
def some_credentials(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Credentials in the environment, and no AWS configuration of the machine."""
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "saoy-test")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "not-a-real-secret")
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "no-aws-config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "no-aws-credentials"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")


@pytest.mark.usefixtures("some_credentials")
def test_a_store_that_never_answers_fails_within_its_bounds() -> None:
    with socket.socket() as silent:  # accepts connections (the kernel does), never answers
        silent.bind(("127.0.0.1", 0))
        silent.listen(8)
        where = parse_s3_url(
            f"s3://saoy-copies?endpoint=http://127.0.0.1:{silent.getsockname()[1]}"
        )
        store = S3BlobStore(S3Bucket(where, read_timeout=1, attempts=2))
        start = time.monotonic()
        with pytest.raises(Unavailable, match="cannot be reached"):
            store.put(b"a page")
        assert time.monotonic() - start < 6


@pytest.mark.usefixtures("some_credentials")
def test_saoy_serve_says_in_one_line_that_the_store_is_unreachable(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    url = f"s3://saoy-copies?endpoint=http://127.0.0.1:{free_port()}"
    flags = ["--data-dir", str(tmp_path), "--blob-url", url, "--grpc-port", "0"]
    flags += ["--http-port", "0", "--identity", "off", "--ocr-engine", "none"]
    assert serve_command(flags) == 1
    err = capsys.readouterr().err
    assert err.startswith("error: ") and "cannot be reached" in err and "Traceback" not in err


def test_refused_credentials_are_named_and_the_secret_is_never_shown(
    blob_url: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "not-the-secret-0123456789")
    with pytest.raises(Unavailable) as raised:
        open_blob_backend(blob_url, tmp_path)
    message = raised.value.message
    assert "AWS_SECRET_ACCESS_KEY" in message and "not-the-secret" not in message


# -- a server on S3 -----------------------------------------------------------------------------


def test_a_copy_certified_by_a_server_on_s3_lies_in_the_bucket_and_verifies_by_code(
    blob_url: str, s3_env: SeaweedFS, tmp_path: Path, letter: bytes
) -> None:
    data_dir = tmp_path / "data"
    running = start_server(data_dir, identity="off", ocr_engine="tesseract", blob_url=blob_url)
    try:
        result = certify(running, letter)
        assert result.issued is not None, result.state
        code, dossier_id, sha = result.issued.code, result.dossier_id, result.issued.sha256
        bucket, prefix = bucket_of(blob_url)
        stored = s3_env.objects(bucket, prefix)
        sealed = f"{prefix}sealed/{dossier_id}/"
        assert set(stored) == {
            f"{sealed}copy.key",
            f"{sealed}copy/{sha}",
            f"{sealed}scans.key",
            f"{sealed}scans/{key_of(letter)}",
        }
        # sealed: the bucket holds neither the copy nor the scan in the clear
        pdf = download(running, code)
        assert hashlib.sha256(pdf).hexdigest() == sha and pdf.startswith(b"%PDF")
        assert pdf not in stored[f"{sealed}copy/{sha}"] and letter[:4096] not in b"".join(
            stored.values()
        )
        with running.client() as client:
            verified = client.verify_code(code)
            assert client.download(code) == pdf
        assert verified.verdict == vpb.VerificationResult.VALID
        assert local_blob_files(data_dir) == []  # nothing of it on the server's disk

        # saoy purge, given the same --blob-url, shreds the scans in the bucket
        time.sleep(0.2)  # past a retention period of 1e-6 days (86 ms)
        flags = ["--data-dir", str(data_dir), "--blob-url", blob_url]
        assert purge_command([*flags, "--retention-days", "0.000001"]) == 0
        left = s3_env.objects(bucket, prefix)
        assert f"{sealed}scans/{key_of(letter)}" not in left and f"{sealed}scans.key" not in left
        assert download(running, code) == pdf  # the copy stays
    finally:
        running.stop()


@pytest.fixture
def own_seaweedfs() -> Iterator[SeaweedFS]:
    """A SeaweedFS of this test's own, to stop and start again (a short folder name: SeaweedFS
    puts sockets there)."""
    work = Path(tempfile.mkdtemp(prefix="saoy-s3-"))
    server = seaweedfs_at(work)
    try:
        yield server
    finally:
        server.stop()
        shutil.rmtree(work, ignore_errors=True)


def test_a_store_that_goes_away_is_unavailable_with_no_half_record_and_work_resumes(
    own_seaweedfs: SeaweedFS, monkeypatch: pytest.MonkeyPatch, tmp_path: Path, letter: bytes
) -> None:
    for name, value in own_seaweedfs.env.items():
        monkeypatch.setenv(name, value)
    data_dir = tmp_path / "data"
    url = own_seaweedfs.url("saoy-copies")
    running = start_server(data_dir, identity="off", ocr_engine="tesseract", blob_url=url)
    try:
        first = certify(running, letter)
        assert first.issued is not None, first.state
        before = rows(data_dir)
        objects_before = own_seaweedfs.objects("saoy-copies")

        own_seaweedfs.stop()
        start = time.monotonic()
        with pytest.raises(grpc.RpcError) as raised:
            certify(running, letter, retries=0)
        assert time.monotonic() - start < 60
        error = raised.value
        assert error.code() == grpc.StatusCode.UNAVAILABLE, error.details()
        assert "Object storage" in (error.details() or "")
        assert reason_of(error) == "BLOB_STORE_UNAVAILABLE"
        assert rows(data_dir) == before  # no dossier row without its blobs
        assert local_blob_files(data_dir) == []

        own_seaweedfs.start()
        second = certify(running, letter)
        assert second.issued is not None, second.state
        assert rows(data_dir) == (before[0] + 1, before[1] + 1, before[2] + 1)
        after = own_seaweedfs.objects("saoy-copies")
        assert objects_before.items() <= after.items()  # the earlier blobs are all still there
        assert first.issued is not None
        pdf = download(running, first.issued.code)
        assert hashlib.sha256(pdf).hexdigest() == first.issued.sha256
    finally:
        running.stop()
