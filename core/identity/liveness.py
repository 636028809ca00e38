"""Presentation-attack detection: an active head-turn challenge and a passive screen cue.

This is *not* a certified PAD (ISO/IEC 30107-3). It raises the cost of the cheapest attacks
at an unattended kiosk; it does not replace an attended check for high-assurance acts.

The head-turn cue
-----------------
From YuNet's five landmarks of each frame we take, in the face's own frame (x̂ along the line
from the image-left eye to the image-right eye, which is the subject's left in an unmirrored
camera frame; ŷ perpendicular to it):

* ``nose`` — the nose tip's offset from the midpoint of the eyes along x̂, divided by the
  inter-ocular distance (IOD);
* ``width`` — IOD divided by the eye-to-mouth distance along ŷ.

A real head turned by yaw θ (orthographic approximation) moves its nose tip, which sits about
0.3-0.5 IOD in front of the eye plane, by ``k·tan θ`` IOD (k ≈ 0.4): **nose parallax**. Its
``width`` shrinks as ``cos θ`` (foreshortening); vertical distances do not change, so ``width``
does not depend on how far the citizen stands.

A flat photo turned on its vertical axis by φ foreshortens just the same, but everything on it
lies in one plane: orthographically the nose stays exactly between the eyes (parallax 0); with
the photo at distance D from the camera and half an eye distance ``a`` on it, perspective adds
only ``a·sin φ / 2D`` — a few hundredths — and only together with strong foreshortening.

One caveat measured on our images: YuNet's landmark model has a prior for turned heads, so on
a flat photo turned past about 50° (foreshortening above 0.3) it places the nose as if the head
had turned. Such frames are ignored (``max_foreshortening``) and a turn must also show enough
parallax per unit of foreshortening.

So the challenge passes when, relative to the first (frontal, ``|nose| ≤ frontal_max``) frame,
some frame foreshortened by at most ``max_foreshortening`` shows a parallax of at least
``min_parallax`` *in the asked direction*, with ``Δnose / (1 - width_turned / width_frontal)``
of at least ``min_parallax_per_foreshortening``. On the test photographs a flat print turned
20-70° at 0.5-4 print widths from the lens never reached that: at most 0.68 where the parallax
passed, below 0.05 parallax up to 45°; two real photographs of one person at different yaws give
1.7, and the synthetic 3-D turns (see ``saoy.clients.simulator.faces``) 0.8-6 for turns of
30-45° on two of three faces. The margin is thin: this is a deterrent, measured on few images.

The passive cue (screen replay)
-------------------------------
A camera filming an LCD/OLED screen samples the screen's regular sub-pixel grid at a slightly
different pitch: the beat is moiré, sharp isolated peaks in the spectrum of the face region
that a real face under the kiosk's light does not have (its spectrum falls off smoothly).
:func:`moire_score` is the height, in natural-log units, of the strongest spectral peak of the
face crop in the mid/high band above the spectrum's local median background; a frame whose
score exceeds ``max_moire`` (2.2) is treated as a screen. Real photographs, re-encoded at JPEG
quality 40-95 and warped, scored 1.1-1.5; simulated screen captures (RGB-stripe screen, camera
pixel 2.0-2.6 sub-pixels wide, 1-2° off the grid) 3.2-4.8. A camera pixel exactly one screen
pixel wide (pitch 3.0) scored 1.3-1.5 and passed: the beat vanishes when the grids line up.
Real screens at other pitches, a camera's optical low-pass filter, or a defocused shot show
weaker or no moiré.

What this stops: a printed or on-screen *still* photo held up and turned, tilted, bent slightly
or slid (no parallax); a replayed earlier capture (duplicate frames, stale or out-of-order
timestamps, the random direction and the server-side deadline); a screen replay at a pitch the
camera resolves as moiré; a swap of faces in the middle of the sequence (every frame must match
the card).

What it does not stop: a video of the citizen turning the right way shown on a screen fine
enough to leave no moiré, or injected straight into the camera feed (the kiosk's camera path
must be trusted); a 3-D mask or a well-made silicone head; a printed photo curved strongly
around a vertical axis (it has some real depth); an identical twin; a citizen coerced at the
kiosk. Capture timestamps are asserted by the kiosk; only the server-side deadline is enforced
independently.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from enum import StrEnum

import numpy as np


class Direction(StrEnum):
    """Which way the citizen is asked to turn their head: *their own* left or right."""

    LEFT = "left"
    RIGHT = "right"

    @property
    def sign(self) -> int:
        """+1 when the nose moves towards the subject's left eye (x̂), -1 otherwise."""
        return 1 if self is Direction.LEFT else -1


@dataclass(frozen=True)
class LivenessConfig:
    """Thresholds of the liveness checks (derivations in the module docstring)."""

    frontal_max: float = 0.15
    """Largest |nose| offset (IOD) of the first, frontal frame."""
    min_parallax: float = 0.15
    """Smallest nose parallax (IOD) in the asked direction: a turn of about 20°."""
    min_parallax_per_foreshortening: float = 0.75
    max_foreshortening: float = 0.3
    """Frames narrower than this (1 - width ratio) are ignored: landmarks are unreliable."""
    foreshortening_floor: float = 0.03
    """Foreshortening below this counts as this much (landmark jitter)."""
    max_moire: float = 2.2
    """Highest moiré score (log spectral peak height) of a live frame."""
    min_frames: int = 2
    max_frames: int = 30
    max_span_seconds: float = 15.0
    """Longest time between the first and the last frame's capture."""
    max_clock_skew_seconds: float = 30.0
    """How far before the challenge a kiosk's capture timestamp may lie (clock skew)."""
    deadline_seconds: float = 20.0
    """Time the citizen has, from the challenge, to send every frame."""


@dataclass(frozen=True)
class Pose:
    """Landmark geometry of one frame (see the module docstring)."""

    nose: float
    width: float


def pose(landmarks: np.ndarray) -> Pose:
    """The nose offset and width ratio of five YuNet landmarks."""
    lm = np.asarray(landmarks, dtype=np.float64)
    eye_mid = (lm[0] + lm[1]) / 2
    across = lm[1] - lm[0]
    iod = float(np.linalg.norm(across))
    if iod < 1e-6:
        return Pose(nose=0.0, width=0.0)
    x_axis = across / iod
    y_axis = np.array([-x_axis[1], x_axis[0]])
    mouth_mid = (lm[3] + lm[4]) / 2
    eye_mouth = float(np.dot(mouth_mid - eye_mid, y_axis))
    nose = float(np.dot(lm[2] - eye_mid, x_axis)) / iod
    width = iod / eye_mouth if eye_mouth > 1e-6 else 0.0
    return Pose(nose=nose, width=width)


@dataclass(frozen=True)
class TurnResult:
    """What the head-turn check saw: passed or not, and the figures behind it."""

    passed: bool
    reason: str
    """Machine-readable: TURN_SEEN, NOT_FRONTAL, NO_TURN, WRONG_DIRECTION, FLAT."""
    parallax: float
    """Largest nose movement in the asked direction, in IOD."""
    foreshortening: float
    """1 - width ratio at that frame."""
    yaw_degrees: float
    """Yaw implied by the parallax for a nose 0.4 IOD in front of the eyes (indicative)."""


NOSE_DEPTH_IOD = 0.4


def check_head_turn(poses: list[Pose], direction: Direction, cfg: LivenessConfig) -> TurnResult:
    """Did a three-dimensional head turn ``direction`` across ``poses`` (in capture order)?"""
    if not poses:
        return TurnResult(False, "NO_TURN", 0.0, 0.0, 0.0)
    first = poses[0]
    if abs(first.nose) > cfg.frontal_max or first.width <= 0:
        return TurnResult(False, "NOT_FRONTAL", 0.0, 0.0, 0.0)
    usable = [p for p in poses[1:] if 1.0 - p.width / first.width <= cfg.max_foreshortening]
    moves = [direction.sign * (p.nose - first.nose) for p in usable]
    if not moves:
        return TurnResult(False, "NO_TURN", 0.0, 0.0, 0.0)
    best = int(np.argmax(moves))
    parallax = moves[best]
    shrink = 1.0 - usable[best].width / first.width
    yaw = math.degrees(math.atan(max(parallax, 0.0) / NOSE_DEPTH_IOD))
    if parallax < cfg.min_parallax:
        wrong = -min(moves)
        reason = "WRONG_DIRECTION" if wrong >= cfg.min_parallax else "NO_TURN"
        return TurnResult(False, reason, parallax, shrink, yaw)
    if parallax / max(shrink, cfg.foreshortening_floor) < cfg.min_parallax_per_foreshortening:
        return TurnResult(False, "FLAT", parallax, shrink, yaw)
    return TurnResult(True, "TURN_SEEN", parallax, shrink, yaw)


def _hann2(h: int, w: int) -> np.ndarray:
    return np.outer(np.hanning(h), np.hanning(w))


def moire_score(gray: np.ndarray, size: int = 128) -> float:
    """Height (natural log) of the strongest isolated spectral peak of a face crop above the
    local median of its spectrum, in the band from 1/8 to 7/8 of Nyquist.

    ``gray`` is the face region at the camera's own resolution (never resampled: resampling
    would hide the very aliasing we look for); the central ``size``×``size`` window is used."""
    h, w = gray.shape
    n = min(size, h, w)
    if n < 32:
        return 0.0
    top, left = (h - n) // 2, (w - n) // 2
    patch = gray[top : top + n, left : left + n].astype(np.float64)
    patch = (patch - patch.mean()) * _hann2(n, n)
    spectrum = np.log1p(np.abs(np.fft.fftshift(np.fft.fft2(patch))))
    # The smooth background: a median over a 7×7 neighbourhood (pure NumPy).
    pad = 3
    padded = np.pad(spectrum, pad, mode="reflect")
    windows = np.lib.stride_tricks.sliding_window_view(padded, (2 * pad + 1, 2 * pad + 1))
    background = np.median(windows.reshape(n, n, -1), axis=2)
    yy, xx = np.mgrid[0:n, 0:n]
    radius = np.hypot(yy - n // 2, xx - n // 2) / (n / 2)
    band = (radius >= 0.125) & (radius <= 0.875)
    return float((spectrum - background)[band].max())
