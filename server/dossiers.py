"""Where a Certify stream's dossier is worked: in this process (the embedded default), or by
``saoy worker`` processes through the work queue (``--queue-url``). Both answer the same three
calls with the same wire events, so the servicer does not know which it talks to."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Protocol

from prometheus_client import CollectorRegistry, Gauge

from saoy.core import errors
from saoy.core import pipeline as pl
from saoy.core.reception.intakes import Intake, Intakes
from saoy.core.workqueue import (
    ANSWER,
    CANCEL,
    DETACH,
    END,
    ERROR,
    EVENT,
    PAGE,
    RESUME,
    DossierJob,
    Output,
    WorkQueue,
)
from saoy.server.events import event_to_proto
from saoy.v1 import certification_pb2 as pb

log = logging.getLogger(__name__)

TERMINAL = ("issued", "needs_review", "rejected")


class DossierRunner(Protocol):
    async def open(self, ctx: pl.DossierContext, *, resume: bool) -> list[pb.CertifyEvent]:
        """The dossier's header was accepted: make room for it (or refuse it, when saturated).
        With ``resume``, take up the dossier in flight for the same kiosk and request if there
        is one; return what the kiosk is told first (Resumed, then each held page's verdict)."""
        ...

    async def add_page(self, ctx: pl.DossierContext, index: int, data: bytes) -> pb.CertifyEvent:
        """Admit one page; the answer is page_accepted or page_rejected. Bad files raise."""
        ...

    def process(self, ctx: pl.DossierContext) -> AsyncIterator[pb.CertifyEvent]:
        """Every page is in: recognize, validate, decide; the last event is terminal."""
        ...

    async def intake(self, ctx: pl.DossierContext) -> Intake | None:
        """What to keep with the dossier's receipt so that it can be worked again if its work
        is lost (a queued dossier's job and pages); None where nothing outlives the stream."""
        ...

    async def discard(self, ctx: pl.DossierContext, *, dropped: bool) -> None:
        """The stream ended: finished or refused (drop whatever of the dossier is still in
        flight), or ``dropped`` (keep it a while for a resumed stream, where one can be)."""


def resumed(pages: Sequence[int] = (), ended: bool = False) -> pb.CertifyEvent:
    """The first answer to a resumed stream: the pages held, and whether End was in."""
    return pb.CertifyEvent(resumed=pb.Resumed(pages=list(pages), ended=ended))


class LocalDossiers:
    """The dossier worked in this process, by the Certifier."""

    def __init__(self, certifier: pl.Certifier) -> None:
        self.certifier = certifier

    async def open(self, ctx: pl.DossierContext, *, resume: bool) -> list[pb.CertifyEvent]:
        return [resumed()] if resume else []  # nothing outlives its stream here

    async def add_page(self, ctx: pl.DossierContext, index: int, data: bytes) -> pb.CertifyEvent:
        return event_to_proto(await self.certifier.add_page(ctx, index, data))

    async def process(self, ctx: pl.DossierContext) -> AsyncIterator[pb.CertifyEvent]:
        async for event in self.certifier.process(ctx):
            yield event_to_proto(event)

    async def intake(self, ctx: pl.DossierContext) -> Intake | None:
        return None

    async def discard(self, ctx: pl.DossierContext, *, dropped: bool) -> None:
        ctx.discard()


def error_payload(error: errors.SaoyError) -> bytes:
    """A domain error as a worker sends it to the front."""
    return json.dumps(
        {
            "status": error.status,
            "reason": error.reason,
            "message": error.message,
            "field": error.field,
            "retry_after": error.retry_after,
        }
    ).encode()


def _error_classes() -> dict[str, type[errors.SaoyError]]:
    found: dict[str, type[errors.SaoyError]] = {}
    pending = [errors.SaoyError]
    while pending:
        cls = pending.pop()
        found.setdefault(cls.status, cls)
        pending.extend(cls.__subclasses__())
    return found


def error_of(payload: bytes) -> errors.SaoyError:
    """The domain error a worker sent, raised again at the front with the same status."""
    data = json.loads(payload)
    cls = _error_classes().get(data.get("status", ""), errors.SaoyError)
    return cls(
        data.get("message") or "the dossier could not be processed",
        reason=data.get("reason"),
        field=data.get("field"),
        retry_after=data.get("retry_after"),
    )


@dataclass
class _Ticket:
    """The front's hold on one queued dossier: what it sent (to send again if Redis loses it),
    how far it has read the worker's answers, and which events it already forwarded."""

    job: DossierJob
    entry: str = ""
    sent: list[tuple[str, int, bytes]] = field(default_factory=list)
    after: str = "0-0"
    forwarded: set[str] = field(default_factory=set)
    started: float = field(default_factory=time.monotonic)
    ended: bool = False  # End is on the queue (a resumed dossier may have it already)


class QueuedDossiers:
    """The dossier worked by ``saoy worker`` processes through the work queue."""

    def __init__(
        self,
        queue: WorkQueue,
        *,
        max_wait_seconds: float,
        poll_seconds: float = 2.0,
    ) -> None:
        self.queue = queue
        self.max_wait_seconds = max_wait_seconds
        self.poll_seconds = poll_seconds
        self.dossier_seconds = 3.0  # running mean of a dossier's time at the workers
        self._tickets: dict[int, _Ticket] = {}  # by stream (its context), not by dossier

    async def open(self, ctx: pl.DossierContext, *, resume: bool) -> list[pb.CertifyEvent]:
        if resume:
            found = await self.queue.recall(ctx.kiosk_id, ctx.request_id)
            if found is not None:
                return await self._resume(ctx, found.job, found.entry)
        await self._submit(ctx)
        return [resumed()] if resume else []

    async def _resume(
        self, ctx: pl.DossierContext, job: DossierJob, entry: str
    ) -> list[pb.CertifyEvent]:
        """Take up a dossier whose stream dropped: what was sent is on the queue; wait for the
        worker's verdict on each page sent, and tell the kiosk which pages it need not send."""
        ctx.dossier_id = job.dossier_id
        ticket = _Ticket(job, entry)
        self._tickets[id(ctx)] = ticket
        inputs = await self.queue.all_inputs(job.dossier_id)
        ticket.sent = [(i.kind, i.index, i.data) for i in inputs if i.kind in (PAGE, END)]
        ticket.ended = any(i.kind == END for i in inputs)
        pending = {i.entry: i.index for i in inputs if i.kind == PAGE}
        verdicts: dict[int, pb.CertifyEvent] = {}
        if pending:
            async for output in self._outputs(ticket, [""]):
                if output.kind == ERROR:
                    raise error_of(output.payload)
                if output.kind == ANSWER and output.answers in pending:
                    index = pending.pop(output.answers)
                    verdicts[index] = pb.CertifyEvent.FromString(output.payload)
                if not pending:
                    break
        ticket.after = "0-0"  # the dossier's events, if any, are told again from the first
        held = sorted(i for i, event in verdicts.items() if event.HasField("page_accepted"))
        if not ticket.ended:
            await self.queue.send(job.dossier_id, RESUME)  # the worker waits on for the rest
        return [resumed(held, ticket.ended), *(verdicts[i] for i in held)]

    async def _submit(self, ctx: pl.DossierContext) -> None:
        backlog = await self.queue.backlog()
        if backlog.workers == 0:
            raise errors.Unavailable(
                "no worker is taking dossiers right now: retry with the same request_id",
                reason="NO_WORKERS",
                retry_after=10.0,
            )
        clear = (backlog.waiting + backlog.working) * self.dossier_seconds / backlog.workers
        budget = self.max_wait_seconds
        if ctx.deadline is not None:
            budget = min(budget, ctx.deadline - time.monotonic())
        if clear > budget:
            raise errors.TooLarge(
                f"the service is saturated: about {clear:.0f} s of dossiers are waiting;"
                " retry with the same request_id later",
                reason="BACKLOG",
                retry_after=max(1.0, clear - budget),
            )
        remaining = None if ctx.deadline is None else ctx.deadline - time.monotonic()
        job = DossierJob(
            dossier_id=ctx.dossier_id,
            request_id=ctx.request_id,
            kiosk_id=ctx.kiosk_id,
            deadline_at=None if remaining is None else time.time() + remaining,
            hints=tuple(sorted(ctx.hints.items())),
            identity_evidence=ctx.identity_evidence,
            submitted_at=time.time(),
        )
        ticket = _Ticket(job)
        ticket.entry = await self.queue.submit(job)
        await self.queue.remember(job, ticket.entry)
        self._tickets[id(ctx)] = ticket

    async def _send(self, ticket: _Ticket, kind: str, index: int = 0, data: bytes = b"") -> str:
        ticket.sent.append((kind, index, data))
        return await self.queue.send(ticket.job.dossier_id, kind, index, data)

    async def _resubmit(self, ticket: _Ticket) -> str:
        """Redis lost the dossier's work (a restart without its data): submit it again, with
        everything sent so far. Returns the entry of the last input sent."""
        log.warning("the work queue lost a dossier in flight: submitting it again")
        ticket.after = "0-0"
        ticket.entry = await self.queue.submit(ticket.job)
        await self.queue.remember(ticket.job, ticket.entry)
        last = ""
        for kind, index, data in ticket.sent:
            last = await self.queue.send(ticket.job.dossier_id, kind, index, data)
        return last

    async def _outputs(self, ticket: _Ticket, waiting_for: list[str]) -> AsyncIterator[Output]:
        """The worker's outputs for the dossier, as they come. ``waiting_for`` holds the input
        awaited; it is updated when the dossier is submitted again."""
        dossier_id = ticket.job.dossier_id
        while True:
            found = await self.queue.outputs(dossier_id, ticket.after, self.poll_seconds)
            if not found and not await self.queue.alive(ticket.entry):
                found = await self.queue.outputs(dossier_id, ticket.after, 0)
                if not found:
                    waiting_for[0] = await self._resubmit(ticket) or waiting_for[0]
                    continue
            for output in found:
                ticket.after = output.entry
                yield output

    async def add_page(self, ctx: pl.DossierContext, index: int, data: bytes) -> pb.CertifyEvent:
        ticket = self._tickets[id(ctx)]
        waiting_for = [await self._send(ticket, PAGE, index, data)]
        async for output in self._outputs(ticket, waiting_for):
            if output.kind == ERROR:
                raise error_of(output.payload)
            if output.kind == ANSWER and output.answers == waiting_for[0]:
                return pb.CertifyEvent.FromString(output.payload)
        raise AssertionError("unreachable")

    async def process(self, ctx: pl.DossierContext) -> AsyncIterator[pb.CertifyEvent]:
        ticket = self._tickets[id(ctx)]
        ticket.started = time.monotonic()
        waiting_for = [""]
        if not ticket.ended:
            ticket.ended = True
            waiting_for[0] = await self._send(ticket, END)
        async for output in self._outputs(ticket, waiting_for):
            if output.kind == ERROR:
                raise error_of(output.payload)
            if output.kind != EVENT:
                continue  # a page answered again by a worker that took the dossier over
            event = pb.CertifyEvent.FromString(output.payload)
            kind = event.WhichOneof("event") or ""
            if kind in ticket.forwarded:
                continue
            ticket.forwarded.add(kind)
            yield event
            if kind in TERMINAL:
                spent = time.monotonic() - ticket.started
                self.dossier_seconds = 0.8 * self.dossier_seconds + 0.2 * spent
                return

    async def intake(self, ctx: pl.DossierContext) -> Intake | None:
        ticket = self._tickets[id(ctx)]
        pages: dict[int, bytes] = {}
        for kind, index, data in ticket.sent:
            if kind == PAGE:
                pages[index] = data  # a rescan replaces the page rejected before it
        return Intake(ticket.job.fields(), tuple(pages[i] for i in sorted(pages)))

    async def discard(self, ctx: pl.DossierContext, *, dropped: bool) -> None:
        ticket = self._tickets.pop(id(ctx), None)
        ctx.discard()
        if ticket is None or any(k in TERMINAL for k in ticket.forwarded):
            return
        with contextlib.suppress(errors.Unavailable):  # else the worker gives it up when idle
            await self.queue.send(ticket.job.dossier_id, DETACH if dropped else CANCEL)


class QueueGauges:
    """The queue's state for /metrics, refreshed every few seconds: dossiers waiting and in
    hand, live workers, the oldest unacknowledged dossier's age, dead letters. No labels."""

    def __init__(self, queue: WorkQueue, registry: CollectorRegistry, every: float = 5.0) -> None:
        self.queue = queue
        self.every = every
        self.waiting = Gauge(
            "saoy_queue_waiting_dossiers", "Dossiers no worker has taken yet", registry=registry
        )
        self.working = Gauge(
            "saoy_queue_working_dossiers",
            "Dossiers taken by a worker, not yet acknowledged",
            registry=registry,
        )
        self.workers = Gauge(
            "saoy_queue_workers", "Workers seen taking or holding dossiers", registry=registry
        )
        self.oldest = Gauge(
            "saoy_queue_oldest_seconds",
            "Age of the oldest dossier not yet acknowledged (queue lag)",
            registry=registry,
        )
        self.dead = Gauge(
            "saoy_queue_dead_letters", "Dossiers in the dead-letter stream", registry=registry
        )

    async def refresh(self) -> None:
        backlog = await self.queue.backlog()
        self.waiting.set(backlog.waiting)
        self.working.set(backlog.working)
        self.workers.set(backlog.workers)
        self.oldest.set(backlog.oldest_seconds)
        self.dead.set(backlog.dead)

    async def run(self) -> None:
        while True:
            try:
                await self.refresh()
            except errors.SaoyError as error:
                log.warning("queue gauges: %s", error.message)
            await asyncio.sleep(self.every)


class Reconciler:
    """Submits again the queued dossiers that were received (their receipt and intake are
    committed) and are still undecided ``grace`` seconds later with no worker holding them —
    the queue lost them. Every process with a queue runs one; an intake is taken by one of them
    at a time. A dossier submitted ``max_attempts`` times in vain is given up (logged)."""

    def __init__(
        self, queue: WorkQueue, intakes: Intakes, *, grace: float, max_attempts: int
    ) -> None:
        self.queue = queue
        self.intakes = intakes
        self.grace = grace
        self.max_attempts = max_attempts

    async def run(self) -> None:
        while True:
            await asyncio.sleep(self.grace / 2)
            try:
                await self.round()
            except errors.SaoyError as error:  # Redis or the database away: next round
                log.warning("reconciler: %s", error.message)

    async def round(self) -> int:
        """One look; how many dossiers were submitted again."""
        loop = asyncio.get_running_loop()
        await loop.run_in_executor(None, self.intakes.forget_decided)
        now = datetime.now(UTC)
        stale = await loop.run_in_executor(
            None, self.intakes.stale, now - timedelta(seconds=self.grace)
        )
        submitted = 0
        for pending in stale:
            job = DossierJob.of(pending.job)
            if await self.queue.recall(job.kiosk_id, job.request_id) is not None:
                continue  # a worker holds it
            if not await loop.run_in_executor(None, self.intakes.claim, pending, now):
                continue  # another reconciler took it
            if pending.attempts >= self.max_attempts:
                log.error("dossier %s: submitted %d times in vain; given up", job.dossier_id,
                          pending.attempts)  # fmt: skip
                await loop.run_in_executor(None, self.intakes.give_up, job.dossier_id)
                continue
            pages = await loop.run_in_executor(None, self.intakes.pages, job.dossier_id)
            log.warning("dossier %s: its work was lost; submitting it again", job.dossier_id)
            await self.queue.reset(job.dossier_id)
            entry = await self.queue.submit(job)
            await self.queue.remember(job, entry)
            for index, data in enumerate(pages):
                await self.queue.send(job.dossier_id, PAGE, index, data)
            await self.queue.send(job.dossier_id, END)
            submitted += 1
        return submitted
