"""Identity.Authenticate over a real gRPC server: the challenge, the token, bad input."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import grpc
import pytest
from google.protobuf import timestamp_pb2
from google.rpc import error_details_pb2
from grpc_status import rpc_status

from saoy.core.errors import Unauthenticated
from saoy.core.identity.face import FaceEngine
from saoy.core.identity.sessions import InMemorySessionStore
from saoy.server.identity import IdentityServicer
from saoy.server.interceptors import ErrorInterceptor
from saoy.v1 import identity_pb2 as pb
from saoy.v1 import identity_pb2_grpc as pb_grpc
from tests.face_photos import card_bytes, face_engine, head_turn_frames, photo_bytes

__all__ = ["face_engine"]

KIOSK = "kiosk-7"
Call = Any  # grpc.aio.StreamStreamCall


def _serve(
    engine: FaceEngine, sessions: InMemorySessionStore, scenario: Callable[[Call], Awaitable[Any]]
) -> Any:
    async def main() -> Any:
        executor = ThreadPoolExecutor(2)
        server = grpc.aio.server(interceptors=[ErrorInterceptor()])
        pb_grpc.add_IdentityServicer_to_server(
            IdentityServicer(engine, sessions, executor, idle_seconds=10), server
        )
        port = server.add_insecure_port("127.0.0.1:0")
        await server.start()
        try:
            async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
                call = pb_grpc.IdentityStub(channel).Authenticate(timeout=60)
                return await scenario(call)
        finally:
            await server.stop(1)
            executor.shutdown()

    return asyncio.run(main())


def _stamp(seconds: float) -> timestamp_pb2.Timestamp:
    ts = timestamp_pb2.Timestamp()
    ts.FromNanoseconds(int(seconds * 1e9))
    return ts


async def _send_card(call: Call, data: bytes, chunk: int = 64 * 1024) -> None:
    await call.write(pb.AuthenticateRequest(header=pb.AuthenticateHeader(kiosk_id=KIOSK)))
    for start in range(0, len(data), chunk):
        last = start + chunk >= len(data)
        await call.write(
            pb.AuthenticateRequest(card=pb.CardChunk(data=data[start : start + chunk], last=last))
        )


async def _send_frames(call: Call, frames: list[bytes], start: float) -> None:
    for i, frame in enumerate(frames):
        await call.write(
            pb.AuthenticateRequest(
                frame=pb.LiveFrame(image=frame, captured_at=_stamp(start + 0.25 * (i + 1)))
            )
        )
    await call.write(pb.AuthenticateRequest(end=pb.AuthenticateEnd(frame_count=len(frames))))
    await call.done_writing()


def _status(error: grpc.aio.AioRpcError) -> tuple[grpc.StatusCode, str, str]:
    status = rpc_status.from_call(error)
    reason = ""
    assert status is not None
    for detail in status.details:
        info = error_details_pb2.ErrorInfo()
        if detail.Unpack(info):
            reason = info.reason
    return error.code(), reason, error.details() or ""


def test_a_citizen_is_authenticated_and_gets_a_kiosk_bound_token(
    face_engine: FaceEngine,
) -> None:
    sessions = InMemorySessionStore()
    card = card_bytes(face_engine)

    async def scenario(call: Call) -> tuple[pb.HeadTurnChallenge, pb.Authenticated]:
        await _send_card(call, card)
        first = await call.read()
        challenge = first.challenge
        sign = 1 if challenge.direction == pb.HEAD_TURN_LEFT else -1
        frames = head_turn_frames(face_engine, "obama3.jpg", [0, sign * 15, sign * 35])
        await _send_frames(call, frames, challenge.deadline.ToNanoseconds() / 1e9 - 19)
        second = await call.read()
        assert await call.read() == grpc.aio.EOF
        return challenge, second.authenticated

    challenge, done = _serve(face_engine, sessions, scenario)
    assert challenge.direction in (pb.HEAD_TURN_LEFT, pb.HEAD_TURN_RIGHT)
    assert ("TRÁI" in challenge.instruction) == (challenge.direction == pb.HEAD_TURN_LEFT)
    assert done.match_score > done.match_threshold > 0.3
    assert done.liveness.startswith("head_turn:")
    identity = sessions.resolve(done.session_token, KIOSK, "dossier-0001")
    assert identity.kiosk_id == KIOSK and identity.match_score == pytest.approx(done.match_score)
    with pytest.raises(Unauthenticated) as err:
        sessions.resolve(done.session_token, "kiosk-8", "dossier-0002")
    assert err.value.reason == "TOKEN_WRONG_KIOSK"


def _fails(
    engine: FaceEngine, scenario: Callable[[Call], Awaitable[Any]]
) -> tuple[grpc.StatusCode, str, str]:
    async def wrapped(call: Call) -> tuple[grpc.StatusCode, str, str]:
        with pytest.raises(grpc.aio.AioRpcError) as err:
            await scenario(call)
        return _status(err.value)

    result: tuple[grpc.StatusCode, str, str] = _serve(engine, InMemorySessionStore(), wrapped)
    return result


def test_a_card_without_a_face_is_invalid_argument(face_engine: FaceEngine) -> None:
    from saoy.clients.simulator import docgen

    blank = docgen.encode(docgen.id_card_front(docgen.random_person(2), 2))

    async def scenario(call: Call) -> None:
        await _send_card(call, blank)
        await call.read()

    code, reason, message = _fails(face_engine, scenario)
    assert (code, reason) == (grpc.StatusCode.INVALID_ARGUMENT, "NO_FACE_ON_CARD")
    assert "ID card" in message


def test_frames_before_the_card_are_out_of_order(face_engine: FaceEngine) -> None:
    async def scenario(call: Call) -> None:
        await call.write(pb.AuthenticateRequest(header=pb.AuthenticateHeader(kiosk_id=KIOSK)))
        await call.write(pb.AuthenticateRequest(frame=pb.LiveFrame(image=b"\xff\xd8\xff")))
        await call.read()

    code, reason, _ = _fails(face_engine, scenario)
    assert (code, reason) == (grpc.StatusCode.FAILED_PRECONDITION, "CARD_FIRST")


def test_an_impostor_is_unauthenticated(face_engine: FaceEngine) -> None:
    card = card_bytes(face_engine)

    async def scenario(call: Call) -> None:
        await _send_card(call, card)
        challenge = (await call.read()).challenge
        sign = 1 if challenge.direction == pb.HEAD_TURN_LEFT else -1
        frames = head_turn_frames(face_engine, "biden.jpg", [0, sign * 35])
        await _send_frames(call, frames, challenge.deadline.ToNanoseconds() / 1e9 - 19)
        await call.read()

    code, reason, _ = _fails(face_engine, scenario)
    assert (code, reason) == (grpc.StatusCode.UNAUTHENTICATED, "FACE_MISMATCH")


def test_frames_out_of_order_are_invalid_argument(face_engine: FaceEngine) -> None:
    card = card_bytes(face_engine)

    async def scenario(call: Call) -> None:
        await _send_card(call, card)
        challenge = (await call.read()).challenge
        at = _stamp(challenge.deadline.ToNanoseconds() / 1e9 - 15)
        for name in ("obama3.jpg", "obama2.jpg"):
            frame = pb.LiveFrame(image=photo_bytes(name), captured_at=at)
            await call.write(pb.AuthenticateRequest(frame=frame))
        await call.read()

    code, reason, _ = _fails(face_engine, scenario)
    assert (code, reason) == (grpc.StatusCode.INVALID_ARGUMENT, "FRAMES_OUT_OF_ORDER")
