"""Scoring OCR against the ground truth of generated documents: edit distance, and what was
read on each drawn line.

A reading is given as its lines of words, each word with its text and box in page pixels
(:class:`ReadWord`, :class:`ReadLine`): the server's words grouped as the copy's text layer
groups them (``saoy.core.documents.text.group_lines``) fit as they are, so the caller groups
and this module needs nothing but the generated documents."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from saoy.clients.simulator.docgen import TextLine


class ReadWord(Protocol):
    """One word read: its text and its box in page pixels (origin top-left)."""

    @property
    def text(self) -> str: ...
    @property
    def left(self) -> int: ...
    @property
    def top(self) -> int: ...
    @property
    def right(self) -> int: ...
    @property
    def bottom(self) -> int: ...


class ReadLine(Protocol):
    """The words of one line of a reading."""

    @property
    def words(self) -> Sequence[ReadWord]: ...


def levenshtein(a: str, b: str) -> int:
    """The edit distance between ``a`` and ``b`` (insertions, deletions, substitutions)."""
    if len(a) < len(b):
        a, b = b, a
    previous = list(range(len(b) + 1))
    for i, ca in enumerate(a, 1):
        current = [i]
        for j, cb in enumerate(b, 1):
            current.append(min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (ca != cb)))
        previous = current
    return previous[-1]


def line_reads(lines: Sequence[TextLine], read_lines: Sequence[ReadLine]) -> list[str]:
    """What was read on each drawn line: the words read inside its box (padded a quarter of
    its height across), from the lines of the reading (``read_lines``: words grouped into
    lines as the copy's text layer groups them) that make it read closest to the drawn text —
    the closest one, then any other that brings it closer (a row the reading split at a wide
    gap). Under perspective a drawn line's box is the box around its turned corners and takes
    in the ends of the lines above and below: the text decides between them, not the nearest
    centre, which would cut every turned line into pieces of its neighbours."""
    out = []
    for line in lines:
        left, top, right, bottom = line.box
        pad = (bottom - top) // 4
        truth = " ".join(line.text.split())
        pieces = []
        for read in read_lines:
            inside = [
                w
                for w in read.words
                if left - pad <= (w.left + w.right) / 2 <= right + pad
                and top <= (w.top + w.bottom) / 2 <= bottom
            ]
            if inside:
                pieces.append(inside)

        def text(words: list[ReadWord]) -> str:
            return " ".join(w.text for w in sorted(words, key=lambda w: w.left))

        pieces.sort(key=lambda p: levenshtein(truth, text(p)))
        chosen: list[ReadWord] = []
        best = levenshtein(truth, "")
        for piece in pieces:
            d = levenshtein(truth, text(chosen + piece))
            if d < best:
                chosen, best = chosen + piece, d
        out.append(text(chosen))
    return out
