"""Field extraction from OCR'd words for each document type, each field with a confidence."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from saoy.core.documents.grammar import plausible, plausible_name
from saoy.core.documents.layout import Page
from saoy.core.documents.places import confirmed_place, normalize_place
from saoy.core.documents.text import (
    Line,
    after_label,
    digits_of,
    find_date,
    fold,
    short_date,
    words_confidence,
    words_text,
)
from saoy.core.model import Word


@dataclass(frozen=True)
class Field:
    """One extracted value: ``confidence`` 0-1, ``source`` "ocr" | "mrz" | "qr"."""

    name: str
    value: str
    confidence: float
    source: str = "ocr"


SPECK_CONFIDENCE = 50.0
IMPLAUSIBLE = 0.3  # the most a reading that is no plausible value of its field is trusted
PLACE_CONFIRMED = 0.9  # an address read letter for letter as the official list names its units


def _put(out: dict[str, Field], name: str, value: str, confidence: float) -> None:
    value = value.strip(" ,.;:/")
    if value:
        out[name] = Field(name, value, round(max(0.0, min(1.0, confidence)), 3))


def _add(out: dict[str, Field], name: str, value: str, confidence: float) -> None:
    """A card field: a reading that is no plausible value of its field is uncertain."""
    value = value.strip(" ,.;:/")
    if value and not plausible(name, value):
        confidence = min(confidence, IMPLAUSIBLE)
    _put(out, name, value, confidence)


def _without_specks(words: Sequence[Word]) -> list[Word]:
    """``words`` less the specks read in a background pattern: a "word" of no letter or
    digit ("^", "&", a stray quote) read with low confidence."""
    return [
        w for w in words if w.confidence >= SPECK_CONFIDENCE or any(ch.isalnum() for ch in w.text)
    ]


def _date_in(page: Page, name: str) -> tuple[str, float] | None:
    """A date right of the label or on one of the two lines under it; "Không thời hạn" for
    a card without expiry."""
    label = page.first(name)
    if label is None:
        return None
    for words in [page.row_value(label), *page.below_value(label, 2)]:
        text = words_text(words)
        found = _card_date(text)
        if found is None:
            continue
        # The confidence of the words the date was read from, not of the whole row.
        used = [w for w in words if any(ch.isdigit() for ch in w.text)] or list(words)
        return found[0], min(found[1], words_confidence(used))
    return None


def _card_date(text: str) -> tuple[str, float] | None:
    """The date in a card's date value, with the most it may be trusted: "Không thời hạn" for
    a card without expiry; a card prints dd/mm/yyyy, and a date read with one digit short is
    a misreading."""
    if "thoihan" in fold(text) or "indefinite" in fold(text):
        return "Không thời hạn", 1.0
    found = find_date(text)
    if found is None:
        return None
    return found[1], IMPLAUSIBLE if short_date(text) else 1.0


def _text_value(page: Page, name: str, max_lines: int) -> tuple[str, float] | None:
    """A value right of its label and wrapping onto up to ``max_lines`` - 1 lines under it
    (or starting under it), within the label's column."""
    label = page.first(name)
    if label is None:
        return None
    row = _without_specks(page.row_value(label))
    parts: list[list[Word]] = [row] if fold(words_text(row)) else []
    start = row[0].left if parts else None
    for words in page.below_value(label, max_lines - len(parts), start):
        words = _without_specks(words)
        if fold(words_text(words)):
            parts.append(words)
    if not parts:
        return None
    return " ".join(words_text(p) for p in parts), min(words_confidence(p) for p in parts)


def _name(page: Page) -> tuple[str, float] | None:
    """The name on the label's row when it reads as a name, else on the first of the two
    lines under it that does (the first may be a speck of the guilloche read as a letter)."""
    label = page.first("full_name")
    if label is None:
        return None
    row = _without_specks(page.row_value(label))
    under = [_without_specks(ws) for ws in page.below_value(label, 2)]
    candidates = [ws for ws in (row, *under) if fold(words_text(ws))]
    for words in candidates:
        text = words_text(words).upper()
        if plausible_name(text):
            return text, words_confidence(words)
    if candidates:
        return words_text(candidates[0]).upper(), min(IMPLAUSIBLE, words_confidence(candidates[0]))
    return None


def _id_number(page: Page) -> tuple[str, float] | None:
    """The 12-digit number: by its label when there is one, else the tallest 12-digit token."""
    labelled_lines = {lb.line for lb in page.labels if lb.field == "id_number"}
    found: list[tuple[int, int, str, float]] = []
    for li, line in enumerate(page.lines):
        labelled = li in labelled_lines or (li - 1) in labelled_lines
        for w in line.words:
            digits = digits_of(w.text)
            if len(digits) == 12:
                conf = w.confidence / 100.0
                if not re.fullmatch(r"\d{12}", w.text.strip(".,:;")):
                    conf *= 0.6  # look-alike letters were read as digits
                found.append((int(labelled), w.bottom - w.top, digits, conf))
    if not found:
        return None
    found.sort(reverse=True)
    return found[0][2], found[0][3]


def _sex(page: Page) -> tuple[str, float] | None:
    """The word right after the sex label: "Nam" or "Nữ" (a misread "Nữ" is never taken for
    the "Nam" of "Việt Nam" further along the line)."""
    label = page.first("sex")
    if label is None:
        return None
    words = [w for w in page.row_value(label) if fold(w.text)]
    if not words:
        words = [w for ws in page.below_value(label, 1) for w in ws if fold(w.text)]
    if not words:
        return None
    w = words[0]
    f = fold(w.text)
    conf = w.confidence / 100.0
    if f in ("nam", "male"):
        return "Nam", conf
    if f in ("nu", "female"):
        return "Nữ", conf
    # A glyph too many or a misread accent ("Nami", "NamQuốc", "Nir"): kept, with less trust.
    if f.startswith("nam"):
        return "Nam", 0.5 * conf
    if f.startswith("n") and len(f) <= 4:
        return "Nữ", 0.5 * conf
    return None


def _nationality(page: Page) -> tuple[str, float] | None:
    label = page.first("nationality")
    if label is None:
        return None
    words = [w for w in page.row_value(label) if fold(w.text)]
    if not words:
        return None
    # A citizen's card says "Việt Nam": what follows it on the row is not the nationality
    # (the edge of a photograph, a speck of the background), nor what comes before it (the
    # end of its label read garbled, its colon missed: "Nadonality; Việt Nam").
    for start in range(len(words)):
        for n in (1, 2):
            if fold(words_text(words[start : start + n])) == "vietnam":
                return "Việt Nam", words_confidence(words[start : start + n])
    # Read one letter off ("Việt lam", "Vlệt Nam"): no other nationality is a letter away, but
    # the reading is unsure until the MRZ confirms it.
    for start in range(len(words)):
        for n in (1, 2):
            if _one_letter_off(fold(words_text(words[start : start + n])), "vietnam"):
                conf = min(words_confidence(words[start : start + n]), MISREAD_NATIONALITY)
                return "Việt Nam", conf
    return words_text(words), words_confidence(words)


MISREAD_NATIONALITY = 0.6  # "Việt Nam" read one letter off: to be confirmed


def _one_letter_off(a: str, b: str) -> bool:
    """One letter changed, added or dropped."""
    if len(a) == len(b):
        return sum(x != y for x, y in zip(a, b, strict=True)) == 1
    longer, shorter = (a, b) if len(a) > len(b) else (b, a)
    return len(longer) == len(shorter) + 1 and any(
        longer[:k] + longer[k + 1 :] == shorter for k in range(len(longer))
    )


PLACES = ("place_of_origin", "place_of_residence", "place_of_birth")
PLACE_LINES = 3  # an address wraps onto at most this many lines
DATES = ("date_of_birth", "expiry_date", "issue_date")


def card_fields(lines: Sequence[Line]) -> dict[str, Field]:
    """Every field a side of either card edition shows, wherever its layout put it: number,
    name, birth date, sex, nationality, origin, residence, place of birth, issue and expiry
    dates. The MRZ and the QR code are read apart."""
    page = Page.of(lines)
    out: dict[str, Field] = {}
    if page.has("id_number") or page.has("full_name") or page.has("date_of_birth"):
        number = _id_number(page)
        if number:
            _add(out, "id_number", *number)
    name = _name(page)
    if name:
        _add(out, "full_name", *name)
    for field in DATES:
        found = _date_in(page, field)
        if found:
            _add(out, field, *found)
    sex = _sex(page)
    if sex:
        _add(out, "sex", *sex)
    nationality = _nationality(page)
    if nationality:
        _add(out, "nationality", *nationality)
    for field in PLACES:
        block = _text_value(page, field, PLACE_LINES)
        if block:
            _add(out, field, *_place(*block))
    return out


def _place(text: str, confidence: float) -> tuple[str, float]:
    """An address as the official list spells it; certain where it names its units letter
    for letter as the list does."""
    place = normalize_place(text)
    if fold(place) == fold(text) and confirmed_place(place):
        confidence = max(confidence, PLACE_CONFIRMED)
    return place, confidence


REREAD_FIELDS = ("id_number", "full_name", *DATES, *PLACES)
"""The card fields a value read apart (where the page OCR skipped it) can give."""


def reread_field(name: str, text: str, confidence: float) -> Field | None:
    """Field ``name`` of a card from ``text``, a value read apart from the page under or
    beside its label, trusted at most ``confidence``; None when ``text`` holds no value of
    it. A 12-digit number, a date, a name or an address."""
    found: tuple[str, float] | None = None
    if name == "id_number":
        tokens = (t.strip(".,:;") for t in text.split())
        number = next((t for t in tokens if re.fullmatch(r"\d{12}", t)), None)
        found = (number, confidence) if number else None
    elif name in DATES:
        read = _card_date(text)
        found = (read[0], min(confidence, read[1])) if read else None
    elif name == "full_name":
        found = " ".join(text.split()).upper(), confidence
    elif name in PLACES:
        found = _place(" ".join(text.split()), confidence)
    out: dict[str, Field] = {}
    if found is not None and plausible(name, found[0].strip(" ,.;:/")):
        _put(out, name, *found)
    return out.get(name)


_BIRTH_LABELS = {
    "full_name": ("hochudemten",),
    "sex": ("gioitinh",),
    "date_of_birth": ("ngaythangnamsinh",),
    "place_of_birth": ("noisinh",),
    "mother": ("tennguoime",),
    "father": ("tennguoicha",),
}


def birth_certificate_fields(lines: Sequence[Line]) -> dict[str, Field]:
    """Registration number, name, birth date, place of birth, mother, father, ID number."""
    out: dict[str, Field] = {}
    for line in lines:
        folded = line.folded
        words = line.words
        if (
            "registration_number" not in out
            and folded.startswith("so")
            and not (folded.startswith("sodinhdanh"))
        ):
            m = re.match(r"\s*S[ốoô0]\s*:?\s*(\S+)", line.text)
            if m and re.search(r"\d", m.group(1)):
                value = m.group(1).translate(str.maketrans("Oo|Il", "00111"))
                _put(out, "registration_number", value, line.confidence)
            continue
        for name, keys in _BIRTH_LABELS.items():
            if name in out or not any(k in folded for k in keys):
                continue
            if name in ("full_name",) and any(k in folded for k in ("nguoime", "nguoicha")):
                continue
            value = after_label(line, keys) or ()
            if not value:
                continue
            if name == "date_of_birth":
                found = find_date(words_text(value))
                if found:
                    _put(out, name, found[1], words_confidence(value))
                continue
            text = words_text(value)
            if name == "sex":
                first = fold(value[0].text)
                if first in ("nam", "nu"):
                    _put(out, name, "Nam" if first == "nam" else "Nữ", value[0].confidence / 100)
                continue
            if name in ("mother", "father", "full_name"):
                text = text.split(".")[0].upper()
            if name == "place_of_birth":
                text = normalize_place(text)
            _put(out, name, text, words_confidence(value))
        if "id_number" not in out and "sodinhdanh" in folded:
            for w in words:
                digits = digits_of(w.text)
                if len(digits) == 12:
                    _put(out, "id_number", digits, w.confidence / 100.0)
    return out
