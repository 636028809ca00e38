"""Offline verification of issued copies through a real server: the QR printed on every page
carries a payload signed with the issuer's QR key, which anyone holding ``/pki/qr.pem`` can check
against the PDF (or a photo of the QR) with no server at all."""

from __future__ import annotations

import datetime as dt
import hashlib
import io
import json
import subprocess
import sys
import urllib.error
import urllib.request
from pathlib import Path

import pytest
import zxingcpp
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from PIL import Image, ImageDraw, ImageFilter
from pyhanko.pdf_utils import generic
from pyhanko.pdf_utils.incremental_writer import IncrementalPdfFileWriter

from saoy.clients.sdk import CertifyResult
from saoy.core.model import CertificationBlock, Outcome, RenderPage
from saoy.core.render import BAND_HEIGHT, render_copy
from saoy.core.trust.offline import load_qr_certificates, verify_offline
from saoy.core.trust.qrpayload import (
    BAD_SIGNATURE,
    WRONG_KEY,
    QrFields,
    decode_payload,
    encode_payload,
    key_id,
    pages_digest,
    qr_text,
    split_qr_text,
)
from saoy.core.trust.verify import Verdict, VerificationReport
from saoy.v1 import certification_pb2 as cpb

from .conftest import RunningServer

SAOY = Path(sys.executable).with_name("saoy")
MM = 72 / 25.4


# --- fixtures -----------------------------------------------------------------------------


def fetch(url: str) -> bytes:
    with urllib.request.urlopen(url, timeout=30) as response:
        data: bytes = response.read()
        return data


@pytest.fixture(scope="module")
def issued(server: RunningServer, reference_dossier: list[tuple[str, bytes]]) -> cpb.Issued:
    with server.client(kiosk_id="kiosk-offline") as client:
        result: CertifyResult = client.certify(
            [data for _, data in reference_dossier], session_token=server.token("kiosk-offline")
        )
    assert result.issued is not None, [e.WhichOneof("event") for e in result.events]
    return result.issued


@pytest.fixture(scope="module")
def copy_pdf(server: RunningServer, issued: cpb.Issued) -> bytes:
    with server.client() as client:
        data: bytes = client.download(issued.code)
    assert hashlib.sha256(data).hexdigest() == issued.sha256
    return data


@pytest.fixture(scope="module")
def qr_pem(server: RunningServer) -> bytes:
    return fetch(f"{server.http}/pki/qr.pem")


@pytest.fixture(scope="module")
def root_pem(server: RunningServer) -> bytes:
    return fetch(f"{server.http}/pki/root.pem")


@pytest.fixture(scope="module")
def qr_cert(qr_pem: bytes) -> tuple[x509.Certificate, tuple[x509.Certificate, ...]]:
    return load_qr_certificates(qr_pem)


def offline(
    data: bytes,
    qr_cert: tuple[x509.Certificate, tuple[x509.Certificate, ...]],
    root_pem: bytes | None = None,
) -> VerificationReport:
    cert, chain = qr_cert
    roots = x509.load_pem_x509_certificates(root_pem) if root_pem is not None else []
    return verify_offline(data, qr_cert=cert, qr_chain=chain, trust_roots=roots)


def outcomes(report: VerificationReport) -> dict[str, Outcome]:
    return {c.name: c.outcome for c in report.checks}


def pdftoppm(pdf: bytes, tmp_path: Path, *, page: int = 1, dpi: int = 200) -> Image.Image:
    source = tmp_path / "render.pdf"
    source.write_bytes(pdf)
    out = tmp_path / f"page{page}"
    args = ["-f", str(page), "-l", str(page), "-r", str(dpi), "-gray", "-singlefile"]
    subprocess.run(
        ["pdftoppm", *args, str(source), str(out)],
        check=True,
        capture_output=True,
        timeout=60,
    )
    with Image.open(out.with_suffix(".pgm")) as image:
        image.load()
        return image.copy()


def printed_qr_texts(image: Image.Image) -> list[str]:
    found = zxingcpp.read_barcodes(
        image, formats=zxingcpp.BarcodeFormats(zxingcpp.BarcodeFormat.QRCode)
    )
    return [b.text for b in found if b.valid]


# --- the QR key and its publication -------------------------------------------------------


def test_server_publishes_the_qr_certificate_chained_to_the_root(
    server: RunningServer, qr_pem: bytes, root_pem: bytes
) -> None:
    qr, issuing_ca = x509.load_pem_x509_certificates(qr_pem)
    (root,) = x509.load_pem_x509_certificates(root_pem)

    assert isinstance(qr.public_key(), Ed25519PublicKey)
    qr.verify_directly_issued_by(issuing_ca)
    issuing_ca.verify_directly_issued_by(root)
    assert root_pem == (server.data_dir / "pki" / "root.pem").read_bytes()
    with pytest.raises(urllib.error.HTTPError) as missing:
        fetch(f"{server.http}/pki/official.pem")
    assert missing.value.code == 404


# --- a genuine copy -----------------------------------------------------------------------


def test_issued_copy_verifies_offline_with_only_the_qr_certificate(
    copy_pdf: bytes,
    issued: cpb.Issued,
    qr_cert: tuple[x509.Certificate, tuple[x509.Certificate, ...]],
) -> None:
    report = offline(copy_pdf, qr_cert)

    assert report.verdict is Verdict.VALID, report.reason
    assert report.code == issued.code and report.pages == 4 == issued.pages
    assert report.url == issued.url
    assert report.issued_at == issued.issued_at.ToDatetime(dt.UTC)
    assert report.sha256 == issued.sha256
    checks = outcomes(report)
    for name in ("qr_printed_matches_info", "qr_signature", "code_matches_url", "page_count"):
        assert checks[name] is Outcome.PASS, name
    assert checks["pages_digest"] is Outcome.PASS
    # Without the root, nothing is claimed about the chain or the PAdES signatures.
    assert checks["qr_certificate"] is Outcome.WARN
    assert checks["pdf_signatures"] is Outcome.WARN
    assert checks["not_revoked"] is Outcome.WARN and issued.url in report.reason


def test_with_the_root_the_chain_and_the_pades_signatures_are_checked_too(
    copy_pdf: bytes,
    qr_cert: tuple[x509.Certificate, tuple[x509.Certificate, ...]],
    root_pem: bytes,
) -> None:
    report = offline(copy_pdf, qr_cert, root_pem)

    assert report.verdict is Verdict.VALID, report.reason
    checks = outcomes(report)
    assert checks["qr_certificate"] is Outcome.PASS
    signatures = {n: o for n, o in checks.items() if n.startswith("pdf_signature:")}
    assert len(signatures) == 2  # the official's and the organization's seal
    assert set(signatures.values()) == {Outcome.PASS}


def test_every_printed_qr_read_by_zxing_carries_the_url_and_the_signed_payload(
    copy_pdf: bytes,
    issued: cpb.Issued,
    reference_dossier: list[tuple[str, bytes]],
    qr_cert: tuple[x509.Certificate, tuple[x509.Certificate, ...]],
    tmp_path: Path,
) -> None:
    read = [printed_qr_texts(pdftoppm(copy_pdf, tmp_path, page=p)) for p in (1, 2, 3, 4)]
    # Page 1 is the ID card, whose own QR is read as well; the copy's QR names its URL.
    texts = [[t for t in page if t.startswith(issued.url + "#")] for page in read]

    assert all(len(t) == 1 for t in texts), read
    assert len({t[0] for t in texts}) == 1  # the same QR on every page
    url, payload_text = split_qr_text(texts[0][0])
    assert url == issued.url
    payload = decode_payload(payload_text, qr_cert[0])
    assert payload.code == issued.code and payload.pages == 4
    assert payload.issued_at == issued.issued_at.ToDatetime(dt.UTC)
    assert payload.kid == key_id(qr_cert[0])
    # The kiosk's JPEGs are embedded byte for byte, so the digest is over the files it sent.
    files = [hashlib.sha256(data).digest() for _, data in reference_dossier]
    assert payload.pages_sha256 == pages_digest(files)


def test_a_photo_of_the_printed_qr_verifies(
    copy_pdf: bytes,
    issued: cpb.Issued,
    qr_cert: tuple[x509.Certificate, tuple[x509.Certificate, ...]],
    tmp_path: Path,
) -> None:
    dpi = 200
    page = pdftoppm(copy_pdf, tmp_path, dpi=dpi)
    side = round(BAND_HEIGHT * dpi / 72)  # the QR sits at the left of the band, as tall as it
    qr = page.crop((0, page.height - side, side, page.height))
    # Held a little askew, slightly out of focus, and saved as a phone would.
    photo = qr.rotate(7, resample=Image.Resampling.BICUBIC, expand=True, fillcolor=255)
    photo = photo.filter(ImageFilter.GaussianBlur(0.8)).convert("RGB")
    buffer = io.BytesIO()
    photo.save(buffer, "JPEG", quality=70)

    report = offline(buffer.getvalue(), qr_cert)

    assert report.verdict is Verdict.VALID, report.reason
    assert report.code == issued.code and report.pages == 4
    assert report.issued_at == issued.issued_at.ToDatetime(dt.UTC)
    checks = outcomes(report)
    assert checks["qr_signature"] is Outcome.PASS
    assert checks["page_content"] is Outcome.WARN  # only the QR was given
    assert "not compared" in report.reason


def test_a_photo_without_a_qr_is_not_vouched_for(
    qr_cert: tuple[x509.Certificate, tuple[x509.Certificate, ...]],
) -> None:
    blank = io.BytesIO()
    Image.new("L", (400, 400), 255).save(blank, "PNG")

    report = offline(blank.getvalue(), qr_cert)

    assert report.verdict is Verdict.UNKNOWN
    assert "no QR code" in report.reason


# --- altered copies -----------------------------------------------------------------------


def flip_byte_in_first_image(pdf: bytes) -> bytes:
    image = pdf.index(b"/Subtype /Image")
    start = pdf.index(b"stream", image) + len(b"stream")
    start += 2 if pdf[start : start + 2] == b"\r\n" else 1
    end = pdf.index(b"endstream", start)
    middle = (start + end) // 2
    return pdf[:middle] + bytes([pdf[middle] ^ 0xFF]) + pdf[middle + 1 :]


def replace_image_of_page_2(pdf: bytes) -> bytes:
    writer = IncrementalPdfFileWriter(io.BytesIO(pdf))
    _, resources = writer.find_page_for_modification(1)
    xobjects = resources["/XObject"]
    name = next(iter(xobjects))
    original = xobjects[name]
    with Image.open(io.BytesIO(original.encoded_data)) as image:
        image.load()
        ImageDraw.Draw(image).rectangle((40, 40, 400, 120), fill="white")  # a name erased
        forged = io.BytesIO()
        image.save(forged, "JPEG", quality=90)
    stream = generic.StreamObject(
        {k: v for k, v in original.items() if k != "/Length"}, encoded_data=forged.getvalue()
    )
    xobjects[name] = writer.add_object(stream)
    writer.update_container(xobjects)
    out = io.BytesIO()
    writer.write(out)
    return out.getvalue()


def append_a_page(pdf: bytes) -> bytes:
    writer = IncrementalPdfFileWriter(io.BytesIO(pdf))
    content = generic.StreamObject(stream_data=b"BT /F1 24 Tf 72 720 Td (forged page) Tj ET")
    page = generic.DictionaryObject(
        {
            generic.NameObject("/Type"): generic.NameObject("/Page"),
            generic.NameObject("/MediaBox"): generic.ArrayObject(
                [generic.NumberObject(v) for v in (0, 0, 595, 842)]
            ),
            generic.NameObject("/Resources"): generic.DictionaryObject(),
            generic.NameObject("/Contents"): writer.add_object(content),
        }
    )
    writer.insert_page(page)
    out = io.BytesIO()
    writer.write(out)
    return out.getvalue()


TAMPERS = {
    "one byte of a page image": (flip_byte_in_first_image, "pages_digest", "images differ"),
    "a page image replaced": (replace_image_of_page_2, "pages_digest", "images differ"),
    "a page appended": (append_a_page, "page_count", "has 5 page(s); the signed payload says 4"),
}


@pytest.mark.parametrize("tamper", list(TAMPERS))
def test_an_altered_copy_is_reported_altered_with_the_reason(
    copy_pdf: bytes,
    qr_cert: tuple[x509.Certificate, tuple[x509.Certificate, ...]],
    root_pem: bytes,
    tamper: str,
) -> None:
    change, failing_check, why = TAMPERS[tamper]
    altered = change(copy_pdf)
    assert altered != copy_pdf

    report = offline(altered, qr_cert)

    assert report.verdict is Verdict.ALTERED, report.reason
    assert why in report.reason
    assert outcomes(report)[failing_check] is Outcome.FAIL
    assert outcomes(report)["qr_signature"] is Outcome.PASS  # the QR itself is genuine

    # With the root, the PAdES signatures say the same.
    with_root = offline(altered, qr_cert, root_pem)
    assert with_root.verdict is Verdict.ALTERED
    signatures = [c for c in with_root.checks if c.name.startswith("pdf_signature:")]
    assert signatures and all(c.outcome is Outcome.FAIL for c in signatures)


# --- payloads signed by someone else ------------------------------------------------------


@pytest.mark.parametrize(
    ("kid_of", "reason"),
    [("the forger's key", WRONG_KEY), ("the issuer's certificate", BAD_SIGNATURE)],
)
def test_a_copy_whose_qr_is_signed_by_another_key_is_not_trusted(
    issued: cpb.Issued,
    reference_dossier: list[tuple[str, bytes]],
    qr_cert: tuple[x509.Certificate, tuple[x509.Certificate, ...]],
    kid_of: str,
    reason: str,
) -> None:
    # A forger re-lays the genuine pages and prints a QR signed with a key of their own,
    # naming either that key or (to pass for the issuer) the issuer's certificate.
    pages = []
    for _, data in reference_dossier:
        with Image.open(io.BytesIO(data)) as image:
            pages.append(RenderPage(data, "jpeg", image.width, image.height, 300.0))
    forger = Ed25519PrivateKey.generate()
    raw = forger.public_key().public_bytes(
        serialization.Encoding.Raw, serialization.PublicFormat.Raw
    )
    kid = hashlib.sha256(raw).digest()[:8] if kid_of == "the forger's key" else key_id(qr_cert[0])
    issued_at = issued.issued_at.ToDatetime(dt.UTC)
    fields = QrFields(
        code=issued.code,
        pages_sha256=pages_digest([hashlib.sha256(d).digest() for _, d in reference_dossier]),
        pages=len(pages),
        issued_at=issued_at,
    )
    block = CertificationBlock(
        code=issued.code,
        url=issued.url,
        issuer=issued.issuer,
        issued_at=issued_at,
        qr=qr_text(issued.url, encode_payload(fields, forger, kid)),
    )
    forged = render_copy(pages, block)

    report = offline(forged, qr_cert)

    assert report.verdict is Verdict.UNKNOWN
    assert f"[{reason}]" in report.reason
    assert outcomes(report)["qr_signature"] is Outcome.FAIL


# --- the command line ---------------------------------------------------------------------


def saoy(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(SAOY), *args], capture_output=True, text=True, timeout=120)


def test_saoy_verify_offline_command(
    copy_pdf: bytes, issued: cpb.Issued, qr_pem: bytes, root_pem: bytes, tmp_path: Path
) -> None:
    copy = tmp_path / "copy.pdf"
    copy.write_bytes(copy_pdf)
    cert = tmp_path / "qr.pem"
    cert.write_bytes(qr_pem)
    root = tmp_path / "root.pem"
    root.write_bytes(root_pem)
    altered = tmp_path / "altered.pdf"
    altered.write_bytes(flip_byte_in_first_image(copy_pdf))

    plain = saoy("verify", "--offline", str(copy), "--cert", str(cert))
    assert plain.returncode == 0, plain.stdout + plain.stderr
    assert plain.stdout.startswith("VALID") and issued.code in plain.stdout

    as_json = saoy("verify", str(copy), "--offline", "--cert", str(cert), "--json")
    assert as_json.returncode == 0, as_json.stdout + as_json.stderr
    out = json.loads(as_json.stdout)
    assert out["verdict"] == "VALID" and out["code"] == issued.code
    assert {c["name"]: c["outcome"] for c in out["checks"]}["pages_digest"] == "pass"

    trusted = saoy("verify", "--offline", str(copy), "--cert", str(cert), "--trust", str(root))
    assert trusted.returncode == 0, trusted.stdout + trusted.stderr
    assert "[ok] pdf_signature:" in trusted.stdout

    broken = saoy("verify", "--offline", str(altered), "--cert", str(cert), "--json")
    assert broken.returncode == 1, broken.stdout + broken.stderr
    assert json.loads(broken.stdout)["verdict"] == "ALTERED"

    missing = saoy("verify", "--offline", str(tmp_path / "nothing.pdf"), "--cert", str(cert))
    assert missing.returncode == 2 and "error:" in missing.stderr
