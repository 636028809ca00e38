"""OCR behind one interface: an engine reads an 8-bit grey page and returns words with boxes.

Engines are built once at start-up (loading a language model costs more than reading a card)
and called from a bounded pool of worker threads. :class:`NoOcrEngine` is an ordinary engine
that reads nothing, for deployments and tests that do not want OCR.
"""

from __future__ import annotations

import os
import threading
from abc import ABC, abstractmethod
from pathlib import Path
from typing import Any

import numpy as np

from saoy.core.model import OcrResult, Word

DEBIAN_TESSDATA_GLOB = "/usr/share/tesseract-ocr/*/tessdata"
DEFAULT_LANGUAGES = "vie+eng"


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


class TesseractEngine(OcrEngine):
    """Tesseract (LSTM) through tesserocr, one API object per worker thread, reused."""

    name = "tesseract"

    def __init__(
        self,
        tessdata: Path | None = None,
        languages: str = DEFAULT_LANGUAGES,
        *,
        dpi: int | None = None,
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
        self._local = threading.local()
        self._lock = threading.Lock()
        self._apis: list[Any] = []
        self.api_count = 0
        """How many API objects were created (one per thread that has recognized)."""
        self._closed = False
        # Load the models once now so that a broken install fails at start-up, not per page.
        self._new_api().End()

    def _new_api(self) -> Any:
        t = self._tesserocr
        try:
            return t.PyTessBaseAPI(
                path=str(self.tessdata) + os.sep,
                lang=self.languages,
                oem=t.OEM.LSTM_ONLY,
                psm=t.PSM.AUTO,
            )
        except RuntimeError as e:
            raise OcrUnavailable(
                f"Tesseract could not load {self.languages} from {self.tessdata}: {e}"
            ) from e

    def _api(self) -> Any:
        api = getattr(self._local, "api", None)
        if api is None:
            with self._lock:
                if self._closed:
                    raise OcrUnavailable("the OCR engine was closed")
                api = self._new_api()
                self._apis.append(api)
                self.api_count += 1
            self._local.api = api
        return api

    def recognize(self, gray: np.ndarray) -> OcrResult:
        _check_gray(gray)
        h, w = gray.shape
        if h == 0 or w == 0:
            return OcrResult(words=(), text="", mean_confidence=0.0)
        gray = np.ascontiguousarray(gray)
        t = self._tesserocr
        api = self._api()
        api.SetImageBytes(gray.tobytes(), w, h, 1, w)
        if self.dpi:
            api.SetSourceResolution(self.dpi)
        try:
            api.Recognize()
            words = _words(api, t.RIL.WORD, w, h)
            text = api.GetUTF8Text() or ""
        finally:
            api.Clear()
        mean = sum(word.confidence for word in words) / len(words) if words else 0.0
        return OcrResult(words=tuple(words), text=text.strip(), mean_confidence=mean)

    def close(self) -> None:
        """End every thread's API object. Call after the worker pool has shut down."""
        with self._lock:
            self._closed = True
            apis, self._apis = self._apis, []
        for api in apis:
            api.End()


def _words(api: Any, level: Any, width: int, height: int) -> list[Word]:
    words: list[Word] = []
    it = api.GetIterator()
    if it is None:
        return words
    while True:
        # An empty element (a blank page, an image-only block) has no text to return.
        text = None if it.Empty(level) else it.GetUTF8Text(level)
        box = it.BoundingBox(level)
        if text and text.strip() and box is not None:
            left, top, right, bottom = box
            words.append(
                Word(
                    text=text.strip(),
                    left=max(0, min(left, width)),
                    top=max(0, min(top, height)),
                    right=max(0, min(right, width)),
                    bottom=max(0, min(bottom, height)),
                    confidence=float(it.Confidence(level)),
                )
            )
        if not it.Next(level):
            return words


def create_engine(name: str, **opts: Any) -> OcrEngine:
    """The OCR engine called ``name`` ("tesseract" | "onnx" | "none"), built with ``opts``."""
    if name == "tesseract":
        return TesseractEngine(**opts)
    if name == "onnx":
        from saoy.core.ocr_onnx import OnnxEngine  # ONNX Runtime loads only when asked for

        return OnnxEngine(**opts)
    if name == "none":
        return NoOcrEngine()
    raise ValueError(f"unknown OCR engine {name!r}: use 'tesseract', 'onnx' or 'none'")
