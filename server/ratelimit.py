"""Rate limits at the server's edges: per kiosk on Identity.Authenticate and
Certification.Certify, per client address on the public HTTP pages and uploads.

A kiosk is who the server already takes it to be: with mutual TLS the common name of its client
certificate (which the servicers require ``header.kiosk_id`` to equal), otherwise the
``kiosk_id`` of the stream's header. The header is the stream's first message, so the limit is
taken when the servicer reads it, before any image is read; a refusal is RESOURCE_EXHAUSTED
with ``google.rpc.RetryInfo`` (through :class:`~saoy.server.interceptors.ErrorInterceptor`).
Over HTTP a refusal is 429 with ``Retry-After``. Refusals are counted by surface only.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import grpc
from aiohttp import web

from saoy.core.ratelimit import Bucket, RateLimited, RateLimiter, retry_seconds
from saoy.core.trust.pki import KIOSK_ID
from saoy.server.interceptors import _rewrap
from saoy.server.metrics import Metrics
from saoy.server.settings import Settings

AUTHENTICATE = "authenticate"
CERTIFY = "certify"
HTTP_PAGE = "http_page"
HTTP_UPLOAD = "http_upload"
SURFACES = (AUTHENTICATE, CERTIFY, HTTP_PAGE, HTTP_UPLOAD)

_METHODS = {
    "/saoy.v1.Identity/Authenticate": AUTHENTICATE,
    "/saoy.v1.Certification/Certify": CERTIFY,
}
UPLOAD_PATHS = frozenset({"/verify"})
"""Paths whose requests carry a file: the upload bucket, not the page bucket."""
EXEMPT_PATHS = frozenset({"/metrics", "/healthz"})
"""What the operators' own systems poll: never limited."""


def buckets_of(settings: Settings) -> dict[str, Bucket]:
    """Each surface's bucket, from the settings."""
    return {
        AUTHENTICATE: Bucket(settings.authenticate_rate, settings.authenticate_burst),
        CERTIFY: Bucket(settings.certify_rate, settings.certify_burst),
        HTTP_PAGE: Bucket(settings.http_rate, settings.http_burst),
        HTTP_UPLOAD: Bucket(settings.upload_rate, settings.upload_burst),
    }


async def _take(limiter: RateLimiter, surface: str, caller: str) -> float | None:
    """None when the request may go on, else the seconds to wait. Off the event loop when the
    buckets live in Redis."""
    if not limiter.blocking:
        decision = limiter.take(surface, caller)
    else:
        decision = await asyncio.get_running_loop().run_in_executor(
            None, limiter.take, surface, caller
        )
    return None if decision.allowed else decision.retry_after


def _kiosk_of(context: grpc.aio.ServicerContext, message: Any) -> str | None:
    """The kiosk a stream speaks for: its certificate's common name with mutual TLS, else its
    header's kiosk_id; None for a stream the servicer will refuse anyway (no header, a
    malformed id)."""
    names = context.auth_context().get("x509_common_name") or ()
    if names:
        return "cn:" + next(iter(names)).decode("utf-8", "replace")
    if message is None or message.WhichOneof("part") != "header":
        return None
    kiosk_id = message.header.kiosk_id
    return "id:" + kiosk_id if KIOSK_ID.fullmatch(kiosk_id) else None


class RateLimitInterceptor(grpc.aio.ServerInterceptor):
    """Takes a token from the kiosk's bucket when Authenticate or Certify reads its first
    message. Put it after :class:`ErrorInterceptor`, which turns the refusal into its status."""

    def __init__(self, limiter: RateLimiter, metrics: Metrics) -> None:
        self.limiter = limiter
        self.metrics = metrics

    async def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], Awaitable[grpc.RpcMethodHandler]],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler:
        handler = await continuation(handler_call_details)
        surface = _METHODS.get(handler_call_details.method)
        if surface is None or handler is None or not self.limiter.limited(surface):
            return handler
        return _rewrap(handler, lambda behavior: behavior, self._streaming(surface))

    def _streaming(
        self, surface: str
    ) -> Callable[[Callable[..., AsyncIterator[Any]]], Callable[..., AsyncIterator[Any]]]:
        def wrap(behavior: Callable[..., AsyncIterator[Any]]) -> Callable[..., AsyncIterator[Any]]:
            async def handler(
                requests: AsyncIterator[Any], context: grpc.aio.ServicerContext
            ) -> AsyncIterator[Any]:
                async for response in behavior(self._limited(surface, requests, context), context):
                    yield response

            return handler

        return wrap

    async def _limited(
        self, surface: str, requests: AsyncIterator[Any], context: grpc.aio.ServicerContext
    ) -> AsyncIterator[Any]:
        """``requests`` as they come, once the kiosk of the first one has had its token."""
        stream = requests.__aiter__()
        try:
            first = await anext(stream)
        except StopAsyncIteration:
            return
        kiosk = _kiosk_of(context, first)
        if kiosk is not None:
            wait = await _take(self.limiter, surface, kiosk)
            if wait is not None:
                self.metrics.rate_limited.labels(surface=surface).inc()
                what = "authentications" if surface == AUTHENTICATE else "dossiers"
                raise RateLimited(
                    f"Quá nhiều yêu cầu / Too many {what} from this kiosk: try again in"
                    f" {retry_seconds(wait)} s",
                    retry_after=wait,
                )
        yield first
        async for message in stream:
            yield message


def rate_limit_middleware(limiter: RateLimiter, metrics: Metrics) -> Any:
    """An aiohttp middleware: one token per request from the client address's bucket (uploads
    from their own), 429 with Retry-After when it is empty."""

    @web.middleware
    async def middleware(
        request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
    ) -> web.StreamResponse:
        if request.path in EXEMPT_PATHS:
            return await handler(request)
        surface = HTTP_UPLOAD if request.path in UPLOAD_PATHS else HTTP_PAGE
        if not limiter.limited(surface):
            return await handler(request)
        wait = await _take(limiter, surface, "ip:" + (request.remote or "?"))
        if wait is None:
            return await handler(request)
        metrics.rate_limited.labels(surface=surface).inc()
        seconds = retry_seconds(wait)
        what = "uploads" if surface == HTTP_UPLOAD else "requests"
        raise web.HTTPTooManyRequests(
            text=f"Quá nhiều yêu cầu / Too many {what} from your address: try again in"
            f" {seconds} s\n",
            headers={"Retry-After": str(seconds)},
        )

    return middleware
