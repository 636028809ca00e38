"""ICAO 9303 TD1 parsing and check digits, ID-number provinces, card QR parsing."""

from __future__ import annotations

from dataclasses import replace
from datetime import date
from pathlib import Path

import numpy as np
import pytest

from saoy.clients.simulator import docgen
from saoy.core.documents.analysis import _mrz_crop
from saoy.core.documents.fields import card_fields
from saoy.core.documents.mrz import (
    check_digit,
    combine_reads,
    find_line2,
    find_td1,
    parse_td1,
    proven_failures,
    sound,
    well_formed,
)
from saoy.core.documents.places import normalize_place
from saoy.core.documents.provinces import PROVINCES, gender_century_digit
from saoy.core.documents.qr import parse_card_qr
from saoy.core.documents.text import Line, find_date, group_lines, short_date
from saoy.core.model import Word

QR_SAMPLES = Path(__file__).parent / "data" / "qr"

# The specimen of ICAO Doc 9303 part 5 (TD1).
SPECIMEN = (
    "I<UTOD231458907<<<<<<<<<<<<<<<",
    "7408122F1204159UTO<<<<<<<<<<<6",
    "ERIKSSON<<ANNA<MARIA<<<<<<<<<<",
)


def test_check_digits_of_the_icao_specimen() -> None:
    assert check_digit("D23145890") == 7
    assert check_digit("740812") == 2
    assert check_digit("120415") == 9
    assert check_digit("<<<") == 0
    m = parse_td1(SPECIMEN, date(2010, 1, 1))
    assert m is not None and m.valid
    assert m.document_number == "D23145890"
    assert m.birth_date == date(1974, 8, 12) and m.expiry_date == date(2012, 4, 15)
    assert m.sex == "F" and m.nationality == "UTO"
    assert (m.surname, m.given_names) == ("ERIKSSON", "ANNA MARIA")


def test_a_generated_vietnamese_zone_parses_with_the_12_digit_number() -> None:
    person = docgen.random_person(4)
    m = parse_td1(docgen.mrz_lines(person), date(2025, 1, 1))
    assert m is not None and m.valid and m.issuing_state == "VNM"
    assert m.id_number == person.id_number
    assert m.document_number == person.id_number[3:]
    assert m.birth_date == person.date_of_birth


def test_each_broken_check_digit_is_named() -> None:
    person = docgen.random_person(4)
    for defect, field in (
        ("number_check", "document_number"),
        ("birth_check", "birth_date"),
        ("expiry_check", "expiry_date"),
        ("composite_check", "composite"),
    ):
        m = parse_td1(docgen.broken_mrz(person, defect), date(2025, 1, 1))
        assert m is not None and m.failed == (field,)


def test_ocr_look_alikes_are_read_by_position() -> None:
    person = docgen.random_person(4)
    l1, l2, l3 = docgen.mrz_lines(person)
    misread = (
        l1.replace("<", "«", 1).replace("<<", "<"),  # a filler pair read as one glyph
        l2[:2] + "O" + l2[3:],  # a zero read as O in the birth date
        l3.replace("<", " <", 1),
    )
    found = find_td1(["some other line", *misread])
    assert found is not None
    m = parse_td1(found, date(2025, 1, 1))
    assert m is not None
    if l2[2] == "0":
        assert m.valid and m.lines == (l1, l2, l3)


def test_a_letter_in_a_vietnamese_card_number_is_read_as_its_digit() -> None:
    person = docgen.random_person(19)
    l1, l2, l3 = docgen.mrz_lines(person)
    number = l1.index(person.id_number[3:])
    zero = l1.index("0", number)  # a 0 of the document number, read as O
    m = parse_td1((l1[:zero] + "O" + l1[zero + 1 :], l2, l3), date(2025, 1, 1))
    assert m is not None and m.valid, m.failed if m else None
    assert m.document_number == person.id_number[3:] and m.id_number == person.id_number


def test_provinces_are_the_63_with_their_codes() -> None:
    assert len(PROVINCES) == 63
    assert PROVINCES["001"] == "Hà Nội" and PROVINCES["079"] == "Thành phố Hồ Chí Minh"
    assert "003" not in PROVINCES
    assert gender_century_digit(True, 1999) == 0 and gender_century_digit(False, 1999) == 1
    assert gender_century_digit(True, 2001) == 2 and gender_century_digit(False, 2100) == 5


def test_card_qr_fields() -> None:
    person = docgen.random_person(8)
    q = parse_card_qr(docgen.cccd_qr_payload(person))
    assert q.well_formed and q.id_number == person.id_number
    assert q.date_of_birth == person.date_of_birth and q.issue_date == person.issue_date
    assert q.full_name == person.full_name and q.address == person.place_of_residence
    assert not parse_card_qr("https://example.org").well_formed


def test_dates_and_places_read_through_ocr_noise() -> None:
    assert find_date("Ngày sinh: O6/09/l994") == (date(1994, 9, 6), "06/09/1994")
    assert find_date("31/02/2020") is None
    assert normalize_place("Xã Trường Long, Huyện Phong Điền, Can Thơ") == (
        "Xã Trường Long, Huyện Phong Điền, Cần Thơ"
    )
    assert normalize_place("Phường Phú Hội, Thanh phố Huế, Thùa Thiên Huế") == (
        "Phường Phú Hội, Thành phố Huế, Thừa Thiên Huế"
    )


def test_a_name_line_with_an_o_read_twice_parses_to_the_printed_name() -> None:
    l1 = "IDVNM0947660945079094766094<<<"
    l2 = "9409064M3409062VNM<<<<<<<<<<<5"
    parsed = parse_td1((l1, l2, "HO0<<DUC<DUNG<<<<<<<<<<<<<<<<<"))
    assert parsed is not None
    assert parsed.surname == "HO" and parsed.given_names == "DUC DUNG"
    assert parsed.lines[2] == "HO<<DUC<DUNG<<<<<<<<<<<<<<<<<<"


def _row(texts: list[str], top: int) -> list[Word]:
    words, x = [], 300
    for t in texts:
        words.append(Word(t, x, top, x + 14 * len(t), top + 24, 95.0))
        x += 14 * len(t) + 10
    return words


def test_a_label_whose_colon_was_misread_does_not_become_the_value() -> None:
    # "Full name:" with its colon read as "-": the value is the line below, not "/ Full name -".
    words = _row(["Họ", "và", "tên", "/", "Full", "name", "-"], 280) + _row(
        ["PHẠM", "QUỐC", "HÙNG"], 318
    )
    fields = card_fields(group_lines(words))
    assert fields["full_name"].value == "PHẠM QUỐC HÙNG"


def test_a_name_holding_a_short_label_s_letters_is_not_cut_there() -> None:
    # "THẾ THÀNH" folds to "thethanh", which holds "hethan" ("hết hạn", the 2024 card's expiry
    # label): a short label is matched on whole words only, and the name is read whole.
    label = _row(["Họ,", "chữ", "đệm", "và", "tên", "khai", "sinh", "/", "Surname:"], 280)
    name = _row(["LƯƠNG", "THẾ", "THÀNH", "VỸ"], 318)
    expiry = _row(["Ngày,", "tháng,", "năm", "hết", "hạn", "/", "Date", "of", "expiry:"], 356)
    expiry += [Word("01/01/2040", 300 + 14 * 45, 356, 300 + 14 * 55, 380, 95.0)]
    fields = card_fields(group_lines(label + name + expiry))
    assert fields["full_name"].value == "LƯƠNG THẾ THÀNH VỸ"
    assert fields["expiry_date"].value == "01/01/2040"


def test_an_english_half_read_as_more_words_stays_part_of_its_label() -> None:
    # "Place of origin:" read "Place of on gin:": the English half matches no key, and its
    # colon is the fifth word after the Vietnamese half; it is the label's, not the value's.
    words = _row(["Quê", "quán", "/", "Place", "of", "on", "gin:", "Xã", "Phù", "Linh,"], 405)
    words += _row(["Huyện", "Sóc", "Sơn,", "Thành", "phố", "Hà", "Nội"], 440)
    fields = card_fields(group_lines(words))
    assert fields["place_of_origin"].value == "Xã Phù Linh, Huyện Sóc Sơn, Thành phố Hà Nội"


@pytest.mark.parametrize("beside", [False, True])
def test_an_english_half_misread_without_its_colon_stays_part_of_its_label(beside: bool) -> None:
    # "Place of origin:" read "Place ot onigin)": two letters off and its colon read as a
    # bracket. It is the Vietnamese half's other half, not the start of the value.
    label = ["Quê", "quán", "/", "Place", "ot", "onigin)"]
    value = ["Xã", "Diễn", "Kỷ,", "Huyện", "Diễn", "Châu,", "Tỉnh", "Nghệ", "An"]
    rows = [label + value] if beside else [label, value]
    words = [w for k, texts in enumerate(rows) for w in _row(texts, 405 + 36 * k)]
    fields = card_fields(group_lines(words))
    assert fields["place_of_origin"].value == "Xã Diễn Kỷ, Huyện Diễn Châu, Tỉnh Nghệ An"
    # Words unlike the field's English label after its Vietnamese half are the value.
    words = _row(["Quê", "quán", "/", "Phường", "Ô", "Chợ", "Dừa,", "Hà", "Nội"], 405)
    assert card_fields(group_lines(words))["place_of_origin"].value == "Phường Ô Chợ Dừa, Hà Nội"


def test_a_label_two_rows_down_does_not_cut_the_name_short() -> None:
    # A card photographed close: its labels read tall. "Quốc tịch / Nationality" starts right
    # of the name's last word, two rows down, past the date of birth's label: it bounds the
    # nationality's value, not the name's column (the geometry of a capture that lost "TUYẾT").
    def words(texts: list[tuple[str, int, int]], top: int, bottom: int) -> list[Word]:
        return [Word(t, x0, top, x1, bottom, 95.0) for t, x0, x1 in texts]

    label = words(
        [("Họ", 289, 320), ("và", 328, 360), ("tên", 368, 410), ("name:", 418, 471)], 275, 312
    )
    name = words([("TRỊNH", 317, 400), ("PHƯƠNG", 410, 500), ("TUYẾT", 510, 580)], 309, 337)
    born = words(
        [
            ("Ngày", 292, 340),
            ("sinh", 348, 390),
            ("/", 398, 404),
            ("Date", 412, 450),
            ("of", 458, 470),
            ("birth:", 478, 492),
            ("11/03/2000", 500, 640),
        ],
        345,
        378,
    )
    sex = words(
        [("Giới", 290, 330), ("tính", 338, 380), ("Sex", 388, 405), ("Nữ", 415, 450)], 387, 415
    )
    nationality = words(
        [
            ("Quốc", 551, 600),
            ("tịch", 608, 640),
            ("Nationality:", 648, 734),
            ("Việt", 742, 790),
            ("Nam", 798, 840),
        ],
        377,
        417,
    )
    fields = card_fields(group_lines(label + name + born + sex + nationality))
    assert fields["full_name"].value == "TRỊNH PHƯƠNG TUYẾT"
    assert fields["nationality"].value == "Việt Nam"


@pytest.mark.parametrize("speck_top", [453, 440])
def test_a_tall_speck_left_of_a_value_does_not_lift_it_onto_its_labels_row(speck_top: int) -> None:
    # A photograph's edge read as a tall word joins the value's line, whose top is then the
    # label's row, or above it (the line sorts before its label): the value is found by where
    # its own words stand in the label's column.
    spans = [("Quê", 326, 360), ("quán", 368, 420), ("/", 428, 432), ("Place", 440, 490)]
    spans += [("of", 498, 515), ("origin:", 523, 585)]
    label = [Word(t, x0, 451, x1, 472, 95.0) for t, x0, x1 in spans]
    speck = [Word("đất", 200, speck_top, 300, 545, 40.0)]
    value = [
        Word(t, x0, 497, x1, 540, 95.0)
        for t, x0, x1 in (("Phường", 327, 420), ("Kinh", 430, 490), ("Bắc,", 500, 560))
    ]
    fields = card_fields(group_lines(label + speck + value))
    assert fields["place_of_origin"].value == "Phường Kinh Bắc"


def test_specks_of_the_background_are_left_out_of_an_address() -> None:
    label = _row(["Nơi", "thường", "trú", "/", "Place", "of", "residence:"], 480)
    first = _row(["Số", "53", "Điện", "&", "Biên", "Phủ,"], 510)
    second = _row(["Xã", "“", "Hòa", "Phước,", "Đà", "Nẵng"], 546)
    first[3] = replace(first[3], confidence=16.0)  # a speck: no letter, low confidence
    second[1] = replace(second[1], confidence=30.0)
    fields = card_fields(group_lines(label + first + second))
    assert fields["place_of_residence"].value == "Số 53 Điện Biên Phủ, Xã Hòa Phước, Đà Nẵng"
    assert fields["place_of_residence"].confidence == 0.95
    first[3] = replace(first[3], text="&", confidence=90.0)  # read with confidence: kept
    kept = card_fields(group_lines(label + first + second))
    assert "Điện & Biên" in kept["place_of_residence"].value


def test_a_damaged_read_is_told_from_a_zone_of_the_right_shape() -> None:
    good = ("IDVNM2003047525040200304752<<<", "0005050M4005058VNM<<<<<<<<<<<9", "MAI<<DUC")
    assert well_formed(good)
    doubled = (good[0], "0" + good[1][:-1], good[2])  # a digit doubled, the last one lost
    assert not well_formed(doubled)
    across = (good[0], good[1].replace("58VNM", "5BVNM"), good[2])  # "B" read for "8"
    assert not well_formed(across)
    assert not well_formed(good[:2])


def test_a_look_alike_in_a_field_its_own_digit_confirms_leaves_the_read_sound() -> None:
    good = ("IDVNM2003047525040200304752<<<", "0005050M4005058VNM<<<<<<<<<<<9", "MAI<<DUC")
    broken = (good[0], good[1][:-1] + "3", good[2])  # the composite digit printed wrong
    m = parse_td1(broken)
    assert m is not None and m.failed == ("composite",)
    assert sound(broken, m)
    round_o = ("IDVNM2O03047525040200304752<<<", *broken[1:])  # "O" read in the document number
    assert not well_formed(round_o)
    assert sound(round_o, m)  # its own check digit says which digit it is
    assert sound(("IDVNM2O003047525040200304752<<<", *broken[1:]), m)  # and read twice
    # Where only the composite covers the letter, nothing confirms it.
    in_personal = ("IDVNM2003047525O40200304752<<<", *broken[1:])
    assert not sound(in_personal, m)
    # Nor where the field's own digit fails too.
    both = parse_td1((good[0], good[1][:6] + "1" + good[1][7:-1] + "3", good[2]))
    assert both is not None and "birth_date" in both.failed
    assert sound((good[0], "0005051" + both.lines[1][7:], good[2]), both)
    assert not sound((good[0], "OOO5051" + both.lines[1][7:], good[2]), both)
    # A read giving another zone is not the same reading.
    assert not sound(("IDVNM2O03047525040200304752<<<", good[1], good[2]), m)
    assert not sound(good, m)  # undamaged, but not what m has
    # A chevron read as a "K" amid the fillers, in place of one or besides them, weighs
    # nothing in any check digit: the read is as good as undamaged.
    assert sound((good[0], broken[1][:20] + "K" + broken[1][21:], good[2]), m)
    assert sound((good[0], broken[1][:20] + "K" + broken[1][20:], good[2]), m)


def test_chevrons_read_as_k_amid_the_fillers_are_fillers() -> None:
    # OCR-B's thin chevrons in a long run: the recognizer reads one, or two run together, as
    # a "K", and the line comes out a character too long, its composite digit pushed out.
    good = ("IDVNM1877642117001187764211<<<", "8708298F2708296VNM<<<<<<<<<<<2", "LUONG<<BICH")
    assert parse_td1(good) is not None and parse_td1(good).valid  # type: ignore[union-attr]
    for line2 in (
        "8708298F2708296VNM<<<K<<<<<<<<2",  # one too many
        "8708298F2708296VNM<<<<<<<<<<K<2",  # one too many, by the digit
        "8708298F2708296VNM<<K<K<<<<<<<<2",  # two, one a filler
        "8708298F2708296VNM<<<<K<<<<<<2",  # one for a filler
    ):
        m = combine_reads([(good[0], line2, good[2])])
        assert m is not None and m.valid and m.lines[1] == good[1], line2
    # A "K" of a name is a letter, and a wrong digit stays wrong.
    m = combine_reads([(good[0], "8708298F2708296VNM<<<K<<<<<<<<3", good[2])])
    assert m is not None and not m.valid


def test_a_name_row_read_without_the_surname_s_double_filler_gets_it_back() -> None:
    good = ("IDVNM1710612611027171061261<<<", "7103081F3103083VNM<<<<<<<<<<<8")
    m = parse_td1((*good, "TA<TUYET<QUYEN<<<<<<<<<<<<<<<<"))
    assert m is not None and m.lines[2] == "TA<<TUYET<QUYEN<<<<<<<<<<<<<<<"
    assert (m.surname, m.given_names) == ("TA", "TUYET QUYEN")
    kept = parse_td1((*good, "TA<<TUYET<QUYEN<<<<<<<<<<<<<<<"))
    assert kept is not None and kept.lines[2] == "TA<<TUYET<QUYEN<<<<<<<<<<<<<<<"
    twice = parse_td1((*good, "VO<<<THUY<TRANG<<<<<<<<<<<<<<<"))  # a chevron read twice
    assert twice is not None and twice.lines[2] == "VO<<THUY<TRANG<<<<<<<<<<<<<<<<"


def _zone_band(lines: tuple[str, str, str], px: int = 30) -> np.ndarray:
    """The three lines drawn in OCR-B on paper, as a band of the zone."""
    from PIL import Image, ImageDraw

    from saoy.clients.simulator.templates import OCR_B, load_font

    font = load_font(OCR_B[0], px)
    width = int(font.getlength("<" * 30)) + 4 * px
    image = Image.new("L", (width, 6 * px), 235)
    draw = ImageDraw.Draw(image)
    for k, line in enumerate(lines):
        draw.text((2 * px, int((1 + 1.4 * k) * px)), line, font=font, fill=20)
    return np.asarray(image)


def test_the_composite_digit_is_told_by_its_glyph_against_the_zone_s_confirmed_digits() -> None:
    from saoy.core.documents.analysis import _composite_glyph_digit, _mended_composite

    name = "MAI<<XUAN<HIEU".ljust(30, "<")
    good = ("IDVNM0623103038036062310303<<<", "6212210M<<<<<<0VNM<<<<<<<<<<<1", name)
    band = _zone_band(good)
    lost = parse_td1((good[0], good[1][:-1] + "<", good[2]))  # the digit read as nothing
    assert lost is not None and lost.failed == ("composite",)
    assert _composite_glyph_digit(band, lost) == "1"
    mended = _mended_composite(lost, [(good[0], good[1][:-1], good[2])], band, date(2026, 1, 1))
    assert mended.valid and mended.lines[1] == good[1]
    # A digit printed that none of the confirmed fields holds is not guessed.
    other = (good[0], good[1][:-1] + "9", good[2])
    assert _composite_glyph_digit(_zone_band(other), lost) == ""
    # Nor is anything told where the band does not come apart into the zone's characters.
    assert _composite_glyph_digit(band[: band.shape[0] // 2], lost) == ""


def test_specks_past_the_fillers_of_a_name_row_are_not_the_name() -> None:
    good = ("IDVNM0683353758079068335375<<<", "6806286M2806284VNM<<<<<<<<<<<8")
    m = parse_td1((*good, "KIEU<<QUOC<AN<<<<<<KBB<<<<<<<<"))
    assert m is not None and m.lines[2] == "KIEU<<QUOC<AN<<<<<<<<<<<<<<<<<"


def test_a_tall_speck_beside_three_rows_does_not_join_them_into_one_line() -> None:
    speck = [Word(";'Ề.", 45, 400, 90, 500, 20.0)]  # a photograph's edge, read as text
    origin = _row(["Quê", "quán", "/", "Place", "of", "origin:"], 405)
    value = _row(["Phường", "Bãi", "Cháy,", "Tỉnh", "Quảng", "Ninh"], 440)
    residence = _row(["Nơi", "thường", "trú", "/", "Place", "of", "residence:"], 475)
    lines = group_lines(speck + origin + value + residence)
    assert [ln.text for ln in lines[1:]] == [
        "Quê quán / Place of origin:",
        "Phường Bãi Cháy, Tỉnh Quảng Ninh",
        "Nơi thường trú / Place of residence:",
    ]
    assert card_fields(lines)["place_of_origin"].value == "Phường Bãi Cháy, Tỉnh Quảng Ninh"


def _tilted(texts: list[str], top: int, rise: float, x: int = 300) -> list[Word]:
    """A row of words on a tilted capture, ``rise`` pixels higher per 100 across; a word
    with a horn and a tone mark ("thường") stands taller than the others."""
    words = []
    for t in texts:
        y = round(top - rise * (x - 300) / 100)
        tall = 14 if "ư" in t else 0
        words.append(Word(t, x, y - tall, x + 14 * len(t), y + 24, 95.0))
        x += 14 * len(t) + 10
    return words


def test_on_a_tilted_capture_a_row_s_words_stay_on_their_row() -> None:
    # The text rises to the right, and a photograph's edge left of the text, read as a tall
    # word, reaches over two rows: a word that overlaps both the speck and the word before
    # it on its row joins the row it follows closely.
    speck = [Word("đnn", 60, 400, 280, 482, 30.0)]
    origin = _tilted(
        [
            "Quê",
            "quán",
            "/",
            "Place",
            "of",
            "origin:",
            "Hoằng",
            "Quỳ,",
            "Hoằng",
            "Hóa,",
            "Thanh",
            "Hóa",
        ],
        420,
        2,
    )
    residence = _tilted(
        ["Nơi", "thường", "trú", "/", "Place", "of", "residence:", "Thôn", "Hạ,", "Thanh", "Hóa"],
        456,
        2,
    )
    lines = group_lines(speck + origin + residence)
    texts = [ln.text for ln in lines]
    assert "Quê quán / Place of origin: Hoằng Quỳ, Hoằng Hóa, Thanh Hóa" in texts
    assert "Nơi thường trú / Place of residence: Thôn Hạ, Thanh Hóa" in texts
    fields = card_fields(lines)
    assert fields["place_of_origin"].value == "Hoằng Quỳ, Hoằng Hóa, Thanh Hóa"
    assert fields["place_of_residence"].value == "Thôn Hạ, Thanh Hóa"


def test_a_word_joins_the_row_it_lies_on_not_a_label_boxed_over_it() -> None:
    # A tight capture: the label's last word read with a box reaching past the name's last
    # word's left and half over its row; the name's last word lies fully on the name's row.
    label = [
        Word(t, x0, y0, x1, y1, 95.0)
        for t, x0, y0, x1, y1 in (
            ("Họ", 433, 390, 480, 452),
            ("và", 488, 391, 525, 453),
            ("tên", 533, 392, 580, 454),
            ("/Full", 589, 393, 720, 457),
        )
    ]
    name = [
        Word(t, x0, y0, x1, y1, 99.0)
        for t, x0, y0, x1, y1 in (
            ("ĐINH", 442, 433, 555, 479),
            ("TUẤN", 568, 431, 680, 478),
            ("HIẾU", 698, 430, 790, 477),
        )
    ]
    lines = group_lines(label + name)
    assert [ln.text for ln in lines] == ["Họ và tên /Full", "ĐINH TUẤN HIẾU"]


def test_a_value_printed_larger_than_its_label_is_not_taken_for_the_value_above() -> None:
    # The residence's value, in print more than twice its label's height, is a line of its
    # own that starts above its label's line: the origin's value, under its label, ends
    # there and does not take it.
    origin = _row(["Quê", "quán", "/", "Place", "of", "origin:"], 400)
    value = _row(
        ["Xã", "Phú", "Thượng,", "Huyện", "Phú", "Vang,", "Tỉnh", "Thừa", "Thiên", "Huế"], 430
    )
    label = [
        Word(w.text, w.left, 482, w.right, 498, 95.0)
        for w in _row(["Nơi", "thường", "trú", "/", "Place", "of", "residence:"], 0)
    ]
    big = [
        Word(t, label[-1].right + 10 + 70 * k, 466, label[-1].right + 70 + 70 * k, 508, 95.0)
        for k, t in enumerate(["Tổ", "12,", "Xã", "Vinh", "Thanh"])
    ]
    wrapped = _row(["Huyện", "Phú", "Vang,", "Tỉnh", "Thừa", "Thiên", "Huế"], 515)
    fields = card_fields(group_lines(origin + value + label + big + wrapped))
    assert fields["place_of_origin"].value == "Xã Phú Thượng, Huyện Phú Vang, Tỉnh Thừa Thiên Huế"
    assert fields["place_of_residence"].value.startswith("Tổ 12, Xã Vinh Thanh")


def test_a_label_s_first_word_boxed_tall_stays_on_its_row() -> None:
    # "Nơi" surely read, its box taking in a mark of the guilloche above it (more than twice
    # the row's height): still the label's first word, so the label begins where the value
    # under it begins, and the value is read whole.
    label = _row(["Nơi", "cư", "trú", "/", "Place", "of", "residence:"], 300)
    label[0] = replace(label[0], top=266, bottom=334)
    value = _row(["Ấp", "3,", "Tân", "An,", "Ninh", "Kiều,", "Cần", "Thơ"], 340)
    lines = group_lines(label + value)
    assert lines[0].text == "Nơi cư trú / Place of residence:"
    assert card_fields(lines)["place_of_residence"].value == "Ấp 3, Tân An, Ninh Kiều, Cần Thơ"
    # A tall speck read unsurely beside a row does not join it.
    label[0] = replace(label[0], confidence=40.0)
    assert group_lines(label + value)[0].text == "Nơi"


def test_a_value_ends_at_the_row_of_a_label_that_begins_left_of_its_column() -> None:
    # A 2024 back: the issue date's label begins left of the place of birth's column and
    # reaches into it, its English half read without its colon ("Date of"), its date in
    # larger print a line of its own that starts above the label's line. The place of birth
    # ends there, not with "21/11/2024 Date of".
    label = _row(["Nơi", "đăng", "ký", "khai", "sinh", "/", "Place", "of", "birth:"], 180)
    value = _row(["Phường", "Hồng", "Gai,", "Thành", "phố", "Hạ", "Long"], 214)
    issue = [
        Word(w.text, w.left - 240, w.top, w.right - 240, w.bottom, 95.0)
        for w in _row(["Ngày,", "tháng,", "năm", "cấp", "/", "Date", "of"], 272)
    ]
    date_ = [Word("21/11/2024", issue[-1].right + 60, 266, issue[-1].right + 210, 292, 96.0)]
    fields = card_fields(group_lines(label + value + issue + date_))
    assert fields["place_of_birth"].value == "Phường Hồng Gai, Thành phố Hạ Long"
    assert fields["issue_date"].value == "21/11/2024"


def test_a_speck_read_as_a_letter_between_the_name_s_label_and_the_name_is_passed_over() -> None:
    label = _row(["Họ,", "chữ", "đệm", "và", "tên", "khai", "sinh", "/", "Surname:"], 327)
    speck = [Word("z", 408, 350, 417, 357, 25.0)]
    name = _row(["NGUYỄN", "MINH", "KHOA"], 362)
    fields = card_fields(group_lines(label + speck + name))
    assert fields["full_name"].value == "NGUYỄN MINH KHOA"


def test_a_speck_between_the_halves_of_a_bilingual_label_is_not_its_value() -> None:
    row = _row(["Quốc", "tịch", "/", "M", "Nationality:", "Việt", "Nam"], 536)
    row[3] = replace(row[3], confidence=59.0)  # a speck of the guilloche read as a letter
    assert card_fields(group_lines(row))["nationality"].value == "Việt Nam"


def test_two_reads_that_each_misread_a_different_character_make_one_right_zone() -> None:
    person = docgen.random_person(9)
    l1, l2, l3 = docgen.mrz_lines(person)
    last = "0" if l2[-1] != "0" else "8"
    first = (l1, l2[:-1] + last, l3)  # the MRZ-only read: its composite digit misread
    i = 2
    page = (l1, l2[:i] + ("7" if l2[i] != "7" else "1") + l2[i + 1 :], l3)  # a birth digit
    combined = combine_reads([first, page], date(2025, 6, 1))
    assert combined is not None and combined.valid and combined.lines[1] == l2
    # A zone both reads agree is wrong stays wrong: check digits choose, never invent.
    wrong = combine_reads([first, first], date(2025, 6, 1))
    assert wrong is not None and not wrong.valid


def test_a_digit_read_round_twice_and_a_one_read_as_j_are_read_right() -> None:
    # A card without expiry photographed from above, read alike by both readers: its expiry
    # digit "0" read "O0", and the composite digit "1", its foot taken for a hook, read "J".
    l1 = "IDVNM0622488491048062248849<<<"
    l2 = "6203308M<<<<<<0VNM<<<<<<<<<<<1"
    l3 = "NGUYEN<<DINH<PHUC<<<<<<<<<<<<<"
    read = (l1, "6203308M<<<<<<O0VNM<<<<<<<<<<<J", l3)
    m = combine_reads([read, read], date(2025, 6, 1))
    assert m is not None and m.valid and m.lines == (l1, l2, l3)


def test_a_zone_whose_code_and_name_were_misread_as_look_alikes_is_still_found() -> None:
    # The page OCR read the card's code "ID" as "TD"; the MRZ reader read an "O" of the name
    # as "0" on a name row cut short: neither is taken for some other text.
    l1 = "IDVNM0683353758079068335375<<<"
    l2 = "6806286M2806284VNM<<<<<<<<<<<8"
    assert find_td1(["À", "T" + l1[1:], l2, "KIEU<<QUOC<AN<<<<<<<<<<<<<<<<<"]) is not None
    found = find_td1(["A", l1, l2, "KIEU<<QU0C<AN<<<<<<<<", "RB"])
    assert found == (l1, l2, "KIEU<<QUOC<AN<<<<<<<<")
    assert find_td1(["TDVNM is not a zone", l2]) is None


def test_a_speck_read_before_the_name_row_is_left_out_where_another_read_has_none() -> None:
    l1 = "IDVNM0696547889036069654788<<<"
    l2 = "6909208M2909200VNM<<<<<<<<<<<0"
    speck = (l1, l2, "BETA<<XUAN<HUNG<<<<<<<<<<<<<<<<<")  # the MRZ reader's, read first
    page = (l1, l2, "TA<<XUAN<HUNG<<<<<<<<<<<<<<<<<")
    m = combine_reads([speck, page], date(2025, 6, 1))
    assert m is not None and m.lines[2] == page[2]
    assert m.surname == "TA"


def test_a_character_read_twice_is_read_once_when_the_check_digits_say_so() -> None:
    today = date(2025, 6, 1)
    l1 = "IDVNM0765849911048076584991<<<"
    l2 = "7607165M3607167VNM<<<<<<<<<<<1"
    assert parse_td1((l1, l2, "PHAM<<CONG"), today).valid  # type: ignore[union-attr]
    doubled = ("IDVNM000765849911048076584991<", l2, "PHAM<<CONG")  # "0" read three times
    m = combine_reads([doubled, doubled], today)
    assert m is not None and m.valid and m.lines[0] == l1
    # A zone of the right length whose check digit is wrong gains no variant that passes.
    forged = (l1, l2[:-1] + "2", "PHAM<<CONG")
    assert not combine_reads([forged, forged], today).valid  # type: ignore[union-attr]


def test_a_card_without_expiry_keeps_its_shape_when_a_digit_was_read_twice() -> None:
    l1 = "IDVNM1575145039036157514503<<<"
    l2 = "5711303F<<<<<<0VNM<<<<<<<<<<<8"
    read = (l1, "5711303F<<<<<<0QVNM<<<<<<<<<<<8", "VO<<THUY<QUYEN")  # "0" read as "0Q"
    m = combine_reads([read, read], date(2025, 6, 1))
    assert m is not None and m.valid and m.lines[1] == l2 and m.expiry_date is None


def test_a_character_read_twice_and_a_speck_past_the_line_s_end_leave_its_check_digit() -> None:
    l1 = "IDVNM1622584552001162258455<<<"
    l2 = "6205184F<<<<<<0VNM<<<<<<<<<<<9"
    # "0" read as "O0" and the card's edge past the composite digit read as a "Q".
    read = (l1, "6205184F<<<<<<O0VNM<<<<<<<<<<<9Q", "LUONG<<KIM<DUNG")
    m = combine_reads([read, read], date(2025, 6, 1))
    assert m is not None and m.valid and m.lines[1] == l2
    # A wrong composite digit read the same way stays wrong.
    forged = (l1, "6205184F<<<<<<O0VNM<<<<<<<<<<<7Q", "LUONG<<KIM<DUNG")
    m = combine_reads([forged, forged], date(2025, 6, 1))
    assert m is not None and m.failed == ("composite",)


def test_a_label_of_the_column_to_the_left_does_not_end_a_wrapped_address() -> None:
    label = _row(["Nơi", "thường", "trú", "/", "Place", "of", "residence:", "Thôn", "Đông,"], 996)
    # The expiry label under the photo, its dash reaching into the address's column, then
    # the address's second line on the same row.
    expiry = [
        Word(t, x, 1041, x + 14 * len(t), 1065, 95.0)
        for t, x in (("Có", 40), ("giá", 90), ("trị", 150), ("đến:", 200), ("—", 290))
    ]
    rest = _row(["Phường", "Vĩnh", "Ninh,", "Tỉnh", "Thừa", "Thiên", "Huế"], 1041)
    fields = card_fields(group_lines(label + expiry + rest))
    assert fields["place_of_residence"].value == (
        "Thôn Đông, Phường Vĩnh Ninh, Tỉnh Thừa Thiên Huế"
    )


def test_a_label_running_across_the_column_ends_the_value_above_it() -> None:
    label = _row(["Nơi", "đăng", "ký", "khai", "sinh", "/", "Place", "of", "birth:"], 213)
    value = _row(["Phường", "An", "Cư,", "Thành", "phố", "Cần", "Thơ"], 250)
    # The issue date's label starts left of the column, its English half and date inside it.
    issue = [Word(t, x, 309, x + 14 * len(t), 333, 95.0)
             for t, x in (("Ngày,", 34), ("tháng,", 120), ("năm", 220), ("cấp", 280),
                          ("/", 330), ("Date", 350), ("of", 420), ("issue:", 460),
                          ("21/05/2026", 560))]  # fmt: skip
    fields = card_fields(group_lines(label + value + issue))
    assert fields["place_of_birth"].value == "Phường An Cư, Thành phố Cần Thơ"
    assert fields["issue_date"].value == "21/05/2026"


def test_a_date_whose_label_is_read_half_garbled_is_found_by_its_english_word() -> None:
    words = _row(["Ngày,", "gày", ".tnana.", "hết", "e", "h", "hạn", "/", "Date", "ate", "°",
                  "f", "expiry:", "16/07/2036"], 277)  # fmt: skip
    assert card_fields(group_lines(words))["expiry_date"].value == "16/07/2036"


def test_a_short_label_word_inside_an_address_is_no_label() -> None:
    label = _row(["Nơi", "thường", "trú", "/", "Place", "of", "residence:"], 489)
    first = _row(["Số", "55", "Lê", "Lợi,", "Xã", "Bình", "Mỹ,"], 518)
    second = _row(["Huyện", "Củ", "Chi,", "Thành", "phố", "Hồ", "Chí", "Minh"], 554)  # "hethan"?
    fields = card_fields(group_lines(label + first + second))
    assert fields["place_of_residence"].value == (
        "Số 55 Lê Lợi, Xã Bình Mỹ, Huyện Củ Chi, Thành phố Hồ Chí Minh"
    )


def test_a_filler_read_as_k_after_a_vietnamese_name_is_a_filler() -> None:
    l1, l2, _ = docgen.mrz_lines(docgen.random_person(4))
    name = "PHAM<<DIEU<VAN".ljust(30, "<")
    for misread in ("PHAM<<DIEU<VANK", "PHAM<<DIEU<VAN<K", "PHAMK<<DIEU<VAN"):
        m = parse_td1((l1, l2, misread.ljust(30, "<")), date(2025, 1, 1))
        assert m is not None and m.lines[2] == name, misread
        assert (m.surname, m.given_names) == ("PHAM", "DIEU VAN")
    # Elsewhere a name may end in K.
    m = parse_td1((SPECIMEN[0], SPECIMEN[1], "NOVAK<<ERIK".ljust(30, "<")), date(2010, 1, 1))
    assert m is not None and m.surname == "NOVAK"


def test_a_card_date_read_a_digit_short_is_uncertain() -> None:
    assert short_date("birth: 9/05/1956") and short_date("19/5/1956")
    assert not short_date("birth: 19/05/1956") and not short_date("no date here")
    label = ["Ngày,", "tháng,", "năm", "sinh", "/", "Date", "of", "birth:"]
    lost = card_fields(group_lines(_row([*label, "9/05/1956"], 300)))
    assert lost["date_of_birth"].value == "09/05/1956"
    assert lost["date_of_birth"].confidence <= 0.3  # the MRZ or the QR code puts it right
    whole = card_fields(group_lines(_row([*label, "19/05/1956"], 300)))
    assert whole["date_of_birth"].confidence == 0.95


def test_a_soft_photographed_card_qr_code_is_read() -> None:
    import zxingcpp
    from PIL import Image

    from saoy.core.documents.qr import find_qr_codes

    gray = np.ascontiguousarray(np.asarray(Image.open(QR_SAMPLES / "card_qr_photographed.png")))
    formats = zxingcpp.BarcodeFormats(zxingcpp.BarcodeFormat.QRCode)
    assert not zxingcpp.read_barcodes(gray, formats=formats, try_rotate=True)  # locally: lost
    codes = find_qr_codes(gray)
    assert len(codes) == 1
    card = parse_card_qr(codes[0].text)
    assert card.well_formed and card.id_number == "048207896033"


def test_the_nationality_is_found_after_its_label_read_garbled() -> None:
    row = _row(["Quốc", "tịch", "/", "Nadonality;", "Việt", "Nam", "'"], 300)
    fields = card_fields(group_lines(row))
    assert fields["nationality"].value == "Việt Nam"
    assert fields["nationality"].confidence == 0.95


def test_a_nationality_read_one_letter_off_is_viet_nam_read_unsurely() -> None:
    for misread in (["Việt", "lam"], ["Vlệt", "Nam"], ["Việt", "Nem"]):
        row = _row(["Quốc", "tịch", "/", "Nationality:", *misread], 300)
        found = card_fields(group_lines(row))["nationality"]
        assert found.value == "Việt Nam" and found.confidence < 0.8, misread
    # Two letters off is no reading of it: left as read.
    row = _row(["Quốc", "tịch", "/", "Nationality:", "Vlệt", "lam"], 300)
    assert card_fields(group_lines(row))["nationality"].value == "Vlệt lam"


# The zone of a card without expiry (fillers, check digit 0), as the 2024 card prints it.
NO_EXPIRY_ZONE = (
    "IDVNM1610349091048161034909<<<",
    "6109167F<<<<<<0VNM<<<<<<<<<<<5",
    "LY<<THU<DUNG<<<<<<<<<<<<<<<<<<",
)


def test_a_letter_read_into_line_2_is_left_out_and_its_last_check_digit_kept() -> None:
    today = date(2025, 6, 1)
    assert parse_td1(NO_EXPIRY_ZONE, today).valid  # type: ignore[union-attr]
    l1, l2, l3 = NO_EXPIRY_ZONE
    # "0" read as "OQ" (a letter O, then a Q): 31 characters, the composite digit last.
    read = (l1, l2.replace("<0VNM", "<OQVNM"), l3)
    m = combine_reads([read, read], today)
    assert m is not None and m.valid and m.lines[1] == l2
    # The same card with its document-number digit forged: the zone is read as printed and
    # the wrong digit, on line 1 that both reads gave undamaged, is proven, though line 2
    # was damaged in both.
    forged_l1 = l1[:14] + "8" + l1[15:]
    forged = (forged_l1, read[1], l3)
    m = combine_reads([forged, forged], today)
    assert m is not None and m.lines[1] == l2 and "document_number" in m.failed
    assert proven_failures([forged, forged], m) == ("document_number",)
    # Read two ways after the document number (in the personal number): still proven.
    later = (forged_l1[:20] + "7" + forged_l1[21:], read[1], l3)
    m = combine_reads([forged, later], today)
    assert m is not None and proven_failures([forged, later], m) == ("document_number",)
    # The document number read two ways: a wrong digit there may be a misread, nothing is
    # proven.
    other = (forged_l1[:8] + "7" + forged_l1[9:], read[1], l3)
    m = combine_reads([forged, other], today)
    assert m is not None and not m.valid and proven_failures([forged, other], m) == ()


def test_a_wrong_date_digit_is_proven_only_by_two_undamaged_reads_of_its_field() -> None:
    today = date(2025, 6, 1)
    l1, l2, l3 = NO_EXPIRY_ZONE
    wrong = (l1, l2[:6] + "3" + l2[7:], l3)  # the birth date's check digit forged
    m = combine_reads([wrong, wrong], today)
    assert m is not None and proven_failures([wrong, wrong], m) == ("birth_date", "composite")
    # Damage after the birth date (a filler lost) says nothing of it: still proven, the
    # composite (over both whole lines) no longer.
    short = (l1, wrong[1][:20] + wrong[1][21:], l3)
    m = combine_reads([wrong, short], today)
    assert m is not None and proven_failures([wrong, short], m) == ("birth_date",)
    # A "0" read "O0" (a look-alike read twice) is the same reading: both proven.
    doubled = (l1, wrong[1].replace("<0VNM", "<O0VNM"), l3)
    m = combine_reads([wrong, doubled], today)
    assert m is not None and proven_failures([wrong, doubled], m) == ("birth_date", "composite")
    # A read with a character doubled before it, or a look-alike in it, proves nothing.
    shifted = (l1, "6" + wrong[1][:-1], l3)
    m = combine_reads([wrong, shifted], today)
    assert m is not None and "birth_date" in m.failed
    assert proven_failures([wrong, shifted], m) == ()
    across = (l1, wrong[1][:2] + "O" + wrong[1][3:], l3)  # "0" read as "O"
    m = combine_reads([wrong, across], today)
    assert m is not None and proven_failures([wrong, across], m) == ()


def test_a_digit_dropped_or_read_twice_is_mended_when_one_edit_makes_every_check_right() -> None:
    today = date(2025, 6, 1)
    good = ("IDVNM2003047525040200304752<<<", "0005050M4005058VNM<<<<<<<<<<<9", "MAI<<DUC")
    inserted = (good[0][:8] + "4" + good[0][8:], good[1], good[2])  # a 4 read into line 1
    dropped = (good[0][:8] + good[0][9:], good[1], good[2])  # line 1's "3" lost
    for read in (inserted, dropped):
        m = combine_reads([read, read], today)
        assert m is not None and m.valid and m.lines[:2] == good[:2], read
    # A digit lost from a run of like digits can be put back in several places that all
    # pass: no edit is taken, the zone stays as read (an official compares).
    ambiguous = (good[0], good[1][:2] + good[1][3:], good[2])  # "000505" read "00505"
    m = combine_reads([ambiguous, ambiguous], today)
    assert m is not None and not m.valid
    # A forged check digit on a line read one character long gains no mending that passes.
    forged = (good[0], good[1][:-1] + "2", good[2])
    long = (forged[0][:8] + "4" + forged[0][8:], forged[1], forged[2])
    m = combine_reads([long, long], today)
    assert m is not None and not m.valid


def test_a_q_where_a_digit_stands_is_read_as_the_0_or_the_9_the_check_digits_choose() -> None:
    today = date(2025, 6, 1)
    good = ("IDVNM2003047525040200304752<<<", "0005050M4005058VNM<<<<<<<<<<<9", "MAI<<DUC")
    read = (good[0], good[1][:-1] + "Q", good[2])  # the composite 9 read as a Q
    m = combine_reads([read, read], today)
    assert m is not None and m.valid and m.lines[1] == good[1]
    # A composite digit that is wrong on the card stays wrong, read as a Q or not.
    forged = (good[0], good[1][:-1] + "3", good[2])
    assert not combine_reads([forged, forged], today).valid  # type: ignore[union-attr]
    zero = ("IDVNM2003047525040200304752<<<", "0005050M4005058VNM<<<<<<<<<<<0", "MAI<<DUC")
    assert not combine_reads([zero, (zero[0], zero[1][:-1] + "Q", zero[2])], today).valid  # type: ignore[union-attr]


def test_a_name_line_read_without_its_trailing_fillers_is_still_the_zone_s_third_line() -> None:
    lines = [
        "IDVNM1579759791031157975979<<<",
        "5708286F<<<<<<0VNM<<<<<<<<<<<3",
        "LE<<NGOC<YEN<<<",  # the fillers that end it read as three
    ]
    assert find_td1(["a label", *lines]) == tuple(lines)
    # Without a name line after it, the zone is not found from two lines.
    assert find_td1(lines[:2]) is None


def test_a_line_2_read_alone_proves_a_wrong_date_digit_but_nothing_of_line_1() -> None:
    today = date(2025, 6, 1)
    l1, l2, l3 = NO_EXPIRY_ZONE
    wrong = (l1[:14] + "7" + l1[15:], l2[:6] + "3" + l2[7:], l3)  # two digits forged
    m = combine_reads([wrong], today)
    assert m is not None and {"document_number", "birth_date"} <= set(m.failed)
    page = find_line2(["Nơi cư trú / Place of residence", wrong[1], "LY<<THU<DUNG"])
    assert page == wrong[1]
    assert proven_failures([wrong, ("", page, "")], m) == ("birth_date",)
    # Only a line of exactly the zone's shape counts: a damaged one is no line 2.
    assert find_line2([wrong[1].replace("<0VNM", "<O0VNM"), "7702059M37020"]) is None


def test_an_mrz_band_scanned_large_is_scaled_down_and_one_scanned_at_350_dpi_is_not() -> None:
    def band(pitch: int) -> tuple[np.ndarray, list[Line]]:
        """A card's MRZ, its lines ``pitch`` pixels apart, as the page OCR found it."""
        words = [
            Word(text, 100, 600 + k * pitch, 100 + 20 * pitch, 600 + k * pitch + pitch * 3 // 4, 90)
            for k, text in enumerate(NO_EXPIRY_ZONE)
        ]
        return np.full((600 + 5 * pitch, 200 + 20 * pitch), 235, np.uint8), group_lines(words)

    large, lines = band(96)  # a card at about 750 dpi
    assert _mrz_crop(large, lines).shape[1] < 0.6 * large.shape[1]
    small, lines = band(44)  # about 350 dpi: read as scanned, padded with paper
    assert _mrz_crop(small, lines).shape[1] > small.shape[1]


def test_of_readings_the_check_digits_cannot_tell_apart_a_digit_read_beats_a_letter() -> None:
    today = date(2025, 6, 1)
    l1, l2, l3 = NO_EXPIRY_ZONE
    forged = l2[:-1] + "9"  # the composite digit wrong on the card (5 is right)
    letter = (l1, l2[:-1] + "Q", l3)  # the MRZ-only read: the 9 read as a Q
    digit = (l1, forged + "Q", l3)  # the page OCR: the 9 read, then a speck read as a Q
    m = combine_reads([letter, digit], today)
    assert m is not None and m.lines[1] == forged and m.failed == ("composite",)


def test_a_line_read_a_place_off_whose_check_digits_pass_by_chance_is_read_right() -> None:
    # A broken card (its composite digit wrong: 6 where 2 is due) photographed: a "Q" read after
    # the expiry's digit and a filler lost put "QVN" for the nationality, and the composite
    # happens to pass on that reading. A Vietnamese card's "VNM" one place off is a line read a
    # place off: the "0Q" read once and the filler put back, the wrong digit is proven.
    line1 = "IDVNM0579395352022057939535<<<"
    shifted = "5705148M<<<<<<0QVNM<<<<<<<<<<6"
    name = "PHAN<<QUANG<XUAN<TIEN<<<<<<<<<"
    assert not well_formed((line1, shifted, name))
    reads = [(line1, shifted, name), (line1, shifted, name)]
    m = combine_reads(reads)
    assert m is not None and m.lines[1] == "5705148M<<<<<<0VNM<<<<<<<<<<<6"
    assert m.nationality == "VNM" and [c.field for c in m.checks if not c.ok] == ["composite"]
    assert proven_failures(reads, m) == ("composite",)
