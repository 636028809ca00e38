"""The verification page as a person uses it, in a real headless Chromium."""

from __future__ import annotations

from pathlib import Path

import pytest
from playwright.sync_api import Page

from saoy.clients.sdk import CertifyResult

from .conftest import RunningServer


@pytest.fixture(scope="module")
def certified(server: RunningServer, reference_dossier: list[tuple[str, bytes]]) -> CertifyResult:
    with server.client(kiosk_id="kiosk-page") as client:
        return client.certify(
            [data for _, data in reference_dossier[:2]], session_token=server.token("kiosk-page")
        )


@pytest.fixture(scope="module")
def copy_pdf(server: RunningServer, certified: CertifyResult, tmp_path_factory) -> Path:
    assert certified.issued is not None
    with server.client() as client:
        data = client.download(certified.issued.code)
    path = tmp_path_factory.mktemp("page") / "copy.pdf"
    path.write_bytes(data)
    return path


def test_the_qr_url_shows_a_valid_copy_and_downloads_it(
    page: Page, certified: CertifyResult, copy_pdf: Path, tmp_path: Path
) -> None:
    assert certified.issued is not None
    page.goto(certified.issued.url.replace("localhost", "127.0.0.1"))
    assert page.inner_text("#verdict") == "HỢP LỆ / VALID"
    assert page.inner_text("#code") == certified.issued.code
    assert page.inner_text("#issuer") == certified.issued.issuer
    assert page.inner_text("#pages") == "2"
    assert "(GMT+7)" in page.inner_text("#issued")
    with page.expect_download() as download:
        page.click("#download")
    saved = tmp_path / "downloaded.pdf"
    download.value.save_as(saved)
    assert saved.read_bytes() == copy_pdf.read_bytes()


def test_a_typed_code_with_a_typo_and_an_unknown_code(page: Page, server: RunningServer) -> None:
    page.goto(server.http + "/")
    page.fill("#code-input", "0000 0000 0000 0000 0000")
    page.click("#code-form button")
    assert page.inner_text("#verdict") == "KHÔNG TÌM THẤY / UNKNOWN"
    page.fill("#code-input", "0000-0000-0000-0000-0001")
    page.click("#code-form button")
    assert page.inner_text("#verdict") == "KHÔNG TÌM THẤY / UNKNOWN"
    assert "typing mistake" in page.inner_text("#reason")


def test_uploading_the_copy_and_an_altered_copy(
    page: Page, server: RunningServer, copy_pdf: Path, tmp_path: Path
) -> None:
    page.goto(server.http + "/")
    page.set_input_files("#pdf-input", str(copy_pdf))
    page.click("#upload-form button")
    assert page.inner_text("#verdict") == "HỢP LỆ / VALID"

    altered = tmp_path / "altered.pdf"
    data = bytearray(copy_pdf.read_bytes())
    data[len(data) // 2] ^= 0x04
    altered.write_bytes(bytes(data))
    page.goto(server.http + "/")
    page.set_input_files("#pdf-input", str(altered))
    page.click("#upload-form button")
    assert page.inner_text("#verdict") == "ĐÃ BỊ THAY ĐỔI / ALTERED"
