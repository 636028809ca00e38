"""``saoy reception``: the head of center registers the center (unit code, name, province,
address, fee waiver, the bank account fees are paid into, review policy) and its kiosks, in the
registry a server on the same data dir or ``--registry-url`` uses. A running server sees the
change at its next dossier."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence

from saoy.core.errors import SaoyError
from saoy.core.reception.centers import REVIEW_POLICIES, Center, Centers, ReceptionDb
from saoy.core.reception.vietqr import Payee
from saoy.core.storage.registries import create_registry
from saoy.server.settings import Settings


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="saoy reception", description="Register centers and their kiosks."
    )
    for name in ("data_dir", "registry_url"):
        parser.add_argument(
            "--" + name.replace("_", "-"),
            dest=name,
            default=None,
            help=f"as for saoy serve (env SAOY_{name.upper()})",
        )
    sub = parser.add_subparsers(dest="action", required=True)
    center = sub.add_parser("center", help="register a center, or change one")
    center.add_argument("code", help="unit code, e.g. 000.00.01.H26 (the dossier codes' prefix)")
    center.add_argument("--name", required=True)
    center.add_argument("--province", required=True)
    center.add_argument("--address", required=True)
    center.add_argument("--waive-fees", action="store_true", help="charge no fee")
    center.add_argument("--bank-bin", help="NAPAS BIN (6 digits) of the bank fees are paid into")
    center.add_argument("--account", help="the account number there")
    center.add_argument(
        "--review",
        choices=REVIEW_POLICIES,
        help="which dossiers wait for an official: those the machine is unsure of (the"
        " default of a new center), or all; unchanged if not given",
    )
    kiosk = sub.add_parser("kiosk", help="register a kiosk at a center, or move it there")
    kiosk.add_argument("kiosk_id")
    kiosk.add_argument("center_code")
    kiosk.add_argument("--name", default="", help="where it stands, e.g. 'Sảnh tầng 1'")
    sub.add_parser("list", help="every center with its kiosks")
    parser.add_argument("--json", action="store_true", help="print JSON")
    return parser


def reception_command(argv: Sequence[str]) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    if (args.action == "center") and (args.bank_bin is None) != (args.account is None):
        parser.error("--bank-bin and --account go together")
    own = {"data_dir": args.data_dir, "registry_url": args.registry_url}
    try:
        settings = Settings.load(own)
        settings.data_dir.mkdir(parents=True, exist_ok=True)
        location = settings.registry_url or settings.data_dir / "registry.sqlite3"
        with create_registry(location) as registry:
            centers = Centers(ReceptionDb(registry))
            if args.action == "center":
                payee = Payee(args.bank_bin, args.account) if args.bank_bin else None
                done = centers.register_center(
                    Center(
                        args.code,
                        args.name,
                        args.province,
                        args.address,
                        fees_waived=args.waive_fees,
                        payee=payee,
                    )
                )
                if args.review:
                    centers.set_review(done.code, args.review)
                review = centers.review(done.code)
                print(f"center {done.code}: {done.name} ({done.province}), review={review}")
            elif args.action == "kiosk":
                kiosk = centers.register_kiosk(args.kiosk_id, args.center_code, args.name)
                print(f"kiosk {kiosk.id} at center {kiosk.center_code}")
            else:
                listing = [
                    {
                        "code": c.code,
                        "name": c.name,
                        "province": c.province,
                        "address": c.address,
                        "fees_waived": c.fees_waived,
                        "review": centers.review(c.code),
                        "kiosks": [k.id for k in centers.kiosks(c.code)],
                    }
                    for c in centers.centers()
                ]
                if args.json:
                    print(json.dumps(listing, ensure_ascii=False))
                else:
                    for c in listing:
                        print(f"{c['code']}  {c['name']} ({c['province']}), review={c['review']}")
                        for kiosk_id in c["kiosks"]:
                            print(f"  kiosk {kiosk_id}")
    except (ValueError, SaoyError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    return 0


__all__ = ["reception_command"]
