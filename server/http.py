"""The HTTP side: the verification page a phone opens from the QR, /metrics and /healthz, and
what verifiers fetch from the PKI (CRLs, OCSP answers, the root and the QR certificate)."""

from __future__ import annotations

import asyncio
import html
from base64 import b64decode
from collections.abc import Callable, Sequence
from concurrent.futures import Executor
from pathlib import Path
from string import Template
from typing import Any, TypeVar
from urllib.parse import quote
from zoneinfo import ZoneInfo

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from saoy.core.errors import InvalidInput, NotFound, OutOfOrder, TooLarge
from saoy.core.trust.pki import CERTIFICATE_NAMES, CRL_NAMES
from saoy.core.trust.verify import Verdict, VerificationReport, Verifier
from saoy.server.metrics import Metrics

T = TypeVar("T")
LOCAL_TIME = ZoneInfo("Asia/Ho_Chi_Minh")
TEMPLATES = Path(__file__).parent / "templates"
MAX_OCSP_REQUEST_BYTES = 4096
"""The largest OCSP request accepted: one asking about one certificate is about 100 bytes."""
OCSP_RESPONSE_TYPE = "application/ocsp-response"
PAGE = Template((TEMPLATES / "verify.html").read_text(encoding="utf-8"))
RESULT = Template((TEMPLATES / "result.html").read_text(encoding="utf-8"))

VERDICT_TEXT = {
    Verdict.VALID: ("HỢP LỆ", "VALID", "valid"),
    Verdict.REVOKED: ("ĐÃ THU HỒI", "REVOKED", "revoked"),
    Verdict.UNKNOWN: ("KHÔNG TÌM THẤY", "UNKNOWN", "unknown"),
    Verdict.ALTERED: ("ĐÃ BỊ THAY ĐỔI", "ALTERED", "altered"),
}


def render_page(report: VerificationReport | None, code_text: str = "") -> str:
    """The verification page: the verdict when there is one, and the forms to check another
    code or upload a PDF."""
    if report is None:
        return PAGE.substitute(title="Xác thực bản sao / Copy verification", result="")
    vi, en, css = VERDICT_TEXT[report.verdict]
    issued = (
        report.issued_at.astimezone(LOCAL_TIME).strftime("%d/%m/%Y %H:%M:%S (GMT+7)")
        if report.issued_at
        else "—"
    )
    checks = "\n".join(
        f"<li class='{c.outcome.value}'>{html.escape(c.name)}: {html.escape(c.reason)}</li>"
        for c in report.checks
    )
    download = (
        f"<a id='download' href='/v/{html.escape(report.code)}/copy.pdf'>"
        "Tải bản sao / Download the copy</a>"
        if report.verdict in (Verdict.VALID, Verdict.REVOKED)
        else ""
    )
    code = report.code or code_text
    result = RESULT.substitute(
        code=html.escape(code or "—"),
        verdict_class=css,
        verdict_vi=vi,
        verdict_en=en,
        reason=html.escape(report.reason),
        issuer=html.escape(report.issuer or "—"),
        issued=html.escape(issued),
        pages=report.pages or "—",
        sha256=html.escape(report.sha256 or "—"),
        checks=checks,
        download=download,
    )
    return PAGE.substitute(title=f"{en} — {html.escape(code)}" if code else en, result=result)


def create_http_app(
    *,
    verifier: Callable[[], Verifier | None],
    executor: Executor,
    metrics: Metrics,
    ready: Callable[[], bool],
    max_upload_bytes: int,
    crl: Callable[[str], bytes],
    ocsp: Callable[[bytes], bytes],
    log_key: Callable[[], str],
    certificate: Callable[[str], bytes],
    middlewares: Sequence[Any] = (),
) -> web.Application:
    """Routes of the HTTP side. ``verifier`` is looked up per request because the verifier
    needs the bound HTTP port for its URLs; ``ocsp`` turns a DER OCSP request into a DER
    response."""

    async def run(fn: Callable[..., T], *args: object) -> T:
        return await asyncio.get_running_loop().run_in_executor(executor, fn, *args)

    async def healthz(_: web.Request) -> web.Response:
        if ready():
            return web.json_response({"status": "SERVING"})
        return web.json_response({"status": "NOT_SERVING"}, status=503)

    async def metrics_page(_: web.Request) -> web.Response:
        body = generate_latest(metrics.registry)
        return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})

    def current() -> Verifier:
        found = verifier()
        if found is None:
            raise web.HTTPServiceUnavailable(text="starting")
        return found

    def page(report: VerificationReport | None, status: int = 200, code: str = "") -> web.Response:
        if report is not None:
            metrics.verifications.labels(verdict=report.verdict.value).inc()
        return web.Response(text=render_page(report, code), status=status, content_type="text/html")

    async def index(_: web.Request) -> web.Response:
        return page(None)

    async def verify_query(request: web.Request) -> web.Response:
        code = request.query.get("code", "").strip()
        if not code:
            raise web.HTTPFound("/")
        raise web.HTTPFound(f"/v/{quote(code, safe='')}")

    async def verify_code(request: web.Request) -> web.Response:
        code_text = request.match_info["code"]
        try:
            report = await run(current().by_code, code_text)
        except NotFound as error:
            return page(VerificationReport(Verdict.UNKNOWN, error.message), 404, code_text)
        except InvalidInput as error:
            return page(VerificationReport(Verdict.UNKNOWN, error.message), 400, code_text)
        return page(report)

    async def verify_upload(request: web.Request) -> web.Response:
        data = b""
        if request.content_type.startswith("multipart/"):
            form = await request.post()
            field = form.get("pdf")
            if isinstance(field, web.FileField):
                data = field.file.read()
        else:
            data = await request.read()
        if not data:
            return page(
                VerificationReport(Verdict.UNKNOWN, "Chưa chọn tệp / No file was uploaded"), 400
            )
        try:
            report = await run(current().by_pdf, data)
        except TooLarge as error:  # beyond what a copy can be: pages, objects, decoded bytes
            return page(VerificationReport(Verdict.UNKNOWN, error.message), 413)
        except InvalidInput as error:  # a file that arrived whole but cannot be read as a PDF
            return page(VerificationReport(Verdict.UNKNOWN, error.message), 422)
        return page(report)

    async def revocation_list(request: web.Request) -> web.Response:
        name = request.match_info["name"]
        if name not in CRL_NAMES:
            raise web.HTTPNotFound(text=f"no CRL named {name}")
        body = await run(crl, name)
        return web.Response(body=body, content_type="application/pkix-crl")

    async def ocsp_answer(request_der: bytes) -> web.Response:
        body = await run(ocsp, request_der)
        return web.Response(body=body, content_type=OCSP_RESPONSE_TYPE)

    async def ocsp_post(request: web.Request) -> web.Response:
        """RFC 6960 §A.1.1: the DER request is the body (``application/ocsp-request``)."""
        cap = MAX_OCSP_REQUEST_BYTES
        body = bytearray()
        if (request.content_length or 0) <= cap:
            while len(body) <= cap and (chunk := await request.content.read(cap + 1 - len(body))):
                body += chunk
        if (request.content_length or 0) > cap or len(body) > cap:
            raise web.HTTPRequestEntityTooLarge(
                max_size=cap,
                actual_size=max(request.content_length or 0, len(body)),
                text=f"an OCSP request is at most {cap} bytes",
            )
        return await ocsp_answer(bytes(body))

    async def ocsp_get(request: web.Request) -> web.Response:
        """RFC 6960 §A.1.1: the request in base64 (URL-encoded) as the last path segment."""
        encoded = request.match_info["request"]
        if len(encoded) > MAX_OCSP_REQUEST_BYTES * 4 // 3 + 4:
            raise web.HTTPRequestURITooLong(text="OCSP request too long: POST it")
        try:
            request_der = b64decode(encoded, validate=True)
        except ValueError:  # binascii.Error
            request_der = b""  # answered malformedRequest, as any unparsable request
        return await ocsp_answer(request_der)

    async def certificate_file(request: web.Request) -> web.Response:
        name = request.match_info["name"]
        if name not in CERTIFICATE_NAMES:
            raise web.HTTPNotFound(text=f"no certificate named {name}")
        body = await run(certificate, name)
        return web.Response(
            body=body,
            content_type="application/x-pem-file",
            headers={"Content-Disposition": f'attachment; filename="{name}.pem"'},
        )

    async def log_key_page(_: web.Request) -> web.Response:
        return web.Response(text=log_key() + "\n", content_type="text/plain")

    async def download(request: web.Request) -> web.Response:
        try:
            copy, data = await run(current().copy_pdf, request.match_info["code"])
        except (NotFound, InvalidInput) as error:
            raise web.HTTPNotFound(text=error.message) from None
        except OutOfOrder as error:  # held back until its fee is paid
            raise web.HTTPPaymentRequired(text=error.message) from None
        return web.Response(
            body=data,
            content_type="application/pdf",
            headers={"Content-Disposition": f'attachment; filename="{copy.code}.pdf"'},
        )

    app = web.Application(client_max_size=max_upload_bytes, middlewares=list(middlewares))
    app.router.add_get("/", index)
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/metrics", metrics_page)
    app.router.add_get("/v", verify_query)
    app.router.add_get("/v/{code}", verify_code)
    app.router.add_get("/v/{code}/copy.pdf", download)
    app.router.add_post("/verify", verify_upload)
    app.router.add_get("/pki/{name}.crl", revocation_list)
    app.router.add_get("/pki/{name}.pem", certificate_file)
    app.router.add_post("/pki/ocsp", ocsp_post)
    app.router.add_get("/pki/ocsp/{request:.+}", ocsp_get)
    app.router.add_get("/log/key", log_key_page)
    return app
