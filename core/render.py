"""Render the unsigned copy PDF: each scan at full fidelity, an invisible text layer, and a
certification band (QR code, verification code, issuer, time, URL, page number) added below
the scan so that nothing of the original is ever covered.

Images are embedded as they came: a JPEG's bytes become the DCTDecode stream unchanged, and a
PNG's compressed image data becomes a FlateDecode stream with PNG predictors, so neither is
decoded or re-encoded here (a PNG with alpha or interlacing is decoded once and stored
losslessly, flattened on white).

The QR code on every page carries ``block.qr`` (the verification URL with the signed offline
payload in its fragment, see :mod:`saoy.core.trust.qrpayload`), or the bare URL when there is none.
The same text is put in the document info (Keywords ``saoy-code:CODE saoy-qr:TEXT``) so that
software can read it without rasterizing the page; an offline verifier requires both to agree.
:func:`embedded_image_streams` gives the exact image stream bytes each page embeds, which is
what the payload's page digest covers.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import re
import struct
import threading
import zlib
from collections.abc import Sequence
from dataclasses import dataclass
from io import BytesIO
from pathlib import Path

import qrcode
import qrcode.constants
from PIL import Image
from reportlab import rl_config
from reportlab.pdfbase import pdfdoc, pdfmetrics
from reportlab.pdfbase.ttfonts import TTFont
from reportlab.pdfgen.canvas import Canvas
from reportlab.pdfgen.textobject import PDFTextObject

from saoy.core.documents.text import group_lines
from saoy.core.model import CertificationBlock, RenderPage, Word

KEYWORD_PREFIX = "saoy-code:"
QR_KEYWORD_PREFIX = "saoy-qr:"
PRODUCER = "saoy"

HEADING = "BẢN SAO ĐIỆN TỬ CHỨNG THỰC TỪ BẢN CHÍNH / Certified electronic copy of the original"

MM = 72 / 25.4
BAND_HEIGHT = 30 * MM
"""Height in points of the certification band added below each scan."""
MIN_PAGE_WIDTH = 148 * MM
"""Narrower scans (an ID card) are centred on a page this wide (A5) so the band stays legible."""
_MARGIN = 2.5 * MM
_GAP = 3 * MM
_QR_SIZE = BAND_HEIGHT - 2 * _MARGIN
QR_BORDER = 2
"""Light modules drawn around the QR symbol. With the band's margins (at least ``_MARGIN`` of
white on every side) the quiet zone is still the 4 modules ISO/IEC 18004 asks for, and each
module is bigger than with a drawn 4-module border: a version 11 symbol (the usual size of a
URL with its signed payload at level M) gets 25 mm / 65 = 0.38 mm modules, which phones read
from paper, and 4.5 pixels each in a 300 dpi scan."""
STATEMENT_PITCH = 3.6 * MM
"""Line pitch of the certification statement printed above the band."""
_VN_TIME = dt.timezone(dt.timedelta(hours=7), "ICT")  # Vietnam: UTC+7, no daylight saving

FONT = "SaoyDejaVuSans"
FONT_BOLD = "SaoyDejaVuSans-Bold"
_FONT_DIRS = (
    Path("/usr/share/fonts/truetype/dejavu"),
    Path("/usr/share/fonts/dejavu"),
    Path("/usr/local/share/fonts/dejavu"),
)
_font_lock = threading.Lock()
_fonts_ready = False


_render_lock = threading.Lock()
"""reportlab keeps a TrueType font's subsets in the shared font object, and a document's glyph
subset is built there while the document is drawn and saved: two copies laid out at once in
two threads corrupt each other's subsets (KeyError, IndexError in makeSubset). One at a time."""


def render_copy(pages: Sequence[RenderPage], block: CertificationBlock) -> bytes:
    """Lay out the copy PDF (unsigned) for ``pages``, with ``block`` printed on every page."""
    with _render_lock:
        # Page streams deflated and left binary: reportlab's ASCII85 wrapping (in Python,
        # where its C accelerator is not installed) costs CPU and a quarter more bytes,
        # which every signature then hashes again.
        a85, rl_config.useA85 = rl_config.useA85, 0
        try:
            return _render_copy(pages, block)
        finally:
            rl_config.useA85 = a85


def _render_copy(pages: Sequence[RenderPage], block: CertificationBlock) -> bytes:
    if not pages:
        raise ValueError("a copy needs at least one page")
    _validate_code(block.code)
    if block.issued_at.tzinfo is None:
        raise ValueError("issued_at must carry a UTC offset")
    _ensure_fonts()
    if block.qr and not block.qr.startswith(block.url + "#"):
        raise ValueError(
            "the QR content must be the verification URL followed by '#' and a payload"
        )
    images = [_embeddable(i, page) for i, page in enumerate(pages, start=1)]
    qr = qr_matrix(block.qr or block.url)

    out = BytesIO()
    canvas = Canvas(out, invariant=True, pageCompression=True)
    canvas.setTitle(f"Bản sao điện tử {block.code}")
    canvas.setSubject(HEADING)
    canvas.setAuthor(block.issuer)
    canvas.setKeywords(info_keywords(block.code, block.qr))
    canvas.setCreator(PRODUCER)
    canvas.setProducer(PRODUCER)

    total = len(pages)
    for number, (page, image) in enumerate(zip(pages, images, strict=True), start=1):
        scale = 72.0 / page.dpi
        scan_w, scan_h = page.width * scale, page.height * scale
        page_w = max(scan_w, MIN_PAGE_WIDTH)
        x0 = (page_w - scan_w) / 2
        band = band_height(block)
        canvas.setPageSize((page_w, scan_h + band))
        _draw_image(canvas, image, x0, band, scan_w, scan_h)
        _draw_text_layer(
            canvas,
            page.words,
            x0=x0,
            top=band + scan_h,
            scale=scale,
            rotation=page.text_rotation,
        )
        _draw_band(canvas, block, qr, page_w=page_w, number=number, total=total)
        canvas.showPage()
    canvas.save()
    return out.getvalue()


def embedded_image_streams(pages: Sequence[RenderPage]) -> list[bytes]:
    """The image XObject stream bytes (still encoded) that :func:`render_copy` embeds for each
    page, in page order: a JPEG's file bytes, a PNG's compressed image data. What the QR
    payload's page digest is computed over (see ``saoy.core.trust.offline.qr_content``)."""
    return [_embeddable(i, page).data for i, page in enumerate(pages, start=1)]


def info_keywords(code: str, qr: str = "") -> str:
    """The document-info Keywords value that carries a copy's verification code, and the QR
    content when there is one."""
    _validate_code(code)
    if qr and any(c.isspace() or c in ",;" for c in qr):
        raise ValueError("the QR content must not contain spaces, commas or semicolons")
    return f"{KEYWORD_PREFIX}{code}" + (f" {QR_KEYWORD_PREFIX}{qr}" if qr else "")


def qr_from_info(keywords: str | None) -> str | None:
    """The QR content in a document-info Keywords value, or None when there is none."""
    return _keyword(keywords, QR_KEYWORD_PREFIX)


def code_from_info(keywords: str | None) -> str | None:
    """The verification code in a document-info Keywords value, or None when there is none."""
    return _keyword(keywords, KEYWORD_PREFIX)


def _keyword(keywords: str | None, prefix: str) -> str | None:
    if not keywords:
        return None
    for token in re.split(r"[\s,;]+", keywords):
        if token.startswith(prefix) and len(token) > len(prefix):
            return token[len(prefix) :]
    return None


def band_height(block: CertificationBlock) -> float:
    """Height in points of the band below each scan: the certification band, and above it the
    certification statement when the copy carries one."""
    return (
        BAND_HEIGHT + len(block.statement) * STATEMENT_PITCH + (_MARGIN if block.statement else 0.0)
    )


def band_lines(block: CertificationBlock, number: int, total: int) -> list[str]:
    """The text lines of the certification band, top to bottom (what a reader sees)."""
    local = block.issued_at.astimezone(_VN_TIME)
    return [
        HEADING,
        f"Mã xác thực / Verification code: {block.code}",
        f"Cơ quan chứng thực / Issued by: {block.issuer}",
        f"Thời điểm / Issued at: {local:%d/%m/%Y %H:%M} (giờ Việt Nam) · "
        f"{local.isoformat(timespec='seconds')}",
        f"Kiểm tra / Verify at: {block.url}",
        f"Trang {number}/{total} / Page {number} of {total}",
    ]


# --- fonts --------------------------------------------------------------------------------


def _ensure_fonts() -> None:
    global _fonts_ready
    if _fonts_ready:
        return
    with _font_lock:
        if _fonts_ready:
            return
        pdfmetrics.registerFont(TTFont(FONT, str(_find_font("DejaVuSans.ttf"))))
        pdfmetrics.registerFont(TTFont(FONT_BOLD, str(_find_font("DejaVuSans-Bold.ttf"))))
        _fonts_ready = True


def _find_font(name: str) -> Path:
    for directory in _FONT_DIRS:
        if (directory / name).is_file():
            return directory / name
    raise RuntimeError(
        f"font {name} not found (install Debian's fonts-dejavu-core); looked in "
        + ", ".join(str(d) for d in _FONT_DIRS)
    )


# --- images -------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Image:
    """An image XObject ready to be written as is."""

    digest: str
    data: bytes
    width: int
    height: int
    bits: int
    color_space: object  # a name, or an [/Indexed ...] array
    filter: str
    decode_parms: dict[str, int] | None = None
    decode: tuple[int, ...] | None = None


class _ImageXObject(pdfdoc.PDFImageXObject):  # type: ignore[misc]
    """reportlab's image XObject, fed pre-encoded data (no re-encoding, no ASCII85)."""

    def __init__(self, image: _Image) -> None:
        super().__init__(image.digest)
        self._image = image

    def format(self, document: pdfdoc.PDFDocument) -> bytes:
        image = self._image
        stream = pdfdoc.PDFStream(content=image.data)
        stream.filters = ()  # already encoded: do not let reportlab compress it again
        d = stream.dictionary
        d["Type"] = pdfdoc.PDFName("XObject")
        d["Subtype"] = pdfdoc.PDFName("Image")
        d["Width"] = image.width
        d["Height"] = image.height
        d["BitsPerComponent"] = image.bits
        cs = image.color_space
        d["ColorSpace"] = pdfdoc.PDFName(cs) if isinstance(cs, str) else cs
        d["Filter"] = pdfdoc.PDFName(image.filter)
        if image.decode_parms is not None:
            d["DecodeParms"] = pdfdoc.PDFDictionary(dict(image.decode_parms))
        if image.decode is not None:
            d["Decode"] = pdfdoc.PDFArray(list(image.decode))
        d["Length"] = len(image.data)
        result: bytes = stream.format(document)
        return result


class _HexString(pdfdoc.PDFObject):  # type: ignore[misc]
    """Binary data as a PDF hex string (a palette)."""

    def __init__(self, data: bytes) -> None:
        self.data = data

    def format(self, document: pdfdoc.PDFDocument) -> bytes:
        return b"<" + self.data.hex().encode("ascii") + b">"


def _draw_image(canvas: Canvas, image: _Image, x: float, y: float, w: float, h: float) -> None:
    # Mirrors Canvas.drawImage's registration, minus its full decode and re-encoding.
    doc = canvas._doc
    reg_name = doc.getXObjectName(image.digest)
    if doc.idToObject.get(reg_name) is None:
        xobject = _ImageXObject(image)
        canvas._setXObjects(xobject)
        doc.Reference(xobject, reg_name)
        doc.addForm(image.digest, xobject)
    canvas.saveState()
    canvas.translate(x, y)
    canvas.scale(w, h)
    canvas._code.append(f"/{reg_name} Do")
    canvas.restoreState()
    canvas._formsinuse.append(image.digest)  # lists the image in this page's resources


def _embeddable(number: int, page: RenderPage) -> _Image:
    if page.width <= 0 or page.height <= 0 or not page.dpi or page.dpi <= 0:
        raise ValueError(f"page {number}: size and dpi must be positive")
    fmt = page.format.lower()
    if fmt in ("jpeg", "jpg"):
        image = _jpeg(page.image)
    elif fmt == "png":
        image = _png(page.image)
    else:
        raise ValueError(f"page {number}: cannot embed {page.format!r} (jpeg or png only)")
    if (image.width, image.height) != (page.width, page.height):
        raise ValueError(
            f"page {number}: the image is {image.width}x{image.height} pixels "
            f"but the page says {page.width}x{page.height}"
        )
    return image


def _digest(data: bytes) -> str:
    return "img" + hashlib.sha256(data).hexdigest()[:32]


_SOF_DCT = {0xC0, 0xC1, 0xC2}  # baseline, extended sequential, progressive: what DCTDecode reads
_SOF_OTHER = {0xC3, 0xC5, 0xC6, 0xC7, 0xC9, 0xCA, 0xCB, 0xCD, 0xCE, 0xCF}


def _jpeg(data: bytes) -> _Image:
    if data[:2] != b"\xff\xd8":
        raise ValueError("not a JPEG")
    pos, adobe = 2, False
    n = len(data)
    while pos + 4 <= n:
        if data[pos] != 0xFF:
            raise ValueError("damaged JPEG: no marker where one was expected")
        marker = data[pos + 1]
        if marker == 0xFF:  # fill byte
            pos += 1
            continue
        if 0xD0 <= marker <= 0xD9 or marker == 0x01:
            pos += 2
            continue
        (length,) = struct.unpack(">H", data[pos + 2 : pos + 4])
        segment = data[pos + 4 : pos + 2 + length]
        if marker == 0xEE and segment.startswith(b"Adobe"):
            adobe = True
        elif marker in _SOF_DCT:
            bits, height, width, components = struct.unpack(">BHHB", segment[:6])
            if bits != 8:
                raise ValueError("JPEG must have 8 bits per component")
            spaces = {1: "DeviceGray", 3: "DeviceRGB", 4: "DeviceCMYK"}
            if components not in spaces:
                raise ValueError(f"JPEG with {components} components is not supported")
            # Adobe writes CMYK JPEGs inverted; readers expect the Decode array to undo it.
            decode = (1, 0) * 4 if components == 4 and adobe else None
            return _Image(
                _digest(data),
                data,
                width,
                height,
                8,
                spaces[components],
                "DCTDecode",
                decode=decode,
            )
        elif marker in _SOF_OTHER:
            raise ValueError("JPEG coding (lossless or arithmetic) that PDF readers cannot show")
        pos += 2 + length
    raise ValueError("damaged JPEG: no frame header")


def _png(data: bytes) -> _Image:
    if data[:8] != b"\x89PNG\r\n\x1a\n":
        raise ValueError("not a PNG")
    pos = 8
    header: tuple[int, ...] | None = None
    idat: list[bytes] = []
    palette = b""
    transparency = False
    while pos + 8 <= len(data):
        length, kind = struct.unpack(">I4s", data[pos : pos + 8])
        chunk = data[pos + 8 : pos + 8 + length]
        if len(chunk) != length:
            raise ValueError("damaged PNG: truncated chunk")
        if kind == b"IHDR":
            header = struct.unpack(">IIBBBBB", chunk[:13])
        elif kind == b"PLTE":
            palette = chunk
        elif kind == b"tRNS":
            transparency = True
        elif kind == b"IDAT":
            idat.append(chunk)
        elif kind == b"IEND":
            break
        pos += 12 + length
    if header is None or not idat:
        raise ValueError("damaged PNG: no header or no image data")
    width, height, bits, color_type, _, _, interlace = header
    colors = {0: 1, 2: 3, 3: 1}.get(color_type)
    if colors is not None and not interlace and not transparency and bits <= 8:
        if color_type == 3:
            if not palette:
                raise ValueError("damaged PNG: palette image without a palette")
            color_space: object = pdfdoc.PDFArray(
                [
                    pdfdoc.PDFName("Indexed"),
                    pdfdoc.PDFName("DeviceRGB"),
                    len(palette) // 3 - 1,
                    _HexString(palette),
                ]
            )
        else:
            color_space = "DeviceGray" if colors == 1 else "DeviceRGB"
        parms = {"Predictor": 15, "Colors": colors, "BitsPerComponent": bits, "Columns": width}
        return _Image(
            _digest(data),
            b"".join(idat),
            width,
            height,
            bits,
            color_space,
            "FlateDecode",
            decode_parms=parms,
        )
    return _png_decoded(data)


def _png_decoded(data: bytes) -> _Image:
    """Alpha, transparency or interlacing: decode once, flatten on white, keep every pixel."""
    with Image.open(BytesIO(data)) as im:
        im.load()
        flat: Image.Image = im
        if im.mode not in ("1", "L", "RGB"):
            rgba = im.convert("RGBA")
            flat = Image.new("RGB", rgba.size, "white")
            flat.paste(rgba, mask=rgba.getchannel("A"))
        if flat.mode == "1":
            flat = flat.convert("L")
        colors = 1 if flat.mode == "L" else 3
        raw = zlib.compress(flat.tobytes(), 6)
        return _Image(
            _digest(data),
            raw,
            flat.width,
            flat.height,
            8,
            "DeviceGray" if colors == 1 else "DeviceRGB",
            "FlateDecode",
        )


# --- text layer ---------------------------------------------------------------------------


def _draw_text_layer(
    canvas: Canvas,
    words: Sequence[Word],
    *,
    x0: float,
    top: float,
    scale: float,
    rotation: int = 0,
) -> None:
    """Invisible words at their boxes: the em box spans the word box across the line, the
    advance matched along it by Tz. ``rotation`` (0, 90, 180, 270): how far the words run
    counter-clockwise on the image, so that a page scanned turned selects along its lines."""
    if not words:
        return
    if rotation % 90:
        raise ValueError(f"text rotation must be a multiple of 90 degrees, got {rotation}")
    quarter = rotation // 90 % 4
    face = pdfmetrics.getFont(FONT).face
    ascent, descent = face.ascent / 1000.0, face.descent / 1000.0  # descent is negative
    text = canvas.beginText()
    text.setTextRenderMode(3)  # neither fill nor stroke: selectable, searchable, unseen
    rows = reading_rows(words) if quarter == 0 else [list(words)]
    for row in rows:
        for k, word in enumerate(row):
            follower = row[k + 1] if k + 1 < len(row) else None
            _draw_word(text, word, follower, x0, top, scale, quarter, ascent, descent)
    canvas.saveState()  # the render mode is graphics state: keep it from the band's text
    canvas.drawText(text)
    canvas.restoreState()


def reading_rows(words: Sequence[Word]) -> list[list[Word]]:
    """``words`` in reading order: rows top down, each left to right. A word joins the row
    whose last word it overlaps by half a height, however far right it stands (a table's
    cells are one row), so a slightly skewed row stays one row."""
    rows = group_lines(words, gap=float("inf"))
    rows.sort(key=lambda row: sum(w.top + w.bottom for w in row.words) / len(row.words))
    return [list(row.words) for row in rows]


WORD_GAP = 0.2  # of the font size: extractors see a word break at a gap of 0.1 and more


def _draw_word(
    text: PDFTextObject,
    word: Word,
    follower: Word | None,
    x0: float,
    top: float,
    scale: float,
    quarter: int,
    ascent: float,
    descent: float,
) -> None:
    """One invisible word at its box. When ``follower``, the next word of its row, stands
    closer than text extraction takes for a word break (a tightly set line), the word is drawn
    that much narrower, and a space follows it, so that the words come out apart."""
    em = ascent - descent
    content = word.text.strip()
    # The box in PDF units: pixel rows grow down, PDF y grows up.
    left, right = x0 + word.left * scale, x0 + word.right * scale
    bottom, upper = top - word.bottom * scale, top - word.top * scale
    along, across = (right - left, upper - bottom)[:: 1 if quarter % 2 == 0 else -1]
    if not content or along <= 0 or across <= 0:
        return
    size = across / em
    natural = pdfmetrics.stringWidth(content, FONT, size)
    if natural <= 0:
        return
    if follower is not None and quarter == 0:
        room = x0 + follower.left * scale - left - WORD_GAP * size
        if along * 0.5 < room < along:
            along = room
    lift = -descent * size  # the baseline lies this far inside the box from its foot
    a, b, c, d, x, y = (
        (1, 0, 0, 1, left, bottom + lift),  # left to right
        (0, 1, -1, 0, right - lift, bottom),  # bottom to top, letters' feet to the right
        (-1, 0, 0, -1, right, upper - lift),  # right to left, upside down
        (0, -1, 1, 0, left + lift, upper),  # top to bottom, feet to the left
    )[quarter]
    text.setFont(FONT, size)
    text.setHorizScale(100.0 * along / natural)
    text.setTextTransform(a, b, c, d, x, y)
    text.textOut(content if follower is None else content + " ")


# --- certification band -------------------------------------------------------------------


def qr_matrix(text: str) -> list[list[bool]]:
    """The modules of the QR code printed for ``text`` (level M, ``QR_BORDER`` light modules
    around it), rows top to bottom, True for dark."""
    qr = qrcode.QRCode(error_correction=qrcode.constants.ERROR_CORRECT_M, border=QR_BORDER)
    qr.add_data(text)
    qr.make(fit=True)
    matrix: list[list[bool]] = qr.get_matrix()  # border included
    return matrix


def qr_module_mm(text: str) -> float:
    """The printed size of one QR module for ``text``, in millimetres (at 100% scale)."""
    return _QR_SIZE / MM / len(qr_matrix(text))


def _draw_qr(canvas: Canvas, matrix: list[list[bool]], x: float, y: float, size: float) -> None:
    module = size / len(matrix)
    path = canvas.beginPath()
    for row, cells in enumerate(matrix):
        top = y + size - (row + 1) * module
        col = 0
        while col < len(cells):
            if not cells[col]:
                col += 1
                continue
            start = col
            while col < len(cells) and cells[col]:
                col += 1
            path.rect(x + start * module, top, (col - start) * module, module)
    canvas.saveState()
    canvas.setFillColorRGB(1, 1, 1)
    canvas.rect(x, y, size, size, stroke=0, fill=1)
    canvas.setFillColorRGB(0, 0, 0)
    canvas.drawPath(path, stroke=0, fill=1)
    canvas.restoreState()


def _draw_band(
    canvas: Canvas,
    block: CertificationBlock,
    qr: list[list[bool]],
    *,
    page_w: float,
    number: int,
    total: int,
) -> None:
    band = band_height(block)
    canvas.saveState()
    canvas.setStrokeColorRGB(0.55, 0.55, 0.55)
    canvas.setLineWidth(0.5)
    canvas.line(_MARGIN, band - 0.5, page_w - _MARGIN, band - 0.5)
    canvas.restoreState()

    # The certification statement, above the band, across the page's width.
    y = band - _MARGIN
    for i, line in enumerate(block.statement):
        font, base = (FONT_BOLD, 8.5) if i == 0 else (FONT, 8.0)
        natural = pdfmetrics.stringWidth(line, font, 1.0)
        size = min(base, (page_w - 2 * _MARGIN) / natural) if natural > 0 else base
        y -= STATEMENT_PITCH
        canvas.setFont(font, size)
        canvas.drawString(_MARGIN, y + (STATEMENT_PITCH - size) / 2, line)

    _draw_qr(canvas, qr, _MARGIN, _MARGIN, _QR_SIZE)

    x = _MARGIN + _QR_SIZE + _GAP
    available = page_w - x - _MARGIN
    lines = band_lines(block, number, total)
    pitch = _QR_SIZE / len(lines)
    styles = [(FONT_BOLD, 8.0)] + [(FONT, 7.5)] * (len(lines) - 1)
    styles[1] = (FONT_BOLD, 8.5)  # the verification code is what people type in
    y = BAND_HEIGHT - _MARGIN
    for line, (font, base) in zip(lines, styles, strict=True):
        natural = pdfmetrics.stringWidth(line, font, 1.0)
        size = min(base, available / natural) if natural > 0 else base
        y -= pitch
        canvas.setFont(font, size)
        canvas.drawString(x, y + (pitch - size) / 2, line)


def _validate_code(code: str) -> None:
    if not code or any(c.isspace() or c in ",;" for c in code):
        raise ValueError(f"unusable verification code {code!r}")
