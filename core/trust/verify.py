"""Verification of issued copies, by code and by PDF. Results are values; only unreadable input
raises."""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any

from saoy.core.errors import InvalidInput, NotFound
from saoy.core.model import CheckResult, Outcome
from saoy.core.pages.pdfcheck import PdfReport, inspect_pdf
from saoy.core.reception import codes
from saoy.core.storage.blobs import BlobStore
from saoy.core.storage.registry import CopyRecord, Registry
from saoy.core.trust.publication import LogPublisher
from saoy.core.trust.translog import InclusionProof


class Verdict(StrEnum):
    VALID = "VALID"
    UNKNOWN = "UNKNOWN"
    ALTERED = "ALTERED"
    REVOKED = "REVOKED"


@dataclass(frozen=True)
class VerificationReport:
    """The answer about one copy: the bottom line, why, and every check behind it."""

    verdict: Verdict
    reason: str
    code: str = ""
    issuer: str = ""
    issued_at: datetime | None = None
    pages: int = 0
    sha256: str = ""
    url: str = ""
    checks: tuple[CheckResult, ...] = ()
    revoked_at: datetime | None = None
    revoke_reason: str = ""
    inclusion: InclusionProof | None = None


class Verifier:
    def __init__(
        self,
        *,
        registry: Registry,
        blobs: BlobStore,
        trust_roots: Sequence[Any],
        crls: Callable[[], Sequence[Any]] = list,
        base_url: str,
        publisher: LogPublisher | None = None,
    ) -> None:
        self.registry = registry
        self.blobs = blobs
        self.trust_roots = list(trust_roots)
        self.crls = crls
        self.publisher = publisher
        self.base_url = base_url
        self.release: Callable[[CopyRecord], None] | None = None
        """Raises while a copy is held back (its fee unpaid); None: every copy is released."""

    def _url(self, code: str) -> str:
        return f"{self.base_url}/v/{code}"

    def _registered(
        self, copy: CopyRecord, verdict: Verdict, reason: str, checks: list[CheckResult]
    ) -> VerificationReport:
        return VerificationReport(
            verdict=verdict,
            reason=reason,
            code=copy.code,
            issuer=copy.issuer,
            issued_at=copy.issued_at,
            pages=copy.pages,
            sha256=copy.blob_key,
            url=self._url(copy.code),
            checks=tuple(checks),
            revoked_at=copy.revoked_at,
            revoke_reason=copy.revoke_reason or "",
            inclusion=self.publisher.proof(copy.code) if self.publisher else None,
        )

    @staticmethod
    def _revocation(copy: CopyRecord) -> CheckResult:
        if copy.revoked_at is not None:
            return CheckResult(
                "not_revoked",
                Outcome.FAIL,
                f"revoked on {copy.revoked_at.isoformat()}: {copy.revoke_reason or 'no reason'}",
            )
        return CheckResult("not_revoked", Outcome.PASS, "the copy has not been revoked")

    def by_code(self, text: str) -> VerificationReport:
        """Look a copy up by its code. A malformed code raises InvalidInput, an unknown one
        NotFound."""
        code = codes.normalize(text)
        copy = self.registry.get_copy(code)
        if copy is None:
            raise NotFound(
                f"Không có bản sao nào với mã {code} / No copy is registered under code {code}",
                reason="UNKNOWN_CODE",
                field="code",
            )
        checks = [CheckResult("registered", Outcome.PASS, "the code is in the registry")]
        revocation = self._revocation(copy)
        checks.append(revocation)
        if revocation.outcome is Outcome.FAIL:
            return self._registered(copy, Verdict.REVOKED, revocation.reason, checks)
        return self._registered(copy, Verdict.VALID, "the copy is registered and valid", checks)

    def by_pdf(self, pdf: bytes) -> VerificationReport:
        """Check a PDF's signatures and compare it byte for byte with the registered copy."""
        report = inspect_pdf(pdf, self.trust_roots, crls=self.crls())
        checks = _signature_checks(report)
        if report.code is None:
            return VerificationReport(
                Verdict.UNKNOWN,
                "the PDF carries no verification code: it is not a copy issued here",
                checks=tuple(checks),
            )
        copy = self.registry.get_copy(report.code)
        if copy is None:
            return VerificationReport(
                Verdict.UNKNOWN,
                f"no copy is registered under code {report.code}",
                code=report.code,
                checks=tuple(checks),
            )
        digest = hashlib.sha256(pdf).hexdigest()
        same = digest == copy.blob_key
        checks.append(
            CheckResult(
                "matches_registry",
                Outcome.PASS if same else Outcome.FAIL,
                "the file is byte for byte the registered copy"
                if same
                else "the file differs from the registered copy",
            )
        )
        revocation = self._revocation(copy)
        checks.append(revocation)
        if not report.bottom_line:
            broken = next(c for c in checks if c.outcome is Outcome.FAIL)
            return self._registered(
                copy, Verdict.ALTERED, f"signature broken: {broken.reason}", checks
            )
        if not same:
            return self._registered(
                copy,
                Verdict.ALTERED,
                "content changed: the file differs from the copy that was issued",
                checks,
            )
        if revocation.outcome is Outcome.FAIL:
            return self._registered(copy, Verdict.REVOKED, revocation.reason, checks)
        return self._registered(
            copy, Verdict.VALID, "signature intact and the file is the registered copy", checks
        )

    def revoke(self, text: str, reason: str) -> VerificationReport:
        """Revoke a copy (idempotent) and answer with its state after."""
        reason = " ".join(reason.split())
        if not 3 <= len(reason) <= 500:
            raise InvalidInput("a revocation needs a reason of 3-500 characters", field="reason")
        copy = self.registry.revoke(codes.normalize(text), reason)
        if self.publisher is not None:
            self.publisher.revoked(copy)
        return self.by_code(text)

    def copy_pdf(self, text: str) -> tuple[CopyRecord, bytes]:
        """The signed PDF of a copy, for download."""
        code = codes.normalize(text)
        copy = self.registry.get_copy(code)
        if copy is None:
            raise NotFound(f"No copy is registered under code {code}", field="code")
        if self.release is not None:
            self.release(copy)
        return copy, self.blobs.get_for(copy.dossier_id, copy.blob_key, copy=True)


def _signature_checks(report: PdfReport) -> list[CheckResult]:
    if not report.signatures:
        return [CheckResult("signed", Outcome.FAIL, "the PDF has no signature")]
    checks = []
    for sig in report.signatures:
        name = sig.field_name
        checks.append(
            CheckResult(
                f"signature_intact:{name}",
                Outcome.PASS if sig.intact and sig.valid else Outcome.FAIL,
                "the signed bytes are unchanged"
                if sig.intact and sig.valid
                else "the signed bytes were changed",
            )
        )
        checks.append(
            CheckResult(
                f"signature_trusted:{name}",
                Outcome.PASS if sig.trusted else Outcome.FAIL,
                f"signed by {sig.signer}" if sig.trusted else "the signer is not trusted",
            )
        )
        checks.append(
            CheckResult(
                f"signature_unaltered:{name}",
                Outcome.PASS if sig.unaltered else Outcome.FAIL,
                "nothing but signatures or validation data was added after signing"
                if sig.unaltered
                else "content was added after signing",
            )
        )
        checks.append(
            CheckResult(
                f"timestamp:{name}",
                Outcome.PASS if sig.timestamp_valid else Outcome.FAIL,
                "time-stamped" if sig.timestamp_valid else "no valid time-stamp",
            )
        )
    return checks
