"""The authentication attempt: card photo, head-turn challenge, live frames, verdict."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from saoy.clients.simulator import faces
from saoy.core.errors import DeadlineExceeded, InvalidInput, SaoyError, Unauthenticated
from saoy.core.identity.authenticate import Authentication, AuthResult
from saoy.core.identity.face import FaceEngine
from saoy.core.identity.liveness import Direction, LivenessConfig, check_head_turn, pose
from tests.face_photos import (
    card_bytes,
    face_engine,
    flat_turn_frames,
    frame_photo,
    head_turn_frames,
    jpeg,
    photo_bytes,
)

__all__ = ["face_engine"]

T0 = 1_900_000_000.0


class Clock:
    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> float:
        return self.now


def _attempt(
    engine: FaceEngine, direction: Direction, clock: Clock | None = None
) -> Authentication:
    attempt = Authentication(engine, clock=clock or Clock(), choose=lambda: direction)
    challenge = attempt.card(card_bytes(engine))
    assert challenge.direction is direction
    return attempt


def _run(
    engine: FaceEngine, direction: Direction, frames: list[bytes], clock: Clock | None = None
) -> AuthResult:
    attempt = _attempt(engine, direction, clock)
    for i, frame in enumerate(frames):
        attempt.frame(frame, T0 + 0.3 * (i + 1))
    return attempt.finish()


def _fails(engine: FaceEngine, direction: Direction, frames: list[bytes]) -> SaoyError:
    with pytest.raises(SaoyError) as err:
        _run(engine, direction, frames)
    return err.value


# --- the geometry, on exact landmarks --------------------------------------------------------

HEAD = np.array(  # a head model in IOD units: eyes, nose tip 0.4 in front, mouth corners
    [[-0.5, 0.0, 0.0], [0.5, 0.0, 0.0], [0.0, 0.55, 0.4], [-0.4, 1.0, 0.1], [0.4, 1.0, 0.1]]
)


def _project_head(yaw: float) -> np.ndarray:
    c, s = math.cos(yaw), math.sin(yaw)
    x = HEAD[:, 0] * c + HEAD[:, 2] * s  # nose (z > 0) moves towards +x: the subject's left
    return np.stack([x * 100 + 300, HEAD[:, 1] * 100 + 200], axis=1)


def _project_flat(yaw: float, distance: float) -> np.ndarray:
    flat = _project_head(0.0) - (300, 200)
    x, y = flat[:, 0], flat[:, 1]
    depth = distance + x * math.sin(yaw)
    return np.stack([x * math.cos(yaw) * distance / depth, y * distance / depth], axis=1) + 300


@given(yaw=st.floats(25, 40), sign=st.sampled_from([1, -1]))
def test_a_rigid_head_turn_passes_in_its_direction_only(yaw: float, sign: int) -> None:
    poses = [pose(_project_head(0.0)), pose(_project_head(math.radians(sign * yaw)))]
    asked = Direction.LEFT if sign > 0 else Direction.RIGHT
    other = Direction.RIGHT if sign > 0 else Direction.LEFT
    cfg = LivenessConfig()
    assert check_head_turn(poses, asked, cfg).passed
    assert check_head_turn(poses, other, cfg).reason == "WRONG_DIRECTION"


@given(yaw=st.floats(-70, 70), distance=st.floats(150, 2000))
@settings(max_examples=200)
def test_a_flat_photo_turned_on_its_axis_never_passes(yaw: float, distance: float) -> None:
    poses = [pose(_project_flat(0.0, distance)), pose(_project_flat(math.radians(yaw), distance))]
    for direction in Direction:
        assert not check_head_turn(poses, direction, LivenessConfig()).passed


# --- the whole attempt, on real photographs --------------------------------------------------


def test_real_photos_at_two_poses_pass_a_turn_to_the_right(face_engine: FaceEngine) -> None:
    frames = [photo_bytes("obama3.jpg"), photo_bytes("obama2.jpg")]  # he turns to his right
    result = _run(face_engine, Direction.RIGHT, frames)
    assert result.turn.passed and result.turn.parallax > 0.25
    assert result.match_score > face_engine.config.match_threshold + 0.2
    assert result.liveness == "head_turn:right+screen"
    err = _fails(face_engine, Direction.LEFT, frames)
    assert err.reason == "CHALLENGE_NOT_PERFORMED" and "LEFT" in err.message


@pytest.mark.parametrize("direction", list(Direction))
def test_a_synthetic_3d_head_turn_passes(face_engine: FaceEngine, direction: Direction) -> None:
    frames = head_turn_frames(face_engine, "obama3.jpg", [direction.sign * d for d in (0, 15, 35)])
    result = _run(face_engine, direction, frames)
    assert result.turn.passed
    assert result.match_score > face_engine.config.match_threshold


@pytest.mark.parametrize("distance", [1.0, 2.0])
def test_a_flat_photo_turned_by_hand_fails(face_engine: FaceEngine, distance: float) -> None:
    for direction in Direction:
        frames = [
            jpeg(frame_photo(face_engine, "obama3.jpg")),
            *flat_turn_frames(
                face_engine, "obama3.jpg", [direction.sign * d for d in (15, 30, 45, 55)], distance
            ),
        ]
        err = _fails(face_engine, direction, frames)
        assert isinstance(err, Unauthenticated) and err.reason == "CHALLENGE_NOT_PERFORMED"


def test_a_screen_replay_is_refused(face_engine: FaceEngine) -> None:
    frames = [jpeg(faces.screen_replay(frame_photo(face_engine, "obama3.jpg"), seed=0, pitch=2.3))]
    frames += head_turn_frames(face_engine, "obama3.jpg", [30])
    err = _fails(face_engine, Direction.LEFT, frames)
    assert err.reason == "PRESENTATION_ATTACK"


def test_another_person_is_refused(face_engine: FaceEngine) -> None:
    frames = head_turn_frames(face_engine, "biden.jpg", [0, 35])
    err = _fails(face_engine, Direction.LEFT, frames)
    assert isinstance(err, Unauthenticated) and err.reason == "FACE_MISMATCH"


def test_a_face_swapped_in_mid_sequence_is_refused(face_engine: FaceEngine) -> None:
    frames = [photo_bytes("obama3.jpg"), *head_turn_frames(face_engine, "biden.jpg", [35])]
    assert _fails(face_engine, Direction.LEFT, frames).reason == "FACE_MISMATCH"


def test_frames_must_be_fresh_and_in_order(face_engine: FaceEngine) -> None:
    frame = photo_bytes("obama3.jpg")
    attempt = _attempt(face_engine, Direction.LEFT)
    attempt.frame(frame, T0 + 1)
    with pytest.raises(InvalidInput) as err:
        attempt.frame(photo_bytes("obama2.jpg"), T0 + 1)
    assert err.value.reason == "FRAMES_OUT_OF_ORDER"
    with pytest.raises(InvalidInput) as err:
        attempt.frame(frame, T0 + 2)
    assert err.value.reason == "DUPLICATE_FRAME"

    attempt = _attempt(face_engine, Direction.LEFT)
    with pytest.raises(InvalidInput) as err:
        attempt.frame(frame, T0 - 3600)
    assert err.value.reason == "FRAME_STALE"


def test_frames_after_the_deadline_are_refused(face_engine: FaceEngine) -> None:
    clock = Clock()
    attempt = _attempt(face_engine, Direction.LEFT, clock)
    clock.now += LivenessConfig().deadline_seconds + 1
    with pytest.raises(DeadlineExceeded) as err:
        attempt.frame(photo_bytes("obama3.jpg"), clock.now)
    assert err.value.reason == "CHALLENGE_EXPIRED"


def test_too_few_frames_and_frames_before_the_card_are_refused(face_engine: FaceEngine) -> None:
    attempt = _attempt(face_engine, Direction.LEFT)
    attempt.frame(photo_bytes("obama3.jpg"), T0 + 1)
    with pytest.raises(InvalidInput) as err:
        attempt.finish()
    assert err.value.reason == "TOO_FEW_FRAMES"
    with pytest.raises(SaoyError) as early:
        Authentication(face_engine).frame(photo_bytes("obama3.jpg"), T0)
    assert early.value.reason == "CARD_FIRST"


def test_nothing_of_the_faces_survives_the_attempt(face_engine: FaceEngine) -> None:
    attempt = _attempt(face_engine, Direction.RIGHT)
    for i, name in enumerate(("obama3.jpg", "obama2.jpg")):
        attempt.frame(photo_bytes(name), T0 + i + 1)
    result = attempt.finish()
    assert attempt._card is None and not attempt._frames and not attempt._hashes
    assert not any(isinstance(v, np.ndarray) for v in vars(result).values())
