"""When a certified copy is due: the legal deadline of Decree 23/2015/NĐ-CP, art. 7.

A copy is certified within the working day the request was received, or on the next working day
when it was received after 15:00. Times are Vietnam's (Asia/Ho_Chi_Minh). A request received on
a day off (a kiosk is open at weekends) is taken as received when the next working day opens, so
it is due that day.

Working days are Monday to Friday, less the public holidays of the Labour Code (art. 112) as the
PyPI package ``holidays`` knows them (the lunar Tết days, the Hùng Kings' commemoration on the
10th of the third lunar month, the days given in lieu when a holiday falls at a weekend, and the
day swaps it already knows), plus the Saturdays worked in exchange for a day off. Each year the
government announces its day swaps (a working day given off, a Saturday worked instead); those
the package does not know yet are given as :class:`DaySwap` (``--day-swaps`` on the server).
"""

from __future__ import annotations

import re
import threading
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import Final
from zoneinfo import ZoneInfo

import holidays

VIETNAM: Final = ZoneInfo("Asia/Ho_Chi_Minh")
CUTOFF: Final = time(15, 0)
"""A request received after this time is due the next working day."""
CLOSE: Final = time(17, 0)
"""When offices close: the appointment is at this time of the day it is due."""
_SEARCH_DAYS: Final = 60  # longer than any run of days off (Tết with a weekend is at most 9)


@dataclass(frozen=True)
class DaySwap:
    """An announced swap: ``day_off`` (a working day) is given off and ``workday`` (a weekend
    day) is worked instead."""

    day_off: date
    workday: date


_SWAP = re.compile(r"\s*(\d{4}-\d{2}-\d{2})\s*=\s*(\d{4}-\d{2}-\d{2})\s*")


def parse_day_swaps(text: str) -> tuple[DaySwap, ...]:
    """Swaps written ``DAY_OFF=WORKDAY`` (ISO dates), separated by commas, e.g.
    ``2027-04-30=2027-04-24``; ValueError names the one that does not read."""
    swaps = []
    for part in filter(str.strip, text.split(",")):
        match = _SWAP.fullmatch(part)
        if match is None:
            raise ValueError(
                f"day swap {part.strip()!r}: write DAY_OFF=WORKDAY as ISO dates,"
                " e.g. 2027-04-30=2027-04-24"
            )
        try:
            swap = DaySwap(date.fromisoformat(match[1]), date.fromisoformat(match[2]))
        except ValueError as error:
            raise ValueError(f"day swap {part.strip()!r}: {error}") from None
        swaps.append(swap)
    return tuple(swaps)


class WorkCalendar:
    """Vietnam's working days: weekdays less public holidays and days given off, plus the
    weekend days worked in exchange. Safe to share between threads."""

    def __init__(self, swaps: Iterable[DaySwap] = ()) -> None:
        self.swaps = tuple(swaps)
        self._days_off = {s.day_off for s in self.swaps}
        self._workdays = {s.workday for s in self.swaps}
        clash = self._days_off & self._workdays
        if clash:
            raise ValueError(f"{min(clash)} is both given off and worked in the day swaps")
        self._lock = threading.Lock()
        self._years: dict[int, tuple[dict[date, str], frozenset[date]]] = {}

    def _year(self, year: int) -> tuple[dict[date, str], frozenset[date]]:
        with self._lock:
            known = self._years.get(year)
            if known is None:
                table = holidays.country_holidays("VN", years=year, language="vi")
                worked: set[date] = set(getattr(table, "weekend_workdays", ()))
                known = (dict(table.items()), frozenset(d for d in worked if d.year == year))
                self._years[year] = known
            return known

    def holiday(self, day: date) -> str | None:
        """The name (Vietnamese) of the holiday or day off that ``day`` is, if any."""
        if day in self._days_off:
            return "Ngày nghỉ hoán đổi"
        return self._year(day.year)[0].get(day)

    def is_working_day(self, day: date) -> bool:
        if day in self._workdays:
            return True
        if self.holiday(day) is not None:
            return False
        return day.weekday() < 5 or day in self._year(day.year)[1]

    def next_working_day(self, day: date, *, inclusive: bool = True) -> date:
        """The first working day from ``day`` (itself when ``inclusive`` and it is one)."""
        current = day if inclusive else day + timedelta(days=1)
        for _ in range(_SEARCH_DAYS):
            if self.is_working_day(current):
                return current
            current += timedelta(days=1)
        raise ValueError(f"no working day within {_SEARCH_DAYS} days of {day}")

    def working_days_between(self, start: date, end: date) -> int:
        """Working days after ``start`` up to and including ``end`` (0 when end <= start)."""
        count, current = 0, start
        while current < end:
            current += timedelta(days=1)
            count += self.is_working_day(current)
        return count


def due_day(received_at: datetime, calendar: WorkCalendar, *, cutoff: time = CUTOFF) -> date:
    """The working day a request received at ``received_at`` (aware) must be answered on."""
    if received_at.tzinfo is None:
        raise ValueError("received_at must be timezone-aware")
    local = received_at.astimezone(VIETNAM)
    day = local.date()
    if not calendar.is_working_day(day):
        return calendar.next_working_day(day)
    if local.time() > cutoff:
        return calendar.next_working_day(day, inclusive=False)
    return day


def appointment(
    received_at: datetime,
    calendar: WorkCalendar,
    *,
    cutoff: time = CUTOFF,
    close: time = CLOSE,
) -> datetime:
    """The appointment for the result (Decree 23/2015, art. 7): the close of the day it is due,
    in Vietnam's time."""
    day = due_day(received_at, calendar, cutoff=cutoff)
    return datetime.combine(day, close, tzinfo=VIETNAM)


def is_late(appointment_at: datetime, decided_at: datetime) -> bool:
    """Whether a dossier decided at ``decided_at`` missed its appointment."""
    return decided_at > appointment_at


__all__ = [
    "CLOSE",
    "CUTOFF",
    "VIETNAM",
    "DaySwap",
    "WorkCalendar",
    "appointment",
    "due_day",
    "is_late",
    "parse_day_swaps",
]
