"""The dossier's status page as a citizen uses it (the receipt's QR, or the look-up form), in a
real headless Chromium."""

from __future__ import annotations

import pytest
from playwright.sync_api import Page

from saoy.clients.sdk import CertifyResult

from .conftest import RunningServer
from .test_tracking import reference_card


@pytest.fixture(scope="module")
def certified(server: RunningServer) -> CertifyResult:
    with server.client(kiosk_id="kiosk-status-page") as client:
        return client.certify([reference_card()], session_token=server.token("kiosk-status-page"))


def test_the_receipts_qr_opens_the_status_of_the_dossier(
    page: Page, certified: CertifyResult
) -> None:
    receipt = certified.received
    assert receipt is not None and certified.issued is not None
    page.goto(receipt.status_url.replace("localhost", "127.0.0.1"))
    assert page.inner_text("#status").splitlines() == ["Đã trả kết quả", "Result returned"]
    assert page.inner_text("#dossier-code") == receipt.dossier_code
    assert page.inner_text("#fee") == "2.000 ₫"
    assert page.locator("#history li").count() == 4
    assert "Được tiếp nhận / Received" in page.inner_text("#history")
    assert page.inner_text("#copy-link") == certified.issued.code
    assert page.locator("#payment-qr svg").count() == 1
    assert page.locator("#late").count() == 0


def test_the_look_up_form_needs_the_right_secret(
    page: Page, server: RunningServer, certified: CertifyResult
) -> None:
    receipt = certified.received
    assert receipt is not None
    page.goto(f"{server.http}/d")
    page.fill("#code-input", receipt.dossier_code)
    page.fill("#secret-input", "ZZZZZ-ZZZZZ")
    with page.expect_navigation():
        page.click("#lookup-form button")
    assert page.locator("#status").count() == 0
    assert "no dossier matches" in page.inner_text("#message")
    page.fill("#code-input", receipt.dossier_code)
    page.fill("#secret-input", receipt.lookup_secret.lower().replace("-", " "))
    with page.expect_navigation():
        page.click("#lookup-form button")
    assert page.inner_text("#dossier-code") == receipt.dossier_code
