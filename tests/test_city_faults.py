"""Faults on the city shape — a front and workers as processes, Redis carrying the work,
PostgreSQL the record — each followed by the checker: 0 acknowledged lost, 0 copies doubled,
every issued copy stored and proven in the log."""

from __future__ import annotations

import signal
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import grpc
import pytest

from saoy.clients.sdk import CertifyResult, KioskClient
from saoy.v1 import certification_pb2 as cpb
from tests.city import City, check
from tests.pg import PostgresServer
from tests.ports import free_port
from tests.redisd import start_redis


@pytest.fixture
def postgres() -> Iterator[PostgresServer]:
    server = PostgresServer()
    server.start()
    yield server
    server.remove()


@pytest.fixture
def city(tmp_path: Path, postgres: PostgresServer) -> Iterator[City]:
    port = free_port()
    (tmp_path / "redis").mkdir()
    redis = start_redis(tmp_path / "redis", port)
    town = City(tmp_path, f"redis://127.0.0.1:{port}/0", registry_url=postgres.url)
    town.start_front()
    try:
        yield town
    finally:
        town.stop()
        redis.kill()
        redis.wait(10)


def certify_with_fault(
    city: City, pages: list[bytes], fault: Callable[[], None], retries: int = 8
) -> CertifyResult:
    """Certify one dossier; at its first accepted page, ``fault`` strikes."""
    struck: list[bool] = []

    def on_event(event: cpb.CertifyEvent) -> None:
        if not struck and event.HasField("page_accepted"):
            struck.append(True)
            fault()

    with KioskClient(city.target, retries=retries, timeout=240) as kiosk:
        result = kiosk.certify(pages, on_event=on_event)
    assert struck, "no page was accepted before the end"
    return result


def issued_then_another(city: City, pages: list[bytes], result: CertifyResult) -> None:
    """The dossier struck by the fault was issued, the next one is too, and the checker
    counts nothing lost, doubled or unproven."""
    assert result.issued is not None, result.events[-1]
    with KioskClient(city.target) as kiosk:
        after = kiosk.certify(pages)
    assert after.issued is not None
    tally = check(
        city, {result.request_id: result.issued.code, after.request_id: after.issued.code}
    )
    assert (tally.acknowledged, tally.lost, tally.duplicates, tally.unproven) == (2, 0, 0, 0)


def test_a_front_killed_mid_stream_loses_and_doubles_nothing(
    city: City, reference_dossier: list[tuple[str, bytes]]
) -> None:
    city.add_worker()
    city.add_worker()
    pages = [data for _, data in reference_dossier]

    def kill_and_restart_the_front() -> None:
        city.kill_front()
        threading.Thread(target=city.start_front).start()  # a new replica on the same address

    result = certify_with_fault(city, pages, kill_and_restart_the_front)
    issued_then_another(city, pages, result)


def test_postgresql_stopped_immediately_and_started_again_loses_and_doubles_nothing(
    city: City, postgres: PostgresServer, reference_dossier: list[tuple[str, bytes]]
) -> None:
    city.add_worker()
    pages = [data for _, data in reference_dossier]

    def crash_and_restart_postgres() -> None:
        postgres.stop(immediate=True)

        def back() -> None:
            time.sleep(3)
            postgres.start()

        threading.Thread(target=back).start()

    result = certify_with_fault(city, pages, crash_and_restart_postgres, retries=12)
    issued_then_another(city, pages, result)
    assert "Traceback" not in city.logs() or "OperationalError" in city.logs()


def test_workers_killed_one_after_the_other_under_a_stream_of_dossiers(
    city: City, reference_dossier: list[tuple[str, bytes]]
) -> None:
    workers = [city.add_worker(), city.add_worker()]
    pages = [data for _, data in reference_dossier]
    results: list[CertifyResult] = []

    def kiosk(n: int) -> None:
        with KioskClient(city.target, kiosk_id=f"kiosk-{n}", retries=6, timeout=240) as client:
            results.append(client.certify(pages))

    threads = [threading.Thread(target=kiosk, args=(n,)) for n in range(4)]
    for thread in threads:
        thread.start()
    time.sleep(4)
    workers[0].send_signal(signal.SIGKILL)  # kill -9 with dossiers in hand
    city.add_worker()
    for thread in threads:
        thread.join(300)
    issued = {r.request_id: r.issued.code for r in results if r.issued is not None}
    assert len(issued) == 4, [r.events[-1] for r in results]
    tally = check(city, issued)
    assert (tally.acknowledged, tally.lost, tally.duplicates, tally.unproven) == (4, 0, 0, 0)


def test_a_received_dossier_whose_front_and_queue_are_lost_is_finished_by_the_reconciler(
    tmp_path: Path, postgres: PostgresServer, reference_dossier: list[tuple[str, bytes]]
) -> None:
    """The front killed and Redis wiped just after the receipt: no kiosk comes back, yet the
    dossier it was given a code for is decided, once, from what the receipt's transaction kept."""
    port = free_port()
    (tmp_path / "redis").mkdir()
    redis = start_redis(tmp_path / "redis", port)
    town = City(
        tmp_path,
        f"redis://127.0.0.1:{port}/0",
        registry_url=postgres.url,
        extra=("--queue-reconcile-seconds=2",),
    )
    town.start_front()
    try:
        first = town.add_worker()
        pages = [data for _, data in reference_dossier]
        received: list[cpb.CertifyEvent] = []

        def lose_everything(event: cpb.CertifyEvent) -> None:
            if event.HasField("received") and not received:
                received.append(event)
                first.send_signal(signal.SIGSTOP)  # before it can decide
                town.kill_front()
                subprocess.run(
                    ["redis-cli", "-p", str(port), "FLUSHALL"], check=True, capture_output=True
                )
                first.send_signal(signal.SIGKILL)

        kiosk = KioskClient(town.target, retries=0, timeout=120)
        with kiosk, pytest.raises(grpc.RpcError):
            kiosk.certify(pages, on_event=lose_everything)
        assert received
        request_id = received[0].request_id
        assert not town.copies_per_request().get(request_id)
        town.add_worker()  # its reconciler finds the dossier no one holds
        deadline = time.monotonic() + 120
        while not town.copies_per_request().get(request_id) and time.monotonic() < deadline:
            time.sleep(0.5)
        assert town.copies_per_request().get(request_id) == 1, town.logs()[-3000:]
        assert "submitting it again" in town.logs()
        town.start_front()
        with KioskClient(town.target) as kiosk:
            replay = kiosk.certify(pages, request_id=request_id)  # the kiosk, back, asks again
        assert replay.issued is not None
        tally = check(town, {request_id: replay.issued.code})
        assert (tally.lost, tally.duplicates, tally.unproven) == (0, 0, 0)
    finally:
        town.stop()
        redis.kill()
        redis.wait(10)
