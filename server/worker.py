"""``saoy worker``: takes dossiers off the work queue and works them — admission to analysis of
each page as it arrives, then validation, the decision, rendering, signing and storage — with
the same Certifier, registry, blobs and log as a server. Its answers go back to the front that
holds the kiosk's stream through the dossier's own stream.

A worker acknowledges a dossier only once its outcome is committed; a worker killed mid-dossier
leaves it pending, and another takes it over after ``queue_claim_seconds`` and works it again
from its first page (a decision already committed is replayed, never taken twice). A dossier
handed out ``queue_max_deliveries`` times goes to the dead letters with an error for its kiosk.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import socket
import time

from prometheus_client import Counter, Gauge, Histogram

from saoy.core import pipeline as pl
from saoy.core.errors import SaoyError
from saoy.core.workqueue import (
    ANSWER,
    CANCEL,
    DETACH,
    END,
    ERROR,
    EVENT,
    PAGE,
    RESUME,
    Delivery,
    WorkQueue,
)
from saoy.server.dossiers import error_payload
from saoy.server.events import event_to_proto
from saoy.server.metrics import Metrics
from saoy.server.settings import Settings

log = logging.getLogger(__name__)


class WorkerMetrics:
    """The worker's own figures, beside the stage timings its Certifier reports."""

    def __init__(self, metrics: Metrics) -> None:
        registry = metrics.registry
        self.dossiers = Counter(
            "saoy_worker_dossiers_total",
            "Dossiers a worker finished, by how",
            ["outcome"],  # done, cancelled, abandoned, failed, dead
            registry=registry,
        )
        self.takeovers = Counter(
            "saoy_worker_takeovers_total",
            "Dossiers taken over from a worker that went silent",
            registry=registry,
        )
        self.busy = Counter(
            "saoy_worker_busy_seconds_total",
            "Seconds this worker spent with at least one dossier in hand",
            registry=registry,
        )
        self.in_hand = Gauge(
            "saoy_worker_dossiers_in_hand", "Dossiers this worker holds now", registry=registry
        )
        self.wait = Histogram(
            "saoy_worker_queue_wait_seconds",
            "From a dossier's submission to a worker taking it",
            buckets=(0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 30, 60, 120),
            registry=registry,
        )


class Worker:
    """Takes up to ``concurrency`` dossiers at a time off the queue and works them."""

    def __init__(
        self,
        queue: WorkQueue,
        certifier: pl.Certifier,
        *,
        name: str,
        concurrency: int,
        input_idle_seconds: float,
        metrics: WorkerMetrics | None = None,
    ) -> None:
        self.queue = queue
        self.certifier = certifier
        self.name = name
        self.concurrency = concurrency
        self.input_idle_seconds = input_idle_seconds
        self.metrics = metrics
        self._held: dict[asyncio.Task[None], Delivery] = {}
        self._detached: set[str] = set()  # dossiers whose stream dropped: held, not worked

    async def run(self, stop: asyncio.Event) -> None:
        await self.queue.ensure_group()
        await self.queue.present(self.name)
        log.info("worker %s taking dossiers (%d at a time)", self.name, self.concurrency)
        last_touch = 0.0
        busy_since: float | None = None
        while not stop.is_set():
            try:
                now = time.monotonic()
                if now - last_touch > min(1.0, self.queue.claim_idle / 3):
                    await self.queue.present(self.name)
                    await self.queue.touch(self.name, [d.entry for d in self._held.values()])
                    last_touch = now
                free = self.concurrency - (len(self._held) - len(self._detached))
                if free > 0:
                    taken = await self.queue.reclaim(self.name, free)
                    if taken and self.metrics is not None:
                        self.metrics.takeovers.inc(len(taken))
                    if not taken:
                        taken = await self.queue.take(self.name, free, block_seconds=1.0)
                    for delivery in taken:
                        self._start(delivery)
                else:
                    await asyncio.wait(
                        list(self._held), timeout=1.0, return_when=asyncio.FIRST_COMPLETED
                    )
            except SaoyError as error:  # Redis away: wait for it, keep what is in hand
                log.warning("worker %s: %s", self.name, error.message)
                await asyncio.sleep(1.0)
                with contextlib.suppress(SaoyError):  # back without its data: group again
                    await self.queue.ensure_group()
            if self.metrics is not None:
                now = time.monotonic()
                if busy_since is not None:
                    self.metrics.busy.inc(now - busy_since)
                busy_since = now if self._held else None
                self.metrics.in_hand.set(len(self._held))
        with contextlib.suppress(SaoyError):
            await self.queue.absent(self.name)
        for task in list(self._held):
            task.cancel()
        await asyncio.gather(*self._held, return_exceptions=True)

    def _start(self, delivery: Delivery) -> None:
        if self.metrics is not None and delivery.deliveries == 1:
            self.metrics.wait.observe(max(0.0, time.time() - delivery.job.submitted_at))
        task = asyncio.ensure_future(self._work(delivery))
        self._held[task] = delivery
        task.add_done_callback(self._held.pop)

    def _count(self, outcome: str) -> None:
        if self.metrics is not None:
            self.metrics.dossiers.labels(outcome=outcome).inc()

    async def _work(self, delivery: Delivery) -> None:
        job = delivery.job
        dossier_id = job.dossier_id
        if delivery.deliveries > self.queue.max_deliveries:
            log.error("dossier %s failed %d times: dead letter", dossier_id, delivery.deliveries)
            failure = SaoyError(
                "the dossier could not be processed; it was set aside for the operators."
                " Retry with a new request_id",
                reason="DOSSIER_FAILED",
            )
            await self.queue.publish(dossier_id, ERROR, error_payload(failure))
            await self.queue.bury(delivery, "delivered too often")
            self._count("dead")
            return
        deadline = None
        if job.deadline_at is not None:
            deadline = time.monotonic() + (job.deadline_at - time.time())
        ctx = pl.DossierContext(
            request_id=job.request_id,
            kiosk_id=job.kiosk_id,
            deadline=deadline,
            dossier_id=dossier_id,
            identity_evidence=job.identity_evidence,
            hints=dict(job.hints),
        )
        after = "0-0"
        last_input = time.monotonic()
        try:
            while True:
                inputs = await self.queue.inputs(dossier_id, after, block_seconds=1.0)
                if not inputs:
                    silent = time.monotonic() - last_input
                    if silent > self.input_idle_seconds or (
                        silent > 5 and not await self.queue.alive(delivery.entry)
                    ):  # the front went away, or Redis lost the dossier (its front resubmits)
                        log.info("dossier %s: no more input; given up", dossier_id)
                        await self.queue.finish(delivery)
                        self._count("abandoned")
                        return
                    continue
                last_input = time.monotonic()
                for item in inputs:
                    after = item.entry
                    if item.kind == DETACH:  # its stream dropped: a resumed one may follow
                        self._detached.add(dossier_id)
                        continue
                    self._detached.discard(dossier_id)
                    if item.kind == RESUME:
                        continue
                    if item.kind == PAGE:
                        await self._page(ctx, item.entry, item.index, item.data)
                    elif item.kind == END:
                        await self._decide(ctx)
                        await self.queue.finish(delivery)
                        self._count("done")
                        return
                    elif item.kind == CANCEL:
                        await self.queue.finish(delivery)
                        self._count("cancelled")
                        return
        except SaoyError as error:
            await self.queue.publish(dossier_id, ERROR, error_payload(error))
            await self.queue.finish(delivery)
            self._count("failed")
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("dossier %s failed in the worker", dossier_id)
            failure = SaoyError(
                "the dossier could not be processed; retry with the same request_id",
                reason="WORKER_FAILED",
            )
            await self.queue.publish(dossier_id, ERROR, error_payload(failure))
            await self.queue.bury(delivery, "failed in the worker")
            self._count("failed")
        finally:
            self._detached.discard(dossier_id)
            ctx.discard()

    async def _page(self, ctx: pl.DossierContext, entry: str, index: int, data: bytes) -> None:
        event = await self.certifier.add_page(ctx, index, data)
        await self.queue.publish(
            ctx.dossier_id, ANSWER, event_to_proto(event).SerializeToString(), answers=entry
        )

    async def _decide(self, ctx: pl.DossierContext) -> None:
        replay = await self.certifier.replay(ctx.kiosk_id, ctx.request_id)
        if replay is not None:  # decided by a worker that died before acknowledging it
            await self.queue.publish(
                ctx.dossier_id, EVENT, event_to_proto(replay).SerializeToString()
            )
            return
        async for event in self.certifier.process(ctx):
            await self.queue.publish(
                ctx.dossier_id, EVENT, event_to_proto(event).SerializeToString()
            )


def worker_name() -> str:
    return f"{socket.gethostname()}-{os.getpid()}"


async def run_worker(settings: Settings) -> None:
    """Run a worker until SIGTERM or SIGINT: a server's pipeline (its HTTP port serves
    /metrics and health) taking dossiers off ``settings.queue_url``."""
    from saoy.server.app import create_server

    metrics = Metrics()
    server = await create_server(settings, metrics=metrics)
    queue = WorkQueue(
        settings.queue_url,
        claim_idle=settings.queue_claim_seconds,
        max_deliveries=settings.queue_max_deliveries,
    )
    worker = Worker(
        queue,
        server.certifier,
        name=worker_name(),
        concurrency=settings.worker_concurrency,
        input_idle_seconds=settings.stream_idle_seconds,
        metrics=WorkerMetrics(metrics),
    )
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    try:
        await worker.run(stop)
    finally:
        await queue.close()
        await server.stop(grace=1.0)
