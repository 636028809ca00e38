"""The offline-verifiable QR payload, built the way the EU Digital COVID Certificate builds its
own: CBOR → COSE_Sign1 → zlib → Base45, behind a version prefix (``SY1:``).

What it says (no personal data), as a CBOR map with small integer keys, encoded
deterministically (RFC 8949 §4.2)::

    0: version (1)
    1: verification code, the 20 symbols without dashes (text)
    2: SHA-256 over the page images (32 bytes, see pages_digest)
    3: page count
    4: issue time, seconds since the Unix epoch

The COSE_Sign1 protected header carries the algorithm (EdDSA, -8) and the issuer key id
(label 4): the first 8 bytes of SHA-256 over the issuer certificate's DER, as the DCC does.
The key id is covered by the signature, so it is part of what the issuer vouches for.

Signature: Ed25519 (COSE ``EdDSA``). Its signature is as short as ES256's (64 bytes), it is
deterministic (no per-signature nonce to get wrong), and the COSE library signs and verifies
it through OpenSSL (``cryptography``), whereas its ES256 path computes with the private key in
pure Python. Only EdDSA is accepted when decoding, so the header cannot choose a weaker
algorithm.

In the QR code the payload rides in the fragment of the verification URL::

    https://verify.example.vn/v/7Q2M-K9XD-3FBH-TN0A-4RWC#SY1:NCFOXN%20...

A phone opens the page as for any URL; browsers never send the fragment to the server, and the
page's script can read it to check the signature offline. Base45 uses the QR alphanumeric set,
two of whose symbols are not allowed bare in a URL fragment: the space and ``%``. They are
written ``%20`` and ``%25``, which are themselves alphanumeric-set symbols, so the fragment
still encodes in the QR's compact alphanumeric mode (5.5 bits a symbol, against 8 in byte
mode); the URL before it, in lower case, takes byte mode.
"""

from __future__ import annotations

import hashlib
import zlib
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Final

import base45
import cbor2
from cbor2 import _decoder as cbor_python
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from pycose.algorithms import EdDSA
from pycose.exceptions import CoseException
from pycose.headers import KID, Algorithm
from pycose.keys.curves import Ed25519
from pycose.keys.keyparam import KpKty, OKPKpCurve, OKPKpD, OKPKpX
from pycose.keys.keytype import KtyOKP
from pycose.keys.okp import OKPKey
from pycose.messages.sign1message import Sign1Message

from saoy.core.errors import InvalidInput
from saoy.core.reception import codes

PREFIX: Final = "SY1:"
VERSION: Final = 1
KID_SIZE: Final = 8
MAX_TEXT: Final = 2048
"""Longest payload text accepted for decoding (a version 40 QR holds 4296 symbols)."""
_MAX_COSE: Final = 1024  # bytes after inflating; a real payload is under 200
_BASE45: Final = frozenset(base45.BASE45_CHARSET)

# Reasons (google.rpc.ErrorInfo.reason) telling apart what is wrong with a payload.
BAD_PREFIX: Final = "QR_BAD_PREFIX"
BAD_BASE45: Final = "QR_BAD_BASE45"
BAD_ZLIB: Final = "QR_BAD_ZLIB"
BAD_COSE: Final = "QR_BAD_COSE"
WRONG_KEY: Final = "QR_WRONG_KEY"
BAD_SIGNATURE: Final = "QR_BAD_SIGNATURE"
BAD_CONTENT: Final = "QR_BAD_CONTENT"


@dataclass(frozen=True)
class QrFields:
    """What the issuer puts in a payload."""

    code: str  # the verification code, any accepted spelling
    pages_sha256: bytes  # pages_digest(...) of the copy's page images
    pages: int
    issued_at: datetime  # timezone-aware; whole seconds are kept


@dataclass(frozen=True)
class QrPayload:
    """A decoded payload whose signature verified."""

    version: int
    code: str  # canonical grouped form
    pages_sha256: bytes
    pages: int
    issued_at: datetime  # UTC
    kid: bytes  # the issuer key id from the protected header


def pages_digest(page_sha256s: Sequence[bytes]) -> bytes:
    """SHA-256 over the concatenation of each page image's 32-byte SHA-256, in page order.

    Each page's hash is that of its image exactly as the PDF embeds it (the image XObject's
    stream bytes, still encoded; for a JPEG scan this is the file as received), so a verifier
    holding only the PDF can recompute it."""
    if not page_sha256s:
        raise ValueError("a copy has at least one page")
    for i, digest in enumerate(page_sha256s, 1):
        if len(digest) != 32:
            raise ValueError(f"page {i}: expected a 32-byte SHA-256, got {len(digest)} bytes")
    return hashlib.sha256(b"".join(page_sha256s)).digest()


def key_id(certificate: x509.Certificate) -> bytes:
    """The issuer key id: the first 8 bytes of SHA-256 over the certificate's DER."""
    der = certificate.public_bytes(serialization.Encoding.DER)
    return hashlib.sha256(der).digest()[:KID_SIZE]


def _raw(key: Ed25519PublicKey) -> bytes:
    return key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)


def _cose_key(private: Ed25519PrivateKey | None, public: Ed25519PublicKey) -> OKPKey:
    params: dict[Any, Any] = {KpKty: KtyOKP, OKPKpCurve: Ed25519, OKPKpX: _raw(public)}
    if private is not None:
        params[OKPKpD] = private.private_bytes(
            serialization.Encoding.Raw,
            serialization.PrivateFormat.Raw,
            serialization.NoEncryption(),
        )
    return OKPKey.from_dict(params)


def encode_payload(fields: QrFields, private_key: Ed25519PrivateKey, kid: bytes) -> str:
    """The signed payload text, ``SY1:`` followed by Base45."""
    if not isinstance(private_key, Ed25519PrivateKey):
        raise ValueError(f"the QR signing key must be Ed25519, got {type(private_key).__name__}")
    if len(kid) != KID_SIZE:
        raise ValueError(f"the issuer key id must be {KID_SIZE} bytes, got {len(kid)}")
    if len(fields.pages_sha256) != 32:
        raise ValueError("pages_sha256 must be a 32-byte SHA-256")
    if fields.pages < 1:
        raise ValueError("a copy has at least one page")
    if fields.issued_at.tzinfo is None or fields.issued_at.utcoffset() is None:
        raise ValueError("issued_at must be timezone-aware")
    content = {
        0: VERSION,
        1: codes.normalize(fields.code).replace("-", ""),
        2: bytes(fields.pages_sha256),
        3: fields.pages,
        4: int(fields.issued_at.timestamp()),
    }
    message = Sign1Message(
        phdr={Algorithm: EdDSA, KID: bytes(kid)},
        payload=cbor2.dumps(content, canonical=True),
        key=_cose_key(private_key, private_key.public_key()),
    )
    signed = message.encode(tag=True)
    compressed = zlib.compress(signed, 9)
    return PREFIX + base45.b45encode(compressed).decode("ascii")


def decode_payload(text: str, issuer: Ed25519PublicKey | x509.Certificate) -> QrPayload:
    """Check and read a payload text. ``issuer`` is the issuer's certificate (its key id must
    match the payload's) or its bare public key (the key id is then only reported).

    Raises InvalidInput whose ``reason`` says what is wrong: QR_BAD_PREFIX, QR_BAD_BASE45,
    QR_BAD_ZLIB, QR_BAD_COSE, QR_WRONG_KEY, QR_BAD_SIGNATURE or QR_BAD_CONTENT."""
    if isinstance(issuer, x509.Certificate):
        expected_kid: bytes | None = key_id(issuer)
        public = issuer.public_key()
    else:
        expected_kid, public = None, issuer
    if not isinstance(public, Ed25519PublicKey):
        raise ValueError(f"the issuer key must be Ed25519, got {type(public).__name__}")

    if not text.startswith(PREFIX):
        raise InvalidInput(
            f"this QR payload does not start with {PREFIX!r}: it is not a saoy copy's code, "
            "or it comes from a newer version",
            reason=BAD_PREFIX,
        )
    body = text[len(PREFIX) :]
    if len(text) > MAX_TEXT:
        raise InvalidInput(f"the QR payload is longer than {MAX_TEXT} symbols", reason=BAD_BASE45)
    if not body or not _BASE45.issuperset(body):
        raise InvalidInput(
            "the QR payload has symbols outside the Base45 alphabet (was it read completely?)",
            reason=BAD_BASE45,
        )
    try:
        compressed = base45.b45decode(body)
    except ValueError as error:
        raise InvalidInput("the QR payload is not valid Base45", reason=BAD_BASE45) from error

    try:
        inflater = zlib.decompressobj()
        signed = inflater.decompress(compressed, _MAX_COSE)
        if inflater.unconsumed_tail or not inflater.eof or inflater.unused_data:
            raise InvalidInput(
                "the QR payload's compressed data is truncated, too large or followed by extra "
                "bytes",
                reason=BAD_ZLIB,
            )
    except zlib.error as error:
        raise InvalidInput(
            "the QR payload's compressed data is damaged", reason=BAD_ZLIB
        ) from error

    try:
        # cbor2's C decoder, which pycose uses, leaks the error it raises (and every frame
        # that error holds) when a text string is not valid UTF-8 (agronholm/cbor2#257):
        # untrusted bytes reach it only once cbor2's pure-Python decoder has parsed them.
        cbor_python.loads(signed)
        message = Sign1Message.decode(signed)
        if not isinstance(message, Sign1Message):
            raise CoseException("not a COSE_Sign1 message")
        alg = message.phdr.get(Algorithm)
        kid = message.phdr.get(KID)
        if alg is not EdDSA:
            raise CoseException(f"algorithm {alg!r} instead of EdDSA")
        if not isinstance(kid, bytes) or len(kid) != KID_SIZE:
            raise CoseException("no 8-byte key id in the protected header")
        if not isinstance(message.payload, bytes) or not isinstance(message.signature, bytes):
            raise CoseException("payload or signature missing")
    except InvalidInput:
        raise
    except Exception as error:  # the COSE and CBOR decoders raise many kinds of errors
        raise InvalidInput(
            f"the QR payload is not a COSE_Sign1 message saoy writes: {error}", reason=BAD_COSE
        ) from error

    if expected_kid is not None and kid != expected_kid:
        raise InvalidInput(
            f"the QR payload was signed by another issuer key (key id {kid.hex()}, expected "
            f"{expected_kid.hex()})",
            reason=WRONG_KEY,
        )
    message.key = _cose_key(None, public)
    try:
        verified = message.verify_signature()
    except CoseException:
        verified = False
    if not verified:
        raise InvalidInput(
            "the QR payload's signature does not verify: it was altered or not signed by this "
            "issuer",
            reason=BAD_SIGNATURE,
        )
    return _content(message.payload, kid)


def _content(payload: bytes, kid: bytes) -> QrPayload:
    def bad(why: str) -> InvalidInput:
        return InvalidInput(f"the signed QR payload is malformed: {why}", reason=BAD_CONTENT)

    try:
        content = cbor_python.loads(payload)  # not the C decoder: see decode_payload
    except Exception as error:  # cbor2 raises several decode error types
        raise bad(str(error)) from error
    if not isinstance(content, dict) or set(content) != {0, 1, 2, 3, 4}:
        raise bad("expected a map with keys 0 to 4")
    version, code, digest, pages, issued = (content[k] for k in range(5))
    if version != VERSION or type(version) is not int:
        raise bad(f"version {version!r} is not supported")
    if not isinstance(code, str) or not codes.is_canonical(_group(code)):
        raise bad("the verification code is not valid")
    if not isinstance(digest, bytes) or len(digest) != 32:
        raise bad("the page hash is not 32 bytes")
    if type(pages) is not int or pages < 1:
        raise bad("the page count is not a positive integer")
    if type(issued) is not int or not 0 <= issued < 1 << 40:
        raise bad("the issue time is not a plausible epoch time")
    return QrPayload(version, _group(code), digest, pages, datetime.fromtimestamp(issued, UTC), kid)


def _group(symbols: str) -> str:
    return "-".join(symbols[i : i + codes.GROUP] for i in range(0, len(symbols), codes.GROUP))


_FRAGMENT_ESCAPES: Final = {" ": "%20", "%": "%25"}


def qr_text(url: str, payload_text: str) -> str:
    """The QR content: the verification URL, with the payload in its fragment (space and ``%``
    written ``%20`` and ``%25``, see the module docstring)."""
    if "#" in url or not url.lower().startswith(("https://", "http://")):
        raise ValueError(f"the verification URL must be http(s) without a fragment: {url!r}")
    if not payload_text.startswith(PREFIX):
        raise ValueError(f"the payload text must start with {PREFIX!r}")
    escaped = "".join(_FRAGMENT_ESCAPES.get(c, c) for c in payload_text)
    return f"{url}#{escaped}"


def split_qr_text(text: str) -> tuple[str, str]:
    """The verification URL and the payload text from a scanned QR content (or from a bare
    payload, whose URL is then ""). InvalidInput when there is no payload in it."""
    text = text.strip()
    if text.startswith(PREFIX):
        return "", text
    url, sep, fragment = text.partition("#")
    if not sep or not fragment.startswith(PREFIX):
        raise InvalidInput(
            f"the QR content carries no {PREFIX!r} payload after the URL", reason=BAD_PREFIX
        )
    parts = fragment.split("%")
    payload = [parts[0]]
    for part in parts[1:]:
        escape = part[:2]
        if escape == "20":
            payload.append(" ")
        elif escape == "25":
            payload.append("%")
        else:
            raise InvalidInput(
                f"the QR payload has an unexpected escape %{escape}", reason=BAD_BASE45
            )
        payload.append(part[2:])
    return url, "".join(payload)
