"""Validity rules over a dossier's analysed pages. Each yields named checks with a reason a
person can act on; anything uncertain is a WARN (an official looks), never a silent PASS.

Reasons name fields, never their values: ID numbers must not reach logs or metrics.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import date, datetime

from saoy.core.documents.analysis import (
    BLANK,
    ILLEGIBLE_CONFIDENCE,
    NO_TEXT,
    REQUIRED_FIELDS,
    ROTATED,
    PageAnalysis,
    is_card_shaped,
)
from saoy.core.documents.card import (
    NO_EXPIRY,
    SAME_TEXT,
    SURE,
    card_qr_of,
    mrz_values,
    one_apart,
    pairs,
    qr_values,
    similar,
)
from saoy.core.documents.classify import BIRTH_CERTIFICATE, CCCD_BACK, CCCD_FRONT, GENERIC
from saoy.core.documents.provinces import PROVINCES, gender_century_digit
from saoy.core.documents.text import ascii_upper, fold
from saoy.core.model import CheckResult, Outcome
from saoy.core.pages.admission import resolution_for, resolution_issue

PASS, WARN, FAIL = Outcome.PASS, Outcome.WARN, Outcome.FAIL


def _page(p: PageAnalysis) -> str:
    return f"page {p.index + 1}"


def _dmy(text: str | None) -> date | None:
    if not text:
        return None
    try:
        return datetime.strptime(text, "%d/%m/%Y").date()
    except ValueError:
        return None


def page_usable(p: PageAnalysis) -> CheckResult:
    """Blank pages, photographs with no document text, and pages turned the wrong way."""
    name = "page_usable"
    if p.condition == BLANK:
        return CheckResult(name, FAIL, f"{_page(p)} is blank: remove it or scan the document")
    if p.condition == NO_TEXT:
        return CheckResult(
            name,
            FAIL,
            f"{_page(p)} shows no document text: scan the document itself, flat and in focus",
        )
    if p.condition == ROTATED:
        return CheckResult(
            name,
            WARN,
            f"{_page(p)} is turned {p.rotation}°: place it upright and rescan",
        )
    if p.rotation:
        return CheckResult(
            name, PASS, f"{_page(p)} is a document page, read after turning it {p.rotation}°"
        )
    return CheckResult(name, PASS, f"{_page(p)} is an upright document page")


def certifiable(p: PageAnalysis) -> CheckResult:
    """Decree 23/2015/NĐ-CP art. 22: originals marked confidential, altered, damaged or
    illegible may not be certified."""
    name = "decree_23_certifiable"
    if p.confidential:
        return CheckResult(
            name,
            FAIL,
            f"{_page(p)} is marked '{p.confidential}': a confidential document may not be "
            "certified (Decree 23/2015/NĐ-CP, art. 22)",
        )
    if p.condition == OK_CONDITION and p.mean_confidence < ILLEGIBLE_CONFIDENCE:
        return CheckResult(
            name,
            WARN,
            f"{_page(p)} is hard to read (OCR confidence {p.mean_confidence:.0f}): it may be "
            "worn or damaged — rescan it, or an official must judge it",
        )
    return CheckResult(name, PASS, f"{_page(p)} bears no marking that forbids certification")


OK_CONDITION = "ok"


def document_complete(p: PageAnalysis) -> CheckResult | None:
    """Every field its type must show was found; a card missing some is likely cut off."""
    if p.document_type == GENERIC or p.condition != OK_CONDITION:
        return None
    name = "document_complete"
    label = p.document_type.replace("_", " ")
    missing = list(p.missing)
    if p.document_type == CCCD_BACK and p.mrz is None:
        missing.append("machine-readable zone")
    if not missing:
        return CheckResult(name, PASS, f"{_page(p)}: every {label} field was found")
    hint = "rescan it"
    if p.document_type in (CCCD_FRONT, CCCD_BACK):
        shape = "" if is_card_shaped(p) else "the card looks cut off; "
        hint = f"{shape}place the whole card in the frame and rescan"
    return CheckResult(name, WARN, f"{_page(p)}: {label} without {', '.join(missing)}: {hint}")


def page_resolution(p: PageAnalysis) -> CheckResult | None:
    """A document of a known size has enough pixels for its size: judged once its type is
    read, where the quality gate before OCR could only guess the type from the outline's shape
    (a card photographed at an angle can measure as an A4 page, and an A4 page as a card)."""
    if p.document_type not in (CCCD_FRONT, CCCD_BACK, BIRTH_CERTIFICATE) or 0 in p.size:
        return None
    name = "page_resolution"
    issue = resolution_issue(p.document_type, *p.size)
    if issue is not None:
        return CheckResult(name, WARN, f"{_page(p)}: {issue.message}")
    dpi = resolution_for(p.document_type, *p.size)
    return CheckResult(name, PASS, f"{_page(p)} was scanned at about {dpi:.0f} dpi")


def mrz_check_digits(p: PageAnalysis) -> CheckResult | None:
    """ICAO 9303 check digits of the TD1 zone: document number, birth date, expiry, composite."""
    if p.document_type != CCCD_BACK or p.condition != OK_CONDITION:
        return None
    name = "mrz_check_digits"
    m = p.mrz
    if m is None:
        return CheckResult(
            name, WARN, f"{_page(p)}: the machine-readable zone could not be read: rescan the card"
        )
    if m.valid:
        return CheckResult(name, PASS, f"{_page(p)}: all 4 MRZ check digits are correct")
    failed = ", ".join(m.failed)
    if p.mrz_reads_agree:
        return CheckResult(
            name,
            FAIL,
            f"{_page(p)}: MRZ check digit wrong for {failed} (read the same twice): the card "
            "may be forged or altered",
        )
    return CheckResult(
        name,
        WARN,
        f"{_page(p)}: MRZ check digit does not match for {failed}; it may be a misread — an "
        "official must compare it with the card",
    )


def qr_code(front: PageAnalysis | None, back: PageAnalysis | None) -> CheckResult | None:
    """The card's QR code is present and in a card's format, on the side its edition carries
    it (the front of the 2021 card, the back of the 2024 card). None when that side was not
    scanned or the edition cannot be told."""
    name = "qr_code"
    pages = [p for p in (front, back) if p is not None]
    found = card_qr_of(front, back)
    if found is not None:
        holder = next(p for p in pages if p.qr is found)
        return CheckResult(name, PASS, f"{_page(holder)}: the card's QR code was read")
    variant = next((p.variant for p in pages if p.variant), None)
    side = {"2021": CCCD_FRONT, "2024": CCCD_BACK}.get(variant or "")
    holder = next((p for p in pages if p.document_type == side), None)
    if holder is None:
        return None
    if holder.qr is not None:
        return CheckResult(
            name, FAIL, f"{_page(holder)}: the QR code does not hold an ID card's data"
        )
    zone = back.mrz if back is not None else None
    if zone is not None and zone.valid:
        # The code only repeats what the zone carries under its check digits (the card's
        # code is not signed): a code too soft to read leaves the zone to vouch for the card.
        return CheckResult(
            name,
            PASS,
            f"{_page(holder)}: the card's QR code could not be read; the machine-readable "
            "zone, its check digits right, confirms the card's data instead",
        )
    return CheckResult(
        name, WARN, f"{_page(holder)}: the card's QR code could not be read: rescan the card"
    )


def seal_present(p: PageAnalysis) -> CheckResult | None:
    """A birth certificate bears the registering office's red round seal."""
    if p.document_type != BIRTH_CERTIFICATE or p.condition != OK_CONDITION:
        return None
    name = "seal_present"
    if p.seals is None:
        return CheckResult(
            name, WARN, f"{_page(p)}: no colour image, so the seal could not be checked"
        )
    if p.seals:
        return CheckResult(name, PASS, f"{_page(p)}: a red round seal was found")
    return CheckResult(
        name,
        WARN,
        f"{_page(p)}: no red round seal found on the birth certificate: an official must check "
        "the original",
    )


def id_number_structure(
    source: str, number: str, conf: float, born: date | None, sex: str | None, sure: bool
) -> CheckResult:
    """The 12-digit number: province code, gender/century digit, birth-year digits."""
    name = "id_number_structure"
    if len(number) != 12 or not number.isdigit():
        return CheckResult(name, WARN, f"{source}: the ID number is not 12 digits")
    problems: list[str] = []
    unknown: list[str] = []
    if number[:3] not in PROVINCES:
        problems.append("its first 3 digits are not a province code")
        sure = True  # the number alone shows it
    if born is None:
        unknown.append("the birth year")
    else:
        if number[4:6] != f"{born.year % 100:02d}":
            problems.append("digits 5-6 are not the last two digits of the birth year")
        if sex in ("Nam", "Nữ"):
            expected = gender_century_digit(sex == "Nam", born.year)
            if expected is None or number[3] != str(expected):
                problems.append("the 4th digit does not match sex and century of birth")
        else:
            unknown.append("the sex")
    if problems:
        outcome = FAIL if conf >= SURE and sure else WARN
        tail = "" if outcome is FAIL else " (read with low confidence: an official must check)"
        return CheckResult(
            name, outcome, f"{source}: ID number invalid: {'; '.join(problems)}{tail}"
        )
    if conf < SURE or unknown:
        what = f"without {' and '.join(unknown)}" if unknown else "with low confidence"
        return CheckResult(
            name, WARN, f"{source}: ID number read {what}: it could not be fully checked"
        )
    return CheckResult(
        name, PASS, f"{source}: ID number structure agrees with province, sex and birth year"
    )


def _conf(p: PageAnalysis, field: str) -> float:
    f = p.field(field)
    return f.confidence if f else 0.0


def id_number_checks(pages: Sequence[PageAnalysis]) -> list[CheckResult]:
    out = []
    for p in pages:
        if p.condition != OK_CONDITION:
            continue
        number = p.value("id_number")
        if p.document_type == CCCD_FRONT and number:
            born = _dmy(p.value("date_of_birth")) or (p.qr.date_of_birth if p.qr else None)
            sex = p.value("sex") or (p.qr.sex if p.qr and p.qr.well_formed else None)
            sure = _conf(p, "date_of_birth") >= SURE and _conf(p, "sex") >= SURE
            out.append(
                id_number_structure(_page(p), number, _conf(p, "id_number"), born, sex, sure)
            )
        elif p.document_type == CCCD_BACK and p.mrz is not None and p.mrz.id_number:
            m = p.mrz
            sex = {"M": "Nam", "F": "Nữ"}.get(m.sex)
            conf = 0.99 if m.valid else 0.5
            out.append(
                id_number_structure(
                    f"{_page(p)} (MRZ)", m.id_number, conf, m.birth_date, sex, m.valid
                )
            )
        elif p.document_type == BIRTH_CERTIFICATE and number:
            born = _dmy(p.value("date_of_birth"))
            sex = p.value("sex")
            sure = _conf(p, "date_of_birth") >= SURE and _conf(p, "sex") >= SURE
            out.append(
                id_number_structure(_page(p), number, _conf(p, "id_number"), born, sex, sure)
            )
    return out


def fields_read(front: PageAnalysis | None, back: PageAnalysis | None) -> list[CheckResult]:
    """Every field a card's side must show was read with certainty: confirmed by the MRZ or
    the QR code, or read confidently as a plausible value of its field. An uncertain reading
    goes to an official, named with its page; it is never taken for an alteration."""
    name = "fields_read"
    out = []
    for p in (front, back):
        if p is None:
            continue
        required = REQUIRED_FIELDS.get((p.document_type, p.variant), ())
        unsure = [
            f.name.replace("_", " ") for f in p.fields if f.name in required and f.confidence < SURE
        ]
        if unsure:
            out.append(
                CheckResult(
                    name,
                    WARN,
                    f"{_page(p)}: {', '.join(unsure)} read uncertainly: an official must check "
                    "against the card",
                )
            )
    if not out and (front or back):
        where = " and ".join(_page(p) for p in (front, back) if p is not None)
        out.append(CheckResult(name, PASS, f"{where}: every field was read with certainty"))
    return out


def fields_agree(front: PageAnalysis | None, back: PageAnalysis | None) -> list[CheckResult]:
    """The printed fields, the MRZ and the QR code of one card say the same thing."""
    name = "fields_agree"
    where = " and ".join(_page(p) for p in (front, back) if p is not None)
    # (what, source a, value a, sure a, source b, value b, sure b, exact)
    comparisons: list[tuple[str, str, str, bool, str, str, bool, bool]] = []

    def printed(page: PageAnalysis | None, field: str) -> tuple[str, bool] | None:
        if page is None:
            return None
        f = page.field(field)
        # A value the print did not give (filled in from the MRZ or the QR code) is no reading.
        return (f.value, f.confidence >= SURE) if f and "ocr" in f.source else None

    mrz = back.mrz if back is not None else None
    mrz_vals = mrz_values(mrz, checked=False)  # compared even unchecked: a misread is a WARN
    qr_vals = qr_values(card_qr_of(front, back))
    mrz_sure = mrz is not None and mrz.valid
    for field in ("id_number", "date_of_birth", "sex", "expiry_date", "full_name",
                  "place_of_residence", "issue_date"):  # fmt: skip
        shown = printed(front, field) or printed(back, field)
        exact = field not in ("full_name", "place_of_residence")
        if shown is not None:
            value, sure = shown
            if field == "expiry_date" and value == NO_EXPIRY:
                continue
            if mrz_vals.get(field):
                comparisons.append(
                    (field, "printed", value, sure, "MRZ", mrz_vals[field], mrz_sure, exact)
                )
            if qr_vals.get(field):
                comparisons.append(
                    (field, "printed", value, sure, "QR", qr_vals[field], True, exact)
                )
        if mrz_vals.get(field) and qr_vals.get(field):
            comparisons.append(
                (field, "MRZ", mrz_vals[field], mrz_sure, "QR", qr_vals[field], True, exact)
            )
    if not comparisons:
        return []
    out: list[CheckResult] = []
    for field, sa, va, ka, sb, vb, kb, exact in comparisons:
        if field == "full_name" and "MRZ" in (sa, sb):
            va, vb = ascii_upper(va), ascii_upper(vb)
            if mrz is not None and len(mrz.lines[2].rstrip("<")) >= 29:
                n = min(len(va), len(vb))  # a long name is cut to fit 30 characters
                va, vb = va[:n], vb[:n]
        same = (
            fold(va) == fold(vb)
            if exact
            else similar(va, vb)
            >= (0.97 if field == "full_name" and "MRZ" not in (sa, sb) else SAME_TEXT)
        )
        if same:
            continue
        what = field.replace("_", " ")
        # Printed text read one character off an error-corrected source, or cut short of it, is
        # more likely misread than altered, however confident the OCR: an official compares,
        # nothing is issued.
        fa, fb = fold(va), fold(vb)
        cut_short = not exact and bool(fa and fb) and (fa.startswith(fb) or fb.startswith(fa))
        misread = "printed" in (sa, sb) and (one_apart(va, vb) or cut_short)
        if ka and kb and not misread and (exact or similar(va, vb) < 0.6):
            out.append(
                CheckResult(
                    name,
                    FAIL,
                    f"{where}: the {what} differs between {sa} and {sb}: the card may be altered",
                )
            )
        else:
            out.append(
                CheckResult(
                    name,
                    WARN,
                    f"{where}: the {what} may differ between {sa} and {sb} (uncertain reading): "
                    "an official must compare",
                )
            )
    if not out:
        sources = sorted({s for c in comparisons for s in (c[1], c[4])})
        out.append(
            CheckResult(
                name,
                PASS,
                f"{where}: {', '.join(sources)} agree on {len(comparisons)} comparison(s)",
            )
        )
    return out


def card_not_expired(
    front: PageAnalysis | None, back: PageAnalysis | None, today: date
) -> CheckResult:
    name = "card_not_expired"
    where = " and ".join(_page(p) for p in (front, back) if p is not None)
    for page in (front, back):
        if page is None:
            continue
        f = page.field("expiry_date")
        if f is None:
            continue
        if f.value == NO_EXPIRY:
            return CheckResult(name, PASS, f"{where}: the card has no expiry date")
        expiry = _dmy(f.value)
        if expiry is None:
            continue
        if expiry >= today:
            if f.confidence >= SURE:
                return CheckResult(name, PASS, f"{where}: valid until {f.value}")
            return CheckResult(name, WARN, f"{where}: expiry {f.value} read with low confidence")
        outcome = FAIL if f.confidence >= SURE else WARN
        return CheckResult(
            name,
            outcome,
            f"{where}: the card expired on {f.value}: an expired card cannot be certified",
        )
    mrz = back.mrz if back is not None else None
    if mrz is not None and mrz.expiry_date is not None and mrz.valid:
        if mrz.expiry_date >= today:
            return CheckResult(name, PASS, f"{where}: valid until {mrz.expiry_date:%d/%m/%Y} (MRZ)")
        return CheckResult(
            name, FAIL, f"{where}: the card expired on {mrz.expiry_date:%d/%m/%Y} (MRZ)"
        )
    return CheckResult(
        name, WARN, f"{where}: the expiry date could not be read: an official must check it"
    )


def kiosk_hints(pages: Sequence[PageAnalysis], hints: Mapping[int, str]) -> CheckResult | None:
    """The document types the kiosk's operator chose (page index -> type) against what the
    pages read as. A disagreement is a person's to settle: the operator pressed the wrong
    button, or the page is not what it seems. "generic" (any document) agrees with every
    type. None when the kiosk gave no hint."""
    if not hints:
        return None
    name = "kiosk_hints"
    disagree = []
    for p in pages:
        said = hints.get(p.index)
        if said is None or said in (GENERIC, p.document_type):
            continue
        reads = p.document_type.replace("_", " ") if p.condition == OK_CONDITION else p.condition
        disagree.append(f"{_page(p)} was chosen as {said.replace('_', ' ')} but reads as {reads}")
    if disagree:
        return CheckResult(name, WARN, "; ".join(disagree) + ": an official must check")
    return CheckResult(name, PASS, f"the kiosk's document types agree ({len(hints)} page(s))")


def dossier_checks(
    pages: Sequence[PageAnalysis], today: date, hints: Mapping[int, str] | None = None
) -> tuple[CheckResult, ...]:
    """Every check over the analysed pages of one dossier, in a stable order; ``hints``: the
    document types the kiosk named, by page index (see :func:`kiosk_hints`)."""
    checks: list[CheckResult] = []
    for p in pages:
        checks.append(page_usable(p))
        if p.condition in (BLANK, NO_TEXT):
            continue
        checks.append(certifiable(p))
        for rule in (page_resolution, document_complete, mrz_check_digits, seal_present):
            c = rule(p)
            if c is not None:
                checks.append(c)
    checks.extend(id_number_checks(pages))
    for front, back in pairs(pages):
        qr = qr_code(front, back)
        if qr is not None:
            checks.append(qr)
        checks.extend(fields_read(front, back))
        checks.extend(fields_agree(front, back))
        checks.append(card_not_expired(front, back, today))
    hinted = kiosk_hints(pages, hints or {})
    if hinted is not None:
        checks.append(hinted)
    return tuple(checks)
