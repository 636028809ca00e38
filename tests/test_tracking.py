"""A citizen's receipt and the dossier's status, through a real server: the Received event of
the Certify stream, Tracking.GetDossier / WatchDossier, the status page and the CLI."""

from __future__ import annotations

import json
import random
import re
import threading
import urllib.error
import urllib.request
from datetime import UTC
from pathlib import Path

import grpc
import pytest

from saoy.clients import cli
from saoy.clients.sdk import CertifyResult, TrackingClient
from saoy.clients.simulator import docgen
from saoy.core.reception.centers import DEV_CENTER_CODE
from saoy.core.reception.deadlines import VIETNAM, WorkCalendar, appointment
from saoy.core.reception.vietqr import parse
from saoy.v1 import certification_pb2 as cpb
from saoy.v1 import tracking_pb2 as tpb

from .conftest import RunningServer

CODE = re.compile(re.escape(DEV_CENTER_CODE) + r"-\d{6}-\d{4}")
RETURNED = tpb.PORTAL_STATUS_RETURNED


def reference_card() -> bytes:
    """The reference dossier's first page (the ID card front, seed 7) drawn alone: the whole
    dossier takes seconds to draw."""
    person = docgen.random_person(7)
    skew = random.Random(7).uniform(-0.8, 0.8)
    captured = docgen.degrade(
        docgen.id_card_front(person, 7), skew_deg=skew, noise=3.0, blur=0.4, seed=7
    )
    return docgen.encode(captured, "jpeg", 90)


@pytest.fixture(scope="module")
def first_page() -> bytes:
    return reference_card()


@pytest.fixture(scope="module")
def certified(server: RunningServer, first_page: bytes) -> CertifyResult:
    with server.client(kiosk_id="kiosk-track") as client:
        return client.certify(
            [first_page],
            session_token=server.token("kiosk-track"),
            copies=2,
            request_id="track-0001",
        )


def test_the_receipt_comes_once_the_pages_are_in_and_before_recognition(
    certified: CertifyResult,
) -> None:
    kinds = [e.WhichOneof("event") for e in certified.events]
    assert kinds == ["page_accepted", "received", "recognized", "validated", "issued"]
    receipt = certified.received
    assert receipt is not None
    assert CODE.fullmatch(receipt.dossier_code), receipt.dossier_code
    assert receipt.dossier_code != certified.issued.code  # not the copy's verification code
    assert (receipt.pages, receipt.copies, receipt.fee_vnd) == (1, 2, 4_000)
    assert receipt.center_code == DEV_CENTER_CODE and receipt.center_name
    received_at = receipt.received_at.ToDatetime(tzinfo=UTC)
    assert receipt.appointment.ToDatetime(tzinfo=UTC) == appointment(received_at, WorkCalendar())
    local_day = received_at.astimezone(VIETNAM).strftime("%y%m%d")
    assert receipt.dossier_code.split("-")[1] == local_day
    assert receipt.status_url.endswith(f"/d/{receipt.dossier_code}?s={receipt.lookup_secret}")
    payment = parse(receipt.payment_qr)
    assert payment["54"] == "4000" and receipt.dossier_code in payment["62"]
    assert len({e.dossier_id for e in certified.events}) == 1


def test_a_replayed_request_repeats_its_receipt(
    server: RunningServer, certified: CertifyResult, first_page: bytes
) -> None:
    with server.client(kiosk_id="kiosk-track") as client:
        again = client.certify(
            [first_page], session_token=server.token("kiosk-track"), request_id="track-0001"
        )
    assert [e.WhichOneof("event") for e in again.events] == ["received", "issued"]
    assert again.received == certified.received


def test_get_dossier_shows_every_status_with_the_secret(
    server: RunningServer, certified: CertifyResult
) -> None:
    receipt = certified.received
    with TrackingClient(server.target) as tracking:
        found = tracking.get(receipt.dossier_code, receipt.lookup_secret.lower())
    assert found.status == RETURNED and found.final and not found.late
    assert (found.status_vi, found.status_en) == ("Đã trả kết quả", "Result returned")
    assert [c.status for c in found.history] == [2, 4, 9, 10]
    times = [c.at.ToDatetime() for c in found.history]
    assert times == sorted(times)
    assert found.copy_code == certified.issued.code and found.copy_url == certified.issued.url
    assert found.center.code == DEV_CENTER_CODE and found.fee_vnd == 4_000
    text = str(found)
    assert "kiosk-track" not in text and "track-0001" not in text  # nothing of who sent it


def test_a_wrong_secret_answers_like_an_unknown_code(
    server: RunningServer, certified: CertifyResult
) -> None:
    receipt = certified.received
    answers = []
    with TrackingClient(server.target) as tracking:
        for code, secret in (
            (receipt.dossier_code, "ZZZZZ-ZZZZZ"),
            (receipt.dossier_code[:-4] + "9999", receipt.lookup_secret),
        ):
            with pytest.raises(grpc.RpcError) as error:
                tracking.get(code, secret)
            answers.append((error.value.code(), error.value.details()))
        with pytest.raises(grpc.RpcError) as empty:
            tracking.get(receipt.dossier_code, " ")
    assert answers[0] == answers[1] and answers[0][0] == grpc.StatusCode.NOT_FOUND
    assert empty.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "secret" in empty.value.details()


def test_watch_follows_a_dossier_from_receipt_to_result(
    server: RunningServer, first_page: bytes
) -> None:
    updates: list[tpb.TrackedDossier] = []
    failures: list[BaseException] = []
    watchers: list[threading.Thread] = []

    def watch(receipt: cpb.Received) -> None:
        try:
            with TrackingClient(server.target) as tracking:
                updates.extend(
                    tracking.watch(receipt.dossier_code, receipt.lookup_secret, timeout=60)
                )
        except BaseException as error:  # surfaced below
            failures.append(error)

    def on_event(event: cpb.CertifyEvent) -> None:
        if event.HasField("received"):
            thread = threading.Thread(target=watch, args=(event.received,))
            thread.start()
            watchers.append(thread)

    with server.client(kiosk_id="kiosk-watch") as client:
        result = client.certify(
            [first_page], session_token=server.token("kiosk-watch"), on_event=on_event
        )
    assert result.issued is not None
    watchers[0].join(60)
    assert not failures, failures
    assert updates[0].status in (tpb.PORTAL_STATUS_PROCESSING, RETURNED)
    assert updates[-1].status == RETURNED and updates[-1].final
    assert [c.status for c in updates[-1].history] == [2, 4, 9, 10]


def test_the_status_page_shows_the_result_in_vietnamese_and_english(
    server: RunningServer, certified: CertifyResult
) -> None:
    receipt = certified.received
    with urllib.request.urlopen(
        receipt.status_url.replace("http://localhost", "http://127.0.0.1")
    ) as response:
        page = response.read().decode()
        assert response.headers["Cache-Control"] == "no-store"
    assert "Đã trả kết quả" in page and "Result returned" in page
    assert receipt.dossier_code in page and "4.000 ₫" in page
    assert certified.issued.code in page
    wrong = f"{server.http}/d/{receipt.dossier_code}?s=ZZZZZ-ZZZZZ"
    with pytest.raises(urllib.error.HTTPError) as missing:
        urllib.request.urlopen(wrong)
    assert missing.value.code == 404
    body = missing.value.read().decode()
    assert "Đã trả kết quả" not in body and certified.issued.code not in body
    form = f"{server.http}/d?code={receipt.dossier_code}&s={receipt.lookup_secret}"
    with urllib.request.urlopen(form) as response:  # the form redirects to the page
        assert receipt.dossier_code in response.read().decode()


def test_saoy_certify_json_prints_the_receipt(
    server: RunningServer, first_page: bytes, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    page = tmp_path / "page.jpg"
    page.write_bytes(first_page)
    code = cli.main(
        [
            "certify",
            "--server",
            server.target,
            "--kiosk",
            "kiosk-cli",
            "--json",
            "--copies",
            "3",
            "--session-token",
            server.token("kiosk-cli"),
            "--out",
            str(tmp_path),
            str(page),
        ]
    )
    out = json.loads(capsys.readouterr().out)
    assert code == 0, out
    assert CODE.fullmatch(out["dossier_code"])
    assert out["fee_vnd"] == 6_000 and out["copies"] == 3
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT17:00:00\+07:00", out["appointment"])
    assert out["status_url"].endswith(out["lookup_secret"])


def test_the_receipt_pdf_carries_the_code_fee_appointment_and_both_qr_codes(
    server: RunningServer, certified: CertifyResult, tmp_path: Path
) -> None:
    import subprocess

    import zxingcpp
    from PIL import Image

    receipt = certified.received
    with TrackingClient(server.target) as tracking:
        pdf = tracking.receipt_pdf(receipt.dossier_code, receipt.lookup_secret)
        with pytest.raises(grpc.RpcError) as wrong:
            tracking.receipt_pdf(receipt.dossier_code, "ZZZZZ-ZZZZZ")
    assert wrong.value.code() == grpc.StatusCode.NOT_FOUND
    url = f"{server.http}/d/{receipt.dossier_code}/receipt.pdf?s={receipt.lookup_secret}"
    with urllib.request.urlopen(url) as response:
        assert response.headers["Content-Type"] == "application/pdf"
        assert response.read() == pdf
    path = tmp_path / "receipt.pdf"
    path.write_bytes(pdf)
    text = subprocess.run(["pdftotext", str(path), "-"], capture_output=True, text=True).stdout
    for expected in (
        "PHIẾU TIẾP NHẬN HỒ SƠ VÀ HẸN TRẢ KẾT QUẢ",
        receipt.dossier_code,
        receipt.lookup_secret,
        "4.000 ₫",
        "17:00 ngày",
    ):
        assert expected in text, expected
    subprocess.run(["pdftoppm", "-r", "150", "-png", str(path), str(tmp_path / "p")], check=True)
    image = Image.open(next(tmp_path.glob("p*.png")))
    decoded = {b.text for b in zxingcpp.read_barcodes(image)}
    assert decoded == {receipt.status_url, receipt.payment_qr}


def test_saoy_track_prints_the_status_and_saves_the_receipt(
    server: RunningServer,
    certified: CertifyResult,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    receipt = certified.received
    pdf = tmp_path / "receipt.pdf"
    argv = ["track", receipt.dossier_code, receipt.lookup_secret, "--server", server.target]
    assert cli.main([*argv, "--json", "--receipt", str(pdf)]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["status"] == 10 and [c["status"] for c in out["history"]] == [2, 4, 9, 10]
    assert out["appointment"].endswith("T17:00:00+07:00")
    assert pdf.read_bytes().startswith(b"%PDF")
    assert cli.main(argv) == 0
    text = capsys.readouterr().out
    assert text.startswith(f"{receipt.dossier_code}  10 Đã trả kết quả / Result returned")
    wrong = ["track", receipt.dossier_code, "ZZZZZ-ZZZZZ", "--server", server.target]
    assert cli.main(wrong) == 1
    assert "NOT_FOUND" in capsys.readouterr().err


def test_the_citizen_rates_the_service_once(
    server: RunningServer, certified: CertifyResult
) -> None:
    receipt = certified.received
    with TrackingClient(server.target) as tracking:
        for score, secret, expected in (
            (0, receipt.lookup_secret, grpc.StatusCode.INVALID_ARGUMENT),
            (6, receipt.lookup_secret, grpc.StatusCode.INVALID_ARGUMENT),
            (5, "ZZZZZ-ZZZZZ", grpc.StatusCode.NOT_FOUND),
        ):
            with pytest.raises(grpc.RpcError) as refused:
                tracking.rate(receipt.dossier_code, secret, score)
            assert refused.value.code() == expected
        rated = tracking.rate(receipt.dossier_code, receipt.lookup_secret, 5)
        assert rated.rated_at.seconds > 0
        with pytest.raises(grpc.RpcError) as twice:
            tracking.rate(receipt.dossier_code, receipt.lookup_secret, 1)
    assert twice.value.code() == grpc.StatusCode.ALREADY_EXISTS
