"""What the load benchmarks share: the reference dossier, a server to measure (started here or
already running), kiosks that certify dossiers and time them, latency percentiles, and the
server's own per-stage times from its /metrics.

``load.py`` (closed loop: N kiosks back to back) and ``city.py`` (open loop: Poisson arrivals
at the city's rate) are built from these pieces.
"""

from __future__ import annotations

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
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path

import grpc
from prometheus_client.parser import text_string_to_metric_families

from saoy.clients.sdk import KioskClient, PageRejectedError
from saoy.clients.simulator import docgen
from saoy.v1 import certification_pb2 as cpb

CITY_KIOSKS = 126
CITY_RATE = CITY_KIOSKS / 240  # 126 kiosks, one dossier every 3-5 minutes each: ~0.5 dossiers/s
TERMINAL = ("issued", "needs_review", "rejected")
START_SECONDS = 120.0
STOP_SECONDS = 30.0


@dataclass(frozen=True)
class Target:
    """A server to measure: its gRPC target and HTTP base ('' when /metrics is out of reach)."""

    grpc: str
    http: str
    metrics: tuple[str, ...] = ()  # every process's HTTP base with /metrics (default: http)


@dataclass(frozen=True)
class Outcome:
    """One dossier: ISSUED, NEEDS_REVIEW or REJECTED (its terminal event), or what went wrong
    instead (``error <gRPC code>``, ``page rejected``, ``no terminal event``); ``latency``
    runs from its first byte to its terminal event, None without one."""

    state: str
    latency: float | None

    @property
    def terminal(self) -> bool:
        return self.latency is not None


def reference_pages(seed: int = 1) -> list[bytes]:
    """The reference dossier's files: ID card front and back, two A4 pages at 300 DPI."""
    return [data for _, data in docgen.reference_dossier(seed=seed)]


def describe_dossier(pages: Sequence[bytes]) -> str:
    size = sum(len(p) for p in pages)
    return (
        f"reference dossier: {len(pages)} pages, {size / 1e6:.2f} MB "
        f"(ID card front+back, two A4 at 300 DPI); cores: {os.cpu_count()}"
    )


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _saoy(*args: str) -> list[str]:
    """The command line of ``saoy ARGS`` run by this interpreter."""
    return [
        sys.executable,
        "-c",
        "from saoy.clients.cli import main; raise SystemExit(main())",
        *args,
    ]


@dataclass(frozen=True)
class Process:
    """One process of a server under test, and the HTTP base that answers /healthz and
    /metrics once it is up ('' for none)."""

    command: list[str]
    http: str = ""


def server_commands(
    workers: int, grpc_port: int, http_port: int, data_dir: Path, *, processes: bool = False
) -> list[Process]:
    """The processes that make up one server under test, started in this order, each once the
    one before answers. Without ``processes``: one ``saoy serve`` whose ``workers`` sets its
    CPU worker threads (0: one per core). With it: redis-server, a front (``saoy serve
    --queue-url``) and ``workers`` ``saoy worker`` processes of one CPU thread each."""
    common = ["--data-dir", str(data_dir), "--log-level", "WARNING", "--identity", "off"]
    common += [f"--{s}-rate=0" for s in ("authenticate", "certify", "http", "upload")]
    front_http = f"http://127.0.0.1:{http_port}"
    ports = ["--grpc-port", str(grpc_port), "--http-port", str(http_port)]
    if not processes:
        return [Process(_saoy("serve", *ports, "--workers", str(workers), *common), front_http)]
    redis_port = free_port()
    queue = ["--queue-url", f"redis://127.0.0.1:{redis_port}/0"]
    redis = [
        "redis-server",
        *("--port", str(redis_port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"),
        *("--dir", str(data_dir), "--loglevel", "warning"),
    ]
    started = [
        Process(redis),
        Process(_saoy("serve", *ports, "--workers", "1", *queue, *common), front_http),
    ]
    for _ in range(max(workers, 1)):
        port = free_port()
        worker = _saoy(
            "worker",
            *("--grpc-port", "0", "--http-port", str(port), "--workers", "1"),
            *("--public-url", front_http, *queue, *common),
        )
        started.append(Process(worker, f"http://127.0.0.1:{port}"))
    return started


@contextmanager
def local_server(workers: int = 0, *, processes: bool = False) -> Iterator[Target]:
    """Start a server (:func:`server_commands`) on free ports with a throwaway data dir and
    identity checks off (it warns about that at start-up); stop it on leaving."""
    grpc_port, http_port = free_port(), free_port()
    with tempfile.TemporaryDirectory(prefix="saoy-bench-") as data_dir, ExitStack() as stack:
        running: list[subprocess.Popen[bytes]] = []
        commands = server_commands(
            workers, grpc_port, http_port, Path(data_dir), processes=processes
        )
        env = {**os.environ, "OMP_THREAD_LIMIT": "1"}
        for process in commands:
            started = subprocess.Popen(process.command, env=env)
            stack.callback(_stop, started)
            running.append(started)
            if process.http:
                _wait_healthy(process.http, running)
            else:
                time.sleep(0.5)  # redis-server: up in well under that
        metrics = tuple(p.http for p in commands if p.http)
        yield Target(f"127.0.0.1:{grpc_port}", metrics[0], metrics)


def _wait_healthy(http: str, processes: Sequence[subprocess.Popen[bytes]]) -> None:
    deadline = time.monotonic() + START_SECONDS
    while True:
        if any(p.poll() is not None for p in processes):
            raise SystemExit("a server process exited during start-up")
        try:
            with urllib.request.urlopen(http + "/healthz", timeout=1):
                return
        except OSError:
            if time.monotonic() > deadline:
                raise SystemExit(f"the server did not start in {START_SECONDS:g} s") from None
            time.sleep(0.2)


def _stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
    try:
        process.wait(STOP_SECONDS)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


@contextmanager
def server_target(
    server: str | None, http: str | None, workers: int = 0, *, processes: bool = False
) -> Iterator[Target]:
    """The running server at ``server`` (``http`` its HTTP base, for /metrics), or one started
    here with ``workers`` CPU workers (worker processes with ``processes``)."""
    if server:
        yield Target(server, http or "")
    else:
        with local_server(workers, processes=processes) as target:
            yield target


def certify(client: KioskClient, pages: Sequence[bytes]) -> Outcome:
    """Certify one dossier on a connected client; a failure is an outcome, not an error."""
    terminal_at: float | None = None

    def on_event(event: cpb.CertifyEvent) -> None:
        nonlocal terminal_at
        if terminal_at is None and event.WhichOneof("event") in TERMINAL:
            terminal_at = time.perf_counter()

    start = time.perf_counter()  # the channel is connected: the first byte goes now
    try:
        result = client.certify(pages, on_event=on_event)
    except grpc.RpcError as error:
        return Outcome(f"error {error.code().name}", None)
    except PageRejectedError:
        return Outcome("page rejected", None)
    except Exception as error:  # a failed dossier is counted, not fatal to the run
        return Outcome(f"error {type(error).__name__}", None)
    if terminal_at is None:
        return Outcome("no terminal event", None)
    return Outcome(result.state, terminal_at - start)


def connect(client: KioskClient, timeout: float = 30.0) -> None:
    """Wait until the client's channel is connected, so that timing starts at the first byte."""
    grpc.channel_ready_future(client.channel).result(timeout=timeout)


def run_kiosks(
    target: str,
    pages: Sequence[bytes],
    kiosks: int,
    dossiers: int,
    label: str,
    seconds: float | None = None,
) -> tuple[list[Outcome], float]:
    """Closed loop: each of ``kiosks`` kiosks certifies ``dossiers`` dossiers back to back (or,
    given ``seconds``, as many as it starts in that time); the outcomes and the wall time."""
    outcomes: list[Outcome] = []
    lock = threading.Lock()
    start = time.perf_counter()
    deadline = None if seconds is None else start + seconds

    def more(done: int) -> bool:
        return done < dossiers if deadline is None else time.perf_counter() < deadline

    def kiosk(k: int) -> None:
        with KioskClient(target, kiosk_id=f"{label}-{k}") as client:
            connect(client)
            done = 0
            while more(done):
                outcome = certify(client, pages)
                done += 1
                if not outcome.terminal:
                    print(f"kiosk {label}-{k}: {outcome.state}", file=sys.stderr)
                with lock:
                    outcomes.append(outcome)

    with ThreadPoolExecutor(kiosks, thread_name_prefix=label) as pool:
        list(pool.map(kiosk, range(kiosks)))  # and raise what a kiosk raised
    return outcomes, time.perf_counter() - start


def latencies(outcomes: Sequence[Outcome], state: str | None = None) -> list[float]:
    """The latencies of the outcomes that reached a terminal event (``state`` only, if given)."""
    return [
        o.latency for o in outcomes if o.latency is not None and (state is None or o.state == state)
    ]


def percentiles(values: Sequence[float]) -> dict[str, float]:
    """p50 (the median), p95 and p99 by the nearest rank; NaN when there is nothing to rank."""
    if not values:
        return {"p50": float("nan"), "p95": float("nan"), "p99": float("nan")}
    ordered = sorted(values)

    def pick(q: float) -> float:
        return ordered[min(len(ordered) - 1, max(0, round(q * len(ordered) + 0.5) - 1))]

    return {"p50": statistics.median(ordered), "p95": pick(0.95), "p99": pick(0.99)}


def format_percentiles(p: dict[str, float]) -> str:
    return f"p50 {p['p50']:.2f} s  p95 {p['p95']:.2f} s  p99 {p['p99']:.2f} s"


def stage_totals(target: Target) -> dict[str, tuple[float, float]]:
    """(sum of seconds, count) per stage from the histograms of every process of the server
    (a front and its workers); empty when /metrics is out of reach."""
    totals: dict[str, list[float]] = {}
    for http in target.metrics or ((target.http,) if target.http else ()):
        with urllib.request.urlopen(http + "/metrics", timeout=10) as response:
            text = response.read().decode()
        for family in text_string_to_metric_families(text):
            if family.name not in ("saoy_stage_duration_seconds", "saoy_executor_queue_seconds"):
                continue
            for sample in family.samples:
                stage = sample.labels.get("stage", "(queue wait)")
                entry = totals.setdefault(stage, [0.0, 0.0])
                if sample.name.endswith("_sum"):
                    entry[0] += sample.value
                elif sample.name.endswith("_count"):
                    entry[1] += sample.value
    return {k: (v[0], v[1]) for k, v in totals.items()}


def stage_breakdown(
    first: dict[str, tuple[float, float]],
    second: dict[str, tuple[float, float]],
    dossiers: int,
    title: str,
) -> dict[str, float]:
    """Seconds per dossier in each stage between two :func:`stage_totals`, printed under
    ``title`` (largest first) and returned."""
    rows = {}
    for stage in sorted(second):
        s0, _ = first.get(stage, (0.0, 0.0))
        s1, _ = second[stage]
        rows[stage] = (s1 - s0) / max(dossiers, 1)
    total = sum(rows.values())
    if rows and total > 0:
        print(f"\n{title}: seconds per dossier in each stage, summed over pages")
        for stage, seconds in sorted(rows.items(), key=lambda kv: -kv[1]):
            print(f"  {stage:<12} {seconds * 1000:8.1f} ms  {100 * seconds / total:5.1f} %")
    return rows
