"""Check the signatures of a copy PDF; every check comes back as a value (pyHanko's
``SignatureStatus.bottom_line`` style), and only unreadable input raises.

Each signature goes through pyHanko's PAdES long-term validation (ETSI EN 319 102-1 §5.6.3):
the chain of document time-stamps proves when the embedded validation data (DSS) existed, so a
B-LTA copy still validates after its CRLs have expired. Nothing is fetched over the network:
revocation data comes from the PDF's DSS and from the CRLs the caller passes. pyHanko's
difference analysis classifies what was appended after each signature; anything beyond
signatures, validation data and time-stamps (a page added or replaced, say) fails the
bottom line.

:func:`inspect_integrity` makes the checks that need no trust root, for whoever holds a copy
but not the issuer's root: each signature's and document time-stamp's integrity (the digest of
its byte ranges against the CMS signed attributes, the signature value with the certificate
embedded in the CMS), its coverage, and the same difference analysis of what was appended after
it. Who signed is reported, not vouched for. Both also refuse form fields other than signature
fields: a copy has none, and a text field's value can be changed by "form filling", which the
difference analysis allows after a signature.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import struct
import threading
import zlib
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from io import BytesIO

from asn1crypto import crl as asn1_crl
from asn1crypto import x509 as asn1_x509
from pyhanko.pdf_utils.decode_limits import DecodeLimits, DocumentDecodeBudget, StreamDecodeLimits
from pyhanko.pdf_utils.generic import (
    ArrayObject,
    DictionaryObject,
    IndirectObject,
    Reference,
    StreamObject,
    TextStringObject,
)
from pyhanko.pdf_utils.misc import PdfDecodeLimitError, PdfError
from pyhanko.pdf_utils.reader import PdfFileReader
from pyhanko.sign.ades.report import AdESPassed
from pyhanko.sign.diff_analysis import ModificationLevel
from pyhanko.sign.fields import SigSeedSubFilter, enumerate_sig_fields
from pyhanko.sign.validation.ades import AdESLTAValidationResult, ades_lta_validation
from pyhanko.sign.validation.errors import SignatureValidationError
from pyhanko.sign.validation.pdf_embedded import (
    EmbeddedPdfSignature,
    async_validate_pdf_signature,
    async_validate_pdf_timestamp,
)
from pyhanko.sign.validation.policy_decl import (
    CertificateFetchingRule,
    LocalKnowledge,
    PdfSignatureValidationSpec,
    RevinfoOnlineFetchingRule,
    RevocationInfoGatheringSpec,
    SignatureValidationSpec,
)
from pyhanko.sign.validation.status import (
    DocumentTimestampStatus,
    PdfSignatureStatus,
    SignatureCoverageLevel,
)
from pyhanko_certvalidator import ValidationContext
from pyhanko_certvalidator.context import CertValidationPolicySpec
from pyhanko_certvalidator.ltv.types import ValidationTimingInfo
from pyhanko_certvalidator.policy_decl import (
    CertRevTrustPolicy,
    RevocationCheckingPolicy,
    RevocationCheckingRule,
)
from pyhanko_certvalidator.registry import SimpleTrustManager
from pyhanko_certvalidator.revinfo.archival import CRLContainer

from saoy.core.errors import InvalidInput, TooLarge
from saoy.core.render import code_from_info
from saoy.core.trust.pki import organization_of

log = logging.getLogger(__name__)


class _NoRootByDesign(logging.Filter):
    """While :func:`inspect_integrity` runs, a signer without a path to a root is the point,
    not news: drop pyHanko's warning (and its traceback) about it, in this thread only."""

    def __init__(self) -> None:
        super().__init__()
        self.active = threading.local()

    def filter(self, record: logging.LogRecord) -> bool:
        quiet = getattr(self.active, "on", False)
        return not (quiet and record.getMessage().startswith("Failed to build path"))


_NO_ROOT = _NoRootByDesign()
logging.getLogger("pyhanko.sign.validation.generic_cms").addFilter(_NO_ROOT)

_HEADER_WINDOW = 1024  # PDF readers accept the %PDF- header anywhere in the first 1 KiB
_OTHER = ModificationLevel.OTHER
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
    document_timestamp: bool = False  # a document time-stamp (RFC 3161), not a signature
    signer_certificate: asn1_x509.Certificate | None = field(default=None, compare=False)

    @property
    def unaltered(self) -> bool:
        """Nothing was added after this signature but later signatures or validation data."""
        return self.covers_whole_file or (
            self.docmdp_ok is not False and self.modification_level in _AFTERWARDS_ALLOWED
        )

    @property
    def integrity_ok(self) -> bool:
        """Intact, cryptographically valid and unaltered: all that needs no trust root."""
        return self.intact and self.valid and self.unaltered

    @property
    def bottom_line(self) -> bool:
        return self.integrity_ok and self.trusted

    @property
    def reason(self) -> str | None:
        """Why :attr:`bottom_line` is false, for people; None when it is true."""
        return self._why(trust=True)

    @property
    def integrity_reason(self) -> str | None:
        """Why :attr:`integrity_ok` is false, for people; None when it is true."""
        return self._why(trust=False)

    def _why(self, *, trust: bool) -> str | None:
        if self.problem is not None:
            return f"signature {self.field_name} cannot be evaluated: {self.problem}"
        if not self.intact:
            return f"signature {self.field_name}: the signed bytes were changed"
        if not self.valid:
            return f"signature {self.field_name}: the cryptographic signature does not verify"
        if trust and self.revoked:
            return f"signature {self.field_name}: the signer's certificate was revoked"
        if trust and not self.trusted:
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
    other_fields: tuple[str, ...] = ()  # form fields that are not signature fields

    @property
    def bottom_line(self) -> bool:
        """At least one signature, and every signature intact, valid, trusted and unaltered.

        A signature followed only by further signatures, validation data (LTV) or document
        time-stamps still counts as unaltered; for a copy with one signature this is "covers
        the whole file".
        """
        return self.integrity_ok and all(s.trusted for s in self.signatures)

    @property
    def integrity_ok(self) -> bool:
        """What :attr:`bottom_line` asks but trust: at least one signature; each intact, valid
        and unaltered; nothing appended outside a revision; no form field but signatures."""
        return (
            any(not s.document_timestamp for s in self.signatures)
            and not self.trailing_bytes
            and not self.other_fields
            and all(s.integrity_ok for s in self.signatures)
        )

    @property
    def reason(self) -> str | None:
        """Why :attr:`bottom_line` is false, for people; None when it is true."""
        return self.structure_problem or next(
            (s.reason for s in self.signatures if s.reason is not None), None
        )

    @property
    def integrity_reason(self) -> str | None:
        """Why :attr:`integrity_ok` is false, for people; None when it is true."""
        return self.structure_problem or next(
            (s.integrity_reason for s in self.signatures if s.integrity_reason is not None),
            None,
        )

    @property
    def structure_problem(self) -> str | None:
        """What is wrong with the file beyond any one signature; None when nothing is."""
        if not any(not s.document_timestamp for s in self.signatures):
            return "the PDF has no signature"
        if self.trailing_bytes:
            return "bytes were appended after the last signature or time-stamp"
        if self.other_fields:
            return (
                "the PDF has form fields a copy does not have, whose shown value can change "
                f"after signing: {', '.join(self.other_fields)}"
            )
        return None

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
    parsed = _parse(pdf)
    spec = _validation_spec(trust_roots, crls)
    timing = (
        ValidationTimingInfo(
            validation_time=at, best_signature_time=at, point_in_time_validation=True
        )
        if at is not None
        else None
    )
    signatures = tuple(_check(sig, spec, timing, parsed.dss) for sig in parsed.signatures)
    return parsed.report(parsed.unreadable_signatures() + signatures)


def inspect_integrity(pdf: bytes) -> PdfReport:
    """Read ``pdf`` and check what needs no trust root: each signature's and document
    time-stamp's integrity (byte ranges' digest against the signed attributes, signature value
    with the embedded certificate), coverage, and the difference analysis of what was appended
    after it. No signer is trusted (``trusted`` is False throughout): judge a report by
    :attr:`PdfReport.integrity_ok` and :attr:`PdfReport.integrity_reason`.

    Synchronous and CPU-bound, like :func:`inspect_pdf`; raises :class:`InvalidInput` when the
    bytes are not a readable PDF."""
    parsed = _parse(pdf)
    context = ValidationContext(trust_manager=SimpleTrustManager.build(trust_roots=[]))
    _NO_ROOT.active.on = True
    try:
        signatures = tuple(
            _check_integrity(sig, context) for sig in [*parsed.signatures, *parsed.timestamps]
        )
    finally:
        _NO_ROOT.active.on = False
    return parsed.report(parsed.unreadable + signatures)


@dataclass(frozen=True)
class _Parsed:
    code: str | None
    page_count: int
    signatures: list[EmbeddedPdfSignature]
    timestamps: list[EmbeddedPdfSignature]
    dss: _Dss
    trailing: bool
    other_fields: tuple[str, ...]
    unreadable: tuple[SignatureReport, ...]  # signed fields whose signature cannot be read

    def unreadable_signatures(self) -> tuple[SignatureReport, ...]:
        return tuple(s for s in self.unreadable if not s.document_timestamp)

    def report(self, signatures: tuple[SignatureReport, ...]) -> PdfReport:
        return PdfReport(
            code=self.code,
            page_count=self.page_count,
            signatures=signatures,
            document_timestamps=len(self.timestamps),
            trailing_bytes=self.trailing,
            other_fields=self.other_fields,
        )


MiB = 1024 * 1024
# What a saoy copy can be: a few pages of scans (a dossier holds at most 500), a few hundred
# objects, one signature and its time-stamps and validation data in a handful of revisions,
# compressed streams (content, fonts, xref and object streams) of at most a few MiB decoded.
# Uploads are judged by these bounds before and while pyHanko reads them, so a crafted file
# costs bounded time and memory.
MAX_PDF_PAGES = 500
MAX_PDF_OBJECTS = 10_000
MAX_PDF_REVISIONS = 64
MAX_STREAM_BYTES = 16 * MiB  # one stream, decoded
DECODE_BUDGET_BYTES = 64 * MiB  # every stream of the file together, decoded (or 2x the file)
DECODE_LIMITS = DecodeLimits(
    per_stream=StreamDecodeLimits(max_output_size=MAX_STREAM_BYTES),
    document_budget=DocumentDecodeBudget(base_allowance=DECODE_BUDGET_BYTES, max_ratio=2),
)
_NOT_A_COPY = "a copy issued by saoy never does: upload the copy as it was issued"


def _parse(pdf: bytes) -> _Parsed:
    if b"%PDF-" not in pdf[:_HEADER_WINDOW]:
        raise InvalidInput("the file is not a PDF", field="pdf")
    try:
        reader = PdfFileReader(BytesIO(pdf), strict=False, decode_limits=DECODE_LIMITS)
        page_count = _check_structure(reader)
        embedded, unreadable = _embedded_signatures(reader)
        return _Parsed(
            code=_code(reader),
            page_count=page_count,
            signatures=[e for e in embedded if e.sig_object_type == "/Sig"],
            timestamps=[e for e in embedded if e.sig_object_type == "/DocTimeStamp"],
            dss=_dss_contents(reader),
            trailing=_trailing_bytes(pdf),
            other_fields=_other_fields(reader),
            unreadable=unreadable,
        )
    except PdfDecodeLimitError as exc:
        raise TooLarge(
            f"the PDF holds compressed data that expands beyond {MAX_STREAM_BYTES // MiB} MiB "
            f"in one stream or {DECODE_BUDGET_BYTES // MiB} MiB in all; {_NOT_A_COPY}",
            reason="PDF_TOO_LARGE",
            field="pdf",
        ) from exc
    except RecursionError as exc:
        raise InvalidInput(
            "the PDF cannot be read: its objects are nested too deeply or refer to themselves "
            f"in a loop; {_NOT_A_COPY}",
            reason="PDF_MALFORMED",
            field="pdf",
        ) from exc
    except AssertionError as exc:  # pyHanko asserts on structures it cannot read
        raise InvalidInput(
            f"the PDF cannot be read: its structure is damaged; {_NOT_A_COPY}",
            reason="PDF_MALFORMED",
            field="pdf",
        ) from exc
    except (PdfError, ValueError, KeyError, TypeError, IndexError) as exc:
        raise InvalidInput(f"the PDF cannot be read: {exc}", field="pdf") from exc


def _check_structure(reader: PdfFileReader) -> int:
    """Bound the file before anything else reads it: revisions, objects and pages counted,
    every object parsed and every stream pyHanko can decode decoded (under
    :data:`DECODE_LIMITS`), so that nesting, reference loops and compression bombs surface
    here, whichever object holds them. Returns the page count."""
    revisions = reader.xrefs.total_revisions
    if revisions > MAX_PDF_REVISIONS:
        raise _too_many("revisions (incremental updates)", revisions, MAX_PDF_REVISIONS)
    try:
        root = reader.trailer["/Root"]
    except KeyError:
        root = None
    if not isinstance(root, DictionaryObject):
        raise InvalidInput(
            f"the PDF cannot be read: its trailer names no document catalog; {_NOT_A_COPY}",
            reason="PDF_MALFORMED",
            field="pdf",
        )
    count = int(reader.root["/Pages"]["/Count"])
    if count > MAX_PDF_PAGES:
        raise _too_many("pages", count, MAX_PDF_PAGES)
    refs: set[Reference] = set()
    for revision in range(revisions):
        refs |= reader.xrefs.explicit_refs_in_revision(revision)
        if len(refs) > MAX_PDF_OBJECTS:
            raise _too_many("objects", len(refs), MAX_PDF_OBJECTS)
    for ref in sorted(refs, key=lambda r: (r.idnum, r.generation)):
        try:
            obj = reader.get_object(ref)
            if isinstance(obj, StreamObject):
                obj.data  # noqa: B018 - decoded under the limits, kept for what follows
        except PdfDecodeLimitError:
            raise
        except (zlib.error, struct.error) as exc:  # a stream that does not decode (Flate,
            # or an ASCII85 group beyond 32 bits): no copy has one
            raise InvalidInput(
                f"the PDF cannot be read: object {ref.idnum} holds damaged compressed data"
                f" ({exc}); {_NOT_A_COPY}",
                reason="PDF_MALFORMED",
                field="pdf",
            ) from exc
        except ArithmeticError as exc:  # decimal.InvalidOperation: a number such as 1.2.3
            raise InvalidInput(
                f"the PDF cannot be read: object {ref.idnum} holds a malformed number;"
                f" {_NOT_A_COPY}",
                reason="PDF_MALFORMED",
                field="pdf",
            ) from exc
        except (PdfError, NotImplementedError, ValueError, KeyError, TypeError, IndexError):
            continue  # an unknown filter (an image's DCTDecode), a broken object: judged later
    _check_page_tree(reader.root.raw_get("/Pages"))
    return count


def _check_page_tree(pages: object) -> None:
    """Walk the page tree by reference, refusing one that leads back into itself."""
    seen: set[tuple[int, int]] = set()
    pending = [pages]
    while pending:
        node = pending.pop()
        if isinstance(node, IndirectObject):
            key = (node.idnum, node.generation)
            if key in seen:
                raise InvalidInput(
                    "the PDF cannot be read: its page tree refers to itself in a loop; "
                    + _NOT_A_COPY,
                    reason="PDF_MALFORMED",
                    field="pdf",
                )
            seen.add(key)
            node = node.get_object()
        if not isinstance(node, DictionaryObject) or len(seen) > MAX_PDF_OBJECTS:
            continue
        kids = node.raw_get("/Kids") if "/Kids" in node else None
        if isinstance(kids, IndirectObject):
            kids = kids.get_object()
        if isinstance(kids, ArrayObject):
            pending += [kids.raw_get(i) for i in range(len(kids))]


def _too_many(what: str, count: int, limit: int) -> TooLarge:
    return TooLarge(
        f"the PDF has {count:,} {what}, at most {limit:,} are accepted; {_NOT_A_COPY}",
        reason="PDF_TOO_LARGE",
        field="pdf",
    )


_SUBFILTERS = {
    "/Sig": (
        SigSeedSubFilter.ADOBE_PKCS7_DETACHED,
        SigSeedSubFilter.PADES,
        SigSeedSubFilter.PBAD_PADES,
    ),
    "/DocTimeStamp": (SigSeedSubFilter.ETSI_RFC3161,),
}


def _embedded_signatures(
    reader: PdfFileReader,
) -> tuple[list[EmbeddedPdfSignature], tuple[SignatureReport, ...]]:
    """Every filled signature field, in signing order; a signature dictionary that cannot be
    read (no /Contents or /ByteRange, an empty or garbled one, an unknown type or SubFilter)
    is a broken signature, never skipped and never a reason to refuse the whole file."""
    try:
        known = {e.field_name: e for e in reader.embedded_signatures}
    except (PdfError, ValueError, KeyError, TypeError, IndexError, AttributeError):
        known = None  # some signature dictionary is unreadable: read them one by one
    readable: list[EmbeddedPdfSignature] = []
    broken: list[SignatureReport] = []
    for name, value, sig_field in enumerate_sig_fields(reader, filled_status=True):
        if known is not None and name in known:
            readable.append(known[name])
            continue
        value = value.get_object()
        kind = str(value.get("/Type", "/Sig")) if isinstance(value, DictionaryObject) else ""
        try:
            subfilter = value.get("/SubFilter")
            if kind not in _SUBFILTERS or subfilter not in [f.value for f in _SUBFILTERS[kind]]:
                raise ValueError(f"a {kind or 'non-dictionary'} value with SubFilter {subfilter}")
            embedded = EmbeddedPdfSignature(reader, sig_field, name)
            embedded.signed_data["encap_content_info"].native  # noqa: B018 - parse it all now
            readable.append(embedded)
        except (PdfError, ValueError, KeyError, TypeError, IndexError, AttributeError) as exc:
            log.info("signature %s cannot be read: %s", name, exc)
            broken.append(
                replace(
                    _broken_field(str(name), f"its signature dictionary cannot be read ({exc})"),
                    document_timestamp=kind == "/DocTimeStamp",
                )
            )
    readable.sort(key=lambda e: e.signed_revision)
    if known is None:
        # pyHanko's long-term validation looks the document time-stamps up on the reader:
        # let it find these same objects rather than fail to list them again.
        reader._embedded_signatures = readable  # type: ignore[assignment]
    return readable, tuple(broken)


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


def _other_fields(reader: PdfFileReader) -> tuple[str, ...]:
    """Names of the form's terminal fields that are not signature fields."""
    form = reader.root.get("/AcroForm")
    found: list[str] = []
    pending = [(ref, "") for ref in form.get_object().get("/Fields", ())] if form else []
    seen: set[int] = set()
    while pending and len(seen) < _MAX_FIELDS:
        ref, prefix = pending.pop()
        node = ref.get_object()
        if id(node) in seen or not isinstance(node, DictionaryObject):
            continue
        seen.add(id(node))
        name = prefix + str(node.get("/T", "?"))
        kids = node.get("/Kids")
        if kids is not None and any("/T" in k.get_object() for k in kids.get_object()):
            pending += [(kid, name + ".") for kid in kids.get_object()]
        elif _field_type(node) != "/Sig":
            found.append(name)
    return tuple(sorted(found))


_MAX_FIELDS = 10_000


def _field_type(field: DictionaryObject) -> str | None:
    node: DictionaryObject | None = field
    while node is not None:
        if "/FT" in node:
            return str(node["/FT"])
        parent = node.get("/Parent")
        node = parent.get_object() if parent is not None else None
    return None


def _trailing_bytes(pdf: bytes) -> bool:
    """Bytes follow the final ``%%EOF``: appended outside any revision, so no signature and no
    difference analysis covers them."""
    return not pdf.rstrip(b"\x00\t\n\x0c\r ").endswith(b"%%EOF")


_UNREADABLE_SIGNATURE = (
    SignatureValidationError,
    PdfError,
    ValueError,
    KeyError,
    TypeError,
    AttributeError,  # pyHanko on a signature dictionary it half parsed (found by fuzzing)
)
"""What evaluating a damaged signature raises: the signature is broken, the file is judged."""


def _check(
    sig: EmbeddedPdfSignature,
    spec: PdfSignatureValidationSpec,
    timing: ValidationTimingInfo | None,
    dss: _Dss,
) -> SignatureReport:
    try:
        result = asyncio.run(ades_lta_validation(sig, spec, timing_info=timing))
    except _UNREADABLE_SIGNATURE as exc:
        log.info("signature %s could not be evaluated: %s", sig.field_name, exc)
        return _broken(sig, str(exc) or type(exc).__name__)
    status = result.api_status
    if not isinstance(status, PdfSignatureStatus):
        return _broken(sig, result.failure_msg or str(result.ades_subindic))
    return _report(sig, status, result, dss)


def _check_integrity(sig: EmbeddedPdfSignature, context: ValidationContext) -> SignatureReport:
    """pyHanko's validation with a context that trusts nothing: integrity, coverage and
    difference analysis are made all the same; the signer comes out untrusted."""
    timestamp = sig.sig_object_type == "/DocTimeStamp"
    try:
        status: PdfSignatureStatus | DocumentTimestampStatus
        if timestamp:
            status = asyncio.run(async_validate_pdf_timestamp(sig, context))
        else:
            status = asyncio.run(async_validate_pdf_signature(sig, context))
    except _UNREADABLE_SIGNATURE as exc:
        log.info("signature %s could not be evaluated: %s", sig.field_name, exc)
        return replace(_broken(sig, str(exc) or type(exc).__name__), document_timestamp=timestamp)
    cert = status.signing_cert
    level = status.modification_level
    pdf_status = status if isinstance(status, PdfSignatureStatus) else None
    docmdp_ok = pdf_status.docmdp_ok if pdf_status else level is None or level != _OTHER
    return SignatureReport(
        field_name=sig.field_name,
        signer=_display_name(cert),
        signer_subject=cert.subject.human_friendly,
        signer_organization=organization_of(cert),
        signing_time=pdf_status.signer_reported_dt if pdf_status else None,
        timestamp_time=status.timestamp if isinstance(status, DocumentTimestampStatus) else None,
        intact=status.intact,
        valid=status.valid,
        trusted=False,
        timestamp_valid=False,
        covers_whole_file=status.coverage == SignatureCoverageLevel.ENTIRE_FILE,
        modification_level=level.name if level is not None else "UNKNOWN",
        docmdp_ok=docmdp_ok,  # a document time-stamp has no DocMDP: only OTHER is refused
        document_timestamp=timestamp,
        signer_certificate=cert,
    )


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
        signer_certificate=cert,
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
    try:
        cert = sig.signer_cert
    except Exception:  # the CMS blob itself may be what is broken
        return _broken_field(sig.field_name, problem)
    return _broken_field(sig.field_name, problem, cert)


def _broken_field(
    name: str, problem: str, cert: asn1_x509.Certificate | None = None
) -> SignatureReport:
    signer, subject, organization = "", "", None
    if cert is not None:
        signer, subject = _display_name(cert), cert.subject.human_friendly
        organization = organization_of(cert)
    return SignatureReport(
        field_name=name,
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
        signer_certificate=cert,
    )


def _display_name(cert: asn1_x509.Certificate) -> str:
    native = cert.subject.native
    parts = [native.get("common_name"), organization_of(cert)]
    names = [p for p in parts if isinstance(p, str) and p]
    return ", ".join(dict.fromkeys(names)) or cert.subject.human_friendly
