"""Fuzz the text parsers of identity documents: the TD1 machine-readable zone
(``find_td1``, ``parse_td1``, ``well_formed``, ``combine_reads``) and the card QR code
(``parse_card_qr``). They take OCR or QR text as it comes and document no error: whatever the
text, they return a result (or None), so every exception is a crash.

The input is UTF-8 text (undecodable bytes replaced). Its lines go to the MRZ functions; a
blank line splits it into two reads, each found with ``find_td1`` and combined as the page
analysis does; the whole text is also read as a card QR's content.

    .venv/bin/python fuzz/fuzz_documents.py OUT_DIR fuzz/corpus/documents -max_total_time=600
"""

from __future__ import annotations

import sys
from datetime import date

import atheris

with atheris.instrument_imports(include=["saoy"]):
    from saoy.core.documents.mrz import TD1_LINE, combine_reads, find_td1, parse_td1, well_formed
    from saoy.core.documents.qr import parse_card_qr

TODAY = date(2026, 5, 1)


def test_one_input(data: bytes) -> None:
    text = data.decode("utf-8", "replace")

    card = parse_card_qr(text)
    assert card.raw == text
    _ = card.well_formed

    lines = text.split("\n")
    parsed = parse_td1(lines, TODAY)
    if len(lines) == 3:
        assert parsed is not None
        assert all(len(line) == TD1_LINE for line in parsed.lines), parsed.lines
        _ = (parsed.valid, parsed.failed, parsed.id_number, parsed.full_name)
    well_formed(lines)

    reads = [found for block in text.split("\n\n")[:2] if (found := find_td1(block.split("\n")))]
    best = combine_reads(reads, TODAY)
    if reads:
        assert best is not None
        assert all(len(line) == TD1_LINE for line in best.lines[:2]), best.lines


def main() -> None:
    atheris.Setup(sys.argv, test_one_input)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
