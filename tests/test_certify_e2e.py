"""A reference dossier through a real server: certify, download, verify three ways."""

from __future__ import annotations

import subprocess
import urllib.request
from pathlib import Path

import grpc
import pytest

from saoy.clients.sdk import CertifyResult
from saoy.v1 import verification_pb2 as vpb

from .conftest import RunningServer

VALID = vpb.VerificationResult.VALID
ALTERED = vpb.VerificationResult.ALTERED


@pytest.fixture(scope="module")
def issued(server: RunningServer, reference_dossier: list[tuple[str, bytes]]) -> CertifyResult:
    with server.client(kiosk_id="kiosk-e2e") as client:
        return client.certify(
            [data for _, data in reference_dossier], session_token=server.token("kiosk-e2e")
        )


@pytest.fixture(scope="module")
def copy_pdf(server: RunningServer, issued: CertifyResult, tmp_path_factory) -> Path:
    assert issued.issued is not None
    with server.client() as client:
        data = client.download(issued.issued.code)
    path = tmp_path_factory.mktemp("copies") / "copy.pdf"
    path.write_bytes(data)
    return path


def test_reference_dossier_is_issued_with_events_in_order(issued: CertifyResult) -> None:
    kinds = [e.WhichOneof("event") for e in issued.events]
    assert kinds == ["page_accepted"] * 4 + ["received", "recognized", "validated", "issued"]
    accepted = [e.page_accepted for e in issued.of_kind("page_accepted")]
    assert [a.page for a in accepted] == [0, 1, 2, 3]
    assert accepted[2].width >= 2480 and accepted[2].height >= 3508  # A4 at 300 DPI, skewed
    recognized = issued.of_kind("recognized")[0].recognized
    assert all(p.word_count > 20 for p in recognized.pages)
    copy = issued.issued
    assert copy is not None and copy.pages == 4
    assert copy.url.endswith("/v/" + copy.code)
    assert len(copy.code) == 24 and copy.code.count("-") == 4
    assert len({e.dossier_id for e in issued.events}) == 1


def test_copy_signature_is_intact_for_pdfsig(copy_pdf: Path, issued: CertifyResult) -> None:
    import hashlib

    assert issued.issued is not None
    assert hashlib.sha256(copy_pdf.read_bytes()).hexdigest() == issued.issued.sha256
    out = subprocess.run(["pdfsig", str(copy_pdf)], capture_output=True, text=True).stdout
    assert "Signature is Valid" in out
    pages = subprocess.run(["pdfinfo", str(copy_pdf)], capture_output=True, text=True).stdout
    assert "Pages:           4" in pages


def test_copy_has_a_text_layer_and_the_code_on_every_page(
    copy_pdf: Path, issued: CertifyResult
) -> None:
    assert issued.issued is not None
    text = subprocess.run(
        ["pdftotext", "-layout", str(copy_pdf), "-"], capture_output=True, text=True
    ).stdout
    pages = text.split("\f")
    for page in pages[:4]:
        assert issued.issued.code in page
    assert "CỘNG HÒA XÃ HỘI CHỦ NGHĨA VIỆT NAM" in text


def test_verify_by_code_and_by_pdf_say_valid(
    server: RunningServer, issued: CertifyResult, copy_pdf: Path
) -> None:
    assert issued.issued is not None
    code = issued.issued.code
    with server.client() as client:
        by_code = client.verify_code(code.lower().replace("-", " "))
        by_pdf = client.verify_pdf(copy_pdf.read_bytes())
    assert by_code.verdict == VALID and by_code.code == code and by_code.pages == 4
    assert by_pdf.verdict == VALID and by_pdf.code == code, by_pdf.reason
    assert by_code.issuer == issued.issued.issuer


def test_one_changed_byte_verifies_as_altered(server: RunningServer, copy_pdf: Path) -> None:
    data = bytearray(copy_pdf.read_bytes())
    data[len(data) // 3] ^= 0x01
    with server.client() as client:
        result = client.verify_pdf(bytes(data))
    assert result.verdict == ALTERED
    assert "signature broken" in result.reason or "content changed" in result.reason


def test_appended_content_verifies_as_altered(server: RunningServer, copy_pdf: Path) -> None:
    data = copy_pdf.read_bytes() + b"\n% appended\n"
    with server.client() as client:
        result = client.verify_pdf(data)
    assert result.verdict == ALTERED


def test_retry_with_same_request_id_replays_the_decision(
    server: RunningServer, reference_dossier: list[tuple[str, bytes]]
) -> None:
    pages = [data for _, data in reference_dossier[:1]]
    token = server.token("kiosk-replay")
    with server.client(kiosk_id="kiosk-replay", session_token=token) as client:
        first = client.certify(pages, request_id="retry-0001")
        rows = server.snapshot()
        second = client.certify(pages, request_id="retry-0001")
    assert first.issued is not None and second.issued is not None
    assert second.issued.code == first.issued.code
    assert server.snapshot() == rows


def test_verification_page_and_download(server: RunningServer, issued: CertifyResult) -> None:
    assert issued.issued is not None
    code = issued.issued.code
    with urllib.request.urlopen(f"{server.http}/v/{code}") as response:
        page = response.read().decode()
    assert "HỢP LỆ / VALID" in page and code in page and issued.issued.issuer in page
    with urllib.request.urlopen(f"{server.http}/v/{code}/copy.pdf") as response:
        assert response.read().startswith(b"%PDF")
    with pytest.raises(urllib.error.HTTPError) as missing:
        urllib.request.urlopen(f"{server.http}/v/0000-0000-0000-0000-0000")
    assert missing.value.code in (400, 404)


def test_metrics_and_health(server: RunningServer, issued: CertifyResult) -> None:
    with urllib.request.urlopen(f"{server.http}/metrics") as response:
        text = response.read().decode()
    for stage in ("admit", "preprocess", "ocr", "analyze", "validate", "render", "sign", "store"):
        assert f'saoy_stage_duration_seconds_count{{stage="{stage}"}}' in text
    assert 'saoy_dossiers_total{outcome="issued"}' in text
    with urllib.request.urlopen(f"{server.http}/healthz") as response:
        assert b"SERVING" in response.read()
    from grpc_health.v1 import health_pb2, health_pb2_grpc

    with grpc.insecure_channel(server.target) as channel:
        status = health_pb2_grpc.HealthStub(channel).Check(
            health_pb2.HealthCheckRequest(service="saoy.v1.Certification")
        )
    assert status.status == health_pb2.HealthCheckResponse.SERVING


def test_the_pki_publishes_its_crls(server: RunningServer) -> None:
    from cryptography import x509

    for name in ("root", "issuing-ca"):
        with urllib.request.urlopen(f"{server.http}/pki/{name}.crl") as response:
            assert response.headers["Content-Type"] == "application/pkix-crl"
            crl = x509.load_der_x509_crl(response.read())
        assert crl.next_update_utc is not None
    with pytest.raises(urllib.error.HTTPError) as missing:
        urllib.request.urlopen(f"{server.http}/pki/other.crl")
    assert missing.value.code == 404


def test_copies_carry_two_signatures_and_a_document_timestamp(copy_pdf: Path) -> None:
    out = subprocess.run(["pdfsig", str(copy_pdf)], capture_output=True, text=True).stdout
    assert out.count("Signature is Valid") == 2
    assert "Signature Field Name: DauThoiGian" in out  # the document time-stamp (B-LTA)
