"""Admission of one page file, before any full decode, and the minimal quality gate.

Order matters: cheap checks first (size, magic bytes), then the header alone (dimensions,
frame count) against our own caps, and only then a full decode to catch damaged files.
The header is parsed by the format's own Pillow parser, never by ``Image.open``'s format
guessing, so Pillow's decompression-bomb check never decides anything: our caps run first.
"""

from __future__ import annotations

import hashlib
import re
import struct
import zlib
from collections.abc import Iterable
from dataclasses import dataclass

from PIL import Image, ImageOps

from saoy.core.errors import InvalidInput, TooLarge
from saoy.core.model import AdmittedPage
from saoy.core.pages.imaging import DOCUMENT_SIZES, PreparedPage, draft_gray, open_image

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

    # The container's structure, walked without decoding anything (bounded work whatever
    # the file claims): how many chunks, markers and scans, how far compressed data expands.
    if fmt == "png":
        _check_png(data, limits)
    elif fmt == "jpeg":
        _check_jpeg(data)
    # Header only: the parser reads the headers and stops before the pixel data.
    try:
        im = open_image(data, fmt)
    except (SyntaxError, OSError, ValueError, EOFError, struct.error, IndexError, TypeError,
            KeyError, ZeroDivisionError):  # fmt: skip
        raise _invalid(_DAMAGED) from None
    with im:
        _check_dimensions(im.size, limits)
        # is_animated looks at the next frame's offset only; n_frames would walk every frame
        # (a TIFF can chain hundreds of thousands of them).
        if getattr(im, "is_animated", False) or (fmt == "png" and im.n_frames != 1):
            raise _invalid(
                "Mỗi tệp chỉ một trang / One page per file: this file holds several pages"
            )
        if fmt == "tiff":
            try:
                _check_tiff_strips(im, data)
            except (ValueError, TypeError, OverflowError):  # a tag of the wrong type or value
                raise _invalid(_DAMAGED) from None
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


# Structure caps. Scanners and image libraries stay far below each: libpng writes IDAT in
# 8 KiB chunks (3,200 for the largest page allowed), libjpeg a progressive JPEG in at most
# 10 scans, and a page has a handful of metadata blocks.
MAX_PNG_CHUNKS = 10_000
MAX_PNG_METADATA_BYTES = 4 * MiB  # iCCP, zTXt and compressed iTXt, inflated, all together
MAX_JPEG_SEGMENTS = 1_000
MAX_JPEG_SCANS = 100
MAX_TIFF_PIECES = 65_536  # strips or tiles
_INFLATE_STEP = MiB  # compressed data is inflated this much at a time, and dropped
_PNG_CHANNELS = {0: 1, 2: 3, 3: 1, 4: 2, 6: 4}
_ADAM7 = ((0, 0, 8, 8), (4, 0, 8, 8), (0, 4, 4, 8), (2, 0, 4, 4), (0, 2, 2, 4), (1, 0, 2, 2),
          (0, 1, 1, 2))  # fmt: skip
_JPEG_MARKER = re.compile(rb"\xff[^\x00\xd0-\xd7\xff]")  # what ends entropy-coded data
_RESAVE = "save the scan again with the scanner's or a common program's default settings"


def _structure_too_large(what: str, count: int, limit: int) -> TooLarge:
    return TooLarge(
        f"Cấu trúc tệp ảnh bất thường / The file holds {what} ({count:,}, at most "
        f"{limit:,}): {_RESAVE}",
        field=FIELD,
    )


def _inflated_size(pieces: Iterable[memoryview], limit: int) -> int:
    """Inflate the zlib stream split over ``pieces`` a step at a time, keeping nothing: the
    bytes it produced, counted up to its end or until past ``limit`` (a broken stream stops
    the count where it breaks: the decoder will say what is wrong)."""
    inflater = zlib.decompressobj()
    produced = 0
    try:
        for piece in pieces:
            pending = bytes(piece)
            while pending and not inflater.eof:
                produced += len(inflater.decompress(pending, _INFLATE_STEP))
                if produced > limit:
                    return produced
                pending = inflater.unconsumed_tail
            if inflater.eof:
                break
    except zlib.error:
        pass
    return produced


def _expansion_too_large(what: str, limit: str, action: str) -> TooLarge:
    return TooLarge(
        f"Dữ liệu nén trong tệp ảnh quá lớn / The file's {what} expands beyond {limit}: {action}",
        field=FIELD,
    )


def _size(n: int) -> str:
    return f"{n / MiB:.1f} MiB" if n >= MiB else f"{n / 1024:.0f} KiB" if n >= 1024 else f"{n} B"


def _png_raw_size(width: int, height: int, depth: int, colour: int, interlaced: bool) -> int:
    """The bytes a PNG's IDAT stream inflates to: each row's filter byte and pixels."""
    bits = depth * _PNG_CHANNELS.get(colour, 4)
    passes = _ADAM7 if interlaced else ((0, 0, 1, 1),)
    total = 0
    for x0, y0, dx, dy in passes:
        w, h = -(-(width - x0) // dx), -(-(height - y0) // dy)
        if w > 0 and h > 0:
            total += h * (1 + -(-w * bits // 8))
    return total


def _check_png(data: bytes, limits: Limits) -> None:
    """Walk the chunks: at most :data:`MAX_PNG_CHUNKS`, compressed metadata within
    :data:`MAX_PNG_METADATA_BYTES`, and the image data inflating to no more than its pixels.
    A damaged file is left for the decoder to refuse."""
    view = memoryview(data)
    pos, chunks, metadata = 8, 0, 0
    header: tuple[int, ...] | None = None
    idat: list[memoryview] = []
    while pos + 12 <= len(data):
        length, kind = struct.unpack_from(">I4s", data, pos)
        body, end = pos + 8, pos + 8 + length
        if end + 4 > len(data):
            break
        chunks += 1
        if chunks > MAX_PNG_CHUNKS:
            raise _structure_too_large("too many PNG chunks", chunks, MAX_PNG_CHUNKS)
        if kind == b"IHDR" and length >= 13:
            header = struct.unpack_from(">IIBBBBB", data, body)
            _check_dimensions((header[0], header[1]), limits)
        elif kind == b"IDAT":
            idat.append(view[body:end])
        elif kind in (b"iCCP", b"zTXt", b"iTXt"):
            compressed = _png_compressed_text(kind, view[body:end])
            if compressed is not None:
                metadata += _inflated_size([compressed], MAX_PNG_METADATA_BYTES - metadata)
                if metadata > MAX_PNG_METADATA_BYTES:
                    raise _expansion_too_large(
                        "embedded metadata (colour profile or text)",
                        f"{_size(MAX_PNG_METADATA_BYTES)} in all",
                        "save the scan again without embedded metadata",
                    )
        elif kind == b"IEND":
            break
        pos = end + 4
    if header is None or not idat:
        return
    width, height, depth, colour, _, _, interlace = header
    raw = _png_raw_size(width, height, depth, colour, interlace == 1)
    if _inflated_size(idat, raw) > raw:
        raise _expansion_too_large(
            "compressed image data",
            f"the {_size(raw)} its {width}×{height} pixels need",
            "the file is malformed or crafted; rescan the page",
        )


def _png_compressed_text(kind: bytes, body: memoryview) -> memoryview | None:
    """The zlib stream of an iCCP, zTXt or compressed iTXt chunk; None when there is none."""
    raw = bytes(body[:200])
    name_end = raw.find(b"\0")
    if name_end < 0:
        return None
    if kind == b"iTXt":
        if raw[name_end + 1 : name_end + 2] != b"\x01":
            return None  # uncompressed text: its size is the chunk's
        lang_end = bytes(body[name_end + 3 :]).find(b"\0")
        if lang_end < 0:
            return None
        start = name_end + 3 + lang_end + 1
        key_end = bytes(body[start:]).find(b"\0")
        return None if key_end < 0 else body[start + key_end + 1 :]
    return body[name_end + 2 :]


def _check_jpeg(data: bytes) -> None:
    """Walk the markers: at most :data:`MAX_JPEG_SEGMENTS` segments and :data:`MAX_JPEG_SCANS`
    scans (each scan of a progressive JPEG is a pass over every block of the image: thousands
    of empty ones cost minutes to decode)."""
    pos, segments, scans, n = 2, 0, 0, len(data)
    while pos < n and data[pos] == 0xFF:
        while pos < n and data[pos] == 0xFF:
            pos += 1  # fill bytes
        if pos >= n:
            break
        marker = data[pos]
        pos += 1
        if marker == 0xD9:  # EOI
            break
        if 0xD0 <= marker <= 0xD7 or marker == 0x01:  # no length follows
            continue
        if pos + 2 > n:
            break
        segments += 1
        if segments > MAX_JPEG_SEGMENTS:
            raise _structure_too_large("too many JPEG segments", segments, MAX_JPEG_SEGMENTS)
        pos += int.from_bytes(data[pos : pos + 2], "big")
        if marker == 0xDA:  # SOS: entropy-coded data follows, up to the next marker
            scans += 1
            if scans > MAX_JPEG_SCANS:
                raise _structure_too_large("too many JPEG scans", scans, MAX_JPEG_SCANS)
            found = _JPEG_MARKER.search(data, pos)
            if found is None:
                break
            pos = found.start()


def _check_tiff_strips(im: Image.Image, data: bytes) -> None:
    """Deflate-compressed strips or tiles inflate to no more than the pixels they hold."""
    tags = getattr(im, "tag_v2", {})
    if tags.get(259, 1) not in (8, 32946):  # Adobe and old-style Deflate
        return
    tiled = 324 in tags
    offsets, counts = tags.get(324 if tiled else 273), tags.get(325 if tiled else 279)
    if offsets is None or counts is None:
        return
    offsets = offsets if isinstance(offsets, tuple) else (offsets,)
    counts = counts if isinstance(counts, tuple) else (counts,)
    if len(offsets) > MAX_TIFF_PIECES:
        raise _structure_too_large("too many TIFF strips or tiles", len(offsets), MAX_TIFF_PIECES)
    width, height = im.size
    bits = tags.get(258, 8)
    bits = sum(bits) if isinstance(bits, tuple) else int(bits) * int(tags.get(277, 1))
    if tiled:
        piece_w, rows = int(tags.get(322, width)), int(tags.get(323, height))
    else:
        piece_w, rows = width, min(int(tags.get(278, height)), height)
    limit = rows * -(-piece_w * bits // 8)
    view = memoryview(data)
    for offset, count in zip(offsets, counts, strict=False):
        if _inflated_size([view[int(offset) : int(offset) + int(count)]], limit) > limit:
            raise _expansion_too_large(
                "compressed image data",
                f"the {_size(limit)} a strip or tile of its pixels needs",
                "the file is malformed or crafted; rescan the page",
            )


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
# glare thresholds were set on synthetic kiosk captures (clients/simulator/docgen.py and
# tests/test_quality_gate_captures.py): the reference dossier's pages (Gaussian blur 0.4 px)
# measure 0.45-0.9 in focus, a blur of 1 px 0.11-0.23, 1.5 px 0.05-0.09, 3 px below 0.025.
# Glare is the area of washed-out blobs that hide text (see saoy.core.pages.imaging._glare), judged
# in square millimetres of the document: a highlight of 4 mm across on a card's text measures
# about 15 mm², a reflection of a tenth of the card about 240 mm², one washing out six lines
# of an A4 page's body 340 mm² and more; a blank margin or a QR code's white modules, 0.

MIN_SHORT_SIDE = 480  # a page of no known physical size: fewer pixels and diacritics blur away
MIN_DPI = 150.0  # stated by the file, or estimated from the document's physical size
MAX_DPI_DISAGREEMENT = 2.0  # stated DPI against the frame's estimate, either way (see below)
MIN_CARD_DPI = 190.0  # an ID card, from its 85.6 mm width: at 200 dpi its text still reads
CARD_WIDTH_MM = 85.6  # ISO/IEC 7810 ID-1, the citizen identity card
A4_SHORT_MM = 210.0
DOCUMENT_AREA_MM2 = {"id_card": 85.6 * 53.98, "a4": 210.0 * 297.0}
ASSUMED_DPI = 300.0  # for a page of unknown size that states none: what kiosks scan at
MIN_MEAN = 60.0  # a page darker than this on average is underexposed
INK_PERCENTILE = 0.1  # the darkest 0.1 % of pixels stand for the ink
PAPER_PERCENTILE = 90.0  # most of a page is paper
WASHED_OUT_INK = 160  # ink lighter than this on bright paper: overexposed
BRIGHT_PAPER = 230
MIN_INK_TO_PAPER = 80  # grey levels between ink and paper below which text is unreadable
MIN_FOCUS = 0.08  # PreparedPage.focus below this: motion or focus blur (about 1.5 px and more)
# PreparedPage.focus_axis below this: smeared along one direction, at any angle. A Gaussian blur
# of 1 px measures 0.034-0.035 (passes), 1.5 px 0.015-0.018; a horizontal motion blur over 6 px
# 0.027, 9 px 0.013-0.016, 12 px 0.009-0.011, 20 px 0.006; one at 45 degrees over 9 px
# 0.008-0.010, at 30 degrees 0.011-0.012 (cards and A4 pages at 300 dpi, JPEG 75). Captures of
# the template corpus in focus measure 0.033 and more, its motion-blurred ones 0.013 and less.
MIN_FOCUS_AXIS = 0.02
MAX_GLARE_MM2 = 60.0  # washed-out area over text above this: a word or two on two lines gone
MAX_GLARE = 0.015  # on saturated paper (no text test possible): a blob above this fraction

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

    A cut-off page is named first (the rest follows from it), unless it is blurred: a smear
    drags the document's edges and print across the frame's edge, so a blurred frame looks cut
    off whether or not it is, and the blur is what to fix first. Glare and blur are judged only
    on a page whose exposure is right (a dark or washed-out page distorts both measures).
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
    low, dpi = _low_resolution(page, prepared)
    if low:
        issues.append(_low_resolution_issue(page.width, page.height, dpi))
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
    if _glared(page, prepared):
        issues.append(
            QualityIssue(
                "GLARE",
                "Ảnh bị lóa sáng / Light reflects off the document: avoid glare (tilt it "
                "slightly or shade it from the lamp) and rescan",
            )
        )
    smeared = prepared.focus_axis is not None and prepared.focus_axis < MIN_FOCUS_AXIS
    if (prepared.focus is not None and prepared.focus < MIN_FOCUS) or smeared:
        blurred = QualityIssue(
            "BLURRED",
            "Ảnh bị nhòe / The image is blurred: hold still until the scan is taken, then rescan",
        )
        issues.insert(0 if prepared.cut_off else len(issues), blurred)
    return issues


def _low_resolution(page: AdmittedPage, prepared: PreparedPage) -> tuple[bool, float | None]:
    """Whether the page has too few pixels for its document, and the dpi that says so.

    A card-shaped document is judged by its physical width alone: 85.6 mm over its pixels is
    the resolution, whatever the file states (kiosk drivers write wrong DPI tags; a card at
    392 dpi tagged 137 is a good scan). Other pages: by the stated DPI, the A4 estimate and
    the shorter side, the lowest deciding; but where no outline was found and the estimate
    disagrees with the stated DPI more than twofold, the estimate is set aside."""
    if prepared.document == "id_card" and prepared.dpi_estimate is not None:
        return prepared.dpi_estimate < MIN_CARD_DPI, prepared.dpi_estimate
    stated_low = page.dpi is not None and page.dpi < MIN_DPI
    estimated_low = prepared.dpi_estimate is not None and prepared.dpi_estimate < MIN_DPI
    if estimated_low and prepared.document == "a4" and _sharp_as_a_card(prepared):
        estimated_low = False  # judged once its type is read (the page_resolution check)
    short = min(page.width, page.height)
    if _frame_size_disputed(page, prepared):
        estimated_low = False  # the file's own figure stands
    dpi = page.dpi if stated_low else prepared.dpi_estimate if estimated_low else None
    return short < MIN_SHORT_SIDE or stated_low or estimated_low, dpi


FORESHORTENED_CARD = 0.15
"""How far off a card's shape a photographed outline may be and still be a card: a camera well
off square foreshortens a card past the tenth within which its shape is known to be a card's
(:data:`saoy.core.pages.imaging.PERSPECTIVE_ASPECT`), into an A4 page's shape."""


def _sharp_as_a_card(prepared: PreparedPage) -> bool:
    """Whether a photographed outline taken for an A4 page by its shape could be a card
    foreshortened (:data:`FORESHORTENED_CARD`) with enough pixels for one (:data:`MIN_CARD_DPI`):
    it is not refused as an A4 page at a third of the card's resolution."""
    if prepared.quad is None:
        return False
    _, long_mm, short_mm, _ = next(d for d in DOCUMENT_SIZES if d[0] == "id_card")
    long, short = max(prepared.width, prepared.height), min(prepared.width, prepared.height)
    if abs(long / max(1, short) / (long_mm / short_mm) - 1) > FORESHORTENED_CARD:
        return False
    return long / long_mm * 25.4 >= MIN_CARD_DPI


def _frame_size_disputed(page: AdmittedPage, prepared: PreparedPage) -> bool:
    """Whether the estimate from the frame's shape and the file's stated DPI disagree by more
    than :data:`MAX_DPI_DISAGREEMENT` where no outline was found: the whole frame was taken
    for a document of the shape it happens to have (a card on a light scanner platen, its
    edges lost against the platen, in an A4-shaped frame measures a third of its true
    resolution). The scanner's stated figure is trusted then, not the guess."""
    if prepared.quad is not None or page.dpi is None or prepared.dpi_estimate is None:
        return False
    low, high = sorted((page.dpi, prepared.dpi_estimate))
    return high > MAX_DPI_DISAGREEMENT * low


def _low_resolution_issue(width: int, height: int, dpi: float | None) -> QualityIssue:
    about = f", about {dpi:.0f} dpi" if dpi is not None else ""
    return QualityIssue(
        "LOW_RESOLUTION",
        "Ảnh có độ phân giải thấp / The resolution is too low "
        f"({width}×{height}{about}): rescan at 300 dpi",
    )


def _glared(page: AdmittedPage, prepared: PreparedPage) -> bool:
    """Whether washed-out light hides text: :attr:`PreparedPage.glare` (a fraction of the
    document) in square millimetres of the document detected; of a page of unknown size (or
    one whose size from its shape the stated DPI disputes, see :func:`_frame_size_disputed`),
    from the stated DPI or :data:`ASSUMED_DPI`. On saturated paper, a blob fraction as before."""
    if prepared.paper_clipped:
        return prepared.glare > MAX_GLARE
    area = DOCUMENT_AREA_MM2.get(prepared.document)
    if area is None or _frame_size_disputed(page, prepared):
        dpi = page.dpi or ASSUMED_DPI
        area = prepared.width * prepared.height * (25.4 / dpi) ** 2
    return prepared.glare * area > MAX_GLARE_MM2


CARD_TYPES = frozenset({"cccd_front", "cccd_back", "id_card"})
A4_TYPES = frozenset({"birth_certificate", "a4"})


def resolution_for(document_type: str, width_px: int, height_px: int) -> float | None:
    """The effective resolution (dpi) of a document of a known type whose image (cropped to
    the document) is ``width_px`` x ``height_px``: a citizen identity card is 85.6 mm on its
    longer side, an A4 document 210 mm on its shorter. None for a type of no fixed size.

    For the pipeline once the type is read (after OCR), where the gate before it could only
    guess the type from the outline's aspect ratio."""
    if width_px <= 0 or height_px <= 0:
        raise ValueError(f"resolution_for: {width_px}x{height_px} is not an image size")
    if document_type in CARD_TYPES:
        return round(max(width_px, height_px) / CARD_WIDTH_MM * 25.4, 1)
    if document_type in A4_TYPES:
        return round(min(width_px, height_px) / A4_SHORT_MM * 25.4, 1)
    return None


def resolution_issue(document_type: str, width_px: int, height_px: int) -> QualityIssue | None:
    """LOW_RESOLUTION for a document of a known type (see :func:`resolution_for`) scanned
    below its floor (a card :data:`MIN_CARD_DPI`, an A4 document :data:`MIN_DPI`); None when
    it is fine or its type has no fixed size."""
    dpi = resolution_for(document_type, width_px, height_px)
    if dpi is None:
        return None
    floor = MIN_CARD_DPI if document_type in CARD_TYPES else MIN_DPI
    return _low_resolution_issue(width_px, height_px, dpi) if dpi < floor else None
