"""OCR with the models of the PyPI package ``trueocr``, run on ONNX Runtime (CPU).

The package ships, under ``trueocr/models/``:

- ``det.onnx``: a text-line detector. Input ``x`` (1, 1, H, W), the page as an ink map (1 for
  ink, 0 for paper) with H and W multiples of 32; output (1, 3, H/2, W/2): the logit that a
  cell lies on a line's core, and the distances (in input pixels) from the cell up to the
  line's top and down to its bottom.
- ``rec.onnx``: a CTC line recognizer. Input ``x`` (B, 1, 96, W) ink maps, where the line
  fills the middle band of a window 4.2 line heights tall, and ``widths`` (B) the columns of
  each that hold the line (the rest is padding); outputs ``ids`` (B, W/4), the best class per
  time step (0 the CTC blank, k the (k-1)-th character of the charset), ``conf`` its
  probability, and ``lengths``, the valid steps.
- ``meta.json``: the charset (the full Vietnamese alphabet, a space) and the detector's scale.

Only these files are read, located through the installed package's file list: none of the
package's Python code is imported, and nothing is fetched at run time. Detection decoding (line
cores, their slope, height and ends), the line windows, batching and greedy CTC decoding are
written here; each character's time step places it along its line, which is how lines are cut
into words with boxes (with :mod:`saoy.core.ocr.onnx`'s word boxing). A space the recognizer
drops is put back where the line has a blank gap as wide as a word space.

Sessions are created once, in the constructor, on the CPU execution provider with a chosen
number of intra-op threads; ``recognize`` may be called from many threads at once.
"""

from __future__ import annotations

import json
import logging
import math
import re
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np

from saoy.core.model import OcrResult
from saoy.core.ocr.onnx import TextBox, _Line, page_result
from saoy.core.ocr.tesseract import OcrEngine, OcrUnavailable, _check_gray

log = logging.getLogger("saoy.core.ocr")

PACKAGE = "trueocr"
MODEL_DIR = "trueocr/models"
CPU = "CPUExecutionProvider"

DET_MULTIPLE = 32  # the detector's input sides divide by this
DET_STRIDE = 2  # detector input pixels per output cell
SMALL_LINE = 9.0  # median line height (detector pixels) under which the page is detected again
SMALL_TARGET = 12.0  # ... at a scale giving lines about this tall
DET_MAX_SIDE = 2048  # the largest long side the page is detected at

REC_HEIGHT = 96  # the recognizer's input height: a window of WINDOW line bands
WINDOW = 4.6  # window height in line heights: the line, the page 1.8 above and below
PAD_X = 0.3  # paper kept left and right of a line, in line heights
REC_STRIDE = 4  # input columns per CTC time step
REC_MULTIPLE = 8  # batch widths are rounded up to this
REC_HALO = 8  # blank columns past the widest line of a batch
MRZ_LENGTH = 30  # characters of a card's machine-readable-zone line (ICAO 9303 TD1)
MRZ_MIN = 24  # ... read, at least
MRZ_LOOKALIKES = frozenset("<-:.,;kcx")  # what the recognizer makes of its fillers
_FILLER_RUN = re.compile(r"[<\-:.,;kcx]{3,}|<<|--")
BATCH_RATIO = 1.3  # lines batched together differ in width by at most this factor
BATCH_COLUMNS = 64 * 640  # lines x padded width of one batch, at most
SPACE_GAP = 0.24  # a blank run this many line heights wide between two letters is a word space
DIGIT_GAP = 2.0  # ... and between two digits, this many times as wide


@dataclass(frozen=True)
class _Window:
    """One line's recognizer input: its ink map, and how its columns map back to the line."""

    ink: np.ndarray  # REC_HEIGHT x width, float32, 1 = ink
    line: int  # index of the detected line
    offset: float  # window column of the line's start
    scale: float  # window columns per page pixel along the line
    blank: np.ndarray  # width bools: no ink in the line's band
    gap_before: bool  # a piece of a longer line cut in a word space


def model_dir() -> Path:
    """The folder of the installed ``trueocr`` package's models, without importing it."""
    try:
        dist = metadata.distribution(PACKAGE)
    except metadata.PackageNotFoundError as e:
        raise OcrUnavailable(
            f"the trueocr OCR engine needs the Python package {PACKAGE!r}: "
            f"pip install 'saoy[trueocr]' (or pip install {PACKAGE})"
        ) from e
    folder = Path(str(dist.locate_file(MODEL_DIR)))
    missing = [
        name for name in ("det.onnx", "rec.onnx", "meta.json") if not (folder / name).is_file()
    ]
    if missing:
        raise OcrUnavailable(
            f"{', '.join(missing)} missing from {folder} (package {PACKAGE} {dist.version}): "
            f"reinstall it (pip install --force-reinstall {PACKAGE})"
        )
    return folder


class TrueOcrEngine(OcrEngine):
    """Line detection and a Vietnamese CTC line recognizer from ``trueocr``, on the CPU."""

    name = "trueocr"

    def __init__(
        self,
        *,
        threads: int = 1,
        det_long_side: int | None = None,
        det_threshold: float = 0.5,
        min_confidence: float = 0.5,
        max_width: int = 768,
        spaces: bool = True,
    ) -> None:
        """Load both models and create their sessions.

        ``threads``: ONNX Runtime intra-op threads per session (0: one per core). One thread
        lets a pool of N workers read N pages on N cores without oversubscription.
        ``det_long_side``: the page's longer side for detection (default: the model's, 1024);
        a page whose lines come out smaller than :data:`SMALL_LINE` is detected again larger.
        ``min_confidence``: lines read with a lower mean character probability are dropped.
        ``max_width``: the widest window the recognizer reads at once; longer lines are read
        in pieces cut in blank gaps. ``spaces``: put back word spaces at wide blank gaps.
        """
        try:
            import cv2
            import onnxruntime as ort
        except ImportError as e:  # pragma: no cover - dependencies of the package
            raise OcrUnavailable(f"the trueocr OCR engine needs onnxruntime and OpenCV: {e}") from e
        if threads < 0:
            raise ValueError(f"threads must be 0 (ONNX Runtime's default) or more, got {threads}")
        if max_width < 4 * REC_HEIGHT:
            raise ValueError(f"max_width must be at least {4 * REC_HEIGHT}, got {max_width}")
        folder = model_dir()
        try:
            meta = json.loads((folder / "meta.json").read_text(encoding="utf-8"))
            self.charset: tuple[str, ...] = tuple(str(ch) for ch in meta["charset"])
            default_side = int(meta.get("det_long_side", 1024))
        except (OSError, ValueError, KeyError, TypeError) as e:
            raise OcrUnavailable(f"cannot read {folder / 'meta.json'}: {e}") from e
        self._cv2: Any = cv2
        self.threads = threads
        self.det_long_side = det_long_side or default_side
        self.det_threshold = det_threshold
        self.min_confidence = min_confidence
        self.max_width = max_width
        self.spaces = spaces
        self._det_logit = math.log(det_threshold / (1 - det_threshold))

        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        # Every page and line batch has its own shape: an arena would keep the largest.
        options.enable_cpu_mem_arena = False
        options.log_severity_level = 3
        if threads != 1:
            options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        try:
            self._det = ort.InferenceSession(str(folder / "det.onnx"), options, providers=[CPU])
            self._rec = ort.InferenceSession(str(folder / "rec.onnx"), options, providers=[CPU])
        except Exception as e:  # onnxruntime raises its own (non-exported) exception types
            raise OcrUnavailable(f"ONNX Runtime could not load the trueocr models: {e}") from e
        rec_inputs = {i.name for i in self._rec.get_inputs()}
        rec_outputs = {o.name for o in self._rec.get_outputs()}
        if rec_inputs != {"x", "widths"} or not {"ids", "conf", "lengths"} <= rec_outputs:
            raise OcrUnavailable(
                f"the trueocr recognizer has inputs {sorted(rec_inputs)} and outputs "
                f"{sorted(rec_outputs)}, not those this engine reads: pin trueocr 0.1"
            )
        self.provider = CPU
        log.info(
            "trueocr OCR engine on the CPU (%d intra-op thread(s) per session; %s %s)",
            threads,
            PACKAGE,
            metadata.version(PACKAGE),
        )

    # -- the page ---------------------------------------------------------------------------

    def recognize(self, gray: np.ndarray) -> OcrResult:
        _check_gray(gray)
        h, w = gray.shape
        if h < 8 or w < 8:
            return OcrResult(words=(), text="", mean_confidence=0.0)
        gray = np.ascontiguousarray(gray)
        boxes = self.detect(gray)
        lines = [
            line
            for line in self._read(gray, boxes)
            if line.text.strip() and line.confidence >= self.min_confidence
        ]
        return page_result(lines, w, h)

    # -- detection --------------------------------------------------------------------------

    def detect(self, gray: np.ndarray) -> list[TextBox]:
        """Text lines, as rectangles along their slope in page pixels."""
        found, scale = self._detect_at(gray, self.det_long_side)
        if len(found) >= 4:
            median = float(np.median([height for _, height in found]))
            if median < SMALL_LINE:
                side = self.det_long_side * SMALL_TARGET / max(median, 1.0)
                side = min(DET_MAX_SIDE, int(side) // DET_MULTIPLE * DET_MULTIPLE)
                if side > self.det_long_side:
                    found, scale = self._detect_at(gray, side)
        h, w = gray.shape
        boxes = []
        for corners, _ in found:
            c = corners / np.float32(scale)
            c[:, 0] = np.clip(c[:, 0], 0, w)
            c[:, 1] = np.clip(c[:, 1], 0, h)
            boxes.append(TextBox(corners=c, score=1.0))
        return boxes

    def _detect_at(self, gray: np.ndarray, long_side: int) -> tuple[list[tuple[Any, float]], float]:
        """(corners in detector pixels, height in detector pixels) of each line found with
        the page scaled to ``long_side``; and that scale."""
        cv2 = self._cv2
        h, w = gray.shape
        scale = long_side / max(h, w)
        nh, nw = max(1, round(h * scale)), max(1, round(w * scale))
        small = gray
        if (nh, nw) != (h, w):
            interpolation = cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR
            small = cv2.resize(gray, (nw, nh), interpolation=interpolation)
        ph = -(-nh // DET_MULTIPLE) * DET_MULTIPLE
        pw = -(-nw // DET_MULTIPLE) * DET_MULTIPLE
        x = np.zeros((1, 1, ph, pw), np.float32)
        x[0, 0, :nh, :nw] = 1.0 - small.astype(np.float32) * np.float32(1 / 255)
        out = self._det.run(None, {"x": x})[0][0]
        return _line_cores(cv2, out, self._det_logit), scale

    # -- recognition ------------------------------------------------------------------------

    def _window(self, gray: np.ndarray, box: TextBox, index: int) -> list[_Window]:
        """The line as the recognizer reads it: straightened, scaled so that the window is
        REC_HEIGHT tall, paper around it; in pieces no wider than ``max_width``."""
        cv2 = self._cv2
        c = box.corners.astype(np.float64)
        length = float(np.hypot(*(c[1] - c[0])))
        height = max(1.0, float(np.hypot(*(c[3] - c[0]))))
        s = REC_HEIGHT / (WINDOW * height)  # window pixels per page pixel
        along = (c[1] - c[0]) / max(length, 1e-6)
        down = np.array([-along[1], along[0]])
        margin_x, margin_y = PAD_X * height, (WINDOW - 1) / 2 * height
        origin = c[0] - along * margin_x - down * margin_y
        width = max(REC_MULTIPLE, round((length + 2 * margin_x) * s))
        # window (u, v) -> page: origin + (u / s) along + (v / s) down
        to_page = np.array(
            [[along[0] / s, down[0] / s, origin[0]], [along[1] / s, down[1] / s, origin[1]]]
        )
        band_top = round(margin_y * s)
        band_bottom = round((margin_y + height) * s)
        line_left, line_right = round(margin_x * s), round((margin_x + length) * s)
        src = gray
        if s < 1:  # shrink first, as a warp samples without averaging
            src = cv2.resize(gray, None, fx=s, fy=s, interpolation=cv2.INTER_AREA)
            to_page = to_page * s
        warped = cv2.warpAffine(
            src,
            to_page,
            (width, REC_HEIGHT),
            flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP,
            borderMode=cv2.BORDER_REPLICATE,
        )
        band = warped[band_top:band_bottom, line_left:line_right]
        ink = 1.0 - warped.astype(np.float32) * np.float32(1 / 255)
        if band.size and float(np.median(band)) < 110:  # light text on a dark ground
            ink = 1.0 - ink
        # Paper left and right of the line; above and below, the page as it is.
        ink[:, :line_left] = 0
        ink[:, line_right:] = 0
        core = ink[band_top:band_bottom]
        top = float(np.percentile(core, 99)) if core.size else 0.0
        blank = core.max(axis=0) < max(0.25, 0.45 * top) if core.size else np.ones(width, bool)
        space = SPACE_GAP * REC_HEIGHT / WINDOW
        return [
            _Window(
                np.ascontiguousarray(ink[:, start:end]),
                index,
                line_left - start,
                s,
                blank[start:end],
                gap >= space,
            )
            for start, end, gap in _cuts(blank, self.max_width)
        ]

    def _read(self, gray: np.ndarray, boxes: list[TextBox]) -> list[_Line]:
        windows = [piece for i, box in enumerate(boxes) for piece in self._window(gray, box, i)]
        chars: dict[int, list[tuple[str, float, float]]] = {i: [] for i in range(len(boxes))}
        decoded: list[list[tuple[str, float, float]]] = [[] for _ in windows]
        for batch in _batches([x.ink.shape[1] for x in windows]):
            widest = max(windows[i].ink.shape[1] for i in batch)
            padded = -(-widest // REC_MULTIPLE) * REC_MULTIPLE + REC_HALO
            x = np.zeros((len(batch), 1, REC_HEIGHT, padded), np.float32)
            widths = np.zeros(len(batch), np.int64)
            for row, i in enumerate(batch):
                ink = windows[i].ink
                x[row, 0, :, : ink.shape[1]] = ink
                widths[row] = ink.shape[1]
            ids, conf, lengths = self._rec.run(
                ["ids", "conf", "lengths"], {"x": x, "widths": widths}
            )
            for row, i in enumerate(batch):
                n = int(lengths[row])
                decoded[i] = self._decode(ids[row, :n], conf[row, :n], windows[i])
        for window, part in zip(windows, decoded, strict=True):
            line = chars[window.line]
            if window.gap_before and line and part:
                line.append((" ", part[0][1], 1.0))
            line.extend(part)
        lines = []
        for i, box in enumerate(boxes):
            c = box.corners
            length = float(np.hypot(*(c[1] - c[0])))
            placed = tuple(_mrz_fillers(_tidy(chars[i])))
            visible = [p for ch, _, p in placed if not ch.isspace()]
            confidence = float(np.mean(visible)) if visible else 0.0
            text = "".join(ch for ch, _, _ in placed)
            lines.append(_Line(box, text, placed, max(length, 1.0), confidence))
        return lines

    def _decode(
        self, ids: np.ndarray, conf: np.ndarray, window: _Window
    ) -> list[tuple[str, float, float]]:
        """Greedy CTC: runs of one class collapsed, blanks dropped; each character with its
        place along the line (page pixels from the line's start) and its probability; a space
        put in where two letters stand a word space apart (two digits, twice as far: a
        narrow figure such as 1 stands alone in a figure's width)."""
        out: list[tuple[str, float, float]] = []
        space = SPACE_GAP * REC_HEIGHT / WINDOW
        prev_end = -1
        t, steps = 0, len(ids)
        while t < steps:
            k = int(ids[t])
            end = t
            while end + 1 < steps and ids[end + 1] == k:
                end += 1
            if 0 < k <= len(self.charset):
                ch = self.charset[k - 1]
                centre = (t + end + 1) / 2 * REC_STRIDE
                if (
                    self.spaces
                    and out
                    and not ch.isspace()
                    and not out[-1][0].isspace()
                    and _blank_run(window.blank, prev_end * REC_STRIDE, t * REC_STRIDE)
                    >= space * (DIGIT_GAP if ch.isdigit() and out[-1][0].isdigit() else 1)
                ):
                    gap_at = (prev_end * REC_STRIDE + t * REC_STRIDE) / 2
                    out.append((" ", (gap_at - window.offset) / window.scale, 1.0))
                out.append(
                    (ch, (centre - window.offset) / window.scale, float(conf[t : end + 1].max()))
                )
                prev_end = end + 1
            t = end + 1
        return out

    def close(self) -> None:
        """Sessions are released with the engine; nothing to end early."""


def _line_cores(cv2: Any, out: np.ndarray, logit: float) -> list[tuple[np.ndarray, float]]:
    """Lines from the detector's output for one page: each connected run of core cells is one
    line, its centre line fitted through the cells' (top + bottom) / 2, its height their mean
    bottom - top. Returns (corners TL, TR, BR, BL; height), in detector input pixels."""
    mask = (out[0] > logit).astype(np.uint8)
    n, labels, stats, _ = cv2.connectedComponentsWithStats(mask, connectivity=4)
    if n <= 1:
        return []
    ys, xs = np.nonzero(labels)
    idx = labels[ys, xs]
    px = (xs.astype(np.float64) + 0.5) * DET_STRIDE
    py = (ys.astype(np.float64) + 0.5) * DET_STRIDE
    top = py - out[1, ys, xs]
    bottom = py + out[2, ys, xs]
    mid = (top + bottom) / 2
    count = np.maximum(np.bincount(idx, minlength=n), 1).astype(np.float64)

    def mean(values: np.ndarray) -> np.ndarray:
        return np.bincount(idx, weights=values, minlength=n) / count

    mx, mm = mean(px), mean(mid)
    vx = mean(px * px) - mx * mx
    cxm = mean(px * mid) - mx * mm
    heights = mean(bottom - top)
    found = []
    for i in range(1, n):
        if stats[i, cv2.CC_STAT_AREA] < 2:
            continue
        h = max(1.0, float(heights[i]))
        x0 = stats[i, cv2.CC_STAT_LEFT] * DET_STRIDE
        x1 = (stats[i, cv2.CC_STAT_LEFT] + stats[i, cv2.CC_STAT_WIDTH]) * DET_STRIDE
        # A core covers the line's length less a little at each end.
        grow = min(0.15 * h, 0.5 * h)
        x0, x1 = x0 - grow, x1 + grow
        slope = float(cxm[i] / vx[i]) if vx[i] > 1e-6 and x1 - x0 > 3 * h else 0.0
        slope = max(-0.1, min(0.1, slope))
        along = np.array([1.0, slope]) / math.hypot(1.0, slope)
        down = np.array([-along[1], along[0]])
        left = np.array([x0, mm[i] + slope * (x0 - mx[i])])
        right = np.array([x1, mm[i] + slope * (x1 - mx[i])])
        half = h / 2 * down
        corners = np.array([left - half, right - half, right + half, left + half], np.float32)
        found.append((corners, h))
    return found


def _cuts(blank: np.ndarray, limit: int) -> list[tuple[int, int, int]]:
    """Pieces ``(start, end, blank run cut)`` of a window, none wider than ``limit``, cut in
    the middle of the widest blank run in the second half of each piece's reach."""
    width = len(blank)
    pieces = []
    start, gap = 0, 0
    while width - start > limit:
        lo, hi = start + limit // 2, start + limit
        best_len, best_mid, run = 0, hi, 0
        for x in range(lo, hi):
            run = run + 1 if blank[x] else 0
            if run > best_len:
                best_len, best_mid = run, x - run // 2
        pieces.append((start, best_mid, gap))
        start, gap = best_mid, best_len
    pieces.append((start, width, gap))
    return pieces


def _blank_run(blank: np.ndarray, start: float, end: float) -> int:
    """The longest run of blank columns in ``[start, end)``."""
    best = run = 0
    for value in blank[max(0, int(start)) : max(0, int(end))]:
        run = run + 1 if value else 0
        best = max(best, run)
    return best


def _mrz_fillers(chars: list[tuple[str, float, float]]) -> list[tuple[str, float, float]]:
    """A machine-readable-zone line as it is printed: the recognizer reads its ``<`` fillers
    as dashes, colons or small letters, the gaps between them as spaces, and a run of them
    short (CTC merges repeats). A line is taken for one when it is long, holds a run of such
    look-alikes, and nothing but capitals and digits besides; a line that ends in fillers is
    filled up to the card's 30 characters."""
    text = "".join(ch for ch, _, _ in chars if not ch.isspace())
    if len(text) < MRZ_MIN or not _FILLER_RUN.search(text):
        return chars
    if not all(ch in MRZ_LOOKALIKES or ("A" <= ch <= "Z") or ch.isdigit() for ch in text):
        return chars
    out = [
        (ch if ("A" <= ch <= "Z") or ch.isdigit() else "<", x, p)
        for ch, x, p in chars
        if not ch.isspace()
    ]
    if out[-1][0] == "<" and len(out) < MRZ_LENGTH:
        mean = float(np.mean([p for _, _, p in out]))
        out.extend([("<", out[-1][1], mean)] * (MRZ_LENGTH - len(out)))
    return out


def _tidy(chars: list[tuple[str, float, float]]) -> list[tuple[str, float, float]]:
    """No leading, trailing or doubled spaces."""
    out: list[tuple[str, float, float]] = []
    for item in chars:
        if item[0].isspace() and (not out or out[-1][0].isspace()):
            continue
        out.append(item)
    while out and out[-1][0].isspace():
        out.pop()
    return out


def _batches(widths: list[int]) -> list[list[int]]:
    """Indices grouped, narrowest first, into batches of similar width (within
    :data:`BATCH_RATIO`) and bounded size (:data:`BATCH_COLUMNS`)."""
    batches: list[list[int]] = []
    for i in sorted(range(len(widths)), key=widths.__getitem__):
        w = max(widths[i], 64)
        if batches:
            last = batches[-1]
            first = max(widths[last[0]], 64)
            if w <= BATCH_RATIO * first and (len(last) + 1) * w <= BATCH_COLUMNS:
                last.append(i)
                continue
        batches.append([i])
    return batches
