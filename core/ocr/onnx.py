"""OCR with ONNX Runtime: PP-OCRv4 text detection, then a Vietnamese CTC line recognizer.

Both models ship inside PyPI packages and are loaded from there, never downloaded:

- detection: ``ch_PP-OCRv4_det_infer.onnx`` from ``rapidocr-onnxruntime`` (a DB network: a map
  of the probability that each pixel lies inside a text line);
- recognition: ``asternet.onnx`` and its ``vocab.json`` (227 classes, CTC blank at index 0, the
  full Vietnamese alphabet) from ``asterocr``; input ``(N, 3, 32, W)`` in [0, 1], output
  ``(W / 4, N, 227)`` log-probabilities.

Only the model files are used, found through the packages' installed file lists: neither
package's Python code is imported (one of them fetches weights from the network when its own
copy is missing). The DB post-processing (threshold, contours, minimum-area rectangles, unclip,
order) and the greedy CTC decoding are written here; the CTC time steps place every character
along its line, which is how a line is split into words with boxes.

Sessions are created once, in the constructor; ``recognize`` may be called from many threads at
once (ONNX Runtime sessions support concurrent ``run``).
"""

from __future__ import annotations

import json
import logging
import math
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np

from saoy.core.model import OcrResult, Word
from saoy.core.ocr.tesseract import OcrEngine, OcrUnavailable, _check_gray
from saoy.core.packages import MissingPackageData, installed_file

log = logging.getLogger("saoy.core.ocr")

DET_PACKAGE = "rapidocr-onnxruntime"
DET_MODEL = "rapidocr_onnxruntime/models/ch_PP-OCRv4_det_infer.onnx"
REC_PACKAGE = "asterocr"
REC_MODEL = "asterocr/assets/asternet.onnx"
REC_VOCAB = "asterocr/assets/vocab.json"

CPU = "CPUExecutionProvider"
CUDA = "CUDAExecutionProvider"

CUDA_CONV_ALGO_SEARCH = "HEURISTIC"  # cuDNN convolution algorithm choice per input shape

REC_HEIGHT = 32  # the recognizer's input height
REC_STRIDE = 4  # input pixels per CTC time step
REC_WIDTH_STEP = 32  # crops are padded to a multiple of this: fewer distinct shapes (GPU)
REC_MAX_WIDTH = 1024  # the recognizer's positional encoding spans 256 time steps


def package_file(package: str, relative: str) -> Path:
    """The path of a model file installed by the PyPI ``package``, without importing it."""
    try:
        return installed_file(package, relative)
    except MissingPackageData as e:
        raise OcrUnavailable(f"the ONNX OCR engine cannot load its models: {e}") from e


def choose_providers(prefer: str = "auto", device_id: int = 0) -> list[Any]:
    """ONNX Runtime providers: CUDA then CPU when the CUDA provider is available (``auto``),
    CPU only (``cpu``), or CUDA required (``cuda``)."""
    import onnxruntime as ort

    if prefer not in ("auto", "cpu", "cuda"):
        raise ValueError(f"unknown provider choice {prefer!r}: use auto, cpu or cuda")
    available = ort.get_available_providers()
    if prefer == "cpu":
        return [CPU]
    if CUDA not in available:
        if prefer == "cuda":
            raise OcrUnavailable(
                "the CUDA provider was asked for but ONNX Runtime has none: "
                "install onnxruntime-gpu (and no plain onnxruntime beside it)"
            )
        return [CPU]
    preload = getattr(ort, "preload_dlls", None)
    if preload is not None:
        # onnxruntime-gpu installed with its pip CUDA/cuDNN wheels finds them only this way.
        try:
            preload()
        except Exception as e:  # pragma: no cover - then the libraries' default paths apply
            log.warning("could not preload the CUDA libraries: %s", e)
    cuda_options = {
        "device_id": device_id,
        # Input shapes vary from line to line: an exhaustive cuDNN search per new shape would
        # cost more than the inference it speeds up.
        "cudnn_conv_algo_search": CUDA_CONV_ALGO_SEARCH,
        "arena_extend_strategy": "kSameAsRequested",
    }
    return [(CUDA, cuda_options), CPU]


@dataclass(frozen=True)
class TextBox:
    """A detected text line: its corners (top-left, top-right, bottom-right, bottom-left) in
    page pixels, and the detector's mean probability inside it (0-1)."""

    corners: np.ndarray  # 4 x 2 float32
    score: float


@dataclass(frozen=True)
class _Line:
    box: TextBox
    text: str
    chars: tuple[tuple[str, float, float], ...]  # (char, x in crop pixels, probability)
    width: float  # crop width in pixels
    confidence: float  # 0-1


class OnnxEngine(OcrEngine):
    """PP-OCRv4 detection and a Vietnamese CTC recognizer on ONNX Runtime (CUDA or CPU)."""

    name = "onnx"

    def __init__(
        self,
        *,
        providers: str = "auto",
        threads: int = 1,
        device_id: int = 0,
        det_max_side: int = 1600,
        det_min_side: int = 736,
        det_threshold: float = 0.3,
        box_threshold: float = 0.5,
        unclip_ratio: float = 2.0,
        min_confidence: float = 0.5,
        rec_batch: int | None = None,
        detection: bool = True,
    ) -> None:
        """Load both models and create their sessions.

        ``threads``: ONNX Runtime intra-op threads per session (0: one per core). One thread
        lets a pool of N workers read N pages on N cores without oversubscription.
        ``det_max_side`` / ``det_min_side``: the page is scaled for detection so that its
        longer side is at most, and its shorter side at least, these (longer side wins).
        ``min_confidence``: lines read with a lower mean character probability are dropped.
        ``rec_batch``: at most this many lines of the same padded width are recognized in one
        run; None picks 1 on the CPU (batching saves nothing there) and 16 on CUDA.
        ``detection``: False loads the recognizer alone, for callers that find the lines
        themselves and call :meth:`read_boxes` (``recognize`` then raises).
        """
        try:
            import cv2
            import onnxruntime as ort
        except ImportError as e:  # pragma: no cover - dependencies of the engine
            raise OcrUnavailable(
                f"the ONNX OCR engine needs onnxruntime and OpenCV: {e} "
                "(pip install onnxruntime opencv-python-headless)"
            ) from e
        if threads < 0:
            raise ValueError(f"threads must be 0 (ONNX Runtime's default) or more, got {threads}")
        if rec_batch is not None and rec_batch < 1:
            raise ValueError(f"rec_batch must be at least 1, got {rec_batch}")
        if not 0 < det_min_side <= det_max_side:
            raise ValueError(
                f"need 0 < det_min_side <= det_max_side, got {det_min_side} and {det_max_side}"
            )
        self._cv2: Any = cv2
        self.det_max_side = det_max_side
        self.det_min_side = det_min_side
        self.det_threshold = det_threshold
        self.box_threshold = box_threshold
        self.unclip_ratio = unclip_ratio
        self.min_confidence = min_confidence
        self.threads = threads

        det_path = package_file(DET_PACKAGE, DET_MODEL) if detection else None
        rec_path = package_file(REC_PACKAGE, REC_MODEL)
        self.charset = _load_vocab(package_file(REC_PACKAGE, REC_VOCAB))

        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        options.log_severity_level = 3
        if threads != 1:
            # Idle workers sleep instead of spinning on cores another page could use.
            options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        chosen = choose_providers(providers, device_id)
        try:
            self._det = (
                ort.InferenceSession(str(det_path), options, providers=chosen)
                if det_path is not None
                else None
            )
            self._rec = ort.InferenceSession(str(rec_path), options, providers=chosen)
        except Exception as e:  # onnxruntime raises its own (non-exported) exception types
            raise OcrUnavailable(f"ONNX Runtime could not load the OCR models: {e}") from e
        self._det_input = self._det.get_inputs()[0].name if self._det is not None else ""
        self._rec_input = self._rec.get_inputs()[0].name
        classes = self._rec.get_outputs()[0].shape[-1]
        if isinstance(classes, int) and classes != len(self.charset):
            raise OcrUnavailable(
                f"the recognizer has {classes} classes but its vocabulary {len(self.charset)}: "
                f"reinstall {REC_PACKAGE}"
            )
        self.provider: str = self._rec.get_providers()[0]
        """The execution provider actually running the models ("CUDAExecutionProvider" or
        "CPUExecutionProvider")."""
        self.rec_batch = rec_batch or (16 if self.provider == CUDA else 1)
        if self.provider != CUDA and any(CUDA in str(p) for p in chosen):
            log.warning(
                "ONNX Runtime has the CUDA provider but could not start it (see its log): "
                "OCR runs on the CPU"
            )
        det_provider = self._det.get_providers()[0] if self._det is not None else self.provider
        if det_provider != self.provider:  # pragma: no cover - odd installs
            log.warning(
                "OCR detection runs on %s, recognition on %s",
                det_provider,
                self.provider,
            )
        log.info(
            "ONNX OCR engine on %s (%d intra-op thread(s) per session; det %s, rec %s %s)",
            self.provider,
            threads,
            det_path.name if det_path is not None else "none",
            REC_PACKAGE,
            metadata.version(REC_PACKAGE),
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
        """Text lines on the page, as rotated rectangles in page pixels."""
        if self._det is None:
            raise OcrUnavailable("this ONNX OCR engine was built without its detector")
        cv2 = self._cv2
        h, w = gray.shape
        scale = min(self.det_max_side / max(h, w), max(1.0, self.det_min_side / min(h, w)))
        rh = max(32, round(h * scale / 32) * 32)
        rw = max(32, round(w * scale / 32) * 32)
        resized = cv2.resize(gray, (rw, rh), interpolation=cv2.INTER_LINEAR)
        x = resized.astype(np.float32) * np.float32(2 / 255) - np.float32(1)  # mean .5, std .5
        x = np.ascontiguousarray(np.broadcast_to(x, (1, 3, rh, rw)))
        prob = self._det.run(None, {self._det_input: x})[0][0, 0]
        mask = cv2.dilate((prob > self.det_threshold).astype(np.uint8), np.ones((2, 2), np.uint8))
        contours, _ = cv2.findContours(mask, cv2.RETR_LIST, cv2.CHAIN_APPROX_SIMPLE)
        sx, sy = w / rw, h / rh
        boxes: list[TextBox] = []
        for contour in contours[:1000]:
            rect = cv2.minAreaRect(contour)
            if min(rect[1]) < 3:
                continue
            score = _mean_inside(cv2, prob, cv2.boxPoints(rect))
            if score < self.box_threshold:
                continue
            (cx, cy), (bw, bh), angle = rect
            # Unclip: DB shrinks each text region by area * (1 - 0.4^2) / perimeter; grow the
            # rectangle back by area * ratio / perimeter on every side.
            grow = bw * bh * self.unclip_ratio / (2 * (bw + bh))
            bw, bh = bw + 2 * grow, bh + 2 * grow
            if min(bw, bh) < 5:
                continue
            corners = cv2.boxPoints(((cx, cy), (bw, bh), angle)).astype(np.float32)
            corners[:, 0] = np.clip(corners[:, 0] * sx, 0, w)
            corners[:, 1] = np.clip(corners[:, 1] * sy, 0, h)
            corners = _order_corners(corners)
            if _side(corners, 0, 1) <= 3 or _side(corners, 0, 3) <= 3:
                continue
            boxes.append(TextBox(corners=corners, score=score))
        return boxes

    # -- recognition ------------------------------------------------------------------------

    def read_boxes(
        self, gray: np.ndarray, boxes: list[TextBox]
    ) -> list[tuple[str, float, list[Word]]]:
        """Each box of ``gray`` read as one text line, batched: its text, its confidence (the
        mean probability of its characters, 0-1) and its words with boxes in page pixels."""
        _check_gray(gray)
        if not boxes:
            return []
        h, w = gray.shape
        return [
            (" ".join(line.text.split()), line.confidence, _split_words(line, w, h))
            for line in self._read(np.ascontiguousarray(gray), boxes)
        ]

    def _crop(self, gray: np.ndarray, box: TextBox) -> np.ndarray:
        """The line straightened and scaled to the recognizer's height, in [0, 1]."""
        cv2 = self._cv2
        c = box.corners
        width = max(_side(c, 0, 1), _side(c, 3, 2))
        height = max(_side(c, 0, 3), _side(c, 1, 2))
        out_w = max(16, round(width * REC_HEIGHT / max(height, 1.0)))
        target = np.array(
            [[0, 0], [out_w, 0], [out_w, REC_HEIGHT], [0, REC_HEIGHT]], dtype=np.float32
        )
        m = cv2.getPerspectiveTransform(c, target)
        line = cv2.warpPerspective(
            gray,
            m,
            (out_w, REC_HEIGHT),
            flags=cv2.INTER_AREA if height > REC_HEIGHT else cv2.INTER_LINEAR,
            borderMode=cv2.BORDER_REPLICATE,
        )
        out: np.ndarray = line.astype(np.float32) * np.float32(1 / 255)
        return out

    def _read(self, gray: np.ndarray, boxes: list[TextBox]) -> list[_Line]:
        crops = [self._crop(gray, box) for box in boxes]
        # (line, start, end, word gap before): lines longer than the recognizer's reach are
        # read in pieces cut in the gaps between words.
        pieces = [
            (i, start, end, gap) for i, crop in enumerate(crops) for start, end, gap in _cuts(crop)
        ]
        # Pieces are batched only with pieces of the same padded width: the recognizer's
        # sequence layers see the padding, and a wide white margin changes what they read.
        buckets: dict[int, list[tuple[int, int, int, bool]]] = {}
        for piece in pieces:
            padded = -(-(piece[2] - piece[1]) // REC_WIDTH_STEP) * REC_WIDTH_STEP
            buckets.setdefault(min(REC_MAX_WIDTH, padded), []).append(piece)
        batches = [
            (padded, group[first : first + self.rec_batch])
            for padded, group in sorted(buckets.items())
            for first in range(0, len(group), self.rec_batch)
        ]
        decoded: dict[tuple[int, int], tuple[bool, list[tuple[str, float, float]]]] = {}
        for padded, batch in batches:
            x = np.ones((len(batch), 3, REC_HEIGHT, padded), dtype=np.float32)  # white
            for row, (i, start, end, _) in enumerate(batch):
                x[row, :, :, : end - start] = crops[i][:, start:end]
            log_probs = self._rec.run(None, {self._rec_input: x})[0]  # T x N x C
            for row, (i, start, end, gap) in enumerate(batch):
                steps = min(log_probs.shape[0], -(-(end - start) // REC_STRIDE))
                decoded[i, start] = gap, self._decode(log_probs[:steps, row, :], start)
        lines = []
        for i, box in enumerate(boxes):
            chars: list[tuple[str, float, float]] = []
            for (j, start), (gap, part) in sorted(decoded.items()):
                if j != i:
                    continue
                if gap and chars and part and not chars[-1][0].isspace():
                    chars.append((" ", float(start), 1.0))
                chars.extend(part)
            c = box.corners
            width = max(_side(c, 0, 1), _side(c, 3, 2))
            to_line = width / crops[i].shape[1]  # crop pixels -> page pixels along the line
            placed = tuple((ch, x * to_line, p) for ch, x, p in chars)
            visible = [p for ch, _, p in chars if not ch.isspace()]
            confidence = float(np.mean(visible)) if visible else 0.0
            text = "".join(ch for ch, _, _ in chars)
            lines.append(_Line(box, text, placed, width, confidence))
        return lines

    def _decode(self, log_probs: np.ndarray, offset: int) -> list[tuple[str, float, float]]:
        """Greedy CTC: best class per time step, runs collapsed, blanks dropped. Each
        character comes with its place (the centre of its run, in crop pixels, plus
        ``offset``) and its best probability."""
        best = log_probs.argmax(axis=1)
        prob = np.exp(log_probs.max(axis=1))
        chars: list[tuple[str, float, float]] = []
        t, steps = 0, len(best)
        while t < steps:
            k = int(best[t])
            end = t
            while end + 1 < steps and best[end + 1] == k:
                end += 1
            if k != 0:
                centre = offset + (t + end + 1) / 2 * REC_STRIDE
                chars.append((self.charset[k], centre, float(prob[t : end + 1].max())))
            t = end + 1
        return chars


def _cuts(crop: np.ndarray) -> list[tuple[int, int, bool]]:
    """Pieces ``(start, end, word gap before)`` of a line crop, none wider than the recognizer
    reads at once, cut in the middle of the widest blank run of columns near the limit."""
    width = crop.shape[1]
    if width <= REC_MAX_WIDTH:
        return [(0, width, False)]
    background = float(np.median(crop))
    blank = np.all(np.abs(crop - background) <= 0.25, axis=0)
    pieces: list[tuple[int, int, bool]] = []
    start, gap = 0, False
    while width - start > REC_MAX_WIDTH:
        lo, hi = start + REC_MAX_WIDTH // 2, start + REC_MAX_WIDTH
        best_len, best_mid = 0, hi
        run = 0
        for x in range(lo, hi):
            run = run + 1 if blank[x] else 0
            if run > best_len:
                best_len, best_mid = run, x - run // 2
        pieces.append((start, best_mid, gap))
        # A word gap is wider than a quarter of the line height; letters sit closer.
        start, gap = best_mid, best_len >= REC_HEIGHT // 4
    pieces.append((start, width, gap))
    return pieces


def _load_vocab(path: Path) -> tuple[str, ...]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        chars = tuple(str(ch) for ch in data["chars"])
    except (OSError, ValueError, KeyError, TypeError) as e:
        raise OcrUnavailable(f"cannot read the recognizer's vocabulary {path}: {e}") from e
    if len(chars) < 2 or chars[0] != "<blank>":
        raise OcrUnavailable(f"the recognizer's vocabulary {path} does not start with <blank>")
    return chars


def _side(c: np.ndarray, i: int, j: int) -> float:
    return float(np.hypot(*(c[i] - c[j])))


def _order_corners(pts: np.ndarray) -> np.ndarray:
    """Top-left, top-right, bottom-right, bottom-left of a rectangle that reads left to
    right (its longer side is its width, unless it is nearly square)."""
    centre = pts.mean(axis=0)
    # Corners by angle around the centre, clockwise in image coordinates (y down).
    order = np.argsort(np.arctan2(pts[:, 1] - centre[1], pts[:, 0] - centre[0]))
    p = pts[order]
    # Start at the corner whose next side is the "top": the side closest to horizontal, with
    # the box above its centre, so that text is read left to right.
    best, best_key = 0, (math.inf, math.inf)
    for s in range(4):
        a, b = p[s], p[(s + 1) % 4]
        dx, dy = b - a
        if dx <= 0:  # a top edge runs left to right
            continue
        key = (abs(math.atan2(dy, dx)), (a[1] + b[1]) / 2)
        if key < best_key:
            best, best_key = s, key
    return np.roll(p, -best, axis=0).astype(np.float32)


def _mean_inside(cv2: Any, prob: np.ndarray, corners: np.ndarray) -> float:
    """The mean of ``prob`` inside a polygon (DB's fast box score)."""
    h, w = prob.shape
    x0 = int(np.clip(np.floor(corners[:, 0].min()), 0, w - 1))
    x1 = int(np.clip(np.ceil(corners[:, 0].max()), 0, w - 1))
    y0 = int(np.clip(np.floor(corners[:, 1].min()), 0, h - 1))
    y1 = int(np.clip(np.ceil(corners[:, 1].max()), 0, h - 1))
    mask = np.zeros((y1 - y0 + 1, x1 - x0 + 1), dtype=np.uint8)
    shifted = (corners - np.array([x0, y0], dtype=np.float32)).round().astype(np.int32)
    cv2.fillPoly(mask, [shifted], 1)
    return float(cv2.mean(prob[y0 : y1 + 1, x0 : x1 + 1], mask)[0])


def page_result(lines: list[_Line], width: int, height: int) -> OcrResult:
    """A page's recognized lines as its OCR result: in reading order, split into words."""
    lines = _reading_order(lines)
    words: list[Word] = []
    for line in lines:
        words.extend(_split_words(line, width, height))
    text = "\n".join(" ".join(line.text.split()) for line in lines)
    mean = sum(word.confidence for word in words) / len(words) if words else 0.0
    return OcrResult(words=tuple(words), text=text, mean_confidence=mean)


def _reading_order(lines: list[_Line]) -> list[_Line]:
    """Top to bottom, and left to right among lines whose vertical spans overlap by at least
    half the shorter line's height."""

    def span(line: _Line) -> tuple[float, float, float]:
        c = line.box.corners
        return float(c[:, 1].min()), float(c[:, 1].max()), float(c[:, 0].min())

    rows: list[list[_Line]] = []
    for line in sorted(lines, key=lambda ln: (span(ln)[0] + span(ln)[1]) / 2):
        top, bottom, _ = span(line)
        if rows:
            r_top = min(span(x)[0] for x in rows[-1])
            r_bottom = max(span(x)[1] for x in rows[-1])
            overlap = min(bottom, r_bottom) - max(top, r_top)
            if overlap >= 0.5 * min(bottom - top, r_bottom - r_top):
                rows[-1].append(line)
                continue
        rows.append([line])
    return [line for row in rows for line in sorted(row, key=lambda ln: span(ln)[2])]


def _split_words(line: _Line, page_w: int, page_h: int) -> list[Word]:
    """The line's words, each boxed by the part of the line between the gaps around it."""
    chars = line.chars
    visible = [x for ch, x, _ in chars if not ch.isspace()]
    if not visible:
        return []
    # Half a character pitch: how far a glyph reaches either side of its CTC position.
    pitch = (visible[-1] - visible[0]) / (len(visible) - 1) if len(visible) > 1 else line.width
    half = 0.6 * pitch
    words: list[Word] = []
    group: list[tuple[str, float, float]] = []
    prev_gap = 0.0
    for i, item in enumerate((*chars, (" ", line.width, 1.0))):
        ch, x, _ = item
        if not ch.isspace():
            group.append(item)
            continue
        if group:
            left = max(prev_gap, group[0][1] - half, 0.0)
            right = min(x, group[-1][1] + half, line.width)
            text = "".join(g[0] for g in group)
            conf = 100.0 * float(np.mean([g[2] for g in group]))
            words.append(_word_box(line, text, left, right, conf, page_w, page_h))
            group = []
        prev_gap = x if i < len(chars) else prev_gap
    return words


def _word_box(
    line: _Line, text: str, left: float, right: float, conf: float, page_w: int, page_h: int
) -> Word:
    """The page-axis box of the stretch [left, right] (pixels along the line) of a line."""
    c = line.box.corners
    f0, f1 = left / line.width, right / line.width
    top = c[0] + (c[1] - c[0]) * np.float32(f0), c[0] + (c[1] - c[0]) * np.float32(f1)
    bottom = c[3] + (c[2] - c[3]) * np.float32(f0), c[3] + (c[2] - c[3]) * np.float32(f1)
    pts = np.array([*top, *bottom])
    x0 = int(np.clip(np.floor(pts[:, 0].min()), 0, page_w - 1))
    y0 = int(np.clip(np.floor(pts[:, 1].min()), 0, page_h - 1))
    x1 = int(np.clip(np.ceil(pts[:, 0].max()), x0 + 1, page_w))
    y1 = int(np.clip(np.ceil(pts[:, 1].max()), y0 + 1, page_h))
    return Word(
        text=text,
        left=x0,
        top=y0,
        right=x1,
        bottom=y1,
        confidence=max(0.0, min(100.0, conf)),
    )
