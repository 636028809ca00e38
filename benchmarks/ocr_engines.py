"""The OCR engines side by side: time per page and character error rate on generated pages.

Pages: CCCD card front and back (~1000 x 640), a birth certificate and an administrative
letter (A4, 300 dpi), for a few people; each captured with sensor noise, a touch of blur and
JPEG (no skew, so that the drawn line boxes stay true). Each engine reads every page once to
warm up, then ``--repeat`` times; printed per engine and page kind: the median time per page,
and the CER of each drawn line against the words read inside its box. The last table gives
each engine's median time as a ratio to the first engine's.

    python benchmarks/ocr_engines.py                       # tesseract vs onnx, 2 people
    python benchmarks/ocr_engines.py --people 4 --repeat 3
    python benchmarks/ocr_engines.py --engines onnx --onnx-threads 2
"""

from __future__ import annotations

import argparse
import io
import statistics
import sys
import time
from collections import defaultdict
from dataclasses import dataclass
from typing import Any

import numpy as np
from PIL import Image

from saoy.clients.simulator import docgen
from saoy.clients.simulator.scoring import levenshtein, line_reads
from saoy.core.documents.text import group_lines
from saoy.core.model import OcrResult
from saoy.core.ocr.engines import create_engine
from saoy.core.ocr.tesseract import OcrEngine, OcrUnavailable


@dataclass
class Page:
    kind: str
    gray: np.ndarray
    lines: tuple[docgen.TextLine, ...]


def pages(people: int) -> list[Page]:
    out = []
    for seed in range(people):
        person = docgen.random_person(seed)
        rendered = {
            "card_front": docgen.id_card_front(person, seed),
            "card_back": docgen.id_card_back(person, seed),
            "a4_birth": docgen.birth_certificate(person, seed),
            "a4_letter": docgen.admin_letter(person, seed),
        }
        for kind, doc in rendered.items():
            data = docgen.degrade(doc, noise=3.0, blur=0.4, jpeg_quality=90, seed=seed)
            assert isinstance(data, bytes)
            gray = np.asarray(Image.open(io.BytesIO(data)).convert("L"))
            out.append(Page(kind, gray, doc.lines))
    return out


def line_errors(lines: tuple[docgen.TextLine, ...], result: OcrResult) -> tuple[int, int]:
    """(edit errors, characters) over the drawn lines."""
    errors = chars = 0
    for line, read in zip(lines, line_reads(lines, group_lines(result.words)), strict=True):
        truth = " ".join(line.text.split())
        errors += levenshtein(truth, read)
        chars += len(truth)
    return errors, chars


def measure(engine: OcrEngine, corpus: list[Page], repeat: int) -> dict[str, Any]:
    times: dict[str, list[float]] = defaultdict(list)
    errors: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    for page in corpus:
        engine.recognize(page.gray)  # warm-up (first-run allocations, CUDA kernels)
        result = None
        for _ in range(repeat):
            t0 = time.perf_counter()
            result = engine.recognize(page.gray)
            times[page.kind].append(time.perf_counter() - t0)
        assert result is not None
        e, n = line_errors(page.lines, result)
        errors[page.kind][0] += e
        errors[page.kind][1] += n
    return {"times": times, "errors": errors}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--engines", default="tesseract,onnx")
    parser.add_argument("--people", type=int, default=2, help="people (4 pages each)")
    parser.add_argument("--repeat", type=int, default=1, help="timed reads per page")
    parser.add_argument("--onnx-threads", type=int, default=1)
    parser.add_argument("--onnx-providers", default="auto", choices=("auto", "cpu", "cuda"))
    args = parser.parse_args(argv)

    corpus = pages(args.people)
    print(
        f"{len(corpus)} pages ({args.people} people x card front, back, 2 A4), "
        f"{args.repeat} timed read(s) each"
    )
    results: dict[str, dict[str, Any]] = {}
    for name in args.engines.split(","):
        opts: dict[str, Any] = {}
        if name == "onnx":
            opts = {"threads": args.onnx_threads, "providers": args.onnx_providers}
        try:
            t0 = time.perf_counter()
            engine = create_engine(name, **opts)
            load = time.perf_counter() - t0
        except (OcrUnavailable, ValueError) as error:
            print(f"{name}: skipped ({error})")
            continue
        where = getattr(engine, "provider", "cpu, 1 thread")
        print(f"{name}: loaded in {load:.2f} s ({where})", flush=True)
        results[name] = measure(engine, corpus, args.repeat)
        engine.close()

    kinds = list(dict.fromkeys(p.kind for p in corpus))
    print(f"\n{'engine':10} {'page':11} {'median s':>9} {'CER %':>7} {'chars':>6}")
    for name, r in results.items():
        for kind in [*kinds, "all"]:
            if kind == "all":
                ts = [t for k in kinds for t in r["times"][k]]
                e = sum(r["errors"][k][0] for k in kinds)
                n = sum(r["errors"][k][1] for k in kinds)
            else:
                ts, (e, n) = r["times"][kind], r["errors"][kind]
            cer = 100 * e / max(1, n)
            print(f"{name:10} {kind:11} {statistics.median(ts):9.3f} {cer:7.2f} {n:6d}")
    if len(results) > 1:
        base_name, base = next(iter(results.items()))
        print(f"\nmedian time per page, as a ratio to {base_name}:")
        for name, r in list(results.items())[1:]:
            ratios = [
                statistics.median(r["times"][k]) / statistics.median(base["times"][k])
                for k in kinds
            ]
            cells = "  ".join(f"{k} {x:.2f}x" for k, x in zip(kinds, ratios, strict=True))
            print(f"  {name}: {cells}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
