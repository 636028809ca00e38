"""Mutual TLS: a kiosk certificate put on the issuing CA's CRL (``saoy kiosk-cert --revoke``)
is refused at the kiosk's next call, on every service, while the server runs and after it
restarts; other kiosks keep working, and a new certificate lets the kiosk back in."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.x509 import ocsp
from grpc_health.v1 import health_pb2, health_pb2_grpc

from saoy.clients.cli import main as cli
from saoy.clients.sdk import KioskClient, tls_credentials
from saoy.server.app import open_dev_pki
from saoy.server.interceptors import REVOCATION_POLL_SECONDS

from .conftest import RunningServer, start_server
from .test_certify_errors import error_info

CODE = "7K3M-9Q2P-XW4R-T8NZ-5ABC"  # well formed, wrong check symbol: refused by the servicer


class Holder:
    """The module's server; the restart test replaces it with a new one on the same data."""

    def __init__(self, running: RunningServer) -> None:
        self.running = running


@pytest.fixture(scope="module")
def holder(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Holder]:
    held = Holder(start_server(tmp_path_factory.mktemp("saoy-revoke-tls"), tls="mutual"))
    yield held
    held.running.stop()


@pytest.fixture(scope="module")
def mutual(holder: Holder) -> RunningServer:
    return holder.running


def kiosk_cert(server: RunningServer, kiosk_id: str, out: Path) -> Path:
    data = ["--data-dir", str(server.data_dir)]
    assert cli(["kiosk-cert", kiosk_id, *data, "--out", str(out)]) == 0
    return out


def revoke(server: RunningServer, what: str, reason: str) -> int:
    return cli(
        ["kiosk-cert", "--revoke", what, "--reason", reason, "--data-dir", str(server.data_dir)]
    )


def serial_of(folder: Path) -> int:
    return x509.load_pem_x509_certificate((folder / "kiosk.pem").read_bytes()).serial_number


def client(server: RunningServer, folder: Path, kiosk_id: str) -> KioskClient:
    creds = tls_credentials(
        (folder / "ca.pem").read_bytes(),
        (folder / "kiosk.pem").read_bytes(),
        (folder / "kiosk.key").read_bytes(),
    )
    return server.client(credentials=creds, kiosk_id=kiosk_id, retries=0, timeout=30)


def verify_status(kiosk: KioskClient) -> grpc.RpcError:
    with pytest.raises(grpc.RpcError) as raised:
        kiosk.verify_code(CODE)
    return raised.value


def passes(error: grpc.RpcError) -> bool:
    """The call got through to the servicer (which refused the code as malformed)."""
    return error.code() == grpc.StatusCode.INVALID_ARGUMENT


def assert_revoked(error: grpc.RpcError, kiosk_id: str, serial: int) -> None:
    assert error.code() == grpc.StatusCode.UNAUTHENTICATED, error
    assert error_info(error).reason == "KIOSK_CERTIFICATE_REVOKED"
    message = error.details() or ""
    assert f"serial {serial:x}" in message and repr(kiosk_id) in message, message
    assert "needs a new certificate" in message, message


def refused_within(kiosk: KioskClient, seconds: float) -> grpc.RpcError:
    """The first VerifyCode refusal other than the servicer's own, polled for ``seconds``."""
    deadline = time.monotonic() + seconds
    while True:
        error = verify_status(kiosk)
        if not passes(error) or time.monotonic() > deadline:
            return error
        time.sleep(0.1)


def test_revoked_kiosk_is_refused_at_its_next_call_and_others_keep_working(
    mutual: RunningServer,
    tmp_path: Path,
    reference_dossier: list[tuple[str, bytes]],
    capsys: pytest.CaptureFixture[str],
) -> None:
    revoked = kiosk_cert(mutual, "kiosk-lost", tmp_path / "lost")
    other = kiosk_cert(mutual, "kiosk-ok", tmp_path / "ok")
    serial = serial_of(revoked)
    with client(mutual, revoked, "kiosk-lost") as lost, client(mutual, other, "kiosk-ok") as ok:
        assert passes(verify_status(lost))  # works, on a connection kept open across revocation
        capsys.readouterr()

        started = time.monotonic()
        assert revoke(mutual, "kiosk-lost", "key_compromise") == 0
        printed = capsys.readouterr().out
        assert f"serial {serial:x}" in printed and "key_compromise" in printed

        assert_revoked(refused_within(lost, 5 * REVOCATION_POLL_SECONDS + 5), "kiosk-lost", serial)
        assert time.monotonic() - started < 5 * REVOCATION_POLL_SECONDS + 5
        with pytest.raises(grpc.RpcError) as certify:
            lost.certify([reference_dossier[0][1]], session_token=mutual.token("kiosk-lost"))
        with pytest.raises(grpc.RpcError) as authenticate:
            lost.authenticate(b"not read", lambda challenge: [])
        for error in (certify.value, authenticate.value):
            assert_revoked(error, "kiosk-lost", serial)

        assert passes(verify_status(ok))
        with pytest.raises(grpc.RpcError) as other_authenticate:
            ok.authenticate(b"not read", lambda challenge: [])
        assert other_authenticate.value.code() == grpc.StatusCode.INVALID_ARGUMENT

    # Every service on the port: health checks too.
    creds = tls_credentials(
        (revoked / "ca.pem").read_bytes(),
        (revoked / "kiosk.pem").read_bytes(),
        (revoked / "kiosk.key").read_bytes(),
    )
    with grpc.secure_channel(mutual.target, creds) as channel, pytest.raises(grpc.RpcError) as hc:
        health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(), timeout=10)
    assert hc.value.code() == grpc.StatusCode.UNAUTHENTICATED

    # The OCSP responder says the same.
    cert, ca = x509.load_pem_x509_certificates((revoked / "kiosk.pem").read_bytes())
    request = ocsp.OCSPRequestBuilder().add_certificate(cert, ca, hashes.SHA256()).build()
    der = open_dev_pki(mutual.server.settings).ocsp_response(
        request.public_bytes(serialization.Encoding.DER)
    )
    answer = ocsp.load_der_ocsp_response(der)
    assert answer.certificate_status == ocsp.OCSPCertStatus.REVOKED
    assert answer.revocation_reason == x509.ReasonFlags.key_compromise


def test_revoked_by_serial_then_reissued_with_a_new_key(
    mutual: RunningServer, tmp_path: Path
) -> None:
    folder = kiosk_cert(mutual, "kiosk-moved", tmp_path)
    serial, key = serial_of(folder), (folder / "kiosk.key").read_bytes()
    written = ":".join(f"{serial:x}".upper()[i : i + 2] for i in range(0, len(f"{serial:x}"), 2))
    assert revoke(mutual, written, "superseded") == 0
    with client(mutual, folder, "kiosk-moved") as kiosk:
        error = refused_within(kiosk, 5 * REVOCATION_POLL_SECONDS + 5)
    assert_revoked(error, "kiosk-moved", serial)
    assert "superseded" in (error.details() or "")

    kiosk_cert(mutual, "kiosk-moved", folder)  # the revoked certificate is replaced
    assert serial_of(folder) != serial
    assert (folder / "kiosk.key").read_bytes() == key  # superseded: the key was not lost
    with client(mutual, folder, "kiosk-moved") as kiosk:
        assert passes(verify_status(kiosk))


def test_revoke_refuses_what_is_not_a_kiosk_certificate(
    mutual: RunningServer, capsys: pytest.CaptureFixture[str]
) -> None:
    server_pem = (mutual.data_dir / "pki" / "tls" / "server.pem").read_bytes()
    server_serial = x509.load_pem_x509_certificate(server_pem).serial_number
    assert revoke(mutual, f"{server_serial:x}", "key_compromise") == 2
    assert "not a kiosk's" in capsys.readouterr().err
    assert revoke(mutual, "kiosk-never-issued", "key_compromise") == 2
    assert "no kiosk certificate" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        cli(["kiosk-cert", "--revoke", "kiosk-ok", "--reason", "because"])
    with pytest.raises(SystemExit):
        cli(["kiosk-cert", "kiosk-ok", "--revoke", "kiosk-ok"])


def test_revoked_certificate_is_refused_after_a_restart(holder: Holder, tmp_path: Path) -> None:
    first = holder.running
    revoked = kiosk_cert(first, "kiosk-stolen", tmp_path / "stolen")
    other = kiosk_cert(first, "kiosk-fine", tmp_path / "fine")
    assert revoke(first, "kiosk-stolen", "key_compromise") == 0
    first.stop()
    holder.running = restarted = start_server(first.data_dir, tls="mutual")
    with client(restarted, revoked, "kiosk-stolen") as kiosk:
        assert_revoked(verify_status(kiosk), "kiosk-stolen", serial_of(revoked))
    with client(restarted, other, "kiosk-fine") as kiosk:
        assert passes(verify_status(kiosk))
