"""Validity rules, each proven both ways on hand-built page analyses (no OCR involved)."""

from __future__ import annotations

from dataclasses import replace
from datetime import date

import pytest

from saoy.clients.simulator import docgen
from saoy.core.documents import CCCD_BACK, GENERIC, DossierAnalysis, Field, PageAnalysis
from saoy.core.documents.analysis import (
    BLANK,
    ROTATED,
    quarter_turns_upright,
    read_turned,
)
from saoy.core.documents.mrz import parse_td1
from saoy.core.documents.qr import parse_card_qr
from saoy.core.documents.rules import (
    card_not_expired,
    certifiable,
    document_complete,
    dossier_checks,
    fields_agree,
    id_number_structure,
    mrz_check_digits,
    page_resolution,
    page_usable,
    qr_code,
    seal_present,
)
from saoy.core.documents.seal import Seal
from saoy.core.model import Outcome

PASS, WARN, FAIL = Outcome.PASS, Outcome.WARN, Outcome.FAIL
TODAY = date(2025, 6, 1)
PERSON = replace(
    docgen.random_person(3), issue_date=date(2023, 1, 10), expiry_date=date(2032, 8, 8)
)


def _dmy(d: date) -> str:
    return d.strftime("%d/%m/%Y")


def front(person: docgen.Person = PERSON, conf: float = 0.95, **kw: object) -> PageAnalysis:
    fields = (
        Field("id_number", person.id_number, conf),
        Field("full_name", person.full_name.upper(), conf),
        Field("date_of_birth", _dmy(person.date_of_birth), conf),
        Field("sex", person.sex, conf),
        Field("nationality", person.nationality, conf),
        Field("place_of_residence", person.place_of_residence, conf),
        Field("expiry_date", _dmy(person.expiry_date), conf),
    )
    base = PageAnalysis(
        index=0,
        document_type="cccd_front",
        confidence=0.95,
        variant="2021",
        fields=fields,
        mean_confidence=90.0,
        qr=parse_card_qr(docgen.cccd_qr_payload(person)),
        aspect=1.5625,
    )
    return replace(base, **kw)  # type: ignore[arg-type]


def back(
    person: docgen.Person = PERSON, mrz: tuple[str, str, str] | None = None, **kw: object
) -> PageAnalysis:
    parsed = parse_td1(mrz or docgen.mrz_lines(person), TODAY)
    base = PageAnalysis(
        index=1,
        document_type="cccd_back",
        confidence=0.95,
        variant="2021",
        fields=(Field("issue_date", _dmy(person.issue_date), 0.95),),
        mean_confidence=90.0,
        mrz=parsed,
        mrz_reads_agree=True,
        mrz_found=True,
        aspect=1.5625,
    )
    return replace(base, **kw)  # type: ignore[arg-type]


def outcomes(checks: object) -> set[Outcome]:
    return {c.outcome for c in checks}  # type: ignore[attr-defined]


def test_a_valid_card_passes_every_check() -> None:
    checks = dossier_checks([front(), back()], TODAY)
    assert outcomes(checks) == {PASS}, [c for c in checks if c.outcome is not PASS]
    names = {c.name for c in checks}
    assert {
        "page_usable",
        "decree_23_certifiable",
        "document_complete",
        "mrz_check_digits",
        "qr_code",
        "id_number_structure",
        "fields_agree",
        "card_not_expired",
    } <= names
    assert DossierAnalysis((front(), back()), checks).outcome is PASS


@pytest.mark.parametrize("defect", docgen.MRZ_DEFECTS[:4])
def test_mrz_check_digit_wrong_fails_when_read_the_same_twice(defect: str) -> None:
    page = back(mrz=docgen.broken_mrz(PERSON, defect))
    check = mrz_check_digits(page)
    assert check is not None and check.outcome is FAIL
    assert defect.removesuffix("_check").replace("number", "document_number") in check.reason


def test_mrz_check_digit_wrong_but_reads_disagree_is_a_warning() -> None:
    page = back(mrz=docgen.broken_mrz(PERSON, "birth_check"), mrz_reads_agree=False)
    check = mrz_check_digits(page)
    assert check is not None and check.outcome is WARN and "misread" in check.reason


def test_unreadable_mrz_is_a_warning_with_a_rescan_hint() -> None:
    check = mrz_check_digits(replace(back(), mrz=None))
    assert check is not None and check.outcome is WARN and "rescan" in check.reason
    assert mrz_check_digits(back()) == mrz_check_digits(back())  # stable, pure
    assert mrz_check_digits(back()).outcome is PASS  # type: ignore[union-attr]


def test_mrz_of_another_person_fails_agreement_though_its_digits_are_right() -> None:
    b = back(mrz=docgen.broken_mrz(PERSON, "other_person"))
    assert mrz_check_digits(b).outcome is PASS  # type: ignore[union-attr]
    checks = fields_agree(front(), b)
    assert any(c.outcome is FAIL and "id number" in c.reason for c in checks)
    assert all(PERSON.id_number not in c.reason for c in checks)  # no ID numbers in reasons


def test_qr_of_another_person_fails_agreement() -> None:
    other = docgen.random_person(99)
    f = front(qr=parse_card_qr(docgen.cccd_qr_payload(other)))
    checks = fields_agree(f, None)
    failed = [c for c in checks if c.outcome is FAIL]
    assert failed and all("QR" in c.reason for c in failed)
    assert outcomes(fields_agree(front(), None)) == {PASS}


def test_disagreement_on_a_low_confidence_reading_is_a_warning_not_a_failure() -> None:
    other = replace(PERSON, date_of_birth=date(1976, 3, 9))
    qr = parse_card_qr(docgen.cccd_qr_payload(PERSON))
    f = front(person=other, conf=0.5, qr=qr)  # only the printed birth date differs
    checks = fields_agree(f, back())
    assert outcomes(checks) == {WARN}
    assert all("date of birth" in c.reason and "uncertain" in c.reason for c in checks)
    sure = fields_agree(front(person=other, conf=0.95, qr=qr), back())
    assert outcomes(sure) == {FAIL}


def test_a_printed_value_one_character_off_the_qr_is_a_warning_however_sure() -> None:
    assert PERSON.date_of_birth == date(1967, 8, 8)
    qr = parse_card_qr(docgen.cccd_qr_payload(PERSON))
    one_off = replace(PERSON, date_of_birth=date(1967, 8, 18))  # 18/08 read for 08/08
    checks = fields_agree(front(person=one_off, conf=0.99, qr=qr), back())
    assert outcomes(checks) == {WARN} and all("uncertain" in c.reason for c in checks)
    two_off = replace(PERSON, date_of_birth=date(1976, 8, 8))  # two digits swapped
    assert FAIL in outcomes(fields_agree(front(person=two_off, conf=0.99, qr=qr), back()))


def test_id_number_structure_both_ways() -> None:
    born, sex = PERSON.date_of_birth, PERSON.sex
    ok = id_number_structure("page 1", PERSON.id_number, 0.95, born, sex, True)
    assert ok.outcome is PASS
    for defect, words in (
        ("province", "province"),
        ("century", "4th digit"),
        ("birth_year", "birth year"),
    ):
        bad = docgen.broken_id_number(PERSON, defect).id_number
        check = id_number_structure("page 1", bad, 0.95, born, sex, True)
        assert check.outcome is FAIL and words in check.reason, (defect, check)
        unsure = id_number_structure("page 1", bad, 0.5, born, sex, True)
        assert unsure.outcome is WARN
    assert id_number_structure("page 1", "12345", 0.95, born, sex, True).outcome is WARN


def test_century_digit_for_a_woman_born_in_2005() -> None:
    n = "001305123456"  # Hà Nội, female born in the 21st century, 2005
    assert id_number_structure("p", n, 0.95, date(2005, 1, 2), "Nữ", True).outcome is PASS
    assert id_number_structure("p", n, 0.95, date(2005, 1, 2), "Nam", True).outcome is FAIL
    assert id_number_structure("p", n, 0.95, date(1905, 1, 2), "Nữ", True).outcome is FAIL


def test_expiry_both_ways_and_no_expiry() -> None:
    f = front()
    assert card_not_expired(f, None, TODAY).outcome is PASS
    assert card_not_expired(f, None, date(2040, 1, 1)).outcome is FAIL
    forever = replace(f, fields=(Field("expiry_date", "Không thời hạn", 0.9),))
    assert card_not_expired(forever, None, date(2090, 1, 1)).outcome is PASS
    unreadable = replace(f, fields=())
    assert card_not_expired(unreadable, None, TODAY).outcome is WARN
    # The MRZ's expiry stands in when the printed one is missing.
    assert card_not_expired(unreadable, back(), TODAY).outcome is PASS
    assert card_not_expired(unreadable, back(), date(2040, 1, 1)).outcome is FAIL


def test_confidential_page_is_refused_under_decree_23() -> None:
    assert certifiable(front()).outcome is PASS
    check = certifiable(front(confidential="MẬT"))
    assert check.outcome is FAIL and "23/2015" in check.reason and "MẬT" in check.reason
    assert certifiable(front(mean_confidence=40.0)).outcome is WARN  # illegible, worn


def test_seal_rule_both_ways() -> None:
    page = PageAnalysis(index=0, document_type="birth_certificate", confidence=0.9)
    seal = Seal(0.6, 0.7, 0.08, 0.98, 0.4)
    assert seal_present(replace(page, seals=(seal,))).outcome is PASS  # type: ignore[union-attr]
    assert seal_present(replace(page, seals=())).outcome is WARN  # type: ignore[union-attr]
    assert seal_present(page).outcome is WARN  # type: ignore[union-attr]  # no colour
    assert seal_present(front()) is None


def test_page_conditions() -> None:
    page = PageAnalysis(index=2, document_type="generic", confidence=1.0)
    assert page_usable(page).outcome is PASS
    blank = page_usable(replace(page, condition="blank"))
    assert blank.outcome is FAIL and "page 3 is blank" in blank.reason
    assert page_usable(replace(page, condition="no_text")).outcome is FAIL
    turned = page_usable(replace(page, condition="rotated", rotation=180))
    assert turned.outcome is WARN and "180°" in turned.reason and "rescan" in turned.reason


def test_a_card_with_missing_fields_asks_for_a_rescan() -> None:
    assert document_complete(front()).outcome is PASS  # type: ignore[union-attr]
    cut = document_complete(front(missing=("place_of_residence",), aspect=3.1))
    assert cut is not None and cut.outcome is WARN
    assert "cut off" in cut.reason and "rescan" in cut.reason


def test_qr_rule_both_ways() -> None:
    assert qr_code(front(), back()).outcome is PASS  # type: ignore[union-attr]
    # A code too soft to read: the zone on the back, its check digits right, vouches instead.
    unread = qr_code(front(qr=None), back())
    assert unread is not None and unread.outcome is PASS and "machine-readable" in unread.reason
    # Not when the zone was not read, nor when a check digit of it fails.
    assert qr_code(front(qr=None), replace(back(), mrz=None)).outcome is WARN  # type: ignore[union-attr]
    broken = list(docgen.mrz_lines(PERSON))
    broken[1] = broken[1][:-1] + str((int(broken[1][-1]) + 1) % 10)
    assert qr_code(front(qr=None), back(mrz=tuple(broken))).outcome is WARN  # type: ignore
    assert qr_code(front(qr=None), None).outcome is WARN  # type: ignore[union-attr]
    hello = parse_card_qr("hello")
    assert qr_code(front(qr=hello), back()).outcome is FAIL  # type: ignore[union-attr]


def test_the_2024_card_carries_its_qr_code_on_the_back() -> None:
    qr = parse_card_qr(docgen.cccd_qr_payload(PERSON))
    new_front = front(qr=None, variant="2024")
    assert qr_code(new_front, back(qr=qr, variant="2024")).outcome is PASS  # type: ignore[union-attr]
    missing = qr_code(new_front, replace(back(variant="2024"), mrz=None))
    assert missing is not None and missing.outcome is WARN and "page 2" in missing.reason
    # The front alone, of an edition that carries no QR code there: nothing to check.
    assert qr_code(new_front, None) is None


def test_a_blank_page_fails_the_dossier_and_skips_content_rules() -> None:
    blank = PageAnalysis(index=0, document_type="generic", confidence=1.0, condition="blank")
    checks = dossier_checks([blank], TODAY)
    assert [c.name for c in checks] == ["page_usable"] and checks[0].outcome is FAIL


@pytest.mark.parametrize(
    ("page", "turns"),
    [
        (PageAnalysis(0, GENERIC, 0.0, condition=ROTATED, rotation=90), (3, 1)),
        (PageAnalysis(0, GENERIC, 0.0, condition=ROTATED, rotation=270), (1, 3)),
        (PageAnalysis(0, GENERIC, 0.0, condition=ROTATED, rotation=180), (2,)),
        (PageAnalysis(0, GENERIC, 0.2, mean_confidence=41.0), (2,)),  # upside down, unseen
        (PageAnalysis(0, GENERIC, 0.2, mean_confidence=88.0), ()),  # a legible other document
        (PageAnalysis(0, CCCD_BACK, 0.9, mean_confidence=41.0), ()),
        (PageAnalysis(0, GENERIC, 1.0, condition=BLANK), ()),
    ],
)
def test_which_turns_a_page_is_read_again_after(page: PageAnalysis, turns: tuple[int, ...]) -> None:
    assert quarter_turns_upright(page) == turns


def test_a_turned_reading_is_taken_only_when_it_reads_better() -> None:
    found = PageAnalysis(0, GENERIC, 0.0, condition=ROTATED, rotation=90)
    unsure = PageAnalysis(0, GENERIC, 0.2, mean_confidence=41.0)
    card = PageAnalysis(0, CCCD_BACK, 0.9, mean_confidence=90.0)
    letter = PageAnalysis(0, GENERIC, 0.3, mean_confidence=85.0)
    murky = PageAnalysis(0, GENERIC, 0.3, mean_confidence=45.0)
    taken = read_turned(found, card, 3)
    assert taken is not None and taken.rotation == 90 and taken.document_type == CCCD_BACK
    assert read_turned(found, letter, 3) == replace(letter, rotation=90)
    assert read_turned(found, murky, 3) is None
    assert read_turned(found, PageAnalysis(0, GENERIC, 0.0, condition=ROTATED), 3) is None
    assert read_turned(unsure, card, 2) == replace(card, rotation=180)
    assert read_turned(unsure, letter, 2) is None  # a guess must read as a known type
    assert page_usable(taken).reason == "page 1 is a document page, read after turning it 90°"


def test_a_card_is_judged_by_its_resolution_once_its_type_is_read() -> None:
    # 1000 x 631 px over the card's 85.6 mm: about 297 dpi.
    fine = page_resolution(front(size=(1000, 631)))
    assert fine is not None and fine.outcome is PASS and "297 dpi" in fine.reason
    # The gate let a 400 px card through as a page of unknown shape: read as a card, it is low.
    low = page_resolution(back(size=(400, 252)))
    assert low is not None and low.outcome is WARN
    assert "page 2" in low.reason and "rescan at 300 dpi" in low.reason
    assert page_resolution(front(size=(0, 0))) is None  # size unknown
    assert page_resolution(replace(front(size=(400, 252)), document_type=GENERIC)) is None
    names = {c.name: c.outcome for c in dossier_checks([front(size=(400, 252)), back()], TODAY)}
    assert names["page_resolution"] is WARN
