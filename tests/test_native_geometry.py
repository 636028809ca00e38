"""Geometry of page preparation: homographies, rotation, deskew and document outlines, checked
by properties (Hypothesis) and against references (NumPy projection profiles, OpenCV contours)."""

from __future__ import annotations

import math
import pickle

import cv2
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image

from saoy.clients.simulator import docgen
from saoy.core.model import OcrResult, Word
from saoy.core.pages.imaging import (
    box_downscale,
    estimate_skew,
    find_document,
    histogram,
    homography,
    otsu_level,
    prepare_gray,
    result_to_source,
    rotation,
    warp,
)


def _smooth(h: int, w: int, seed: int) -> np.ndarray:
    """A smooth random image: interpolation error on it is small, so round trips compare."""
    rng = np.random.default_rng(seed)
    coarse = rng.integers(30, 226, (h // 8 + 2, w // 8 + 2), dtype=np.uint8)
    return np.ascontiguousarray(cv2.resize(coarse, (w, h), interpolation=cv2.INTER_CUBIC))


@settings(max_examples=60, deadline=None)
@given(
    st.lists(st.floats(-0.2, 0.2), min_size=8, max_size=8),
    st.integers(20, 400),
    st.integers(20, 400),
)
def test_homography_maps_the_corners_onto_the_quadrilateral(
    jitter: list[float], w: int, h: int
) -> None:
    rect = np.array([[0, 0], [w, 0], [w, h], [0, h]], dtype=np.float64)
    # Each corner moves by less than a fifth of the shorter side: a convex quadrilateral.
    quad = rect * 2 + 100 + np.array(jitter).reshape(4, 2) * 2 * min(w, h)
    m = homography(rect, quad)
    homog = np.hstack([rect, np.ones((4, 1))]) @ m.T
    assert np.allclose(homog[:, :2] / homog[:, 2:], quad, atol=1e-6)


def test_homography_of_a_degenerate_quadrilateral_is_refused() -> None:
    rect = np.array([[0, 0], [10, 0], [10, 10], [0, 10]], dtype=np.float64)
    flat = np.array([[0, 0], [5, 0], [10, 0], [20, 0]], dtype=np.float64)
    with pytest.raises(ValueError, match="degenerate"):
        homography(rect, flat)


@settings(max_examples=60, deadline=None)
@given(st.floats(-6.0, 6.0), st.integers(40, 900), st.integers(40, 900))
def test_deskew_canvas_holds_every_corner_of_the_source(angle: float, w: int, h: int) -> None:
    m, (ow, oh) = rotation(angle, (w, h))
    inverse = np.linalg.inv(m)
    corners = np.array([[0, 0, 1], [w - 1, 0, 1], [0, h - 1, 1], [w - 1, h - 1, 1]], float)
    out = corners @ inverse.T
    assert (out[:, 0] >= -0.5).all() and (out[:, 0] <= ow - 0.5).all()
    assert (out[:, 1] >= -0.5).all() and (out[:, 1] <= oh - 0.5).all()
    assert ow <= w + h * math.sin(math.radians(abs(angle))) + 1


@settings(max_examples=25, deadline=None)
@given(st.floats(-6.0, 6.0), st.integers(60, 240), st.integers(60, 240), st.integers(0, 99))
def test_rotation_is_invertible_within_tolerance(angle: float, w: int, h: int, seed: int) -> None:
    image = _smooth(h, w, seed)
    there, size = rotation(angle, (w, h))
    turned = warp(image, there, size, 0)
    back = warp(turned, np.linalg.inv(there), (w, h), 0)  # the inverse map, back to the source
    region = back.astype(np.int16)
    inner = (slice(6, h - 6), slice(6, w - 6))
    assert np.abs(region[inner] - image[inner]).mean() < 3.0


def reference_skew(gray: np.ndarray, angles: np.ndarray) -> float:
    """Exhaustive projection profiles in plain NumPy over the lower edges of the ink."""
    ink = gray <= otsu_level(np.bincount(gray.ravel(), minlength=256))
    ys, xs = np.nonzero(ink[:-1] & ~ink[1:])
    xs = xs - gray.shape[1] // 2
    scores = []
    for a in angles:
        rows = np.floor(ys + np.tan(np.radians(a)) * xs + 0.5).astype(np.int64)
        counts = np.bincount(rows - rows.min())
        scores.append(float((counts.astype(np.float64) ** 2).sum()))
    return float(angles[int(np.argmax(scores))])


@pytest.fixture(scope="module")
def letter() -> Image.Image:
    page = docgen.admin_letter(docgen.random_person(4), 4, dpi=150).image
    return page.convert("L")


@pytest.mark.parametrize("angle", [-4.6, -1.3, -0.35, 0.0, 0.72, 2.25, 5.1])
def test_skew_is_found_within_a_tenth_of_a_degree(letter: Image.Image, angle: float) -> None:
    turned = letter.rotate(angle, resample=Image.Resampling.BICUBIC, expand=True, fillcolor=255)
    gray = np.ascontiguousarray(np.asarray(turned))
    found = estimate_skew(gray)
    assert found == pytest.approx(angle, abs=0.1)
    assert found == pytest.approx(reference_skew(gray, np.arange(-6, 6.001, 0.05)), abs=0.06)


def test_deskewed_page_is_level_again(letter: Image.Image) -> None:
    turned = letter.rotate(1.7, resample=Image.Resampling.BICUBIC, expand=True, fillcolor=255)
    prepared = prepare_gray(np.ascontiguousarray(np.asarray(turned)))
    assert prepared.skew_deg == pytest.approx(1.7, abs=0.1)
    assert abs(estimate_skew(prepared.gray)) < 0.1


def _photo(shift: tuple[int, int], angle: float = 4.0) -> tuple[np.ndarray, np.ndarray]:
    """A card photographed on a dark desk: the grey photo and the card's true corners."""
    card = docgen.id_card_front(docgen.random_person(5), 5).image.convert("L")
    w, h = card.size
    desk = Image.new("L", (1500, 1100), 45)
    turned = card.rotate(angle, expand=True, fillcolor=45, resample=Image.Resampling.BICUBIC)
    desk.paste(turned, shift)
    t = math.radians(angle)
    cx, cy = shift[0] + turned.width / 2, shift[1] + turned.height / 2
    corners = []
    for x, y in ((-w / 2, -h / 2), (w / 2, -h / 2), (w / 2, h / 2), (-w / 2, h / 2)):
        corners.append(
            (cx + x * math.cos(t) + y * math.sin(t), cy - x * math.sin(t) + y * math.cos(t))
        )
    noisy = docgen.degrade(desk.convert("RGB"), noise=3.0, blur=0.5, seed=1)
    assert isinstance(noisy, Image.Image)
    return np.ascontiguousarray(np.asarray(noisy.convert("L"))), np.array(corners)


def _reference_corners(small: np.ndarray) -> np.ndarray:
    """OpenCV: the largest external contour of the Otsu mask, simplified to four points."""
    _, mask = cv2.threshold(small, 0, 255, cv2.THRESH_BINARY + cv2.THRESH_OTSU)
    contours, _ = cv2.findContours(mask, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
    biggest = max(contours, key=cv2.contourArea)
    approx = cv2.approxPolyDP(biggest, 0.02 * cv2.arcLength(biggest, True), True)
    return approx.reshape(-1, 2).astype(np.float64)


def _match(found: np.ndarray, truth: np.ndarray) -> float:
    return max(float(np.min(np.linalg.norm(truth - p, axis=1))) for p in found)


def test_card_on_a_desk_is_found_cropped_and_flattened() -> None:
    photo, truth = _photo((220, 160))
    small = box_downscale(photo, 2)
    corners, touches = find_document(small)
    assert corners is not None and not touches
    assert _match(corners * 2 + 0.5, truth) < 8  # pixels, of a 1000-pixel card
    assert _match(corners, _reference_corners(small)) < 4
    prepared = prepare_gray(photo)
    assert prepared.quad is not None and not prepared.cut_off
    assert prepared.document == "id_card"
    assert prepared.width == pytest.approx(1000, abs=12)
    assert prepared.height == pytest.approx(640, abs=12)
    assert abs(prepared.skew_deg) < 0.3
    # The crop maps inside the photo, corner for corner.
    h, w = prepared.height, prepared.width
    mapped = prepared.to_source(np.array([[0, 0], [w - 1, 0], [w - 1, h - 1], [0, h - 1]]))
    assert _match(mapped, truth) < 8
    assert (mapped >= 0).all() and (mapped[:, 0] < photo.shape[1]).all()


def test_card_partly_outside_the_frame_is_cut_off() -> None:
    photo, _ = _photo((800, 160))
    prepared = prepare_gray(photo)
    assert prepared.cut_off


@settings(max_examples=20, deadline=None)
@given(st.integers(0, 400), st.integers(0, 300), st.floats(-8, 8))
def test_detected_outline_lies_inside_the_frame(x: int, y: int, angle: float) -> None:
    photo, _ = _photo((x, y), angle)
    small = box_downscale(photo, 2)
    corners, _ = find_document(small)
    if corners is not None:
        assert (corners >= 0).all()
        assert (corners[:, 0] < small.shape[1]).all() and (corners[:, 1] < small.shape[0]).all()


def test_a_page_that_fills_the_frame_is_not_cropped() -> None:
    page = np.asarray(docgen.id_card_back(docgen.random_person(6), 6).image.convert("L"))
    gray = np.ascontiguousarray(page)
    assert find_document(gray) == (None, False)
    prepared = prepare_gray(gray, histogram(gray))
    assert prepared.quad is None and prepared.transform is None and prepared.gray is gray


def test_word_boxes_map_back_onto_the_scan(letter: Image.Image) -> None:
    turned = letter.rotate(2.0, resample=Image.Resampling.BICUBIC, expand=True, fillcolor=255)
    source = np.ascontiguousarray(np.asarray(turned))
    prepared = prepare_gray(source)
    # A box around the page's centre in the deskewed page lands around the source's centre.
    cx, cy = prepared.width // 2, prepared.height // 2
    x0, y0, x1, y1 = prepared.box_to_source(cx - 50, cy - 10, cx + 50, cy + 10)
    assert abs((x0 + x1) / 2 - source.shape[1] / 2) < 3
    assert abs((y0 + y1) / 2 - source.shape[0] / 2) < 3
    assert 100 <= x1 - x0 <= 104 and 20 <= y1 - y0 <= 24 + 100 * math.sin(math.radians(2.0))
    # The binarized page is computed on demand, once, and the page pickles with it.
    assert prepared.binary is prepared.binary
    assert set(np.unique(prepared.binary)) <= {0, 255}
    again = pickle.loads(pickle.dumps(prepared))
    assert again.sha256 == prepared.sha256 and np.array_equal(again.gray, prepared.gray)


def test_ocr_words_are_mapped_back_onto_the_scan(letter: Image.Image) -> None:
    turned = letter.rotate(-1.5, resample=Image.Resampling.BICUBIC, expand=True, fillcolor=255)
    prepared = prepare_gray(np.ascontiguousarray(np.asarray(turned)))
    cx, cy = prepared.width // 2, prepared.height // 2
    read = OcrResult((Word("chữ", cx - 40, cy - 8, cx + 40, cy + 8, 91.0),), "chữ", 91.0)
    mapped = result_to_source(read, prepared)
    word = mapped.words[0]
    assert (word.text, word.confidence, mapped.text) == ("chữ", 91.0, "chữ")
    assert abs((word.left + word.right) / 2 - turned.width / 2) < 3
    assert abs((word.top + word.bottom) / 2 - turned.height / 2) < 3
    level = prepare_gray(np.ascontiguousarray(np.asarray(letter)))
    assert result_to_source(read, level) is read  # nothing to map on a level page
