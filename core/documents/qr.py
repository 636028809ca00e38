"""The QR code on the front of a chip ID card, read with zxing-cpp.

It carries ``number|old number|name|date of birth|sex|address|issue date`` with dates as
``ddmmyyyy`` (the old 9-digit number may be empty)."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date

import numpy as np
import zxingcpp


@dataclass(frozen=True)
class CardQr:
    """What a card's QR code says; ``fields`` is empty when the text is not in the card's
    format (``raw`` is kept for a person to look at)."""

    raw: str
    id_number: str = ""
    old_id_number: str = ""
    full_name: str = ""
    date_of_birth: date | None = None
    sex: str = ""
    address: str = ""
    issue_date: date | None = None

    @property
    def well_formed(self) -> bool:
        return bool(re.fullmatch(r"\d{12}", self.id_number)) and self.date_of_birth is not None


def _ddmmyyyy(text: str) -> date | None:
    if not re.fullmatch(r"\d{8}", text):
        return None
    try:
        return date(int(text[4:]), int(text[2:4]), int(text[:2]))
    except ValueError:
        return None


def parse_card_qr(text: str) -> CardQr:
    """Split a card QR's text into its fields."""
    parts = text.strip().split("|")
    if len(parts) < 7:
        return CardQr(raw=text)
    number, old, name, born, sex, address, issued = (p.strip() for p in parts[:7])
    return CardQr(
        raw=text,
        id_number=number,
        old_id_number=old,
        full_name=name,
        date_of_birth=_ddmmyyyy(born),
        sex=sex,
        address=address,
        issue_date=_ddmmyyyy(issued),
    )


@dataclass(frozen=True)
class QrCode:
    """A QR code found on a page: its text and where it lies (left, top, right, bottom in
    the page's pixels)."""

    text: str
    box: tuple[int, int, int, int]


def find_qr_codes(gray: np.ndarray) -> list[QrCode]:
    """Every QR code that can be read on an H x W uint8 image."""
    found = zxingcpp.read_barcodes(
        np.ascontiguousarray(gray),
        formats=zxingcpp.BarcodeFormats(zxingcpp.BarcodeFormat.QRCode),
        try_rotate=True,
    )
    codes = []
    for r in found:
        if not (r.valid and r.text):
            continue
        p = r.position
        corners = (p.top_left, p.top_right, p.bottom_right, p.bottom_left)
        xs, ys = [c.x for c in corners], [c.y for c in corners]
        codes.append(QrCode(r.text, (min(xs), min(ys), max(xs) + 1, max(ys) + 1)))
    return codes


def card_qr(codes: Sequence[QrCode]) -> CardQr | None:
    """The card QR among the codes found on a page, the first in the card's format if
    several; None when there is none."""
    if not codes:
        return None
    parsed = [parse_card_qr(code.text) for code in codes]
    return next((p for p in parsed if p.well_formed), parsed[0])


def read_card_qr(gray: np.ndarray) -> CardQr | None:
    """The card QR on a page (see :func:`card_qr`); None when no QR code can be read."""
    return card_qr(find_qr_codes(gray))
