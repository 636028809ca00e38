"""OCR engines: Tesseract reads a generated ID card; the no-OCR engine reads nothing."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from saoy.clients.simulator import docgen
from saoy.clients.simulator.scoring import line_reads
from saoy.core.documents.text import group_lines
from saoy.core.model import Word
from saoy.core.ocr.engines import create_engine
from saoy.core.ocr.tesseract import (
    DEFAULT_LANGUAGES,
    NoOcrEngine,
    OcrUnavailable,
    TesseractEngine,
    _digit_count,
    _is_mrz_word,
    _segments,
    find_tessdata,
    undouble_mrz_name,
)
from saoy.core.pages.admission import Limits, admit
from saoy.core.pages.imaging import prepare

Card = tuple[docgen.Person, docgen.Rendered, np.ndarray]


@pytest.fixture(scope="module")
def engine() -> Iterator[TesseractEngine]:
    try:
        find_tessdata("vie+eng")
    except OcrUnavailable as e:
        pytest.skip(str(e))
    built = create_engine("tesseract")
    assert isinstance(built, TesseractEngine)
    yield built
    built.close()


@pytest.fixture(scope="module")
def card() -> Card:
    person = docgen.random_person(0)
    rendered = docgen.id_card_front(person, 0)
    page = admit(0, docgen.encode(rendered, "jpeg", 90), Limits())
    return person, rendered, prepare(page).gray


def _union(words: list[Word]) -> tuple[int, int, int, int]:
    return (
        min(w.left for w in words),
        min(w.top for w in words),
        max(w.right for w in words),
        max(w.bottom for w in words),
    )


def test_tesseract_reads_the_name_with_diacritics_and_the_id_number(
    engine: TesseractEngine, card: Card
) -> None:
    person, _, gray = card
    result = engine.recognize(gray)
    assert person.full_name.upper() in result.text  # "LÊ VĂN PHÚC", every mark exact
    assert person.id_number in {w.text for w in result.words}
    assert result.word_count > 30
    assert 60 < result.mean_confidence <= 100


def test_word_boxes_lie_inside_the_page_and_the_name_is_where_it_was_drawn(
    engine: TesseractEngine, card: Card
) -> None:
    person, rendered, gray = card
    h, w = gray.shape
    result = engine.recognize(gray)
    for word in result.words:
        assert 0 <= word.left < word.right <= w
        assert 0 <= word.top < word.bottom <= h
        assert 0 <= word.confidence <= 100
    name_parts = person.full_name.upper().split()
    name_words = [word for word in result.words if word.text in name_parts]
    drawn = rendered.line("full_name").box
    near = [word for word in name_words if abs(word.top - drawn[1]) < 20]
    assert [word.text for word in near] == name_parts
    found = _union(near)
    assert all(abs(a - b) <= 12 for a, b in zip(found, drawn, strict=True)), (found, drawn)


def test_engine_reuses_one_api_object_per_thread(engine: TesseractEngine, card: Card) -> None:
    _, _, gray = card
    small = np.ascontiguousarray(gray[250:320, 280:700])
    engine.recognize(small)
    before = engine.api_count
    api = engine._api()
    engine.recognize(small)
    engine.recognize(small)
    assert engine.api_count == before
    assert engine._api() is api

    other = threading.Thread(target=engine.recognize, args=(small,))
    other.start()
    other.join()
    assert engine.api_count == before + 1  # a second thread gets its own, once


def test_a_small_label_beside_a_large_value_is_read_apart_with_its_spaces(
    engine: TesseractEngine, card: Card
) -> None:
    _, rendered, gray = card
    labels = [
        ln for ln in rendered.lines if ln.text in ("Giới tính / Sex:", "Quốc tịch / Nationality:")
    ]
    assert len(labels) == 2
    reads = line_reads(labels, group_lines(engine.recognize(gray).words))
    assert reads == [ln.text for ln in labels]
    # Read with its value as one line, the label loses the spaces around its slash.
    whole = TesseractEngine(segments=False)
    try:
        assert line_reads(labels, group_lines(whole.recognize(gray).words)) != reads
    finally:
        whole.close()


def test_a_line_is_cut_at_wide_gaps_and_its_smaller_runs_are_told() -> None:
    def word(text: str, left: int, height: int) -> Word:
        return Word(text, left, 100 - height, left + 10 * len(text), 100, 90.0)

    label = [word("Sex:", 0, 20)]
    value = [word("Nam", 60, 30)]  # 20 px after the label: over 0.6 line heights
    column = [word("Quốc", 150, 20), word("tịch", 200, 20)]  # 10 px apart: one run
    found = [(w, 0) for w in label + value + column] + [(word("Họ", 0, 20), 1)]
    assert _segments(found) == [
        (label, True),
        (value, False),
        (column, True),
        ([found[-1][0]], False),  # a line of one run has no smaller text
    ]


def test_a_column_of_numbers_taken_for_one_line_is_read_row_by_row() -> None:
    # A table's column of row numbers, which Tesseract took for one (vertical) text line:
    # each number is a run of its own, top down, so each is read again apart.
    stacked = [Word(str(n), 268, 700 + 45 * n, 296, 725 + 45 * n, 30.0) for n in (3, 1, 2)]
    beside = Word("Tin", 320, 745, 360, 770, 95.0)
    found = [(w, 4) for w in [*stacked, beside]] + [(Word("STT", 260, 700, 300, 725, 90.0), 3)]
    runs = [run for run, _ in _segments(found)]
    assert [[w.text for w in run] for run in runs] == [["STT"], ["1"], ["Tin"], ["2"], ["3"]]


@pytest.fixture(scope="module")
def card_back() -> tuple[docgen.Person, np.ndarray]:
    person = docgen.random_person(7)  # a card whose zone the page model misreads
    rendered = docgen.id_card_back(person, 7)
    page = admit(0, docgen.encode(rendered, "jpeg", 90), Limits())
    return person, prepare(page).gray


def test_mrz_lines_are_read_again_with_the_mrz_alphabet(
    engine: TesseractEngine, card_back: tuple[docgen.Person, np.ndarray]
) -> None:
    person, gray = card_back
    words = {w.text for w in engine.recognize(gray).words}
    assert set(docgen.mrz_lines(person)) <= words
    # The Vietnamese model alone takes the "I" of "IDVNM" for a "T" or a "0" for a "6".
    plain = TesseractEngine(reread=False)
    try:
        assert not set(docgen.mrz_lines(person)) <= {w.text for w in plain.recognize(gray).words}
    finally:
        plain.close()


def test_numbers_and_mrz_lines_are_told_from_other_words() -> None:
    assert _digit_count("17/02/1995") == 8
    assert _digit_count("1'7/11/2022") == 8  # a stray tick is still a date
    assert _digit_count("CCCD") == 0 and _digit_count("Số") == 0
    assert _is_mrz_word("TDVNMô98606010606206466980601066<<<")
    assert _is_mrz_word("LUONG<<THI<DUNG<<<<<<<<<<<<<<<")
    assert not _is_mrz_word("CỘNG HÒA XÃ HỘI CHỦ NGHĨA")
    assert not _is_mrz_word("<<")


def test_a_round_glyph_read_twice_in_an_mrz_name_line_is_read_once() -> None:
    assert undouble_mrz_name("VO0<<PHUONG<THA0<<<<<<<<<<<<<<<") == "VO<<PHUONG<THAO<<<<<<<<<<<<<<<"
    # Lines 1 and 2 carry digits: left as read.
    line1 = "IDVNM0947660945079094766094<<<"
    assert undouble_mrz_name(line1) == line1


def test_the_default_language_is_vietnamese_alone() -> None:
    # With "eng" beside it, Tesseract takes unaccented English readings ("Binh" for "Bình").
    assert DEFAULT_LANGUAGES == "vie"


def test_blank_page_reads_nothing(engine: TesseractEngine) -> None:
    result = engine.recognize(np.full((400, 600), 255, dtype=np.uint8))
    assert result.words == () and result.text == "" and result.mean_confidence == 0.0


def test_engines_reject_non_grey_input(engine: TesseractEngine) -> None:
    for eng in (engine, NoOcrEngine()):
        with pytest.raises(ValueError, match="uint8"):
            eng.recognize(np.zeros((10, 10, 3), dtype=np.uint8))


def test_no_ocr_engine_returns_an_empty_result() -> None:
    engine = create_engine("none")
    assert isinstance(engine, NoOcrEngine) and engine.name == "none"
    result = engine.recognize(np.zeros((50, 80), dtype=np.uint8))
    assert result.words == () and result.text == "" and result.word_count == 0
    assert result.mean_confidence == 0.0


def test_unknown_engine_name_is_refused() -> None:
    with pytest.raises(ValueError, match="tesseract"):
        create_engine("abbyy")


def test_missing_language_data_fails_at_construction_naming_the_package(tmp_path: Path) -> None:
    with pytest.raises(OcrUnavailable, match="tesseract-ocr-vie"):
        TesseractEngine(tessdata=tmp_path, languages="vie+eng")


def test_tessdata_prefix_is_honoured(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("TESSDATA_PREFIX", str(tmp_path))
    with pytest.raises(OcrUnavailable, match="TESSDATA_PREFIX"):
        find_tessdata("vie")
    (tmp_path / "vie.traineddata").write_bytes(b"")
    assert find_tessdata("vie") == tmp_path


def test_a_turned_line_is_scored_against_its_own_reading_not_its_neighbours() -> None:
    from saoy.core.model import OcrResult

    def tilted(texts: list[str], y0: int) -> list[Word]:
        # Words 45 px apart, each 4 px lower than the one before: a line turned about 5°.
        return [
            Word(t, 10 + 45 * k, y0 + 4 * k, 50 + 45 * k, y0 + 4 * k + 24, 95.0)
            for k, t in enumerate(texts)
        ]

    first = ["một", "hai", "ba", "bốn", "năm", "sáu", "bảy", "tám", "chín", "mười"]
    second = ["mươi", "trăm", "nghìn", "vạn", "triệu", "tỷ", "lẻ", "linh", "mốt", "tư"]
    words = tilted(first, 0) + tilted(second, 30)
    # Each drawn line's box is the box around its turned corners: they overlap by half.
    drawn = [
        docgen.TextLine(" ".join(first), (10, 0, 460, 60)),
        docgen.TextLine(" ".join(second), (10, 30, 460, 90)),
    ]
    result = OcrResult(tuple(words), "", 95.0)
    assert line_reads(drawn, group_lines(result.words)) == [" ".join(first), " ".join(second)]
