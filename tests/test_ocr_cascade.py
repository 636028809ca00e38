"""The cascade OCR engine: Tesseract reads the page, the ONNX line recognizer reads again what
Tesseract is unsure of. It reads a table's short numbers and a Vietnamese line that Tesseract
alone misreads, keeps Tesseract's zone and number re-reads, reads a page with large text at a
smaller scale and still gives its boxes in the page's pixels."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import pytest
from PIL import Image, ImageDraw, ImageFilter

from saoy.clients.simulator import docgen
from saoy.core.documents.view import ruled_lines
from saoy.core.model import Word
from saoy.core.ocr.cascade import CascadeEngine, plausible, text_height, unsure
from saoy.core.ocr.engines import create_engine
from saoy.core.ocr.tesseract import OcrUnavailable
from saoy.core.pages.admission import Limits, admit
from saoy.core.pages.imaging import prepare

PAPER = 245
COLUMNS = (100, 500, 800, 1100, 1400)  # at 34-pixel text; scaled with the text
ROWS = (100, 180, 260, 340, 420)
CELLS = (
    ("Môn học", "Học kỳ I", "Học kỳ II", "TB"),
    ("Toán", "8.5", "7.2", "8.1"),
    ("Ngữ văn", "5.5", "9.7", "6.4"),
    ("Vật lí", "5.6", "5.2", "7.9"),
)


@pytest.fixture(scope="module")
def engine() -> Iterator[CascadeEngine]:
    try:
        built = create_engine("cascade", providers="cpu")
    except OcrUnavailable as e:
        pytest.skip(str(e))
    assert isinstance(built, CascadeEngine) and built.name == "cascade"
    yield built
    built.close()


def _table(size: int) -> tuple[np.ndarray, dict[str, tuple[int, int, int, int]]]:
    """A ruled table of marks drawn with ``size``-pixel text, blurred as a scan is, its rules
    painted out as the page view paints them before OCR; and each number cell's box."""
    k = size / 34
    columns, rows = [round(c * k) for c in COLUMNS], [round(r * k) for r in ROWS]
    image = Image.new("L", (round(1600 * k), round(1250 * k)), PAPER)  # 60 px: A4 at 300 dpi
    draw = ImageDraw.Draw(image)
    face = docgen.font(docgen.SERIF, size)
    for y in rows:
        draw.line((columns[0], y, columns[-1], y), fill=20, width=round(3 * k))
    for x in columns:
        draw.line((x, rows[0], x, rows[-1]), fill=20, width=round(3 * k))
    cells: dict[str, tuple[int, int, int, int]] = {}
    for r, row in enumerate(CELLS):
        for c, text in enumerate(row):
            draw.text(
                (columns[c] + round(20 * k), rows[r] + round(18 * k)), text, font=face, fill=10
            )
            if r and c:
                cells[text] = (columns[c], rows[r], columns[c + 1], rows[r + 1])
    gray = np.asarray(image.filter(ImageFilter.GaussianBlur(1.2))).copy()
    rules = ruled_lines(gray)
    assert rules is not None
    gray[rules] = PAPER
    return gray, cells


def _inside(word: Word, box: tuple[int, int, int, int]) -> bool:
    left, top, right, bottom = box
    return left <= word.left < word.right <= right and top <= word.top < word.bottom <= bottom


def test_a_tables_short_numbers_are_read_where_tesseract_alone_misreads_them(
    engine: CascadeEngine,
) -> None:
    gray, cells = _table(60)  # a 300 dpi scan's text: read by Tesseract at half scale
    assert engine.scale_for(gray) < 0.6
    alone = {w.text for w in engine.tesseract.recognize(gray).words}
    result = engine.recognize(gray)
    read = {w.text for w in result.words}
    assert not set(cells) <= alone  # Tesseract alone: "Ø.1" for "8.1", "Học kỳ |"
    assert set(cells) <= read, read
    assert "Học kỳ I" in result.text and "Học kỳ II" in result.text
    # Boxes in the page's pixels: every number inside the cell it was drawn in.
    h, w = gray.shape
    for word in result.words:
        assert 0 <= word.left < word.right <= w and 0 <= word.top < word.bottom <= h
        if word.text in cells:
            assert _inside(word, cells[word.text]), (word, cells[word.text])


def test_a_vietnamese_line_tesseract_misreads_is_read_again(engine: CascadeEngine) -> None:
    line = "Sẹo chấm cách 2cm trên đầu lông mày phải"
    image = Image.new("L", (1300, 90), PAPER)
    ImageDraw.Draw(image).text((30, 30), line, font=docgen.font(docgen.SANS, 28), fill=10)
    gray = np.asarray(image.filter(ImageFilter.GaussianBlur(1.0))).copy()
    assert engine.tesseract.recognize(gray).text != line  # "Seo chấm ...": the dot lost
    result = engine.recognize(gray)
    assert result.text == line
    assert [w.text for w in result.words] == line.split()
    first = result.words[0]
    assert first.left >= 20 and first.right <= 120 and first.top >= 20 and first.bottom <= 80


def test_zone_lines_and_numbers_keep_their_restricted_reading(engine: CascadeEngine) -> None:
    person = docgen.random_person(7)  # a card whose zone the page model misreads
    page = admit(0, docgen.encode(docgen.id_card_back(person, 7), "jpeg", 90), Limits())
    gray = prepare(page).gray
    assert engine.scale_for(gray) == 1.0  # a card's text is read as it comes
    words = {w.text for w in engine.recognize(gray).words}
    assert set(docgen.mrz_lines(person)) <= words


def test_a_page_upside_down_is_left_to_tesseract(engine: CascadeEngine) -> None:
    # Read again, its lines would come back as confident nonsense and hide that the page is
    # turned: the pipeline turns a page whose reading is this unsure.
    person = docgen.random_person(0)
    page = admit(0, docgen.encode(docgen.id_card_back(person, 0), "jpeg", 90), Limits())
    turned = np.ascontiguousarray(np.rot90(prepare(page).gray, 2))
    alone = engine.tesseract.recognize(turned)
    assert alone.mean_confidence < 60
    assert engine.recognize(turned) == alone


def test_a_blank_page_reads_nothing(engine: CascadeEngine) -> None:
    result = engine.recognize(np.full((300, 400), PAPER, dtype=np.uint8))
    assert result.words == () and result.text == "" and result.mean_confidence == 0.0
    with pytest.raises(ValueError, match="uint8"):
        engine.recognize(np.zeros((10, 10), dtype=np.float32))


def test_what_tesseract_is_unsure_of() -> None:
    assert plausible("Nguyễn Thị Hường, Đồng Quỹ: 23/2015/NĐ-CP (bản sao)")
    assert not plausible("§.5") and not plausible("Ø.1") and not plausible("Học kỳ |")
    sure = Word("Hường", 0, 0, 10, 10, 96.0)
    assert not unsure(sure)
    assert unsure(Word("Hường", 0, 0, 10, 10, 60.0))  # a low confidence
    assert unsure(Word("Si)", 0, 0, 10, 10, 96.0))  # "5.5": an unpaired bracket
    assert unsure(Word("8.5", 0, 0, 10, 10, 96.0))  # a short number, however confident
    assert not unsure(Word("17/02/1995", 0, 0, 10, 10, 96.0))  # a date: read again by Tesseract


def test_text_height_tells_a_300_dpi_page_from_a_card() -> None:
    assert text_height(np.full((200, 200), PAPER, dtype=np.uint8)) is None
    small, _ = _table(30)
    large, _ = _table(60)
    h_small, h_large = text_height(small), text_height(large)
    assert h_small is not None and h_large is not None
    assert 1.6 < h_large / h_small < 2.4


def test_an_unsure_word_boxed_over_the_words_after_it_is_read_again_with_them(
    engine: CascadeEngine,
) -> None:
    # "Place of birth" read as one unsure word "PIace" boxed over all three, then "of" and
    # "birth" again: reading "PIace" with one word of context would leave "birth" twice.
    run = [
        Word("sinh", 345, 159, 378, 174, 93),
        Word("/", 382, 153, 390, 182, 93),
        Word("PIace", 396, 157, 497, 174, 45),
        Word("of", 442, 153, 457, 182, 93),
        Word("birth", 464, 157, 497, 174, 92),
        Word("Phường", 520, 159, 600, 178, 97),
    ]
    assert engine.doubtful(run) == [(1, 5)]
    # Words side by side: one word of context either side, no more.
    apart = [Word(w.text, 100 * k, 159, 100 * k + 60, 174, w.confidence) for k, w in enumerate(run)]
    assert engine.doubtful(apart) == [(1, 4)]
