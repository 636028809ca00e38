"""The Authenticate stream: the protocol (order, chunking, limits) around core.identity.

Face work (decode, detect, embed) runs in the bounded CPU executor; the event loop only moves
bytes. Nothing of the images is logged or kept: each frame is measured and dropped, and the
attempt's embeddings are forgotten when the stream ends, however it ends.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from concurrent.futures import Executor
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

import grpc
from google.protobuf import timestamp_pb2

from saoy.core.errors import DeadlineExceeded, InvalidInput, OutOfOrder, TooLarge
from saoy.core.identity.authenticate import Authentication
from saoy.core.identity.face import FaceEngine
from saoy.core.identity.liveness import Direction, LivenessConfig
from saoy.core.identity.sessions import Identity, SessionStore, subject_of
from saoy.core.trust.pki import KIOSK_ID
from saoy.server.interceptors import check_kiosk_certificate
from saoy.v1 import identity_pb2 as pb
from saoy.v1 import identity_pb2_grpc as pb_grpc

MiB = 1024 * 1024
MAX_CHUNK_BYTES = 1 * MiB
MAX_FRAME_BYTES = 1 * MiB
T = TypeVar("T")

INSTRUCTIONS = {
    Direction.LEFT: "Nhìn thẳng vào camera, rồi từ từ quay đầu sang TRÁI"
    " / Look straight at the camera, then slowly turn your head to your LEFT",
    Direction.RIGHT: "Nhìn thẳng vào camera, rồi từ từ quay đầu sang PHẢI"
    " / Look straight at the camera, then slowly turn your head to your RIGHT",
}
WIRE_DIRECTION = {Direction.LEFT: pb.HEAD_TURN_LEFT, Direction.RIGHT: pb.HEAD_TURN_RIGHT}


def _timestamp(at: datetime) -> timestamp_pb2.Timestamp:
    ts = timestamp_pb2.Timestamp()
    ts.FromDatetime(at)
    return ts


class IdentityServicer(pb_grpc.IdentityServicer):
    """Identity.Authenticate over a shared :class:`FaceEngine` and :class:`SessionStore`."""

    def __init__(
        self,
        engine: FaceEngine,
        sessions: SessionStore,
        executor: Executor,
        *,
        liveness: LivenessConfig | None = None,
        idle_seconds: float = 30.0,
        subject_key: bytes | None = None,
        bind_kiosk: bool = False,
    ) -> None:
        self.engine = engine
        self.bind_kiosk = bind_kiosk
        """Mutual TLS: header.kiosk_id must be the CN of the client certificate."""
        self.sessions = sessions
        self.subject_key = subject_key
        """Key of the subject hash of the card's number; None: no subject is kept."""
        self.executor = executor
        self.liveness = liveness or LivenessConfig()
        self.idle_seconds = idle_seconds

    async def _next(
        self, stream: AsyncIterator[pb.AuthenticateRequest]
    ) -> pb.AuthenticateRequest | None:
        try:
            return await asyncio.wait_for(anext(stream), self.idle_seconds)
        except StopAsyncIteration:
            return None
        except TimeoutError:
            raise DeadlineExceeded(
                f"no message for {self.idle_seconds:g} s: the stream was closed; start again",
                reason="STREAM_IDLE",
            ) from None

    async def _run(self, fn: Callable[..., T], *args: Any) -> T:
        return await asyncio.get_running_loop().run_in_executor(self.executor, fn, *args)

    async def Authenticate(
        self,
        request_iterator: AsyncIterator[pb.AuthenticateRequest],
        context: grpc.aio.ServicerContext,
    ) -> AsyncIterator[pb.AuthenticateResponse]:
        attempt = Authentication(self.engine, self.liveness)
        try:
            async for response in self._authenticate(
                request_iterator.__aiter__(), attempt, context
            ):
                yield response
        finally:
            attempt.close()

    async def _authenticate(
        self,
        stream: AsyncIterator[pb.AuthenticateRequest],
        attempt: Authentication,
        context: grpc.aio.ServicerContext,
    ) -> AsyncIterator[pb.AuthenticateResponse]:
        first = await self._next(stream)
        if first is None:
            raise InvalidInput("the stream is empty: send an AuthenticateHeader first")
        if first.WhichOneof("part") != "header":
            raise OutOfOrder("the first message must be an AuthenticateHeader", field="header")
        kiosk_id = first.header.kiosk_id
        if not KIOSK_ID.fullmatch(kiosk_id):
            raise InvalidInput(
                "header.kiosk_id must be 1-64 characters of A-Z, a-z, 0-9, _, . or -",
                field="header.kiosk_id",
            )
        if self.bind_kiosk:
            check_kiosk_certificate(context, kiosk_id, "header.kiosk_id")

        card = bytearray()
        limit = self.engine.config.max_image_bytes
        while True:
            message = await self._next(stream)
            if message is None or message.WhichOneof("part") != "card":
                raise OutOfOrder(
                    "Hãy gửi ảnh mặt trước thẻ / Send the front of the ID card (CardChunk, the"
                    " last one with last = true) before anything else",
                    reason="CARD_FIRST",
                    field="card",
                )
            if len(message.card.data) > MAX_CHUNK_BYTES:
                raise InvalidInput("a card chunk holds at most 1 MiB", field="card.data")
            card += message.card.data
            if len(card) > limit:
                raise TooLarge(
                    f"Ảnh thẻ quá lớn / The ID card image is larger than {limit // MiB} MiB",
                    field="card.data",
                )
            if message.card.last:
                break
        challenge = await self._run(attempt.card, bytes(card))
        del card
        yield pb.AuthenticateResponse(
            challenge=pb.HeadTurnChallenge(
                direction=WIRE_DIRECTION[challenge.direction],
                deadline=_timestamp(datetime.fromtimestamp(challenge.deadline, UTC)),
                instruction=INSTRUCTIONS[challenge.direction],
            )
        )

        frames = 0
        while True:
            message = await self._next(stream)
            part = None if message is None else message.WhichOneof("part")
            if message is None:
                raise OutOfOrder(
                    "the stream ended without AuthenticateEnd: start again", field="end"
                )
            if part == "end":
                if message.end.frame_count != frames:
                    raise InvalidInput(
                        f"end.frame_count is {message.end.frame_count} but {frames} frame(s)"
                        " were received",
                        field="end.frame_count",
                    )
                break
            if part != "frame":
                raise OutOfOrder(
                    f"a {part} is not expected after the card: send LiveFrame messages, then"
                    " AuthenticateEnd",
                    field=part,
                )
            frame = message.frame
            if len(frame.image) > MAX_FRAME_BYTES:
                raise TooLarge(
                    "Ảnh quá lớn / A camera frame is larger than 1 MiB: send smaller JPEG frames",
                    field="frame.image",
                )
            if not frame.HasField("captured_at"):
                raise InvalidInput(
                    "every frame needs its capture time (frame.captured_at)",
                    field="frame.captured_at",
                )
            captured = frame.captured_at.seconds + frame.captured_at.nanos / 1e9
            await self._run(attempt.frame, frame.image, captured)
            frames += 1

        result = await self._run(attempt.finish)
        number = attempt.card_number
        identity = Identity(
            kiosk_id=kiosk_id,
            subject=subject_of(number, self.subject_key) if number and self.subject_key else None,
            match_score=result.match_score,
            liveness=result.liveness,
            authenticated_at=datetime.now(UTC),
        )
        token = await self._run(self.sessions.issue, kiosk_id, identity)
        yield pb.AuthenticateResponse(
            authenticated=pb.Authenticated(
                session_token=token,
                expires_at=_timestamp(datetime.now(UTC) + timedelta(seconds=self.sessions.ttl)),
                match_score=result.match_score,
                match_threshold=self.engine.config.match_threshold,
                liveness=result.liveness,
            )
        )
