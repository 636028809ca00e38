"""Scoring OCR against the ground truth of generated documents: edit distance, and what was
read on each drawn line."""

from __future__ import annotations

from collections.abc import Sequence

from saoy.clients.simulator.docgen import TextLine
from saoy.core.documents.text import group_lines
from saoy.core.model import OcrResult, Word


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


def line_reads(lines: Sequence[TextLine], result: OcrResult) -> list[str]:
    """What was read on each drawn line: the words read inside its box (padded a quarter of
    its height across), from the lines of the reading (words grouped into lines as the copy's
    text layer groups them) that make it read closest to the drawn text — the closest one,
    then any other that brings it closer (a row the reading split at a wide gap). Under
    perspective a drawn line's box is the box around its turned corners and takes in the ends
    of the lines above and below: the text decides between them, not the nearest centre,
    which would cut every turned line into pieces of its neighbours."""
    read_lines = group_lines(result.words)
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

        def text(words: list[Word]) -> str:
            return " ".join(w.text for w in sorted(words, key=lambda w: w.left))

        pieces.sort(key=lambda p: levenshtein(truth, text(p)))
        chosen: list[Word] = []
        best = levenshtein(truth, "")
        for piece in pieces:
            d = levenshtein(truth, text(chosen + piece))
            if d < best:
                chosen, best = chosen + piece, d
        out.append(text(chosen))
    return out
