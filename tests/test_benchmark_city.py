"""benchmarks/city.py, the benchmark that enforces the latency target: a short open-loop run
against a real server prints the percentiles and one JSON line, and a p95 target no server can
meet makes it exit non-zero, saying why."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from .conftest import RunningServer, start_server

CITY = Path(__file__).resolve().parents[1] / "benchmarks" / "city.py"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    # No OCR: this checks the benchmark's arithmetic and verdict, not how fast pages are read.
    running = start_server(
        tmp_path_factory.mktemp("city"), identity="off", ocr_engine="none", signing_level="B-T"
    )
    yield running
    running.stop()


def test_a_short_city_run_reports_percentiles_and_fails_a_p95_target_it_misses(
    server: RunningServer,
) -> None:
    command = [sys.executable, str(CITY), "--server", server.target, "--http", server.http]
    arrivals = ["--rate", "0.5", "--duration", "8", "--seed", "5"]  # at 2.0, 4.7 and 7.8 s
    run = subprocess.run(
        [*command, *arrivals, "--drain", "40", "--p95-target", "0.001", "--json"],
        capture_output=True,
        text=True,
        timeout=90,
    )
    assert run.returncode == 1, run.stdout + run.stderr
    assert "FAIL: p95 latency" in run.stderr and "exceeds the target of 0.001 s" in run.stderr

    lines = run.stdout.splitlines()
    assert any(
        line.startswith("latency, first byte to terminal event (n=3): p50 ") for line in lines
    )
    assert any(line.startswith("outcomes: ") for line in lines)
    record = json.loads(lines[-1])
    assert record["arrivals"] == record["completed"] == 3
    latency = record["latency"]
    assert 0 < latency["p50"] <= latency["p95"] <= latency["p99"]
    assert sum(record["outcomes"].values()) == 3
    assert set(record["outcomes"]) <= {"ISSUED", "NEEDS_REVIEW", "REJECTED"}
    assert record["throughput"] > 0 and record["wall"] > 0
    assert record["stages"]["admit"] > 0, record  # from the server's /metrics, per dossier
    assert record["scaling"] is None
    assert record["passed"] is False and record["p95_target"] == 0.001
    assert record["reasons"] == [
        f"p95 latency {latency['p95']:.2f} s exceeds the target of 0.001 s"
    ]
