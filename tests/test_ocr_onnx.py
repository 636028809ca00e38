"""The ONNX Runtime OCR engine (PP-OCRv4 detection, Vietnamese CTC recognizer) on generated
pages: it reads names with every diacritic and ID numbers, puts word boxes where the text was
drawn, reads nothing on a blank page, and runs on the provider ONNX Runtime offers."""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import onnxruntime as ort
import pytest
from PIL import Image, ImageDraw

from saoy.clients.simulator import docgen
from saoy.core.model import OcrResult, Word
from saoy.core.ocr.engines import create_engine
from saoy.core.ocr.onnx import OnnxEngine, choose_providers, package_file
from saoy.core.ocr.tesseract import OcrUnavailable
from saoy.core.pages.admission import Limits, admit
from saoy.core.pages.imaging import prepare

Card = tuple[docgen.Person, docgen.Rendered, np.ndarray, OcrResult]


@pytest.fixture(scope="module")
def engine() -> Iterator[OnnxEngine]:
    try:
        built = create_engine("onnx")
    except OcrUnavailable as e:
        pytest.skip(str(e))
    assert isinstance(built, OnnxEngine)
    yield built
    built.close()


@pytest.fixture(scope="module")
def card(engine: OnnxEngine) -> Card:
    """A card front as the pipeline hands it to OCR (JPEG, admitted, prepared), read once."""
    person = docgen.random_person(0)
    rendered = docgen.id_card_front(person, 0)
    page = admit(0, docgen.encode(rendered, "jpeg", 90), Limits())
    gray = prepare(page).gray
    return person, rendered, gray, engine.recognize(gray)


def _near(word: Word, box: tuple[int, int, int, int], tolerance: int) -> bool:
    left, top, right, bottom = box
    return (
        abs(word.top - top) <= tolerance
        and abs(word.bottom - bottom) <= tolerance
        and left - tolerance <= word.left < word.right <= right + tolerance
    )


def test_reads_the_name_with_diacritics_and_the_12_digit_number(card: Card) -> None:
    person, _, _, result = card
    assert person.full_name.upper() in result.text  # "LÊ VĂN PHÚC", every mark exact
    assert person.id_number in {w.text for w in result.words}
    assert "CỘNG HÒA XÃ HỘI CHỦ NGHĨA VIỆT NAM" in result.text
    assert result.word_count > 30
    assert 80 < result.mean_confidence <= 100


def test_word_boxes_lie_inside_the_page_and_where_the_words_were_drawn(card: Card) -> None:
    person, rendered, gray, result = card
    h, w = gray.shape
    for word in result.words:
        assert 0 <= word.left < word.right <= w
        assert 0 <= word.top < word.bottom <= h
        assert 0 <= word.confidence <= 100
    drawn = rendered.line("id_number").box
    (number,) = [word for word in result.words if word.text == person.id_number]
    assert _near(number, drawn, 12)
    drawn = rendered.line("full_name").box
    parts = person.full_name.upper().split()
    name_words = [word for word in result.words if _near(word, drawn, 12)]
    assert [word.text for word in name_words] == parts
    # Words of one line are apportioned left to right without overlapping much.
    for a, b in itertools.pairwise(name_words):
        assert a.right <= b.left + 4


def test_text_follows_reading_order(card: Card) -> None:
    person, _, _, result = card
    text = result.text
    lines = text.splitlines()
    assert lines[0] == "CỘNG HÒA XÃ HỘI CHỦ NGHĨA VIỆT NAM"
    assert text.index("CĂN CƯỚC") < text.index(person.id_number) < text.index("LÊ VĂN PHÚC")
    assert text.index("LÊ VĂN PHÚC") < text.index("Quê quán")
    # Words follow the text: the same words, in the same order.
    assert " ".join(w.text for w in result.words) == " ".join(text.split())


def test_a_blank_page_gives_no_words(engine: OnnxEngine) -> None:
    gray = np.asarray(docgen.blank_page().image.convert("L"))
    result = engine.recognize(gray)
    assert result.words == ()
    assert result.text == ""
    assert result.mean_confidence == 0.0


def test_a_line_longer_than_the_recognizer_reaches_is_read_whole(
    engine: OnnxEngine,
) -> None:
    # ~2400 px of 20 px text: about 3800 px at the recognizer's 32 px height, read in pieces.
    text = "Giấy chứng nhận quyền sử dụng đất số 0123456 cấp ngày 15 tháng 3 năm 2019 " * 2
    text = text.strip()
    image = Image.new("L", (2600, 120), 255)
    ImageDraw.Draw(image).text((40, 40), text, font=docgen.font(docgen.SANS, 20), fill=20)
    result = engine.recognize(np.asarray(image))
    assert result.text == text


def test_engine_reports_the_provider_onnx_runtime_runs_it_on(
    engine: OnnxEngine,
) -> None:
    expected = (
        "CUDAExecutionProvider"
        if "CUDAExecutionProvider" in ort.get_available_providers()
        else "CPUExecutionProvider"
    )
    assert engine.provider == expected
    assert engine.threads == 1
    assert choose_providers("cpu") == ["CPUExecutionProvider"]


def test_asking_for_cuda_without_it_is_a_clear_deployment_error() -> None:
    if "CUDAExecutionProvider" in ort.get_available_providers():
        pytest.skip("this ONNX Runtime has the CUDA provider")
    with pytest.raises(OcrUnavailable, match="onnxruntime-gpu"):
        OnnxEngine(providers="cuda")


def test_a_missing_model_package_names_what_to_install() -> None:
    with pytest.raises(OcrUnavailable, match="pip install no-such-ocr-package"):
        package_file("no-such-ocr-package", "model.onnx")


def test_concurrent_pages_read_as_they_do_alone(engine: OnnxEngine, card: Card) -> None:
    back = np.asarray(docgen.id_card_back(card[0], 0).image.convert("L"))
    alone = engine.recognize(back)
    with ThreadPoolExecutor(max_workers=2) as pool:
        together = list(pool.map(engine.recognize, [card[2], back]))
    assert together == [card[3], alone]


def test_rejects_what_is_not_a_grey_page(engine: OnnxEngine) -> None:
    with pytest.raises(ValueError, match="uint8"):
        engine.recognize(np.zeros((10, 10, 3), dtype=np.uint8))
    with pytest.raises(ValueError, match="uint8"):
        engine.recognize(np.zeros((10, 10), dtype=np.float32))
    assert engine.recognize(np.zeros((0, 0), dtype=np.uint8)).words == ()
