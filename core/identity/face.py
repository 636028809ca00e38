"""Face detection (YuNet), alignment to the ArcFace 112×112 template, and SFace embeddings.

YuNet (2023mar) takes a 640×640 BGR image (0-255, no normalization) and answers, for each of
the strides 8, 16 and 32, one anchor per grid cell: ``cls`` and ``obj`` (already through a
sigmoid), ``bbox`` (cell-relative centre offset and log size, in strides) and ``kps`` (five
landmarks, cell-relative, in strides). :func:`decode_yunet` turns them into detections; the
score is the geometric mean ``sqrt(cls * obj)``, which keeps the scale of the usual YuNet
thresholds (0.6-0.9). The image is letterboxed into the 640×640 input (scaled to fit, padded
bottom/right), so coordinates map back with one division.

Landmarks come in image order: the eye on the image's left first (the subject's right eye in
an unmirrored camera frame), the other eye, the nose tip, then the mouth corners in the same
left-to-right order.

SFace takes the aligned 112×112 face as RGB 0-255 (its graph subtracts 127.5 and scales by
1/128 itself) and answers a 128-d feature; the similarity of two faces is the cosine of their
features.
"""

from __future__ import annotations

import io
from dataclasses import dataclass

import cv2
import numpy as np
from PIL import Image, ImageOps

from saoy.core.errors import InvalidInput, TooLarge
from saoy.core.identity.models import FaceModels
from saoy.core.pages.admission import sniff

INPUT_SIZE = 640
STRIDES = (8, 16, 32)
EMBEDDING_SIZE = 128
# The ArcFace / SFace alignment template: where the five landmarks of a frontal face sit in the
# 112×112 crop (image-left eye, image-right eye, nose tip, image-left and image-right mouth).
TEMPLATE_112 = np.array(
    [
        [38.2946, 51.6963],
        [73.5318, 51.5014],
        [56.0252, 71.7366],
        [41.5493, 92.3655],
        [70.7299, 92.2041],
    ],
    dtype=np.float32,
)
MiB = 1024 * 1024


@dataclass(frozen=True)
class FaceConfig:
    """Thresholds of the face pipeline; the defaults are the calibrated ones (see
    :mod:`saoy.core.identity`)."""

    detect_threshold: float = 0.5
    """Lowest detection score kept at all (candidates for "two faces")."""
    min_face_score: float = 0.8
    """Lowest score accepted for *the* face of a frame: below it the face is covered,
    blurred or too dark to trust."""
    nms_iou: float = 0.3
    min_face_px: int = 100
    """Smallest accepted inter-ocular distance times 2.5 (about the face width), in pixels."""
    second_face_ratio: float = 0.35
    """Another face at least this fraction of the main face's width means two people."""
    match_threshold: float = 0.363
    """Cosine similarity from which two faces are the same person (see
    :mod:`saoy.core.identity`)."""
    max_image_bytes: int = 8 * MiB
    max_pixels: int = 24_000_000


@dataclass(frozen=True)
class Detection:
    """One face YuNet found: box (x, y, width, height), five landmarks (5×2), score 0-1."""

    box: tuple[float, float, float, float]
    landmarks: np.ndarray
    score: float

    @property
    def width(self) -> float:
        return self.box[2]

    @property
    def area(self) -> float:
        return self.box[2] * self.box[3]

    @property
    def eye_distance(self) -> float:
        return float(np.linalg.norm(self.landmarks[1] - self.landmarks[0]))


@dataclass(frozen=True)
class Face:
    """A face ready to compare: where it was found and its unit-length SFace embedding."""

    detection: Detection
    embedding: np.ndarray  # float32 (128,), L2-normalized

    def similarity(self, other: Face) -> float:
        return cosine(self.embedding, other.embedding)


def cosine(a: np.ndarray, b: np.ndarray) -> float:
    """Cosine similarity of two feature vectors (1: same direction, 0: unrelated)."""
    na, nb = float(np.linalg.norm(a)), float(np.linalg.norm(b))
    if na == 0.0 or nb == 0.0:
        return 0.0
    return float(np.dot(a, b) / (na * nb))


def decode_image(
    data: bytes, *, what: str, field: str, max_bytes: int, max_pixels: int
) -> np.ndarray:
    """A JPEG or PNG file as an upright BGR uint8 array; InvalidInput / TooLarge otherwise.

    Size and pixel caps are checked on the header, before the full decode."""
    if not data:
        raise InvalidInput(f"Ảnh trống / The {what} image is empty", field=field)
    if len(data) > max_bytes:
        raise TooLarge(
            f"Ảnh quá lớn / The {what} image is too large ({len(data) / MiB:.1f} MiB, at most"
            f" {max_bytes / MiB:.0f} MiB)",
            field=field,
        )
    fmt = sniff(data)
    if fmt not in ("jpeg", "png"):
        raise InvalidInput(
            f"Định dạng ảnh không hỗ trợ / The {what} image must be JPEG or PNG", field=field
        )
    try:
        opened = Image.open(io.BytesIO(data), formats=["JPEG" if fmt == "jpeg" else "PNG"])
        if opened.width * opened.height > max_pixels:
            raise TooLarge(
                f"Ảnh quá lớn / The {what} image has too many pixels"
                f" ({opened.width}×{opened.height})",
                field=field,
            )
        opened.load()
        im = ImageOps.exif_transpose(opened).convert("RGB")
    except TooLarge:
        raise
    except Exception:  # untrusted input: any decoder failure means a damaged file
        raise InvalidInput(
            f"Ảnh bị hỏng / The {what} image is damaged or cut off: capture it again",
            field=field,
        ) from None
    return np.ascontiguousarray(np.asarray(im)[:, :, ::-1])


def letterbox(image: np.ndarray, size: int = INPUT_SIZE) -> tuple[np.ndarray, float]:
    """Scale ``image`` to fit ``size``×``size`` and pad bottom/right with black; the scale."""
    h, w = image.shape[:2]
    scale = min(size / w, size / h)
    nw, nh = max(1, round(w * scale)), max(1, round(h * scale))
    interp = cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR
    resized = cv2.resize(image, (nw, nh), interpolation=interp)
    canvas = np.zeros((size, size, 3), dtype=np.uint8)
    canvas[:nh, :nw] = resized
    return canvas, scale


def nms(boxes: np.ndarray, scores: np.ndarray, iou: float) -> list[int]:
    """Greedy non-maximum suppression over (x, y, w, h) boxes; indices kept, best first."""
    order = np.argsort(-scores)
    x1, y1 = boxes[:, 0], boxes[:, 1]
    x2, y2 = x1 + boxes[:, 2], y1 + boxes[:, 3]
    areas = boxes[:, 2] * boxes[:, 3]
    keep: list[int] = []
    while order.size:
        i = int(order[0])
        keep.append(i)
        rest = order[1:]
        w = np.clip(np.minimum(x2[i], x2[rest]) - np.maximum(x1[i], x1[rest]), 0, None)
        h = np.clip(np.minimum(y2[i], y2[rest]) - np.maximum(y1[i], y1[rest]), 0, None)
        inter = w * h
        overlap = inter / (areas[i] + areas[rest] - inter + 1e-9)
        order = rest[overlap <= iou]
    return keep


def decode_yunet(
    outputs: dict[str, np.ndarray],
    threshold: float,
    nms_iou: float,
    size: int = INPUT_SIZE,
) -> list[Detection]:
    """Detections in input-image pixels from YuNet's twelve outputs, best score first."""
    boxes, points, scores = [], [], []
    for stride in STRIDES:
        cols = size // stride
        cls = np.clip(outputs[f"cls_{stride}"][0, :, 0], 0.0, 1.0)
        obj = np.clip(outputs[f"obj_{stride}"][0, :, 0], 0.0, 1.0)
        score = np.sqrt(cls * obj)
        hit = np.nonzero(score >= threshold)[0]
        if hit.size == 0:
            continue
        col = (hit % cols).astype(np.float32)
        row = (hit // cols).astype(np.float32)
        bbox = outputs[f"bbox_{stride}"][0, hit]
        kps = outputs[f"kps_{stride}"][0, hit].reshape(-1, 5, 2)
        cx = (col + bbox[:, 0]) * stride
        cy = (row + bbox[:, 1]) * stride
        w = np.exp(bbox[:, 2]) * stride
        h = np.exp(bbox[:, 3]) * stride
        boxes.append(np.stack([cx - w / 2, cy - h / 2, w, h], axis=1))
        grid = np.stack([col, row], axis=1)[:, None, :]
        points.append((kps + grid) * stride)
        scores.append(score[hit])
    if not boxes:
        return []
    all_boxes = np.concatenate(boxes)
    all_points = np.concatenate(points)
    all_scores = np.concatenate(scores)
    return [
        Detection(
            box=tuple(float(v) for v in all_boxes[i]),  # type: ignore[arg-type]
            landmarks=all_points[i].astype(np.float32),
            score=float(all_scores[i]),
        )
        for i in nms(all_boxes, all_scores, nms_iou)
    ]


def align(image: np.ndarray, landmarks: np.ndarray) -> np.ndarray:
    """The 112×112 face crop: the similarity transform (rotation, uniform scale, shift) that
    best maps the five landmarks onto :data:`TEMPLATE_112`, applied to ``image``."""
    matrix, _ = cv2.estimateAffinePartial2D(
        landmarks.astype(np.float32), TEMPLATE_112, method=cv2.LMEDS
    )
    if matrix is None:  # degenerate landmarks (all on one point)
        raise InvalidInput(
            "Không căn chỉnh được khuôn mặt / The face could not be aligned: look at the camera",
            reason="FACE_NOT_ALIGNABLE",
        )
    return cv2.warpAffine(image, matrix, (112, 112), flags=cv2.INTER_LINEAR)


class FaceEngine:
    """Detect, align and embed with sessions created once; safe to share between threads
    (ONNX Runtime's ``run`` is thread-safe and nothing else here holds state)."""

    def __init__(self, models: FaceModels, config: FaceConfig | None = None) -> None:
        self.models = models
        self.config = config or FaceConfig()
        self._det_outputs = [o.name for o in models.detector.get_outputs()]

    @classmethod
    def load(
        cls, config: FaceConfig | None = None, providers: str = "auto", threads: int = 0
    ) -> FaceEngine:
        return cls(FaceModels.load(providers, threads), config)

    @property
    def provider(self) -> str:
        return self.models.provider

    def detect(self, image: np.ndarray, threshold: float | None = None) -> list[Detection]:
        """Every face above ``threshold`` (default: the config's), in image pixels, best
        score first."""
        canvas, scale = letterbox(image)
        blob = canvas.transpose(2, 0, 1)[None].astype(np.float32)
        raw = self.models.detector.run(self._det_outputs, {"input": blob})
        found = decode_yunet(
            dict(zip(self._det_outputs, raw, strict=True)),
            self.config.detect_threshold if threshold is None else threshold,
            self.config.nms_iou,
        )
        return [
            Detection(
                box=(d.box[0] / scale, d.box[1] / scale, d.box[2] / scale, d.box[3] / scale),
                landmarks=d.landmarks / scale,
                score=d.score,
            )
            for d in found
        ]

    def embed(self, image: np.ndarray, detection: Detection) -> np.ndarray:
        """The unit-length SFace embedding of the face at ``detection``."""
        crop = align(image, detection.landmarks)
        blob = crop[:, :, ::-1].transpose(2, 0, 1)[None].astype(np.float32)  # BGR → RGB
        (feature,) = self.models.recognizer.run(None, {"data": blob})
        vec = feature[0].astype(np.float32)
        norm = float(np.linalg.norm(vec))
        return vec / norm if norm > 0 else vec

    def face(self, image: np.ndarray, detection: Detection) -> Face:
        return Face(detection, self.embed(image, detection))

    def single_face(self, image: np.ndarray, *, what: str, field: str) -> Detection:
        """The one face of a live frame, or the precise reason there is not exactly one usable
        face (InvalidInput with reason NO_FACE, MULTIPLE_FACES, FACE_TOO_SMALL, FACE_UNCLEAR)."""
        cfg = self.config
        found = self.detect(image)
        if not found:
            raise InvalidInput(
                f"Không thấy khuôn mặt / No face in the {what}: look straight at the camera,"
                " in good light",
                reason="NO_FACE",
                field=field,
            )
        main = max(found, key=lambda d: d.area)
        others = [
            d for d in found if d is not main and d.width >= cfg.second_face_ratio * main.width
        ]
        if others:
            raise InvalidInput(
                f"Có {len(others) + 1} khuôn mặt / {len(others) + 1} faces in the {what}: only"
                " the citizen may stand in front of the camera",
                reason="MULTIPLE_FACES",
                field=field,
            )
        if main.eye_distance * 2.5 < cfg.min_face_px:
            raise InvalidInput(
                f"Khuôn mặt quá nhỏ / The face in the {what} is too small"
                f" ({main.eye_distance * 2.5:.0f} px wide, at least {cfg.min_face_px}):"
                " come closer to the camera",
                reason="FACE_TOO_SMALL",
                field=field,
            )
        if main.score < cfg.min_face_score:
            raise InvalidInput(
                f"Khuôn mặt bị che hoặc mờ / The face in the {what} is covered, blurred or too"
                f" dark (detection score {main.score:.2f}): remove glasses, mask or hat and"
                " face the light",
                reason="FACE_UNCLEAR",
                field=field,
            )
        return main

    def card_face(self, image: np.ndarray, field: str = "card.data") -> Detection:
        """The photo on an ID card image: the largest face YuNet finds on it."""
        found = self.detect(image)
        if not found:
            raise InvalidInput(
                "Không thấy ảnh chân dung trên thẻ / No portrait found on the ID card: place"
                " the front of the card flat on the scanner",
                reason="NO_FACE_ON_CARD",
                field=field,
            )
        main = max(found, key=lambda d: d.area)
        if main.score < self.config.min_face_score or main.eye_distance < 12:
            raise InvalidInput(
                "Ảnh chân dung trên thẻ không rõ / The portrait on the ID card is unclear:"
                " clean the card and scan it again",
                reason="CARD_FACE_UNCLEAR",
                field=field,
            )
        return main
