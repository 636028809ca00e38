"""Officials (chứng thực viên), heads of center and auditors: who they are, how they sign in,
and the centers they belong to, with each center's review policy (centers and their kiosks are
reception's record, :mod:`saoy.core.reception.centers`).

Each official has a login name, a full name and title (printed in the certification statement
and named in their signing certificate), a center and a role:

- ``official``: reviews, approves, refuses, asks for rescans;
- ``head``: the same, and revokes copies and manages the center's officials;
- ``auditor``: reads only.

Sign-in is a password (argon2id) and a TOTP code (RFC 6238; a code is accepted once). After
:data:`MAX_FAILURES` failures in a row an account waits, twice as long after each further
failure. A session is an opaque token (only its SHA-256 is stored) valid for a work day; each
use reads the official again, so a disabled official's session stops at once.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import hmac
import re
import secrets
import time
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, Final

import pyotp
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from saoy.core.desk.deskdb import DeskDb, now
from saoy.core.errors import InvalidInput, NotFound, SaoyError, Unauthenticated
from saoy.core.reception.centers import DEV_CENTER, REVIEW_POLICIES, Centers
from saoy.core.trust.pki import DevPki

ROLES: Final = ("official", "head", "auditor")
LOGIN: Final = re.compile(r"[a-z0-9][a-z0-9._-]{1,31}")
MAX_FAILURES: Final = 5
"""Failed sign-ins in a row before an account must wait."""
FIRST_WAIT: Final = timedelta(seconds=30)
MAX_WAIT: Final = timedelta(minutes=15)
SESSION_TTL: Final = timedelta(hours=8)
TOTP_ISSUER: Final = "saoy"
_hasher = PasswordHasher()  # argon2id, RFC 9106's second recommended parameters


class PermissionDenied(SaoyError):
    """The official is who they say, but may not do this."""

    status = "PERMISSION_DENIED"
    reason = "PERMISSION_DENIED"


class SignInThrottled(SaoyError):
    """Too many failed sign-ins in a row: the account waits."""

    status = "RESOURCE_EXHAUSTED"
    reason = "SIGN_IN_THROTTLED"


@dataclass(frozen=True)
class Center:
    id: str
    name: str
    review: str  # one of REVIEW_POLICIES


@dataclass(frozen=True)
class Official:
    """A registered person (no secrets: the password hash and TOTP secret stay in the store)."""

    id: str  # the login name
    full_name: str
    title: str
    center: str
    role: str
    disabled: bool
    certificate: str  # the PKCS#12 file of their signing key, relative to the PKI directory

    def require(self, *roles: str) -> None:
        if self.role not in roles:
            raise PermissionDenied(
                f"official {self.id} is {self.role}; this needs the role {' or '.join(roles)}",
                reason="ROLE_REQUIRED",
            )


@dataclass(frozen=True)
class Enrolment:
    """What the head of center hands the new official, once: the password and the TOTP
    provisioning URI (to scan into an authenticator app)."""

    official: Official
    password: str
    totp_uri: str


@dataclass(frozen=True)
class Session:
    token: str
    official: Official
    expires_at: datetime


_OFFICIAL_COLUMNS: Final = "id, full_name, title, center, role, disabled, certificate"


def _official_of(row: Any) -> Official:
    id_, full_name, title, center, role, disabled, certificate = row
    return Official(id_, full_name, title, center, role, bool(disabled), certificate)


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def _check_text(value: str, field: str, what: str) -> str:
    """2-64 characters: a certificate's name and title hold at most 64 (X.520)."""
    value = " ".join(value.split())
    if not 2 <= len(value) <= 64:
        raise InvalidInput(f"{field}: give the {what} (2-64 characters)", field=field)
    return value


class Officials:
    """Officials, centers and sessions over the desk's tables."""

    def __init__(
        self,
        db: DeskDb,
        *,
        default_center: str = DEV_CENTER.code,
        session_ttl: timedelta = SESSION_TTL,
    ) -> None:
        """``default_center``: the center of dossiers whose kiosk is registered at none (the
        dev center is registered if it is that one)."""
        self.db = db
        self.centers = Centers(db.reception)
        self.default_center = default_center
        self.session_ttl = session_ttl
        if default_center == DEV_CENTER.code:
            self.ensure_center(default_center)

    # -- centers ---------------------------------------------------------------------------

    def ensure_center(self, center_id: str) -> Center:
        """The center, as reception registered it (the dev center is registered if it is the
        one asked for and missing)."""
        try:
            return self.center(center_id)
        except NotFound:
            if center_id != DEV_CENTER.code:
                raise
        self.centers.register_center(DEV_CENTER)
        return self.center(center_id)

    def center(self, center_id: str) -> Center:
        with self.db.transaction(write=False) as db:
            row = db.execute(
                "SELECT code, name, review FROM service_centers WHERE code = ?", (center_id,)
            ).fetchone()
        if row is None:
            raise NotFound(
                f"no center is registered under unit code {center_id[:40]!r}: register it first"
                " (saoy reception center)",
                field="center",
            )
        return Center(*row)

    def set_center(
        self,
        center_id: str,
        *,
        name: str | None = None,
        review: str | None = None,
        kiosks: tuple[str, ...] = (),
    ) -> Center:
        """Rename a registered center, set its review policy, and register kiosks at it (a
        kiosk of another center moves here; its name stays)."""
        self.center(center_id)  # NotFound: register it first, with saoy reception center
        current = self.centers.center(center_id)
        if review is not None:
            self.centers.set_review(center_id, review)
        if name:
            self.centers.register_center(dataclasses.replace(current, name=name))
        for kiosk_id in kiosks:
            kiosk = self.centers.kiosk(kiosk_id)
            if kiosk is None or kiosk.center_code != center_id:
                self.centers.register_kiosk(kiosk_id, center_id, kiosk.name if kiosk else "")
        return self.center(center_id)

    def center_of_kiosk(self, kiosk_id: str) -> str:
        """The center a kiosk belongs to (the server's own center if it is registered at
        none)."""
        kiosk = self.centers.kiosk(kiosk_id)
        return self.default_center if kiosk is None else kiosk.center_code

    def reviews_everything(self, kiosk_id: str) -> bool:
        """Whether the policy of the kiosk's center is ``review=all``."""
        return self.center(self.center_of_kiosk(kiosk_id)).review == "all"

    # -- officials -------------------------------------------------------------------------

    def add(
        self,
        pki: DevPki,
        *,
        login: str,
        full_name: str,
        title: str,
        center: str,
        role: str = "official",
    ) -> Enrolment:
        """Register an official with a new password, a new TOTP secret and their own signing
        certificate from the PKI (``officials/<login>.p12`` in its directory)."""
        if not LOGIN.fullmatch(login):
            raise InvalidInput(
                f"login {login[:40]!r}: use 2-32 of a-z, 0-9, '.', '_' or '-'", field="login"
            )
        if role not in ROLES:
            raise InvalidInput(f"role must be one of {', '.join(ROLES)}", field="role")
        full_name = _check_text(full_name, "full_name", "official's full name")
        title = _check_text(title, "title", "official's title, e.g. 'Phó Chủ tịch'")
        home = self.center(center)
        if self._row(login) is not None:
            raise InvalidInput(f"official {login} exists already: use reset", field="login")
        relative = f"officials/{login}.p12"
        issued = pki.issue_person_certificate(
            pki.directory / relative, common_name=full_name, title=title, unit=home.name
        )
        password = secrets.token_urlsafe(12)
        secret = pyotp.random_base32()
        with self.db.transaction(write=True) as db:
            db.execute(
                "INSERT INTO officials (id, full_name, title, center, role, password_hash,"
                " totp_secret, certificate, certificate_sha256, created_at)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    login,
                    full_name,
                    title,
                    center,
                    role,
                    _hasher.hash(password),
                    secret,
                    relative,
                    hashlib.sha256(issued.dump()).hexdigest(),
                    self.db.ts(now()),
                ),
            )
            self.db.audit(db, login, "official_added", role=role, center=center)
        return Enrolment(self.get(login), password, self._uri(login, secret))

    def reset(self, login: str) -> Enrolment:
        """A new password and TOTP secret; the failures are forgotten, sessions ended, and a
        disabled official enabled again."""
        self.get(login)
        password = secrets.token_urlsafe(12)
        secret = pyotp.random_base32()
        with self.db.transaction(write=True) as db:
            db.execute(
                "UPDATE officials SET password_hash = ?, totp_secret = ?, totp_last_step = 0,"
                " failures = 0, locked_until = NULL, disabled = 0 WHERE id = ?",
                (_hasher.hash(password), secret, login),
            )
            db.execute("DELETE FROM official_sessions WHERE official_id = ?", (login,))
            self.db.audit(db, login, "official_reset")
        return Enrolment(self.get(login), password, self._uri(login, secret))

    def disable(self, login: str) -> Official:
        """Disable an official: their sessions stop at once and they cannot sign in."""
        self.get(login)
        with self.db.transaction(write=True) as db:
            db.execute("UPDATE officials SET disabled = 1 WHERE id = ?", (login,))
            db.execute("DELETE FROM official_sessions WHERE official_id = ?", (login,))
            self.db.audit(db, login, "official_disabled")
        return self.get(login)

    def get(self, login: str) -> Official:
        row = self._row(login)
        if row is None:
            raise NotFound(f"no official {login!r}", field="login")
        return row

    def list(self, center: str | None = None) -> list[Official]:
        sql = f"SELECT {_OFFICIAL_COLUMNS} FROM officials"
        params: tuple[Any, ...] = ()
        if center is not None:
            sql += " WHERE center = ?"
            params = (center,)
        with self.db.transaction(write=False) as db:
            return [_official_of(r) for r in db.execute(sql + " ORDER BY id", params).fetchall()]

    def _row(self, login: str) -> Official | None:
        with self.db.transaction(write=False) as db:
            row = db.execute(
                f"SELECT {_OFFICIAL_COLUMNS} FROM officials WHERE id = ?", (login,)
            ).fetchone()
        return None if row is None else _official_of(row)

    @staticmethod
    def _official(db: Any, login: str) -> Official:
        """The official, read in the caller's transaction."""
        row = db.execute(f"SELECT {_OFFICIAL_COLUMNS} FROM officials WHERE id = ?", (login,))
        return _official_of(row.fetchone())

    @staticmethod
    def _uri(login: str, secret: str) -> str:
        return pyotp.TOTP(secret).provisioning_uri(name=login, issuer_name=TOTP_ISSUER)

    # -- sign-in and sessions --------------------------------------------------------------

    def sign_in(self, login: str, password: str, code: str, *, at: float | None = None) -> Session:
        """A new session for an official who gives the right password and a TOTP code not
        used before. Wrong answers say nothing of which part was wrong."""
        wrong = Unauthenticated(
            "the login, the password or the code is wrong", reason="SIGN_IN_FAILED"
        )
        when = time.time() if at is None else at
        with self.db.transaction(write=True) as db:
            row = db.execute(
                "SELECT disabled, password_hash, totp_secret, totp_last_step, failures,"
                " locked_until FROM officials WHERE id = ?",
                (login,),
            ).fetchone()
        if row is None:
            _spend_a_verification(password)  # an unknown login takes as long as a known one
            raise wrong
        disabled, password_hash, secret, last_step, failures, locked_until = row
        locked = self.db.dt(locked_until)
        current = now()
        if locked is not None and locked > current:
            raise SignInThrottled(
                f"too many failed sign-ins for {login}: wait"
                f" {int((locked - current).total_seconds()) + 1} s and try again",
                retry_after=(locked - current).total_seconds(),
            )
        try:
            good: bool = _hasher.verify(password_hash, password)
        except (VerificationError, InvalidHashError):
            good = False
        step = _totp_step(secret, code, when) if good else None
        if not good or step is None or step <= last_step or disabled:
            self._failed(login, failures + 1)
            if disabled and good and step is not None:
                raise Unauthenticated(
                    f"official {login} is disabled: ask the head of center",
                    reason="OFFICIAL_DISABLED",
                )
            raise wrong
        with self.db.transaction(write=True) as db:
            # The code is spent here, once: of two sign-ins racing with it, one wins.
            spent = db.execute(
                "UPDATE officials SET failures = 0, locked_until = NULL, totp_last_step = ?"
                " WHERE id = ? AND totp_last_step < ? AND disabled = 0",
                (step, login, step),
            )
            if getattr(spent, "rowcount", 1) != 1:
                raise wrong
            return self._open_session(db, login, "password_totp")

    def _open_session(self, db: Any, login: str, how: str) -> Session:
        token = secrets.token_urlsafe(32)
        current = now()
        expires = current + self.session_ttl
        db.execute(
            "INSERT INTO official_sessions (token_hash, official_id, created_at, expires_at)"
            " VALUES (?, ?, ?, ?)",
            (_digest(token), login, self.db.ts(current), self.db.ts(expires)),
        )
        db.execute(
            "DELETE FROM official_sessions WHERE official_id = ? AND expires_at < ?"
            " AND token_hash <> ?",
            (login, self.db.ts(current), _digest(token)),
        )
        self.db.audit(db, login, "signed_in", means=how)
        return Session(token, self._official(db, login), expires)

    def certificate_sha256(self, login: str) -> str | None:
        """The SHA-256 of the official's certificate as enrolled (None: not recorded)."""
        with self.db.transaction(write=False) as db:
            row = db.execute(
                "SELECT certificate_sha256 FROM officials WHERE id = ?", (login,)
            ).fetchone()
        return None if row is None else row[0]

    def record_certificate(self, login: str, sha256: str) -> None:
        """Record the certificate of an official enrolled before certificates were recorded
        (read from their PKCS#12 file), once."""
        with self.db.transaction(write=True) as db:
            db.execute(
                "UPDATE officials SET certificate_sha256 = ?"
                " WHERE id = ? AND certificate_sha256 IS NULL",
                (sha256, login),
            )

    def sign_in_with_certificate(self, login: str, certificate_sha256: str) -> Session:
        """A new session for an official whose own certificate the connection was made with
        (mutual TLS): the certificate is the proof, as the password and code are otherwise."""
        wrong = Unauthenticated(
            f"this connection's certificate is not official {login[:40]!r}'s",
            reason="SIGN_IN_FAILED",
        )
        with self.db.transaction(write=True) as db:
            row = db.execute(
                "SELECT disabled, certificate_sha256 FROM officials WHERE id = ?", (login,)
            ).fetchone()
            if row is None or not row[1] or not hmac.compare_digest(row[1], certificate_sha256):
                raise wrong
            if row[0]:
                raise Unauthenticated(
                    f"official {login} is disabled: ask the head of center",
                    reason="OFFICIAL_DISABLED",
                )
            return self._open_session(db, login, "certificate")

    def _failed(self, login: str, failures: int) -> None:
        locked = None
        if failures >= MAX_FAILURES:
            wait = min(FIRST_WAIT * 2 ** (failures - MAX_FAILURES), MAX_WAIT)
            locked = self.db.ts(now() + wait)
        with self.db.transaction(write=True) as db:
            db.execute(
                "UPDATE officials SET failures = ?, locked_until = ? WHERE id = ?",
                (failures, locked, login),
            )
            self.db.audit(db, login, "sign_in_failed", failures=failures)

    def authenticate(self, token: str) -> Official:
        """The official behind a session token, read now: UNAUTHENTICATED for an unknown or
        expired token and for a disabled official."""
        if not token:
            raise Unauthenticated(
                "sign in first: send 'authorization: Bearer <session token>' from Review.SignIn",
                reason="SESSION_MISSING",
            )
        with self.db.transaction(write=False) as db:
            row = db.execute(
                f"SELECT s.expires_at, {', '.join('o.' + c for c in _OFFICIAL_COLUMNS.split(', '))}"
                " FROM official_sessions s JOIN officials o ON o.id = s.official_id"
                " WHERE s.token_hash = ?",
                (_digest(token),),
            ).fetchone()
        if row is None:
            raise Unauthenticated(
                "this session is unknown or ended: sign in again", reason="SESSION_UNKNOWN"
            )
        expires = self.db.dt(row[0])
        official = _official_of(row[1:])
        if official.disabled:
            raise Unauthenticated(
                f"official {official.id} is disabled: ask the head of center",
                reason="OFFICIAL_DISABLED",
            )
        if expires is None or expires <= now():
            raise Unauthenticated(
                "this session has expired: sign in again", reason="SESSION_EXPIRED"
            )
        return official

    def sign_out(self, token: str) -> None:
        with self.db.transaction(write=True) as db:
            db.execute("DELETE FROM official_sessions WHERE token_hash = ?", (_digest(token),))

    def certificate_path(self, pki_directory: Path, official: Official) -> Path:
        return pki_directory / official.certificate


def _totp_step(secret: str, code: str, at: float) -> int | None:
    """The time step (30 s) whose code ``code`` is, within one step of ``at``; None if none."""
    code = code.strip().replace(" ", "")
    if not re.fullmatch(r"\d{6}", code):
        return None
    totp = pyotp.TOTP(secret)
    step = int(at // totp.interval)
    for candidate in (step, step - 1, step + 1):
        if secrets.compare_digest(totp.generate_otp(candidate), code):
            return candidate
    return None


_DUMMY_HASH: Final = _hasher.hash(secrets.token_urlsafe(12))


def _spend_a_verification(password: str) -> None:
    with contextlib.suppress(VerificationError, InvalidHashError):
        _hasher.verify(_DUMMY_HASH, password)


__all__ = [
    "MAX_FAILURES",
    "REVIEW_POLICIES",
    "ROLES",
    "Center",
    "Enrolment",
    "Official",
    "Officials",
    "PermissionDenied",
    "Session",
    "SignInThrottled",
]
