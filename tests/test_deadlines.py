"""Decree 23/2015 art. 7: the same working day, or the next one when received after 15:00;
Vietnam's holidays (lunar Tết, the Hùng Kings' day) and announced day swaps."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest

from saoy.core.reception.deadlines import (
    VIETNAM,
    DaySwap,
    WorkCalendar,
    appointment,
    due_day,
    is_late,
    parse_day_swaps,
)

CALENDAR = WorkCalendar()


def at(text: str) -> datetime:
    """A wall-clock time in Vietnam."""
    return datetime.fromisoformat(text).replace(tzinfo=VIETNAM)


@pytest.mark.parametrize(
    ("received", "due"),
    [
        ("2026-12-07 09:00", "2026-12-07"),  # Monday morning: the same day
        ("2026-12-07 15:00:00", "2026-12-07"),  # 15:00 itself is not after 15:00
        ("2026-12-07 15:00:01", "2026-12-08"),  # after 15:00: the next working day
        ("2026-12-07 06:30", "2026-12-07"),  # before opening: still that day
        ("2026-12-11 16:00", "2026-12-14"),  # Friday afternoon: Monday
        ("2026-12-12 10:00", "2026-12-14"),  # Saturday: received when Monday opens
        ("2026-12-13 22:00", "2026-12-14"),  # Sunday night: Monday
    ],
)
def test_the_fifteen_hundred_boundary_and_weekends(received: str, due: str) -> None:
    assert due_day(at(received), CALENDAR) == date.fromisoformat(due)


def test_tet_2026_is_skipped_whole() -> None:
    # Tết Bính Ngọ: Mon 16 Feb (New Year's Eve) to Fri 20 Feb 2026 are days off.
    for day in range(16, 21):
        assert not CALENDAR.is_working_day(date(2026, 2, day))
        assert CALENDAR.holiday(date(2026, 2, day))
    assert "Tết" in (CALENDAR.holiday(date(2026, 2, 17)) or "")
    assert due_day(at("2026-02-13 16:00"), CALENDAR) == date(2026, 2, 23)
    assert due_day(at("2026-02-13 14:59"), CALENDAR) == date(2026, 2, 13)
    assert due_day(at("2026-02-18 10:00"), CALENDAR) == date(2026, 2, 23)


def test_tet_2027_follows_the_lunar_calendar() -> None:
    # Tết Đinh Mùi falls on Sat 6 Feb 2027: Thu 4 to Wed 10 Feb are off.
    assert due_day(at("2027-02-03 15:30"), CALENDAR) == date(2027, 2, 11)


def test_the_hung_kings_day_and_its_day_in_lieu() -> None:
    # 10th of the 3rd lunar month: Sun 26 Apr 2026, given back on Mon 27 Apr.
    assert not CALENDAR.is_working_day(date(2026, 4, 27))
    assert due_day(at("2026-04-24 15:01"), CALENDAR) == date(2026, 4, 28)
    # ... and Fri 16 Apr 2027
    assert due_day(at("2027-04-15 16:00"), CALENDAR) == date(2027, 4, 19)


def test_a_saturday_worked_in_exchange_is_a_working_day() -> None:
    # 2025: Fri 2 May given off, Sat 26 Apr worked instead (known to the holidays package)
    assert CALENDAR.is_working_day(date(2025, 4, 26))
    assert not CALENDAR.is_working_day(date(2025, 5, 2))
    assert due_day(at("2025-04-26 10:00"), CALENDAR) == date(2025, 4, 26)
    assert due_day(at("2025-04-29 16:00"), CALENDAR) == date(2025, 5, 5)


def test_announced_swaps_are_configurable() -> None:
    swaps = parse_day_swaps("2027-12-31=2027-12-25")
    assert swaps == (DaySwap(date(2027, 12, 31), date(2027, 12, 25)),)
    calendar = WorkCalendar(swaps)
    assert due_day(at("2027-12-30 16:00"), CALENDAR) == date(2027, 12, 31)
    # 31 Dec given off, New Year's Day on Saturday and given back on Monday 3 Jan
    assert due_day(at("2027-12-30 16:00"), calendar) == date(2028, 1, 4)
    assert due_day(at("2027-12-25 09:00"), calendar) == date(2027, 12, 25)


def test_a_bad_swap_says_how_to_write_one() -> None:
    with pytest.raises(ValueError, match="DAY_OFF=WORKDAY"):
        parse_day_swaps("2027-12-31")
    with pytest.raises(ValueError, match="2027-02-30"):
        parse_day_swaps("2027-02-30=2027-02-27")
    with pytest.raises(ValueError, match="both"):
        WorkCalendar(
            [
                DaySwap(date(2027, 1, 4), date(2027, 1, 9)),
                DaySwap(date(2027, 1, 9), date(2027, 1, 16)),
            ]
        )
    assert parse_day_swaps(" ") == ()


def test_the_appointment_is_the_close_of_the_due_day_in_vietnam() -> None:
    received = datetime(2026, 12, 7, 8, 30, tzinfo=UTC)  # 15:30 in Hanoi
    due = appointment(received, CALENDAR)
    assert due == datetime(2026, 12, 8, 17, 0, tzinfo=VIETNAM)
    assert due.utcoffset() is not None
    assert not is_late(due, due) and is_late(due, datetime(2026, 12, 8, 10, 1, tzinfo=UTC))


def test_naive_times_are_refused() -> None:
    with pytest.raises(ValueError, match="aware"):
        due_day(datetime(2026, 12, 7, 9, 0), CALENDAR)


def test_working_days_between() -> None:
    assert CALENDAR.working_days_between(date(2026, 2, 13), date(2026, 2, 23)) == 1
    assert CALENDAR.working_days_between(date(2026, 12, 7), date(2026, 12, 7)) == 0
