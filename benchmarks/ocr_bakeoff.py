"""The OCR engines side by side on the same pages: accuracy and CPU cost, one table.

Engines (each where it is installed): ``cascade`` (Tesseract reads the page, the ONNX line
recognizer reads again the words it is unsure of, :mod:`saoy.core.ocr.cascade`), ``tesseract``
(Tesseract alone, Debian's ``vie`` model: the default), ``tesseract-script`` (Tesseract,
Debian's ``script/Vietnamese`` model from ``tesseract-ocr-script-viet``), ``trueocr`` (the
trueocr package's ONNX models, :mod:`saoy.core.ocr.trueocr`) and ``onnx`` (PP-OCRv4 detection
and the asterocr recognizer, :mod:`saoy.core.ocr.onnx`). Each reads every page of:

- the ``docgen`` corpus of ``benchmarks/accuracy.py`` (cards front and back, birth certificates
  at 200 dpi, bad input, turned pages), read and analysed as ``accuracy.py`` does;
- the ``templates`` corpus (cards drawn from the official templates, A4 letters and transcripts
  with a ruled table) when ``saoy.clients.simulator.corpus`` provides it;
- A4 pages at 300 dpi (a letter and a birth certificate per person, captured as accuracy.py
  captures) and the reference dossier of ``docgen.reference_dossier`` (card front and back, two
  A4 pages at 300 dpi), for the cost of a dossier.

Printed per engine and corpus: CER (character error rate of each drawn line against the words
read inside its box) on card lines, on A4 text, on table cells and on MRZ lines; the exact-match
rate of ID-card fields (and of birth-certificate fields) after document analysis; and the CPU
time of OCR (``time.process_time``, one thread: ``OMP_THREAD_LIMIT=1`` for Tesseract, one
intra-op thread for ONNX Runtime) per card page and per A4 page, and per reference dossier.

    python benchmarks/ocr_bakeoff.py                          # every engine, 20 cards
    python benchmarks/ocr_bakeoff.py --cards 12 --engines tesseract,onnx,cascade
    python benchmarks/ocr_bakeoff.py --cards 40 --engines tesseract,trueocr --corpus both
"""

from __future__ import annotations

import os

# One thread per engine, for CPU times that compare: Tesseract reads this when it loads.
os.environ.setdefault("OMP_THREAD_LIMIT", "1")

import argparse
import io
import random
import statistics
import sys
import time
from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parent))
import accuracy

from saoy.clients.simulator import docgen
from saoy.clients.simulator.scoring import levenshtein, line_reads
from saoy.core.documents import DocumentReader, judge
from saoy.core.documents.text import group_lines
from saoy.core.model import OcrResult
from saoy.core.ocr.engines import create_engine
from saoy.core.ocr.tesseract import OcrEngine, OcrUnavailable

ENGINES: dict[str, tuple[str, dict[str, Any]]] = {
    "cascade": ("cascade", {"threads": 1, "providers": "cpu"}),
    "tesseract": ("tesseract", {"languages": "vie"}),
    "tesseract-script": ("tesseract", {"languages": "Vietnamese"}),
    "trueocr": ("trueocr", {"threads": 1}),
    "onnx": ("onnx", {"threads": 1, "providers": "cpu"}),
}
BUCKETS = ("card", "a4", "table", "mrz")


class Metered(OcrEngine):
    """An engine whose every ``recognize`` adds its CPU time to ``seconds``."""

    def __init__(self, engine: OcrEngine) -> None:
        self.engine = engine
        self.name = engine.name
        self.seconds = 0.0

    def recognize(self, gray: np.ndarray) -> OcrResult:
        t0 = time.process_time()
        try:
            return self.engine.recognize(gray)
        finally:
            self.seconds += time.process_time() - t0

    def close(self) -> None:
        self.engine.close()


@dataclass
class Score:
    """What one engine did on one corpus."""

    errors: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    chars: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    fields: accuracy.Tally = field(default_factory=accuracy.Tally)
    cpu: dict[str, list[float]] = field(default_factory=lambda: defaultdict(list))

    def cer(self, bucket: str) -> str:
        n = self.chars[bucket]
        return f"{100 * self.errors[bucket] / n:6.2f}" if n else "   n/a"

    def rate(self, prefix: str) -> str:
        hits, total = self.fields.rate(lambda k: k.startswith(prefix))
        return f"{100 * hits / total:6.1f}" if total else "   n/a"

    def ms(self, kind: str) -> str:
        times = self.cpu[kind]
        return f"{1000 * statistics.mean(times):6.0f}" if times else "   n/a"


def bucket_of(page_kind: str, role: str) -> str:
    if role == "mrz":
        return "mrz"
    if role.startswith(("table", "cell")):
        return "table"
    return "card" if page_kind.startswith("cccd") else "a4"


def page_group(kind: str) -> str:
    return "card" if kind.startswith("cccd") else "a4"


def add_lines(score: Score, kind: str, lines: Iterable[Any], result: OcrResult) -> None:
    lines = list(lines)
    for line, read in zip(lines, line_reads(lines, group_lines(result.words)), strict=True):
        truth = " ".join(line.text.split())
        bucket = bucket_of(kind, getattr(line, "role", ""))
        score.errors[bucket] += levenshtein(truth, read)
        score.chars[bucket] += len(truth)


def score_samples(
    engine: Metered, reader: DocumentReader, samples: Iterable[accuracy.Sample]
) -> Score:
    """Every page read and analysed as ``accuracy.py`` reads it; CER per bucket, fields after
    the dossier's analysis, OCR CPU time per card and A4 page (pages with drawn lines; a
    deliberately bad capture, which the kiosk is asked to redo, counts for fields only)."""
    score = Score()
    for sample in samples:
        reads: list[accuracy.Read] = []
        kept: list[accuracy.Page] = []
        for page in sample.pages:
            before = engine.seconds
            read = accuracy.read_page(engine, reader, page, len(reads), sample.today, False)
            assert not isinstance(read, str)
            if page.lines and not getattr(page, "bad_capture", False):
                score.cpu[page_group(page.kind)].append(engine.seconds - before)
                add_lines(score, page.kind, page.lines, read.on_capture)
            reads.append(read)
            kept.append(page)
        analysis = judge([read.analysis for read in reads], sample.today)
        for page, got in zip(kept, analysis.pages, strict=True):
            values = accuracy.extracted(got)
            group = accuracy.group_of(page)
            for name, truth in page.fields.items():
                score.fields.add(f"{group}:{name}", values.get(name) == truth)
    return score


def a4_pages(people: int, seed: int) -> Iterator[tuple[str, np.ndarray, Any]]:
    """A letter and a birth certificate per person at 300 dpi, captured as accuracy.py
    captures (skew, blur, noise, shade, JPEG)."""
    rng = random.Random(seed)
    for i in range(people):
        person = docgen.random_person(seed * 1000 + 300 + i)
        for j, rendered in enumerate(
            (docgen.admin_letter(person, i), docgen.birth_certificate(person, i))
        ):
            image, lines = accuracy.capture(rendered, rng, seed * 1000 + 400 + 2 * i + j)
            yield "a4", np.asarray(image.convert("L")), lines


def score_pages(engine: Metered, pages: Iterable[tuple[str, np.ndarray, Any]]) -> Score:
    score = Score()
    for kind, gray, lines in pages:
        before = engine.seconds
        result = engine.recognize(np.ascontiguousarray(gray))
        score.cpu[page_group(kind)].append(engine.seconds - before)
        add_lines(score, kind, lines, result)
    return score


def dossier_seconds(engine: Metered, dossiers: list[list[np.ndarray]]) -> float:
    """Mean OCR CPU seconds per reference dossier (its four pages read once each)."""
    totals = []
    for pages in dossiers:
        before = engine.seconds
        for gray in pages:
            engine.recognize(gray)
        totals.append(engine.seconds - before)
    return statistics.mean(totals)


def reference_dossiers(count: int) -> list[list[np.ndarray]]:
    return [
        [
            np.ascontiguousarray(np.asarray(Image.open(io.BytesIO(data)).convert("L")))
            for _, data in docgen.reference_dossier(seed)
        ]
        for seed in range(count)
    ]


def templates_samples(cards: int, seed: int) -> list[accuracy.Sample] | str:
    """The templates corpus, or why it is not there."""
    try:
        from saoy.clients.simulator.corpus import templates_corpus  # type: ignore[import-not-found]
    except ImportError as e:
        return f"no templates corpus ({e})"
    return list(templates_corpus(cards, seed))


def build(name: str) -> Metered | str:
    factory, opts = ENGINES[name]
    try:
        return Metered(create_engine(factory, **opts))
    except (OcrUnavailable, ValueError, ImportError) as e:
        return f"not available: {e}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--cards", type=int, default=20, help="card front+back pairs")
    parser.add_argument("--a4", type=int, default=2, help="people with a 300 dpi letter + birth")
    parser.add_argument("--dossiers", type=int, default=2, help="reference dossiers timed")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--engines", default=",".join(ENGINES), help="comma-separated")
    parser.add_argument("--corpus", default="both", choices=("docgen", "templates", "both"))
    args = parser.parse_args(argv)
    names = [n for n in args.engines.split(",") if n]
    unknown = [n for n in names if n not in ENGINES]
    if unknown:
        parser.error(f"unknown engine(s) {', '.join(unknown)}: choose from {', '.join(ENGINES)}")

    t0 = time.perf_counter()
    corpora: dict[str, Callable[[Metered, DocumentReader], Score]] = {}
    if args.corpus in ("docgen", "both"):
        docgen_samples = list(accuracy.corpus(args.cards, args.seed))
        corpora["docgen"] = lambda e, r: score_samples(e, r, docgen_samples)
    if args.corpus in ("templates", "both"):
        found = templates_samples(args.cards, args.seed)
        if isinstance(found, str):
            print(f"templates corpus: skipped, {found}")
        else:
            corpora["templates"] = lambda e, r: score_samples(e, r, found)
    a4 = list(a4_pages(args.a4, args.seed))
    corpora["a4-300dpi"] = lambda e, r: score_pages(e, a4)
    dossiers = reference_dossiers(args.dossiers)
    print(
        f"corpora {', '.join(corpora)} and {len(dossiers)} reference dossier(s) made in "
        f"{time.perf_counter() - t0:.0f} s; OMP_THREAD_LIMIT={os.environ['OMP_THREAD_LIMIT']}",
        flush=True,
    )

    reader = DocumentReader()
    rows: list[tuple[str, str, Score]] = []
    per_dossier: dict[str, float] = {}
    for name in names:
        engine = build(name)
        if isinstance(engine, str):
            print(f"{name}: {engine}")
            continue
        try:
            for corpus_name, run in corpora.items():
                t1 = time.perf_counter()
                rows.append((name, corpus_name, run(engine, reader)))
                print(f"  {name} on {corpus_name}: {time.perf_counter() - t1:.0f} s", flush=True)
            per_dossier[name] = dossier_seconds(engine, dossiers)
        finally:
            engine.close()
    reader.close()

    print(
        "\nCER % (lower is better) by line kind; fields: exact-match %; "
        "OCR CPU ms per page (one thread)"
    )
    head = (
        f"{'engine':17}{'corpus':11}{'card':>7}{'A4':>7}{'table':>7}{'MRZ':>7}"
        f"{'CCCD fld':>9}{'birth fld':>10}{'ms/card':>8}{'ms/A4':>7}"
    )
    print(head)
    print("-" * len(head))
    for name, corpus_name, s in rows:
        print(
            f"{name:17}{corpus_name:11}{s.cer('card'):>7}{s.cer('a4'):>7}{s.cer('table'):>7}"
            f"{s.cer('mrz'):>7}{s.rate('cccd:'):>9}{s.rate('birth:'):>10}"
            f"{s.ms('card'):>8}{s.ms('a4'):>7}"
        )
    print("\nOCR CPU seconds per reference dossier (card front + back, two A4 at 300 dpi):")
    base = per_dossier.get("tesseract")
    for name, seconds in per_dossier.items():
        versus = f"  ({seconds / base:4.2f} x tesseract)" if base else ""
        print(f"  {name:17}{seconds:6.2f} s{versus}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
