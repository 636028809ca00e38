"""Dossier work carried by Redis Streams between the fronts that hold kiosks' streams and the
workers that read, decide and sign.

Three kinds of stream:

- ``<prefix>:work`` — one entry per dossier, read by the consumer group ``workers``. A worker
  acknowledges (``XACK``) a dossier only once its outcome is committed in the registry; a
  worker that dies leaves its entries pending, and another takes them over with ``XAUTOCLAIM``
  once they have been idle ``claim_idle`` seconds (a live worker keeps its claims fresh). An
  entry delivered ``max_deliveries`` times goes to ``<prefix>:work:dead`` instead.
- ``<prefix>:d:<dossier>:in`` — what the front received for the dossier, in order: each page's
  bytes, then the end; a cancel when the dossier was refused, a detach when the kiosk's stream
  dropped (the kiosk may come back through any front to resume it: ``<prefix>:r:<kiosk>:
  <request>`` names the dossier in flight). A worker that takes a dossier over reads it again
  from the start.
- ``<prefix>:d:<dossier>:out`` — what the worker has to say, in order: the answer to each page,
  the dossier's events, or an error. Each answer names the input it answers, so a front can
  drop the answers a second worker gives again after a takeover.

Nothing here is personal data beyond what the pages themselves hold: the per-dossier streams
expire ``keep_seconds`` after the dossier ends, and the work entries carry ids and hints only.
Redis may lose acknowledged writes on a restart: the front that holds a dossier's stream notices
its work has vanished (:meth:`WorkQueue.alive`) and submits it again.
"""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from saoy.core.errors import Unavailable

GROUP = "workers"
PAGE, END, CANCEL, DETACH, RESUME = "page", "end", "cancel", "detach", "resume"
ANSWER, EVENT, ERROR = "answer", "event", "error"


@dataclass(frozen=True)
class DossierJob:
    """One dossier to work: who sent it, and what the header said."""

    dossier_id: str
    request_id: str
    kiosk_id: str
    deadline_at: float | None = None  # wall-clock seconds since the epoch; None: no deadline
    hints: tuple[tuple[int, str], ...] = ()  # page index, type the kiosk named
    identity_evidence: dict[str, Any] | None = None
    submitted_at: float = 0.0

    def fields(self) -> dict[str, str]:
        return {
            "dossier": self.dossier_id,
            "request": self.request_id,
            "kiosk": self.kiosk_id,
            "deadline": "" if self.deadline_at is None else repr(self.deadline_at),
            "hints": json.dumps(list(self.hints)),
            "evidence": json.dumps(self.identity_evidence),
            "submitted": repr(self.submitted_at or time.time()),
        }

    @classmethod
    def of(cls, fields: dict[str, str]) -> DossierJob:
        deadline = fields.get("deadline", "")
        return cls(
            dossier_id=fields["dossier"],
            request_id=fields["request"],
            kiosk_id=fields["kiosk"],
            deadline_at=float(deadline) if deadline else None,
            hints=tuple((int(i), str(t)) for i, t in json.loads(fields.get("hints", "[]"))),
            identity_evidence=json.loads(fields.get("evidence", "null")),
            submitted_at=float(fields.get("submitted", "0")),
        )


@dataclass(frozen=True)
class Delivery:
    """A dossier handed to a worker: its work entry, and how often it was handed out."""

    entry: str
    job: DossierJob
    deliveries: int = 1


@dataclass(frozen=True)
class Input:
    """What the front sent for a dossier: a page's bytes, the end, or a cancel."""

    entry: str
    kind: str
    index: int = 0
    data: bytes = b""


@dataclass(frozen=True)
class Output:
    """What a worker said about a dossier: an answer to an input, a dossier event, an error."""

    entry: str
    kind: str
    answers: str  # the input entry answered ('' for dossier events)
    payload: bytes


@dataclass(frozen=True)
class Backlog:
    """How much work waits, and who is there to do it."""

    waiting: int  # dossiers no worker has taken yet
    working: int  # dossiers taken and not yet acknowledged
    workers: int  # workers on the roll within the last claim_idle seconds
    oldest_seconds: float  # age of the oldest dossier not yet acknowledged
    dead: int  # dossiers in the dead-letter stream


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


def _fields(raw: dict[Any, Any]) -> dict[str, bytes]:
    return {_text(k): v if isinstance(v, bytes) else str(v).encode() for k, v in raw.items()}


def _block(seconds: float) -> int | None:
    """XREAD's BLOCK in milliseconds; None (do not wait) for 0, which Redis takes as forever."""
    return int(seconds * 1000) if seconds > 0 else None


def _entry_seconds(entry: str) -> float:
    return int(entry.split("-", 1)[0]) / 1000


class WorkQueue:
    """Redis Streams for dossier work (see the module's documentation). Every Redis failure
    surfaces as :class:`Unavailable` with a message naming the queue."""

    def __init__(
        self,
        url: str,
        *,
        prefix: str = "saoy",
        claim_idle: float = 15.0,
        max_deliveries: int = 3,
        keep_seconds: float = 600.0,
    ) -> None:
        import redis.asyncio as aioredis
        from redis.exceptions import RedisError

        self._redis: Any = aioredis.Redis.from_url(
            url, socket_timeout=10, socket_connect_timeout=5, decode_responses=False
        )
        self._errors: tuple[type[BaseException], ...] = (RedisError, OSError)
        self.prefix = prefix
        self.work = f"{prefix}:work"
        self.dead = f"{prefix}:work:dead"
        self.roll = f"{prefix}:workers"  # sorted set: worker name -> last seen (epoch seconds)
        self.claim_idle = claim_idle
        self.max_deliveries = max_deliveries
        self.keep_seconds = keep_seconds

    def inbox(self, dossier_id: str) -> str:
        return f"{self.prefix}:d:{dossier_id}:in"

    def outbox(self, dossier_id: str) -> str:
        return f"{self.prefix}:d:{dossier_id}:out"

    async def close(self) -> None:
        await self._redis.aclose()

    async def _call(self, name: str, *args: Any, **kwargs: Any) -> Any:
        try:
            return await getattr(self._redis, name)(*args, **kwargs)
        except self._errors as error:
            raise Unavailable(
                f"the work queue (Redis) cannot be reached ({type(error).__name__}):"
                " retry with the same request_id in a moment",
                reason="QUEUE_UNAVAILABLE",
                retry_after=5.0,
            ) from error

    async def ensure_group(self) -> None:
        """Create the workers' consumer group (and the stream) if they do not exist."""
        from redis.exceptions import ResponseError

        try:
            await self._redis.xgroup_create(self.work, GROUP, id="0", mkstream=True)
        except ResponseError as error:
            if "BUSYGROUP" not in str(error):
                raise
        except self._errors as error:
            raise Unavailable(
                f"the work queue (Redis) cannot be reached ({type(error).__name__})",
                reason="QUEUE_UNAVAILABLE",
                retry_after=5.0,
            ) from error

    # -- the front's side --------------------------------------------------------------------

    async def submit(self, job: DossierJob) -> str:
        """Put a dossier on the queue; return its work entry."""
        await self.ensure_group()  # a Redis wiped since start has lost the group too
        entry = await self._call("xadd", self.work, job.fields())
        return _text(entry)

    async def send(self, dossier_id: str, kind: str, index: int = 0, data: bytes = b"") -> str:
        """Append one input to the dossier's inbox; return its entry."""
        entry = await self._call(
            "xadd", self.inbox(dossier_id), {"kind": kind, "index": str(index), "data": data}
        )
        return _text(entry)

    async def outputs(self, dossier_id: str, after: str, block_seconds: float) -> list[Output]:
        """The outputs after entry ``after``, waiting up to ``block_seconds`` for one."""
        found = await self._call(
            "xread", {self.outbox(dossier_id): after}, count=64, block=_block(block_seconds)
        )
        result = []
        for _, entries in found or ():
            for entry, raw in entries:
                fields = _fields(raw)
                result.append(
                    Output(
                        entry=_text(entry),
                        kind=fields["kind"].decode(),
                        answers=fields.get("answers", b"").decode(),
                        payload=fields.get("payload", b""),
                    )
                )
        return result

    def _request_key(self, kiosk_id: str, request_id: str) -> str:
        return f"{self.prefix}:r:{kiosk_id}:{request_id}"

    async def remember(self, job: DossierJob, entry: str) -> None:
        """Name the dossier in flight for its kiosk and request, for a resumed stream."""
        key = self._request_key(job.kiosk_id, job.request_id)
        await self._call("set", key, f"{job.dossier_id} {entry}", ex=int(self.keep_seconds))

    async def recall(self, kiosk_id: str, request_id: str) -> Delivery | None:
        """The dossier in flight for this kiosk and request, if its work is still there."""
        found = await self._call("get", self._request_key(kiosk_id, request_id))
        if not found:
            return None
        _, entry = _text(found).split(" ", 1)
        rows = await self._call("xrange", self.work, min=entry, max=entry, count=1)
        if not rows:
            return None
        fields = {k: v.decode() for k, v in _fields(rows[0][1]).items()}
        return Delivery(entry, DossierJob.of(fields))

    async def all_inputs(self, dossier_id: str) -> list[Input]:
        """Everything the fronts sent for the dossier so far."""
        found = await self._call("xrange", self.inbox(dossier_id), "-", "+")
        return [
            Input(
                entry=_text(entry),
                kind=fields["kind"].decode(),
                index=int(fields.get("index", b"0")),
                data=fields.get("data", b""),
            )
            for entry, raw in found
            for fields in (_fields(raw),)
        ]

    async def reset(self, dossier_id: str) -> None:
        """Forget a dossier's streams (before it is submitted afresh)."""
        await self._call("delete", self.inbox(dossier_id), self.outbox(dossier_id))

    async def alive(self, entry: str) -> bool:
        """Whether a work entry is still there (waiting or taken); False after Redis lost it."""
        found = await self._call("xrange", self.work, min=entry, max=entry, count=1)
        return bool(found)

    async def inputs_present(self, dossier_id: str) -> bool:
        return bool(await self._call("exists", self.inbox(dossier_id)))

    async def backlog(self) -> Backlog:
        """Waiting and taken dossiers, live workers, the oldest unacknowledged dossier's age."""
        await self.ensure_group()
        groups = await self._call("xinfo_groups", self.work)
        group = next((g for g in groups if _text(g["name"]) == GROUP), None)
        waiting = int(group.get("lag") or 0) if group else 0
        working = int(group.get("pending") or 0) if group else 0
        now = time.time()
        await self._call("zremrangebyscore", self.roll, "-inf", now - self.claim_idle)
        workers = int(await self._call("zcard", self.roll))
        oldest = 0.0
        pending = await self._call("xpending_range", self.work, GROUP, "-", "+", 1)
        first = await self._call("xrange", self.work, "-", "+", count=1) if waiting else []
        candidates = [_text(p["message_id"]) for p in pending]
        if first:
            last = _text(group["last-delivered-id"]) if group else "0-0"
            following = await self._call("xrange", self.work, f"({last}", "+", count=1)
            candidates += [_text(e) for e, _ in following]
        if candidates:
            oldest = max(0.0, time.time() - min(_entry_seconds(c) for c in candidates))
        dead = int(await self._call("xlen", self.dead))
        return Backlog(waiting, working, workers, oldest, dead)

    # -- the worker's side -------------------------------------------------------------------

    async def present(self, consumer: str) -> None:
        """``consumer`` is alive and taking dossiers (called every second or so): the roll of
        workers that fronts count before they accept a dossier."""
        await self._call("zadd", self.roll, {consumer: time.time()})

    async def absent(self, consumer: str) -> None:
        """``consumer`` stops: off the roll at once."""
        await self._call("zrem", self.roll, consumer)

    def _deliveries(self, raw: Sequence[Any], counts: dict[str, int]) -> list[Delivery]:
        result = []
        for entry, fields in raw:
            if fields is None:  # deleted while pending (trimmed): nothing to do
                continue
            entry = _text(entry)
            job = DossierJob.of({k: v.decode() for k, v in _fields(fields).items()})
            result.append(Delivery(entry, job, counts.get(entry, 1)))
        return result

    async def take(self, consumer: str, count: int, block_seconds: float) -> list[Delivery]:
        """New dossiers for ``consumer``, waiting up to ``block_seconds``."""
        found = await self._call(
            "xreadgroup",
            GROUP,
            consumer,
            {self.work: ">"},
            count=count,
            block=_block(block_seconds),
        )
        deliveries: list[Delivery] = []
        for _, entries in found or ():
            deliveries += self._deliveries(entries, {})
        return deliveries

    async def reclaim(self, consumer: str, count: int) -> list[Delivery]:
        """Dossiers of workers silent for ``claim_idle`` seconds, now ``consumer``'s."""
        answer = await self._call(
            "xautoclaim",
            self.work,
            GROUP,
            consumer,
            int(self.claim_idle * 1000),
            start_id="0-0",
            count=count,
        )
        entries = answer[1] if answer else []
        if not entries:
            return []
        ids = [_text(e) for e, _ in entries]
        pending = await self._call(
            "xpending_range", self.work, GROUP, min=ids[0], max=ids[-1], count=len(ids) * 4
        )
        counts = {_text(p["message_id"]): int(p["times_delivered"]) for p in pending}
        return self._deliveries(entries, counts)

    async def touch(self, consumer: str, entries: Sequence[str]) -> None:
        """Keep ``consumer``'s claims on ``entries`` fresh, so no one takes them over."""
        if entries:
            await self._call("xclaim", self.work, GROUP, consumer, 0, list(entries), justid=True)

    async def inputs(self, dossier_id: str, after: str, block_seconds: float) -> list[Input]:
        found = await self._call(
            "xread", {self.inbox(dossier_id): after}, count=16, block=_block(block_seconds)
        )
        result = []
        for _, entries in found or ():
            for entry, raw in entries:
                fields = _fields(raw)
                result.append(
                    Input(
                        entry=_text(entry),
                        kind=fields["kind"].decode(),
                        index=int(fields.get("index", b"0")),
                        data=fields.get("data", b""),
                    )
                )
        return result

    async def publish(self, dossier_id: str, kind: str, payload: bytes, answers: str = "") -> None:
        await self._call(
            "xadd", self.outbox(dossier_id), {"kind": kind, "answers": answers, "payload": payload}
        )

    async def finish(self, delivery: Delivery) -> None:
        """The dossier's outcome is committed (or it was abandoned): acknowledge its work and
        let its streams expire."""
        dossier_id = delivery.job.dossier_id
        async with self._redis.pipeline(transaction=True) as pipe:
            pipe.xack(self.work, GROUP, delivery.entry)
            pipe.xdel(self.work, delivery.entry)
            pipe.expire(self.inbox(dossier_id), int(self.keep_seconds))
            pipe.expire(self.outbox(dossier_id), int(self.keep_seconds))
            try:
                await pipe.execute()
            except self._errors as error:
                raise Unavailable(
                    "the work queue (Redis) cannot be reached", reason="QUEUE_UNAVAILABLE"
                ) from error

    async def bury(self, delivery: Delivery, why: str) -> None:
        """Move a dossier that keeps failing to the dead-letter stream."""
        fields = {**delivery.job.fields(), "entry": delivery.entry, "why": why}
        fields["deliveries"] = str(delivery.deliveries)
        await self._call("xadd", self.dead, fields, maxlen=10_000, approximate=True)
        await self.finish(delivery)
