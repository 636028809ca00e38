"""Terminal commands of the head of center, run on the server's machine against its data dir
and registry (like ``saoy kiosk-cert``):

- ``saoy official add|disable|reset|list`` — officials, their signing certificates (from the
  dev PKI) and sign-in secrets; ``add`` and ``reset`` print the password and the TOTP
  provisioning URI once;
- ``saoy center CENTER [--name ...] [--review uncertain|all] [--kiosk K ...]`` — a center's
  review policy and its kiosks;
- ``saoy register CENTER [--year Y]`` — the center's certification register for the year, as
  CSV on stdout.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path

from saoy.core.desk.deskdb import DeskDb
from saoy.core.desk.officials import ROLES, Enrolment, Officials
from saoy.core.desk.register import BOOK, KIND, Register, year_of
from saoy.core.desk.register_pdf import render_register
from saoy.core.desk.review import OfficialSigners, TokenConfig, move_key_into_token
from saoy.core.errors import SaoyError
from saoy.core.reception.centers import REVIEW_POLICIES
from saoy.core.storage.registries import create_registry
from saoy.server.app import open_dev_pki
from saoy.server.settings import Settings

_SETTINGS = (
    "data_dir",
    "registry_url",
    "pki_passphrase",
    "organization",
    "center",
    "signer_backend",
    "pkcs11_module",
    "pkcs11_token",
    "pkcs11_pin",
)


def _add_settings(parser: argparse.ArgumentParser) -> None:
    for name in _SETTINGS:
        parser.add_argument(
            "--" + name.replace("_", "-"),
            dest=name,
            default=None,
            help=f"as for saoy serve (env SAOY_{name.upper()})",
        )


def _settings(args: argparse.Namespace) -> Settings:
    return Settings.load({k: v for k, v in vars(args).items() if k in _SETTINGS})


def token_config(settings: Settings) -> TokenConfig | None:
    """The HSM that holds the officials' keys (``signer_backend = pkcs11``), else None."""
    if settings.signer_backend != "pkcs11":
        return None
    return TokenConfig(settings.pkcs11_module, settings.pkcs11_token, settings.pkcs11_pin)


def _open(settings: Settings) -> tuple[Officials, DeskDb]:
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    registry = create_registry(settings.registry_url or settings.data_dir / "registry.sqlite3")
    db = DeskDb(registry)
    officials = Officials(db, default_center=settings.center)
    return officials, db


def _print_enrolment(enrolment: Enrolment) -> None:
    official = enrolment.official
    print(
        f"official {official.id}: {official.full_name}, {official.title}"
        f" ({official.role}, center {official.center})\n"
        f"  password (give it once, in person): {enrolment.password}\n"
        f"  TOTP (scan into an authenticator app, then forget it): {enrolment.totp_uri}\n"
        f"  signing certificate: pki/{official.certificate}"
    )


def official_command(argv: Sequence[str]) -> int:
    """``saoy official add|disable|reset|list``."""
    parser = argparse.ArgumentParser(
        prog="saoy official",
        description="Officials of the centers: add one (with their own signing certificate from"
        " the dev PKI, a password and a TOTP secret), disable one (their sessions end at once),"
        " reset one's password and TOTP secret (enables again), or list them.",
    )
    sub = parser.add_subparsers(dest="action", required=True)
    add = sub.add_parser("add", help="register an official")
    add.add_argument("login", help="login name (2-32 of a-z 0-9 . _ -)")
    add.add_argument("--name", required=True, help="full name, as printed on copies")
    add.add_argument("--title", required=True, help="title, e.g. 'Công chức Tư pháp - Hộ tịch'")
    add.add_argument("--role", default="official", choices=ROLES)
    add.add_argument("--for-center", dest="for_center", help="their center (default --center)")
    for name in ("disable", "reset"):
        action = sub.add_parser(name, help=f"{name} an official")
        action.add_argument("login")
    listing = sub.add_parser("list", help="list the officials")
    listing.add_argument("--for-center", dest="for_center")
    for action in sub.choices.values():
        _add_settings(action)
    args = parser.parse_args(argv)
    try:
        settings = _settings(args)
        officials, db = _open(settings)
        try:
            if args.action == "add":
                center = args.for_center or settings.center
                officials.ensure_center(center)
                pki = open_dev_pki(settings)
                enrolment = officials.add(
                    pki,
                    login=args.login,
                    full_name=args.name,
                    title=args.title,
                    center=center,
                    role=args.role,
                )
                token = token_config(settings)
                if token is not None:
                    move_key_into_token(pki, enrolment.official, token)
                _print_enrolment(enrolment)
                if token is not None:
                    print(
                        f"  (the key is in PKCS#11 token {token.token!r} under label"
                        f" {TokenConfig.label(enrolment.official.id)!r}; no file holds it)"
                    )
            elif args.action == "reset":
                _print_enrolment(officials.reset(args.login))
            elif args.action == "disable":
                official = officials.disable(args.login)
                print(f"official {official.id} is disabled; their sessions have ended")
            else:
                for o in officials.list(args.for_center):
                    state = "disabled" if o.disabled else "active"
                    print(f"{o.id}\t{o.role}\t{o.center}\t{state}\t{o.full_name}\t{o.title}")
        finally:
            db.registry.close()
    except (ValueError, SaoyError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    return 0


def center_command(argv: Sequence[str]) -> int:
    """``saoy center CENTER [--name N] [--review uncertain|all] [--kiosk K]...``."""
    parser = argparse.ArgumentParser(
        prog="saoy center",
        description="A registered center's name (printed in the certification statement), its"
        " review policy (uncertain: only dossiers the machine is unsure of wait for an official;"
        " all: every dossier does) and the kiosks that belong to it. The center is reception's:"
        " register it first with 'saoy reception center'; a kiosk given here is registered at"
        " it (as 'saoy reception kiosk' does).",
    )
    parser.add_argument("center_id", help="the center's code, e.g. 000.00.01.H26")
    parser.add_argument("--name", help="the center's name, e.g. 'UBND Phường Hoàn Kiếm'")
    parser.add_argument("--review", choices=REVIEW_POLICIES)
    parser.add_argument("--kiosk", action="append", default=[], help="a kiosk of the center")
    _add_settings(parser)
    args = parser.parse_args(argv)
    try:
        officials, db = _open(_settings(args))
        try:
            center = officials.set_center(
                args.center_id, name=args.name, review=args.review, kiosks=tuple(args.kiosk)
            )
        finally:
            db.registry.close()
    except (ValueError, SaoyError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    print(f"center {center.id}: {center.name}, review={center.review}")
    return 0


def register_command(argv: Sequence[str]) -> int:
    """``saoy register CENTER [--year Y] [--pdf FILE]``: the book as CSV on stdout, or as a
    PDF sealed by the center."""
    parser = argparse.ArgumentParser(
        prog="saoy register",
        description="Print a center's certification register (sổ chứng thực bản sao từ bản"
        " chính) for a year as CSV: number, book, state, time, code, dossier, pages, official;"
        " with --pdf, write it as a PDF signed with the center's seal (PAdES, time-stamped).",
    )
    parser.add_argument("center_id")
    parser.add_argument("--year", type=int, default=year_of(datetime.now(UTC)))
    parser.add_argument("--pdf", type=Path, help="write the sealed book here instead")
    _add_settings(parser)
    args = parser.parse_args(argv)
    try:
        settings = _settings(args)
        officials, db = _open(settings)
        try:
            register = Register(db)
            if args.pdf is None:
                sys.stdout.write(register.export_csv(args.center_id, args.year))
                return 0
            center = officials.center(args.center_id)
            entries = register.entries(center.id, args.year)
            pdf = render_register(center.name, center.id, args.year, entries)
            signers = OfficialSigners(open_dev_pki(settings), level="B-T")
            try:
                sealed = asyncio.run(signers.for_seal(center).sign(pdf))
            finally:
                signers.close()
            args.pdf.write_bytes(sealed)
            print(
                f"{args.pdf}: book {BOOK}/{args.year}-{KIND} of {center.name}, {len(entries)}"
                " number(s), sealed with the center's seal"
            )
        finally:
            db.registry.close()
    except (ValueError, SaoyError, OSError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    return 0


__all__ = ["center_command", "official_command", "register_command"]
