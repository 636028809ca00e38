"""The offline-verifiable QR: what the issuer puts on every page, and how anyone holding a copy
(or only a photo of its QR) checks it with nothing but the issuer's QR certificate.

At issuance, :func:`qr_content` signs the payload of :mod:`saoy.core.trust.qrpayload` over the
image streams the PDF embeds (:func:`saoy.core.render.embedded_image_streams`) and returns the
QR text, which the renderer prints on every page and writes into the document info.

:func:`verify_offline` answers, without the server or the registry:

- for a copy PDF: the QR text from the document info and the QR actually printed on page 1
  (rasterized with poppler's ``pdftoppm``, decoded with zxing-cpp) must agree; the payload's
  COSE signature must verify with the QR certificate; its code must be the one in the URL and
  in the document info; the page count and the digest over the page images, recomputed from
  the image streams in page order, must be the payload's. Given trust roots, the QR
  certificate must chain to one (and not be revoked by a given CRL), and the PAdES signatures
  are validated too (:func:`saoy.core.pages.pdfcheck.inspect_pdf`).
- for a photo or scan of a QR (PNG, JPEG, TIFF, WebP): the payload is checked as above and
  what it says is reported (code, pages, issue time, issuer key id); the page content itself
  is not compared, and the reason says so.

Whether a copy was revoked cannot be known offline; every report says so and gives the URL
that can tell.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import shutil
import subprocess
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from io import BytesIO
from pathlib import Path
from typing import Final, Literal, TypeAlias
from urllib.parse import unquote, urlsplit

import zxingcpp
from asn1crypto import crl as asn1_crl
from asn1crypto import x509 as asn1_x509
from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.x509.oid import NameOID
from PIL import Image, UnidentifiedImageError
from pyhanko.pdf_utils import generic
from pyhanko.pdf_utils.misc import PdfError
from pyhanko.pdf_utils.reader import PdfFileReader

from saoy.core.errors import InvalidInput
from saoy.core.model import CertificationBlock, CheckResult, Outcome, RenderPage
from saoy.core.pages.pdfcheck import SignatureReport, inspect_integrity, inspect_pdf
from saoy.core.reception import codes
from saoy.core.render import (
    BAND_HEIGHT,
    code_from_info,
    embedded_image_streams,
    qr_from_info,
    render_copy,
)
from saoy.core.trust.qrpayload import (
    QrFields,
    QrPayload,
    decode_payload,
    encode_payload,
    key_id,
    pages_digest,
    qr_text,
    split_qr_text,
)
from saoy.core.trust.verify import Verdict, VerificationReport

RASTER_DPI: Final = 300
"""Resolution the printed QR is read at: a version 11 symbol gets about 4.5 pixels a module."""
FALLBACK_DPI: Final = 150  # the whole page, when the band holds no readable QR
MAX_IMAGE_PIXELS: Final = 100_000_000
_PDFTOPPM_TIMEOUT_S: Final = 60
_HEADER_WINDOW: Final = 1024
_IMAGE_FORMATS: Final = ("PNG", "JPEG", "TIFF", "WEBP")
_QR_FORMATS: Final = zxingcpp.BarcodeFormats(zxingcpp.BarcodeFormat.QRCode)

Root: TypeAlias = asn1_x509.Certificate | x509.Certificate
QrKey: TypeAlias = tuple[Ed25519PrivateKey, x509.Certificate]
"""The issuer's QR signing key and its certificate, as :meth:`saoy.core.trust.pki.DevPki.qr_signer`
gives them."""


def qr_content(
    *,
    code: str,
    url: str,
    pages: Sequence[RenderPage],
    issued_at: dt.datetime,
    key: Ed25519PrivateKey,
    cert: x509.Certificate,
) -> str:
    """The QR text for a copy: ``url`` with the signed payload (code, digest over the page
    images exactly as the PDF will embed them, page count, issue time) in its fragment.

    ``pages`` are the pages given to :func:`saoy.core.render.render_copy`; put the result in
    ``CertificationBlock.qr`` with the same ``code``, ``url`` and ``issued_at``."""
    streams = embedded_image_streams(pages)
    fields = QrFields(
        code=code,
        pages_sha256=pages_digest([hashlib.sha256(s).digest() for s in streams]),
        pages=len(streams),
        issued_at=issued_at,
    )
    return qr_text(url, encode_payload(fields, key, key_id(cert)))


def render_with_qr(
    pages: Sequence[RenderPage], block: CertificationBlock, qr_key: QrKey | None
) -> bytes:
    """The unsigned copy PDF, its QR carrying the payload signed over the very image streams
    the PDF embeds (what an offline verifier recomputes from the file); the bare URL in the QR
    when there is no key."""
    if qr_key is not None:
        key, cert = qr_key
        qr = qr_content(
            code=block.code,
            url=block.url,
            pages=pages,
            issued_at=block.issued_at,
            key=key,
            cert=cert,
        )
        block = replace(block, qr=qr)
    return render_copy(list(pages), block)


def load_qr_certificates(pem: bytes) -> tuple[x509.Certificate, tuple[x509.Certificate, ...]]:
    """The QR certificate and the chain after it from a PEM file such as ``/pki/qr.pem``."""
    try:
        certs = x509.load_pem_x509_certificates(pem)
    except ValueError as exc:
        raise InvalidInput(f"the QR certificate file holds no PEM certificate: {exc}") from exc
    return certs[0], tuple(certs[1:])


# --- reading QR codes ---------------------------------------------------------------------


def read_qr_texts(image: Image.Image) -> list[str]:
    """The texts of every QR code zxing-cpp finds in ``image``, in the order it reports them."""
    gray = image if image.mode == "L" else image.convert("L")
    found = zxingcpp.read_barcodes(gray, formats=_QR_FORMATS)
    return [b.text for b in found if b.valid and b.text]


def rasterize_page(
    pdf: bytes,
    page: int = 1,
    *,
    dpi: int = RASTER_DPI,
    crop: tuple[float, float, float, float] | None = None,
) -> Image.Image:
    """Page ``page`` (1-based) of ``pdf`` as a grey image, through poppler's ``pdftoppm``.

    ``crop`` is (x, y, width, height) in PDF points from the page's top-left corner."""
    exe = shutil.which("pdftoppm")
    if exe is None:
        raise RuntimeError("pdftoppm not found: install Debian's poppler-utils")
    with tempfile.TemporaryDirectory(prefix="saoy-offline-") as tmp:
        source = Path(tmp) / "copy.pdf"
        source.write_bytes(pdf)
        args = [exe, "-f", str(page), "-l", str(page), "-r", str(dpi), "-gray", "-singlefile"]
        if crop is not None:
            x, y, w, h = (round(v * dpi / 72) for v in crop)
            args += ["-x", str(x), "-y", str(y), "-W", str(w), "-H", str(h)]
        out = Path(tmp) / "page"
        try:
            done = subprocess.run(
                [*args, str(source), str(out)],
                capture_output=True,
                timeout=_PDFTOPPM_TIMEOUT_S,
                check=False,
            )
        except subprocess.TimeoutExpired as exc:
            raise InvalidInput(f"rendering page {page} took over {exc.timeout} s") from exc
        result = out.with_suffix(".pgm")
        if done.returncode != 0 or not result.is_file():
            detail = done.stderr.decode(errors="replace").strip()[:300]
            raise InvalidInput(f"page {page} of the PDF cannot be rendered: {detail}")
        with Image.open(result) as im:
            im.load()
            return im.copy()


# --- verification -------------------------------------------------------------------------


Failure = Literal["untrusted", "altered", "unreadable"]
"""What a failed check means: the QR cannot be trusted (UNKNOWN); the copy is not what the QR
vouches for (ALTERED); or something could not be read (UNKNOWN, unless ALTERED is proven)."""


@dataclass
class _Findings:
    """Checks gathered so far, and the failures among them by what they mean."""

    checks: list[CheckResult] = field(default_factory=list)
    failures: dict[str, list[str]] = field(default_factory=dict)

    def add(self, name: str, ok: bool | None, reason: str, *, fails_as: Failure) -> None:
        """``ok`` None records a warning: something that was not or cannot be checked."""
        outcome = Outcome.WARN if ok is None else Outcome.PASS if ok else Outcome.FAIL
        self.checks.append(CheckResult(name, outcome, reason))
        if ok is False:
            self.failures.setdefault(fails_as, []).append(reason)

    def first(self, kind: Failure) -> str | None:
        reasons = self.failures.get(kind)
        return reasons[0] if reasons else None

    def verdict(self, valid_reason: str) -> tuple[Verdict, str]:
        for kind, verdict in (
            ("untrusted", Verdict.UNKNOWN),
            ("altered", Verdict.ALTERED),
            ("unreadable", Verdict.UNKNOWN),
        ):
            reason = self.first(kind)  # type: ignore[arg-type]
            if reason is not None:
                return verdict, reason
        return Verdict.VALID, valid_reason


def verify_offline(
    data: bytes,
    *,
    qr_cert: x509.Certificate,
    qr_chain: Sequence[x509.Certificate] = (),
    trust_roots: Sequence[Root] = (),
    crls: Sequence[asn1_crl.CertificateList] = (),
    at: dt.datetime | None = None,
) -> VerificationReport:
    """Check a copy PDF, or a photo of its QR, against the issuer's QR certificate only.

    ``qr_chain`` are the certificates above ``qr_cert`` (the issuing CA), used with
    ``trust_roots`` to check the QR certificate; ``crls`` are the issuer's CRLs, used for the
    QR certificate and the PAdES signatures. Raises InvalidInput for a file that is neither a
    readable PDF nor an image."""
    if b"%PDF-" in data[:_HEADER_WINDOW]:
        return _verify_pdf(data, qr_cert, qr_chain, trust_roots, crls, at)
    return _verify_image(data, qr_cert, qr_chain, trust_roots, crls, at)


def _verify_image(
    data: bytes,
    qr_cert: x509.Certificate,
    qr_chain: Sequence[x509.Certificate],
    trust_roots: Sequence[Root],
    crls: Sequence[asn1_crl.CertificateList],
    at: dt.datetime | None,
) -> VerificationReport:
    try:
        with Image.open(BytesIO(data), formats=_IMAGE_FORMATS) as im:
            if im.width * im.height > MAX_IMAGE_PIXELS:
                raise InvalidInput(
                    f"the image has {im.width}x{im.height} pixels, more than "
                    f"{MAX_IMAGE_PIXELS} (a photo of a QR needs far fewer)"
                )
            im.load()
            texts = read_qr_texts(im)
    except (UnidentifiedImageError, OSError, Image.DecompressionBombError) as exc:
        raise InvalidInput(
            "give a copy PDF or a photo of its QR code (PNG, JPEG, TIFF or WebP): "
            f"this file is neither ({exc})"
        ) from exc

    found = _Findings()
    if not texts:
        return _report(found, Verdict.UNKNOWN, "no QR code could be read in the image")
    ours = sorted({t for t in texts if _has_payload(t)})
    if not ours:
        return _report(
            found,
            Verdict.UNKNOWN,
            f"the QR code carries no signed saoy payload (it reads {_shorten(texts[0])!r}): "
            "it is not the QR of a copy, or of one issued before offline verification",
        )
    if len(ours) > 1:
        return _report(
            found,
            Verdict.UNKNOWN,
            f"the image holds {len(ours)} different saoy QR codes: photograph one copy at a time",
        )
    text = ours[0]
    found.add(
        "qr_found",
        True,
        "a QR code with a signed payload was read in the image",
        fails_as="untrusted",
    )
    payload, url = _check_payload(found, text, qr_cert, qr_chain, trust_roots, crls, at)
    if payload is None:
        return _report(found, Verdict.UNKNOWN, found.first("untrusted") or "", url=url)
    found.add(
        "page_content",
        None,
        "not compared: only the QR was given; compare the pages with the PDF, or open the URL",
        fails_as="altered",
    )
    _revocation(found, url)
    issuer = _organization(qr_cert)
    summary = (
        f"the QR's signed payload is genuine: copy {payload.code}, {payload.pages} page(s), "
        f"issued {payload.issued_at.isoformat()} by {issuer} (key id {payload.kid.hex()}). "
        "The page content itself was not compared (only the QR was given), and revocation "
        f"cannot be known offline: open {url or 'the verification page'} to check"
    )
    return _final(found, payload, url, issuer, sha256="", valid_reason=summary)


def _verify_pdf(
    data: bytes,
    qr_cert: x509.Certificate,
    qr_chain: Sequence[x509.Certificate],
    trust_roots: Sequence[Root],
    crls: Sequence[asn1_crl.CertificateList],
    at: dt.datetime | None,
) -> VerificationReport:
    try:
        reader = PdfFileReader(BytesIO(data), strict=False)
        keywords = _keywords(reader)
        streams, structure_problem = _page_images(reader)
        first_page = _page_box(reader, 0)
    except (PdfError, ValueError, KeyError, TypeError, IndexError, AttributeError) as exc:
        raise InvalidInput(f"the PDF cannot be read: {exc}", field="pdf") from exc
    sha256 = hashlib.sha256(data).hexdigest()
    info_text = qr_from_info(keywords)
    info_code = code_from_info(keywords)
    printed, printed_problem = _printed_qr(data, first_page)

    found = _Findings()
    text = info_text or printed
    if text is None or not _has_payload(text):
        if printed_problem is not None:
            why = f"no saoy QR: {printed_problem}, and the document info carries none"
        elif printed is not None:
            why = (
                f"no saoy QR: the QR printed on page 1 carries no signed payload (it reads "
                f"{_shorten(printed)!r}); a copy issued before offline verification, or not "
                "a copy issued by saoy"
            )
        else:
            why = "no saoy QR: neither the document info nor page 1 carries one"
        return _report(found, Verdict.UNKNOWN, why, code=info_code or "", sha256=sha256)

    if info_text is None:
        found.add(
            "qr_printed_matches_info",
            False,
            "the document info carries no QR content: the file was changed after rendering",
            fails_as="altered",
        )
    elif printed is None:
        found.add(
            "qr_printed_matches_info",
            False,
            f"the QR printed on page 1 cannot be read ({printed_problem})",
            fails_as="unreadable",
        )
    elif printed != info_text:
        found.add(
            "qr_printed_matches_info",
            False,
            "the QR printed on page 1 differs from the one in the document info",
            fails_as="altered",
        )
    else:
        found.add(
            "qr_printed_matches_info",
            True,
            "the QR printed on page 1 is the one in the document info",
            fails_as="altered",
        )

    payload, url = _check_payload(found, text, qr_cert, qr_chain, trust_roots, crls, at)
    if payload is None:
        return _report(
            found,
            Verdict.UNKNOWN,
            found.first("untrusted") or "",
            code=info_code or "",
            sha256=sha256,
            url=url,
        )
    if info_code is not None:
        same = _same_code(info_code, payload.code)
        found.add(
            "code_matches_info",
            same,
            f"the document info names code {info_code}"
            + ("" if same else f", the signed payload {payload.code}"),
            fails_as="altered",
        )
    found.add(
        "page_count",
        len(streams) == payload.pages,
        f"the PDF has {len(streams)} page(s); the signed payload says {payload.pages}",
        fails_as="altered",
    )
    if structure_problem is not None:
        found.add("pages_digest", False, structure_problem, fails_as="altered")
    else:
        digest = pages_digest([hashlib.sha256(s).digest() for s in streams])
        same = digest == payload.pages_sha256
        found.add(
            "pages_digest",
            same,
            "the page images are the ones the issuer signed"
            if same
            else "the page images differ from the ones the issuer signed",
            fails_as="altered",
        )
    _pades(found, data, qr_cert, qr_chain, trust_roots, crls)
    _revocation(found, url)
    issuer = _organization(qr_cert)
    summary = (
        f"the PDF's {len(streams)} page image(s) are the ones signed in its QR: copy "
        f"{payload.code}, issued {payload.issued_at.isoformat()} by {issuer}. Revocation cannot "
        f"be known offline: open {url or 'the verification page'} to check"
    )
    return _final(found, payload, url, issuer, sha256=sha256, valid_reason=summary)


def _check_payload(
    found: _Findings,
    text: str,
    qr_cert: x509.Certificate,
    qr_chain: Sequence[x509.Certificate],
    trust_roots: Sequence[Root],
    crls: Sequence[asn1_crl.CertificateList],
    at: dt.datetime | None,
) -> tuple[QrPayload | None, str]:
    """Signature, certificate and code checks shared by PDFs and photos."""
    url, payload_text = split_qr_text(text)
    try:
        payload = decode_payload(payload_text, qr_cert)
    except InvalidInput as exc:
        found.add("qr_signature", False, f"{exc.message} [{exc.reason}]", fails_as="untrusted")
        return None, url
    found.add(
        "qr_signature",
        True,
        f"signed by the QR key {payload.kid.hex()} ({_common_name(qr_cert)})",
        fails_as="untrusted",
    )
    _certificate(found, qr_cert, qr_chain, trust_roots, crls, payload.issued_at, at)
    if url:
        url_code = _code_in_url(url)
        same = url_code is not None and _same_code(url_code, payload.code)
        found.add(
            "code_matches_url",
            same,
            f"the URL names code {payload.code}"
            if same
            else f"the URL {url!r} does not name the signed code {payload.code}",
            fails_as="altered",
        )
    return payload, url


def _certificate(
    found: _Findings,
    cert: x509.Certificate,
    chain: Sequence[x509.Certificate],
    trust_roots: Sequence[Root],
    crls: Sequence[asn1_crl.CertificateList],
    issued_at: dt.datetime,
    at: dt.datetime | None,
) -> None:
    if not cert.not_valid_before_utc <= issued_at <= cert.not_valid_after_utc:
        found.add(
            "qr_certificate",
            False,
            f"the payload's issue time {issued_at.isoformat()} is outside the QR certificate's "
            f"validity ({cert.not_valid_before_utc.isoformat()} to "
            f"{cert.not_valid_after_utc.isoformat()})",
            fails_as="untrusted",
        )
        return
    if not trust_roots:
        found.add(
            "qr_certificate",
            None,
            "valid at the issue time; not checked against a root (no trust root given)",
            fails_as="untrusted",
        )
        return
    roots = [_to_cryptography(r) for r in trust_roots]
    path, problem = _chain_to_root(cert, list(chain), roots, at or dt.datetime.now(dt.UTC))
    if problem is None and path:
        problem = _revoked(cert, path[0], crls)
    found.add(
        "qr_certificate",
        problem is None,
        problem
        if problem is not None
        else f"the QR certificate chains to {_common_name(path[-1])} and is not revoked",
        fails_as="untrusted",
    )


def _chain_to_root(
    cert: x509.Certificate,
    chain: list[x509.Certificate],
    roots: list[x509.Certificate],
    now: dt.datetime,
) -> tuple[list[x509.Certificate], str | None]:
    """The issuers from ``cert`` up to a trusted root (inclusive), or why there is no path."""
    path: list[x509.Certificate] = []
    current = cert
    for _ in range(len(chain) + 1):
        for candidate, trusted in [(r, True) for r in roots] + [(c, False) for c in chain]:
            if candidate.subject != current.issuer or candidate in path:
                continue
            try:
                current.verify_directly_issued_by(candidate)
            except (ValueError, TypeError, InvalidSignature):
                continue
            if not candidate.not_valid_before_utc <= now <= candidate.not_valid_after_utc:
                return path, f"the certificate {_common_name(candidate)} is not valid now"
            if not _is_ca(candidate):
                return path, f"{_common_name(candidate)} is not a CA certificate"
            path.append(candidate)
            if trusted:
                return path, None
            current = candidate
            break
        else:
            return path, (
                f"the QR certificate does not chain to a trusted root "
                f"(no issuer found for {_common_name(current)})"
            )
    return path, "the QR certificate's chain is too long"


def _revoked(
    cert: x509.Certificate, issuer: x509.Certificate, crls: Sequence[asn1_crl.CertificateList]
) -> str | None:
    for item in crls:
        crl = x509.load_der_x509_crl(item.dump())
        if crl.issuer != issuer.subject:
            continue
        if not crl.is_signature_valid(issuer.public_key()):  # type: ignore[arg-type]
            continue
        entry = crl.get_revoked_certificate_by_serial_number(cert.serial_number)
        if entry is not None:
            return (
                f"the QR certificate was revoked on {entry.revocation_date_utc.isoformat()}: "
                "payloads it signed cannot be trusted"
            )
    return None


def _pades(
    found: _Findings,
    data: bytes,
    qr_cert: x509.Certificate,
    qr_chain: Sequence[x509.Certificate],
    trust_roots: Sequence[Root],
    crls: Sequence[asn1_crl.CertificateList],
) -> None:
    """The PAdES signatures: validated against the roots when there are some; otherwise what
    needs no root (:func:`saoy.core.pages.pdfcheck.inspect_integrity`: each signature intact and
    valid, nothing appended after it but signatures, validation data and time-stamps) and
    that the signers' certificates come from the CA that issued the QR certificate."""
    trusted = bool(trust_roots)
    if trusted:
        report = inspect_pdf(data, [_to_asn1(r) for r in trust_roots], crls=crls)
    else:
        report = inspect_integrity(data)
    for sig in report.signatures:
        ok = sig.bottom_line if trusted else sig.integrity_ok
        why = sig.reason if trusted else sig.integrity_reason
        what = "time-stamped by" if sig.document_timestamp else "signed by"
        found.add(
            f"pdf_signature:{sig.field_name}",
            ok,
            why
            or (
                f"intact and trusted: {sig.signer} ({sig.level})"
                if trusted
                else f"intact, nothing changed after it: {what} {sig.signer}"
            ),
            fails_as="altered",
        )
    problem = report.structure_problem
    if problem is not None:
        found.add("pdf_signatures", False, problem, fails_as="altered")
    elif not trusted:
        _signers_of_the_issuer(found, report.signatures, qr_cert, qr_chain)


def _signers_of_the_issuer(
    found: _Findings,
    signatures: Sequence[SignatureReport],
    qr_cert: x509.Certificate,
    qr_chain: Sequence[x509.Certificate],
) -> None:
    """With no root, the CA that issued the QR certificate (the next certificate of qr.pem)
    stands for the issuer: a copy re-signed by anyone else shows what its signer chose."""
    ca = next((c for c in qr_chain if _issued_by(qr_cert, c)), None)
    if ca is None:
        found.add(
            "pdf_signatures",
            None,
            "the signatures are intact and nothing but signatures, validation data and "
            "time-stamps was added after them; their signers were not checked (the QR "
            "certificate file holds no issuing CA, and no trust root was given)",
            fails_as="altered",
        )
        return
    for sig in signatures:
        cert = sig.signer_certificate
        if sig.document_timestamp or cert is None or not sig.integrity_ok:
            continue
        if not _issued_by(x509.load_der_x509_certificate(cert.dump()), ca):
            found.add(
                "pdf_signatures",
                False,
                f"signature {sig.field_name} was made by {sig.signer}, whose certificate "
                f"{_common_name(ca)} (the issuer of the QR certificate) did not issue: the "
                "copy was signed again by someone else",
                fails_as="altered",
            )
            return
    found.add(
        "pdf_signatures",
        None,
        "the signatures are intact, made with certificates of "
        f"{_common_name(ca)}, and nothing but signatures, validation data and time-stamps was "
        "added after them; the chain was not checked against a root (give --trust)",
        fails_as="altered",
    )


def _issued_by(cert: x509.Certificate, ca: x509.Certificate) -> bool:
    try:
        cert.verify_directly_issued_by(ca)
    except (ValueError, TypeError, InvalidSignature):
        return False
    return True


def _revocation(found: _Findings, url: str) -> None:
    found.add(
        "not_revoked",
        None,
        "cannot be known offline: " + (f"open {url} to check" if url else "check the code online"),
        fails_as="altered",
    )


def _final(
    found: _Findings,
    payload: QrPayload,
    url: str,
    issuer: str,
    *,
    sha256: str,
    valid_reason: str,
) -> VerificationReport:
    verdict, reason = found.verdict(valid_reason)
    return VerificationReport(
        verdict=verdict,
        reason=reason,
        code=payload.code,
        issuer=issuer,
        issued_at=payload.issued_at,
        pages=payload.pages,
        sha256=sha256,
        url=url,
        checks=tuple(found.checks),
    )


def _report(
    found: _Findings,
    verdict: Verdict,
    reason: str,
    *,
    code: str = "",
    sha256: str = "",
    url: str = "",
) -> VerificationReport:
    return VerificationReport(
        verdict=verdict,
        reason=reason,
        code=code,
        sha256=sha256,
        url=url,
        checks=tuple(found.checks),
    )


# --- PDF structure ------------------------------------------------------------------------


def _keywords(reader: PdfFileReader) -> str | None:
    info = reader.trailer_view.get("/Info")
    if info is None:
        return None
    keywords = info.get_object().get("/Keywords")
    return str(keywords) if isinstance(keywords, generic.TextStringObject | str) else None


def _page_count(reader: PdfFileReader) -> int:
    return int(reader.root["/Pages"]["/Count"])


def _page_images(reader: PdfFileReader) -> tuple[list[bytes], str | None]:
    """Each page's image XObject stream, still encoded, in page order; and what is wrong with
    the structure when a page does not hold exactly one image (None when nothing is)."""
    streams: list[bytes] = []
    problem: str | None = None
    for index in range(_page_count(reader)):
        _, resources = reader.find_page_for_modification(index)
        resources = resources.get_object() if resources is not None else {}
        xobjects = resources.get("/XObject")
        images: list[bytes] = []
        if xobjects is not None:
            for ref in xobjects.get_object().values():
                obj = ref.get_object()
                if isinstance(obj, generic.StreamObject) and obj.get("/Subtype") == "/Image":
                    images.append(obj.encoded_data)
                elif isinstance(obj, generic.StreamObject) and problem is None:
                    problem = f"page {index + 1} draws a form XObject a copy page does not have"
        if len(images) != 1 and problem is None:
            problem = (
                f"page {index + 1} holds {len(images)} images where a copy page holds exactly one"
            )
        streams.append(images[0] if images else b"")
    return streams, problem


def _page_box(reader: PdfFileReader, index: int) -> tuple[float, float]:
    """Width and height in points of page ``index``'s MediaBox."""
    ref, _ = reader.find_page_for_modification(index)
    page = ref.get_object()
    box = page.get("/MediaBox")
    node = page
    while box is None and "/Parent" in node:
        node = node["/Parent"]
        box = node.get("/MediaBox")
    if box is None:
        raise ValueError(f"page {index + 1} has no MediaBox")
    x0, y0, x1, y1 = (float(v) for v in box)
    return abs(x1 - x0), abs(y1 - y0)


def _printed_qr(pdf: bytes, box: tuple[float, float]) -> tuple[str | None, str | None]:
    """The saoy QR printed on page 1 (or any QR there when none is saoy's), and why there is
    none when none can be read. Reads the certification band first, then the whole page."""
    width, height = box
    band = max(min(BAND_HEIGHT, height), 1.0)
    attempts = [
        (RASTER_DPI, (0.0, height - band, width, band)),
        (FALLBACK_DPI, None),
    ]
    texts: list[str] = []
    try:
        for dpi, crop in attempts:
            texts = read_qr_texts(rasterize_page(pdf, 1, dpi=dpi, crop=crop))
            if any(_has_payload(t) for t in texts):
                break
    except (InvalidInput, RuntimeError) as exc:
        return None, str(exc)
    ours = [t for t in texts if _has_payload(t)]
    if ours:
        return ours[0], None
    if texts:
        return texts[0], None
    return None, "no QR code could be read on page 1"


# --- small helpers ------------------------------------------------------------------------


def _has_payload(text: str) -> bool:
    try:
        split_qr_text(text)
    except InvalidInput:
        return False
    return True


def _code_in_url(url: str) -> str | None:
    path = urlsplit(url).path.rstrip("/")
    segment = unquote(path.rsplit("/", 1)[-1]) if path else ""
    try:
        return codes.normalize(segment)
    except InvalidInput:
        return None


def _same_code(a: str, b: str) -> bool:
    try:
        return codes.normalize(a) == codes.normalize(b)
    except InvalidInput:
        return False


def _organization(cert: x509.Certificate) -> str:
    names = cert.subject.get_attributes_for_oid(NameOID.ORGANIZATION_NAME)
    return str(names[0].value) if names else _common_name(cert)


def _common_name(cert: x509.Certificate) -> str:
    names = cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
    return str(names[0].value) if names else cert.subject.rfc4514_string()


def _is_ca(cert: x509.Certificate) -> bool:
    try:
        return bool(cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca)
    except x509.ExtensionNotFound:
        return False


def _to_cryptography(cert: Root) -> x509.Certificate:
    if isinstance(cert, x509.Certificate):
        return cert
    return x509.load_der_x509_certificate(cert.dump())


def _to_asn1(cert: Root) -> asn1_x509.Certificate:
    if isinstance(cert, asn1_x509.Certificate):
        return cert
    return asn1_x509.Certificate.load(cert.public_bytes(serialization.Encoding.DER))


def _shorten(text: str, limit: int = 80) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


__all__ = [
    "QrKey",
    "load_qr_certificates",
    "qr_content",
    "rasterize_page",
    "read_qr_texts",
    "render_with_qr",
    "verify_offline",
]
