"""One identity per card, reconciled across its pages.

Front and back of a card are one person. The MRZ, protected by its check digits, is the
authority for the number, the birth date, the sex and the expiry; its name (without
diacritics) confirms or corrects the letters of the printed name; the QR code, error-corrected,
confirms what it carries. A field two sources agree on is certain; the printed value keeps its
diacritics. A plausible printed reading one character off
an authority and read with little confidence (a misread) is put right from the authority; any
other difference is left as read, for the checks to judge; a field the print did not give is
taken from the authority.

A zone whose check digits fail where it reads a date or the number one character off what the
print and the QR code both say, and which that value makes whole, was misread there (a 7 read
as a 1 twice): the check digits, computed over the value the card's other sources give, prove
it. A wrong check digit itself is never mended so (a broken zone stays broken). The name row,
which no check digit covers, read one letter off the name the print and the QR code agree on,
is put right from them.
"""

from __future__ import annotations

import difflib
from collections.abc import Sequence
from dataclasses import replace
from datetime import date, datetime

from saoy.core.documents.analysis import OK, PageAnalysis, mrz_fields
from saoy.core.documents.classify import CCCD_BACK, CCCD_FRONT
from saoy.core.documents.fields import Field
from saoy.core.documents.grammar import plausible
from saoy.core.documents.mrz import Mrz, parse_td1
from saoy.core.documents.qr import CardQr
from saoy.core.documents.text import ascii_upper, fold

NO_EXPIRY = "Không thời hạn"  # printed where a card does not expire
SURE = 0.80  # a field read at least this confidently counts as read
CERTAIN = 0.99  # two sources agree
CORRECTED = 0.95  # a misread put right from an authority
NAME_FROM_MRZ = 0.5  # the MRZ's name alone: letters without diacritics, for a person to check

Pair = tuple[PageAnalysis | None, PageAnalysis | None]


def pairs(pages: Sequence[PageAnalysis]) -> list[Pair]:
    """Card fronts paired with backs: a back goes with the front just before (or after) it."""
    fronts = [p for p in pages if p.document_type == CCCD_FRONT and p.condition == OK]
    backs = [p for p in pages if p.document_type == CCCD_BACK and p.condition == OK]
    out: list[Pair] = []
    free = list(fronts)
    for b in backs:
        if not free:
            out.append((None, b))
            continue
        f = min(free, key=lambda f: (abs(f.index - b.index), f.index > b.index))
        free.remove(f)
        out.append((f, b))
    out.extend((f, None) for f in free)
    out.sort(key=lambda fb: min(p.index for p in fb if p is not None))
    return out


def card_qr_of(front: PageAnalysis | None, back: PageAnalysis | None) -> CardQr | None:
    """The card's QR code, from whichever side carries it (front 2021, back 2024)."""
    for page in (front, back):
        if page is not None and page.qr is not None and page.qr.well_formed:
            return page.qr
    return None


def mrz_values(mrz: Mrz | None, *, checked: bool = True) -> dict[str, str]:
    """What the MRZ says, in the printed fields' forms; with ``checked``, empty unless its
    check digits hold."""
    if mrz is None or (checked and not mrz.valid):
        return {}
    values = {
        "id_number": mrz.id_number or "",
        "date_of_birth": mrz.birth_date.strftime("%d/%m/%Y") if mrz.birth_date else "",
        "sex": {"M": "Nam", "F": "Nữ"}.get(mrz.sex, ""),
        "expiry_date": _mrz_expiry(mrz),
        "full_name": mrz.full_name,
        "nationality": "Việt Nam" if mrz.nationality == "VNM" else "",
    }
    return {k: v for k, v in values.items() if v}


def _mrz_expiry(mrz: Mrz) -> str:
    """The MRZ's expiry in the printed form: a date, or "Không thời hạn" where the zone holds
    fillers for it (a card without expiry; its check digit, a 0, covers the fillers too)."""
    if mrz.expiry_date is not None:
        return mrz.expiry_date.strftime("%d/%m/%Y")
    return NO_EXPIRY if mrz.lines[1][8:14] == "<" * 6 else ""


def qr_values(qr: CardQr | None) -> dict[str, str]:
    """What the QR code says that it surely says of the holder (see ``CardQr.positional``)."""
    if qr is None:
        return {}
    values = {"id_number": qr.id_number}
    if qr.positional:
        values |= {
            "date_of_birth": qr.date_of_birth.strftime("%d/%m/%Y") if qr.date_of_birth else "",
            "sex": qr.sex,
            "full_name": qr.full_name.upper(),
            "place_of_residence": qr.address,
            "issue_date": qr.issue_date.strftime("%d/%m/%Y") if qr.issue_date else "",
        }
    return {k: v for k, v in values.items() if v}


def one_apart(a: str, b: str) -> bool:
    """One character changed, added or dropped: what a misread does to a printed value."""
    a, b = fold(a), fold(b)
    if len(a) == len(b):
        return sum(x != y for x, y in zip(a, b, strict=True)) == 1
    longer, shorter = (a, b) if len(a) > len(b) else (b, a)
    return len(longer) == len(shorter) + 1 and any(
        longer[:k] + longer[k + 1 :] == shorter for k in range(len(longer))
    )


SAME_TEXT = 0.9
"""The folded similarity at which two readings of a name or an address are one text, a
character or two misread (an address's "Tổ 12," read "T0 121")."""


def similar(a: str, b: str) -> float:
    """How alike two texts are once folded, 0-1."""
    return difflib.SequenceMatcher(None, fold(a), fold(b)).ratio()


def mrz_name_matches(printed: str, mrz_name: str, truncated: bool) -> bool:
    a, b = ascii_upper(printed), ascii_upper(mrz_name)
    if truncated:
        n = min(len(a), len(b))
        a, b = a[:n], b[:n]
    return a == b


def corrected_name(printed: str, mrz_name: str) -> str | None:
    """``printed`` with the letters the MRZ's name shows misread put right, keeping the
    printed diacritics wherever the letter under them was read right; None when the two are
    too far apart to be one name misread."""
    plain = [ascii_upper(ch) or " " for ch in printed.upper()]
    target = ascii_upper(mrz_name)
    source = "".join(c[0] for c in plain)
    matcher = difflib.SequenceMatcher(None, source, target, autojunk=False)
    if matcher.ratio() < 0.8:
        return None
    out = []
    upper = printed.upper()
    for op, i1, i2, j1, j2 in matcher.get_opcodes():
        if op == "equal":
            out.append(upper[i1:i2])
        elif op in ("replace", "insert"):
            out.append(target[j1:j2])
    return " ".join("".join(out).split())


def _authority(field: str, mrz: dict[str, str], qr: dict[str, str]) -> tuple[str, str] | None:
    """(value, source) of the surest source for ``field``: the QR's spelling has diacritics,
    the MRZ's does not, so for text the QR comes first."""
    order = ("qr", "mrz") if field in ("full_name", "place_of_residence") else ("mrz", "qr")
    for source in order:
        value = (qr if source == "qr" else mrz).get(field)
        if value:
            return value, source
    return None


def _agrees(field: str, printed: str, value: str, source: str, truncated: bool) -> bool:
    if field == "full_name" and source == "mrz":
        return mrz_name_matches(printed, value, truncated)
    if field == "place_of_residence":
        # The agreement check takes an address so close to the QR's for the same: the
        # record carries the error-corrected spelling, not the misreading.
        return similar(printed, value) >= SAME_TEXT
    return fold(printed) == fold(value)


def _reconcile_field(f: Field, mrz: dict[str, str], qr: dict[str, str], truncated: bool) -> Field:
    found = _authority(f.name, mrz, qr)
    if found is None:
        return f
    value, source = found
    agreeing = [
        s
        for s, values in (("mrz", mrz), ("qr", qr))
        if values.get(f.name) and _agrees(f.name, f.value, values[f.name], s, truncated)
    ]
    if agreeing:
        # The QR's spelling has the marks; the MRZ's values are the canonical forms of what
        # carries no marks there (dates, sex, nationality); a name keeps its printed marks.
        spelled = f.value
        if "qr" in agreeing:
            spelled = qr[f.name]
        elif f.name != "full_name":
            spelled = mrz[f.name]
        return Field(f.name, spelled, CERTAIN, "+".join(["ocr", *agreeing]))
    # A misread: close to the authority (one character off; a name whose letters the MRZ's
    # put right), read with little confidence or as no plausible value. A plausible value
    # read confidently is left for the checks: a person compares it with the card (an altered
    # digit is one character too).
    misread = f.confidence < SURE or not plausible(f.name, f.value)
    if f.name == "full_name" and source == "mrz":
        fixed = corrected_name(f.value, value)
        if misread and fixed is not None and mrz_name_matches(fixed, value, truncated):
            return Field(f.name, fixed, CORRECTED, "ocr+mrz")
        return f
    if misread and one_apart(f.value, value):
        return Field(f.name, value, CORRECTED, f"ocr+{source}")
    return f


def _filled(name: str, mrz: dict[str, str], qr: dict[str, str]) -> Field | None:
    """A field the print did not give, from an authority: the QR's text as printed; the MRZ's
    exact values; the MRZ's name only as letters without diacritics, uncertain."""
    found = _authority(name, mrz, qr)
    if found is None:
        return None
    value, source = found
    if name == "full_name" and source == "mrz":
        return Field(name, value, NAME_FROM_MRZ, source)
    return Field(name, value, CORRECTED, source)


def _reconcile_page(
    page: PageAnalysis, mrz: dict[str, str], qr: dict[str, str], truncated: bool
) -> PageAnalysis:
    fields = [_reconcile_field(f, mrz, qr, truncated) for f in page.fields]
    have = {f.name for f in fields}
    missing = []
    for name in page.missing:
        filled = _filled(name, mrz, qr) if name not in have else None
        if filled is None:
            missing.append(name)
        else:
            fields.append(filled)
    return replace(page, fields=tuple(fields), missing=tuple(missing))


# Where a field stands in the zone: (line, first character, end).
_ZONE_SPANS = {"date_of_birth": (1, 0, 6), "expiry_date": (1, 8, 14), "id_number": (0, 15, 27)}


def _zone_form(field: str, value: str) -> str | None:
    if field == "id_number":
        return value if len(value) == 12 and value.isdigit() else None
    try:
        return datetime.strptime(value, "%d/%m/%Y").strftime("%y%m%d")
    except ValueError:
        return None


def mended_zone(
    mrz: Mrz | None, pages: Sequence[PageAnalysis | None], qr: dict[str, str], today: date | None
) -> Mrz | None:
    """The zone with each field its check digits fail put right from the value the QR code
    and a surely read print agree on, where that value is one character off the zone's and
    makes every check digit right; None when no such mending exists (see the module's
    docstring)."""
    if mrz is None or mrz.valid:
        return None
    lines = list(mrz.lines)
    for name, (line, start, end) in _ZONE_SPANS.items():
        value = qr.get(name)
        printed = [f for p in pages if p is not None for f in p.fields if f.name == name]
        if not value or not any(f.value == value and f.confidence >= SURE for f in printed):
            continue
        form = _zone_form(name, value)
        read = lines[line][start:end]
        if form is None or read == form:
            continue
        if sum(a != b for a, b in zip(read, form, strict=True)) != 1:
            return None
        lines[line] = lines[line][:start] + form + lines[line][end:]
    if tuple(lines) == mrz.lines:
        return None
    parsed = parse_td1((lines[0], lines[1], lines[2]), today)
    return parsed if parsed is not None and parsed.valid else None


def mended_name_row(
    mrz: Mrz | None, pages: Sequence[PageAnalysis | None], qr: dict[str, str], today: date | None
) -> Mrz | None:
    """The zone with its name row put right from the name the QR code and a surely read
    print agree on, where the row read is one letter off that name's row ("DAI" for "DAT",
    "CAOO" for "CAO"): the row has no check digit, and two sources outweigh one reading.
    None otherwise."""
    name = qr.get("full_name")
    if mrz is None or not name:
        return None
    printed = [f for p in pages if p is not None for f in p.fields if f.name == "full_name"]
    if not any(fold(f.value) == fold(name) and f.confidence >= SURE for f in printed):
        return None
    surname, _, given = ascii_upper(name).partition(" ")
    row = f"{surname}<<{given.replace(' ', '<')}"[:30].ljust(30, "<")
    if not one_apart(mrz.lines[2].rstrip("<"), row.rstrip("<")):
        return None
    return parse_td1((mrz.lines[0], mrz.lines[1], row), today)


def _with_zone(back: PageAnalysis, mrz: Mrz, *, agree: bool = False) -> PageAnalysis:
    fields = [f for f in back.fields if not f.name.startswith("mrz_")] + mrz_fields(mrz)
    return replace(back, mrz=mrz, mrz_reads_agree=agree, fields=tuple(fields))


def reconcile(pages: Sequence[PageAnalysis], today: date | None = None) -> tuple[PageAnalysis, ...]:
    """Every page, the card pages' fields reconciled with their card's MRZ and QR code."""
    out = {p.index: p for p in pages}
    for front, back in pairs(pages):
        from_qr = qr_values(card_qr_of(front, back))
        if back is not None:
            fixed = mended_zone(back.mrz, (front, back), from_qr, today)
            if fixed is not None:
                back = _with_zone(back, fixed)
            named = mended_name_row(back.mrz, (front, back), from_qr, today)
            if named is not None:
                back = _with_zone(back, named, agree=back.mrz_reads_agree)
        mrz = back.mrz if back is not None else None
        from_mrz = mrz_values(mrz)
        if not from_mrz and not from_qr:
            continue
        truncated = mrz is not None and len(mrz.lines[2].rstrip("<")) >= 29
        for page in (front, back):
            if page is not None:
                out[page.index] = _reconcile_page(page, from_mrz, from_qr, truncated)
    return tuple(out[p.index] for p in pages)
