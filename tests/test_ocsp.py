"""The dev PKI's OCSP responder over HTTP (RFC 6960): POST and GET, good, revoked and unknown
certificates, nonces, malformed and oversized requests; checked with ``cryptography``,
``openssl ocsp`` and pyHanko's certificate validator."""

from __future__ import annotations

import asyncio
import base64
import datetime as dt
import os
import shutil
import stat
import subprocess
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote

import pytest
from asn1crypto import x509 as asn1_x509
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.x509 import ocsp
from cryptography.x509.oid import AuthorityInformationAccessOID, ExtendedKeyUsageOID
from pyhanko_certvalidator import CertificateValidator, ValidationContext
from pyhanko_certvalidator.errors import RevokedError

from saoy.core.trust.pki import DevPki, ensure_dev_pki
from saoy.server.app import open_dev_pki
from saoy.server.http import MAX_OCSP_REQUEST_BYTES

from .conftest import RunningServer, start_server

DER = serialization.Encoding.DER
Chain = tuple[x509.Certificate, x509.Certificate, x509.Certificate]  # certificate, CA, root


@pytest.fixture(scope="module")
def running(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    """A server of its own: these tests revoke certificates of its PKI."""
    server = start_server(tmp_path_factory.mktemp("saoy-ocsp"))
    yield server
    server.stop()


@pytest.fixture(scope="module")
def pki(running: RunningServer) -> DevPki:
    return open_dev_pki(running.server.settings)


@pytest.fixture(scope="module")
def official(pki: DevPki) -> Chain:
    material = pki.load(pki.official_path)
    return _cryptography(material.certificate, *material.chain)


def kiosk(pki: DevPki, out: Path, kiosk_id: str) -> Chain:
    """A kiosk certificate fresh from the PKI, with the issuing CA and the root."""
    pem = pki.issue_kiosk_certificate(kiosk_id, out).certificate.read_bytes()
    cert, ca = x509.load_pem_x509_certificates(pem)
    return cert, ca, x509.load_pem_x509_certificate(pki.root_path.read_bytes())


def _cryptography(*certs: asn1_x509.Certificate) -> Chain:
    cert, ca, root = (x509.load_der_x509_certificate(c.dump()) for c in certs)
    return cert, ca, root


def request_for(
    cert: x509.Certificate,
    issuer: x509.Certificate,
    *,
    nonce: bytes | None = None,
    algorithm: hashes.HashAlgorithm | None = None,
) -> bytes:
    builder = ocsp.OCSPRequestBuilder().add_certificate(cert, issuer, algorithm or hashes.SHA1())
    if nonce is not None:
        builder = builder.add_extension(x509.OCSPNonce(nonce), critical=False)
    return builder.build().public_bytes(DER)


def post(server: RunningServer, body: bytes) -> ocsp.OCSPResponse:
    request = urllib.request.Request(
        f"{server.http}/pki/ocsp",
        data=body,
        headers={"Content-Type": "application/ocsp-request"},
    )
    with urllib.request.urlopen(request) as response:
        assert response.headers["Content-Type"] == "application/ocsp-response"
        return ocsp.load_der_ocsp_response(response.read())


def check_signed(response: ocsp.OCSPResponse, issuer: x509.Certificate) -> None:
    """The response is signed by the responder certificate it carries, which ``issuer``
    issued for OCSP signing."""
    assert response.response_status == ocsp.OCSPResponseStatus.SUCCESSFUL
    (responder,) = response.certificates
    responder.verify_directly_issued_by(issuer)
    assert response.responder_key_hash == (
        x509.SubjectKeyIdentifier.from_public_key(responder.public_key()).digest
    )
    eku = responder.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert list(eku) == [ExtendedKeyUsageOID.OCSP_SIGNING]
    responder.extensions.get_extension_for_class(x509.OCSPNoCheck)
    key = responder.public_key()
    assert isinstance(key, rsa.RSAPublicKey)
    assert response.signature_hash_algorithm is not None
    key.verify(
        response.signature,
        response.tbs_response_bytes,
        padding.PKCS1v15(),
        response.signature_hash_algorithm,
    )
    now = dt.datetime.now(dt.UTC)
    assert response.this_update_utc <= now + dt.timedelta(seconds=5)
    assert response.next_update_utc is not None and response.next_update_utc > now


def test_certificates_name_the_responder(official: Chain, running: RunningServer) -> None:
    cert, ca, _ = official
    for issued in (cert, ca):
        aia = issued.extensions.get_extension_for_class(x509.AuthorityInformationAccess).value
        (ocsp_url,) = [
            d.access_location.value
            for d in aia
            if d.access_method == AuthorityInformationAccessOID.OCSP
        ]
        assert ocsp_url.endswith("/pki/ocsp")


def test_official_is_good_with_nonce_echoed(running: RunningServer, official: Chain) -> None:
    cert, ca, _ = official
    nonce = os.urandom(16)
    response = post(running, request_for(cert, ca, nonce=nonce))
    check_signed(response, ca)
    assert response.certificate_status == ocsp.OCSPCertStatus.GOOD
    assert response.serial_number == cert.serial_number
    assert response.extensions.get_extension_for_class(x509.OCSPNonce).value.nonce == nonce


def test_sha256_cert_id(running: RunningServer, official: Chain) -> None:
    cert, ca, _ = official
    response = post(running, request_for(cert, ca, algorithm=hashes.SHA256()))
    check_signed(response, ca)
    assert response.certificate_status == ocsp.OCSPCertStatus.GOOD
    assert isinstance(response.hash_algorithm, hashes.SHA256)


def test_issuing_ca_answered_by_the_roots_responder(
    running: RunningServer, official: Chain
) -> None:
    _, ca, root = official
    response = post(running, request_for(ca, root))
    check_signed(response, root)
    assert response.certificate_status == ocsp.OCSPCertStatus.GOOD


def test_revoked_kiosk_certificate(running: RunningServer, pki: DevPki, tmp_path: Path) -> None:
    cert, ca, _ = kiosk(pki, tmp_path, "kiosk-ocsp")
    before = post(running, request_for(cert, ca))
    assert before.certificate_status == ocsp.OCSPCertStatus.GOOD
    pki.revoke(_asn1(cert), "superseded")
    after = post(running, request_for(cert, ca, nonce=b"after-revocation"))
    check_signed(after, ca)
    assert after.certificate_status == ocsp.OCSPCertStatus.REVOKED
    assert after.revocation_reason == x509.ReasonFlags.superseded
    crl = x509.load_der_x509_crl(pki.crl_bytes("issuing-ca"))
    entry = crl.get_revoked_certificate_by_serial_number(cert.serial_number)
    assert entry is not None and after.revocation_time_utc == entry.revocation_date_utc
    assert abs(after.revocation_time_utc - dt.datetime.now(dt.UTC)) < dt.timedelta(minutes=5)


def _asn1(cert: x509.Certificate) -> asn1_x509.Certificate:
    return asn1_x509.Certificate.load(cert.public_bytes(DER))


def test_unknown_serial(running: RunningServer, official: Chain) -> None:
    cert, ca, _ = official
    body = (
        ocsp.OCSPRequestBuilder()
        .add_certificate_by_hash(
            *_issuer_hashes_of(cert, ca), x509.random_serial_number(), hashes.SHA1()
        )
        .build()
        .public_bytes(DER)
    )
    response = post(running, body)
    check_signed(response, ca)
    assert response.certificate_status == ocsp.OCSPCertStatus.UNKNOWN


def _issuer_hashes_of(cert: x509.Certificate, issuer: x509.Certificate) -> tuple[bytes, bytes]:
    parsed = ocsp.load_der_ocsp_request(request_for(cert, issuer))
    return parsed.issuer_name_hash, parsed.issuer_key_hash


def test_another_ca_is_unauthorized(running: RunningServer, official: Chain) -> None:
    cert, _, _ = official
    # Asking about the official's certificate as if it had issued itself.
    response = post(running, request_for(cert, cert))
    assert response.response_status == ocsp.OCSPResponseStatus.UNAUTHORIZED


@pytest.mark.parametrize("body", [b"", b"not an OCSP request", b"\x30\x03\x02\x01\x00"])
def test_malformed_request(running: RunningServer, body: bytes) -> None:
    assert post(running, body).response_status == ocsp.OCSPResponseStatus.MALFORMED_REQUEST


def test_oversized_request(running: RunningServer) -> None:
    with pytest.raises(urllib.error.HTTPError) as raised:
        post(running, b"\x30" * (MAX_OCSP_REQUEST_BYTES + 1))
    assert raised.value.code == 413
    assert str(MAX_OCSP_REQUEST_BYTES) in raised.value.read().decode()


def test_get_form(running: RunningServer, official: Chain) -> None:
    cert, ca, _ = official
    nonce = b"\xff" * 20  # base64 with + and /, sent URL-encoded as RFC 6960 appendix A says
    encoded = quote(base64.b64encode(request_for(cert, ca, nonce=nonce)).decode(), safe="")
    with urllib.request.urlopen(f"{running.http}/pki/ocsp/{encoded}") as reply:
        assert reply.headers["Content-Type"] == "application/ocsp-response"
        response = ocsp.load_der_ocsp_response(reply.read())
    check_signed(response, ca)
    assert response.certificate_status == ocsp.OCSPCertStatus.GOOD
    assert response.extensions.get_extension_for_class(x509.OCSPNonce).value.nonce == nonce
    with urllib.request.urlopen(f"{running.http}/pki/ocsp/not%20base64") as reply:
        malformed = ocsp.load_der_ocsp_response(reply.read())
    assert malformed.response_status == ocsp.OCSPResponseStatus.MALFORMED_REQUEST


@pytest.mark.skipif(shutil.which("openssl") is None, reason="needs the openssl command")
def test_openssl_client(
    running: RunningServer, pki: DevPki, official: Chain, tmp_path: Path
) -> None:
    cert, ca, root = official
    revoked, _, _ = kiosk(pki, tmp_path / "kiosk", "kiosk-openssl")
    pki.revoke(_asn1(revoked), "key_compromise")
    files = {}
    for name, item in {"cert": cert, "ca": ca, "root": root, "revoked": revoked}.items():
        files[name] = tmp_path / f"{name}.pem"
        files[name].write_bytes(item.public_bytes(serialization.Encoding.PEM))
    command = [
        "openssl", "ocsp", "-url", f"{running.http}/pki/ocsp",
        "-issuer", str(files["ca"]), "-CAfile", str(files["root"]),
        "-cert", str(files["cert"]), "-cert", str(files["revoked"]),
    ]  # fmt: skip
    good = subprocess.run(command[:-2], capture_output=True, text=True, timeout=60, check=False)
    assert good.returncode == 0, good.stderr
    assert "Response verify OK" in good.stderr + good.stdout
    assert f"{files['cert']}: good" in good.stdout
    both = subprocess.run(command, capture_output=True, text=True, timeout=60, check=False)
    # Two certificates in one request: the responder answers one per request.
    assert "malformedrequest" in (both.stdout + both.stderr).lower()
    bad = subprocess.run(
        [*command[:-4], "-cert", str(files["revoked"]), "-resp_text"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert bad.returncode == 0, bad.stderr
    assert f"{files['revoked']}: revoked" in bad.stdout
    assert "Reason: keyCompromise" in bad.stdout
    assert "Response verify OK" in bad.stderr + bad.stdout


def test_pyhanko_validates_with_ocsp_only(
    running: RunningServer, pki: DevPki, official: Chain, tmp_path: Path
) -> None:
    """pyHanko's validator, given no CRL, accepts the official's chain on the responses alone
    and refuses a revoked certificate."""
    cert, ca, root = official
    revoked, _, _ = kiosk(pki, tmp_path, "kiosk-pyhanko")
    pki.revoke(_asn1(revoked), "key_compromise")
    responses = [
        post(running, request_for(c, issuer)).public_bytes(DER)
        for c, issuer in ((cert, ca), (ca, root), (revoked, ca))
    ]

    def validator(end_entity: x509.Certificate) -> CertificateValidator:
        context = ValidationContext(
            trust_roots=[_asn1(root)],
            ocsps=responses,
            allow_fetching=False,
            revocation_mode="require",
        )
        return CertificateValidator(
            _asn1(end_entity), intermediate_certs=[_asn1(ca)], validation_context=context
        )

    asyncio.run(validator(cert).async_validate_usage(set()))
    with pytest.raises(RevokedError):
        asyncio.run(validator(revoked).async_validate_usage(set()))


def test_pki_made_without_responders(tmp_path: Path) -> None:
    """A PKI generated before the responders existed gets the issuing CA's on first use
    (mode 0600), knows the certificates it holds, and answers nothing for the root."""
    pki = ensure_dev_pki(tmp_path / "pki", organization="Before OCSP", passphrase=b"old")
    for name in ("ocsp.p12", "ocsp-root.p12", "crl/issued.txt"):
        (pki.directory / name).unlink()
    material = pki.load(pki.official_path)
    cert, ca, root = _cryptography(material.certificate, *material.chain)
    response = ocsp.load_der_ocsp_response(pki.ocsp_response(request_for(cert, ca)))
    check_signed(response, ca)
    assert response.certificate_status == ocsp.OCSPCertStatus.GOOD
    assert stat.S_IMODE((pki.directory / "ocsp.p12").stat().st_mode) == 0o600
    issued, _, _ = kiosk(pki, tmp_path / "kiosk", "kiosk-later")
    later = ocsp.load_der_ocsp_response(pki.ocsp_response(request_for(issued, ca)))
    assert later.certificate_status == ocsp.OCSPCertStatus.GOOD
    about_ca = ocsp.load_der_ocsp_response(pki.ocsp_response(request_for(ca, root)))
    assert about_ca.response_status == ocsp.OCSPResponseStatus.UNAUTHORIZED
