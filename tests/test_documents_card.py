"""One identity per card: fields reconciled across a card's sides, and decisions that follow
certainty (hand-built page analyses, no OCR involved)."""

from __future__ import annotations

from dataclasses import replace
from datetime import date

from saoy.clients.simulator import docgen
from saoy.core.documents import Field, PageAnalysis, judge
from saoy.core.documents.card import corrected_name, reconcile
from saoy.core.documents.grammar import plausible
from saoy.core.documents.mrz import check_digit, parse_td1
from saoy.core.documents.qr import parse_card_qr
from saoy.core.model import Outcome

PASS, WARN, FAIL = Outcome.PASS, Outcome.WARN, Outcome.FAIL
TODAY = date(2025, 6, 1)
PERSON = replace(
    docgen.random_person(5), issue_date=date(2023, 1, 10), expiry_date=date(2032, 8, 8)
)


def dmy(d: date) -> str:
    return d.strftime("%d/%m/%Y")


def card(
    person: docgen.Person = PERSON,
    *,
    variant: str = "2021",
    conf: float = 0.95,
    qr: str | None = "",
    **printed: str,
) -> tuple[PageAnalysis, PageAnalysis]:
    """Front and back of one card as analysis reads them; ``printed`` overrides readings."""
    values = {
        "id_number": person.id_number,
        "full_name": person.full_name.upper(),
        "date_of_birth": dmy(person.date_of_birth),
        "sex": person.sex,
        "nationality": "Việt Nam",
    }
    back_values = {"issue_date": dmy(person.issue_date)}
    if variant == "2021":
        values |= {
            "place_of_origin": person.place_of_origin,
            "place_of_residence": person.place_of_residence,
            "expiry_date": dmy(person.expiry_date),
        }
    else:
        back_values |= {
            "place_of_residence": person.place_of_residence,
            "place_of_birth": person.place_of_origin,
            "expiry_date": dmy(person.expiry_date),
        }
    for k, v in printed.items():
        (values if k in values else back_values)[k] = v
    payload = docgen.cccd_qr_payload(person) if qr == "" else qr
    code = parse_card_qr(payload) if payload else None
    front = PageAnalysis(
        index=0,
        document_type="cccd_front",
        confidence=0.95,
        variant=variant,
        fields=tuple(Field(k, v, conf) for k, v in values.items() if v),
        mean_confidence=90.0,
        qr=code if variant == "2021" else None,
        aspect=1.5625,
    )
    back = PageAnalysis(
        index=1,
        document_type="cccd_back",
        confidence=0.95,
        variant=variant,
        fields=tuple(Field(k, v, conf) for k, v in back_values.items() if v),
        mean_confidence=90.0,
        mrz=parse_td1(docgen.mrz_lines(person), TODAY),
        mrz_reads_agree=True,
        mrz_found=True,
        qr=code if variant == "2024" else None,
        aspect=1.5625,
    )
    return front, back


def decided(pages: tuple[PageAnalysis, ...], today: date = TODAY) -> tuple[Outcome, list[str]]:
    analysis = judge(pages, today)
    bad = [c for c in analysis.checks if c.outcome is analysis.outcome]
    return analysis.outcome, [f"{c.name}: {c.reason}" for c in bad]


def test_a_valid_card_of_either_edition_is_certain_and_passes() -> None:
    for variant in ("2021", "2024"):
        outcome, why = decided(card(variant=variant))
        assert outcome is PASS, why
        front, _ = reconcile(card(variant=variant))
        assert front.field("id_number").source == "ocr+mrz+qr"  # type: ignore[union-attr]
        assert front.field("date_of_birth").confidence == 0.99  # type: ignore[union-attr]


def test_an_expired_card_read_with_certainty_is_rejected_as_expired() -> None:
    expired = replace(PERSON, expiry_date=date(2024, 3, 1))
    # The printed expiry read with little confidence, but the MRZ's check digits confirm it.
    outcome, why = decided(card(expired, conf=0.6, qr=docgen.cccd_qr_payload(expired)))
    assert outcome is FAIL and any(w.startswith("card_not_expired") for w in why), why


def test_an_unreadable_name_is_uncertain_never_an_alteration() -> None:
    front, back = card(full_name="'")
    outcome, why = decided((unsure(front, "full_name"), back))
    assert outcome is WARN, why
    assert any("full name" in w and "page 1" in w for w in why), why
    assert not plausible("full_name", "'")


def test_a_residence_cut_short_is_uncertain_never_an_alteration() -> None:
    short = PERSON.place_of_residence.rsplit(",", 1)[0]
    outcome, why = decided(card(place_of_residence=short))
    assert outcome is WARN, why


def test_an_address_read_a_character_or_two_off_the_qr_code_is_recorded_as_the_qr_has_it() -> None:
    # "Tổ 12," read "T0 121": the agreement check takes it for the QR's address, and the
    # record carries the QR's error-corrected spelling, not the misreading.
    truth = "Tổ 12, Xã Hòa Tiến, Huyện Hòa Vang, Thành phố Đà Nẵng"
    person = replace(PERSON, place_of_residence=truth)
    qr = docgen.cccd_qr_payload(person)
    read = "T0 121 Xã Hòa Tiến, Huyện Hòa Vang, Thành phố Đà Nẵng"
    pages = card(person, qr=qr, place_of_residence=read)
    assert decided(pages)[0] is PASS
    front, _ = reconcile(pages)
    assert front.value("place_of_residence") == truth
    assert front.field("place_of_residence").source == "ocr+qr"  # type: ignore[union-attr]
    # Another address is not the QR's: left as read, for the agreement check.
    other = "Tổ 3, Phường Bến Thành, Quận 1, Thành phố Hồ Chí Minh"
    front, _ = reconcile(card(person, qr=qr, place_of_residence=other))
    assert front.value("place_of_residence") == other


def test_two_certain_readings_that_disagree_are_rejected() -> None:
    other = docgen.random_person(77)
    outcome, why = decided(card(full_name=other.full_name.upper()))
    assert outcome is FAIL and any(w.startswith("fields_agree") for w in why), why
    born = dmy(replace(PERSON, date_of_birth=date(1970, 2, 3)).date_of_birth)
    assert decided(card(date_of_birth=born))[0] is FAIL


def unsure(page: PageAnalysis, name: str) -> PageAnalysis:
    fields = tuple(replace(f, confidence=0.6) if f.name == name else f for f in page.fields)
    return replace(page, fields=fields)


def test_a_letter_misread_with_little_confidence_is_put_right_by_the_mrz() -> None:
    name = PERSON.full_name.upper()
    i = next(k for k, ch in enumerate(name) if ch in "NMHT")
    misread = name[:i] + {"N": "H", "M": "N", "H": "N", "T": "I"}[name[i]] + name[i + 1 :]
    number_only = f"{PERSON.id_number}|{PERSON.full_name}|"  # a QR code that names no one else
    front, back = card(variant="2024", full_name=misread, qr=number_only)
    front, back = reconcile((unsure(front, "full_name"), back))
    fixed = front.field("full_name")
    assert fixed is not None and fixed.value == name and fixed.source == "ocr+mrz"
    assert decided((front, back))[0] is PASS


def test_a_digit_misread_with_little_confidence_is_put_right_an_altered_one_is_not() -> None:
    born = PERSON.date_of_birth
    altered = dmy(born.replace(year=born.year + (1 if born.year % 10 < 9 else -1)))
    outcome, why = decided(card(date_of_birth=altered))
    assert outcome is not PASS, why
    front, back = reconcile(card(date_of_birth=altered))
    front, back = reconcile((unsure(front, "date_of_birth"), back))
    assert front.value("date_of_birth") == dmy(born)


def test_the_mrz_name_keeps_the_printed_diacritics() -> None:
    assert corrected_name("HUỲNH TẦN PHÁI", "HUYNH TAN PHAT") == "HUỲNH TẦN PHÁT"
    assert corrected_name("NGUYỄN VĂN AN", "TRAN THI BICH NGOC") is None


def test_a_2024_card_s_qr_code_in_another_layout_confirms_the_number_only() -> None:
    payload = f"{PERSON.id_number}|123456789|{PERSON.full_name}|NGUYỄN VĂN CHA|001099001234|"
    front, back = reconcile(card(variant="2024", qr=payload))
    assert back.qr is not None and back.qr.well_formed and not back.qr.positional
    assert front.field("id_number").source == "ocr+mrz+qr"  # type: ignore[union-attr]
    assert decided((front, back))[0] is PASS


def test_a_field_the_print_did_not_give_is_taken_from_the_mrz() -> None:
    front, back = card(variant="2021")
    front = replace(
        front,
        fields=tuple(f for f in front.fields if f.name != "expiry_date"),
        missing=("expiry_date",),
    )
    front, back = reconcile((front, back))
    expiry = front.field("expiry_date")
    assert expiry is not None and expiry.source == "mrz" and not front.missing


def test_a_nationality_misread_is_put_right_by_the_mrz() -> None:
    assert plausible("nationality", "Việt Nam") and plausible("nationality", "VIỆT NAM")
    for misread in ("Vlệt Nam", "Việt lam"):
        assert not plausible("nationality", misread)
        front, back = card(nationality=misread)
        assert decided((front, back))[0] is Outcome.PASS, misread
        fixed = reconcile((front, back))[0].field("nationality")
        assert fixed is not None and fixed.value == "Việt Nam" and "mrz" in fixed.source


def _without_expiry(person: docgen.Person) -> tuple[str, str, str]:
    """The person's zone with fillers for the expiry (its check digit 0), as a card that does
    not expire carries it."""
    l1, l2, l3 = docgen.mrz_lines(person)
    l2 = l2[:8] + "<<<<<<0" + l2[15:29]
    return l1, l2 + str(check_digit(l1[5:30] + l2[0:7] + l2[8:15] + l2[18:29])), l3


def test_an_mrz_without_expiry_confirms_a_printed_no_expiry_read_unsurely() -> None:
    for variant in ("2021", "2024"):
        front, back = card(variant=variant, expiry_date="Không thời hạn")
        back = replace(back, mrz=parse_td1(_without_expiry(PERSON), TODAY))
        assert back.mrz is not None and back.mrz.valid and back.mrz.expiry_date is None
        side = 0 if variant == "2021" else 1
        pages = [front, back]
        page = pages[side]
        pages[side] = replace(
            page,
            fields=tuple(
                replace(f, confidence=0.14) if f.name == "expiry_date" else f for f in page.fields
            ),
        )
        reconciled = reconcile(tuple(pages))
        expiry = reconciled[side].field("expiry_date")
        assert expiry is not None and expiry.value == "Không thời hạn", variant
        assert expiry.confidence == 0.99 and "mrz" in expiry.source
        outcome, why = decided(tuple(pages))
        assert outcome is PASS, why
        # A date read unsurely where the zone says the card does not expire is not confirmed.
        pages[side] = replace(
            page,
            fields=tuple(
                replace(f, value="13/06/2031", confidence=0.14) if f.name == "expiry_date" else f
                for f in page.fields
            ),
        )
        expiry = reconcile(tuple(pages))[side].field("expiry_date")
        assert expiry is not None and expiry.confidence < 0.8
        assert decided(tuple(pages))[0] is not PASS


def _zone_read(back: PageAnalysis, line: int, at: int, char: str) -> PageAnalysis:
    lines = list(back.mrz.lines)  # type: ignore[union-attr]
    lines[line] = lines[line][:at] + char + lines[line][at + 1 :]
    return replace(back, mrz=parse_td1(tuple(lines), TODAY), mrz_reads_agree=True)


def test_a_zone_date_misread_alike_twice_is_mended_from_the_print_and_the_qr_code() -> None:
    front, back = card(variant="2024")
    day = back.mrz.lines[1][5]  # type: ignore[union-attr]
    misread = _zone_read(back, 1, 5, "1" if day == "7" else "7")  # a 7 read as a 1, twice
    assert misread.mrz is not None and misread.mrz.failed == ("birth_date", "composite")
    mended = reconcile((front, misread), TODAY)[1]
    assert mended.mrz is not None and mended.mrz.valid and mended.mrz.lines == back.mrz.lines
    assert mended.value("mrz_birth_date") == dmy(PERSON.date_of_birth)
    outcome, why = decided((front, misread))
    assert outcome is PASS, why
    # The QR code alone does not mend it: the print must say the same, surely read.
    unsure_print = replace(
        front,
        fields=tuple(
            replace(f, confidence=0.5) if f.name == "date_of_birth" else f for f in front.fields
        ),
    )
    assert reconcile((unsure_print, misread), TODAY)[1].mrz == misread.mrz
    # A wrong check digit is never mended: the zone is broken.
    check = back.mrz.lines[1][6]  # type: ignore[union-attr]
    broken = _zone_read(back, 1, 6, str((int(check) + 3) % 10))
    assert decided((front, broken))[0] is FAIL
    assert reconcile((front, broken), TODAY)[1].mrz == broken.mrz


def row_lines(back: PageAnalysis) -> tuple[str, str]:
    assert back.mrz is not None
    return back.mrz.lines[0], back.mrz.lines[1]


def test_a_name_row_one_letter_off_the_print_and_the_qr_code_is_put_right() -> None:
    # The zone's name row has no check digit: read "I" for "T" (or "T" for "I"), it is put
    # right from the name the QR code and a surely read print agree on.
    front, back = card()
    row = back.mrz.lines[2]  # type: ignore[union-attr]
    at = len(row.rstrip("<")) - 1
    misread = _zone_read(back, 2, at, "I" if row[at] != "I" else "T")
    _, fixed = reconcile((front, misread))
    assert fixed.mrz is not None and fixed.mrz.lines[2] == row
    assert fixed.mrz_reads_agree  # the check digits' proof is the reading's, left as it was
    doubled = row[:2] + row[1] + row[2:29]  # its second letter read twice, a filler lost
    _, fixed = reconcile((front, replace(misread, mrz=parse_td1((*row_lines(back), doubled)))))
    assert fixed.mrz is not None and fixed.mrz.lines[2] == row
    # Without the QR code, or with the print read unsurely, the row is left as read.
    _, kept = reconcile((replace(front, qr=None), misread))
    assert kept.mrz is not None and kept.mrz.lines[2] != row
    _, kept = reconcile((unsure(front, "full_name"), misread))
    assert kept.mrz is not None and kept.mrz.lines[2] != row
