"""Perceptual and content hashes against references (SciPy's DCT, OpenCV's area resize, NumPy),
and their use: a rescan of a page is a near duplicate, another page is not."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays
from scipy.fft import dct

from saoy.clients.simulator import docgen
from saoy.core.pages.admission import Limits, admit
from saoy.core.pages.hashing import content_sha256, dhash, hamming, hex64, phash, resize_area
from saoy.core.pages.imaging import prepare


@settings(max_examples=60, deadline=None)
@given(
    arrays(np.uint8, st.tuples(st.integers(8, 90), st.integers(8, 90))),
    st.integers(1, 8),
    st.integers(1, 8),
)
def test_area_resize_matches_opencv_inter_area(gray: np.ndarray, oh: int, ow: int) -> None:
    ours = resize_area(gray, oh, ow)
    ref = cv2.resize(gray.astype(np.float64), (ow, oh), interpolation=cv2.INTER_AREA)
    assert np.allclose(ours, ref, atol=1e-6)


def reference_area(gray: np.ndarray, oh: int, ow: int) -> np.ndarray:
    """Area averaging as two overlap matrices in plain NumPy: out = Wy @ image @ Wx.T."""

    def overlaps(n_in: int, n_out: int) -> np.ndarray:
        edges = np.arange(n_out + 1) * (n_in / n_out)
        lo, hi = edges[:-1, None], edges[1:, None]
        k = np.arange(n_in)[None, :]
        return np.clip(np.minimum(k + 1, hi) - np.maximum(k, lo), 0, None) / (n_in / n_out)

    return overlaps(gray.shape[0], oh) @ gray.astype(np.float64) @ overlaps(gray.shape[1], ow).T


@settings(max_examples=60, deadline=None)
@given(
    arrays(np.uint8, st.tuples(st.integers(8, 90), st.integers(8, 90))),
    st.integers(1, 8),
    st.integers(1, 8),
)
def test_area_resize_matches_the_numpy_overlap_matrices(gray: np.ndarray, oh: int, ow: int) -> None:
    assert np.allclose(resize_area(gray, oh, ow), reference_area(gray, oh, ow), atol=1e-9)


def test_area_resize_by_whole_factors_is_the_block_mean() -> None:
    rng = np.random.default_rng(11)
    gray = rng.integers(0, 256, (96, 64), dtype=np.uint8)
    ref = gray.astype(np.float64).reshape(32, 3, 32, 2).mean(axis=(1, 3))
    assert np.allclose(resize_area(gray, 32, 32), ref, atol=1e-9)


def reference_phash(gray: np.ndarray) -> int:
    """imagehash's definition, on a 32 x 32 area average, with SciPy's DCT-II (rounded
    to 1e-6 as ours is, so that rounding noise decides no bit)."""
    pixels = reference_area(gray, 32, 32)
    low = np.round(dct(dct(pixels, axis=0), axis=1)[:8, :8], 6)
    bits = (low > np.median(low)).ravel()
    return int("".join("1" if b else "0" for b in bits), 2)


def reference_dhash(gray: np.ndarray) -> int:
    pixels = reference_area(gray, 8, 9).round(6)
    bits = (pixels[:, 1:] > pixels[:, :-1]).ravel()
    return int("".join("1" if b else "0" for b in bits), 2)


@settings(max_examples=40, deadline=None)
@given(arrays(np.uint8, st.tuples(st.integers(32, 120), st.integers(32, 120))))
def test_phash_and_dhash_equal_their_references(gray: np.ndarray) -> None:
    assert phash(gray) == reference_phash(gray)
    assert dhash(gray) == reference_dhash(gray)


def test_phash_and_dhash_equal_their_references_on_pages() -> None:
    person = docgen.random_person(8)
    for rendered in (docgen.id_card_front(person, 8), docgen.a4_page("GIẤY", ["Nội dung"] * 9)):
        gray = np.ascontiguousarray(np.asarray(rendered.image.convert("L")))
        assert phash(gray) == reference_phash(gray)
        assert dhash(gray) == reference_dhash(gray)
    flat = np.full((40, 40), 7, dtype=np.uint8)
    assert phash(flat) == reference_phash(flat) == 1 << 63


@pytest.fixture(scope="module")
def pages() -> dict[str, np.ndarray]:
    person = docgen.random_person(7)
    out = {}
    for name, rendered in (
        ("front", docgen.id_card_front(person, 7)),
        ("back", docgen.id_card_back(person, 7)),
        ("letter", docgen.admin_letter(person, 7, dpi=150)),
    ):
        for take, (skew, seed) in enumerate(((0.4, 1), (-0.6, 2))):
            data = docgen.degrade(
                rendered, skew_deg=skew, noise=3.0, blur=0.4, seed=seed, jpeg_quality=85
            )
            assert isinstance(data, bytes)
            out[f"{name}{take}"] = prepare(admit(0, data, Limits())).gray
    return out


def test_a_rescan_is_a_near_duplicate_and_another_page_is_not(pages: dict[str, np.ndarray]) -> None:
    for name in ("front", "back", "letter"):
        a, b = pages[f"{name}0"], pages[f"{name}1"]
        assert hamming(phash(a), phash(b)) <= 8
        assert hamming(dhash(a), dhash(b)) <= 14  # white margins make some bits coin tosses
        assert content_sha256(a) != content_sha256(b)
    for x, y in (("front0", "back0"), ("front0", "letter0"), ("back1", "letter1")):
        assert hamming(phash(pages[x]), phash(pages[y])) >= 16


def test_content_hash_is_of_pixels_and_shape() -> None:
    gray = np.arange(64, dtype=np.uint8).reshape(8, 8)
    assert content_sha256(gray) == content_sha256(gray.copy())
    flipped = gray.copy()
    flipped[3, 4] ^= 1
    assert content_sha256(flipped) != content_sha256(gray)
    assert content_sha256(gray.reshape(4, 16)) != content_sha256(gray)
    assert len(content_sha256(gray)) == 64


def test_hashes_print_as_sixteen_hex_digits() -> None:
    assert hex64(0) == "0" * 16 and hex64(2**64 - 1) == "f" * 16
    assert hamming(0, 2**64 - 1) == 64


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: phash(np.zeros((31, 64), dtype=np.uint8)), "at least 32x32"),
        (lambda: dhash(np.zeros((7, 64), dtype=np.uint8)), "at least 9x8"),
        (lambda: phash(np.zeros((64, 64), dtype=np.float64)), "dtype uint8"),
        (lambda: dhash(np.zeros((64, 128), dtype=np.uint8)[:, ::2]), "C-contiguous"),
        (lambda: content_sha256(np.zeros((0, 4), dtype=np.uint8)), "empty"),
        (lambda: resize_area(np.zeros((10, 10), dtype=np.uint8), 20, 5), "downscales"),
        (lambda: resize_area(np.zeros((10, 10), dtype=np.uint8), 0, 5), "downscales"),
    ],
)
def test_hash_functions_refuse_bad_input(call: object, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        call()  # type: ignore[operator]
