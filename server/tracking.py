"""saoy.v1.Tracking and the public status page: where a dossier stands, for whoever holds its
dossier code and look-up secret (the receipt). Nothing personal is shown, and an unknown code
and a wrong secret answer alike."""

from __future__ import annotations

import asyncio
import html
from collections.abc import AsyncIterator, Callable
from concurrent.futures import Executor
from datetime import datetime
from io import BytesIO
from pathlib import Path
from string import Template
from typing import TypeVar
from urllib.parse import quote

import grpc
import qrcode
import qrcode.image.svg
from aiohttp import web
from google.protobuf import timestamp_pb2

from saoy.core.errors import InvalidInput, NotFound, Unavailable
from saoy.core.reception.deadlines import VIETNAM, WorkCalendar, parse_day_swaps
from saoy.core.reception.delivery import SmtpSettings, WebhookSettings
from saoy.core.reception.fees import format_vnd
from saoy.core.reception.kpi import KpiReport
from saoy.core.reception.receipt_pdf import render_receipt
from saoy.core.reception.reception import (
    DossierView,
    PortalStatus,
    Receipt,
    Reception,
    ensure_lookup_key,
    ensure_payment_key,
    verify_payment_notice,
)
from saoy.core.storage.registry import Registry
from saoy.core.trust.verify import Verifier
from saoy.server.delivery import DeliveryMetrics, DeliveryWorker
from saoy.server.kpi import add_kpi_routes
from saoy.server.metrics import Metrics
from saoy.server.settings import Settings
from saoy.v1 import certification_pb2 as cpb
from saoy.v1 import tracking_pb2 as pb
from saoy.v1 import tracking_pb2_grpc as pb_grpc

T = TypeVar("T")
WATCH_POLL_SECONDS = 1.0
"""How often WatchDossier looks for a change (one indexed read)."""


def create_reception(settings: Settings, registry: Registry, base_url: str) -> Reception:
    """The reception of the server's settings: its look-up key under ``<data_dir>/keys``, the
    working calendar with the announced day swaps, and the center of unregistered kiosks (with
    ``kiosk_center = dev`` the dev center, registered now with the kiosks it knows)."""
    default_center = settings.kiosk_center
    reception = Reception(
        registry,
        lookup_key=ensure_lookup_key(settings.data_dir / "keys"),
        base_url=base_url,
        calendar=WorkCalendar(parse_day_swaps(settings.day_swaps)),
        payment_key=ensure_payment_key(settings.data_dir / "keys"),
        hold_unpaid=settings.release_copies == "when_paid",
    )
    if default_center == "dev":
        default_center = reception.centers.ensure_dev().code
    elif default_center:
        reception.centers.center(default_center)  # NotFound: register it first
    reception.default_center = default_center
    return reception


def kpi_of(reception: Reception | None) -> KpiReport | None:
    """The KPI report over a reception's tables (None while the server starts)."""
    return None if reception is None else KpiReport(reception.db)


def create_delivery(
    settings: Settings,
    reception: Reception,
    verifier: Verifier,
    executor: Executor,
    metrics: Metrics,
) -> DeliveryWorker | None:
    """The delivery worker of the settings' SMTP server and app webhook (None without either:
    then a kiosk may give neither an email address nor an app token)."""
    reception.outbox.max_attempts = settings.delivery_max_attempts
    reception.outbox.retry_base = settings.delivery_retry_seconds
    smtp, webhook = None, None
    if settings.smtp_url:
        ca_file = Path(settings.smtp_ca_file) if settings.smtp_ca_file else None
        smtp = SmtpSettings.from_url(settings.smtp_url, settings.smtp_from, ca_file)
        reception.email_enabled = True
    if settings.app_webhook_url:
        webhook = WebhookSettings.from_file(
            settings.app_webhook_url, Path(settings.app_webhook_secret_file)
        )
        reception.app_enabled = True
    if smtp is None and webhook is None:
        return None
    return DeliveryWorker(
        reception,
        verifier,
        smtp,
        executor,
        DeliveryMetrics(metrics),
        interval=settings.delivery_interval_seconds,
        webhook=webhook,
    )


def _timestamp(at: datetime) -> timestamp_pb2.Timestamp:
    ts = timestamp_pb2.Timestamp()
    ts.FromDatetime(at)
    return ts


def receipt_to_proto(receipt: Receipt) -> cpb.Received:
    """The receipt as the Certify stream's Received event."""
    return cpb.Received(
        dossier_code=receipt.dossier_code,
        lookup_secret=receipt.lookup_secret,
        status_url=receipt.status_url,
        pages=receipt.pages,
        copies=receipt.copies,
        fee_vnd=receipt.fee.total_vnd,
        fee_waived=receipt.fee.waived,
        appointment=_timestamp(receipt.appointment_at),
        received_at=_timestamp(receipt.received_at),
        center_code=receipt.center.code,
        center_name=receipt.center.name,
        payment_qr=receipt.payment_qr,
    )


def view_to_proto(view: DossierView) -> pb.TrackedDossier:
    receipt = view.receipt
    center = receipt.center
    return pb.TrackedDossier(
        dossier_code=receipt.dossier_code,
        status=int(view.status),  # type: ignore[arg-type]  # the enum's numbers are the portal's
        status_vi=view.status.vi,
        status_en=view.status.en,
        history=[
            pb.TrackedStatusChange(
                status=int(c.status),  # type: ignore[arg-type]
                at=_timestamp(c.at),
                text_vi=c.status.vi,
                text_en=c.status.en,
            )
            for c in view.history
        ],
        received_at=_timestamp(receipt.received_at),
        appointment=_timestamp(receipt.appointment_at),
        late=view.late,
        center=pb.TrackedCenter(
            code=center.code, name=center.name, province=center.province, address=center.address
        ),
        pages=receipt.pages,
        copies=receipt.copies,
        fee_vnd=receipt.fee.total_vnd,
        fee_waived=receipt.fee.waived,
        payment_qr=receipt.payment_qr,
        copy_code=view.copy_code or "",
        copy_url=view.copy_url or "",
        final=view.final,
        paid=view.payment is not None,
        paid_at=_timestamp(view.payment.paid_at) if view.payment is not None else None,
    )


class TrackingServicer(pb_grpc.TrackingServicer):
    """Tracking.GetDossier and Tracking.WatchDossier over the reception's records."""

    def __init__(
        self, reception: Reception, executor: Executor, *, poll_seconds: float = WATCH_POLL_SECONDS
    ) -> None:
        self.reception = reception
        self.executor = executor
        self.poll_seconds = poll_seconds

    async def _view(self, request: pb.TrackDossierRequest) -> DossierView:
        if not request.dossier_code.strip():
            raise InvalidInput(
                "dossier_code is empty: give the dossier code printed on the receipt",
                field="dossier_code",
            )
        if not request.secret.strip():
            raise InvalidInput(
                "secret is empty: give the look-up secret printed on the receipt",
                field="secret",
            )
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(
            self.executor, self.reception.view, request.dossier_code, request.secret
        )

    async def GetDossier(
        self, request: pb.TrackDossierRequest, context: grpc.aio.ServicerContext
    ) -> pb.TrackedDossier:
        return view_to_proto(await self._view(request))

    async def GetReceipt(
        self, request: pb.TrackDossierRequest, context: grpc.aio.ServicerContext
    ) -> pb.ReceiptDocument:
        view = await self._view(request)
        loop = asyncio.get_running_loop()
        pdf = await loop.run_in_executor(self.executor, render_receipt, view.receipt)
        return pb.ReceiptDocument(pdf=pdf)

    async def ConfirmPayment(
        self, request: pb.PaymentNotice, context: grpc.aio.ServicerContext
    ) -> pb.PaymentConfirmed:
        key = self.reception.payment_key
        if key is None:
            raise Unavailable("this server takes no payment notices (no bank key configured)")
        payment = verify_payment_notice(key, request.body, request.signature)
        loop = asyncio.get_running_loop()
        recorded, again = await loop.run_in_executor(
            self.executor, self.reception.confirm_payment, payment
        )
        return pb.PaymentConfirmed(
            dossier_code=recorded.dossier_code,
            amount_vnd=recorded.amount_vnd,
            bank_reference=recorded.bank_reference,
            paid_at=_timestamp(recorded.paid_at),
            already_recorded=again,
        )

    async def Rate(
        self, request: pb.RateRequest, context: grpc.aio.ServicerContext
    ) -> pb.RateResponse:
        await self._view(request.dossier)  # the same answers as GetDossier for a bad request
        loop = asyncio.get_running_loop()
        at = await loop.run_in_executor(
            self.executor,
            self.reception.rate,
            request.dossier.dossier_code,
            request.dossier.secret,
            request.score,
        )
        return pb.RateResponse(rated_at=_timestamp(at))

    async def WatchDossier(
        self, request: pb.TrackDossierRequest, context: grpc.aio.ServicerContext
    ) -> AsyncIterator[pb.TrackedDossier]:
        view = await self._view(request)
        yield view_to_proto(view)
        seen = view.history
        while not view.final:
            await asyncio.sleep(self.poll_seconds)
            view = await self._view(request)
            if view.history != seen:
                seen = view.history
                yield view_to_proto(view)


# -- the status page --------------------------------------------------------------------------

_PAGE = Template(
    """<!doctype html>
<html lang="vi">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="robots" content="noindex">
<title>$title</title>
<style>
  body { font-family: system-ui, sans-serif; max-width: 40rem; margin: 1rem auto; padding: 0 1rem; }
  .status { font-size: 1.5rem; font-weight: 700; padding: 1rem; border-radius: .5rem;
            background: #e8f0fb; color: #123d73; }
  .status.s9, .status.s10 { background: #e3f6e5; color: #135c1e; }
  .status.s5, .status.s8 { background: #fde4e1; color: #8a1c0f; }
  .late { color: #8a1c0f; font-weight: 600; }
  dl { display: grid; grid-template-columns: max-content 1fr; gap: .3rem 1rem; }
  dt { font-weight: 600; } dd { margin: 0; word-break: break-word; }
  ol { padding-left: 1.2rem; } form { margin: 1rem 0; }
  input[type=text] { width: 18rem; font-family: monospace; }
  .qr svg { width: 12rem; height: 12rem; }
</style>
</head>
<body>
<h1>Tra cứu hồ sơ<br><small>Dossier status</small></h1>
$body
<hr>
<form method="get" action="/d" id="lookup-form">
  <p><label>Mã hồ sơ / Dossier code<br>
    <input type="text" name="code" id="code-input"
           placeholder="000.00.01.H26-261207-0001"></label></p>
  <p><label>Mã tra cứu / Look-up secret<br>
    <input type="text" name="s" id="secret-input" placeholder="XXXXX-XXXXX"></label></p>
  <button type="submit">Tra cứu / Look up</button>
</form>
</body>
</html>
"""
)


def _local(at: datetime) -> str:
    return at.astimezone(VIETNAM).strftime("%H:%M %d/%m/%Y")


def _qr_svg(payload: str) -> str:
    image = qrcode.make(payload, image_factory=qrcode.image.svg.SvgPathImage, box_size=8)
    out = BytesIO()
    image.save(out)
    text = out.getvalue().decode()
    return text[text.index("<svg") :]


def render_status_page(view: DossierView | None, message: str = "") -> str:
    """The status page of a dossier (Vietnamese and English), or the look-up form alone with
    ``message``."""
    if view is None:
        body = f"<p id='message'>{html.escape(message)}</p>" if message else ""
        return _PAGE.substitute(title="Tra cứu hồ sơ / Dossier status", body=body)
    receipt = view.receipt
    status = view.status
    history = "\n".join(
        f"<li><time>{_local(c.at)}</time> — {html.escape(c.status.vi)}"
        f" / {html.escape(c.status.en)}</li>"
        for c in view.history
    )
    late = "<p class='late' id='late'>Quá hạn / Past its appointment</p>" if view.late else ""
    fee = format_vnd(receipt.fee.total_vnd)
    if receipt.fee.waived:
        fee += " (miễn / waived)"
    if view.payment is not None:
        fee += f" — đã thanh toán / paid {_local(view.payment.paid_at)}"
    payment = ""
    if receipt.payment_qr and view.payment is None and status is not PortalStatus.STOPPED:
        payment = (
            "<h2>Thanh toán lệ phí / Pay the fee (VietQR)</h2>"
            f"<div class='qr' id='payment-qr'>{_qr_svg(receipt.payment_qr)}</div>"
        )
    copy = ""
    if view.copy_url:
        copy = (
            f"<dt>Bản sao / Copy</dt><dd><a id='copy-link' href='{html.escape(view.copy_url)}'>"
            f"{html.escape(view.copy_code or '')}</a></dd>"
        )
    body = f"""
<p class="status s{int(status)}" id="status">{html.escape(status.vi)}
  <br><small>{html.escape(status.en)}</small></p>
{late}
<dl>
  <dt>Mã hồ sơ / Dossier code</dt><dd id="dossier-code">{html.escape(receipt.dossier_code)}</dd>
  <dt>Nơi tiếp nhận / Received at</dt><dd>{html.escape(receipt.center.name)},
    {html.escape(receipt.center.province)}</dd>
  <dt>Tiếp nhận lúc / Received</dt><dd>{_local(receipt.received_at)}</dd>
  <dt>Hẹn trả / Appointment</dt><dd id="appointment">{_local(receipt.appointment_at)}</dd>
  <dt>Số trang / Pages</dt><dd>{receipt.pages}</dd>
  <dt>Số bản sao / Copies</dt><dd>{receipt.copies}</dd>
  <dt>Lệ phí / Fee</dt><dd id="fee">{html.escape(fee)}</dd>
  {copy}
</dl>
<h2>Quá trình xử lý / History</h2>
<ol id="history">{history}</ol>
{payment}"""
    title = f"{status.vi} / {status.en} — {receipt.dossier_code}"
    return _PAGE.substitute(title=html.escape(title), body=body)


def add_status_routes(
    app: web.Application, reception: Callable[[], Reception | None], executor: Executor
) -> None:
    """``GET /d`` (the look-up form, or a redirect to a dossier's page),
    ``GET /d/{code}?s=SECRET`` (its page; 404 alike for an unknown code or a wrong secret) and
    ``GET /d/{code}/receipt.pdf?s=SECRET`` (its receipt)."""

    async def run(fn: Callable[..., T], *args: object) -> T:
        return await asyncio.get_running_loop().run_in_executor(executor, fn, *args)

    def page(text: str, status: int = 200) -> web.Response:
        return web.Response(
            text=text,
            status=status,
            content_type="text/html",
            headers={"Cache-Control": "no-store", "Referrer-Policy": "no-referrer"},
        )

    async def lookup_form(request: web.Request) -> web.Response:
        code = request.query.get("code", "").strip()
        secret = request.query.get("s", "").strip()
        if code:
            raise web.HTTPFound(f"/d/{quote(code, safe='')}?s={quote(secret, safe='')}")
        return page(render_status_page(None))

    async def status_page(request: web.Request) -> web.Response:
        found = reception()
        if found is None:
            raise web.HTTPServiceUnavailable(text="starting")
        try:
            view = await run(found.view, request.match_info["code"], request.query.get("s", ""))
        except (NotFound, InvalidInput) as error:
            return page(render_status_page(None, error.message), 404)
        return page(render_status_page(view))

    async def receipt_pdf(request: web.Request) -> web.Response:
        found = reception()
        if found is None:
            raise web.HTTPServiceUnavailable(text="starting")
        try:
            view = await run(found.view, request.match_info["code"], request.query.get("s", ""))
        except (NotFound, InvalidInput) as error:
            return page(render_status_page(None, error.message), 404)
        pdf = await run(render_receipt, view.receipt)
        return web.Response(
            body=pdf,
            content_type="application/pdf",
            headers={
                "Cache-Control": "no-store",
                "Content-Disposition": f'inline; filename="{view.receipt.dossier_code}.pdf"',
            },
        )

    add_kpi_routes(app, lambda: kpi_of(reception()), executor)
    app.router.add_get("/d", lookup_form)
    app.router.add_get("/d/{code}", status_page)
    app.router.add_get("/d/{code}/receipt.pdf", receipt_pdf)


__all__ = [
    "TrackingServicer",
    "add_status_routes",
    "create_delivery",
    "create_reception",
    "kpi_of",
    "receipt_to_proto",
    "render_status_page",
    "view_to_proto",
]
