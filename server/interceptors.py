"""One boundary where domain errors become gRPC statuses with ``google.rpc`` details."""

from __future__ import annotations

import asyncio
import logging
from abc import abstractmethod
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import grpc
from cryptography import x509
from google.protobuf import any_pb2, duration_pb2
from google.rpc import code_pb2, error_details_pb2, status_pb2
from grpc_status import rpc_status

from saoy.core.errors import SaoyError
from saoy.core.trust.pki import DevPki, RevocationList, common_name_of
from saoy.server.metrics import Metrics

log = logging.getLogger("saoy.server")

DOMAIN = "saoy.gov.vn"


class KioskCertificateMismatch(SaoyError):
    """A kiosk sent a kiosk id other than the one its TLS client certificate names."""

    status = "PERMISSION_DENIED"
    reason = "KIOSK_CERTIFICATE_MISMATCH"


def check_kiosk_certificate(context: grpc.aio.ServicerContext, kiosk_id: str, field: str) -> None:
    """With mutual TLS: raise :class:`KioskCertificateMismatch` unless ``kiosk_id`` (sent in
    request field ``field``) is the common name of the call's client certificate."""
    names = context.auth_context().get("x509_common_name") or ()
    certified = next(iter(names), b"").decode("utf-8", "replace")
    if certified != kiosk_id:
        raise KioskCertificateMismatch(
            f"{field} is {kiosk_id!r} but this connection's certificate is kiosk"
            f" {certified!r}: a kiosk may only speak for itself",
            field=field,
        )


class KioskCertificateRevoked(SaoyError):
    """The client certificate of the connection is on the issuing CA's CRL.

    UNAUTHENTICATED, not the PERMISSION_DENIED of :class:`KioskCertificateMismatch`: a
    mismatch is a kiosk proven to be itself asking to act for another, while a revoked
    certificate proves nothing any more, like an expired session token or a wrong official's
    token (both UNAUTHENTICATED here)."""

    status = "UNAUTHENTICATED"
    reason = "KIOSK_CERTIFICATE_REVOKED"


REVOCATION_POLL_SECONDS = 1.0
"""How often the server looks whether the issuing CA's CRL changed (one ``stat``)."""
_PEER_CACHE_SIZE = 4096


@dataclass(frozen=True)
class _Peer:
    """What the revocation check needs of a client certificate, parsed once per certificate."""

    issuer: x509.Name
    serial: int
    name: str


class KioskRevocations:
    """The dev issuing CA's revocations, kept in memory for the check every call makes, and
    re-read by :meth:`watch` whenever the CRL file changes (``saoy kiosk-cert --revoke``, or
    :meth:`DevPki.revoke`, from any process on the same data dir)."""

    def __init__(self, pki: DevPki) -> None:
        self.pki = pki
        self.current: RevocationList = pki.revocation_list()
        self._peers: dict[bytes, _Peer] = {}

    def refresh(self) -> None:
        """Re-read the CRL if its file changed (blocking: run it off the event loop)."""
        latest = self.pki.revocation_list(self.current)
        if latest is not self.current:
            added = len(latest.entries) - len(self.current.entries)
            log.info(
                "issuing CA's CRL re-read: %d certificate(s) revoked (%+d)",
                len(latest.entries),
                added,
            )
            self.current = latest

    async def watch(self, every: float = REVOCATION_POLL_SECONDS) -> None:
        """Call :meth:`refresh` every ``every`` seconds, off the event loop, until cancelled;
        a CRL that cannot be read leaves the last good one in force."""
        loop = asyncio.get_running_loop()
        while True:
            await asyncio.sleep(every)
            try:
                await loop.run_in_executor(None, self.refresh)
            except Exception:
                log.exception("could not re-read the issuing CA's CRL; keeping the last one")

    def check(self, context: grpc.aio.ServicerContext) -> None:
        """Raise :class:`KioskCertificateRevoked` when the call's client certificate is on the
        CRL last read. No I/O: certificates are parsed once and looked up in memory."""
        pems = context.auth_context().get("x509_pem_cert")
        if not pems:
            return  # no client certificate: plaintext or tls = on
        peer = self._peer(pems[0])
        revocation = self.current.lookup(peer.issuer, peer.serial)
        if revocation is None:
            return
        raise KioskCertificateRevoked(
            f"the certificate of kiosk {peer.name!r} (serial {peer.serial:x}) was revoked on"
            f" {revocation.at:%Y-%m-%d %H:%M} UTC ({revocation.reason.replace('_', ' ')}):"
            f" this kiosk needs a new certificate (saoy kiosk-cert {peer.name}) before it can"
            " make calls again"
        )

    def _peer(self, pem: bytes) -> _Peer:
        peer = self._peers.get(pem)
        if peer is None:
            cert = x509.load_pem_x509_certificate(pem)
            peer = _Peer(cert.issuer, cert.serial_number, common_name_of(cert) or "?")
            if len(self._peers) >= _PEER_CACHE_SIZE:
                self._peers.clear()
            self._peers[pem] = peer
        return peer


class _WrappingInterceptor(grpc.aio.ServerInterceptor):
    """An interceptor that wraps each method's behaviour: :meth:`_wrap_unary` for calls that
    return one response, :meth:`_wrap_streaming` for those that stream them."""

    @abstractmethod
    def _wrap_unary(self, behavior: Callable[..., Awaitable[Any]]) -> Callable[..., Awaitable[Any]]:
        """The unary ``behavior`` wrapped."""

    @abstractmethod
    def _wrap_streaming(
        self, behavior: Callable[..., AsyncIterator[Any]]
    ) -> Callable[..., AsyncIterator[Any]]:
        """The streaming ``behavior`` wrapped."""

    async def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], Awaitable[grpc.RpcMethodHandler]],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler:
        return _rewrap(
            await continuation(handler_call_details), self._wrap_unary, self._wrap_streaming
        )


class RevocationInterceptor(_WrappingInterceptor):
    """Refuses every call, on every service, whose client certificate is revoked, before the
    servicer sees it. Put it after :class:`ErrorInterceptor`, which turns the refusal into its
    status."""

    def __init__(self, revocations: KioskRevocations) -> None:
        self.revocations = revocations

    def _wrap_unary(self, behavior: Callable[..., Awaitable[Any]]) -> Callable[..., Awaitable[Any]]:
        async def handler(request: Any, context: grpc.aio.ServicerContext) -> Any:
            self.revocations.check(context)
            return await behavior(request, context)

        return handler

    def _wrap_streaming(
        self, behavior: Callable[..., AsyncIterator[Any]]
    ) -> Callable[..., AsyncIterator[Any]]:
        async def handler(request: Any, context: grpc.aio.ServicerContext) -> AsyncIterator[Any]:
            self.revocations.check(context)
            async for response in behavior(request, context):
                yield response

        return handler


def _rewrap(
    handler: grpc.RpcMethodHandler | None,
    unary: Callable[[Callable[..., Awaitable[Any]]], Callable[..., Awaitable[Any]]],
    streaming: Callable[[Callable[..., AsyncIterator[Any]]], Callable[..., AsyncIterator[Any]]],
) -> grpc.RpcMethodHandler:
    """``handler`` with its behaviour wrapped: ``unary`` for calls that answer once,
    ``streaming`` for calls that answer with a stream."""
    if handler is None:
        return handler
    if handler.unary_unary:
        return grpc.unary_unary_rpc_method_handler(
            unary(handler.unary_unary), handler.request_deserializer, handler.response_serializer
        )
    if handler.stream_unary:
        return grpc.stream_unary_rpc_method_handler(
            unary(handler.stream_unary), handler.request_deserializer, handler.response_serializer
        )
    if handler.unary_stream:
        return grpc.unary_stream_rpc_method_handler(
            streaming(handler.unary_stream),
            handler.request_deserializer,
            handler.response_serializer,
        )
    if handler.stream_stream:
        return grpc.stream_stream_rpc_method_handler(
            streaming(handler.stream_stream),
            handler.request_deserializer,
            handler.response_serializer,
        )
    return handler


def to_status(error: SaoyError) -> grpc.Status:
    """Build a ``grpc.Status`` carrying ErrorInfo, and BadRequest / RetryInfo when they apply."""
    details: list[Any] = [
        error_details_pb2.ErrorInfo(reason=error.reason, domain=DOMAIN),
    ]
    if error.field:
        details.append(
            error_details_pb2.BadRequest(
                field_violations=[
                    error_details_pb2.BadRequest.FieldViolation(
                        field=error.field, description=error.message
                    )
                ]
            )
        )
    if error.retry_after is not None:
        seconds = int(error.retry_after)
        details.append(
            error_details_pb2.RetryInfo(
                retry_delay=duration_pb2.Duration(
                    seconds=seconds, nanos=int((error.retry_after - seconds) * 1e9)
                )
            )
        )
    packed = []
    for detail in details:
        any_detail = any_pb2.Any()
        any_detail.Pack(detail)
        packed.append(any_detail)
    status = status_pb2.Status(
        code=getattr(code_pb2, error.status), message=error.message, details=packed
    )
    return rpc_status.to_status(status)


class ErrorInterceptor(_WrappingInterceptor):
    """Maps every :class:`SaoyError` raised by a servicer to its status with details, and
    counts it by status code."""

    def __init__(self, metrics: Metrics | None = None) -> None:
        self.metrics = metrics

    async def _abort(self, context: grpc.aio.ServicerContext, error: SaoyError) -> None:
        status = to_status(error)
        log.info("rpc failed: %s %s: %s", error.status, error.reason, error.message)
        if self.metrics is not None:
            self.metrics.errors.labels(code=error.status).inc()
        await context.abort(status.code, status.details, status.trailing_metadata)

    def _wrap_unary(self, behavior: Callable[..., Awaitable[Any]]) -> Callable[..., Awaitable[Any]]:
        async def handler(request: Any, context: grpc.aio.ServicerContext) -> Any:
            try:
                return await behavior(request, context)
            except SaoyError as error:
                await self._abort(context, error)

        return handler

    def _wrap_streaming(
        self, behavior: Callable[..., AsyncIterator[Any]]
    ) -> Callable[..., AsyncIterator[Any]]:
        async def handler(request: Any, context: grpc.aio.ServicerContext) -> AsyncIterator[Any]:
            try:
                async for response in behavior(request, context):
                    yield response
            except SaoyError as error:
                await self._abort(context, error)

        return handler
