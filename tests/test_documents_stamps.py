"""Confidentiality stamps: a red framed "MẬT" is found and read however it was turned when
stamped, and the red words of a stamp are told from its frame."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import pytest
from PIL import Image, ImageDraw, ImageFont

from saoy.core.documents import DocumentReader
from saoy.core.documents.analysis import confidential_marking
from saoy.core.documents.seal import stamp_words
from saoy.core.model import OcrResult
from saoy.core.ocr.tesseract import OcrUnavailable, find_tessdata

FONT = "/usr/share/fonts/truetype/dejavu/DejaVuSerif-Bold.ttf"
RED = (205, 35, 40)


@pytest.fixture(scope="module")
def reader() -> Iterator[DocumentReader]:
    try:
        find_tessdata("vie")
    except OcrUnavailable as e:
        pytest.skip(str(e))
    built = DocumentReader()
    yield built
    built.close()


def stamp(word: str, angle: float, px: int = 60) -> Image.Image:
    """A red framed word turned ``angle`` degrees, on its own transparent layer: the frame
    a quarter of a letter's height clear of the word all round."""
    font = ImageFont.truetype(FONT, px)
    left, top, right, bottom = font.getbbox(word)
    w, h = right - left + px // 2, bottom - top + px // 2
    layer = Image.new("L", (w, h), 0)
    d = ImageDraw.Draw(layer)
    d.rectangle((2, 2, w - 3, h - 3), outline=255, width=max(3, px // 12))
    d.text((w // 2, h // 2), word, font=font, fill=255, anchor="mm")
    return layer.rotate(angle, expand=True, resample=Image.Resampling.BILINEAR)


def page_with(word: str, angle: float) -> tuple[np.ndarray, np.ndarray]:
    """An A4 page at 150 dpi, a few grey lines of text and the stamp: (grey, RGB)."""
    page = Image.new("RGB", (1240, 1754), (250, 250, 247))
    d = ImageDraw.Draw(page)
    body = ImageFont.truetype(FONT, 24)
    for k in range(8):
        d.text((150, 600 + 50 * k), "Giấy khai sinh cấp cho công dân theo quy định", font=body,
               fill=(30, 30, 30))  # fmt: skip
    layer = stamp(word, angle)
    page.paste(Image.new("RGB", layer.size, RED), (220, 260), layer)
    rgb = np.asarray(page)
    return np.asarray(page.convert("L")), rgb


NOTHING = OcrResult(words=(), text="", mean_confidence=0.0)


@pytest.mark.parametrize("angle", [0.0, 4.0, -7.0, 8.0])
def test_a_turned_framed_confidential_stamp_is_read(reader: DocumentReader, angle: float) -> None:
    gray, rgb = page_with("MẬT", angle)
    assert confidential_marking(NOTHING, [], gray, rgb, reader) == "MẬT"


def test_a_red_framed_stamp_of_another_word_is_no_confidential_marking(
    reader: DocumentReader,
) -> None:
    gray, rgb = page_with("ĐÃ THU", -6.0)
    assert confidential_marking(NOTHING, [], gray, rgb, reader) == ""


def test_the_words_of_a_turned_stamp_are_kept_and_its_frame_left_out() -> None:
    layer = np.asarray(stamp("MẬT", 7.0)) > 128
    crop = np.full((*layer.shape, 3), 250, dtype=np.uint8)
    crop[layer] = RED
    words = stamp_words(crop)
    ink = words < 128
    h, w = ink.shape
    assert ink.any() and ink.sum() < 0.8 * layer.sum()  # the word's strokes, not the frame's
    rows, cols = np.nonzero(ink)
    assert rows.min() > 0.1 * h and rows.max() < 0.9 * h
    assert cols.min() > 0.1 * w and cols.max() < 0.9 * w
    # Nothing red: all paper.
    assert (stamp_words(np.full((40, 90, 3), 250, dtype=np.uint8)) == 255).all()
