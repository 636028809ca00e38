"""The official's desk through a real server: the queue, leases, approval under the official's
own signature with the register number and certification statement, refusal, rescan, and what
the kiosk's WatchDossier hears."""

from __future__ import annotations

import io
import random
import subprocess
import threading
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from io import BytesIO
from pathlib import Path

import grpc
import pyotp
import pytest
from pyhanko.pdf_utils.reader import PdfFileReader

from saoy.clients.sdk import DeskClient, OfficialClient
from saoy.clients.simulator import docgen
from saoy.core.desk.register import VIETNAM
from saoy.core.desk.review import Desk
from saoy.core.reception.centers import Center
from saoy.core.trust.translog import decode_entry
from saoy.v1 import certification_pb2 as cpb
from saoy.v1 import review_pb2 as rpb
from saoy.v1 import verification_pb2 as vpb

from .conftest import RunningServer, start_server

CENTER = "000.00.01.THU"  # review=all
NEAR = "000.00.02.BEN"  # another center of the same province
FAR = "000.00.79.XA"  # a center of another province
KIOSK = "kiosk-desk"
OTHER_KIOSK = "kiosk-desk-2"


@dataclass
class Desks:
    server: RunningServer
    lan: DeskClient  # official of CENTER
    binh: DeskClient  # official of CENTER
    head: DeskClient  # head of CENTER
    auditor: DeskClient
    stranger: DeskClient  # official of the server's own center
    near: DeskClient  # official of NEAR (the same province as CENTER)
    far: DeskClient  # official of FAR (another province)

    @property
    def desk(self) -> Desk:
        desk = self.server.server.desk
        assert desk is not None
        return desk


def _enrol(server: RunningServer, login: str, name: str, center: str, role: str) -> DeskClient:
    desk = server.server.desk
    assert desk is not None
    enrolment = desk.officials.add(
        desk.signers.pki,
        login=login,
        full_name=name,
        title="Công chức Tư pháp - Hộ tịch" if role != "head" else "Phó Chủ tịch UBND",
        center=center,
        role=role,
    )
    client = DeskClient(server.target)
    code = pyotp.parse_uri(enrolment.totp_uri).now()
    client.sign_in(login, enrolment.password, code)
    return client


@pytest.fixture(scope="module")
def desks(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Desks]:
    server = start_server(tmp_path_factory.mktemp("saoy-desk"))
    desk = server.server.desk
    assert desk is not None
    desk.officials.centers.register_center(
        Center(CENTER, "UBND Phường Thử", "Thành phố Hà Nội", "Phường Thử, Hà Nội")
    )
    desk.officials.set_center(CENTER, review="all", kiosks=(KIOSK,))
    desk.officials.centers.register_center(
        Center(NEAR, "UBND Phường Bên", "Thành phố Hà Nội", "Phường Bên, Hà Nội")
    )
    desk.officials.centers.register_center(
        Center(FAR, "UBND Phường Xa", "Thành phố Hồ Chí Minh", "Phường Xa, TP. Hồ Chí Minh")
    )
    own = server.server.settings.center
    clients = Desks(
        server,
        lan=_enrol(server, "lan", "Nguyễn Thị Lan", CENTER, "official"),
        binh=_enrol(server, "binh", "Trần Văn Bình", CENTER, "official"),
        head=_enrol(server, "hoa", "Lê Thị Hoa", CENTER, "head"),
        auditor=_enrol(server, "kiem", "Phạm Văn Kiểm", CENTER, "auditor"),
        stranger=_enrol(server, "xa", "Đỗ Văn Xa", own, "official"),
        near=_enrol(server, "ben", "Vũ Thị Bên", NEAR, "official"),
        far=_enrol(server, "vien", "Hồ Văn Viễn", FAR, "official"),
    )
    yield clients
    for client in (
        clients.lan,
        clients.binh,
        clients.head,
        clients.auditor,
        clients.stranger,
        clients.near,
        clients.far,
    ):
        client.close()
    server.stop()


def _certify(
    server: RunningServer, pages: list[bytes], kiosk: str = KIOSK, **kwargs: object
) -> tuple[str, str]:
    """Certify; the (dossier id, request id) of a dossier that went to review."""
    with server.client(kiosk_id=kiosk) as client:
        result = client.certify(pages, session_token=server.token(kiosk), **kwargs)  # type: ignore[arg-type]
    assert result.state == "NEEDS_REVIEW", result.terminal
    terminal = result.terminal
    assert terminal is not None and terminal.needs_review.dossier_id == terminal.dossier_id
    return terminal.dossier_id, result.request_id


class Watcher:
    """The kiosk's WatchDossier stream, read in a thread."""

    def __init__(self, server: RunningServer, dossier_id: str, request_id: str) -> None:
        self.updates: list[cpb.DossierUpdate] = []
        self.error: grpc.RpcError | None = None
        self._client = server.client(kiosk_id=KIOSK)

        def read() -> None:
            try:
                for update in self._client.watch_dossier(dossier_id, request_id, timeout=60):
                    self.updates.append(update)
            except grpc.RpcError as error:
                self.error = error

        self._thread = threading.Thread(target=read, daemon=True)
        self._thread.start()

    def wait_for(self, state: int, seconds: float = 20) -> cpb.DossierUpdate:
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            for update in self.updates:
                if update.state == state:
                    return update
            if self.error is not None:
                raise self.error
            time.sleep(0.05)
        raise AssertionError(f"no update {state} in {[u.state for u in self.updates]}")

    def close(self) -> None:
        self._thread.join(30)
        self._client.close()


def _code(error: pytest.ExceptionInfo[grpc.RpcError]) -> grpc.StatusCode:
    return error.value.code()  # type: ignore[no-any-return]


@pytest.fixture(scope="module")
def card() -> list[bytes]:
    """The front of the reference dossier's ID card, captured as a kiosk does: a clean
    dossier (the whole reference dossier takes seconds to draw; its first page is enough)."""
    person = docgen.random_person(7)
    skew = random.Random(7).uniform(-0.8, 0.8)
    captured = docgen.degrade(
        docgen.id_card_front(person, 7), skew_deg=skew, noise=3.0, blur=0.4, seed=7
    )
    return [docgen.encode(captured, "jpeg", 90)]


def test_review_all_holds_a_clean_dossier_and_an_approval_issues_it(
    desks: Desks, card: list[bytes], tmp_path: Path
) -> None:
    dossier_id, request_id = _certify(desks.server, card)
    watcher = Watcher(desks.server, dossier_id, request_id)
    assert watcher.wait_for(cpb.DossierUpdate.WAITING)

    queue = desks.lan.queue()
    item = next(i for i in queue if i.dossier_id == dossier_id)
    assert item.page_count == 1 and len(item.thumbnails) == 1
    assert item.thumbnails[0][:3] == b"\xff\xd8\xff"  # a JPEG
    assert any("policy" in reason for reason in item.reasons)
    # its legal deadline, the receipt's appointment, after its arrival
    assert item.HasField("appointment_at")
    assert item.appointment_at.ToDatetime() > item.created_at.ToDatetime()

    shown = desks.lan.dossier(dossier_id)
    assert shown.state == "NEEDS_REVIEW" and shown.center == CENTER
    assert shown.pages[0].image == card[0]
    assert {f.name for f in shown.pages[0].fields} >= {"id_number", "full_name"}
    assert all(f.source and 0 < f.confidence <= 100 for f in shown.pages[0].fields)
    assert any(c.name == "review_policy" for c in shown.checks)
    assert shown.identity.match_score == pytest.approx(0.75)
    assert shown.identity.liveness == "head_turn:left+screen"

    desks.lan.claim(dossier_id)
    claimed = watcher.wait_for(cpb.DossierUpdate.CLAIMED)
    assert claimed.official == "Nguyễn Thị Lan"

    approved = desks.lan.approve(dossier_id)
    issued = watcher.wait_for(cpb.DossierUpdate.ISSUED)
    watcher.close()
    assert issued.issued.code == approved.issued.code
    assert issued.issued.url.endswith("/v/" + approved.issued.code)
    assert approved.register_book.endswith("-SCT/BS")
    assert approved.register_entry.startswith(f"Số chứng thực {approved.register_number},")
    assert dossier_id not in [i.dossier_id for i in desks.lan.queue(thumbnails=False)]

    with desks.server.client() as client:
        pdf = client.download(approved.issued.code)
        verdict = client.verify_code(approved.issued.code)
        by_pdf = client.verify_pdf(pdf)
    assert verdict.verdict == vpb.VerificationResult.VALID
    translog = desks.server.server.translog
    kinds = [
        decode_entry(translog.entry(i)).kind for i in translog.indexes_of(approved.issued.code)
    ]
    assert kinds == ["issued", "approved"]
    assert by_pdf.verdict == vpb.VerificationResult.VALID, by_pdf.reason
    signatures = PdfFileReader(BytesIO(pdf)).embedded_signatures
    names = [s.signer_cert.subject.native["common_name"] for s in signatures]
    # the official's own key, the center's seal, then the document time-stamp (B-LTA)
    assert names[:2] == ["Nguyễn Thị Lan", "UBND Phường Thử"]
    assert signatures[0].signer_cert.subject.native["title"] == "Công chức Tư pháp - Hộ tịch"
    path = tmp_path / "copy.pdf"
    path.write_bytes(pdf)
    assert (
        "Signature is Valid"
        in subprocess.run(["pdfsig", str(path)], capture_output=True, text=True).stdout
    )
    text = subprocess.run(
        ["pdftotext", "-layout", str(path), "-"], capture_output=True, text=True
    ).stdout
    assert "Chứng thực bản sao đúng với bản chính" in text
    assert f"Số chứng thực: {approved.register_number}" in text
    assert approved.register_book in text
    assert "Nguyễn Thị Lan" in text and "UBND Phường Thử" in text

    events = [e["kind"] for e in desks.desk.db.audit_events(dossier_id)]
    assert events == ["claimed", "approved"]
    with urllib.request.urlopen(desks.server.http + "/metrics", timeout=10) as response:
        metrics = response.read().decode()
    assert 'saoy_reviews_total{outcome="approved"}' in metrics
    assert "saoy_review_wait_seconds_count" in metrics
    handled = desks.server.server.metrics.registry.get_sample_value(
        "saoy_review_handling_seconds_count"
    )
    assert handled is not None and handled >= 1  # from the claim to the approval
    assert 'saoy_official_sign_ins_total{result="ok"}' in metrics


def test_approving_twice_gives_the_same_copy(desks: Desks, card: list[bytes]) -> None:
    dossier_id, _ = _certify(desks.server, card)
    first = desks.binh.approve(dossier_id)  # without a claim: approval takes the lease
    second = desks.binh.approve(dossier_id)
    assert second.replayed and not first.replayed
    assert second.issued.code == first.issued.code
    assert second.register_number == first.register_number


def test_a_dossier_another_official_holds_cannot_be_approved(
    desks: Desks, card: list[bytes]
) -> None:
    dossier_id, _ = _certify(desks.server, card)
    desks.lan.claim(dossier_id)
    with pytest.raises(grpc.RpcError) as raised:
        desks.binh.approve(dossier_id)
    assert _code(raised) == grpc.StatusCode.FAILED_PRECONDITION
    assert "Nguyễn Thị Lan" in raised.value.details()
    with pytest.raises(grpc.RpcError) as raised:
        desks.binh.claim(dossier_id)
    assert _code(raised) == grpc.StatusCode.FAILED_PRECONDITION
    desks.lan.release(dossier_id)
    desks.binh.claim(dossier_id)  # released: free to take


def test_an_official_of_another_province_is_refused(desks: Desks, card: list[bytes]) -> None:
    dossier_id, _ = _certify(desks.server, card)
    for act in (
        lambda: desks.far.dossier(dossier_id),
        lambda: desks.far.claim(dossier_id),
        lambda: desks.far.approve(dossier_id),
    ):
        with pytest.raises(grpc.RpcError) as raised:
            act()
        assert _code(raised) == grpc.StatusCode.PERMISSION_DENIED
        assert "another province" in (raised.value.details() or "")
    assert dossier_id not in [i.dossier_id for i in desks.far.queue(thumbnails=False)]
    with pytest.raises(grpc.RpcError) as raised:  # auditors read, never decide
        desks.auditor.approve(dossier_id)
    assert _code(raised) == grpc.StatusCode.PERMISSION_DENIED
    assert desks.auditor.dossier(dossier_id).dossier_id == dossier_id


def test_a_correction_must_fit_its_fields_grammar(desks: Desks, card: list[bytes]) -> None:
    dossier_id, _ = _certify(desks.server, card)
    with pytest.raises(grpc.RpcError) as raised:
        desks.lan.approve(dossier_id, [(0, "date_of_birth", "31/02/19x5")])
    assert _code(raised) == grpc.StatusCode.INVALID_ARGUMENT
    assert "date_of_birth" in raised.value.details()
    approved = desks.lan.approve(dossier_id, [(0, "date_of_birth", "01/02/1985")])
    assert approved.issued.code
    fields = {f.name: f for f in desks.lan.dossier(dossier_id).pages[0].fields}
    assert fields["date_of_birth"].value == "01/02/1985"
    assert fields["date_of_birth"].source == "official"
    assert fields["date_of_birth"].confidence == 100
    corrected = [e for e in desks.desk.db.audit_events(dossier_id) if e["kind"] == "corrected"]
    assert corrected and corrected[0]["official"] == "lan"
    assert corrected[0]["detail"] == {"page": 0, "field": "date_of_birth", "was_read": True}
    stored = desks.server.server.certifier.registry.pages(dossier_id)[0].fields
    assert ("date_of_birth", "01/02/1985", 1.0) in stored


def test_refusal_and_rescan_reach_the_kiosk(desks: Desks, card: list[bytes]) -> None:
    refused_id, refused_request = _certify(desks.server, card)
    watcher = Watcher(desks.server, refused_id, refused_request)
    with pytest.raises(grpc.RpcError) as raised:
        desks.lan.refuse(refused_id, "because", "không rõ")
    assert _code(raised) == grpc.StatusCode.INVALID_ARGUMENT
    desks.lan.refuse(refused_id, "damaged", "Bản chính bị rách, không đọc được ngày cấp")
    refused = watcher.wait_for(cpb.DossierUpdate.REFUSED)
    watcher.close()
    assert refused.reason == "damaged" and "rách" in refused.message
    refusal = next(e for e in desks.desk.db.audit_events(refused_id) if e["kind"] == "refused")[
        "detail"
    ]
    translog = desks.server.server.translog
    leaves = [decode_entry(translog.entry(i)) for i in translog.indexes_of(refusal["reference"])]
    assert [(leaf.kind, leaf.sha256) for leaf in leaves] == [("refused", refusal["record_sha256"])]

    rescan_id, rescan_request = _certify(desks.server, card)
    desks.binh.request_rescan(rescan_id, 0, "ảnh bị lóa ở góc trên")
    watcher = Watcher(desks.server, rescan_id, rescan_request)
    rescan = watcher.wait_for(cpb.DossierUpdate.RESCAN_REQUESTED)
    watcher.close()
    assert rescan.page == 0 and "lóa" in rescan.message
    with pytest.raises(grpc.RpcError) as raised:  # the review has ended
        desks.binh.approve(rescan_id)
    assert _code(raised) == grpc.StatusCode.FAILED_PRECONDITION
    kinds = [e["kind"] for e in desks.desk.db.audit_events()]
    assert "refused" in kinds and "rescan_requested" in kinds


def test_watching_another_kiosks_dossier_is_not_found(desks: Desks, card: list[bytes]) -> None:
    dossier_id, request_id = _certify(desks.server, card)
    with desks.server.client(kiosk_id=OTHER_KIOSK) as client:
        with pytest.raises(grpc.RpcError) as raised:
            next(client.watch_dossier(dossier_id, request_id, timeout=10))
        assert _code(raised) == grpc.StatusCode.NOT_FOUND
    with desks.server.client(kiosk_id=KIOSK) as client:
        with pytest.raises(grpc.RpcError) as raised:
            next(client.watch_dossier(dossier_id, "not-the-request", timeout=10))
        assert _code(raised) == grpc.StatusCode.NOT_FOUND


def test_an_uncertain_dossier_of_the_servers_own_center_waits_for_its_officials(
    desks: Desks, card: list[bytes]
) -> None:
    dossier_id, _ = _certify(
        desks.server,
        card,
        kiosk="kiosk-uncertain",
        hints=[cpb.DocumentHint(page=0, document_type="cccd_back")],
    )
    waiting = [i.dossier_id for i in desks.stranger.queue(thumbnails=False)]
    assert dossier_id in waiting
    assert dossier_id not in [i.dossier_id for i in desks.far.queue(thumbnails=False)]


def test_revocation_is_a_heads_act(desks: Desks, card: list[bytes]) -> None:
    dossier_id, _ = _certify(desks.server, card)
    code = desks.lan.approve(dossier_id).issued.code
    with OfficialClient(desks.server.target, desks.lan.session_token) as client:
        with pytest.raises(grpc.RpcError) as raised:
            client.revoke(code, "thử thu hồi")
        assert _code(raised) == grpc.StatusCode.PERMISSION_DENIED
    with OfficialClient(desks.server.target, desks.head.session_token) as client:
        result = client.revoke(code, "bản chính bị thu hồi")
    assert result.verdict == vpb.VerificationResult.REVOKED
    revoked = [e for e in desks.desk.db.audit_events() if e["kind"] == "revoked"]
    assert revoked and revoked[-1]["official"] == "hoa" and revoked[-1]["detail"]["code"] == code


def _returned(desks: Desks, dossier_id: str) -> int:
    """How many times status 10 (Đã trả kết quả) is recorded for the dossier."""
    with desks.desk.db.transaction(write=False) as db:
        return int(
            db.execute(
                "SELECT count(*) FROM dossier_statuses WHERE dossier_id = ? AND status = 10",
                (dossier_id,),
            ).fetchone()[0]
        )


def test_the_approved_copy_delivered_to_the_kiosk_is_handed_over(
    desks: Desks, card: list[bytes]
) -> None:
    dossier_id, request_id = _certify(desks.server, card)
    desks.lan.claim(dossier_id)
    approved = desks.lan.approve(dossier_id)
    assert _returned(desks, dossier_id) == 0  # approved (status 9), not yet at the kiosk

    watcher = Watcher(desks.server, dossier_id, request_id)
    issued = watcher.wait_for(cpb.DossierUpdate.ISSUED)
    watcher.close()
    assert issued.issued.code == approved.issued.code
    deadline = time.monotonic() + 10
    while _returned(desks, dossier_id) == 0 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert _returned(desks, dossier_id) == 1

    again = Watcher(desks.server, dossier_id, request_id)  # the kiosk asks once more
    again.wait_for(cpb.DossierUpdate.ISSUED)
    again.close()
    assert _returned(desks, dossier_id) == 1  # handed over once


def test_a_disabled_officials_session_is_refused_at_once(desks: Desks) -> None:
    desk = desks.desk
    client = _enrol(desks.server, "tam", "Vũ Văn Tâm", CENTER, "official")
    try:
        assert client.queue(thumbnails=False) is not None
        desk.officials.disable("tam")
        with pytest.raises(grpc.RpcError) as raised:
            client.queue(thumbnails=False)
        assert _code(raised) == grpc.StatusCode.UNAUTHENTICATED
    finally:
        client.close()


def test_the_head_of_center_and_an_official_at_a_terminal(
    desks: Desks,
    card: list[bytes],
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from saoy.clients.cli import main
    from saoy.server.desk_admin import official_command, register_command

    data = ["--data-dir", str(desks.server.data_dir), "--center", CENTER]
    assert (
        official_command(["add", "ngoc", "--name", "Hà Thị Ngọc", "--title", "Công chức", *data])
        == 0
    )
    printed = capsys.readouterr().out
    password = printed.split("password (give it once, in person): ")[1].split()[0]
    uri = printed.split("then forget it): ")[1].split()[0]
    assert uri.startswith("otpauth://totp/saoy:ngoc?")

    server = ["--server", desks.server.target]
    monkeypatch.setattr("sys.stdin", io.StringIO(password + "\n"))
    code = pyotp.parse_uri(uri).now()
    assert main(["desk", "signin", "ngoc", "--password-stdin", "--totp", code, *server]) == 0
    token = capsys.readouterr().out.strip()
    monkeypatch.setenv("SAOY_DESK_TOKEN", token)

    dossier_id, _ = _certify(desks.server, card)
    assert main(["desk", "queue", *server]) == 0
    assert dossier_id in capsys.readouterr().out
    assert main(["desk", "show", dossier_id, *server]) == 0
    assert '"review_policy"' in capsys.readouterr().out
    assert main(["desk", "approve", dossier_id, *server]) == 0
    approved = capsys.readouterr().out
    assert approved.startswith("ISSUED  ") and "Quyển số 01/" in approved

    refused_id, _ = _certify(desks.server, card)
    assert (
        main(
            [
                "desk",
                "refuse",
                refused_id,
                "--reason",
                "altered",
                "--message",
                "Bản chính bị sửa ngày cấp",
                *server,
            ]
        )
        == 0
    )
    assert "refused (altered)" in capsys.readouterr().out
    assert desks.desk.status(refused_id).state == "refused"

    assert register_command([CENTER, *data[:2]]) == 0
    book = capsys.readouterr().out.splitlines()
    assert book[0].startswith("number,book,state,issued_at,code")
    assert any(approved.split()[1] in row and "ngoc" in row for row in book[1:])

    # the book as the center keeps it: a PDF sealed with the center's seal, time-stamped
    sealed_book = desks.server.data_dir / "register.pdf"
    assert register_command([CENTER, *data[:2], "--pdf", str(sealed_book)]) == 0
    assert "sealed with the center's seal" in capsys.readouterr().out
    pdf = sealed_book.read_bytes()
    [seal, *_] = PdfFileReader(BytesIO(pdf)).embedded_signatures
    assert seal.signer_cert.subject.native["common_name"] == "UBND Phường Thử"
    checked = subprocess.run(["pdfsig", str(sealed_book)], capture_output=True, text=True)
    assert "Signature is Valid" in checked.stdout
    text = subprocess.run(
        ["pdftotext", "-layout", str(sealed_book), "-"], capture_output=True, check=True
    ).stdout.decode()
    assert approved.split()[1] in text and "Hà Thị Ngọc" in text
    assert "SỔ CHỨNG THỰC BẢN SAO TỪ BẢN CHÍNH" in text

    assert official_command(["disable", "ngoc", *data]) == 0
    capsys.readouterr()
    assert main(["desk", "queue", *server]) == 2
    assert "UNAUTHENTICATED" in capsys.readouterr().err


def test_a_copy_issued_without_review_is_entered_in_the_register_under_the_duty_key(
    desks: Desks, card: list[bytes], tmp_path: Path
) -> None:
    with desks.server.client(kiosk_id="kiosk-auto") as client:
        result = client.certify(card, session_token=desks.server.token("kiosk-auto"))
        assert result.issued is not None, result.terminal
        pdf = client.download(result.issued.code)
    signer = PdfFileReader(BytesIO(pdf)).embedded_signatures[0].signer_cert
    assert signer.subject.native["common_name"].startswith("Chứng thực viên trực")
    path = tmp_path / "auto.pdf"
    path.write_bytes(pdf)
    text = subprocess.run(
        ["pdftotext", "-layout", str(path), "-"], capture_output=True, text=True
    ).stdout
    center = desks.server.server.settings.center
    year = datetime.now(UTC).astimezone(VIETNAM).year
    entry = next(
        e for e in desks.desk.register.entries(center, year) if e["code"] == result.issued.code
    )
    assert entry["state"] == "issued" and entry["official_name"] == "Chứng thực viên trực"
    assert f"Số chứng thực: {entry['number']}" in text


def _padded(jpeg: bytes, fill: int, kib: int = 1040) -> bytes:
    """The same picture in a file about ``kib`` KiB larger: JPEG comment segments after SOI."""
    segment = b"\xff\xfe" + (65533 + 2).to_bytes(2, "big") + bytes([fill]) * 65533
    return jpeg[:2] + segment * (kib * 1024 // len(segment)) + jpeg[2:]


def test_page_images_too_large_for_one_answer_are_streamed(
    desks: Desks, card: list[bytes], tmp_path: Path
) -> None:
    pages = [_padded(card[0], 0x41), _padded(card[0], 0x42)]
    dossier_id, _ = _certify(desks.server, pages)
    shown = desks.lan.dossier(dossier_id)
    assert [p.image_omitted for p in shown.pages] == [False, True]
    assert shown.pages[0].image == pages[0] and not shown.pages[1].image
    assert desks.lan.page_image(dossier_id, 1) == pages[1]
    listed = desks.lan._review.ListQueue(  # one dossier asked for, the total told
        rpb.ListQueueRequest(limit=1, without_thumbnails=True), metadata=desks.lan._metadata
    )
    assert len(listed.items) == 1 and listed.total >= 1
    with pytest.raises(grpc.RpcError) as raised:
        desks.far.page_image(dossier_id, 0)
    assert _code(raised) == grpc.StatusCode.PERMISSION_DENIED


def test_an_official_of_another_center_of_the_province_reviews_and_certifies_it(
    desks: Desks, card: list[bytes]
) -> None:
    """Any center of a province serves its citizens (Decree 118/2025): the dossier received at
    CENTER waits in NEAR's queue too, and NEAR's official certifies it in NEAR's register."""
    dossier_id, _ = _certify(desks.server, card)
    queued = {i.dossier_id: i for i in desks.near.queue(thumbnails=False)}
    assert dossier_id in queued and queued[dossier_id].center == CENTER
    assert desks.near.dossier(dossier_id).dossier_id == dossier_id
    approved = desks.near.approve(dossier_id)
    assert approved.register_book.endswith("-SCT/BS")
    entries = desks.desk.register.entries(NEAR, datetime.now(VIETNAM).year)
    ours = [e for e in entries if e["dossier_id"] == dossier_id]
    assert [(e["number"], e["state"], e["official"]) for e in ours] == [
        (approved.register_number, "issued", "ben")
    ]
    with desks.server.client(kiosk_id=KIOSK) as kiosk:
        pdf = kiosk.download(approved.issued.code)
    signatures = PdfFileReader(BytesIO(pdf)).embedded_signatures
    names = [s.signer_cert.subject.native["common_name"] for s in signatures]
    assert names[:2] == ["Vũ Thị Bên", "UBND Phường Bên"]  # sealed by the center certifying
    assert dossier_id not in [i.dossier_id for i in desks.lan.queue(thumbnails=False)]
