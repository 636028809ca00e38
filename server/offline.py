"""``saoy verify --offline``: check a copy PDF, or a photo of its QR, without the server.

Contributed to the ``saoy`` command through the ``saoy.commands`` entry point group (name
``verify-offline``), like ``saoy serve``: the command line in clients/ depends on the generated
stubs only, and this module brings the domain (``saoy.core.offline``) to it. The result is
printed exactly as ``saoy verify`` prints an online one.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path

from asn1crypto import crl as asn1_crl
from asn1crypto import pem as asn1_pem
from cryptography import x509

from saoy.clients.cli import EXIT_ERROR, _print_verification
from saoy.core.errors import SaoyError
from saoy.core.offline import load_qr_certificates, verify_offline
from saoy.server.verification import report_to_proto


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="saoy verify --offline",
        description=(
            "Check a copy PDF, or a photo or scan of its QR code, with the issuer's QR "
            "certificate only: no server, no network. Revocation cannot be known offline."
        ),
    )
    parser.add_argument("target", help="a copy PDF, or an image (PNG, JPEG) of its QR code")
    parser.add_argument(
        "--cert",
        required=True,
        help="the issuer's QR certificate in PEM, followed by its issuing CA (the server's "
        "/pki/qr.pem)",
    )
    parser.add_argument(
        "--trust",
        action="append",
        default=[],
        help="a trusted root certificate in PEM (the server's /pki/root.pem): also checks the "
        "QR certificate's chain and the PDF's signatures; may be repeated",
    )
    parser.add_argument(
        "--crl",
        action="append",
        default=[],
        help="an issuer CRL, DER or PEM (the server's /pki/issuing-ca.crl); may be repeated",
    )
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    return parser


def verify_offline_command(argv: Sequence[str]) -> int:
    """Run ``saoy verify --offline`` with ``argv`` (the arguments after it); the exit status
    is that of ``saoy verify``: 0 VALID, 1 another verdict, 2 an error."""
    args = build_parser().parse_args(list(argv))
    try:
        data = Path(args.target).read_bytes()
        qr_cert, chain = load_qr_certificates(Path(args.cert).read_bytes())
        roots = [c for path in args.trust for c in _pem_certificates(Path(path))]
        crls = [_crl(Path(path)) for path in args.crl]
        report = verify_offline(data, qr_cert=qr_cert, qr_chain=chain, trust_roots=roots, crls=crls)
    except (OSError, ValueError, SaoyError) as error:
        message = error.message if isinstance(error, SaoyError) else str(error)
        if args.json:
            print(json.dumps({"verdict": None, "error": type(error).__name__, "reason": message}))
        else:
            print(f"error: {message}", file=sys.stderr)
        return EXIT_ERROR
    return _print_verification(report_to_proto(report), args.json)


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
