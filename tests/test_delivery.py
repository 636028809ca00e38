"""The copy delivered by email over STARTTLS to a real SMTP server (aiosmtpd), through the
outbox; a refused recipient is a dead letter; the address is kept only until delivery."""

from __future__ import annotations

import datetime as dt
import email
import email.policy
import io
import ipaddress
import sqlite3
import ssl
import time
import urllib.request
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import grpc
import pytest
from aiosmtpd.controller import Controller
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from saoy.clients.sdk import KioskClient, TrackingClient
from saoy.clients.simulator import docgen
from saoy.core.reception.reception import Reception
from saoy.v1 import tracking_pb2 as tpb
from tests.pg import postgres_server, postgresql_url

from .conftest import RunningServer, start_server
from .ports import free_port
from .test_reception import MONDAY, clock, receive, reception, registry

__all__ = ["clock", "postgres_server", "postgresql_url", "reception", "registry"]


@dataclass
class Mailbox:
    """What the test SMTP server received, and whether each session had TLS on."""

    messages: list[tuple[list[str], bytes, bool]] = field(default_factory=list)

    async def handle_RCPT(
        self, server: Any, session: Any, envelope: Any, address: str, options: Any
    ) -> str:
        if address.endswith("@refused.test"):
            return "550 5.1.1 no such mailbox"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.messages.append((list(envelope.rcpt_tos), envelope.content, session.ssl is not None))
        return "250 Message accepted"


def _tls_files(folder: Path) -> tuple[Path, Path]:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "smtp.test")])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = folder / "smtp.pem", folder / "smtp.key"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert_path, key_path


@contextmanager
def starttls_smtp(folder: Path) -> Iterator[tuple[Mailbox, int, Path]]:
    """A real SMTP server on a free port that requires STARTTLS, its certificate (self-signed,
    for 127.0.0.1) written in ``folder``: (the mailbox it fills, its port, the certificate)."""
    cert, key = _tls_files(folder)
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert, key)
    mailbox, port = Mailbox(), free_port()
    smtp = Controller(
        mailbox, hostname="127.0.0.1", port=port, tls_context=context, require_starttls=True
    )
    smtp.start()
    try:
        yield mailbox, port, cert
    finally:
        smtp.stop()


@dataclass
class MailSetup:
    server: RunningServer
    mailbox: Mailbox


@pytest.fixture(scope="module")
def mail(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MailSetup]:
    folder = tmp_path_factory.mktemp("mail")
    with starttls_smtp(folder) as (mailbox, port, cert):
        yield from _mail(folder, mailbox, port, cert)


def _mail(folder: Path, mailbox: Mailbox, port: int, cert: Path) -> Iterator[MailSetup]:
    server = start_server(
        folder / "data",
        identity="off",
        ocr_engine="tesseract",
        signing_level="B-T",
        smtp_url=f"smtp://127.0.0.1:{port}",
        smtp_from="saoy@kiosk.test",
        smtp_ca_file=str(cert),
        delivery_interval_seconds=0.2,
        delivery_retry_seconds=0.2,
        delivery_max_attempts=2,
    )
    yield MailSetup(server, mailbox)
    server.stop()


def _card(seed: int) -> bytes:
    buffer = io.BytesIO()
    docgen.id_card_front(docgen.random_person(seed), seed=seed).image.save(buffer, "JPEG")
    return buffer.getvalue()


def _outbox(server: RunningServer) -> list[tuple[Any, ...]]:
    with sqlite3.connect(server.data_dir / "registry.sqlite3") as db:
        return db.execute("SELECT target, state, attempts FROM outbox ORDER BY id").fetchall()


def _until(check: Any, timeout: float = 30.0) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = check()
        if found:
            return found
        time.sleep(0.1)
    raise AssertionError("timed out")


def test_the_copy_is_mailed_over_starttls_and_the_address_forgotten(mail: MailSetup) -> None:
    server = mail.server
    with KioskClient(server.target, kiosk_id="kiosk-mail") as client:
        result = client.certify([_card(11)], email="citizen@example.vn")
        assert result.issued is not None, result.state
        pdf = client.download(result.issued.code)
    to, raw, tls = _until(lambda: mail.mailbox.messages and mail.mailbox.messages[0])
    assert to == ["citizen@example.vn"] and tls
    message = email.message_from_bytes(raw, policy=email.policy.default)
    assert result.issued.code in message["Subject"] and message["From"] == "saoy@kiosk.test"
    body = message.get_body(preferencelist=("plain",)).get_content()
    receipt = result.received
    assert receipt is not None and receipt.status_url in body and result.issued.url in body
    [attachment] = list(message.iter_attachments())
    assert attachment.get_filename() == f"{result.issued.code}.pdf"
    assert attachment.get_content() == pdf
    rows = _until(lambda: [r for r in _outbox(server) if r[1] == "sent"])
    assert rows[0][0] is None  # the address is gone once delivered
    with TrackingClient(server.target) as tracking:
        found = tracking.get(receipt.dossier_code, receipt.lookup_secret)
    assert found.status == tpb.PORTAL_STATUS_RETURNED


def test_a_refused_recipient_is_a_dead_letter_in_metrics(mail: MailSetup) -> None:
    server = mail.server
    with KioskClient(server.target, kiosk_id="kiosk-mail-2") as client:
        result = client.certify([_card(12)], email="nobody@refused.test")
    assert result.issued is not None

    # Polled in the registry: the HTTP side limits requests per client address.
    _until(lambda: [r for r in _outbox(server) if r[1] == "dead"])
    time.sleep(0.5)  # the round that dead-lettered it sets the gauge as it ends
    with urllib.request.urlopen(f"{server.http}/metrics") as response:
        text = response.read().decode()
    assert "saoy_outbox_dead_letters 1.0" in text
    assert 'saoy_deliveries_total{channel="email",outcome="dead"} 1.0' in text
    assert "refused.test" not in text
    assert [r for r in _outbox(server) if r[1] == "dead"] == [(None, "dead", 1)]


def test_a_malformed_address_is_refused_before_any_page(mail: MailSetup) -> None:
    with (
        KioskClient(mail.server.target, kiosk_id="kiosk-mail-3") as client,
        pytest.raises(grpc.RpcError) as bad,
    ):
        client.certify([_card(23)], email="not an address")
    assert bad.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "header.email" in bad.value.details()


def test_a_server_without_mail_takes_no_address(server: RunningServer) -> None:
    with (
        server.client(kiosk_id="kiosk-nomail") as client,
        pytest.raises(grpc.RpcError) as off,
    ):
        client.certify([_card(24)], session_token=server.token("kiosk-nomail"), email="a@b.vn")
    assert off.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert "sends no mail" in off.value.details()


def test_the_outbox_claims_retries_and_gives_up(reception: Reception, clock: Any) -> None:
    outbox = reception.outbox
    outbox.max_attempts, outbox.retry_base = 3, 10.0
    receipt = reception.receive(
        dossier_id=uuid.uuid4().hex,
        kiosk_id="hn-01",
        request_id="req-mail-01",
        center=reception.center_of_kiosk("hn-01"),
        pages=1,
        copies=1,
        email="ten@example.vn",
    )
    assert receive(reception).dossier_id != receipt.dossier_id  # no address: nothing queued
    [entry] = outbox.claim(MONDAY)
    assert entry.target == "ten@example.vn" and entry.dossier_id == receipt.dossier_id
    assert outbox.claim(MONDAY) == []  # claimed: other workers leave it alone
    assert not outbox.failed(entry, "OSError", MONDAY, permanent=False)
    assert outbox.claim(MONDAY + dt.timedelta(seconds=9)) == []  # retried after 10 s
    [again] = outbox.claim(MONDAY + dt.timedelta(seconds=11))
    assert again.attempts == 1
    assert not outbox.failed(again, "OSError", MONDAY, permanent=False)
    [last] = outbox.claim(MONDAY + dt.timedelta(seconds=31))
    assert outbox.failed(last, "OSError", MONDAY, permanent=False)  # the third: dead
    assert outbox.counts() == {"pending": 0, "sent": 0, "dead": 1}
