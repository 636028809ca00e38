"""Page hashes: perceptual (DCT pHash and dHash, 64 bits each) for near-duplicate detection, and
SHA-256 of the normalized pixels as the content hash.

The perceptual hashes follow the usual definitions (those of the ``imagehash`` package): the page
is area-averaged to 32 x 32 (pHash) or 9 x 8 (dHash) by the native kernel, then pHash keeps the
sign of the 8 x 8 lowest DCT-II frequencies against their median and dHash the sign of each
horizontal step. Two pages are near duplicates when the Hamming distance of their hashes is small
(a rescan of the same page differs by a few bits; different pages by about 32).
"""

from __future__ import annotations

import hashlib
from functools import cache

import numpy as np

from saoy.native._imaging import area_resize

HASH_BITS = 64


def require_gray(gray: object, name: str = "image") -> np.ndarray:
    """``gray`` as an H x W uint8 C-contiguous array with both sides >= 1, else ValueError."""
    if not isinstance(gray, np.ndarray):
        raise ValueError(f"{name}: expected a NumPy array, got {type(gray).__name__}")
    if gray.dtype != np.uint8:
        raise ValueError(f"{name}: expected dtype uint8, got {gray.dtype}")
    if gray.ndim != 2:
        raise ValueError(f"{name}: expected shape (H, W), got {gray.shape}")
    if gray.shape[0] == 0 or gray.shape[1] == 0:
        raise ValueError(f"{name}: the image is empty ({gray.shape[0]}x{gray.shape[1]})")
    if not gray.flags.c_contiguous:
        raise ValueError(f"{name}: expected a C-contiguous array; use np.ascontiguousarray")
    return gray


def _weights(n_in: int, n_out: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per output cell: first and end source index and the overlap weights (summing to 1)."""
    scale = n_in / n_out
    edges = np.arange(n_out + 1, dtype=np.float64) * scale
    first = np.floor(edges[:-1]).astype(np.intp)
    end = np.minimum(np.ceil(edges[1:] - 1e-9).astype(np.intp), n_in)
    span = int((end - first).max())
    weights = np.zeros((n_out, span), dtype=np.float64)
    for j in range(n_out):
        for k in range(first[j], end[j]):
            overlap = min(k + 1.0, edges[j + 1]) - max(float(k), edges[j])
            weights[j, k - first[j]] = max(overlap, 0.0) / scale
    return first, end, weights


@cache
def _plan(n_in: int, n_out: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    first, end, weights = _weights(n_in, n_out)
    for a in (first, end, weights):
        a.setflags(write=False)
    return first, end, weights


def resize_area(gray: np.ndarray, height: int, width: int) -> np.ndarray:
    """Area-average ``gray`` to ``height`` x ``width`` (float64): each output cell is the mean of
    the source pixels it covers, partial pixels weighted by the fraction covered. Downscaling
    only (as OpenCV's INTER_AREA, without its rounding to uint8)."""
    require_gray(gray)
    if not (1 <= height <= gray.shape[0] and 1 <= width <= gray.shape[1]):
        raise ValueError(
            f"resize_area downscales: {height}x{width} does not fit in {gray.shape[0]}x"
            f"{gray.shape[1]}"
        )
    x0, x1, xw = _plan(gray.shape[1], width)
    y0, y1, yw = _plan(gray.shape[0], height)
    out = np.empty((height, width), dtype=np.float64)
    tmp = np.empty((gray.shape[0], width), dtype=np.float64)
    area_resize(gray, out, tmp, x0, x1, xw, y0, y1, yw)
    return out


@cache
def _dct_rows() -> np.ndarray:
    """The first 8 rows of the unnormalized DCT-II matrix for 32 samples (SciPy's default)."""
    k = np.arange(8, dtype=np.float64)[:, None]
    n = np.arange(32, dtype=np.float64)[None, :]
    matrix = 2.0 * np.cos(np.pi * k * (2.0 * n + 1.0) / 64.0)
    matrix.setflags(write=False)
    return matrix


def _bits_to_int(bits: np.ndarray) -> int:
    value = 0
    for bit in bits.ravel():
        value = (value << 1) | int(bool(bit))
    return value


def phash(gray: np.ndarray) -> int:
    """64-bit DCT perceptual hash: 32 x 32 area average, 2-D DCT-II, the 8 x 8 lowest
    frequencies compared with their median (first bit = frequency (0, 0), row-major)."""
    require_gray(gray)
    if gray.shape[0] < 32 or gray.shape[1] < 32:
        raise ValueError(f"phash needs at least 32x32 pixels, got {gray.shape[1]}x{gray.shape[0]}")
    small = resize_area(gray, 32, 32)
    c = _dct_rows()
    # Rounded so that rounding noise (1e-13 on a flat page) cannot decide a bit.
    low = np.round(c @ small @ c.T, 6)
    return _bits_to_int(low > np.median(low))


def dhash(gray: np.ndarray) -> int:
    """64-bit difference hash: 9 x 8 area average, one bit per horizontal step that brightens."""
    require_gray(gray)
    if gray.shape[0] < 8 or gray.shape[1] < 9:
        raise ValueError(f"dhash needs at least 9x8 pixels, got {gray.shape[1]}x{gray.shape[0]}")
    small = np.round(resize_area(gray, 8, 9), 6)  # no bit decided by rounding noise
    return _bits_to_int(small[:, 1:] > small[:, :-1])


def hamming(a: int, b: int) -> int:
    """The number of bits in which two 64-bit hashes differ."""
    return int((a ^ b).bit_count())


def hex64(value: int) -> str:
    """A 64-bit hash as 16 lowercase hex digits."""
    return f"{value:016x}"


def content_sha256(gray: np.ndarray) -> str:
    """SHA-256 (hex) of an 8-bit grey page: a short header with its size, then the pixels
    row by row, so that two pages hash alike only when their pixels and shape are identical."""
    require_gray(gray)
    digest = hashlib.sha256(b"saoy-gray8 %d %d\n" % (gray.shape[1], gray.shape[0]))
    digest.update(gray.data)  # the buffer itself, without a copy
    return digest.hexdigest()
