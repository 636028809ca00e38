"""``saoy serve``: logging, settings, and the server until SIGTERM; ``saoy worker``, which
takes dossiers off the work queue; ``saoy kiosk-cert``,
which issues a kiosk its mutual-TLS certificate from the same dev PKI, or revokes one; and
``saoy purge``, the retention policy applied by hand."""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import sys
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path

from saoy.core.errors import SaoyError
from saoy.core.retention import purge
from saoy.core.storage.registries import create_registry
from saoy.core.trust.pki import REVOCATION_REASONS
from saoy.server.app import open_blobs, open_dev_pki, retention_policy, serve
from saoy.server.interceptors import REVOCATION_POLL_SECONDS
from saoy.server.settings import Settings, parse_serve_args


def _log_to_stderr(settings: Settings) -> None:
    logging.basicConfig(
        level=settings.log_level.upper(),
        format="%(asctime)s %(levelname)s %(name)s %(message)s",
    )


def serve_command(argv: Sequence[str]) -> int:
    try:
        settings = parse_serve_args(argv)
    except ValueError as error:
        print(f"error: {error}")
        return 2
    _log_to_stderr(settings)
    try:
        asyncio.run(serve(settings))
    except SaoyError as error:  # a store it needs cannot be reached: said in one line
        print(f"error: {error.message}", file=sys.stderr)
        return 1
    return 0


def worker_command(argv: Sequence[str]) -> int:
    """``saoy worker --queue-url redis://…``: take dossiers off the work queue until SIGTERM.
    It takes the same settings as ``saoy serve`` (the same registry, blobs and data dir as the
    fronts; --public-url names the fronts' HTTP base printed on copies); its --http-port (9464
    unless given) serves /metrics and /healthz; its gRPC port is one the system picks (kiosks
    talk to the fronts)."""
    from saoy.server.worker import run_worker

    try:
        settings = parse_serve_args(argv, prog="saoy worker")
        if not settings.queue_url:
            raise ValueError("saoy worker needs --queue-url redis://… (or SAOY_QUEUE_URL)")
    except ValueError as error:
        print(f"error: {error}")
        return 2
    given = any(a.startswith("--http-port") for a in argv) or "SAOY_HTTP_PORT" in os.environ
    # A worker beside a front on one machine: its /metrics on a port of its own by default,
    # and no fixed gRPC port (it takes its dossiers from the queue, not from kiosks).
    settings = replace(settings, grpc_port=0, http_port=settings.http_port if given else 9464)
    _log_to_stderr(settings)
    asyncio.run(run_worker(settings))
    return 0


def kiosk_cert_command(argv: Sequence[str]) -> int:
    """``saoy kiosk-cert KIOSK_ID --out DIR``: write kiosk.pem, kiosk.key and ca.pem for a
    kiosk talking to a server run with ``--tls mutual`` on the same data dir.
    ``saoy kiosk-cert --revoke SERIAL|KIOSK_ID --reason REASON``: put that kiosk certificate
    (or every one issued to that kiosk) on the issuing CA's CRL; a server on the same data dir
    refuses it from its next call on."""
    parser = argparse.ArgumentParser(
        prog="saoy kiosk-cert",
        description="Issue a kiosk's TLS client certificate (CN = the kiosk id) from the dev PKI"
        " under the data dir, generating the PKI first if it is not there. Writes kiosk.pem,"
        " kiosk.key (made once, mode 0600) and ca.pem into --out; run again to renew (a revoked"
        " certificate is replaced, and its key too when revoked for key_compromise). With"
        " --revoke, revoke a kiosk certificate instead.",
    )
    parser.add_argument(
        "kiosk_id", nargs="?", help="the kiosk id it will send (1-64 of A-Z a-z 0-9 _ . -)"
    )
    parser.add_argument("--out", default=".", help="folder for the files (default: .)")
    parser.add_argument(
        "--revoke",
        metavar="SERIAL|KIOSK_ID",
        help="put a kiosk certificate on the issuing CA's CRL: its serial (hex), or a kiosk id"
        " for every certificate issued to that kiosk. A server run with --tls mutual on the"
        f" same data dir refuses it within {REVOCATION_POLL_SECONDS:g} s, on every call",
    )
    parser.add_argument(
        "--reason",
        default="key_compromise",
        choices=REVOCATION_REASONS,
        help="why, as the CRL says it (with --revoke; default: key_compromise)",
    )
    for name in ("data_dir", "pki_passphrase", "organization"):
        parser.add_argument(
            "--" + name.replace("_", "-"),
            dest=name,
            default=None,
            help=f"as for saoy serve (env SAOY_{name.upper()})",
        )
    args = parser.parse_args(argv)
    if (args.kiosk_id is None) == (args.revoke is None):
        parser.error("give a kiosk id to issue a certificate, or --revoke SERIAL|KIOSK_ID")
    own = ("kiosk_id", "out", "revoke", "reason")
    try:
        settings = Settings.load({k: v for k, v in vars(args).items() if k not in own})
        pki = open_dev_pki(settings)
        if args.revoke is not None:
            revoked = pki.revoke_kiosk_certificate(args.revoke, args.reason)
        else:
            files = pki.issue_kiosk_certificate(args.kiosk_id, Path(args.out))
    except (ValueError, SaoyError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    if args.revoke is not None:
        for kiosk_id, entry in revoked:
            print(
                f"revoked the certificate of kiosk {kiosk_id} (serial {entry.serial:x}) on"
                f" {entry.at:%Y-%m-%d %H:%M:%S} UTC: {entry.reason}"
            )
        print(
            "servers with --tls mutual on this data dir refuse it from their next call;"
            " issue a new one with: saoy kiosk-cert KIOSK_ID --out DIR"
        )
        return 0
    print(
        f"{'issued' if files.issued else 'kept'} the certificate of kiosk {args.kiosk_id}:"
        f"\n  {files.certificate}\n  {files.key}\n  {files.ca}"
        f"\nuse: saoy certify --kiosk {args.kiosk_id} --tls-ca {files.ca}"
        f" --tls-cert {files.certificate} --tls-key {files.key} ..."
    )
    return 0


def purge_command(argv: Sequence[str]) -> int:
    """``saoy purge``: apply the retention policy now, as the server does every
    ``purge_interval_seconds``, to the registry and blobs of a data dir."""
    parser = argparse.ArgumentParser(
        prog="saoy purge",
        description="Destroy the page scans, recognized fields and OCR text of dossiers decided"
        " more than --retention-days ago (and their copies' files after --copy-retention-days):"
        " their data keys are destroyed, so the sealed files, and any backup of them, no longer"
        " decrypt. Copies stay verifiable by code.",
    )
    names = (
        "data_dir",
        "registry_url",
        "blob_url",
        "retention_days",
        "copy_retention_days",
        "signer_backend",
        "pkcs11_module",
        "pkcs11_token",
        "pkcs11_pin",
    )
    for name in names:
        parser.add_argument(
            "--" + name.replace("_", "-"),
            dest=name,
            default=None,
            help=f"as for saoy serve (env SAOY_{name.upper()})",
        )
    args = parser.parse_args(argv)
    try:
        settings = Settings.load(vars(args))
        policy = retention_policy(settings)
        if not policy.active:
            print("error: no retention period is set: give --retention-days", file=sys.stderr)
            return 2
        sqlite = settings.data_dir / "registry.sqlite3"
        if not settings.registry_url and not sqlite.is_file():
            print(
                f"error: no registry at {sqlite}: give the server's --data-dir (or its"
                " --registry-url)",
                file=sys.stderr,
            )
            return 2
        blobs = open_blobs(settings)
        registry = create_registry(settings.registry_url or sqlite)
        try:
            report = purge(registry, blobs, policy)
        finally:
            registry.close()
            blobs.vault.wrapper.close()
    except (ValueError, SaoyError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    print(
        f"purged the scans and recognized fields of {report.scans} dossier(s) and the files of"
        f" {report.copies} copies; {report.plain_blobs} unsealed file(s) removed; wrapping keys"
        f" destroyed: {', '.join(report.epochs_destroyed) or 'none'}"
    )
    return 0
