"""Centers and kiosks, dossier codes, receipts and portal statuses, on SQLite and PostgreSQL."""

from __future__ import annotations

import re
import threading
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from saoy.core.errors import InvalidInput, NotFound
from saoy.core.model import CheckResult, Outcome
from saoy.core.reception.centers import (
    DEV_CENTER_CODE,
    Center,
    KioskNotRegistered,
)
from saoy.core.reception.deadlines import VIETNAM
from saoy.core.reception.reception import (
    PortalStatus,
    Reception,
    dossier_code,
    lookup_secret,
)
from saoy.core.reception.vietqr import Payee, parse
from saoy.core.storage.registry import (
    CopyRecord,
    DossierRecord,
    SqliteRegistry,
    SqlRegistry,
)
from saoy.core.storage.registry_pg import PostgresRegistry
from tests.pg import postgres_server, postgresql_url

__all__ = ["postgres_server", "postgresql_url"]

KEY = b"k" * 32
CODE = re.compile(r"(?P<unit>[0-9A-Z.]+)-(?P<day>\d{6})-(?P<seq>\d{4})")
HANOI = Center(
    "000.00.01.H26",
    "Trung tâm Phục vụ hành chính công Hà Nội",
    "Thành phố Hà Nội",
    "1 Hàng Khay, Hoàn Kiếm",
    payee=Payee("970436", "1234567890"),
)
HUE = Center(
    "000.00.01.H57",
    "Trung tâm Hành chính công Huế",
    "Thành phố Huế",
    "01 Lê Lai, Huế",
    fees_waived=True,
)
# Monday 7 December 2026, 10:00 in Hanoi
MONDAY = datetime(2026, 12, 7, 10, 0, tzinfo=VIETNAM)


@pytest.fixture(params=["sqlite", "postgresql"])
def registry(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[SqlRegistry]:
    if request.param == "sqlite":
        reg: SqlRegistry = SqliteRegistry(tmp_path / "registry.sqlite3")
    else:
        reg = PostgresRegistry(request.getfixturevalue("postgresql_url"), max_connections=24)
    with reg:
        yield reg


class Clock:
    def __init__(self, at: datetime) -> None:
        self.at = at

    def __call__(self) -> datetime:
        return self.at


@pytest.fixture
def clock() -> Clock:
    return Clock(MONDAY)


@pytest.fixture
def reception(registry: SqlRegistry, clock: Clock) -> Reception:
    r = Reception(registry, lookup_key=KEY, base_url="http://saoy.test", clock=clock)
    r.centers.register_center(HANOI)
    r.centers.register_center(HUE)
    r.centers.register_kiosk("hn-01", HANOI.code, "Sảnh tầng 1")
    r.centers.register_kiosk("hue-01", HUE.code)
    return r


def receive(r: Reception, kiosk: str = "hn-01", request: str | None = None, **kw):
    return r.receive(
        dossier_id=uuid.uuid4().hex,
        kiosk_id=kiosk,
        request_id=request or uuid.uuid4().hex[:16],
        center=r.center_of_kiosk(kiosk),
        pages=kw.get("pages", 3),
        copies=kw.get("copies", 1),
    )


# -- centers and kiosks -------------------------------------------------------------------------


def test_centers_and_kiosks_are_registered_entities(reception: Reception) -> None:
    centers = reception.centers
    assert centers.center(HANOI.code) == HANOI
    assert [c.code for c in centers.centers()] == [HANOI.code, HUE.code]
    assert centers.centers(province="Thành phố Huế") == [HUE]
    assert centers.kiosk("hn-01").center_code == HANOI.code
    assert [k.id for k in centers.kiosks(HUE.code)] == ["hue-01"]
    moved = centers.register_kiosk("hn-01", HUE.code)  # a kiosk moved to another center
    assert reception.center_of_kiosk(moved.id) == HUE
    renamed = centers.register_center(Center(HUE.code, "Trung tâm mới", HUE.province, "x y"))
    assert renamed.name == "Trung tâm mới" and not renamed.fees_waived


def test_bad_centers_and_unknown_ones_name_the_field(reception: Reception) -> None:
    with pytest.raises(InvalidInput) as bad:
        Center("hn 1", "Tên", "Tỉnh", "Địa chỉ")
    assert bad.value.field == "center.code"
    with pytest.raises(InvalidInput) as empty:
        Center("000.00.01.H26", "", "Tỉnh", "Địa chỉ")
    assert empty.value.field == "center.name"
    with pytest.raises(NotFound):
        reception.centers.register_kiosk("k-1", "999.99.99.H99")
    with pytest.raises(KioskNotRegistered) as stranger:
        reception.center_of_kiosk("kiosk-nobody-knows")
    assert stranger.value.status == "FAILED_PRECONDITION"
    assert stranger.value.field == "header.kiosk_id"


def test_the_embedded_default_registers_a_dev_center_and_its_kiosks(
    registry: SqlRegistry,
) -> None:
    registry.record(
        _dossier("old-kiosk", "REJECTED"), [], None, "rejected", {}
    )  # a kiosk that sent dossiers before centers existed
    reception = Reception(
        registry, lookup_key=KEY, base_url="http://x", default_center=DEV_CENTER_CODE
    )
    dev = reception.centers.ensure_dev()
    assert dev.code == DEV_CENTER_CODE and dev.payee is not None
    dev_kiosks = {k.id for k in reception.centers.kiosks(DEV_CENTER_CODE)}
    assert dev_kiosks == {"kiosk-dev", "kiosk-cli", "old-kiosk"}
    assert reception.centers.ensure_dev() == dev  # idempotent
    # a kiosk nobody registered joins the default center at its first dossier
    assert reception.center_of_kiosk("kiosk-new").code == DEV_CENTER_CODE
    assert reception.centers.kiosk("kiosk-new") is not None


# -- dossier codes --------------------------------------------------------------------------------


def test_codes_follow_circular_01_2018_with_a_daily_sequence_per_center(
    reception: Reception, clock: Clock
) -> None:
    first, second = receive(reception), receive(reception)
    other = receive(reception, "hue-01")
    assert first.dossier_code == "000.00.01.H26-261207-0001"
    assert second.dossier_code == "000.00.01.H26-261207-0002"
    assert other.dossier_code == "000.00.01.H57-261207-0001"  # per center
    clock.at = MONDAY + timedelta(days=1)
    assert receive(reception).dossier_code == "000.00.01.H26-261208-0001"  # per day
    # the day is Vietnam's: 23:30 UTC on the 8th is already the 9th in Hanoi
    clock.at = datetime(2026, 12, 8, 23, 30, tzinfo=UTC)
    assert receive(reception).dossier_code.endswith("-261209-0001")
    assert first.dossier_code != first.lookup_secret


def test_a_retried_request_gets_its_receipt_back(reception: Reception) -> None:
    first = receive(reception, request="req-retry-01")
    again = reception.receive(
        dossier_id=uuid.uuid4().hex,
        kiosk_id="hn-01",
        request_id="req-retry-01",
        center=HANOI,
        pages=3,
        copies=1,
    )
    assert again == first
    assert reception.find("hn-01", "req-retry-01") == first
    assert reception.find("hn-01", "never-sent") is None


def test_codes_are_unique_under_concurrency(reception: Reception) -> None:
    n_threads, per_thread = 12, 10
    codes: list[str] = []
    errors: list[BaseException] = []
    lock = threading.Lock()
    start = threading.Barrier(n_threads)

    def work() -> None:
        try:
            start.wait()
            for _ in range(per_thread):
                code = receive(reception).dossier_code
                with lock:
                    codes.append(code)
        except BaseException as error:  # surfaced below
            errors.append(error)

    threads = [threading.Thread(target=work) for _ in range(n_threads)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert not errors, errors[:3]
    total = n_threads * per_thread
    assert len(set(codes)) == total
    sequences = sorted(int(CODE.fullmatch(c)["seq"]) for c in codes)
    assert sequences == list(range(1, total + 1))  # no gap, no repeat


def test_code_format_and_bounds() -> None:
    assert dossier_code("000.00.01.H26", MONDAY, 42) == "000.00.01.H26-261207-0042"
    with pytest.raises(ValueError):
        dossier_code("000.00.01.H26", MONDAY, 10_000)


# -- the receipt ------------------------------------------------------------------------------


def test_the_receipt_has_fee_appointment_payment_and_status_url(
    reception: Reception, clock: Clock
) -> None:
    receipt = receive(reception, pages=3, copies=2)
    assert (receipt.pages, receipt.copies, receipt.fee.total_vnd) == (3, 2, 10_000)
    assert receipt.appointment_at == datetime(2026, 12, 7, 17, 0, tzinfo=VIETNAM)
    assert receipt.center == HANOI
    payment = parse(receipt.payment_qr)
    assert payment["54"] == "10000" and receipt.dossier_code in payment["62"]
    assert receipt.status_url == (
        f"http://saoy.test/d/{receipt.dossier_code}?s={receipt.lookup_secret}"
    )
    clock.at = MONDAY.replace(hour=15, minute=30)
    late_in_the_day = receive(reception)
    assert late_in_the_day.appointment_at == datetime(2026, 12, 8, 17, 0, tzinfo=VIETNAM)


def test_a_center_that_waives_fees_asks_for_no_payment(reception: Reception) -> None:
    receipt = receive(reception, "hue-01", pages=5, copies=3)
    assert receipt.fee.total_vnd == 0 and receipt.fee.waived
    assert receipt.payment_qr == ""


# -- statuses and look-up ------------------------------------------------------------------------


def test_statuses_are_timestamped_and_follow_the_decision(
    registry: SqlRegistry, reception: Reception, clock: Clock
) -> None:
    receipt = receive(reception, request="req-status-1")
    view = reception.view(receipt.dossier_code, receipt.lookup_secret)
    assert view.status is PortalStatus.PROCESSING and view.state == "RECEIVING"
    assert [c.status for c in view.history] == [PortalStatus.RECEIVED, PortalStatus.PROCESSING]
    assert all(c.at == MONDAY for c in view.history) and not view.late

    decided = MONDAY + timedelta(minutes=2)
    registry.record(
        _dossier("hn-01", "ISSUED", receipt.dossier_id, "req-status-1", decided),
        [],
        _copy(receipt.dossier_id, decided),
        "issued",
        {},
    )
    clock.at = decided + timedelta(seconds=5)
    reception.record_status(receipt.dossier_id, PortalStatus.RETURNED, "kiosk")
    view = reception.view(receipt.dossier_code, receipt.lookup_secret)
    assert [c.status.value for c in view.history] == [2, 4, 9, 10]
    assert view.history[2].at == decided and view.history[3].at == clock.at
    assert view.status is PortalStatus.RETURNED and view.final and not view.late
    assert view.copy_code is not None and view.copy_url.endswith(view.copy_code)
    assert PortalStatus.RETURNED.vi == "Đã trả kết quả"


def test_a_refused_dossier_stops_and_a_late_one_says_so(
    registry: SqlRegistry, reception: Reception, clock: Clock
) -> None:
    clock.at = MONDAY.replace(hour=16)  # after 15:00: due Tuesday 17:00
    receipt = receive(reception, request="req-late-01")
    decided = datetime(2026, 12, 9, 9, 0, tzinfo=VIETNAM)  # Wednesday
    registry.record(
        _dossier("hn-01", "REJECTED", receipt.dossier_id, "req-late-01", decided),
        [],
        None,
        "rejected",
        {},
    )
    view = reception.view(receipt.dossier_code, receipt.lookup_secret)
    assert view.status is PortalStatus.STOPPED and view.final
    assert view.late and view.decided_at == decided


def test_a_wrong_secret_reads_like_an_unknown_code(reception: Reception) -> None:
    receipt = receive(reception)
    with pytest.raises(NotFound) as wrong:
        reception.view(receipt.dossier_code, "AAAAA-AAAAA")
    unknown_code = receipt.dossier_code[:-4] + "9999"
    with pytest.raises(NotFound) as unknown:
        reception.view(unknown_code, lookup_secret(KEY, unknown_code))
    assert wrong.value.message == unknown.value.message
    assert wrong.value.reason == unknown.value.reason == "DOSSIER_NOT_FOUND"
    # typed forgivingly: lower case, no dash, O for 0
    typed = receipt.lookup_secret.lower().replace("-", "").replace("0", "o")
    assert reception.view(" " + receipt.dossier_code.lower(), typed).receipt == receipt


def _dossier(
    kiosk: str,
    state: str,
    dossier_id: str | None = None,
    request_id: str | None = None,
    at: datetime = MONDAY,
) -> DossierRecord:
    return DossierRecord(
        id=dossier_id or uuid.uuid4().hex,
        request_id=request_id or uuid.uuid4().hex[:16],
        kiosk_id=kiosk,
        state=state,
        created_at=at,
        decided_at=at,
        page_count=1,
        reasons=(),
        checks=(CheckResult("page_usable", Outcome.PASS, "ok"),),
    )


def _copy(dossier_id: str, at: datetime) -> CopyRecord:
    from saoy.core.reception import codes

    return CopyRecord(
        code=codes.new_code(),
        dossier_id=dossier_id,
        blob_key="a" * 64,
        size_bytes=10,
        issuer="dev",
        issued_at=at,
        pages=1,
        revoked_at=None,
        revoke_reason=None,
    )


def test_a_rescan_asked_at_the_officials_desk_is_a_request_for_more(
    registry: SqlRegistry, reception: Reception, clock: Clock
) -> None:
    from saoy.core.desk.deskdb import DeskDb

    receipt = receive(reception, request="req-rescan-1")
    registry.record(
        _dossier("hn-01", "NEEDS_REVIEW", receipt.dossier_id, "req-rescan-1"),
        [], None, "needs_review", {},
    )  # fmt: skip
    assert reception.view(receipt.dossier_code, receipt.lookup_secret).status.value == 4
    desk = DeskDb(registry)  # the desk's tables, as the server makes them
    asked = MONDAY + timedelta(minutes=30)
    with desk.transaction(write=True) as db:
        db.execute(
            "INSERT INTO reviews (dossier_id, outcome, updated_at) VALUES (?, 'rescan', ?)",
            (receipt.dossier_id, desk.ts(asked)),
        )
    view = reception.view(receipt.dossier_code, receipt.lookup_secret)
    assert [c.status.value for c in view.history] == [2, 4, 5]
    assert view.status is PortalStatus.SUPPLEMENT_REQUESTED and view.history[-1].at == asked


def test_the_decision_never_reads_as_earlier_than_the_receipt(
    registry: SqlRegistry, reception: Reception, clock: Clock
) -> None:
    clock.at = MONDAY + timedelta(milliseconds=500)
    receipt = receive(reception, request="req-same-second")
    decided = MONDAY + timedelta(milliseconds=700)
    registry.record(
        _dossier("hn-01", "ISSUED", receipt.dossier_id, "req-same-second", decided),
        [],
        _copy(receipt.dossier_id, MONDAY),  # copies carry whole seconds: before the receipt
        "issued",
        {},
    )
    view = reception.view(receipt.dossier_code, receipt.lookup_secret)
    assert [c.status.value for c in view.history] == [2, 4, 9]
    assert view.history[-1].at == decided


def test_a_dossier_is_rated_once_and_only_after_its_result(
    registry: SqlRegistry, reception: Reception
) -> None:
    from saoy.core.errors import OutOfOrder
    from saoy.core.reception.reception import AlreadyRated

    receipt = receive(reception, request="req-rate-01")
    with pytest.raises(OutOfOrder) as early:
        reception.rate(receipt.dossier_code, receipt.lookup_secret, 4)
    assert early.value.reason == "NO_RESULT_YET"
    registry.record(
        _dossier("hn-01", "REJECTED", receipt.dossier_id, "req-rate-01"), [], None, "rejected", {}
    )
    assert reception.rate(receipt.dossier_code, receipt.lookup_secret, 4) == MONDAY
    with pytest.raises(AlreadyRated):
        reception.rate(receipt.dossier_code, receipt.lookup_secret, 5)
    with pytest.raises(InvalidInput):
        reception.rate(receipt.dossier_code, receipt.lookup_secret, 0)
