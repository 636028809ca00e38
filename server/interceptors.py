"""One boundary where domain errors become gRPC statuses with ``google.rpc`` details."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import grpc
from google.protobuf import any_pb2, duration_pb2
from google.rpc import code_pb2, error_details_pb2, status_pb2
from grpc_status import rpc_status

from saoy.core.errors import SaoyError
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


class ErrorInterceptor(grpc.aio.ServerInterceptor):
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

    async def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], Awaitable[grpc.RpcMethodHandler]],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler:
        handler = await continuation(handler_call_details)
        if handler is None:
            return handler
        if handler.unary_unary:
            return grpc.unary_unary_rpc_method_handler(
                self._wrap_unary(handler.unary_unary),
                handler.request_deserializer,
                handler.response_serializer,
            )
        if handler.stream_unary:
            return grpc.stream_unary_rpc_method_handler(
                self._wrap_unary(handler.stream_unary),
                handler.request_deserializer,
                handler.response_serializer,
            )
        if handler.unary_stream:
            return grpc.unary_stream_rpc_method_handler(
                self._wrap_streaming(handler.unary_stream),
                handler.request_deserializer,
                handler.response_serializer,
            )
        if handler.stream_stream:
            return grpc.stream_stream_rpc_method_handler(
                self._wrap_streaming(handler.stream_stream),
                handler.request_deserializer,
                handler.response_serializer,
            )
        return handler
