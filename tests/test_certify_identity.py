"""Certify needs a citizen: a session token from Identity.Authenticate, for this kiosk, for this
dossier. Every refusal is UNAUTHENTICATED with a reason and leaves no record behind."""

from __future__ import annotations

import logging
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path

import grpc
import pytest
from google.rpc import error_details_pb2
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_status import rpc_status

from saoy.clients.sdk import new_request_id
from saoy.clients.simulator import docgen
from saoy.core.identity.face import FaceEngine
from saoy.core.identity.sessions import subject_of
from saoy.server.settings import Settings
from saoy.v1 import certification_pb2 as cpb
from saoy.v1 import certification_pb2_grpc as cgrpc
from saoy.v1 import identity_pb2 as ipb
from saoy.v1 import identity_pb2_grpc as igrpc
from tests.face_photos import card_bytes, face_engine, head_turn_frames, redis_url

from .conftest import RunningServer, start_server

__all__ = ["face_engine", "redis_url"]


@pytest.fixture(scope="module")
def page(reference_dossier: list[tuple[str, bytes]]) -> bytes:
    return reference_dossier[0][1]  # the ID card front: the quickest page to certify


def certify_raw(
    server: RunningServer, kiosk: str, token: str, page: bytes, request_id: str | None = None
) -> grpc.RpcError:
    """One dossier through the bare stub; the error its stream ends with."""
    messages = [
        cpb.CertifyRequest(
            header=cpb.Header(
                request_id=request_id or new_request_id(), kiosk_id=kiosk, session_token=token
            )
        ),
        cpb.CertifyRequest(chunk=cpb.PageChunk(page=0, data=page, last=True)),
        cpb.CertifyRequest(end=cpb.End(page_count=1)),
    ]
    with grpc.insecure_channel(server.target) as channel:
        call = cgrpc.CertificationStub(channel).Certify(iter(messages), timeout=60)
        with pytest.raises(grpc.RpcError) as raised:
            list(call)
    return raised.value


def details(error: grpc.RpcError) -> tuple[str, str]:
    """(ErrorInfo.reason, the BadRequest field) of a status."""
    status = rpc_status.from_call(error)
    assert status is not None
    reason = field = ""
    for detail in status.details:
        info, bad = error_details_pb2.ErrorInfo(), error_details_pb2.BadRequest()
        if detail.Unpack(info):
            reason = info.reason
        elif detail.Unpack(bad):
            field = bad.field_violations[0].field
    return reason, field


TOKENS: dict[str, Callable[[RunningServer], str]] = {
    "missing": lambda server: "",
    "malformed": lambda server: "not a token",
    "unknown": lambda server: "sst_" + "A" * 43,
    "another kiosk's": lambda server: server.token("kiosk-elsewhere"),
}
REASONS = {
    "missing": "TOKEN_MISSING",
    "malformed": "TOKEN_UNKNOWN",
    "unknown": "TOKEN_UNKNOWN",
    "another kiosk's": "TOKEN_WRONG_KIOSK",
}


@pytest.mark.parametrize("kind", list(TOKENS))
def test_certify_without_a_valid_token_is_unauthenticated_and_stores_nothing(
    server: RunningServer, page: bytes, kind: str
) -> None:
    before = server.snapshot()
    error = certify_raw(server, "kiosk-auth", TOKENS[kind](server), page)
    assert error.code() == grpc.StatusCode.UNAUTHENTICATED, kind
    assert details(error) == (REASONS[kind], "header.session_token")
    assert "authenticate" in (error.details() or "").lower()  # tells the citizen what to do
    assert server.snapshot() == before


def test_a_token_certifies_one_dossier_and_its_retries_only(
    server: RunningServer, page: bytes
) -> None:
    token = server.token("kiosk-once")
    with server.client(kiosk_id="kiosk-once", session_token=token) as client:
        first = client.certify([page], request_id="once-0001")
        assert first.issued is not None
        retried = client.certify([page], request_id="once-0001")  # a dropped link, retried
        assert retried.issued is not None and retried.issued.code == first.issued.code
    before = server.snapshot()
    error = certify_raw(server, "kiosk-once", token, page, request_id="once-0002")
    assert error.code() == grpc.StatusCode.UNAUTHENTICATED
    assert details(error)[0] == "TOKEN_REPLAYED"
    assert "another dossier" in (error.details() or "")
    assert server.snapshot() == before


def test_a_citizen_authenticated_with_real_photos_gets_a_copy_with_the_evidence(
    server: RunningServer, page: bytes, face_engine: FaceEngine
) -> None:
    card = card_bytes(face_engine)

    def capture(challenge: ipb.HeadTurnChallenge) -> list[bytes]:
        sign = 1 if challenge.direction == ipb.HEAD_TURN_LEFT else -1
        return head_turn_frames(face_engine, "obama3.jpg", [0, sign * 15, sign * 35])

    with server.client(kiosk_id="kiosk-citizen") as client:
        done = client.authenticate(card, capture)
        assert done.match_score >= done.match_threshold > 0.3
        result = client.certify([page], session_token=done.session_token)
    assert result.issued is not None, result.events

    dossier = server.server.certifier.registry.get_dossier(result.dossier_id)
    assert dossier is not None and dossier.identity_evidence is not None
    evidence = dict(dossier.identity_evidence)
    assert evidence["method"] == "id_card_face"
    assert evidence["match_score"] == pytest.approx(done.match_score, abs=1e-4)
    assert evidence["match_threshold"] == pytest.approx(done.match_threshold)
    assert evidence["liveness"] == done.liveness
    assert evidence["authenticated_at"].endswith("+00:00")
    assert done.session_token not in repr(evidence)
    # The card's number, from its QR code, is kept only as a keyed hash.
    number = docgen.random_person(3).id_number  # the person on card_bytes' card
    key = (server.data_dir / "keys" / "subject.key").read_bytes()
    assert evidence["subject"] == subject_of(number, key)
    assert number not in repr(evidence) and number not in repr(dossier)

    with grpc.insecure_channel(server.target) as channel:
        health = health_pb2_grpc.HealthStub(channel).Check(
            health_pb2.HealthCheckRequest(service="saoy.v1.Identity"), timeout=10
        )
    assert health.status == health_pb2.HealthCheckResponse.SERVING
    with urllib.request.urlopen(f"{server.http}/metrics") as response:
        metrics = response.read().decode()
    assert 'identity="required"' in metrics and 'face_provider="' in metrics


def test_sessions_in_redis_work_and_expire(tmp_path: Path, redis_url: str, page: bytes) -> None:
    running = start_server(tmp_path, redis_url=redis_url, session_ttl_seconds=1.0)
    try:
        with running.client(kiosk_id="kiosk-redis") as client:
            result = client.certify(
                [page], session_token=running.token("kiosk-redis", match_score=0.6)
            )
        assert result.issued is not None
        dossier = running.server.certifier.registry.get_dossier(result.dossier_id)
        assert dossier is not None and dossier.identity_evidence is not None
        assert dossier.identity_evidence["match_score"] == pytest.approx(0.6)

        token = running.token("kiosk-redis")
        time.sleep(1.2)
        before = running.snapshot()
        error = certify_raw(running, "kiosk-redis", token, page)
        assert error.code() == grpc.StatusCode.UNAUTHENTICATED
        assert details(error)[0] == "TOKEN_EXPIRED"
        assert "expired" in (error.details() or "")
        assert running.snapshot() == before
    finally:
        running.stop()


def test_identity_off_certifies_without_a_token_and_says_so_loudly(
    tmp_path: Path, page: bytes, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING, logger="saoy.server"):
        running = start_server(tmp_path, identity="off")
    try:
        assert "IDENTITY CHECKS ARE OFF" in caplog.text
        with running.client(kiosk_id="kiosk-dev") as client:
            result = client.certify([page])
        assert result.issued is not None
        dossier = running.server.certifier.registry.get_dossier(result.dossier_id)
        assert dossier is not None and dossier.identity_evidence is None
        with grpc.insecure_channel(running.target) as channel:
            call = igrpc.IdentityStub(channel).Authenticate(iter([]), timeout=10)
            with pytest.raises(grpc.RpcError) as raised:
                list(call)
        assert raised.value.code() == grpc.StatusCode.UNIMPLEMENTED
    finally:
        running.stop()


def test_the_identity_setting_reads_flags_and_environment() -> None:
    assert Settings().identity == "required"
    assert Settings.load({}, {"SAOY_IDENTITY": "off"}).identity == "off"
    assert Settings.load({"identity": "off"}, {}).identity == "off"
    with pytest.raises(ValueError, match="identity"):
        Settings(identity="maybe")
    with pytest.raises(ValueError, match="face_providers"):
        Settings(face_providers="tpu")
