"""The desk console ``/desk`` as an official uses it, in a real headless Chromium against a real
server: sign-in with password and TOTP, the queue, one dossier on one screen, approval and
refusal by keyboard, and what is refused (a wrong code, a form without its CSRF token, an
official of another center, a disabled official)."""

from __future__ import annotations

import random
import re
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import pyotp
import pytest
from playwright.sync_api import Browser, Page

from saoy.clients.simulator import docgen
from saoy.core.desk.officials import Enrolment
from saoy.core.desk.review import Desk
from saoy.core.reception.centers import Center
from saoy.server.desk_web import CONTENT_SECURITY_POLICY, SESSION_COOKIE
from saoy.v1 import certification_pb2 as cpb
from saoy.v1 import verification_pb2 as vpb

from .conftest import RunningServer, start_server
from .test_review import KIOSK, Watcher, _certify

CENTER = "000.00.01.BAN"  # review=all


@dataclass
class Console:
    server: RunningServer
    lan: Enrolment  # official of CENTER: the review in the browser
    binh: Enrolment  # official of CENTER: refusals of bad requests
    mai: Enrolment  # official of CENTER: a rescan
    xa: Enrolment  # official of a center of another province
    first: tuple[str, str]  # (dossier id, request id), oldest in the queue
    second: tuple[str, str]

    @property
    def desk(self) -> Desk:
        desk = self.server.server.desk
        assert desk is not None
        return desk


def _card(seed: int) -> bytes:
    """A clean ID card front, captured as a kiosk does."""
    person = docgen.random_person(seed)
    skew = random.Random(seed).uniform(-0.8, 0.8)
    captured = docgen.degrade(
        docgen.id_card_front(person, seed), skew_deg=skew, noise=3.0, blur=0.4, seed=seed
    )
    return docgen.encode(captured, "jpeg", 90)


@pytest.fixture(scope="module")
def console(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Console]:
    server = start_server(tmp_path_factory.mktemp("saoy-console"))
    desk = server.server.desk
    assert desk is not None
    desk.officials.centers.register_center(
        Center(CENTER, "UBND Phường Bàn", "Thành phố Hà Nội", "Phường Bàn, Hà Nội")
    )
    desk.officials.set_center(CENTER, review="all", kiosks=(KIOSK,))
    desk.officials.centers.register_center(  # another province: none of CENTER's dossiers
        Center("000.00.79.XA", "UBND Phường Xa", "Thành phố Hồ Chí Minh", "Phường Xa, TP.HCM")
    )

    def enrol(login: str, name: str, center: str) -> Enrolment:
        return desk.officials.add(
            desk.signers.pki,
            login=login,
            full_name=name,
            title="Công chức Tư pháp - Hộ tịch",
            center=center,
        )

    first = _certify(server, [_card(7)])
    second = _certify(server, [_card(8)])
    yield Console(
        server,
        lan=enrol("lan", "Nguyễn Thị Lan", CENTER),
        binh=enrol("binh", "Trần Văn Bình", CENTER),
        mai=enrol("mai", "Hoàng Thị Mai", CENTER),
        xa=enrol("xa", "Đỗ Văn Xa", "000.00.79.XA"),
        first=first,
        second=second,
    )
    server.stop()


def _code(enrolment: Enrolment) -> str:
    return pyotp.parse_uri(enrolment.totp_uri).now()


def _wrong_code(enrolment: Enrolment) -> str:
    totp = pyotp.parse_uri(enrolment.totp_uri)
    right = {totp.at(time.time() + step * 30) for step in (-1, 0, 1)}
    return next(c for c in (f"{n:06d}" for n in range(1000)) if c not in right)


def _sign_in(page: Page, console: Console, enrolment: Enrolment, code: str) -> None:
    page.goto(f"{console.server.http}/desk")
    page.fill("#login", enrolment.official.id)
    page.fill("#password", enrolment.password)
    page.fill("#totp", code)
    with page.expect_navigation():
        page.click("#sign-in")


def test_wrong_totp_missing_csrf_and_another_provinces_official_are_refused(
    page: Page, browser: Browser, console: Console
) -> None:
    http = console.server.http
    dossier_id = console.first[0]

    answer = page.goto(f"{http}/desk/signin")
    assert answer is not None
    assert answer.headers["content-security-policy"] == CONTENT_SECURITY_POLICY
    _sign_in(page, console, console.binh, _wrong_code(console.binh))
    assert page.url.endswith("/desk/signin")
    assert "wrong" in page.inner_text("#error")
    assert SESSION_COOKIE not in {c["name"] for c in page.context.cookies()}
    metrics = page.request.get(f"{http}/metrics").text()
    assert 'saoy_official_sign_ins_total{result="refused"} 1.0' in metrics

    _sign_in(page, console, console.binh, _code(console.binh))
    assert page.url.endswith("/desk/queue")
    session = next(c for c in page.context.cookies() if c["name"] == SESSION_COOKIE)
    assert session["httpOnly"] and session["sameSite"] == "Strict"
    approve = f"{http}/desk/d/{dossier_id}/approve"
    for form in ({}, {"csrf": "0" * 64}):
        refused = page.request.post(approve, form=form, max_redirects=0)
        assert refused.status == 403 and "CSRF" in refused.text()
    assert page.request.post(f"{http}/desk/signout", form={}, max_redirects=0).status == 403
    assert console.desk.status(dossier_id).state == "waiting"

    # a disabled official is out at once
    console.desk.officials.disable("binh")
    page.goto(f"{http}/desk/queue")
    assert page.url.endswith("/desk/signin")

    # an official of another province sees neither the dossier nor its pages
    other = browser.new_context()
    stranger = other.new_page()
    _sign_in(stranger, console, console.xa, _code(console.xa))
    assert stranger.url.endswith("/desk/queue")
    assert stranger.locator("#empty").count() == 1
    answer = stranger.goto(f"{http}/desk/d/{dossier_id}")
    assert answer is not None and answer.status == 403
    assert "another province" in stranger.inner_text("#error")
    assert stranger.request.get(f"{http}/desk/d/{dossier_id}/page/0").status == 403
    other.close()
    anonymous = browser.new_context()
    assert anonymous.request.get(f"{http}/desk/d/{dossier_id}/page/0").status == 401
    anonymous.close()
    assert console.desk.status(dossier_id).state == "waiting"


def test_an_official_approves_one_dossier_refuses_another_and_the_queue_shrinks(
    page: Page, console: Console
) -> None:
    http = console.server.http
    first, request_id = console.first
    second = console.second[0]
    watcher = Watcher(console.server, first, request_id)
    assert watcher.wait_for(cpb.DossierUpdate.WAITING)
    blocked: list[str] = []  # what the Content-Security-Policy refused: nothing
    page.on(
        "console",
        lambda m: blocked.append(m.text) if "Content Security Policy" in m.text else None,
    )

    _sign_in(page, console, console.lan, _code(console.lan))
    assert page.inner_text("#waiting") == "2"
    rows = page.locator("#queue tbody tr")
    assert rows.count() == 2 and rows.first.get_attribute("data-dossier") == first
    # the legal deadline (the receipt's appointment) leads each row: the queue's order
    assert re.fullmatch(r"\d\d/\d\d/\d{4} \d\d:\d\d", rows.first.locator(".deadline").inner_text())
    assert rows.first.locator(".thumbs img").count() == 1

    # a correction that breaks its field's grammar is shown next to the field
    with page.expect_navigation():
        page.keyboard.press("Enter")
    assert page.inner_text("#dossier-id") == first
    assert page.locator("#page-0 img").evaluate("img => img.naturalWidth") > 0
    assert page.locator("#page-0 tr[data-field='id_number']").count() == 1
    assert page.inner_text("#liveness") == "head_turn:left+screen"
    assert page.locator("#identity img").count() == 0
    page.fill("#fix-0-id_number", "12345")
    with page.expect_navigation():
        page.click("#approve")
    assert "id_number" in page.inner_text("#error-0-id_number")
    assert page.input_value("#fix-0-id_number") == "12345"
    page.keyboard.press("Escape")
    with page.expect_navigation():
        page.keyboard.press("q")  # release, back to the queue
    assert page.url.endswith("/desk/queue")

    # a clean review, by keyboard: open the oldest dossier, look, approve
    started = time.monotonic()
    with page.expect_navigation():
        page.keyboard.press("Enter")
    page.locator("#page-0 img").evaluate("img => img.decode()")
    with page.expect_navigation():
        page.keyboard.press("a")
    page.wait_for_selector("#issued-code")
    elapsed = time.monotonic() - started
    print(f"\nclean review in the browser (open, look, approve): {elapsed:.2f} s")
    assert elapsed < 30
    code = page.inner_text("#issued-code")
    assert page.inner_text("#register-entry").startswith("Số chứng thực")
    assert page.inner_text("#waiting") == "1"

    issued = watcher.wait_for(cpb.DossierUpdate.ISSUED)
    watcher.close()
    assert issued.issued.code == code
    with console.server.client() as client:
        assert client.verify_code(code).verdict == vpb.VerificationResult.VALID

    # refusal: R, a ground of Decree 23/2015 art. 22, words for the citizen
    with page.expect_navigation():
        page.keyboard.press("Enter")
    assert page.inner_text("#dossier-id") == second
    page.keyboard.press("r")
    assert page.evaluate("document.activeElement.id") == "ground"
    page.select_option("#ground", "damaged")
    page.fill("#refuse-message", "Bản chính bị rách, mất ngày cấp")
    with page.expect_navigation():
        page.keyboard.press("Enter")
    assert page.locator("#notice").count() == 1
    assert page.inner_text("#waiting") == "0" and page.locator("#empty").count() == 1
    refused = console.desk.status(second)
    assert refused.state == "refused" and refused.ground == "damaged"

    assert blocked == []
    metrics = page.request.get(f"{http}/metrics").text()
    assert 'saoy_reviews_total{outcome="approved"} 1.0' in metrics
    assert 'saoy_reviews_total{outcome="refused"} 1.0' in metrics

    # English on request; sign-out ends the session
    page.goto(f"{http}/desk/queue?lang=en")
    assert "Dossiers waiting for review" in page.inner_text("h1")
    with page.expect_navigation():
        page.click("#sign-out")
    assert page.url.endswith("/desk/signin")
    page.goto(f"{http}/desk/queue")
    assert page.url.endswith("/desk/signin")


def test_a_rescan_names_the_page_and_the_kiosk_is_told(page: Page, console: Console) -> None:
    dossier_id, request_id = _certify(console.server, [_card(9)])
    watcher = Watcher(console.server, dossier_id, request_id)
    assert watcher.wait_for(cpb.DossierUpdate.WAITING)
    _sign_in(page, console, console.mai, _code(console.mai))
    lan = console.desk.officials.get("lan")
    console.desk.claim(lan, dossier_id)  # another official holds it: mai is told who
    answer = page.goto(f"{console.server.http}/desk/d/{dossier_id}")
    assert answer is not None and answer.status == 409
    assert "Nguyễn Thị Lan (lan) holds this dossier" in page.inner_text("#error")
    console.desk.release(lan, dossier_id)
    page.goto(f"{console.server.http}/desk/d/{dossier_id}")
    page.keyboard.press("?")
    assert page.locator("#help").is_visible()
    page.keyboard.press("Escape")
    assert not page.locator("#help").is_visible()
    deadline = time.monotonic() + 20
    claimed_by: list[str] = []
    while "Hoàng Thị Mai" not in claimed_by and time.monotonic() < deadline:
        time.sleep(0.05)
        claimed_by = [u.official for u in watcher.updates if u.state == cpb.DossierUpdate.CLAIMED]
    assert claimed_by[-1] == "Hoàng Thị Mai"
    page.keyboard.press("s")
    assert page.evaluate("document.activeElement.id") == "rescan-page"
    page.select_option("#rescan-page", "0")
    page.fill("#rescan-reason", "Ảnh bị lóa ở góc phải")
    with page.expect_navigation():
        page.keyboard.press("Enter")
    assert page.locator("#notice").count() == 1
    told = watcher.wait_for(cpb.DossierUpdate.RESCAN_REQUESTED)
    watcher.close()
    assert told.page == 0 and told.message == "Ảnh bị lóa ở góc phải"

    # a session that has expired is over
    db = console.desk.db
    with db.transaction(write=True) as rows:
        rows.execute(
            "UPDATE official_sessions SET expires_at = ? WHERE official_id = 'mai'",
            (db.ts(datetime.now(UTC) - timedelta(seconds=1)),),
        )
    page.goto(f"{console.server.http}/desk/queue")
    assert page.url.endswith("/desk/signin")


def test_the_queue_page_keeps_itself_current(page: Page, console: Console) -> None:
    """A dossier arriving while the queue is open shows up without the official reloading,
    with the center that received it."""
    desk = console.desk
    tam = desk.officials.add(
        desk.signers.pki,
        login="tam",
        full_name="Ngô Thị Tâm",
        title="Công chức Tư pháp - Hộ tịch",
        center=CENTER,
    )
    page.clock.install()
    _sign_in(page, console, tam, _code(tam))
    assert page.url.endswith("/desk/queue")
    before = int(page.inner_text("#waiting"))
    state = page.request.get(f"{console.server.http}/desk/queue/state").json()
    assert state["waiting"] == before
    dossier_id, _ = _certify(console.server, [_card(9)])
    page.clock.run_for(11_000)  # the page polls every 10 s
    row = page.wait_for_selector(f"tr[data-dossier='{dossier_id}']", timeout=20_000)
    assert row is not None
    assert int(page.inner_text("#waiting")) == before + 1
    assert page.inner_text(f"tr[data-dossier='{dossier_id}'] td.center") == CENTER
    anonymous = page.context.browser.new_context()  # type: ignore[union-attr]
    refused = anonymous.request.get(f"{console.server.http}/desk/queue/state", max_redirects=0)
    assert refused.status == 303 and refused.headers["location"].endswith("/desk/signin")
    anonymous.close()
