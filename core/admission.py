"""Admission of one page file, before any full decode, and the minimal quality gate.

Order matters: cheap checks first (size, magic bytes), then the header alone (dimensions,
frame count) against our own caps, and only then a full decode to catch damaged files.
The header is parsed by the format's own Pillow parser, never by ``Image.open``'s format
guessing, so Pillow's decompression-bomb check never decides anything: our caps run first.
"""

from __future__ import annotations

import hashlib
import struct
from dataclasses import dataclass

from PIL import Image, ImageOps

from saoy.core.errors import InvalidInput, TooLarge
from saoy.core.imaging import PreparedPage, draft_gray, open_image
from saoy.core.model import AdmittedPage

MiB = 1024 * 1024
FIELD = "chunk.data"

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
JPEG_SOI = b"\xff\xd8\xff"
TIFF_LE = b"II*\x00"
TIFF_BE = b"MM\x00*"

MIN_PLAUSIBLE_DPI = 100.0  # 72 and 96 are screen defaults written by software, not scans
MAX_PLAUSIBLE_DPI = 2400.0

SEND_SUPPORTED = "send JPEG, PNG or TIFF"


@dataclass(frozen=True)
class Limits:
    """What one page file may be. Checked in this order, all before a full decode."""

    max_page_bytes: int = 25 * MiB
    max_pixels: int = 60_000_000
    max_side: int = 12_000
    min_side: int = 300

    def __post_init__(self) -> None:
        for name in ("max_page_bytes", "max_pixels", "max_side", "min_side"):
            if getattr(self, name) <= 0:
                raise ValueError(f"{name} must be positive")
        if self.min_side > self.max_side:
            raise ValueError("min_side cannot exceed max_side")


def sniff(data: bytes) -> str | None:
    """The allowed format the magic bytes announce ("jpeg" | "png" | "tiff"), else None."""
    if data.startswith(JPEG_SOI):
        return "jpeg"
    if data.startswith(PNG_SIGNATURE):
        return "png"
    if data.startswith((TIFF_LE, TIFF_BE)):
        return "tiff"
    return None


def looks_like(data: bytes) -> str | None:
    """What a refused file obviously is, for the message; None when it is not obvious."""
    head = data[:64]
    if head.startswith(b"%PDF"):
        return "PDF"
    if head.startswith((b"GIF87a", b"GIF89a")):
        return "GIF"
    if head[4:8] == b"ftyp":
        brand = head[8:12]
        if brand in (b"heic", b"heix", b"hevc", b"hevx", b"heim", b"heis", b"mif1", b"msf1"):
            return "HEIC"
        if brand in (b"avif", b"avis"):
            return "AVIF"
        return "video"
    if head.startswith(b"RIFF") and head[8:12] == b"WEBP":
        return "WebP"
    if head.startswith(b"BM"):
        return "BMP"
    if head.startswith((b"\x00\x00\x00\x0cjP  ", b"\xff\x4f\xff\x51")):
        return "JPEG 2000"
    if head.startswith((b"II+\x00", b"MM\x00+")):
        return "BigTIFF"
    if head.startswith(b"PK\x03\x04"):
        return "ZIP/Office document"
    if head.lstrip().startswith(b"<"):
        return "HTML/XML/SVG"
    try:
        data[:4096].decode("utf-8")
    except UnicodeDecodeError:
        return None
    return "text"


_DAMAGED = "Tệp ảnh bị cắt cụt hoặc hỏng / The file is cut off or damaged: rescan"
_NOT_IMAGE = "Tệp không phải ảnh / The file is not an image"


def _invalid(message: str) -> InvalidInput:
    return InvalidInput(message, field=FIELD)


def admit(index: int, data: bytes, limits: Limits) -> AdmittedPage:
    """Admit one page file or raise InvalidInput / TooLarge with a message for the citizen."""
    return _admit(index, data, limits)[0]


def admit_decoded(index: int, data: bytes, limits: Limits) -> tuple[AdmittedPage, Image.Image]:
    """:func:`admit`, and the pixels its full decode produced, turned upright: hand them to
    ``prepare(page, image)`` so the page is not decoded a second time."""
    page, im = _admit(index, data, limits)
    if page.orientation != 1:
        im = ImageOps.exif_transpose(im)
    return page, im


def _admit(index: int, data: bytes, limits: Limits) -> tuple[AdmittedPage, Image.Image]:
    if not data:
        raise _invalid("Tệp rỗng / The file is empty: rescan the page")
    if len(data) > limits.max_page_bytes:
        raise TooLarge(
            f"Tệp quá lớn / The file is too large ({len(data) / MiB:.1f} MiB, "
            f"at most {limits.max_page_bytes / MiB:.0f} MiB): scan at 300 dpi",
            field=FIELD,
        )
    fmt = sniff(data)
    if fmt is None:
        kind = looks_like(data)
        what = f" (it looks like {kind})" if kind else ""
        raise _invalid(f"{_NOT_IMAGE}{what}: {SEND_SUPPORTED}")

    # Header only: the parser reads the headers and stops before the pixel data.
    try:
        im = open_image(data, fmt)
    except (SyntaxError, OSError, ValueError, EOFError, struct.error, IndexError, TypeError,
            KeyError, ZeroDivisionError):  # fmt: skip
        raise _invalid(_DAMAGED) from None
    with im:
        _check_dimensions(im.size, limits)
        if getattr(im, "n_frames", 1) != 1:
            raise _invalid(
                "Mỗi tệp chỉ một trang / One page per file: this file holds several pages"
            )
        draft_gray(im, fmt)  # a colour JPEG decodes to its luma: what preparation reads
        try:
            im.load()  # the full decode: truncated or corrupt data fails here
        except Image.DecompressionBombError:
            raise TooLarge(_too_many_pixels(im.size, limits), field=FIELD) from None
        except Exception:  # untrusted input: any decoder failure means a damaged file
            raise _invalid(_DAMAGED) from None
        width, height = im.size
        orientation = _orientation(im)  # after load: a PNG may carry eXIf after its pixels
        dpi = _dpi(im.info.get("dpi"))

    if orientation in (5, 6, 7, 8):
        width, height = height, width
    admitted = AdmittedPage(
        index=index,
        data=data,
        format=fmt,
        width=width,
        height=height,
        sha256=hashlib.sha256(data).hexdigest(),
        orientation=orientation,
        dpi=dpi,
    )
    return admitted, im


def _too_many_pixels(size: tuple[int, int], limits: Limits) -> str:
    w, h = size
    return (
        f"Ảnh quá lớn / The image is too large ({w}×{h} = {w * h / 1e6:.0f} megapixels, "
        f"at most {limits.max_pixels / 1e6:.0f}): scan at 300 dpi"
    )


def _check_dimensions(size: tuple[int, int], limits: Limits) -> None:
    w, h = size
    if w <= 0 or h <= 0:
        raise _invalid(_DAMAGED)
    if max(w, h) > limits.max_side:
        raise TooLarge(
            f"Ảnh quá lớn / The image is too large ({w}×{h} pixels, at most "
            f"{limits.max_side} per side): scan at 300 dpi",
            field=FIELD,
        )
    if w * h > limits.max_pixels:
        raise TooLarge(_too_many_pixels(size, limits), field=FIELD)
    if min(w, h) < limits.min_side:
        raise _invalid(
            f"Ảnh quá nhỏ / The image is too small ({w}×{h} pixels, at least "
            f"{limits.min_side} per side): scan at 300 dpi"
        )


def _orientation(im: Image.Image) -> int:
    try:
        value = int(im.getexif().get(0x0112, 1))
    except Exception:  # a broken EXIF block is ignored, as cameras and viewers do
        return 1
    return value if 1 <= value <= 8 else 1


def _dpi(value: object) -> float | None:
    """The horizontal resolution when the metadata states a plausible one."""
    if not isinstance(value, tuple) or not value:
        return None
    try:
        x = float(value[0])
        y = float(value[1]) if len(value) > 1 else x
    except (TypeError, ValueError):
        return None
    plausible = MIN_PLAUSIBLE_DPI <= x <= MAX_PLAUSIBLE_DPI
    if not plausible or not MIN_PLAUSIBLE_DPI <= y <= MAX_PLAUSIBLE_DPI:
        return None
    return round(x, 2)


# Quality gate. Grey-level thresholds are on the 0-255 scale of PreparedPage.gray; the focus and
# glare thresholds were set on synthetic kiosk captures (clients/simulator/docgen.py): the
# reference dossier's pages (Gaussian blur 0.4 px) measure 0.45-0.9 in focus, a blur of 1 px
# 0.11-0.23, 1.5 px 0.05-0.09, 3 px below 0.025; a white reflection of 1/10 of the card's
# area covers about 4 % of it in glare, the QR code's white modules about 0.5 %.

MIN_SHORT_SIDE = 480  # an ID card at about 225 dpi; fewer pixels and diacritics blur away
MIN_DPI = 150.0  # stated by the file, or estimated from the document's physical size
MIN_MEAN = 60.0  # a page darker than this on average is underexposed
INK_PERCENTILE = 0.1  # the darkest 0.1 % of pixels stand for the ink
PAPER_PERCENTILE = 90.0  # most of a page is paper
WASHED_OUT_INK = 160  # ink lighter than this on bright paper: overexposed
BRIGHT_PAPER = 230
MIN_INK_TO_PAPER = 80  # grey levels between ink and paper below which text is unreadable
MIN_FOCUS = 0.08  # PreparedPage.focus below this: motion or focus blur (about 1.5 px and more)
MAX_GLARE = 0.015  # PreparedPage.glare above this: a reflection hides part of the page

REASONS = (
    "CUT_OFF",
    "LOW_RESOLUTION",
    "TOO_DARK",
    "OVEREXPOSED",
    "LOW_CONTRAST",
    "GLARE",
    "BLURRED",
)


@dataclass(frozen=True)
class QualityIssue:
    """Why a page should be rescanned: a stable reason (one of :data:`REASONS`) and a message
    for the citizen, in Vietnamese then English, saying what to do."""

    reason: str
    message: str


def quality_issues(page: AdmittedPage, prepared: PreparedPage) -> list[QualityIssue]:
    """What makes this page unfit to certify, most actionable first; empty for a normal scan.

    A cut-off page is named first (the rest follows from it); glare and blur are judged only on
    a page whose exposure is right (a dark or washed-out page distorts both measures).
    """
    issues = []
    if prepared.cut_off:
        issues.append(
            QualityIssue(
                "CUT_OFF",
                "Giấy tờ bị cắt mất mép / The edge of the card or page is cut off: place the "
                "whole document inside the frame and rescan",
            )
        )
    short = min(page.width, page.height)
    stated_low = page.dpi is not None and page.dpi < MIN_DPI
    estimated_low = prepared.dpi_estimate is not None and prepared.dpi_estimate < MIN_DPI
    if short < MIN_SHORT_SIDE or stated_low or estimated_low:
        dpi = page.dpi if stated_low else prepared.dpi_estimate if estimated_low else None
        about = f", about {dpi:.0f} dpi" if dpi is not None else ""
        issues.append(
            QualityIssue(
                "LOW_RESOLUTION",
                "Ảnh có độ phân giải thấp / The resolution is too low "
                f"({page.width}×{page.height}{about}): rescan at 300 dpi",
            )
        )
    ink = prepared.percentile(INK_PERCENTILE)
    paper = prepared.percentile(PAPER_PERCENTILE)
    exposure = len(issues)
    if prepared.mean < MIN_MEAN:
        issues.append(
            QualityIssue(
                "TOO_DARK",
                "Ảnh quá tối / The image is too dark: check the lighting and rescan",
            )
        )
    elif ink >= WASHED_OUT_INK and paper >= BRIGHT_PAPER:
        issues.append(
            QualityIssue(
                "OVEREXPOSED",
                "Ảnh quá sáng, chữ bị mờ / The image is too bright or blank: "
                "the text is washed out, rescan",
            )
        )
    elif paper - ink < MIN_INK_TO_PAPER:
        issues.append(
            QualityIssue(
                "LOW_CONTRAST",
                "Ảnh thiếu tương phản / The text barely stands out from the paper: "
                "rescan the original, not a faded copy",
            )
        )
    if len(issues) > exposure:
        return issues
    if prepared.glare > MAX_GLARE:
        issues.append(
            QualityIssue(
                "GLARE",
                "Ảnh bị lóa sáng / Light reflects off the document: avoid glare (tilt it "
                "slightly or shade it from the lamp) and rescan",
            )
        )
    if prepared.focus is not None and prepared.focus < MIN_FOCUS:
        issues.append(
            QualityIssue(
                "BLURRED",
                "Ảnh bị nhòe / The image is blurred: hold still until the scan is taken, "
                "then rescan",
            )
        )
    return issues
