"""Capture models: what a scanner or a camera makes of a rendered page.

Each style maps the page through a projective transform (rotation, scale, perspective) onto a
frame, adds what the device adds (platen or desk, light, blur, noise, compression) and carries
the page's text-line boxes through the same geometry, so that OCR can still be scored line by
line on the captured image.

Good captures: ``flatbed`` (the page on a platen with a margin, slightly skewed, scanned at
300-600 dpi), ``tight`` (edge to edge, as kiosk scanner drivers crop), ``overhead`` (a camera
above a dark desk) and ``camera_tight`` (a camera, then cropped to the page). Bad captures, which
the kiosk should be asked to redo: ``cut_off`` (a third or more of the page outside the frame),
``motion_blur`` and ``glare`` (a specular blob washing out several text lines).
"""

from __future__ import annotations

import io
import math
import random
from collections.abc import Sequence
from dataclasses import dataclass

import cv2
import numpy as np
from PIL import Image, ImageFilter

from saoy.clients.simulator.templates import Document, Line

GOOD_STYLES = ("flatbed", "tight", "overhead", "camera_tight")
BAD_STYLES = ("cut_off", "motion_blur", "glare")
STYLES = GOOD_STYLES + BAD_STYLES


@dataclass
class Capture:
    """A captured page: the image as decoded from the device's file, that file, and the
    drawn text lines with their boxes in the captured image's pixels."""

    image: Image.Image  # RGB
    data: bytes  # PNG or JPEG, as the device wrote it
    lines: list[Line]
    style: str


# --------------------------------------------------------------------------- geometry


def homography(
    src: Sequence[tuple[float, float]], dst: Sequence[tuple[float, float]]
) -> np.ndarray:
    """The 3x3 projective map taking the four points ``src`` to ``dst``."""
    a = []
    b = []
    for (x, y), (u, v) in zip(src, dst, strict=True):
        a.append([x, y, 1, 0, 0, 0, -u * x, -u * y])
        a.append([0, 0, 0, x, y, 1, -v * x, -v * y])
        b += [u, v]
    h = np.linalg.solve(np.array(a, dtype=np.float64), np.array(b, dtype=np.float64))
    return np.append(h, 1.0).reshape(3, 3)


def apply(h: np.ndarray, pts: Sequence[tuple[float, float]]) -> list[tuple[float, float]]:
    out = []
    for x, y in pts:
        u, v, w = h @ np.array([x, y, 1.0])
        out.append((float(u / w), float(v / w)))
    return out


def warp(img: Image.Image, h: np.ndarray, size: tuple[int, int]) -> tuple[Image.Image, Image.Image]:
    """``img`` mapped by ``h`` onto a ``size`` frame, and the mask of where it landed."""
    inv = np.linalg.inv(h)
    inv = inv / inv[2, 2]
    coeffs = tuple(float(v) for v in inv.flatten()[:8])
    out = img.transform(size, Image.Transform.PERSPECTIVE, coeffs, Image.Resampling.BICUBIC)
    mask = Image.new("L", img.size, 255).transform(
        size, Image.Transform.PERSPECTIVE, coeffs, Image.Resampling.BILINEAR
    )
    return out, mask


def map_lines(
    lines: Sequence[Line], h: np.ndarray, size: tuple[int, int], keep: float = 0.9
) -> list[Line]:
    """Each line's box mapped by ``h`` (the box around its mapped corners), clipped to the
    frame; a line is kept when at least ``keep`` of its mapped box lies inside."""
    out = []
    w, hh = size
    for line in lines:
        left, top, right, bottom = line.box
        pts = apply(h, [(left, top), (right, top), (left, bottom), (right, bottom)])
        xs, ys = [p[0] for p in pts], [p[1] for p in pts]
        box = (min(xs), min(ys), max(xs), max(ys))
        clipped = (
            max(0.0, box[0]),
            max(0.0, box[1]),
            min(float(w), box[2]),
            min(float(hh), box[3]),
        )
        area = max(1e-6, (box[2] - box[0]) * (box[3] - box[1]))
        inside = max(0.0, clipped[2] - clipped[0]) * max(0.0, clipped[3] - clipped[1])
        if inside / area >= keep:
            b = (round(clipped[0]), round(clipped[1]), round(clipped[2]), round(clipped[3]))
            out.append(Line(line.text, b, line.role))
    return out


def _rotation_about(cx: float, cy: float, deg: float) -> np.ndarray:
    a = math.radians(deg)
    cos, sin = math.cos(a), math.sin(a)
    t1 = np.array([[1, 0, -cx], [0, 1, -cy], [0, 0, 1]], dtype=np.float64)
    r = np.array([[cos, -sin, 0], [sin, cos, 0], [0, 0, 1]], dtype=np.float64)
    t2 = np.array([[1, 0, cx], [0, 1, cy], [0, 0, 1]], dtype=np.float64)
    return t2 @ r @ t1


def _scale(s: float) -> np.ndarray:
    return np.array([[s, 0, 0], [0, s, 0], [0, 0, 1]], dtype=np.float64)


def _shift(dx: float, dy: float) -> np.ndarray:
    return np.array([[1, 0, dx], [0, 1, dy], [0, 0, 1]], dtype=np.float64)


# --------------------------------------------------------------------------- photometry


def _desk(size: tuple[int, int], nrng: np.random.Generator, rng: random.Random) -> np.ndarray:
    """A dark desk: a dim colour with wood-like streaks and grain."""
    w, h = size
    base = np.array(
        [rng.uniform(30, 80), rng.uniform(25, 65), rng.uniform(20, 55)], dtype=np.float32
    )
    ys = np.arange(h, dtype=np.float32)[:, None]
    xs = np.arange(w, dtype=np.float32)[None, :]
    angle = rng.uniform(-0.3, 0.3)
    streak = np.sin(
        (ys + xs * angle) / rng.uniform(6, 25) + np.sin(xs / rng.uniform(80, 300)) * 2.0
    )
    field = base[None, None, :] * (1.0 + 0.12 * streak[..., None])
    field += nrng.normal(0, 3.0, (h, w, 1)).astype(np.float32)
    return field


def _shade(arr: np.ndarray, rng: random.Random, strength: float) -> np.ndarray:
    """Vignetting and a light gradient across the frame."""
    h, w = arr.shape[:2]
    ys = np.linspace(-1, 1, h, dtype=np.float32)[:, None]
    xs = np.linspace(-1, 1, w, dtype=np.float32)[None, :]
    vignette = 1.0 - strength * (xs**2 + ys**2) / 2
    a = rng.uniform(0, 2 * math.pi)
    gradient = 1.0 + strength * 0.6 * (xs * math.cos(a) + ys * math.sin(a))
    return arr * (vignette * gradient)[..., None]


def _finish(
    arr: np.ndarray,
    nrng: np.random.Generator,
    *,
    blur: float,
    noise: float,
    fmt: str,
    quality: int,
    dpi: int | None = None,
) -> tuple[Image.Image, bytes]:
    """Blur, sensor noise and the file as written (a scanner records its resolution in it;
    a camera does not)."""
    img = Image.fromarray(np.clip(arr, 0, 255).astype(np.uint8), "RGB")
    if blur > 0:
        img = img.filter(ImageFilter.GaussianBlur(blur))
    if noise > 0:
        a = np.asarray(img, dtype=np.float32)
        a = a + nrng.normal(0, noise, (*a.shape[:2], 1)).astype(np.float32)
        a = a + nrng.normal(0, noise * 0.4, a.shape).astype(np.float32)
        img = Image.fromarray(np.clip(a, 0, 255).astype(np.uint8), "RGB")
    buf = io.BytesIO()
    extra = {"dpi": (dpi, dpi)} if dpi else {}
    if fmt == "png":
        img.save(buf, "PNG", compress_level=1, **extra)
    else:
        img.save(buf, "JPEG", quality=quality, subsampling=0 if quality >= 90 else 2, **extra)
    data = buf.getvalue()
    return Image.open(io.BytesIO(data)).convert("RGB"), data


def _compose(
    doc: Image.Image, h: np.ndarray, size: tuple[int, int], background: np.ndarray
) -> np.ndarray:
    warped, mask = warp(doc, h, size)
    m = np.asarray(mask, dtype=np.float32)[..., None] / 255.0
    return np.asarray(warped, dtype=np.float32) * m + background * (1.0 - m)


def _mm(doc: Document) -> tuple[float, float]:
    w, h = doc.image.size
    return w * 25.4 / doc.dpi, h * 25.4 / doc.dpi


def _scan_dpi(doc: Document, rng: random.Random) -> int:
    if doc.layout == "card":
        return rng.choice((300, 300, 400, 450, 600))
    return rng.choice((200, 250, 300))  # A4 pages: kept within a few megapixels


# --------------------------------------------------------------------------- styles


def flatbed(doc: Document, rng: random.Random, nrng: np.random.Generator) -> Capture:
    dpi = _scan_dpi(doc, rng) if doc.layout == "card" else 300
    s = dpi / doc.dpi
    wmm, hmm = _mm(doc)
    card = doc.layout == "card"
    margins = [rng.uniform(4, 15) if card else rng.uniform(2, 8) for _ in range(4)]
    size = (
        round((wmm + margins[0] + margins[2]) * dpi / 25.4),
        round((hmm + margins[1] + margins[3]) * dpi / 25.4),
    )
    h = _shift(margins[0] * dpi / 25.4, margins[1] * dpi / 25.4) @ _scale(s)
    h = _rotation_about(size[0] / 2, size[1] / 2, rng.uniform(-1.5, 1.5)) @ h
    platen = rng.choice((rng.uniform(240, 252), rng.uniform(205, 232)))
    bg = np.full((size[1], size[0], 3), platen, dtype=np.float32)
    arr = _compose(doc.image, h, size, bg)
    fmt = rng.choice(("png", "jpeg"))
    img, data = _finish(
        arr,
        nrng,
        blur=rng.choice((0.0, 0.3)),
        noise=rng.uniform(0.8, 2.5),
        fmt=fmt,
        quality=rng.randint(90, 97),
        dpi=dpi,
    )
    return Capture(img, data, map_lines(doc.lines, h, size), "flatbed")


def tight(doc: Document, rng: random.Random, nrng: np.random.Generator) -> Capture:
    dpi = _scan_dpi(doc, rng)
    s = dpi / doc.dpi
    w, hh = doc.image.size
    size = (round(w * s), round(hh * s))
    zoom = rng.uniform(1.0, 1.02)
    h = _rotation_about(size[0] / 2, size[1] / 2, rng.uniform(-1.2, 1.2))
    h = h @ _shift(size[0] / 2 * (1 - zoom), size[1] / 2 * (1 - zoom)) @ _scale(s * zoom)
    lid = rng.uniform(225, 250)
    bg = np.full((size[1], size[0], 3), lid, dtype=np.float32)
    arr = _compose(doc.image, h, size, bg)
    img, data = _finish(
        arr,
        nrng,
        blur=rng.choice((0.0, 0.3)),
        noise=rng.uniform(0.8, 2.5),
        fmt="jpeg",
        quality=rng.randint(85, 95),
        dpi=dpi,
    )
    return Capture(img, data, map_lines(doc.lines, h, size, keep=0.95), "tight")


def _camera_quad(
    doc: Document, rng: random.Random, frame: tuple[int, int], fill: float, jitter: float
) -> list[tuple[float, float]]:
    """Where the page's corners land in a camera frame: centred, ``fill`` of the frame, turned
    a little, each corner moved by up to ``jitter`` of the page's size (perspective)."""
    w, h = doc.image.size
    fw, fh = frame
    s = min(fw * fill / w, fh * fill / h)
    pw, ph = w * s, h * s
    cx = fw / 2 + rng.uniform(-0.5, 0.5) * (fw - pw) * 0.6
    cy = fh / 2 + rng.uniform(-0.5, 0.5) * (fh - ph) * 0.6
    a = math.radians(rng.uniform(-4, 4))
    corners = []
    for ux, uy in ((-0.5, -0.5), (0.5, -0.5), (0.5, 0.5), (-0.5, 0.5)):
        x = ux * pw + rng.uniform(-jitter, jitter) * pw
        y = uy * ph + rng.uniform(-jitter, jitter) * ph
        corners.append(
            (cx + x * math.cos(a) - y * math.sin(a), cy + x * math.sin(a) + y * math.cos(a))
        )
    return corners


def _frame(doc: Document, rng: random.Random) -> tuple[int, int]:
    if doc.layout == "card":
        return rng.choice(((1600, 1200), (2048, 1536), (1920, 1440)))
    return rng.choice(((2448, 3264), (2250, 3000)))


def overhead(doc: Document, rng: random.Random, nrng: np.random.Generator) -> Capture:
    frame = _frame(doc, rng)
    fill = rng.uniform(0.6, 0.85) if doc.layout == "card" else rng.uniform(0.78, 0.9)
    quad = _camera_quad(doc, rng, frame, fill, rng.uniform(0.02, 0.05))
    w, hh = doc.image.size
    h = homography([(0, 0), (w, 0), (w, hh), (0, hh)], quad)
    arr = _compose(doc.image, h, frame, _desk(frame, nrng, rng))
    arr = _shade(arr, rng, rng.uniform(0.1, 0.3)) * rng.uniform(0.85, 1.0)
    img, data = _finish(
        arr,
        nrng,
        blur=rng.uniform(0.5, 1.1),
        noise=rng.uniform(2.5, 6.0),
        fmt="jpeg",
        quality=rng.randint(70, 90),
    )
    return Capture(img, data, map_lines(doc.lines, h, frame), "overhead")


def camera_tight(doc: Document, rng: random.Random, nrng: np.random.Generator) -> Capture:
    w, hh = doc.image.size
    target = rng.uniform(1000, 1500) if doc.layout == "card" else rng.uniform(1700, 2300)
    big = (round(target * 1.4), round(target * 1.4 * hh / w))
    quad = _camera_quad(doc, rng, big, 0.7, rng.uniform(0.008, 0.02))
    xs, ys = [p[0] for p in quad], [p[1] for p in quad]
    inset = rng.uniform(0.0, 0.01)
    x0, x1 = min(xs) + inset * (max(xs) - min(xs)), max(xs) - inset * (max(xs) - min(xs))
    y0, y1 = min(ys) + inset * (max(ys) - min(ys)), max(ys) - inset * (max(ys) - min(ys))
    s = target / (x1 - x0)
    quad = [((x - x0) * s, (y - y0) * s) for x, y in quad]
    size = (round((x1 - x0) * s), round((y1 - y0) * s))
    h = homography([(0, 0), (w, 0), (w, hh), (0, hh)], quad)
    arr = _compose(doc.image, h, size, _desk(size, nrng, rng))
    arr = _shade(arr, rng, rng.uniform(0.05, 0.2))
    img, data = _finish(
        arr,
        nrng,
        blur=rng.uniform(0.4, 0.9),
        noise=rng.uniform(2.0, 4.5),
        fmt="jpeg",
        quality=rng.randint(75, 92),
    )
    return Capture(img, data, map_lines(doc.lines, h, size), "camera_tight")


def cut_off(doc: Document, rng: random.Random, nrng: np.random.Generator) -> Capture:
    """A tight capture with 35-50 % of the page outside the frame, on one side."""
    base = tight(doc, rng, nrng)
    w, h = base.image.size
    f = rng.uniform(0.35, 0.5)
    side = rng.choice(("left", "right", "top", "bottom"))
    box = {
        "left": (round(w * f), 0, w, h),
        "right": (0, 0, round(w * (1 - f)), h),
        "top": (0, round(h * f), w, h),
        "bottom": (0, 0, w, round(h * (1 - f))),
    }[side]
    img = base.image.crop(box)
    shift = _shift(-box[0], -box[1])
    lines = map_lines(base.lines, shift, img.size, keep=0.99)
    buf = io.BytesIO()
    img.save(buf, "JPEG", quality=92, dpi=base.image.info.get("dpi", (300, 300)))
    data = buf.getvalue()
    return Capture(Image.open(io.BytesIO(data)).convert("RGB"), data, lines, "cut_off")


def motion_blur(doc: Document, rng: random.Random, nrng: np.random.Generator) -> Capture:
    """A camera capture smeared along one direction (the hand moved)."""
    base = camera_tight(doc, rng, nrng)
    a = np.asarray(base.image, dtype=np.float32)
    length = max(9, int(a.shape[1] * rng.uniform(0.025, 0.045)))
    line = np.zeros((length, length), dtype=np.float32)
    line[length // 2, :] = 1.0
    rot = cv2.getRotationMatrix2D((length / 2 - 0.5, length / 2 - 0.5), rng.uniform(0, 180), 1.0)
    kernel = np.asarray(cv2.warpAffine(line, rot, (length, length)), dtype=np.float32)
    kernel = kernel / float(kernel.sum())
    smeared = cv2.filter2D(a, -1, kernel, borderType=cv2.BORDER_REFLECT)
    img, data = _finish(smeared, nrng, blur=0.0, noise=2.0, fmt="jpeg", quality=85)
    return Capture(img, data, base.lines, "motion_blur")


def glare(doc: Document, rng: random.Random, nrng: np.random.Generator) -> Capture:
    """A camera capture with a bright specular blob over several text lines."""
    base = (camera_tight if rng.random() < 0.6 else overhead)(doc, rng, nrng)
    a = np.asarray(base.image, dtype=np.float32)
    h, w = a.shape[:2]
    text = [line for line in base.lines if line.role not in ("mrz",)] or base.lines
    if text:
        pick = rng.choice(text)
        cx, cy = (pick.box[0] + pick.box[2]) / 2, (pick.box[1] + pick.box[3]) / 2
        gaps = sorted(abs((line.box[1] + line.box[3]) / 2 - cy) for line in text)
        ry = max(gaps[min(3, len(gaps) - 1)] * 1.4, 0.06 * h)
    else:
        cx, cy, ry = rng.uniform(0.3, 0.7) * w, rng.uniform(0.3, 0.7) * h, 0.12 * h
    rx = ry * rng.uniform(1.3, 2.5)
    ys = (np.arange(h, dtype=np.float32)[:, None] - cy) / ry
    xs = (np.arange(w, dtype=np.float32)[None, :] - cx) / rx
    blob = np.exp(-(xs**2 + ys**2) * 1.2)
    gain = rng.uniform(1.6, 2.4)
    lit = a + (255.0 * gain * blob)[..., None]
    img, data = _finish(lit, nrng, blur=0.0, noise=1.5, fmt="jpeg", quality=88)
    return Capture(img, data, base.lines, "glare")


_STYLE_FUNCS = {
    "flatbed": flatbed,
    "tight": tight,
    "overhead": overhead,
    "camera_tight": camera_tight,
    "cut_off": cut_off,
    "motion_blur": motion_blur,
    "glare": glare,
}


def capture(doc: Document, style: str, seed: int) -> Capture:
    """``doc`` captured in ``style`` (one of :data:`STYLES`), deterministically from ``seed``."""
    try:
        func = _STYLE_FUNCS[style]
    except KeyError:
        raise ValueError(f"unknown capture style {style!r}: one of {', '.join(STYLES)}") from None
    return func(doc, random.Random(seed), np.random.default_rng(seed))
