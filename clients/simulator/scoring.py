"""Scoring OCR against the ground truth of generated documents: edit distance, and what was
read on each drawn line."""

from __future__ import annotations

from collections.abc import Sequence

from saoy.clients.simulator.docgen import TextLine
from saoy.core.documents.text import group_lines
from saoy.core.model import OcrResult


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
    its height across), taken from one line of the reading (words grouped into lines as the
    copy's text layer groups them), the line whose words there read closest to the drawn
    text. Under perspective a drawn line's box is the box around its turned corners and takes
    in the ends of the lines above and below: the text decides between them, not the nearest
    centre, which would cut every turned line into pieces of its neighbours."""
    read_lines = group_lines(result.words)
    out = []
    for line in lines:
        left, top, right, bottom = line.box
        pad = (bottom - top) // 4
        truth = " ".join(line.text.split())
        best: tuple[int, str] | None = None
        for read in read_lines:
            inside = [
                w
                for w in read.words
                if left - pad <= (w.left + w.right) / 2 <= right + pad
                and top <= (w.top + w.bottom) / 2 <= bottom
            ]
            if not inside:
                continue
            text = " ".join(w.text for w in sorted(inside, key=lambda w: w.left))
            d = levenshtein(truth, text)
            if best is None or d < best[0]:
                best = (d, text)
        out.append(best[1] if best is not None else "")
    return out
