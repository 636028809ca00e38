"""The Verification service: by code, by PDF, and the download of a copy."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from concurrent.futures import Executor
from typing import TypeVar

import grpc

from saoy.core.errors import InvalidInput, NotFound, TooLarge
from saoy.core.trust.publication import LogPublisher
from saoy.core.trust.verify import VerificationReport, Verifier
from saoy.server.certification import MAX_CHUNK_BYTES
from saoy.server.events import check_to_proto, timestamp
from saoy.server.metrics import Metrics
from saoy.server.settings import MiB
from saoy.v1 import verification_pb2 as pb
from saoy.v1 import verification_pb2_grpc as pb_grpc

T = TypeVar("T")


def report_to_proto(report: VerificationReport) -> pb.VerificationResult:
    result = pb.VerificationResult(
        verdict=pb.VerificationResult.Verdict.Value(report.verdict.value),
        reason=report.reason,
        code=report.code,
        issuer=report.issuer,
        pages=report.pages,
        sha256=report.sha256,
        url=report.url,
        checks=[check_to_proto(c) for c in report.checks],
    )
    if report.issued_at is not None:
        result.issued_at.CopyFrom(timestamp(report.issued_at))
    if report.inclusion is not None:
        proof = report.inclusion
        result.inclusion.CopyFrom(
            pb.InclusionProof(
                leaf_index=proof.index,
                tree_size=proof.size,
                leaf_hash=proof.leaf_hash,
                hashes=list(proof.hashes),
                checkpoint=proof.checkpoint,
                entry=proof.entry,
            )
        )
    if report.revoked_at is not None:
        result.revoked_at.CopyFrom(timestamp(report.revoked_at))
        result.revoke_reason = report.revoke_reason
    return result


class VerificationServicer(pb_grpc.VerificationServicer):
    def __init__(
        self,
        verifier: Verifier,
        executor: Executor,
        metrics: Metrics,
        max_pdf_bytes: int,
        publisher: LogPublisher,
    ) -> None:
        self.publisher = publisher
        self.verifier = verifier
        self.executor = executor
        self.metrics = metrics
        self.max_pdf_bytes = max_pdf_bytes

    async def _run(self, fn: Callable[..., T], *args: object) -> T:
        return await asyncio.get_running_loop().run_in_executor(self.executor, fn, *args)

    def _count(self, report: VerificationReport) -> VerificationReport:
        self.metrics.verifications.labels(verdict=report.verdict.value).inc()
        return report

    async def VerifyCode(
        self, request: pb.VerifyCodeRequest, context: grpc.aio.ServicerContext
    ) -> pb.VerificationResult:
        report = await self._run(self.verifier.by_code, request.code)
        return report_to_proto(self._count(report))

    async def VerifyDocument(
        self, request: pb.VerifyDocumentRequest, context: grpc.aio.ServicerContext
    ) -> pb.VerificationResult:
        if len(request.pdf) > self.max_pdf_bytes:
            raise TooLarge(
                f"the PDF is larger than {self.max_pdf_bytes // MiB} MiB, which no copy issued "
                "by saoy is: upload the copy as it was issued",
                field="pdf",
            )
        report = await self._run(self.verifier.by_pdf, request.pdf)
        return report_to_proto(self._count(report))

    async def GetCopy(
        self, request: pb.GetCopyRequest, context: grpc.aio.ServicerContext
    ) -> AsyncIterator[pb.CopyChunk]:
        _, data = await self._run(self.verifier.copy_pdf, request.code)
        view = memoryview(data)
        for offset in range(0, len(data), MAX_CHUNK_BYTES):
            yield pb.CopyChunk(data=bytes(view[offset : offset + MAX_CHUNK_BYTES]))

    async def GetCheckpoint(
        self, request: pb.GetCheckpointRequest, context: grpc.aio.ServicerContext
    ) -> pb.Checkpoint:
        latest = await self._run(self.publisher.log.latest_checkpoint)
        if latest is None:
            raise NotFound("the transparency log has no checkpoint yet")
        return pb.Checkpoint(tree_size=latest.size, root_hash=latest.root, note=latest.note)

    async def GetConsistencyProof(
        self, request: pb.ConsistencyProofRequest, context: grpc.aio.ServicerContext
    ) -> pb.ConsistencyProof:
        latest = await self._run(self.publisher.log.latest_checkpoint)
        if latest is None or request.new_size > latest.size:
            raise InvalidInput(
                f"new_size must be at most the latest checkpoint's size "
                f"({0 if latest is None else latest.size})",
                field="new_size",
            )
        hashes = await self._run(
            self.publisher.log.consistency_proof, request.old_size, request.new_size
        )
        return pb.ConsistencyProof(
            old_size=request.old_size, new_size=request.new_size, hashes=hashes
        )
