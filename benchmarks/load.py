"""City-wide load on a real saoy server: N simulated kiosks stream the reference dossier.

The baseline is measured in the same run: one kiosk, one dossier at a time, on the same server.
Printed: per-dossier latency percentiles (baseline and under load, and their ratio), throughput,
and where the time goes stage by stage (from the server's own /metrics).

    python benchmarks/load.py --kiosks 8 --dossiers 3
    python benchmarks/load.py --server localhost:50051 --http http://localhost:8080

The server it starts runs with ``--identity off``: this measures the certification path, and
simulated kiosks have no citizen to authenticate (``benchmarks/face.py`` measures
authentication). A server given with ``--server`` must run with ``--identity off`` too.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager

from prometheus_client.parser import text_string_to_metric_families

from saoy.clients.sdk import KioskClient
from saoy.clients.simulator import docgen

CITY_RATE = 126 / 240  # 126 kiosks, one dossier every 3-5 minutes each: ~0.5 dossiers/s


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def local_server(workers: int) -> Iterator[tuple[str, str]]:
    """Start ``saoy serve`` in its own process on free ports with a throwaway data dir, with
    identity checks off (it warns about that at start-up)."""
    grpc_port, http_port = free_port(), free_port()
    with tempfile.TemporaryDirectory(prefix="saoy-bench-") as data_dir:
        command = [
            sys.executable,
            "-c",
            "from saoy.clients.cli import main; raise SystemExit(main())",
            "serve",
            "--grpc-port",
            str(grpc_port),
            "--http-port",
            str(http_port),
            "--data-dir",
            data_dir,
            "--workers",
            str(workers),
            "--log-level",
            "WARNING",
            "--identity",
            "off",
        ]
        process = subprocess.Popen(command)
        http = f"http://127.0.0.1:{http_port}"
        try:
            deadline = time.monotonic() + 120
            while True:
                if process.poll() is not None:
                    raise SystemExit("the server exited during start-up")
                try:
                    with urllib.request.urlopen(http + "/healthz", timeout=1):
                        break
                except OSError:
                    if time.monotonic() > deadline:
                        raise SystemExit("the server did not start in 120 s") from None
                    time.sleep(0.2)
            yield f"127.0.0.1:{grpc_port}", http
        finally:
            process.send_signal(signal.SIGTERM)
            process.wait(30)


def stage_totals(http: str) -> dict[str, tuple[float, float]]:
    """(sum of seconds, count) per stage from the server's histogram."""
    with urllib.request.urlopen(http + "/metrics", timeout=10) as response:
        text = response.read().decode()
    totals: dict[str, list[float]] = {}
    for family in text_string_to_metric_families(text):
        if family.name not in ("saoy_stage_duration_seconds", "saoy_executor_queue_seconds"):
            continue
        for sample in family.samples:
            stage = sample.labels.get("stage", "(queue wait)")
            entry = totals.setdefault(stage, [0.0, 0.0])
            if sample.name.endswith("_sum"):
                entry[0] = sample.value
            elif sample.name.endswith("_count"):
                entry[1] = sample.value
    return {k: (v[0], v[1]) for k, v in totals.items()}


def run_kiosks(
    target: str, pages: list[bytes], kiosks: int, dossiers: int, label: str
) -> tuple[list[float], float, int]:
    """Each kiosk certifies ``dossiers`` dossiers back to back; returns latencies, wall time,
    and failures."""
    latencies: list[float] = []
    failures = 0
    lock = threading.Lock()

    def kiosk(k: int) -> None:
        nonlocal failures
        with KioskClient(target, kiosk_id=f"{label}-{k}") as client:
            for _ in range(dossiers):
                start = time.perf_counter()
                try:
                    result = client.certify(pages)
                    ok = result.state == "ISSUED"
                except Exception as error:  # a failed dossier is counted, not fatal
                    print(f"kiosk {k}: {error}", file=sys.stderr)
                    ok = False
                elapsed = time.perf_counter() - start
                with lock:
                    if ok:
                        latencies.append(elapsed)
                    else:
                        failures += 1

    threads = [threading.Thread(target=kiosk, args=(k,)) for k in range(kiosks)]
    start = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return latencies, time.perf_counter() - start, failures


def percentiles(values: list[float]) -> dict[str, float]:
    if not values:
        return {"p50": float("nan"), "p95": float("nan"), "p99": float("nan")}
    ordered = sorted(values)

    def pick(q: float) -> float:
        return ordered[min(len(ordered) - 1, max(0, round(q * len(ordered) + 0.5) - 1))]

    return {"p50": statistics.median(ordered), "p95": pick(0.95), "p99": pick(0.99)}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--kiosks", type=int, default=8, help="concurrent kiosks under load")
    parser.add_argument("--dossiers", type=int, default=3, help="dossiers per kiosk under load")
    parser.add_argument("--baseline", type=int, default=3, help="sequential baseline dossiers")
    parser.add_argument("--workers", type=int, default=0, help="server CPU workers (0 = cores)")
    parser.add_argument("--server", help="target of a running server (default: start one)")
    parser.add_argument("--http", help="HTTP base of that server, for /metrics")
    parser.add_argument("--json", action="store_true", help="also print one JSON line")
    args = parser.parse_args()

    pages = [data for _, data in docgen.reference_dossier(seed=1)]
    size = sum(len(p) for p in pages)
    print(
        f"reference dossier: {len(pages)} pages, {size / 1e6:.2f} MB "
        f"(ID card front+back, two A4 at 300 DPI); cores: {os.cpu_count()}"
    )

    @contextmanager
    def target() -> Iterator[tuple[str, str]]:
        if args.server:
            yield args.server, args.http or ""
        else:
            with local_server(args.workers) as found:
                yield found

    with target() as (grpc_target, http):
        run_kiosks(grpc_target, pages, 1, 1, "warmup")
        before = stage_totals(http) if http else {}
        base, _, base_fail = run_kiosks(grpc_target, pages, 1, args.baseline, "base")
        middle = stage_totals(http) if http else {}
        load, load_wall, load_fail = run_kiosks(
            grpc_target, pages, args.kiosks, args.dossiers, "load"
        )
        after = stage_totals(http) if http else {}

    b, lo = percentiles(base), percentiles(load)
    throughput = len(load) / load_wall if load_wall else 0.0
    print(
        f"\nbaseline (1 kiosk, sequential, n={len(base)}): "
        f"p50 {b['p50']:.2f} s  p95 {b['p95']:.2f} s  p99 {b['p99']:.2f} s"
    )
    print(
        f"load ({args.kiosks} kiosks x {args.dossiers}, n={len(load)}, failed={load_fail}): "
        f"p50 {lo['p50']:.2f} s  p95 {lo['p95']:.2f} s  p99 {lo['p99']:.2f} s"
    )
    print(f"ratio load/baseline: p50 x{lo['p50'] / b['p50']:.2f}  p95 x{lo['p95'] / b['p95']:.2f}")
    print(
        f"throughput under load: {throughput:.2f} dossiers/s "
        f"(city peak ~{CITY_RATE:.2f}/s: x{throughput / CITY_RATE:.2f} of it)"
    )

    def breakdown(first: dict, second: dict, dossiers: int, title: str) -> dict[str, float]:
        rows = {}
        for stage in sorted(second):
            s0, _ = first.get(stage, (0.0, 0.0))
            s1, _ = second[stage]
            rows[stage] = (s1 - s0) / max(dossiers, 1)
        if rows:
            total = sum(rows.values())
            print(f"\n{title}: seconds per dossier in each stage, summed over pages")
            for stage, seconds in sorted(rows.items(), key=lambda kv: -kv[1]):
                print(f"  {stage:<12} {seconds * 1000:8.1f} ms  {100 * seconds / total:5.1f} %")
        return rows

    base_rows = breakdown(before, middle, len(base), "baseline")
    load_rows = breakdown(middle, after, len(load), "under load")
    if args.json:
        print(
            json.dumps(
                {
                    "baseline": b,
                    "load": lo,
                    "throughput": throughput,
                    "failed": load_fail + base_fail,
                    "stages_baseline": base_rows,
                    "stages_load": load_rows,
                }
            )
        )
    return 1 if load_fail or base_fail else 0


if __name__ == "__main__":
    raise SystemExit(main())
