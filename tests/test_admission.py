"""Admission of page files: allow-list, caps before decoding, damaged files, orientation, and
the quality gate."""

from __future__ import annotations

import hashlib
import io
import struct
import time
import warnings
import zlib
from collections.abc import Callable

import numpy as np
import pytest
from PIL import Image

from saoy.clients.simulator import docgen
from saoy.core.errors import InvalidInput, TooLarge
from saoy.core.pages.admission import Limits, admit, quality_issues
from saoy.core.pages.imaging import prepare, render_image

LIMITS = Limits()


@pytest.fixture(scope="module")
def card() -> Image.Image:
    return docgen.id_card_front(docgen.random_person(0), 0).image


@pytest.fixture(scope="module")
def card_jpeg(card: Image.Image) -> bytes:
    return docgen.encode(card, "jpeg", 90)


def _encode(img: Image.Image, fmt: str, **params: object) -> bytes:
    out = io.BytesIO()
    img.save(out, fmt, **params)
    return out.getvalue()


def _png_with_ihdr(width: int, height: int) -> bytes:
    """A small, well-formed PNG whose header claims ``width`` x ``height`` grey pixels."""

    def chunk(kind: bytes, body: bytes) -> bytes:
        crc = zlib.crc32(kind + body) & 0xFFFFFFFF
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", crc)

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    idat = zlib.compress(b"\x00" * 1024)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", idat) + chunk(b"IEND", b"")


@pytest.mark.parametrize(
    ("fmt", "params"),
    [("JPEG", {"quality": 90}), ("PNG", {}), ("TIFF", {"compression": "tiff_lzw"})],
)
def test_admits_jpeg_png_and_tiff_with_size_format_and_hash(
    card: Image.Image, fmt: str, params: dict[str, object]
) -> None:
    data = _encode(card, fmt, **params)
    page = admit(3, data, LIMITS)
    assert page.index == 3
    assert page.format == fmt.lower()
    assert (page.width, page.height) == card.size
    assert page.orientation == 1
    assert page.data is data
    assert page.sha256 == hashlib.sha256(data).hexdigest()


def test_reference_dossier_pages_are_admitted_with_their_dpi() -> None:
    pages = [admit(i, data, LIMITS) for i, (_, data) in enumerate(docgen.reference_dossier(0))]
    expected = [(1000, 640)] * 2 + [(2480, 3508)] * 2  # before a skew of under 1 degree
    for page, (width, height) in zip(pages, expected, strict=True):
        assert width <= page.width <= width * 1.03 and height <= page.height <= height * 1.03
    assert [p.dpi for p in pages[2:]] == [300.0, 300.0]


def test_screen_default_dpi_is_not_trusted(card: Image.Image) -> None:
    assert admit(0, _encode(card, "PNG", dpi=(72, 72)), LIMITS).dpi is None
    assert admit(0, _encode(card, "PNG", dpi=(300, 300)), LIMITS).dpi == pytest.approx(300, 0.01)


@pytest.mark.parametrize(
    ("data", "named"),
    [
        ("Xin chào, đây là văn bản.".encode(), "text"),
        (b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n1 0 obj\n<< /Type /Catalog >>\nendobj\n", "PDF"),
        (b"GIF89a\x01\x00\x01\x00\x80\x00\x00\xff\xff\xff\x00\x00\x00!\xf9\x04", "GIF"),
        (b"\x00\x00\x00\x18ftypheic\x00\x00\x00\x00mif1heic", "HEIC"),
        (bytes(range(256)) * 4, None),
    ],
)
def test_non_images_are_refused_naming_what_they_look_like(data: bytes, named: str | None) -> None:
    with pytest.raises(InvalidInput) as info:
        admit(0, data, LIMITS)
    assert "JPEG, PNG or TIFF" in info.value.message
    assert info.value.field == "chunk.data"
    assert info.value.status == "INVALID_ARGUMENT"
    if named:
        assert named in info.value.message


def test_gif_is_refused_even_when_pillow_could_read_it(card: Image.Image) -> None:
    with pytest.raises(InvalidInput, match="GIF"):
        admit(0, _encode(card.convert("P"), "GIF"), LIMITS)


def test_empty_file_is_refused() -> None:
    with pytest.raises(InvalidInput, match="empty"):
        admit(0, b"", LIMITS)


@pytest.mark.parametrize("fmt", ["JPEG", "PNG", "TIFF"])
def test_truncated_file_is_refused_as_damaged(card: Image.Image, fmt: str) -> None:
    data = _encode(card, fmt)
    with pytest.raises(InvalidInput, match="cut off or damaged") as info:
        admit(0, data[: len(data) // 2], LIMITS)
    assert info.value.field == "chunk.data"


def test_garbage_after_a_valid_signature_is_refused_as_damaged() -> None:
    with pytest.raises(InvalidInput, match="damaged"):
        admit(0, b"\xff\xd8\xff\xe0" + bytes(500), LIMITS)


def test_file_over_the_byte_cap_is_too_large(card_jpeg: bytes) -> None:
    with pytest.raises(TooLarge) as info:
        admit(0, card_jpeg, Limits(max_page_bytes=len(card_jpeg) - 1))
    assert info.value.status == "RESOURCE_EXHAUSTED"
    assert info.value.field == "chunk.data"


def test_header_claiming_huge_dimensions_is_too_large_without_decoding() -> None:
    data = _png_with_ihdr(40_000, 40_000)  # 1.6 gigapixels in a 100-byte file
    start = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # Pillow's decompression-bomb warning must not fire
        with pytest.raises(TooLarge, match="too large"):
            admit(0, data, LIMITS)
    assert time.perf_counter() - start < 0.5


def test_pixel_cap_applies_to_a_real_image_before_decoding(card_jpeg: bytes) -> None:
    with pytest.raises(TooLarge, match="megapixels"):
        admit(0, card_jpeg, Limits(max_pixels=500_000))


def test_side_cap_applies(card_jpeg: bytes) -> None:
    with pytest.raises(TooLarge, match="per side"):
        admit(0, card_jpeg, Limits(max_side=999))


def test_image_below_the_minimum_side_is_refused() -> None:
    small = Image.new("RGB", (400, 200), "white")
    with pytest.raises(InvalidInput, match="too small"):
        admit(0, _encode(small, "PNG"), LIMITS)


def test_multi_page_tiff_is_refused(card: Image.Image) -> None:
    out = io.BytesIO()
    card.save(out, "TIFF", save_all=True, append_images=[card])
    with pytest.raises(InvalidInput, match="One page per file"):
        admit(0, out.getvalue(), LIMITS)


def test_limits_reject_nonsense() -> None:
    with pytest.raises(ValueError):
        Limits(max_pixels=0)
    with pytest.raises(ValueError):
        Limits(min_side=500, max_side=400)


def _rotated_jpeg(card: Image.Image) -> bytes:
    """The card as a camera stores it when held sideways: pixels rotated, EXIF says 6."""
    exif = Image.Exif()
    exif[0x0112] = 6
    stored = card.transpose(Image.Transpose.ROTATE_90)  # 640 x 1000 as stored
    return _encode(stored, "JPEG", quality=92, exif=exif.tobytes())


def test_exif_orientation_6_reports_upright_size(card: Image.Image) -> None:
    page = admit(0, _rotated_jpeg(card), LIMITS)
    assert page.orientation == 6
    assert (page.width, page.height) == (1000, 640)  # stored as 640 x 1000
    prepared = prepare(page)
    assert prepared.gray.shape == (640, 1000)
    reference = np.asarray(card.convert("L"), dtype=np.int16)
    assert np.abs(prepared.gray.astype(np.int16) - reference).mean() < 4  # upright again


def test_render_image_passes_upright_jpeg_and_png_through(card: Image.Image) -> None:
    for fmt in ("JPEG", "PNG"):
        data = _encode(card, fmt)
        assert render_image(admit(0, data, LIMITS)) == (data, fmt.lower())


def test_render_image_makes_a_lossless_upright_png_otherwise(card: Image.Image) -> None:
    rotated = admit(0, _rotated_jpeg(card), LIMITS)
    tiff = admit(0, _encode(card, "TIFF"), LIMITS)
    cmyk = admit(0, _encode(card.convert("CMYK"), "JPEG"), LIMITS)
    for page in (rotated, tiff, cmyk):
        data, fmt = render_image(page)
        assert fmt == "png"
        with Image.open(io.BytesIO(data)) as im:
            assert im.format == "PNG"
            assert im.size == (page.width, page.height) == (1000, 640)
    with Image.open(io.BytesIO(render_image(tiff)[0])) as im:
        assert np.array_equal(np.asarray(im.convert("RGB")), np.asarray(card))


def test_normal_scans_pass_the_quality_gate() -> None:
    for _, data in docgen.reference_dossier(1):
        page = admit(0, data, LIMITS)
        assert quality_issues(page, prepare(page)) == []


def test_tiny_image_has_low_resolution(card: Image.Image) -> None:
    page = admit(0, _encode(card.resize((450, 300)), "PNG"), LIMITS)
    issues = quality_issues(page, prepare(page))
    assert [i.reason for i in issues] == ["LOW_RESOLUTION"]
    assert "300 dpi" in issues[0].message


def test_stated_low_dpi_has_low_resolution(card: Image.Image) -> None:
    # A page of no known physical size (not card- or A4-shaped): the stated DPI decides.
    wide = Image.new("RGB", (1200, 640), (255, 255, 255))
    wide.paste(card, (100, 0))
    page = admit(0, _encode(wide, "PNG", dpi=(120, 120)), LIMITS)
    assert [i.reason for i in quality_issues(page, prepare(page))] == ["LOW_RESOLUTION"]


def test_a_card_tagged_with_a_wrong_low_dpi_is_judged_by_its_size(card: Image.Image) -> None:
    # 1000 px over the card's 85.6 mm is about 297 dpi: the 120 dpi tag is wrong.
    page = admit(0, _encode(card, "PNG", dpi=(120, 120)), LIMITS)
    assert quality_issues(page, prepare(page)) == []


@pytest.mark.parametrize(
    ("transform", "reason"),
    [
        (lambda a: a // 6, "TOO_DARK"),
        (lambda a: 200 + a // 5, "OVEREXPOSED"),
        (lambda a: 110 + a // 4, "LOW_CONTRAST"),
    ],
)
def test_exposure_problems_are_named(
    card: Image.Image, transform: Callable[[np.ndarray], np.ndarray], reason: str
) -> None:
    pixels = transform(np.asarray(card.convert("L")).astype(np.uint16)).astype(np.uint8)
    page = admit(0, _encode(Image.fromarray(pixels, "L"), "PNG"), LIMITS)
    assert [i.reason for i in quality_issues(page, prepare(page))] == [reason]
