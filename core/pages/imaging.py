"""Page preparation on the native kernels: grey and statistics, document crop, deskew, focus,
glare, resolution estimate and hashes; the page for OCR; and the image embedded in the copy.

The kernels in :mod:`saoy.native` are thin and trust their inputs; the wrappers here check dtype,
shape, size and contiguity and raise clear ``ValueError`` s before anything reaches them.

Everything that looks at the whole page (document outline, skew, glare, hashes) works on an
analysis copy box-averaged to at most :data:`ANALYSIS_SIDE` pixels on its longer side; only the
grey conversion, the final warp, the focus tiles and the content hash touch every pixel. The
final warp is one resampling: the crop to the document's outline and the deskew rotation are
composed into one matrix first.
"""

from __future__ import annotations

import io
import math
from collections.abc import Callable
from dataclasses import dataclass, replace
from functools import cached_property

import numpy as np
from PIL import Image, ImageFile, ImageOps, JpegImagePlugin, PngImagePlugin, TiffImagePlugin

from saoy.core.model import AdmittedPage, OcrResult
from saoy.core.pages.hashing import content_sha256, dhash, phash, require_gray
from saoy.native import _geometry, _imaging

DARK_LEVEL = 5  # grey levels at or below count as clipped to black
BRIGHT_LEVEL = 250  # grey levels at or above count as clipped to white
PNG_COMPRESS_LEVEL = 3  # lossless either way; 3 is several times faster than 6 on an A4 scan

MAX_PIXELS = 1 << 28  # larger arrays are refused by the wrappers (admission caps pages far lower)
MIN_PAGE_SIDE = 32  # a page smaller than this on either side cannot be prepared
BANDS = 16  # row bands for the parallel histogram and Sauvola kernels
MAX_BOX_FACTOR = 16  # the box average sums in 16 bits (and divides exactly) up to this
AFFINE_SPAN = 256  # pixels stepped linearly between exact source points (affine: no error)
PERSPECTIVE_SPAN = 16  # for a perspective warp: keeps the linearization error << 1/256 pixel
MAX_COORDINATE = 2.0**14  # source coordinates must stay well inside 16.16 fixed point

ANALYSIS_SIDE = 1200  # longer side of the analysis copy, at most
MIN_DOCUMENT_AREA = 0.15  # a detected document covers at least this fraction of the frame
MAX_SKEW_DEG = 6.0  # the search range of the deskew, either way
MIN_SKEW_DEG = 0.1  # smaller angles are left alone (below the estimate's precision)
SKEW_POINTS = 40_000  # ink points the fine skew search projects, at most (a quarter: coarse)
FOCUS_TILE = 48  # side of a focus tile in source pixels
MAX_FOCUS_TILES = 128
CONTENT_STD = 20.0  # grey standard deviation of a tile that holds ink or an edge
MIN_FOCUS_TILES = 8  # fewer content tiles than this and focus is not measured
FOCUS_DPI = 300.0  # the resolution focus is measured at, where a page's is known to be higher
FOCUS_RESCALE = 1.15  # ... by this factor at least
GLARE_TILE = 8  # side of a glare tile in analysis pixels
GLARE_LEVEL = 250  # grey levels at or above count as saturated
GLARE_TILE_FILL = 0.9  # a glare tile is at least this saturated
GLARE_INK_FILL = 2 / 64  # a tile with at least this fraction of ink pixels holds text
GLARE_MIN_RUN = 3  # tiles across a blob's row at least, to hide more than a word gap
GLARE_HALO = 4  # tiles between a line's last ink and a reflection's saturated core, at least
GLARE_TEXT_ROWS = 3  # tile rows of a blob with text on both sides: text runs into it
GLARE_SOLID = 9  # tiles of a washed patch in runs both across and down: a solid patch
GLARE_CORE_LEVEL = 254  # a reflection's core is clipped at the sensor's ceiling ...
GLARE_CORE_FILL = 0.5  # ... in at least this fraction of its pixels (white print: a few %)
GLARE_INSIDE_INK = 0.1  # ink tiles inside a blob's text rows, per tile they span: text survives
GLARE_BODY = 0.5  # a blob's rows at least this share of its widest row's tiles: its body
GLARE_CLIPPED_PAPER = 0.5  # this fraction of the blank tiles saturated: the paper is clipped
GLARE_SPECKLE_FILL = 0.25  # or this fraction of their pixels saturated: clipped as well
GLARE_FADE = 58  # grey levels the ink about a reflection is lifted over the page's ink, at least
GLARE_FADE_REACH = 2  # tiles about a blob whose ink shows whether the light lifted it
GLARE_RICH_INK = 0.1  # ink tiles with this fraction of ink pixels tell how dark ink is
EDGE_INSET = 0.01  # edge bands start this fraction of the shorter side in from the frame
EDGE_BAND = 0.03  # and are this deep: where a document edge to edge shows its own paper
FILL_MARGIN = 0.02  # an outline this close to every side of the frame fills it (a tight crop)
GRAZE_DEPTH = 0.025  # of a document's shorter side: a corner past the frame's edge this deep
EDGE_PAPER = 0.6  # fraction of an edge band brighter than Otsu's level: paper, not background
MAX_PAGE_ASPECT = 2.0  # longer / shorter side beyond which a page is taken to be cut off
EDGE_LINE_ROWS = 3  # outermost rows (or columns) averaged into the line along each side
EDGE_INK_CONTRAST = 40  # grey levels below the paper at least, for a line to count as ink there
EDGE_MIN_RUN = 2  # analysis pixels: a shorter dark run along a side is noise
EDGE_CUT_RUNS = 2  # ink runs crossing one side clear of its ends: content cut by the frame
PAPER_LINE_PERCENTILE = 90.0  # the paper's grey level, for the ink along the frame's edge
HASH_SIDE = 256  # longer side, about, of the copy the perceptual hashes are computed from
SAUVOLA_WINDOW = 25
SAUVOLA_K = 0.2

# Physical documents the kiosk certifies, by aspect ratio (longer / shorter side): name, the
# longer side in millimetres, and the relative tolerance on the ratio.
DOCUMENT_SIZES = (
    ("id_card", 85.6, 53.98, 0.05),  # ISO/IEC 7810 ID-1, the citizen identity card
    ("a4", 297.0, 210.0, 0.03),  # also A5 and A3, which share the ratio: read as A4 (safe side)
)
PERSPECTIVE_ASPECT = 0.10  # an outline in a photograph: its aspect ratio known to within this

_SIXTEEN_BIT_MODES = frozenset({"I;16", "I;16L", "I;16B", "I;16N", "I"})


@dataclass(frozen=True, eq=False)
class PreparedPage:
    """One page ready for the quality gate and for OCR.

    ``gray`` is what OCR reads: the document cropped to its outline when it lies on a distinct
    background, deskewed, 8-bit grey; ``transform`` maps its pixels back to ``source``, the
    upright page as decoded, so word boxes can be laid over the scan. Exposure statistics are of
    ``source``.
    """

    gray: np.ndarray  # uint8, H x W, C-contiguous: the normalized page, for OCR
    mean: float  # mean grey level, 0-255
    contrast: float  # standard deviation of the grey levels
    histogram: np.ndarray  # int64[256]
    clipped_dark: float  # fraction of pixels <= DARK_LEVEL
    clipped_bright: float  # fraction of pixels >= BRIGHT_LEVEL
    source: np.ndarray | None = None  # uint8, the upright page before crop and deskew
    transform: np.ndarray | None = None  # 3 x 3: (u, v, 1) in ``gray`` -> source, homogeneous
    quad: np.ndarray | None = None  # document corners in source pixels TL, TR, BR, BL
    cut_off: bool = False  # the document runs past the edge of the frame
    skew_deg: float = 0.0  # how far the text ran counter-clockwise from level in the source
    focus: float | None = None  # sharpness (median Laplacian/grey variance over content tiles)
    focus_axis: float | None = None  # sharpness along the blurriest direction (motion), _focus
    glare: float = 0.0  # fraction of the page under washed-out light that hides text (_glare)
    paper_clipped: bool = False  # the paper itself is saturated: glare is judged by blob alone
    document: str = ""  # "id_card" | "a4" | "" (unknown) from the outline's aspect ratio
    dpi_estimate: float | None = None  # from the document's known physical size
    phash: int = 0  # 64-bit DCT perceptual hash of ``gray``
    dhash: int = 0  # 64-bit difference hash of ``gray``
    sha256: str = ""  # content hash of ``gray`` (see saoy.core.pages.hashing.content_sha256)

    @property
    def width(self) -> int:
        return int(self.gray.shape[1])

    @property
    def height(self) -> int:
        return int(self.gray.shape[0])

    def percentile(self, q: float) -> int:
        """The grey level below which ``q`` percent of the pixels lie (from the histogram)."""
        return _percentile(self.histogram, q)

    @cached_property
    def binary(self) -> np.ndarray:
        """``gray`` binarized by Sauvola (255 paper, 0 ink), computed on first use."""
        return sauvola(self.gray, SAUVOLA_WINDOW, SAUVOLA_K)

    def to_source(self, points: np.ndarray) -> np.ndarray:
        """Map N x 2 (x, y) points of ``gray`` to the source page's pixels."""
        pts = np.asarray(points, dtype=np.float64).reshape(-1, 2)
        if self.transform is None:
            return pts.copy()
        return _apply(self.transform, pts)

    def box_to_source(
        self, left: int, top: int, right: int, bottom: int
    ) -> tuple[int, int, int, int]:
        """A box of ``gray`` (an OCR word's, say) as the smallest box of the source page that
        holds its four mapped corners, clipped to the source."""
        if self.transform is None:
            return left, top, right, bottom
        corners = np.array([[left, top], [right, top], [right, bottom], [left, bottom]])
        mapped = self.to_source(corners)
        h, w = self.source.shape if self.source is not None else (self.height, self.width)
        x0, y0 = np.floor(mapped.min(axis=0)).astype(int)
        x1, y1 = np.ceil(mapped.max(axis=0)).astype(int)
        return max(0, int(x0)), max(0, int(y0)), min(w, int(x1)), min(h, int(y1))


def result_to_source(result: OcrResult, prepared: PreparedPage) -> OcrResult:
    """``result``, read on ``prepared.gray``, with every word's box mapped onto the source page
    (the upright scan the copy embeds), so the invisible text layer lies over the words."""
    if prepared.transform is None:
        return result
    words = []
    for w in result.words:
        left, top, right, bottom = prepared.box_to_source(w.left, w.top, w.right, w.bottom)
        words.append(replace(w, left=left, top=top, right=right, bottom=bottom))
    return replace(result, words=tuple(words))


# ---------------------------------------------------------------------------------------------
# Kernel wrappers: validate, allocate, call.


def _require_size(arr: np.ndarray, name: str) -> None:
    if arr.shape[0] * arr.shape[1] > MAX_PIXELS:
        raise ValueError(
            f"{name}: {arr.shape[1]}x{arr.shape[0]} is too large (at most {MAX_PIXELS} pixels)"
        )


def to_gray(rgb: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """BT.601 luma of an H x W x 3 uint8 C-contiguous image, and its 256-bin histogram.

    An H x W uint8 array is already grey: it is returned as is with its histogram.
    """
    if not isinstance(rgb, np.ndarray):
        raise ValueError(f"expected a NumPy array, got {type(rgb).__name__}")
    if rgb.dtype != np.uint8:
        raise ValueError(f"expected dtype uint8, got {rgb.dtype}")
    if rgb.ndim == 2:
        if not rgb.flags.c_contiguous:
            raise ValueError("expected a C-contiguous array; use np.ascontiguousarray")
        _require_size(rgb, "to_gray")
        return rgb, histogram(rgb) if rgb.size else np.zeros(256, dtype=np.int64)
    if rgb.ndim != 3 or rgb.shape[2] != 3:
        raise ValueError(f"expected shape (H, W, 3) or (H, W), got {rgb.shape}")
    if not rgb.flags.c_contiguous:
        raise ValueError("expected a C-contiguous array; use np.ascontiguousarray")
    _require_size(rgb, "to_gray")
    gray = np.empty(rgb.shape[:2], dtype=np.uint8)
    parts = _hist_parts(rgb.shape[0])
    if rgb.size:
        _imaging.rgb_to_gray_hist(rgb, gray, parts)
    return gray, parts.sum(axis=(0, 1), dtype=np.int64)


def _hist_parts(rows: int) -> np.ndarray:
    """Zeroed per-band sub-histograms for the histogram kernels: one band per 64 rows, at most
    :data:`BANDS` (a small page is counted in few tables, which stay in cache)."""
    return np.zeros((max(1, min(BANDS, rows // 64)), 4, 256), dtype=np.uint32)


def histogram(gray: np.ndarray) -> np.ndarray:
    """The 256-bin histogram (int64) of an 8-bit grey image."""
    require_gray(gray, "histogram")
    _require_size(gray, "histogram")
    parts = _hist_parts(gray.shape[0])
    _imaging.gray_hist(gray, parts)
    return parts.sum(axis=(0, 1), dtype=np.int64)


def box_downscale(gray: np.ndarray, factor: int) -> np.ndarray:
    """Each ``factor`` x ``factor`` block averaged (rounded half up) into one pixel; incomplete
    blocks at the bottom and right are dropped. ``factor`` 1 returns ``gray`` itself."""
    require_gray(gray, "box_downscale")
    _require_size(gray, "box_downscale")
    if not isinstance(factor, int) or not 1 <= factor <= MAX_BOX_FACTOR:
        raise ValueError(
            f"box_downscale: factor must be an integer 1-{MAX_BOX_FACTOR}, got {factor!r}"
        )
    if factor == 1:
        return gray
    oh, ow = gray.shape[0] // factor, gray.shape[1] // factor
    if oh == 0 or ow == 0:
        raise ValueError(
            f"box_downscale: {gray.shape[1]}x{gray.shape[0]} is smaller than one {factor}x"
            f"{factor} block"
        )
    out = np.empty((oh, ow), dtype=np.uint8)
    bands = max(1, min(BANDS, oh // 8))
    acc = np.empty((bands, ow * factor), dtype=np.uint16)
    _imaging.box_downscale(gray, out, factor, acc)
    return out


def _warp_args(
    matrix: np.ndarray, size: tuple[int, int], fill: int
) -> tuple[np.ndarray, int, int, int]:
    """The checked matrix, output width and height, and the span ``warp`` steps by."""
    m = np.ascontiguousarray(matrix, dtype=np.float64)
    if m.shape != (3, 3) or not np.all(np.isfinite(m)):
        raise ValueError("warp: matrix must be a finite 3 x 3 array")
    width, height = size
    if width < 1 or height < 1 or width * height > MAX_PIXELS:
        raise ValueError(f"warp: output size {width}x{height} is empty or too large")
    if not 0 <= fill <= 255:
        raise ValueError(f"warp: fill must be a grey level 0-255, got {fill}")
    corners = np.array([[0, 0, 1], [width, 0, 1], [0, height, 1], [width, height, 1]], float)
    mapped = corners @ m.T
    if np.any(mapped[:, 2] <= 0):
        raise ValueError("warp: the matrix maps part of the output through infinity")
    if np.abs(mapped[:, :2] / mapped[:, 2:]).max() > MAX_COORDINATE:
        raise ValueError("warp: the matrix maps the output too far outside the source")
    affine = m[2, 0] == 0.0 and m[2, 1] == 0.0
    return m, width, height, AFFINE_SPAN if affine else PERSPECTIVE_SPAN


def warp(
    gray: np.ndarray, matrix: np.ndarray, size: tuple[int, int], fill: int = 255
) -> np.ndarray:
    """Bilinear resampling: output pixel (u, v) of ``size`` (width, height) reads ``gray`` at
    ``matrix`` @ (u, v, 1) (homogeneous); outside the source reads ``fill``.

    Coordinates are stepped in 16.16 fixed point with 1/256-pixel bilinear weights, exact
    every :data:`AFFINE_SPAN` pixels (affine) or :data:`PERSPECTIVE_SPAN` (perspective)."""
    require_gray(gray, "warp")
    _require_size(gray, "warp")
    m, width, height, span = _warp_args(matrix, size, fill)
    out = np.empty((height, width), dtype=np.uint8)
    _geometry.warp(gray, out, m, int(fill), span)
    return out


def warp_rgb(
    rgb: np.ndarray, matrix: np.ndarray, size: tuple[int, int], fill: int = 255
) -> np.ndarray:
    """:func:`warp` of an H x W x 3 uint8 C-contiguous image, all three channels in one pass
    (each channel equal to ``warp`` of that channel alone)."""
    if not isinstance(rgb, np.ndarray) or rgb.dtype != np.uint8 or rgb.ndim != 3:
        raise ValueError("warp_rgb: expected an H x W x 3 uint8 array")
    if rgb.shape[2] != 3 or rgb.shape[0] == 0 or rgb.shape[1] == 0:
        raise ValueError(f"warp_rgb: expected shape (H, W, 3), got {rgb.shape}")
    if not rgb.flags.c_contiguous:
        raise ValueError("warp_rgb: expected a C-contiguous array; use np.ascontiguousarray")
    _require_size(rgb, "warp_rgb")
    m, width, height, span = _warp_args(matrix, size, fill)
    out = np.empty((height, width, 3), dtype=np.uint8)
    _geometry.warp_rgb(rgb, out, m, int(fill), span)
    return out


def rotate(
    gray: np.ndarray, matrix: np.ndarray, size: tuple[int, int], fill: int = 255
) -> np.ndarray:
    """``warp`` for a rotation ``matrix`` (as :func:`rotation` returns: [[c, s, tx], [-s, c,
    ty], [0, 0, 1]], |angle| <= 45 degrees), by three shears (Paeth): x by tan(angle / 2),
    y by -sin(angle), x by tan(angle / 2). Each pass interpolates along one axis with weights
    constant over a row or a run of columns, so its inner loops vectorize; the result is an
    exact rotation, a little softer than one bilinear pass (three linear interpolations)."""
    require_gray(gray, "rotate")
    _require_size(gray, "rotate")
    m = np.asarray(matrix, dtype=np.float64)
    if m.shape != (3, 3) or not np.all(np.isfinite(m)):
        raise ValueError("rotate: matrix must be a finite 3 x 3 array")
    c, s = float(m[0, 0]), float(m[0, 1])
    rigid = abs(m[1, 0] + s) < 1e-9 and abs(m[1, 1] - c) < 1e-9 and abs(c * c + s * s - 1) < 1e-9
    if not rigid or c < math.sqrt(0.5) - 1e-12 or m[2, 0] or m[2, 1] or m[2, 2] != 1.0:
        raise ValueError("rotate: matrix must be a rotation by at most 45 degrees")
    ow, oh = size
    if ow < 1 or oh < 1 or ow * oh > MAX_PIXELS:
        raise ValueError(f"rotate: output size {ow}x{oh} is empty or too large")
    if not 0 <= fill <= 255:
        raise ValueError(f"rotate: fill must be a grey level 0-255, got {fill}")
    if max(abs(m[0, 2]), abs(m[1, 2])) > MAX_COORDINATE:
        raise ValueError("rotate: the matrix maps the output too far outside the source")
    tau = s / (1.0 + c)  # tan(angle / 2)
    tx, ty = float(m[0, 2]), float(m[1, 2])
    # Last pass: out[v, u] = I2[v, u + tau v + e2].
    e2 = max(0.0, -tau * (oh - 1))
    w2, h2 = math.ceil(ow + abs(tau) * (oh - 1)) + 2, oh
    # Middle pass: I2[y, x] = I1[y - s x + g1, x]; g1 is nudged so the first pass reads whole
    # source rows (its row offset k0 an integer).
    g1 = max(0.0, s * (w2 - 1))
    k0 = math.floor(ty + s * e2 - g1)
    g1 = ty + s * e2 - k0
    h1, w1 = math.ceil(h2 + abs(s) * (w2 - 1) + 1) + 2, w2
    # First pass: I1[y, x] = src[y + k0, x + tau y + e0].
    e0 = tx - e2 * c - tau * g1
    first = np.empty((h1, w1), dtype=np.uint8)
    _geometry.shear_rows(gray, first, tau, e0, k0, int(fill))
    shift = -s * np.arange(w2, dtype=np.float64) + g1
    k = np.floor(shift).astype(np.intp)
    weight = np.floor((shift - k) * 256.0 + 0.5).astype(np.uint16)
    carry = weight == 256
    k[carry] += 1
    weight[carry] = 0
    starts = np.flatnonzero(np.diff(k)) + 1
    run_start = np.concatenate([[0], starts, [w2]]).astype(np.intp)
    run_k = np.ascontiguousarray(k[run_start[:-1]])
    out = np.empty((oh, ow), dtype=np.uint8)
    scratch = np.empty((max(1, min(BANDS, oh // 16)), w2), dtype=np.uint8)
    _geometry.shear_cols_rows(
        first, out, run_start, run_k, np.ascontiguousarray(weight), tau, e2, int(fill), scratch
    )
    return out


def sauvola(gray: np.ndarray, window: int = SAUVOLA_WINDOW, k: float = SAUVOLA_K) -> np.ndarray:
    """Sauvola binarization as scikit-image defines it (``image > threshold_sauvola(image,
    window, k)`` with r = 127.5, edges mirrored): 255 for paper, 0 for ink."""
    require_gray(gray, "sauvola")
    _require_size(gray, "sauvola")
    if not isinstance(window, int) or window < 3 or window % 2 == 0:
        raise ValueError(f"sauvola: window must be an odd integer >= 3, got {window!r}")
    if min(gray.shape) <= window // 2:
        raise ValueError(
            f"sauvola: a {window}-pixel window needs both sides > {window // 2}, got "
            f"{gray.shape[1]}x{gray.shape[0]}"
        )
    if not 0.0 <= k <= 1.0:
        raise ValueError(f"sauvola: k must lie in [0, 1], got {k}")
    out = np.empty_like(gray)
    bands = max(1, min(BANDS, gray.shape[0] // max(window, 64)))
    colsum = np.empty((bands, gray.shape[1]), dtype=np.int64)
    colsq = np.empty((bands, gray.shape[1]), dtype=np.int64)
    _imaging.sauvola(gray, out, window, float(k), 127.5, colsum, colsq, bands)
    return out


def largest_component(mask: np.ndarray) -> tuple[np.ndarray, int, int]:
    """4-connected labelling of a non-zero uint8 mask: (labels int32, largest label, its size);
    label 0 is background, and (0, 0) is returned for an empty mask."""
    require_gray(mask, "largest_component")
    if mask.size >= 2**31:
        raise ValueError("largest_component: mask too large")
    labels = np.empty(mask.shape, dtype=np.int32)
    stack = np.empty(mask.size, dtype=np.int32)
    best, size = _geometry.largest_component(mask, labels, stack)
    return labels, int(best), int(size)


def focus_tiles(
    gray: np.ndarray, tops: np.ndarray, lefts: np.ndarray, tile: int
) -> tuple[np.ndarray, np.ndarray]:
    """Per tile: the variance of the 4-neighbour Laplacian and of the grey levels. Tiles are
    ``tile`` square at (tops[i], lefts[i]) and must keep one pixel clear of every edge."""
    require_gray(gray, "focus_tiles")
    ty = np.ascontiguousarray(tops, dtype=np.intp)
    tx = np.ascontiguousarray(lefts, dtype=np.intp)
    if ty.ndim != 1 or ty.shape != tx.shape:
        raise ValueError("focus_tiles: tops and lefts must be 1-D and of equal length")
    h, w = gray.shape
    if tile < 1 or (ty.size and (ty.min() < 1 or tx.min() < 1 or ty.max() + tile > h - 1
                                 or tx.max() + tile > w - 1)):  # fmt: skip
        raise ValueError("focus_tiles: every tile must lie one pixel inside the image")
    lap = np.empty(ty.size, dtype=np.float64)
    var = np.empty(ty.size, dtype=np.float64)
    _imaging.laplacian_tiles(gray, ty, tx, int(tile), lap, var)
    return lap, var


def saturation_tiles(gray: np.ndarray, tile: int, level: int) -> np.ndarray:
    """The fraction of pixels >= ``level`` in each whole ``tile`` x ``tile`` block."""
    require_gray(gray, "saturation_tiles")
    if tile < 1 or gray.shape[0] < tile or gray.shape[1] < tile:
        raise ValueError(f"saturation_tiles: {gray.shape[1]}x{gray.shape[0]} < one tile {tile}")
    if tile > 65535:
        raise ValueError(f"saturation_tiles: tile must be at most 65535 pixels, got {tile}")
    out = np.empty((gray.shape[0] // tile, gray.shape[1] // tile), dtype=np.float64)
    acc = np.empty((max(1, min(BANDS, out.shape[0] // 8)), out.shape[1] * tile), np.uint16)
    _imaging.saturated_tiles(gray, int(tile), int(level), out, acc)
    return out


def tile_variance(gray: np.ndarray, tile: int) -> np.ndarray:
    """The variance of the grey levels in each whole ``tile`` x ``tile`` block."""
    require_gray(gray, "tile_variance")
    if tile < 1 or gray.shape[0] < tile or gray.shape[1] < tile:
        raise ValueError(f"tile_variance: {gray.shape[1]}x{gray.shape[0]} < one tile {tile}")
    out = np.empty((gray.shape[0] // tile, gray.shape[1] // tile), dtype=np.float64)
    _imaging.tile_variance(gray, int(tile), out)
    return out


# ---------------------------------------------------------------------------------------------
# Geometry.


def _percentile(hist: np.ndarray, q: float) -> int:
    total = int(hist.sum())
    if total == 0:
        return 0
    cumulative = np.cumsum(hist)
    return int(np.searchsorted(cumulative, total * q / 100.0, side="left"))


def otsu_level(hist: np.ndarray) -> int:
    """Otsu's threshold of a 256-bin histogram: levels <= it form the dark class."""
    h = np.asarray(hist, dtype=np.float64)
    total = h.sum()
    if total == 0:
        return 127
    levels = np.arange(256, dtype=np.float64)
    w0 = np.cumsum(h)
    m0 = np.cumsum(h * levels)
    w1 = total - w0
    valid = (w0 > 0) & (w1 > 0)
    if not valid.any():
        return 127
    mu0 = np.where(valid, m0 / np.where(w0 > 0, w0, 1), 0)
    mu1 = np.where(valid, (m0[-1] - m0) / np.where(w1 > 0, w1, 1), 0)
    between = np.where(valid, w0 * w1 * (mu0 - mu1) ** 2, -1.0)
    return int(np.argmax(between))


def _apply(matrix: np.ndarray, pts: np.ndarray) -> np.ndarray:
    homog = np.hstack([pts, np.ones((pts.shape[0], 1))]) @ matrix.T
    return homog[:, :2] / homog[:, 2:3]


def homography(src: np.ndarray, dst: np.ndarray) -> np.ndarray:
    """The 3 x 3 matrix mapping the 4 points ``src`` onto ``dst`` (both 4 x 2)."""
    a = np.zeros((8, 8))
    b = np.zeros(8)
    for i, ((x, y), (u, v)) in enumerate(zip(src, dst, strict=True)):
        a[2 * i] = [x, y, 1, 0, 0, 0, -u * x, -u * y]
        a[2 * i + 1] = [0, 0, 0, x, y, 1, -v * x, -v * y]
        b[2 * i], b[2 * i + 1] = u, v
    try:
        h = np.linalg.solve(a, b)
    except np.linalg.LinAlgError:
        raise ValueError("homography: the points are degenerate (three in a line)") from None
    return np.append(h, 1.0).reshape(3, 3)


def rotation(angle_deg: float, size: tuple[int, int]) -> tuple[np.ndarray, tuple[int, int]]:
    """Deskew of a ``size`` (width, height) page whose content runs ``angle_deg``
    counter-clockwise: the 3 x 3 map from the level output to the source, and the output size
    (grown so that no corner of the source is lost)."""
    w, h = size
    t = math.radians(angle_deg)
    c, s = math.cos(t), math.sin(t)
    ow = math.ceil(w * abs(c) + h * abs(s) - 1e-6)
    oh = math.ceil(w * abs(s) + h * abs(c) - 1e-6)
    cx, cy = (w - 1) / 2, (h - 1) / 2
    cu, cv = (ow - 1) / 2, (oh - 1) / 2
    # A level line in the output maps to a source line of slope -tan(t) (image y points down).
    m = np.array(
        [[c, s, cx - c * cu - s * cv], [-s, c, cy + s * cu - c * cv], [0.0, 0.0, 1.0]],
        dtype=np.float64,
    )
    return m, (ow, oh)


def find_document(small: np.ndarray, level: int | None = None) -> tuple[np.ndarray | None, bool]:
    """The outline of a bright document on a darker background in an analysis image: its
    corners (TL, TR, BR, BL, in analysis pixels) and whether it touches the frame's edge.

    (None, False) when the page fills the frame (the frame's edge is mostly paper, as from a
    flatbed scanner) or no document-sized bright region is found. ``level`` is the Otsu level
    of ``small`` when the caller has it.
    """
    corners, sides = _find_document(small, level)
    return corners, any(sides)


def _find_document(
    small: np.ndarray, level: int | None = None
) -> tuple[np.ndarray | None, tuple[int, int, int, int]]:
    """:func:`find_document`, with how many pixels of the document's region lie on each side
    of the frame (top, bottom, left, right): 0 where it does not touch that side."""
    require_gray(small, "find_document")
    none = (0, 0, 0, 0)
    if level is None:
        level = otsu_level(histogram(small))
    bright = small > level
    ring = np.concatenate([bright[0], bright[-1], bright[1:-1, 0], bright[1:-1, -1]])
    if ring.mean() >= 0.5:
        return None, none
    labels, best, size = largest_component(bright.view(np.uint8))
    if best == 0 or size < MIN_DOCUMENT_AREA * small.size:
        return None, none
    region = labels == best
    ys, xs = np.nonzero(region)
    s, d = xs + ys, xs - ys
    corners = np.array(
        [
            [xs[np.argmin(s)], ys[np.argmin(s)]],
            [xs[np.argmax(d)], ys[np.argmax(d)]],
            [xs[np.argmax(s)], ys[np.argmax(s)]],
            [xs[np.argmin(d)], ys[np.argmin(d)]],
        ],
        dtype=np.float64,
    )
    x, y = corners[:, 0], corners[:, 1]
    area = 0.5 * abs(np.dot(x, np.roll(y, -1)) - np.dot(y, np.roll(x, -1)))
    if area < 0.8 * size or area > 1.25 * size:  # not a quadrilateral: leave the frame as is
        return None, none
    sides = (int(region[0].sum()), int(region[-1].sum()), int(region[:, 0].sum()),
             int(region[:, -1].sum()))  # fmt: skip
    return corners, sides


def _grazes(corners: np.ndarray | None, sides: tuple[int, int, int, int]) -> bool:
    """Whether a document touches the frame only where a corner grazes one side: what lies
    past that side, a wedge as long as the stretch it touches (``sides``, see
    :func:`_find_document`) and as deep as the document's edge there drifts over that stretch,
    is under :data:`GRAZE_DEPTH` of the document's shorter side deep (a card's rounded corner,
    a page's margin: no print)."""
    touched = [k for k, n in enumerate(sides) if n]
    if corners is None or len(touched) != 1:
        return False
    tl, tr, br, bl = corners
    side = touched[0]
    # The document's edge along the touched side, and its drift away from that side per pixel.
    a, b = {0: (tl, tr), 1: (bl, br), 2: (tl, bl), 3: (tr, br)}[side]
    along, across = (abs(b[0] - a[0]), abs(b[1] - a[1]))
    if side >= 2:
        along, across = across, along
    drift = across / max(1.0, along)
    short = min(np.linalg.norm(tr - tl), np.linalg.norm(bl - tl))
    return sides[side] * drift <= GRAZE_DEPTH * max(1.0, float(short))


def _fills_frame(
    corners: np.ndarray | None, sides: tuple[int, int, int, int], shape: tuple[int, ...]
) -> bool:
    """Whether a document reaches every side of the frame: its region touches the side
    (``sides``: top, bottom, left, right), or its outline's corner comes within
    :data:`FILL_MARGIN` of the shorter side of it (a tight crop of a document turned a few
    degrees leaves a wedge of background along a side, the corner short of the edge)."""
    if corners is None:
        return False
    h, w = shape[0], shape[1]
    near = FILL_MARGIN * min(h, w)
    xs, ys = corners[:, 0], corners[:, 1]
    close = (ys.min() <= near, ys.max() >= h - 1 - near, xs.min() <= near,
             xs.max() >= w - 1 - near)  # fmt: skip
    return all(a or b for a, b in zip(sides, close, strict=True))


def content_at_edge(small: np.ndarray, level: int) -> bool:
    """Whether printed content runs off the frame: along some side, the frame's outermost
    :data:`EDGE_LINE_ROWS` lines cross at least :data:`EDGE_CUT_RUNS` runs of ink clear of
    the side's ends, as where the frame cuts through text lines, a photo or a QR code (print
    that stops short of the edge, as a card's machine-readable zone a hair above a tight
    crop's edge, does not). Ink is darker than Otsu's ``level`` and :data:`EDGE_INK_CONTRAST`
    below the paper.

    Background at the edge is not content: a document cropped from a photo keeps slivers of
    the desk at the frame's edges (a hair of rotation, perspective), and each is a wedge
    between the document's straight edge and the frame's, so it reaches the end of the side
    it lies along; a desk margin runs the whole side. Where the wedge thins to its tip it
    breaks into specks along the edge, a pixel or two deep: along a side that such a wedge
    reaches (a run at one of its ends), a run counts only where the ink goes on inward past
    those lines, as content does; along any other, ink cut a pixel or two in (a glyph's first
    stroke) counts too. A document inside its own margins crosses nothing."""
    require_gray(small, "content_at_edge")
    h, w = small.shape
    rows = EDGE_LINE_ROWS
    if 4 * rows >= min(h, w):
        return False
    paper = _percentile(histogram(small), PAPER_LINE_PERCENTILE)
    ink = min(level, paper - EDGE_INK_CONTRAST)
    lines = (
        small[:rows].mean(axis=0),
        small[h - rows :].mean(axis=0),
        small[:, :rows].mean(axis=1),
        small[:, w - rows :].mean(axis=1),
    )
    inward = (
        small[rows : 2 * rows].min(axis=0),
        small[h - 2 * rows : h - rows].min(axis=0),
        small[:, rows : 2 * rows].min(axis=1),
        small[:, w - 2 * rows : w - rows].min(axis=1),
    )
    for line, inner in zip(lines, inward, strict=True):
        dark = np.concatenate(([0], (line <= ink).view(np.int8), [0]))
        edges = np.flatnonzero(np.diff(dark))
        # A wedge of background reaches an end of the side: without one, no speck along the
        # side is its tip, and ink cut a pixel or two in (a glyph's first stroke) counts too.
        wedge = bool(edges.size) and (edges[0] == 0 or edges[-1] == line.size)
        cut = 0
        for start, stop in zip(edges[::2], edges[1::2], strict=True):
            if start == 0 or stop == line.size or stop - start < EDGE_MIN_RUN:
                continue
            # Content runs on inward from the edge (a glyph, a photo, a QR code); the tip of a
            # wedge of background, flickering about the ink level, is a pixel or two deep.
            if not wedge or inner[start:stop].min() <= ink:
                cut += 1
        if cut >= EDGE_CUT_RUNS:
            return True
    return False


def frame_is_document(small: np.ndarray, level: int) -> bool:
    """Whether the frame is a document edge to edge, as a kiosk scanner driver crops it: the
    frame has a known document's aspect ratio (:data:`DOCUMENT_SIZES`) and a band along each
    of its four sides, just inside the edge (clear of a pixel or two of rotation and of the
    card's rounded corners), is mostly paper, brighter than Otsu's ``level``. A document
    partly outside the frame shows the background along some side, or has another shape."""
    require_gray(small, "frame_is_document")
    h, w = small.shape
    if _document_type(w, h)[0] == "":
        return False
    short = min(h, w)
    inset = max(2, round(EDGE_INSET * short))
    depth = max(3, round(EDGE_BAND * short))
    if 2 * (inset + depth) >= short:
        return False
    y0, y1, x0, x1 = h // 10, h - h // 10, w // 10, w - w // 10  # corners left out
    bands = (
        small[inset : inset + depth, x0:x1],
        small[h - inset - depth : h - inset, x0:x1],
        small[y0:y1, inset : inset + depth],
        small[y0:y1, w - inset - depth : w - inset],
    )
    return all(float((band > level).mean()) >= EDGE_PAPER for band in bands)


def estimate_skew(small: np.ndarray, hist: np.ndarray | None = None) -> float:
    """The angle (degrees, counter-clockwise positive) the text lines of a page run at, by
    projection profiles of the ink's lower edges over +-MAX_SKEW_DEG: coarse steps, fine steps
    around the best, then a parabola through the best three. 0.0 when there is too little ink.
    ``hist`` is the histogram of ``small`` when the caller has it."""
    require_gray(small, "estimate_skew")
    h, w = small.shape
    if h < 8 or w < 8:
        return 0.0
    if hist is None:
        hist = histogram(small)
    level = otsu_level(hist)
    if hist[: level + 1].sum() > 0.5 * small.size:  # mostly dark: no paper to measure lines against
        return 0.0
    capacity = (h - 1) * w
    all_x = np.empty(capacity, dtype=np.int32)
    all_y = np.empty(capacity, dtype=np.int32)
    count = _imaging.lower_edges(small, level, all_x, all_y, -(w // 2))
    if count < 200:
        return 0.0
    step = max(1, count // SKEW_POINTS)
    xs32 = np.ascontiguousarray(all_x[:count:step])
    ys32 = np.ascontiguousarray(all_y[:count:step])
    # The coarse search needs fewer points than the fine one.
    coarse_step = max(1, xs32.size // (SKEW_POINTS // 4))
    coarse_x = np.ascontiguousarray(xs32[::coarse_step])
    coarse_y = np.ascontiguousarray(ys32[::coarse_step])
    limit = math.tan(math.radians(MAX_SKEW_DEG))
    offset = math.ceil(limit * (w / 2 + 1)) + 2
    bins = h + 2 * offset + 2

    def best_of(angles: np.ndarray, x: np.ndarray, y: np.ndarray) -> tuple[int, np.ndarray]:
        slopes = np.ascontiguousarray(-np.tan(np.radians(angles)))
        counts = np.empty((angles.size, 4, bins), dtype=np.int32)
        scores = np.empty(angles.size, dtype=np.float64)
        _geometry.profile_scores(x, y, slopes, offset, counts, scores)
        return int(np.argmax(scores)), scores

    coarse = np.arange(-MAX_SKEW_DEG, MAX_SKEW_DEG + 1e-9, 0.25)
    i, _ = best_of(coarse, coarse_x, coarse_y)
    fine = coarse[i] + np.arange(-0.15, 0.15 + 1e-9, 0.025)  # the coarse best is within 0.125
    j, scores = best_of(fine, xs32, ys32)
    angle = float(fine[j])
    if 0 < j < fine.size - 1:
        a, b, c = scores[j - 1], scores[j], scores[j + 1]
        denom = a - 2 * b + c
        if denom < 0:
            angle += 0.025 * 0.5 * (a - c) / denom
    return angle


def _analysis_factor(shape: tuple[int, ...]) -> int:
    return max(1, math.ceil(max(shape[0], shape[1]) / ANALYSIS_SIDE))


def _document_type(
    width: float, height: float, perspective: bool = False
) -> tuple[str, float | None]:
    """The known document (:data:`DOCUMENT_SIZES`) a ``width`` x ``height`` outline has the
    shape of, and its resolution from that document's size; ("", None) for none.

    An outline found in a photograph (``perspective``) keeps its true shape only to within
    :data:`PERSPECTIVE_ASPECT` (a camera a little off square foreshortens one side): where
    that admits more than one document, the shape tells none (a card shot at an angle can
    measure as an A4 page, and would be judged at a third of its resolution)."""
    found = _document_shapes(width, height, perspective)
    return found[0] if len(found) == 1 else ("", None)


def _document_shapes(width: float, height: float, perspective: bool) -> list[tuple[str, float]]:
    """Every known document a ``width`` x ``height`` outline may be (see
    :func:`_document_type`), each with the resolution its size gives."""
    long, short = max(width, height), min(width, height)
    ratio = long / short
    return [
        (name, round(long / long_mm * 25.4, 1))
        for name, long_mm, short_mm, tolerance in DOCUMENT_SIZES
        if abs(ratio / (long_mm / short_mm) - 1.0)
        <= (max(tolerance, PERSPECTIVE_ASPECT) if perspective else tolerance)
    ]


def _focus(
    gray: np.ndarray, small: np.ndarray, factor: int, dpi: float | None = None
) -> tuple[float | None, float | None]:
    """Median over content tiles of var(Laplacian) / var(grey): contrast-independent, high for
    sharp strokes, low for blur. Tiles are picked on the analysis copy (those with ink or edges,
    evenly spread), measured at full size.

    Second: the sharpness along the blurriest direction. Motion blur smears one direction
    only, at any angle, which the Laplacian (the sum over two) barely shows: the second
    difference is taken along four directions (across, down and both diagonals), each
    direction's median over the tiles of var(second difference) / var(grey) is its sharpness,
    and the lowest of the four is returned. A median per direction, not a minimum per tile:
    a tile of text may hold strokes of one direction only, a smear spans the whole page. The
    diagonal steps are sqrt(2) long, so their variance is divided by 4 (a smooth profile's
    second difference grows with the step squared).

    Both fall steeply with the resolution for the same blur on the document (strokes wider in
    pixels, fewer in a tile): a page whose ``dpi`` is known to be well above
    :data:`FOCUS_DPI` is measured at that resolution, each tile averaged down to it, so a
    card photographed at 450 dpi is judged as sharp as it is on paper."""
    h, w = gray.shape
    tile = min(FOCUS_TILE, h - 2, w - 2)
    if tile < 8:
        return None, None
    scale = FOCUS_DPI / dpi if dpi is not None and dpi > FOCUS_RESCALE * FOCUS_DPI else 1.0
    span = min(round(tile / scale), h - 2, w - 2)  # source pixels a tile covers
    st = max(2, span // factor)
    if small.shape[0] < st or small.shape[1] < st:
        return None, None
    coarse = tile_variance(small, st)
    picked = np.flatnonzero(coarse.ravel() >= CONTENT_STD**2)
    if picked.size < MIN_FOCUS_TILES:
        return None, None
    if picked.size > MAX_FOCUS_TILES:
        picked = picked[np.linspace(0, picked.size - 1, MAX_FOCUS_TILES).astype(np.intp)]
    rows, cols = np.divmod(picked, coarse.shape[1])
    tops = np.clip(rows * st * factor, 1, h - 1 - span)
    lefts = np.clip(cols * st * factor, 1, w - 1 - span)
    if span != tile:
        gray, tops, lefts = _tile_mosaic(gray, tops, lefts, span, tile)
    lap, var = focus_tiles(gray, tops, lefts, tile)
    keep = var >= (CONTENT_STD**2) / 2
    if keep.sum() < MIN_FOCUS_TILES:
        return None, None
    along = np.array(
        [
            _directional_sharpness(gray[top - 1 : top + tile + 1, left - 1 : left + tile + 1])
            for top, left in zip(tops[keep], lefts[keep], strict=True)
        ]
    )
    return float(np.median(lap[keep] / var[keep])), float(np.median(along, axis=0).min())


def _directional_sharpness(rimmed: np.ndarray) -> tuple[float, float, float, float]:
    """var(second difference) / var(grey) of a tile along 0, 45, 90 and 135 degrees; the tile
    is ``rimmed`` with one pixel of its surroundings, which the differences reach into."""
    t = rimmed.astype(np.float32)
    c = t[1:-1, 1:-1]
    grey = max(float(c.var()), 1.0)
    across = t[1:-1, 2:] - 2 * c + t[1:-1, :-2]
    down = t[2:, 1:-1] - 2 * c + t[:-2, 1:-1]
    falling = t[2:, 2:] - 2 * c + t[:-2, :-2]
    rising = t[2:, :-2] - 2 * c + t[:-2, 2:]
    return (
        float(across.var()) / grey,
        float(falling.var()) / 4 / grey,
        float(down.var()) / grey,
        float(rising.var()) / 4 / grey,
    )


def _tile_mosaic(
    gray: np.ndarray, tops: np.ndarray, lefts: np.ndarray, span: int, tile: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The ``span``-pixel tiles at (tops, lefts), each with its one-pixel rim, averaged down
    to ``tile`` pixels and laid side by side in one strip: (strip, tops, lefts) of the tiles
    in it, for :func:`focus_tiles`."""
    side = tile + 2
    strip = np.empty((side, side * tops.size), dtype=np.uint8)
    for k, (top, left) in enumerate(zip(tops, lefts, strict=True)):
        piece = gray[top - 1 : top + span + 1, left - 1 : left + span + 1]
        small = Image.fromarray(piece).resize((side, side), Image.Resampling.BOX)
        strip[:, k * side : (k + 1) * side] = np.asarray(small)
    at = np.arange(tops.size, dtype=np.intp)
    return strip, np.ones(tops.size, dtype=np.intp), 1 + at * side


def _glare(small: np.ndarray, framed: bool = False, card: bool = False) -> tuple[float, bool]:
    """Fraction of the page under washed-out light that hides text: blobs of saturated tiles
    holding no ink, in tile rows where the page's text runs on both sides of them (text lines
    running into the blob and vanishing in it), wherever they sit. A blank margin, the gap at
    the end of a short line or between paragraphs, and the small white modules of a QR code
    have no text on both sides in their rows and count for nothing.

    Where the paper itself is saturated (a flatbed scan clipped to white), or so close to it
    that noise saturates it in patches, washed-out light cannot be told from paper: then only
    a saturated blob that does not reach the frame's edge counts (white paper and margins
    reach the edge; a reflection sits inside the page).

    ``card``: the page may be an ID card (see the rule for it below).
    ``framed``: the page is the whole frame (no outline was cropped), and dark background
    may lie along its edges (see :func:`_off_the_frame_edge`).

    Returns the fraction and whether the paper was found saturated."""
    if small.shape[0] < 3 * GLARE_TILE or small.shape[1] < 3 * GLARE_TILE:
        return 0.0, False
    fill = saturation_tiles(small, GLARE_TILE, GLARE_LEVEL)
    ink_level = otsu_level(histogram(small))
    ink_fill = 1.0 - saturation_tiles(small, GLARE_TILE, ink_level + 1)  # ink pixels per tile
    ink = ink_fill >= GLARE_INK_FILL
    if framed:
        ink = _off_the_frame_edge(ink)
    saturated = fill >= GLARE_TILE_FILL
    blank = ~ink
    if not blank.any():
        return 0.0, False
    # Paper whose own noise reaches saturation (white paper scanned bright) saturates whole
    # tiles here and there, as noise decides: such paper is clipped as well.
    speckled = fill >= GLARE_SPECKLE_FILL
    clipped_paper = bool(speckled[blank].mean() >= GLARE_CLIPPED_PAPER)
    washed = saturated & blank
    labels, best, _ = largest_component(np.ascontiguousarray(washed.view(np.uint8)))
    if best == 0:
        return 0.0, clipped_paper
    faded = _faded_ink(small, ink, ink_fill)
    if clipped_paper:
        sizes = np.bincount(labels.ravel())
        edge = np.unique(np.concatenate([labels[0], labels[-1], labels[:, 0], labels[:, -1]]))
        sizes[edge] = 0
        sizes[0] = 0
        for label in np.argsort(sizes)[::-1]:  # the largest blob that faded the ink about it
            if sizes[label] == 0 or faded(labels == label):
                return float(sizes[label] / labels.size), True
        return 0.0, True
    # Tiles of washed runs that text runs into from the left, and from the right, in the same
    # tile row: ink right before the run (its halo apart). Paper after the end of a short line,
    # or before a block set to the right, is bright paper, not text washed out.
    left, right = _runs_met_by_ink(washed, ink)
    up = np.zeros_like(ink)
    up[1:] = np.logical_or.accumulate(ink, axis=0)[:-1]
    down = np.zeros_like(ink)
    down[:-1] = np.logical_or.accumulate(ink[::-1], axis=0)[::-1][1:]
    # Text on both sides in the row; or, for a blob clear of the frame's edge, on one side
    # with the text block above and below it (lines running into the blob from the left or
    # the right margin and vanishing in it). A blob reaching the edge with text on one side
    # only is paper after the end of the lines (a white panel printed with short lines).
    edge = np.unique(np.concatenate([labels[0], labels[-1], labels[:, 0], labels[:, -1]]))
    inner = ~np.isin(labels, edge)
    hidden = washed & _long_runs(washed) & ((left & right) | ((left | right) & up & down & inner))
    rows, _ = np.nonzero(hidden)
    hit = labels[hidden]
    blobs = {int(b) for b in np.unique(hit) if np.unique(rows[hit == b]).size >= GLARE_TEXT_ROWS}
    # Paper clipped white where lines end is glare only where it washed their ink out too.
    blobs = {b for b in blobs if faded(labels == b)}
    if card:
        # A card carries print all over (a field hidden whole, the expiry in its corner, leaves
        # no line running into the blob): a solid washed patch on it is glare wherever it is.
        # Clipped flat by the light, not white print: a white panel sits at the top of the
        # scale with the noise of paper; a reflection's core is the sensor's ceiling.
        solid = washed & _long_runs(washed) & _long_runs(washed.T).T
        found = labels[solid]
        core = saturation_tiles(small, GLARE_TILE, GLARE_CORE_LEVEL)[solid]
        blobs |= {
            int(b)
            for b in np.unique(found)
            if np.count_nonzero(found == b) >= GLARE_SOLID
            and float(core[found == b].mean()) >= GLARE_CORE_FILL
        }
    over_text = 0
    for label in sorted(blobs):
        blob = labels == label
        size = int(np.count_nonzero(blob))
        # Text goes under the blob and does not come out inside it: ink between a blob row's
        # ends is text that survived, as in a white panel printed with text (a card's MRZ) or
        # bright paper whose lines still read. Counted over the blob's rows that hold text:
        # the paper between widely spaced lines says nothing either way; and over its body,
        # from the first to the last of its rows at least half its widest: a reflection's
        # fringe reaching in between the lines above or below it spans their print without
        # having washed it (a bright frame round a card is its widest at both ends).
        ys, xs = np.nonzero(blob)
        widths = np.bincount(ys)
        wide = np.flatnonzero(widths >= GLARE_BODY * widths.max())
        inside = spanned = 0
        for y in np.unique(ys):
            if not ink[y].any() or not wide[0] <= y <= wide[-1]:
                continue
            cols = xs[ys == y]
            spanned += int(cols.max() - cols.min() + 1)
            inside += int(np.count_nonzero(ink[y, cols.min() : cols.max() + 1]))
        if inside > GLARE_INSIDE_INK * spanned:
            continue
        over_text = max(over_text, size)
    return float(over_text / labels.size), False


def _faded_ink(
    small: np.ndarray, ink: np.ndarray, ink_fill: np.ndarray
) -> Callable[[np.ndarray], bool]:
    """A test of a blob of tiles: whether the ink about it is lifted towards white (by
    :data:`GLARE_FADE` grey levels over the page's ink, the darkest pixel of each tile rich in
    ink compared, within :data:`GLARE_FADE_REACH` tiles). A reflection adds light to ink and
    paper alike, so the ink at its halo fades before the blob takes it whole; light that only
    brightens the page (a lamp close by, a camera exposing for the page) clips the paper
    white while the ink stays as dark as elsewhere, and hides nothing. A blob with no such
    ink about it is not cleared."""
    t = GLARE_TILE
    rows, cols = ink.shape
    tiles = small[: rows * t, : cols * t].reshape(rows, t, cols, t)
    darkest = tiles.min(axis=(1, 3)).astype(np.float64)
    rich = ink & (ink_fill >= GLARE_RICH_INK)
    if not rich.any():
        return lambda blob: True
    page_ink = float(np.percentile(darkest[rich], 25))

    def faded(blob: np.ndarray) -> bool:
        near = _dilated(blob, GLARE_FADE_REACH) & rich
        if not near.any():
            return True
        # The upper quartile: the ink nearest a reflection fades most, that a tile or two
        # further off less (the median of a narrow halo's ink is the page's ink again).
        return float(np.percentile(darkest[near], 75)) - page_ink >= GLARE_FADE

    return faded


def _dilated(mask: np.ndarray, reach: int) -> np.ndarray:
    """``mask`` grown by ``reach`` tiles across and down (a diamond: its nearest tiles)."""
    import cv2

    cross = cv2.getStructuringElement(cv2.MORPH_CROSS, (3, 3))
    grown = cv2.dilate(mask.view(np.uint8), cross, iterations=reach)
    return np.asarray(grown, dtype=bool)


CARD_PRINT = 1 / 46
"""The height of a page's larger glyphs (the upper quartile), as a share of its shorter side,
from which its print is a card's: a card's labels and values stand 1.5 to 4 mm on its 54 mm
(1/35 and more), an A4 page's text 2 to 3 mm on 210 mm (under 1/70). The upper quartile, not
the median: the guilloche of a card breaks into glyph-sized specks that pull the median down
(photographed cards of the template corpus: the median under 1/60 for 15 of 113 sides, the
upper quartile under 1/46 for 2; A4 pages: the upper quartile 1/50 at most, of 118)."""


def card_sized_print(small: np.ndarray) -> bool:
    """Whether the larger glyphs of ``small`` (a page's analysis copy) are as large, against
    the page, as a card's print (:data:`CARD_PRINT`); True when too few glyphs tell."""
    ink = np.ascontiguousarray((small <= otsu_level(histogram(small))).view(np.uint8))
    labels, best, _ = largest_component(ink)
    if best == 0:
        return True
    ys, xs = np.nonzero(labels)
    which = labels[ys, xs]
    count = int(which.max()) + 1
    top = np.full(count, small.shape[0], np.int64)
    bottom = np.full(count, -1, np.int64)
    left = np.full(count, small.shape[1], np.int64)
    right = np.full(count, -1, np.int64)
    np.minimum.at(top, which, ys)
    np.maximum.at(bottom, which, ys)
    np.minimum.at(left, which, xs)
    np.maximum.at(right, which, xs)
    heights, widths = (bottom - top + 1)[1:], (right - left + 1)[1:]
    short = min(small.shape)
    glyphs = heights[(heights >= 3) & (heights <= short / 6) & (widths <= 4 * heights)]
    if glyphs.size < 20:
        return True
    return float(np.percentile(glyphs, 75)) >= short * CARD_PRINT


def _off_the_frame_edge(ink: np.ndarray) -> np.ndarray:
    """Ink tiles less those of regions that reach the frame's edge: the background left beside
    a document cropped from a photo (a desk along a side, a wedge where it was turned), which
    is not text and would put "text" on both sides of every row. Text inside the document's
    margins keeps clear of it. Only for a page that is the whole frame: an outline cropped
    and straightened leaves no background, and text may run close to the card's edge."""
    labels, best, _ = largest_component(np.ascontiguousarray(ink.view(np.uint8)))
    if best == 0:
        return ink
    edge = np.unique(np.concatenate([labels[0], labels[-1], labels[:, 0], labels[:, -1]]))
    edge = edge[edge != 0]
    return ink & ~np.isin(labels, edge) if edge.size else ink


def _runs_met_by_ink(mask: np.ndarray, ink: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Tiles of the horizontal runs of ``mask`` that have ink right before their start (first
    array), and right after their end (second): within a reflection's halo, which grows with
    the reflection (:data:`GLARE_HALO` tiles, or half the run's length)."""
    left = np.zeros_like(mask)
    right = np.zeros_like(mask)
    width = mask.shape[1]
    for y in range(mask.shape[0]):
        edges = np.flatnonzero(np.diff(np.concatenate(([0], mask[y].view(np.int8), [0]))))
        for start, stop in zip(edges[::2], edges[1::2], strict=True):
            gap = max(GLARE_HALO, (stop - start) // 2)
            if ink[y, max(0, start - gap) : start].any():
                left[y, start:stop] = True
            if ink[y, stop : min(width, stop + gap)].any():
                right[y, start:stop] = True
    return left, right


def _long_runs(mask: np.ndarray) -> np.ndarray:
    """Tiles of ``mask`` in a horizontal run of at least :data:`GLARE_MIN_RUN` tiles: wider
    than the gaps between words or characters, which sit between ink on both sides too."""
    out = np.zeros_like(mask)
    for y in range(mask.shape[0]):
        edges = np.flatnonzero(np.diff(np.concatenate(([0], mask[y].view(np.int8), [0]))))
        for start, stop in zip(edges[::2], edges[1::2], strict=True):
            if stop - start >= GLARE_MIN_RUN:
                out[y, start:stop] = True
    return out


def prepare_gray(gray: np.ndarray, hist: np.ndarray | None = None) -> PreparedPage:
    """Prepare an upright 8-bit grey page (see :class:`PreparedPage`)."""
    require_gray(gray, "prepare")
    _require_size(gray, "prepare")
    if gray.shape[0] < MIN_PAGE_SIDE or gray.shape[1] < MIN_PAGE_SIDE:
        raise ValueError(
            f"prepare: a page needs at least {MIN_PAGE_SIDE} pixels per side, got "
            f"{gray.shape[1]}x{gray.shape[0]}"
        )
    if hist is None:
        hist = histogram(gray)
    total = max(1, gray.size)
    levels = np.arange(256, dtype=np.float64)
    mean = float((hist * levels).sum() / total)
    variance = float((hist * (levels - mean) ** 2).sum() / total)
    paper = _percentile(hist, 95.0)

    factor = _analysis_factor(gray.shape)
    small = box_downscale(gray, factor)
    small_hist = hist if factor == 1 else histogram(small)
    level = otsu_level(small_hist)
    corners, sides = _find_document(small, level)
    touches = any(sides)
    if touches and frame_is_document(small, level):
        corners, touches = None, False  # a tight crop: the frame is the document's outline
    crossed = (corners is None or touches) and content_at_edge(small, level)
    h, w = gray.shape
    if corners is not None:
        full = corners * factor + (factor - 1) / 2
        top = np.linalg.norm(full[1] - full[0])
        bottom = np.linalg.norm(full[2] - full[3])
        left = np.linalg.norm(full[3] - full[0])
        right = np.linalg.norm(full[2] - full[1])
        doc_w, doc_h = max(2, round(max(top, bottom))), max(2, round(max(left, right)))
        rect = np.array([[0, 0], [doc_w - 1, 0], [doc_w - 1, doc_h - 1], [0, doc_h - 1]], float)
        crop = homography(rect, full)
        small_crop = homography(rect / factor, corners)
        sw, sh = max(1, doc_w // factor), max(1, doc_h // factor)
        level_small = warp(small, small_crop, (sw, sh), paper)
    else:
        full = None
        doc_w, doc_h = w, h
        crop = np.eye(3)
        level_small = small

    skew = estimate_skew(level_small, small_hist if corners is None else None)
    if abs(skew) >= MIN_SKEW_DEG:
        turn, (out_w, out_h) = rotation(skew, (doc_w, doc_h))
        transform = crop @ turn
    else:
        skew, out_w, out_h = 0.0, doc_w, doc_h
        transform = crop
    if corners is None and abs(skew) < MIN_SKEW_DEG:
        normalized = gray
        transform = None
    elif corners is None:
        normalized = rotate(gray, transform, (out_w, out_h), paper)
    else:
        normalized = warp(gray, transform, (out_w, out_h), paper)
    # The analysis copy of the normalized page, for glare and the perceptual hashes: the same
    # rotation applied to the (cropped) analysis copy, not another pass over every pixel.
    norm_small = level_small
    if skew and factor == 1 and corners is None:
        norm_small = normalized
    elif skew:
        small_size = (level_small.shape[1], level_small.shape[0])
        small_turn, small_out = rotation(skew, small_size)
        norm_small = rotate(level_small, small_turn, small_out, paper)
    # The hashes average down to 32 x 32 and 9 x 8: a copy of about HASH_SIDE pixels is plenty.
    hash_src = box_downscale(norm_small, max(1, min(16, max(norm_small.shape) // HASH_SIDE)))
    document, dpi = _document_type(doc_w, doc_h, perspective=corners is not None)
    ratio = max(doc_w, doc_h) / min(doc_w, doc_h)
    resolutions = dict(_document_shapes(doc_w, doc_h, corners is not None))
    shapes = list(resolutions)
    if touches and shapes and not crossed and _fills_frame(corners, sides, small.shape):
        # The frame was cropped to the document (a camera shot cut to the card): it reaches
        # all four sides, has a known document's shape, and the background left at the edges
        # is slivers that cut into none of its content.
        touches = False
    elif touches and shapes and not crossed and _grazes(corners, sides):
        touches = False  # a corner only grazes the frame's edge, past which is no print
    # A card among shapes that admit an A4 page too (a photographed outline) is told by the
    # size of its print: a card's rule for glare would take an A4 page's bright paper for it.
    card = "id_card" in shapes and (len(shapes) == 1 or card_sized_print(norm_small))
    glare, clipped = _glare(norm_small, framed=corners is None, card=card)
    # Sharpness is judged at the resolution of the document the page is: a card told by its
    # print among the shapes a photographed outline admits is measured as a card.
    focus_dpi = resolutions["id_card"] if dpi is None and card else dpi
    focus, focus_axis = _focus(gray, small, factor, focus_dpi)
    return PreparedPage(
        gray=normalized,
        mean=mean,
        contrast=variance**0.5,
        histogram=hist,
        clipped_dark=float(hist[: DARK_LEVEL + 1].sum() / total),
        clipped_bright=float(hist[BRIGHT_LEVEL:].sum() / total),
        source=gray,
        transform=transform,
        quad=full,
        cut_off=touches or crossed or ratio > MAX_PAGE_ASPECT,
        skew_deg=round(skew, 3),
        focus=focus,
        focus_axis=focus_axis,
        glare=glare,
        paper_clipped=clipped,
        document=document,
        dpi_estimate=dpi,
        phash=phash(hash_src),
        dhash=dhash(hash_src),
        sha256=content_sha256(normalized),
    )


_PARSERS: dict[str, type[ImageFile.ImageFile]] = {
    "jpeg": JpegImagePlugin.JpegImageFile,
    "png": PngImagePlugin.PngImageFile,
    "tiff": TiffImagePlugin.TiffImageFile,
}


def open_image(data: bytes, fmt: str) -> ImageFile.ImageFile:
    """Parse the headers of ``data`` with the parser of ``fmt`` ("jpeg" | "png" | "tiff");
    pixels are decoded on ``load()``.

    Unlike ``Image.open`` this neither guesses among every format Pillow knows nor applies
    Pillow's decompression-bomb check: admission applies our own caps to the header first.
    Parse errors surface as Pillow raises them (SyntaxError, OSError, ...).
    """
    return _PARSERS[fmt](io.BytesIO(data))


def decode_upright(page: AdmittedPage) -> Image.Image:
    """Decode an admitted page and turn it upright by its EXIF orientation."""
    with open_image(page.data, page.format) as im:
        im.load()
        upright = ImageOps.exif_transpose(im)
    return upright


def _pixels(img: Image.Image) -> np.ndarray:
    """An 8-bit H x W x 3 (colour) or H x W (grey) C-contiguous array of ``img``."""
    if img.mode in ("L", "1"):
        return np.ascontiguousarray(np.asarray(img.convert("L")))
    if img.mode in _SIXTEEN_BIT_MODES:
        wide = np.asarray(img).astype(np.int64)
        return np.ascontiguousarray((np.clip(wide, 0, 65535) >> 8).astype(np.uint8))
    if img.mode == "F":
        return np.ascontiguousarray(np.clip(np.asarray(img), 0, 255).astype(np.uint8))
    return np.ascontiguousarray(np.asarray(_flatten(img)))


def _flatten(img: Image.Image) -> Image.Image:
    """RGB, with any transparency laid over white paper."""
    if img.mode in ("RGBA", "LA", "PA") or "transparency" in img.info:
        rgba = img.convert("RGBA")
        paper = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return Image.alpha_composite(paper, rgba).convert("RGB")
    return img.convert("RGB") if img.mode != "RGB" else img


def draft_gray(im: ImageFile.ImageFile, fmt: str) -> None:
    """Before ``load()``: have a colour JPEG decode straight to its luma (the Y plane libjpeg
    already holds), skipping chroma upsampling and colour conversion: about a third faster
    to decode, and no grey conversion after. Every scan is still entropy-decoded, so damaged
    data fails ``load()`` as before; the grey levels match the BT.601 luma of the decoded RGB
    within one level."""
    if fmt == "jpeg" and im.mode == "RGB":
        im.draft("L", im.size)


def decode_for_preparation(page: AdmittedPage) -> Image.Image:
    """Decode an admitted page, colour JPEGs straight to grey (:func:`draft_gray`), upright."""
    with open_image(page.data, page.format) as im:
        draft_gray(im, page.format)
        im.load()
        return ImageOps.exif_transpose(im) if page.orientation != 1 else im


def prepare(page: AdmittedPage, image: Image.Image | None = None) -> PreparedPage:
    """Decode (unless ``image``, the page as admission decoded it, upright, is given), convert
    to grey through the native kernel, and prepare (see :func:`prepare_gray`)."""
    upright = image if image is not None else decode_for_preparation(page)
    gray, hist = to_gray(_pixels(upright))
    return prepare_gray(gray, hist)


def turned(prepared: PreparedPage, quarter_turns: int) -> PreparedPage:
    """``prepared`` with its grey page turned ``quarter_turns`` x 90° counter-clockwise
    (negative: clockwise), and its transform and source kept so that boxes and colour views
    of the turned page still map onto the scan. Hashes and statistics stay the page's."""
    k = quarter_turns % 4
    if k == 0:
        return prepared
    h, w = prepared.gray.shape
    # Turned pixel (x', y') -> pixel (x, y) of the page as prepared.
    step = {
        1: [[0, -1, w - 1], [1, 0, 0]],  # x = w-1-y', y = x'
        2: [[-1, 0, w - 1], [0, -1, h - 1]],
        3: [[0, 1, 0], [-1, 0, h - 1]],  # x = y', y = h-1-x'
    }[k]
    to_prepared = np.array([*step, [0, 0, 1]], dtype=np.float64)
    transform = prepared.transform if prepared.transform is not None else np.eye(3)
    return replace(
        prepared,
        gray=np.ascontiguousarray(np.rot90(prepared.gray, k)),
        transform=transform @ to_prepared,
        source=prepared.source if prepared.source is not None else prepared.gray,
    )


COLOUR_SIDE = 1000  # longer side of the colour view, at most (what seal detection works on)
_GREY_MODES = frozenset({"1", "L", "LA", "F", *_SIXTEEN_BIT_MODES})


def colour_view(
    page: AdmittedPage,
    prepared: PreparedPage,
    max_side: int = COLOUR_SIDE,
    box: tuple[int, int, int, int] | None = None,
) -> np.ndarray | None:
    """The page in colour (H x W x 3 uint8 RGB) laid out as ``prepared.gray`` (the same crop
    and deskew) and reduced so its longer side is at most ``max_side``: what looks for stamp
    ink and seals reads it, and a place found on it is the same fraction of ``gray``. None for
    a grey scan. A colour JPEG decodes at a reduced scale (libjpeg's DCT scaling).

    With ``box`` (left, top, right, bottom in ``gray`` pixels, clipped to it), only that part
    of the page, at the scale of ``gray`` (``max_side`` does not apply): the colour of the
    pixels OCR reads, where they must be told apart by colour."""
    if max_side < 1:
        raise ValueError(f"colour_view: max_side must be positive, got {max_side}")
    gray_h, gray_w = prepared.gray.shape
    if box is None:
        left, top, right, bottom = 0, 0, gray_w, gray_h
        scale = min(1.0, max_side / max(gray_w, gray_h))
    else:
        left, top = max(0, box[0]), max(0, box[1])
        right, bottom = min(gray_w, box[2]), min(gray_h, box[3])
        if right <= left or bottom <= top:
            raise ValueError(f"colour_view: box {box} holds no pixel of the page")
        scale = 1.0
    with open_image(page.data, page.format) as im:
        if im.mode in _GREY_MODES:
            return None
        if page.format == "jpeg":
            im.draft("RGB", (math.ceil(im.width * scale), math.ceil(im.height * scale)))
        im.load()
        img = ImageOps.exif_transpose(im) if page.orientation != 1 else im
        src_h, src_w = prepared.source.shape if prepared.source is not None else (gray_h, gray_w)
        reduce = int(img.width / src_w / scale)  # what libjpeg's scaling did not already
        if reduce >= 2:
            img = img.reduce(reduce)  # a box filter: bilinear alone would skip pixels
        rgb = _pixels(img if img.mode == "RGB" else _flatten(img.convert("RGBA")))
    if rgb.ndim != 3:
        return None
    out_w = max(1, round((right - left) * scale))
    out_h = max(1, round((bottom - top) * scale))
    # Output pixel -> gray pixel -> source pixel -> decoded colour pixel.
    to_gray = np.array(
        [[(right - left) / out_w, 0.0, left], [0.0, (bottom - top) / out_h, top], [0, 0, 1]]
    )
    to_colour = np.diag([rgb.shape[1] / src_w, rgb.shape[0] / src_h, 1.0])
    transform = prepared.transform if prepared.transform is not None else np.eye(3)
    matrix = to_colour @ transform @ to_gray
    return warp_rgb(rgb, matrix, (out_w, out_h))


def render_image(page: AdmittedPage) -> tuple[bytes, str]:
    """The image to embed in the copy PDF at full fidelity, and its format ("jpeg" | "png").

    An upright RGB or grey JPEG, and an upright PNG, pass through byte for byte; anything else
    (a rotated or CMYK JPEG, a TIFF) becomes a lossless PNG of the upright image.
    """
    if page.orientation == 1:
        if page.format == "png":
            return page.data, "png"
        if page.format == "jpeg":
            with open_image(page.data, "jpeg") as im:
                mode = im.mode
            if mode in ("RGB", "L"):
                return page.data, "jpeg"
    img = decode_upright(page)
    if img.mode in _SIXTEEN_BIT_MODES:
        img = Image.fromarray(_pixels(img), "L")
    elif img.mode not in ("1", "L", "RGB"):
        img = _flatten(img)
    out = io.BytesIO()
    img.save(out, "PNG", compress_level=PNG_COMPRESS_LEVEL)
    return out.getvalue(), "png"
