"""The city's peak on a real saoy server, and the latency target it must meet.

Open loop: dossiers arrive as a Poisson process at ``--rate`` per second (default the city's
peak, 126 kiosks each sending one every 3-5 minutes: ~0.53/s) for ``--duration`` seconds. Each
arrival is an independent kiosk stream of the reference dossier (ID card front and back, two A4
pages at 300 DPI), started on schedule whether or not the ones before it have finished, so a
slow server meets a growing queue, as at the kiosks, instead of a politely waiting client.

Printed: p50/p95/p99 latency from a dossier's first byte to its terminal event (ISSUED,
NEEDS_REVIEW or REJECTED), throughput, the outcomes, and the seconds per dossier in each stage
(from the server's own /metrics). With ``--workers N`` (N > 1), also the scaling from 1 to N
workers: the saturated throughput (closed loop, more kiosks than workers, back to back) of a
server with 1 worker and of one with N, in the same run, and their ratio.

Exits 1, saying why, when p95 exceeds ``--p95-target`` (default 5 s) or when a dossier ended
without a terminal event; 2 on bad arguments.

    python benchmarks/city.py                              # the city's peak for 120 s
    python benchmarks/city.py --duration 60 --workers 2 --json
    python benchmarks/city.py --workers 2 --worker-processes   # front + 2 saoy worker processes
    python benchmarks/city.py --server localhost:50051 --http http://localhost:8080

The servers it starts run with ``--identity off``: this measures the certification path, and
simulated kiosks have no citizen to authenticate. A server given with ``--server`` must run
with ``--identity off`` too.
"""

from __future__ import annotations

import argparse
import json
import math
import random
import sys
import threading
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

import grpc
from harness import (
    CITY_KIOSKS,
    CITY_RATE,
    Outcome,
    certify,
    connect,
    describe_dossier,
    format_percentiles,
    latencies,
    local_server,
    percentiles,
    reference_pages,
    run_kiosks,
    server_target,
    stage_breakdown,
    stage_totals,
)

from saoy.clients.sdk import KioskClient


@dataclass(frozen=True)
class OpenLoop:
    """What an open-loop run saw: every arrival's outcome (None: still running when the run
    gave up waiting), the wall time from the first arrival's schedule to the last terminal
    event, and how late the latest arrival was started after its schedule."""

    outcomes: list[Outcome | None]
    wall: float
    max_start_lag: float


def arrival_times(rate: float, duration: float, seed: int) -> list[float]:
    """Poisson arrivals at ``rate`` per second in [0, ``duration``): seconds from the start."""
    rng = random.Random(seed)
    times, t = [], rng.expovariate(rate)
    while t < duration:
        times.append(t)
        t += rng.expovariate(rate)
    return times


def open_loop(
    target: str, pages: Sequence[bytes], schedule: Sequence[float], drain: float
) -> OpenLoop:
    """Start one kiosk stream per scheduled arrival, on time, each on its own thread and
    channel; then wait up to ``drain`` seconds after the last arrival for the ones in flight."""
    outcomes: list[Outcome | None] = [None] * len(schedule)
    finished: list[float] = []
    lock = threading.Lock()

    def arrive(k: int) -> None:
        with KioskClient(target, kiosk_id=f"city-{k % CITY_KIOSKS:03d}") as client:
            try:
                connect(client)
            except grpc.FutureTimeoutError:
                outcome = Outcome("no connection", None)
            else:
                outcome = certify(client, pages)
        with lock:
            outcomes[k] = outcome
            finished.append(time.perf_counter())

    threads = []
    max_lag = 0.0
    start = time.perf_counter()
    for k, at in enumerate(schedule):
        delay = start + at - time.perf_counter()
        if delay > 0:
            time.sleep(delay)
        max_lag = max(max_lag, time.perf_counter() - (start + at))
        thread = threading.Thread(target=arrive, args=(k,), name=f"arrival-{k}", daemon=True)
        thread.start()
        threads.append(thread)
    give_up = time.perf_counter() + drain
    for thread in threads:
        thread.join(max(0.0, give_up - time.perf_counter()))
    with lock:
        end = max(finished, default=start)
        return OpenLoop(list(outcomes), end - start, max_lag)


def saturated_throughput(
    target: str, pages: Sequence[bytes], kiosks: int, seconds: float, label: str
) -> tuple[float, int]:
    """Dossiers per second that reach a terminal event when ``kiosks`` kiosks certify back
    to back for ``seconds`` (after one warm-up dossier); and how many did."""
    run_kiosks(target, pages, 1, 1, f"{label}-warmup")
    outcomes, wall = run_kiosks(target, pages, kiosks, 0, label, seconds=seconds)
    done = len(latencies(outcomes))
    return (done / wall if wall else 0.0), done


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument(
        "--rate", type=float, default=CITY_RATE, help="dossiers per second (default: city peak)"
    )
    parser.add_argument("--duration", type=float, default=120.0, help="seconds of arrivals")
    parser.add_argument("--seed", type=int, default=1, help="seed of the arrival times")
    parser.add_argument(
        "--drain",
        type=float,
        default=300.0,
        help="seconds to wait after the last arrival for dossiers in flight",
    )
    parser.add_argument(
        "--p95-target", type=float, default=5.0, help="seconds; exit 1 when p95 is above"
    )
    parser.add_argument(
        "--workers",
        type=int,
        default=0,
        help="server CPU workers (0 = one per core); N > 1 also measures the scaling 1 -> N",
    )
    parser.add_argument(
        "--worker-processes",
        action="store_true",
        help="the city shape: --workers counts saoy worker processes (one CPU thread each)"
        " behind one front, the work carried by a redis-server started here",
    )
    parser.add_argument(
        "--saturation-seconds",
        type=float,
        default=30.0,
        help="closed-loop seconds per server when measuring the scaling",
    )
    parser.add_argument(
        "--saturation-kiosks",
        type=int,
        default=0,
        help="kiosks back to back when measuring the scaling (0: 2 x workers + 2)",
    )
    parser.add_argument("--server", help="target of a running server (default: start one)")
    parser.add_argument("--http", help="HTTP base of that server, for /metrics")
    parser.add_argument("--json", action="store_true", help="also print one JSON line")
    args = parser.parse_args(argv)
    if not (args.rate > 0 and args.duration > 0 and args.drain >= 0):
        parser.error("--rate and --duration must be positive, --drain not negative")
    if args.workers < 0 or args.saturation_kiosks < 0 or args.saturation_seconds <= 0:
        parser.error("--workers and --saturation-kiosks must be >= 0, --saturation-seconds > 0")
    if args.server and args.workers:
        parser.error("--workers sets up the servers this benchmark starts; leave out --server")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    pages = reference_pages()
    schedule = arrival_times(args.rate, args.duration, args.seed)
    print(describe_dossier(pages))
    print(
        f"open loop: {len(schedule)} arrivals in {args.duration:g} s at {args.rate:.3f}/s "
        f"(city peak ~{CITY_RATE:.2f}/s), seed {args.seed}"
    )

    scaling: dict[str, float | int] | None = None
    kiosks = args.saturation_kiosks or 2 * args.workers + 2
    processes = args.worker_processes
    with server_target(args.server, args.http, args.workers, processes=processes) as target:
        run_kiosks(target.grpc, pages, 1, 1, "warmup")
        before = stage_totals(target)
        run = open_loop(target.grpc, pages, schedule, args.drain)
        after = stage_totals(target)
        if args.workers > 1:
            many, many_done = saturated_throughput(
                target.grpc, pages, kiosks, args.saturation_seconds, f"sat{args.workers}"
            )
    if args.workers > 1:
        with local_server(1, processes=processes) as single:
            one, one_done = saturated_throughput(
                single.grpc, pages, kiosks, args.saturation_seconds, "sat1"
            )
        scaling = {
            "workers": args.workers,
            "kiosks": kiosks,
            "seconds": args.saturation_seconds,
            "throughput_1": one,
            "throughput_n": many,
            "dossiers_1": one_done,
            "dossiers_n": many_done,
            "ratio": many / one if one else float("nan"),
        }

    done = [o for o in run.outcomes if o is not None]
    states = Counter(o.state for o in done)
    unfinished = len(run.outcomes) - len(done)
    if unfinished:
        states[f"unfinished after {args.drain:g} s"] = unfinished
    values = latencies(done)
    p = percentiles(values)
    throughput = len(values) / run.wall if run.wall > 0 else 0.0

    print(f"\nlatency, first byte to terminal event (n={len(values)}): {format_percentiles(p)}")
    if values:
        print(f"  mean {sum(values) / len(values):.2f} s  max {max(values):.2f} s")
    print(
        f"throughput: {throughput:.3f} dossiers/s completed over {run.wall:.1f} s "
        f"(offered {len(schedule) / args.duration:.3f}/s); latest start "
        f"{run.max_start_lag * 1000:.0f} ms after its schedule"
    )
    print("outcomes: " + ", ".join(f"{state} {n}" for state, n in states.most_common()))
    stages = stage_breakdown(before, after, len(values), f"open loop at {args.rate:.2f}/s")
    if scaling is not None:
        print(
            f"\nscaling, closed loop at saturation ({scaling['kiosks']} kiosks, "
            f"{args.saturation_seconds:g} s each): 1 worker {scaling['throughput_1']:.3f}/s "
            f"(n={scaling['dossiers_1']}), {args.workers} workers "
            f"{scaling['throughput_n']:.3f}/s (n={scaling['dossiers_n']}): "
            f"x{scaling['ratio']:.2f}"
        )

    reasons = verdict(p["p95"], args.p95_target, len(schedule) - len(values), states)
    if args.json:
        record = {
            "rate": args.rate,
            "duration": args.duration,
            "seed": args.seed,
            "workers": args.workers,
            "worker_processes": args.worker_processes,
            "arrivals": len(schedule),
            "completed": len(values),
            "latency": p,
            "throughput": throughput,
            "wall": run.wall,
            "max_start_lag": run.max_start_lag,
            "outcomes": dict(states),
            "stages": stages,
            "scaling": scaling,
            "p95_target": args.p95_target,
            "passed": not reasons,
            "reasons": reasons,
        }
        print(json.dumps(_finite(record)))
    for reason in reasons:
        print(f"FAIL: {reason}", file=sys.stderr)
    if not reasons:
        print(f"\nPASS: p95 {p['p95']:.2f} s is within the target of {args.p95_target:g} s")
    return 1 if reasons else 0


def _finite(value: object) -> object:
    """``value`` with NaN (nothing measured) as null, so that the line is strict JSON."""
    if isinstance(value, float) and math.isnan(value):
        return None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    return value


def verdict(p95: float, target: float, failed: int, states: Counter[str]) -> list[str]:
    """Why the run misses its target; empty when it meets it."""
    reasons = []
    if math.isnan(p95):
        reasons.append("no dossier reached a terminal event")
    elif p95 > target:
        reasons.append(f"p95 latency {p95:.2f} s exceeds the target of {target:g} s")
    if failed:
        bad = ", ".join(
            f"{s} {n}" for s, n in states.items() if s not in ("ISSUED", "NEEDS_REVIEW", "REJECTED")
        )
        reasons.append(f"{failed} dossier(s) ended without a terminal event ({bad})")
    return reasons


if __name__ == "__main__":
    raise SystemExit(main())
