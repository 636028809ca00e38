"""Write the seed corpora under fuzz/corpus/: small valid inputs of each kind, so the fuzzers
start from the shapes real inputs have. Deterministic; run again after changing it and commit
what changes.

    .venv/bin/python fuzz/make_seeds.py
"""

from __future__ import annotations

import datetime as dt
import hashlib
import io
import shutil
import sys
import zlib
from pathlib import Path

import base45
from PIL import Image, ImageDraw, PngImagePlugin
from pycose.messages.sign1message import Sign1Message

HERE = Path(__file__).resolve().parent
CORPUS = HERE / "corpus"
sys.path.insert(0, str(HERE))

import fuzz_qrpayload  # noqa: E402  (the fuzzing issuer key lives with its harness)

from saoy.core import codes  # noqa: E402
from saoy.core.qrpayload import QrFields, encode_payload, pages_digest, qr_text  # noqa: E402


def _page(mode: str, size: tuple[int, int] = (320, 300)) -> Image.Image:
    """A plain page with a few lines of 'text': compresses to little in every format."""
    im = Image.new("L", size, 255)
    draw = ImageDraw.Draw(im)
    for y in range(40, size[1] - 40, 30):
        draw.rectangle((30, y, size[0] - 60, y + 8), fill=0)
    return im.convert(mode)


def _save(im: Image.Image, fmt: str, **params: object) -> bytes:
    out = io.BytesIO()
    im.save(out, fmt, **params)
    return out.getvalue()


def _exif(orientation: int) -> bytes:
    exif = Image.Exif()
    exif[0x0112] = orientation
    return exif.tobytes()


def admission_seeds() -> dict[str, bytes]:
    text = PngImagePlugin.PngInfo()
    text.add_text("Comment", "scanned at the kiosk " * 8, zip=True)
    return {
        "gray.jpg": _save(_page("L"), "JPEG", quality=30, dpi=(300, 300)),
        "rgb.jpg": _save(_page("RGB"), "JPEG", quality=30),
        "progressive.jpg": _save(_page("RGB"), "JPEG", quality=30, progressive=True),
        "rotated.jpg": _save(_page("L"), "JPEG", quality=30, exif=_exif(6)),
        "gray.png": _save(_page("L"), "PNG", optimize=True, dpi=(300, 300)),
        "bilevel.png": _save(_page("1"), "PNG"),
        "palette.png": _save(_page("P"), "PNG"),
        "interlaced_ztxt.png": _save(_page("RGB"), "PNG", interlace=1, pnginfo=text),
        "rotated.png": _save(_page("L"), "PNG", exif=_exif(8)),
        "deflate.tif": _save(_page("L"), "TIFF", compression="tiff_adobe_deflate"),
        "lzw.tif": _save(_page("RGB"), "TIFF", compression="tiff_lzw"),
        "packbits.tif": _save(_page("L"), "TIFF", compression="packbits", dpi=(300, 300)),
        "group4.tif": _save(_page("1"), "TIFF", compression="group4"),
        "too_small.png": _save(_page("L", (40, 30)), "PNG"),
    }


def qrpayload_seeds() -> dict[str, bytes]:
    key = fuzz_qrpayload.DEV_KEY
    kid = fuzz_qrpayload.DEV_KID
    seeds = {}
    for i, (data, pages) in enumerate(
        [("7K3M9Q2PXW4RT8NZ5AB", 1), ("0000000000000000000", 3), ("ZZZZZZZZZZZZZZZZZZZ", 40)]
    ):
        code = data + codes.check_symbol(data)
        digest = pages_digest([hashlib.sha256(b"page %d" % n).digest() for n in range(pages)])
        issued = dt.datetime(2026, 5, 1, 3, 4, 5, tzinfo=dt.UTC) + dt.timedelta(days=i)
        text = encode_payload(QrFields(code, digest, pages, issued), key, kid)
        seeds[f"payload{i}.txt"] = text.encode()
        if i == 0:
            url = qr_text(f"https://verify.saoy.gov.vn/v/{code}", text)
            seeds["qr_url.txt"] = url.encode()
            seeds["content.cbor"] = _content_of(text)
    seeds["base45_hello.txt"] = b"SY1:" + base45.b45encode(b"Hello!!")
    seeds["base45_zlib.txt"] = b"SY1:" + base45.b45encode(zlib.compress(b"\xd2\x84"))
    seeds["bare_base45.txt"] = base45.b45encode(b"ietf!")
    return seeds


def _content_of(text: str) -> bytes:
    """The CBOR content inside a payload text (the seed for the signed-content path)."""
    signed = zlib.decompress(base45.b45decode(text[len("SY1:") :]))
    message = Sign1Message.decode(signed)
    assert isinstance(message.payload, bytes)
    return message.payload


SPECIMEN = "\n".join(
    (
        "I<UTOD231458907<<<<<<<<<<<<<<<",
        "7408122F1204159UTO<<<<<<<<<<<6",
        "ERIKSSON<<ANNA<MARIA<<<<<<<<<<",
    )
)


def _vn_zone() -> str:
    from saoy.core.documents.mrz import check_digit

    pin = "001094012345"
    number = pin[3:]
    line1 = f"IDVNM{number}{check_digit(number)}{pin}<<<"
    born, expires = "940512", "340512"
    part = f"{born}{check_digit(born)}M{expires}{check_digit(expires)}VNM"
    line2 = part + "<" * 11
    line2 += str(check_digit(line1[5:30] + line2[0:7] + line2[8:15] + line2[18:29]))
    return f"{line1}\n{line2}\nNGUYEN<<VAN<AN<<<<<<<<<<<<<<<<"


def documents_seeds() -> dict[str, bytes]:
    vn = _vn_zone()
    garbled = vn.replace("0", "O", 2).replace("<<<<<", "<<«<", 1)
    return {
        "td1_specimen.txt": SPECIMEN.encode(),
        "td1_vn.txt": vn.encode(),
        "td1_two_reads.txt": f"CĂN CƯỚC\n{vn}\n\n{garbled}".encode(),
        "td1_doubled.txt": vn.replace("94", "944", 1).encode(),
        "card_qr_2021.txt": "001094012345|123456789|Nguyễn Văn An|12051994|Nam|"
        "Số 1 Tràng Tiền, Hoàn Kiếm, Hà Nội|01022021".encode(),
        "card_qr_2024.txt": "001094012345|Nguyễn Văn An|123456789|Nguyễn Văn Bình|"
        "001060000001|Trần Thị Cúc".encode(),
        "card_qr_number_only.txt": b"001094012345|",
    }


def main() -> None:
    for target, seeds in (
        ("admission", admission_seeds()),
        ("qrpayload", qrpayload_seeds()),
        ("documents", documents_seeds()),
    ):
        folder = CORPUS / target
        shutil.rmtree(folder, ignore_errors=True)
        folder.mkdir(parents=True)
        for name, data in seeds.items():
            (folder / name).write_bytes(data)
        total = sum(len(d) for d in seeds.values())
        print(f"{target}: {len(seeds)} seeds, {total:,} bytes")


if __name__ == "__main__":
    main()
