"""What document analysis and OCR take of a prepared page.

Two things printed on a page are not text, and each costs the page OCR the text under or
beside it:

- a red seal stamped over the signer's title and name: page segmentation takes the seal's
  rings and letters and the text under them for one picture and reads none of it. The
  seal's ink is lifted toward the paper by its colour, inside the seal's disc only: black
  text stamped over stays, and red print elsewhere (a red title, a framed "MẬT") is read.
- a QR code: page segmentation takes the code and the lines beside it (the national motto
  on an ID card) for one picture block. The code is read first, then painted over with the
  paper's colour.

- the rules of a table or a form: page segmentation takes ruled cells for pictures or reads
  a rule as a row of dashes and letters, and a table's rows come out column by column. Long
  straight runs of ink, far longer than any stroke of a letter, are painted with the paper.

The colour view, the seals and the QR codes found on the way are kept for analysis, which
would otherwise look for them again.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from saoy.core.documents.classify import CARD_ASPECT
from saoy.core.documents.qr import QrCode, find_qr_codes
from saoy.core.documents.seal import Seal, find_seals, lift_seal_ink
from saoy.core.model import AdmittedPage
from saoy.core.pages.imaging import PreparedPage, colour_view

QR_MARGIN = 0.12  # of the code's side, painted around it (the quiet zone and a blur's halo)


@dataclass(frozen=True, eq=False)
class PageView:
    """A prepared page as document analysis takes it."""

    gray: np.ndarray  # the prepared page (upright, cropped, deskewed; H x W uint8)
    ocr_gray: np.ndarray  # the same with seal ink lifted and QR codes painted over: for OCR
    rgb: np.ndarray | None  # the colour view (see colour_view); None for a grey scan
    seals: tuple[Seal, ...] | None  # red round seals on ``rgb``; None without colour
    qr_codes: tuple[QrCode, ...]  # the QR codes read on ``gray``


def page_view(page: AdmittedPage, prepared: PreparedPage) -> PageView:
    """The colour view, seals and QR codes of a prepared page, and the page OCR should read."""
    gray = prepared.gray
    rgb = colour_view(page, prepared)
    seals = tuple(find_seals(rgb)) if rgb is not None else None
    # Tables and forms are on pages; a card has none, and its emblem and chip are no rules.
    card = abs(gray.shape[1] / max(1, gray.shape[0]) / CARD_ASPECT - 1) < 0.2
    codes = tuple(find_qr_codes(gray, card=card))
    rules = None if card else ruled_lines(gray, page.dpi or prepared.dpi_estimate or ASSUMED_DPI)
    lit = None if card else evenly_lit(gray)
    if not seals and not codes and rules is None and lit is None:
        return PageView(gray, gray, rgb, seals, codes)
    ocr_gray = gray.copy() if lit is None else lit
    if rules is not None:
        ocr_gray[rules] = np.uint8(np.percentile(gray[::4, ::4], 90))
    height, width = gray.shape
    if seals:
        # One full-scale colour decode for all the seals: the box that holds them.
        boxes = [seal.box(width, height) for seal in seals]
        left, top = min(b[0] for b in boxes), min(b[1] for b in boxes)
        right, bottom = max(b[2] for b in boxes), max(b[3] for b in boxes)
        colour = colour_view(page, prepared, box=(left, top, right, bottom))
        if colour is not None:
            for seal, (x0, y0, x1, y1) in zip(seals, boxes, strict=True):
                part = colour[y0 - top : y1 - top, x0 - left : x1 - left]
                lift_seal_ink(ocr_gray, seal, (x0, y0, x1, y1), part)
    for code in codes:
        paint_over(ocr_gray, code.box)
    return PageView(gray, ocr_gray, rgb, seals, codes)


SHADE_STEP = 8  # the paper's light is estimated on the page averaged down this many times
SHADE_SPREAD = 20.0  # grey levels between the page's brightest and darkest paper: shaded


def evenly_lit(gray: np.ndarray) -> np.ndarray | None:
    """``gray`` with the light on its paper made even, where a photograph left it shaded
    (its paper, text taken out, spans :data:`SHADE_SPREAD` grey levels and more from the
    lit side to the dark one; a scan's paper spans a few); None for an evenly lit page.
    Tesseract binarizes a page with one threshold: across shaded paper it loses whole
    paragraphs (an A4 letter photographed from above read as 8 words of 146)."""
    import cv2

    h, w = gray.shape
    small = cv2.resize(
        gray, (max(1, w // SHADE_STEP), max(1, h // SHADE_STEP)), interpolation=cv2.INTER_AREA
    )
    # The paper about each place: the brightest nearby (text is darker), smoothed.
    paper = cv2.GaussianBlur(cv2.dilate(small, np.ones((7, 7), np.uint8)), (0, 0), 5)
    bright = float(np.percentile(paper, 95))
    if bright - float(np.percentile(paper, 5)) < SHADE_SPREAD:
        return None
    light = cv2.resize(paper, (w, h), interpolation=cv2.INTER_LINEAR).astype(np.float32)
    even = gray.astype(np.float32) * (bright / np.maximum(light, 1.0))
    return np.ascontiguousarray(np.clip(even, 0, 255).astype(np.uint8))


RULE_FILL = 0.9  # share of a window of ink that makes a rule (letters leave gaps)
RULE_ACROSS_MM = 15.0  # the shortest rule across, and down (a table cell's side): longer
RULE_DOWN_MM = 8.0  # than any stroke of a letter, a card's large digits included
MM_PER_INCH = 25.4
ASSUMED_DPI = 300.0  # when neither the file nor the document's size tells
RULE_INK = 60  # grey levels below the paper that count as ink


def _runs(ink: np.ndarray, length: int) -> np.ndarray:
    """Pixels of ``ink`` inside a window of ``length`` along its rows that is almost all ink.
    Only rows with that much ink at all are looked at."""
    out = np.zeros_like(ink)
    n = ink.shape[1]
    if n < length:
        return out
    rows = np.flatnonzero(np.count_nonzero(ink, axis=1) >= RULE_FILL * length)
    if rows.size == 0:
        return out
    part = ink[rows]
    csum = np.zeros((rows.size, n + 1), dtype=np.int32)
    np.cumsum(part, axis=1, out=csum[:, 1:])
    full = (csum[:, length:] - csum[:, :-length]) >= RULE_FILL * length  # window starts
    # Every pixel a full window covers: a running count of the windows over it.
    marks = np.zeros((rows.size, n + 1), dtype=np.int32)
    marks[:, : n - length + 1] += full
    marks[:, length:] -= full
    out[rows] = (np.cumsum(marks[:, :n], axis=1) > 0) & part
    return out


def ruled_lines(gray: np.ndarray, dpi: float = ASSUMED_DPI) -> np.ndarray | None:
    """A mask of the rules of tables and forms on an H x W uint8 page scanned at ``dpi``:
    straight runs of ink across a tenth of the page's width, or down a fortieth of its height
    (a cell's side), and never shorter than :data:`RULE_ACROSS_MM` / :data:`RULE_DOWN_MM`,
    with the pixels just beside them; None when there are none. Looked for at half scale
    (the darker of each 2 x 2 pixels, so that a thin rule stays whole)."""
    height, width = gray.shape
    h2, w2 = height // 2 * 2, width // 2 * 2
    if h2 < 2 or w2 < 2:
        return None
    g = gray[:h2, :w2]
    small = np.minimum(
        np.minimum(g[0::2, 0::2], g[0::2, 1::2]), np.minimum(g[1::2, 0::2], g[1::2, 1::2])
    )
    paper = float(np.percentile(small[::2, ::2], 90))
    ink = small < paper - RULE_INK
    half_mm = dpi / MM_PER_INCH / 2  # pixels per millimetre at half scale
    mask = _runs(ink, max(round(RULE_ACROSS_MM * half_mm), w2 // 20))
    mask |= _runs(np.ascontiguousarray(ink.T), max(round(RULE_DOWN_MM * half_mm), h2 // 80)).T
    if not mask.any():
        return None
    # Back to full scale, with the anti-aliased edge of a rule: a pixel either side at half
    # scale, two at full scale.
    grown = mask.copy()
    grown[1:, :] |= mask[:-1, :]
    grown[:-1, :] |= mask[1:, :]
    grown[:, 1:] |= mask[:, :-1]
    grown[:, :-1] |= mask[:, 1:]
    full = np.zeros((height, width), dtype=bool)
    full[:h2, :w2] = grown.repeat(2, axis=0).repeat(2, axis=1)
    return full & (gray < paper)


def paint_over(gray: np.ndarray, box: tuple[int, int, int, int]) -> None:
    """Fill ``box`` (left, top, right, bottom), with a margin of :data:`QR_MARGIN` of its
    side, in place with the colour of the paper around it."""
    left, top, right, bottom = box
    m = round(QR_MARGIN * max(right - left, bottom - top))
    height, width = gray.shape
    left, top = max(0, left - m), max(0, top - m)
    right, bottom = min(width, right + m), min(height, bottom + m)
    if right <= left or bottom <= top:
        return
    # The paper: the lighter part of a band around the box.
    band = gray[max(0, top - m) : bottom + m, max(0, left - m) : right + m]
    gray[top:bottom, left:right] = np.uint8(np.percentile(band, 90))
