"""Inputs the fuzzing harnesses in fuzz/ found, each refused the documented way now."""

from __future__ import annotations

import gc
import io
import struct
import zlib

import base45
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from PIL import Image

from saoy.core import qrpayload
from saoy.core.admission import Limits, admit
from saoy.core.errors import InvalidInput


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
