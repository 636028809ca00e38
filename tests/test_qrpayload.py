"""The offline QR payload: signed round trip, every kind of damage told apart, the URL fragment
encoding, and a rendered QR read back by an independent decoder (zxing-cpp)."""

from __future__ import annotations

import datetime as dt
import hashlib
import zlib

import base45
import cbor2
import pytest
import qrcode
import qrcode.constants
import zxingcpp
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.x509.oid import NameOID
from hypothesis import given
from hypothesis import strategies as st
from PIL import Image
from pycose.algorithms import EdDSA, Es256
from pycose.headers import KID, Algorithm
from pycose.messages.sign1message import Sign1Message

from saoy.core.errors import InvalidInput
from saoy.core.reception import codes
from saoy.core.trust import qrpayload
from saoy.core.trust.qrpayload import (
    QrFields,
    decode_payload,
    encode_payload,
    key_id,
    pages_digest,
    qr_text,
    split_qr_text,
)

ISSUED_AT = dt.datetime(2026, 5, 1, 3, 4, 5, 678000, tzinfo=dt.UTC)
URL = "https://verify.saoy.gov.vn/v/"


def _certificate(key: Ed25519PrivateKey, name: str) -> x509.Certificate:
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    return (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(ISSUED_AT - dt.timedelta(days=1))
        .not_valid_after(ISSUED_AT + dt.timedelta(days=365))
        .sign(key, None)
    )


@pytest.fixture(scope="module")
def issuer() -> tuple[Ed25519PrivateKey, x509.Certificate]:
    key = Ed25519PrivateKey.generate()
    return key, _certificate(key, "saoy QR issuer")


@pytest.fixture
def fields() -> QrFields:
    pages = [hashlib.sha256(b"page %d" % i).digest() for i in range(2)]
    return QrFields(codes.new_code(), pages_digest(pages), 2, ISSUED_AT)


def _encode(fields: QrFields, issuer: tuple[Ed25519PrivateKey, x509.Certificate]) -> str:
    key, cert = issuer
    return encode_payload(fields, key, key_id(cert))


def test_round_trip(fields: QrFields, issuer: tuple[Ed25519PrivateKey, x509.Certificate]) -> None:
    text = _encode(fields, issuer)
    assert text.startswith("SY1:") and set(text[4:]) <= set(base45.BASE45_CHARSET)
    for check_with in (issuer[1], issuer[0].public_key()):
        payload = decode_payload(text, check_with)
        assert payload.code == fields.code
        assert payload.pages_sha256 == fields.pages_sha256 and payload.pages == 2
        assert payload.issued_at == ISSUED_AT.replace(microsecond=0)
        assert payload.kid == key_id(issuer[1]) and payload.version == 1


def test_pages_digest_is_hash_of_concatenated_page_hashes() -> None:
    a, b = hashlib.sha256(b"a").digest(), hashlib.sha256(b"b").digest()
    assert pages_digest([a, b]) == hashlib.sha256(a + b).digest()
    assert pages_digest([a, b]) != pages_digest([b, a])
    with pytest.raises(ValueError):
        pages_digest([])
    with pytest.raises(ValueError):
        pages_digest([b"short"])


def test_key_id_is_first_8_bytes_of_certificate_hash(
    issuer: tuple[Ed25519PrivateKey, x509.Certificate],
) -> None:
    from cryptography.hazmat.primitives.serialization import Encoding

    der = issuer[1].public_bytes(Encoding.DER)
    assert key_id(issuer[1]) == hashlib.sha256(der).digest()[:8]


def _reason(text: str, issuer: tuple[Ed25519PrivateKey, x509.Certificate]) -> str:
    with pytest.raises(InvalidInput) as caught:
        decode_payload(text, issuer[1])
    assert caught.value.message
    return caught.value.reason


def _cose(text: str) -> bytes:
    return zlib.decompress(base45.b45decode(text[4:]))


def _wrap(cose: bytes) -> str:
    return "SY1:" + base45.b45encode(zlib.compress(cose)).decode()


def test_each_kind_of_damage_has_its_own_reason(
    fields: QrFields, issuer: tuple[Ed25519PrivateKey, x509.Certificate]
) -> None:
    text = _encode(fields, issuer)
    cose = _cose(text)
    seen = {
        "prefix": _reason("HC1:" + text[4:], issuer),
        "base45 symbol": _reason(text[:10] + "a" + text[11:], issuer),
        "base45 length": _reason(text + "A", issuer),
        "base45 value": _reason("SY1:GGW", issuer),
        "zlib": _reason("SY1:" + base45.b45encode(b"not deflate data").decode(), issuer),
        "zlib truncated": _reason(
            "SY1:" + base45.b45encode(zlib.compress(cose)[:-5]).decode(), issuer
        ),
        "cose": _reason(_wrap(cbor2.dumps([1, 2, 3])), issuer),
        "signature": _reason(_wrap(cose[:-1] + bytes([cose[-1] ^ 1])), issuer),
    }
    assert seen == {
        "prefix": "QR_BAD_PREFIX",
        "base45 symbol": "QR_BAD_BASE45",
        "base45 length": "QR_BAD_BASE45",
        "base45 value": "QR_BAD_BASE45",
        "zlib": "QR_BAD_ZLIB",
        "zlib truncated": "QR_BAD_ZLIB",
        "cose": "QR_BAD_COSE",
        "signature": "QR_BAD_SIGNATURE",
    }


def test_altered_content_fails_the_signature(
    fields: QrFields, issuer: tuple[Ed25519PrivateKey, x509.Certificate]
) -> None:
    message = Sign1Message.decode(_cose(_encode(fields, issuer)))
    assert message.payload is not None
    content = cbor2.loads(message.payload)
    content[3] = 1  # claim one page instead of two
    message.payload = cbor2.dumps(content, canonical=True)
    forged = message.encode(tag=True, sign=False)
    assert _reason(_wrap(forged), issuer) == "QR_BAD_SIGNATURE"


def test_payload_signed_by_another_key_fails(
    fields: QrFields, issuer: tuple[Ed25519PrivateKey, x509.Certificate]
) -> None:
    other = Ed25519PrivateKey.generate()
    other_cert = _certificate(other, "another issuer")
    # Under its own key id: told apart before any signature check.
    assert _reason(encode_payload(fields, other, key_id(other_cert)), issuer) == "QR_WRONG_KEY"
    # Claiming the genuine issuer's key id: the signature gives it away.
    impostor = encode_payload(fields, other, key_id(issuer[1]))
    assert _reason(impostor, issuer) == "QR_BAD_SIGNATURE"
    with pytest.raises(InvalidInput) as caught:
        decode_payload(impostor, issuer[0].public_key())
    assert caught.value.reason == "QR_BAD_SIGNATURE"


def test_other_algorithm_in_header_is_refused(
    fields: QrFields, issuer: tuple[Ed25519PrivateKey, x509.Certificate]
) -> None:
    message = Sign1Message.decode(_cose(_encode(fields, issuer)))
    downgraded = Sign1Message(
        phdr={Algorithm: Es256, KID: key_id(issuer[1])}, payload=message.payload
    )
    downgraded.signature = message.signature
    assert _reason(_wrap(downgraded.encode(tag=True, sign=False)), issuer) == "QR_BAD_COSE"


def test_well_signed_but_malformed_content_is_refused(
    issuer: tuple[Ed25519PrivateKey, x509.Certificate],
) -> None:
    from saoy.core.trust.qrpayload import _cose_key

    key, cert = issuer
    for content in ({0: 1}, {0: 2, 1: "X", 2: b"", 3: 0, 4: 0}, [1, 2, 3, 4, 5]):
        message = Sign1Message(
            phdr={Algorithm: EdDSA, KID: key_id(cert)},
            payload=cbor2.dumps(content),
            key=_cose_key(key, key.public_key()),
        )
        assert _reason(_wrap(message.encode(tag=True)), issuer) == "QR_BAD_CONTENT"


def test_encoder_refuses_bad_fields(issuer: tuple[Ed25519PrivateKey, x509.Certificate]) -> None:
    key, cert = issuer
    good = QrFields(codes.new_code(), bytes(32), 1, ISSUED_AT)
    with pytest.raises(ValueError):
        encode_payload(good, key, b"short")
    with pytest.raises(InvalidInput):
        encode_payload(QrFields("NOT-A-CODE", bytes(32), 1, ISSUED_AT), key, key_id(cert))
    with pytest.raises(ValueError):
        encode_payload(QrFields(good.code, bytes(32), 0, ISSUED_AT), key, key_id(cert))
    with pytest.raises(ValueError):
        encode_payload(
            QrFields(good.code, bytes(32), 1, ISSUED_AT.replace(tzinfo=None)), key, key_id(cert)
        )


# -- in the QR code ---------------------------------------------------------------------------


@given(st.text(alphabet=base45.BASE45_CHARSET, max_size=60))
def test_qr_text_round_trips_and_is_fragment_safe(body: str) -> None:
    payload = "SY1:" + body
    text = qr_text(URL + "ABCD", payload)
    fragment = text.partition("#")[2]
    assert " " not in fragment and set(fragment) <= set(base45.BASE45_CHARSET)
    for i, char in enumerate(fragment):
        if char == "%":
            assert fragment[i + 1 : i + 3] in ("20", "25")
    assert split_qr_text(text) == (URL + "ABCD", payload)


def test_split_refuses_text_without_payload() -> None:
    with pytest.raises(InvalidInput) as caught:
        split_qr_text(URL + "ABCD")
    assert caught.value.reason == "QR_BAD_PREFIX"
    with pytest.raises(InvalidInput) as caught:
        split_qr_text(URL + "ABCD#SY1:AB%41")
    assert caught.value.reason == "QR_BAD_BASE45"
    assert split_qr_text(" SY1:ABC ") == ("", "SY1:ABC")


def _qr(text: str) -> qrcode.QRCode:
    qr = qrcode.QRCode(error_correction=qrcode.constants.ERROR_CORRECT_M, border=4, box_size=8)
    qr.add_data(text)
    qr.make(fit=True)
    return qr


def test_rendered_qr_is_read_back_by_zxing_and_verifies(
    fields: QrFields, issuer: tuple[Ed25519PrivateKey, x509.Certificate]
) -> None:
    url = URL + fields.code
    content = qr_text(url, _encode(fields, issuer))
    qr = _qr(content)
    assert qr.version <= 11, f"QR version {qr.version} is too dense for a 25 mm print"
    modules = len(qr.get_matrix())
    # 25 mm at 300 dpi, quiet zone included: about 4.3 pixels a module, resampled as a
    # printer would, then read as a photo of the page would be.
    image = qr.make_image().get_image().convert("L")
    printed = image.resize((295, 295), Image.Resampling.BOX)
    assert modules == 17 + 4 * qr.version + 8
    for picture in (image, printed):
        found = zxingcpp.read_barcodes(
            picture, formats=zxingcpp.BarcodeFormats(zxingcpp.BarcodeFormat.QRCode)
        )
        assert [r.text for r in found] == [content]
        scanned_url, payload_text = split_qr_text(found[0].text)
        assert scanned_url == url
        assert decode_payload(payload_text, issuer[1]).code == fields.code


def test_payload_is_compact(
    fields: QrFields, issuer: tuple[Ed25519PrivateKey, x509.Certificate]
) -> None:
    text = _encode(fields, issuer)
    assert len(text) <= 260
    assert len(_cose(text)) <= 170
    assert qrpayload.PREFIX == "SY1:"


def test_signature_checks_out_without_the_cose_library(
    fields: QrFields, issuer: tuple[Ed25519PrivateKey, x509.Certificate]
) -> None:
    """An independent reader (RFC 9052 §4.4 by hand) verifies the same signature."""
    tag = cbor2.loads(_cose(_encode(fields, issuer)))
    assert tag.tag == 18
    protected, unprotected, payload, signature = tag.value
    assert unprotected == {}
    assert cbor2.loads(protected) == {1: -8, 4: key_id(issuer[1])}
    to_be_signed = cbor2.dumps(["Signature1", protected, b"", payload])
    issuer[0].public_key().verify(signature, to_be_signed)  # raises if it does not verify
    assert cbor2.loads(payload)[1] == fields.code.replace("-", "")
