"""The certification register (sổ chứng thực) of each center, one book a year, and the
certification statement (lời chứng) printed on every copy, in the forms of Circular
01/2020/TT-BTP.

Every issued copy takes the next number of its center's book for the year. The number is
printed on the copy, so it is taken before the copy is signed and confirmed when the copy is
stored; a number taken by an approval that then fails is given back and is the next one taken,
so the book has no gap: numbers 1..n each name one issued copy (a number being signed at the
moment is reserved). Taking a number locks the book's row (PostgreSQL) or the database
(SQLite) for one short transaction.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone
from typing import Any, Final

from saoy.core.desk.deskdb import DeskDb, now

VIETNAM: Final = timezone(timedelta(hours=7), "ICT")
BOOK: Final = "01"
"""One book a year per center; its number within the year."""
KIND: Final = "SCT/BS"
"""The register of certified copies from originals (sổ chứng thực bản sao từ bản chính)."""
STALE_RESERVATION: Final = timedelta(minutes=10)
DUTY_NAME: Final = "Chứng thực viên trực"
"""Who signs the copies a center issues without review (the on-duty official's key)."""
DUTY_TITLE: Final = "cấp tự động tại kiosk"


@dataclass(frozen=True)
class RegisterNumber:
    center: str
    year: int
    number: int

    @property
    def book(self) -> str:
        """``01/2026-SCT/BS``."""
        return f"{BOOK}/{self.year}-{KIND}"

    def __str__(self) -> str:
        return f"Số chứng thực {self.number}, Quyển số {self.book}"


@dataclass(frozen=True)
class Statement:
    """The certification statement of a copy (lời chứng chứng thực bản sao từ bản chính)."""

    number: RegisterNumber
    day: date
    place: str  # the center's name
    official_name: str
    official_title: str

    def lines(self) -> tuple[str, ...]:
        d = self.day
        return (
            "LỜI CHỨNG: Chứng thực bản sao đúng với bản chính.",
            f"Số chứng thực: {self.number.number}  Quyển số: {self.number.book}",
            f"{self.place}, ngày {d.day:02d} tháng {d.month:02d} năm {d.year}",
            f"Người thực hiện chứng thực: {self.official_name} — {self.official_title} (đã ký số)",
        )


def year_of(at: datetime) -> int:
    return at.astimezone(VIETNAM).year


class Register:
    """The books of every center, in the desk's tables."""

    def __init__(self, db: DeskDb) -> None:
        self.db = db

    def reserve(
        self, center: str, dossier_id: str, official_id: str, at: datetime
    ) -> RegisterNumber:
        """The number of the dossier's copy in the center's book of ``at``'s year: the one it
        already holds, else the lowest number given back, else the next."""
        year = year_of(at)
        with self.db.transaction(write=True) as db:
            db.execute(
                "INSERT INTO register_books (center, year, last_number) VALUES (?, ?, 0)"
                " ON CONFLICT (center, year) DO NOTHING",
                (center, year),
            )
            # The book's row is locked first: reservations in a book take turns, and what a
            # turn reads next (READ COMMITTED) includes every turn before it.
            last = db.execute(
                "SELECT last_number FROM register_books WHERE center = ? AND year = ?"
                + self.db.for_update,
                (center, year),
            ).fetchone()[0]
            held = db.execute(
                "SELECT center, year, number FROM register_entries WHERE dossier_id = ?",
                (dossier_id,),
            ).fetchone()
            if held is not None:
                return RegisterNumber(*held)
            free = db.execute(
                "SELECT min(number) FROM register_entries"
                " WHERE center = ? AND year = ? AND state = 'free'",
                (center, year),
            ).fetchone()[0]
            values = (dossier_id, official_id, self.db.ts(now()))
            if free is not None:
                number = int(free)
                db.execute(
                    "UPDATE register_entries SET dossier_id = ?, official_id = ?,"
                    " state = 'reserved', reserved_at = ?"
                    " WHERE center = ? AND year = ? AND number = ? AND state = 'free'",
                    (*values, center, year, number),
                )
            else:
                number = int(last) + 1
                db.execute(
                    "UPDATE register_books SET last_number = ? WHERE center = ? AND year = ?",
                    (number, center, year),
                )
                db.execute(
                    "INSERT INTO register_entries (center, year, number, dossier_id,"
                    " official_id, state, reserved_at) VALUES (?, ?, ?, ?, ?, 'reserved', ?)",
                    (center, year, number, *values),
                )
        return RegisterNumber(center, year, number)

    def issued_without_review(self, dossier_id: str, code: str, at: datetime) -> None:
        """The copy of a dossier issued automatically was stored: its entry names it."""
        with self.db.transaction(write=True) as db:
            db.execute(
                "UPDATE register_entries SET state = 'issued', code = ?, issued_at = ?"
                " WHERE dossier_id = ? AND state = 'reserved'",
                (code, self.db.ts(at), dossier_id),
            )

    def release(self, dossier_id: str) -> None:
        """Give back a reserved number whose copy was not stored."""
        with self.db.transaction(write=True) as db:
            db.execute(
                "UPDATE register_entries SET state = 'free', dossier_id = NULL,"
                " official_id = NULL, reserved_at = NULL"
                " WHERE dossier_id = ? AND state = 'reserved'",
                (dossier_id,),
            )

    def release_stale(self, older_than: timedelta = STALE_RESERVATION) -> int:
        """Give back numbers reserved by approvals that never finished (a process killed
        while signing); how many."""
        cutoff = self.db.ts(now() - older_than)
        with self.db.transaction(write=True) as db:
            # stored, but killed before its entry named it: the copy is the entry's
            db.execute(
                "UPDATE register_entries SET state = 'issued',"
                " code = (SELECT c.code FROM copies c"
                " WHERE c.dossier_id = register_entries.dossier_id),"
                " issued_at = (SELECT c.issued_at FROM copies c"
                " WHERE c.dossier_id = register_entries.dossier_id)"
                " WHERE state = 'reserved' AND EXISTS (SELECT 1 FROM copies c"
                " WHERE c.dossier_id = register_entries.dossier_id)"
            )
            cursor = db.execute(
                "UPDATE register_entries SET state = 'free', dossier_id = NULL,"
                " official_id = NULL, reserved_at = NULL"
                " WHERE state = 'reserved' AND reserved_at < ?",
                (cutoff,),
            )
            return int(getattr(cursor, "rowcount", 0) or 0)

    def entries(self, center: str, year: int) -> list[dict[str, Any]]:
        """The book, in number order."""
        with self.db.transaction(write=False) as db:
            rows = db.execute(
                "SELECT e.number, e.state, e.code, e.dossier_id, e.issued_at, o.id,"
                " o.full_name, o.title, d.page_count"
                " FROM register_entries e"
                " LEFT JOIN officials o ON o.id = e.official_id"
                " LEFT JOIN dossiers d ON d.id = e.dossier_id"
                " WHERE e.center = ? AND e.year = ? ORDER BY e.number",
                (center, year),
            ).fetchall()
        book = f"{BOOK}/{year}-{KIND}"
        return [
            {
                "number": number,
                "book": book,
                "state": state,
                "code": code or "",
                "dossier_id": dossier or "",
                "issued_at": "" if issued is None else self.db.dt(issued),
                "official": official or "",
                "official_name": name or ("" if official else DUTY_NAME),
                "official_title": title or ("" if official else DUTY_TITLE),
                "pages": pages or 0,
            }
            for number, state, code, dossier, issued, official, name, title, pages in rows
        ]

    def export_csv(self, center: str, year: int) -> str:
        """The book as CSV (UTF-8, a header row, one row per number; no personal data of
        the citizen: the copy's code and dossier id say where the rest is)."""
        out = io.StringIO()
        columns = (
            "number",
            "book",
            "state",
            "issued_at",
            "code",
            "dossier_id",
            "pages",
            "official",
            "official_name",
            "official_title",
        )
        writer = csv.DictWriter(out, fieldnames=columns, extrasaction="ignore")
        writer.writeheader()
        for entry in self.entries(center, year):
            issued = entry["issued_at"]
            entry["issued_at"] = (
                issued.astimezone(VIETNAM).isoformat(timespec="seconds") if issued else ""
            )
            writer.writerow(entry)
        return out.getvalue()


__all__ = [
    "BOOK",
    "DUTY_NAME",
    "DUTY_TITLE",
    "KIND",
    "Register",
    "RegisterNumber",
    "Statement",
    "year_of",
]
