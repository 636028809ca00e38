"""Test data for the identity tests: real photographs from the face_recognition source
distribution (several of one person, one of another), never downloaded at test time.

``make face-photos`` fills ``.cache/face_recognition/tests/test_images`` in the repository; the
environment variable SAOY_FACE_PHOTOS may point at another copy of that directory.

The photos: ``obama.jpg`` (official portrait, frontal) is pasted on the ID card;
``obama3.jpg`` (another day, near frontal) and ``obama2.jpg`` (another day, turned to his right)
are genuine live frames; ``biden.jpg`` is the impostor. ``obama_partial_face*.jpg`` are crops of
the card photo and ``32bit.png`` a copy of ``obama2.jpg``: they are not independent and are used
only where that does not matter.
"""

from __future__ import annotations

import io
import os
from collections.abc import Iterator
from functools import cache
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from saoy.clients.simulator import docgen, faces
from saoy.core.identity.face import FaceEngine, decode_image
from tests.ports import free_port
from tests.redisd import start_redis

REPO = Path(__file__).resolve().parent.parent
CACHE = REPO / ".cache" / "face_recognition" / "tests" / "test_images"
REQUIRED = ("obama.jpg", "obama2.jpg", "obama3.jpg", "biden.jpg")
CARD_PHOTO = "obama.jpg"
GENUINE = ("obama3.jpg", "obama2.jpg")
IMPOSTOR = ("biden.jpg",)


def photos_dir() -> Path:
    """Where the photographs are; fails the test (never skips) when they are missing."""
    configured = os.environ.get("SAOY_FACE_PHOTOS")
    where = Path(configured) if configured else CACHE
    missing = [name for name in REQUIRED if not (where / name).is_file()]
    if missing:
        pytest.fail(
            f"face test photos missing in {where} ({', '.join(missing)}): run `make face-photos`"
            " (it unpacks tests/test_images of the face_recognition 1.3.0 sdist into"
            " .cache/face_recognition), or set SAOY_FACE_PHOTOS to such a directory"
        )
    return where


@cache
def _photo_bytes(directory: str, name: str) -> bytes:
    return (Path(directory) / name).read_bytes()


def photo_bytes(name: str) -> bytes:
    return _photo_bytes(str(photos_dir()), name)


def photo(name: str) -> Image.Image:
    return Image.open(io.BytesIO(photo_bytes(name))).convert("RGB")


def bgr(data: bytes) -> np.ndarray:
    return decode_image(data, what="test", field="test", max_bytes=1 << 30, max_pixels=1 << 30)


def jpeg(image: Image.Image, quality: int = 90) -> bytes:
    return faces.jpeg(image, quality)


def card_image(engine: FaceEngine, name: str = CARD_PHOTO, seed: int = 3) -> Image.Image:
    """A synthetic ID card front with the photograph ``name`` as its portrait."""
    det = max(engine.detect(bgr(photo_bytes(name))), key=lambda d: d.area)
    card = docgen.id_card_front(docgen.random_person(seed), seed).image
    return faces.card_with_photo(card, photo(name), det.box)


def card_bytes(engine: FaceEngine, name: str = CARD_PHOTO) -> bytes:
    return jpeg(card_image(engine, name), 92)


FRAME_SIDE = 960  # a kiosk camera frame's longer side


@cache
def frame_photo(engine: FaceEngine, name: str) -> Image.Image:
    """Photograph ``name`` framed as the kiosk camera frames a citizen (head and shoulders,
    the face about a third of the width) at a camera frame's size."""
    im = photo(name)
    x, y, w, h = max(engine.detect(bgr(photo_bytes(name))), key=lambda d: d.area).box
    cx, cy = x + w / 2, y + h / 2
    box = (max(0, cx - 1.6 * w), max(0, cy - 1.2 * h), cx + 1.6 * w, cy + 1.5 * h)
    im = im.crop(tuple(round(v) for v in box))  # type: ignore[arg-type]
    scale = min(1.0, FRAME_SIDE / max(im.size))
    return im.resize((round(im.width * scale), round(im.height * scale)), Image.Resampling.LANCZOS)


def landmarks(engine: FaceEngine, name: str) -> np.ndarray:
    frame = bgr(jpeg(frame_photo(engine, name)))
    return max(engine.detect(frame), key=lambda d: d.area).landmarks


@cache
def _head_turn(engine: FaceEngine, name: str, degrees: float) -> bytes:
    return jpeg(faces.turned_head(frame_photo(engine, name), landmarks(engine, name), degrees))


def head_turn_frames(engine: FaceEngine, name: str, degrees: list[float]) -> list[bytes]:
    """Synthetic 3-D head turns of photograph ``name`` (positive: the subject's left)."""
    return [_head_turn(engine, name, d) for d in degrees]


@cache
def _flat_turn(engine: FaceEngine, name: str, degrees: float, distance: float) -> bytes:
    return jpeg(faces.turned_flat_photo(frame_photo(engine, name), degrees, distance))


def flat_turn_frames(
    engine: FaceEngine, name: str, degrees: list[float], distance: float
) -> list[bytes]:
    """The attack: the photograph printed flat and turned by hand."""
    return [_flat_turn(engine, name, d, distance) for d in degrees]


@pytest.fixture(scope="session")
def face_engine() -> FaceEngine:
    photos_dir()
    return FaceEngine.load(threads=1)


@pytest.fixture(scope="session")
def redis_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A real redis-server of our own on a free port (never the machine's 6379), no disk."""
    port = free_port()
    proc = start_redis(tmp_path_factory.mktemp("redis"), port)
    try:
        yield f"redis://127.0.0.1:{port}/0"
    finally:
        proc.terminate()
        proc.wait(10)
