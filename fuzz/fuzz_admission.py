"""Fuzz page admission: any bytes a kiosk may upload as a page (JPEG, PNG, TIFF, or anything
else) are admitted or refused with InvalidInput / TooLarge, the two errors ``admit`` documents;
anything else escaping is a crash. Pillow's Python parsers are instrumented too, so the fuzzer
sees the header and chunk paths it opens.

    .venv/bin/python fuzz/fuzz_admission.py OUT_DIR fuzz/corpus/admission -max_total_time=600
"""

from __future__ import annotations

import sys

import atheris

with atheris.instrument_imports(include=["saoy", "PIL"]):
    from saoy.core.errors import InvalidInput, TooLarge
    from saoy.core.pages.admission import Limits, admit_decoded

LIMITS = Limits()


def test_one_input(data: bytes) -> None:
    try:
        page, image = admit_decoded(0, data, LIMITS)
    except (InvalidInput, TooLarge):
        return
    # What admission promises about a page it lets through.
    assert page.format in ("jpeg", "png", "tiff"), page.format
    assert LIMITS.min_side <= min(page.width, page.height)
    assert max(page.width, page.height) <= LIMITS.max_side
    assert image.size == (page.width, page.height), (image.size, page.width, page.height)


def main() -> None:
    atheris.Setup(sys.argv, test_one_input)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
