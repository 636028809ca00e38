"""KioskClient: the kiosk's side of the saoy API, over the generated stubs only.

Authenticate sends the front of the citizen's ID card, receives a head-turn challenge, sends the
live frames the caller captures for it, and returns the session token that Certify needs (one
token per dossier, from this kiosk only).

Certify streams a dossier's pages in chunks of at most 1 MiB without waiting for each page's
verdict, rescans pages the server rejects (when the caller can), and retries a dropped stream
with the same request_id: the server replays a decision it already took instead of issuing twice.
"""

from __future__ import annotations

import queue
import secrets
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import grpc
from google.protobuf import timestamp_pb2
from google.rpc import error_details_pb2
from grpc_status import rpc_status

from saoy.v1 import administration_pb2 as apb
from saoy.v1 import administration_pb2_grpc as agrpc
from saoy.v1 import certification_pb2 as cpb
from saoy.v1 import certification_pb2_grpc as cgrpc
from saoy.v1 import identity_pb2 as ipb
from saoy.v1 import identity_pb2_grpc as igrpc
from saoy.v1 import review_pb2 as rpb
from saoy.v1 import review_pb2_grpc as rgrpc
from saoy.v1 import tracking_pb2 as tpb
from saoy.v1 import tracking_pb2_grpc as tgrpc
from saoy.v1 import verification_pb2 as vpb
from saoy.v1 import verification_pb2_grpc as vgrpc

CHUNK_BYTES = 1024 * 1024
RETRYABLE = (grpc.StatusCode.UNAVAILABLE,)


def retry_info(error: grpc.RpcError) -> float | None:
    """The seconds the server asked to wait before a retry (google.rpc.RetryInfo), if any."""
    try:
        status = rpc_status.from_call(error)  # type: ignore[arg-type]
    except (ValueError, AttributeError):
        return None
    for detail in status.details if status is not None else ():
        info = error_details_pb2.RetryInfo()
        if detail.Unpack(info):
            return info.retry_delay.seconds + info.retry_delay.nanos / 1e9
    return None


def retry_wait(error: grpc.RpcError, attempt: int, longest: float) -> float | None:
    """How long to wait before retry number ``attempt``, or None not to retry: a server that
    is away (UNAVAILABLE) is retried with a growing backoff, or after its RetryInfo; one that
    refuses for now (RESOURCE_EXHAUSTED with a RetryInfo: a rate limit, a backlog) after the
    time it asked, when that is at most ``longest`` seconds."""
    asked = retry_info(error)
    backoff = min(0.5 * 2**attempt, 5.0)
    if error.code() in RETRYABLE:
        return backoff if asked is None else min(max(asked, backoff), max(longest, backoff))
    if error.code() == grpc.StatusCode.RESOURCE_EXHAUSTED and asked is not None:
        return asked if asked <= longest else None
    return None


Rescan = Callable[[int, cpb.PageRejected], bytes | None]
"""Called with (page index, rejection); returns the rescanned file, or None to give up."""

Capture = Callable[[ipb.HeadTurnChallenge], Sequence[bytes | tuple[bytes, float]]]
"""Called with the challenge; returns the live frames (JPEG or PNG), a frontal one first, each
alone (stamped with the time it is sent) or with its capture time in seconds since the epoch."""
FRAME_INTERVAL = 0.04  # seconds between the stamps of frames given without a capture time


class PageRejectedError(Exception):
    """A page was rejected for quality and no rescan was provided."""

    def __init__(self, rejection: cpb.PageRejected) -> None:
        super().__init__(f"page {rejection.page + 1} rejected: {rejection.message}")
        self.rejection = rejection


@dataclass
class CertifyResult:
    """Everything the server said about one dossier."""

    request_id: str
    dossier_id: str = ""
    events: list[cpb.CertifyEvent] = field(default_factory=list)

    @property
    def terminal(self) -> cpb.CertifyEvent | None:
        for event in reversed(self.events):
            if event.WhichOneof("event") in ("issued", "needs_review", "rejected"):
                return event
        return None

    @property
    def state(self) -> str:
        terminal = self.terminal
        return "" if terminal is None else str(terminal.WhichOneof("event")).upper()

    @property
    def issued(self) -> cpb.Issued | None:
        terminal = self.terminal
        return terminal.issued if terminal and terminal.HasField("issued") else None

    @property
    def received(self) -> cpb.Received | None:
        """The receipt: dossier code, look-up secret, fee, appointment."""
        found = self.of_kind("received")
        return found[-1].received if found else None

    def of_kind(self, kind: str) -> list[cpb.CertifyEvent]:
        return [e for e in self.events if e.WhichOneof("event") == kind]


def tls_credentials(
    ca: bytes | None = None, cert: bytes | None = None, key: bytes | None = None
) -> grpc.ChannelCredentials:
    """Credentials for a server with TLS: ``ca`` the PEM certificates to trust it with (None:
    the system's roots); ``cert`` (the kiosk's certificate chain) and ``key`` (its private
    key), both PEM, for a server that requires mutual TLS."""
    if (cert is None) != (key is None):
        raise ValueError("a client certificate needs its key, and a key its certificate")
    return grpc.ssl_channel_credentials(
        root_certificates=ca, private_key=key, certificate_chain=cert
    )


def open_channel(
    target: str,
    credentials: grpc.ChannelCredentials | None = None,
    options: Sequence[tuple[str, Any]] = (),
) -> grpc.Channel:
    """A TLS channel with ``credentials`` (see :func:`tls_credentials`), else a plaintext one."""
    if credentials is not None:
        return grpc.secure_channel(target, credentials, options)
    return grpc.insecure_channel(target, options)


def new_request_id() -> str:
    return "req-" + secrets.token_hex(12)


def _chunks(page: int, data: bytes) -> Iterator[cpb.CertifyRequest]:
    view = memoryview(data)
    offsets = range(0, max(len(data), 1), CHUNK_BYTES)
    for offset in offsets:
        yield cpb.CertifyRequest(
            chunk=cpb.PageChunk(
                page=page,
                data=bytes(view[offset : offset + CHUNK_BYTES]),
                last=offset + CHUNK_BYTES >= len(data),
            )
        )


class KioskClient:
    """A connection to a saoy server for one kiosk: plaintext, or TLS with ``credentials``
    (:func:`tls_credentials`). A server with mutual TLS takes only the ``kiosk_id`` that its
    certificate names."""

    def __init__(
        self,
        target: str,
        *,
        kiosk_id: str = "kiosk-dev",
        session_token: str = "",
        credentials: grpc.ChannelCredentials | None = None,
        timeout: float = 300.0,
        retries: int = 3,
        max_retry_wait: float = 30.0,
    ) -> None:
        self.channel = open_channel(
            target, credentials, [("grpc.max_receive_message_length", 4 * CHUNK_BYTES)]
        )
        self.kiosk_id = kiosk_id
        self.session_token = session_token
        self.timeout = timeout
        self.retries = retries
        self.max_retry_wait = max_retry_wait
        """The longest wait a server may ask for (RetryInfo) that is still waited out."""
        self._certification = cgrpc.CertificationStub(self.channel)
        self._identity = igrpc.IdentityStub(self.channel)
        self._verification = vgrpc.VerificationStub(self.channel)

    def close(self) -> None:
        self.channel.close()

    def __enter__(self) -> KioskClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def authenticate(self, card: bytes, capture: Capture) -> ipb.Authenticated:
        """Authenticate the citizen at this kiosk: the ID card front, then the frames that
        ``capture`` returns for the server's challenge. Returns the session token and the match
        evidence; a failed check raises grpc.RpcError (UNAUTHENTICATED, INVALID_ARGUMENT...)
        whose details say what the citizen should do. Not retried: a new attempt needs new
        frames."""
        outbox: queue.Queue[ipb.AuthenticateRequest | None] = queue.Queue()

        def requests() -> Iterator[ipb.AuthenticateRequest]:
            yield ipb.AuthenticateRequest(header=ipb.AuthenticateHeader(kiosk_id=self.kiosk_id))
            view = memoryview(card)
            for offset in range(0, max(len(card), 1), CHUNK_BYTES):
                yield ipb.AuthenticateRequest(
                    card=ipb.CardChunk(
                        data=bytes(view[offset : offset + CHUNK_BYTES]),
                        last=offset + CHUNK_BYTES >= len(card),
                    )
                )
            while (item := outbox.get()) is not None:
                yield item

        call = self._identity.Authenticate(requests(), timeout=self.timeout)
        try:
            for response in call:
                if response.HasField("authenticated"):
                    return response.authenticated
                if response.HasField("challenge"):
                    try:
                        frames = capture(response.challenge)
                    except BaseException:
                        call.cancel()
                        raise
                    for message in _frame_messages(frames):
                        outbox.put(message)
        finally:
            outbox.put(None)
        raise RuntimeError("the server ended Authenticate without a verdict")

    def certify(
        self,
        pages: Sequence[bytes],
        *,
        request_id: str | None = None,
        session_token: str | None = None,
        on_event: Callable[[cpb.CertifyEvent], None] | None = None,
        on_sent: Callable[[int], None] | None = None,
        rescan: Rescan | None = None,
        hints: Sequence[cpb.DocumentHint] = (),
        copies: int = 0,
        email: str = "",
        app_token: str = "",
    ) -> CertifyResult:
        """Certify one dossier and return every event; retries dropped streams (with the same
        request_id and session token, which the server accepts again for the same dossier).
        ``session_token`` (from :meth:`authenticate`) defaults to the client's; ``copies`` is
        the number of copies asked for (0: one); ``app_token`` the citizen app's token, which
        the result is posted to the app with; ``email`` where the citizen wants the copy
        sent (optional)."""
        request_id = request_id or new_request_id()
        token = self.session_token if session_token is None else session_token
        attempt = 0
        while True:
            try:
                return self._certify_once(
                    list(pages),
                    request_id,
                    token,
                    on_event,
                    on_sent,
                    rescan,
                    hints,
                    copies,
                    email,
                    resume=attempt > 0,
                    app_token=app_token,
                )
            except grpc.RpcError as error:
                attempt += 1
                wait = retry_wait(error, attempt, self.max_retry_wait)
                if wait is None or attempt > self.retries:
                    raise
                time.sleep(wait)

    def _certify_once(
        self,
        pages: list[bytes],
        request_id: str,
        session_token: str,
        on_event: Callable[[cpb.CertifyEvent], None] | None,
        on_sent: Callable[[int], None] | None,
        rescan: Rescan | None,
        hints: Sequence[cpb.DocumentHint],
        copies: int = 0,
        email: str = "",
        *,
        resume: bool = False,
        app_token: str = "",
    ) -> CertifyResult:
        followups: queue.Queue[tuple[int, bytes] | None] = queue.Queue()
        # A retry resumes: the server first names the pages it holds, which are not sent again.
        answered = threading.Event()
        held: set[int] = set()
        if not resume:
            answered.set()

        def requests() -> Iterator[cpb.CertifyRequest]:
            yield cpb.CertifyRequest(
                header=cpb.Header(
                    request_id=request_id,
                    kiosk_id=self.kiosk_id,
                    session_token=session_token,
                    hints=list(hints),
                    copies=copies,
                    email=email,
                    resume=resume,
                    app_token=app_token,
                )
            )
            answered.wait(self.timeout)
            for index, data in enumerate(pages):
                if index in held:
                    continue
                for message in _chunks(index, data):
                    yield message
                    if on_sent:
                        on_sent(len(message.chunk.data))
            while True:  # rescans, until every page has a verdict and none is pending
                item = followups.get()
                if item is None:
                    break
                index, data = item
                yield from _chunks(index, data)
            yield cpb.CertifyRequest(end=cpb.End(page_count=len(pages)))

        result = CertifyResult(request_id=request_id)
        verdicts: dict[int, bool] = {}
        call = self._certification.Certify(requests(), timeout=self.timeout)
        try:
            for event in call:
                kind = event.WhichOneof("event")
                if kind == "resumed":
                    held.update(event.resumed.pages)
                answered.set()
                if kind == "resumed":
                    continue
                result.events.append(event)
                result.dossier_id = event.dossier_id or result.dossier_id
                if on_event:
                    on_event(event)
                if kind == "page_accepted":
                    verdicts[event.page_accepted.page] = True
                elif kind == "page_rejected":
                    rejection = event.page_rejected
                    verdicts[rejection.page] = False
                    replacement = rescan(rejection.page, rejection) if rescan else None
                    if replacement is None:
                        call.cancel()
                        raise PageRejectedError(rejection)
                    pages[rejection.page] = replacement
                    followups.put((rejection.page, replacement))
                    continue
                if (
                    kind in ("page_accepted",)
                    and len(verdicts) == len(pages)
                    and all(verdicts.values())
                ):
                    followups.put(None)
                if kind in ("issued", "needs_review", "rejected"):
                    # A replayed decision ends the stream before the pages are all sent.
                    followups.put(None)
        finally:
            answered.set()
            followups.put(None)
        return result

    def verify_code(self, code: str) -> vpb.VerificationResult:
        return self._verification.VerifyCode(vpb.VerifyCodeRequest(code=code), timeout=30)

    def verify_pdf(self, pdf: bytes) -> vpb.VerificationResult:
        return self._verification.VerifyDocument(vpb.VerifyDocumentRequest(pdf=pdf), timeout=60)

    def watch_dossier(
        self, dossier_id: str, request_id: str, *, timeout: float | None = None
    ) -> Iterator[cpb.DossierUpdate]:
        """Follow a dossier that ended NEEDS_REVIEW until its review ends (this kiosk's own,
        named by the request_id of its Header)."""
        request = cpb.WatchDossierRequest(
            dossier_id=dossier_id, kiosk_id=self.kiosk_id, request_id=request_id
        )
        yield from self._certification.WatchDossier(request, timeout=timeout or self.timeout)

    def download(self, code: str) -> bytes:
        return b"".join(
            chunk.data
            for chunk in self._verification.GetCopy(vpb.GetCopyRequest(code=code), timeout=60)
        )


def _frame_messages(
    frames: Sequence[bytes | tuple[bytes, float]],
) -> Iterator[ipb.AuthenticateRequest]:
    """LiveFrame messages (frames without a capture time are stamped now, a little apart),
    then AuthenticateEnd."""
    now = time.time()
    for i, frame in enumerate(frames):
        image, at = frame if isinstance(frame, tuple) else (frame, now + i * FRAME_INTERVAL)
        stamp = timestamp_pb2.Timestamp()
        stamp.FromNanoseconds(int(at * 1e9))
        yield ipb.AuthenticateRequest(frame=ipb.LiveFrame(image=image, captured_at=stamp))
    yield ipb.AuthenticateRequest(end=ipb.AuthenticateEnd(frame_count=len(frames)))


class OfficialClient:
    """Acts reserved to authorized officials, with their bearer token."""

    def __init__(
        self, target: str, token: str, *, credentials: grpc.ChannelCredentials | None = None
    ) -> None:
        self.channel = open_channel(target, credentials)
        self._metadata = (("authorization", f"Bearer {token}"),)
        self._administration = agrpc.AdministrationStub(self.channel)

    def close(self) -> None:
        self.channel.close()

    def __enter__(self) -> OfficialClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def revoke(self, code: str, reason: str) -> vpb.VerificationResult:
        return self._administration.Revoke(
            apb.RevokeRequest(code=code, reason=reason), metadata=self._metadata, timeout=30
        )


class TrackingClient:
    """Where a dossier stands (``saoy.v1.Tracking``), by the dossier code and look-up secret
    printed on its receipt."""

    def __init__(self, target: str, *, credentials: grpc.ChannelCredentials | None = None) -> None:
        self.channel = open_channel(target, credentials)
        self._tracking = tgrpc.TrackingStub(self.channel)

    def close(self) -> None:
        self.channel.close()

    def __enter__(self) -> TrackingClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def get(self, dossier_code: str, secret: str) -> tpb.TrackedDossier:
        request = tpb.TrackDossierRequest(dossier_code=dossier_code, secret=secret)
        return self._tracking.GetDossier(request, timeout=30)

    def watch(
        self, dossier_code: str, secret: str, *, timeout: float | None = None
    ) -> Iterator[tpb.TrackedDossier]:
        """The dossier now, then at each change, until a final status (or ``timeout``)."""
        request = tpb.TrackDossierRequest(dossier_code=dossier_code, secret=secret)
        yield from self._tracking.WatchDossier(request, timeout=timeout)

    def rate(self, dossier_code: str, secret: str, score: int) -> tpb.RateResponse:
        """The citizen's rating of the service (1-5), once the dossier has its result."""
        dossier = tpb.TrackDossierRequest(dossier_code=dossier_code, secret=secret)
        return self._tracking.Rate(tpb.RateRequest(dossier=dossier, score=score), timeout=30)

    def receipt_pdf(self, dossier_code: str, secret: str) -> bytes:
        """The receipt as a PDF, to print."""
        request = tpb.TrackDossierRequest(dossier_code=dossier_code, secret=secret)
        return bytes(self._tracking.GetReceipt(request, timeout=30).pdf)


class DeskClient:
    """The official's desk (``saoy.v1.Review``): sign in, then work the center's queue. The
    session token is sent with every call; :meth:`sign_in` sets it."""

    def __init__(
        self,
        target: str,
        session_token: str = "",
        *,
        credentials: grpc.ChannelCredentials | None = None,
        timeout: float = 120.0,
    ) -> None:
        self.channel = open_channel(
            target, credentials, [("grpc.max_receive_message_length", 64 * CHUNK_BYTES)]
        )
        self.session_token = session_token
        self.timeout = timeout
        self._review = rgrpc.ReviewStub(self.channel)

    def close(self) -> None:
        self.channel.close()

    def __enter__(self) -> DeskClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def _metadata(self) -> tuple[tuple[str, str], ...]:
        return (("authorization", f"Bearer {self.session_token}"),)

    def _call(self, method: str, request: Any) -> Any:
        return getattr(self._review, method)(request, metadata=self._metadata, timeout=self.timeout)

    def sign_in(self, login: str, password: str = "", totp_code: str = "") -> rpb.SignInResponse:
        """Sign in with the password and the authenticator's code; or, over a connection made
        with the official's own certificate (``credentials`` with it), with the login alone."""
        response: rpb.SignInResponse = self._review.SignIn(
            rpb.SignInRequest(login=login, password=password, totp_code=totp_code),
            timeout=self.timeout,
        )
        self.session_token = response.session_token
        return response

    def queue(self, *, thumbnails: bool = True) -> list[rpb.QueueItem]:
        request = rpb.ListQueueRequest(without_thumbnails=not thumbnails)
        return list(self._call("ListQueue", request).items)

    def claim(self, dossier_id: str) -> rpb.ClaimResponse:
        return self._call("Claim", rpb.ClaimRequest(dossier_id=dossier_id))  # type: ignore[no-any-return]

    def release(self, dossier_id: str) -> None:
        self._call("Release", rpb.ReleaseRequest(dossier_id=dossier_id))

    def dossier(self, dossier_id: str) -> rpb.ReviewDossier:
        return self._call("GetDossier", rpb.GetDossierRequest(dossier_id=dossier_id))  # type: ignore[no-any-return]

    def page_image(self, dossier_id: str, page: int) -> bytes:
        """One page's image file (GetDossier leaves out what does not fit its answer)."""
        request = rpb.GetPageImageRequest(dossier_id=dossier_id, page=page)
        return b"".join(
            chunk.data
            for chunk in self._review.GetPageImage(
                request, metadata=self._metadata, timeout=self.timeout
            )
        )

    def approve(
        self, dossier_id: str, corrections: Sequence[tuple[int, str, str]] = ()
    ) -> rpb.ApproveResponse:
        request = rpb.ApproveRequest(
            dossier_id=dossier_id,
            corrections=[
                rpb.FieldCorrection(page=page, field=name, value=value)
                for page, name, value in corrections
            ],
        )
        return self._call("Approve", request)  # type: ignore[no-any-return]

    def refuse(self, dossier_id: str, ground: str, message: str) -> None:
        self._call(
            "Refuse", rpb.RefuseRequest(dossier_id=dossier_id, ground=ground, message=message)
        )

    def request_rescan(self, dossier_id: str, page: int, reason: str) -> None:
        self._call(
            "RequestRescan",
            rpb.RequestRescanRequest(dossier_id=dossier_id, page=page, reason=reason),
        )
