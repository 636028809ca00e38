"""Write the seed corpora under fuzz/corpus/: small valid inputs of each kind, so the fuzzers
start from the shapes real inputs have. Deterministic but for the signed PDFs of
``pdfverify`` (a new dev PKI each run); run again after changing it and commit what changes.

    .venv/bin/python fuzz/make_seeds.py                      # every corpus
    .venv/bin/python fuzz/make_seeds.py certify authenticate # those only
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
from streams import encode as records  # noqa: E402

from saoy.core.reception import codes  # noqa: E402
from saoy.core.trust.qrpayload import QrFields, encode_payload, pages_digest, qr_text  # noqa: E402


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


def pdfverify_seeds() -> dict[str, bytes]:
    """A signed copy of one small page (B-T, from a dev PKI made for the purpose: the harness
    trusts another, so its signatures read as untrusted but are checked all the same), the
    same copy unsigned, with bytes appended after signing, and a minimal PDF."""
    import tempfile

    from saoy.core.model import CertificationBlock, RenderPage
    from saoy.core.render import render_copy
    from saoy.core.trust.pki import ensure_dev_pki
    from saoy.core.trust.signing import signer_from_dev_pki

    at = dt.datetime(2026, 5, 1, 3, 4, 5, tzinfo=dt.UTC)
    code = "7K3M9Q2PXW4RT8NZ5AB"
    code += codes.check_symbol(code)
    grouped = "-".join(code[i : i + 4] for i in range(0, 20, 4))
    block = CertificationBlock(
        code=grouped, url=f"http://localhost:8080/v/{grouped}", issuer="saoy fuzzing", issued_at=at
    )
    page = RenderPage(_save(_page("L"), "JPEG", quality=30), "jpeg", 320, 300, 100.0)
    unsigned = render_copy([page], block)
    with tempfile.TemporaryDirectory() as work:
        pki = ensure_dev_pki(Path(work) / "pki", organization="saoy fuzzing", passphrase=b"seed")
        signer = signer_from_dev_pki(pki, signing_time=at, level="B-T", seal=False)
        import asyncio

        signed = asyncio.run(signer.sign(unsigned))
    minimal = (
        b"%PDF-1.4\n1 0 obj<</Type/Catalog/Pages 2 0 R>>endobj\n"
        b"2 0 obj<</Type/Pages/Kids[3 0 R]/Count 1>>endobj\n"
        b"3 0 obj<</Type/Page/Parent 2 0 R/MediaBox[0 0 612 792]>>endobj\n"
        b"trailer<</Root 1 0 R>>\n%%EOF\n"
    )
    return {
        "copy_signed.pdf": signed,
        "copy_unsigned.pdf": unsigned,
        "copy_appended.pdf": signed + b"\n% appended after signing\n",
        "minimal.pdf": minimal,
    }


def _card() -> bytes:
    """The front of an ID card as a kiosk scans it (about 1000 x 640, 300 dpi): the smallest
    page the quality gate admits."""
    from saoy.clients.simulator import docgen

    card = docgen.id_card_front(docgen.random_person(3), seed=3)
    return docgen.encode(docgen._image(card).convert("L"), "jpeg", 35)


def certify_seeds() -> dict[str, bytes]:
    """Message sequences of the Certify stream (``fuzz_certify.py`` says how records map to
    messages): whole dossiers, a page in two chunks, hints, a replay, and the usual mistakes."""
    page = _card()
    small = _save(_page("L"), "PNG")

    def header(request_id: str = "NEW", hints: str = "", token: str = "") -> tuple[int, bytes]:
        return 0, b"\x00".join(s.encode() for s in (request_id, "kiosk-fuzz", token, hints))

    def chunk(index: int, data: bytes, last: bool = True) -> tuple[int, bytes]:
        return 1, bytes([index, int(last)]) + data

    def end(pages: int) -> tuple[int, bytes]:
        return 2, bytes([pages])

    return {
        "dossier.rec": records([header(), chunk(0, page), end(1)]),
        "two_chunks.rec": records(
            [header(), chunk(0, page[:9000], False), chunk(0, page[9000:]), end(1)]
        ),
        "two_pages_hints.rec": records(
            [header(hints="generic@0;cccd_front@1"), chunk(0, small), chunk(1, page), end(2)]
        ),
        "replay.rec": records([header("fuzz-replay-0001"), chunk(0, page), end(1)]),
        "token.rec": records([header(token="sst_" + "A" * 43), end(0)]),
        "chunk_first.rec": records([chunk(0, small), header(), end(1)]),
        "two_headers.rec": records([header(), header(), end(0)]),
        "wrong_count.rec": records([header(), chunk(0, small), end(3)]),
        "empty_message.rec": records([header(), (3, b""), end(0)]),
    }


def authenticate_seeds() -> dict[str, bytes]:
    """Message sequences of the Authenticate stream (``fuzz_authenticate.py`` says how records
    map to messages): a card and frames in order, and the usual mistakes."""
    from saoy.clients.simulator import docgen

    card_image = docgen._image(docgen.id_card_front(docgen.random_person(5), seed=5))
    card = docgen.encode(card_image.resize((500, 320)), "jpeg", 40)
    frame = _save(_page("RGB", (320, 240)), "JPEG", quality=40)
    header = (0, b"kiosk-fuzz")

    def frame_at(ms: int, image: bytes = frame, unset: bool = False) -> tuple[int, bytes]:
        return 2, ms.to_bytes(2, "big", signed=True) + bytes([int(unset)]) + image

    return {
        "card_frames.rec": records(
            [header, (1, b"\x01" + card), frame_at(10), frame_at(20), frame_at(30), (3, b"\x03")]
        ),
        "card_in_chunks.rec": records(
            [header, (1, b"\x00" + card[:4000]), (1, b"\x01" + card[4000:]), (3, b"\x00")]
        ),
        "frame_unset_time.rec": records(
            [header, (1, b"\x01" + card), frame_at(0, unset=True), (3, b"\x01")]
        ),
        "frame_from_the_past.rec": records(
            [header, (1, b"\x01" + card), frame_at(-30000), (3, b"\x01")]
        ),
        "frame_before_card.rec": records([header, frame_at(10), (3, b"\x01")]),
        "no_header.rec": records([(1, b"\x01" + card), (3, b"\x00")]),
        "empty_message.rec": records([header, (4, b"")]),
    }


SEEDS = {
    "admission": admission_seeds,
    "qrpayload": qrpayload_seeds,
    "documents": documents_seeds,
    "pdfverify": pdfverify_seeds,
    "certify": certify_seeds,
    "authenticate": authenticate_seeds,
}


def main() -> None:
    """Write every corpus, or those named on the command line."""
    targets = sys.argv[1:] or list(SEEDS)
    for target, seeds in ((t, SEEDS[t]()) for t in targets):
        folder = CORPUS / target
        shutil.rmtree(folder, ignore_errors=True)
        folder.mkdir(parents=True)
        for name, data in seeds.items():
            (folder / name).write_bytes(data)
        total = sum(len(d) for d in seeds.values())
        print(f"{target}: {len(seeds)} seeds, {total:,} bytes")


if __name__ == "__main__":
    main()
