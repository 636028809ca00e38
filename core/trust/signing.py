"""Signing copies: where keys live is kept apart from how a PDF is signed (pyHanko style).

A :class:`CopySigner` turns an unsigned copy PDF into a signed one in a single call. At the
default level, PAdES baseline B-LTA, that call appends, as incremental updates:

1. the certifying official's certification signature (DocMDP P=2: later signatures and
   validation data stay allowed), CAdES detached, SHA-256, with an RFC 3161 signature
   time-stamp;
2. a Document Security Store (DSS) with the certificates and CRLs that validate it;
3. the organization's seal, an approval signature, time-stamped the same way;
4. the DSS entries for the seal;
5. a document time-stamp over everything before it.

Where the keys live is a pyHanko ``Signer``: :class:`Pkcs12CopySigner` parses a PKCS#12 file
once and keeps the keys in memory; :class:`Pkcs11CopySigner` keeps them in a PKCS#11 token (an
HSM; SoftHSM2 in the tests), logs in once and reuses that session for every copy.

Validation data is gathered offline: pyHanko's ``ValidationContext`` is given the CRLs the dev
PKI publishes and never fetches anything over the network.
"""

from __future__ import annotations

import abc
import datetime as dt
import enum
import logging
import threading
import time
from collections.abc import Callable, Sequence
from io import BytesIO
from pathlib import Path
from typing import TYPE_CHECKING

from asn1crypto import cms
from asn1crypto import core as asn1_core
from asn1crypto import crl as asn1_crl
from asn1crypto import x509 as asn1_x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric.padding import PKCS1v15
from cryptography.hazmat.primitives.asymmetric.rsa import RSAPrivateKey
from pyhanko.pdf_utils.incremental_writer import IncrementalPdfFileWriter
from pyhanko.pdf_utils.reader import PdfFileReader
from pyhanko.pdf_utils.writer import BasePdfFileWriter
from pyhanko.sign.fields import MDPPerm, SigSeedSubFilter
from pyhanko.sign.general import SigningError, as_signing_certificate, simple_cms_attribute
from pyhanko.sign.signers import PdfSignatureMetadata, PdfSigner, Signer, SimpleSigner
from pyhanko.sign.signers.pdf_signer import PdfSigningSession
from pyhanko.sign.timestamps import DummyTimeStamper, TimeStamper
from pyhanko_certvalidator import ValidationContext
from pyhanko_certvalidator.registry import SimpleCertificateStore
from pyhanko_certvalidator.util import get_pyca_cryptography_hash

from saoy.core.errors import SaoyError
from saoy.core.trust.pki import DevPki, KeyMaterial, organization_of

if TYPE_CHECKING:  # python-pkcs11 is only needed when a PKCS#11 signer is used
    from pkcs11 import Session

SIGNATURE_FIELD = "ChungThuc"
"""Name of the signature field the certifying official's signature goes into."""
SEAL_FIELD = "DauCoQuan"
"""Name of the signature field the organization's seal goes into."""
TIMESTAMP_FIELD = "DauThoiGian"
"""Name of the field of the document time-stamp (B-LTA)."""

REASON = "Chứng thực bản sao từ bản chính / Certified copy of the original"
SEAL_REASON = "Đóng dấu cơ quan / Organization seal"


class _OfflineByDesign(logging.Filter):
    """Drop pyHanko's per-signature warning that fetching is off: here that is the point."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "fetching is not allowed" not in record.getMessage()


logging.getLogger("pyhanko.sign.signers.pdf_signer").addFilter(_OfflineByDesign())

PKCS11_INSTALL_HINT = (
    "PKCS#11 signing needs python-pkcs11 (pip install python-pkcs11) and a PKCS#11 module, "
    "e.g. SoftHSM2 (apt-get install softhsm2: /usr/lib/softhsm/libsofthsm2.so)"
)


class SigningLevel(enum.StrEnum):
    """PAdES baseline levels (ETSI EN 319 142-1) a copy can be signed at."""

    B_T = "B-T"  # signature time-stamp
    B_LT = "B-LT"  # + certificates and CRLs in the DSS
    B_LTA = "B-LTA"  # + a document time-stamp over the validation data

    @property
    def embeds_validation_data(self) -> bool:
        return self is not SigningLevel.B_T


class CopySigner(abc.ABC):
    """Signs a copy PDF on behalf of an issuer (the organization in the signing certificate)."""

    issuer: str
    level: SigningLevel

    @abc.abstractmethod
    async def sign(self, pdf: bytes) -> bytes:
        """Return ``pdf`` with its signatures appended as incremental updates."""

    def close(self) -> None:  # noqa: B027 - optional hook, nothing to release by default
        """Release what the signer holds (an HSM session); signing after this fails."""


class ValidationMaterial:
    """What pyHanko needs to gather validation data offline: trust roots, CRLs, other certs.

    The ``ValidationContext`` built from it is kept and reused while the CRLs stay the same
    issues and for at most ``max_age`` (a context fixes "now" when built), so signing many
    copies parses no certificate or CRL again. ``crls`` is called before each signature: it
    must be cheap (:meth:`DevPki.crls` caches parsed CRLs until their files change).
    """

    def __init__(
        self,
        trust_roots: Sequence[asn1_x509.Certificate],
        *,
        crls: Callable[[], Sequence[asn1_crl.CertificateList]],
        other_certs: Sequence[asn1_x509.Certificate] = (),
        max_age: dt.timedelta = dt.timedelta(minutes=10),
    ) -> None:
        if not trust_roots:
            raise ValueError("validation material needs at least one trust root")
        self._roots = list(trust_roots)
        self._crls = crls
        self._other = list(other_certs)
        self._max_age = max_age.total_seconds()
        self._lock = threading.Lock()
        self._cached: tuple[tuple[bytes, ...], float, ValidationContext] | None = None

    @classmethod
    def from_dev_pki(cls, pki: DevPki) -> ValidationMaterial:
        return cls([pki.root_certificate()], crls=pki.crls)

    def crls(self) -> list[asn1_crl.CertificateList]:
        return list(self._crls())

    def context(self) -> ValidationContext:
        """A context that validates against the current CRLs and never goes online."""
        crls = self.crls()
        key = tuple(bytes(c["signature"]) for c in crls)  # one CRL issue, one signature
        now = time.monotonic()
        with self._lock:
            if self._cached is not None:
                cached_key, built, context = self._cached
                if cached_key == key and now - built < self._max_age:
                    return context
            context = ValidationContext(
                trust_roots=self._roots,
                other_certs=self._other,
                crls=crls,
                allow_fetching=False,
                revocation_mode="hard-fail",
            )
            self._cached = (key, now, context)
            return context


class PadesCopySigner(CopySigner):
    """Signs copies with the official's key and, if given, the organization's seal.

    ``official`` and ``seal`` are pyHanko signers: any key store (file, HSM) fits. Every call
    to :meth:`sign` builds its own writers and ``PdfSigner``; keys, time-stamper and
    validation context are shared read-only, so concurrent calls do not interfere.

    ``signing_time`` freezes the clock (the CMS signing time and the time-stamps) for tests.
    """

    def __init__(
        self,
        official: Signer,
        seal: Signer | None = None,
        *,
        timestamper: TimeStamper,
        validation: ValidationMaterial | None = None,
        level: SigningLevel | str = SigningLevel.B_LTA,
        location: str | None = None,
        signing_time: dt.datetime | None = None,
    ) -> None:
        if signing_time is not None and signing_time.tzinfo is None:
            raise ValueError("signing_time must carry a UTC offset")
        self.level = SigningLevel(level)
        if self.level.embeds_validation_data and validation is None:
            raise ValueError(f"PAdES {self.level} needs validation material (roots and CRLs)")
        cert = official.signing_cert
        if cert is None:
            raise ValueError("the official's signer has no certificate")
        self.issuer = organization_of(cert) or cert.subject.human_friendly
        self._official = official
        self._seal = seal
        self._timestamper = timestamper
        self._validation = validation
        self._location = location if location is not None else self.issuer
        self._signing_time = signing_time
        self._reserved: dict[str, int] = {}
        """Room for each field's signature (hex digits), as pyHanko sized it for the first copy
        by signing a dummy once more (its size with a margin of a half): the keys, chains
        and time-stamper stay the same, and so does the room a signature needs."""
        self.reuse_room = True
        """False: size every signature afresh, as pyHanko does by default (for comparison)."""

    @property
    def has_seal(self) -> bool:
        return self._seal is not None

    async def sign(self, pdf: bytes) -> bytes:
        context = (
            self._validation.context()
            if self._validation is not None and self.level.embeds_validation_data
            else None
        )
        lta = self.level is SigningLevel.B_LTA
        out = await self._sign_once(
            pdf,
            self._official,
            field_name=SIGNATURE_FIELD,
            reason=REASON,
            certify=True,
            context=context,
            lta=lta and self._seal is None,
        )
        if self._seal is not None:
            out = await self._sign_once(
                out,
                self._seal,
                field_name=SEAL_FIELD,
                reason=SEAL_REASON,
                certify=False,
                context=context,
                lta=lta,
            )
        return out

    async def _sign_once(
        self,
        pdf: bytes,
        signer: Signer,
        *,
        field_name: str,
        reason: str,
        certify: bool,
        context: ValidationContext | None,
        lta: bool,
    ) -> bytes:
        meta = PdfSignatureMetadata(
            field_name=field_name,
            md_algorithm="sha256",
            subfilter=SigSeedSubFilter.PADES,
            reason=reason,
            location=self._location,
            certify=certify,
            # later approval signatures (the organization's seal) and validation data stay
            # allowed; anything else invalidates the certification
            docmdp_permissions=MDPPerm.FILL_FORMS,
            embed_validation_info=context is not None,
            validation_context=context,
            use_pades_lta=lta,
            timestamp_field_name=TIMESTAMP_FIELD if lta else None,
        )
        pdf_signer = _PdfSigner(
            meta,
            signer=signer,
            timestamper=self._timestamper,
            system_time=self._signing_time,
        )
        writer = IncrementalPdfFileWriter(BytesIO(pdf), strict=False)
        reserved = self._reserved.get(field_name) if self.reuse_room else None
        try:
            try:
                out = await pdf_signer.async_sign_pdf(
                    writer, output=BytesIO(), bytes_reserved=reserved
                )
            except SigningError:
                if reserved is None:
                    raise
                # Out of room after all (a longer time-stamp token): size it afresh.
                self._reserved.pop(field_name, None)
                writer = IncrementalPdfFileWriter(BytesIO(pdf), strict=False)
                out = await pdf_signer.async_sign_pdf(writer, output=BytesIO())
                reserved = None
        except SigningError as exc:
            cause = f": {exc.__cause__}" if exc.__cause__ is not None else ""
            raise SaoyError(
                f"cannot sign the copy ({field_name}): {exc}{cause}. The signing certificate "
                "may be revoked or expired, or the PKI's CRLs out of date",
                reason="SIGNER_CERTIFICATE_INVALID",
            ) from exc
        signed = bytes(out.getbuffer())
        if reserved is None:
            room = _signature_room(signed, field_name)
            if room is not None:
                self._reserved[field_name] = room
        return signed


def _signature_room(pdf: bytes, field_name: str) -> int | None:
    """The hex digits reserved for the signature in ``field_name`` of a signed ``pdf`` (the
    gap its /ByteRange leaves, less the string's brackets); None when it is not found."""
    for signature in PdfFileReader(BytesIO(pdf), strict=False).embedded_signatures:
        if signature.field_name == field_name:
            byte_range = signature.sig_object["/ByteRange"]
            return int(byte_range[2]) - int(byte_range[1]) - 2
    return None


class Pkcs12CopySigner(PadesCopySigner):
    """Keys and chains from PKCS#12 files, parsed once at construction and kept in memory."""

    def __init__(
        self,
        pkcs12_path: Path,
        passphrase: bytes,
        *,
        timestamper: TimeStamper,
        seal_path: Path | None = None,
        validation: ValidationMaterial | None = None,
        level: SigningLevel | str = SigningLevel.B_LTA,
        location: str | None = None,
        signing_time: dt.datetime | None = None,
    ) -> None:
        super().__init__(
            _load_pkcs12_signer(pkcs12_path, passphrase),
            _load_pkcs12_signer(seal_path, passphrase) if seal_path is not None else None,
            timestamper=timestamper,
            validation=validation,
            level=level,
            location=location,
            signing_time=signing_time,
        )


class Pkcs11CopySigner(PadesCopySigner):
    """Keys in a PKCS#11 token: one session, logged in once, reused for every copy.

    The official's (and optionally the seal's) private key is found by label; certificates
    are given or else read from the token under the key's label. The session is opened here,
    not per signature; python-pkcs11 serializes operations on it, so concurrent copies are
    safe. Call :meth:`close` to log out.
    """

    def __init__(
        self,
        module_path: str | Path,
        token_label: str,
        pin: str,
        key_label: str,
        cert: asn1_x509.Certificate | None = None,
        *,
        chain: Sequence[asn1_x509.Certificate] = (),
        seal_key_label: str | None = None,
        seal_cert: asn1_x509.Certificate | None = None,
        timestamper: TimeStamper,
        validation: ValidationMaterial | None = None,
        level: SigningLevel | str = SigningLevel.B_LTA,
        location: str | None = None,
        signing_time: dt.datetime | None = None,
    ) -> None:
        self.session = open_pkcs11_session(module_path, token_label, pin)
        self.logins = 1
        """How many times this signer logged in to the token (always one)."""
        try:
            official = _pkcs11_signer(self.session, key_label, cert, chain)
            seal = (
                _pkcs11_signer(self.session, seal_key_label, seal_cert, chain)
                if seal_key_label is not None
                else None
            )
            super().__init__(
                official,
                seal,
                timestamper=timestamper,
                validation=validation,
                level=level,
                location=location,
                signing_time=signing_time,
            )
        except BaseException:
            self.session.close()
            raise

    def close(self) -> None:
        self.session.close()


def open_pkcs11_session(
    module_path: str | Path, token_label: str, pin: str, *, rw: bool = False
) -> Session:
    """Open a logged-in session on the token labelled ``token_label`` (``rw``: one that may
    create and destroy objects, such as wrapping keys)."""
    try:
        import pkcs11
        from pkcs11.exceptions import (
            NoSuchToken,
            PinIncorrect,
            PKCS11Error,
            UserAlreadyLoggedIn,
        )
    except ImportError as exc:
        raise RuntimeError(PKCS11_INSTALL_HINT) from exc
    if not Path(module_path).is_file():
        raise ValueError(f"PKCS#11 module {module_path} does not exist. {PKCS11_INSTALL_HINT}")
    try:
        token = pkcs11.lib(str(module_path)).get_token(token_label=token_label)
    except NoSuchToken as exc:
        raise ValueError(f"no PKCS#11 token labelled {token_label!r} in {module_path}") from exc
    try:
        return token.open(user_pin=pin, rw=rw)
    except UserAlreadyLoggedIn:
        # A login is the whole process's (PKCS#11): another session of ours holds it, and a
        # new session shares it. Opened without a login, this one never logs the others out.
        return token.open(rw=rw)
    except PinIncorrect as exc:
        raise ValueError(f"wrong PIN for PKCS#11 token {token_label!r}") from exc
    except PKCS11Error as exc:
        raise ValueError(f"cannot log in to PKCS#11 token {token_label!r}: {exc!r}") from exc


def import_key_to_pkcs11(
    session: Session,
    material: KeyMaterial,
    label: str,
    *,
    key_id: bytes | None = None,
) -> None:
    """Store an RSA key (sensitive, non-extractable, sign-only) and its certificate in a token.

    ``session`` must be a read-write, logged-in session. Once imported, the private key can
    sign but its private parts cannot be read back out of the token.
    """
    from pkcs11 import Attribute, MechanismFlag
    from pkcs11.util.rsa import decode_rsa_private_key
    from pkcs11.util.x509 import decode_x509_certificate

    if material.key.algorithm != "rsa":
        raise ValueError(f"only RSA keys can be imported, not {material.key.algorithm}")
    key_id = key_id if key_id is not None else label.encode()
    attrs = decode_rsa_private_key(
        material.key["private_key"].parsed.dump(), capabilities=MechanismFlag.SIGN
    )
    attrs.update(
        {
            Attribute.LABEL: label,
            Attribute.ID: key_id,
            Attribute.TOKEN: True,
            Attribute.PRIVATE: True,
            Attribute.SENSITIVE: True,
            Attribute.EXTRACTABLE: False,
        }
    )
    session.create_object(attrs)
    cert_attrs = decode_x509_certificate(material.certificate.dump())
    cert_attrs.update({Attribute.LABEL: label, Attribute.ID: key_id, Attribute.TOKEN: True})
    session.create_object(cert_attrs)


def signer_from_dev_pki(
    pki: DevPki,
    *,
    signing_time: dt.datetime | None = None,
    level: SigningLevel | str = SigningLevel.B_LTA,
    seal: bool = True,
) -> Pkcs12CopySigner:
    """The official's and the seal's signer from the dev PKI's files, time-stamped by its
    in-process TSA, with its CRLs as validation data."""
    return Pkcs12CopySigner(
        pki.official_path,
        pki.passphrase,
        seal_path=pki.seal_path if seal else None,
        timestamper=dev_timestamper(pki.load(pki.tsa_path), fixed_time=signing_time),
        validation=ValidationMaterial.from_dev_pki(pki),
        level=level,
        signing_time=signing_time,
    )


def create_copy_signer(
    pki: DevPki,
    *,
    backend: str = "pkcs12",
    level: SigningLevel | str = SigningLevel.B_LTA,
    pkcs11_module: str | Path | None = None,
    pkcs11_token: str | None = None,
    pkcs11_pin: str | None = None,
    official_key_label: str = "official",
    seal_key_label: str | None = "seal",
    signing_time: dt.datetime | None = None,
) -> CopySigner:
    """Build the signer the settings ask for: ``pkcs12`` (the dev PKI's files) or ``pkcs11``.

    With ``pkcs11`` the keys (and their certificates, under the same labels) live in the token;
    the dev PKI still provides the chain, the CRLs and the in-process TSA.
    """
    if backend == "pkcs12":
        return signer_from_dev_pki(
            pki, signing_time=signing_time, level=level, seal=seal_key_label is not None
        )
    if backend != "pkcs11":
        raise ValueError(f"unknown signer backend {backend!r}: use 'pkcs12' or 'pkcs11'")
    missing = [
        name
        for name, value in (
            ("pkcs11_module", pkcs11_module),
            ("pkcs11_token", pkcs11_token),
            ("pkcs11_pin", pkcs11_pin),
        )
        if not value
    ]
    if missing:
        raise ValueError(f"the pkcs11 signer backend needs {', '.join(missing)}")
    assert pkcs11_module is not None and pkcs11_token is not None and pkcs11_pin is not None
    tsa = pki.load(pki.tsa_path)
    return Pkcs11CopySigner(
        pkcs11_module,
        pkcs11_token,
        pkcs11_pin,
        official_key_label,
        chain=tsa.chain,
        seal_key_label=seal_key_label,
        timestamper=dev_timestamper(tsa, fixed_time=signing_time),
        validation=ValidationMaterial.from_dev_pki(pki),
        level=level,
        signing_time=signing_time,
    )


def dev_timestamper(tsa: KeyMaterial, *, fixed_time: dt.datetime | None = None) -> TimeStamper:
    """An in-process RFC 3161 TSA answering with ``tsa``'s key (RSA), embedding its chain."""
    return _DevTimeStamper(tsa, fixed_time=fixed_time)


def _load_pkcs12_signer(path: Path, passphrase: bytes) -> SimpleSigner:
    loaded = SimpleSigner.load_pkcs12(str(path), passphrase=passphrase)
    if loaded is None:
        raise ValueError(f"cannot open {path}: wrong passphrase or damaged file")
    return _KeyInMemorySigner(loaded)


def _pkcs11_signer(
    session: Session,
    key_label: str,
    cert: asn1_x509.Certificate | None,
    chain: Sequence[asn1_x509.Certificate],
) -> Signer:
    from pkcs11.exceptions import PKCS11Error
    from pyhanko.sign.pkcs11 import PKCS11Signer

    signer = PKCS11Signer(
        session,
        key_label=key_label,
        cert_label=key_label if cert is None else None,
        signing_cert=cert,
        ca_chain=list(chain),
    )
    try:
        signer.signing_cert  # noqa: B018 - finds the key (and certificate) now, once
    except (PKCS11Error, SigningError) as exc:
        raise ValueError(f"no usable key/certificate labelled {key_label!r} in the token") from exc
    return signer


class _KeyInMemorySigner(SimpleSigner):
    """``SimpleSigner`` that parses its private key once, not on every signature.

    pyHanko's ``SimpleSigner`` re-reads the key from DER for each signature, and checking an
    RSA key on load costs about 30 ms, twice per PDF (size estimate + signature). A parsed
    key is immutable and safe to share between tasks and threads.
    """

    def __init__(self, loaded: SimpleSigner) -> None:
        cert = loaded.signing_cert
        if cert is None:  # pragma: no cover - load_pkcs12 always sets one
            raise ValueError("the PKCS#12 file holds no certificate")
        super().__init__(
            signing_cert=cert,
            signing_key=loaded.signing_key,
            cert_registry=loaded.cert_registry,
        )
        self._key = serialization.load_der_private_key(loaded.signing_key.dump(), password=None)
        self._modulus_bytes = (
            (self._key.key_size + 7) // 8 if isinstance(self._key, RSAPrivateKey) else 0
        )

    async def async_sign_raw(
        self, data: bytes, digest_algorithm: str, dry_run: bool = False
    ) -> bytes:
        if dry_run and self._modulus_bytes:
            return bytes(self._modulus_bytes)  # size estimate only: same length, no work
        return self.sign_raw(data, digest_algorithm)

    def sign_raw(self, data: bytes, digest_algorithm: str) -> bytes:
        mechanism = self.get_signature_mechanism_for_digest(digest_algorithm)
        if isinstance(self._key, RSAPrivateKey) and mechanism.signature_algo == "rsassa_pkcs1v15":
            return self._key.sign(data, PKCS1v15(), get_pyca_cryptography_hash(digest_algorithm))
        return super().sign_raw(data, digest_algorithm)


class _DevTimeStamper(DummyTimeStamper):
    """pyHanko's in-process TSA, with its (RSA) key parsed once instead of per time-stamp."""

    def __init__(self, tsa: KeyMaterial, *, fixed_time: dt.datetime | None) -> None:
        store = SimpleCertificateStore()
        store.register_multiple(tsa.chain)
        super().__init__(
            tsa_cert=tsa.certificate,
            tsa_key=tsa.key,
            certs_to_embed=store,
            fixed_dt=fixed_time,
        )
        key = serialization.load_der_private_key(tsa.key.dump(), password=None)
        if not isinstance(key, RSAPrivateKey):
            raise ValueError("the in-process TSA signs with RSA only")
        self._key = key

    def _sign_tst_info(
        self, tst_info_data: bytes, md_algorithm: str, when: dt.datetime
    ) -> tuple[bytes, cms.CMSAttributes]:
        # Same signed attributes as DummyTimeStamper._sign_tst_info, with the cached key.
        digest = hashes.Hash(get_pyca_cryptography_hash(md_algorithm))
        digest.update(tst_info_data)
        signed_attrs = cms.CMSAttributes(
            [
                simple_cms_attribute("content_type", "tst_info"),
                simple_cms_attribute(
                    "signing_time", cms.Time({"utc_time": asn1_core.UTCTime(when)})
                ),
                simple_cms_attribute("signing_certificate", as_signing_certificate(self.tsa_cert)),
                simple_cms_attribute("message_digest", digest.finalize()),
            ]
        )
        signature = self._key.sign(
            signed_attrs.dump(), PKCS1v15(), get_pyca_cryptography_hash(md_algorithm.upper())
        )
        return signature, signed_attrs


class _PdfSigner(PdfSigner):
    """``PdfSigner`` with an optional frozen clock for the CMS signing-time attribute."""

    def __init__(
        self,
        signature_meta: PdfSignatureMetadata,
        signer: Signer,
        *,
        timestamper: TimeStamper,
        system_time: dt.datetime | None,
    ) -> None:
        super().__init__(signature_meta, signer, timestamper=timestamper)
        self._system_time = system_time

    def init_signing_session(
        self, pdf_out: BasePdfFileWriter, existing_fields_only: bool = False
    ) -> PdfSigningSession:
        session = super().init_signing_session(pdf_out, existing_fields_only=existing_fields_only)
        if self._system_time is not None:
            session.system_time = self._system_time
        return session


__all__ = [
    "SEAL_FIELD",
    "SIGNATURE_FIELD",
    "TIMESTAMP_FIELD",
    "CopySigner",
    "PadesCopySigner",
    "Pkcs11CopySigner",
    "Pkcs12CopySigner",
    "SigningLevel",
    "ValidationMaterial",
    "create_copy_signer",
    "dev_timestamper",
    "import_key_to_pkcs11",
    "open_pkcs11_session",
    "signer_from_dev_pki",
]
