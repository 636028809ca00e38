"""Document understanding end to end on generated pages: real Tesseract, real QR decoding,
real seal detection, through admission and preprocessing as the pipeline does it."""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import date

import numpy as np
import pytest
from PIL import Image

from saoy.clients.simulator import docgen
from saoy.core.documents import DocumentReader, DossierAnalysis, analyze_dossier
from saoy.core.documents.qr import card_qr, find_qr_codes, read_card_qr
from saoy.core.documents.seal import find_seals
from saoy.core.model import OcrResult, Outcome, Word
from saoy.core.ocr.engines import create_engine
from saoy.core.ocr.tesseract import OcrEngine, OcrUnavailable, find_tessdata
from saoy.core.pages.admission import Limits, admit
from saoy.core.pages.imaging import prepare

PASS, WARN, FAIL = Outcome.PASS, Outcome.WARN, Outcome.FAIL
PERSON = docgen.random_person(11)
TODAY = PERSON.issue_date  # the card is valid on its issue day


@pytest.fixture(scope="module")
def engine() -> Iterator[OcrEngine]:
    try:
        find_tessdata("vie+eng")
    except OcrUnavailable as e:
        pytest.skip(str(e))
    built = create_engine("tesseract")
    yield built
    built.close()


@pytest.fixture(scope="module")
def reader() -> Iterator[DocumentReader]:
    built = DocumentReader()
    yield built
    built.close()


Page = tuple[np.ndarray, np.ndarray, object]


def page_of(doc: docgen.Rendered | Image.Image, engine: OcrEngine, quality: int = 92) -> Page:
    """A page as the pipeline holds it: admitted JPEG → upright grey, colour, OCR."""
    image = doc.image if isinstance(doc, docgen.Rendered) else doc
    admitted = admit(0, docgen.encode(image, "jpeg", quality), Limits())
    gray = prepare(admitted).gray
    rgb = np.ascontiguousarray(np.asarray(image.convert("RGB")))
    return gray, rgb, engine.recognize(gray)


def analyze(pages: list[Page], reader: DocumentReader, today: date = TODAY) -> DossierAnalysis:
    return analyze_dossier(pages, today, reader=reader)  # type: ignore[arg-type]


def not_passed(a: DossierAnalysis) -> list[str]:
    return [f"{c.outcome}: {c.name}: {c.reason}" for c in a.checks if c.outcome is not PASS]


@pytest.fixture(scope="module")
def card_pages(engine: OcrEngine) -> tuple[Page, Page]:
    captured = docgen.degrade(docgen.id_card_front(PERSON, 11), skew_deg=0.6, noise=3, blur=0.4)
    assert isinstance(captured, Image.Image)
    return page_of(captured, engine), page_of(docgen.id_card_back(PERSON, 11), engine)


def test_a_valid_chip_card_is_read_and_passes(
    card_pages: tuple[Page, Page], reader: DocumentReader
) -> None:
    a = analyze(list(card_pages), reader)
    front, back = a.pages
    assert (front.document_type, front.variant) == ("cccd_front", "2021")
    assert (back.document_type, back.variant) == ("cccd_back", "2021")
    assert front.confidence > 0.8 and back.confidence > 0.8
    fields = front.field_map()
    assert fields["id_number"][0] == PERSON.id_number
    assert fields["full_name"][0] == PERSON.full_name.upper()
    assert fields["date_of_birth"][0] == PERSON.date_of_birth.strftime("%d/%m/%Y")
    assert fields["qr_id_number"] == (PERSON.id_number, 1.0)
    assert all(0.0 <= conf <= 1.0 for _, conf in fields.values())
    assert back.mrz is not None and back.mrz.valid and back.mrz_reads_agree
    assert back.mrz.id_number == PERSON.id_number
    assert a.outcome is PASS, not_passed(a)
    assert {c.name for c in a.checks} >= {"mrz_check_digits", "fields_agree", "qr_code"}


def test_the_2024_card_is_told_apart(engine: OcrEngine, reader: DocumentReader) -> None:
    pages = [
        page_of(docgen.id_card_front(PERSON, 12, variant="2024"), engine),
        page_of(docgen.id_card_back(PERSON, 12, variant="2024"), engine),
    ]
    a = analyze(pages, reader)
    assert [(p.document_type, p.variant) for p in a.pages] == [
        ("cccd_front", "2024"),
        ("cccd_back", "2024"),
    ]
    assert a.pages[1].value("expiry_date") == PERSON.expiry_date.strftime("%d/%m/%Y")
    assert a.outcome is PASS, not_passed(a)


def test_a_broken_mrz_is_refused(
    card_pages: tuple[Page, Page], engine: OcrEngine, reader: DocumentReader
) -> None:
    back = page_of(
        docgen.id_card_back(PERSON, 11, mrz=docgen.broken_mrz(PERSON, "composite_check")),
        engine,
    )
    a = analyze([card_pages[0], back], reader)
    mrz = [c for c in a.checks if c.name == "mrz_check_digits"]
    assert mrz and mrz[0].outcome is FAIL and "composite" in mrz[0].reason
    assert a.outcome is FAIL


def test_a_qr_code_of_someone_else_is_refused(engine: OcrEngine, reader: DocumentReader) -> None:
    other = docgen.cccd_qr_payload(docgen.random_person(12))
    a = analyze([page_of(docgen.id_card_front(PERSON, 11, qr_payload=other), engine)], reader)
    assert any(c.name == "fields_agree" and c.outcome is FAIL for c in a.checks), not_passed(a)


def test_qr_survives_a_camera_capture_and_a_damaged_one_is_flagged() -> None:
    shot = docgen.degrade(
        docgen.id_card_front(PERSON, 3), skew_deg=1.2, noise=5, blur=0.8, jpeg_quality=70
    )
    assert isinstance(shot, bytes)
    gray = prepare(admit(0, shot, Limits())).gray
    qr = read_card_qr(gray)
    assert qr is not None and qr.id_number == PERSON.id_number
    damaged = docgen.id_card_front(PERSON, 3, qr_damaged=True).image.convert("L")
    assert read_card_qr(np.asarray(damaged)) is None


@pytest.mark.parametrize(
    ("seed", "index", "style"),
    [
        (6, 4, "overhead"),  # seen but not read once the card is straightened
        (7, 22, "camera_tight"),  # not even seen at the card's own size
    ],
)
def test_a_small_qr_code_photographed_is_read(seed: int, index: int, style: str) -> None:
    # 2021 cards of the template generator photographed (the corpus's card ``index`` at
    # ``seed``): their QR codes, a few pixels a module, are read by neither binarizer on the
    # card as straightened; they are read from the symbol's crop, or the card, enlarged.
    import random

    from saoy.clients.simulator.capture import capture
    from saoy.clients.simulator.templates import card, random_person

    rng = random.Random(seed * 1_000_003 + index)
    person = random_person(rng, "2021")
    dpi = rng.randint(20, 60) * 10
    extra = rng.random() < 0.4
    front, _ = card(person, "2021", rng, dpi, broken_mrz=False, qr_extra=extra)
    shot = capture(front, style, seed * 7919 + 2 * index)
    gray = prepare(admit(0, shot.data, Limits())).gray
    qr = card_qr(find_qr_codes(gray, card=True))
    assert qr is not None and qr.id_number == person.id_number


def test_birth_certificate_fields_and_seal(engine: OcrEngine, reader: DocumentReader) -> None:
    doc = docgen.birth_certificate(PERSON, 4, dpi=150)
    a = analyze([page_of(doc, engine)], reader)
    page = a.pages[0]
    assert page.document_type == "birth_certificate"
    for name in ("registration_number", "full_name", "date_of_birth", "mother", "father"):
        assert page.value(name) == doc.fields[name], name
    assert page.seals
    assert a.outcome is PASS, not_passed(a)

    unsealed = analyze(
        [page_of(docgen.birth_certificate(PERSON, 4, dpi=150, seal=False), engine)], reader
    )
    seal = [c for c in unsealed.checks if c.name == "seal_present"]
    assert seal and seal[0].outcome is WARN


def test_seal_detection_on_an_a4_page_is_fast_and_ignores_other_red() -> None:
    sealed = np.asarray(docgen.birth_certificate(PERSON, 5, dpi=300).image.convert("RGB"))
    plain = docgen.birth_certificate(PERSON, 5, dpi=300, seal=False)
    stamped = np.asarray(docgen.confidential_stamp(plain).image.convert("RGB"))
    card = np.asarray(docgen.id_card_front(PERSON, 5).image.convert("RGB"))  # a red emblem
    find_seals(sealed)
    start = time.perf_counter()
    found = find_seals(sealed)
    elapsed = time.perf_counter() - start
    assert len(found) == 1 and found[0].roundness > 0.9
    assert elapsed < 0.2  # tens of milliseconds on a quiet core
    assert find_seals(stamped) == [] and find_seals(card) == []


def test_a_confidential_page_is_refused(engine: OcrEngine, reader: DocumentReader) -> None:
    doc = docgen.confidential_stamp(docgen.birth_certificate(PERSON, 6, dpi=150))
    a = analyze([page_of(doc, engine)], reader)
    refused = [c for c in a.checks if c.name == "decree_23_certifiable"]
    assert refused and refused[0].outcome is FAIL and "MẬT" in refused[0].reason


@pytest.mark.parametrize(
    ("name", "make", "outcome", "words"),
    [
        ("blank", lambda: docgen.blank_page(), FAIL, "blank"),
        ("photo", lambda: docgen.scene_photo(2), FAIL, "no document text"),
        ("turned 90", lambda: docgen.rotated(docgen.id_card_front(PERSON, 1), 90), WARN, "90°"),
        ("turned 180", lambda: docgen.rotated(docgen.id_card_back(PERSON, 1), 180), WARN, "180°"),
        (
            "half card",
            lambda: docgen.cut_off(docgen.id_card_front(PERSON, 1), 0.5),
            WARN,
            "cut off",
        ),
    ],
)
def test_bad_input_gets_a_clear_verdict_never_a_pass(
    name: str, make: object, outcome: Outcome, words: str, engine: OcrEngine, reader: DocumentReader
) -> None:
    doc = make()  # type: ignore[operator]
    a = analyze([page_of(doc, engine)], reader)
    assert a.outcome is outcome, not_passed(a)
    assert any(words in c.reason and c.outcome is outcome for c in a.checks), not_passed(a)


def test_without_a_reader_turned_pages_still_do_not_pass(engine: OcrEngine) -> None:
    doc = docgen.rotated(docgen.id_card_front(PERSON, 1), 180)
    a = analyze_dossier([page_of(doc, engine)], TODAY)  # type: ignore[list-item]
    assert a.outcome is not PASS


def test_a_turned_card_read_as_confident_nonsense_is_still_found_turned(
    reader: DocumentReader,
) -> None:
    """An OCR engine may read upside-down text as confident nonsense (a neural recognizer
    does): a page of no known type is checked for turning whatever the confidence."""
    turned = docgen.rotated(docgen.id_card_front(PERSON, 1), 180).image.convert("L")
    read = ["buẹn", "ẹg", "buea", "eọh", "uộAnh", "ệnH", "uẹAn6N", "ajuapịsdu", "quịn", "j43"]
    nonsense = tuple(
        Word(text, 40 + 90 * i, 60 + 40 * i, 120 + 90 * i, 90 + 40 * i, 90.0)
        for i, text in enumerate(read)
    )
    result = OcrResult(nonsense, " ".join(w.text for w in nonsense), 90.0)
    a = analyze_dossier([(np.asarray(turned), None, result)], TODAY, reader=reader)
    assert (a.pages[0].condition, a.pages[0].rotation) == ("rotated", 180)
    assert a.outcome is WARN


def test_a_letter_that_mentions_documents_is_not_taken_for_them(
    engine: OcrEngine, reader: DocumentReader
) -> None:
    letter = docgen.admin_letter(PERSON, 3, dpi=150)  # "... căn cước công dân, giấy khai sinh"
    a = analyze([page_of(letter, engine)], reader)
    assert a.pages[0].document_type == "generic" and not a.pages[0].fields
    assert a.outcome is PASS, not_passed(a)
