"""Citizen sessions: the short-lived token that Identity.Authenticate issues and Certify needs.

A token is opaque (256 random bits, URL-safe), bound to the kiosk that authenticated the
citizen, valid for ``ttl`` seconds, and good for **one dossier**: the first Certify that
presents it binds it to its ``request_id``; a retry of that same dossier (same request_id, after
a dropped link) is accepted again, any other dossier is refused as a replay. One token per
dossier means a token seen in a log or on a compromised kiosk cannot certify anything else in
the citizen's name, while the idempotent retries of the Certify protocol keep working.

Stores never hold the token itself (only its SHA-256), nor the ID number (only a keyed hash,
:func:`subject_of`), nor any image or face embedding: the identity kept is the keyed subject
hash, the face match score (evidence for the dossier) and the kind of liveness check passed.
Records live ``ttl + grace`` seconds so that a token used shortly after it expired is told
"expired" rather than "unknown"; after that it is simply unknown.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import threading
import time
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from saoy.core.errors import Unauthenticated, Unavailable

TOKEN_PREFIX = "sst_"
DEFAULT_TTL = 300.0
DEFAULT_GRACE = 600.0


@dataclass(frozen=True)
class Identity:
    """Who a session token speaks for (no personal data in the clear)."""

    kiosk_id: str
    subject: str | None
    """Keyed hash (HMAC-SHA256, hex) of the ID number read from the card; None when the card's
    number was not read (the face was matched to the card's photo all the same)."""
    match_score: float
    """Cosine similarity of the live face to the card photo (the weakest live frame)."""
    liveness: str
    """The liveness check passed, e.g. "head_turn:left+screen"."""
    authenticated_at: datetime

    def evidence(self, match_threshold: float | None = None) -> dict[str, Any]:
        """What the dossier keeps of the authentication behind it: the method, the face match
        score (and the threshold it was held to), the liveness check and the time, plus the keyed
        subject hash when the card's number was read. Never an image, an embedding, an ID number
        or the token."""
        evidence: dict[str, Any] = {
            "method": "id_card_face",
            "match_score": round(float(self.match_score), 4),
            "liveness": self.liveness,
            "authenticated_at": self.authenticated_at.astimezone(UTC).isoformat(),
        }
        if match_threshold is not None:
            evidence["match_threshold"] = match_threshold
        if self.subject is not None:
            evidence["subject"] = self.subject
        return evidence


def subject_of(id_number: str, key: bytes) -> str:
    """The keyed hash stored instead of an ID number: without ``key`` the 12-digit space cannot
    be searched for a match."""
    return hmac.new(key, id_number.strip().encode(), hashlib.sha256).hexdigest()


def new_token() -> str:
    return TOKEN_PREFIX + secrets.token_urlsafe(32)


def token_digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def _unknown() -> Unauthenticated:
    return Unauthenticated(
        "Phiên không hợp lệ / The session is not valid: authenticate with your ID card again",
        reason="TOKEN_UNKNOWN",
        field="header.session_token",
    )


def _expired() -> Unauthenticated:
    return Unauthenticated(
        "Phiên đã hết hạn / The session has expired: authenticate with your ID card again",
        reason="TOKEN_EXPIRED",
        field="header.session_token",
    )


def _wrong_kiosk() -> Unauthenticated:
    return Unauthenticated(
        "Phiên thuộc một ki-ốt khác / The session belongs to another kiosk: authenticate at"
        " this kiosk",
        reason="TOKEN_WRONG_KIOSK",
        field="header.session_token",
    )


def _replayed() -> Unauthenticated:
    return Unauthenticated(
        "Phiên đã được dùng cho một hồ sơ khác / The session was already used for another"
        " dossier: authenticate again for each dossier",
        reason="TOKEN_REPLAYED",
        field="header.session_token",
    )


def _well_formed(token: str) -> bool:
    return token.startswith(TOKEN_PREFIX) and 20 <= len(token) <= 128


class SessionStore(ABC):
    """Issues and resolves session tokens; both backends pass the same tests."""

    def __init__(self, ttl: float = DEFAULT_TTL, grace: float = DEFAULT_GRACE) -> None:
        if ttl <= 0 or grace < 0:
            raise ValueError("ttl must be positive and grace not negative")
        self.ttl = ttl
        self.grace = grace

    @abstractmethod
    def issue(self, kiosk_id: str, identity: Identity) -> str:
        """A new token for ``identity``, usable only from ``kiosk_id`` for ``ttl`` seconds."""

    @abstractmethod
    def resolve(self, token: str, kiosk_id: str, request_id: str) -> Identity:
        """The identity behind ``token`` for the dossier ``request_id``; binds the token to that
        dossier on first use. Raises Unauthenticated (TOKEN_UNKNOWN, TOKEN_EXPIRED,
        TOKEN_WRONG_KIOSK, TOKEN_REPLAYED)."""

    def close(self) -> None:  # noqa: B027 - optional for backends without resources
        """Release connections."""


@dataclass
class _Record:
    identity: Identity
    kiosk_id: str
    expires: float
    forget: float
    bound: str | None = None


class InMemorySessionStore(SessionStore):
    """Sessions in a dict, for one server process (the embedded default)."""

    def __init__(
        self,
        ttl: float = DEFAULT_TTL,
        grace: float = DEFAULT_GRACE,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        super().__init__(ttl, grace)
        self._clock = clock
        self._records: dict[str, _Record] = {}
        self._lock = threading.Lock()

    def _sweep(self, now: float) -> None:
        for key in [k for k, r in self._records.items() if r.forget <= now]:
            del self._records[key]

    def issue(self, kiosk_id: str, identity: Identity) -> str:
        token = new_token()
        now = self._clock()
        with self._lock:
            self._sweep(now)
            self._records[token_digest(token)] = _Record(
                identity, kiosk_id, now + self.ttl, now + self.ttl + self.grace
            )
        return token

    def resolve(self, token: str, kiosk_id: str, request_id: str) -> Identity:
        if not _well_formed(token):
            raise _unknown()
        now = self._clock()
        with self._lock:
            self._sweep(now)
            record = self._records.get(token_digest(token))
            if record is None:
                raise _unknown()
            if now >= record.expires:
                raise _expired()
            if record.kiosk_id != kiosk_id:
                raise _wrong_kiosk()
            if record.bound is None:
                record.bound = request_id
            elif record.bound != request_id:
                raise _replayed()
            return record.identity

    def __len__(self) -> int:
        with self._lock:
            self._sweep(self._clock())
            return len(self._records)


class RedisSessionStore(SessionStore):
    """Sessions in Redis (shared by every server replica): one hash per token digest, with a
    key TTL of ``ttl + grace``; the first-use binding is an atomic ``HSETNX``."""

    def __init__(
        self,
        url: str,
        ttl: float = DEFAULT_TTL,
        grace: float = DEFAULT_GRACE,
        prefix: str = "saoy:session:",
        clock: Callable[[], float] = time.time,
    ) -> None:
        super().__init__(ttl, grace)
        import redis

        self._redis: Any = redis.Redis.from_url(url, socket_timeout=5, decode_responses=True)
        self._errors: tuple[type[BaseException], ...] = (redis.RedisError, OSError)
        self.prefix = prefix
        self._clock = clock

    def _key(self, token: str) -> str:
        return self.prefix + token_digest(token)

    def _unavailable(self, error: BaseException) -> Unavailable:
        return Unavailable(
            "Dịch vụ phiên tạm thời gián đoạn / The session service is unavailable: try again"
            " in a moment",
            reason="SESSION_STORE_UNAVAILABLE",
            retry_after=2.0,
        )

    def issue(self, kiosk_id: str, identity: Identity) -> str:
        token = new_token()
        now = self._clock()
        fields = {
            "kiosk": kiosk_id,
            "subject": identity.subject or "",
            "score": repr(identity.match_score),
            "liveness": identity.liveness,
            "at": identity.authenticated_at.isoformat(),
            "expires": repr(now + self.ttl),
        }
        key = self._key(token)
        try:
            pipe = self._redis.pipeline(transaction=True)
            pipe.hset(key, mapping=fields)
            pipe.pexpire(key, int((self.ttl + self.grace) * 1000))
            pipe.execute()
        except self._errors as error:
            raise self._unavailable(error) from error
        return token

    def resolve(self, token: str, kiosk_id: str, request_id: str) -> Identity:
        if not _well_formed(token):
            raise _unknown()
        key = self._key(token)
        try:
            record = self._redis.hgetall(key)
            if not record:
                raise _unknown()
            if self._clock() >= float(record["expires"]):
                raise _expired()
            if record["kiosk"] != kiosk_id:
                raise _wrong_kiosk()
            if not self._redis.hsetnx(key, "bound", request_id):
                bound = self._redis.hget(key, "bound")
                if bound != request_id:
                    raise _replayed()
        except self._errors as error:
            raise self._unavailable(error) from error
        return Identity(
            kiosk_id=record["kiosk"],
            subject=record["subject"] or None,
            match_score=float(record["score"]),
            liveness=record["liveness"],
            authenticated_at=datetime.fromisoformat(record["at"]),
        )

    def close(self) -> None:
        self._redis.close()


def create_session_store(
    redis_url: str | None, ttl: float = DEFAULT_TTL, grace: float = DEFAULT_GRACE
) -> SessionStore:
    """Redis when a URL is configured, else in-process."""
    if redis_url:
        return RedisSessionStore(redis_url, ttl, grace)
    return InMemorySessionStore(ttl, grace)


def now_utc() -> datetime:
    return datetime.now(UTC)
