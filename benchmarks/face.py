"""Face pipeline: time per frame and per authentication, and score distributions.

Times (medians over N runs after a warm-up, compared in one run as ratios): detection alone,
detect + align + embed per 960-pixel camera frame, and one whole authentication (card + 3
frames + verdict). Scores: cosine similarity of every genuine and impostor pair among the
available photographs, with the chosen threshold's false accept and false reject rates on this
(small) set. Photos: the face_recognition test images (``make face-photos``) or
SAOY_FACE_PHOTOS; ``skimage.data.astronaut()`` joins the impostors when scikit-image is
installed.

    python benchmarks/face.py --runs 20
    python benchmarks/face.py --runs 20 --providers cpu --threads 1
"""

from __future__ import annotations

import argparse
import itertools
import os
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
from PIL import Image

from saoy.clients.simulator import docgen, faces
from saoy.core.identity.authenticate import Authentication
from saoy.core.identity.face import FaceEngine, decode_image
from saoy.core.identity.liveness import Direction

REPO = Path(__file__).resolve().parent.parent
PHOTOS = REPO / ".cache" / "face_recognition" / "tests" / "test_images"
# Independent photographs only: the partial-face crops repeat obama.jpg, 32bit.png obama2.jpg.
PEOPLE = {"obama": ("obama.jpg", "obama2.jpg", "obama3.jpg"), "biden": ("biden.jpg",)}


def _bgr(data: bytes) -> np.ndarray:
    return decode_image(data, what="photo", field="photo", max_bytes=1 << 30, max_pixels=1 << 30)


def _median_ms(fn: Callable[[], object], runs: int) -> float:
    fn()
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times) * 1000


def _frame(photo: Image.Image, side: int = 960) -> Image.Image:
    scale = side / max(photo.size)
    return photo.resize((round(photo.width * scale), round(photo.height * scale)))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=10)
    parser.add_argument("--providers", default="auto", choices=["auto", "cpu", "cuda"])
    parser.add_argument("--threads", type=int, default=0, help="ONNX Runtime intra-op threads")
    args = parser.parse_args(argv)

    where = Path(os.environ.get("SAOY_FACE_PHOTOS", PHOTOS))
    if not (where / "obama.jpg").is_file():
        print(f"photos missing in {where}: run `make face-photos`", file=sys.stderr)
        return 2
    start = time.perf_counter()
    engine = FaceEngine.load(providers=args.providers, threads=args.threads)
    print(f"models loaded in {time.perf_counter() - start:.2f} s on {engine.provider}")

    # --- scores ---
    embeddings: dict[str, list[np.ndarray]] = {}
    for person, names in PEOPLE.items():
        for name in names:
            image = _bgr((where / name).read_bytes())
            det = engine.single_face(image, what="photo", field="photo")
            embeddings.setdefault(person, []).append(engine.embed(image, det))
    try:
        from skimage import data as skdata

        image = np.ascontiguousarray(skdata.astronaut()[:, :, ::-1])
        det = engine.single_face(image, what="photo", field="photo")
        embeddings["astronaut"] = [engine.embed(image, det)]
    except ImportError:
        pass
    genuine = [
        float(a @ b) for vecs in embeddings.values() for a, b in itertools.combinations(vecs, 2)
    ]
    impostor = [
        float(a @ b)
        for p, q in itertools.combinations(embeddings, 2)
        for a in embeddings[p]
        for b in embeddings[q]
    ]
    threshold = engine.config.match_threshold
    for label, scores in (("genuine", genuine), ("impostor", impostor)):
        print(
            f"{label:9s} pairs={len(scores):3d}  min={min(scores):.3f}"
            f"  median={statistics.median(scores):.3f}  max={max(scores):.3f}"
        )
    far = sum(s >= threshold for s in impostor) / len(impostor)
    frr = sum(s < threshold for s in genuine) / len(genuine)
    print(
        f"threshold={threshold:.3f}  FAR={far:.3f} ({len(impostor)} impostor pairs)"
        f"  FRR={frr:.3f} ({len(genuine)} genuine pairs)"
        f"  margin: {min(genuine) - threshold:+.3f} / {threshold - max(impostor):+.3f}"
    )

    # --- timings ---
    live = Image.open(where / "obama3.jpg").convert("RGB")
    frame = _frame(live)
    frame_bgr = _bgr(faces.jpeg(frame))
    lm = engine.single_face(frame_bgr, what="f", field="f").landmarks

    def detect() -> None:
        engine.detect(frame_bgr)

    def detect_align_embed() -> None:
        engine.embed(frame_bgr, engine.single_face(frame_bgr, what="f", field="f"))

    card_photo = Image.open(where / "obama.jpg").convert("RGB")
    box = engine.single_face(_bgr((where / "obama.jpg").read_bytes()), what="c", field="c").box
    card = faces.jpeg(
        faces.card_with_photo(
            docgen.id_card_front(docgen.random_person(1), 1).image, card_photo, box
        )
    )
    turn = [faces.jpeg(faces.turned_head(frame, lm, d)) for d in (0, 15, 35)]

    def authenticate() -> None:
        attempt = Authentication(engine, choose=lambda: Direction.LEFT)
        attempt.card(card)
        now = time.time()
        for i, data in enumerate(turn):
            attempt.frame(data, now + 0.1 * (i + 1))
        attempt.finish()

    t_detect = _median_ms(detect, args.runs)
    t_frame = _median_ms(detect_align_embed, args.runs)
    t_auth = _median_ms(authenticate, args.runs)
    print(f"detect                      {t_detect:7.1f} ms   (frame {frame.width}x{frame.height})")
    print(f"detect+align+embed / frame  {t_frame:7.1f} ms   ({t_frame / t_detect:.2f}x detect)")
    print(
        f"authentication (card+3 fr.) {t_auth:7.1f} ms   ({t_auth / t_frame:.2f}x one frame;"
        " includes JPEG decoding and the moiré cue)"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
