"""The native imaging kernels against plain references (NumPy, OpenCV, scikit-image), and
their wrappers' refusal of bad input."""

from __future__ import annotations

from collections.abc import Callable

import cv2
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays
from skimage.filters import threshold_otsu, threshold_sauvola
from skimage.measure import label

from saoy.clients.simulator import docgen
from saoy.core.pages.admission import Limits, admit_decoded
from saoy.core.pages.imaging import (
    MAX_BOX_FACTOR,
    box_downscale,
    colour_view,
    estimate_skew,
    focus_tiles,
    histogram,
    largest_component,
    otsu_level,
    prepare,
    prepare_gray,
    rotation,
    saturation_tiles,
    sauvola,
    to_gray,
    turned,
    warp,
    warp_rgb,
)


def reference_gray(rgb: np.ndarray) -> np.ndarray:
    """ITU-R BT.601 luma in integers, rounded: (299 R + 587 G + 114 B + 500) // 1000."""
    r, g, b = (rgb[..., i].astype(np.int64) for i in range(3))
    return ((299 * r + 587 * g + 114 * b + 500) // 1000).astype(np.uint8)


shapes = st.tuples(st.integers(1, 37), st.integers(1, 53), st.just(3))


@settings(max_examples=200, deadline=None)
@given(arrays(np.uint8, shapes))
def test_native_gray_equals_the_reference_exactly(rgb: np.ndarray) -> None:
    gray, hist = to_gray(rgb)
    assert gray.dtype == np.uint8 and gray.shape == rgb.shape[:2]
    assert np.array_equal(gray, reference_gray(rgb))
    assert hist.dtype == np.int64 and hist.shape == (256,)
    assert int(hist.sum()) == rgb.shape[0] * rgb.shape[1]
    assert np.array_equal(hist, np.bincount(gray.ravel(), minlength=256))


def test_native_gray_on_a_large_odd_image_and_the_extremes() -> None:
    rng = np.random.default_rng(7)
    rgb = rng.integers(0, 256, (1013, 777, 3), dtype=np.uint8)
    rgb[0, :3] = [[0, 0, 0], [255, 255, 255], [255, 0, 0]]
    gray, hist = to_gray(rgb)
    assert np.array_equal(gray, reference_gray(rgb))
    assert list(gray[0, :3]) == [0, 255, 76]
    assert int(hist.sum()) == 1013 * 777


def test_grey_input_skips_the_kernel_and_is_counted() -> None:
    gray_in = np.arange(256, dtype=np.uint8).reshape(16, 16)
    gray, hist = to_gray(gray_in)
    assert gray is gray_in
    assert np.array_equal(hist, np.ones(256, dtype=np.int64))


def test_empty_image_gives_an_empty_histogram() -> None:
    gray, hist = to_gray(np.zeros((0, 5, 3), dtype=np.uint8))
    assert gray.shape == (0, 5) and int(hist.sum()) == 0


@pytest.mark.parametrize(
    ("array", "message"),
    [
        (np.zeros((4, 4, 3), dtype=np.float32), "dtype uint8"),
        (np.zeros((4, 4, 3), dtype=np.uint16), "dtype uint8"),
        (np.zeros((4, 4, 3), dtype=np.uint8)[:, ::2], "C-contiguous"),
        (np.zeros((4, 6), dtype=np.uint8)[:, ::2], "C-contiguous"),
        (np.zeros((3, 4, 4), dtype=np.uint8).transpose(1, 2, 0)[..., :3], "C-contiguous"),
        (np.zeros((4, 4, 4), dtype=np.uint8), "shape"),
        (np.zeros((2, 4, 4, 3), dtype=np.uint8), "shape"),
        (np.zeros(12, dtype=np.uint8), "shape"),
    ],
)
def test_wrapper_rejects_bad_arrays_with_value_error(array: np.ndarray, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        to_gray(array)


def test_wrapper_rejects_non_arrays() -> None:
    with pytest.raises(ValueError, match="NumPy array"):
        to_gray([[1, 2, 3]])  # type: ignore[arg-type]


# ---------------------------------------------------------------------------------------------
# The other kernels against their reference twins (NumPy, OpenCV, scikit-image).


def test_native_gray_equals_the_reference_on_every_colour() -> None:
    r, g, b = np.meshgrid(*(np.arange(256, dtype=np.uint8),) * 3, indexing="ij")
    rgb = np.ascontiguousarray(np.stack([r, g, b], axis=-1).reshape(4096, 4096, 3))
    gray, hist = to_gray(rgb)
    assert np.array_equal(gray, reference_gray(rgb))
    assert np.array_equal(hist, np.bincount(gray.ravel(), minlength=256))


@settings(max_examples=60, deadline=None)
@given(arrays(np.uint8, st.tuples(st.integers(1, 70), st.integers(1, 90))))
def test_histogram_equals_bincount(gray: np.ndarray) -> None:
    assert np.array_equal(histogram(gray), np.bincount(gray.ravel(), minlength=256))


def reference_box(gray: np.ndarray, f: int) -> np.ndarray:
    h, w = gray.shape[0] // f * f, gray.shape[1] // f * f
    blocks = gray[:h, :w].astype(np.int64).reshape(h // f, f, w // f, f).sum(axis=(1, 3))
    return ((blocks + (f * f) // 2) // (f * f)).astype(np.uint8)


@settings(max_examples=80, deadline=None)
@given(
    arrays(np.uint8, st.tuples(st.integers(8, 60), st.integers(8, 60))),
    st.integers(1, 8),
)
def test_box_downscale_equals_the_block_mean_exactly(gray: np.ndarray, f: int) -> None:
    if min(gray.shape) < f:
        with pytest.raises(ValueError, match="smaller than one"):
            box_downscale(gray, f)
        return
    assert np.array_equal(box_downscale(gray, f), reference_box(gray, f))


def test_box_downscale_is_exact_at_every_sum_for_the_largest_factor() -> None:
    f = MAX_BOX_FACTOR
    rng = np.random.default_rng(3)
    gray = rng.integers(0, 256, (2 * f, 3 * f), dtype=np.uint8)
    gray[:f, :f] = 255
    gray[:f, f : 2 * f] = 0
    assert np.array_equal(box_downscale(gray, f), reference_box(gray, f))


def test_warp_affine_matches_opencv_within_two_levels() -> None:
    rng = np.random.default_rng(5)
    gray = rng.integers(0, 256, (300, 420), dtype=np.uint8)
    m, size = rotation(3.0, (420, 300))
    ours = warp(gray, m, size, 200)
    ref = cv2.warpAffine(
        gray, m[:2], size, flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP, borderValue=200
    )
    diff = np.abs(ours.astype(np.int16) - ref)
    assert diff.max() <= 2 and diff.mean() < 0.3


def test_warp_perspective_matches_opencv_within_three_levels() -> None:
    rng = np.random.default_rng(6)
    gray = rng.integers(0, 256, (300, 420), dtype=np.uint8)
    m = np.array([[1.1, 0.05, 3.0], [0.02, 0.95, -4.0], [1e-4, 2e-4, 1.0]])
    ours = warp(gray, m, (400, 290), 0)
    ref = cv2.warpPerspective(
        gray, m, (400, 290), flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP, borderValue=0
    )
    diff = np.abs(ours.astype(np.int16) - ref)
    assert diff.max() <= 3 and diff.mean() < 0.6


def test_warp_by_the_identity_and_by_whole_pixels_copies_exactly() -> None:
    rng = np.random.default_rng(7)
    gray = rng.integers(0, 256, (50, 70), dtype=np.uint8)
    assert np.array_equal(warp(gray, np.eye(3), (70, 50)), gray)
    shift = np.array([[1.0, 0, 5], [0, 1.0, 3], [0, 0, 1]])
    out = warp(gray, shift, (70, 50), 9)
    assert np.array_equal(out[:47, :65], gray[3:, 5:])
    assert (out[47:] == 9).all() and (out[:, 66:] == 9).all()


@pytest.mark.parametrize("perspective", [0.0, 4e-4])
def test_warp_rgb_equals_warp_of_each_channel(perspective: float) -> None:
    rng = np.random.default_rng(8)
    rgb = rng.integers(0, 256, (90, 120, 3), dtype=np.uint8)
    m = np.array([[0.9, 0.1, -12.0], [-0.05, 1.1, 7.5], [perspective, 0.0, 1.0]])
    ours = warp_rgb(rgb, m, (130, 100), 200)
    for c in range(3):
        assert np.array_equal(
            ours[..., c], warp(np.ascontiguousarray(rgb[..., c]), m, (130, 100), 200)
        )
    with pytest.raises(ValueError, match="H x W x 3"):
        warp_rgb(rgb[..., 0], m, (10, 10))


@pytest.mark.parametrize("window", [3, 15, 25, 31])
def test_sauvola_equals_scikit_image_exactly(window: int) -> None:
    page = np.asarray(docgen.id_card_back(docgen.random_person(1), 1).image.convert("L"))
    gray = np.ascontiguousarray(page[100:400, 50:600])
    ours = sauvola(gray, window, 0.2)
    ref = np.where(gray > threshold_sauvola(gray, window_size=window, k=0.2), 255, 0)
    assert np.array_equal(ours, ref)


@settings(max_examples=40, deadline=None)
@given(
    arrays(np.uint8, st.tuples(st.integers(8, 80), st.integers(8, 80))),
    st.sampled_from([3, 5, 9, 15]),
    st.floats(0.0, 0.5),
)
def test_sauvola_equals_scikit_image_on_random_images(
    gray: np.ndarray, window: int, k: float
) -> None:
    ref = np.where(gray > threshold_sauvola(gray, window_size=window, k=k), 255, 0)
    assert np.array_equal(sauvola(gray, window, k), ref)


def test_focus_tiles_equal_the_opencv_laplacian_and_numpy_variance() -> None:
    rng = np.random.default_rng(8)
    gray = rng.integers(0, 256, (120, 150), dtype=np.uint8)
    tops, lefts = np.array([1, 30, 80]), np.array([1, 60, 110])
    lap, var = focus_tiles(gray, tops, lefts, 32)
    full = cv2.Laplacian(gray, cv2.CV_64F, ksize=1)
    for i, (y, x) in enumerate(zip(tops, lefts, strict=True)):
        assert lap[i] == pytest.approx(full[y : y + 32, x : x + 32].var(), rel=1e-9)
        assert var[i] == pytest.approx(gray[y : y + 32, x : x + 32].astype(float).var(), rel=1e-9)


def test_saturation_tiles_equal_numpy() -> None:
    rng = np.random.default_rng(9)
    gray = rng.integers(200, 256, (67, 45), dtype=np.uint8)
    out = saturation_tiles(gray, 8, 250)
    blocks = gray[:64, :40].reshape(8, 8, 5, 8).swapaxes(1, 2)
    assert np.allclose(out, (blocks >= 250).mean(axis=(2, 3)))


def test_largest_component_matches_scikit_image_labels() -> None:
    rng = np.random.default_rng(10)
    mask = (rng.random((90, 120)) < 0.55).astype(np.uint8)
    labels, best, size = largest_component(mask)
    ref = label(mask, connectivity=1)
    sizes = np.bincount(ref.ravel())[1:]
    assert size == sizes.max() and labels.max() == ref.max()
    ours_region = labels == best
    assert np.array_equal(ours_region, ref == (np.argmax(sizes) + 1))


def test_largest_component_of_an_empty_mask() -> None:
    labels, best, size = largest_component(np.zeros((5, 7), dtype=np.uint8))
    assert (best, size) == (0, 0) and not labels.any()


def test_otsu_level_matches_scikit_image() -> None:
    gray = np.asarray(docgen.id_card_front(docgen.random_person(2), 2).image.convert("L"))
    assert otsu_level(histogram(np.ascontiguousarray(gray))) == threshold_otsu(gray)


# ---------------------------------------------------------------------------------------------
# Bad input reaches no kernel: every wrapper answers ValueError.

_BAD_ARRAYS = [
    pytest.param(np.zeros((40, 40), dtype=np.float32), "dtype uint8", id="float32"),
    pytest.param(np.zeros((40, 40), dtype=np.int16), "dtype uint8", id="int16"),
    pytest.param(np.zeros((40, 80), dtype=np.uint8)[:, ::2], "C-contiguous", id="strided"),
    pytest.param(np.zeros((40, 40), dtype=np.uint8).T[:, :39], "C-contiguous", id="transposed"),
    pytest.param(np.zeros((0, 40), dtype=np.uint8), "empty", id="empty"),
    pytest.param(np.zeros((40, 40, 3), dtype=np.uint8), "shape", id="colour"),
    pytest.param([[1, 2], [3, 4]], "NumPy array", id="list"),
]

_WRAPPERS = {
    "histogram": lambda a: histogram(a),
    "box_downscale": lambda a: box_downscale(a, 2),
    "warp": lambda a: warp(a, np.eye(3), (10, 10)),
    "sauvola": lambda a: sauvola(a, 3),
    "largest_component": lambda a: largest_component(a),
    "focus_tiles": lambda a: focus_tiles(a, np.array([1]), np.array([1]), 4),
    "saturation_tiles": lambda a: saturation_tiles(a, 4, 250),
    "prepare_gray": lambda a: prepare_gray(a),
    "estimate_skew": lambda a: estimate_skew(a),
}


@pytest.mark.parametrize("name", sorted(_WRAPPERS))
@pytest.mark.parametrize(("array", "message"), _BAD_ARRAYS)
def test_every_wrapper_refuses_bad_arrays(name: str, array: object, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        _WRAPPERS[name](array)


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: prepare_gray(np.zeros((1, 500), dtype=np.uint8)), "at least 32"),
        (lambda: prepare_gray(np.zeros((500, 1), dtype=np.uint8)), "at least 32"),
        (lambda: sauvola(np.zeros((1, 500), dtype=np.uint8), 3), "both sides"),
        (lambda: sauvola(np.zeros((50, 50), dtype=np.uint8), 4), "odd integer"),
        (lambda: box_downscale(np.zeros((1, 500), dtype=np.uint8), 2), "smaller than one"),
        (lambda: box_downscale(np.zeros((9, 9), dtype=np.uint8), 0), "integer 1-"),
        (lambda: box_downscale(np.zeros((9, 9), dtype=np.uint8), 64), "integer 1-"),
        (lambda: warp(np.zeros((9, 9), dtype=np.uint8), np.eye(2), (5, 5)), "3 x 3"),
        (lambda: warp(np.zeros((9, 9), dtype=np.uint8), np.eye(3), (0, 5)), "empty"),
        (lambda: warp(np.zeros((9, 9), dtype=np.uint8), np.eye(3) * np.nan, (5, 5)), "finite"),
        (lambda: warp(np.zeros((9, 9), dtype=np.uint8), np.eye(3), (5, 5), 300), "fill"),
        (
            lambda: warp(np.zeros((9, 9), dtype=np.uint8), np.diag([1e6, 1e6, 1.0]), (5, 5)),
            "too far",
        ),
        (
            lambda: warp(
                np.zeros((9, 9), dtype=np.uint8),
                np.array([[1.0, 0, 0], [0, 1, 0], [-1, 0, 1]]),
                (5, 5),
            ),
            "infinity",
        ),
        (
            lambda: focus_tiles(np.zeros((9, 9), dtype=np.uint8), np.array([0]), np.array([1]), 4),
            "inside",
        ),
        (lambda: saturation_tiles(np.zeros((1, 500), dtype=np.uint8), 4, 250), "one tile"),
    ],
)
def test_wrappers_refuse_bad_shapes_and_parameters(
    call: Callable[[], object], message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        call()


def test_huge_arrays_are_refused_before_any_work() -> None:
    huge = np.zeros((1 << 15, 1 << 14), dtype=np.uint8)  # calloc'd: no page is ever touched
    for call in (histogram, prepare_gray, sauvola, lambda a: box_downscale(a, 2)):
        with pytest.raises(ValueError, match="too large"):
            call(huge)
    with pytest.raises(ValueError, match="too large"):
        to_gray(np.zeros(((1 << 14) + 1, 1 << 14, 3), dtype=np.uint8))


@pytest.mark.parametrize("fmt", ["jpeg", "png"])
def test_the_colour_view_lies_over_the_prepared_page(fmt: str) -> None:
    card = docgen.id_card_front(docgen.random_person(3), 3)
    shot = docgen.degrade(card, skew_deg=2.0, noise=2.0)  # turned, on a white margin
    page, image = admit_decoded(0, docgen.encode(shot, fmt, 92), Limits())
    prepared = prepare(page, image)
    assert prepared.transform is not None  # cropped and deskewed
    view = colour_view(page, prepared, max_side=500)
    assert view is not None and view.dtype == np.uint8 and view.shape[2] == 3
    assert max(view.shape[:2]) == 500
    h, w = view.shape[:2]
    expected = cv2.resize(prepared.gray, (w, h), interpolation=cv2.INTER_AREA).astype(int)
    luma = reference_gray(view).astype(int)
    aligned = np.mean(np.abs(luma - expected))
    shifted = np.mean(np.abs(np.roll(luma, 3, axis=1) - expected))
    assert aligned < 4 and shifted > 3 * aligned


def test_a_box_of_the_colour_view_is_that_part_of_the_prepared_page_at_full_scale() -> None:
    card = docgen.id_card_front(docgen.random_person(4), 4)
    shot = docgen.degrade(card, skew_deg=-1.5, noise=2.0)
    page, image = admit_decoded(0, docgen.encode(shot, "png", 92), Limits())
    prepared = prepare(page, image)
    box = (300, 150, 700, 420)
    part = colour_view(page, prepared, max_side=200, box=box)  # max_side is for whole views
    assert part is not None and part.shape == (270, 400, 3)
    expected = prepared.gray[150:420, 300:700].astype(int)
    luma = reference_gray(part).astype(int)
    aligned = np.mean(np.abs(luma - expected))
    assert aligned < 4 and np.mean(np.abs(np.roll(luma, 2, axis=0) - expected)) > 2 * aligned
    clipped = colour_view(page, prepared, box=(-50, -50, 20, 10))
    assert clipped is not None and clipped.shape == (10, 20, 3)
    with pytest.raises(ValueError, match="holds no pixel"):
        colour_view(page, prepared, box=(10, 10, 10, 40))


@pytest.mark.parametrize("k", [1, 2, 3, -1])
def test_a_turned_page_keeps_its_pixels_and_their_place_on_the_scan(k: int) -> None:
    card = docgen.id_card_front(docgen.random_person(5), 5)
    shot = docgen.degrade(card, skew_deg=1.0, noise=2.0)
    page, image = admit_decoded(0, docgen.encode(shot, "png", 92), Limits())
    prepared = prepare(page, image)
    turn = turned(prepared, k)
    assert turn.gray.shape == (prepared.gray.shape if k % 2 == 0 else prepared.gray.shape[::-1])
    np.testing.assert_array_equal(turn.gray, np.rot90(prepared.gray, k))
    h, w = prepared.gray.shape
    points = np.array([[10, 20], [w - 30, 40], [w // 2, h - 5]])
    # Where each point of the prepared page lies on the turned one (np.rot90's layout).
    where = {
        1: lambda x, y: (y, w - 1 - x),
        2: lambda x, y: (w - 1 - x, h - 1 - y),
        3: lambda x, y: (h - 1 - y, x),
    }[k % 4]
    moved = np.array([where(x, y) for x, y in points])
    for (x, y), (u, v) in zip(points, moved, strict=True):
        assert turn.gray[v, u] == prepared.gray[y, x]
    np.testing.assert_allclose(turn.to_source(moved), prepared.to_source(points), atol=1e-6)
    # The colour turns with it: pixel for pixel at full scale (what seal ink is lifted by).
    th, tw = turn.gray.shape
    part = colour_view(page, turn, box=(20, 30, tw - 20, th - 30))
    assert part is not None
    expected = turn.gray[30 : th - 30, 20 : tw - 20].astype(int)
    assert np.mean(np.abs(reference_gray(part).astype(int) - expected)) < 4
    whole = colour_view(page, turn, max_side=400)
    assert (
        whole is not None
        and max(whole.shape[:2]) == 400
        and (th > tw) == (whole.shape[0] > whole.shape[1])
    )
    assert turned(prepared, 4) is prepared


def test_a_grey_scan_has_no_colour_view() -> None:
    card = docgen.id_card_front(docgen.random_person(3), 3).image.convert("L")
    page, image = admit_decoded(0, docgen.encode(card, "jpeg", 90), Limits())
    assert colour_view(page, prepare(page, image)) is None
