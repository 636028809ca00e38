"""Where the ONNX OCR engine's time goes, per page of the reference dossier, for each provider
setting given: detection runs, recognition runs (with their distinct input shapes) and the rest
(pre- and post-processing in Python). One warm-up pass over the pages, then ``--repeat`` timed
passes over the same pages, so every input shape has been seen before it is timed.

    python benchmarks/ocr_onnx_profile.py cpu:1 cpu:0 cuda:1:DEFAULT cuda:1:HEURISTIC

A setting is ``PROVIDERS:THREADS[:CUDNN_SEARCH]`` (providers auto|cpu|cuda; threads 0 = one per
core; the cuDNN convolution algorithm search DEFAULT|HEURISTIC|EXHAUSTIVE on CUDA).
"""

from __future__ import annotations

import argparse
import io
import sys
import time
from typing import Any

import numpy as np
from PIL import Image

import saoy.core.ocr.onnx as ocr_onnx
from saoy.clients.simulator.docgen import reference_dossier


class _TimedSession:
    """An ONNX Runtime session whose ``run`` adds its wall time, calls and input shapes up."""

    def __init__(self, session: Any) -> None:
        self._session = session
        self.seconds = 0.0
        self.calls = 0
        self.shapes: set[tuple[int, ...]] = set()

    def run(self, outputs: Any, feed: dict[str, np.ndarray]) -> Any:
        self.shapes.add(next(iter(feed.values())).shape)
        start = time.perf_counter()
        try:
            return self._session.run(outputs, feed)
        finally:
            self.seconds += time.perf_counter() - start
            self.calls += 1

    def reset(self) -> None:
        self.seconds, self.calls, self.shapes = 0.0, 0, set()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._session, name)


def profile(setting: str, pages: list[np.ndarray], repeat: int) -> str:
    providers, threads, *search = setting.split(":")
    if search:
        ocr_onnx.CUDA_CONV_ALGO_SEARCH = search[0]
    engine = ocr_onnx.OnnxEngine(providers=providers, threads=int(threads))
    det = _TimedSession(engine._det)
    rec = _TimedSession(engine._rec)
    engine._det, engine._rec = det, rec  # type: ignore[assignment]
    for page in pages:
        engine.recognize(page)
    det.reset()
    rec.reset()
    start = time.perf_counter()
    for _ in range(repeat):
        for page in pages:
            engine.recognize(page)
    total = time.perf_counter() - start
    n = repeat * len(pages)
    other = total - det.seconds - rec.seconds
    provider = det.get_providers()[0].removesuffix("ExecutionProvider")
    engine.close()
    return (
        f"{setting:20s} {provider:5s} page {1000 * total / n:7.1f} ms | "
        f"det {1000 * det.seconds / n:7.1f} ms ({det.calls / n:.0f} runs, {len(det.shapes)} shapes)"
        f" | rec {1000 * rec.seconds / n:7.1f} ms ({rec.calls / n:.1f} runs, "
        f"{len(rec.shapes)} shapes) | other {1000 * other / n:6.1f} ms"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("settings", nargs="+", help="PROVIDERS:THREADS[:CUDNN_SEARCH]")
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args(argv)
    pages = [np.asarray(Image.open(io.BytesIO(d)).convert("L")) for _, d in reference_dossier()]
    print(f"{len(pages)} reference pages, {args.repeat} timed pass(es) after one warm-up")
    for setting in args.settings:
        print(profile(setting, pages, args.repeat), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
