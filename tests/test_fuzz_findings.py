"""Inputs the fuzzing harnesses in fuzz/ found, each refused the documented way now."""

from __future__ import annotations

import gc
import io
import struct
import zlib
from pathlib import Path

import base45
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from PIL import Image

from saoy.core.errors import InvalidInput
from saoy.core.pages.admission import Limits, admit
from saoy.core.storage.blobs import FileBlobStore
from saoy.core.storage.registries import create_registry
from saoy.core.trust import qrpayload
from saoy.core.trust.verify import Verifier


def _tiff_with_ascii_rows_per_strip() -> bytes:
    """A Deflate TIFF whose RowsPerStrip (278) is stored as text, not a number."""
    out = io.BytesIO()
    Image.new("L", (320, 300), 255).save(out, "TIFF", compression="tiff_adobe_deflate")
    data = bytearray(out.getvalue())
    assert data[:4] == b"II*\x00"
    (ifd,) = struct.unpack_from("<I", data, 4)
    (count,) = struct.unpack_from("<H", data, ifd)
    for k in range(count):
        entry = ifd + 2 + 12 * k
        if struct.unpack_from("<H", data, entry)[0] == 278:
            struct.pack_into("<HHI4s", data, entry, 278, 2, 2, b"\xcc\x00\x00\x00")  # ASCII
            return bytes(data)
    raise AssertionError("no RowsPerStrip tag")


def test_a_tiff_tag_of_the_wrong_type_is_a_damaged_file() -> None:
    # Found by fuzz_admission: int() of the tag's text escaped _check_tiff_strips.
    with pytest.raises(InvalidInput):
        admit(0, _tiff_with_ascii_rows_per_strip(), Limits())


def _payload(cose: bytes) -> str:
    return qrpayload.PREFIX + base45.b45encode(zlib.compress(cose)).decode("ascii")


@pytest.mark.parametrize(
    "cose",
    [
        b"\x63\xff\xff\xff",  # a text string that is not UTF-8
        b"\xd2\x84\x43\xa1\x01\x27\xa0\x63\xff\xfe\xfd\x40",  # one inside a COSE_Sign1
    ],
)
def test_a_payload_with_broken_utf8_is_refused_without_leaking(cose: bytes) -> None:
    # Found by fuzz_qrpayload: memory grew with every such payload, cbor2's C decoder leaking
    # the error it raised and the frames that error held.
    issuer = Ed25519PrivateKey.generate().public_key()
    text = _payload(cose)

    def refuse() -> None:
        with pytest.raises(InvalidInput) as refused:
            qrpayload.decode_payload(text, issuer)
        assert refused.value.reason == qrpayload.BAD_COSE

    refuse()
    gc.collect()
    before = len(gc.get_objects())
    for _ in range(2000):
        refuse()
    gc.collect()
    assert len(gc.get_objects()) - before < 500


def _pdf_with_stream(
    stream: bytes,
    media_box: bytes = b"0 0 612 792",
    catalog: bytes = b"<< /Type /Catalog /Pages 2 0 R >>",
    filter_name: bytes = b"/FlateDecode",
) -> bytes:
    """A one-page PDF whose page content is ``stream``, declared ``filter_name``, with a correct
    cross-reference table."""
    objects = [
        catalog,
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [%s] /Contents 4 0 R >>" % media_box,
        b"<< /Length %d /Filter %s >>\nstream\n" % (len(stream), filter_name)
        + stream
        + b"\nendstream",
    ]
    out = bytearray(b"%PDF-1.7\n")
    offsets = []
    for number, body in enumerate(objects, 1):
        offsets.append(len(out))
        out += b"%d 0 obj\n" % number + body + b"\nendobj\n"
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    out += b"".join(b"%010d 00000 n \n" % offset for offset in offsets)
    out += b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (
        len(objects) + 1,
        xref,
    )
    return bytes(out)


CONTENT = zlib.compress(b"BT /F1 12 Tf 72 712 Td (copy) Tj ET")


@pytest.fixture
def verifier(tmp_path: Path) -> Verifier:
    """The verifier behind the upload page, over an empty registry and no trust root."""
    return Verifier(
        registry=create_registry(tmp_path / "registry.sqlite3"),
        blobs=FileBlobStore(tmp_path / "blobs"),
        trust_roots=[],
        base_url="http://localhost:8080",
    )


def test_a_pdf_stream_that_does_not_inflate_is_a_damaged_file(verifier: Verifier) -> None:
    # Found by fuzz_pdfverify: zlib.error (a Flate stream whose checksum is wrong) escaped
    # inspect_pdf, so the upload page answered 500 instead of 422.
    damaged = CONTENT[:-1] + bytes([CONTENT[-1] ^ 0xFF])  # the Adler-32 checksum broken
    assert verifier.by_pdf(_pdf_with_stream(CONTENT)).verdict.value == "UNKNOWN"  # the control
    with pytest.raises(InvalidInput) as refused:
        verifier.by_pdf(_pdf_with_stream(damaged))
    assert refused.value.reason == "PDF_MALFORMED"
    assert "damaged compressed data" in refused.value.message


@pytest.mark.parametrize("number", [b"7.9.2", b"-.", b"0.5.", b"+.-"])
def test_a_pdf_number_that_is_no_number_is_a_damaged_file(
    verifier: Verifier, number: bytes
) -> None:
    # Found by fuzz_pdfverify: decimal.InvalidOperation (pyHanko reading "7.9.2" as a real
    # number) escaped inspect_pdf, so the upload page answered 500 instead of 422.
    with pytest.raises(InvalidInput) as refused:
        verifier.by_pdf(_pdf_with_stream(CONTENT, b"0 0 612 " + number))
    assert refused.value.reason == "PDF_MALFORMED"


@pytest.mark.parametrize("catalog", [b"42", b"[1 0 R]", b"(a string)", b"null"])
def test_a_pdf_whose_trailer_names_no_catalog_is_a_damaged_file(
    verifier: Verifier, catalog: bytes
) -> None:
    # Found by fuzz_pdfverify: pyHanko's assertion that /Root is a dictionary escaped
    # inspect_pdf (an AssertionError), so the upload page answered 500 instead of 422.
    with pytest.raises(InvalidInput) as refused:
        verifier.by_pdf(_pdf_with_stream(CONTENT, catalog=catalog))
    assert refused.value.reason == "PDF_MALFORMED"
    assert "no document catalog" in refused.value.message


def test_a_signature_pyhanko_half_parses_is_broken_not_a_crash(verifier: Verifier) -> None:
    # Found by fuzz_pdfverify: pyHanko's AttributeError (external_md_algorithm of a signature
    # dictionary it half parsed) escaped inspect_pdf, so the upload page answered 500.
    data = Path(__file__).parent / "data" / "fuzz" / "pdfverify-signature-half-parsed.pdf"
    report = verifier.by_pdf(data.read_bytes())
    assert report.verdict.value in ("UNKNOWN", "ALTERED")


def test_an_ascii85_group_beyond_32_bits_is_a_damaged_file(verifier: Verifier) -> None:
    # Found by fuzz_pdfverify: struct.error (pyHanko packing a 5-character ASCII85 group
    # worth more than 2**32 - 1) escaped inspect_pdf, so the upload page answered 500.
    assert (
        verifier.by_pdf(_pdf_with_stream(b"s8W-!~>", filter_name=b"/ASCII85Decode")).verdict.value
        == "UNKNOWN"
    )  # the largest group there is: the control
    with pytest.raises(InvalidInput) as refused:
        verifier.by_pdf(_pdf_with_stream(b's8W-"~>', filter_name=b"/ASCII85Decode"))
    assert refused.value.reason == "PDF_MALFORMED"


def test_a_damaged_cross_reference_stream_is_a_damaged_file(verifier: Verifier) -> None:
    # Found by fuzz_pdfverify: pyHanko's reader asserts on an xref stream it cannot read; the
    # AssertionError escaped inspect_pdf, so the upload page answered 500.
    data = Path(__file__).parent / "data" / "fuzz" / "pdfverify-xref-stream-damaged.pdf"
    with pytest.raises(InvalidInput) as refused:
        verifier.by_pdf(data.read_bytes())
    assert refused.value.reason == "PDF_MALFORMED"
