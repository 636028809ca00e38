"""Fuzz the offline QR payload decoder (``SY1:`` + Base45 → zlib → COSE_Sign1 → CBOR).
``decode_payload`` documents InvalidInput for every bad payload and ``split_qr_text``
InvalidInput for a QR content without one; any other exception is a crash.

Each input is used two ways:

* as the text a phone or kiosk scanned: split into URL and payload, then decoded against the
  fuzzing issuer's certificate and against its bare public key;
* as the CBOR content of a payload that the fuzzing issuer signs properly, so the fuzzer also
  reaches the checks behind the signature, which a forged payload never passes.

The issuer key is fixed (derived from a constant) so that the seed payloads made by
``make_seeds.py`` verify here.

    .venv/bin/python fuzz/fuzz_qrpayload.py OUT_DIR fuzz/corpus/qrpayload -max_total_time=600
"""

from __future__ import annotations

import datetime as dt
import hashlib
import sys
import zlib

import atheris

with atheris.instrument_imports(include=["saoy", "base45", "cbor2", "pycose"]):
    import base45
    from cryptography import x509
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
    from cryptography.x509.oid import NameOID
    from pycose.algorithms import EdDSA
    from pycose.headers import KID, Algorithm
    from pycose.messages.sign1message import Sign1Message

    from saoy.core.errors import InvalidInput
    from saoy.core.trust import qrpayload

DEV_KEY = Ed25519PrivateKey.from_private_bytes(hashlib.sha256(b"saoy fuzzing QR issuer").digest())
_NAME = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "saoy fuzzing QR issuer")])
DEV_CERTIFICATE = (
    x509.CertificateBuilder()
    .subject_name(_NAME)
    .issuer_name(_NAME)
    .public_key(DEV_KEY.public_key())
    .serial_number(1)
    .not_valid_before(dt.datetime(2026, 1, 1, tzinfo=dt.UTC))
    .not_valid_after(dt.datetime(2036, 1, 1, tzinfo=dt.UTC))
    .sign(DEV_KEY, None)  # Ed25519 signatures are deterministic: the same certificate each run
)
DEV_KID = qrpayload.key_id(DEV_CERTIFICATE)
_COSE_KEY = qrpayload._cose_key(DEV_KEY, DEV_KEY.public_key())


def sign_content(content: bytes) -> str:
    """A payload text whose COSE_Sign1 carries ``content`` as is, signed by the fuzzing issuer."""
    message = Sign1Message(phdr={Algorithm: EdDSA, KID: DEV_KID}, payload=content, key=_COSE_KEY)
    signed = message.encode(tag=True)
    return qrpayload.PREFIX + base45.b45encode(zlib.compress(signed, 9)).decode("ascii")


def _decode(text: str) -> None:
    for issuer in (DEV_CERTIFICATE, DEV_KEY.public_key()):
        try:
            payload = qrpayload.decode_payload(text, issuer)
        except InvalidInput:
            continue
        assert payload.kid == DEV_KID
        assert payload.pages >= 1 and len(payload.pages_sha256) == 32
        assert payload.issued_at.tzinfo is not None


def test_one_input(data: bytes) -> None:
    text = data.decode("utf-8", "replace")
    _decode(text)
    try:
        _, payload_text = qrpayload.split_qr_text(text)
    except InvalidInput:
        pass
    else:
        _decode(payload_text)
    _decode(sign_content(data))


def main() -> None:
    atheris.Setup(sys.argv, test_one_input)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
