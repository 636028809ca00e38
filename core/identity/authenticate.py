"""One authentication attempt: the ID card's photo, a head-turn challenge, live frames, a verdict.

Everything here lives in memory for the length of one attempt. Frames are decoded, measured
and dropped at once; the card photo's embedding and the frames' embeddings are held only until
:meth:`Authentication.finish` (or :meth:`Authentication.close`) and are never logged. What
leaves is an :class:`AuthResult`: scores and measurements, no image, no embedding.
"""

from __future__ import annotations

import hashlib
import logging
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import cv2
import numpy as np

from saoy.core.documents.qr import read_card_qr
from saoy.core.errors import DeadlineExceeded, InvalidInput, OutOfOrder, TooLarge, Unauthenticated
from saoy.core.identity.face import FaceEngine, cosine, decode_image
from saoy.core.identity.liveness import (
    Direction,
    LivenessConfig,
    Pose,
    TurnResult,
    check_head_turn,
    moire_score,
    pose,
)

log = logging.getLogger("saoy.core.identity")

CARD_FIELD = "card.data"
FRAME_FIELD = "frame.image"


@dataclass(frozen=True)
class Challenge:
    """What the citizen is asked to do, and until when (server wall clock, seconds)."""

    direction: Direction
    issued_at: float
    deadline: float


@dataclass(frozen=True)
class AuthResult:
    """The verdict's evidence: no image and no embedding."""

    match_score: float
    """Lowest cosine similarity of a live frame to the card photo."""
    frontal_score: float
    """Similarity of the first (frontal) frame to the card photo."""
    frames: int
    turn: TurnResult
    moire: float
    """Highest screen-moiré score over the frames."""
    direction: Direction

    @property
    def liveness(self) -> str:
        return f"head_turn:{self.direction.value}+screen"


@dataclass
class _Frame:
    captured_at: float
    embedding: np.ndarray
    pose: Pose
    moire: float


@dataclass
class Authentication:
    """One citizen's attempt at one kiosk. Not thread-safe: one stream drives it, in order
    (card, then frames, then finish); the heavy calls may run in an executor."""

    engine: FaceEngine
    config: LivenessConfig = field(default_factory=LivenessConfig)
    clock: Callable[[], float] = time.time
    choose: Callable[[], Direction] = field(
        default=lambda: secrets.choice((Direction.LEFT, Direction.RIGHT))
    )
    challenge: Challenge | None = None
    card_number: str | None = None
    """The 12-digit number the card's QR code carries, when it reads (for the keyed subject
    hash; kept for the attempt only)."""
    _card: np.ndarray | None = None
    _frames: list[_Frame] = field(default_factory=list)
    _hashes: set[str] = field(default_factory=set)

    def card(self, data: bytes) -> Challenge:
        """Find the photo on the card front, embed it, and issue the challenge."""
        if self._card is not None:
            raise OutOfOrder(
                "Thẻ đã được gửi / The ID card was already sent: send the live frames",
                reason="CARD_ALREADY_SENT",
                field=CARD_FIELD,
            )
        cfg = self.engine.config
        image = decode_image(
            data,
            what="ID card",
            field=CARD_FIELD,
            max_bytes=cfg.max_image_bytes,
            max_pixels=cfg.max_pixels,
        )
        detection = self.engine.card_face(image, CARD_FIELD)
        self._card = self.engine.embed(image, detection)
        qr = read_card_qr(cv2.cvtColor(image, cv2.COLOR_BGR2GRAY))
        self.card_number = qr.id_number if qr is not None and qr.well_formed else None
        now = self.clock()
        self.challenge = Challenge(self.choose(), now, now + self.config.deadline_seconds)
        return self.challenge

    def frame(self, data: bytes, captured_at: float) -> None:
        """Check and measure one live frame (capture time in seconds since the epoch, as the
        kiosk's clock says); the pixels are dropped before this returns."""
        challenge = self._require_challenge()
        cfg, live = self.engine.config, self.config
        if self.clock() > challenge.deadline:
            raise DeadlineExceeded(
                "Hết thời gian / Time is up: start again and turn your head when asked",
                reason="CHALLENGE_EXPIRED",
            )
        if len(self._frames) >= live.max_frames:
            raise TooLarge(
                f"Quá nhiều ảnh / Too many frames: at most {live.max_frames} per attempt",
                reason="TOO_MANY_FRAMES",
                field=FRAME_FIELD,
            )
        if self._frames and captured_at <= self._frames[-1].captured_at:
            raise InvalidInput(
                "Ảnh không theo thứ tự / The frames are out of order: each frame must be"
                " captured after the previous one",
                reason="FRAMES_OUT_OF_ORDER",
                field="frame.captured_at",
            )
        if captured_at < challenge.issued_at - live.max_clock_skew_seconds:
            raise InvalidInput(
                "Ảnh được chụp trước khi yêu cầu / The frame was captured before the challenge"
                " was given: capture new frames (check the kiosk's clock)",
                reason="FRAME_STALE",
                field="frame.captured_at",
            )
        if self._frames and captured_at - self._frames[0].captured_at > live.max_span_seconds:
            raise InvalidInput(
                f"Quá thời gian / The frames span more than {live.max_span_seconds:g} s:"
                " start again",
                reason="FRAMES_TOO_SPREAD",
                field="frame.captured_at",
            )
        digest = hashlib.sha256(data).hexdigest()
        if digest in self._hashes:
            raise InvalidInput(
                "Ảnh bị gửi lặp lại / The same frame was sent twice: send live camera frames",
                reason="DUPLICATE_FRAME",
                field=FRAME_FIELD,
            )
        self._hashes.add(digest)
        image = decode_image(
            data,
            what="camera frame",
            field=FRAME_FIELD,
            max_bytes=cfg.max_image_bytes,
            max_pixels=cfg.max_pixels,
        )
        detection = self.engine.single_face(image, what="camera frame", field=FRAME_FIELD)
        x, y, w, h = (round(v) for v in detection.box)
        gray = cv2.cvtColor(
            image[max(y, 0) : max(y + h, 0), max(x, 0) : max(x + w, 0)], cv2.COLOR_BGR2GRAY
        )
        self._frames.append(
            _Frame(
                captured_at=captured_at,
                embedding=self.engine.embed(image, detection),
                pose=pose(detection.landmarks),
                moire=moire_score(gray),
            )
        )

    def finish(self) -> AuthResult:
        """The verdict: AuthResult when every check passed, else Unauthenticated (or
        InvalidInput for too few frames). Forgets the embeddings either way."""
        try:
            return self._finish()
        finally:
            self.close()

    def _finish(self) -> AuthResult:
        challenge = self._require_challenge()
        assert self._card is not None
        live = self.config
        if len(self._frames) < live.min_frames:
            raise InvalidInput(
                f"Thiếu ảnh / Too few frames ({len(self._frames)}, at least {live.min_frames}):"
                " look at the camera, then turn your head",
                reason="TOO_FEW_FRAMES",
                field=FRAME_FIELD,
            )
        moire = max(f.moire for f in self._frames)
        if moire > live.max_moire:
            raise Unauthenticated(
                "Không nhận được khuôn mặt thật / The camera sees a screen, not a person: stand"
                " in front of the camera yourself",
                reason="PRESENTATION_ATTACK",
            )
        scores = [cosine(self._card, f.embedding) for f in self._frames]
        threshold = self.engine.config.match_threshold
        if min(scores) < threshold:
            raise Unauthenticated(
                "Khuôn mặt không khớp với ảnh trên thẻ / The face does not match the photo on the"
                " ID card",
                reason="FACE_MISMATCH",
            )
        turn = check_head_turn([f.pose for f in self._frames], challenge.direction, live)
        if not turn.passed:
            asked = "TRÁI / LEFT" if challenge.direction is Direction.LEFT else "PHẢI / RIGHT"
            what = {
                "NOT_FRONTAL": "look straight at the camera first, then",
                "WRONG_DIRECTION": "you turned the other way:",
                "FLAT": "the turn did not look like a real head:",
            }.get(turn.reason, "no head turn was seen:")
            raise Unauthenticated(
                f"Chưa thực hiện yêu cầu / The challenge was not performed: {what} turn your"
                f" head slowly to your {asked}",
                reason="CHALLENGE_NOT_PERFORMED",
            )
        log.info(
            "face authenticated: frames=%d score=%.3f parallax=%.3f foreshortening=%.3f",
            len(self._frames),
            min(scores),
            turn.parallax,
            turn.foreshortening,
        )
        return AuthResult(
            match_score=min(scores),
            frontal_score=scores[0],
            frames=len(self._frames),
            turn=turn,
            moire=moire,
            direction=challenge.direction,
        )

    def close(self) -> None:
        """Drop every embedding and measurement of this attempt."""
        self._card = None
        self._frames.clear()
        self._hashes.clear()

    def _require_challenge(self) -> Challenge:
        if self.challenge is None or self._card is None:
            raise OutOfOrder(
                "Hãy gửi ảnh mặt trước thẻ trước / Send the front of the ID card first",
                reason="CARD_FIRST",
                field=CARD_FIELD,
            )
        return self.challenge
