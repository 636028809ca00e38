"""OCR in two steps: Tesseract reads the page, the ONNX line recognizer reads again what
Tesseract is unsure of.

Tesseract finds the page's layout and its words, with boxes and confidences, cheaply; but its
Vietnamese model misreads short numbers ("8.5" as "§.5", "5.5" as "Si)") and the letters of
words it is unsure of. The Vietnamese line recognizer of :mod:`saoy.core.ocr.onnx` reads text
far better but costs more per line (and its detector more again). Here it reads only the runs
of words (a text line cut at its wide gaps, see :func:`saoy.core.ocr.tesseract._segments`: a
label, a value, a table's cell) that hold a word Tesseract is unsure of: a low confidence, a
character no Vietnamese text has, a short number. Each run is read from its own crop of the page,
straightened along the run's slope, all of a page's runs batched; the recognizer's reading is
taken when it is confident and more confident than Tesseract was (and never on a page that
Tesseract can hardly read at all: a turned page, which the recognizer would read as confident
nonsense, hiding that it needs turning). The words that Tesseract
read again with a restricted alphabet (lines of a machine-readable zone, numbers and dates of
four digits and more) are kept as they were read.

Tesseract reads the page at the scale that suits it: a page whose text is much taller than it
needs (an A4 page at 300 dpi) is scaled down first, which costs less and reads as well. The
words' boxes are mapped back to the page's pixels, and the recognizer's crops are cut from the
page itself.
"""

from __future__ import annotations

import unicodedata
from pathlib import Path

import numpy as np

from saoy.core.model import OcrResult, Word
from saoy.core.ocr.onnx import OnnxEngine, TextBox
from saoy.core.ocr.tesseract import (
    DEFAULT_LANGUAGES,
    OcrEngine,
    TesseractEngine,
    _check_gray,
    reread_kind,
)

TEXT_HEIGHT = 19
"""Tesseract reads the page scaled so that its text height (:func:`text_height`) is at most
this many pixels (a capital of about 25 pixels). At 22 (a 30-pixel capital) an A4 page at 300 dpi
costs a tenth more to read, and its letters and tables read no better (both corpora, seed 1:
letters 1.1 % CER at 22, 0.4 % at 19; tables 0.3 % at both; at 17 tables fall to 2 %)."""
SCALED_SIDE = 2000
"""Only a page at least this many pixels on its shorter side (an A4 page from 250 dpi up) is
scaled: a card's labels are half the height of its values, and would be read too small."""
LEAST_SHRINK = 0.85  # a page that would be scaled by more than this is read as it is
LEGIBLE = 60.0  # a page Tesseract reads with a lower mean confidence is not read again
UNSURE = 85.0  # a word Tesseract read with a lower confidence (0-100) is read again
ACCEPT = 0.8  # the recognizer's reading is taken when its characters' mean probability is this
CONTEXT = 1  # words either side of an unsure word read again with it
MARGIN_Y = 0.2  # of a run's height, added above and below it in the recognizer's crop
MARGIN_X = 0.35  # of a run's height, added left and right

# Letters (once their Vietnamese marks are taken off), digits and printed punctuation.
_PLAIN = frozenset(
    "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZđĐ0123456789"
    " .,:;/-()'\"!?%&+*#<>[]_=–—‘’“”…"
)
_MARKS = frozenset("\u0300\u0301\u0303\u0309\u0323\u0302\u0306\u031b")


def plausible(text: str) -> bool:
    """Whether every character of ``text`` is one printed Vietnamese uses: a letter of its
    alphabet (with its marks), a digit or common punctuation."""
    return all(ch in _PLAIN or ch in _MARKS for ch in unicodedata.normalize("NFD", text))


def unsure(word: Word, threshold: float = UNSURE) -> bool:
    """Whether Tesseract's reading of ``word`` deserves a second reading: a low confidence,
    a character no Vietnamese text has, an unpaired bracket, or a short number (the Vietnamese
    model's weakest reading: "8.5" as "§.5")."""
    text = word.text
    if word.confidence < threshold or not plausible(text):
        return True
    if text.count("(") != text.count(")"):
        return True  # "Si)" for "5.5"; a list's "a)" is short to read again
    digits = sum(ch.isdigit() for ch in text)
    return 0 < digits < 4 and len(text) <= 6


def text_height(gray: np.ndarray) -> float | None:
    """The height of the page's text in pixels: the upper quartile of the heights of the
    glyph-sized blobs of ink (found at half scale, smoothed), about a capital's height; None
    on a page with too few of them."""
    import cv2

    small = np.ascontiguousarray(gray[::2, ::2])
    if small.shape[0] < 8 or small.shape[1] < 8:
        return None
    # The grain of a photograph breaks into specks of a few pixels, thousands of them on a
    # page shot from above, that would pass for the page's glyphs: smoothed away first.
    small = cv2.medianBlur(small, 3)
    _, ink = cv2.threshold(small, 0, 255, cv2.THRESH_BINARY_INV | cv2.THRESH_OTSU)
    _, _, stats, _ = cv2.connectedComponentsWithStats(ink, connectivity=8)
    heights = stats[1:, cv2.CC_STAT_HEIGHT]
    widths = stats[1:, cv2.CC_STAT_WIDTH]
    glyphs = heights[(heights >= 3) & (heights <= 80) & (widths <= 4 * heights)]
    if glyphs.size < 20:
        return None
    return 2.0 * float(np.percentile(glyphs, 75))


def run_box(words: list[Word], page_w: int, page_h: int) -> TextBox:
    """The box the recognizer reads a run of words from: along the slope of their centres
    (a skewed page), as tall as they reach above and below it, with margins."""
    cx = np.array([(w.left + w.right) / 2 for w in words], dtype=np.float64)
    cy = np.array([(w.top + w.bottom) / 2 for w in words], dtype=np.float64)
    left, right = min(w.left for w in words), max(w.right for w in words)
    slope = 0.0
    if len(words) >= 2 and cx.max() - cx.min() > 0:
        slope = float(np.clip(np.polyfit(cx, cy, 1)[0], -0.05, 0.05))
    mid = float(np.mean(cy - slope * cx))  # the centre line: y = mid + slope * x
    # How far the words reach above and below the centre line (the median word: a word
    # boxed with a stain or a stamp's ink would make the crop, and its text, look smaller),
    # less the height each word's own skew adds to its upright box.
    lean = [abs(slope) * (w.right - w.left) / 2 for w in words]
    up = float(
        np.median([mid + slope * x - w.top - d for w, x, d in zip(words, cx, lean, strict=True)])
    )
    down = float(
        np.median([w.bottom - mid - slope * x - d for w, x, d in zip(words, cx, lean, strict=True)])
    )
    height = max(up + down, 4.0)
    up += MARGIN_Y * height
    down += MARGIN_Y * height
    x0, x1 = left - MARGIN_X * height, right + MARGIN_X * height
    corners = np.array(
        [
            [x0, mid + slope * x0 - up],
            [x1, mid + slope * x1 - up],
            [x1, mid + slope * x1 + down],
            [x0, mid + slope * x0 + down],
        ],
        dtype=np.float32,
    )
    corners[:, 0] = np.clip(corners[:, 0], 0, page_w)
    corners[:, 1] = np.clip(corners[:, 1], 0, page_h)
    return TextBox(corners=corners, score=1.0)


def _scaled(word: Word, scale: float, page_w: int, page_h: int) -> Word:
    """``word`` read on the page scaled by ``scale``, in the page's pixels."""
    if scale == 1.0:
        return word
    return Word(
        word.text,
        max(0, min(page_w, int(word.left / scale))),
        max(0, min(page_h, int(word.top / scale))),
        max(0, min(page_w, int(np.ceil(word.right / scale)))),
        max(0, min(page_h, int(np.ceil(word.bottom / scale)))),
        word.confidence,
    )


def _keep_restricted(tesseract: list[Word], read: list[Word]) -> list[Word]:
    """The recognizer's words ``read`` of a run, where Tesseract read a word again with a
    restricted alphabet (a zone line, a number, a date) that word instead of the recognizer's
    words centred inside it."""
    kept = [w for w in tesseract if reread_kind(w.text) is not None]
    if not kept:
        return read
    out = [w for w in read if not any(k.left <= (w.left + w.right) / 2 <= k.right for k in kept)]
    return sorted([*out, *kept], key=lambda w: w.left)


def _result(words: list[Word], text: str) -> OcrResult:
    mean = sum(x.confidence for x in words) / len(words) if words else 0.0
    return OcrResult(words=tuple(words), text=text.strip(), mean_confidence=mean)


class CascadeEngine(OcrEngine):
    """Tesseract reads the page; the ONNX line recognizer reads again the runs of words that
    Tesseract is unsure of (see the module's description)."""

    name = "cascade"

    def __init__(
        self,
        tessdata: Path | None = None,
        languages: str = DEFAULT_LANGUAGES,
        *,
        providers: str = "auto",
        threads: int = 1,
        device_id: int = 0,
        text_height: float = TEXT_HEIGHT,
        unsure: float = UNSURE,
        accept: float = ACCEPT,
        tesseract: TesseractEngine | None = None,
        recognizer: OnnxEngine | None = None,
    ) -> None:
        """``tessdata``, ``languages``: Tesseract's (see :class:`TesseractEngine`);
        ``providers``, ``threads``, ``device_id``: the recognizer's (see :class:`OnnxEngine`);
        ``text_height``: the text height Tesseract reads the page at (0: as it comes);
        ``unsure``: Tesseract's word confidence (0-100) under which a run is read again;
        ``accept``: the recognizer's confidence (0-1) from which its reading is taken.
        ``tesseract`` and ``recognizer`` replace the engines built here (and are closed with
        this one)."""
        self.tesseract = tesseract or TesseractEngine(tessdata, languages)
        try:
            self.recognizer = recognizer or OnnxEngine(
                providers=providers, threads=threads, device_id=device_id, detection=False
            )
        except Exception:
            self.tesseract.close()
            raise
        self.text_height = text_height
        self.unsure = unsure
        self.accept = accept

    def scale_for(self, gray: np.ndarray) -> float:
        """The scale Tesseract reads ``gray`` at (1.0: as it is)."""
        if self.text_height <= 0 or min(gray.shape) < SCALED_SIDE:
            return 1.0
        height = text_height(gray)
        if height is None:
            return 1.0
        scale = self.text_height / height
        return scale if scale < LEAST_SHRINK else 1.0

    def doubtful(self, run: list[Word]) -> list[tuple[int, int]]:
        """The pieces ``(start, end)`` of a run of words to read again: each word Tesseract
        is unsure of (but those it read with a restricted alphabet) with a word of context
        either side and every word its words' boxes overlap (an unsure word boxed over the
        words after it: the recognizer reads them too), overlapping pieces joined."""
        pieces: list[tuple[int, int]] = []
        for k, word in enumerate(run):
            if reread_kind(word.text) is not None or not unsure(word, self.unsure):
                continue
            start, end = max(0, k - CONTEXT), min(len(run), k + 1 + CONTEXT)
            reach = max(x.right for x in run[start:end])
            while end < len(run) and run[end].left < reach:
                reach = max(reach, run[end].right)
                end += 1
            low = min(x.left for x in run[start:end])
            while start > 0 and run[start - 1].right > low:
                start -= 1
                low = min(low, run[start].left)
            if pieces and start <= pieces[-1][1]:
                pieces[-1] = (pieces[-1][0], end)
            else:
                pieces.append((start, end))
        return pieces

    def recognize(self, gray: np.ndarray) -> OcrResult:
        _check_gray(gray)
        h, w = gray.shape
        if h == 0 or w == 0:
            return OcrResult(words=(), text="", mean_confidence=0.0)
        gray = np.ascontiguousarray(gray)
        scale = self.scale_for(gray)
        small = gray
        if scale != 1.0:
            import cv2

            size = (max(1, round(w * scale)), max(1, round(h * scale)))
            small = cv2.resize(gray, size, interpolation=cv2.INTER_AREA)
        read, text = self.tesseract.read_segments(small)
        runs = [[_scaled(x, scale, w, h) for x in run] for run in read]
        words = [x for run in runs for x in run]
        if not words or sum(x.confidence for x in words) / len(words) < LEGIBLE:
            # Turned, or no text: the recognizer would read a turned page's lines as
            # confident nonsense, and hide that it needs turning.
            return _result(words, text)
        pieces = [
            (i, start, end) for i, run in enumerate(runs) for start, end in self.doubtful(run)
        ]
        boxes = [run_box(runs[i][start:end], w, h) for i, start, end in pieces]
        readings = self.recognizer.read_boxes(gray, boxes)
        # Last piece first: replacing words keeps the places of the pieces before it.
        for (i, start, end), (_, confidence, words) in reversed(
            list(zip(pieces, readings, strict=True))
        ):
            old = runs[i][start:end]
            if not words or confidence < self.accept:
                continue
            if 100 * confidence <= min(x.confidence for x in old):
                continue
            words = _keep_restricted(old, words)
            before, after = (" ".join(x.text for x in ws) for ws in (old, words))
            if before.replace(" ", "") == after.replace(" ", ""):
                continue  # the same letters: Tesseract's spaces, from its word boxes, stay
            text = text.replace(before, after, 1)
            runs[i][start:end] = words
        return _result([x for run in runs for x in run], text)

    def close(self) -> None:
        self.tesseract.close()
        self.recognizer.close()
