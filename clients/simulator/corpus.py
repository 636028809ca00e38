"""A test corpus from the template generator: dossiers of captured pages with their truth.

``templates_corpus(n_cards, seed)`` yields, deterministically from ``seed``:

- ``n_cards`` ID-card dossiers (front and back), the 2021 and 2024 editions in turn, each
  captured in one of the good capture styles; one in four is defective (expired, or a broken
  MRZ check digit) and must not pass;
- bad captures (cut off, motion blur, glare) of otherwise valid cards, which must not pass;
- A4 pages: letters and transcripts, which pass, and letters stamped "MẬT", which must not.

Every valid dossier is checked on a day within its card's validity; an expired one after it.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import date, timedelta

from PIL import Image

from saoy.clients.simulator.capture import BAD_STYLES, GOOD_STYLES, capture
from saoy.clients.simulator.templates import (
    EDITIONS,
    Document,
    Line,
    Person,
    card,
    check_fonts,
    letter,
    random_person,
    transcript,
)

CARD_DEFECTS = ("expired", "mrz_check")
A4_KINDS = ("letter", "table", "confidential")


@dataclass
class TruthPage:
    """One captured page and what is true of it."""

    image: Image.Image  # RGB, as decoded from ``data``
    data: bytes  # the file as the device wrote it (PNG or JPEG)
    lines: list[Line]  # drawn text with boxes in captured pixels
    kind: str  # "cccd_front" | "cccd_back" | "generic"
    edition: str  # "2021" | "2024" | "a4"
    layout: str  # "card" | "letter" | "table"
    style: str  # the capture style
    fields: dict[str, str] = field(default_factory=dict)

    @property
    def bad_capture(self) -> bool:
        return self.style in BAD_STYLES


@dataclass
class Sample:
    """One dossier and what should become of it."""

    name: str
    pages: list[TruthPage]
    expect: str  # "pass" | "not_pass"
    defect: str  # "" for a valid dossier, else the defect or the bad capture style
    style: str  # the capture style (of the bad page, for a bad capture)
    edition: str  # "2021" | "2024" | "a4"
    today: date  # the day the dossier is checked on


def _captured(doc: Document, style: str, seed: int) -> TruthPage:
    cap = capture(doc, style, seed)
    return TruthPage(
        cap.image, cap.data, cap.lines, doc.kind, doc.edition, doc.layout, style, dict(doc.fields)
    )


def _valid_day(p: Person, rng: random.Random) -> date:
    day = p.issue_date + timedelta(days=rng.randint(7, 400))
    if p.expiry_date is not None:
        day = min(day, p.expiry_date - timedelta(days=1))
    return day


def _expirable(rng: random.Random, edition: str) -> Person:
    while True:
        p = random_person(rng, edition, born_between=(1970, 2006))
        if p.expiry_date is not None:
            return p


def templates_corpus(n_cards: int, seed: int) -> Iterator[Sample]:
    check_fonts()
    for i in range(n_cards):
        yield card_dossier(seed, i)
    for k in range(max(len(BAD_STYLES), n_cards // 4)):
        yield bad_capture(seed, k)
    for k in range(max(len(A4_KINDS), n_cards // 4)):
        yield a4_page(seed, k)


def card_dossier(seed: int, i: int) -> Sample:
    """The corpus's ``i``-th card dossier at ``seed`` (see :func:`templates_corpus`)."""
    rng = random.Random(seed * 1_000_003 + i)
    edition = EDITIONS[i % 2]
    style = GOOD_STYLES[(i // 2) % len(GOOD_STYLES)]
    defect = CARD_DEFECTS[(i // 4) % len(CARD_DEFECTS)] if i % 4 == 3 else ""
    p = _expirable(rng, edition) if defect == "expired" else random_person(rng, edition)
    dpi = rng.randint(20, 60) * 10
    front, back = card(
        p, edition, rng, dpi, broken_mrz=defect == "mrz_check", qr_extra=rng.random() < 0.4
    )
    if defect == "expired":
        assert p.expiry_date is not None
        today = p.expiry_date + timedelta(days=rng.randint(15, 400))
    else:
        today = _valid_day(p, rng)
    pages = [_captured(doc, style, seed * 7919 + 2 * i + j) for j, doc in enumerate((front, back))]
    return Sample(
        f"card {edition} #{i} {style}{' ' + defect if defect else ''}",
        pages,
        "not_pass" if defect else "pass",
        defect,
        style,
        edition,
        today,
    )


def bad_capture(seed: int, k: int) -> Sample:
    """The corpus's ``k``-th dossier with a bad capture at ``seed`` (see
    :func:`templates_corpus`)."""
    rng = random.Random(seed * 1_000_003 + 50_000 + k)
    edition = EDITIONS[k % 2]
    bad = BAD_STYLES[k % len(BAD_STYLES)]
    p = random_person(rng, edition)
    dpi = rng.randint(30, 60) * 10
    front, back = card(p, edition, rng, dpi)
    which = (k // len(BAD_STYLES)) % 2  # the front, then the back
    styles = [bad, "tight"] if which == 0 else ["tight", bad]
    pages = [
        _captured(doc, st, seed * 7919 + 90_000 + 2 * k + j)
        for j, (doc, st) in enumerate(zip((front, back), styles, strict=True))
    ]
    side = "front" if which == 0 else "back"
    return Sample(
        f"card {edition} bad capture {bad} ({side})",
        pages,
        "not_pass",
        bad,
        bad,
        edition,
        _valid_day(p, rng),
    )


def a4_page(seed: int, k: int) -> Sample:
    """The corpus's ``k``-th A4 page at ``seed`` (see :func:`templates_corpus`)."""
    rng = random.Random(seed * 1_000_003 + 70_000 + k)
    what = A4_KINDS[k % len(A4_KINDS)]
    style = GOOD_STYLES[k % len(GOOD_STYLES)]
    dpi = rng.choice((200, 250, 300))
    if what == "table":
        doc = transcript(rng, dpi)
    else:
        doc = letter(rng, dpi, confidential=what == "confidential")
    page = _captured(doc, style, seed * 7919 + 95_000 + k)
    defect = "confidential" if what == "confidential" else ""
    return Sample(
        f"A4 {what} #{k} {style}",
        [page],
        "not_pass" if defect else "pass",
        defect,
        style,
        "a4",
        date(2025, 6, 1),
    )
