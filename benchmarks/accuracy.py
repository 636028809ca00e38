"""Document-understanding accuracy on a generated corpus with ground truth.

The corpus: CCCD card fronts and backs (2021 chip card and 2024 card, several fonts, full
Vietnamese diacritics) captured with skew, blur, noise, uneven light and JPEG; some with a
deliberately broken MRZ, QR code, ID number or expiry; birth certificates (with and without
seal, some stamped "MẬT"); bad input (blank page, a photograph, a card half cut off); and
cards and pages placed turned 90°/180°/270°, which are to be turned upright and read. Every
OCR engine that ``create_engine`` knows is run ("onnx" when it is installed). Printed per
engine:

- CER: character error rate of each drawn line against the words OCR'd inside its box;
- field exact-match rate (CCCD fields; birth-certificate fields apart);
- type accuracy (document type, or the bad-input condition);
- broken-document detection rate (the broken dossier is not PASS) and false alarms (a
  valid dossier that is not PASS);
- time per page (OCR, and document analysis on top).

With ``--certify-path`` every page goes the way Certify takes it: admission, the quality gate
(a page it refuses counts as not passing, as the kiosk would be asked to rescan it), cropping
and deskewing, the page view (colour, seals lifted and QR codes painted over for OCR; its time
counts as analysis), OCR of the cleaned page, and analysis.

    python benchmarks/accuracy.py                # 40 cards, a few minutes on one core
    python benchmarks/accuracy.py --cards 100 --engines tesseract
    python benchmarks/accuracy.py --cards 20 --engines onnx --certify-path

Two corpora (``--corpus docgen|templates|both``, default both): ``docgen`` above, and
``templates``, drawn independently from the official card templates (2021 and 2024) and A4
letters and transcripts, captured by a flatbed, a tight-cropping kiosk scanner, an overhead
camera and a camera cropped to the page, plus bad captures (cut off, motion blur, glare) that
the quality gate should refuse (:mod:`saoy.clients.simulator.corpus`). For each corpus every
figure is also given per capture style and per card edition: field exact-match per field, valid
dossiers issued (every check PASS) and rejected (any FAIL), defective dossiers caught and caught
for the right reason (the check that names the defect), bad captures refused by the quality gate
and good captures refused, CER on card text, MRZ, letters and tables, and CPU ms per page
(process time). ``--json`` prints those figures as one JSON object (the text goes to stderr).
The template corpus prints half its machine-readable zones in OCR-B, the face of real cards;
``--zone-face ocr-b`` prints them all so (another draw of the corpus at the same seed).

    python benchmarks/accuracy.py --corpus templates --cards 16 --certify-path --engines tesseract
    python benchmarks/accuracy.py --corpus templates --seed 5 --certify-path --zone-face ocr-b
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import math
import random
import statistics
import sys
import time
from collections import defaultdict
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from datetime import date, timedelta
from typing import Any

import numpy as np
from PIL import Image

from saoy.clients.simulator import docgen, templates
from saoy.clients.simulator.corpus import Sample as TemplateSample
from saoy.clients.simulator.corpus import templates_corpus
from saoy.clients.simulator.scoring import levenshtein, line_reads
from saoy.core.documents import DocumentReader, PageAnalysis, analyze_view, judge, page_view
from saoy.core.documents.analysis import analyze_page, quarter_turns_upright, read_turned
from saoy.core.documents.text import group_lines
from saoy.core.model import AdmittedPage, OcrResult, Outcome
from saoy.core.ocr.engines import create_engine
from saoy.core.ocr.tesseract import OcrEngine, OcrUnavailable
from saoy.core.pages.admission import Limits, admit_decoded, quality_issues
from saoy.core.pages.imaging import PreparedPage, prepare, result_to_source, turned
from saoy.core.pipeline import reader_for

TODAY = date(2025, 6, 1)


@dataclass
class Page:
    """One captured page and what is true of it."""

    image: Image.Image  # RGB as captured (decoded from JPEG)
    lines: list[docgen.TextLine]  # drawn text with boxes in captured pixels (empty: no CER)
    kind: str  # expected type, or the bad-input condition ("blank", "no_text", "rotated")
    fields: dict[str, str] = field(default_factory=dict)
    data: bytes | None = None  # the file as captured (else the image is sent as JPEG 95)
    style: str = "docgen"  # the capture style
    layout: str = "card"  # "card" | "letter" | "table" | "birth" (for the CER by layout)
    bad_capture: bool = False  # a capture the quality gate should refuse


@dataclass
class Sample:
    name: str
    pages: list[Page]
    broken: str = ""  # what is wrong with it ("" for a valid dossier)
    expect: str = "pass"  # "pass" | "not_pass"
    today: date = TODAY  # the day it is checked on
    style: str = "docgen"  # the capture style (of the bad page, for a bad capture)
    edition: str = ""  # "2021" | "2024" for cards, "a4", "birth", or "" for bad input


def _dmy(d: date) -> str:
    return "Không thời hạn" if d.year == 9999 else d.strftime("%d/%m/%Y")


def _rotate_box(
    box: tuple[int, int, int, int], size: tuple[int, int], new: tuple[int, int], deg: float
) -> tuple[int, int, int, int]:
    """Where a box lands after ``Image.rotate(deg, expand=True)``."""
    w, h = size
    nw, nh = new
    a = math.radians(deg)
    cos, sin = math.cos(a), math.sin(a)
    xs, ys = [], []
    for x, y in ((box[0], box[1]), (box[2], box[1]), (box[0], box[3]), (box[2], box[3])):
        dx, dy = x - w / 2, y - h / 2
        xs.append(cos * dx + sin * dy + nw / 2)
        ys.append(-sin * dx + cos * dy + nh / 2)
    return (round(min(xs)), round(min(ys)), round(max(xs)), round(max(ys)))


def capture(rendered: docgen.Rendered, rng: random.Random, seed: int) -> tuple[Image.Image, list]:
    """Capture a render as a kiosk camera would, and carry its line boxes along."""
    skew = rng.uniform(-1.5, 1.5)
    blur = rng.choice((0.0, 0.3, 0.5, 0.8))
    noise = rng.uniform(1.5, 6.0)
    shade = rng.choice((0.0, 0.0, 0.2, 0.35))
    quality = rng.choice((70, 80, 90, 95))
    data = docgen.degrade(
        rendered,
        skew_deg=skew,
        blur=blur,
        noise=noise,
        shade=shade,
        jpeg_quality=quality,
        seed=seed,
    )
    assert isinstance(data, bytes)
    image = Image.open(io.BytesIO(data)).convert("RGB")
    lines = [
        replace(t, box=_rotate_box(t.box, rendered.image.size, image.size, skew))
        for t in rendered.lines
        if t.box[2] > t.box[0]
    ]
    return image, lines


def card_truth(person: docgen.Person, variant: str) -> tuple[dict[str, str], dict[str, str]]:
    front = {
        "id_number": person.id_number,
        "full_name": person.full_name.upper(),
        "date_of_birth": _dmy(person.date_of_birth),
        "sex": person.sex,
        "nationality": person.nationality,
    }
    back = {"issue_date": _dmy(person.issue_date), "mrz": "\n".join(docgen.mrz_lines(person))}
    if variant == "2021":
        front |= {
            "place_of_origin": person.place_of_origin,
            "place_of_residence": person.place_of_residence,
            "expiry_date": _dmy(person.expiry_date),
        }
    else:
        back |= {
            "place_of_residence": person.place_of_residence,
            "place_of_birth": person.place_of_origin,
            "expiry_date": _dmy(person.expiry_date),
        }
    return front, back


CARD_DEFECTS = (
    *(f"mrz:{d}" for d in docgen.MRZ_DEFECTS),
    "qr:other_person",
    "qr:damaged",
    *(f"id:{d}" for d in docgen.ID_DEFECTS),
    "expired",
)


def corpus(cards: int, seed: int) -> Iterator[Sample]:
    rng = random.Random(seed)
    for i in range(cards):
        person = docgen.random_person(seed * 1000 + i)
        variant = "2021" if i % 2 == 0 else "2024"
        defect = CARD_DEFECTS[(i // 2) % len(CARD_DEFECTS)] if i % 3 == 2 else ""
        if defect.startswith("id:"):
            person = docgen.broken_id_number(person, defect[3:])
        if defect == "expired":
            born = person.date_of_birth
            person = replace(
                person,
                issue_date=TODAY - timedelta(days=4000),
                expiry_date=TODAY - timedelta(days=rng.randrange(10, 900)),
            )
            assert born == person.date_of_birth
        front_kw: dict[str, Any] = {"variant": variant}
        back_kw: dict[str, Any] = {"variant": variant}
        if defect.startswith("mrz:"):
            back_kw["mrz"] = docgen.broken_mrz(person, defect[4:])
        if defect == "qr:other_person":
            other = docgen.random_person(seed * 1000 + i + 500)
            front_kw["qr_payload"] = docgen.cccd_qr_payload(other)
        if defect == "qr:damaged":
            front_kw["qr_damaged"] = True
        front = docgen.id_card_front(person, i, **front_kw)
        back = docgen.id_card_back(person, i, **back_kw)
        truth_front, truth_back = card_truth(person, variant)
        if defect.startswith("mrz:"):
            truth_back["mrz"] = "\n".join(back_kw["mrz"])
        pages = []
        for j, (rendered, kind, truth) in enumerate(
            ((front, "cccd_front", truth_front), (back, "cccd_back", truth_back))
        ):
            image, lines = capture(rendered, rng, seed * 1000 + 2 * i + j)
            pages.append(Page(image, lines, kind, truth))
        # Checked while the card is valid, unless it is the expired one.
        today = TODAY if defect == "expired" else person.issue_date + timedelta(days=30)
        today = min(today, person.expiry_date - timedelta(days=1)) if not defect else today
        expect = "not_pass" if defect else "pass"
        yield Sample(f"card {variant} #{i}", pages, defect, expect, today, edition=variant)

    for i in range(max(2, cards // 5)):
        person = docgen.random_person(seed * 1000 + 700 + i)
        seal = i % 4 != 1
        rendered = docgen.birth_certificate(person, i, dpi=200, seal=seal)
        broken = "" if seal else "no_seal"
        if i % 4 == 3:
            rendered = docgen.confidential_stamp(rendered, i)
            broken = "confidential"
        image, lines = capture(rendered, rng, seed * 1000 + 900 + i)
        truth = {k: v for k, v in rendered.fields.items() if k not in ("sex", "id_number")}
        yield Sample(
            f"birth #{i}",
            [Page(image, lines, "birth_certificate", truth, layout="birth")],
            broken,
            "not_pass" if broken else "pass",
            edition="birth",
        )

    person = docgen.random_person(seed * 1000 + 999)
    front = docgen.id_card_front(person, 1)
    back = docgen.id_card_back(person, 1)
    bad = [
        ("blank page", docgen.blank_page(seed=seed), "blank"),
        ("photo", docgen.scene_photo(seed), "no_text"),
        ("card half cut off", docgen.cut_off(front, 0.5), "cccd_front"),
        ("back cut off", docgen.cut_off(back, 0.55), "cccd_back"),
    ]
    for name, rendered, kind in bad:
        image = rendered.image.convert("RGB")
        yield Sample(name, [Page(image, [], kind, bad_capture=True)], name, "not_pass")
    # A card or page placed the wrong way round is turned upright and read like any other.
    for degrees in (90, 180, 270):
        yield Sample(
            f"card turned {degrees}°",
            [
                Page(docgen.rotated(front, degrees).image.convert("RGB"), [], "cccd_front"),
                Page(docgen.rotated(back, degrees).image.convert("RGB"), [], "cccd_back"),
            ],
        )
    birth = docgen.rotated(docgen.birth_certificate(person, 2, dpi=200), 180)
    yield Sample(
        "birth certificate turned 180°",
        [Page(birth.image.convert("RGB"), [], "birth_certificate")],
    )


def line_errors(page: Page, result: OcrResult) -> tuple[int, int, int, int]:
    """(errors, characters) over every drawn line, and the same without MRZ lines."""
    errors = chars = errors_text = chars_text = 0
    for line, read in zip(
        page.lines, line_reads(page.lines, group_lines(result.words)), strict=True
    ):
        e = levenshtein(" ".join(line.text.split()), read)
        errors += e
        chars += len(line.text)
        if line.role != "mrz":
            errors_text += e
            chars_text += len(line.text)
    return errors, chars, errors_text, chars_text


def extracted(page: PageAnalysis) -> dict[str, str]:
    out = {f.name: f.value for f in page.fields}
    if page.mrz is not None:
        out["mrz"] = "\n".join(page.mrz.lines)
    return out


@dataclass
class Tally:
    hits: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    total: dict[str, int] = field(default_factory=lambda: defaultdict(int))

    def add(self, key: str, ok: bool) -> None:
        self.total[key] += 1
        self.hits[key] += ok

    def rate(self, keys: Callable[[str], bool] = lambda k: True) -> tuple[int, int]:
        return (
            sum(v for k, v in self.hits.items() if keys(k)),
            sum(v for k, v in self.total.items() if keys(k)),
        )


def pct(hits: int, total: int) -> str:
    return f"{100 * hits / total:6.2f} % ({hits}/{total})" if total else "   n/a"


@dataclass
class Read:
    """One page read and analysed, and what it cost."""

    on_capture: OcrResult  # the words with boxes on the captured image (for the CER)
    analysis: PageAnalysis
    ocr_seconds: float
    analysis_seconds: float  # with the page view on the certify path


def group_of(page: Page) -> str:
    return "birth" if page.kind == "birth_certificate" else "cccd"


def read_page(
    engine: OcrEngine,
    reader: DocumentReader,
    page: Page,
    index: int,
    today: date,
    certify_path: bool,
) -> Read | str:
    """OCR and analyse a page, directly or the way Certify takes it (turned upright and read
    again when it was found turned); a quality-gate refusal's reason."""
    if not certify_path:
        rgb = np.ascontiguousarray(np.asarray(page.image))
        gray = np.ascontiguousarray(np.asarray(page.image.convert("L")))
        t0 = time.perf_counter()
        result = engine.recognize(gray)
        t1 = time.perf_counter()
        analysis = analyze_page(index, gray, rgb, result, today, reader)
        return Read(result, analysis, t1 - t0, time.perf_counter() - t1)
    data = page.data if page.data is not None else docgen.encode(page.image, "jpeg", 95)
    admitted, image = admit_decoded(0, data, Limits())
    prepared = prepare(admitted, image)
    issues = quality_issues(admitted, prepared)
    if issues:
        return issues[0].reason
    first = _read_prepared(engine, reader, admitted, prepared, index, today)
    ocr_seconds, analysis_seconds = first.ocr_seconds, first.analysis_seconds
    for turns in quarter_turns_upright(first.analysis):
        again = _read_prepared(engine, reader, admitted, turned(prepared, turns), index, today)
        ocr_seconds += again.ocr_seconds
        analysis_seconds += again.analysis_seconds
        upright = read_turned(first.analysis, again.analysis, turns)
        if upright is not None:
            return Read(again.on_capture, upright, ocr_seconds, analysis_seconds)
    return Read(first.on_capture, first.analysis, ocr_seconds, analysis_seconds)


def _read_prepared(
    engine: OcrEngine,
    reader: DocumentReader,
    admitted: AdmittedPage,
    prepared: PreparedPage,
    index: int,
    today: date,
) -> Read:
    t0 = time.perf_counter()
    view = page_view(admitted, prepared)
    t1 = time.perf_counter()
    result = engine.recognize(view.ocr_gray)
    t2 = time.perf_counter()
    analysis = analyze_view(index, view, result, today, reader_for(reader, result))
    t3 = time.perf_counter()
    return Read(result_to_source(result, prepared), analysis, t2 - t1, t1 - t0 + t3 - t2)


def run(
    engine: OcrEngine,
    reader: DocumentReader,
    samples: list[Sample],
    verbose: bool,
    certify_path: bool = False,
) -> list[dict[str, Any]]:
    """Read every sample, print the summary, and return one record per dossier (see
    :func:`breakdown`)."""
    records: list[dict[str, Any]] = []
    ocr_times: list[float] = []
    analysis_times: list[float] = []
    cer = [0, 0, 0, 0]
    fields = Tally()
    types = Tally()
    detected = Tally()
    refusals: dict[str, int] = defaultdict(int)
    misses: list[str] = []
    for sample in samples:
        reads: list[Read] = []
        kept = []  # the pages past the quality gate
        page_records: list[dict[str, Any]] = []
        for page in sample.pages:
            cpu0 = time.process_time()
            read = read_page(engine, reader, page, len(reads), sample.today, certify_path)
            page_records.append(
                {
                    "style": page.style,
                    "layout": page.layout,
                    "bad_capture": page.bad_capture,
                    "refused": read if isinstance(read, str) else "",
                    "cpu_ms": 1000 * (time.process_time() - cpu0),
                    "fields": {},
                    "cer": {},
                }
            )
            if isinstance(read, str):
                refusals[f"{page.kind}: {read}"] += 1
                if verbose:
                    misses.append(f"{sample.name}: refused at the quality gate ({read})")
                for name in page.fields:  # nothing was read
                    fields.add(f"{group_of(page)}:{name}", False)
                    page_records[-1]["fields"][name] = False
                continue
            ocr_times.append(read.ocr_seconds)
            analysis_times.append(read.analysis_seconds)
            reads.append(read)
            kept.append(page)
            for k, v in enumerate(line_errors(page, read.on_capture)):
                cer[k] += v
            page_records[-1]["cer"] = cer_by_role(page, read.on_capture)
        analysis = judge([read.analysis for read in reads], sample.today)
        read_records = [r for r in page_records if not r["refused"]]
        for page, got, record in zip(kept, analysis.pages, read_records, strict=True):
            kind = got.condition if got.condition != "ok" else got.document_type
            types.add(page.kind, kind == page.kind)
            values = extracted(got)
            for name, truth in page.fields.items():
                ok = values.get(name) == truth
                fields.add(f"{group_of(page)}:{name}", ok)
                record["fields"][name] = ok
                if not ok and verbose:
                    misses.append(f"{sample.name} {name}: {values.get(name)!r} != {truth!r}")
        passed = analysis.outcome is Outcome.PASS and len(kept) == len(sample.pages)
        records.append(
            {
                "name": sample.name,
                "style": sample.style,
                "edition": sample.edition,
                "expect": sample.expect,
                "defect": sample.broken,
                "outcome": analysis.outcome.value,
                "failed": [c.name for c in analysis.failed],
                "refused": any(r["refused"] for r in page_records),
                "pages": page_records,
            }
        )
        if sample.expect == "pass":
            detected.add("valid", passed)
            if not passed and verbose:
                reasons = "; ".join(c.reason for c in analysis.checks if c.outcome != "pass")
                misses.append(f"{sample.name} false alarm: {reasons}")
        else:
            detected.add(f"broken:{sample.broken}", not passed)
            if passed and verbose:
                misses.append(f"{sample.name} {sample.broken}: not detected")

    pages = len(ocr_times)
    path = ", certify path" if certify_path else ""
    print(f"engine {engine.name}{path}: {len(samples)} dossiers, {pages} pages read")
    if certify_path:
        refused = ", ".join(f"{k} ({n})" for k, n in sorted(refusals.items())) or "none"
        print(f"  refused at the quality gate {refused}")
    print(f"  CER, all drawn lines      {100 * cer[0] / max(1, cer[1]):6.2f} % of {cer[1]} chars")
    print(f"  CER, without MRZ lines    {100 * cer[2] / max(1, cer[3]):6.2f} % of {cer[3]} chars")
    print(f"  CCCD fields exact         {pct(*fields.rate(lambda k: k.startswith('cccd:')))}")
    for key in sorted(k for k in fields.total if k.startswith("cccd:")):
        print(f"      {key[5:]:<22}{pct(fields.hits[key], fields.total[key])}")
    print(f"  birth certificate fields  {pct(*fields.rate(lambda k: k.startswith('birth:')))}")
    print(f"  type accuracy             {pct(*types.rate())}")
    for key in sorted(types.total):
        if types.hits[key] != types.total[key]:
            print(f"      {key:<22}{pct(types.hits[key], types.total[key])}")
    print(f"  broken detected           {pct(*detected.rate(lambda k: k.startswith('broken:')))}")
    for key in sorted(k for k in detected.total if k.startswith("broken:")):
        if detected.hits[key] != detected.total[key]:
            print(f"      missed {key[7:]:<15}{pct(detected.hits[key], detected.total[key])}")
    passed_valid, total = detected.rate(lambda k: k == "valid")
    print(f"  valid dossiers passed     {pct(passed_valid, total)}  (the rest go to review)")
    print(
        f"  time per page             OCR {1000 * statistics.mean(ocr_times):.0f} ms"
        f" (median {1000 * statistics.median(ocr_times):.0f}),"
        f" analysis {1000 * statistics.mean(analysis_times):.0f} ms"
    )
    for line in misses[:60]:
        print("    ", line)
    return records


def cer_by_role(page: Page, result: OcrResult) -> dict[str, tuple[int, int]]:
    """(errors, characters) per kind of text: card text, MRZ, letter, table (a transcript's
    cells and the rest of its page alike)."""
    out: dict[str, list[int]] = {}
    for line, read in zip(
        page.lines, line_reads(page.lines, group_lines(result.words)), strict=True
    ):
        if line.role == "mrz":
            key = "mrz"
        elif page.layout in ("letter", "table", "birth"):
            key = page.layout
        else:
            key = "card"
        tally = out.setdefault(key, [0, 0])
        tally[0] += levenshtein(" ".join(line.text.split()), read)
        tally[1] += len(line.text)
    return {k: (v[0], v[1]) for k, v in out.items()}


# The checks whose FAIL names each defect (a bad capture: a quality-gate refusal).
RIGHT_REASONS: dict[str, tuple[str, ...]] = {
    "expired": ("card_not_expired",),
    "mrz_check": ("mrz_check_digits",),
    "confidential": ("decree_23_certifiable",),
    "no_seal": ("seal_present",),
    "qr:other_person": ("fields_agree", "qr_code"),
    "qr:damaged": ("qr_code",),
    "mrz:other_person": ("fields_agree",),
    **{f"mrz:{d}": ("mrz_check_digits",) for d in docgen.MRZ_DEFECTS if d != "other_person"},
    **{f"id:{d}": ("id_number_structure",) for d in docgen.ID_DEFECTS},
    "blank page": ("page_usable",),
    "photo": ("page_usable",),
    "card half cut off": ("document_complete",),
    "back cut off": ("document_complete",),
}
BAD_CAPTURES = ("cut_off", "motion_blur", "glare")


def from_templates(samples: list[TemplateSample]) -> list[Sample]:
    """The template corpus's dossiers as this benchmark's samples."""
    out = []
    for t in samples:
        pages = [
            Page(
                p.image,
                [docgen.TextLine(line.text, line.box, line.role) for line in p.lines],
                p.kind,
                dict(p.fields),
                data=p.data,
                style=p.style,
                layout=p.layout,
                bad_capture=p.bad_capture,
            )
            for p in t.pages
        ]
        out.append(Sample(t.name, pages, t.defect, t.expect, t.today, t.style, t.edition))
    return out


# Bad input the quality gate may refuse before any check runs: the refusals that name it.
GATE_REASONS: dict[str, tuple[str, ...]] = {
    "blank page": ("OVEREXPOSED", "LOW_CONTRAST"),
    "card half cut off": ("CUT_OFF",),
    "back cut off": ("CUT_OFF",),
}


def _caught_right(record: dict[str, Any]) -> bool:
    defect = record["defect"]
    if defect in BAD_CAPTURES:
        return bool(record["refused"])
    refusals = {page["refused"] for page in record["pages"] if page["refused"]}
    if refusals & set(GATE_REASONS.get(defect, ())):
        return True
    wanted = RIGHT_REASONS.get(defect, ())
    return record["outcome"] == "fail" and any(name in wanted for name in record["failed"])


def breakdown(records: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Every figure over all dossiers, per capture style and per edition: ``{group: {figure:
    [hits, total] or a number}}``. Fields and CER are counted on good captures only (a bad
    capture is meant to be refused); a dossier's style is that of its bad page, if any."""
    groups: dict[str, dict[str, Any]] = {}

    def bump(group: str, key: str, hit: bool | int, total: int = 1) -> None:
        figures = groups.setdefault(group, {})
        h, t = figures.get(key, (0, 0))
        figures[key] = (h + int(hit), t + total)

    cpu: dict[str, list[float]] = defaultdict(list)
    for r in records:
        sample_groups = ["all", f"style:{r['style']}"] + (
            [f"edition:{r['edition']}"] if r["edition"] else []
        )
        for g in sample_groups:
            if r["expect"] == "pass":
                bump(g, "valid issued (all PASS)", r["outcome"] == "pass" and not r["refused"])
                bump(g, "valid rejected (any FAIL)", r["outcome"] == "fail")
            elif r["defect"] not in BAD_CAPTURES:
                bump(g, "defective caught", r["outcome"] != "pass" or r["refused"])
                bump(g, "defective caught, right reason", _caught_right(r))
            else:
                bump(g, "bad capture not passed", r["outcome"] != "pass" or r["refused"])
        for page in r["pages"]:
            page_groups = ["all", f"style:{page['style']}"] + (
                [f"edition:{r['edition']}"] if r["edition"] else []
            )
            for g in page_groups:
                cpu[g].append(page["cpu_ms"])
                if page["bad_capture"]:
                    bump(g, "bad captures refused by gate", bool(page["refused"]))
                    continue
                bump(g, "good captures refused", bool(page["refused"]))
                for name, ok in page["fields"].items():
                    bump(g, f"field {name}", ok)
                    bump(g, "fields, all", ok)
                for role, (errors, chars) in page["cer"].items():
                    bump(g, f"CER {role}", errors, chars)
    for g, values in cpu.items():
        groups.setdefault(g, {})["CPU ms/page"] = round(statistics.mean(values), 1)
    return groups


def _group_order(name: str) -> tuple[int, int, str]:
    styles = ("docgen", "flatbed", "tight", "overhead", "camera_tight", *BAD_CAPTURES)
    if name == "all":
        return (0, 0, "")
    kind, _, value = name.partition(":")
    if kind == "style":
        return (1, styles.index(value) if value in styles else 99, value)
    return (2, 0, value)


def print_breakdown(title: str, groups: dict[str, dict[str, Any]]) -> None:
    """A table: one row per figure, one column per group (all, each style, each edition)."""
    names = sorted(groups, key=_group_order)
    keys: list[str] = []
    for g in names:
        keys += [k for k in groups[g] if k not in keys]
    order = (
        "valid issued (all PASS)",
        "valid rejected (any FAIL)",
        "defective caught",
        "defective caught, right reason",
        "bad capture not passed",
        "bad captures refused by gate",
        "good captures refused",
        "fields, all",
    )
    keys = [k for k in order if k in keys] + sorted(
        k for k in keys if k not in order and k != "CPU ms/page"
    )
    keys.append("CPU ms/page")
    width = 13
    print(f"{title}: per capture style and edition (fields and CER on good captures)")
    heads = [n.split(":", 1)[-1] for n in names]
    print(f"  {'':<32}" + "".join(f"{h[:width]:>{width}}" for h in heads))
    for key in keys:
        cells = []
        for g in names:
            v = groups[g].get(key)
            if v is None:
                cells.append("-")
            elif isinstance(v, tuple):
                h, t = v
                if key.startswith("CER"):
                    cells.append(f"{100 * h / t:.1f}%/{t}" if t else "-")
                else:
                    cells.append(f"{100 * h / t:.0f}% {h}/{t}" if t else "-")
            else:
                cells.append(f"{v:.0f}")
        print(f"  {key[:32]:<32}" + "".join(f"{c:>{width}}" for c in cells))
    print("  (CER cells: error rate / characters; others: rate hits/total)")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--cards", type=int, default=40, help="card front+back pairs")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument(
        "--engines", default="cascade", help="comma-separated (default: the server's engine)"
    )
    parser.add_argument(
        "--corpus", choices=("docgen", "templates", "both"), default="both", help="which corpus"
    )
    parser.add_argument("--json", action="store_true", help="the figures as JSON on stdout")
    parser.add_argument("-v", "--verbose", action="store_true", help="list every miss")
    parser.add_argument(
        "--certify-path",
        action="store_true",
        help="admission, quality gate and preprocessing first, as Certify does",
    )
    parser.add_argument(
        "--zone-face",
        choices=("mixed", "ocr-b"),
        default="mixed",
        help="the template corpus's machine-readable zones: half in OCR-B, or all",
    )
    args = parser.parse_args(argv)
    if args.zone_face == "ocr-b":
        templates.MRZ_FONTS = (templates.OCR_B,)  # every draw of the zone's face is OCR-B

    result: dict[str, Any] = {"cards": args.cards, "seed": args.seed, "engines": {}}
    text_out = sys.stderr if args.json else sys.stdout
    with contextlib.redirect_stdout(text_out):
        corpora: dict[str, list[Sample]] = {}
        for name in ("docgen", "templates"):
            if args.corpus not in (name, "both"):
                continue
            t0 = time.perf_counter()
            if name == "docgen":
                samples = list(corpus(args.cards, args.seed))
            else:
                samples = from_templates(list(templates_corpus(args.cards, args.seed)))
            corpora[name] = samples
            print(
                f"corpus {name}: {len(samples)} dossiers, "
                f"{sum(len(s.pages) for s in samples)} pages "
                f"generated in {time.perf_counter() - t0:.1f} s"
            )
        reader = DocumentReader()
        for engine_name in args.engines.split(","):
            try:
                engine = create_engine(engine_name)
            except (ValueError, OcrUnavailable, ImportError) as e:
                print(f"engine {engine_name}: not available ({e})")
                continue
            try:
                for name, samples in corpora.items():
                    print(f"--- corpus {name}")
                    records = run(engine, reader, samples, args.verbose, args.certify_path)
                    groups = breakdown(records)
                    print_breakdown(f"{engine.name}, corpus {name}", groups)
                    result["engines"].setdefault(engine.name, {})[name] = {
                        g: {k: list(v) if isinstance(v, tuple) else v for k, v in f.items()}
                        for g, f in groups.items()
                    }
            finally:
                engine.close()
        reader.close()
    if args.json:
        print(json.dumps(result, ensure_ascii=False, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
