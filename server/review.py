"""``saoy.v1.Review`` (the official's desk) and ``Certification.WatchDossier`` (what the kiosk
learns of a dossier under review)."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
from collections.abc import AsyncIterator, Callable
from concurrent.futures import Executor
from datetime import UTC, datetime
from typing import Any, TypeVar

import grpc
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from prometheus_client import CollectorRegistry, Counter, Histogram

from saoy.core.desk.officials import Official, Officials, Session, SignInThrottled
from saoy.core.desk.review import Correction, Desk, DossierStatus
from saoy.core.errors import InvalidInput, NotFound, SaoyError, Unauthenticated
from saoy.core.storage.registry import CopyRecord, Registry
from saoy.server.events import timestamp
from saoy.server.interceptors import check_kiosk_certificate
from saoy.v1 import certification_pb2 as cpb
from saoy.v1 import common_pb2
from saoy.v1 import review_pb2 as pb
from saoy.v1 import review_pb2_grpc as pb_grpc

log = logging.getLogger("saoy.server")

T = TypeVar("T")

IMAGE_BUDGET = 3 * 1024 * 1024 // 2
"""Bytes of page images GetDossier answers with; the rest come through GetPageImage (the
server sends messages of at most 2 MiB)."""
CHUNK_BYTES = 1024 * 1024
DEFAULT_QUEUE, MAX_QUEUE = 20, 100
WATCH_POLL_SECONDS = 2.0
"""How often a watch reads the dossier again without being woken (another process decided)."""


REVIEW_WAIT_BUCKETS = (30, 60, 120, 300, 600, 1800, 3600, 4 * 3600, 8 * 3600, 24 * 3600, 72 * 3600)
REVIEW_HANDLING_BUCKETS = (5, 15, 30, 60, 120, 180, 300, 600, 1200, 3600)
"""An official looks at a dossier for seconds to minutes (the pilot: 3-5 minutes in all)."""


class ReviewMetrics:
    """The desk's series (no IDs, no names as labels)."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.reviews = Counter(
            "saoy_reviews_total",
            "Reviews ended by an official, by outcome (approved, refused, rescan).",
            ["outcome"],
            registry=registry,
        )
        self.wait = Histogram(
            "saoy_review_wait_seconds",
            "Time from a dossier's arrival to an official's decision on it.",
            buckets=REVIEW_WAIT_BUCKETS,
            registry=registry,
        )
        self.sign_ins = Counter(
            "saoy_official_sign_ins_total",
            "Sign-ins of officials, by result (ok, refused, throttled).",
            ["result"],
            registry=registry,
        )

        self.handling = Histogram(
            "saoy_review_handling_seconds",
            "Time an official spent on a dossier: from their first claim on it to the decision.",
            buckets=REVIEW_HANDLING_BUCKETS,
            registry=registry,
        )

    def decided(self, outcome: str, created_at: datetime) -> None:
        self.reviews.labels(outcome=outcome).inc()
        self.wait.observe(max(0.0, (datetime.now(UTC) - created_at).total_seconds()))

    def record(self, desk: Desk, outcome: str, dossier_id: str) -> None:
        """A decision just taken on ``dossier_id``: counted, with the dossier's wait and the
        official's handling time (from the audit's first claim). Blocking: run it off the loop."""
        dossier = desk.registry.get_dossier(dossier_id)
        if dossier is None:
            return
        self.decided(outcome, dossier.created_at)
        claims = [e["at"] for e in desk.db.audit_events(dossier_id) if e["kind"] == "claimed"]
        if claims:
            self.handling.observe(max(0.0, (datetime.now(UTC) - min(claims)).total_seconds()))


def bearer(context: grpc.aio.ServicerContext) -> str:
    """The token of an ``authorization: Bearer <token>`` metadata entry, or ''."""
    header = dict(context.invocation_metadata() or ()).get("authorization", "")
    scheme, _, token = str(header).partition(" ")
    return token.strip() if scheme.lower() == "bearer" else ""


def issued_to_proto(copy: CopyRecord, url: str) -> cpb.Issued:
    return cpb.Issued(
        code=copy.code,
        url=url,
        sha256=copy.blob_key,
        pages=copy.pages,
        size_bytes=copy.size_bytes,
        issuer=copy.issuer,
        issued_at=timestamp(copy.issued_at),
    )


def _official_info(official: Official) -> pb.OfficialInfo:
    return pb.OfficialInfo(
        login=official.id,
        full_name=official.full_name,
        title=official.title,
        center=official.center,
        role=official.role,
    )


def _dossier_id(value: str, field: str = "dossier_id") -> str:
    if not value or len(value) > 64 or not value.isalnum():
        raise InvalidInput(f"{field}: give the dossier's id (32 hex digits)", field=field)
    return value


class ReviewServicer(pb_grpc.ReviewServicer):
    """The desk's RPCs over :class:`~saoy.core.desk.review.Desk`; the blocking work runs in the
    executor."""

    def __init__(
        self,
        desk: Desk,
        officials: Officials,
        executor: Executor,
        metrics: ReviewMetrics | None = None,
    ) -> None:
        self.desk = desk
        self.officials = officials
        self.executor = executor
        self.metrics = metrics

    async def _decided(self, outcome: str, dossier_id: str) -> None:
        if self.metrics is not None:
            await self._run(self.metrics.record, self.desk, outcome, dossier_id)

    async def _run(self, fn: Callable[..., T], *args: Any) -> T:
        return await asyncio.get_running_loop().run_in_executor(self.executor, fn, *args)

    async def _official(self, context: grpc.aio.ServicerContext) -> Official:
        return await self._run(self.officials.authenticate, bearer(context))

    async def SignIn(
        self, request: pb.SignInRequest, context: grpc.aio.ServicerContext
    ) -> pb.SignInResponse:
        pems: list[bytes] = list(context.auth_context().get("x509_pem_cert") or ())
        by_certificate = bool(pems) and not request.password and not request.totp_code
        if not request.login or not (by_certificate or (request.password and request.totp_code)):
            raise InvalidInput(
                "give login, password and totp_code (the 6 digits of the authenticator app),"
                " or only login over a connection made with your own certificate (mutual TLS)",
                field="login" if not request.login else "totp_code",
            )
        try:
            if by_certificate:
                session = await self._run(self._sign_in_with_certificate, request.login, pems[0])
            else:
                session = await self._run(
                    self.officials.sign_in, request.login, request.password, request.totp_code
                )
        except SignInThrottled:
            if self.metrics is not None:
                self.metrics.sign_ins.labels(result="throttled").inc()
            raise
        except Unauthenticated:
            if self.metrics is not None:
                self.metrics.sign_ins.labels(result="refused").inc()
            raise
        if self.metrics is not None:
            self.metrics.sign_ins.labels(result="ok").inc()
        log.info("an official signed in")
        return pb.SignInResponse(
            session_token=session.token,
            expires_at=timestamp(session.expires_at),
            official=_official_info(session.official),
        )

    def _sign_in_with_certificate(self, login: str, pem: bytes) -> Session:
        """The connection's certificate must be the official's own (the one their signatures
        carry); one enrolled before certificates were recorded is read from their file."""
        der = x509.load_pem_x509_certificate(pem).public_bytes(serialization.Encoding.DER)
        if self.officials.certificate_sha256(login) is None:
            with contextlib.suppress(SaoyError):
                official = self.officials.get(login)
                pki = self.desk.signers.pki
                path = pki.directory / official.certificate
                if path.is_file():
                    own = pki.load(path).certificate.dump()
                    self.officials.record_certificate(login, hashlib.sha256(own).hexdigest())
        return self.officials.sign_in_with_certificate(login, hashlib.sha256(der).hexdigest())

    async def SignOut(
        self, request: pb.SignOutRequest, context: grpc.aio.ServicerContext
    ) -> pb.SignOutResponse:
        await self._official(context)
        await self._run(self.officials.sign_out, bearer(context))
        return pb.SignOutResponse()

    async def ListQueue(
        self, request: pb.ListQueueRequest, context: grpc.aio.ServicerContext
    ) -> pb.ListQueueResponse:
        official = await self._official(context)
        if request.limit > MAX_QUEUE:
            raise InvalidInput(f"limit: at most {MAX_QUEUE} dossiers at once", field="limit")
        limit = request.limit or DEFAULT_QUEUE
        items = await self._run(
            lambda: self.desk.queue(
                official, thumbnails=not request.without_thumbnails, limit=limit
            )
        )
        out = pb.ListQueueResponse(total=await self._run(self.desk.waiting, official))
        for item in items:
            entry = out.items.add(
                dossier_id=item.dossier_id,
                kiosk_id=item.kiosk_id,
                created_at=timestamp(item.created_at),
                reasons=list(item.reasons),
                page_count=item.page_count,
                holder=item.holder or "",
                holder_name=item.holder_name or "",
                thumbnails=list(item.thumbnails),
                center=item.center,
            )
            if item.lease_until is not None:
                entry.lease_until.CopyFrom(timestamp(item.lease_until))
            if item.appointment_at is not None:
                entry.appointment_at.CopyFrom(timestamp(item.appointment_at))
        return out

    async def Claim(
        self, request: pb.ClaimRequest, context: grpc.aio.ServicerContext
    ) -> pb.ClaimResponse:
        official = await self._official(context)
        until = await self._run(self.desk.claim, official, _dossier_id(request.dossier_id))
        return pb.ClaimResponse(lease_until=timestamp(until))

    async def Release(
        self, request: pb.ReleaseRequest, context: grpc.aio.ServicerContext
    ) -> pb.ReleaseResponse:
        official = await self._official(context)
        await self._run(self.desk.release, official, _dossier_id(request.dossier_id))
        return pb.ReleaseResponse()

    async def GetDossier(
        self, request: pb.GetDossierRequest, context: grpc.aio.ServicerContext
    ) -> pb.ReviewDossier:
        official = await self._official(context)
        view = await self._run(self.desk.get, official, _dossier_id(request.dossier_id))
        d = view.dossier
        out = pb.ReviewDossier(
            dossier_id=d.id,
            kiosk_id=d.kiosk_id,
            center=view.center,
            state=d.state,
            created_at=timestamp(d.created_at),
            reasons=list(d.reasons),
            checks=[
                common_pb2.Check(
                    name=c.name,
                    outcome=common_pb2.Check.Outcome.Value(c.outcome.name),
                    reason=c.reason,
                )
                for c in view.checks
            ],
            holder=view.holder or "",
            holder_name=view.holder_name or "",
            outcome=view.outcome or "",
        )
        budget = IMAGE_BUDGET
        for page in view.pages:
            fits = len(page.image) <= budget
            budget -= len(page.image) if fits else 0
            out.pages.add(
                page=page.index,
                document_type=page.document_type,
                image=page.image if fits else b"",
                image_omitted=not fits,
                format=page.format,
                width=page.width,
                height=page.height,
                mean_confidence=page.mean_confidence,
                fields=[
                    cpb.Field(
                        name=f.name,
                        value=f.value,
                        confidence=round(100 * f.confidence, 1),
                        source=f.source,
                    )
                    for f in page.fields
                ],
            )
        evidence = view.identity
        if evidence:
            out.identity.method = str(evidence.get("method", ""))
            out.identity.match_score = float(evidence.get("match_score", 0.0))
            out.identity.match_threshold = float(evidence.get("match_threshold", 0.0))
            out.identity.liveness = str(evidence.get("liveness", ""))
            if evidence.get("authenticated_at"):
                at = datetime.fromisoformat(str(evidence["authenticated_at"]))
                out.identity.authenticated_at.CopyFrom(timestamp(at))
        return out

    async def GetPageImage(
        self, request: pb.GetPageImageRequest, context: grpc.aio.ServicerContext
    ) -> AsyncIterator[pb.PageImageChunk]:
        official = await self._official(context)
        data = await self._run(
            self.desk.page_image, official, _dossier_id(request.dossier_id), request.page
        )
        for start in range(0, len(data), CHUNK_BYTES):
            yield pb.PageImageChunk(data=data[start : start + CHUNK_BYTES])

    async def Approve(
        self, request: pb.ApproveRequest, context: grpc.aio.ServicerContext
    ) -> pb.ApproveResponse:
        official = await self._official(context)
        corrections = [
            Correction(page=c.page, field=c.field, value=c.value) for c in request.corrections
        ]
        approval = await self.desk.approve(official, _dossier_id(request.dossier_id), corrections)
        copy = approval.copy
        log.info("a dossier was approved%s", " (again)" if approval.replayed else "")
        if not approval.replayed:
            await self._decided("approved", copy.dossier_id)
        return pb.ApproveResponse(
            issued=issued_to_proto(copy, f"{self.desk.base_url}/v/{copy.code}"),
            register_entry=str(approval.number),
            register_number=approval.number.number,
            register_book=approval.number.book,
            replayed=approval.replayed,
        )

    async def Refuse(
        self, request: pb.RefuseRequest, context: grpc.aio.ServicerContext
    ) -> pb.RefuseResponse:
        official = await self._official(context)
        await self._run(
            self.desk.refuse,
            official,
            _dossier_id(request.dossier_id),
            request.ground,
            request.message,
        )
        await self._decided("refused", request.dossier_id)
        return pb.RefuseResponse()

    async def RequestRescan(
        self, request: pb.RequestRescanRequest, context: grpc.aio.ServicerContext
    ) -> pb.RequestRescanResponse:
        official = await self._official(context)
        await self._run(
            self.desk.request_rescan,
            official,
            _dossier_id(request.dossier_id),
            request.page,
            request.reason,
        )
        await self._decided("rescan", request.dossier_id)
        return pb.RequestRescanResponse()


_STATES = {
    "waiting": cpb.DossierUpdate.WAITING,
    "claimed": cpb.DossierUpdate.CLAIMED,
    "issued": cpb.DossierUpdate.ISSUED,
    "refused": cpb.DossierUpdate.REFUSED,
    "rescan": cpb.DossierUpdate.RESCAN_REQUESTED,
    "rejected": cpb.DossierUpdate.REFUSED,
    "revoked": cpb.DossierUpdate.ISSUED,
}
_ENDS = {"issued", "refused", "rescan", "rejected", "revoked"}


class DossierWatch:
    """Streams a dossier's review to its kiosk: woken at once by changes made in this process,
    and reading the dossier every :data:`WATCH_POLL_SECONDS` for those made elsewhere."""

    def __init__(
        self,
        desk: Desk,
        registry: Registry,
        executor: Executor,
        *,
        bind_kiosk: bool = False,
        poll_seconds: float = WATCH_POLL_SECONDS,
    ) -> None:
        self.desk = desk
        self.registry = registry
        self.executor = executor
        self.bind_kiosk = bind_kiosk
        self.poll_seconds = poll_seconds
        self._loop: asyncio.AbstractEventLoop | None = None
        self._waiting: dict[str, set[asyncio.Event]] = {}
        desk.on_change(self._changed)

    def _changed(self, dossier_id: str) -> None:
        loop = self._loop
        if loop is None:
            return
        with contextlib.suppress(RuntimeError):  # the loop closed: the server is stopping
            loop.call_soon_threadsafe(self._wake, dossier_id)

    def _wake(self, dossier_id: str) -> None:
        for event in self._waiting.get(dossier_id, ()):
            event.set()

    async def _run(self, fn: Callable[..., T], *args: Any) -> T:
        return await asyncio.get_running_loop().run_in_executor(self.executor, fn, *args)

    async def watch(
        self, request: cpb.WatchDossierRequest, context: grpc.aio.ServicerContext
    ) -> AsyncIterator[cpb.DossierUpdate]:
        self._loop = asyncio.get_running_loop()
        dossier_id = _dossier_id(request.dossier_id)
        if self.bind_kiosk:
            check_kiosk_certificate(context, request.kiosk_id, "kiosk_id")
        dossier = await self._run(self.registry.get_dossier, dossier_id)
        if (
            dossier is None
            or dossier.kiosk_id != request.kiosk_id
            or dossier.request_id != request.request_id
        ):
            raise NotFound(
                "no such dossier from this kiosk: give the dossier_id of the Certify events,"
                " the kiosk_id and the request_id of its Header",
                field="dossier_id",
            )
        event = asyncio.Event()
        self._waiting.setdefault(dossier_id, set()).add(event)
        last: DossierStatus | None = None
        try:
            while True:
                event.clear()
                status = await self._run(self.desk.status, dossier_id)
                if status != last:
                    last = status
                    yield self._update(dossier_id, status)
                if status.state in _ENDS:
                    return
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(event.wait(), self.poll_seconds)
        finally:
            waiting = self._waiting.get(dossier_id)
            if waiting is not None:
                waiting.discard(event)
                if not waiting:
                    del self._waiting[dossier_id]

    def _update(self, dossier_id: str, status: DossierStatus) -> cpb.DossierUpdate:
        update = cpb.DossierUpdate(
            dossier_id=dossier_id,
            state=_STATES.get(status.state, cpb.DossierUpdate.STATE_UNSPECIFIED),
            official=status.holder_name,
            reason=status.ground or ("REJECTED" if status.state == "rejected" else ""),
            message=status.message,
            page=max(status.page, 0),
        )
        update.at.GetCurrentTime()
        if status.copy is not None:
            update.issued.CopyFrom(issued_to_proto(status.copy, status.url))
        return update


__all__ = ["DossierWatch", "ReviewMetrics", "ReviewServicer", "bearer", "issued_to_proto"]
