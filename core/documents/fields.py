"""Field extraction from OCR'd words for each document type, each field with a confidence."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from saoy.core.documents.provinces import PROVINCES, UNIT_WORDS
from saoy.core.documents.text import (
    Line,
    after_label,
    below,
    digits_of,
    find_date,
    fold,
    right_of,
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


# Folded label keys, Vietnamese and English: either half of a bilingual label is enough.
ID_LABEL = ("sono", "sodinhdanh", "personalidentificationnumber", "identitycard")
NAME_LABEL = ("hovaten", "fullname")
BIRTH_LABEL = ("ngaysinh", "dateofbirth")
SEX_LABEL = ("gioitinh", "sex")
NATIONALITY_LABEL = ("quoctich", "nationality")
ORIGIN_LABEL = ("quequan", "placeoforigin")
RESIDENCE_LABEL = ("noithuongtru", "placeofresidence", "noicutru")
BIRTHPLACE_CARD_LABEL = ("noidangkykhaisinh", "placeofbirth")
EXPIRY_LABEL = ("cogiatriden", "dateofexpiry", "namhethan", "hethan")
ISSUE_LABEL = ("dateofissue", "namcap", "datemonthyear")
ALL_CARD_LABELS = (
    NAME_LABEL + BIRTH_LABEL + SEX_LABEL + NATIONALITY_LABEL + ORIGIN_LABEL + RESIDENCE_LABEL
    + BIRTHPLACE_CARD_LABEL + EXPIRY_LABEL + ISSUE_LABEL
    + ("dacdiemnhandang", "personalidentification", "cuctruong", "bocongan", "ngontro")
)  # fmt: skip


def _has(line: Line, keys: Sequence[str]) -> bool:
    folded = line.folded
    return any(k in folded for k in keys)


def _label_index(lines: Sequence[Line], keys: Sequence[str]) -> int | None:
    for i, line in enumerate(lines):
        if _has(line, keys):
            return i
    return None


def _add(out: dict[str, Field], name: str, value: str, confidence: float) -> None:
    value = value.strip(" ,.;:")
    if value:
        out[name] = Field(name, value, round(max(0.0, min(1.0, confidence)), 3))


def _date_field(
    out: dict[str, Field], name: str, lines: Sequence[Line], keys: Sequence[str]
) -> None:
    """A date on the label's line (after the label) or on the line below it."""
    i = _label_index(lines, keys)
    if i is None:
        return
    same = after_label(lines[i], keys) or ()
    candidates: list[Sequence[Word]] = [same]
    candidates.extend(ln.words for ln in right_of(lines, i))
    under = below(lines, i)
    if under:
        candidates.append(under[0].words)
    for words in candidates:
        text = words_text(words)
        if not text:
            continue
        if "thoihan" in fold(text) or "indefinite" in fold(text):
            _add(out, name, "Không thời hạn", words_confidence(words))
            return
        found = find_date(text)
        if found is not None:
            _add(out, name, found[1], words_confidence(words))
            return


SPECK_CONFIDENCE = 50.0


def _without_specks(words: Sequence[Word]) -> list[Word]:
    """``words`` less the specks read in a background pattern: a "word" of no letter or
    digit ("^", "&", a stray quote) read with low confidence."""
    return [
        w for w in words if w.confidence >= SPECK_CONFIDENCE or any(ch.isalnum() for ch in w.text)
    ]


def _block_after(
    lines: Sequence[Line], keys: Sequence[str], max_lines: int = 2
) -> tuple[str, float] | None:
    """The value of a label followed by up to ``max_lines`` lines of text below it, stopping
    at the next label or a wide gap."""
    i = _label_index(lines, keys)
    if i is None:
        return None
    label = lines[i]
    parts: list[Sequence[Word]] = []
    rest = _without_specks(after_label(label, keys) or ())
    if rest:
        parts.append(rest)
    prev_bottom = label.bottom
    for line in below(lines, i)[:max_lines]:
        if _has(line, ALL_CARD_LABELS) or line.top - prev_bottom > 1.5 * max(1, label.height):
            break
        words = _without_specks(line.words)
        if words:
            parts.append(words)
        prev_bottom = line.bottom
    if not parts:
        return None
    text = " ".join(words_text(p) for p in parts)
    return text, min(words_confidence(p) for p in parts)


def _id_number(lines: Sequence[Line]) -> tuple[str, float] | None:
    """The 12-digit number: by its label when there is one, else the tallest 12-digit token."""
    found: list[tuple[int, int, str, float]] = []
    for li, line in enumerate(lines):
        labelled = _has(line, ID_LABEL) or (li > 0 and _has(lines[li - 1], ID_LABEL))
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


def _sex(lines: Sequence[Line]) -> tuple[str, float] | None:
    """The word right after the sex label: "Nam" or "Nữ" (a misread "Nữ" is never taken for
    the "Nam" of "Việt Nam" further along the line)."""
    i = _label_index(lines, SEX_LABEL)
    if i is None:
        return None
    words = after_label(lines[i], SEX_LABEL) or ()
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


def _nationality(lines: Sequence[Line]) -> tuple[str, float] | None:
    i = _label_index(lines, NATIONALITY_LABEL)
    if i is None:
        return None
    words = after_label(lines[i], NATIONALITY_LABEL) or ()
    if not words:
        return None
    text = words_text(words)
    if fold(text) == "vietnam":
        text = "Việt Nam"
    return text, words_confidence(words)


def _name_after(lines: Sequence[Line], keys: Sequence[str]) -> tuple[str, float] | None:
    i = _label_index(lines, keys)
    if i is None:
        return None
    same = after_label(lines[i], keys)
    if same:
        return words_text(same), words_confidence(same)
    under = below(lines, i)
    if under and not _has(under[0], ALL_CARD_LABELS):
        return under[0].text, under[0].confidence
    return None


_PROVINCE_NAMES = {fold(name): name for name in PROVINCES.values()}
_UNITS = {fold(u): u for u in UNIT_WORDS}


def normalize_place(text: str) -> str:
    """An address as read, with the words the official lists fix put right: the unit words
    that open each comma-separated part ("Thanh phố" → "Thành phố") and a province name as
    its last part ("Can Thơ" → "Cần Thơ"). Words in between are left as read."""
    parts = [p.strip() for p in text.split(",")]
    out = []
    for i, part in enumerate(parts):
        words = part.split()
        for n in (2, 1):  # two-word units first ("Thành phố" before "Xã")
            if len(words) > n and fold(" ".join(words[:n])) in _UNITS:
                words = [_UNITS[fold(" ".join(words[:n]))], *words[n:]]
                break
        part = " ".join(words)
        if i == len(parts) - 1 and i > 0:
            province = _PROVINCE_NAMES.get(fold(part))
            if province is None and fold(part).startswith("thanhpho"):
                named = _PROVINCE_NAMES.get(fold(part)[len("thanhpho") :])
                province = f"Thành phố {named}" if named else None
            part = province or part
        out.append(part)
    return ", ".join(out)


def card_front_fields(lines: Sequence[Line]) -> dict[str, Field]:
    """Number, name, birth date, sex, nationality, and (2021 card) origin, residence, expiry."""
    out: dict[str, Field] = {}
    number = _id_number(lines)
    if number:
        _add(out, "id_number", *number)
    name = _name_after(lines, NAME_LABEL)
    if name:
        _add(out, "full_name", name[0].upper(), name[1])
    _date_field(out, "date_of_birth", lines, BIRTH_LABEL)
    sex = _sex(lines)
    if sex:
        _add(out, "sex", *sex)
    nationality = _nationality(lines)
    if nationality:
        _add(out, "nationality", *nationality)
    for name_, keys in (("place_of_origin", ORIGIN_LABEL), ("place_of_residence", RESIDENCE_LABEL)):
        block = _block_after(lines, keys)
        if block:
            _add(out, name_, normalize_place(block[0]), block[1])
    _date_field(out, "expiry_date", lines, EXPIRY_LABEL)
    return out


def card_back_fields(lines: Sequence[Line]) -> dict[str, Field]:
    """Issue date and, on the 2024 card, residence, place of birth registration and expiry.
    The MRZ is read apart (:mod:`saoy.core.documents.mrz`)."""
    out: dict[str, Field] = {}
    _date_field(out, "issue_date", lines, ISSUE_LABEL)
    for name_, keys in (
        ("place_of_residence", RESIDENCE_LABEL),
        ("place_of_birth", BIRTHPLACE_CARD_LABEL),
    ):
        block = _block_after(lines, keys)
        if block:
            _add(out, name_, normalize_place(block[0]), block[1])
    _date_field(out, "expiry_date", lines, EXPIRY_LABEL)
    return out


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
                _add(out, "registration_number", value, line.confidence)
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
                    _add(out, name, found[1], words_confidence(value))
                continue
            text = words_text(value)
            if name == "sex":
                first = fold(value[0].text)
                if first in ("nam", "nu"):
                    _add(out, name, "Nam" if first == "nam" else "Nữ", value[0].confidence / 100)
                continue
            if name in ("mother", "father", "full_name"):
                text = text.split(".")[0].upper()
            if name == "place_of_birth":
                text = normalize_place(text)
            _add(out, name, text, words_confidence(value))
        if "id_number" not in out and "sodinhdanh" in folded:
            for w in words:
                digits = digits_of(w.text)
                if len(digits) == 12:
                    _add(out, "id_number", digits, w.confidence / 100.0)
    return out
