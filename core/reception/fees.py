"""The fee for certifying copies (Circular 226/2016/TT-BTC, art. 4, item 2).

2,000 VND per page for the first two pages, 1,000 VND per page from the third, at most
200,000 VND per copy. Pages are counted on the original (a dossier of three scanned pages is
three pages, whatever the copy's layout), and the fee of one copy is multiplied by the number of
copies asked for. A center may waive the fee (the fee is then 0 and says so).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

from saoy.core.errors import InvalidInput

FIRST_PAGES: Final = 2
FIRST_PAGE_VND: Final = 2_000
LATER_PAGE_VND: Final = 1_000
MAX_PER_COPY_VND: Final = 200_000
MAX_COPIES: Final = 100
"""Copies one dossier may ask for: a bound on the fee, not a rule of the circular."""


@dataclass(frozen=True)
class Fee:
    """What a dossier costs, and how that was reckoned."""

    pages: int
    copies: int
    per_copy_vnd: int
    total_vnd: int
    waived: bool = False


def fee_per_copy(pages: int) -> int:
    """The fee of one copy of an original of ``pages`` pages, in VND."""
    if pages < 1:
        raise InvalidInput("a copy has at least one page", field="pages")
    first = min(pages, FIRST_PAGES) * FIRST_PAGE_VND
    later = max(pages - FIRST_PAGES, 0) * LATER_PAGE_VND
    return min(first + later, MAX_PER_COPY_VND)


def certification_fee(pages: int, copies: int = 1, *, waived: bool = False) -> Fee:
    """The fee of ``copies`` copies of an original of ``pages`` pages; 0 where the center
    waives it."""
    if not 1 <= copies <= MAX_COPIES:
        raise InvalidInput(
            f"copies must be 1..{MAX_COPIES}, got {copies}: ask for fewer copies",
            field="header.copies",
        )
    per_copy = fee_per_copy(pages)
    total = 0 if waived else per_copy * copies
    return Fee(pages=pages, copies=copies, per_copy_vnd=per_copy, total_vnd=total, waived=waived)


def format_vnd(amount: int) -> str:
    """An amount as Vietnamese write it: ``12.000 ₫``."""
    return f"{amount:,}".replace(",", ".") + " ₫"


__all__ = [
    "FIRST_PAGE_VND",
    "LATER_PAGE_VND",
    "MAX_COPIES",
    "MAX_PER_COPY_VND",
    "Fee",
    "certification_fee",
    "fee_per_copy",
    "format_vnd",
]
