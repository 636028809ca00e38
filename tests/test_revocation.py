"""An official revokes a copy; from then on every way of verifying it says REVOKED."""

from __future__ import annotations

import urllib.request

import grpc
import pytest

from saoy.clients.sdk import CertifyResult, OfficialClient
from saoy.v1 import verification_pb2 as vpb

from .conftest import RunningServer

REVOKED = vpb.VerificationResult.REVOKED


@pytest.fixture(scope="module")
def token(server: RunningServer) -> str:
    return (server.data_dir / "admin.tokens").read_text().split()[0]


@pytest.fixture(scope="module")
def certified(server: RunningServer, reference_dossier: list[tuple[str, bytes]]) -> CertifyResult:
    with server.client(kiosk_id="kiosk-revoke") as client:
        return client.certify([reference_dossier[0][1]], session_token=server.token("kiosk-revoke"))


@pytest.mark.parametrize("bad", ["", "not-the-token"])
def test_revoking_needs_an_officials_token(
    server: RunningServer, certified: CertifyResult, bad: str
) -> None:
    assert certified.issued is not None
    with OfficialClient(server.target, bad) as official, pytest.raises(grpc.RpcError) as raised:
        official.revoke(certified.issued.code, "entered by mistake")
    assert raised.value.code() == grpc.StatusCode.UNAUTHENTICATED
    with server.client() as client:
        assert client.verify_code(certified.issued.code).verdict == vpb.VerificationResult.VALID


def test_revocation_shows_everywhere(
    server: RunningServer, certified: CertifyResult, token: str
) -> None:
    assert certified.issued is not None
    code = certified.issued.code
    with server.client() as client:
        pdf = client.download(code)
    with OfficialClient(server.target, token) as official:
        revoked = official.revoke(code, "bản chính bị thu hồi / original withdrawn")
        again = official.revoke(code, "a second reason is ignored")
    assert revoked.verdict == REVOKED and "original withdrawn" in revoked.revoke_reason
    assert again.revoked_at == revoked.revoked_at and again.revoke_reason == revoked.revoke_reason
    with server.client() as client:
        by_code = client.verify_code(code)
        by_pdf = client.verify_pdf(pdf)
    assert by_code.verdict == REVOKED and "original withdrawn" in by_code.reason
    assert by_pdf.verdict == REVOKED
    with urllib.request.urlopen(f"{server.http}/v/{code}") as response:
        assert "ĐÃ THU HỒI / REVOKED" in response.read().decode()


@pytest.mark.parametrize(
    ("code", "reason", "status"),
    [
        ("0000-0000-0000-0000-0000", "a good reason", grpc.StatusCode.NOT_FOUND),
        ("bad", "a good reason", grpc.StatusCode.INVALID_ARGUMENT),
        ("0000-0000-0000-0000-0000", "x", grpc.StatusCode.INVALID_ARGUMENT),
    ],
)
def test_revoking_unknown_or_malformed(
    server: RunningServer, token: str, code: str, reason: str, status: grpc.StatusCode
) -> None:
    with OfficialClient(server.target, token) as official, pytest.raises(grpc.RpcError) as raised:
        official.revoke(code, reason)
    assert raised.value.code() == status
