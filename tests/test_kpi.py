"""KPIs of Decision 766/QĐ-TTg against a hand-computed example, on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import date, datetime, timedelta

import pytest

from saoy.core.errors import InvalidInput
from saoy.core.reception.deadlines import VIETNAM
from saoy.core.reception.kpi import KpiReport, to_csv
from saoy.core.reception.reception import Payment, Reception
from saoy.core.storage.registry import SqlRegistry
from tests.pg import postgres_server, postgresql_url

from .test_reception import MONDAY, Clock, _copy, _dossier, clock, receive, reception, registry

__all__ = ["clock", "postgres_server", "postgresql_url", "reception", "registry"]


def _decide(registry: SqlRegistry, receipt, state: str, at: datetime) -> None:
    registry.record(
        _dossier(receipt.kiosk_id, state, receipt.dossier_id, receipt.request_id, at),
        [],
        _copy(receipt.dossier_id, at) if state == "ISSUED" else None,
        state.lower(),
        {},
    )


@pytest.fixture
def example(registry: SqlRegistry, reception: Reception, clock: Clock) -> KpiReport:
    """Monday 7 and Tuesday 8 December 2026 at two centers (Hà Nội charges, Huế waives):

    A  Hà Nội, Mon 10:00, 3 pages: issued Mon 10:30 (due Mon 17:00), paid online, rated 5
    B  Hà Nội, Mon 16:00:           refused Wed 09:00 (due Tue 17:00: late), rated 2
    C  Huế,    Mon 11:00:           issued Mon 12:00, no fee
    D  Hà Nội, Tue 09:00:           under review
    """
    clock.at = MONDAY  # 10:00
    a = receive(reception, "hn-01", pages=3)
    clock.at = MONDAY.replace(hour=16)
    b = receive(reception, "hn-01")
    clock.at = MONDAY.replace(hour=11)
    c = receive(reception, "hue-01")
    clock.at = MONDAY.replace(hour=9) + timedelta(days=1)
    d = receive(reception, "hn-01")
    _decide(registry, a, "ISSUED", MONDAY.replace(hour=10, minute=30))
    _decide(registry, b, "REJECTED", datetime(2026, 12, 9, 9, 0, tzinfo=VIETNAM))
    _decide(registry, c, "ISSUED", MONDAY.replace(hour=12))
    _decide(registry, d, "NEEDS_REVIEW", MONDAY.replace(hour=9) + timedelta(days=1))
    reception.confirm_payment(Payment(a.dossier_code, 5_000, "FT-A", MONDAY))
    reception.rate(a.dossier_code, a.lookup_secret, 5)
    reception.rate(b.dossier_code, b.lookup_secret, 2)
    return KpiReport(reception.db)


def test_kpis_per_center_match_the_hand_computed_example(example: KpiReport) -> None:
    hanoi, hue = example.report("center", date(2026, 12, 7), date(2026, 12, 8))
    assert (hanoi.key, hue.key) == ("000.00.01.H26", "000.00.01.H57")
    assert (hanoi.received, hanoi.decided, hanoi.on_time, hanoi.issued) == (3, 2, 1, 1)
    assert hanoi.on_time_rate == 0.5  # 2.1: A on time, B late
    assert hanoi.average_processing_hours == pytest.approx((0.5 + 41.0) / 2)  # 2.2
    assert hanoi.online_payment_rate == pytest.approx(1 / 3)  # 3.6: A of A, B, D
    assert hanoi.electronic_result_rate == 0.5  # 4.1: A issued, B refused
    assert hanoi.digitization_rate == 1.0  # 4.2
    assert hanoi.satisfaction_rate == 0.5 and hanoi.ratings == 2  # 5.4: 5 and 2
    assert (hue.received, hue.decided, hue.on_time_rate) == (1, 1, 1.0)
    assert hue.average_processing_hours == pytest.approx(1.0)
    assert hue.online_payment_rate is None and hue.satisfaction_rate is None


def test_kpis_per_day_kiosk_and_month(example: KpiReport) -> None:
    days = example.report("day", date(2026, 12, 7), date(2026, 12, 8))
    assert [(r.key, r.received, r.decided) for r in days] == [
        ("2026-12-07", 3, 3),
        ("2026-12-08", 1, 0),
    ]
    assert days[1].on_time_rate is None
    [month] = example.report("month", date(2026, 12, 1), date(2026, 12, 31))
    assert (month.key, month.received, month.on_time) == ("2026-12", 4, 2)
    kiosks = example.report("kiosk", date(2026, 12, 8), date(2026, 12, 8))
    assert [(r.key, r.received) for r in kiosks] == [("hn-01", 1)]
    assert example.report("center", date(2026, 12, 9), date(2026, 12, 31)) == []


def test_the_csv_export_and_bad_requests(example: KpiReport) -> None:
    text = to_csv(example.report("center", date(2026, 12, 7), date(2026, 12, 8)))
    header, hanoi, hue = text.splitlines()
    assert header.startswith("key,received,decided,on_time,")
    assert hanoi.startswith("000.00.01.H26,3,2,1,1,3,1,2,1,0.5,20.75,0.3333,0.5,1.0,0.5")
    assert hue.endswith(",1.0,1.0,,1.0,1.0,")
    with pytest.raises(InvalidInput):
        example.report("province", date(2026, 12, 7), date(2026, 12, 8))
    with pytest.raises(InvalidInput):
        example.report("day", date(2026, 12, 8), date(2026, 12, 7))


def test_kpis_per_official_count_the_dossiers_each_decided_at_the_desk(
    example: KpiReport, registry: SqlRegistry
) -> None:
    from saoy.core.desk.deskdb import DeskDb

    with pytest.raises(InvalidInput, match="desk"):
        example.report("official", date(2026, 12, 7), date(2026, 12, 8))
    desk = DeskDb(registry)  # the desk's tables, as the server makes them (its center: H26)
    with desk.transaction(write=True) as db:
        for login in ("lan", "binh"):
            db.execute(
                "INSERT INTO officials (id, full_name, title, center, role, password_hash,"
                " totp_secret, certificate, created_at)"
                " VALUES (?, ?, 'Công chức', '000.00.01.H26', 'official', 'x', 'x', 'x', ?)",
                (login, login.title(), desk.ts(MONDAY)),
            )
        rows = db.execute(
            "SELECT r.dossier_id, d.state FROM receipts r JOIN dossiers d ON d.id = r.dossier_id"
            " WHERE r.center_code = '000.00.01.H26' AND d.state IN ('ISSUED', 'REJECTED')"
        ).fetchall()
        for dossier_id, state in rows:  # A issued by lan, B refused by binh
            holder, outcome = ("lan", "issued") if state == "ISSUED" else ("binh", "refused")
            db.execute(
                "INSERT INTO reviews (dossier_id, holder, outcome, updated_at) VALUES (?, ?, ?, ?)",
                (dossier_id, holder, outcome, desk.ts(MONDAY)),
            )
    binh, lan = example.report("official", date(2026, 12, 7), date(2026, 12, 8))
    assert (lan.key, lan.decided, lan.on_time_rate, lan.issued) == ("lan", 1, 1.0, 1)
    assert (binh.key, binh.decided, binh.on_time_rate) == ("binh", 1, 0.0)
    assert binh.average_processing_hours == pytest.approx(41.0)


def test_the_daily_rollups_follow_later_decisions(
    example: KpiReport, registry: SqlRegistry
) -> None:
    from datetime import UTC

    tuesday = example.report("day", date(2026, 12, 8), date(2026, 12, 8))
    assert [(r.received, r.decided) for r in tuesday] == [(1, 0)]
    example.refresh()  # again: the same figures
    assert example.report("day", date(2026, 12, 8), date(2026, 12, 8)) == tuesday
    with example.db.transaction(write=True) as db:  # an official decides D now, at the desk
        db.execute(
            "UPDATE dossiers SET state = 'ISSUED', decided_at = ? WHERE state = 'NEEDS_REVIEW'",
            (example.db.ts(datetime.now(UTC)),),
        )
    [after] = example.report("day", date(2026, 12, 8), date(2026, 12, 8))
    assert (after.received, after.decided, after.issued) == (1, 1, 1)
    [month] = example.report("month", date(2026, 12, 1), date(2026, 12, 31))
    assert (month.received, month.decided) == (4, 4)
