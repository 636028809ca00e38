"""OCR behind one interface: an engine reads an 8-bit grey page and returns words with boxes.

Engines are built once at start-up (loading a language model costs more than reading a card)
and called from a bounded pool of worker threads. :class:`NoOcrEngine` is an ordinary engine
that reads nothing, for deployments and tests that do not want OCR.
"""

from __future__ import annotations

import itertools
import os
import re
import threading
from abc import ABC, abstractmethod
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from saoy.core.model import OcrResult, Word

DEBIAN_TESSDATA_GLOB = "/usr/share/tesseract-ocr/*/tessdata"
DEFAULT_LANGUAGES = "vie"
"""Vietnamese alone: its model spells every Latin letter, and adding ``eng`` lets Tesseract
take an unaccented English reading of a Vietnamese word ("Binh" for "Bình")."""
REREAD_LANGUAGE = "eng"
MRZ_CHARACTERS = "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789<"
NUMBER_CHARACTERS = "0123456789/.-"
SEGMENT_GAP = 0.6  # a gap in a text line this many line heights wide parts label from value
SMALLER_TEXT = 0.85  # a segment whose words are under this share of the line's largest
ONE_ROW = 1.6  # a segment taller than this many word heights spans two rows

# A number or date token (mostly digits); a machine-readable-zone line is told by its length
# and its fillers or run of capitals and digits (see ``_is_mrz_word``).
_NUMBER_WORD = re.compile(r"^[0-9OoIl|/.\-'`,:;]*$")


class OcrUnavailable(RuntimeError):
    """The OCR engine cannot start: missing language data or library. A deployment error."""


class OcrEngine(ABC):
    """Reads text from one upright page image."""

    name: str

    @abstractmethod
    def recognize(self, gray: np.ndarray) -> OcrResult:
        """Words, boxes in page pixels (origin top-left), and confidences of an H x W uint8
        image. Safe to call from several threads at once."""

    def close(self) -> None:  # noqa: B027 - engines without resources need not override
        """Release what the engine holds. Call once, after the last ``recognize``."""


class NoOcrEngine(OcrEngine):
    """Reads nothing: every page yields an empty result."""

    name = "none"

    def recognize(self, gray: np.ndarray) -> OcrResult:
        _check_gray(gray)
        return OcrResult(words=(), text="", mean_confidence=0.0)


def _check_gray(gray: np.ndarray) -> None:
    if not isinstance(gray, np.ndarray) or gray.dtype != np.uint8 or gray.ndim != 2:
        shape = getattr(gray, "shape", None)
        dtype = getattr(gray, "dtype", type(gray).__name__)
        raise ValueError(f"expected an H x W uint8 array, got {dtype} with shape {shape}")


def find_tessdata(languages: str, tessdata: Path | None = None) -> Path:
    """The folder holding ``<lang>.traineddata`` for every language in ``languages``.

    Looks at ``tessdata`` when given, else at ``TESSDATA_PREFIX``, else at Debian's
    ``/usr/share/tesseract-ocr/<version>/tessdata`` (newest version first).
    """
    wanted = [lang for lang in languages.split("+") if lang]
    if not wanted:
        raise OcrUnavailable("no OCR language given (for example 'vie+eng')")

    def missing(folder: Path) -> list[str]:
        return [lang for lang in wanted if not (folder / f"{lang}.traineddata").is_file()]

    if tessdata is not None:
        candidates = [Path(tessdata)]
        source = "the tessdata setting"
    elif os.environ.get("TESSDATA_PREFIX"):
        prefix = Path(os.environ["TESSDATA_PREFIX"])
        candidates = [prefix, prefix / "tessdata"]
        source = f"TESSDATA_PREFIX={prefix}"
    else:
        found = Path("/").glob(DEBIAN_TESSDATA_GLOB.lstrip("/"))
        candidates = sorted(found, key=lambda p: _version_key(p.parent.name), reverse=True)
        source = DEBIAN_TESSDATA_GLOB
    for folder in candidates:
        if folder.is_dir() and not missing(folder):
            return folder
    packages = " ".join(f"tesseract-ocr-{lang}" for lang in wanted)
    lacking = missing(candidates[0]) if candidates else wanted
    raise OcrUnavailable(
        f"Tesseract language data for {'+'.join(lacking)} not found in {source}: "
        f"install the Debian packages ({packages}) or pass the tessdata folder"
    )


def _version_key(name: str) -> tuple[int, ...]:
    return tuple(int(part) for part in name.split(".") if part.isdigit())


class TesseractApis:
    """tesserocr API objects, one per calling thread and kind, made by ``factory(kind)`` on
    first use and reused; :meth:`close` ends them all (after the worker pool has shut down).
    ``what`` names the owner in the error raised after close."""

    def __init__(self, factory: Callable[[str], Any], what: str) -> None:
        self._factory = factory
        self._what = what
        self._local = threading.local()
        self._lock = threading.Lock()
        self._apis: list[Any] = []
        self._closed = False
        self.created: Counter[str] = Counter()
        """How many API objects of each kind were made (one per thread that used the kind)."""

    def get(self, kind: str) -> Any:
        api = getattr(self._local, kind, None)
        if api is None:
            with self._lock:
                if self._closed:
                    raise OcrUnavailable(f"{self._what} was closed")
                api = self._factory(kind)
                self._apis.append(api)
                self.created[kind] += 1
            setattr(self._local, kind, api)
        return api

    def close(self) -> None:
        with self._lock:
            self._closed = True
            apis, self._apis = self._apis, []
        for api in apis:
            api.End()


class TesseractEngine(OcrEngine):
    """Tesseract (LSTM) through tesserocr, one API object per worker thread and task, reused.

    The page is read once with ``languages``. Then (``segments``) each text line that holds
    text of two sizes is cut at its wide gaps, and every segment of the smaller text is read
    again alone as one line: a form's small label and its large value ("Giới tính / Sex:
    Nam") come out as one line, which the recognizer scales to the large text, squeezing the
    label's spaces out and misreading its letters. Last (``reread``), the words whose alphabet
    is known are read again from their boxes with the English model restricted to that
    alphabet: MRZ lines (capitals, digits and ``<``) and numbers and dates (digits, ``/``,
    ``.``, ``-``). The Vietnamese model doubles or drops digits and takes ``I`` for ``T``
    where the restricted reading does not.
    """

    name = "tesseract"

    def __init__(
        self,
        tessdata: Path | None = None,
        languages: str = DEFAULT_LANGUAGES,
        *,
        dpi: int | None = None,
        reread: bool = True,
        segments: bool = True,
    ) -> None:
        try:
            import tesserocr
        except ImportError as e:  # pragma: no cover - a dependency of the package
            raise OcrUnavailable(f"tesserocr cannot be imported: {e}") from e
        self._tesserocr: Any = tesserocr
        self.tessdata = find_tessdata(languages, tessdata)
        self.languages = languages
        self.dpi = dpi
        """Source resolution told to Tesseract; None lets it estimate from the text height
        (as accurate on 300 dpi scans in our measurements, and right for camera captures)."""
        self.reread_tessdata = find_tessdata(REREAD_LANGUAGE, tessdata) if reread else None
        self.segments = segments
        self._apis = TesseractApis(self._new_api, "the OCR engine")
        # Load the models once now so that a broken install fails at start-up, not per page
        # ("line" reads with the page's model).
        for kind in ("page", "mrz") if reread else ("page",):
            self._new_api(kind).End()

    def _new_api(self, kind: str = "page") -> Any:
        t = self._tesserocr
        if kind == "page":
            folder, lang, psm = self.tessdata, self.languages, t.PSM.AUTO
        elif kind == "line":
            folder, lang, psm = self.tessdata, self.languages, t.PSM.SINGLE_LINE
        else:
            folder = self.reread_tessdata or self.tessdata
            lang, psm = REREAD_LANGUAGE, t.PSM.SINGLE_LINE
        try:
            api = t.PyTessBaseAPI(
                path=str(folder) + os.sep, lang=lang, oem=t.OEM.LSTM_ONLY, psm=psm
            )
        except RuntimeError as e:
            raise OcrUnavailable(f"Tesseract could not load {lang} from {folder}: {e}") from e
        if kind in ("mrz", "number"):
            alphabet = MRZ_CHARACTERS if kind == "mrz" else NUMBER_CHARACTERS
            api.SetVariable("tessedit_char_whitelist", alphabet)
            api.SetVariable("load_system_dawg", "0")
            api.SetVariable("load_freq_dawg", "0")
        return api

    def _api(self, kind: str = "page") -> Any:
        return self._apis.get(kind)

    @property
    def api_count(self) -> int:
        """How many page API objects were created (one per thread that has recognized)."""
        return self._apis.created["page"]

    def recognize(self, gray: np.ndarray) -> OcrResult:
        _check_gray(gray)
        segments, text = self.read_segments(gray)
        words = [word for segment in segments for word in segment]
        mean = sum(word.confidence for word in words) / len(words) if words else 0.0
        return OcrResult(words=tuple(words), text=text.strip(), mean_confidence=mean)

    def read_segments(self, gray: np.ndarray) -> tuple[list[list[Word]], str]:
        """The page's words as ``recognize`` reads them (segments of smaller text and words of
        a known alphabet read again), in runs of one text line split at its wide gaps (see
        :func:`_segments`), lines in reading order; and the page's text."""
        h, w = gray.shape
        if h == 0 or w == 0:
            return [], ""
        gray = np.ascontiguousarray(gray)
        t = self._tesserocr
        api = self._api()
        api.SetImageBytes(gray.tobytes(), w, h, 1, w)
        if self.dpi:
            api.SetSourceResolution(self.dpi)
        try:
            api.Recognize()
            found = _words(api, t.RIL, w, h)
            text = api.GetUTF8Text() or ""
        finally:
            api.Clear()
        segments: list[list[Word]] = []
        for segment, smaller in _segments(found):
            again = self._read_segment(gray, segment) if self.segments and smaller else segment
            if again is not segment:
                old, new = (" ".join(x.text for x in ws) for ws in (segment, again))
                text = text.replace(old, new, 1)
            segments.append(again)
        if self.reread_tessdata is not None:
            for i, segment in enumerate(segments):
                reread = [self._reread(gray, word) for word in segment]
                for old_word, new_word in zip(segment, reread, strict=True):
                    if new_word is not old_word:
                        text = text.replace(old_word.text, new_word.text, 1)
                segments[i] = reread
        return segments, text

    def _read_segment(self, gray: np.ndarray, segment: list[Word]) -> list[Word]:
        """The words of ``segment`` (part of one text line) read again from their box alone,
        as a single line; ``segment`` itself when nothing is read there."""
        top, bottom = min(x.top for x in segment), max(x.bottom for x in segment)
        if bottom - top > ONE_ROW * _median_height(segment):
            return segment  # words of two rows taken for one line: a crop would hold both
        cut = _crop(gray, min(x.left for x in segment), top, max(x.right for x in segment), bottom)
        if cut is None:
            return segment
        crop, x0, y0 = cut
        api = self._api("line")
        ch, cw = crop.shape
        api.SetImageBytes(crop.tobytes(), cw, ch, 1, cw)
        try:
            api.Recognize()
            found = _words(api, self._tesserocr.RIL, cw, ch)
        finally:
            api.Clear()
        again = [
            Word(w.text, w.left + x0, w.top + y0, w.right + x0, w.bottom + y0, w.confidence)
            for w, _ in found
        ]
        return again or segment

    def _reread(self, gray: np.ndarray, word: Word) -> Word:
        """``word`` read again from its box with the alphabet its kind allows; ``word``
        itself when it has no such kind or the second reading finds nothing."""
        kind = reread_kind(word.text)
        if kind is None:
            return word
        cut = _crop(gray, word.left, word.top, word.right, word.bottom)
        if cut is None:
            return word
        crop = cut[0]
        api = self._api(kind)
        ch, cw = crop.shape
        api.SetImageBytes(crop.tobytes(), cw, ch, 1, cw)
        try:
            text = "".join((api.GetUTF8Text() or "").split())
            confidence = float(api.MeanTextConf())
        finally:
            api.Clear()
        if not text or (kind == "mrz" and abs(len(text) - len(word.text)) > 3):
            return word  # nothing read, or a zone line cut short or run into the next one
        if kind == "mrz":
            text = undouble_mrz_name(text)
        return Word(text, word.left, word.top, word.right, word.bottom, confidence)

    def close(self) -> None:
        """End every thread's API objects. Call after the worker pool has shut down."""
        self._apis.close()


def reread_kind(text: str) -> str | None:
    """The alphabet a word is read again with: "mrz" for a line of a machine-readable zone,
    "number" for a number or date of four digits or more, None for any other word."""
    if _is_mrz_word(text):
        return "mrz"
    if _NUMBER_WORD.match(text) and _digit_count(text) >= 4:
        return "number"
    return None


def undouble_mrz_name(text: str) -> str:
    """An MRZ name line (letters and fillers only) without the zeros read beside an ``O``:
    restricted to the MRZ alphabet, Tesseract reads one round glyph as both ("VO0<<…"). Any
    other line is returned as it is."""
    collapsed = re.sub(r"O0|0O", "O", text)
    if collapsed == text or "<<" not in text:
        return text
    # Lines 1 and 2 hold a dozen digits and more; a name line none but a misread O.
    if sum(ch.isdigit() for ch in collapsed) <= 2 and set(collapsed) & set("123456789") == set():
        return collapsed.replace("0", "O")
    return text


def _digit_count(text: str) -> int:
    """Digits in ``text``, when they make most of it (a stray tick or look-alike at most)."""
    digits = sum(ch.isdigit() for ch in text)
    return digits if digits >= 0.6 * len(text) else 0


def _is_mrz_word(text: str) -> bool:
    """Long, and made of MRZ characters with fillers or mostly of capitals and digits (the
    page model may still have put an accent or a look-alike of ``<`` in it)."""
    if len(text) < 20:
        return False
    mrz = sum(ch.isascii() and (ch.isupper() or ch.isdigit() or ch == "<") for ch in text)
    return "<<" in text or mrz >= 0.9 * len(text)


def _segments(found: list[tuple[Word, int]]) -> list[tuple[list[Word], bool]]:
    """The words of each text line in runs split at gaps wider than :data:`SEGMENT_GAP` line
    heights, left to right, lines in reading order; each run with whether its text is smaller
    than the line's largest (its median word height under :data:`SMALLER_TEXT` times)."""
    lines: dict[int, list[Word]] = {}
    for word, line in found:
        lines.setdefault(line, []).append(word)
    rows = [row for line in sorted(lines) for row in _rows(lines[line])]
    out: list[tuple[list[Word], bool]] = []
    for row in rows:
        words = sorted(row, key=lambda w: w.left)
        height = _median_height(words)
        runs = [[words[0]]]
        for before, word in itertools.pairwise(words):
            if word.left - before.right > SEGMENT_GAP * height:
                runs.append([])
            runs[-1].append(word)
        heights = [_median_height(run) for run in runs]
        largest = max(heights)
        out.extend((run, h < SMALLER_TEXT * largest) for run, h in zip(runs, heights, strict=True))
    return out


def _rows(words: list[Word]) -> list[list[Word]]:
    """The rows of one of Tesseract's text lines, top down: the line itself, unless its words
    stand one above another (a table's column of short numbers, taken for a vertical line),
    where each row of words apart from the others is one."""
    if len(words) < 2 or max(w.bottom for w in words) - min(w.top for w in words) <= (
        ONE_ROW * _median_height(words)
    ):
        return [words]
    rows: list[list[Word]] = []
    for word in sorted(words, key=lambda w: (w.top + w.bottom) / 2):
        last = rows[-1] if rows else None
        centre = (word.top + word.bottom) / 2
        if last is not None and min(w.top for w in last) <= centre <= max(w.bottom for w in last):
            last.append(word)
        else:
            rows.append([word])
    return rows


def _median_height(words: list[Word]) -> int:
    return sorted(w.bottom - w.top for w in words)[len(words) // 2]


def _crop(
    gray: np.ndarray, left: int, top: int, right: int, bottom: int
) -> tuple[np.ndarray, int, int] | None:
    """The box with a margin of the page around it and a paper-coloured border (a
    single-line reading needs room around the glyphs), and where the crop's origin lies on
    the page (x, y); None for a box too small to read."""
    h = bottom - top
    if h < 6 or right - left < 6:
        return None
    m = max(2, h // 5)
    x0, y0 = max(0, left - m), max(0, top - m)
    crop = gray[y0 : bottom + m, x0 : right + m]
    paper = int(np.percentile(crop, 90))
    pad = h // 2
    return np.ascontiguousarray(np.pad(crop, pad, constant_values=paper)), x0 - pad, y0 - pad


def _words(api: Any, ril: Any, width: int, height: int) -> list[tuple[Word, int]]:
    """The words Tesseract found (``ril`` is tesserocr's RIL), boxes clipped to the page, each
    with the number of its text line (0, 1, ... in Tesseract's reading order)."""
    words: list[tuple[Word, int]] = []
    it = api.GetIterator()
    if it is None:
        return words
    line = -1
    while True:
        if it.IsAtBeginningOf(ril.TEXTLINE):
            line += 1
        # An empty element (a blank page, an image-only block) has no text to return.
        text = None if it.Empty(ril.WORD) else it.GetUTF8Text(ril.WORD)
        box = it.BoundingBox(ril.WORD)
        if text and text.strip() and box is not None:
            left, top, right, bottom = box
            word = Word(
                text=text.strip(),
                left=max(0, min(left, width)),
                top=max(0, min(top, height)),
                right=max(0, min(right, width)),
                bottom=max(0, min(bottom, height)),
                confidence=float(it.Confidence(ril.WORD)),
            )
            words.append((word, max(0, line)))
        if not it.Next(ril.WORD):
            return words
