"""Per-page analysis: condition, type, fields, MRZ, QR, seal, confidential marking."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from datetime import date
from typing import Any

import numpy as np
from PIL import Image

from saoy.core.documents.classify import (
    BIRTH_CERTIFICATE,
    CARD_ASPECT,
    CCCD_BACK,
    CCCD_FRONT,
    GENERIC,
    classify,
)
from saoy.core.documents.fields import (
    IMPLAUSIBLE,
    PLACE_LINES,
    PLACES,
    REREAD_FIELDS,
    Field,
    birth_certificate_fields,
    card_fields,
    reread_field,
)
from saoy.core.documents.layout import Page
from saoy.core.documents.mrz import (
    TD1_LINE,
    Mrz,
    checked_places,
    combine_reads,
    find_line2,
    find_td1,
    proven_failures,
    sound,
)
from saoy.core.documents.qr import CardQr, QrCode, card_qr, read_card_qr
from saoy.core.documents.reader import DocumentReader
from saoy.core.documents.seal import Seal, find_red_boxes, find_seals, stamp_words
from saoy.core.documents.text import Line, fold, group_lines
from saoy.core.model import OcrResult

PageInput = tuple[np.ndarray, "np.ndarray | None", OcrResult]
"""One page as the pipeline holds it: upright grey (H x W uint8), the colour image
(H' x W' x 3 uint8 RGB, any size; None when not available) and the page OCR."""

GOOD_WORD_CONFIDENCE = 50.0
MIN_DOCUMENT_WORDS = 6
ILLEGIBLE_CONFIDENCE = 60.0
OSD_MIN_CONFIDENCE = 1.5
# The MRZ band's lines (height over lines, about a line's pitch) are read at this many pixels
# apart at most, where they are more than MRZ_SCALE_FROM times that: on the template corpus's
# crops the MRZ-only read had 138 of 162 lines exact so, 129 at the scan's own resolution.
MRZ_LINE_PX = 40
MRZ_SCALE_FROM = 1.25
MRZ_PITCH = 1.5  # a TD1 zone's line pitch, in line heights
# The scales at which a zone read once, whose check digits fail, is read again to prove it.
MRZ_RESCALES = (0.8, 1.5)
REREAD_CONFIDENCE = 0.7  # a value read apart where the page OCR skipped it: to be confirmed

# Page conditions
OK = "ok"
BLANK = "blank"
NO_TEXT = "no_text"
ROTATED = "rotated"

REQUIRED_FIELDS: dict[tuple[str, str | None], tuple[str, ...]] = {
    (CCCD_FRONT, "2021"): (
        "id_number", "full_name", "date_of_birth", "sex", "nationality", "place_of_origin",
        "place_of_residence", "expiry_date",
    ),
    (CCCD_FRONT, "2024"): ("id_number", "full_name", "date_of_birth", "sex", "nationality"),
    (CCCD_FRONT, None): ("id_number", "full_name", "date_of_birth", "sex", "nationality"),
    (CCCD_BACK, "2021"): ("issue_date",),
    (CCCD_BACK, "2024"): ("issue_date", "expiry_date", "place_of_residence"),
    (CCCD_BACK, None): ("issue_date",),
    (BIRTH_CERTIFICATE, None): (
        "full_name", "date_of_birth", "place_of_birth", "registration_number",
    ),
}  # fmt: skip


@dataclass(frozen=True)
class PageAnalysis:
    """What one page is and says."""

    index: int
    document_type: str  # "cccd_front" | "cccd_back" | "birth_certificate" | "generic"
    confidence: float  # of the type, 0-1
    variant: str | None = None  # "2021" | "2024" for ID cards, when it can be told
    fields: tuple[Field, ...] = ()
    condition: str = OK  # "ok" | "blank" | "no_text" | "rotated"
    rotation: int = 0  # degrees the content is turned counter-clockwise in the scan
    word_count: int = 0
    mean_confidence: float = 0.0  # 0-100, of the page OCR
    mrz: Mrz | None = None
    mrz_reads_agree: bool = False  # two reads gave alike, undamaged, a failed check digit's field
    mrz_found: bool = False
    qr: CardQr | None = None
    seals: tuple[Seal, ...] | None = None  # None: not looked for (no colour, or not needed)
    confidential: str = ""  # the marking found ("MẬT", "không được sao chụp"), else ""
    aspect: float = 0.0  # width / height
    size: tuple[int, int] = (0, 0)  # width, height in pixels of the page as analysed
    missing: tuple[str, ...] = field(default=())  # required fields not found

    def field(self, name: str) -> Field | None:
        return next((f for f in self.fields if f.name == name), None)

    def value(self, name: str) -> str | None:
        f = self.field(name)
        return f.value if f else None

    def field_map(self) -> dict[str, tuple[str, float]]:
        """``{name: (value, confidence)}`` — what a RECOGNIZED event carries for the page."""
        return {f.name: (f.value, f.confidence) for f in self.fields}


@dataclass(frozen=True)
class _Base:
    index: int
    word_count: int
    mean_confidence: float
    aspect: float
    size: tuple[int, int]

    def kw(self) -> dict[str, Any]:
        return {
            "index": self.index,
            "word_count": self.word_count,
            "mean_confidence": self.mean_confidence,
            "aspect": self.aspect,
            "size": self.size,
        }


def _is_blank(gray: np.ndarray) -> bool:
    """Almost no pixel darker than the paper: nothing printed on the page."""
    step = max(1, round(max(gray.shape) / 800))
    small = gray[::step, ::step]
    paper = float(np.median(small))
    ink = float(np.mean(small < paper - 60))
    return ink < 0.0015 and float(small.std()) < 12.0


_CONFIDENTIAL_LINES = {"mat": "MẬT", "toimat": "TỐI MẬT", "tuyetmat": "TUYỆT MẬT"}


def confidential_marking(
    result: OcrResult,
    lines: Sequence[Line],
    gray: np.ndarray | None = None,
    rgb: np.ndarray | None = None,
    reader: DocumentReader | None = None,
) -> str:
    """The confidentiality marking on a page (Decree 23/2015, art. 22(3)), else "".

    Page OCR skips framed stamps as pictures, so red rectangular stamps found by colour are
    read apart when a reader and the colour image are at hand: inside the frame, and where
    that reads as nothing (a stamp turned a few degrees has its frame's sides cutting across
    the inner margin), the stamp's red words alone, without the frame."""
    if gray is not None and rgb is not None and reader is not None:
        h, w = gray.shape
        ch, cw = rgb.shape[:2]
        for left, top, right, bottom in find_red_boxes(rgb)[:4]:
            crop = gray[
                int(top * h) : int(np.ceil(bottom * h)), int(left * w) : int(np.ceil(right * w))
            ]
            # Inside the frame, with a white margin: Tesseract takes a framed word for a picture.
            m = max(3, int(0.14 * crop.shape[0]))
            crop = np.pad(crop[m:-m, m:-m], 20, constant_values=255)
            marking = _CONFIDENTIAL_LINES.get(fold(reader.read_text(crop)))
            if marking:
                return marking
            colour = rgb[
                int(top * ch) : int(np.ceil(bottom * ch)),
                int(left * cw) : int(np.ceil(right * cw)),
            ]
            words = np.pad(stamp_words(np.ascontiguousarray(colour)), 20, constant_values=255)
            marking = _CONFIDENTIAL_LINES.get(fold(reader.read_text(words)))
            if marking:
                return marking
    for w in result.words:
        if w.text.strip(".,:;!\"'()[]") in ("MẬT", "TỐI MẬT", "TUYỆT MẬT"):
            return "MẬT"
    for line in lines:
        marking = _CONFIDENTIAL_LINES.get(line.folded)
        if marking:
            return marking
    folded = fold(result.text)
    if "khongduocsaochup" in folded or "cambansao" in folded:
        return "không được sao chụp"
    return ""


def _reread_missing(
    gray: np.ndarray, lines: Sequence[Line], reader: DocumentReader, names: Sequence[str]
) -> dict[str, Field]:
    """The fields ``names`` read again beside and under their labels, where the page OCR
    found a label but no value (Tesseract's page layout may take a line of large bold print
    on the card's guilloche for a picture), or no plausible one (a digit of a date lost):
    the band from the label's row (a value may stand right of its label) down to the next
    labelled line, within the label's column, the labels in it blanked, read apart as one
    block. Uncertain unless the value confirms itself (an address every unit of which the
    official list names so); the MRZ or the QR code confirms the rest."""
    names = [name for name in names if name in REREAD_FIELDS]
    if not names:
        return {}  # the common case: nothing lost, and no labels to find again
    page = Page.of(lines)
    height, width = gray.shape
    out: dict[str, Field] = {}
    for name in names:
        label = page.first(name)
        if label is None:
            continue
        left, top, _, bottom = label.box(page.lines)
        h = max(1, bottom - top)
        _, right = page.column(label)
        right = int(min(width, right))
        reach = (PLACE_LINES + 1) * 1.6 * h if name in PLACES else 3 * h
        above = [
            ln.bottom
            for ln in page.lines
            if ln.bottom <= top and ln.right > left and ln.left < right
        ]
        below = [
            page.lines[lb.line].top
            for lb in page.labels
            if lb.line != label.line and page.lines[lb.line].top > bottom
        ]
        y0 = int(max(top - h, *above, 0))  # a value beside its label stands taller than it
        y1 = int(min(bottom + reach, *below, height))
        x0 = int(max(0, left - h))
        crop = gray[y0:y1, x0:right].copy()
        for lb in page.labels:  # the labels' words are not the value
            for w in page.lines[lb.line].words[lb.first : lb.last + 1]:
                ys = slice(max(0, w.top - y0), max(0, w.bottom - y0))
                crop[ys, max(0, w.left - x0) : max(0, w.right - x0)] = 255
        crop = np.pad(crop, 20, constant_values=np.uint8(255))
        found = reread_field(name, reader.read_text(np.ascontiguousarray(crop)), REREAD_CONFIDENCE)
        if found is not None:
            out[name] = found
    return out


def _mrz_crop(gray: np.ndarray, lines: Sequence[Line]) -> np.ndarray:
    """The MRZ band: the box of the lines that look like MRZ text, padded, else the bottom
    40 % of the card; with a margin of paper all round. A band whose lines are more than
    :data:`MRZ_LINE_PX` apart (a card scanned at about 400 dpi and more) is scaled down to that:
    the recognizer misreads characters drawn much larger than those it was trained on."""
    h = gray.shape[0]
    mrzish = [ln for ln in lines if re.search(r"[<«]{2,}|IDVNM", ln.text.replace(" ", ""))]
    scale = 1.0
    if mrzish:
        pitch = (max(ln.bottom for ln in mrzish) - min(ln.top for ln in mrzish)) / len(mrzish)
        if pitch > MRZ_SCALE_FROM * MRZ_LINE_PX:
            scale = MRZ_LINE_PX / pitch
        top = min(ln.top for ln in mrzish)
        bottom = max(ln.bottom for ln in mrzish)
        # The zone's rows the page OCR did not read as zone text, above and below those it
        # did ("IDVNM…" read as "1S 704…"): the band reaches over them too.
        rows = _zone_rows([ln.text for ln in sorted(mrzish, key=lambda ln: ln.top)])
        line_h = max(ln.bottom - ln.top for ln in mrzish)
        above, under = min(rows) * MRZ_PITCH * line_h, (2 - max(rows)) * MRZ_PITCH * line_h
        pad = max(8, (bottom - top) // 6)
        top = max(0, int(top - 2 * pad - (bottom - top) // 3 - above))
        bottom = min(h, int(bottom + 2 * pad + (bottom - top) // 3 + under))
        band = gray[top:bottom, :]
    else:
        band = gray[int(h * 0.6) :, :]
    # Paper around the zone: on a tight crop its first and last characters touch the image's
    # edge, where the recognizer doubles or drops them.
    if scale < 1.0:
        band = _rescaled(band, scale)
    side = max(16, band.shape[0] // 4)
    return np.pad(band, side, constant_values=np.uint8(np.percentile(band, 90)))


def _runs(mask: np.ndarray, gap: int = 0) -> list[tuple[int, int]]:
    """The (start, end) of each run of True in a 1-D mask, runs apart by ``gap`` or less
    joined."""
    out: list[tuple[int, int]] = []
    for k in np.flatnonzero(mask):
        if out and k - out[-1][1] <= gap:
            out[-1] = (out[-1][0], int(k) + 1)
        else:
            out.append((int(k), int(k) + 1))
    return out


GLYPH_SIZE = (16, 24)  # (width, height) glyphs are compared at
GLYPH_MATCH = 0.8  # the correlation of a glyph with its character's glyphs elsewhere, at least
GLYPH_MARGIN = 0.05  # over the best of any other character


def _zone_glyphs(crop: np.ndarray) -> list[list[np.ndarray]] | None:
    """Lines 1 and 2 of the zone in a band (see :func:`_mrz_crop`) cut into their 30
    characters each, each a tight box of its ink: the first two of the band's last three long
    rows of print, each cut at the columns between its glyphs (the zone is printed in a
    fixed pitch). None when the band does not show three such rows, or a row does not come
    apart into 30 glyphs (two run together at a low resolution, a mark beside one)."""
    import cv2

    level, _ = cv2.threshold(crop, 0, 255, cv2.THRESH_BINARY + cv2.THRESH_OTSU)
    ink = crop < level
    w = crop.shape[1]
    rows = []
    for top, bottom in _runs(np.asarray(ink.sum(axis=1) > max(2, w // 100)), gap=1):
        cols = np.flatnonzero(ink[top:bottom].any(axis=0))
        if bottom - top >= 5 and cols.size:
            rows.append((top, bottom, int(cols[-1] - cols[0])))
    longest = max((span for _, _, span in rows), default=0)
    rows = [r for r in rows if r[2] >= 0.6 * longest]
    if len(rows) < 3:
        return None
    out = []
    for top, bottom, _ in rows[-3:-1]:
        band = ink[top:bottom]
        glyphs = _runs(np.asarray(band.any(axis=0)), gap=0)
        if len(glyphs) != TD1_LINE:
            return None
        cells = []
        for left, right in glyphs:
            ys = np.flatnonzero(band[:, left:right].any(axis=1))
            cells.append(crop[top + ys[0] : top + ys[-1] + 1, left:right])
        out.append(cells)
    return out


def _glyph_vector(glyph: np.ndarray) -> np.ndarray:
    import cv2

    v = cv2.resize(glyph, GLYPH_SIZE, interpolation=cv2.INTER_AREA).astype(np.float64).ravel()
    v -= v.mean()
    norm = float(np.linalg.norm(v))
    return v / norm if norm else v


def _composite_glyph_digit(crop: np.ndarray, m: Mrz) -> str:
    """The composite digit (the last character of line 2) told by its glyph alone, compared
    with the glyphs of the zone's digits that their own check digits confirm (the document
    number; the birth and expiry dates): the same face, size and capture. "" when the glyphs
    cannot be cut, or no confirmed digit's glyph matches it clearly."""
    zone = _zone_glyphs(crop)
    if zone is None:
        return ""
    best: dict[str, float] = {}
    target = _glyph_vector(zone[1][TD1_LINE - 1])
    for line, k in checked_places(m):
        ch = m.lines[line][k]
        if ch.isdigit():
            score = float(target @ _glyph_vector(zone[line][k]))
            best[ch] = max(best.get(ch, -1.0), score)
    ranked = sorted(best.items(), key=lambda kv: -kv[1])
    if not ranked or ranked[0][1] < GLYPH_MATCH:
        return ""
    if len(ranked) > 1 and ranked[0][1] - ranked[1][1] < GLYPH_MARGIN:
        return ""
    return ranked[0][0]


def _mended_composite(
    combined: Mrz, reads: Sequence[tuple[str, str, str]], crop: np.ndarray, today: date
) -> Mrz:
    """``combined`` with its composite digit told by its glyph, where only the composite fails
    on a Vietnamese card: after the long run of chevrons that ends line 2 (a Vietnamese card
    carries no optional data there) the recognizer drops, doubles or shifts its last digit
    ("VNM<<<<<<<<<<<3<", "VNM<<<<<<<<<<<<"), and reads the glyph alone no better. The digit
    its glyph shows (see :func:`_composite_glyph_digit`) completes a read; the check digits
    decide, as for any read."""
    line2 = combined.lines[1]
    if combined.failed != ("composite",) or line2[15:18] != "VNM":
        return combined
    digit = _composite_glyph_digit(crop, combined)
    if not digit:
        return combined
    read = (combined.lines[0], line2[:18] + "<" * 11 + digit, combined.lines[2])
    again = combine_reads([*reads, read], today)
    return again if again is not None and again.valid else combined


def _rescaled(gray: np.ndarray, factor: float) -> np.ndarray:
    """``gray`` scaled by ``factor``: averaged down, or enlarged with Lanczos."""
    size = (max(1, round(gray.shape[1] * factor)), max(1, round(gray.shape[0] * factor)))
    method = Image.Resampling.LANCZOS if factor > 1 else Image.Resampling.BOX
    return np.ascontiguousarray(np.asarray(Image.fromarray(gray).resize(size, method)))


def _zone_rows(texts: Sequence[str]) -> list[int]:
    """Which row of a TD1 zone each line read as zone text is, top down: those above the
    dates' row (six digits, a check digit, the sex, six digits) row 0, those below it row 2;
    without it, a line with the document code or the state before digits row 0 ("IDVNM1…",
    or "EDVNM1…" with its I misread), else the name's row 2."""
    flat = [t.replace(" ", "") for t in texts]
    dates = [k for k, t in enumerate(flat) if re.search(r"\d{7}[MFX<]\d{7}", t)]
    if dates:
        return [0 if k < dates[0] else 1 if k == dates[0] else 2 for k in range(len(flat))]
    return [0 if re.search(r"^I[D<]|VNM\d", t) else 2 for t in flat]


def _read_mrz(
    gray: np.ndarray, lines: Sequence[Line], reader: DocumentReader | None, today: date
) -> tuple[Mrz | None, bool, bool]:
    """(the best zone from the page OCR and a second, MRZ-only reading; whether the two
    reads agree, undamaged, on what a failed check digit covers (see
    :func:`~saoy.core.documents.mrz.proven_failures`); whether an MRZ was seen at all)."""
    reads = []
    first = find_td1([ln.text for ln in lines])
    if first is not None:
        reads.append(first)
    second = None
    if reader is not None:
        crop = np.ascontiguousarray(_mrz_crop(gray, lines))
        second = find_td1(reader.read_mrz(crop))
        if second is not None:
            reads.insert(0, second)  # the MRZ-only reading is the more accurate
    if not reads:
        return None, False, False
    combined = combine_reads(reads, today)
    if combined is not None and reader is not None:
        combined = _mended_composite(combined, reads, crop, today)
    agree = False
    if first is None and second is not None and combined is not None:
        # The page OCR missed the zone's line 1: its line 2, read undamaged, still proves
        # or not a wrong digit of the dates there.
        line2 = find_line2([ln.text for ln in lines])
        agree = line2 is not None and bool(proven_failures([second, ("", line2, "")], combined))
        if not combined.valid and not agree and reader is not None and sound(second, combined):
            # Nor is there a second reading of line 1: the band read again at other scales
            # (the recognizer's misreadings change with the size of the print) proves a wrong
            # check digit when every reading gives the zone's first two lines alike.
            again = [find_td1(reader.read_mrz(_rescaled(crop, f))) for f in MRZ_RESCALES]
            agree = all(r is not None and sound(r, combined) for r in again)
    if first is not None and second is not None and combined is not None:
        # Two reads that agree prove a wrong check digit only when neither read is damaged
        # up to the end of the field it covers (a character doubled further on in line 2, or
        # on line 2 at all for the document number, says nothing of it).
        agree = (sound(first, combined) and sound(second, combined)) or bool(
            proven_failures([first, second], combined)
        )
    return combined, agree, True


def mrz_fields(m: Mrz) -> list[Field]:
    """What a card's back carries of its zone as fields (uncertain unless its check digits hold)."""
    conf = 0.99 if m.valid else 0.5
    out = [
        Field("mrz_document_number", m.document_number, conf, "mrz"),
        Field("mrz_sex", m.sex, conf, "mrz"),
        Field("mrz_name", m.full_name, conf, "mrz"),
    ]
    if m.id_number:
        out.append(Field("mrz_id_number", m.id_number, conf, "mrz"))
    if m.birth_date:
        out.append(Field("mrz_birth_date", m.birth_date.strftime("%d/%m/%Y"), conf, "mrz"))
    if m.expiry_date:
        out.append(Field("mrz_expiry_date", m.expiry_date.strftime("%d/%m/%Y"), conf, "mrz"))
    return out


def _fuse_with_qr(fields: dict[str, Field], qr: CardQr) -> dict[str, Field]:
    """Take the QR's spelling of a printed field that the OCR read the same but for accents
    or look-alike characters: the QR is error-corrected, the OCR is not, so a printed field
    it confirms counts as surely read. A field that reads differently once folded is left as
    read, for the agreement check to flag."""
    values = {
        "id_number": qr.id_number,
        "full_name": qr.full_name.upper(),
        "date_of_birth": qr.date_of_birth.strftime("%d/%m/%Y") if qr.date_of_birth else "",
        "sex": qr.sex,
        "place_of_residence": qr.address,
    }
    out = dict(fields)
    for name, value in values.items():
        f = out.get(name)
        if f is not None and value and fold(f.value) == fold(value):
            out[name] = Field(name, value, max(f.confidence, 0.95), "ocr+qr")
    return out


def _qr_fields(q: CardQr) -> list[Field]:
    if not q.well_formed:
        return []
    values = {
        "qr_id_number": q.id_number,
        "qr_old_id_number": q.old_id_number,
        "qr_full_name": q.full_name,
        "qr_date_of_birth": q.date_of_birth.strftime("%d/%m/%Y") if q.date_of_birth else "",
        "qr_sex": q.sex,
        "qr_address": q.address,
        "qr_issue_date": q.issue_date.strftime("%d/%m/%Y") if q.issue_date else "",
    }
    return [Field(k, v, 1.0, "qr") for k, v in values.items() if v]


def analyze_page(
    index: int,
    gray: np.ndarray,
    rgb: np.ndarray | None,
    result: OcrResult,
    today: date,
    reader: DocumentReader | None = None,
    *,
    seals: Sequence[Seal] | None = None,
    qr_codes: Sequence[QrCode] | None = None,
) -> PageAnalysis:
    """Classify one page and extract what its type carries. ``seals`` (found on ``rgb``) and
    ``qr_codes`` (found on ``gray``), when given, are not looked for again."""
    h, w = gray.shape
    base = _Base(
        index,
        result.word_count,
        round(result.mean_confidence, 1),
        round(w / max(1, h), 3),
        (w, h),
    )
    good = [
        x for x in result.words if x.confidence >= GOOD_WORD_CONFIDENCE and len(fold(x.text)) >= 2
    ]
    if len(good) < 3 and _is_blank(gray):
        return PageAnalysis(document_type=GENERIC, confidence=1.0, condition=BLANK, **base.kw())
    lines = group_lines(result.words)
    folded = fold(result.text)
    found = classify(folded, w, h, [ln.folded for ln in lines])
    # A page of no known type has no content rule to catch it upside down, and an OCR engine
    # may read turned text as confident nonsense: such a page is always checked for turning.
    # Nor can a card read on its side (the recognizer reads vertical lines turned one way).
    if reader is not None and (
        len(good) < MIN_DOCUMENT_WORDS
        or result.mean_confidence < 70
        or found.document_type == GENERIC
        or (found.document_type in (CCCD_FRONT, CCCD_BACK) and _card_on_its_side(w / max(1, h)))
    ):
        turned = reader.orientation(gray)
        if turned and turned.degrees and turned.confidence >= OSD_MIN_CONFIDENCE:
            return PageAnalysis(
                document_type=GENERIC,
                confidence=0.0,
                condition=ROTATED,
                rotation=(360 - turned.degrees) % 360,
                **base.kw(),
            )
    if len(good) < MIN_DOCUMENT_WORDS:
        return PageAnalysis(document_type=GENERIC, confidence=0.0, condition=NO_TEXT, **base.kw())

    fields: dict[str, Field] = {}
    mrz, agree, mrz_found, qr = None, False, False, None
    found_seals: tuple[Seal, ...] | None = None
    if found.document_type in (CCCD_FRONT, CCCD_BACK):
        fields = card_fields(lines)
        if reader is not None:
            required = REQUIRED_FIELDS.get((found.document_type, found.variant), ())
            # Missing, or read as no plausible value of the field ("1/12/1960", a digit lost).
            lost = [r for r in required if r not in fields or fields[r].confidence <= IMPLAUSIBLE]
            fields.update(_reread_missing(gray, lines, reader, lost))
        # The QR code is on the front of the 2021 card and on the back of the 2024 card.
        qr = card_qr(qr_codes) if qr_codes is not None else read_card_qr(gray)
        if qr is not None and qr.well_formed:
            fields = _fuse_with_qr(fields, qr)
        if found.document_type == CCCD_BACK:
            mrz, agree, mrz_found = _read_mrz(gray, lines, reader, today)
    elif found.document_type == BIRTH_CERTIFICATE:
        fields = birth_certificate_fields(lines)
        if seals is not None:
            found_seals = tuple(seals)
        elif rgb is not None:
            found_seals = tuple(find_seals(rgb))
    extra = (mrz_fields(mrz) if mrz else []) + (_qr_fields(qr) if qr else [])
    required = REQUIRED_FIELDS.get((found.document_type, found.variant), ())
    return PageAnalysis(
        document_type=found.document_type,
        confidence=found.confidence,
        variant=found.variant,
        fields=tuple(fields.values()) + tuple(extra),
        mrz=mrz,
        mrz_reads_agree=agree,
        mrz_found=mrz_found,
        qr=qr,
        seals=found_seals,
        confidential=confidential_marking(result, lines, gray, rgb, reader),
        missing=tuple(r for r in required if r not in fields),
        **base.kw(),
    )


def quarter_turns_upright(page: PageAnalysis) -> tuple[int, ...]:
    """The quarter turns counter-clockwise (negative: clockwise) that may put a page upright,
    most likely first, to read it again after each until one reads (see :func:`read_turned`);
    none for a page that reads as upright. A page found turned is turned back, and a page
    found on its side is also tried the other way: orientation detection can mistake the
    direction, and an upright page for one upside down, on a card's back, whose
    machine-readable zone it does not know. So a page of no known type read with low
    confidence is tried upside down."""
    if page.condition == ROTATED and page.rotation % 90 == 0 and page.rotation % 360:
        back = -(page.rotation // 90) % 4
        return (back,) if back == 2 else (back, (back + 2) % 4)
    if (
        page.condition == OK
        and page.document_type == GENERIC
        and page.mean_confidence < ILLEGIBLE_CONFIDENCE
    ):
        return (2,)
    return ()


def read_turned(page: PageAnalysis, upright: PageAnalysis, turns: int) -> PageAnalysis | None:
    """The analysis of ``page`` read again after ``turns`` quarter turns (see
    :func:`quarter_turns_upright`), recording how it was turned; None when that reading is
    not better (``page``'s analysis stands): a page found turned must read as a known type
    or legibly, a page only tried upside down must read as a known type."""
    if upright.condition != OK:
        return None
    if upright.document_type == GENERIC and (
        page.condition != ROTATED or upright.mean_confidence < ILLEGIBLE_CONFIDENCE
    ):
        return None
    return replace(upright, rotation=(-90 * turns) % 360)


def is_card_shaped(page: PageAnalysis) -> bool:
    return abs(page.aspect - CARD_ASPECT) / CARD_ASPECT < 0.2


def _card_on_its_side(aspect: float) -> bool:
    return abs(aspect * CARD_ASPECT - 1) < 0.2
