"""A development PKI, generated on first start and reused after.

Layout of the PKI directory::

    root.pem          the root CA certificate (the trust anchor verifiers are given)
    issuing-ca.p12    issuing CA key + certificate + root (it signs the CRLs it publishes)
    official.p12      the certifying official: key + certificate + chain
    seal.p12          the organization's seal: key + certificate + chain
    tsa.p12           the in-process time-stamping authority: key + certificate + chain
    qr.p12            the Ed25519 key that signs the offline QR payloads: key + certificate + chain
    qr.pem            the QR certificate followed by the issuing CA's (what offline verifiers
                      are given, with root.pem as the trust anchor)
    crl/root.crl      the root's CRL (ARL, DER), covering the issuing CA's certificate
    crl/issuing-ca.crl  the issuing CA's CRL (DER), covering the end-entity certificates
    crl/revoked.json  end-entity certificates the issuing CA has revoked
    crl/issued.txt    serials the issuing CA has issued (what its OCSP responder knows)
    ocsp.p12          the issuing CA's OCSP responder: key + certificate + chain
    ocsp-root.p12     the root's OCSP responder (answers for the issuing CA's certificate)
    tls/ca.pem        the issuing CA's certificate and the root's: what TLS peers trust
    tls/server.pem    the gRPC server's TLS certificate followed by the issuing CA's
    tls/server.key    its ECDSA P-256 key (PEM, mode 0600)

Every ``.p12`` file is protected by the same passphrase. The root CA's private key is not
kept: it signs the issuing CA and one authority revocation list (valid as long as the issuing
CA) at generation, and is then thrown away, so the only long-lived secret of the hierarchy is
the issuing CA's. The issuing CA's CRL is reissued whenever it is older than the refresh period
(a day by default) and stays valid a week, so a verifier holding any recent one can check
revocation offline.

Certificates name where their CRL is published (a CRL distribution point under
``crl_base_url``, e.g. ``http://localhost:8080/pki/issuing-ca.crl``); :meth:`DevPki.crl_bytes`
gives the current CRL for a name, for an HTTP server to publish.

Revocation status is also answered over OCSP (RFC 6960): :meth:`DevPki.ocsp_response` turns a
request into a response signed by a delegated responder (EKU OCSPSigning, id-pkix-ocsp-nocheck)
of the CA that issued the certificate, with the status the CRLs give and "unknown" for a serial
the CA never issued. Certificates name the responder next to their CRL (an Authority
Information Access entry, ``{crl_base_url}ocsp``). The root's responder is made at generation,
while the root's key still exists. A PKI generated without responders keeps its certificates
as they are, gets the issuing CA's responder on first use and no root's one, and lists in
``crl/issued.txt`` the certificates it holds: a kiosk certificate it issued before then is
"unknown" until revoked.

Keys are RSA-2048: pyHanko's in-process time-stamper signs with RSA only, every PDF reader
(Adobe, Foxit, poppler/NSS) verifies RSA PKCS#1 v1.5, and Vietnam's public signing CAs issue
RSA certificates, so one algorithm serves the whole hierarchy. The one exception is the QR key:
the offline payload printed on every page must fit a QR code a phone reads from paper, and an
Ed25519 signature (64 bytes) is a quarter of an RSA-2048 one. Its certificate is issued by the
same RSA issuing CA, so it chains to the same root; a PKI generated before the QR key existed
gets one on first use (:meth:`DevPki.qr_signer`).

TLS certificates (the server's, EKU serverAuth; each kiosk's, EKU clientAuth with CN = the kiosk
id) are ECDSA P-256 and are issued on first use by the same issuing CA: the root's key is
thrown away at generation, so no second CA can be made under it later, and the issuing CA
already publishes the CRL that a revoked kiosk certificate goes on (:meth:`DevPki.revoke`,
or :meth:`DevPki.revoke_kiosk_certificate` by serial or kiosk id). A server with mutual TLS
reads that CRL (:meth:`DevPki.revocation_list`, again whenever the file changes) to refuse a
revoked kiosk at its next call; ``kiosk-cert`` replaces a revoked kiosk certificate.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import ipaddress
import json
import os
import re
import shutil
import tempfile
import threading
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from asn1crypto import crl as asn1_crl
from asn1crypto import keys as asn1_keys
from asn1crypto import x509 as asn1_x509
from cryptography import x509
from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from cryptography.hazmat.primitives.asymmetric.types import PrivateKeyTypes
from cryptography.hazmat.primitives.serialization import pkcs12
from cryptography.x509 import ocsp
from cryptography.x509.oid import AuthorityInformationAccessOID, ExtendedKeyUsageOID, NameOID

from saoy.core.errors import InvalidInput, NotFound
from saoy.core.trust.secretfiles import ensure_secret_file

ROOT_FILE = "root.pem"
ISSUING_CA_FILE = "issuing-ca.p12"
OFFICIAL_FILE = "official.p12"
SEAL_FILE = "seal.p12"
TSA_FILE = "tsa.p12"
QR_FILE = "qr.p12"
QR_CERT_FILE = "qr.pem"
OCSP_FILE = "ocsp.p12"
OCSP_ROOT_FILE = "ocsp-root.p12"
_ALL_FILES = (ROOT_FILE, ISSUING_CA_FILE, OFFICIAL_FILE, SEAL_FILE, TSA_FILE)
CRL_DIR = "crl"
ROOT_CRL = "root"
ISSUING_CA_CRL = "issuing-ca"
CRL_NAMES = (ROOT_CRL, ISSUING_CA_CRL)
"""Names of the CRLs the dev PKI publishes, as in ``{crl_base_url}{name}.crl``."""
CERTIFICATE_NAMES = ("root", "qr")
"""Certificates the dev PKI publishes in PEM, as ``/pki/{name}.pem``: the trust anchor, and the
QR certificate with its issuing CA (what offline verifiers are given)."""
_REVOKED_FILE = "revoked.json"
_ISSUED_FILE = "issued.txt"
OCSP_PATH = "ocsp"
"""Where the OCSP responder is, as in ``{crl_base_url}ocsp``."""
TLS_DIR = "tls"
TLS_CA_FILE = "ca.pem"
TLS_SERVER_CERT_FILE = "server.pem"
TLS_SERVER_KEY_FILE = "server.key"
KIOSK_CERT_FILE = "kiosk.pem"
KIOSK_KEY_FILE = "kiosk.key"
TLS_LOCAL_NAMES = ("localhost", "127.0.0.1", "::1")
"""Names every dev TLS server certificate covers, besides the configured host names."""
KIOSK_ID = re.compile(r"[A-Za-z0-9_.-]{1,64}")
"""What a kiosk id may be; also the CN of the kiosk's TLS client certificate."""

DEFAULT_CRL_BASE_URL = "http://localhost:8080/pki/"
DEFAULT_CRL_REFRESH = dt.timedelta(days=1)
_CRL_VALIDITY = dt.timedelta(days=7)  # nextUpdate: verifiers accept a CRL this long
_OCSP_VALIDITY = dt.timedelta(hours=1)  # nextUpdate of an OCSP response

_KEY_SIZE = 2048
_BACKDATE = dt.timedelta(days=1)  # tolerate clock skew and frozen clocks in tests
_ROOT_LIFETIME = dt.timedelta(days=20 * 365)
_ISSUING_LIFETIME = dt.timedelta(days=10 * 365)
_END_ENTITY_LIFETIME = dt.timedelta(days=5 * 365)
_TLS_RENEW_BEFORE = dt.timedelta(days=30)  # a TLS certificate this close to expiry is reissued


@dataclass(frozen=True)
class KeyMaterial:
    """A private key with its certificate and the chain above it, in pyHanko's types."""

    key: asn1_keys.PrivateKeyInfo = field(repr=False)
    certificate: asn1_x509.Certificate
    chain: tuple[asn1_x509.Certificate, ...]  # issuing CA first, then the root


@dataclass(frozen=True)
class KioskCredentials:
    """The files a kiosk needs for mutual TLS, all in PEM."""

    certificate: Path  # the kiosk's certificate followed by the issuing CA's
    key: Path  # its private key, mode 0600
    ca: Path  # the certificates to trust the server with (issuing CA and root)
    issued: bool  # False: the certificate already there was kept


@dataclass(frozen=True)
class KioskRevocation:
    """A certificate on the issuing CA's CRL."""

    serial: int
    at: dt.datetime  # when it was revoked (UTC)
    reason: str  # RFC 5280 reason code, as ``x509.ReasonFlags`` names it


@dataclass(frozen=True)
class RevocationList:
    """What one reading of the issuing CA's CRL revokes (see :meth:`DevPki.revocation_list`)."""

    issuer: x509.Name
    entries: dict[int, KioskRevocation]
    stamp: tuple[int, int]  # the CRL file's mtime and inode when it was read

    def revoked(self, cert: x509.Certificate) -> KioskRevocation | None:
        """The entry revoking ``cert``, or None (also for a certificate of another CA)."""
        return self.lookup(cert.issuer, cert.serial_number)

    def lookup(self, issuer: x509.Name, serial: int) -> KioskRevocation | None:
        """The entry revoking serial ``serial`` of ``issuer``, or None."""
        return self.entries.get(serial) if issuer == self.issuer else None


@dataclass(frozen=True)
class _OcspResponder:
    """A delegated OCSP responder and what it answers for."""

    key: rsa.RSAPrivateKey = field(repr=False)
    certificate: x509.Certificate
    issuer: x509.Certificate  # the CA whose certificates it answers for
    crl_name: str  # that CA's CRL: where revocations are read from
    issued: Callable[[], frozenset[int]]  # serials that CA has issued


@dataclass(frozen=True)
class DevPki:
    """Where the development PKI lives, and how to open it."""

    directory: Path
    organization: str  # the O= of the end-entity certificates: the issuer of copies
    passphrase: bytes = field(repr=False)
    crl_base_url: str | None = None  # where the certificates say their CRLs are published
    crl_refresh: dt.timedelta = DEFAULT_CRL_REFRESH  # reissue a CRL older than this

    @property
    def root_path(self) -> Path:
        return self.directory / ROOT_FILE

    @property
    def issuing_ca_path(self) -> Path:
        return self.directory / ISSUING_CA_FILE

    @property
    def official_path(self) -> Path:
        return self.directory / OFFICIAL_FILE

    @property
    def seal_path(self) -> Path:
        return self.directory / SEAL_FILE

    @property
    def tsa_path(self) -> Path:
        return self.directory / TSA_FILE

    @property
    def qr_path(self) -> Path:
        return self.directory / QR_FILE

    @property
    def qr_certificate_path(self) -> Path:
        return self.directory / QR_CERT_FILE

    def qr_signer(self) -> tuple[ed25519.Ed25519PrivateKey, x509.Certificate]:
        """The Ed25519 key that signs the offline QR payloads, and its certificate (issued by
        the issuing CA). Issued on first use for a PKI generated without one; cached after."""
        key, cert, _ = self._qr_material()
        return key, cert

    def qr_certificate_pem(self) -> bytes:
        """The QR certificate followed by the issuing CA's, in PEM: what ``saoy verify
        --offline --cert`` takes (served at ``/pki/qr.pem``; the root is ``/pki/root.pem``)."""
        _, cert, chain = self._qr_material()
        return _pem(cert, *chain[:1])

    def certificate_pem(self, name: str) -> bytes:
        """A published certificate file (one of ``CERTIFICATE_NAMES``) in PEM."""
        if name == "root":
            return _read_cached(self.root_path)
        if name == "qr":
            return self.qr_certificate_pem()
        raise NotFound(
            f"no certificate named {name!r}; the dev PKI publishes {', '.join(CERTIFICATE_NAMES)}",
            field="name",
        )

    def _qr_material(
        self,
    ) -> tuple[ed25519.Ed25519PrivateKey, x509.Certificate, tuple[x509.Certificate, ...]]:
        path = self.qr_path
        with _QR_LOCK:
            if not path.is_file():
                self._issue_qr_key()
            key, cert, chain = _open_p12_cached(path, self.passphrase)
            if not isinstance(key, ed25519.Ed25519PrivateKey):
                raise ValueError(f"{path} holds no Ed25519 key and certificate")
            if not self.qr_certificate_path.is_file():
                _atomic_write(self.qr_certificate_path, _pem(cert, *chain[:1]))
            return key, cert, chain

    def _issue_qr_key(self) -> None:
        """Issue the QR key into a PKI made without one. Created with link(2), so two
        processes racing here end up sharing the first one written."""
        ca_key, ca_cert, others = self._issuing_ca()
        data = _qr_p12(
            organization=self.organization,
            ca_key=ca_key,
            chain=[ca_cert, *others],
            now=dt.datetime.now(dt.UTC).replace(microsecond=0),
            crl_url=self.crl_url(ISSUING_CA_CRL),
            ocsp_url=self.ocsp_url,
            passphrase=self.passphrase,
        )
        fd, tmp = tempfile.mkstemp(prefix=f".{QR_FILE}.", dir=self.directory)
        try:
            with os.fdopen(fd, "wb") as fh:
                fh.write(data)
                fh.flush()
                os.fsync(fh.fileno())
            try:
                os.link(tmp, self.qr_path)
            except FileExistsError:
                pass  # another process issued it first: use theirs
            else:
                _fsync_dir(self.directory)
                self._record_issued(_open_p12_cached(self.qr_path, self.passphrase)[1])
        finally:
            Path(tmp).unlink(missing_ok=True)

    def _issuing_ca(self) -> tuple[rsa.RSAPrivateKey, x509.Certificate, list[x509.Certificate]]:
        """The issuing CA's key and certificate, and the certificates above it (the root)."""
        key, cert, others = _open_p12(self.issuing_ca_path, self.passphrase)
        if not isinstance(key, rsa.RSAPrivateKey):
            raise ValueError(f"{self.issuing_ca_path} holds no RSA key and certificate")
        return key, cert, list(others)

    @property
    def tls_directory(self) -> Path:
        return self.directory / TLS_DIR

    def tls_ca_pem(self) -> bytes:
        """The issuing CA's certificate and the root's, in PEM (``tls/ca.pem``): what kiosks
        trust the server's TLS certificate with, and what the server checks kiosk certificates
        against."""
        path = self.tls_directory / TLS_CA_FILE
        if not path.is_file():
            _, ca_cert, above = self._issuing_ca()
            _atomic_write(path, _pem(ca_cert, *above))
        return _read_cached(path)

    def tls_server_credentials(self, names: Iterable[str] = ()) -> tuple[bytes, bytes]:
        """The gRPC server's TLS certificate chain (its certificate, then the issuing CA's) and
        private key, both PEM, valid for ``localhost``, 127.0.0.1, ::1 and ``names`` (host names
        or IP addresses; wildcard addresses are left out). The key is made once; the
        certificate is reissued when it misses a name, no longer matches the key, or expires
        within 30 days."""
        key_path = ensure_secret_file(self.tls_directory / TLS_SERVER_KEY_FILE, _new_tls_key)
        key = _load_tls_key(key_path)
        wanted = _alternative_names([*TLS_LOCAL_NAMES, *names])
        cert_path = self.tls_directory / TLS_SERVER_CERT_FILE
        with _TLS_LOCK:
            current = _usable_tls_certificate(cert_path, key, self._issuing_ca()[1])
            if current is None or not set(wanted) <= set(_alternative_names_of(current)):
                self._issue_tls_certificate(
                    cert_path, key, "Saoy Dev gRPC Server", ExtendedKeyUsageOID.SERVER_AUTH, wanted
                )
        return _read_cached(cert_path), key_path.read_bytes()

    def issue_kiosk_certificate(self, kiosk_id: str, out: Path) -> KioskCredentials:
        """Write kiosk ``kiosk_id``'s mutual-TLS files into ``out``: ``kiosk.key`` (made once),
        ``kiosk.pem`` (CN = the kiosk id, EKU clientAuth, from the issuing CA, followed by the
        issuing CA's certificate) and ``ca.pem``. A certificate already there is kept while it
        names this kiosk, matches the key, comes from this PKI and is not about to expire."""
        if not KIOSK_ID.fullmatch(kiosk_id):
            raise InvalidInput(
                f"kiosk id {kiosk_id[:80]!r}: use 1-64 characters of A-Z, a-z, 0-9, _, . or -",
                field="kiosk_id",
            )
        out = Path(out)
        cert_path = out / KIOSK_CERT_FILE
        revocation = self._revocation_of(cert_path)
        if revocation is not None and revocation.reason == "key_compromise":
            (out / KIOSK_KEY_FILE).unlink(missing_ok=True)  # its certificate's key: not reused
        key_path = ensure_secret_file(out / KIOSK_KEY_FILE, _new_tls_key)
        key = _load_tls_key(key_path)
        current = _usable_tls_certificate(cert_path, key, self._issuing_ca()[1])
        issued = current is None or common_name_of(current) != kiosk_id or revocation is not None
        if issued:
            self._issue_tls_certificate(cert_path, key, kiosk_id, ExtendedKeyUsageOID.CLIENT_AUTH)
        ca_path = out / TLS_CA_FILE
        _atomic_write(ca_path, self.tls_ca_pem())
        return KioskCredentials(certificate=cert_path, key=key_path, ca=ca_path, issued=issued)

    def _revocation_of(self, cert_path: Path) -> KioskRevocation | None:
        """How the certificate in PEM file ``cert_path`` was revoked, if it is on the issuing
        CA's CRL (None when it is not, or there is none)."""
        try:
            cert = x509.load_pem_x509_certificate(cert_path.read_bytes())
        except (OSError, ValueError):
            return None
        return self.revocation_list().revoked(cert)

    def _issue_tls_certificate(
        self,
        path: Path,
        key: ec.EllipticCurvePrivateKey,
        common_name: str,
        purpose: x509.ObjectIdentifier,
        names: list[x509.GeneralName] | None = None,
    ) -> None:
        """Write a certificate for ``key`` with EKU ``purpose`` from the issuing CA into
        ``path``, followed by the issuing CA's (PEM)."""
        ca_key, ca_cert, _ = self._issuing_ca()
        cert = _end_entity_cert(
            subject=_name(self.organization, common_name),
            public_key=key.public_key(),
            ca_cert=ca_cert,
            ca_key=ca_key,
            now=dt.datetime.now(dt.UTC).replace(microsecond=0),
            usage=_DIGITAL_SIGNATURE_ONLY,
            extended=x509.ExtendedKeyUsage([purpose]),
            crl_url=self.crl_url(ISSUING_CA_CRL),
            ocsp_url=self.ocsp_url,
            alternative_names=names,
        )
        self._record_issued(cert)
        _atomic_write(path, _pem(cert, ca_cert))

    def issue_person_certificate(
        self, path: Path, *, common_name: str, title: str, unit: str
    ) -> asn1_x509.Certificate:
        """Issue a person (a certifying official) an RSA signing key and certificate from the
        issuing CA, written to ``path`` as PKCS#12 under this PKI's passphrase: CN = the full
        name, T = the title, OU = the unit (the center), O = this PKI's organization (cut to
        what X.520 allows: 64 characters, and for the CN 64 bytes of UTF-8); key
        usage digitalSignature + nonRepudiation, as the official's signatures on copies need."""
        subject = x509.Name(
            [
                x509.NameAttribute(NameOID.COUNTRY_NAME, "VN"),
                x509.NameAttribute(NameOID.ORGANIZATION_NAME, self.organization),
                x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, unit[:64]),
                x509.NameAttribute(NameOID.TITLE, title[:64]),
                x509.NameAttribute(NameOID.COMMON_NAME, _fit_utf8(common_name, 64)),
            ]
        )
        return self._issue_signing(path, subject, "official")

    def issue_seal_certificate(self, path: Path, *, organization: str) -> asn1_x509.Certificate:
        """Issue a certifying body (a center) its seal: an RSA signing key and certificate from
        the issuing CA whose O and CN name the body (``organization``), written to ``path`` as
        PKCS#12 under this PKI's passphrase, as :meth:`issue_person_certificate` does."""
        name = _fit_utf8(organization, 64)
        subject = x509.Name(
            [
                x509.NameAttribute(NameOID.COUNTRY_NAME, "VN"),
                x509.NameAttribute(NameOID.ORGANIZATION_NAME, name),
                x509.NameAttribute(NameOID.COMMON_NAME, name),
            ]
        )
        return self._issue_signing(path, subject, "seal")

    def _issue_signing(
        self, path: Path, subject: x509.Name, friendly: str
    ) -> asn1_x509.Certificate:
        ca_key, ca_cert, others = self._issuing_ca()
        key = _new_key()
        cert = _end_entity_cert(
            subject=subject,
            public_key=key.public_key(),
            ca_cert=ca_cert,
            ca_key=ca_key,
            now=dt.datetime.now(dt.UTC).replace(microsecond=0),
            usage=_key_usage("digital_signature", "content_commitment"),
            extended=None,
            crl_url=self.crl_url(ISSUING_CA_CRL),
            ocsp_url=self.ocsp_url,
        )
        self._record_issued(cert)
        path.parent.mkdir(parents=True, exist_ok=True)
        _atomic_write(path, _p12(friendly, key, cert, [ca_cert, *others], self.passphrase))
        os.chmod(path, 0o600)
        return _to_asn1(cert)

    def root_certificate(self) -> asn1_x509.Certificate:
        """The trust anchor, as the ``asn1crypto`` object pyHanko's validation takes."""
        return load_pem_certificate(self.root_path)

    def load(self, path: Path) -> KeyMaterial:
        """Open one of this PKI's PKCS#12 files with its passphrase."""
        return load_pkcs12(path, self.passphrase)

    def crl_url(self, name: str) -> str | None:
        """The URL certificates give for CRL ``name`` (None for a PKI made without them)."""
        _check_crl_name(name)
        return None if self.crl_base_url is None else _crl_url(self.crl_base_url, name)

    def crl_path(self, name: str) -> Path:
        """The file holding the current CRL ``name`` (DER), reissued first if it is stale.

        Raises :class:`NotFound` for a name this PKI does not publish.
        """
        _check_crl_name(name)
        path = self.directory / CRL_DIR / f"{name}.crl"
        if name == ISSUING_CA_CRL:
            with _CRL_LOCK:
                if _is_stale(path, self.crl_refresh):
                    self._reissue_issuing_ca_crl()
        elif not path.is_file():
            raise NotFound(
                f"{self.directory} was generated before the dev PKI published a root CRL; "
                "move it away to generate a new one",
                field="name",
            )
        return path

    def crl_bytes(self, name: str) -> bytes:
        """The current CRL ``name`` as DER bytes (``application/pkix-crl``)."""
        return _read_cached(self.crl_path(name))

    def crls(self) -> list[asn1_crl.CertificateList]:
        """Every current CRL this PKI publishes, parsed for pyHanko's validation contexts."""
        out = []
        for name in CRL_NAMES:
            try:
                out.append(_parse_crl_cached(self.crl_path(name)))
            except NotFound:
                continue
        return out

    def revoke(self, certificate: asn1_x509.Certificate, reason: str = "key_compromise") -> None:
        """Revoke an end-entity certificate of this PKI and reissue the issuing CA's CRL.

        ``reason`` is an RFC 5280 reason code name as ``cryptography`` spells it
        (``key_compromise``, ``superseded``, ``cessation_of_operation``, ...).
        """
        _check_reason(reason)
        ca = self.load(self.issuing_ca_path)
        if certificate.issuer != ca.certificate.subject:
            raise ValueError("only certificates issued by the dev issuing CA can be revoked")
        self._revoke_serials([certificate.serial_number], reason)

    def _revoke_serials(self, serials: Iterable[int], reason: str) -> None:
        """Put ``serials`` of the issuing CA on its CRL (those already there keep their first
        time and reason) and reissue the CRL."""
        with _CRL_LOCK:
            revoked = _read_revoked(self.directory)
            now = dt.datetime.now(dt.UTC).replace(microsecond=0).isoformat()
            for serial in serials:
                revoked.setdefault(format(serial, "x"), {"at": now, "reason": reason})
            _atomic_write(
                self.directory / CRL_DIR / _REVOKED_FILE,
                json.dumps(revoked, indent=1, sort_keys=True).encode(),
            )
            self._reissue_issuing_ca_crl()

    def revoke_kiosk_certificate(
        self, serial_or_kiosk: str, reason: str = "key_compromise"
    ) -> list[tuple[str, KioskRevocation]]:
        """Revoke a kiosk's TLS client certificate, named by its serial number (hex, as
        ``openssl x509 -serial`` prints it; colons allowed) or by the kiosk id (every
        certificate the issuing CA issued to that kiosk), and reissue the issuing CA's CRL.

        Returns what is now revoked: the kiosk id and the CRL entry, with when and why (a
        certificate revoked before keeps its first entry). Raises :class:`NotFound` when
        nothing the issuing CA issued to a kiosk matches (a kiosk certificate issued before
        the PKI kept ``crl/issued.txt`` can be revoked with :meth:`revoke` from the certificate
        itself), and :class:`InvalidInput` for a serial of one of the PKI's own certificates
        (server, official, seal...).
        """
        _check_reason(reason)
        wanted = serial_or_kiosk.strip()
        issued = self._issued_names()
        held = self._held_serials()
        serial = _parse_serial(wanted)
        if serial is not None and serial in issued:
            if serial in held or not KIOSK_ID.fullmatch(issued[serial]):
                raise InvalidInput(
                    f"serial {serial:x} is the certificate of {issued[serial]!r}, not a"
                    " kiosk's: kiosk-cert --revoke revokes kiosk certificates only",
                    field="serial",
                )
            serials = [serial]
        else:
            serials = sorted(s for s, name in issued.items() if name == wanted and s not in held)
        if not serials:
            raise NotFound(
                f"the issuing CA issued no kiosk certificate with serial or kiosk id"
                f" {wanted[:80]!r}",
                field="serial",
            )
        self._revoke_serials(serials, reason)
        entries = self.revocation_list().entries
        return [(issued[s], entries[s]) for s in serials]

    def revocation_list(self, previous: RevocationList | None = None) -> RevocationList:
        """The certificates the issuing CA's current CRL revokes, read from that CRL (whose
        signature is checked). ``previous`` is given back as it is when the CRL file has not
        changed since it was read, so calling this often costs a ``stat`` (and the reissue of
        a stale CRL, once per refresh period)."""
        path = self.crl_path(ISSUING_CA_CRL)
        stamp = _stamp(path)
        if previous is not None and previous.stamp == stamp:
            return previous
        ca_key, ca_cert, _ = _open_p12_cached(self.issuing_ca_path, self.passphrase)
        crl = x509.load_der_x509_crl(path.read_bytes())
        public_key = _rsa(ca_key, self.issuing_ca_path).public_key()
        if crl.issuer != ca_cert.subject or not crl.is_signature_valid(public_key):
            raise ValueError(f"{path} is not a CRL signed by the dev issuing CA")
        entries = {}
        for entry in crl:
            reason = "unspecified"
            with contextlib.suppress(x509.ExtensionNotFound):
                reason = entry.extensions.get_extension_for_class(x509.CRLReason).value.reason.name
            entries[entry.serial_number] = KioskRevocation(
                serial=entry.serial_number, at=entry.revocation_date_utc, reason=reason
            )
        return RevocationList(issuer=ca_cert.subject, entries=entries, stamp=stamp)

    def _reissue_issuing_ca_crl(self) -> None:
        key, _, _ = pkcs12.load_key_and_certificates(
            self.issuing_ca_path.read_bytes(), self.passphrase
        )
        ca_cert = x509.load_der_x509_certificate(self.load(self.issuing_ca_path).certificate.dump())
        if not isinstance(key, rsa.RSAPrivateKey):  # pragma: no cover - generated as RSA
            raise ValueError(f"{self.issuing_ca_path} holds no RSA key")
        crl = _crl(
            ca_cert,
            key,
            now=dt.datetime.now(dt.UTC).replace(microsecond=0),
            next_update=None,
            revoked=_read_revoked(self.directory),
        )
        (self.directory / CRL_DIR).mkdir(exist_ok=True)
        _atomic_write(self.directory / CRL_DIR / f"{ISSUING_CA_CRL}.crl", crl)

    @property
    def ocsp_url(self) -> str | None:
        """The URL certificates give for the OCSP responder (None for a PKI made without CRL
        URLs)."""
        return None if self.crl_base_url is None else _ocsp_url(self.crl_base_url)

    def ocsp_response(self, request_der: bytes) -> bytes:
        """Answer a DER OCSP request (RFC 6960) with a DER OCSP response.

        A request asks about one certificate (one listing several is refused as malformed). Its
        status is "revoked" when the current CRL of its issuer lists it (with that entry's time
        and reason), "good" when that CA issued it, and "unknown" otherwise; the response is
        valid for an hour, echoes the request's nonce, and is signed by the issuer's delegated
        responder, whose certificate it carries. A request that cannot be parsed gets
        ``malformedRequest``, one about a CA other than this PKI's ``unauthorized``: neither
        raises.
        """
        try:
            request = ocsp.load_der_ocsp_request(request_der)
            algorithm = request.hash_algorithm
            wanted = (request.issuer_name_hash, request.issuer_key_hash)
            nonce = _ocsp_nonce(request)
        except (ValueError, UnsupportedAlgorithm, NotImplementedError):
            # NotImplementedError: more than one certificate asked about, which this
            # responder (as ``cryptography``, which answers one) does not serve.
            return _ocsp_failure(ocsp.OCSPResponseStatus.MALFORMED_REQUEST)
        for responder in self._ocsp_responders():
            if _issuer_hashes(responder.issuer, algorithm) == wanted:
                break
        else:
            return _ocsp_failure(ocsp.OCSPResponseStatus.UNAUTHORIZED)
        serial = request.serial_number
        crl = x509.load_der_x509_crl(self.crl_bytes(responder.crl_name))
        entry = crl.get_revoked_certificate_by_serial_number(serial)
        revoked_at, reason = None, None
        if entry is not None:
            status = ocsp.OCSPCertStatus.REVOKED
            revoked_at = entry.revocation_date_utc
            with contextlib.suppress(x509.ExtensionNotFound):
                reason = entry.extensions.get_extension_for_class(x509.CRLReason).value.reason
        elif serial in responder.issued():
            status = ocsp.OCSPCertStatus.GOOD
        else:
            status = ocsp.OCSPCertStatus.UNKNOWN
        now = dt.datetime.now(dt.UTC).replace(microsecond=0)
        builder = (
            ocsp.OCSPResponseBuilder()
            .add_response_by_hash(
                issuer_name_hash=wanted[0],
                issuer_key_hash=wanted[1],
                serial_number=serial,
                algorithm=algorithm,
                cert_status=status,
                this_update=now,
                next_update=now + _OCSP_VALIDITY,
                revocation_time=revoked_at,
                revocation_reason=reason,
            )
            .responder_id(ocsp.OCSPResponderEncoding.HASH, responder.certificate)
            .certificates([responder.certificate])
        )
        if nonce is not None:
            builder = builder.add_extension(x509.OCSPNonce(nonce), critical=False)
        response = builder.sign(responder.key, hashes.SHA256())
        return response.public_bytes(serialization.Encoding.DER)

    def _ocsp_responders(self) -> Iterator[_OcspResponder]:
        """The issuing CA's responder (issued on first use for a PKI made without one), then
        the root's where the PKI has one."""
        path = ensure_secret_file(self.directory / OCSP_FILE, self._new_ocsp_responder)
        key, cert, chain = _open_p12_cached(path, self.passphrase)
        responder_serial, ca_serial = cert.serial_number, chain[0].serial_number
        yield _OcspResponder(
            key=_rsa(key, path),
            certificate=cert,
            issuer=chain[0],
            crl_name=ISSUING_CA_CRL,
            issued=lambda: self._issued_serials() | {responder_serial},
        )
        path = self.directory / OCSP_ROOT_FILE
        if path.is_file():
            key, cert, chain = _open_p12_cached(path, self.passphrase)
            # The root issued the issuing CA's certificate and this responder's, then was thrown
            # away: nothing else can carry its signature.
            known = frozenset({cert.serial_number, ca_serial})
            yield _OcspResponder(
                key=_rsa(key, path),
                certificate=cert,
                issuer=chain[0],
                crl_name=ROOT_CRL,
                issued=lambda: known,
            )

    def _new_ocsp_responder(self) -> bytes:
        ca_key, ca_cert, others = self._issuing_ca()
        return _ocsp_responder_p12(
            organization=self.organization,
            ca_key=ca_key,
            chain=[ca_cert, *others],
            now=dt.datetime.now(dt.UTC).replace(microsecond=0),
            passphrase=self.passphrase,
        )

    def _issued_serials(self) -> frozenset[int]:
        """Serial numbers of the certificates the issuing CA is known to have issued."""
        data = _read_cached(self._issued_log())
        return frozenset(int(line.split()[0], 16) for line in data.decode().splitlines() if line)

    def _issued_names(self) -> dict[int, str]:
        """The certificates the issuing CA is known to have issued: serial -> common name."""
        out = {}
        for line in _read_cached(self._issued_log()).decode().splitlines():
            serial, _, name = line.partition(" ")
            if serial:
                out[int(serial, 16)] = name
        return out

    def _held_serials(self) -> frozenset[int]:
        """Serials of the PKI's own certificates (server, official, seal, TSA, QR, OCSP)."""
        held = {
            _open_p12_cached(self.directory / name, self.passphrase)[1].serial_number
            for name in (OFFICIAL_FILE, SEAL_FILE, TSA_FILE, QR_FILE, OCSP_FILE)
            if (self.directory / name).is_file()
        }
        server = self.tls_directory / TLS_SERVER_CERT_FILE
        if server.is_file():
            held.add(x509.load_pem_x509_certificate(server.read_bytes()).serial_number)
        return frozenset(held)

    def _record_issued(self, *certs: x509.Certificate) -> None:
        """Note certificates the issuing CA has just issued in ``crl/issued.txt``."""
        path = self._issued_log()
        with _ISSUED_LOCK, path.open("ab") as fh:  # O_APPEND: whole lines, even across processes
            fh.write(_issued_lines(certs))
            fh.flush()
            os.fsync(fh.fileno())

    def _issued_log(self) -> Path:
        """``crl/issued.txt``, made for a PKI generated without one from the certificates it
        holds (kiosk certificates issued before are not there: only their holders have them)."""
        return ensure_secret_file(self.directory / CRL_DIR / _ISSUED_FILE, self._held_certificates)

    def _held_certificates(self) -> bytes:
        held = [
            _open_p12(self.directory / name, self.passphrase)[1]
            for name in (OFFICIAL_FILE, SEAL_FILE, TSA_FILE, QR_FILE, OCSP_FILE)
            if (self.directory / name).is_file()
        ]
        server = self.tls_directory / TLS_SERVER_CERT_FILE
        if server.is_file():
            held.append(x509.load_pem_x509_certificate(server.read_bytes()))
        return _issued_lines(held)


def ensure_dev_pki(
    directory: Path,
    *,
    organization: str,
    passphrase: bytes,
    crl_base_url: str = DEFAULT_CRL_BASE_URL,
    crl_refresh: dt.timedelta = DEFAULT_CRL_REFRESH,
) -> DevPki:
    """Load the development PKI in ``directory``, generating it first if it is not there.

    Generation happens in a sibling temporary directory that is renamed into place, so a crash
    leaves either a complete PKI or none, and two processes racing on first start end up
    sharing one PKI. An existing PKI keeps the organization and the CRL URLs it was made for:
    ``organization`` and ``crl_base_url`` apply only when the PKI is generated.
    """
    directory = Path(directory)
    if not passphrase:
        raise ValueError("the PKI passphrase must not be empty")
    if not crl_base_url.startswith(("http://", "https://")):
        raise ValueError(f"crl_base_url must be an http(s) URL, not {crl_base_url!r}")
    if crl_refresh <= dt.timedelta(0) or crl_refresh >= _CRL_VALIDITY:
        raise ValueError(f"crl_refresh must be positive and shorter than {_CRL_VALIDITY}")
    if not _is_complete(directory):
        if directory.exists() and any(directory.iterdir()):
            missing = ", ".join(n for n in _ALL_FILES if not (directory / n).is_file())
            raise FileExistsError(
                f"{directory} holds an incomplete PKI (missing {missing}); "
                "move it away to generate a new one"
            )
        _generate_into(
            directory, organization=organization, passphrase=passphrase, crl_base_url=crl_base_url
        )
    official = load_pkcs12(directory / OFFICIAL_FILE, passphrase)
    return DevPki(
        directory=directory,
        organization=organization_of(official.certificate) or organization,
        passphrase=passphrase,
        crl_base_url=_crl_base_of(official.certificate),
        crl_refresh=crl_refresh,
    )


def load_pkcs12(path: Path, passphrase: bytes) -> KeyMaterial:
    """Read a PKCS#12 file into pyHanko's (asn1crypto) types."""
    key, cert, others = _open_p12(path, passphrase)
    key_der = key.private_bytes(
        serialization.Encoding.DER,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    return KeyMaterial(
        key=asn1_keys.PrivateKeyInfo.load(key_der),
        certificate=_to_asn1(cert),
        chain=tuple(_to_asn1(c) for c in others),
    )


def load_pem_certificate(path: Path) -> asn1_x509.Certificate:
    """Read one PEM certificate into an ``asn1crypto`` object."""
    return _to_asn1(x509.load_pem_x509_certificate(path.read_bytes()))


def organization_of(cert: asn1_x509.Certificate) -> str | None:
    """The organization (O=) named in a certificate's subject, if any."""
    value = cert.subject.native.get("organization_name")
    if isinstance(value, list):  # several O= attributes: take the first
        value = value[0] if value else None
    return value if isinstance(value, str) else None


def common_name_of(cert: x509.Certificate) -> str | None:
    """The common name (CN=) of a certificate's subject, if it has one."""
    names = cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
    value = names[0].value if names else None
    return value if isinstance(value, str) else None


# --- TLS ----------------------------------------------------------------------------------


def _new_tls_key() -> bytes:
    """A new ECDSA P-256 private key, PKCS#8 PEM unencrypted (as gRPC reads it)."""
    return ec.generate_private_key(ec.SECP256R1()).private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def _load_tls_key(path: Path) -> ec.EllipticCurvePrivateKey:
    key = serialization.load_pem_private_key(path.read_bytes(), password=None)
    if not isinstance(key, ec.EllipticCurvePrivateKey):
        raise ValueError(f"{path} holds no ECDSA private key")
    return key


def _usable_tls_certificate(
    path: Path, key: ec.EllipticCurvePrivateKey, ca_cert: x509.Certificate
) -> x509.Certificate | None:
    """The first certificate in PEM file ``path`` if it is for ``key``, was issued by
    ``ca_cert`` and stays valid for a while yet; None otherwise (or when there is none)."""
    try:
        cert = x509.load_pem_x509_certificate(path.read_bytes())
        cert.verify_directly_issued_by(ca_cert)
    except (OSError, ValueError, TypeError, InvalidSignature):
        return None
    if cert.public_key() != key.public_key():
        return None
    if cert.not_valid_after_utc - dt.datetime.now(dt.UTC) < _TLS_RENEW_BEFORE:
        return None
    return cert


def _alternative_names(names: Iterable[str]) -> list[x509.GeneralName]:
    """DNS and IP subject alternative names for ``names``, in order, once each; wildcard
    addresses (``0.0.0.0``, ``::``) and empty names are left out."""
    out: list[x509.GeneralName] = []
    for raw in names:
        name = raw.strip().strip("[]").lower()
        if not name:
            continue
        try:
            address = ipaddress.ip_address(name)
        except ValueError:
            general: x509.GeneralName = x509.DNSName(name)
        else:
            if address.is_unspecified:
                continue
            general = x509.IPAddress(address)
        if general not in out:
            out.append(general)
    return out


def _alternative_names_of(cert: x509.Certificate) -> list[x509.GeneralName]:
    try:
        return list(cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value)
    except x509.ExtensionNotFound:
        return []


def _pem(*certs: x509.Certificate) -> bytes:
    return b"".join(c.public_bytes(serialization.Encoding.PEM) for c in certs)


# --- generation ---------------------------------------------------------------------------


def _is_complete(directory: Path) -> bool:
    return all((directory / name).is_file() for name in _ALL_FILES)


def _generate_into(
    directory: Path, *, organization: str, passphrase: bytes, crl_base_url: str
) -> None:
    directory.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{directory.name}.", dir=directory.parent))
    try:
        _write_pki(tmp, organization=organization, passphrase=passphrase, crl_base_url=crl_base_url)
        _fsync_dir(tmp)
        try:
            # rename(2) replaces a missing or empty directory atomically, and fails when
            # another process got there first with a complete PKI.
            os.replace(tmp, directory)
        except OSError:
            if not _is_complete(directory):
                raise
        else:
            _fsync_dir(directory.parent)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)


def _write_pki(out: Path, *, organization: str, passphrase: bytes, crl_base_url: str) -> None:
    now = dt.datetime.now(dt.UTC).replace(microsecond=0)
    root_crl_url = _crl_url(crl_base_url, ROOT_CRL)
    issuing_crl_url = _crl_url(crl_base_url, ISSUING_CA_CRL)
    ocsp_url = _ocsp_url(crl_base_url)

    root_key = _new_key()
    root_name = _name(organization, "Saoy Dev Root CA")
    root_cert = _ca_cert(
        subject=root_name,
        issuer=root_name,
        public_key=root_key.public_key(),
        signing_key=root_key,
        issuer_public_key=root_key.public_key(),
        now=now,
        lifetime=_ROOT_LIFETIME,
        path_length=1,
        crl_url=None,
        ocsp_url=None,
    )

    ca_key = _new_key()
    ca_cert = _ca_cert(
        subject=_name(organization, "Saoy Dev Issuing CA"),
        issuer=root_name,
        public_key=ca_key.public_key(),
        signing_key=root_key,
        issuer_public_key=root_key.public_key(),
        now=now,
        lifetime=_ISSUING_LIFETIME,
        path_length=0,
        crl_url=root_crl_url,
        ocsp_url=ocsp_url,
    )
    # The root signs three times, the issuing CA, an ARL and an OCSP responder valid as long
    # as it, then is dropped.
    (out / CRL_DIR).mkdir()
    _write_file(
        out / CRL_DIR / f"{ROOT_CRL}.crl",
        _crl(root_cert, root_key, now=now, next_update=ca_cert.not_valid_after_utc, revoked={}),
        0o644,
    )
    _write_file(
        out / OCSP_ROOT_FILE,
        _ocsp_responder_p12(
            common_name="Saoy Dev Root OCSP Responder",
            organization=organization,
            ca_key=root_key,
            chain=[root_cert],
            now=now,
            lifetime=_ISSUING_LIFETIME,
            passphrase=passphrase,
        ),
    )
    del root_key
    _write_file(
        out / CRL_DIR / f"{ISSUING_CA_CRL}.crl",
        _crl(ca_cert, ca_key, now=now, next_update=None, revoked={}),
        0o644,
    )

    chain = [ca_cert, root_cert]
    _write_file(out / ISSUING_CA_FILE, _p12("issuing-ca", ca_key, ca_cert, [root_cert], passphrase))

    signing_usage = _key_usage("digital_signature", "content_commitment")  # + nonRepudiation
    ends: list[tuple[str, str, str, x509.KeyUsage, x509.ExtendedKeyUsage | None]] = [
        (OFFICIAL_FILE, "official", "Cán bộ chứng thực (dev)", signing_usage, None),
        (SEAL_FILE, "seal", organization, signing_usage, None),
        (
            TSA_FILE,
            "tsa",
            "Saoy Dev Time-Stamping Authority",
            _DIGITAL_SIGNATURE_ONLY,
            x509.ExtendedKeyUsage([ExtendedKeyUsageOID.TIME_STAMPING]),
        ),
    ]
    issued = []
    for filename, friendly, common_name, usage, extended in ends:
        key = _new_key()
        cert = _end_entity_cert(
            subject=_name(organization, common_name),
            public_key=key.public_key(),
            ca_cert=ca_cert,
            ca_key=ca_key,
            now=now,
            usage=usage,
            extended=extended,
            crl_url=issuing_crl_url,
            ocsp_url=ocsp_url,
        )
        issued.append(cert)
        _write_file(out / filename, _p12(friendly, key, cert, chain, passphrase))
    extra = {
        QR_FILE: _qr_p12(
            organization=organization,
            ca_key=ca_key,
            chain=chain,
            now=now,
            crl_url=issuing_crl_url,
            ocsp_url=ocsp_url,
            passphrase=passphrase,
        ),
        OCSP_FILE: _ocsp_responder_p12(
            organization=organization,
            ca_key=ca_key,
            chain=chain,
            now=now,
            passphrase=passphrase,
        ),
    }
    for filename, data in extra.items():
        _write_file(out / filename, data)
        issued.append(_open_p12(out / filename, passphrase)[1])
    _write_file(out / CRL_DIR / _ISSUED_FILE, _issued_lines(issued))

    _write_file(out / ROOT_FILE, root_cert.public_bytes(serialization.Encoding.PEM), 0o644)


def _qr_p12(
    *,
    organization: str,
    ca_key: rsa.RSAPrivateKey,
    chain: list[x509.Certificate],
    now: dt.datetime,
    crl_url: str | None,
    ocsp_url: str | None,
    passphrase: bytes,
) -> bytes:
    """A new Ed25519 QR key and its certificate from the issuing CA (``chain[0]``), as PKCS#12."""
    key = ed25519.Ed25519PrivateKey.generate()
    cert = _end_entity_cert(
        subject=_name(organization, "Saoy Dev QR Payload Signer"),
        public_key=key.public_key(),
        ca_cert=chain[0],
        ca_key=ca_key,
        now=now,
        usage=_DIGITAL_SIGNATURE_ONLY,
        extended=None,
        crl_url=crl_url,
        ocsp_url=ocsp_url,
    )
    return _p12("qr", key, cert, chain, passphrase)


def _ocsp_responder_p12(
    *,
    organization: str,
    ca_key: rsa.RSAPrivateKey,
    chain: list[x509.Certificate],
    now: dt.datetime,
    passphrase: bytes,
    common_name: str = "Saoy Dev OCSP Responder",
    lifetime: dt.timedelta = _END_ENTITY_LIFETIME,
) -> bytes:
    """A new RSA key and its OCSP signing certificate from ``chain[0]``, as PKCS#12. The
    certificate names no CRL or responder of its own: it carries id-pkix-ocsp-nocheck."""
    key = _new_key()
    cert = _end_entity_cert(
        subject=_name(organization, common_name),
        public_key=key.public_key(),
        ca_cert=chain[0],
        ca_key=ca_key,
        now=now,
        usage=_DIGITAL_SIGNATURE_ONLY,
        extended=x509.ExtendedKeyUsage([ExtendedKeyUsageOID.OCSP_SIGNING]),
        crl_url=None,
        ocsp_url=None,
        lifetime=lifetime,
    )
    return _p12("ocsp", key, cert, chain, passphrase)


_KEY_USAGES = (
    "digital_signature",
    "content_commitment",
    "key_encipherment",
    "data_encipherment",
    "key_agreement",
    "key_cert_sign",
    "crl_sign",
    "encipher_only",
    "decipher_only",
)


def _key_usage(*allowed: str) -> x509.KeyUsage:
    """A KeyUsage extension allowing exactly ``allowed`` (named as ``x509.KeyUsage`` names its
    arguments)."""
    unknown = set(allowed) - set(_KEY_USAGES)
    if unknown:
        raise ValueError(f"unknown key usage {', '.join(sorted(unknown))}")
    return x509.KeyUsage(**{name: name in allowed for name in _KEY_USAGES})


_DIGITAL_SIGNATURE_ONLY = _key_usage("digital_signature")


def _new_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=_KEY_SIZE)


def _name(organization: str, common_name: str) -> x509.Name:
    return x509.Name(
        [
            x509.NameAttribute(NameOID.COUNTRY_NAME, "VN"),
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, organization),
            x509.NameAttribute(NameOID.COMMON_NAME, common_name),
        ]
    )


def _ca_cert(
    *,
    subject: x509.Name,
    issuer: x509.Name,
    public_key: rsa.RSAPublicKey,
    signing_key: rsa.RSAPrivateKey,
    issuer_public_key: rsa.RSAPublicKey,
    now: dt.datetime,
    lifetime: dt.timedelta,
    path_length: int,
    crl_url: str | None,
    ocsp_url: str | None,
) -> x509.Certificate:
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer)
        .public_key(public_key)
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - _BACKDATE)
        .not_valid_after(now + lifetime)
        .add_extension(x509.BasicConstraints(ca=True, path_length=path_length), critical=True)
        .add_extension(_key_usage("key_cert_sign", "crl_sign"), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(public_key), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(issuer_public_key),
            critical=False,
        )
    )
    return _with_revocation_pointers(builder, crl_url, ocsp_url).sign(signing_key, hashes.SHA256())


def _end_entity_cert(
    *,
    subject: x509.Name,
    public_key: rsa.RSAPublicKey | ed25519.Ed25519PublicKey | ec.EllipticCurvePublicKey,
    ca_cert: x509.Certificate,
    ca_key: rsa.RSAPrivateKey,
    now: dt.datetime,
    usage: x509.KeyUsage,
    extended: x509.ExtendedKeyUsage | None,
    crl_url: str | None,
    ocsp_url: str | None,
    alternative_names: list[x509.GeneralName] | None = None,
    lifetime: dt.timedelta = _END_ENTITY_LIFETIME,
) -> x509.Certificate:
    not_after = min(now + lifetime, ca_cert.not_valid_after_utc)
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(ca_cert.subject)
        .public_key(public_key)
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - _BACKDATE)
        .not_valid_after(not_after)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(usage, critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(public_key), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()),
            critical=False,
        )
    )
    builder = _with_revocation_pointers(builder, crl_url, ocsp_url)
    if alternative_names:
        builder = builder.add_extension(
            x509.SubjectAlternativeName(alternative_names), critical=False
        )
    if extended is not None:
        # RFC 3161 §2.3: a TSA certificate carries exactly timeStamping, marked critical; the
        # TLS ones (serverAuth, clientAuth) carry theirs non-critical, as TLS certificates do.
        timestamping = list(extended) == [ExtendedKeyUsageOID.TIME_STAMPING]
        builder = builder.add_extension(extended, critical=timestamping)
        if list(extended) == [ExtendedKeyUsageOID.OCSP_SIGNING]:
            # RFC 6960 §4.2.2.2.1: clients need not check a responder's own status.
            builder = builder.add_extension(x509.OCSPNoCheck(), critical=False)
    return builder.sign(ca_key, hashes.SHA256())


def _p12(
    friendly: str,
    key: rsa.RSAPrivateKey | ed25519.Ed25519PrivateKey,
    cert: x509.Certificate,
    chain: list[x509.Certificate],
    passphrase: bytes,
) -> bytes:
    return pkcs12.serialize_key_and_certificates(
        friendly.encode(),
        key,
        cert,
        chain,
        serialization.BestAvailableEncryption(passphrase),
    )


def _distribution_point(url: str) -> x509.CRLDistributionPoints:
    return x509.CRLDistributionPoints(
        [
            x509.DistributionPoint(
                full_name=[x509.UniformResourceIdentifier(url)],
                relative_name=None,
                reasons=None,
                crl_issuer=None,
            )
        ]
    )


def _with_revocation_pointers(
    builder: x509.CertificateBuilder, crl_url: str | None, ocsp_url: str | None
) -> x509.CertificateBuilder:
    """``builder`` with a CRL distribution point and an OCSP responder (AIA), where given."""
    if crl_url is not None:
        builder = builder.add_extension(_distribution_point(crl_url), critical=False)
    if ocsp_url is not None:
        access = x509.AccessDescription(
            AuthorityInformationAccessOID.OCSP, x509.UniformResourceIdentifier(ocsp_url)
        )
        builder = builder.add_extension(x509.AuthorityInformationAccess([access]), critical=False)
    return builder


def _crl_url(base: str, name: str) -> str:
    return f"{base.rstrip('/')}/{name}.crl"


def _ocsp_url(base: str) -> str:
    return f"{base.rstrip('/')}/{OCSP_PATH}"


def _ocsp_nonce(request: ocsp.OCSPRequest) -> bytes | None:
    try:
        return request.extensions.get_extension_for_class(x509.OCSPNonce).value.nonce
    except x509.ExtensionNotFound:
        return None


def _ocsp_failure(status: ocsp.OCSPResponseStatus) -> bytes:
    """An unsigned OCSP response carrying only an error status."""
    return ocsp.OCSPResponseBuilder.build_unsuccessful(status).public_bytes(
        serialization.Encoding.DER
    )


def _issuer_hashes(
    issuer: x509.Certificate, algorithm: hashes.HashAlgorithm
) -> tuple[bytes, bytes]:
    """The issuerNameHash and issuerKeyHash (RFC 6960 §4.1.1) of ``issuer``'s certificates."""
    parsed = _to_asn1(issuer)
    out = []
    for data in (parsed.subject.dump(), bytes(parsed.public_key["public_key"])):
        digest = hashes.Hash(algorithm)
        digest.update(data)
        out.append(digest.finalize())
    return out[0], out[1]


def _issued_lines(certs: Iterable[x509.Certificate]) -> bytes:
    """Lines of ``crl/issued.txt``: serial number (hex) and common name."""
    return "".join(f"{c.serial_number:x} {common_name_of(c) or '-'}\n" for c in certs).encode()


def _crl_base_of(cert: asn1_x509.Certificate) -> str | None:
    """The base URL of the CRL a certificate names (None when it names none)."""
    parsed = x509.load_der_x509_certificate(cert.dump())
    try:
        points = parsed.extensions.get_extension_for_class(x509.CRLDistributionPoints)
    except x509.ExtensionNotFound:
        return None
    for point in points.value:
        for name in point.full_name or ():
            url = str(name.value)
            if url.endswith(f"/{ISSUING_CA_CRL}.crl"):
                return url[: -len(f"{ISSUING_CA_CRL}.crl")]
    return None


def _crl(
    issuer: x509.Certificate,
    key: rsa.RSAPrivateKey,
    *,
    now: dt.datetime,
    next_update: dt.datetime | None,
    revoked: dict[str, dict[str, str]],
) -> bytes:
    """A DER CRL from ``issuer``; thisUpdate is back-dated like the certificates."""
    this_update = now - _BACKDATE
    builder = (
        x509.CertificateRevocationListBuilder()
        .issuer_name(issuer.subject)
        .last_update(this_update)
        .next_update(next_update if next_update is not None else now + _CRL_VALIDITY)
        # Seconds since the epoch: increases with every reissue without keeping a counter.
        .add_extension(x509.CRLNumber(int(now.timestamp())), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(key.public_key()), critical=False
        )
    )
    for serial, entry in sorted(revoked.items()):
        builder = builder.add_revoked_certificate(
            x509.RevokedCertificateBuilder()
            .serial_number(int(serial, 16))
            .revocation_date(dt.datetime.fromisoformat(entry["at"]))
            .add_extension(x509.CRLReason(x509.ReasonFlags[entry["reason"]]), critical=False)
            .build()
        )
    return builder.sign(key, hashes.SHA256()).public_bytes(serialization.Encoding.DER)


REVOCATION_REASONS = tuple(
    flag.name for flag in x509.ReasonFlags if flag is not x509.ReasonFlags.remove_from_crl
)
"""Reasons a certificate may be revoked for (RFC 5280), as ``cryptography`` names them."""


def _check_reason(reason: str) -> None:
    if reason not in REVOCATION_REASONS:
        raise ValueError(
            f"unknown revocation reason {reason!r}; use one of {', '.join(REVOCATION_REASONS)}"
        )


def _parse_serial(text: str) -> int | None:
    """A certificate serial number written in hex (``0x`` prefix and colons allowed), or None
    when ``text`` is not one."""
    digits = text.lower().removeprefix("0x").replace(":", "")
    if not digits or not re.fullmatch(r"[0-9a-f]+", digits):
        return None
    return int(digits, 16)


def _check_crl_name(name: str) -> None:
    if name not in CRL_NAMES:
        raise NotFound(
            f"no CRL named {name!r}; the dev PKI publishes {', '.join(CRL_NAMES)}", field="name"
        )


_CRL_LOCK = threading.Lock()
_TLS_LOCK = threading.Lock()
_QR_LOCK = threading.Lock()
_ISSUED_LOCK = threading.Lock()
_P12_CACHE: dict[
    tuple[Path, bytes],
    tuple[tuple[int, int], tuple[PrivateKeyTypes, x509.Certificate, tuple[x509.Certificate, ...]]],
] = {}
_FILE_CACHE: dict[Path, tuple[tuple[int, int], bytes, asn1_crl.CertificateList | None]] = {}


def _is_stale(path: Path, refresh: dt.timedelta) -> bool:
    try:
        mtime = path.stat().st_mtime
    except FileNotFoundError:
        return True
    return dt.datetime.now(dt.UTC).timestamp() - mtime >= refresh.total_seconds()


def _stamp(path: Path) -> tuple[int, int]:
    st = path.stat()
    return st.st_mtime_ns, st.st_ino


def _read_cached(path: Path) -> bytes:
    stamp = _stamp(path)
    hit = _FILE_CACHE.get(path)
    if hit is not None and hit[0] == stamp:
        return hit[1]
    data = path.read_bytes()
    _FILE_CACHE[path] = (stamp, data, None)
    return data


def _parse_crl_cached(path: Path) -> asn1_crl.CertificateList:
    data = _read_cached(path)
    stamp, _, parsed = _FILE_CACHE[path]
    if parsed is None:
        parsed = asn1_crl.CertificateList.load(data)
        _FILE_CACHE[path] = (stamp, data, parsed)
    return parsed


def _read_revoked(directory: Path) -> dict[str, dict[str, str]]:
    path = directory / CRL_DIR / _REVOKED_FILE
    if not path.is_file():
        return {}
    data = json.loads(path.read_text())
    return data if isinstance(data, dict) else {}


def _fit_utf8(text: str, limit: int) -> str:
    """``text`` cut at a character boundary to at most ``limit`` bytes of UTF-8."""
    return text.encode()[:limit].decode(errors="ignore")


def _atomic_write(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` through a temporary file renamed into place."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _write_file(path: Path, data: bytes, mode: int = 0o600) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
    with os.fdopen(fd, "wb") as fh:
        fh.write(data)
        fh.flush()
        os.fsync(fh.fileno())


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _to_asn1(cert: x509.Certificate) -> asn1_x509.Certificate:
    return asn1_x509.Certificate.load(cert.public_bytes(serialization.Encoding.DER))


def _open_p12(
    path: Path, passphrase: bytes
) -> tuple[PrivateKeyTypes, x509.Certificate, tuple[x509.Certificate, ...]]:
    """The key, certificate and chain in a PKCS#12 file."""
    try:
        key, cert, others = pkcs12.load_key_and_certificates(path.read_bytes(), passphrase)
    except ValueError as exc:
        raise ValueError(f"cannot open {path}: wrong passphrase or damaged file") from exc
    if key is None or cert is None:
        raise ValueError(f"{path} holds no key and certificate")
    return key, cert, tuple(others)


def _open_p12_cached(
    path: Path, passphrase: bytes
) -> tuple[PrivateKeyTypes, x509.Certificate, tuple[x509.Certificate, ...]]:
    """:func:`_open_p12`, kept until the file changes."""
    stamp = _stamp(path)
    hit = _P12_CACHE.get((path, passphrase))
    if hit is not None and hit[0] == stamp:
        return hit[1]
    material = _open_p12(path, passphrase)
    _P12_CACHE[(path, passphrase)] = (stamp, material)
    return material


def _rsa(key: PrivateKeyTypes, path: Path) -> rsa.RSAPrivateKey:
    if not isinstance(key, rsa.RSAPrivateKey):  # pragma: no cover - generated as RSA
        raise ValueError(f"{path} holds no RSA key")
    return key
