"""The trueocr engine (the trueocr package's detection and recognition models on ONNX Runtime):
it reads a drawn Vietnamese line with every diacritic, boxes each word where it was drawn,
restores the fillers of a card's machine-readable zone, reads nothing on a blank page, and says
clearly what to install when the package is missing."""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from importlib import metadata

import numpy as np
import pytest
from PIL import Image, ImageDraw, ImageFont

from saoy.clients.simulator import docgen
from saoy.core.ocr.engines import create_engine
from saoy.core.ocr.tesseract import OcrUnavailable

FONT = "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf"  # fonts-dejavu-core

try:
    metadata.distribution("trueocr")
    INSTALLED = True
except metadata.PackageNotFoundError:
    INSTALLED = False

needs_trueocr = pytest.mark.skipif(
    not INSTALLED, reason="the trueocr package is not installed (pip install 'saoy[trueocr]')"
)


@pytest.fixture(scope="module")
def engine() -> Iterator[object]:
    if not INSTALLED:
        pytest.skip("the trueocr package is not installed (pip install 'saoy[trueocr]')")
    built = create_engine("trueocr", threads=1)
    yield built
    built.close()


def _drawn(text: str, size: int = 36) -> tuple[np.ndarray, tuple[int, int, int, int]]:
    """``text`` drawn dark on white, with a little noise; and its ink box."""
    image = Image.new("L", (1000, 200), 250)
    draw = ImageDraw.Draw(image)
    face = ImageFont.truetype(FONT, size)
    draw.text((60, 70), text, font=face, fill=25)
    box = draw.textbbox((60, 70), text, font=face)
    rng = np.random.default_rng(0)
    noisy = np.asarray(image, np.float32) + rng.normal(0, 3, (200, 1000))
    return np.clip(noisy, 0, 255).astype(np.uint8), (box[0], box[1], box[2], box[3])


@needs_trueocr
@pytest.mark.parametrize("text", ["Họ và tên: Đặng Văn Hữu", "Trường Sơn, Thừa Thiên Huế"])
def test_reads_a_vietnamese_line_with_every_diacritic(engine, text: str) -> None:
    gray, _ = _drawn(text)
    result = engine.recognize(gray)
    assert result.text == text
    assert [w.text for w in result.words] == text.split()
    assert 80 < result.mean_confidence <= 100


@needs_trueocr
def test_word_boxes_lie_on_the_drawn_line_left_to_right(engine) -> None:
    text = "Phường Bến Nghé, Quận Ba Đình"
    gray, (left, top, right, bottom) = _drawn(text)
    result = engine.recognize(gray)
    assert [w.text for w in result.words] == text.split()
    height = bottom - top
    for word in result.words:
        assert 0 <= word.confidence <= 100
        assert left - height // 2 <= word.left < word.right <= right + height // 2
        assert abs(word.top - top) <= height // 3 and abs(word.bottom - bottom) <= height // 3
    for a, b in itertools.pairwise(result.words):
        assert a.left < b.left and a.right <= b.left + height // 3
    # Each word's box is about as wide as the word drawn alone.
    face = ImageFont.truetype(FONT, 36)
    for word in result.words:
        drawn = face.getlength(word.text)
        assert 0.6 * drawn <= word.right - word.left <= 1.4 * drawn + height // 2


@needs_trueocr
def test_reads_a_card_and_restores_its_machine_readable_zone(engine) -> None:
    person = docgen.random_person(3)
    front = np.asarray(docgen.id_card_front(person, 3).image.convert("L"))
    result = engine.recognize(front)
    assert person.id_number in result.text
    assert "Họ và tên" in result.text
    back = np.asarray(docgen.id_card_back(person, 3).image.convert("L"))
    lines = engine.recognize(back).text.splitlines()
    number, dates, name = docgen.mrz_lines(person)
    assert number in lines and dates in lines  # the lines with check digits, exactly
    (read,) = [line for line in lines if line.startswith("LY<")]
    assert len(read) == len(name) and read.endswith("<<<<<<")


@needs_trueocr
def test_a_blank_page_and_a_tiny_image_read_as_nothing(engine) -> None:
    assert engine.recognize(np.full((640, 1000), 245, np.uint8)).words == ()
    assert engine.recognize(np.zeros((4, 4), np.uint8)).text == ""
    with pytest.raises(ValueError):
        engine.recognize(np.zeros((10, 10, 3), np.uint8))


def test_without_the_package_the_engine_says_what_to_install(monkeypatch) -> None:
    real = metadata.distribution

    def missing(name: str) -> metadata.Distribution:
        if name == "trueocr":
            raise metadata.PackageNotFoundError(name)
        return real(name)

    monkeypatch.setattr(metadata, "distribution", missing)
    with pytest.raises(OcrUnavailable, match=r"pip install 'saoy\[trueocr\]'"):
        create_engine("trueocr")
