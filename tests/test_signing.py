"""Copy PDFs end to end: a real dev PKI publishing CRLs, render, sign (official + seal, PAdES
B-LTA), verify with pyHanko (AdES LTA validation, difference analysis) and poppler; a flipped
byte, an added page and a replaced page must each make the copy invalid."""

from __future__ import annotations

import asyncio
import datetime as dt
import io
import os
import re
import shutil
import subprocess
import time
from dataclasses import replace
from pathlib import Path

import pytest
from asn1crypto import crl as asn1_crl
from asn1crypto import x509 as asn1_x509
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.serialization import pkcs12
from PIL import Image, ImageDraw, ImageFont
from pyhanko.pdf_utils import generic
from pyhanko.pdf_utils.incremental_writer import IncrementalPdfFileWriter
from pyhanko.pdf_utils.reader import PdfFileReader
from pyhanko.sign.ades.report import AdESPassed
from pyhanko.sign.validation.ades import ades_lta_validation
from pyhanko.sign.validation.policy_decl import (
    PdfSignatureValidationSpec,
    RevinfoOnlineFetchingRule,
    RevocationInfoGatheringSpec,
    SignatureValidationSpec,
)
from pyhanko_certvalidator.context import CertValidationPolicySpec
from pyhanko_certvalidator.policy_decl import (
    CertRevTrustPolicy,
    RevocationCheckingPolicy,
    RevocationCheckingRule,
)
from pyhanko_certvalidator.registry import SimpleTrustManager

from saoy.core.errors import InvalidInput, NotFound, SaoyError
from saoy.core.model import CertificationBlock, RenderPage, Word
from saoy.core.pages.pdfcheck import PdfReport, inspect_pdf
from saoy.core.render import BAND_HEIGHT, code_from_info, info_keywords, render_copy
from saoy.core.trust import pki as pki_module
from saoy.core.trust.pki import DevPki, ensure_dev_pki
from saoy.core.trust.signing import (
    SEAL_FIELD,
    SIGNATURE_FIELD,
    TIMESTAMP_FIELD,
    SigningLevel,
    signer_from_dev_pki,
)

ORGANIZATION = "UBND Phường Hoàn Kiếm (dev)"
PASSPHRASE = b"test-passphrase"
CODE = "7KQ4-M2XD-9TRV-H3BC-P"
FONT = "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf"
# A fixed instant inside the test PKI's validity (certificates are back-dated one day).
FROZEN = dt.datetime.now(dt.UTC).replace(microsecond=0) - dt.timedelta(hours=1)

needs_poppler = pytest.mark.skipif(
    shutil.which("pdfsig") is None or shutil.which("pdftotext") is None,
    reason="poppler-utils (pdfsig, pdftotext) not installed",
)


def _scan(size: tuple[int, int], lines: list[str], fmt: str, dpi: float) -> RenderPage:
    """A synthetic scan with text drawn on it, and the word boxes an OCR engine would report."""
    image = Image.new("RGB", size, (250, 248, 240))
    draw = ImageDraw.Draw(image)
    font = ImageFont.truetype(FONT, 40)
    words: list[Word] = []
    y = 80
    for line in lines:
        x = 60
        for text in line.split():
            left, top, right, bottom = (round(v) for v in draw.textbbox((x, y), text, font=font))
            draw.text((x, y), text, font=font, fill="black")
            words.append(Word(text, left, top, right, bottom, 95.0))
            x = right + 20
        y += 70
    out = io.BytesIO()
    if fmt == "jpeg":
        image.save(out, "JPEG", quality=85, dpi=(dpi, dpi))
    else:
        image.convert("L").save(out, "PNG", dpi=(dpi, dpi))
    return RenderPage(out.getvalue(), fmt, size[0], size[1], dpi, tuple(words))


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> DevPki:
    return ensure_dev_pki(
        tmp_path_factory.mktemp("pki") / "dev-pki",
        organization=ORGANIZATION,
        passphrase=PASSPHRASE,
    )


@pytest.fixture(scope="module")
def pages() -> list[RenderPage]:
    return [
        _scan(
            (1200, 800),
            ["CỘNG HÒA XÃ HỘI CHỦ NGHĨA VIỆT NAM", "GIẤY KHAI SINH", "Họ và tên: Nguyễn Văn An"],
            "jpeg",
            150.0,
        ),
        _scan((900, 600), ["Sổ hộ khẩu", "Chủ hộ: Trần Thị Bình"], "png", 100.0),
    ]


@pytest.fixture(scope="module")
def block(pki: DevPki) -> CertificationBlock:
    return CertificationBlock(
        code=CODE,
        url=f"https://saoy.example.gov.vn/v/{CODE}",
        issuer=pki.organization,
        issued_at=FROZEN.astimezone(dt.timezone(dt.timedelta(hours=7))),
    )


@pytest.fixture(scope="module")
def unsigned(pages: list[RenderPage], block: CertificationBlock) -> bytes:
    return render_copy(pages, block)


@pytest.fixture(scope="module")
def signed(pki: DevPki, unsigned: bytes) -> bytes:
    signer = signer_from_dev_pki(pki, signing_time=FROZEN)
    assert signer.issuer == ORGANIZATION
    return asyncio.run(signer.sign(unsigned))


def _inspect(pki: DevPki, pdf: bytes) -> PdfReport:
    return inspect_pdf(pdf, [pki.root_certificate()])


def _pdfsig(path: Path) -> str:
    # -nocert: poppler has no NSS database holding our dev root; the digest and signature
    # checks are what matter here (chain trust is pyHanko's part).
    result = subprocess.run(
        ["pdfsig", "-nocert", "-no-ocsp", str(path)],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    return result.stdout + result.stderr


def _flip_byte_in_first_image(pdf: bytes) -> bytes:
    image = pdf.index(b"/Subtype /Image")
    start = pdf.index(b"stream", image) + len(b"stream")
    start += 2 if pdf[start : start + 2] == b"\r\n" else 1
    end = pdf.index(b"endstream", start)
    middle = (start + end) // 2
    return pdf[:middle] + bytes([pdf[middle] ^ 0xFF]) + pdf[middle + 1 :]


# --- signatures ---------------------------------------------------------------------------


def test_signed_copy_carries_official_and_seal_at_b_lta(pki: DevPki, signed: bytes) -> None:
    report = _inspect(pki, signed)

    assert report.bottom_line, report.reason
    assert report.code == CODE
    assert report.page_count == 2
    assert report.level == "B-LTA"
    assert report.document_timestamps == 1
    official, seal = report.signatures
    assert official.field_name == SIGNATURE_FIELD and seal.field_name == SEAL_FIELD
    for sig in (official, seal):
        assert sig.intact and sig.valid and sig.trusted and not sig.revoked
        assert sig.timestamp_valid and sig.level == "B-LTA"
        assert sig.signer_organization == ORGANIZATION
        assert sig.signing_time == FROZEN and sig.timestamp_time == FROZEN
        assert sig.archive_time == FROZEN  # the document time-stamp
    assert official.signer == f"Cán bộ chứng thực (dev), {ORGANIZATION}"
    assert seal.signer == ORGANIZATION


def test_later_updates_keep_earlier_signatures_valid(pki: DevPki, signed: bytes) -> None:
    # pyHanko's difference analysis: after the certification only a signature, validation
    # data and a time-stamp were added (allowed by DocMDP P=2); after the seal, only LTA data.
    official, seal = _inspect(pki, signed).signatures

    assert not official.covers_whole_file and official.unaltered
    assert official.modification_level == "FORM_FILLING" and official.docmdp_ok
    assert not seal.covers_whole_file and seal.unaltered
    assert seal.modification_level == "LTA_UPDATES" and seal.docmdp_ok


def test_signer_exposes_its_level_and_b_t_still_works(pki: DevPki, unsigned: bytes) -> None:
    signer = signer_from_dev_pki(pki, signing_time=FROZEN, level="B-T")
    assert signer.level is SigningLevel.B_T

    copy = asyncio.run(signer.sign(unsigned))
    report = inspect_pdf(copy, [pki.root_certificate()], crls=pki.crls())

    assert report.bottom_line, report.reason
    assert [s.level for s in report.signatures] == ["B-T", "B-T"]
    # no CRLs inside a B-T copy: offline, without the issuer's CRLs, trust cannot be decided
    assert not _inspect(pki, copy).bottom_line
    assert report.document_timestamps == 0
    assert signer_from_dev_pki(pki).level is SigningLevel.B_LTA


def test_dss_holds_the_pki_crls_and_chain(pki: DevPki, signed: bytes) -> None:
    reader = PdfFileReader(io.BytesIO(signed))
    dss = reader.root["/DSS"]
    crls = [asn1_crl.CertificateList.load(r.get_object().data) for r in dss["/CRLs"]]
    certs = {asn1_x509.Certificate.load(r.get_object().data).sha256 for r in dss["/Certs"]}
    names = {c.issuer.native["common_name"] for c in crls}

    assert names == {"Saoy Dev Root CA", "Saoy Dev Issuing CA"}
    assert {c.dump() for c in crls} <= {c.dump() for c in pki.crls()}  # the PKI's own CRLs
    for path in (pki.official_path, pki.seal_path, pki.tsa_path):
        material = pki.load(path)
        assert material.certificate.sha256 in certs
        assert material.chain[0].sha256 in certs  # the issuing CA
    # the document time-stamp is the last signature, a /DocTimeStamp covering the DSS
    (ts,) = reader.embedded_timestamp_signatures
    assert ts.field_name == TIMESTAMP_FIELD
    assert ts.signed_revision > max(s.signed_revision for s in reader.embedded_regular_signatures)


def test_pyhanko_ades_lta_validation_passes_offline(pki: DevPki, signed: bytes) -> None:
    # Straight pyHanko, with CRLs required for every certificate and nothing fetched.
    rule = RevocationCheckingRule.CRL_REQUIRED
    spec = PdfSignatureValidationSpec(
        SignatureValidationSpec(
            cert_validation_policy=CertValidationPolicySpec(
                trust_manager=SimpleTrustManager.build(trust_roots=[pki.root_certificate()]),
                revinfo_policy=CertRevTrustPolicy(
                    RevocationCheckingPolicy(
                        ee_certificate_rule=rule, intermediate_ca_cert_rule=rule
                    )
                ),
            ),
            revinfo_gathering_policy=RevocationInfoGatheringSpec(
                online_fetching_rule=RevinfoOnlineFetchingRule.LOCAL_ONLY
            ),
        )
    )
    reader = PdfFileReader(io.BytesIO(signed))

    for sig in reader.embedded_regular_signatures:
        result = asyncio.run(ades_lta_validation(sig, spec))
        assert result.ades_subindic is AdESPassed.OK, result.failure_msg
        assert result.oldest_evidence_record_timestamp is not None
        assert result.signature_timestamp_status is not None


@needs_poppler
def test_poppler_finds_every_signature_intact(signed: bytes, tmp_path: Path) -> None:
    path = tmp_path / "copy.pdf"
    path.write_bytes(signed)

    out = _pdfsig(path)
    blocks = out.split("Signature #")[1:]

    assert len(blocks) == 3, out
    cades = [b for b in blocks if "ETSI.CAdES.detached" in b]
    assert len(cades) == 2
    for block in cades:
        assert "Signature is Valid." in block, out
    assert f"Signature Field Name: {TIMESTAMP_FIELD}" in blocks[2]
    # poppler lists the RFC 3161 document time-stamp but cannot validate that type;
    # pyHanko validates it (test_pyhanko_ades_lta_validation_passes_offline).


@needs_poppler
def test_one_flipped_byte_breaks_the_signature(pki: DevPki, signed: bytes, tmp_path: Path) -> None:
    tampered = _flip_byte_in_first_image(signed)
    assert tampered != signed and len(tampered) == len(signed)
    path = tmp_path / "tampered.pdf"
    path.write_bytes(tampered)

    out = _pdfsig(path)
    report = _inspect(pki, tampered)

    assert "Signature is Valid." not in out
    assert "Digest Mismatch" in out, out
    assert not report.bottom_line
    assert not any(sig.intact for sig in report.signatures)
    assert report.reason is not None and "signed bytes were changed" in report.reason
    assert report.code == CODE  # still readable: the failure is a value, not an exception


def _new_page(writer: IncrementalPdfFileWriter, text: bytes) -> generic.DictionaryObject:
    content = generic.StreamObject(stream_data=b"BT /F1 24 Tf 72 720 Td (" + text + b") Tj ET")
    return generic.DictionaryObject(
        {
            generic.NameObject("/Type"): generic.NameObject("/Page"),
            generic.NameObject("/MediaBox"): generic.ArrayObject(
                [generic.NumberObject(v) for v in (0, 0, 595, 842)]
            ),
            generic.NameObject("/Resources"): generic.DictionaryObject(),
            generic.NameObject("/Contents"): writer.add_object(content),
        }
    )


def _incremental(pdf: bytes, change: str) -> bytes:
    writer = IncrementalPdfFileWriter(io.BytesIO(pdf))
    if change == "append":
        writer.insert_page(_new_page(writer, b"forged page"))
    else:
        kids = writer.root["/Pages"]["/Kids"]
        page = _new_page(writer, b"forged replacement")
        page[generic.NameObject("/Parent")] = writer.root.raw_get("/Pages")
        kids[0] = writer.add_object(page)
        writer.update_container(kids)
    out = io.BytesIO()
    writer.write(out)
    return out.getvalue()


@pytest.mark.parametrize("change", ["append", "replace"])
def test_a_page_added_or_replaced_later_is_invalid(
    pki: DevPki, signed: bytes, change: str, tmp_path: Path
) -> None:
    altered = _incremental(signed, change)

    report = _inspect(pki, altered)

    assert report.page_count == (3 if change == "append" else 2)
    assert not report.bottom_line
    for sig in report.signatures:
        assert sig.intact and sig.valid and sig.trusted  # the signed bytes are untouched
        assert sig.modification_level == "OTHER" and sig.docmdp_ok is False
        assert not sig.unaltered
    assert report.reason is not None and "pages or content" in report.reason


def test_bytes_appended_after_signing_fail_the_bottom_line(pki: DevPki, signed: bytes) -> None:
    report = _inspect(pki, signed + b"\n% appended after signing\n")

    assert all(sig.intact and sig.valid and sig.trusted for sig in report.signatures)
    assert report.trailing_bytes
    assert not report.bottom_line
    assert report.reason == "bytes were appended after the last signature or time-stamp"


def test_signature_untrusted_under_another_root(
    pki: DevPki, signed: bytes, tmp_path_factory: pytest.TempPathFactory
) -> None:
    other = ensure_dev_pki(
        tmp_path_factory.mktemp("other") / "pki", organization="Khác", passphrase=b"x"
    )

    report = inspect_pdf(signed, [other.root_certificate()])

    for sig in report.signatures:
        assert sig.intact and sig.valid
        assert not sig.trusted
    assert not report.bottom_line
    assert report.reason is not None and "not trusted" in report.reason


def test_unsigned_copy_has_no_bottom_line(pki: DevPki, unsigned: bytes) -> None:
    report = _inspect(pki, unsigned)

    assert report.signatures == ()
    assert report.code == CODE
    assert not report.bottom_line
    assert report.reason == "the PDF has no signature"


@pytest.mark.parametrize(
    "data",
    [b"", b"hello, not a pdf", b"\x89PNG\r\n\x1a\n" + bytes(64), b"%PDF-1.7\n1 0 obj garbage"],
    ids=["empty", "text", "png", "broken-pdf"],
)
def test_bytes_that_are_not_a_pdf_are_invalid_input(pki: DevPki, data: bytes) -> None:
    with pytest.raises(InvalidInput) as info:
        _inspect(pki, data)
    assert info.value.status == "INVALID_ARGUMENT"


def test_concurrent_signing_gives_independent_valid_copies(pki: DevPki, unsigned: bytes) -> None:
    signer = signer_from_dev_pki(pki)

    async def sign_many() -> list[bytes]:
        return await asyncio.gather(*(signer.sign(unsigned) for _ in range(3)))

    for copy in asyncio.run(sign_many()):
        report = _inspect(pki, copy)
        assert report.bottom_line, report.reason
        assert report.level == "B-LTA"


def test_later_copies_reuse_the_room_sized_for_the_first_signature(
    pki: DevPki, unsigned: bytes
) -> None:
    signer = signer_from_dev_pki(pki)

    def gaps(pdf: bytes) -> dict[str, int]:
        signatures = PdfFileReader(io.BytesIO(pdf)).embedded_signatures
        return {
            s.field_name: int(s.sig_object["/ByteRange"][2]) - int(s.sig_object["/ByteRange"][1])
            for s in signatures
        }

    first = asyncio.run(signer.sign(unsigned))
    second = asyncio.run(signer.sign(unsigned))  # no dummy signature to size the room
    assert gaps(second) == gaps(first)
    for copy in (first, second):
        report = _inspect(pki, copy)
        assert report.bottom_line, report.reason
        assert report.level == "B-LTA"


def test_signing_with_a_revoked_certificate_is_refused(unsigned: bytes, tmp_path: Path) -> None:
    pki = ensure_dev_pki(tmp_path / "pki", organization=ORGANIZATION, passphrase=PASSPHRASE)
    signer = signer_from_dev_pki(pki)
    pki.revoke(pki.load(pki.seal_path).certificate, "key_compromise")

    with pytest.raises(SaoyError) as info:
        asyncio.run(signer.sign(unsigned))
    assert info.value.reason == "SIGNER_CERTIFICATE_INVALID"
    assert "revoked" in info.value.message, info.value.message


# --- dev PKI ------------------------------------------------------------------------------


def _fingerprints(pki: DevPki) -> dict[str, bytes]:
    prints = {"root": pki.root_certificate().sha256}
    for path in (pki.issuing_ca_path, pki.official_path, pki.seal_path, pki.tsa_path):
        prints[path.name] = pki.load(path).certificate.sha256
    return prints


def test_dev_pki_is_reused_not_regenerated(pki: DevPki) -> None:
    before = {p.name: p.stat().st_mtime_ns for p in pki.directory.iterdir()}

    again = ensure_dev_pki(pki.directory, organization="ignored", passphrase=PASSPHRASE)

    assert _fingerprints(again) == _fingerprints(pki)
    assert {p.name: p.stat().st_mtime_ns for p in again.directory.iterdir()} == before
    assert again.organization == ORGANIZATION


def test_dev_pki_certificates_have_the_right_roles(pki: DevPki) -> None:
    official = pki.load(pki.official_path)
    tsa = pki.load(pki.tsa_path)

    assert official.certificate.key_usage_value.native == {
        "digital_signature",
        "non_repudiation",
    }
    assert tsa.certificate.extended_key_usage_value.native == ["time_stamping"]
    assert "extended_key_usage" in tsa.certificate.critical_extensions
    assert [c.subject.native["common_name"] for c in official.chain] == [
        "Saoy Dev Issuing CA",
        "Saoy Dev Root CA",
    ]
    assert official.certificate.subject.native["country_name"] == "VN"
    with pytest.raises(ValueError):
        pkcs12.load_key_and_certificates(pki.official_path.read_bytes(), b"wrong")


def _distribution_points(cert: asn1_x509.Certificate) -> list[str]:
    parsed = x509.load_der_x509_certificate(cert.dump())
    ext = parsed.extensions.get_extension_for_class(x509.CRLDistributionPoints).value
    return [str(name.value) for point in ext for name in point.full_name or ()]


def test_dev_pki_certificates_name_their_crls(tmp_path: Path) -> None:
    pki = ensure_dev_pki(
        tmp_path / "pki",
        organization=ORGANIZATION,
        passphrase=PASSPHRASE,
        crl_base_url="https://saoy.example.gov.vn/pki",
    )
    ca = pki.load(pki.official_path).chain[0]

    for path in (pki.official_path, pki.seal_path, pki.tsa_path):
        assert _distribution_points(pki.load(path).certificate) == [
            "https://saoy.example.gov.vn/pki/issuing-ca.crl"
        ]
    assert _distribution_points(ca) == ["https://saoy.example.gov.vn/pki/root.crl"]
    assert pki.crl_url("issuing-ca") == "https://saoy.example.gov.vn/pki/issuing-ca.crl"
    assert pki.crl_base_url == "https://saoy.example.gov.vn/pki/"


def test_dev_pki_publishes_signed_current_crls(pki: DevPki) -> None:
    now = dt.datetime.now(dt.UTC)
    root = x509.load_der_x509_certificate(pki.root_certificate().dump())
    ca = x509.load_der_x509_certificate(pki.load(pki.official_path).chain[0].dump())

    for name, issuer in (("root", root), ("issuing-ca", ca)):
        crl = x509.load_der_x509_crl(pki.crl_bytes(name))
        assert pki.crl_path(name).read_bytes() == pki.crl_bytes(name)
        assert crl.issuer == issuer.subject
        public_key = issuer.public_key()
        assert isinstance(public_key, rsa.RSAPublicKey)
        assert crl.is_signature_valid(public_key)
        assert crl.last_update_utc <= now
        assert crl.next_update_utc is not None and crl.next_update_utc > now
        assert len(crl) == 0
    with pytest.raises(NotFound):
        pki.crl_bytes("../root.pem")


def test_stale_crl_is_reissued(tmp_path: Path) -> None:
    pki = ensure_dev_pki(
        tmp_path / "pki",
        organization=ORGANIZATION,
        passphrase=PASSPHRASE,
        crl_refresh=dt.timedelta(hours=1),
    )
    first = x509.load_der_x509_crl(pki.crl_bytes("issuing-ca"))
    assert pki.crl_bytes("issuing-ca") == first.public_bytes(serialization.Encoding.DER)

    two_hours_ago = time.time() - 7200
    os.utime(pki.crl_path("issuing-ca"), (two_hours_ago, two_hours_ago))
    time.sleep(1.1)  # CRL numbers count seconds
    second = x509.load_der_x509_crl(pki.crl_bytes("issuing-ca"))

    number = x509.CRLNumber
    assert second.extensions.get_extension_for_class(number).value.crl_number > (
        first.extensions.get_extension_for_class(number).value.crl_number
    )


def test_revoked_certificate_appears_in_the_crl(tmp_path: Path) -> None:
    pki = ensure_dev_pki(tmp_path / "pki", organization=ORGANIZATION, passphrase=PASSPHRASE)
    seal = pki.load(pki.seal_path).certificate

    pki.revoke(seal, "key_compromise")

    crl = x509.load_der_x509_crl(pki.crl_bytes("issuing-ca"))
    entry = crl.get_revoked_certificate_by_serial_number(seal.serial_number)
    assert entry is not None
    assert entry.extensions.get_extension_for_class(x509.CRLReason).value.reason == (
        x509.ReasonFlags.key_compromise
    )
    with pytest.raises(ValueError, match="reason"):
        pki.revoke(seal, "because")


def test_dev_pki_generation_crash_leaves_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    real_new_key = pki_module._new_key
    calls = 0

    def failing_new_key() -> rsa.RSAPrivateKey:
        nonlocal calls
        calls += 1
        if calls == 4:  # after the CAs and the official's key: files already written
            raise OSError("disk full")
        return real_new_key()

    monkeypatch.setattr(pki_module, "_new_key", failing_new_key)
    target = tmp_path / "pki"

    with pytest.raises(OSError, match="disk full"):
        ensure_dev_pki(target, organization=ORGANIZATION, passphrase=PASSPHRASE)

    assert not target.exists()
    assert list(tmp_path.iterdir()) == []


def test_dev_pki_wrong_passphrase_is_refused(pki: DevPki) -> None:
    with pytest.raises(ValueError, match="passphrase"):
        ensure_dev_pki(pki.directory, organization=ORGANIZATION, passphrase=b"wrong")


# --- rendering ----------------------------------------------------------------------------


def test_pages_grow_by_the_band_and_never_shrink_the_scan(
    pages: list[RenderPage], unsigned: bytes
) -> None:
    reader = PdfFileReader(io.BytesIO(unsigned))
    kids = reader.root["/Pages"]["/Kids"]

    for page, kid in zip(pages, kids, strict=True):
        x0, y0, x1, y1 = (float(v) for v in kid.get_object()["/MediaBox"])
        scan_w, scan_h = page.width / page.dpi * 72, page.height / page.dpi * 72
        assert y1 - y0 == pytest.approx(scan_h + BAND_HEIGHT)
        assert x1 - x0 >= scan_w - 1e-6


def test_jpeg_is_embedded_byte_for_byte(pages: list[RenderPage], unsigned: bytes) -> None:
    assert pages[0].image in unsigned


def test_rendering_is_deterministic(pages: list[RenderPage], block: CertificationBlock) -> None:
    assert render_copy(pages, block) == render_copy(pages, block)


@needs_poppler
def test_text_layer_and_band_are_extractable(
    pages: list[RenderPage], unsigned: bytes, tmp_path: Path
) -> None:
    path = tmp_path / "copy.pdf"
    path.write_bytes(unsigned)

    text = _pdftotext(str(path), "-")
    bbox = _pdftotext("-bbox", "-f", "1", "-l", "1", str(path), "-")

    assert CODE in text
    assert "GIẤY KHAI SINH" in text  # only in the invisible layer of page 1
    assert "Nguyễn" in text
    assert "Trần Thị Bình" in text  # page 2
    assert "Trang 2/2" in text
    # The word's selection box is the OCR box, mapped from top-left pixels to points.
    word = next(w for w in pages[0].words if w.text == "GIẤY")
    scale = 72 / pages[0].dpi
    expected = (
        f'xMin="{word.left * scale:.6f}" yMin="{word.top * scale:.6f}" '
        f'xMax="{word.right * scale:.6f}" yMax="{word.bottom * scale:.6f}">GIẤY<'
    )
    line = next(ln for ln in bbox.splitlines() if ">GIẤY<" in ln)
    assert _boxes_close(line, expected), (line, expected)


def _pdftotext(*args: str) -> str:
    """What poppler's pdftotext prints for ``args`` (options, then the PDF and "-")."""
    run = subprocess.run(
        ["pdftotext", "-enc", "UTF-8", *args],
        capture_output=True,
        text=True,
        check=True,
        timeout=30,
    )
    return run.stdout


def _boxes_close(line: str, expected: str, tolerance: float = 0.05) -> bool:
    def numbers(s: str) -> list[float]:
        return [float(v) for v in re.findall(r'"([0-9.]+)"', s)]

    got, want = numbers(line), numbers(expected)
    return len(got) == 4 and all(abs(a - b) <= tolerance for a, b in zip(got, want, strict=True))


def test_code_round_trips_through_document_info() -> None:
    assert code_from_info(info_keywords(CODE)) == CODE
    assert code_from_info(f"other, {info_keywords(CODE)}; more") == CODE
    assert code_from_info("nothing here") is None
    assert code_from_info(None) is None
    with pytest.raises(ValueError):
        info_keywords("has space")


@needs_poppler
@pytest.mark.parametrize("rotation", [90, 180, 270])
def test_the_text_layer_of_a_page_scanned_turned_runs_along_its_lines(
    pages: list[RenderPage], block: CertificationBlock, tmp_path: Path, rotation: int
) -> None:
    upright = pages[0]
    turned_image = Image.open(io.BytesIO(upright.image)).rotate(rotation, expand=True)
    w, h = upright.width, upright.height

    def turn(word: Word) -> Word:  # the word's box on the image turned counter-clockwise
        corners = [(word.left, word.top), (word.right, word.bottom)]
        moved = [
            {90: (y, w - x), 180: (w - x, h - y), 270: (h - y, x)}[rotation] for x, y in corners
        ]
        xs, ys = [p[0] for p in moved], [p[1] for p in moved]
        return Word(word.text, min(xs), min(ys), max(xs), max(ys), word.confidence)

    out = io.BytesIO()
    turned_image.save(out, "JPEG", quality=85, dpi=(upright.dpi, upright.dpi))
    page = RenderPage(
        out.getvalue(),
        "jpeg",
        turned_image.width,
        turned_image.height,
        upright.dpi,
        tuple(turn(word) for word in upright.words),
        text_rotation=rotation,
    )
    path = tmp_path / "turned.pdf"
    path.write_bytes(render_copy([page], block))
    text = _pdftotext(str(path), "-")
    assert "Họ và tên: Nguyễn Văn An" in text  # the words of a line run together, in order
    bbox = _pdftotext("-bbox", str(path), "-")
    word = next(w for w in page.words if w.text == "GIẤY")
    scale = 72 / page.dpi
    want = [v * scale for v in (word.left, word.top, word.right, word.bottom)]
    line = next(ln for ln in bbox.splitlines() if ">GIẤY<" in ln)
    got = [float(v) for v in re.findall(r'"([0-9.]+)"', line)]
    # Along the line poppler's box is the word's; across it, poppler places turned glyphs by
    # their font box, so its box only overlaps the word's there.
    along = (1, 3) if rotation % 180 else (0, 2)
    across = (0, 2) if rotation % 180 else (1, 3)
    assert all(abs(got[i] - want[i]) <= 0.5 for i in along), (got, want)
    assert got[across[0]] < want[across[1]] and want[across[0]] < got[across[1]], (got, want)


@needs_poppler
def test_a_table_comes_out_of_the_text_layer_row_by_row_with_its_spaces(
    pages: list[RenderPage], block: CertificationBlock, tmp_path: Path
) -> None:
    # A transcript's table as an OCR engine may give it: column by column, words set tight
    # (one pixel apart), each row drifting down a little across the page (a skewed scan).
    cells = [["Môn", "học"], ["Điểm"], ["Xếp", "loại"]]
    rows = [[["Toán"], ["8,5"], ["Giỏi"]], [["Ngữ", "văn"], ["7,0"], ["Khá"]]]
    words = []
    for col, x in enumerate((60, 500, 850)):
        for r, row in enumerate([cells, *rows]):
            texts = row[col]
            y = 300 + 40 * r + col * 4
            left = x
            for t in texts:
                right = left + 11 * len(t)
                words.append(Word(t, left, y, right, y + 22, 95.0))
                left = right + 1
    words.append(Word("ngày", 60, 500, 104, 522, 95.0))
    words.append(Word("03", 105, 500, 127, 522, 95.0))
    page = replace(pages[0], words=tuple(words))
    path = tmp_path / "table.pdf"
    path.write_bytes(render_copy([page], block))
    for mode in ("-raw", "-layout"):  # the order drawn, and the order as laid out
        text = _pdftotext(mode, str(path), "-")
        lines = [" ".join(ln.split()) for ln in text.splitlines() if ln.strip()]
        assert "Môn học Điểm Xếp loại" in lines, (mode, lines)
        assert "Toán 8,5 Giỏi" in lines and "Ngữ văn 7,0 Khá" in lines, (mode, lines)
        assert lines.index("Toán 8,5 Giỏi") < lines.index("Ngữ văn 7,0 Khá")
        assert "ngày 03" in lines, (mode, lines)
