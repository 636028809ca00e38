"""Face images as a kiosk would capture them, built from real photographs.

* :func:`card_with_photo` pastes a portrait into the photo box of a synthetic ID card front.
* :func:`turned_head` renders a *synthetic* head turn: the photo is draped over a simple
  three-dimensional head (an ellipsoid with a nose bump placed from the five landmarks) and
  rotated about a vertical axis. The depth model is ours, so this exercises detection, landmark
  geometry and the decision on real pixels, but it does not prove how real heads move.
* :func:`turned_flat_photo` is the attack: a flat photo turned by hand in front of the camera
  (an exact pinhole projection of a plane rotated about its vertical axis).
* :func:`screen_replay` films a photo shown on an RGB-stripe screen with a camera whose pixel
  grid does not line up with the screen's (the moiré a real screen replay produces).

Landmarks are five (x, y) points in the order YuNet reports them: image-left eye, image-right
eye, nose tip, image-left and image-right mouth corner.
"""

from __future__ import annotations

import io
import math
import random

import numpy as np
from PIL import Image, ImageFilter

# Where the portrait goes on docgen.id_card_front (left, top, right, bottom).
CARD_PHOTO_BOX = (40, 200, 250, 470)


def _sample(rgb: np.ndarray, map_x: np.ndarray, map_y: np.ndarray) -> np.ndarray:
    """Bilinear lookup of ``rgb`` at float coordinates (edge pixels repeated outside)."""
    h, w = rgb.shape[:2]
    x = np.clip(map_x, 0, w - 1.001)
    y = np.clip(map_y, 0, h - 1.001)
    x0, y0 = np.floor(x).astype(np.int64), np.floor(y).astype(np.int64)
    fx, fy = (x - x0)[..., None], (y - y0)[..., None]
    src = rgb.astype(np.float32)
    top = src[y0, x0] * (1 - fx) + src[y0, x0 + 1] * fx
    bottom = src[y0 + 1, x0] * (1 - fx) + src[y0 + 1, x0 + 1] * fx
    return np.clip(top * (1 - fy) + bottom * fy, 0, 255).astype(np.uint8)


def jpeg(image: Image.Image, quality: int = 90) -> bytes:
    out = io.BytesIO()
    image.convert("RGB").save(out, "JPEG", quality=quality)
    return out.getvalue()


def portrait_crop(photo: Image.Image, face_box: tuple[float, float, float, float]) -> Image.Image:
    """A head-and-shoulders crop around ``face_box`` (x, y, w, h) with the card photo's aspect."""
    x, y, w, h = face_box
    left, top, right, bottom = CARD_PHOTO_BOX
    aspect = (right - left) / (bottom - top)
    crop_h = h * 1.9
    crop_w = crop_h * aspect
    cx, cy = x + w / 2, y + h * 0.55
    box = (cx - crop_w / 2, cy - crop_h / 2, cx + crop_w / 2, cy + crop_h / 2)
    return photo.convert("RGB").crop(tuple(round(v) for v in box))  # type: ignore[arg-type]


def card_with_photo(
    card: Image.Image, photo: Image.Image, face_box: tuple[float, float, float, float]
) -> Image.Image:
    """The card front with ``photo`` (cropped around ``face_box``) in its portrait box."""
    left, top, right, bottom = CARD_PHOTO_BOX
    portrait = portrait_crop(photo, face_box).resize(
        (right - left, bottom - top), Image.Resampling.LANCZOS
    )
    out = card.convert("RGB").copy()
    out.paste(portrait, (left, top))
    return out


def turned_head(photo: Image.Image, landmarks: np.ndarray, degrees: float) -> Image.Image:
    """``photo`` with the head turned ``degrees`` about a vertical axis (positive: the nose
    moves towards image +x, the subject's left in an unmirrored frame); background unmoved."""
    rgb = np.asarray(photo.convert("RGB"))
    h, w = rgb.shape[:2]
    lm = np.asarray(landmarks, dtype=np.float64)
    iod = float(np.linalg.norm(lm[1] - lm[0]))
    eyes, mouth, nose = (lm[0] + lm[1]) / 2, (lm[3] + lm[4]) / 2, lm[2]
    cx, cy = (eyes[0] + mouth[0]) / 2, (eyes[1] + mouth[1]) / 2 - 0.2 * iod
    ax, ay, az = 1.25 * iod, 1.75 * iod, 1.0 * iod
    theta = math.radians(degrees)
    ys, xs = np.mgrid[0:h, 0:w].astype(np.float64)

    def depth_and_weight(x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        e = ((x - cx) / ax) ** 2 + ((y - cy) / ay) ** 2
        z = az * np.sqrt(np.clip(1 - e, 0, None))
        z += 0.35 * iod * np.exp(-(((x - nose[0]) ** 2 + (y - nose[1]) ** 2) / (0.3 * iod) ** 2))
        weight = np.clip((1.3 - np.sqrt(e)) / 0.4, 0, 1)  # 1 inside the head, 0 beyond 1.3×
        return z, weight

    # Output pixel x' came from source x with x' = x + m(x)·((x-cx)(cosθ-1) + z(x) sinθ):
    # solve for x by fixed-point iteration (the displacement varies slowly).
    src_x = xs.copy()
    for _ in range(12):
        z, m = depth_and_weight(src_x, ys)
        src_x = xs - m * ((src_x - cx) * (math.cos(theta) - 1) + z * math.sin(theta))
    return Image.fromarray(_sample(rgb, src_x, ys))


def turned_flat_photo(photo: Image.Image, degrees: float, distance: float = 2.0) -> Image.Image:
    """A flat print of ``photo`` turned ``degrees`` about its vertical centre line, seen by a
    pinhole camera ``distance`` photo-widths away (focal length chosen so 0° is 1:1)."""
    rgb = np.asarray(photo.convert("RGB"))
    h, w = rgb.shape[:2]
    phi = math.radians(degrees)
    d = distance * w
    ys, xs = np.mgrid[0:h, 0:w].astype(np.float64)
    big_x, big_y = xs - w / 2, ys - h / 2
    # X = f·x·cosφ / (D + x·sinφ), Y = f·y / (D + x·sinφ) with f = D; inverted for x, y.
    x = big_x * d / (d * math.cos(phi) - big_x * math.sin(phi))
    y = big_y * (d + x * math.sin(phi)) / d
    out = _sample(rgb, x + w / 2, y + h / 2)
    outside = (np.abs(x) > w / 2) | (np.abs(y) > h / 2)
    out[outside] = (40, 40, 40)  # the room behind the print
    return Image.fromarray(out)


def screen_replay(
    photo: Image.Image,
    seed: int = 0,
    pitch: float = 2.3,
    angle: float = 1.5,
    leak: float = 0.35,
    gap: float = 0.6,
    gain: float = 1.6,
) -> Image.Image:
    """``photo`` shown on an RGB-stripe screen (3 sub-pixel columns and a dark row per pixel)
    and captured by a camera whose pixels are ``pitch`` screen sub-pixels wide, turned
    ``angle`` degrees against the screen's grid, without optical low-pass filtering."""
    rng = random.Random(seed)
    rgb = np.asarray(photo.convert("RGB"))
    h, w = rgb.shape[:2]
    # Each pixel: three sub-pixel columns, each lit in its own colour (the lens lets a little
    # of its neighbours through), over two lit rows and a darker gap row.
    big = np.repeat(np.repeat(rgb.astype(np.float32), 3, axis=0), 3, axis=1)
    stripe = np.full((3, 3), leak, dtype=np.float32)
    np.fill_diagonal(stripe, 1.0)
    mask = np.tile(stripe[None, :, :], (h * 3, w, 1))  # columns cycle R, G, B
    mask[2::3] *= gap
    screen = (big * mask * gain).clip(0, 255).astype(np.uint8)
    out_w, out_h = round(w * 3 / pitch), round(h * 3 / pitch)
    ys, xs = np.mgrid[0:out_h, 0:out_w].astype(np.float64)
    a = math.radians(angle + rng.uniform(-0.3, 0.3))
    cx, cy = out_w / 2, out_h / 2
    sx = ((xs - cx) * math.cos(a) - (ys - cy) * math.sin(a)) * pitch + w * 3 / 2
    sy = ((xs - cx) * math.sin(a) + (ys - cy) * math.cos(a)) * pitch + h * 3 / 2
    captured = Image.fromarray(_sample(screen, sx, sy))
    return captured.filter(ImageFilter.GaussianBlur(0.4))
