"""Page classification from text and layout: which document a page is, with a confidence."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

CCCD_FRONT = "cccd_front"
CCCD_BACK = "cccd_back"
BIRTH_CERTIFICATE = "birth_certificate"
GENERIC = "generic"
DOCUMENT_TYPES = (CCCD_FRONT, CCCD_BACK, BIRTH_CERTIFICATE, GENERIC)

# Folded keywords and their weights per type.
_KEYWORDS: dict[str, dict[str, float]] = {
    CCCD_FRONT: {
        "cancuoc": 2.0, "hovaten": 1.0, "fullname": 1.0, "ngaysinh": 0.5, "dateofbirth": 1.0,
        "gioitinh": 1.0, "sex": 0.5, "quoctich": 1.0, "nationality": 1.0, "quequan": 1.0,
        "placeoforigin": 1.0, "noithuongtru": 1.0, "placeofresidence": 0.5,
        "cogiatriden": 1.0, "personalidentificationnumber": 1.0,
    },
    CCCD_BACK: {
        "dacdiemnhandang": 2.0, "ngontro": 1.0, "cuctruong": 1.0, "canhsat": 1.0,
        "quanlyhanhchinh": 1.0, "idvnm": 3.0, "noicutru": 1.0, "noidangkykhaisinh": 1.5,
        "dateofissue": 1.0, "dateofexpiry": 1.0, "bocongan": 1.0, "datemonthyear": 1.0,
        "vnm": 1.0,
    },
    BIRTH_CERTIFICATE: {
        "giaykhaisinh": 3.0, "hochudemten": 1.0, "noisinh": 1.0, "nguoime": 1.0,
        "nguoicha": 1.0, "dantoc": 0.5, "noidangky": 0.5, "namdangky": 0.5,
        "nguoikygiaykhaisinh": 1.0,
    },
}  # fmt: skip
# Titles: words that name a document only where they stand as its title, on a line of their
# own. In running text ("... căn cước công dân, giấy khai sinh ...") they are a mention.
_TITLES = ("cancuoc", "giaykhaisinh")
_TITLE_SLACK = 20  # folded characters a title line may hold beyond its title
# Score (share of a type's keyword weight found) needed before a page is called that type.
_MIN_SCORE = 0.3
CARD_ASPECT = 85.6 / 54.0


@dataclass(frozen=True)
class Classification:
    document_type: str
    confidence: float  # 0-1
    variant: str | None = None  # "2021" (chip card) | "2024" (CĂN CƯỚC) for ID cards
    scores: tuple[tuple[str, float], ...] = ()


def _layout(width: int, height: int) -> str:
    aspect = width / max(1, height)
    if abs(aspect - CARD_ASPECT) / CARD_ASPECT < 0.2:
        return "card"
    if 0.6 < aspect < 0.8:
        return "a4"
    return "other"


def _titled(lines: Sequence[str]) -> set[str]:
    """The titles that stand on a line of their own among ``lines`` (folded)."""
    return {
        t for t in _TITLES for ln in lines if ln.startswith(t) and len(ln) <= len(t) + _TITLE_SLACK
    }


def classify(
    folded_text: str, width: int, height: int, lines: Sequence[str] | None = None
) -> Classification:
    """Classify a page from its folded text (:func:`saoy.core.documents.text.fold` of the
    whole page) and its size. A page that is no known type is "generic".

    ``lines``, the page's text lines folded, lets a title count only where it stands as a
    title: a letter that mentions "giấy khai sinh" is not a birth certificate."""
    layout = _layout(width, height)
    titled = None if lines is None else _titled(lines)

    def present(key: str) -> bool:
        if titled is not None and key in _TITLES:
            return key in titled
        return key in folded_text

    scores: dict[str, float] = {}
    for kind, words in _KEYWORDS.items():
        total = sum(words.values())
        found = sum(w for k, w in words.items() if present(k))
        score = found / total
        if kind in (CCCD_FRONT, CCCD_BACK) and layout == "card":
            score += 0.1
        if kind == BIRTH_CERTIFICATE and layout == "a4":
            score += 0.1
        scores[kind] = round(min(1.0, score), 3)
    # Some words alone identify a type: the MRZ's "IDVNM", the card's and the certificate's
    # titles (a half-cut page keeps its title).
    if "idvnm" in folded_text:
        scores[CCCD_BACK] = max(scores[CCCD_BACK], 0.6)
    if present("cancuoc"):
        scores[CCCD_FRONT] = max(scores[CCCD_FRONT], 0.5)
    if present("giaykhaisinh"):
        scores[BIRTH_CERTIFICATE] = max(scores[BIRTH_CERTIFICATE], 0.5)
    ranked = sorted(scores.items(), key=lambda kv: kv[1], reverse=True)
    best, score = ranked[0]
    runner_up = ranked[1][1]
    if score < _MIN_SCORE:
        return Classification(GENERIC, round(1.0 - score, 3), None, tuple(ranked))
    # Confident when clearly ahead of the other types and with enough evidence.
    confidence = min(1.0, 0.5 + score) * (1.0 - 0.5 * runner_up / max(score, 1e-6))
    variant = None
    if best == CCCD_FRONT:
        if "congdan" in folded_text:
            variant = "2021"
        elif "cancuoc" in folded_text and (
            "personalidentificationnumber" in folded_text or "sodinhdanhcanhan" in folded_text
        ):
            variant = "2024"
    elif best == CCCD_BACK:
        if "dacdiemnhandang" in folded_text or "ngontro" in folded_text:
            variant = "2021"
        elif "noicutru" in folded_text or "bocongan" in folded_text:
            variant = "2024"
    return Classification(best, round(confidence, 3), variant, tuple(ranked))
