"""A front and `saoy worker` processes sharing a real Redis: dossiers worked by the workers,
a worker killed mid-dossier, Redis killed and wiped mid-dossier, no workers, a backlog."""

from __future__ import annotations

import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest
import redis

from saoy.clients.sdk import KioskClient
from saoy.core.workqueue import DossierJob, WorkQueue
from saoy.v1 import certification_pb2 as cpb
from tests import face_photos
from tests.city import RATE_LIMITS_OFF, start_worker
from tests.conftest import RunningServer, start_server
from tests.linkcut import Relay
from tests.ports import free_port
from tests.redisd import start_redis
from tests.test_rate_limits import retry_delay

CLAIM_SECONDS = 2.0
redis_url = face_photos.redis_url  # the tests' own redis-server (a fixture)


class City:
    """A front in this process and worker processes on the same data dir and Redis."""

    def __init__(self, data_dir: Path, queue_url: str, **front: object) -> None:
        self.data_dir = data_dir
        self.queue_url = queue_url
        self.front: RunningServer = start_server(
            data_dir,
            identity="off",
            queue_url=queue_url,
            queue_claim_seconds=CLAIM_SECONDS,
            **front,
        )
        self.workers: list[subprocess.Popen[bytes]] = []

    def add_worker(self) -> subprocess.Popen[bytes]:
        common = [
            f"--data-dir={self.data_dir}",
            f"--queue-url={self.queue_url}",
            "--host=127.0.0.1",
            "--identity=off",
            "--workers=1",
            f"--queue-claim-seconds={CLAIM_SECONDS}",
            "--checkpoint-seconds=0.5",
            *RATE_LIMITS_OFF,
        ]
        name = f"worker-{len(self.workers)}"
        proc = start_worker(self.data_dir, name, common, self.front.http)
        self.workers.append(proc)
        return proc

    def stop(self) -> None:
        for proc in self.workers:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        for proc in self.workers:
            try:
                proc.wait(20)
            except subprocess.TimeoutExpired:
                proc.kill()
        self.front.stop()


@pytest.fixture
def queue_url(redis_url: str) -> Iterator[str]:
    """A Redis database of the test's own on the shared test server, emptied after it."""
    url = redis_url.rsplit("/", 1)[0] + "/7"
    yield url
    redis.Redis.from_url(url).flushdb()


def copies_of(city: City, request_id: str) -> int:
    import sqlite3

    with sqlite3.connect(city.data_dir / "registry.sqlite3") as db:
        row = db.execute(
            "SELECT count(*) FROM copies JOIN dossiers ON dossiers.id = copies.dossier_id"
            " WHERE dossiers.request_id = ?",
            (request_id,),
        ).fetchone()
    return int(row[0])


def stage_count(server: RunningServer, stage: str) -> float:
    value = server.server.metrics.registry.get_sample_value(
        "saoy_stage_duration_seconds_count", {"stage": stage}
    )
    return value or 0.0


def test_workers_work_the_dossiers_a_front_receives(
    tmp_path: Path, queue_url: str, reference_dossier: list[tuple[str, bytes]]
) -> None:
    city = City(tmp_path, queue_url)
    try:
        city.add_worker()
        city.add_worker()
        pages = [data for _, data in reference_dossier]
        with KioskClient(city.front.target) as kiosk:
            result = kiosk.certify(pages)
            again = kiosk.certify(pages, request_id=result.request_id)  # a replay
        kinds = [e.WhichOneof("event") for e in result.events]
        assert kinds.count("page_accepted") == len(pages)
        assert kinds[-3:] == ["recognized", "validated", "issued"], kinds
        issued = result.events[-1].issued
        assert again.events[-1].issued.code == issued.code
        assert copies_of(city, result.request_id) == 1
        # The front read nothing itself: the workers did.
        assert stage_count(city.front, "ocr") == 0
        assert stage_count(city.front, "admit") == 0
        import urllib.request

        with urllib.request.urlopen(f"{city.front.http}/v/{issued.code}") as page:
            assert page.status == 200
        metrics = urllib.request.urlopen(f"{city.front.http}/metrics").read().decode()
        assert "saoy_queue_workers" in metrics
    finally:
        city.stop()


def test_a_worker_killed_mid_dossier_is_taken_over_with_no_copy_lost_or_doubled(
    tmp_path: Path, queue_url: str, reference_dossier: list[tuple[str, bytes]]
) -> None:
    city = City(tmp_path, queue_url)
    try:
        first = city.add_worker()
        killed: list[bool] = []

        def on_event(event: object) -> None:
            if not killed and event.WhichOneof("event") == "page_accepted":
                first.send_signal(signal.SIGKILL)  # kill -9, mid-dossier
                first.wait(10)
                killed.append(True)

        pages = [data for _, data in reference_dossier]
        with KioskClient(city.front.target) as kiosk:
            started = time.monotonic()
            result_holder: list[object] = []

            import threading

            def run() -> None:
                result_holder.append(kiosk.certify(pages, on_event=on_event))

            thread = threading.Thread(target=run)
            thread.start()
            while not killed and time.monotonic() - started < 120:
                time.sleep(0.1)
            assert killed, "no page was accepted"
            city.add_worker()  # the second worker takes the dossier over
            thread.join(240)
        assert result_holder, "the dossier did not finish"
        result = result_holder[0]
        terminal = result.events[-1]  # type: ignore[attr-defined]
        assert terminal.WhichOneof("event") == "issued", terminal
        assert copies_of(city, result.request_id) == 1  # type: ignore[attr-defined]
        kinds = [e.WhichOneof("event") for e in result.events]  # type: ignore[attr-defined]
        assert kinds.count("issued") == 1 and kinds.count("recognized") == 1
        assert kinds.count("page_accepted") == len(pages)
        log = (tmp_path / "worker-1.log").read_text()
        assert "Traceback" not in log
    finally:
        city.stop()


def test_redis_killed_and_wiped_mid_dossier_loses_nothing(
    tmp_path: Path, reference_dossier: list[tuple[str, bytes]]
) -> None:
    port = free_port()
    store = tmp_path / "redis"
    store.mkdir()
    server = start_redis(store, port)
    city = City(tmp_path, f"redis://127.0.0.1:{port}/0")
    try:
        city.add_worker()
        restarted: list[subprocess.Popen[bytes]] = []

        def on_event(event: object) -> None:
            if not restarted and event.WhichOneof("event") == "page_accepted":
                server.send_signal(signal.SIGKILL)
                server.wait(10)
                restarted.append(start_redis(store, port))  # back, empty

        pages = [data for _, data in reference_dossier]
        with KioskClient(city.front.target, retries=6) as kiosk:
            result = kiosk.certify(pages, on_event=on_event)
        assert restarted
        assert result.events[-1].WhichOneof("event") == "issued", result.events[-1]
        assert copies_of(city, result.request_id) == 1
        # And the queue works on: the next dossier too.
        with KioskClient(city.front.target) as kiosk:
            assert kiosk.certify(pages).events[-1].WhichOneof("event") == "issued"
    finally:
        city.stop()
        for proc in (server, *locals().get("restarted", [])):
            if proc.poll() is None:
                proc.kill()


def test_with_no_worker_a_dossier_is_refused_before_its_pages(
    tmp_path: Path, queue_url: str, reference_dossier: list[tuple[str, bytes]]
) -> None:
    city = City(tmp_path, queue_url)
    try:
        with KioskClient(city.front.target, retries=0) as kiosk:
            started = time.monotonic()
            with pytest.raises(grpc.RpcError) as raised:
                kiosk.certify([reference_dossier[0][1]])
        assert raised.value.code() is grpc.StatusCode.UNAVAILABLE
        assert "no worker" in (raised.value.details() or "")
        assert retry_delay(raised.value) > 0
        assert time.monotonic() - started < 15
    finally:
        city.stop()


def test_a_backlog_the_workers_cannot_clear_in_time_is_refused_with_retry_info(
    tmp_path: Path, queue_url: str, reference_dossier: list[tuple[str, bytes]]
) -> None:
    import asyncio

    city = City(tmp_path, queue_url, queue_max_wait_seconds=20.0)
    try:

        async def pile_up() -> None:
            queue = WorkQueue(queue_url)
            await queue.ensure_group()
            await queue.present("a-busy-worker")  # one worker, seen now
            for n in range(12):  # 12 dossiers waiting: ~36 s of work for one worker
                await queue.submit(DossierJob(f"d{n}", f"request-{n:04d}", "kiosk-x"))
            await queue.close()

        asyncio.run(pile_up())
        with (
            KioskClient(city.front.target, retries=0) as kiosk,
            pytest.raises(grpc.RpcError) as raised,
        ):
            kiosk.certify([reference_dossier[0][1]])
        assert raised.value.code() is grpc.StatusCode.RESOURCE_EXHAUSTED
        assert "saturated" in (raised.value.details() or "")
        assert retry_delay(raised.value) >= 1
        backlog = asyncio.run(_backlog(queue_url))
        assert backlog.waiting == 12
    finally:
        city.stop()


async def _backlog(url: str):  # type: ignore[no-untyped-def]
    queue = WorkQueue(url)
    try:
        return await queue.backlog()
    finally:
        await queue.close()


def test_a_kiosk_whose_link_drops_resumes_without_sending_its_pages_again(
    tmp_path: Path, queue_url: str, reference_dossier: list[tuple[str, bytes]]
) -> None:
    city = City(tmp_path, queue_url)
    relay = Relay(city.front.server.grpc_port)
    try:
        city.add_worker()
        pages = [data for _, data in reference_dossier]
        cut: list[bool] = []

        def on_event(event: cpb.CertifyEvent) -> None:
            if not cut and event.HasField("page_accepted") and event.page_accepted.page == 1:
                cut.append(True)
                relay.cut()  # the kiosk's network drops mid-dossier

        with KioskClient(relay.target, retries=4) as kiosk:
            result = kiosk.certify(pages, on_event=on_event)
        assert cut
        kinds = [e.WhichOneof("event") for e in result.events]
        assert kinds.count("page_accepted") == len(pages), kinds  # the held ones told again
        assert kinds[-1] == "issued", result.events[-1]
        assert copies_of(city, result.request_id) == 1
        received = city.front.server.metrics.registry.get_sample_value("saoy_received_bytes_total")
        # Every page crossed the link once; at most one, cut mid-way, went again.
        assert received is not None
        assert sum(map(len, pages)) <= received <= sum(map(len, pages)) + max(map(len, pages))
    finally:
        relay.close()
        city.stop()
