"""The bank's signed notice that a fee was paid (Tracking.ConfirmPayment): recorded once, for
the receipt's amount; a bad signature changes nothing."""

from __future__ import annotations

import json
import urllib.request
from datetime import datetime

import grpc
import pytest

from saoy.clients.sdk import CertifyResult, TrackingClient
from saoy.core.errors import InvalidInput, NotFound, OutOfOrder, Unauthenticated
from saoy.core.reception.deadlines import VIETNAM
from saoy.core.reception.reception import (
    AlreadyPaid,
    Payment,
    Reception,
    sign_payment_notice,
    verify_payment_notice,
)
from saoy.v1 import tracking_pb2 as tpb
from saoy.v1 import tracking_pb2_grpc as tgrpc
from tests.pg import postgres_server, postgresql_url

from .conftest import RunningServer
from .test_reception import clock, receive, reception, registry
from .test_tracking import reference_card

__all__ = ["clock", "postgres_server", "postgresql_url", "reception", "registry"]

BANK_KEY = b"b" * 32
PAID_AT = datetime(2026, 12, 7, 10, 5, tzinfo=VIETNAM)


def notice(code: str, amount: int = 5_000, reference: str = "FT26341000001") -> bytes:
    return json.dumps(
        {
            "dossier_code": code,
            "amount_vnd": amount,
            "bank_reference": reference,
            "paid_at": PAID_AT.isoformat(),
        }
    ).encode()


def test_a_notice_is_read_only_once_its_signature_verifies() -> None:
    body = notice("000.00.01.H26-261207-0001")
    signature = sign_payment_notice(BANK_KEY, body)
    payment = verify_payment_notice(BANK_KEY, body, signature)
    assert payment == Payment("000.00.01.H26-261207-0001", 5_000, "FT26341000001", PAID_AT)
    assert verify_payment_notice(BANK_KEY, body, "sha256=" + signature.upper()) == payment
    with pytest.raises(Unauthenticated) as forged:
        verify_payment_notice(BANK_KEY, body.replace(b"5000", b"500"), signature)
    assert forged.value.reason == "BAD_SIGNATURE" and forged.value.field == "signature"
    with pytest.raises(Unauthenticated):
        verify_payment_notice(b"x" * 32, body, signature)
    for bad in (b"{}", b"not json", notice("000.00.01.H26-261207-0001", amount=-1)):
        with pytest.raises(InvalidInput) as malformed:
            verify_payment_notice(BANK_KEY, bad, sign_payment_notice(BANK_KEY, bad))
        assert malformed.value.field == "body"


def test_a_payment_is_recorded_once_for_the_fee(reception: Reception) -> None:
    receipt = receive(reception, pages=3)  # 5,000 VND
    code = receipt.dossier_code
    with pytest.raises(OutOfOrder) as short:
        reception.confirm_payment(Payment(code, 4_000, "FT-1", PAID_AT))
    assert short.value.reason == "AMOUNT_MISMATCH"
    assert reception.view(code, receipt.lookup_secret).payment is None

    paid, again = reception.confirm_payment(Payment(code, 5_000, "FT-1", PAID_AT))
    assert not again and paid.amount_vnd == 5_000
    repeated, again = reception.confirm_payment(Payment(code, 5_000, "FT-1", PAID_AT))
    assert again and repeated == paid
    with pytest.raises(AlreadyPaid) as twice:
        reception.confirm_payment(Payment(code, 5_000, "FT-2", PAID_AT))
    assert twice.value.status == "ALREADY_EXISTS"
    other = receive(reception, pages=3)
    with pytest.raises(AlreadyPaid):  # one bank transfer pays one dossier
        reception.confirm_payment(Payment(other.dossier_code, 5_000, "FT-1", PAID_AT))
    view = reception.view(code, receipt.lookup_secret)
    assert view.payment == Payment(code, 5_000, "FT-1", PAID_AT)


def test_nothing_is_due_where_fees_are_waived_and_unknown_codes_are_not_found(
    reception: Reception,
) -> None:
    waived = receive(reception, "hue-01")
    with pytest.raises(OutOfOrder) as nothing:
        reception.confirm_payment(Payment(waived.dossier_code, 2_000, "FT-9", PAID_AT))
    assert nothing.value.reason == "NOTHING_DUE"
    with pytest.raises(NotFound):
        reception.confirm_payment(Payment("000.00.01.H26-261207-0999", 2_000, "FT-8", PAID_AT))


@pytest.fixture(scope="module")
def certified(server: RunningServer) -> CertifyResult:
    with server.client(kiosk_id="kiosk-pay") as client:
        return client.certify([reference_card()], session_token=server.token("kiosk-pay"))


def test_confirm_payment_through_the_server(
    server: RunningServer, certified: CertifyResult
) -> None:
    receipt = certified.received
    assert receipt is not None and receipt.fee_vnd == 2_000
    key = (server.data_dir / "keys" / "payment-callback.key").read_bytes()
    body = notice(receipt.dossier_code, 2_000, "FT26341777")
    with grpc.insecure_channel(server.target) as channel:
        stub = tgrpc.TrackingStub(channel)
        with pytest.raises(grpc.RpcError) as forged:
            stub.ConfirmPayment(tpb.PaymentNotice(body=body, signature="00" * 32))
        assert forged.value.code() == grpc.StatusCode.UNAUTHENTICATED
        with TrackingClient(server.target) as tracking:
            assert not tracking.get(receipt.dossier_code, receipt.lookup_secret).paid
        signed = tpb.PaymentNotice(body=body, signature=sign_payment_notice(key, body))
        confirmed = stub.ConfirmPayment(signed)
        assert not confirmed.already_recorded and confirmed.amount_vnd == 2_000
        assert stub.ConfirmPayment(signed).already_recorded
        wrong = notice(receipt.dossier_code, 3_000, "FT26341778")
        with pytest.raises(grpc.RpcError) as mismatch:
            stub.ConfirmPayment(
                tpb.PaymentNotice(body=wrong, signature=sign_payment_notice(key, wrong))
            )
        assert mismatch.value.code() == grpc.StatusCode.ALREADY_EXISTS
    with TrackingClient(server.target) as tracking:
        found = tracking.get(receipt.dossier_code, receipt.lookup_secret)
    assert found.paid and found.paid_at.ToDatetime().isoformat().startswith("2026-12-07T03:05")
    url = receipt.status_url.replace("localhost", "127.0.0.1")
    with urllib.request.urlopen(url) as response:
        page = response.read().decode()
    assert "đã thanh toán / paid" in page and "payment-qr" not in page
