"""The QR code on the front of a chip ID card, read with zxing-cpp.

It carries ``number|old number|name|date of birth|sex|address|issue date`` with dates as
``ddmmyyyy`` (the old 9-digit number may be empty)."""

from __future__ import annotations

import re
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


def read_qr_codes(gray: np.ndarray) -> list[str]:
    """The text of every QR code found on an H x W uint8 image."""
    found = zxingcpp.read_barcodes(
        np.ascontiguousarray(gray),
        formats=zxingcpp.BarcodeFormats(zxingcpp.BarcodeFormat.QRCode),
        try_rotate=True,
    )
    return [r.text for r in found if r.valid and r.text]


def read_card_qr(gray: np.ndarray) -> CardQr | None:
    """The card QR on a page, the first in the card's format if several; None when no QR
    code can be read."""
    texts = read_qr_codes(gray)
    if not texts:
        return None
    parsed = [parse_card_qr(t) for t in texts]
    return next((p for p in parsed if p.well_formed), parsed[0])
