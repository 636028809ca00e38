"""Domain errors. Each carries the gRPC status it maps to (by name: core never imports grpc)
and a message meant for the person at the kiosk; the server's interceptor turns them into
``google.rpc.Status`` with details at one boundary."""

from __future__ import annotations


class SaoyError(Exception):
    """Base of every error that should reach a client as a status, never as a crash."""

    status = "INTERNAL"
    """Name of the ``grpc.StatusCode`` member this error maps to."""
    reason = "INTERNAL"
    """Stable, machine-readable reason (``google.rpc.ErrorInfo.reason``)."""

    def __init__(
        self,
        message: str,
        *,
        reason: str | None = None,
        field: str | None = None,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        if reason is not None:
            self.reason = reason
        self.field = field
        """The request field at fault, reported as ``google.rpc.BadRequest``."""
        self.retry_after = retry_after
        """Seconds after which a retry may succeed, reported as ``google.rpc.RetryInfo``."""


class InvalidInput(SaoyError):
    """The request is malformed: wrong format, bad field, broken file."""

    status = "INVALID_ARGUMENT"
    reason = "INVALID_INPUT"


class TooLarge(SaoyError):
    """A size, pixel or count limit was exceeded."""

    status = "RESOURCE_EXHAUSTED"
    reason = "TOO_LARGE"


class OutOfOrder(SaoyError):
    """A message came when the protocol did not allow it, or the system is not in a state for it."""

    status = "FAILED_PRECONDITION"
    reason = "OUT_OF_ORDER"


class NotFound(SaoyError):
    """The thing asked for does not exist."""

    status = "NOT_FOUND"
    reason = "NOT_FOUND"


class Unauthenticated(SaoyError):
    """The caller did not prove who they are."""

    status = "UNAUTHENTICATED"
    reason = "UNAUTHENTICATED"


class DeadlineExceeded(SaoyError):
    """The caller's deadline passed before the work could finish."""

    status = "DEADLINE_EXCEEDED"
    reason = "DEADLINE_EXCEEDED"


class Unavailable(SaoyError):
    """A transient failure; the same request may succeed later."""

    status = "UNAVAILABLE"
    reason = "UNAVAILABLE"
