"""The certification register of a center for a year as a PDF, to be sealed by the center: the
book as it would be printed (A4 landscape, the header repeated on every page), one row per
number, with nothing of the citizens (the copy's code says where the rest is)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from io import BytesIO
from typing import Any

from reportlab.lib.pagesizes import A4, landscape
from reportlab.pdfgen.canvas import Canvas

from saoy.core.desk.register import BOOK, KIND, VIETNAM
from saoy.core.render import FONT, FONT_BOLD, _ensure_fonts

MM = 72 / 25.4
ROW = 6.2 * MM
COLUMNS = (  # (heading, width in mm)
    ("Số chứng thực\nNumber", 24),
    ("Ngày, giờ chứng thực\nCertified at", 40),
    ("Mã bản sao\nCopy code", 62),
    ("Số trang\nPages", 18),
    ("Người thực hiện chứng thực\nCertifying official", 80),
    ("Tình trạng\nState", 28),
)
STATES = {"issued": "đã cấp / issued", "reserved": "đang ký / signing", "free": "trống / free"}


def _cells(entry: dict[str, Any]) -> tuple[str, ...]:
    issued = entry["issued_at"]
    when = issued.astimezone(VIETNAM).strftime("%d/%m/%Y %H:%M") if issued else ""
    who = entry["official_name"]
    if entry["official_title"]:
        who += f" — {entry['official_title']}"
    return (
        str(entry["number"]),
        when,
        entry["code"],
        str(entry["pages"] or ""),
        who,
        STATES.get(entry["state"], entry["state"]),
    )


def render_register(
    center_name: str, center_code: str, year: int, entries: Sequence[dict[str, Any]]
) -> bytes:
    """The book's PDF (fonts embedded), every page numbered "page i of n"."""
    _ensure_fonts()
    width, height = landscape(A4)
    rows_per_page = int((height - 62 * MM) / ROW)
    pages = [entries[i : i + rows_per_page] for i in range(0, len(entries), rows_per_page)]
    pages = pages or [[]]
    out = BytesIO()
    canvas = Canvas(out, pagesize=(width, height), invariant=1, pageCompression=1)
    canvas.setTitle(f"Sổ chứng thực {BOOK}/{year}-{KIND} — {center_name}")
    canvas.setSubject("Sổ chứng thực bản sao từ bản chính (Thông tư 01/2020/TT-BTP)")
    left = 14 * MM
    for number, rows in enumerate(pages, 1):
        y = height - 14 * MM
        canvas.setFont(FONT_BOLD, 11)
        canvas.drawCentredString(width / 2, y, "SỔ CHỨNG THỰC BẢN SAO TỪ BẢN CHÍNH")
        y -= 5.5 * MM
        canvas.setFont(FONT, 9)
        canvas.drawCentredString(
            width / 2, y, f"{center_name} ({center_code}) — Quyển số {BOOK}/{year}-{KIND}"
        )
        y -= 10 * MM
        x = left
        canvas.setFont(FONT_BOLD, 7.5)
        for heading, mm in COLUMNS:
            for i, line in enumerate(heading.split("\n")):
                canvas.drawString(x + 1 * MM, y - i * 3.4 * MM, line)
            x += mm * MM
        y -= 8 * MM
        canvas.line(left, y + 4.6 * MM, x, y + 4.6 * MM)
        canvas.setFont(FONT, 8)
        for entry in rows:
            x = left
            for text, (_, mm) in zip(_cells(entry), COLUMNS, strict=True):
                canvas.drawString(x + 1 * MM, y, text)
                x += mm * MM
            y -= ROW
        canvas.setFont(FONT, 7)
        canvas.drawString(left, 10 * MM, f"In lúc / Printed {datetime.now(VIETNAM):%d/%m/%Y %H:%M}")
        canvas.drawRightString(
            width - left, 10 * MM, f"Trang {number}/{len(pages)} — page {number} of {len(pages)}"
        )
        canvas.showPage()
    canvas.save()
    return out.getvalue()
