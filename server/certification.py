"""The Certify stream: the protocol (order, chunking, limits) around the core pipeline."""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import AsyncIterator
from typing import Protocol

import grpc

from saoy.core import pipeline as pl
from saoy.core.documents import DOCUMENT_TYPES
from saoy.core.errors import (
    DeadlineExceeded,
    InvalidInput,
    OutOfOrder,
    SaoyError,
    TooLarge,
    Unauthenticated,
    Unavailable,
)
from saoy.core.identity.sessions import Identity, SessionStore
from saoy.core.reception.delivery import check_app_token, check_email
from saoy.core.reception.fees import MAX_COPIES
from saoy.core.reception.reception import Receipt, Reception
from saoy.core.trust.pki import KIOSK_ID
from saoy.server.dossiers import TERMINAL, DossierRunner, LocalDossiers
from saoy.server.events import event_to_proto
from saoy.server.interceptors import check_kiosk_certificate
from saoy.server.metrics import Metrics
from saoy.server.settings import MiB, Settings
from saoy.server.tracking import receipt_to_proto
from saoy.v1 import certification_pb2 as pb
from saoy.v1 import certification_pb2_grpc as pb_grpc

MAX_CHUNK_BYTES = 1 * MiB
REQUEST_ID = re.compile(r"[A-Za-z0-9_-]{8,64}")


def _validate_header(header: pb.Header, max_pages: int) -> dict[int, str]:
    """Check the header's fields; the kiosk's document-type hints by page index."""
    if not REQUEST_ID.fullmatch(header.request_id):
        raise InvalidInput(
            "header.request_id must be 8-64 characters of A-Z, a-z, 0-9, _ or -",
            field="header.request_id",
        )
    if not KIOSK_ID.fullmatch(header.kiosk_id):
        raise InvalidInput(
            "header.kiosk_id must be 1-64 characters of A-Z, a-z, 0-9, _, . or -",
            field="header.kiosk_id",
        )
    hints: dict[int, str] = {}
    for i, hint in enumerate(header.hints):
        where = f"header.hints[{i}]"
        if hint.document_type not in DOCUMENT_TYPES:
            raise InvalidInput(
                f"{where}.document_type {hint.document_type[:40]!r} is not a document type:"
                f" use one of {', '.join(DOCUMENT_TYPES)}",
                field=f"{where}.document_type",
            )
        if hint.page >= max_pages:
            raise InvalidInput(
                f"{where} names page {hint.page + 1} but a dossier holds at most {max_pages} pages",
                field=f"{where}.page",
            )
        if hint.page in hints:
            raise InvalidInput(
                f"{where} names page {hint.page + 1} a second time: one hint per page",
                field=f"{where}.page",
            )
        hints[hint.page] = hint.document_type
    if header.copies > MAX_COPIES:
        raise InvalidInput(
            f"header.copies is {header.copies}: ask for 1-{MAX_COPIES} copies (0 means 1)",
            field="header.copies",
        )
    if header.email:
        check_email(header.email)
    if header.app_token:
        check_app_token(header.app_token)
    return hints


class DossierWatcher(Protocol):
    """Streams the review of a dossier to its kiosk (see ``saoy.server.review``)."""

    def watch(
        self, request: pb.WatchDossierRequest, context: grpc.aio.ServicerContext
    ) -> AsyncIterator[pb.DossierUpdate]: ...


class CertificationServicer(pb_grpc.CertificationServicer):
    """Certification.Certify. With a session store, every stream must carry a session token
    from Identity.Authenticate for its kiosk; without one (``identity = off``) none is asked."""

    def __init__(
        self,
        certifier: pl.Certifier,
        settings: Settings,
        metrics: Metrics,
        sessions: SessionStore | None = None,
        *,
        match_threshold: float | None = None,
        bind_kiosk: bool = False,
        reception: Reception | None = None,
        watch: DossierWatcher | None = None,
        runner: DossierRunner | None = None,
    ) -> None:
        self.certifier = certifier
        self.runner: DossierRunner = runner or LocalDossiers(certifier)
        """Works the dossiers: in this process, or saoy worker processes through the queue."""
        self.reception = reception
        """Gives each dossier its code and receipt (the Received event); None: no receipts."""
        self.settings = settings
        self.metrics = metrics
        self.sessions = sessions
        self.match_threshold = match_threshold
        self.bind_kiosk = bind_kiosk
        """Mutual TLS: header.kiosk_id must be the CN of the client certificate."""
        self.watch = watch
        """Follows dossiers under review (the official's desk); None: WatchDossier is off."""

    async def WatchDossier(
        self, request: pb.WatchDossierRequest, context: grpc.aio.ServicerContext
    ) -> AsyncIterator[pb.DossierUpdate]:
        if self.watch is None:
            raise Unavailable("this server has no official's desk: WatchDossier is off")
        async for update in self.watch.watch(request, context):
            yield update
            if update.HasField("issued") and self.reception is not None:
                # The copy an official approved reached the kiosk: the result is handed over
                # (portal status 10), unless it is held back for its fee (then once paid).
                await asyncio.get_running_loop().run_in_executor(
                    None, self.reception.handed_over, update.dossier_id
                )

    async def _authenticate(self, header: pb.Header) -> Identity | None:
        """The citizen behind the header's session token, which this dossier (request_id) now
        holds; a retry of the same dossier presents the same token again. Store calls may block
        on the network (Redis), so they run off the event loop."""
        if self.sessions is None:
            return None
        if not header.session_token:
            raise Unauthenticated(
                "Chưa xác thực / No session: authenticate with your ID card and face first",
                reason="TOKEN_MISSING",
                field="header.session_token",
            )
        return await asyncio.get_running_loop().run_in_executor(
            None,
            self.sessions.resolve,
            header.session_token,
            header.kiosk_id,
            header.request_id,
        )

    async def _next(self, stream: AsyncIterator[pb.CertifyRequest]) -> pb.CertifyRequest | None:
        try:
            return await asyncio.wait_for(anext(stream), self.settings.stream_idle_seconds)
        except StopAsyncIteration:
            return None
        except TimeoutError:
            raise DeadlineExceeded(
                f"no message for {self.settings.stream_idle_seconds:g} s: the stream was closed;"
                " retry with the same request_id",
                reason="STREAM_IDLE",
            ) from None

    async def Certify(
        self,
        request_iterator: AsyncIterator[pb.CertifyRequest],
        context: grpc.aio.ServicerContext,
    ) -> AsyncIterator[pb.CertifyEvent]:
        self.metrics.in_flight.inc()
        try:
            async for event in self._certify(request_iterator.__aiter__(), context):
                yield event
        finally:
            self.metrics.in_flight.dec()

    async def _certify(
        self, stream: AsyncIterator[pb.CertifyRequest], context: grpc.aio.ServicerContext
    ) -> AsyncIterator[pb.CertifyEvent]:
        first = await self._next(stream)
        if first is None:
            raise InvalidInput("the stream is empty: send a Header first", field="header")
        if first.WhichOneof("part") != "header":
            raise OutOfOrder("the first message must be a Header", field="header")
        header = first.header
        hints = _validate_header(header, self.settings.max_pages)
        if self.bind_kiosk:
            check_kiosk_certificate(context, header.kiosk_id, "header.kiosk_id")
        identity = await self._authenticate(header)
        loop = asyncio.get_running_loop()
        center, earlier = None, None
        if self.reception is not None:
            # The kiosk's center (a kiosk no center knows is refused before any page is read),
            # and the receipt of an earlier stream of this request, whose dossier this is.
            if header.email and not self.reception.email_enabled:
                raise OutOfOrder(
                    "header.email: this server sends no mail; leave the address out",
                    reason="EMAIL_OFF",
                    field="header.email",
                )
            if header.app_token and not self.reception.app_enabled:
                raise OutOfOrder(
                    "header.app_token: this server posts to no citizen app; leave it out",
                    reason="APP_OFF",
                    field="header.app_token",
                )
            center = await loop.run_in_executor(
                None, self.reception.center_of_kiosk, header.kiosk_id
            )
            earlier = await loop.run_in_executor(
                None, self.reception.find, header.kiosk_id, header.request_id
            )
        remaining = context.time_remaining()
        ctx = pl.DossierContext(
            request_id=header.request_id,
            kiosk_id=header.kiosk_id,
            deadline=None if remaining is None else time.monotonic() + remaining,
            identity_evidence=None if identity is None else identity.evidence(self.match_threshold),
            hints=hints,
        )
        if earlier is not None:
            ctx.dossier_id = earlier.dossier_id

        def envelope(event: pl.Event | pb.CertifyEvent) -> pb.CertifyEvent:
            message = event if isinstance(event, pb.CertifyEvent) else event_to_proto(event)
            message.request_id = ctx.request_id
            message.dossier_id = ctx.dossier_id
            if message.needs_review.dossier_id:  # a replay: the dossier decided before
                message.dossier_id = message.needs_review.dossier_id
            elif message.HasField("needs_review"):
                message.needs_review.dossier_id = ctx.dossier_id
            message.at.GetCurrentTime()
            return message

        def received(receipt: Receipt) -> pb.CertifyEvent:
            message = pb.CertifyEvent(received=receipt_to_proto(receipt))
            message.request_id = ctx.request_id
            message.dossier_id = ctx.dossier_id
            message.at.GetCurrentTime()
            return message

        replay = await self.certifier.replay(ctx.kiosk_id, ctx.request_id)
        if replay is not None:
            if earlier is not None:
                yield received(earlier)
            yield envelope(replay)
            return

        first = await self.runner.open(ctx, resume=header.resume)
        held = {e.page_accepted.page for e in first if e.HasField("page_accepted")}
        dropped = True  # until the stream ends, finished or refused
        try:
            for event in first:
                yield envelope(event)
            pages = len(held)
            async for event in self._receive(stream, ctx, held):
                pages += event.HasField("page_accepted")
                yield envelope(event)
            reception = self.reception
            if reception is not None and center is not None:
                intake = await self.runner.intake(ctx)
                receipt = await loop.run_in_executor(
                    None,
                    lambda: reception.receive(
                        dossier_id=ctx.dossier_id,
                        kiosk_id=ctx.kiosk_id,
                        request_id=ctx.request_id,
                        center=center,
                        pages=pages,
                        copies=header.copies or 1,
                        email=header.email.strip(),
                        app_token=header.app_token.strip(),
                        intake=intake,
                    ),
                )
                yield received(receipt)
            started = time.perf_counter()
            async for event in self.runner.process(ctx):
                outcome = event.WhichOneof("event")
                if outcome in TERMINAL:
                    label = outcome.replace("_", "")  # needsreview, as before
                    self.metrics.dossiers.labels(outcome=label).inc()
                    self.metrics.dossier_duration.labels(outcome=label).observe(
                        time.perf_counter() - started
                    )
                yield envelope(event)
                if outcome == "issued" and self.reception is not None:
                    # A released copy is handed over with the event that names it; one held
                    # back for its fee, once the fee is paid (Reception.confirm_payment).
                    await loop.run_in_executor(None, self.reception.handed_over, ctx.dossier_id)
            dropped = False
        except SaoyError:
            dropped = False  # refused: nothing to resume
            raise
        finally:
            await self.runner.discard(ctx, dropped=dropped)

    async def _receive(
        self,
        stream: AsyncIterator[pb.CertifyRequest],
        ctx: pl.DossierContext,
        held: set[int],
    ) -> AsyncIterator[pb.CertifyEvent]:
        """Assemble pages from chunks until End, admitting each page as it completes."""
        limits = self.settings
        buffer = bytearray()
        current: int | None = None  # page being received
        accepted: set[int] = set(held)  # a resumed dossier's pages already in
        rejected: set[int] = set()
        total = 0
        while True:
            message = await self._next(stream)
            if message is None:
                raise InvalidInput(
                    "the stream ended before End: nothing was certified; send it again",
                    reason="STREAM_INCOMPLETE",
                )
            part = message.WhichOneof("part")
            if part == "header":
                raise OutOfOrder("a second Header arrived; one stream is one dossier")
            if part == "end":
                self._check_end(message.end, current, accepted, rejected, ctx.hints)
                return
            if part != "chunk":
                raise InvalidInput("empty message: set header, chunk or end")
            chunk = message.chunk
            if current is None:
                self._check_new_page(chunk.page, accepted, rejected)
                current = chunk.page
            elif chunk.page != current:
                raise OutOfOrder(
                    f"page {chunk.page + 1} started before page {current + 1} was finished"
                    " (set last on its final chunk)",
                    field="chunk.page",
                )
            if len(chunk.data) > MAX_CHUNK_BYTES:
                raise TooLarge("a chunk may hold at most 1 MiB", field="chunk.data")
            total += len(chunk.data)
            self.metrics.received_bytes.inc(len(chunk.data))
            if total > limits.max_dossier_bytes:
                raise TooLarge(
                    f"the dossier is larger than {limits.max_dossier_bytes // MiB} MiB",
                    field="chunk.data",
                )
            buffer += chunk.data
            if len(buffer) > limits.max_page_bytes:
                raise TooLarge(
                    f"page {current + 1} is larger than {limits.max_page_bytes // MiB} MiB:"
                    " scan at a lower resolution",
                    field="chunk.data",
                )
            if not chunk.last:
                continue
            event = await self.runner.add_page(ctx, current, bytes(buffer))
            if event.HasField("page_accepted"):
                accepted.add(current)
                rejected.discard(current)
                self.metrics.pages.labels(result="accepted").inc()
            else:
                rejected.add(current)
                self.metrics.pages.labels(result="rejected").inc()
            buffer.clear()
            current = None
            yield event

    def _check_new_page(self, page: int, accepted: set[int], rejected: set[int]) -> None:
        if page in rejected:
            return  # a rescan of a rejected page
        if page in accepted:
            raise OutOfOrder(f"page {page + 1} was already accepted", field="chunk.page")
        expected = min(set(range(len(accepted) + len(rejected) + 1)) - accepted - rejected)
        if page != expected:
            raise OutOfOrder(
                f"page {page + 1} arrived but page {expected + 1} was expected",
                field="chunk.page",
            )
        if page >= self.settings.max_pages:
            raise TooLarge(
                f"a dossier holds at most {self.settings.max_pages} pages", field="chunk.page"
            )

    @staticmethod
    def _check_end(
        end: pb.End,
        current: int | None,
        accepted: set[int],
        rejected: set[int],
        hints: dict[int, str],
    ) -> None:
        if current is not None:
            raise OutOfOrder(f"End arrived while page {current + 1} was incomplete", field="end")
        if rejected:
            pages = ", ".join(str(i + 1) for i in sorted(rejected))
            raise OutOfOrder(
                f"page(s) {pages} were rejected: rescan them before End",
                reason="PAGES_REJECTED",
                field="end",
            )
        if not accepted:
            raise InvalidInput("End arrived with no pages: scan at least one", field="end")
        if end.page_count != len(accepted):
            raise InvalidInput(
                f"End says {end.page_count} page(s) but {len(accepted)} arrived",
                field="end.page_count",
            )
        beyond = sorted(page + 1 for page in hints if page >= len(accepted))
        if beyond:
            raise InvalidInput(
                f"the header hints at page(s) {', '.join(map(str, beyond))} but the dossier"
                f" has {len(accepted)}: drop those hints or send the pages",
                field="header.hints",
            )
