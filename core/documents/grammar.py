"""What a plausible value of each card field looks like. A reading that is not a plausible
value of its field is uncertain (an official looks), never evidence that a card was altered."""

from __future__ import annotations

import re
from datetime import datetime

from saoy.core.documents.provinces import PROVINCES
from saoy.core.documents.text import fold

# A Vietnamese syllable, folded (no tone or vowel marks): an onset, a vowel nucleus, a coda.
_SYLLABLE = re.compile(
    r"(ngh|ng|nh|ch|gh|gi|kh|ph|qu|th|tr|[bcdghklmnpqrstvx])?"
    r"([aeiouy]{1,3})"
    r"(ch|ng|nh|[cmnpt])?"
)
_DATE = re.compile(r"\d{2}/\d{2}/\d{4}")
_PLACE_PART = re.compile(r"[\w ./'-]+")


def plausible_date(value: str) -> bool:
    if not _DATE.fullmatch(value):
        return False
    try:
        d = datetime.strptime(value, "%d/%m/%Y").date()
    except ValueError:
        return False
    return 1900 <= d.year <= 2125


def plausible_id_number(value: str) -> bool:
    return bool(re.fullmatch(r"\d{12}", value)) and value[:3] in PROVINCES


def vietnamese_word(word: str) -> bool:
    """One syllable of Vietnamese letters (tone and vowel marks folded away)."""
    if not word.isalpha():
        return False
    return bool(_SYLLABLE.fullmatch(fold(word)))


def plausible_name(value: str) -> bool:
    """Two to eight Vietnamese syllables, letters only."""
    words = value.split()
    return 2 <= len(words) <= 8 and all(vietnamese_word(w) for w in words)


def plausible_place(value: str) -> bool:
    """Comma-separated administrative names: at least two parts, each with letters."""
    parts = [p.strip() for p in value.split(",")]
    if len(parts) < 2 or any(not p for p in parts):
        return False
    return all(_PLACE_PART.fullmatch(p) and any(ch.isalpha() for ch in p) for p in parts)


def plausible(field: str, value: str) -> bool:
    """Whether ``value`` can be a value of ``field`` at all (fields without a grammar: yes)."""
    if field in ("date_of_birth", "issue_date"):
        return plausible_date(value)
    if field == "expiry_date":
        return value == "Không thời hạn" or plausible_date(value)
    if field == "id_number":
        return plausible_id_number(value)
    if field == "full_name":
        return plausible_name(value)
    if field == "sex":
        return value in ("Nam", "Nữ")
    if field == "nationality":
        # Both editions of the card are issued to Vietnamese citizens only (the Law on
        # Citizen Identification 2014, the Law on Identity 2023): one nationality is printed.
        return fold(value) == fold("Việt Nam")
    if field in ("place_of_origin", "place_of_residence", "place_of_birth"):
        return plausible_place(value)
    return True
