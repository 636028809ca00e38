"""Scoring OCR against the ground truth of generated documents: edit distance, and what was
read on each drawn line."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence

from saoy.clients.simulator.docgen import TextLine
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
    """What was read on each drawn line: every OCR word goes to the drawn line whose box holds
    its centre (the nearest one vertically); a line reads as its words left to right."""
    assigned: dict[int, list[Word]] = defaultdict(list)
    for w in result.words:
        cx, cy = (w.left + w.right) / 2, (w.top + w.bottom) / 2
        best, best_d = None, 0.0
        for i, line in enumerate(lines):
            left, top, right, bottom = line.box
            pad = (bottom - top) // 4
            if left - pad <= cx <= right + pad and top <= cy <= bottom:
                d = abs(cy - (top + bottom) / 2)
                if best is None or d < best_d:
                    best, best_d = i, d
        if best is not None:
            assigned[best].append(w)
    return [
        " ".join(w.text for w in sorted(assigned[i], key=lambda w: w.left))
        for i in range(len(lines))
    ]
