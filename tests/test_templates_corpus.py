"""The template document generator itself: MRZ check digits, ID numbers, truth per edition and
side, capture geometry, determinism."""

from __future__ import annotations

import random
from datetime import date

import numpy as np
import pytest

from saoy.clients.simulator import capture as cap
from saoy.clients.simulator import templates as tpl
from saoy.clients.simulator.corpus import templates_corpus
from saoy.core.documents.provinces import PROVINCES

FRONT_FIELDS = {"id_number", "full_name", "date_of_birth", "sex", "nationality"}
TRUTH = {
    ("cccd_front", "2021"): FRONT_FIELDS | {"place_of_origin", "place_of_residence", "expiry_date"},
    ("cccd_back", "2021"): {"issue_date", "mrz"},
    ("cccd_front", "2024"): FRONT_FIELDS,
    ("cccd_back", "2024"): {
        "place_of_residence",
        "place_of_birth",
        "issue_date",
        "expiry_date",
        "mrz",
    },
}


def test_check_digit_matches_the_icao_example() -> None:
    # ICAO 9303 part 3: document number "L898902C3" checks with 6, "740812" with 2.
    assert tpl.mrz_check("L898902C3") == "6"
    assert tpl.mrz_check("740812") == "2"
    assert tpl.mrz_check("120415") == "9"


def test_the_generator_gives_each_province_its_official_code() -> None:
    assert set(tpl.PROVINCE_CODES) == set(tpl.PLACES)
    for province, code in tpl.PROVINCE_CODES.items():
        official = PROVINCES[code]
        assert official == province or official.endswith(" " + province), (province, code)


@pytest.mark.parametrize("seed", range(40))
def test_persons_have_valid_numbers_and_mrz(seed: int) -> None:
    rng = random.Random(seed)
    p = tpl.random_person(rng, tpl.EDITIONS[seed % 2])
    n = p.id_number
    assert len(n) == 12 and n.isdigit() and n[:3] in PROVINCES
    century = 0 if p.date_of_birth.year < 2000 else 2
    assert int(n[3]) == century + (p.sex == "Nữ")
    assert n[4:6] == f"{p.date_of_birth.year % 100:02d}"
    assert p.full_name == p.full_name.strip() and p.full_name.istitle()
    lines = tpl.mrz_lines(p)
    assert [len(line) for line in lines] == [30, 30, 30]
    assert lines[0].startswith("IDVNM" + n[3:]) and n in lines[0]
    assert lines[1][7] == ("M" if p.sex == "Nam" else "F") and lines[1][15:18] == "VNM"
    assert tpl.mrz_checks_ok(lines)
    assert all(c.isascii() for c in lines[2]) and "<<" in lines[2]
    assert not tpl.mrz_checks_ok(tpl.break_mrz(lines, rng))
    if p.expiry_date is not None:
        assert p.issue_date < p.expiry_date


def test_expiry_follows_the_age_milestones() -> None:
    born = date(2000, 5, 10)
    assert tpl.expiry_for(born, date(2021, 6, 1)) == date(2025, 5, 10)
    assert tpl.expiry_for(born, date(2023, 6, 1)) == date(2040, 5, 10)  # within two years
    assert tpl.expiry_for(date(1960, 1, 1), date(2021, 6, 1)) is None


def test_ascii_name_drops_diacritics() -> None:
    assert tpl.ascii_name("Đặng Thị Thu Hương") == "DANG THI THU HUONG"


@pytest.mark.parametrize("edition", tpl.EDITIONS)
def test_truth_fields_per_edition_and_side(edition: str) -> None:
    rng = random.Random(3)
    p = tpl.random_person(rng, edition)
    front, back = tpl.card(p, edition, rng, 200)
    for doc in (front, back):
        assert set(doc.fields) == TRUTH[(doc.kind, edition)]
        assert doc.edition == edition
        w, h = doc.image.size
        assert all(
            0 <= ln.box[0] < ln.box[2] <= w and 0 <= ln.box[1] < ln.box[3] <= h for ln in doc.lines
        )
        drawn = " ".join(ln.text for ln in doc.lines)
        for name in ("id_number", "date_of_birth", "issue_date"):
            if name in doc.fields:
                assert doc.fields[name] in drawn
    assert front.fields["full_name"] == p.full_name.upper()
    assert back.fields["mrz"].split("\n") == list(tpl.mrz_lines(p))
    assert [ln.text for ln in back.lines if ln.role == "mrz"] == list(tpl.mrz_lines(p))


def test_broken_mrz_is_marked_and_printed() -> None:
    rng = random.Random(9)
    p = tpl.random_person(rng, "2024")
    _, back = tpl.card(p, "2024", rng, 200, broken_mrz=True)
    assert back.defect == "mrz_check"
    assert not tpl.mrz_checks_ok(back.fields["mrz"].split("\n"))


@pytest.mark.parametrize("style", cap.STYLES)
def test_capture_boxes_stay_inside_the_image(style: str) -> None:
    rng = random.Random(5)
    p = tpl.random_person(rng, "2021")
    front, _ = tpl.card(p, "2021", rng, 300)
    got = cap.capture(front, style, 17)
    w, h = got.image.size
    assert got.image.mode == "RGB" and min(w, h) >= 300
    assert got.lines
    for line in got.lines:
        left, top, right, bottom = line.box
        assert 0 <= left < right <= w and 0 <= top < bottom <= h
    if style in cap.GOOD_STYLES:
        assert len(got.lines) == len(front.lines)
    if style == "cut_off":
        assert len(got.lines) < len(front.lines)


def test_capture_is_deterministic_by_seed() -> None:
    def make(seed: int) -> bytes:
        rng = random.Random(seed)
        p = tpl.random_person(rng, "2024")
        _, back = tpl.card(p, "2024", rng, 200)
        return cap.capture(back, "tight", seed).data

    assert make(4) == make(4)
    assert make(4) != make(5)


def test_corpus_is_deterministic_and_valid_cards_are_in_date() -> None:
    a = next(templates_corpus(1, 11))
    b = next(templates_corpus(1, 11))
    assert a.name == b.name and a.today == b.today
    assert [p.data for p in a.pages] == [p.data for p in b.pages]
    assert np.array_equal(np.asarray(a.pages[0].image), np.asarray(b.pages[0].image))
    assert a.expect == "pass" and not a.defect
    expiry = next(p.fields["expiry_date"] for p in a.pages if "expiry_date" in p.fields)
    issued = next(p.fields["issue_date"] for p in a.pages if "issue_date" in p.fields)
    day = a.today.strftime("%Y%m%d")
    assert "/".join(reversed(issued.split("/"))).replace("/", "") <= day
    if expiry != tpl.NO_EXPIRY:
        assert day < "".join(reversed(expiry.split("/")))


def test_missing_font_names_the_package(monkeypatch: pytest.MonkeyPatch) -> None:
    tpl.check_fonts()
    fam = tpl.FONT_FAMILIES[2]
    monkeypatch.setattr(tpl.Path, "is_file", lambda self: False)
    with pytest.raises(tpl.MissingFont, match=f"apt-get install {fam.package}"):
        tpl.load_font(fam.regular, 997)
