"""CPU seconds per reference dossier, stage by stage, through the server's own Certifier.

The reference dossier (ID card front and back, ~1000 x 640, and two A4 pages at 300 dpi, see
:func:`saoy.clients.simulator.docgen.reference_dossier`) is certified in this process by the
Certifier that :func:`saoy.server.app.create_server` builds (the same OCR engine, document
reader, signer, registry, blob vault, desk and transparency log), without the network in front.

Two measurements per pipeline:

- CPU: the stages run one at a time in the calling thread (pages given one at a time, each
  page's reading awaited before the next); each stage's CPU time is the process's (every
  thread: Tesseract's OpenMP team, ONNX Runtime's pool) from its start to its end.
  Median over ``--dossiers`` dossiers (each a fresh request; seeds vary the person), after one
  warm-up dossier.
- Wall: one dossier alone, end to end as a kiosk streams it (pages back to back, reading
  overlapping the next upload), from the first page to the terminal event; median.

Each pipeline named in ``--pipelines`` is measured in the same run, taking turns dossier by
dossier, and compared with the first (ratios): ``present`` is the pipeline with its economies off
(:attr:`saoy.core.pipeline.PipelineConfig.economical` false: OpenMP kernels on every core,
orientation detection on every page of no known type; A4 pages read by Tesseract at a text
height of 22 pixels, not 19; and the signer sizing each signature afresh,
:attr:`saoy.core.trust.signing.PadesCopySigner.reuse_room`), ``lean`` the default. Not
switched: copy page streams without ASCII85 (a few ms).

    python benchmarks/cost.py                       # present vs lean, 5 dossiers each
    python benchmarks/cost.py --pipelines lean --dossiers 9 --profile /tmp/cost.prof
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import cProfile
import dataclasses
import logging
import os
import statistics
import sys
import tempfile
import time
import uuid
from collections import defaultdict
from collections.abc import Callable
from concurrent.futures import Executor, Future
from pathlib import Path
from typing import Any

from saoy.clients.simulator import docgen
from saoy.core import pipeline as pl
from saoy.core.ocr.cascade import CascadeEngine
from saoy.core.trust.signing import PadesCopySigner
from saoy.server.app import create_server
from saoy.server.settings import Settings

STAGES = (
    "admit",
    "preprocess",
    "clean",
    "ocr",
    "analyze",
    "validate",
    "render",
    "sign",
    "store",
    "other",
)
KNOWN = frozenset(STAGES)
PRESENT_TEXT_HEIGHT = 22.0  # the text height the cascade read A4 pages at before


class CpuClock:
    """A stage observer that charges the process's CPU time to stages.

    The Certifier reports a stage's queue wait when the stage starts in its worker and the
    stage itself when it ends; signing reports only its end and runs right after rendering. With
    one stage running at a time, the process CPU between a start (or the previous end) and an
    end is that stage's."""

    def __init__(self) -> None:
        self.mark = time.process_time()
        self.seconds: dict[str, float] = defaultdict(float)

    def reset(self) -> None:
        self.mark = time.process_time()
        self.seconds = defaultdict(float)

    def observe_queue_wait(self, seconds: float) -> None:
        self.mark = time.process_time()

    def observe_stage(self, stage: str, seconds: float) -> None:
        now = time.process_time()
        self.seconds[stage if stage in KNOWN else "other"] += now - self.mark
        self.mark = now


class InlineExecutor(Executor):
    """Runs each job at once in the calling thread: one stage at a time, and every stage
    seen by a profiler of that thread."""

    def submit(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Future[Any]:
        future: Future[Any] = Future()
        try:
            future.set_result(fn(*args, **kwargs))
        except BaseException as error:  # handed to the awaiting coroutine, as a pool would
            future.set_exception(error)
        return future


def _settings(data_dir: Path) -> Settings:
    return Settings(
        data_dir=data_dir,
        grpc_port=0,
        http_port=0,
        identity="off",
        log_level="WARNING",
        checkpoint_seconds=3600.0,
        kpi_refresh_seconds=3600.0,
        delivery_interval_seconds=3600.0,
        purge_interval_seconds=3600.0,
    )


def _configure(certifier: pl.Certifier, pipeline: str) -> None:
    """Turn the economies of the reading path off for ``present``."""
    if pipeline == "lean":
        return
    if pipeline != "present":
        raise SystemExit(f"unknown pipeline {pipeline!r}: use 'present' or 'lean'")
    certifier.config = dataclasses.replace(certifier.config, economical=False)
    if isinstance(certifier.ocr, CascadeEngine):
        certifier.ocr.text_height = PRESENT_TEXT_HEIGHT
    if isinstance(certifier.signer, PadesCopySigner):
        certifier.signer.reuse_room = False
    review = certifier.review
    if review is not None:  # copies issued without review are signed with the duty key
        automatic = review.automatic

        def duty_signing_afresh(*args: Any) -> Any:
            duty = automatic(*args)
            if isinstance(duty.signer, PadesCopySigner):
                duty.signer.reuse_room = False
            return duty

        review.automatic = duty_signing_afresh  # type: ignore[method-assign]


async def _certify(certifier: pl.Certifier, pages: list[bytes], *, serial: bool) -> pl.Terminal:
    ctx = pl.DossierContext(request_id=uuid.uuid4().hex, kiosk_id="bench-kiosk")
    for index, data in enumerate(pages):
        event = await certifier.add_page(ctx, index, data)
        if not isinstance(event, pl.PageAccepted):
            raise SystemExit(f"page {index} of the reference dossier was refused: {event}")
        if serial:
            await ctx.pages[index].reading
    terminal: pl.Terminal | None = None
    async for event in certifier.process(ctx):
        if isinstance(event, pl.Issued | pl.NeedsReview | pl.Rejected):
            terminal = event
    assert terminal is not None
    return terminal


async def measure(
    pipelines: list[str],
    dossiers: list[list[bytes]],
    profiled: str | None,
    profile: cProfile.Profile | None,
    on_pool: bool = False,
) -> dict[str, dict[str, Any]]:
    """CPU per stage (median over dossiers) and single-dossier wall time of each pipeline.
    The pipelines take turns dossier by dossier, so that a change in the machine's load
    falls on each alike."""
    with contextlib.ExitStack() as stack:
        servers, certifiers, clocks = [], {}, {}
        try:
            for name in pipelines:
                tmp = stack.enter_context(tempfile.TemporaryDirectory(prefix="saoy-cost-"))
                server = await create_server(_settings(Path(tmp)))
                servers.append(server)
                certifier = server.certifier
                _configure(certifier, name)
                clocks[name] = certifier.observer = CpuClock()
                certifiers[name] = certifier
            pools = {name: c.executor for name, c in certifiers.items()}
            if not on_pool:
                for certifier in certifiers.values():
                    certifier.executor = InlineExecutor()
            for certifier in certifiers.values():
                await _certify(certifier, dossiers[0], serial=True)  # warm-up
            per_stage: dict[str, dict[str, list[float]]] = {n: defaultdict(list) for n in pipelines}
            totals: dict[str, list[float]] = defaultdict(list)
            outcomes: dict[str, dict[str, int]] = {n: defaultdict(int) for n in pipelines}
            for pages in dossiers:
                for name, certifier in certifiers.items():
                    clock = clocks[name]
                    clock.reset()
                    start = time.process_time()
                    if profile is not None and name == profiled:
                        profile.enable()
                    outcome = await _certify(certifier, pages, serial=True)
                    if profile is not None:
                        profile.disable()
                    totals[name].append(time.process_time() - start)
                    outcomes[name][type(outcome).__name__] += 1
                    for stage in STAGES:
                        per_stage[name][stage].append(clock.seconds.get(stage, 0.0))
            walls: dict[str, list[float]] = defaultdict(list)
            for name, certifier in certifiers.items():
                certifier.executor = pools[name]
            for pages in dossiers:
                for name, certifier in certifiers.items():
                    start = time.perf_counter()
                    await _certify(certifier, pages, serial=False)
                    walls[name].append(time.perf_counter() - start)
        finally:
            for server in servers:
                await server.stop(0)
    return {
        name: {
            "stages": {s: statistics.median(v) for s, v in per_stage[name].items()},
            "total": statistics.median(totals[name]),
            "wall": statistics.median(walls[name]),
            "outcomes": dict(outcomes[name]),
        }
        for name in pipelines
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--dossiers", type=int, default=5, help="dossiers per pipeline")
    parser.add_argument(
        "--pipelines",
        default="present,lean",
        help="comma-separated, the first is the baseline: present | lean",
    )
    parser.add_argument("--profile", help="write a CPU profile of the last pipeline's dossiers")
    parser.add_argument(
        "--pool",
        action="store_true",
        help="CPU phase on the server's worker threads too (totals hold; a stage may be "
        "charged CPU that threads of the one before it spend after it ends)",
    )
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)

    dossiers = [
        [data for _, data in docgen.reference_dossier(seed=s)] for s in range(args.dossiers)
    ]
    size = sum(len(p) for p in dossiers[0]) / 1e6
    names = [n.strip() for n in args.pipelines.split(",") if n.strip()]
    print(
        f"reference dossier: {len(dossiers[0])} pages, {size:.2f} MB; {args.dossiers} dossiers "
        f"per pipeline; cores: {os.cpu_count()}; CPU = process time (all threads)"
    )
    profile = cProfile.Profile(time.process_time) if args.profile else None  # CPU, not wall
    results = asyncio.run(measure(names, dossiers, names[-1], profile, args.pool))
    if profile is not None:
        profile.dump_stats(args.profile)
    for name in names:
        outcomes = ", ".join(f"{k} {v}" for k, v in results[name]["outcomes"].items())
        print(f"  {name}: {outcomes}", file=sys.stderr)

    base = names[0]
    width = 12
    print("\nCPU seconds per dossier, median" + "".join(f"{n:>{width}}" for n in names), end="")
    print("".join(f"{n + '/' + base:>{width + 4}}" for n in names[1:]))
    rows = [*STAGES, "total", "wall (alone)"]
    for row in rows:
        values = []
        for name in names:
            r = results[name]
            if row == "total":
                values.append(r["total"])
            elif row == "wall (alone)":
                values.append(r["wall"])
            else:
                values.append(r["stages"].get(row, 0.0))
        cells = "".join(f"{v:>{width}.3f}" for v in values)
        ratios = "".join(
            f"{(v / values[0] if values[0] else float('nan')):>{width + 4}.2f}" for v in values[1:]
        )
        print(f"  {row:<30}{cells}{ratios}")
    print("  (stages summed over the dossier's pages; total = the whole dossier's process time)")
    for name in names:
        r = results[name]
        shares = sorted(r["stages"].items(), key=lambda kv: -kv[1])
        top = ", ".join(f"{s} {100 * v / r['total']:.0f} %" for s, v in shares[:3] if v)
        print(f"  {name}: {top}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
