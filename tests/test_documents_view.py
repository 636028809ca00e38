"""The page OCR reads: a red seal's ink lifted off the signer's block, QR codes painted over;
what was found on the way is what analysis uses."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date

import numpy as np
import pytest
from PIL import Image, ImageDraw

from saoy.clients.simulator import docgen
from saoy.clients.simulator.corpus import card_dossier
from saoy.clients.simulator.scoring import line_reads
from saoy.core.documents import CCCD_FRONT, PageView, analyze_view, page_view
from saoy.core.documents.analysis import analyze_page
from saoy.core.documents.seal import Seal, lift_seal_ink
from saoy.core.documents.text import group_lines
from saoy.core.documents.view import ruled_lines
from saoy.core.ocr.tesseract import OcrUnavailable, TesseractEngine
from saoy.core.pages.admission import Limits, admit_decoded
from saoy.core.pages.imaging import PreparedPage, prepare

PERSON = docgen.random_person(21)


@pytest.fixture(scope="module")
def engine() -> Iterator[TesseractEngine]:
    try:
        built = TesseractEngine()
    except OcrUnavailable as e:
        pytest.skip(str(e))
    yield built
    built.close()


def _view(rendered: docgen.Rendered) -> tuple[PreparedPage, PageView]:
    page, image = admit_decoded(0, docgen.encode(rendered, "jpeg", 95), Limits())
    prepared = prepare(page, image)
    return prepared, page_view(page, prepared)


def test_the_signer_block_under_a_seal_is_read_once_the_seal_ink_is_lifted(
    engine: TesseractEngine,
) -> None:
    doc = docgen.birth_certificate(PERSON, 3, dpi=300)
    prepared, view = _view(doc)
    assert view.gray is prepared.gray
    assert view.seals is not None and len(view.seals) == 1
    # Only the seal's square and the form's rules changed; the rest is OCR'd as prepared.
    h, w = view.gray.shape
    left, top, right, bottom = view.seals[0].box(w, h)
    changed = view.ocr_gray.astype(int) - view.gray.astype(int)
    assert changed.min() >= 0 and changed[top:bottom, left:right].max() > 100
    changed[top:bottom, left:right] = 0
    rules = ruled_lines(view.gray)
    if rules is not None:
        changed[rules] = 0
    assert not changed.any()

    signer = [ln for ln in doc.lines if ln.text == "NGƯỜI KÝ GIẤY KHAI SINH"]
    signer.append(doc.lines[-1])  # the signer's name, drawn last
    cropped = prepared.transform is not None
    assert not cropped  # a flat scan: capture pixels are page pixels, boxes compare as drawn
    under_seal = line_reads(signer, group_lines(engine.recognize(view.gray).words))
    lifted = line_reads(signer, group_lines(engine.recognize(view.ocr_gray).words))
    assert lifted == [ln.text for ln in signer]
    assert under_seal != lifted


def test_seal_ink_is_lifted_inside_the_disc_and_black_text_stays() -> None:
    gray = np.full((200, 200), 230, np.uint8)
    rgb = np.full((200, 200, 3), 235, np.uint8)
    red, black = (210, 35, 45), (20, 20, 20)
    rgb[95:105, 95:105] = red  # seal ink at the centre
    rgb[60:70, 100:110] = black  # text stamped over, inside the disc
    gray[95:105, 95:105] = 90
    gray[60:70, 100:110] = 20
    gray[0:10, 0:10] = 90  # red print in the box's corner, outside the disc
    rgb[0:10, 0:10] = red
    seal = Seal(cx=0.5, cy=0.5, radius=0.4, roundness=1.0, ink=0.5)
    box = seal.box(200, 200)
    assert box == (8, 8, 192, 192)
    out = gray.copy()
    lift_seal_ink(out, seal, box, np.ascontiguousarray(rgb[8:192, 8:192]))
    assert (out[95:105, 95:105] == 230).all()  # to the paper
    assert (out[60:70, 100:110] == 20).all()
    assert (out[0:10, 0:10] == 90).all()
    with pytest.raises(ValueError, match="not the box"):
        lift_seal_ink(out, seal, box, rgb)


def test_the_card_qr_is_read_then_painted_over_and_the_motto_beside_it_is_read(
    engine: TesseractEngine,
) -> None:
    card = docgen.id_card_front(PERSON, 21)
    _, view = _view(card)
    assert len(view.qr_codes) == 1 and view.qr_codes[0].text.startswith(PERSON.id_number)
    left, top, right, bottom = view.qr_codes[0].box
    assert view.gray[top:bottom, left:right].std() > 60  # modules
    assert view.ocr_gray[top:bottom, left:right].std() == 0  # paper
    assert view.seals == ()  # the emblem is a solid red disc, not a seal

    result = engine.recognize(view.ocr_gray)
    motto = [ln for ln in card.lines if ln.text.startswith("CỘNG HÒA")]
    assert line_reads(motto, group_lines(result.words)) == [motto[0].text]
    today = date(2025, 6, 1)
    from_view = analyze_view(0, view, result, today)
    again = analyze_page(0, view.gray, view.rgb, result, today)  # looks for the QR itself
    assert from_view.document_type == CCCD_FRONT
    assert from_view.qr == again.qr and from_view.qr is not None
    assert from_view.qr.id_number == PERSON.id_number
    assert from_view.fields == again.fields


def test_a_soft_card_qr_code_seen_but_not_read_is_read_from_the_page_enlarged() -> None:
    # A 2021 front of the template generator photographed from above (seed 10, its fifth
    # card): the symbol is seen, but its modules of a few pixels read neither at the page's
    # scale nor from its own crop enlarged twice; the page enlarged by half reads it.
    front = card_dossier(10, 4).pages[0]
    admitted, image = admit_decoded(0, front.data, Limits())
    view = page_view(admitted, prepare(admitted, image))
    assert [c.text.split("|")[0] for c in view.qr_codes] == [front.fields["id_number"]]


def test_the_rules_of_a_table_are_painted_out_and_its_text_is_kept(
    engine: TesseractEngine,
) -> None:
    image = Image.new("L", (1600, 900), 245)
    draw = ImageDraw.Draw(image)
    face = docgen.font(docgen.SERIF, 34)
    columns, rows = (100, 500, 900, 1300, 1500), (100, 180, 260, 340, 420)
    for y in rows:
        draw.line((columns[0], y, columns[-1], y), fill=20, width=3)
    for x in columns:
        draw.line((x, rows[0], x, rows[-1]), fill=20, width=3)
    cells = [("Môn học", "Học kỳ I", "Học kỳ II", "TB"), ("Toán", "8.5", "7.2", "8.1")]
    for r, row in enumerate(cells):
        for c, text in enumerate(row):
            draw.text((columns[c] + 20, rows[r] + 20), text, font=face, fill=10)
    draw.text((100, 600), "Xếp loại học lực: Giỏi", font=face, fill=10)
    gray = np.asarray(image).copy()
    mask = ruled_lines(gray)
    assert mask is not None
    # Every rule is covered; no letter is: the text rows' ink outside the rules is untouched.
    assert mask[rows[0], columns[0] + 50 : columns[-1] - 50].all()
    assert mask[rows[0] + 10 : rows[-1] - 10, columns[2]].all()
    assert not mask[560:680, :].any()
    cleaned = gray.copy()
    cleaned[mask] = 245
    text = engine.recognize(cleaned).text
    for word in ("Môn học", "Học kỳ I", "Toán", "8.5", "Giỏi"):
        assert word in text, text
    # A page of running text has no rules.
    letter = Image.new("L", (1600, 900), 245)
    ImageDraw.Draw(letter).text((100, 100), "Căn cứ Nghị định số 23/2015/NĐ-CP", font=face, fill=10)
    assert ruled_lines(np.asarray(letter)) is None


def test_a_tilted_framed_stamp_is_found_at_any_scale() -> None:
    from saoy.core.documents.seal import find_red_boxes

    stamp = Image.new("RGB", (420, 160), (250, 250, 250))
    draw = ImageDraw.Draw(stamp)
    draw.rectangle((10, 10, 410, 150), outline=(200, 30, 40), width=6)
    draw.text((120, 30), "MẬT", font=docgen.font(docgen.SANS_BOLD, 90), fill=(200, 30, 40))
    page = Image.new("RGB", (2480, 3508), (250, 250, 250))
    page.paste(stamp.rotate(6, expand=True, fillcolor=(250, 250, 250)), (600, 500))
    for side in (2480, 1000, 720):  # the scan, and colour views of it
        scaled = page.resize((side, round(side * 3508 / 2480)))
        boxes = find_red_boxes(np.asarray(scaled))
        assert boxes, side
        left, top, right, bottom = boxes[0]
        assert left < 650 / 2480 < 1010 / 2480 < right and top < 550 / 3508 < bottom


def test_a_page_photographed_under_uneven_light_is_read_once_its_light_is_evened() -> None:
    # An A4 letter of the template corpus photographed from above (seed 21, its third A4
    # page): its paper goes from white to grey across the page, and Tesseract's one threshold
    # lost all but a line of it. Evened, every line of its body reads.
    from saoy.clients.simulator.corpus import a4_page
    from saoy.core.documents.view import evenly_lit
    from saoy.core.ocr.engines import create_engine

    sample = a4_page(21, 2).pages[0]
    page, image = admit_decoded(0, sample.data, Limits())
    prepared = prepare(page, image)
    assert evenly_lit(prepared.gray) is not None
    view = page_view(page, prepared)
    cascade = create_engine("cascade")
    try:
        words = cascade.recognize(view.ocr_gray).words
    finally:
        cascade.close()
    text = " ".join(w.text for w in words)
    assert len(words) >= 100, text
    for line in ("Căn cứ Luật Tổ chức chính quyền địa phương", "Nội dung xác nhận đúng"):
        assert line in text
    # A page scanned flat is left as it is.
    flat = a4_page(21, 0).pages[0]
    page, image = admit_decoded(0, flat.data, Limits())
    assert evenly_lit(prepare(page, image).gray) is None
