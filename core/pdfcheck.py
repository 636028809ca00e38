"""Check the signatures of a copy PDF; every check comes back as a value (pyHanko's
``SignatureStatus.bottom_line`` style), and only unreadable input raises.

Each signature goes through pyHanko's PAdES long-term validation (ETSI EN 319 102-1 §5.6.3):
the chain of document time-stamps proves when the embedded validation data (DSS) existed, so a
B-LTA copy still validates after its CRLs have expired. Nothing is fetched over the network:
revocation data comes from the PDF's DSS and from the CRLs the caller passes. pyHanko's
difference analysis classifies what was appended after each signature; anything beyond
signatures, validation data and time-stamps (a page added or replaced, say) fails the
bottom line.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from io import BytesIO

from asn1crypto import crl as asn1_crl
from asn1crypto import x509 as asn1_x509
from pyhanko.pdf_utils.generic import TextStringObject
from pyhanko.pdf_utils.misc import PdfError
from pyhanko.pdf_utils.reader import PdfFileReader
from pyhanko.sign.ades.report import AdESPassed
from pyhanko.sign.diff_analysis import ModificationLevel
from pyhanko.sign.validation.ades import AdESLTAValidationResult, ades_lta_validation
from pyhanko.sign.validation.errors import SignatureValidationError
from pyhanko.sign.validation.pdf_embedded import EmbeddedPdfSignature
from pyhanko.sign.validation.policy_decl import (
    CertificateFetchingRule,
    LocalKnowledge,
    PdfSignatureValidationSpec,
    RevinfoOnlineFetchingRule,
    RevocationInfoGatheringSpec,
    SignatureValidationSpec,
)
from pyhanko.sign.validation.status import PdfSignatureStatus, SignatureCoverageLevel
from pyhanko_certvalidator.context import CertValidationPolicySpec
from pyhanko_certvalidator.ltv.types import ValidationTimingInfo
from pyhanko_certvalidator.policy_decl import (
    CertRevTrustPolicy,
    RevocationCheckingPolicy,
    RevocationCheckingRule,
)
from pyhanko_certvalidator.registry import SimpleTrustManager
from pyhanko_certvalidator.revinfo.archival import CRLContainer

from saoy.core.errors import InvalidInput
from saoy.core.pki import organization_of
from saoy.core.render import code_from_info

log = logging.getLogger(__name__)

_HEADER_WINDOW = 1024  # PDF readers accept the %PDF- header anywhere in the first 1 KiB
_AFTERWARDS_ALLOWED = {ModificationLevel.LTA_UPDATES.name, ModificationLevel.FORM_FILLING.name}


@dataclass(frozen=True)
class SignatureReport:
    """Every check made on one signature."""

    field_name: str
    signer: str  # who signed, for people: "common name, organization"
    signer_subject: str  # the signing certificate's full subject, human-readable
    signer_organization: str | None
    signing_time: dt.datetime | None  # as the signer claims it (CMS signing-time)
    timestamp_time: dt.datetime | None  # from the RFC 3161 signature time-stamp, if any
    intact: bool  # the digest over the signed byte range matches
    valid: bool  # the cryptographic signature checks out
    trusted: bool  # the signing certificate chains to a given trust root, and is not revoked
    timestamp_valid: bool  # a time-stamp is present, intact, valid and trusted
    covers_whole_file: bool  # nothing was appended after this signature
    modification_level: str  # ModificationLevel name of what was appended after it
    docmdp_ok: bool | None  # what was appended is allowed by the certification level
    problem: str | None = None  # why the signature could not be evaluated at all
    level: str = "NONE"  # PAdES baseline level reached: B-B, B-T, B-LT, B-LTA (NONE: invalid)
    revoked: bool = False  # a CRL says the signing certificate was revoked before signing
    archive_time: dt.datetime | None = None  # oldest valid document time-stamp after it (LTA)
    validation_detail: str | None = None  # pyHanko's explanation when validation failed

    @property
    def unaltered(self) -> bool:
        """Nothing was added after this signature but later signatures or validation data."""
        return self.covers_whole_file or (
            self.docmdp_ok is not False and self.modification_level in _AFTERWARDS_ALLOWED
        )

    @property
    def bottom_line(self) -> bool:
        return self.intact and self.valid and self.trusted and self.unaltered

    @property
    def reason(self) -> str | None:
        """Why :attr:`bottom_line` is false, for people; None when it is true."""
        if self.problem is not None:
            return f"signature {self.field_name} cannot be evaluated: {self.problem}"
        if not self.intact:
            return f"signature {self.field_name}: the signed bytes were changed"
        if not self.valid:
            return f"signature {self.field_name}: the cryptographic signature does not verify"
        if self.revoked:
            return f"signature {self.field_name}: the signer's certificate was revoked"
        if not self.trusted:
            detail = f" ({self.validation_detail})" if self.validation_detail else ""
            return f"signature {self.field_name}: the signer is not trusted{detail}"
        if not self.unaltered:
            what = _MODIFICATION_WORDS.get(self.modification_level, "content was changed")
            return (
                f"signature {self.field_name}: {what} after signing "
                f"(modification level {self.modification_level})"
            )
        return None


_MODIFICATION_WORDS = {
    "OTHER": "pages or content were added, removed or replaced",
    "ANNOTATIONS": "annotations were added",
    "UNKNOWN": "the file was changed",
}


@dataclass(frozen=True)
class PdfReport:
    """What a copy PDF says about itself and how its signatures fared."""

    code: str | None  # the verification code from the document info, if any
    page_count: int
    signatures: tuple[SignatureReport, ...]
    document_timestamps: int = 0  # document time-stamp signatures (PAdES B-LTA)
    trailing_bytes: bool = False  # bytes follow the last signed revision, outside any revision

    @property
    def bottom_line(self) -> bool:
        """At least one signature, and every signature intact, valid, trusted and unaltered.

        A signature followed only by further signatures, validation data (LTV) or document
        time-stamps still counts as unaltered; for a copy with one signature this is "covers
        the whole file".
        """
        return (
            bool(self.signatures)
            and not self.trailing_bytes
            and all(s.bottom_line for s in self.signatures)
        )

    @property
    def reason(self) -> str | None:
        """Why :attr:`bottom_line` is false, for people; None when it is true."""
        if not self.signatures:
            return "the PDF has no signature"
        if self.trailing_bytes:
            return "bytes were appended after the last signature or time-stamp"
        return next((s.reason for s in self.signatures if s.reason is not None), None)

    @property
    def level(self) -> str:
        """The PAdES level every signature reaches (the lowest of them), NONE if unsigned."""
        if not self.signatures:
            return "NONE"
        return min((s.level for s in self.signatures), key=_LEVELS.index)


_LEVELS = ("NONE", "B-B", "B-T", "B-LT", "B-LTA")


def inspect_pdf(
    pdf: bytes,
    trust_roots: Sequence[asn1_x509.Certificate],
    *,
    crls: Sequence[asn1_crl.CertificateList] = (),
    at: dt.datetime | None = None,
) -> PdfReport:
    """Read ``pdf`` and validate each of its signatures against ``trust_roots``.

    ``crls`` are current CRLs the caller knows (the issuer's own), used with those embedded in
    the PDF; nothing is fetched. ``at`` validates as of another time (default: now).

    Synchronous and CPU-bound (hashing, diff analysis): run it in an executor, not on the
    event loop thread. Raises :class:`InvalidInput` when the bytes are not a readable PDF.
    """
    if b"%PDF-" not in pdf[:_HEADER_WINDOW]:
        raise InvalidInput("the file is not a PDF", field="pdf")
    try:
        reader = PdfFileReader(BytesIO(pdf), strict=False)
        page_count = int(reader.root["/Pages"]["/Count"])
        code = _code(reader)
        embedded = list(reader.embedded_regular_signatures)
        timestamps = len(list(reader.embedded_timestamp_signatures))
        dss = _dss_contents(reader)
        trailing = _trailing_bytes(pdf)
    except (PdfError, ValueError, KeyError, TypeError, IndexError) as exc:
        raise InvalidInput(f"the PDF cannot be read: {exc}", field="pdf") from exc
    spec = _validation_spec(trust_roots, crls)
    timing = (
        ValidationTimingInfo(
            validation_time=at, best_signature_time=at, point_in_time_validation=True
        )
        if at is not None
        else None
    )
    signatures = tuple(_check(sig, spec, timing, dss) for sig in embedded)
    return PdfReport(
        code=code,
        page_count=page_count,
        signatures=signatures,
        document_timestamps=timestamps,
        trailing_bytes=trailing,
    )


def _code(reader: PdfFileReader) -> str | None:
    info = reader.trailer_view.get("/Info")
    if info is None:
        return None
    keywords = info.get_object().get("/Keywords")
    if isinstance(keywords, TextStringObject | str):
        return code_from_info(str(keywords))
    return None


def _validation_spec(
    trust_roots: Sequence[asn1_x509.Certificate], crls: Sequence[asn1_crl.CertificateList]
) -> PdfSignatureValidationSpec:
    # Revocation is checked wherever a certificate names a CRL (every certificate of the dev
    # PKI does); certificates that name none are not checked. Only local data is used.
    rule = RevocationCheckingRule.CHECK_IF_DECLARED
    policy = CertValidationPolicySpec(
        trust_manager=SimpleTrustManager.build(trust_roots=list(trust_roots)),
        revinfo_policy=CertRevTrustPolicy(
            RevocationCheckingPolicy(ee_certificate_rule=rule, intermediate_ca_cert_rule=rule)
        ),
    )
    return PdfSignatureValidationSpec(
        SignatureValidationSpec(
            cert_validation_policy=policy,
            revinfo_gathering_policy=RevocationInfoGatheringSpec(
                online_fetching_rule=RevinfoOnlineFetchingRule.LOCAL_ONLY,
                certificate_fetching_rule=CertificateFetchingRule.NEVER_FETCH,
            ),
            local_knowledge=LocalKnowledge(known_crls=[CRLContainer(c) for c in crls]),
        )
    )


@dataclass(frozen=True)
class _Dss:
    crl_issuers: tuple[asn1_x509.Name, ...]
    certs: frozenset[bytes]  # SHA-256 fingerprints


def _dss_contents(reader: PdfFileReader) -> _Dss:
    dss = reader.root.get("/DSS")
    if dss is None:
        return _Dss((), frozenset())
    dss = dss.get_object()
    issuers = []
    for ref in dss.get("/CRLs", ()):
        crl = asn1_crl.CertificateList.load(ref.get_object().data)
        issuers.append(crl.issuer)
    certs = frozenset(
        asn1_x509.Certificate.load(ref.get_object().data).sha256 for ref in dss.get("/Certs", ())
    )
    return _Dss(tuple(issuers), certs)


def _trailing_bytes(pdf: bytes) -> bool:
    """Bytes follow the final ``%%EOF``: appended outside any revision, so no signature and no
    difference analysis covers them."""
    return not pdf.rstrip(b"\x00\t\n\x0c\r ").endswith(b"%%EOF")


def _check(
    sig: EmbeddedPdfSignature,
    spec: PdfSignatureValidationSpec,
    timing: ValidationTimingInfo | None,
    dss: _Dss,
) -> SignatureReport:
    try:
        result = asyncio.run(ades_lta_validation(sig, spec, timing_info=timing))
    except (SignatureValidationError, PdfError, ValueError, KeyError, TypeError) as exc:
        log.info("signature %s could not be evaluated: %s", sig.field_name, exc)
        return _broken(sig, str(exc) or type(exc).__name__)
    status = result.api_status
    if not isinstance(status, PdfSignatureStatus):
        return _broken(sig, result.failure_msg or str(result.ades_subindic))
    return _report(sig, status, result, dss)


def _report(
    sig: EmbeddedPdfSignature,
    status: PdfSignatureStatus,
    result: AdESLTAValidationResult,
    dss: _Dss,
) -> SignatureReport:
    cert = status.signing_cert
    ts = status.timestamp_validity
    level = status.modification_level
    timestamp_valid = ts is not None and ts.intact and ts.valid and ts.trusted
    revoked = status.revoked
    return SignatureReport(
        field_name=sig.field_name,
        signer=_display_name(cert),
        signer_subject=cert.subject.human_friendly,
        signer_organization=organization_of(cert),
        signing_time=status.signer_reported_dt or sig.self_reported_timestamp,
        timestamp_time=ts.timestamp if ts is not None else None,
        intact=status.intact,
        valid=status.valid,
        trusted=status.trusted and not revoked,
        timestamp_valid=timestamp_valid,
        covers_whole_file=status.coverage == SignatureCoverageLevel.ENTIRE_FILE,
        modification_level=level.name if level is not None else "UNKNOWN",
        docmdp_ok=status.docmdp_ok,
        level=_pades_level(status, timestamp_valid, result, dss),
        revoked=revoked,
        archive_time=result.oldest_evidence_record_timestamp,
        validation_detail=None
        if isinstance(result.ades_subindic, AdESPassed)
        else result.failure_msg,
    )


def _pades_level(
    status: PdfSignatureStatus,
    timestamp_valid: bool,
    result: AdESLTAValidationResult,
    dss: _Dss,
) -> str:
    if not (status.intact and status.valid and status.trusted):
        return "NONE"
    if not timestamp_valid:
        return "B-B"
    cert = status.signing_cert
    if cert.sha256 not in dss.certs or cert.issuer not in dss.crl_issuers:
        return "B-T"
    if result.oldest_evidence_record_timestamp is None:
        return "B-LT"
    return "B-LTA"


def _broken(sig: EmbeddedPdfSignature, problem: str) -> SignatureReport:
    signer, subject, organization = "", "", None
    try:
        cert = sig.signer_cert
        signer, subject = _display_name(cert), cert.subject.human_friendly
        organization = organization_of(cert)
    except Exception:  # the CMS blob itself may be what is broken
        pass
    return SignatureReport(
        field_name=sig.field_name,
        signer=signer,
        signer_subject=subject,
        signer_organization=organization,
        signing_time=None,
        timestamp_time=None,
        intact=False,
        valid=False,
        trusted=False,
        timestamp_valid=False,
        covers_whole_file=False,
        modification_level="UNKNOWN",
        docmdp_ok=None,
        problem=problem,
    )


def _display_name(cert: asn1_x509.Certificate) -> str:
    native = cert.subject.native
    parts = [native.get("common_name"), organization_of(cert)]
    names = [p for p in parts if isinstance(p, str) and p]
    return ", ".join(dict.fromkeys(names)) or cert.subject.human_friendly
