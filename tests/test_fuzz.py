"""A bounded run of each fuzzing harness in fuzz/, under two minutes for all of them together
(each fuzzes for its share of :data:`SECONDS`, after starting up: instrumenting its imports,
loading models, starting its in-process server, running its seeds): from the checked-in seed
corpus, new inputs and any finding written to a temporary folder, never into the repository.
A crash (an exception other than the documented domain errors, a failed assertion), an input
taking over 2 s or memory growing by over 1 GiB makes libFuzzer exit non-zero and write the
input; the failure message names it. ``make fuzz`` runs the same harnesses for longer."""

from __future__ import annotations

import resource
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("atheris")

ROOT = Path(__file__).resolve().parents[1]
FUZZ = ROOT / "fuzz"
SECONDS = {
    "admission": 10,
    "qrpayload": 8,
    "documents": 6,
    "pdfverify": 8,
    "certify": 8,
    "authenticate": 6,
}
"""Seconds of fuzzing per harness: 46 s in all, the rest of the two minutes goes to start-up."""
TARGETS = tuple(SECONDS)
MEMORY_MB = 1024  # above what the harness starts with


def rss_limit_mb() -> int:
    """libFuzzer's memory limit for a harness started from this process: a child's peak
    resident size starts at its parent's (the fork shares every page, and the peak survives
    exec), so the limit is :data:`MEMORY_MB` above this process's own peak."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024 + MEMORY_MB


@pytest.mark.parametrize("target", TARGETS)
def test_fuzz_harness_finds_nothing(target: str, tmp_path: Path) -> None:
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    seeds = FUZZ / "corpus" / target
    assert any(seeds.iterdir()), f"no seeds in {seeds}"
    command = [
        sys.executable,
        str(FUZZ / f"fuzz_{target}.py"),
        str(corpus),  # the first folder receives new inputs; the seeds are only read
        str(seeds),
        f"-max_total_time={SECONDS[target]}",
        "-seed=1",  # the same walk each run (as far as the time allows): make fuzz explores
        "-timeout=2",
        f"-rss_limit_mb={rss_limit_mb()}",
        f"-artifact_prefix={tmp_path}/",
        "-print_final_stats=1",
    ]
    run = subprocess.run(
        command, cwd=tmp_path, capture_output=True, text=True, timeout=SECONDS[target] + 90
    )
    findings = sorted(
        p.name for p in tmp_path.iterdir() if p.name.startswith(("crash-", "timeout-", "oom-"))
    )
    log = "\n".join(
        line for line in run.stderr.splitlines() if not line.startswith("INFO: Instrumenting")
    )
    if run.returncode < 0:  # atheris ends itself by SIGALRM when a timeout hits native code
        findings.append(f"killed by signal {-run.returncode}")
    assert run.returncode == 0 and not findings, (
        f"fuzz_{target} exited {run.returncode}, findings {findings}:\n{log[-6000:]}"
        f"\n{run.stdout[-2000:]}"
    )
    assert "Done" in run.stderr, log[-2000:]
