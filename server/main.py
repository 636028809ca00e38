"""``saoy serve``: logging, settings, and the server until SIGTERM; and ``saoy kiosk-cert``,
which issues a kiosk its mutual-TLS certificate from the same dev PKI."""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
from collections.abc import Sequence
from pathlib import Path

from saoy.core.errors import SaoyError
from saoy.server.app import open_dev_pki, serve
from saoy.server.settings import Settings, parse_serve_args


def serve_command(argv: Sequence[str]) -> int:
    try:
        settings = parse_serve_args(argv)
    except ValueError as error:
        print(f"error: {error}")
        return 2
    logging.basicConfig(
        level=settings.log_level.upper(),
        format="%(asctime)s %(levelname)s %(name)s %(message)s",
    )
    asyncio.run(serve(settings))
    return 0


def kiosk_cert_command(argv: Sequence[str]) -> int:
    """``saoy kiosk-cert KIOSK_ID --out DIR``: write kiosk.pem, kiosk.key and ca.pem for a
    kiosk talking to a server run with ``--tls mutual`` on the same data dir."""
    parser = argparse.ArgumentParser(
        prog="saoy kiosk-cert",
        description="Issue a kiosk's TLS client certificate (CN = the kiosk id) from the dev PKI"
        " under the data dir, generating the PKI first if it is not there. Writes kiosk.pem,"
        " kiosk.key (made once, mode 0600) and ca.pem into --out; run again to renew.",
    )
    parser.add_argument("kiosk_id", help="the kiosk id it will send (1-64 of A-Z a-z 0-9 _ . -)")
    parser.add_argument("--out", default=".", help="folder for the files (default: .)")
    for name in ("data_dir", "pki_passphrase", "organization"):
        parser.add_argument(
            "--" + name.replace("_", "-"),
            dest=name,
            default=None,
            help=f"as for saoy serve (env SAOY_{name.upper()})",
        )
    args = parser.parse_args(argv)
    try:
        settings = Settings.load(
            {k: v for k, v in vars(args).items() if k not in ("kiosk_id", "out")}
        )
        files = open_dev_pki(settings).issue_kiosk_certificate(args.kiosk_id, Path(args.out))
    except (ValueError, SaoyError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    print(
        f"{'issued' if files.issued else 'kept'} the certificate of kiosk {args.kiosk_id}:"
        f"\n  {files.certificate}\n  {files.key}\n  {files.ca}"
        f"\nuse: saoy certify --kiosk {args.kiosk_id} --tls-ca {files.ca}"
        f" --tls-cert {files.certificate} --tls-key {files.key} ..."
    )
    return 0
