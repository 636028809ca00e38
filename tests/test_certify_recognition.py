"""Recognition that holds on cards the project's first generator did not draw: both editions
of the citizen identity card from the template generator (its own layouts, fonts and capture
models), sent through a real server. Each decision is proven both ways."""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import replace
from datetime import timedelta

import pytest
from PIL import ImageDraw

from saoy.clients.sdk import CertifyResult
from saoy.clients.simulator import capture, templates
from saoy.core.pipeline import local_today

from .conftest import RunningServer

TODAY = local_today()


def person(seed: int, edition: str, *, expired: bool = False) -> templates.Person:
    """A citizen whose card of ``edition`` is valid today (or expired a while ago)."""
    p = templates.random_person(random.Random(seed), edition, born_between=(1960, 1995))
    if expired:
        issued, expiry = TODAY - timedelta(days=3650), TODAY - timedelta(days=40)
    else:
        issued = TODAY - timedelta(days=200)
        expiry = TODAY + timedelta(days=3000)
    if edition == "2024":
        issued = max(issued, TODAY.replace(year=2024, month=7, day=2))
    return replace(p, issue_date=issued, expiry_date=expiry)


def scans(p: templates.Person, edition: str, style: str, seed: int, **kw: bool) -> list[bytes]:
    rng = random.Random(seed)
    front, back = templates.card(p, edition, rng, 300 + 20 * (seed % 5), **kw)
    return [capture.capture(doc, style, seed * 2 + j).data for j, doc in enumerate((front, back))]


def certify(server: RunningServer, kiosk: str, pages: Sequence[bytes]) -> CertifyResult:
    with server.client(kiosk_id=kiosk) as client:
        return client.certify(list(pages), session_token=server.token(kiosk))


def fields(result: CertifyResult) -> list[dict[str, tuple[str, str]]]:
    pages = result.of_kind("recognized")[0].recognized.pages
    return [{f.name: (f.value, f.source) for f in p.fields} for p in pages]


def why(result: CertifyResult) -> list[str]:
    checks = result.of_kind("validated")[0].validated.checks if result.of_kind("validated") else []
    return [f"{c.name}: {c.reason}" for c in checks if c.outcome != 1]


@pytest.mark.parametrize(
    ("edition", "style", "seed"), [("2024", "tight", 3), ("2021", "overhead", 8)]
)
def test_a_valid_card_of_either_edition_is_issued_with_its_fields(
    server: RunningServer, edition: str, style: str, seed: int
) -> None:
    p = person(seed, edition)
    result = certify(server, f"kiosk-rec-{edition}", scans(p, edition, style, seed))
    assert result.state == "ISSUED", why(result)
    pages = result.of_kind("recognized")[0].recognized.pages
    assert [(x.document_type, x.variant) for x in pages] == [
        ("cccd_front", edition),
        ("cccd_back", edition),
    ]
    front, back = fields(result)
    read = {k: v for k, (v, _) in (front | back).items()}
    assert read["full_name"] == p.full_name.upper()
    assert read["id_number"] == p.id_number
    assert read["date_of_birth"] == templates.dmy(p.date_of_birth)
    assert read["expiry_date"] == templates.dmy(p.expiry_date)
    assert read["issue_date"] == templates.dmy(p.issue_date)
    assert read["place_of_residence"] == p.place_of_residence
    # The MRZ confirms the number; the QR code, front (2021) or back (2024), is read.
    number_sources = (front | back)["id_number"][1].split("+")
    assert {"ocr", "mrz", "qr"} <= set(number_sources), number_sources
    if edition == "2021":
        # The expiry under the photo, on the rows of the residence's second line, is not
        # swallowed by the residence.
        assert templates.dmy(p.expiry_date) not in read["place_of_residence"]
        assert read["place_of_origin"] == p.place_of_origin
    else:
        assert read["place_of_birth"] == p.place_of_birth


def test_an_expired_card_is_rejected_as_expired(server: RunningServer) -> None:
    p = person(21, "2024", expired=True)
    result = certify(server, "kiosk-rec-expired", scans(p, "2024", "tight", 21))
    assert result.state == "REJECTED", why(result)
    assert result.terminal.rejected.reason == "EXPIRED"


def test_a_card_whose_mrz_check_digit_is_broken_is_not_issued(server: RunningServer) -> None:
    p = person(34, "2021")
    result = certify(server, "kiosk-rec-mrz", scans(p, "2021", "tight", 34, broken_mrz=True))
    assert result.state in ("REJECTED", "NEEDS_REVIEW"), why(result)
    assert any(w.startswith("mrz_check_digits") for w in why(result)), why(result)


def test_a_genuine_card_whose_name_cannot_be_read_goes_to_review_never_rejected(
    server: RunningServer,
) -> None:
    p = person(55, "2024")
    rng = random.Random(55)
    front, back = templates.card(p, "2024", rng, 320)
    # Ink lost over the name (a worn card, a reflection the gate let through): the letters'
    # lower halves are gone, what remains reads as no name.
    name = next(ln for ln in front.lines if ln.text == p.full_name.upper())
    left, top, right, bottom = name.box
    paper = front.image.getpixel((left - 4, top - 4))
    ImageDraw.Draw(front.image).rectangle(
        (left, (top + bottom) // 2 - 2, right, bottom), fill=paper
    )
    pages = [capture.capture(doc, "tight", 110 + j).data for j, doc in enumerate((front, back))]
    result = certify(server, "kiosk-rec-worn", pages)
    assert result.state == "NEEDS_REVIEW", why(result)
    assert any("full name" in w and "page 1" in w for w in why(result)), why(result)
