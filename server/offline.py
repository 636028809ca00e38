"""``saoy verify --offline``: check a copy PDF, or a photo of its QR, without the server.

Contributed to the ``saoy`` command through the ``saoy.commands`` entry point group (name
``verify-offline``): the command line in clients/ parses the arguments and prints the result,
as it prints the result of an online ``saoy verify``; this module brings the domain
(``saoy.core.trust.offline``) and answers with the same generated message,
``saoy.v1.VerificationResult``. So the command line depends on the generated stubs only, and
the server on no client.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from asn1crypto import crl as asn1_crl
from asn1crypto import pem as asn1_pem
from cryptography import x509

from saoy.core.errors import SaoyError
from saoy.core.trust.offline import load_qr_certificates, verify_offline
from saoy.server.verification import report_to_proto
from saoy.v1 import verification_pb2 as vpb


def verify_offline_command(
    target: Path, *, cert: Path, trust: Sequence[Path] = (), crls: Sequence[Path] = ()
) -> vpb.VerificationResult:
    """The result of checking the copy PDF or QR image at ``target`` with the issuer's QR
    certificate (``cert``, PEM with its issuing CA), optional trusted roots and issuer CRLs.
    Unreadable input raises :class:`OSError` or :class:`ValueError` whose text is meant for
    the person at the terminal (a domain error is raised as a ``ValueError`` from it)."""
    try:
        data = target.read_bytes()
        qr_cert, chain = load_qr_certificates(cert.read_bytes())
        roots = [c for path in trust for c in _pem_certificates(path)]
        report = verify_offline(
            data,
            qr_cert=qr_cert,
            qr_chain=chain,
            trust_roots=roots,
            crls=[_crl(path) for path in crls],
        )
    except SaoyError as error:
        raise ValueError(error.message) from error
    return report_to_proto(report)


def _pem_certificates(path: Path) -> list[x509.Certificate]:
    try:
        return x509.load_pem_x509_certificates(path.read_bytes())
    except ValueError as exc:
        raise ValueError(f"{path} holds no PEM certificate") from exc


def _crl(path: Path) -> asn1_crl.CertificateList:
    data = path.read_bytes()
    if asn1_pem.detect(data):
        _, _, data = asn1_pem.unarmor(data)
    try:
        crl = asn1_crl.CertificateList.load(data)
        crl.native  # noqa: B018 - parse it all now, so a damaged file fails here
    except ValueError as exc:
        raise ValueError(f"{path} is not a CRL") from exc
    return crl
