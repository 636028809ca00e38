"""The native imaging kernels and the whole page preparation against their reference twins.

Each kernel is timed beside a plain composition of the same step in NumPy, OpenCV, SciPy or
scikit-image, in the same run, on an A4 page at 300 dpi (2480 x 3508, skewed 0.6 degrees, as the
kiosk camera captures it) and on an ID card image (about 1000 x 640). Medians of --repeat runs,
in milliseconds, and the ratio reference / native (above 1: native is faster).

    python benchmarks/native.py                 # one thread: the per-core figure
    python benchmarks/native.py --threads 2     # OpenMP (and OpenCV) on two threads
"""

from __future__ import annotations

import argparse
import hashlib
import io
import os
import statistics
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any


def _parse() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--threads", type=int, default=1, help="OpenMP and OpenCV threads")
    parser.add_argument("--repeat", type=int, default=15, help="timed runs per figure")
    return parser.parse_args()


ARGS = _parse() if __name__ == "__main__" else argparse.Namespace(threads=1, repeat=15)
os.environ["OMP_NUM_THREADS"] = str(ARGS.threads)  # read once, when OpenMP starts

import cv2  # noqa: E402
import numpy as np  # noqa: E402
from PIL import Image  # noqa: E402
from scipy.fft import dct  # noqa: E402
from skimage.filters import threshold_otsu, threshold_sauvola  # noqa: E402
from skimage.measure import label  # noqa: E402

from saoy.clients.simulator import docgen  # noqa: E402
from saoy.core.pages import hashing, imaging  # noqa: E402
from saoy.core.pages.admission import Limits, admit_decoded  # noqa: E402

cv2.setNumThreads(ARGS.threads)

SKEW_DEG = 0.6
LIMITS = Limits()


# ---------------------------------------------------------------------------------------------
# Reference twins: the same steps, written plainly.


def ref_gray(rgb: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    r, g, b = (rgb[..., i].astype(np.int32) for i in range(3))
    gray = ((299 * r + 587 * g + 114 * b + 500) // 1000).astype(np.uint8)
    return gray, np.bincount(gray.ravel(), minlength=256)


def ref_box(gray: np.ndarray, f: int) -> np.ndarray:
    if f == 1:
        return gray
    h, w = gray.shape[0] // f * f, gray.shape[1] // f * f
    blocks = gray[:h, :w].reshape(h // f, f, w // f, f).sum(axis=(1, 3), dtype=np.int32)
    return ((blocks + (f * f) // 2) // (f * f)).astype(np.uint8)


def ref_document(small: np.ndarray) -> np.ndarray | None:
    """Otsu mask, frame-edge test, largest external contour simplified to a quadrilateral."""
    _, mask = cv2.threshold(small, 0, 255, cv2.THRESH_BINARY + cv2.THRESH_OTSU)
    ring = np.concatenate([mask[0], mask[-1], mask[1:-1, 0], mask[1:-1, -1]])
    if (ring > 0).mean() >= 0.5:
        return None
    contours, _ = cv2.findContours(mask, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
    biggest = max(contours, key=cv2.contourArea)
    quad = cv2.approxPolyDP(biggest, 0.02 * cv2.arcLength(biggest, True), True)
    return quad.reshape(-1, 2) if len(quad) == 4 else None


def ref_skew(small: np.ndarray) -> float:
    ink = small <= threshold_otsu(small)
    ys, xs = np.nonzero(ink[:-1] & ~ink[1:])
    xs = xs - small.shape[1] // 2

    def best(angles: np.ndarray, x: np.ndarray, y: np.ndarray) -> tuple[int, list[float]]:
        scores = []
        for a in angles:
            rows = np.floor(y + np.tan(np.radians(a)) * x + 0.5).astype(np.int64)
            counts = np.bincount(rows - rows.min()).astype(np.float64)
            scores.append(float((counts**2).sum()))
        return int(np.argmax(scores)), scores

    coarse = np.arange(-6.0, 6.0 + 1e-9, 0.25)
    i, _ = best(coarse, xs[::4], ys[::4])
    fine = coarse[i] + np.arange(-0.15, 0.15 + 1e-9, 0.025)
    j, _ = best(fine, xs, ys)
    return float(fine[j])


def ref_rotate(gray: np.ndarray, m: np.ndarray, size: tuple[int, int], fill: int) -> np.ndarray:
    flags = cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP
    return cv2.warpAffine(gray, m[:2], size, flags=flags, borderValue=fill)


def ref_warp(gray: np.ndarray, m: np.ndarray, size: tuple[int, int], fill: int) -> np.ndarray:
    flags = cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP
    return cv2.warpPerspective(gray, m, size, flags=flags, borderValue=fill)


def ref_focus(gray: np.ndarray, tile: int = 48) -> float:
    lap = cv2.Laplacian(gray, cv2.CV_64F, ksize=1)
    h, w = (gray.shape[0] - 2) // tile * tile, (gray.shape[1] - 2) // tile * tile
    lap_t = lap[1 : 1 + h, 1 : 1 + w].reshape(h // tile, tile, w // tile, tile)
    img_t = gray[1 : 1 + h, 1 : 1 + w].astype(np.float64).reshape(h // tile, tile, w // tile, tile)
    lv, gv = lap_t.var(axis=(1, 3)), img_t.var(axis=(1, 3))
    keep = gv >= 200.0
    return float(np.median(lv[keep] / gv[keep])) if keep.any() else 0.0


def ref_glare(small: np.ndarray, tile: int = 8) -> float:
    h, w = small.shape[0] // tile * tile, small.shape[1] // tile * tile
    sat = (small[:h, :w] >= 250).reshape(h // tile, tile, w // tile, tile).mean(axis=(1, 3))
    labels = label(sat >= 0.9, connectivity=1)
    sizes = np.bincount(labels.ravel())
    edge = np.unique(np.concatenate([labels[0], labels[-1], labels[:, 0], labels[:, -1]]))
    sizes[edge] = 0
    sizes[0] = 0
    return float(sizes.max() / labels.size)


def _area(n_in: int, n_out: int) -> np.ndarray:
    edges = np.arange(n_out + 1) * (n_in / n_out)
    k = np.arange(n_in)[None, :]
    overlap = np.minimum(k + 1, edges[1:, None]) - np.maximum(k, edges[:-1, None])
    return np.clip(overlap, 0, None) / (n_in / n_out)


def ref_phash(gray: np.ndarray) -> int:
    pixels = _area(gray.shape[0], 32) @ gray.astype(np.float64) @ _area(gray.shape[1], 32).T
    low = dct(dct(pixels, axis=0), axis=1)[:8, :8]
    return int("".join("1" if b else "0" for b in (low > np.median(low)).ravel()), 2)


def ref_dhash(gray: np.ndarray) -> int:
    pixels = _area(gray.shape[0], 8) @ gray.astype(np.float64) @ _area(gray.shape[1], 9).T
    bits = (pixels[:, 1:] > pixels[:, :-1]).ravel()
    return int("".join("1" if b else "0" for b in bits), 2)


def ref_sha(gray: np.ndarray) -> str:
    return hashlib.sha256(
        b"saoy-gray8 %d %d\n" % (gray.shape[1], gray.shape[0]) + gray.tobytes()
    ).hexdigest()


def ref_prepare(gray: np.ndarray) -> dict[str, Any]:
    """The whole preparation composed from the reference twins (no crop: the page fills the
    frame, as the native path finds too)."""
    hist = np.bincount(gray.ravel(), minlength=256)
    f = max(1, -(-max(gray.shape) // imaging.ANALYSIS_SIDE))
    small = ref_box(gray, f)
    ref_document(small)
    skew = ref_skew(small)
    paper = int(np.searchsorted(np.cumsum(hist), hist.sum() * 0.95))
    normalized, norm_small = gray, small
    if abs(skew) >= imaging.MIN_SKEW_DEG:
        m, size = imaging.rotation(skew, (gray.shape[1], gray.shape[0]))
        normalized = ref_rotate(gray, m, size, paper)
        ms, small_size = imaging.rotation(skew, (small.shape[1], small.shape[0]))
        norm_small = ref_rotate(small, ms, small_size, paper)
    return {
        "skew": skew,
        "focus": ref_focus(gray),
        "glare": ref_glare(norm_small),
        "phash": ref_phash(norm_small),
        "dhash": ref_dhash(norm_small),
        "sha256": ref_sha(normalized),
    }


# ---------------------------------------------------------------------------------------------
# Timing.


def median_ms(fn: Callable[[], object], repeat: int) -> float:
    fn()  # warm: first-touch pages, caches, lazy imports
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times) * 1000


@dataclass
class Page:
    name: str
    jpeg: bytes
    rgb: np.ndarray
    gray: np.ndarray
    small: np.ndarray
    factor: int


def _page(name: str, rendered: docgen.Rendered) -> Page:
    captured = docgen.degrade(rendered, skew_deg=SKEW_DEG, noise=3.0, blur=0.4, seed=1)
    assert isinstance(captured, Image.Image)
    rgb = np.ascontiguousarray(np.asarray(captured.convert("RGB")))
    gray, _ = imaging.to_gray(rgb)
    factor = max(1, -(-max(gray.shape) // imaging.ANALYSIS_SIDE))
    jpeg = docgen.encode(captured, "jpeg", 90)
    return Page(name, jpeg, rgb, gray, imaging.box_downscale(gray, factor), factor)


def _native_from_jpeg(data: bytes) -> imaging.PreparedPage:
    """admission's decode (a colour JPEG straight to luma) handed on to preparation."""
    page, image = admit_decoded(0, data, LIMITS)
    return imaging.prepare(page, image)


def _reference_from_jpeg(data: bytes) -> dict[str, Any]:
    with Image.open(io.BytesIO(data)) as im:
        rgb = np.asarray(im.convert("RGB"))
    return ref_prepare(ref_gray(rgb)[0])


def kernels(page: Page) -> list[tuple[str, Callable[[], object], Callable[[], object]]]:
    g, small, f = page.gray, page.small, page.factor
    m, size = imaging.rotation(SKEW_DEG, (g.shape[1], g.shape[0]))
    h, w = g.shape
    quad = np.array([[30, 20], [w - 45, 35], [w - 25, h - 30], [20, h - 50]], dtype=np.float64)
    rect = np.array([[0, 0], [w - 1, 0], [w - 1, h - 1], [0, h - 1]], dtype=np.float64)
    persp = imaging.homography(rect, quad)
    return [
        ("grey + histogram", lambda: imaging.to_gray(page.rgb), lambda: ref_gray(page.rgb)),
        ("histogram", lambda: imaging.histogram(g), lambda: np.bincount(g.ravel(), minlength=256)),
        (f"box downscale /{f}", lambda: imaging.box_downscale(g, f), lambda: ref_box(g, f)),
        ("document outline", lambda: imaging.find_document(small), lambda: ref_document(small)),
        ("skew estimate", lambda: imaging.estimate_skew(small), lambda: ref_skew(small)),
        (
            "deskew rotation",
            lambda: imaging.rotate(g, m, size, 255),
            lambda: ref_rotate(g, m, size, 255),
        ),
        (
            "perspective warp",
            lambda: imaging.warp(g, persp, (w, h), 255),
            lambda: ref_warp(g, persp, (w, h), 255),
        ),
        (
            "Sauvola (w=25)",
            lambda: imaging.sauvola(g, 25, 0.2),
            lambda: g > threshold_sauvola(g, window_size=25, k=0.2),
        ),
        ("focus measure", lambda: imaging._focus(g, small, f), lambda: ref_focus(g)),
        ("glare", lambda: imaging._glare(small), lambda: ref_glare(small)),
        ("pHash", lambda: hashing.phash(small), lambda: ref_phash(small)),
        ("dHash", lambda: hashing.dhash(small), lambda: ref_dhash(small)),
        ("SHA-256 of pixels", lambda: hashing.content_sha256(g), lambda: ref_sha(g)),
    ]


def main() -> int:
    pages = [
        _page("A4 300 dpi", docgen.admin_letter(docgen.random_person(1), 1)),
        _page("ID card", docgen.id_card_front(docgen.random_person(1), 1)),
    ]
    print(
        f"threads: {ARGS.threads} (OMP_NUM_THREADS and cv2.setNumThreads), "
        f"median of {ARGS.repeat} runs, ms; ratio = reference / native"
    )
    header = f"{'':26s}" + "".join(
        f"{p.name + ' ' + str(p.gray.shape[1]) + 'x' + str(p.gray.shape[0]):>34s}" for p in pages
    )
    print(header)
    print(f"{'':26s}" + f"{'native':>12s}{'reference':>12s}{'ratio':>10s}" * len(pages))
    per_page = [kernels(p) for p in pages]
    for i in range(len(per_page[0])):
        name = per_page[0][i][0].split(" /")[0]
        cells = ""
        for page, rows in zip(pages, per_page, strict=True):
            _, ours, twin = rows[i]
            if name == "box downscale" and page.factor == 1:
                cells += f"{'(none: already small)':>34s}"
                continue
            a, b = median_ms(ours, ARGS.repeat), median_ms(twin, ARGS.repeat)
            cells += f"{a:12.2f}{b:12.2f}{b / a:9.1f}x"
        print(f"{name:26s}{cells}")
    print()
    for what, native_fn, ref_fn in (
        (
            "preparation, grey in",
            lambda p: lambda: imaging.prepare_gray(p.gray),
            lambda p: lambda: ref_prepare(p.gray),
        ),
        (
            "preparation, RGB in",
            lambda p: lambda: imaging.prepare_gray(*imaging.to_gray(p.rgb)),
            lambda p: lambda: ref_prepare(ref_gray(p.rgb)[0]),
        ),
        (
            "JPEG file in (decode too)",
            lambda p: lambda: _native_from_jpeg(p.jpeg),
            lambda p: lambda: _reference_from_jpeg(p.jpeg),
        ),
    ):
        cells = ""
        for p in pages:
            a = median_ms(native_fn(p), ARGS.repeat)
            b = median_ms(ref_fn(p), ARGS.repeat)
            cells += f"{a:12.2f}{b:12.2f}{b / a:9.1f}x"
        print(f"{what:26s}{cells}")
    for p in pages:
        prepared = imaging.prepare_gray(p.gray)
        result = ref_prepare(p.gray)
        print(
            f"{p.name}: skew native {prepared.skew_deg:+.3f} / reference {result['skew']:+.3f} "
            f"(true {SKEW_DEG:+.3f}); pHash distance "
            f"{hashing.hamming(prepared.phash, result['phash'])}; focus {prepared.focus:.3f}"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
