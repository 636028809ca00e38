"""The citizen's app: the result posted to its backend's webhook, signed, retried, dead-lettered,
and its token forgotten once delivered — through a real server and a real HTTP receiver."""

from __future__ import annotations

import json
import threading
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import grpc
import pytest

from saoy.clients.sdk import KioskClient, TrackingClient
from saoy.core.reception.delivery import SIGNATURE_HEADER, verify_webhook
from saoy.v1 import tracking_pb2 as tpb
from tests.conftest import RunningServer, start_server
from tests.test_delivery import _card, _outbox, _until

SECRET = b"app-backend-shared-secret-0123456789abcdef"


@dataclass
class Receiver:
    """An app backend: answers each POST with ``status`` and keeps what it got."""

    status: int = 200
    posts: list[tuple[bytes, str]] = field(default_factory=list)

    def serve(self) -> ThreadingHTTPServer:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                receiver.posts.append((body, self.headers.get(SIGNATURE_HEADER, "")))
                self.send_response(receiver.status)
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=httpd.serve_forever, daemon=True).start()
        return httpd


@dataclass
class AppSetup:
    server: RunningServer
    receiver: Receiver


@pytest.fixture(scope="module")
def app(tmp_path_factory: pytest.TempPathFactory) -> Iterator[AppSetup]:
    folder = tmp_path_factory.mktemp("app")
    secret = folder / "webhook.secret"
    secret.write_bytes(SECRET)
    receiver = Receiver()
    httpd = receiver.serve()
    server = start_server(
        folder / "data",
        identity="off",
        ocr_engine="tesseract",
        signing_level="B-T",
        app_webhook_url=f"http://127.0.0.1:{httpd.server_port}/saoy",
        app_webhook_secret_file=str(secret),
        delivery_interval_seconds=0.2,
        delivery_retry_seconds=0.2,
        delivery_max_attempts=2,
    )
    yield AppSetup(server, receiver)
    server.stop()
    httpd.shutdown()


def test_the_result_is_posted_signed_to_the_app_and_its_token_forgotten(app: AppSetup) -> None:
    server = app.server
    with KioskClient(server.target, kiosk_id="kiosk-app") as client:
        result = client.certify([_card(14)], app_token="app:citizen-42.device_7")
    assert result.issued is not None, result.state
    body, signature = _until(lambda: app.receiver.posts and app.receiver.posts[0])
    assert verify_webhook(SECRET, signature, body)
    assert not verify_webhook(b"another secret of the same length as it is", signature, body)
    assert not verify_webhook(SECRET, signature, body.replace(b"ISSUED", b"REVOKED"))
    sent = json.loads(body)
    receipt = result.received
    assert receipt is not None
    assert sent == {
        "app_token": "app:citizen-42.device_7",
        "event": "result",
        "dossier_code": receipt.dossier_code,
        "state": "ISSUED",
        "status_url": receipt.status_url,
        "copy_code": result.issued.code,
        "copy_url": result.issued.url,
        "pdf_url": f"{result.issued.url}/copy.pdf",
    }
    rows = _until(lambda: [r for r in _outbox(server) if r[1] == "sent"])
    assert rows[0][0] is None  # the token is gone once delivered
    with TrackingClient(server.target) as tracking:
        found = tracking.get(receipt.dossier_code, receipt.lookup_secret)
    assert found.status == tpb.PORTAL_STATUS_RETURNED


def test_an_app_backend_that_keeps_failing_is_retried_then_a_dead_letter(app: AppSetup) -> None:
    server = app.server
    app.receiver.status = 503
    before = len(app.receiver.posts)
    try:
        with KioskClient(server.target, kiosk_id="kiosk-app-2") as client:
            assert client.certify([_card(22)], app_token="tok-2").issued is not None
        _until(lambda: [r for r in _outbox(server) if r[1] == "dead"])
    finally:
        app.receiver.status = 200
    assert len(app.receiver.posts) - before == 2  # delivery_max_attempts
    time.sleep(0.5)  # the round that dead-lettered it sets the gauge as it ends
    with urllib.request.urlopen(f"{server.http}/metrics") as response:
        text = response.read().decode()
    assert 'saoy_deliveries_total{channel="app",outcome="retried"} 1.0' in text
    assert 'saoy_deliveries_total{channel="app",outcome="dead"} 1.0' in text
    assert "tok-2" not in text
    assert [r for r in _outbox(server) if r[1] == "dead"] == [(None, "dead", 2)]


def test_a_malformed_token_or_one_for_a_server_without_a_webhook_is_refused(
    app: AppSetup, tmp_path: Path
) -> None:
    client = KioskClient(app.server.target, kiosk_id="kiosk-app-3", retries=0)
    with client, pytest.raises(grpc.RpcError) as raised:
        client.certify([_card(23)], app_token="no spaces allowed")
    assert raised.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "header.app_token" in (raised.value.details() or "")
    plain = start_server(tmp_path, identity="off", ocr_engine="none")
    try:
        other = KioskClient(plain.target, kiosk_id="kiosk-app-4", retries=0)
        with other, pytest.raises(grpc.RpcError) as raised:
            other.certify([_card(24)], app_token="tok-4")
        assert raised.value.code() == grpc.StatusCode.FAILED_PRECONDITION
        assert "no citizen app" in (raised.value.details() or "")
    finally:
        plain.stop()
