"""The receipt as a PDF (phiếu tiếp nhận và hẹn trả kết quả): what the kiosk prints.

One A5 page: the receiving center, the dossier code and look-up secret, what was asked for
(pages, copies), the fee, when it was received and when the result is due, a QR code of the
status page and, when a fee is due and the center takes transfers, the VietQR code to pay it.
Nothing personal is printed: a receipt left at the kiosk tells its finder only where the
dossier stands.
"""

from __future__ import annotations

from datetime import datetime
from io import BytesIO

import qrcode
import qrcode.constants
from reportlab.lib.pagesizes import A5
from reportlab.pdfgen.canvas import Canvas

from saoy.core.reception.deadlines import VIETNAM
from saoy.core.reception.fees import format_vnd
from saoy.core.reception.reception import Receipt
from saoy.core.render import FONT, FONT_BOLD, _ensure_fonts

MM = 72 / 25.4
QR_SIZE = 38 * MM


def _qr(canvas: Canvas, text: str, x: float, y: float, size: float) -> None:
    """A QR code (level M, a 4-module quiet zone) with its lower left corner at (x, y)."""
    code = qrcode.QRCode(error_correction=qrcode.constants.ERROR_CORRECT_M, border=4)
    code.add_data(text)
    code.make(fit=True)
    matrix = code.get_matrix()
    module = size / len(matrix)
    canvas.setFillColorRGB(0, 0, 0)
    for row, cells in enumerate(matrix):
        top = y + size - (row + 1) * module
        for col, dark in enumerate(cells):
            if dark:
                canvas.rect(x + col * module, top, module, module, stroke=0, fill=1)


def _when(at: datetime) -> str:
    return at.astimezone(VIETNAM).strftime("%H:%M ngày %d/%m/%Y")


def render_receipt(receipt: Receipt) -> bytes:
    """The receipt's PDF (one A5 page, fonts embedded)."""
    _ensure_fonts()
    out = BytesIO()
    canvas = Canvas(out, pagesize=A5, invariant=1, pageCompression=1)
    canvas.setTitle(f"Phiếu tiếp nhận {receipt.dossier_code}")
    canvas.setSubject("Phiếu tiếp nhận hồ sơ và hẹn trả kết quả")
    width, height = A5
    center_x = width / 2
    y = height - 14 * MM

    def centered(text: str, size: float, bold: bool = False, step: float = 5.5) -> None:
        nonlocal y
        canvas.setFont(FONT_BOLD if bold else FONT, size)
        canvas.drawCentredString(center_x, y, text)
        y -= step * MM

    centered("CỘNG HÒA XÃ HỘI CHỦ NGHĨA VIỆT NAM", 9.5, bold=True, step=4.5)
    centered("Độc lập - Tự do - Hạnh phúc", 9, bold=True, step=7)
    centered(receipt.center.name, 9, step=4.5)
    centered(f"Mã đơn vị / Unit code: {receipt.center.code}", 8, step=9)
    centered("PHIẾU TIẾP NHẬN HỒ SƠ VÀ HẸN TRẢ KẾT QUẢ", 12, bold=True, step=5)
    centered("Receipt and appointment", 9, step=9)

    fee = format_vnd(receipt.fee.total_vnd)
    if receipt.fee.waived:
        fee += " (miễn / waived)"
    rows = [
        ("Mã hồ sơ / Dossier code", receipt.dossier_code),
        ("Mã tra cứu / Look-up secret", receipt.lookup_secret),
        ("Thủ tục / Procedure", "Chứng thực bản sao từ bản chính"),
        ("Số trang bản chính / Pages", str(receipt.pages)),
        ("Số bản sao / Copies", str(receipt.copies)),
        ("Lệ phí / Fee", f"{fee} (Thông tư 226/2016/TT-BTC)"),
        ("Tiếp nhận lúc / Received", _when(receipt.received_at)),
        ("Hẹn trả kết quả / Appointment", _when(receipt.appointment_at)),
    ]
    left = 14 * MM
    for label, value in rows:
        canvas.setFont(FONT, 8.5)
        canvas.drawString(left, y, label)
        canvas.setFont(FONT_BOLD, 9.5)
        canvas.drawString(left + 52 * MM, y, value)
        y -= 6 * MM

    y -= 4 * MM
    qr_y = y - QR_SIZE
    codes = [("Tra cứu hồ sơ / Dossier status", receipt.status_url)]
    if receipt.payment_qr:
        codes.append(("Thanh toán lệ phí (VietQR) / Pay the fee", receipt.payment_qr))
    slot = width / len(codes)
    for i, (caption, text) in enumerate(codes):
        x = slot * i + (slot - QR_SIZE) / 2
        _qr(canvas, text, x, qr_y, QR_SIZE)
        canvas.setFont(FONT, 8)
        canvas.drawCentredString(x + QR_SIZE / 2, qr_y - 4 * MM, caption)

    canvas.setFont(FONT, 7)
    canvas.drawCentredString(
        center_x,
        10 * MM,
        "Giữ phiếu này để tra cứu và nhận kết quả / Keep this receipt to follow your dossier",
    )
    canvas.showPage()
    canvas.save()
    return out.getvalue()


__all__ = ["render_receipt"]
