"""The ``saoy`` command: ``serve``, ``authenticate``, ``certify``, ``verify``, ``revoke`` and
``kiosk-cert``.

``serve``, ``kiosk-cert`` (which issues from the server's PKI) and ``verify --offline`` (which
needs the domain code to check signatures and read the QR) are provided by the server package
through the ``saoy.commands`` entry point group, so this module (like all of clients/) depends
on the generated stubs only.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Sequence
from datetime import UTC
from importlib.metadata import entry_points
from pathlib import Path
from typing import Any, TextIO
from zoneinfo import ZoneInfo

import grpc
from google.protobuf.json_format import MessageToDict

from saoy.clients.desk_cli import add_desk_parser, cmd_desk
from saoy.clients.sdk import (
    CertifyResult,
    KioskClient,
    OfficialClient,
    PageRejectedError,
    TrackingClient,
    tls_credentials,
)
from saoy.v1 import certification_pb2 as cpb
from saoy.v1 import identity_pb2 as ipb
from saoy.v1 import tracking_pb2 as tpb
from saoy.v1 import verification_pb2 as vpb

EXIT_OK, EXIT_NOT_VALID, EXIT_ERROR = 0, 1, 2
VIETNAM = ZoneInfo("Asia/Ho_Chi_Minh")


class Progress:
    """A one-line progress bar on a terminal; silent when stderr is not one."""

    def __init__(self, total: int, stream: TextIO = sys.stderr) -> None:
        self.total = max(total, 1)
        self.sent = 0
        self.status = "sending"
        self.stream = stream
        self.enabled = stream.isatty()

    def advance(self, n: int) -> None:
        self.sent += n
        self.draw()

    def note(self, status: str) -> None:
        self.status = status
        self.draw()

    def draw(self) -> None:
        if not self.enabled:
            return
        width = 30
        filled = int(width * min(self.sent / self.total, 1.0))
        bar = "#" * filled + "-" * (width - filled)
        pct = 100 * self.sent // self.total
        self.stream.write(f"\r[{bar}] {pct:3d}%  {self.status:<40.40}")
        self.stream.flush()

    def close(self) -> None:
        if self.enabled:
            self.stream.write("\n")


def _describe(event: cpb.CertifyEvent) -> str:
    kind = event.WhichOneof("event")
    if kind == "page_accepted":
        return f"page {event.page_accepted.page + 1} accepted"
    if kind == "page_rejected":
        return f"page {event.page_rejected.page + 1} rejected"
    return {"recognized": "recognized", "validated": "checked"}.get(str(kind), str(kind))


def _checks(checks: Sequence[Any]) -> list[dict[str, str]]:
    return [
        {"name": c.name, "outcome": c.Outcome.Name(c.outcome).lower(), "reason": c.reason}
        for c in checks
    ]


def _error_line(error: grpc.RpcError) -> str:
    return f"error: {error.code().name}: {error.details()}"


def cmd_certify(args: argparse.Namespace) -> int:
    files = [Path(f) for f in args.files]
    missing = [str(f) for f in files if not f.is_file()]
    if missing:
        print(f"error: no such file: {', '.join(missing)}", file=sys.stderr)
        return EXIT_ERROR
    if len(args.types) > len(files):
        print(f"error: {len(args.types)} --type for {len(files)} file(s)", file=sys.stderr)
        return EXIT_ERROR
    hints = [cpb.DocumentHint(page=i, document_type=t) for i, t in enumerate(args.types)]
    pages = [f.read_bytes() for f in files]
    progress = Progress(sum(len(p) for p in pages))
    if args.json:
        progress.enabled = False
    token = args.session_token
    if token is None:
        token = os.environ.get("SAOY_SESSION_TOKEN", "")
    with KioskClient(args.server, kiosk_id=args.kiosk, credentials=_credentials(args)) as client:
        try:
            result = client.certify(
                pages,
                request_id=args.request_id,
                session_token=token,
                on_event=lambda e: progress.note(_describe(e)),
                on_sent=progress.advance,
                hints=hints,
                copies=args.copies,
                email=args.email or "",
            )
        except PageRejectedError as error:
            progress.close()
            print(f"{files[error.rejection.page]}: {error.rejection.message}", file=sys.stderr)
            return EXIT_NOT_VALID
        except grpc.RpcError as error:
            progress.close()
            print(_error_line(error), file=sys.stderr)
            return EXIT_ERROR
        progress.close()
        pdf_path = None
        issued = result.issued
        if issued is not None:
            out_dir = Path(args.out)
            out_dir.mkdir(parents=True, exist_ok=True)
            try:
                data = client.download(issued.code)
            except grpc.RpcError as error:
                if error.code() != grpc.StatusCode.FAILED_PRECONDITION:
                    raise
                print(f"note: {error.details()}", file=sys.stderr)  # held until its fee is paid
            else:
                pdf_path = out_dir / f"{issued.code}.pdf"
                pdf_path.write_bytes(data)
    return _report_certify(result, pdf_path, files, args.json)


def cmd_authenticate(args: argparse.Namespace) -> int:
    """Run Identity.Authenticate with a card image and frame files; print the token."""
    paths = [Path(p) for p in (args.card, *args.frames, *(args.left or ()), *(args.right or ()))]
    missing = [str(p) for p in paths if not p.is_file()]
    if missing:
        print(f"error: no such file: {', '.join(missing)}", file=sys.stderr)
        return EXIT_ERROR
    asked: list[str] = []

    def capture(challenge: ipb.HeadTurnChallenge) -> list[bytes]:
        direction = "left" if challenge.direction == ipb.HEAD_TURN_LEFT else "right"
        asked.append(direction)
        if not args.json:
            print(challenge.instruction, file=sys.stderr)
        chosen = getattr(args, direction) or args.frames
        if not chosen:
            raise _NoFrames(direction)
        return [Path(p).read_bytes() for p in chosen]

    with KioskClient(args.server, kiosk_id=args.kiosk, credentials=_credentials(args)) as client:
        try:
            done = client.authenticate(Path(args.card).read_bytes(), capture)
        except _NoFrames as error:
            print(
                f"error: the server asked for a turn to the {error.direction.upper()}: give the"
                f" frames of that turn with --{error.direction}",
                file=sys.stderr,
            )
            return EXIT_ERROR
        except grpc.RpcError as error:
            print(_error_line(error), file=sys.stderr)
            unauthenticated = error.code() == grpc.StatusCode.UNAUTHENTICATED
            return EXIT_NOT_VALID if unauthenticated else EXIT_ERROR
    expires = done.expires_at.ToDatetime().isoformat(timespec="seconds") + "Z"
    if args.json:
        out = {
            "session_token": done.session_token,
            "expires_at": expires,
            "match_score": round(done.match_score, 4),
            "match_threshold": round(done.match_threshold, 4),
            "liveness": done.liveness,
            "challenge": asked[0] if asked else None,
            "kiosk": args.kiosk,
        }
        print(json.dumps(out, ensure_ascii=False))
    else:
        print(
            f"authenticated: face match {done.match_score:.3f} (threshold"
            f" {done.match_threshold:.3f}), liveness {done.liveness}, valid until {expires}"
            f" for one dossier at kiosk {args.kiosk}",
            file=sys.stderr,
        )
        print(done.session_token)
    return EXIT_OK


class _NoFrames(Exception):
    def __init__(self, direction: str) -> None:
        super().__init__(direction)
        self.direction = direction


def _recognized(result: CertifyResult) -> list[dict[str, Any]]:
    """What was read on each page: type, edition, condition, and every field with its
    confidence (0-100) and source, so that a person can see what was read."""
    events = result.of_kind("recognized")
    if not events:
        return []
    return [
        {
            "page": p.page,
            "document_type": p.document_type,
            "type_confidence": round(p.type_confidence, 1),
            "edition": p.variant or None,
            "condition": p.condition,
            "rotation": p.rotation,
            "mean_confidence": round(p.mean_confidence, 1),
            "fields": {
                f.name: {
                    "value": f.value,
                    "confidence": round(f.confidence, 1),
                    "source": f.source,
                }
                for f in p.fields
            },
        }
        for p in events[-1].recognized.pages
    ]


def _local_time(stamp: Any) -> str:
    """A protobuf Timestamp as ISO 8601 in Vietnam's time (+07:00)."""
    return str(stamp.ToDatetime(tzinfo=UTC).astimezone(VIETNAM).isoformat(timespec="seconds"))


def _report_certify(
    result: CertifyResult, pdf_path: Path | None, files: list[Path], as_json: bool
) -> int:
    validated = result.of_kind("validated")
    checks = _checks(validated[-1].validated.checks) if validated else []
    issued = result.issued
    terminal = result.terminal
    received = result.received
    appointment = _local_time(received.appointment) if received is not None else None
    if received is not None and not as_json:
        print(f"RECEIVED  {received.dossier_code}  (look-up secret {received.lookup_secret})")
        print(f"  fee:    {received.fee_vnd:,} VND   appointment: {appointment}")
        print(f"  status: {received.status_url}")
    if as_json:
        out: dict[str, Any] = {
            "state": result.state,
            "request_id": result.request_id,
            "dossier_id": result.dossier_id,
            "code": issued.code if issued else None,
            "url": issued.url if issued else None,
            "sha256": issued.sha256 if issued else None,
            "pdf_path": str(pdf_path) if pdf_path else None,
            "pages": len(files),
            "recognized": _recognized(result),
            "checks": checks,
            "dossier_code": received.dossier_code if received else None,
            "lookup_secret": received.lookup_secret if received else None,
            "status_url": received.status_url if received else None,
            "copies": received.copies if received else None,
            "fee_vnd": received.fee_vnd if received else None,
            "appointment": appointment,
        }
        if terminal is not None and terminal.HasField("needs_review"):
            out["reasons"] = list(terminal.needs_review.reasons)
        if terminal is not None and terminal.HasField("rejected"):
            out["reasons"] = [terminal.rejected.message]
        print(json.dumps(out, ensure_ascii=False))
    elif issued is not None:
        print(f"ISSUED  {issued.code}")
        print(f"  url:    {issued.url}")
        print(f"  pdf:    {pdf_path}")
        print(f"  sha256: {issued.sha256}")
        print(f"  pages:  {issued.pages}   issuer: {issued.issuer}")
    elif terminal is not None and terminal.HasField("needs_review"):
        print("NEEDS_REVIEW: an official will look at this dossier")
        for reason in terminal.needs_review.reasons:
            print(f"  - {reason}")
    elif terminal is not None and terminal.HasField("rejected"):
        print(f"REJECTED: {terminal.rejected.message}")
    return EXIT_OK if issued is not None else EXIT_NOT_VALID


def _print_verification(result: vpb.VerificationResult, as_json: bool) -> int:
    verdict = vpb.VerificationResult.Verdict.Name(result.verdict)
    if as_json:
        out = MessageToDict(result, preserving_proto_field_name=True)
        out["verdict"] = verdict
        out["checks"] = _checks(result.checks)
        print(json.dumps(out, ensure_ascii=False))
    else:
        print(f"{verdict}: {result.reason}")
        if result.code:
            print(f"  code:   {result.code}")
        if result.issuer:
            issued = result.issued_at.ToDatetime().isoformat() + "Z"
            print(f"  issuer: {result.issuer}")
            print(f"  issued: {issued}")
            print(f"  pages:  {result.pages}")
        for check in result.checks:
            mark = {1: "ok", 2: "warn", 3: "FAIL"}.get(check.outcome, "?")
            print(f"  [{mark}] {check.name}: {check.reason}")
    return EXIT_OK if result.verdict == vpb.VerificationResult.VALID else EXIT_NOT_VALID


def cmd_verify(args: argparse.Namespace) -> int:
    target = Path(args.target)
    with KioskClient(args.server, credentials=_credentials(args)) as client:
        try:
            if target.is_file():
                result = client.verify_pdf(target.read_bytes())
            else:
                result = client.verify_code(args.target)
        except grpc.RpcError as error:
            if error.code() == grpc.StatusCode.NOT_FOUND:
                result = vpb.VerificationResult(
                    verdict=vpb.VerificationResult.UNKNOWN, reason=str(error.details())
                )
            else:
                if args.json:
                    print(
                        json.dumps(
                            {
                                "verdict": None,
                                "error": error.code().name,
                                "reason": error.details(),
                            },
                            ensure_ascii=False,
                        )
                    )
                else:
                    print(_error_line(error), file=sys.stderr)
                return EXIT_ERROR
    return _print_verification(result, args.json)


def _offline_parser() -> argparse.ArgumentParser:
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


def cmd_verify_offline(argv: Sequence[str]) -> int:
    """``saoy verify --offline``: the check itself is the server package's (it needs the
    domain code to read the QR and the signatures), contributed as ``verify-offline`` in the
    ``saoy.commands`` entry point group; it answers with a ``VerificationResult``, printed
    here exactly as an online one. Exit status as ``saoy verify``'s: 0 VALID, 1 another
    verdict, 2 an error."""
    args = _offline_parser().parse_args(list(argv))
    found = entry_points(group="saoy.commands", name="verify-offline")
    if not found:
        print("error: 'saoy verify --offline' needs the saoy server package", file=sys.stderr)
        return EXIT_ERROR
    check = next(iter(found)).load()
    try:
        result: vpb.VerificationResult = check(
            Path(args.target),
            cert=Path(args.cert),
            trust=[Path(p) for p in args.trust],
            crls=[Path(p) for p in args.crl],
        )
    except (OSError, ValueError) as error:
        if args.json:
            kind = type(error.__cause__ or error).__name__  # the domain error's name, if one
            print(json.dumps({"verdict": None, "error": kind, "reason": str(error)}))
        else:
            print(f"error: {error}", file=sys.stderr)
        return EXIT_ERROR
    return _print_verification(result, args.json)


def _print_tracked(dossier: tpb.TrackedDossier, as_json: bool) -> None:
    if as_json:
        out = MessageToDict(dossier, preserving_proto_field_name=True)
        out["status"] = int(dossier.status)
        for change in out.get("history", []):
            change["status"] = tpb.PortalStatus.Value(change["status"])
        out["appointment"] = _local_time(dossier.appointment)
        print(json.dumps(out, ensure_ascii=False), flush=True)
        return
    late = "  LATE / QUÁ HẠN" if dossier.late else ""
    status = f"{int(dossier.status)} {dossier.status_vi} / {dossier.status_en}"
    print(f"{dossier.dossier_code}  {status}{late}")
    print(f"  appointment: {_local_time(dossier.appointment)}   fee: {dossier.fee_vnd:,} VND")
    for change in dossier.history:
        print(f"  {_local_time(change.at)}  {int(change.status):>2} {change.text_vi}")
    if dossier.copy_url:
        print(f"  copy: {dossier.copy_url}")
    sys.stdout.flush()


def cmd_track(args: argparse.Namespace) -> int:
    """Where a dossier stands, by the code and secret on its receipt (--watch: until it ends)."""
    with TrackingClient(args.server, credentials=_credentials(args)) as tracking:
        try:
            if args.receipt:
                Path(args.receipt).write_bytes(tracking.receipt_pdf(args.dossier_code, args.secret))
            if args.watch:
                for dossier in tracking.watch(args.dossier_code, args.secret):
                    _print_tracked(dossier, args.json)
            else:
                _print_tracked(tracking.get(args.dossier_code, args.secret), args.json)
        except grpc.RpcError as error:
            print(_error_line(error), file=sys.stderr)
            return EXIT_NOT_VALID if error.code() == grpc.StatusCode.NOT_FOUND else EXIT_ERROR
    return EXIT_OK


def cmd_revoke(args: argparse.Namespace) -> int:
    token = os.environ.get("SAOY_ADMIN_TOKEN", "")
    if args.token_file:
        token = Path(args.token_file).read_text().split()[0]
    if not token:
        print("error: give --token-file or set SAOY_ADMIN_TOKEN", file=sys.stderr)
        return EXIT_ERROR
    with OfficialClient(args.server, token, credentials=_credentials(args)) as client:
        try:
            result = client.revoke(args.code, args.reason)
        except grpc.RpcError as error:
            print(_error_line(error), file=sys.stderr)
            return EXIT_ERROR
    _print_verification(result, args.json)
    return EXIT_OK if result.verdict == vpb.VerificationResult.REVOKED else EXIT_ERROR


def _add_server(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--server", default="localhost:50051", help="host:port of the server")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    tls = parser.add_argument_group("TLS (a server run with --tls on or mutual)")
    tls.add_argument("--tls-ca", help="PEM certificates to trust the server with (ca.pem)")
    tls.add_argument(
        "--tls-cert", help="this kiosk's certificate, PEM (kiosk.pem from saoy kiosk-cert)"
    )
    tls.add_argument("--tls-key", help="its private key, PEM (kiosk.key)")


class _BadTls(Exception):
    """The TLS files given on the command line cannot be used."""


def _credentials(args: argparse.Namespace) -> grpc.ChannelCredentials | None:
    """TLS credentials from --tls-ca/--tls-cert/--tls-key; None (plaintext) when none is given."""
    paths = (args.tls_ca, args.tls_cert, args.tls_key)
    if not any(paths):
        return None
    try:
        ca, cert, key = (Path(p).read_bytes() if p else None for p in paths)
        return tls_credentials(ca, cert, key)
    except (OSError, ValueError) as error:
        raise _BadTls(str(error)) from None


SERVER_COMMANDS = {
    "serve": "run the server (flags: saoy serve --help)",
    "worker": "take dossiers off the work queue of fronts run with --queue-url (flags as serve)",
    "kiosk-cert": "issue a kiosk its mutual-TLS certificate from the server's dev PKI, or revoke"
    " one with --revoke SERIAL|KIOSK_ID",
    "purge": "destroy the personal data of dossiers decided more than --retention-days ago",
    "reception": "register centers and their kiosks, or list them",
    "official": "add, disable, reset or list the officials of the centers",
    "center": "a center's name, review policy (uncertain|all) and kiosks",
    "register": "a center's certification register for a year, as CSV or a sealed PDF",
}
"""Commands run on the server's machine, against its data: the server package contributes them
(entry points ``saoy.commands``); each has its own --help."""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="saoy", description="Certified electronic copies.")
    sub = parser.add_subparsers(dest="command", required=True)

    for name, what in SERVER_COMMANDS.items():
        sub.add_parser(name, help=what, add_help=False)

    authenticate = sub.add_parser(
        "authenticate",
        help="prove who the citizen is (ID card + live face); prints a session token",
        description="Send the front of the ID card, then live camera frames (a frontal one"
        " first, then the head turn the server asks for). Prints the session token on stdout"
        " (details on stderr), e.g. export SAOY_SESSION_TOKEN=$(saoy authenticate ...).",
    )
    authenticate.add_argument("--card", required=True, help="image of the ID card's front")
    authenticate.add_argument(
        "frames", nargs="*", help="frames to send whichever way the server asks to turn"
    )
    authenticate.add_argument(
        "--left", nargs="+", metavar="FRAME", help="frames to send if asked to turn LEFT"
    )
    authenticate.add_argument(
        "--right", nargs="+", metavar="FRAME", help="frames to send if asked to turn RIGHT"
    )
    _add_server(authenticate)
    authenticate.add_argument("--kiosk", default="kiosk-cli", help="kiosk identifier")
    authenticate.set_defaults(func=cmd_authenticate)

    certify = sub.add_parser("certify", help="certify scanned pages into a signed copy")
    certify.add_argument("files", nargs="+", help="page images (JPEG, PNG, TIFF), in order")
    _add_server(certify)
    certify.add_argument("--out", default=".", help="folder for the signed PDF")
    certify.add_argument("--kiosk", default="kiosk-cli", help="kiosk identifier")
    certify.add_argument(
        "--session-token",
        "--session",
        dest="session_token",
        default=None,
        help="session token from `saoy authenticate` (else $SAOY_SESSION_TOKEN)",
    )
    certify.add_argument("--request-id", default=None, help="idempotency key (retries)")
    certify.add_argument(
        "--copies", type=int, default=1, help="number of copies asked for (the fee is per copy)"
    )
    certify.add_argument("--email", help="send the copy (link and PDF) to this address")
    certify.add_argument(
        "--type",
        dest="types",
        action="append",
        default=[],
        metavar="TYPE",
        help="the document type of each file in order (cccd_front, cccd_back,"
        " birth_certificate, generic), checked against what the page reads as",
    )
    certify.set_defaults(func=cmd_certify)

    verify = sub.add_parser("verify", help="verify a copy by code or PDF file")
    verify.add_argument("target", help="a verification code or the path of a copy PDF")
    _add_server(verify)
    verify.add_argument(
        "--offline",
        action="store_true",
        help="no server: check a copy PDF or a photo of its QR with the issuer's QR certificate "
        "(flags: saoy verify --offline --help)",
    )
    verify.set_defaults(func=cmd_verify)

    track = sub.add_parser("track", help="where a dossier stands, by its receipt")
    track.add_argument("dossier_code", help="the dossier code on the receipt")
    track.add_argument("secret", help="the look-up secret on the receipt")
    track.add_argument("--watch", action="store_true", help="follow each change until it ends")
    track.add_argument("--receipt", metavar="FILE", help="also save the receipt as a PDF")
    _add_server(track)
    track.set_defaults(func=cmd_track)

    revoke = sub.add_parser("revoke", help="revoke a copy (officials only)")
    revoke.add_argument("code", help="the copy's verification code")
    revoke.add_argument("--reason", required=True, help="why, for the register")
    revoke.add_argument(
        "--token-file", help="file holding an official's token (else $SAOY_ADMIN_TOKEN)"
    )
    _add_server(revoke)
    revoke.set_defaults(func=cmd_revoke)

    add_desk_parser(sub, _add_server)
    sub.choices["desk"].set_defaults(func=lambda a: cmd_desk(a, _credentials(a)))
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] in SERVER_COMMANDS:
        return _plugin(argv[0], argv[1:])
    if argv and argv[0] == "verify" and "--offline" in argv[1:]:
        return cmd_verify_offline([a for a in argv[1:] if a != "--offline"])
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args))
    except _BadTls as error:
        print(f"error: TLS: {error}", file=sys.stderr)
        return EXIT_ERROR


def _plugin(name: str, argv: list[str]) -> int:
    """Run a command contributed by another installed saoy package (e.g. the server)."""
    found = entry_points(group="saoy.commands", name=name)
    if not found:
        print(f"error: 'saoy {name}' needs the saoy server package", file=sys.stderr)
        return EXIT_ERROR
    command = next(iter(found)).load()
    return int(command(argv))


if __name__ == "__main__":
    sys.exit(main())
