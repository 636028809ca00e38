"""A citizen's whole trip through a real server: the receipt with its fee and appointment, the
bank's payment, an official's review, issuance, the copy mailed over STARTTLS to a real SMTP
server, and the status page saying "Đã trả kết quả"."""

from __future__ import annotations

import email
import email.policy
import json
import urllib.request
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import grpc
import pyotp
import pytest

from saoy.clients.sdk import DeskClient, KioskClient, TrackingClient
from saoy.core.reception.centers import Center, Centers, ReceptionDb
from saoy.core.reception.deadlines import VIETNAM, WorkCalendar, appointment
from saoy.core.reception.reception import sign_payment_notice
from saoy.core.reception.vietqr import Payee, parse
from saoy.v1 import kpi_pb2, kpi_pb2_grpc
from saoy.v1 import tracking_pb2 as tpb
from saoy.v1 import tracking_pb2_grpc as tgrpc

from .conftest import RunningServer, start_server
from .test_delivery import Mailbox, _card, _until, starttls_smtp

CENTER = Center(
    "000.00.01.TRIP",
    "UBND Phường Hành Trình",
    "Thành phố Hà Nội",
    "1 Đường Thử, Hà Nội",
    payee=Payee("970436", "0123456789"),
)
KIOSK = "kiosk-trip"


@pytest.fixture(scope="module")
def trip(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[RunningServer, Mailbox]]:
    folder = tmp_path_factory.mktemp("trip")
    with starttls_smtp(folder) as (mailbox, port, cert):
        yield from _trip(folder, mailbox, port, cert)


def _trip(
    folder: Path, mailbox: Mailbox, port: int, cert: Path
) -> Iterator[tuple[RunningServer, Mailbox]]:
    server = start_server(
        folder / "data",
        identity="off",
        ocr_engine="tesseract",
        signing_level="B-T",
        release_copies="when_paid",
        kiosk_center="",
        smtp_url=f"smtp://127.0.0.1:{port}",
        smtp_from="saoy@trip.test",
        smtp_ca_file=str(cert),
        delivery_interval_seconds=0.2,
        kpi_refresh_seconds=0.2,
    )
    # The head of center registers the center, with review of every dossier, and its kiosk:
    # once, for reception and the desk alike.
    centers = Centers(ReceptionDb(server.server.certifier.registry))
    centers.register_center(CENTER)
    centers.set_review(CENTER.code, "all")
    centers.register_kiosk(KIOSK, CENTER.code)
    yield server, mailbox
    server.stop()


def test_a_citizens_whole_trip(trip: tuple[RunningServer, Mailbox]) -> None:
    server, mailbox = trip
    # 1. At the kiosk: two copies of a one-page original, the copy to be mailed.
    with KioskClient(server.target, kiosk_id=KIOSK) as kiosk:
        result = kiosk.certify([_card(11)], copies=2, email="citizen@example.vn")
    receipt = result.received
    assert receipt is not None and result.state == "NEEDS_REVIEW"
    assert receipt.dossier_code.startswith(CENTER.code + "-")
    assert receipt.fee_vnd == 4_000 and parse(receipt.payment_qr)["54"] == "4000"
    received_at = receipt.received_at.ToDatetime(tzinfo=UTC)
    assert receipt.appointment.ToDatetime(tzinfo=UTC) == appointment(received_at, WorkCalendar())

    # 2. The bank reports the payment.
    key = (server.data_dir / "keys" / "payment-callback.key").read_bytes()
    body = json.dumps(
        {
            "dossier_code": receipt.dossier_code,
            "amount_vnd": 4_000,
            "bank_reference": "FT-TRIP-0001",
            "paid_at": received_at.isoformat(),
        }
    ).encode()
    with grpc.insecure_channel(server.target) as channel:
        tgrpc.TrackingStub(channel).ConfirmPayment(
            tpb.PaymentNotice(body=body, signature=sign_payment_notice(key, body))
        )
    with TrackingClient(server.target) as tracking:
        waiting = tracking.get(receipt.dossier_code, receipt.lookup_secret)
    assert waiting.paid and waiting.status == tpb.PORTAL_STATUS_PROCESSING
    assert mailbox.messages == []  # nothing to send before the official decides

    # 3. An official of the center reviews and approves.
    desk = server.server.desk
    assert desk is not None
    enrolment = desk.officials.add(
        desk.signers.pki,
        login="trip",
        full_name="Nguyễn Văn Hành",
        title="Công chức Tư pháp - Hộ tịch",
        center=CENTER.code,
        role="official",
    )
    with DeskClient(server.target) as official:
        official.sign_in("trip", enrolment.password, pyotp.parse_uri(enrolment.totp_uri).now())
        dossier_id = result.terminal.dossier_id  # type: ignore[union-attr]
        official.claim(dossier_id)
        approved = official.approve(dossier_id)

    # 4. The copy arrives by email, over STARTTLS.
    to, raw, tls = _until(lambda: mailbox.messages and mailbox.messages[0])
    assert to == ["citizen@example.vn"] and tls
    message = email.message_from_bytes(raw, policy=email.policy.default)
    [attachment] = list(message.iter_attachments())
    assert attachment.get_filename() == f"{approved.issued.code}.pdf"
    with KioskClient(server.target, kiosk_id=KIOSK) as kiosk:
        assert attachment.get_content() == kiosk.download(approved.issued.code)

    # 5. The status page says the result was returned.
    with TrackingClient(server.target) as tracking:
        done = _until(
            lambda: (
                (found := tracking.get(receipt.dossier_code, receipt.lookup_secret)).final and found
            )
        )
    assert [c.status for c in done.history] == [2, 4, 9, 10]
    with urllib.request.urlopen(receipt.status_url.replace("localhost", "127.0.0.1")) as response:
        page = response.read().decode()
    assert "Đã trả kết quả" in page and approved.issued.code in page
    assert "đã thanh toán / paid" in page

    # 6. The center's KPIs count it: on time, paid online, an electronic result.
    day = received_at.astimezone(VIETNAM).date().isoformat()
    with grpc.insecure_channel(server.target) as channel:
        kpi = kpi_pb2_grpc.KpiStub(channel)
        [row] = kpi.Report(kpi_pb2.KpiRequest(by="center", since=day, until=day)).rows
        with pytest.raises(grpc.RpcError) as bad:
            kpi.Report(kpi_pb2.KpiRequest(by="province", since=day, until=day))
    assert bad.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert (row.key, row.received, row.decided, row.issued) == (CENTER.code, 1, 1, 1)
    assert row.on_time_rate == 1.0 and row.online_payment_rate == 1.0
    assert row.electronic_result_rate == 1.0 and not row.HasField("satisfaction_rate")
    with grpc.insecure_channel(server.target) as channel:
        [by_official] = (
            kpi_pb2_grpc.KpiStub(channel)
            .Report(kpi_pb2.KpiRequest(by="official", since=day, until=day))
            .rows
        )
    assert (by_official.key, by_official.decided) == ("trip", 1)
    csv_url = f"{server.http}/kpi.csv?by=center&since={day}&until={day}"
    with urllib.request.urlopen(csv_url) as response:
        lines = response.read().decode().splitlines()
    assert lines[0].startswith("key,received") and lines[1].startswith(f"{CENTER.code},1,1,1,1")
    if received_at.astimezone(VIETNAM).date() == datetime.now(VIETNAM).date():  # not past midnight
        gauge = f'saoy_kpi_ratio{{center="{CENTER.code}",kpi="on_time"}} 1.0'

        def metrics() -> str:
            with urllib.request.urlopen(f"{server.http}/metrics") as response:
                text = response.read().decode()
            return text if gauge in text else ""

        text = _until(metrics, timeout=10)
        assert f'saoy_kpi_ratio{{center="{CENTER.code}",kpi="online_payment"}} 1.0' in text
