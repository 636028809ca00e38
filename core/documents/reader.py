"""A second Tesseract pass for what the page OCR reads poorly: the MRZ (English model, MRZ
characters only, one block) and page orientation (Tesseract's OSD model)."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from saoy.core.ocr.tesseract import MRZ_CHARACTERS, OcrUnavailable, TesseractApis, find_tessdata


@dataclass(frozen=True)
class Orientation:
    """How far the page is turned: 0, 90, 180 or 270 degrees, and Tesseract's confidence."""

    degrees: int
    confidence: float


class DocumentReader:
    """Tesseract helpers built once at start-up; one API object per thread and task, reused.
    Safe to call from several threads at once."""

    def __init__(self, tessdata: Path | None = None) -> None:
        try:
            import tesserocr
        except ImportError as e:  # pragma: no cover - a dependency of the package
            raise OcrUnavailable(f"tesserocr cannot be imported: {e}") from e
        self._t: Any = tesserocr
        self.tessdata = find_tessdata("eng", tessdata)
        try:
            self.osd_tessdata: Path | None = find_tessdata("osd", tessdata)
        except OcrUnavailable:
            self.osd_tessdata = None
        self.text_tessdata = find_tessdata("vie", tessdata)
        self._apis = TesseractApis(self._new_api, "the document reader")

    def _api(self, kind: str) -> Any:
        return self._apis.get(kind)

    def _new_api(self, kind: str) -> Any:
        t = self._t
        if kind == "mrz":
            api = t.PyTessBaseAPI(
                path=str(self.tessdata) + os.sep,
                lang="eng",
                oem=t.OEM.LSTM_ONLY,
                psm=t.PSM.SINGLE_BLOCK,
            )
            api.SetVariable("tessedit_char_whitelist", MRZ_CHARACTERS)
            api.SetVariable("load_system_dawg", "0")
            api.SetVariable("load_freq_dawg", "0")
            return api
        if kind == "text":
            return t.PyTessBaseAPI(
                path=str(self.text_tessdata) + os.sep,
                lang="vie",
                oem=t.OEM.LSTM_ONLY,
                psm=t.PSM.SINGLE_BLOCK,
            )
        return t.PyTessBaseAPI(path=str(self.osd_tessdata) + os.sep, lang="osd", psm=t.PSM.OSD_ONLY)

    def read_mrz(self, gray: np.ndarray) -> list[str]:
        """The text lines of an MRZ crop (H x W uint8), read with MRZ characters only."""
        h, w = gray.shape
        if h < 10 or w < 10:
            return []
        gray = np.ascontiguousarray(gray)
        api = self._api("mrz")
        api.SetImageBytes(gray.tobytes(), w, h, 1, w)
        try:
            text = api.GetUTF8Text() or ""
        finally:
            api.Clear()
        return [line for line in text.splitlines() if line.strip()]

    def read_text(self, gray: np.ndarray) -> str:
        """The Vietnamese text of a small crop (a stamp, a label), read as one block."""
        h, w = gray.shape
        if h < 8 or w < 8:
            return ""
        gray = np.ascontiguousarray(gray)
        api = self._api("text")
        api.SetImageBytes(gray.tobytes(), w, h, 1, w)
        try:
            return (api.GetUTF8Text() or "").strip()
        finally:
            api.Clear()

    def orientation(self, gray: np.ndarray) -> Orientation | None:
        """Which way the text on the page is turned, or None when OSD cannot tell (too little
        text, or no OSD model installed)."""
        if self.osd_tessdata is None:
            return None
        h, w = gray.shape
        scale = max(1, round(max(h, w) / 2000))
        small = np.ascontiguousarray(gray[::scale, ::scale])
        api = self._api("osd")
        api.SetImageBytes(small.tobytes(), small.shape[1], small.shape[0], 1, small.shape[1])
        try:
            found = api.DetectOrientationScript()
        except RuntimeError:
            found = None
        finally:
            api.Clear()
        if not found:
            return None
        return Orientation(int(found["orient_deg"]) % 360, float(found["orient_conf"]))

    def close(self) -> None:
        self._apis.close()
