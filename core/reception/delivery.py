"""Delivering the result to the citizen by email or to their app, through an outbox that
survives restarts.

The citizen may give an email address at the kiosk (``Header.email``), and their app's token
(``Header.app_token``): the app is told through its backend's webhook, an HTTPS POST of a JSON
body signed with HMAC-SHA256 (:func:`sign_webhook`). It goes into the outbox
in the transaction that writes the receipt, and nowhere else. A worker (``saoy.server.delivery``)
takes the due entries: once the dossier's copy is issued and released, it sends the copy's link
and the signed PDF; once the dossier is refused, a notice that it stopped. A failure is retried
with a growing delay; a refused recipient, or a failure that keeps coming back, is a dead
letter (counted in metrics). The address is cleared once the entry is sent or dead: an address
is kept only until delivery.

Mail goes out over SMTP with STARTTLS, always: a server that does not offer it is a failure.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
import smtplib
import ssl
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from datetime import datetime, timedelta
from email.message import EmailMessage
from email.utils import make_msgid
from pathlib import Path
from typing import Any, Final
from urllib.parse import unquote, urlsplit

from saoy.core.errors import InvalidInput
from saoy.core.reception.centers import ReceptionDb, retrying_busy

EMAIL: Final = re.compile(
    r"[A-Za-z0-9.!#$%&'*+/=?^_`{|}~-]{1,64}@"
    r"(?:[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.)+[A-Za-z]{2,63}"
)
CLAIM_LEASE: Final = timedelta(minutes=2)
"""How long a claimed entry is kept from other workers while it is being sent."""


def check_email(text: str, field: str = "header.email") -> str:
    """An email address as given at the kiosk, checked for its shape."""
    address = text.strip()
    if len(address) > 254 or not EMAIL.fullmatch(address):
        raise InvalidInput(
            f"{field} is not an email address: give one like ten@example.vn, or none",
            field=field,
        )
    return address


@dataclass(frozen=True)
class SmtpSettings:
    """Where mail goes out: ``smtp://[user[:password]@]host[:port]`` (port 587 by default)."""

    host: str
    port: int
    sender: str
    username: str = ""
    password: str = ""
    ca_file: Path | None = None
    """PEM certificates to trust the SMTP server's with (None: the system's)."""
    timeout: float = 30.0

    @classmethod
    def from_url(cls, url: str, sender: str, ca_file: Path | None = None) -> SmtpSettings:
        parts = urlsplit(url)
        if parts.scheme != "smtp" or not parts.hostname:
            raise ValueError("smtp_url must look like smtp://[user[:password]@]host[:port]")
        check_email(sender, "smtp_from")
        return cls(
            host=parts.hostname,
            port=parts.port or 587,
            sender=sender,
            username=unquote(parts.username or ""),
            password=unquote(parts.password or ""),
            ca_file=ca_file,
        )


class PermanentFailure(Exception):
    """The mail can never go (the recipient was refused): a dead letter at once."""


def send_email(smtp: SmtpSettings, message: EmailMessage) -> None:
    """Send one message over SMTP with STARTTLS (required); PermanentFailure when the
    recipient is refused, other exceptions for what may pass."""
    context = ssl.create_default_context(cafile=str(smtp.ca_file) if smtp.ca_file else None)
    with smtplib.SMTP(smtp.host, smtp.port, timeout=smtp.timeout) as client:
        client.ehlo()
        if not client.has_extn("starttls"):
            raise smtplib.SMTPNotSupportedError("the SMTP server does not offer STARTTLS")
        client.starttls(context=context)
        client.ehlo()
        if smtp.username:
            client.login(smtp.username, smtp.password)
        try:
            client.send_message(message)
        except smtplib.SMTPRecipientsRefused as error:
            raise PermanentFailure("the recipient was refused") from error


def copy_message(
    smtp: SmtpSettings,
    to: str,
    *,
    dossier_code: str,
    copy_code: str,
    copy_url: str,
    status_url: str,
    pdf: bytes,
) -> EmailMessage:
    """The mail carrying an issued copy: its link, the dossier's status page, the PDF."""
    message = _message(smtp, to, f"Bản sao chứng thực {copy_code} / Your certified copy")
    message.set_content(
        f"Hồ sơ {dossier_code} đã có kết quả: bản sao chứng thực điện tử {copy_code}.\n"
        f"Kiểm tra bản sao: {copy_url}\nTình trạng hồ sơ: {status_url}\n"
        "Bản sao (PDF, có chữ ký số) được đính kèm.\n\n"
        f"Your dossier {dossier_code} is done: certified electronic copy {copy_code}.\n"
        f"Verify it: {copy_url}\nThe dossier's status: {status_url}\n"
        "The signed PDF is attached.\n"
    )
    message.add_attachment(pdf, maintype="application", subtype="pdf", filename=f"{copy_code}.pdf")
    return message


def stopped_message(
    smtp: SmtpSettings, to: str, *, dossier_code: str, status_url: str
) -> EmailMessage:
    """The mail telling that a dossier was stopped (refused)."""
    message = _message(smtp, to, f"Hồ sơ {dossier_code} dừng xử lý / Processing stopped")
    message.set_content(
        f"Hồ sơ {dossier_code} dừng xử lý. Lý do và hướng dẫn: {status_url}\n\n"
        f"Your dossier {dossier_code} was stopped. Why, and what to do: {status_url}\n"
    )
    return message


def _message(smtp: SmtpSettings, to: str, subject: str) -> EmailMessage:
    message = EmailMessage()
    message["From"] = smtp.sender
    message["To"] = to
    message["Subject"] = subject
    message["Message-ID"] = make_msgid(domain=smtp.sender.rsplit("@", 1)[-1])
    return message


APP_TOKEN: Final = re.compile(r"[A-Za-z0-9._:-]{1,256}")
SIGNATURE_HEADER: Final = "X-Saoy-Signature"


def check_app_token(text: str, field: str = "header.app_token") -> str:
    """A citizen app's token as given at the kiosk, checked for its shape."""
    token = text.strip()
    if not APP_TOKEN.fullmatch(token):
        raise InvalidInput(
            f"{field}: an app token is 1-256 characters of A-Z, a-z, 0-9 and . _ : -",
            field=field,
        )
    return token


@dataclass(frozen=True)
class WebhookSettings:
    """Where the citizen app's backend takes results, and the secret it checks them with."""

    url: str
    secret: bytes
    timeout: float = 10.0

    @classmethod
    def from_file(cls, url: str, secret_file: Path) -> WebhookSettings:
        parts = urlsplit(url)
        if parts.scheme not in ("https", "http") or not parts.hostname:
            raise ValueError("app_webhook_url must be an https:// (or http://) URL")
        try:
            secret = secret_file.read_bytes().strip()
        except OSError as error:
            raise ValueError(
                f"app_webhook_secret_file: cannot read {secret_file}: {error}"
            ) from None
        if len(secret) < 32:
            raise ValueError("app_webhook_secret_file must hold a secret of 32 bytes or more")
        return cls(url, secret)


def sign_webhook(secret: bytes, at: int, body: bytes) -> str:
    """The signature header of a webhook body sent at Unix time ``at``: ``t=<at>,v1=<hex>``,
    the HMAC-SHA256 under ``secret`` of ``<at>.<body>`` (the time is signed so that a body
    replayed later can be told apart)."""
    mac = hmac.new(secret, f"{at}.".encode() + body, hashlib.sha256).hexdigest()
    return f"t={at},v1={mac}"


def verify_webhook(secret: bytes, header: str, body: bytes, *, tolerance: float = 300.0) -> bool:
    """What a receiving app checks: the signature, and that it is recent."""
    try:
        parts = dict(item.split("=", 1) for item in header.split(","))
        at = int(parts["t"])
    except (KeyError, ValueError):
        return False
    expected = sign_webhook(secret, at, body).split("v1=", 1)[1]
    fresh = abs(time.time() - at) <= tolerance
    return fresh and hmac.compare_digest(expected, parts.get("v1", ""))


def app_body(app_token: str, result: dict[str, Any]) -> bytes:
    """The JSON a citizen app's webhook receives: its token and the dossier's result (codes
    and links; no name, number or date of the citizen)."""
    return json.dumps({"app_token": app_token, **result}, ensure_ascii=False).encode()


def post_webhook(webhook: WebhookSettings, body: bytes) -> None:
    """POST a signed body; a 4xx answer other than 408 and 429 is a :class:`PermanentFailure`,
    anything else that is not 2xx an error to retry."""
    request = urllib.request.Request(
        webhook.url,
        data=body,
        method="POST",
        headers={
            "Content-Type": "application/json; charset=utf-8",
            SIGNATURE_HEADER: sign_webhook(webhook.secret, int(time.time()), body),
            "User-Agent": "saoy-delivery",
        },
    )
    try:
        with urllib.request.urlopen(request, timeout=webhook.timeout) as response:
            response.read(1024)
    except urllib.error.HTTPError as error:
        if 400 <= error.code < 500 and error.code not in (408, 429):
            raise PermanentFailure(
                f"the app's webhook refused the result: HTTP {error.code}"
            ) from None
        raise


@dataclass(frozen=True)
class OutboxEntry:
    id: int
    dossier_id: str
    channel: str
    target: str
    attempts: int


class Outbox:
    """The outbox's rows in the registry's database."""

    def __init__(self, db: ReceptionDb, *, max_attempts: int = 8, retry_base: float = 30.0):
        self.db = db
        self.max_attempts = max_attempts
        self.retry_base = retry_base

    def add(
        self, statements: Any, dossier_id: str, channel: str, target: str, at: datetime
    ) -> None:
        """Queue a notification, inside the caller's transaction."""
        statements.execute(
            "INSERT INTO outbox (dossier_id, channel, target, state, next_at, created_at)"
            " VALUES (?, ?, ?, 'pending', ?, ?)",
            (dossier_id, channel, target, self.db.ts(at), self.db.ts(at)),
        )

    @retrying_busy
    def claim(self, now: datetime, limit: int = 20) -> list[OutboxEntry]:
        """Due entries, kept from other workers for :data:`CLAIM_LEASE`."""
        with self.db.transaction(write=True) as db:
            rows = db.execute(
                "SELECT id, dossier_id, channel, target, attempts FROM outbox"
                " WHERE state = 'pending' AND next_at <= ? ORDER BY next_at, id LIMIT ?"
                + self.db.registry.for_update
                + (" SKIP LOCKED" if self.db.registry.for_update else ""),
                (self.db.ts(now), limit),
            ).fetchall()
            for row in rows:
                db.execute(
                    "UPDATE outbox SET next_at = ? WHERE id = ?",
                    (self.db.ts(now + CLAIM_LEASE), row[0]),
                )
        return [OutboxEntry(int(i), d, c, t or "", int(a)) for i, d, c, t, a in rows]

    @retrying_busy
    def postpone(self, entry: OutboxEntry, until: datetime) -> None:
        """Not yet (the dossier is not decided or not released): look again ``until``."""
        with self.db.transaction(write=True) as db:
            db.execute("UPDATE outbox SET next_at = ? WHERE id = ?", (self.db.ts(until), entry.id))

    @retrying_busy
    def sent(self, entry: OutboxEntry, now: datetime) -> None:
        with self.db.transaction(write=True) as db:
            db.execute(
                "UPDATE outbox SET state = 'sent', target = NULL, done_at = ?, last_error = ''"
                " WHERE id = ?",
                (self.db.ts(now), entry.id),
            )

    @retrying_busy
    def failed(self, entry: OutboxEntry, error: str, now: datetime, *, permanent: bool) -> bool:
        """Record a failed try; True when the entry is now a dead letter (address cleared)."""
        attempts = entry.attempts + 1
        dead = permanent or attempts >= self.max_attempts
        delay = timedelta(seconds=min(self.retry_base * 2 ** (attempts - 1), 3600.0))
        with self.db.transaction(write=True) as db:
            if dead:
                db.execute(
                    "UPDATE outbox SET state = 'dead', target = NULL, attempts = ?,"
                    " last_error = ?, done_at = ? WHERE id = ?",
                    (attempts, error[:500], self.db.ts(now), entry.id),
                )
            else:
                db.execute(
                    "UPDATE outbox SET attempts = ?, last_error = ?, next_at = ? WHERE id = ?",
                    (attempts, error[:500], self.db.ts(now + delay), entry.id),
                )
        return dead

    @retrying_busy
    def counts(self) -> dict[str, int]:
        """Entries by state: pending, sent, dead."""
        with self.db.transaction(write=False) as db:
            rows = db.execute("SELECT state, count(*) FROM outbox GROUP BY state").fetchall()
        found = {"pending": 0, "sent": 0, "dead": 0}
        found.update({state: int(n) for state, n in rows})
        return found


__all__ = [
    "SIGNATURE_HEADER",
    "Outbox",
    "OutboxEntry",
    "PermanentFailure",
    "SmtpSettings",
    "WebhookSettings",
    "app_body",
    "check_app_token",
    "check_email",
    "copy_message",
    "post_webhook",
    "send_email",
    "sign_webhook",
    "stopped_message",
    "verify_webhook",
]
