"""The OCR engine factory: picks one of the engines by name.

It lives apart from :mod:`saoy.core.ocr.tesseract` (the interface and the Tesseract engine) so
that the base never imports its own implementations; each engine module imports the base, and
this one imports them all. ONNX Runtime and the optional ``trueocr`` package are still loaded
only when their engine is built.
"""

from __future__ import annotations

from typing import Any

from saoy.core.ocr.cascade import CascadeEngine
from saoy.core.ocr.onnx import OnnxEngine
from saoy.core.ocr.tesseract import NoOcrEngine, OcrEngine, TesseractEngine
from saoy.core.ocr.trueocr import TrueOcrEngine


def create_engine(name: str, **opts: Any) -> OcrEngine:
    """The OCR engine called ``name`` ("cascade" | "tesseract" | "onnx" | "trueocr" | "none"),
    built with ``opts`` (the "none" engine takes none and ignores them)."""
    if name == "tesseract":
        return TesseractEngine(**opts)
    if name == "cascade":
        return CascadeEngine(**opts)
    if name == "onnx":
        return OnnxEngine(**opts)
    if name == "trueocr":
        return TrueOcrEngine(**opts)
    if name == "none":
        return NoOcrEngine()
    raise ValueError(
        f"unknown OCR engine {name!r}: use 'cascade', 'tesseract', 'onnx', 'trueocr' or 'none'"
    )
