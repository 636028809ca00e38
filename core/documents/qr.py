"""The QR code of a citizen identity card, read with zxing-cpp.

The 2021 chip card has it on the front, carrying ``number|old number|name|date of
birth|sex|address|issue date`` with dates as ``ddmmyyyy`` (the old 9-digit number may be
empty). The 2024 card has it on the back (Circular 16/2024/TT-BCA) with other content: the
holder's number and name, the old 9-digit number, relatives' names and numbers. Its layout is
not published, so a card QR in any other layout is read by what each part looks like."""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import date
from typing import Any

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
    # True for the 2021 card's fixed seven parts; False when the parts were told apart by what
    # they look like, where only the holder's number is sure to be the holder's.
    positional: bool = True

    @property
    def well_formed(self) -> bool:
        """A card's QR: the holder's 12-digit number, and a birth date or a name."""
        return bool(re.fullmatch(r"\d{12}", self.id_number)) and bool(
            self.date_of_birth is not None or self.full_name
        )


def _ddmmyyyy(text: str) -> date | None:
    if not re.fullmatch(r"\d{8}", text):
        return None
    try:
        return date(int(text[4:]), int(text[2:4]), int(text[:2]))
    except ValueError:
        return None


def parse_card_qr(text: str) -> CardQr:
    """Split a card QR's text into its fields: the 2021 card's seven parts by position, any
    other layout by what each part looks like (the first 12-digit number is the holder's,
    the first name-like part their name, and so on)."""
    parts = [p.strip() for p in text.strip().split("|")]
    if len(parts) >= 7 and re.fullmatch(r"\d{12}", parts[0]):
        number, old, name, born, sex, address, issued = parts[:7]
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
    if len(parts) < 2:
        return CardQr(raw=text)

    def first(test: Callable[[str], bool]) -> str:
        return next((p for p in parts if test(p)), "")

    dates = [d for d in (_ddmmyyyy(p) for p in parts) if d is not None]
    return CardQr(
        raw=text,
        id_number=first(lambda p: bool(re.fullmatch(r"\d{12}", p))),
        old_id_number=first(lambda p: bool(re.fullmatch(r"\d{9}", p))),
        full_name=first(lambda p: len(p.split()) >= 2 and all(w.isalpha() for w in p.split())),
        date_of_birth=dates[0] if dates else None,
        sex=first(lambda p: p in ("Nam", "Nữ")),
        address=first(lambda p: "," in p and any(ch.isalpha() for ch in p)),
        positional=False,
    )


@dataclass(frozen=True)
class QrCode:
    """A QR code found on a page: its text and where it lies (left, top, right, bottom in
    the page's pixels)."""

    text: str
    box: tuple[int, int, int, int]


def find_qr_codes(gray: np.ndarray, card: bool = False) -> list[QrCode]:
    """Every QR code that can be read on an H x W uint8 image.

    Modules of a few pixels softened by the camera's blur (a card's QR code photographed)
    can fall apart under the local binarizer, which follows the paper's shading, and hold
    together under one global threshold: where the first finds none, the second is tried.
    Where a symbol is seen but read by neither (a small code softened again when the page was
    straightened), it is read with a fixed threshold, then from its own crop enlarged twice.
    On a ``card`` (a card-sized page, whose code has modules of a few pixels) where no symbol
    is seen at all, or none of those seen is read so, the page enlarged by half is read
    too."""
    image = np.ascontiguousarray(gray)
    found: list[Any] = []
    seen: list[Any] = []
    for binarizer in (zxingcpp.Binarizer.LocalAverage, zxingcpp.Binarizer.GlobalHistogram):
        found = _read(image, binarizer)
        seen += [r for r in found if not r.valid]
        if _readable(found):
            return _codes(found)
    if not seen:
        return _enlarged(image, 1.5) if card else []
    found = _read(image, zxingcpp.Binarizer.FixedThreshold)
    if _readable(found):
        return _codes(found)
    h, w = image.shape
    for symbol in seen:
        left, top, right, bottom = _corners_box(symbol)
        margin = max(8, (right - left) // 4)
        x0, y0 = max(0, left - margin), max(0, top - margin)
        x1, y1 = min(w, right + margin), min(h, bottom + margin)
        if x1 - x0 < 8 or y1 - y0 < 8:
            continue
        codes = _enlarged(np.ascontiguousarray(image[y0:y1, x0:x1]), 2.0, x0, y0)
        if codes:
            return codes
    return _enlarged(image, 1.5) if card else []


_QR = zxingcpp.BarcodeFormats(zxingcpp.BarcodeFormat.QRCode)


def _enlarged(image: np.ndarray, scale: float, x0: int = 0, y0: int = 0) -> list[QrCode]:
    """The codes read on ``image`` enlarged by ``scale``, their boxes in ``image``'s pixels
    moved by (``x0``, ``y0``): a crop's corner on its page."""
    import cv2

    big = cv2.resize(image, None, fx=scale, fy=scale, interpolation=cv2.INTER_CUBIC)
    out = []
    for code in _codes(_read(big, zxingcpp.Binarizer.LocalAverage)):
        left, top, right, bottom = code.box
        box = (int(left / scale), int(top / scale), -int(-right // scale), -int(-bottom // scale))
        out.append(QrCode(code.text, (x0 + box[0], y0 + box[1], x0 + box[2], y0 + box[3])))
    return out


def _read(image: np.ndarray, binarizer: Any) -> list[Any]:
    return list(
        zxingcpp.read_barcodes(
            image, formats=_QR, try_rotate=True, binarizer=binarizer, return_errors=True
        )
    )


def _readable(results: Sequence[Any]) -> bool:
    return any(r.valid and r.text for r in results)


def _corners_box(result: Any) -> tuple[int, int, int, int]:
    p = result.position
    corners = (p.top_left, p.top_right, p.bottom_right, p.bottom_left)
    xs, ys = [c.x for c in corners], [c.y for c in corners]
    return min(xs), min(ys), max(xs) + 1, max(ys) + 1


def _codes(results: Sequence[Any]) -> list[QrCode]:
    return [QrCode(r.text, _corners_box(r)) for r in results if r.valid and r.text]


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
