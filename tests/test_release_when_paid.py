"""With --release-copies when_paid, a copy whose fee is due is issued and verifiable at once but
handed over (downloadable, status 10) only once the bank's notice of payment arrives."""

from __future__ import annotations

import io
import json
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest

from saoy.clients.sdk import KioskClient, TrackingClient
from saoy.clients.simulator import docgen
from saoy.core.reception.reception import sign_payment_notice
from saoy.v1 import tracking_pb2 as tpb
from saoy.v1 import tracking_pb2_grpc as tgrpc
from saoy.v1 import verification_pb2 as vpb

from .conftest import RunningServer, start_server


@pytest.fixture(scope="module")
def holding_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    running = start_server(
        tmp_path_factory.mktemp("hold"),
        identity="off",
        ocr_engine="tesseract",
        signing_level="B-T",
        release_copies="when_paid",
    )
    yield running
    running.stop()


def test_a_copy_is_handed_over_once_its_fee_is_paid(holding_server: RunningServer) -> None:
    server = holding_server
    buffer = io.BytesIO()
    docgen.id_card_front(docgen.random_person(11), seed=11).image.save(buffer, "JPEG")
    with KioskClient(server.target, kiosk_id="kiosk-hold") as client:
        result = client.certify([buffer.getvalue()])
        assert result.issued is not None, result.state
        code = result.issued.code
        with pytest.raises(grpc.RpcError) as held:
            client.download(code)
        assert held.value.code() == grpc.StatusCode.FAILED_PRECONDITION
        assert "paid" in held.value.details()
        assert client.verify_code(code).verdict == vpb.VerificationResult.VALID
    with pytest.raises(urllib.error.HTTPError) as http_held:
        urllib.request.urlopen(f"{server.http}/v/{code}/copy.pdf")
    assert http_held.value.code == 402
    receipt = result.received
    assert receipt is not None and receipt.fee_vnd == 2_000
    with TrackingClient(server.target) as tracking:
        before = tracking.get(receipt.dossier_code, receipt.lookup_secret)
    assert before.status == tpb.PORTAL_STATUS_PROCESSED and not before.paid

    key = (Path(server.data_dir) / "keys" / "payment-callback.key").read_bytes()
    body = json.dumps(
        {
            "dossier_code": receipt.dossier_code,
            "amount_vnd": 2_000,
            "bank_reference": "FT-HOLD-1",
            "paid_at": "2026-12-07T10:05:00+07:00",
        }
    ).encode()
    with grpc.insecure_channel(server.target) as channel:
        tgrpc.TrackingStub(channel).ConfirmPayment(
            tpb.PaymentNotice(body=body, signature=sign_payment_notice(key, body))
        )
    with KioskClient(server.target, kiosk_id="kiosk-hold") as client:
        assert client.download(code).startswith(b"%PDF")
    with TrackingClient(server.target) as tracking:
        after = tracking.get(receipt.dossier_code, receipt.lookup_secret)
    assert after.status == tpb.PORTAL_STATUS_RETURNED and after.paid and after.final
    assert [c.status for c in after.history] == [2, 4, 9, 10]


def test_saoy_certify_says_the_copy_waits_for_its_fee(
    holding_server: RunningServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from saoy.clients import cli

    page = tmp_path / "card.jpg"
    docgen.id_card_front(docgen.random_person(12), seed=12).image.save(page, "JPEG")
    argv = ["certify", "--server", holding_server.target, "--kiosk", "kiosk-hold2", "--json"]
    code = cli.main([*argv, "--out", str(tmp_path), str(page)])
    captured = capsys.readouterr()
    out = json.loads(captured.out)
    assert code == 0 and out["state"] == "ISSUED", out
    assert out["pdf_path"] is None and out["fee_vnd"] == 2_000
    assert "paid" in captured.err
