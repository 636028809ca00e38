"""The reading economies of the pipeline: what they skip, and that they skip nothing else."""

from __future__ import annotations

import threading

import numpy as np
import pytest

from saoy.core.documents import DocumentReader
from saoy.core.model import OcrResult, Word
from saoy.core.ocr.tesseract import OcrUnavailable
from saoy.core.pipeline import kernel_threads, reader_for, reads_upright

TEXT = "Cộng hòa xã hội chủ nghĩa Việt Nam độc lập tự do hạnh phúc đơn đề nghị cấp bản sao"


def reading(text: str, *, confidence: float = 95.0, vertical: bool = False) -> OcrResult:
    """Words laid out in level lines (or, ``vertical``, as Tesseract boxes a page read on its
    side: each word taller than wide)."""
    words = []
    for k, token in enumerate(text.split() * 2):
        x, y = 40 + 120 * (k % 8), 40 + 50 * (k // 8)
        size = (22 * len(token), 30)
        w, h = (size[1], size[0]) if vertical else size
        words.append(Word(token, x, y, x + w, y + h, confidence))
    return OcrResult(tuple(words), " ".join(w.text for w in words), confidence)


def test_a_confident_reading_in_level_lines_of_vietnamese_is_upright() -> None:
    assert reads_upright(reading(TEXT))


def test_a_page_on_its_side_read_as_vertical_text_is_not_known_upright() -> None:
    # Tesseract reads a page turned a quarter as vertical lines, often confidently.
    assert not reads_upright(reading(TEXT, vertical=True))


def test_an_upside_down_reading_is_not_known_upright() -> None:
    assert not reads_upright(reading(TEXT, confidence=48.0))  # how upside-down pages score
    nonsense = "uoÕN ưọtq uÁnH Buoqad Bưọn1 2qL ưeqd teud o1 ÄXVIĐ IỌAĐN HNIS qutq unqH"
    assert not reads_upright(reading(nonsense))


def test_a_page_with_few_words_is_not_known_upright() -> None:
    assert not reads_upright(reading("Việt Nam"))


@pytest.fixture(scope="module")
def reader() -> DocumentReader:
    try:
        return DocumentReader()
    except OcrUnavailable as e:
        pytest.skip(str(e))


def test_the_reader_of_an_upright_page_skips_orientation_only(reader: DocumentReader) -> None:
    page = np.full((200, 600), 255, np.uint8)
    assert reader_for(reader, reading(TEXT, confidence=40.0)) is reader
    assert reader_for(None, reading(TEXT)) is None
    known = reader_for(reader, reading(TEXT))
    assert known is not None and known is not reader
    found = known.orientation(page)
    assert found is not None and found.degrees == 0
    assert known.read_mrz(page) == reader.read_mrz(page)  # the wrapped reader's APIs
    assert known.read_text(page) == reader.read_text(page)


def test_kernel_threads_are_set_per_thread_and_given_back() -> None:
    seen: list[object] = []

    def worker() -> None:
        kernel_threads(1)
        kernel_threads(1)  # again: nothing to do
        kernel_threads(None)
        seen.append(True)

    thread = threading.Thread(target=worker)
    thread.start()
    thread.join()
    assert seen == [True]
