"""``saoy desk``: the official's desk at a terminal, over ``saoy.v1.Review``.

export SAOY_DESK_TOKEN=$(saoy desk signin lan)     # asks the password and the TOTP code
saoy desk queue
saoy desk show DOSSIER [--pages DIR]
saoy desk approve DOSSIER [--correct 0:date_of_birth=01/02/1985]
saoy desk refuse DOSSIER --reason damaged --message "..."
saoy desk rescan DOSSIER --page 0 --message "..."
"""

from __future__ import annotations

import argparse
import getpass
import json
import os
import sys
from pathlib import Path
from typing import Any

import grpc
from google.protobuf.json_format import MessageToDict

from saoy.clients.sdk import DeskClient

EXIT_OK, EXIT_ERROR = 0, 2
GROUNDS = (
    "forged",
    "altered",
    "damaged",
    "confidential",
    "unlawful_content",
    "not_legalized",
    "self_made",
)


def add_desk_parser(sub: Any, add_server: Any) -> None:
    """Add ``saoy desk ...`` to the CLI's subcommands (``add_server`` adds --server and TLS)."""
    desk = sub.add_parser("desk", help="the official's desk: review, approve, refuse")
    actions = desk.add_subparsers(dest="desk_action", required=True)

    signin = actions.add_parser(
        "signin",
        help="sign in (password and TOTP code asked on the terminal); prints the session token",
    )
    signin.add_argument("login")
    signin.add_argument("--totp", help="the 6-digit code (else asked)")
    signin.add_argument(
        "--password-stdin", action="store_true", help="read the password from stdin's first line"
    )
    actions.add_parser(
        "queue",
        help="dossiers waiting in your center, the oldest legal deadline first, then arrival",
    )
    show = actions.add_parser("show", help="one dossier: fields, checks, identity evidence")
    show.add_argument("dossier")
    show.add_argument("--pages", help="folder to write the page images into")
    for name in ("claim", "release"):
        action = actions.add_parser(name, help=f"{name} a dossier's lease")
        action.add_argument("dossier")
    approve = actions.add_parser("approve", help="issue the copy under your signature")
    approve.add_argument("dossier")
    approve.add_argument(
        "--correct",
        action="append",
        default=[],
        metavar="PAGE:FIELD=VALUE",
        help="correct a recognized field (page 0-based), e.g. 0:date_of_birth=01/02/1985",
    )
    refuse = actions.add_parser("refuse", help="refuse on a ground of Decree 23/2015 art. 22")
    refuse.add_argument("dossier")
    refuse.add_argument("--reason", required=True, choices=GROUNDS, help="the legal ground")
    refuse.add_argument("--message", required=True, help="words for the citizen")
    rescan = actions.add_parser("rescan", help="ask the kiosk to scan one page again")
    rescan.add_argument("dossier")
    rescan.add_argument("--page", type=int, required=True, help="page (0-based)")
    rescan.add_argument("--message", required=True, help="what is wrong with it")
    for action in actions.choices.values():
        add_server(action)
        action.add_argument("--token", help="session token (else $SAOY_DESK_TOKEN)")


def _correction(text: str) -> tuple[int, str, str]:
    page, sep, rest = text.partition(":")
    name, eq, value = rest.partition("=")
    if not sep or not eq or not page.isdigit() or not name:
        raise ValueError(f"--correct {text!r}: write PAGE:FIELD=VALUE, e.g. 0:full_name=LÊ VĂN A")
    return int(page), name, value


def cmd_desk(args: argparse.Namespace, credentials: grpc.ChannelCredentials | None) -> int:
    token = args.token or os.environ.get("SAOY_DESK_TOKEN", "")
    with DeskClient(args.server, token, credentials=credentials) as client:
        try:
            return _run(args, client)
        except grpc.RpcError as error:
            print(f"error: {error.code().name}: {error.details()}", file=sys.stderr)
            return EXIT_ERROR
        except ValueError as error:
            print(f"error: {error}", file=sys.stderr)
            return EXIT_ERROR


def _run(args: argparse.Namespace, client: DeskClient) -> int:
    action = args.desk_action
    if action == "signin":
        if args.password_stdin:
            password = sys.stdin.readline().rstrip("\n")
        else:
            password = getpass.getpass(f"password of {args.login}: ")
        code = args.totp or input("TOTP code: ")
        signed = client.sign_in(args.login, password, code.strip())
        print(signed.session_token)
        print(
            f"signed in: {signed.official.full_name} ({signed.official.role},"
            f" center {signed.official.center}) until {signed.expires_at.ToDatetime():%H:%M} UTC",
            file=sys.stderr,
        )
        return EXIT_OK
    if action == "queue":
        items = client.queue(thumbnails=False)
        if args.json:
            print(json.dumps([MessageToDict(i) for i in items], ensure_ascii=False, indent=1))
            return EXIT_OK
        for item in items:
            held = f" held by {item.holder_name}" if item.holder else ""
            due = (
                f"due {item.appointment_at.ToDatetime():%Y-%m-%d %H:%M} UTC"
                if item.HasField("appointment_at")
                else "no deadline"
            )
            print(
                f"{item.dossier_id}  {due}  received"
                f" {item.created_at.ToDatetime():%Y-%m-%d %H:%M} UTC"
                f"  {item.page_count} page(s)  kiosk {item.kiosk_id}{held}"
            )
            for reason in item.reasons:
                print(f"    - {reason}")
        print(f"{len(items)} dossier(s) waiting", file=sys.stderr)
        return EXIT_OK
    if action == "show":
        shown = client.dossier(args.dossier)
        if args.pages:
            folder = Path(args.pages)
            folder.mkdir(parents=True, exist_ok=True)
            for page in shown.pages:
                image = page.image or client.page_image(args.dossier, page.page)
                (folder / f"page-{page.page}.{page.format or 'bin'}").write_bytes(image)
        data = MessageToDict(shown)
        for page in data.get("pages", []):
            page.pop("image", None)
        print(json.dumps(data, ensure_ascii=False, indent=1))
        return EXIT_OK
    if action == "claim":
        lease = client.claim(args.dossier)
        print(f"held until {lease.lease_until.ToDatetime():%H:%M:%S} UTC")
        return EXIT_OK
    if action == "release":
        client.release(args.dossier)
        return EXIT_OK
    if action == "approve":
        approved = client.approve(args.dossier, [_correction(c) for c in args.correct])
        if args.json:
            print(json.dumps(MessageToDict(approved), ensure_ascii=False))
        else:
            again = " (approved before: the same copy)" if approved.replayed else ""
            print(f"ISSUED  {approved.issued.code}{again}")
            print(f"  {approved.register_entry}")
            print(f"  url:  {approved.issued.url}")
        return EXIT_OK
    if action == "refuse":
        client.refuse(args.dossier, args.reason, args.message)
        print(f"refused ({args.reason}); the kiosk is told")
        return EXIT_OK
    if action == "rescan":
        client.request_rescan(args.dossier, args.page, args.message)
        print(f"page {args.page} sent back for a rescan; the kiosk is told")
        return EXIT_OK
    raise ValueError(f"unknown desk action {action!r}")


__all__ = ["add_desk_parser", "cmd_desk"]
