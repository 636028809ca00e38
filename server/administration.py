"""The Administration service: acts reserved to authorized officials."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import logging
import secrets
from concurrent.futures import Executor
from pathlib import Path

import grpc

from saoy.core.desk.officials import Official, Officials
from saoy.core.errors import Unauthenticated
from saoy.core.trust.verify import Verifier
from saoy.server.verification import report_to_proto
from saoy.v1 import administration_pb2 as pb
from saoy.v1 import administration_pb2_grpc as pb_grpc
from saoy.v1 import verification_pb2 as vpb

log = logging.getLogger("saoy.server")


def ensure_admin_token(path: Path) -> None:
    """Create the officials' bearer-token file on first start (one token per line, mode 0600)."""
    if path.exists():
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(secrets.token_urlsafe(32) + "\n")
    tmp.chmod(0o600)
    tmp.replace(path)
    log.warning("created an official's token in %s", path)


def load_token_digests(path: Path) -> frozenset[bytes]:
    """SHA-256 digests of the tokens in the file; the tokens themselves are not kept."""
    lines = path.read_text().split()
    return frozenset(hashlib.sha256(line.encode()).digest() for line in lines if line)


class AdministrationServicer(pb_grpc.AdministrationServicer):
    """Revoke takes a token of the token file (a terminal of the center), or the session of a
    signed-in official whose role is ``head`` (Review.SignIn); an official of another role is
    refused with PERMISSION_DENIED."""

    def __init__(
        self,
        verifier: Verifier,
        executor: Executor,
        token_digests: frozenset[bytes],
        *,
        officials: Officials | None = None,
    ):
        self.verifier = verifier
        self.executor = executor
        self.token_digests = token_digests
        self.officials = officials

    async def _authorize(self, context: grpc.aio.ServicerContext) -> Official | None:
        """The head of center acting, or None for a token of the token file."""
        header = dict(context.invocation_metadata() or ()).get("authorization", "")
        scheme, _, token = str(header).partition(" ")
        if scheme.lower() != "bearer" or not token:
            raise Unauthenticated(
                "an official's token is required: send 'authorization: Bearer <token>'"
            )
        digest = hashlib.sha256(token.strip().encode()).digest()
        if any(hmac.compare_digest(digest, known) for known in self.token_digests):
            return None
        if self.officials is not None:
            try:
                official = await asyncio.get_running_loop().run_in_executor(
                    self.executor, self.officials.authenticate, token.strip()
                )
            except Unauthenticated as error:
                if error.reason != "SESSION_UNKNOWN":
                    raise
            else:
                official.require("head")
                return official
        raise Unauthenticated("the official's token is not valid")

    async def Revoke(
        self, request: pb.RevokeRequest, context: grpc.aio.ServicerContext
    ) -> vpb.VerificationResult:
        official = await self._authorize(context)
        report = await asyncio.get_running_loop().run_in_executor(
            self.executor, self.verifier.revoke, request.code, request.reason
        )
        if official is not None and self.officials is not None:
            await asyncio.get_running_loop().run_in_executor(
                self.executor, self._audit, official, report.code, request.reason
            )
        log.info("copy revoked")
        return report_to_proto(report)

    def _audit(self, official: Official, code: str, reason: str) -> None:
        assert self.officials is not None
        db = self.officials.db
        with db.transaction(write=True) as statements:
            db.audit(statements, official.id, "revoked", code=code, reason=reason)
