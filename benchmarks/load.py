"""Closed-loop load on a real saoy server: N simulated kiosks stream the reference dossier,
each one dossier after the other (``benchmarks/city.py``: arrivals at the city's rate).

The baseline is measured in the same run: one kiosk, one dossier at a time, on the same server.
Printed: per-dossier latency harness.percentiles from a dossier's first byte to its terminal event
(baseline and under load, and their ratio), throughput, and where the time goes stage by stage
(from the server's own /metrics).

    python benchmarks/load.py --kiosks 8 --dossiers 3
    python benchmarks/load.py --server localhost:50051 --http http://localhost:8080

The server it starts runs with ``--identity off``: this measures the certification path, and
simulated kiosks have no citizen to authenticate (``benchmarks/face.py`` measures
authentication). A server given with ``--server`` must run with ``--identity off`` too.
"""

from __future__ import annotations

import argparse
import json

import harness


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

    pages = harness.reference_pages()
    print(harness.describe_dossier(pages))

    with harness.server_target(args.server, args.http, args.workers) as target:
        harness.run_kiosks(target.grpc, pages, 1, 1, "warmup")
        before = harness.stage_totals(target)
        base_outcomes, _ = harness.run_kiosks(target.grpc, pages, 1, args.baseline, "base")
        middle = harness.stage_totals(target)
        load_outcomes, load_wall = harness.run_kiosks(
            target.grpc, pages, args.kiosks, args.dossiers, "load"
        )
        after = harness.stage_totals(target)

    base = harness.latencies(base_outcomes, "ISSUED")
    load = harness.latencies(load_outcomes, "ISSUED")
    base_fail, load_fail = len(base_outcomes) - len(base), len(load_outcomes) - len(load)
    b, lo = harness.percentiles(base), harness.percentiles(load)
    throughput = len(load) / load_wall if load_wall else 0.0
    print(f"\nbaseline (1 kiosk, sequential, n={len(base)}): {harness.format_percentiles(b)}")
    print(
        f"load ({args.kiosks} kiosks x {args.dossiers}, n={len(load)}, failed={load_fail}): "
        f"{harness.format_percentiles(lo)}"
    )
    print(f"ratio load/baseline: p50 x{lo['p50'] / b['p50']:.2f}  p95 x{lo['p95'] / b['p95']:.2f}")
    print(
        f"throughput under load: {throughput:.2f} dossiers/s "
        f"(city peak ~{harness.CITY_RATE:.2f}/s: x{throughput / harness.CITY_RATE:.2f} of it)"
    )
    base_rows = harness.stage_breakdown(before, middle, len(base), "baseline")
    load_rows = harness.stage_breakdown(middle, after, len(load), "under load")
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
