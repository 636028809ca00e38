"""A value the page OCR skipped is read again under its label: the card's 12-digit number or
an address, printed large and bold over the guilloche, which Tesseract's page layout may take
for a picture."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date

import numpy as np
import pytest
from PIL import Image, ImageDraw, ImageFont

from saoy.core.documents import DocumentReader
from saoy.core.documents.analysis import (
    REREAD_CONFIDENCE,
    _mrz_crop,
    _read_mrz,
    _reread_missing,
    analyze_page,
)
from saoy.core.documents.fields import PLACE_CONFIRMED, Field
from saoy.core.documents.text import Line, group_lines
from saoy.core.model import OcrResult, Word
from saoy.core.ocr.tesseract import OcrUnavailable, find_tessdata

SANS = "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf"
BOLD = "/usr/share/fonts/truetype/dejavu/DejaVuSans-Bold.ttf"
LABEL = "Số định danh cá nhân / Personal identification number:"
NAME_LABEL = "Họ, chữ đệm và tên khai sinh / Surname, middle name and given name:"


@pytest.fixture(scope="module")
def reader() -> Iterator[DocumentReader]:
    try:
        find_tessdata("vie")
    except OcrUnavailable as e:
        pytest.skip(str(e))
    built = DocumentReader()
    yield built
    built.close()


def labels(
    d: ImageDraw.ImageDraw,
    rows: tuple[tuple[str, int], ...],
    font: ImageFont.FreeTypeFont,
    x: int,
    height: int,
    space: int = 8,
) -> list[Word]:
    """Draw each (text, top) row of labels from ``x``, and the words the page OCR gives."""
    words = []
    for text, top in rows:
        left = x
        for token in text.split():
            d.text((left, top), token, font=font, fill=40)
            right = left + round(d.textlength(token, font=font))
            words.append(Word(token, left, top, right, top + height, 92.0))
            left = right + space
    return words


def front(number: str) -> tuple[np.ndarray, list[Word]]:
    """A 2024 card's front at 400 dpi, about its number: the grey page and the words the page
    OCR gave (the two labels, not the number)."""
    img = Image.new("L", (1350, 850), 236)
    d = ImageDraw.Draw(img)
    small, large = ImageFont.truetype(SANS, 26), ImageFont.truetype(BOLD, 52)
    words = labels(d, ((LABEL, 290), (NAME_LABEL, 400)), small, 395, 30)
    if number:
        d.text((400, 325), number, font=large, fill=25)
    return np.asarray(img), words


def _reread_id_number(gray: np.ndarray, lines: list[Line], reader: DocumentReader) -> Field | None:
    return _reread_missing(gray, lines, reader, ["id_number"]).get("id_number")


def test_a_number_the_page_ocr_skipped_is_read_under_its_label(reader: DocumentReader) -> None:
    gray, words = front("046203041906")
    found = _reread_id_number(gray, group_lines(words), reader)
    assert found is not None and found.value == "046203041906"
    assert found.confidence == REREAD_CONFIDENCE  # to be confirmed by the MRZ or the QR code


def test_nothing_under_the_label_gives_no_number(reader: DocumentReader) -> None:
    gray, words = front("")
    assert _reread_id_number(gray, group_lines(words), reader) is None
    gray, words = front("04620304190")  # 11 digits: no card number
    assert _reread_id_number(gray, group_lines(words), reader) is None


def test_a_2021_number_right_of_its_label_is_read_on_the_label_s_row(
    reader: DocumentReader,
) -> None:
    img = Image.new("L", (1350, 850), 236)
    d = ImageDraw.Draw(img)
    small, large = ImageFont.truetype(SANS, 26), ImageFont.truetype(BOLD, 44)
    rows = (("Số / No.:", 300), ("Họ và tên / Full name:", 380))
    words = labels(d, rows, small, 400, 30)
    d.text((560, 290), "001203012345", font=large, fill=25)
    found = _reread_id_number(np.asarray(img), group_lines(words), reader)
    assert found is not None and found.value == "001203012345"


def origin(value: str) -> tuple[np.ndarray, list[Word]]:
    """A 2021 card's front at 230 dpi about its place of origin, printed under its label: the
    grey page and the words the page OCR gave (the labels, not the value)."""
    img = Image.new("L", (1300, 700), 236)
    d = ImageDraw.Draw(img)
    small, large = ImageFont.truetype(SANS, 17), ImageFont.truetype(BOLD, 21)
    rows = (("Quê quán / Place of origin:", 300), ("Nơi thường trú / Place of residence:", 365))
    words = labels(d, rows, small, 420, 20, space=6)
    if value:
        d.text((435, 328), value, font=large, fill=25)
    return np.asarray(img), words


def test_a_place_the_page_ocr_skipped_is_read_under_its_label(reader: DocumentReader) -> None:
    gray, words = origin("Lê Lợi, Vinh, Nghệ An")
    found = _reread_missing(gray, group_lines(words), reader, ["place_of_origin"])
    assert found["place_of_origin"].value == "Lê Lợi, Vinh, Nghệ An"  # the labels blanked
    # Every unit named as the official list names it: as sure as the page OCR's reading.
    assert found["place_of_origin"].confidence == PLACE_CONFIRMED
    gray, words = origin("")
    assert _reread_missing(gray, group_lines(words), reader, ["place_of_origin"]) == {}
    # A field whose label is not on the page is not looked for.
    assert _reread_missing(gray, group_lines(words), reader, ["place_of_birth"]) == {}


def test_the_zone_s_rows_the_page_ocr_missed_are_read_with_the_row_it_found(
    reader: DocumentReader,
) -> None:
    # A card photographed tight: the page OCR read the zone's second row only ("IDVNM…" as
    # "1S 704…", the name's row not at all). The band read again reaches over the rows above
    # and below it, so all three are read.
    zone = (
        "IDVNM0704253838079070425383<<<",
        "7010169M3010162VNM<<<<<<<<<<<8",
        "PHAN<<CONG<KIEN<<<<<<<<<<<<<<<",
    )
    img = Image.new("L", (1120, 722), 232)
    d = ImageDraw.Draw(img)
    mono = ImageFont.truetype("/usr/share/fonts/truetype/dejavu/DejaVuSansMono-Bold.ttf", 56)
    for k, row in enumerate(zone):
        d.text((40, 540 + 62 * k), row, font=mono, fill=20)
    words = [Word(zone[1], 44, 602, 1040, 646, 90.0), Word("1S", 44, 545, 90, 585, 30.0)]
    crop = _mrz_crop(np.asarray(img), group_lines(words))
    assert reader.read_mrz(crop) == list(zone)


def _zone_page(zone: tuple[str, str, str], size: int) -> np.ndarray:
    """A card's back about as wide as its zone, the zone at its foot."""
    height = round(12 * size)
    img = Image.new("L", (40 + 20 * size, height), 232)
    d = ImageDraw.Draw(img)
    mono = ImageFont.truetype("/usr/share/fonts/truetype/dejavu/DejaVuSansMono-Bold.ttf", size)
    for k, row in enumerate(zone):
        d.text((20, height - round(4.2 * size) + round(1.3 * size) * k), row, font=mono, fill=20)
    return np.asarray(img)


@pytest.mark.parametrize("size", [30, 36])
def test_a_wrong_check_digit_read_alike_at_other_scales_is_proven(
    reader: DocumentReader, size: int
) -> None:
    # The page OCR read no line of the zone (a small capture): the zone read once by the
    # MRZ reader, its check digits failing, is read again at other scales; alike each time,
    # the wrong digit is the card's, not the reading's.
    good = (
        "IDVNM0704253838079070425383<<<",
        "7010169M3010161VNM<<<<<<<<<<<8",
        "PHAN<<CONG<KIEN<<<<<<<<<<<<<<<",
    )
    broken = ("IDVNM0704253835079070425383<<<", *good[1:])  # the number's check digit 5, not 8
    m, proven, found = _read_mrz(_zone_page(broken, size), [], reader, date(2026, 1, 1))
    assert found and m is not None and m.lines == broken and not m.valid and proven
    m, proven, found = _read_mrz(_zone_page(good, size), [], reader, date(2026, 1, 1))
    assert m is not None and m.valid


def test_a_date_read_a_digit_short_is_read_again_under_its_label(reader: DocumentReader) -> None:
    # The page OCR read "11/12/1960" as "1/12/1960": no card prints a one-digit day, so the
    # date is read again from its place on the page.
    img = Image.new("L", (1350, 850), 236)
    d = ImageDraw.Draw(img)
    small, large = ImageFont.truetype(SANS, 24), ImageFont.truetype(BOLD, 34)
    rows = (
        ("CĂN CƯỚC / IDENTITY CARD", 120),
        ("Số định danh cá nhân / Personal identification number:", 250),
        ("Họ, chữ đệm và tên khai sinh / Surname, middle name and given name:", 380),
        ("Ngày, tháng, năm sinh / Date of birth:", 510),
        ("Giới tính / Sex:", 600),
    )
    words = labels(d, rows, small, 395, 28)
    values = (("046203041906", 290), ("HOÀNG VĂN AN", 420), ("Nam", 640))
    for text, top in values:
        d.text((400, top), text, font=large, fill=25)
        words.append(
            Word(text, 400, top, 400 + round(d.textlength(text, font=large)), top + 38, 95.0)
        )
    d.text((880, 500), "11/12/1960", font=large, fill=25)
    words.append(Word("1/12/1960", 880, 500, 1060, 538, 96.0))
    result = OcrResult(tuple(words), " ".join(w.text for w in words), 93.0)
    page = analyze_page(0, np.asarray(img), None, result, date(2025, 6, 1), reader)
    assert page.document_type == "cccd_front", page
    assert page.value("date_of_birth") == "11/12/1960"


def test_a_zone_row_misread_at_its_start_does_not_stretch_the_band_read_again() -> None:
    # All three rows read as zone text, the first with its "I" read "E": the band is the
    # three rows', not reaching a line pitch above them (over a seal and a signature).
    zone = (
        "IDVNM1812715520031181271552<<<",
        "8110251F4110253VNM<<<<<<<<<<<0",
        "LUONG<<TUYET<NGAN<<<<<<<<<<<<<",
    )
    gray = np.full((700, 1100), 232, np.uint8)

    def words(first: str) -> list[Word]:
        rows = (first, *zone[1:])
        return [Word(t, 40, 500 + 62 * k, 1040, 544 + 62 * k, 90.0) for k, t in enumerate(rows)]

    misread = _mrz_crop(gray, group_lines(words("E" + zone[0][1:])))
    assert misread.shape == _mrz_crop(gray, group_lines(words(zone[0]))).shape
