"""Fees of Circular 226/2016/TT-BTC art. 4: per page, capped per copy, times the copies."""

from __future__ import annotations

import pytest

from saoy.core.errors import InvalidInput
from saoy.core.reception.fees import certification_fee, fee_per_copy, format_vnd


@pytest.mark.parametrize(
    ("pages", "vnd"),
    [
        (1, 2_000),  # one page: 2,000
        (2, 4_000),  # the first two pages at 2,000 each
        (3, 5_000),  # from the third page, 1,000 each
        (10, 12_000),
        (197, 199_000),
        (198, 200_000),  # 4,000 + 196 x 1,000 reaches the cap
        (199, 200_000),  # at most 200,000 per copy
        (1_000, 200_000),
    ],
)
def test_fee_per_copy_follows_the_circular(pages: int, vnd: int) -> None:
    assert fee_per_copy(pages) == vnd


def test_the_fee_is_per_copy_times_the_copies() -> None:
    fee = certification_fee(pages=5, copies=3)
    assert (fee.per_copy_vnd, fee.total_vnd, fee.waived) == (7_000, 21_000, False)
    capped = certification_fee(pages=300, copies=2)
    assert capped.total_vnd == 400_000  # the cap is per copy, not per dossier


def test_a_center_may_waive_the_fee() -> None:
    fee = certification_fee(pages=4, copies=2, waived=True)
    assert fee.total_vnd == 0 and fee.waived and fee.per_copy_vnd == 6_000


@pytest.mark.parametrize("copies", [0, 101])
def test_copies_out_of_range_name_the_field(copies: int) -> None:
    with pytest.raises(InvalidInput) as error:
        certification_fee(pages=1, copies=copies)
    assert error.value.field == "header.copies"


def test_no_pages_is_no_copy() -> None:
    with pytest.raises(InvalidInput):
        fee_per_copy(0)


def test_amounts_are_written_the_vietnamese_way() -> None:
    assert format_vnd(200_000) == "200.000 ₫"
    assert format_vnd(0) == "0 ₫"
