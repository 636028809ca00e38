"""Red circular seal detection: stamp ink by colour, then a round outline by shape.

Works on a reduced colour image (the longest side at most :data:`WORK_SIDE` pixels), so an
A4 page at 300 dpi costs tens of milliseconds. Needs OpenCV (``opencv-python-headless``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import cv2
import numpy as np

WORK_SIDE = 1000
MIN_RADIUS = 0.03  # of the shorter side: smaller red rings are print, not a seal
MAX_RADIUS = 0.3
MIN_ROUNDNESS = 0.72  # convex hull area over the enclosing circle's area; a square gives 0.64
DISC_MARGIN = 1.15  # the disc whose ink is lifted, in radii found (rims are found inside)
LIFT_FROM = 30  # red minus the larger of green and blue, below which a pixel is not seal ink
LIFT_SPAN = 50  # ... and above which it is wholly ink
FRAME_SPAN = 0.7  # a red piece this much of a stamp's width or height across is its frame


@dataclass(frozen=True)
class Seal:
    """A red round stamp: centre and radius as fractions of the page width/height/shorter
    side, and how round and how red it is (0-1)."""

    cx: float
    cy: float
    radius: float
    roundness: float
    ink: float  # the share of the ring's band that is red ink

    @property
    def confidence(self) -> float:
        return max(0.0, min(1.0, 0.5 * self.roundness + 0.5 * min(1.0, self.ink * 3)))

    def box(
        self, width: int, height: int, margin: float = DISC_MARGIN
    ) -> tuple[int, int, int, int]:
        """The square around the seal's disc, ``margin`` times its radius, on a page of
        ``width`` x ``height`` pixels (left, top, right, bottom; clipped to the page)."""
        r = self.radius * min(width, height) * margin
        cx, cy = self.cx * width, self.cy * height
        return (
            max(0, math.floor(cx - r)),
            max(0, math.floor(cy - r)),
            min(width, math.ceil(cx + r)),
            min(height, math.ceil(cy + r)),
        )


def red_mask(rgb: np.ndarray) -> np.ndarray:
    """255 where a pixel is stamp-red (hue near 0, saturated, not dark), else 0."""
    hsv = cv2.cvtColor(rgb, cv2.COLOR_RGB2HSV)
    h, s, v = hsv[..., 0], hsv[..., 1], hsv[..., 2]
    red = ((h <= 10) | (h >= 165)) & (s >= 70) & (v >= 60)
    return red.astype(np.uint8) * 255


def find_seals(rgb: np.ndarray) -> list[Seal]:
    """Red round stamps on an H x W x 3 uint8 RGB page, most convincing first."""
    if rgb.ndim != 3 or rgb.shape[2] != 3 or rgb.dtype != np.uint8:
        raise ValueError(f"expected an H x W x 3 uint8 array, got {rgb.dtype} {rgb.shape}")
    h, w = rgb.shape[:2]
    scale = min(1.0, WORK_SIDE / max(h, w))
    if scale < 1.0:
        rgb = cv2.resize(rgb, (round(w * scale), round(h * scale)), interpolation=cv2.INTER_AREA)
    sh, sw = rgb.shape[:2]
    short = min(sh, sw)
    mask = red_mask(np.ascontiguousarray(rgb))
    # Join the letters and rings of a stamp into one blob.
    k = max(3, round(short * 0.012)) | 1
    joined = cv2.morphologyEx(
        mask, cv2.MORPH_CLOSE, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (k, k))
    )
    contours, _ = cv2.findContours(joined, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
    seals: list[Seal] = []
    for contour in contours:
        (x, y), r = cv2.minEnclosingCircle(contour)
        if not (MIN_RADIUS * short <= r <= MAX_RADIUS * short):
            continue
        _, _, bw, bh = cv2.boundingRect(contour)
        if not 0.75 <= bw / max(1, bh) <= 1.33:
            continue
        hull = cv2.convexHull(contour)
        roundness = float(cv2.contourArea(hull)) / (math.pi * r * r)
        if roundness < MIN_ROUNDNESS:
            continue
        # A seal has ink along its rim: the outer band must be largely red.
        band = np.zeros_like(mask)
        cv2.circle(band, (round(x), round(y)), round(r * 0.93), 255, max(2, round(r * 0.12)))
        in_band = int(np.count_nonzero(band))
        ink = float(np.count_nonzero(mask & band)) / max(1, in_band)
        if ink < 0.15:
            continue
        # A printed emblem is a solid disc; a stamp is rings and letters with paper between.
        disc = np.zeros_like(mask)
        cv2.circle(disc, (round(x), round(y)), round(r * 0.8), 255, -1)
        fill = float(np.count_nonzero(mask & disc)) / max(1, int(np.count_nonzero(disc)))
        if fill > 0.6:
            continue
        seals.append(Seal(x / sw, y / sh, r / short, min(1.0, roundness), ink))
    seals.sort(key=lambda s: s.confidence, reverse=True)
    return seals


def find_red_boxes(rgb: np.ndarray) -> list[tuple[float, float, float, float]]:
    """Red rectangular stamps (a framed "MẬT", "KHẨN"...): (left, top, right, bottom) as
    fractions of the page width and height, largest first."""
    h, w = rgb.shape[:2]
    scale = min(1.0, WORK_SIDE / max(h, w))
    if scale < 1.0:
        rgb = cv2.resize(rgb, (round(w * scale), round(h * scale)), interpolation=cv2.INTER_AREA)
    sh, sw = rgb.shape[:2]
    mask = red_mask(np.ascontiguousarray(rgb))
    # A frame's thin rule, scaled down or printed faintly, breaks into pieces: closed again.
    mask = cv2.dilate(mask, np.ones((3, 3), np.uint8))
    contours, _ = cv2.findContours(mask, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
    boxes = []
    for contour in contours:
        x, y, bw, bh = cv2.boundingRect(contour)
        # A frame, however it was tilted when stamped: its outline fills the smallest
        # rectangle around it.
        (_, _), (rw, rh), _ = cv2.minAreaRect(contour)
        long, short = max(rw, rh), min(rw, rh)
        if short < 0.01 * sh or long < 0.02 * sw or not 1.2 <= long / max(1.0, short) <= 8:
            continue
        if cv2.contourArea(contour) < 0.85 * rw * rh:
            continue
        boxes.append((x / sw, y / sh, (x + bw) / sw, (y + bh) / sh))
    boxes.sort(key=lambda b: (b[2] - b[0]) * (b[3] - b[1]), reverse=True)
    return boxes


def stamp_words(rgb: np.ndarray) -> np.ndarray:
    """The words inside a red framed stamp (an H x W x 3 crop of the stamp with its frame),
    black on white without the frame: the stamp-red pieces that touch the crop's edge or span
    most of its width or height are the frame (its sides, however the stamp was turned, cut
    diagonally across any inner margin) and are left out. An 8-bit grey image of the crop's
    size; all white when nothing red is left."""
    if rgb.ndim != 3 or rgb.shape[2] != 3 or rgb.dtype != np.uint8:
        raise ValueError(f"expected an H x W x 3 uint8 array, got {rgb.dtype} {rgb.shape}")
    h, w = rgb.shape[:2]
    mask = red_mask(np.ascontiguousarray(rgb))
    count, labels, stats, _ = cv2.connectedComponentsWithStats(mask, connectivity=8)
    keep = np.zeros(count, dtype=bool)
    for k in range(1, count):
        x, y, bw, bh, _ = stats[k]
        touches = x == 0 or y == 0 or x + bw >= w or y + bh >= h
        keep[k] = not touches and bw < FRAME_SPAN * w and bh < FRAME_SPAN * h
    out = np.full((h, w), 255, dtype=np.uint8)
    out[keep[labels]] = 0
    return out


def lift_seal_ink(
    gray: np.ndarray, seal: Seal, box: tuple[int, int, int, int], rgb: np.ndarray
) -> None:
    """Lighten, in place, the red ink of ``seal`` on ``gray``: inside ``box`` (as
    :meth:`Seal.box` gives it for ``gray``), whose colour is ``rgb``, each pixel within the
    seal's disc (with the box's margin) moves toward the paper (or its red channel, if
    lighter) as far as it is red rather than grey. Black text stamped over stays black (it
    is dark in every channel), and red print outside the disc stays as it is."""
    left, top, right, bottom = box
    part = gray[top:bottom, left:right]
    if rgb.shape[:2] != part.shape:
        raise ValueError(f"lift_seal_ink: colour {rgb.shape[:2]} is not the box {part.shape}")
    height, width = gray.shape
    colour = rgb.astype(np.int16)
    redness = colour[..., 0] - np.maximum(colour[..., 1], colour[..., 2])
    weight = np.clip((redness - LIFT_FROM) / LIFT_SPAN, 0.0, 1.0)
    yy, xx = np.ogrid[top:bottom, left:right]
    r = seal.radius * min(width, height) * DISC_MARGIN
    weight *= (xx + 0.5 - seal.cx * width) ** 2 + (yy + 0.5 - seal.cy * height) ** 2 <= r * r
    # Toward the paper, not the ink's red channel: a lifted seal leaves no grey ring for page
    # segmentation to take, with the text stamped over, for a picture.
    paper = np.maximum(np.percentile(part, 90), colour[..., 0])
    lifted = part + (np.maximum(paper, part) - part) * weight
    part[...] = np.rint(lifted).astype(np.uint8)
