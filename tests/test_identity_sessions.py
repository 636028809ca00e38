"""Session tokens: both stores, the same behaviour; Redis is a real server of our own."""

from __future__ import annotations

import stat
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
import redis

from saoy.core.errors import Unauthenticated, Unavailable
from saoy.core.identity.sessions import (
    Identity,
    InMemorySessionStore,
    RedisSessionStore,
    SessionStore,
    create_session_store,
    subject_of,
    token_digest,
)
from saoy.core.trust.secretfiles import ensure_subject_key
from tests.face_photos import redis_url

__all__ = ["redis_url"]

ID_NUMBER = "001203004567"
KEY = b"test-pepper"


class Clock:
    def __init__(self) -> None:
        self.now = 1_900_000_000.0

    def __call__(self) -> float:
        return self.now


def _identity(kiosk: str = "kiosk-1") -> Identity:
    return Identity(
        kiosk_id=kiosk,
        subject=subject_of(ID_NUMBER, KEY),
        match_score=0.74,
        liveness="head_turn:left+screen",
        authenticated_at=datetime(2030, 1, 2, 3, 4, 5, tzinfo=UTC),
    )


@pytest.fixture(params=["memory", "redis"])
def store(request: pytest.FixtureRequest) -> Iterator[tuple[SessionStore, Clock]]:
    clock = Clock()
    if request.param == "memory":
        yield InMemorySessionStore(ttl=60, grace=120, clock=clock), clock
        return
    url = request.getfixturevalue("redis_url")
    redis.Redis.from_url(url).flushdb()
    backend = RedisSessionStore(url, ttl=60, grace=120, clock=clock)
    yield backend, clock
    backend.close()


def _reason(store: SessionStore, token: str, kiosk: str, request_id: str) -> str:
    with pytest.raises(Unauthenticated) as err:
        store.resolve(token, kiosk, request_id)
    assert err.value.field == "header.session_token"
    assert "/" in err.value.message
    return err.value.reason


def test_a_token_resolves_to_its_identity_for_one_dossier(
    store: tuple[SessionStore, Clock],
) -> None:
    sessions, _ = store
    token = sessions.issue("kiosk-1", _identity())
    assert sessions.resolve(token, "kiosk-1", "dossier-0001") == _identity()
    # A retry of the same dossier (same request_id) is accepted again...
    assert sessions.resolve(token, "kiosk-1", "dossier-0001") == _identity()
    # ...another dossier is a replay.
    assert _reason(sessions, token, "kiosk-1", "dossier-0002") == "TOKEN_REPLAYED"


def test_a_token_from_another_kiosk_is_refused_without_being_spent(
    store: tuple[SessionStore, Clock],
) -> None:
    sessions, _ = store
    token = sessions.issue("kiosk-1", _identity())
    assert _reason(sessions, token, "kiosk-2", "dossier-0001") == "TOKEN_WRONG_KIOSK"
    assert sessions.resolve(token, "kiosk-1", "dossier-0003").match_score == 0.74


def test_expired_then_forgotten(store: tuple[SessionStore, Clock]) -> None:
    sessions, clock = store
    token = sessions.issue("kiosk-1", _identity())
    clock.now += 61
    assert _reason(sessions, token, "kiosk-1", "dossier-0001") == "TOKEN_EXPIRED"
    if isinstance(sessions, InMemorySessionStore):
        clock.now += 120
        assert _reason(sessions, token, "kiosk-1", "dossier-0001") == "TOKEN_UNKNOWN"
        assert len(sessions) == 0


def test_unknown_and_malformed_tokens_are_refused(store: tuple[SessionStore, Clock]) -> None:
    sessions, _ = store
    token = sessions.issue("kiosk-1", _identity())
    forged = token[:-4] + ("AAAA" if not token.endswith("AAAA") else "BBBB")
    assert _reason(sessions, forged, "kiosk-1", "dossier-0001") == "TOKEN_UNKNOWN"
    for bad in ("", "x" * 500, "not-a-token"):
        assert _reason(sessions, bad, "kiosk-1", "dossier-0001") == "TOKEN_UNKNOWN"


def test_tokens_are_unguessable_and_distinct(store: tuple[SessionStore, Clock]) -> None:
    sessions, _ = store
    tokens = {sessions.issue("kiosk-1", _identity()) for _ in range(50)}
    assert len(tokens) == 50
    assert all(len(t) >= 40 for t in tokens)


def test_redis_holds_no_token_and_no_id_number_and_expires_keys(redis_url: str) -> None:
    raw = redis.Redis.from_url(redis_url, decode_responses=True)
    raw.flushdb()
    sessions = RedisSessionStore(redis_url, ttl=60, grace=120)
    token = sessions.issue("kiosk-1", _identity())
    (key,) = raw.keys("*")
    assert key == "saoy:session:" + token_digest(token)
    ttl = raw.pttl(key)
    assert 170_000 < ttl <= 180_000
    dump = repr(raw.hgetall(key))
    assert token not in dump and ID_NUMBER not in dump
    assert subject_of(ID_NUMBER, KEY) in dump
    sessions.close()


def test_an_unreachable_redis_is_unavailable_not_unauthenticated() -> None:
    sessions = RedisSessionStore("redis://127.0.0.1:1/0")
    with pytest.raises(Unavailable) as err:
        sessions.issue("kiosk-1", _identity())
    assert err.value.retry_after is not None


def test_the_factory_picks_the_backend(redis_url: str) -> None:
    assert isinstance(create_session_store(None), InMemorySessionStore)
    backend = create_session_store(redis_url, ttl=30)
    assert isinstance(backend, RedisSessionStore) and backend.ttl == 30
    backend.close()


def test_the_subject_key_is_made_once_private_and_kept(tmp_path: Path) -> None:
    key = ensure_subject_key(tmp_path / "keys")
    path = tmp_path / "keys" / "subject.key"
    assert len(key) == 32 and path.read_bytes() == key
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert ensure_subject_key(tmp_path / "keys") == key  # a restart keeps it
    assert [p.name for p in path.parent.iterdir()] == ["subject.key"]  # no temporary left
    assert subject_of("001099012345", key) != subject_of("001099012345", bytes(32))
    path.write_bytes(b"short")
    with pytest.raises(ValueError, match="not a 32-byte key"):
        ensure_subject_key(tmp_path / "keys")
