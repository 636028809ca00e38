"""The desk console ``/desk``: the official's review in a browser, in Vietnamese or English.

Server-rendered pages over the same core the ``saoy.v1.Review`` service calls (sign-in and
sessions of :class:`~saoy.core.desk.officials.Officials`; claim, approve, refuse and rescan of
:class:`~saoy.core.desk.review.Desk`), with one small script for the keyboard. The session token
travels in an HttpOnly, SameSite=Strict cookie (Secure when the console is reached over TLS);
each form carries a CSRF token derived from it; every page carries a strict
Content-Security-Policy (scripts and styles from this server only, no inline code).
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import html
import io
import logging
import re
import secrets
from base64 import b64encode
from collections.abc import Awaitable, Callable, Mapping
from concurrent.futures import Executor
from datetime import UTC, datetime
from pathlib import Path
from string import Template
from typing import Any, Final, TypeVar
from urllib.parse import quote, urlencode

from aiohttp import web
from PIL import Image

from saoy.core.desk.officials import Official, SignInThrottled
from saoy.core.desk.register import VIETNAM
from saoy.core.desk.review import REFUSAL_GROUNDS, Correction, Desk, DossierView
from saoy.core.errors import InvalidInput, SaoyError, Unauthenticated
from saoy.server.review import ReviewMetrics

log = logging.getLogger("saoy.server")

T = TypeVar("T")

SESSION_COOKIE: Final = "saoy_desk"
PRE_SESSION_COOKIE: Final = "saoy_desk_pre"
"""A random value the sign-in form repeats (double submit): the form's CSRF token."""
LANGUAGE_COOKIE: Final = "saoy_desk_lang"
LANGUAGES: Final = ("vi", "en")
CONTENT_SECURITY_POLICY: Final = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:;"
    " form-action 'self'; frame-ancestors 'none'; base-uri 'none'; connect-src 'self'"
)
"""Scripts and styles only from files of this server (no inline code, no eval); images from
here or inline thumbnails; forms post only here; never framed."""
LOW_CONFIDENCE: Final = 0.8
QUEUE_LIMIT: Final = 20
"""Dossiers listed at once (each with its thumbnails), oldest first; the heading tells how
many wait in all."""
DISPLAYABLE: Final = {"jpeg": "image/jpeg", "png": "image/png"}
STATIC: Final = Path(__file__).parent / "static"
TEMPLATES: Final = Path(__file__).parent / "templates"
LAYOUT: Final = Template((TEMPLATES / "desk_layout.html").read_text(encoding="utf-8"))
_FIX: Final = re.compile(r"fix:(\d{1,3}):([A-Za-z0-9_.-]{1,64})")
_CORRECTION_FIELD: Final = re.compile(r"corrections\[(\d+)\]")

TEXT: Final[dict[str, tuple[str, str]]] = {
    "console": ("Bàn chứng thực", "Certification desk"),
    "sign_in": ("Đăng nhập", "Sign in"),
    "sign_out": ("Đăng xuất", "Sign out"),
    "login": ("Tên đăng nhập", "Login"),
    "password": ("Mật khẩu", "Password"),
    "totp": ("Mã xác thực (6 chữ số)", "Authenticator code (6 digits)"),
    "queue": ("Hồ sơ chờ duyệt", "Dossiers waiting for review"),
    "waiting": ("đang chờ", "waiting"),
    "empty": ("Không có hồ sơ nào chờ duyệt.", "No dossier is waiting."),
    "received": ("Tiếp nhận", "Received"),
    "deadline": ("Hẹn trả", "Deadline"),
    "kiosk": ("Ki-ốt", "Kiosk"),
    "center": ("Nơi tiếp nhận", "Received at"),
    "reasons": ("Lý do cần duyệt", "Why it needs review"),
    "pages": ("Trang", "Pages"),
    "held": ("Đang xử lý", "Held by"),
    "open": ("Mở", "Open"),
    "dossier": ("Hồ sơ", "Dossier"),
    "page": ("Trang", "Page"),
    "field": ("Trường", "Field"),
    "value": ("Giá trị đọc được", "Value read"),
    "confidence": ("Độ tin cậy", "Confidence"),
    "source": ("Nguồn", "Source"),
    "correction": ("Sửa (để trống nếu đúng)", "Correction (blank if right)"),
    "checks": ("Kiểm tra", "Checks"),
    "identity": ("Xác thực người yêu cầu", "Identity of the citizen"),
    "method": ("Phương thức", "Method"),
    "score": ("Điểm so khớp khuôn mặt", "Face match score"),
    "threshold": ("Ngưỡng", "Threshold"),
    "liveness": ("Kiểm tra người thật", "Liveness"),
    "authenticated_at": ("Thời điểm", "At"),
    "no_identity": ("Không có dữ liệu xác thực.", "No identity evidence."),
    "approve": ("Duyệt và cấp bản sao", "Approve and issue the copy"),
    "refuse": ("Từ chối", "Refuse"),
    "ground": ("Căn cứ (Nghị định 23/2015, Điều 22)", "Ground (Decree 23/2015, art. 22)"),
    "message": ("Lời nhắn cho người dân", "Words for the citizen"),
    "rescan": ("Yêu cầu quét lại", "Request a rescan"),
    "rescan_page": ("Trang cần quét lại", "Page to rescan"),
    "rescan_why": ("Lý do", "Why"),
    "back": ("Về danh sách", "Back to the queue"),
    "approved": ("Đã cấp bản sao", "Copy issued"),
    "refused": ("Đã từ chối hồ sơ.", "The dossier was refused."),
    "rescanned": ("Đã yêu cầu quét lại.", "A rescan was requested."),
    "fix_errors": (
        "Có giá trị sửa không hợp lệ: xem thông báo bên cạnh trường.",
        "A correction is not valid: see the message next to the field.",
    ),
    "read_only": ("Chỉ xem (kiểm soát viên).", "Read only (auditor)."),
    "help": ("Phím tắt", "Keyboard shortcuts"),
    "k_approve": ("Duyệt", "Approve"),
    "k_refuse": ("Từ chối", "Refuse"),
    "k_rescan": ("Yêu cầu quét lại", "Request a rescan"),
    "k_pages": (
        "Trang sau / trang trước (danh sách: hồ sơ)",
        "Next / previous page (queue: dossier)",
    ),
    "k_open": ("Mở hồ sơ đã chọn", "Open the selected dossier"),
    "k_queue": ("Trả hồ sơ, về danh sách", "Release, back to the queue"),
    "k_help": ("Hiện / ẩn trợ giúp", "Show / hide this help"),
    "k_escape": ("Đóng, bỏ chọn", "Close, leave the field"),
    "csrf": (
        "Mã CSRF của biểu mẫu thiếu hoặc sai: tải lại trang rồi thử lại.",
        "The form's CSRF token is missing or wrong: reload the page and try again.",
    ),
    "language": ("English", "Tiếng Việt"),
}

FIELD_LABELS: Final[dict[str, tuple[str, str]]] = {
    "id_number": ("Số định danh", "ID number"),
    "full_name": ("Họ, chữ đệm và tên", "Full name"),
    "date_of_birth": ("Ngày sinh", "Date of birth"),
    "birth_date": ("Ngày sinh", "Date of birth"),
    "sex": ("Giới tính", "Sex"),
    "nationality": ("Quốc tịch", "Nationality"),
    "place_of_origin": ("Quê quán", "Place of origin"),
    "place_of_birth": ("Nơi sinh", "Place of birth"),
    "place_of_residence": ("Nơi thường trú", "Place of residence"),
    "issue_date": ("Ngày cấp", "Date of issue"),
    "expiry_date": ("Có giá trị đến", "Date of expiry"),
}
"""Names of the fields most documents show; any other field shows its key."""

HELP_KEYS: Final = (
    ("A", "k_approve"),
    ("R", "k_refuse"),
    ("S", "k_rescan"),
    ("J / K", "k_pages"),
    ("Enter / O", "k_open"),
    ("Q", "k_queue"),
    ("?", "k_help"),
    ("Esc", "k_escape"),
)

HTTP_STATUS: Final = {
    "INVALID_ARGUMENT": 400,
    "UNAUTHENTICATED": 401,
    "PERMISSION_DENIED": 403,
    "NOT_FOUND": 404,
    "FAILED_PRECONDITION": 409,
    "RESOURCE_EXHAUSTED": 429,
}


def csrf_token(session_token: str) -> str:
    """The CSRF token of a session: a keyed hash of its (HttpOnly) token, so a page of another
    site can neither read nor compute it, and every front computes the same."""
    return hmac.new(session_token.encode(), b"saoy desk csrf", hashlib.sha256).hexdigest()


def _e(value: object) -> str:
    return html.escape(str(value), quote=True)


class _Page:
    """What one request renders: its language, and the official when signed in."""

    def __init__(
        self,
        lang: str,
        official: Official | None = None,
        token: str = "",
        here: str = "/desk/signin",
    ) -> None:
        self.lang = lang
        self.official = official
        self.token = token
        self.here = here  # the page the language switch reloads

    def t(self, key: str) -> str:
        vi, en = TEXT[key]
        return vi if self.lang == "vi" else en

    def field(self, name: str) -> str:
        """A field's label, with its key (which the messages of the grammar name)."""
        label = FIELD_LABELS.get(name)
        if label is None:
            return _e(name)
        return f"{_e(label[0] if self.lang == 'vi' else label[1])} <small>{_e(name)}</small>"

    def csrf_input(self) -> str:
        return f"<input type='hidden' name='csrf' value='{_e(csrf_token(self.token))}'>"

    def render(self, screen: str, title: str, body: str, status: int = 200) -> web.Response:
        other = "en" if self.lang == "vi" else "vi"
        nav = [f"<a id='language' href='{_e(self.here)}?lang={other}'>{self.t('language')}</a>"]
        who = ""
        if self.official is not None:
            who = _e(f"{self.official.full_name} — {self.official.center}")
            nav.insert(0, f"<a href='/desk/queue'>{_e(self.t('queue'))}</a>")
            nav.append(
                "<form method='post' action='/desk/signout'>"
                f"{self.csrf_input()}<button id='sign-out'>{_e(self.t('sign_out'))}</button>"
                "</form>"
            )
        text = LAYOUT.substitute(
            lang=self.lang,
            title=_e(title),
            screen=screen,
            heading=_e(self.t("console")),
            who=who,
            nav="".join(nav),
            body=body,
            help_title=_e(self.t("help")),
            help="".join(
                f"<dt><kbd>{_e(keys)}</kbd></dt><dd>{_e(self.t(key))}</dd>"
                for keys, key in HELP_KEYS
            ),
        )
        return web.Response(text=text, status=status, content_type="text/html", headers=_headers())


def _headers() -> dict[str, str]:
    return {
        "Content-Security-Policy": CONTENT_SECURITY_POLICY,
        "Cache-Control": "no-store",
        "Referrer-Policy": "no-referrer",
        "X-Content-Type-Options": "nosniff",
        "X-Frame-Options": "DENY",
    }


def _local(at: datetime) -> str:
    return at.astimezone(VIETNAM).strftime("%d/%m/%Y %H:%M")


def add_desk_routes(
    app: web.Application,
    desk: Callable[[], Desk | None],
    executor: Executor,
    metrics: ReviewMetrics | None = None,
) -> None:
    """The console's routes under ``/desk``. ``desk`` is looked up per request (the desk is
    built after the HTTP side is bound)."""

    async def run(fn: Callable[..., T], *args: Any) -> T:
        return await asyncio.get_running_loop().run_in_executor(executor, fn, *args)

    def current() -> Desk:
        found = desk()
        if found is None:
            raise web.HTTPServiceUnavailable(text="starting")
        return found

    def language(request: web.Request) -> str:
        asked = request.query.get("lang", "")
        if asked in LANGUAGES:
            return asked
        kept = request.cookies.get(LANGUAGE_COOKIE, "")
        return kept if kept in LANGUAGES else "vi"

    def secure(request: web.Request) -> bool:
        return request.secure or current().base_url.startswith("https:")

    def remember_language(request: web.Request, response: web.StreamResponse) -> None:
        asked = request.query.get("lang", "")
        if asked in LANGUAGES:
            response.set_cookie(
                LANGUAGE_COOKIE,
                asked,
                path="/desk",
                max_age=365 * 24 * 3600,
                samesite="Strict",
                secure=secure(request),
            )

    async def signed_in(request: web.Request) -> _Page:
        """The page of a signed-in official; a visitor without a live session is sent to the
        sign-in form (a disabled official's session ends at once: it is read every time)."""
        token = request.cookies.get(SESSION_COOKIE, "")
        try:
            official = await run(current().officials.authenticate, token)
        except Unauthenticated:
            if request.path.endswith(("/page", "/page/")) or "/page/" in request.path:
                raise web.HTTPUnauthorized(
                    text="sign in at /desk/signin first", headers=_headers()
                ) from None
            raise web.HTTPSeeOther("/desk/signin") from None
        # a page answering a form (the dossier's, again) switches language on its GET address
        here = request.path if request.method == "GET" else request.path.rsplit("/", 1)[0]
        return _Page(language(request), official, token, here)

    async def form_of(request: web.Request, page: _Page) -> Mapping[str, str]:
        """The posted form, once its CSRF token is checked."""
        posted = await request.post()
        form = {k: v for k, v in posted.items() if isinstance(v, str)}
        given = form.get("csrf", "")
        if not given or not hmac.compare_digest(given, csrf_token(page.token)):
            raise _error_page(page, page.t("csrf"), 403)
        return form

    def _error_page(page: _Page, message: str, status: int) -> web.HTTPException:
        back = f"<p><a href='/desk/queue'>{_e(page.t('back'))}</a></p>"
        body = f"<p class='error' id='error'>{_e(message)}</p>{back}"
        return _http_error(status, page.render("error", page.t("console"), body))

    # -- sign-in -------------------------------------------------------------------------

    def signin_page(request: web.Request, error: str = "", status: int = 200) -> web.Response:
        page = _Page(language(request))
        pre = secrets.token_urlsafe(24)
        body = (
            f"<h1>{_e(page.t('sign_in'))}</h1>"
            + (f"<p class='error' id='error'>{_e(error)}</p>" if error else "")
            + "<form method='post' action='/desk/signin' class='signin' id='signin-form'>"
            f"<input type='hidden' name='csrf' value='{_e(pre)}'>"
            f"<label>{_e(page.t('login'))}<input name='login' id='login' autocomplete='username'"
            " required autofocus></label>"
            f"<label>{_e(page.t('password'))}<input type='password' name='password'"
            " id='password' autocomplete='current-password' required></label>"
            f"<label>{_e(page.t('totp'))}<input name='totp' id='totp' inputmode='numeric'"
            " autocomplete='one-time-code' pattern='[0-9 ]{6,7}' required></label>"
            f"<button id='sign-in'>{_e(page.t('sign_in'))}</button></form>"
        )
        response = page.render("signin", page.t("sign_in"), body, status)
        response.set_cookie(
            PRE_SESSION_COOKIE,
            pre,
            path="/desk",
            httponly=True,
            samesite="Strict",
            secure=secure(request),
        )
        remember_language(request, response)
        return response

    async def signin_form(request: web.Request) -> web.Response:
        token = request.cookies.get(SESSION_COOKIE, "")
        if token:
            try:
                await run(current().officials.authenticate, token)
            except Unauthenticated:
                pass
            else:
                raise web.HTTPSeeOther("/desk/queue")
        return signin_page(request)

    async def signin(request: web.Request) -> web.Response:
        page = _Page(language(request))
        posted = await request.post()
        form = {k: v for k, v in posted.items() if isinstance(v, str)}
        pre = request.cookies.get(PRE_SESSION_COOKIE, "")
        if not pre or not hmac.compare_digest(form.get("csrf", ""), pre):
            return signin_page(request, page.t("csrf"), 403)
        officials = current().officials
        try:
            session = await run(
                officials.sign_in,
                form.get("login", "").strip(),
                form.get("password", ""),
                form.get("totp", ""),
            )
        except SignInThrottled as error:
            _count_sign_in(metrics, "throttled")
            return signin_page(request, error.message, 429)
        except (Unauthenticated, InvalidInput) as error:
            _count_sign_in(metrics, "refused")
            return signin_page(request, error.message, 401)
        _count_sign_in(metrics, "ok")
        log.info("an official signed in at the desk console")
        response = web.HTTPSeeOther("/desk/queue", headers=_headers())
        response.set_cookie(
            SESSION_COOKIE,
            session.token,
            path="/desk",
            httponly=True,
            samesite="Strict",
            secure=secure(request),
            max_age=max(0, int((session.expires_at - datetime.now(UTC)).total_seconds())),
        )
        response.del_cookie(PRE_SESSION_COOKIE, path="/desk")
        raise response

    async def signout(request: web.Request) -> web.Response:
        page = await signed_in(request)
        await form_of(request, page)
        await run(current().officials.sign_out, page.token)
        response = web.HTTPSeeOther("/desk/signin", headers=_headers())
        response.del_cookie(SESSION_COOKIE, path="/desk")
        raise response

    async def home(request: web.Request) -> web.Response:
        raise web.HTTPSeeOther("/desk/queue")

    # -- the queue -----------------------------------------------------------------------

    async def queue(request: web.Request) -> web.Response:
        page = await signed_in(request)
        official = page.official
        assert official is not None
        the_desk = current()
        items = await run(lambda: the_desk.queue(official, thumbnails=True, limit=QUEUE_LIMIT))
        total = await run(the_desk.waiting, official)
        notice = ""
        if request.query.get("approved"):
            entry = request.query.get("entry", "")
            notice = (
                f"<p class='notice' id='notice'>{_e(page.t('approved'))}:"
                f" <a id='issued-code' href='/v/{quote(request.query['approved'], safe='')}'>"
                f"{_e(request.query['approved'])}</a>"
                + (f" — <span id='register-entry'>{_e(entry)}</span>" if entry else "")
                + "</p>"
            )
        elif request.query.get("done") in ("refused", "rescanned"):
            notice = f"<p class='notice' id='notice'>{_e(page.t(request.query['done']))}</p>"
        rows = []
        for item in items:
            held = ""
            if item.holder and item.holder != official.id:
                held = _e(item.holder_name or item.holder)
            thumbs = "".join(
                f"<img alt='{_e(page.t('page'))} {i + 1}'"
                f" src='data:image/jpeg;base64,{b64encode(t).decode()}'>"
                for i, t in enumerate(item.thumbnails)
            )
            reasons = "".join(f"<li>{_e(r)}</li>" for r in item.reasons)
            deadline = _local(item.appointment_at) if item.appointment_at else ""
            rows.append(
                f"<tr data-dossier='{_e(item.dossier_id)}'>"
                f"<td class='deadline'>{_e(deadline)}</td>"
                f"<td>{_e(_local(item.created_at))}</td><td>{_e(item.kiosk_id)}</td>"
                f"<td class='center'>{_e(item.center)}</td>"
                f"<td><ul class='reasons'>{reasons}</ul></td><td>{item.page_count}</td>"
                f"<td class='thumbs'>{thumbs}</td><td class='holder'>{held}</td>"
                f"<td><a class='open' href='/desk/d/{_e(item.dossier_id)}'>"
                f"{_e(page.t('open'))}</a></td></tr>"
            )
        table = (
            "<table id='queue'><thead><tr>"
            + "".join(
                f"<th>{_e(page.t(k)) if k else ''}</th>"
                for k in (
                    "deadline",
                    "received",
                    "kiosk",
                    "center",
                    "reasons",
                    "pages",
                    "",
                    "held",
                    "",
                )
            )
            + f"</tr></thead><tbody>{''.join(rows)}</tbody></table>"
            if rows
            else f"<p id='empty'>{_e(page.t('empty'))}</p>"
        )
        body = (
            f"{notice}<h1>{_e(page.t('queue'))} (<span id='waiting'>{total}</span>"
            f" {_e(page.t('waiting'))})</h1>{table}"
            "<p><kbd>J</kbd>/<kbd>K</kbd> · <kbd>Enter</kbd> · <kbd>?</kbd></p>"
        )
        response = page.render("queue", page.t("queue"), body)
        remember_language(request, response)
        return response

    async def queue_state(request: web.Request) -> web.Response:
        """What the open queue page polls: how many wait, and who holds which (the page
        reloads itself when that changes)."""
        page = await signed_in(request)
        official = page.official
        assert official is not None
        the_desk = current()
        items = await run(lambda: the_desk.queue(official, thumbnails=False, limit=QUEUE_LIMIT))
        total = await run(the_desk.waiting, official)
        state = {
            "waiting": total,
            "dossiers": [[i.dossier_id, i.holder or ""] for i in items],
        }
        return web.json_response(state, headers={"Cache-Control": "no-store"})

    # -- one dossier ---------------------------------------------------------------------

    def dossier_id_of(request: web.Request) -> str:
        value = request.match_info["dossier"]
        if not value.isalnum() or len(value) > 64:
            raise web.HTTPNotFound(text="no such dossier")
        return value

    async def dossier(request: web.Request) -> web.Response:
        page = await signed_in(request)
        dossier_id = dossier_id_of(request)
        response = await show(page, dossier_id, claim=True)
        remember_language(request, response)
        return response

    async def show(
        page: _Page,
        dossier_id: str,
        *,
        claim: bool,
        errors: Mapping[tuple[int, str], str] | None = None,
        entered: Mapping[tuple[int, str], str] | None = None,
        status: int = 200,
        banner: str = "",
    ) -> web.Response:
        official = page.official
        assert official is not None
        the_desk = current()
        can_decide = official.role in ("official", "head")
        try:
            if claim and can_decide:
                await run(the_desk.claim, official, dossier_id)
            view = await run(the_desk.get, official, dossier_id)
        except SaoyError as error:
            raise _error_page(page, error.message, HTTP_STATUS.get(error.status, 500)) from None
        body = render_dossier(page, view, can_decide, errors or {}, entered or {}, banner)
        return page.render("dossier", f"{page.t('dossier')} {dossier_id[:8]}", body, status)

    async def page_image(request: web.Request) -> web.Response:
        page = await signed_in(request)
        official = page.official
        assert official is not None
        dossier_id = dossier_id_of(request)
        try:
            index = int(request.match_info["page"])
            data = await run(current().page_image, official, dossier_id, index)
        except ValueError:
            raise web.HTTPNotFound(text="no such page") from None
        except SaoyError as error:
            raise _http_error(
                HTTP_STATUS.get(error.status, 500), web.Response(text=error.message)
            ) from None
        body, content_type = await run(_displayable, data)
        return web.Response(
            body=body,
            content_type=content_type,
            headers={**_headers(), "Cache-Control": "private, no-store"},
        )

    async def approve(request: web.Request) -> web.Response:
        page = await signed_in(request)
        form = await form_of(request, page)
        official = page.official
        assert official is not None
        dossier_id = dossier_id_of(request)
        corrections: list[Correction] = []
        entered: dict[tuple[int, str], str] = {}
        for key, value in form.items():
            match = _FIX.fullmatch(key)
            if match is None or not value.strip():
                continue
            index, name = int(match[1]), match[2]
            entered[(index, name)] = value
            corrections.append(Correction(page=index, field=name, value=value.strip()))
        try:
            approval = await current().approve(official, dossier_id, corrections)
        except InvalidInput as error:
            found = _CORRECTION_FIELD.match(error.field or "")
            if found is None or int(found[1]) >= len(corrections):
                raise _error_page(page, error.message, 400) from None
            wrong = corrections[int(found[1])]
            return await show(
                page,
                dossier_id,
                claim=False,
                errors={(wrong.page, wrong.field): error.message},
                entered=entered,
                status=400,
                banner=page.t("fix_errors"),
            )
        except SaoyError as error:
            raise _error_page(page, error.message, HTTP_STATUS.get(error.status, 500)) from None
        log.info("a dossier was approved at the desk console%s", " (again)" * approval.replayed)
        if not approval.replayed:
            await _decided(current(), metrics, run, "approved", dossier_id)
        query = urlencode({"approved": approval.copy.code, "entry": str(approval.number)})
        raise web.HTTPSeeOther(f"/desk/queue?{query}")

    async def refuse(request: web.Request) -> web.Response:
        page = await signed_in(request)
        form = await form_of(request, page)
        official = page.official
        assert official is not None
        dossier_id = dossier_id_of(request)
        try:
            await run(
                current().refuse,
                official,
                dossier_id,
                form.get("ground", ""),
                form.get("message", ""),
            )
        except SaoyError as error:
            raise _error_page(page, error.message, HTTP_STATUS.get(error.status, 500)) from None
        log.info("a dossier was refused at the desk console")
        await _decided(current(), metrics, run, "refused", dossier_id)
        raise web.HTTPSeeOther("/desk/queue?done=refused")

    async def rescan(request: web.Request) -> web.Response:
        page = await signed_in(request)
        form = await form_of(request, page)
        official = page.official
        assert official is not None
        dossier_id = dossier_id_of(request)
        try:
            index = int(form.get("page", ""))
        except ValueError:
            raise _error_page(page, "page: choose the page to rescan", 400) from None
        try:
            await run(current().request_rescan, official, dossier_id, index, form.get("reason", ""))
        except SaoyError as error:
            raise _error_page(page, error.message, HTTP_STATUS.get(error.status, 500)) from None
        log.info("a rescan was requested at the desk console")
        await _decided(current(), metrics, run, "rescan", dossier_id)
        raise web.HTTPSeeOther("/desk/queue?done=rescanned")

    async def release(request: web.Request) -> web.Response:
        page = await signed_in(request)
        await form_of(request, page)
        official = page.official
        assert official is not None
        try:
            await run(current().release, official, dossier_id_of(request))
        except SaoyError as error:
            raise _error_page(page, error.message, HTTP_STATUS.get(error.status, 500)) from None
        raise web.HTTPSeeOther("/desk/queue")

    async def static(request: web.Request) -> web.Response:
        name = request.match_info["name"]
        if name not in ("desk.js", "desk.css"):
            raise web.HTTPNotFound()
        kind = "text/javascript" if name.endswith(".js") else "text/css"
        return web.Response(
            text=(STATIC / name).read_text(encoding="utf-8"),
            content_type=kind,
            headers={"Cache-Control": "no-cache", "X-Content-Type-Options": "nosniff"},
        )

    app.router.add_get("/desk", home)
    app.router.add_get("/desk/", home)
    app.router.add_get("/desk/signin", signin_form)
    app.router.add_post("/desk/signin", signin)
    app.router.add_post("/desk/signout", signout)
    app.router.add_get("/desk/queue", queue)
    app.router.add_get("/desk/queue/state", queue_state)
    app.router.add_get("/desk/d/{dossier}", dossier)
    app.router.add_get("/desk/d/{dossier}/page/{page}", page_image)
    app.router.add_post("/desk/d/{dossier}/approve", approve)
    app.router.add_post("/desk/d/{dossier}/refuse", refuse)
    app.router.add_post("/desk/d/{dossier}/rescan", rescan)
    app.router.add_post("/desk/d/{dossier}/release", release)
    app.router.add_get("/desk/static/{name}", static)


def _http_error(status: int, response: web.Response) -> web.HTTPException:
    """An aiohttp exception answering ``status`` with the body of ``response``."""
    error = web.HTTPException(
        text=response.text or "", content_type=response.content_type, headers=_headers()
    )
    error.set_status(status)
    return error


def _count_sign_in(metrics: ReviewMetrics | None, result: str) -> None:
    if metrics is not None:
        metrics.sign_ins.labels(result=result).inc()


async def _decided(
    desk: Desk,
    metrics: ReviewMetrics | None,
    run: Callable[..., Awaitable[Any]],
    outcome: str,
    dossier_id: str,
) -> None:
    if metrics is not None:
        await run(metrics.record, desk, outcome, dossier_id)


def _displayable(data: bytes) -> tuple[bytes, str]:
    """A page file a browser shows: JPEG and PNG as sent, anything else (TIFF) as PNG."""
    with Image.open(io.BytesIO(data)) as image:
        kind = DISPLAYABLE.get((image.format or "").lower())
        if kind is not None:
            return data, kind
        buffer = io.BytesIO()
        image.convert("RGB").save(buffer, "PNG")
    return buffer.getvalue(), "image/png"


def _when(value: object) -> str:
    """A time of the evidence (ISO 8601) in Vietnam's time, or a dash."""
    try:
        return datetime.fromisoformat(str(value)).astimezone(VIETNAM).strftime("%d/%m/%Y %H:%M:%S")
    except ValueError:
        return "—"


def render_dossier(
    page: _Page,
    view: DossierView,
    can_decide: bool,
    errors: Mapping[tuple[int, str], str],
    entered: Mapping[tuple[int, str], str],
    banner: str,
) -> str:
    """One dossier on one screen: each page beside its fields, the checks (failures first and
    marked), the identity evidence (never a face image), and the three decisions."""
    d = view.dossier
    base = f"/desk/d/{_e(d.id)}"
    parts = [f"<h1>{_e(page.t('dossier'))} <code id='dossier-id'>{_e(d.id)}</code></h1>"]
    if banner:
        parts.append(f"<p class='error' id='error'>{_e(banner)}</p>")
    if not can_decide:
        parts.append(f"<p class='notice'>{_e(page.t('read_only'))}</p>")
    parts.append(
        f"<p>{_e(page.t('kiosk'))}: {_e(d.kiosk_id)} · {_e(page.t('received'))}:"
        f" {_e(_local(d.created_at))}</p>"
    )
    if d.reasons:
        parts.append(
            "<ul id='reasons'>" + "".join(f"<li>{_e(r)}</li>" for r in d.reasons) + "</ul>"
        )
    for p in view.pages:
        rows = []
        for f in p.fields:
            key = (p.index, f.name)
            low = " class='low'" if f.confidence < LOW_CONFIDENCE else ""
            error = errors.get(key, "")
            fix = ""
            if can_decide:
                fix = (
                    f"<input class='fix' form='approve-form' name='fix:{p.index}:{_e(f.name)}'"
                    f" id='fix-{p.index}-{_e(f.name)}' value='{_e(entered.get(key, ''))}'"
                    f" placeholder='{_e(f.value)}' aria-label='{_e(f.name)}'>"
                )
                if error:
                    fix += (
                        f"<span class='field-error' id='error-{p.index}-{_e(f.name)}'>"
                        f"{_e(error)}</span>"
                    )
            rows.append(
                f"<tr data-field='{_e(f.name)}'><th>{page.field(f.name)}</th>"
                f"<td class='value'>{_e(f.value)}</td>"
                f"<td{low}>{100 * f.confidence:.0f} %</td><td>{_e(f.source)}</td>"
                f"<td>{fix}</td></tr>"
            )
        parts.append(
            f"<section class='page' id='page-{p.index}'>"
            f"<figure><img src='{base}/page/{p.index}' alt='{_e(page.t('page'))}"
            f" {p.index + 1}'><figcaption>{_e(page.t('page'))} {p.index + 1}"
            f" · {_e(p.document_type)} · {p.width}×{p.height}</figcaption></figure>"
            "<table class='fields'><thead><tr>"
            + "".join(
                f"<th>{_e(page.t(k))}</th>"
                for k in ("field", "value", "confidence", "source", "correction")
            )
            + f"</tr></thead><tbody>{''.join(rows)}</tbody></table></section>"
        )
    order = {"fail": 0, "warn": 1, "pass": 2}
    checks = sorted(view.checks, key=lambda c: order.get(c.outcome.value, 3))
    parts.append(
        f"<h2>{_e(page.t('checks'))}</h2><ul id='checks'>"
        + "".join(
            f"<li class='{_e(c.outcome.value)}'>{_e(c.name)}: {_e(c.reason)}</li>" for c in checks
        )
        + "</ul>"
    )
    evidence = view.identity
    parts.append(f"<section class='evidence' id='identity'><h2>{_e(page.t('identity'))}</h2>")
    if evidence:
        score = float(evidence.get("match_score", 0.0))
        threshold = float(evidence.get("match_threshold", 0.0))
        below = " class='low'" if threshold and score < threshold else ""
        parts.append(
            "<dl>"
            f"<dt>{_e(page.t('method'))}</dt><dd>{_e(evidence.get('method', '—'))}</dd>"
            f"<dt>{_e(page.t('score'))}</dt><dd id='match-score'{below}>{score:.3f}</dd>"
            f"<dt>{_e(page.t('threshold'))}</dt><dd>{threshold:.3f}</dd>"
            f"<dt>{_e(page.t('liveness'))}</dt>"
            f"<dd id='liveness'>{_e(evidence.get('liveness', '—'))}</dd>"
            f"<dt>{_e(page.t('authenticated_at'))}</dt>"
            f"<dd>{_e(_when(evidence.get('authenticated_at')))}</dd></dl>"
        )
    else:
        parts.append(f"<p>{_e(page.t('no_identity'))}</p>")
    parts.append("</section>")
    csrf = page.csrf_input()
    decisions = [
        f"<form method='post' action='{base}/release' id='release-form'>{csrf}"
        f"<button id='to-queue'>{_e(page.t('back'))} <kbd>Q</kbd></button></form>"
    ]
    if can_decide:
        grounds = "".join(
            f"<option value='{_e(key)}'>{_e(text)}</option>"
            for key, text in REFUSAL_GROUNDS.items()
        )
        page_options = "".join(
            f"<option value='{p.index}'>{_e(page.t('page'))} {p.index + 1}</option>"
            for p in view.pages
        )
        decisions += [
            f"<form method='post' action='{base}/approve' id='approve-form' class='decision'>"
            f"{csrf}<button id='approve'>{_e(page.t('approve'))} <kbd>A</kbd></button></form>",
            f"<form method='post' action='{base}/refuse' id='refuse' class='decision'>{csrf}"
            f"<label>{_e(page.t('ground'))} <select name='ground' id='ground' required>"
            f"<option value=''>—</option>{grounds}</select></label>"
            f"<label>{_e(page.t('message'))} <input name='message' id='refuse-message'"
            " minlength='3' maxlength='500' required></label>"
            f"<button id='refuse-button'>{_e(page.t('refuse'))} <kbd>R</kbd></button></form>",
            f"<form method='post' action='{base}/rescan' id='rescan' class='decision'>{csrf}"
            f"<label>{_e(page.t('rescan_page'))} <select name='page' id='rescan-page'>"
            f"{page_options}</select></label>"
            f"<label>{_e(page.t('rescan_why'))} <input name='reason' id='rescan-reason'"
            " minlength='3' maxlength='500' required></label>"
            f"<button id='rescan-button'>{_e(page.t('rescan'))} <kbd>S</kbd></button></form>",
        ]
    parts.append(f"<div class='decisions'>{''.join(decisions)}</div>")
    return "".join(parts)


__all__ = ["CONTENT_SECURITY_POLICY", "add_desk_routes", "csrf_token", "render_dossier"]
