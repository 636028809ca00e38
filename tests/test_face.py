"""The face pipeline on real photographs: dequantized models, detection, alignment, matching."""

from __future__ import annotations

import itertools

import numpy as np
import onnx
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image, ImageDraw

from saoy.clients.simulator import docgen
from saoy.core.errors import InvalidInput, TooLarge
from saoy.core.identity import models
from saoy.core.identity.face import TEMPLATE_112, FaceEngine, align, decode_image, nms
from tests.face_photos import (
    CARD_PHOTO,
    GENUINE,
    IMPOSTOR,
    bgr,
    card_image,
    face_engine,
    jpeg,
    photo,
    photo_bytes,
)

__all__ = ["face_engine"]  # the fixture, imported for pytest


def _one(engine: FaceEngine, image: np.ndarray) -> np.ndarray:
    det = engine.single_face(image, what="frame", field="frame.image")
    return engine.embed(image, det)


@given(
    rows=st.integers(1, 5),
    blocks=st.integers(1, 4),
    block=st.sampled_from([3, 8, 64]),
    seed=st.integers(0, 1000),
)
@settings(max_examples=30, deadline=None)
def test_blocked_dequantization_matches_the_elementwise_definition(
    rows: int, blocks: int, block: int, seed: int
) -> None:
    rng = np.random.default_rng(seed)
    cols = blocks * block - rng.integers(0, block)  # the last block may be short
    q = rng.integers(-128, 128, (rows, cols)).astype(np.int8)
    scale = rng.random((rows, blocks)).astype(np.float32)
    zero = rng.integers(-5, 5, (rows, blocks)).astype(np.int8)
    got = models.dequantize_linear(q, scale, zero, axis=1, block=block)
    want = np.empty((rows, cols), np.float32)
    for r, c in itertools.product(range(rows), range(cols)):
        want[r, c] = (float(q[r, c]) - zero[r, c // block]) * scale[r, c // block]
    np.testing.assert_allclose(got, want, rtol=1e-6)


def test_per_tensor_scale_ignores_block_size() -> None:
    q = np.array([-2, 0, 5], np.int8)
    got = models.dequantize_linear(q, np.array([0.5], np.float32), np.array([1], np.int8), 0, 64)
    np.testing.assert_allclose(got, [-1.5, -0.5, 2.0])


@pytest.mark.parametrize("name", [models.YUNET_FILE, models.SFACE_FILE])
def test_dequantized_models_hold_only_float_weights(name: str) -> None:
    model = models.dequantize(onnx.load_from_string(models.model_bytes(name)))
    assert not [n for n in model.graph.node if n.op_type == "DequantizeLinear"]
    assert {i.data_type for i in model.graph.initializer} <= {
        onnx.TensorProto.FLOAT,
        onnx.TensorProto.INT64,
    }
    assert [i.name for i in model.graph.input] in (["input"], ["data"])


def test_engine_reports_the_provider_in_use(face_engine: FaceEngine) -> None:
    assert face_engine.provider in models.available_providers()
    assert models.choose_providers("cpu") == [models.CPU]
    with pytest.raises(ValueError, match="unknown provider"):
        models.choose_providers("tpu")


@pytest.mark.parametrize("name", [CARD_PHOTO, *GENUINE, *IMPOSTOR])
def test_each_photo_has_one_confident_face_with_ordered_landmarks(
    face_engine: FaceEngine, name: str
) -> None:
    det = face_engine.single_face(bgr(photo_bytes(name)), what="frame", field="f")
    x, y, w, h = det.box
    lm = det.landmarks
    assert det.score > 0.9
    assert (lm[:, 0] > x).all() and (lm[:, 0] < x + w).all()
    assert (lm[:, 1] > y).all() and (lm[:, 1] < y + h).all()
    assert lm[0, 0] < lm[1, 0] and lm[3, 0] < lm[4, 0]  # image-left first
    assert lm[0, 1] < lm[2, 1] < lm[3, 1]  # eyes above nose above mouth


def test_alignment_puts_landmarks_on_the_template(face_engine: FaceEngine) -> None:
    image = bgr(photo_bytes(CARD_PHOTO))
    crop = align(image, face_engine.detect(image)[0].landmarks)
    assert crop.shape == (112, 112, 3)
    again = face_engine.detect(np.pad(crop, ((64, 64), (64, 64), (0, 0)), mode="edge"), 0.3)
    assert again, "the aligned crop still shows a face"
    placed = again[0].landmarks - 64
    assert np.abs(placed - TEMPLATE_112).max() < 8


def test_genuine_photos_match_and_the_impostor_does_not(face_engine: FaceEngine) -> None:
    threshold = face_engine.config.match_threshold
    card = _one(face_engine, bgr(photo_bytes(CARD_PHOTO)))
    for name in GENUINE:
        assert float(card @ _one(face_engine, bgr(photo_bytes(name)))) > threshold + 0.2
    for name in IMPOSTOR:
        impostor = _one(face_engine, bgr(photo_bytes(name)))
        assert float(card @ impostor) < threshold - 0.15
        for genuine in GENUINE:
            assert float(_one(face_engine, bgr(photo_bytes(genuine))) @ impostor) < threshold


def test_the_photo_is_found_on_the_id_card_and_matches_live_frames(
    face_engine: FaceEngine,
) -> None:
    card = bgr(jpeg(card_image(face_engine)))
    det = face_engine.card_face(card)
    x, y, w, h = det.box
    assert 40 <= x + w / 2 <= 250 and 200 <= y + h / 2 <= 470  # inside the portrait box
    on_card = face_engine.embed(card, det)
    threshold = face_engine.config.match_threshold
    for name in GENUINE:
        assert float(on_card @ _one(face_engine, bgr(photo_bytes(name)))) > threshold + 0.15
    assert float(on_card @ _one(face_engine, bgr(photo_bytes("biden.jpg")))) < threshold


def test_a_card_without_a_portrait_is_refused(face_engine: FaceEngine) -> None:
    blank_card = np.asarray(docgen.id_card_front(docgen.random_person(1), 1).image)[:, :, ::-1]
    with pytest.raises(InvalidInput) as err:
        face_engine.card_face(np.ascontiguousarray(blank_card))
    assert err.value.reason == "NO_FACE_ON_CARD"


def _reason(engine: FaceEngine, image: Image.Image) -> str:
    with pytest.raises(InvalidInput) as err:
        engine.single_face(bgr(jpeg(image)), what="camera frame", field="frame.image")
    assert "/" in err.value.message  # Vietnamese / English for the kiosk
    return err.value.reason


def test_a_frame_without_a_face_says_so(face_engine: FaceEngine) -> None:
    assert _reason(face_engine, docgen.scene_photo(seed=2).image) == "NO_FACE"


def test_two_people_in_the_frame_are_refused(face_engine: FaceEngine) -> None:
    left, right = photo("obama3.jpg"), photo("biden.jpg")
    right = right.resize((round(right.width * left.height / right.height), left.height))
    both = Image.new("RGB", (left.width + right.width, left.height))
    both.paste(left, (0, 0))
    both.paste(right, (left.width, 0))
    assert _reason(face_engine, both) == "MULTIPLE_FACES"


def test_a_face_too_far_from_the_camera_is_refused(face_engine: FaceEngine) -> None:
    small = photo("obama3.jpg")
    small = small.resize((small.width // 6, small.height // 6))
    assert _reason(face_engine, small) == "FACE_TOO_SMALL"


def test_a_covered_face_is_refused(face_engine: FaceEngine) -> None:
    covered = photo("obama3.jpg")
    det = face_engine.detect(bgr(jpeg(covered)))[0]
    x, y, w, h = det.box
    ImageDraw.Draw(covered).rectangle((x - 10, y + h * 0.25, x + w + 10, y + h + 10), fill="gray")
    assert _reason(face_engine, covered) in ("FACE_UNCLEAR", "NO_FACE")


def test_images_that_are_not_photos_are_refused_before_decoding() -> None:
    with pytest.raises(InvalidInput, match="JPEG or PNG"):
        decode_image(b"%PDF-1.7", what="frame", field="f", max_bytes=10, max_pixels=10)
    with pytest.raises(TooLarge):
        decode_image(b"\xff\xd8\xff" + b"0" * 20, what="frame", field="f", max_bytes=10,
                     max_pixels=10)  # fmt: skip
    with pytest.raises(InvalidInput, match="damaged"):
        decode_image(b"\xff\xd8\xff\xe0garbage", what="frame", field="f", max_bytes=100,
                     max_pixels=10**6)  # fmt: skip
    big = jpeg(Image.new("RGB", (200, 200)))
    with pytest.raises(TooLarge, match="pixels"):
        decode_image(big, what="frame", field="f", max_bytes=10**6, max_pixels=100)


def test_nms_keeps_the_best_of_overlapping_boxes() -> None:
    boxes = np.array([[0, 0, 10, 10], [1, 1, 10, 10], [50, 50, 10, 10]], np.float32)
    assert nms(boxes, np.array([0.8, 0.9, 0.7]), 0.3) == [1, 2]
