"""Service KPIs of Decision 766/QĐ-TTg, per center, kiosk, day or month of reception, computed
in the database from the receipts, decisions, payments and ratings (no personal data).

- 2.1 on-time rate: dossiers decided by their appointment / dossiers decided;
- 2.2 average processing time: hours from reception to decision, over dossiers decided;
- 3.6 online-payment rate: fees paid by bank transfer (Tracking.ConfirmPayment) / dossiers
  that owe a fee;
- 4.1 electronic-result rate: dossiers whose result is an electronic copy / dossiers decided
  (every copy saoy issues is electronic; a refusal is not one);
- 4.2 digitization rate: dossiers whose originals were digitized / dossiers received (at a
  kiosk, every one);
- 5.4 satisfaction: ratings of 4 or 5 / ratings (Tracking.Rate), and the mean rating.

A dossier still under review counts as received, not decided. Grouped by official, only the
dossiers an official decided at the desk count (the official's login is the key). Rates are
None where their denominator is 0.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Sequence
from dataclasses import asdict, dataclass, fields
from datetime import UTC, date, datetime, time, timedelta
from typing import Any, Final

from saoy.core.errors import InvalidInput
from saoy.core.reception.centers import ReceptionDb, retrying_busy
from saoy.core.reception.deadlines import VIETNAM

GROUPINGS: Final = ("center", "kiosk", "official", "day", "month")


@dataclass(frozen=True)
class KpiRow:
    key: str  # unit code, kiosk id, official's login, YYYY-MM-DD or YYYY-MM (Vietnam's dates)
    received: int
    decided: int
    on_time: int
    issued: int
    fee_due: int
    paid_online: int
    ratings: int
    satisfied: int
    processing_hours_total: float

    @property
    def on_time_rate(self) -> float | None:  # 2.1
        return _rate(self.on_time, self.decided)

    @property
    def average_processing_hours(self) -> float | None:  # 2.2
        return None if self.decided == 0 else self.processing_hours_total / self.decided

    @property
    def online_payment_rate(self) -> float | None:  # 3.6
        return _rate(self.paid_online, self.fee_due)

    @property
    def electronic_result_rate(self) -> float | None:  # 4.1
        return _rate(self.issued, self.decided)

    @property
    def digitization_rate(self) -> float | None:  # 4.2
        return _rate(self.received, self.received)

    @property
    def satisfaction_rate(self) -> float | None:  # 5.4
        return _rate(self.satisfied, self.ratings)

    def figures(self) -> dict[str, Any]:
        """Counts and rates, for CSV and the RPC."""
        out = asdict(self)
        del out["processing_hours_total"]
        for name in (
            "on_time_rate",
            "average_processing_hours",
            "online_payment_rate",
            "electronic_result_rate",
            "digitization_rate",
            "satisfaction_rate",
        ):
            out[name] = getattr(self, name)
        return out


def _rate(part: int, whole: int) -> float | None:
    return None if whole == 0 else part / whole


class KpiReport:
    """KPIs over the reception's tables (SQLite or PostgreSQL)."""

    def __init__(self, db: ReceptionDb) -> None:
        self.db = db
        self.postgres = db.column_types["timestamp"] == "TIMESTAMPTZ"

    def _key(self, by: str) -> str:
        if by == "center":
            return "r.center_code"
        if by == "kiosk":
            return "r.kiosk_id"
        if by == "official":
            return "v.holder"
        width = 10 if by == "day" else 7
        if self.postgres:
            fmt = "YYYY-MM-DD" if by == "day" else "YYYY-MM"
            return f"to_char(r.received_at AT TIME ZONE 'Asia/Ho_Chi_Minh', '{fmt}')"
        return f"substr(datetime(r.received_at, '+7 hours'), 1, {width})"

    def _hours(self) -> str:
        if self.postgres:
            return "EXTRACT(EPOCH FROM (d.decided_at - r.received_at)) / 3600.0"
        return "(julianday(d.decided_at) - julianday(r.received_at)) * 24.0"

    def _desk(self) -> bool:
        """Whether the official's desk keeps its reviews in this database."""
        try:
            with self.db.transaction(write=False) as db:
                db.execute("SELECT dossier_id, holder, outcome FROM reviews WHERE 1 = 0")
        except Exception as error:
            if self.db.transient(error):
                raise
            return False
        return True

    def _aggregates(self, keys: str, reviewed: str = "") -> str:
        """The figures of the receipts from ? to ?, grouped by ``keys`` (SQL expressions)."""
        decided = "d.state IN ('ISSUED', 'REVOKED', 'REJECTED')"
        return f"""
            SELECT {keys},
                count(*),
                sum(CASE WHEN {decided} THEN 1 ELSE 0 END),
                sum(CASE WHEN {decided} AND d.decided_at <= r.appointment_at THEN 1 ELSE 0 END),
                sum(CASE WHEN d.state IN ('ISSUED', 'REVOKED') THEN 1 ELSE 0 END),
                sum(CASE WHEN r.fee_vnd > 0 THEN 1 ELSE 0 END),
                sum(CASE WHEN p.dossier_id IS NOT NULL THEN 1 ELSE 0 END),
                sum(CASE WHEN g.score IS NOT NULL THEN 1 ELSE 0 END),
                sum(CASE WHEN g.score >= 4 THEN 1 ELSE 0 END),
                sum(CASE WHEN {decided} THEN {self._hours()} ELSE 0 END)
            FROM receipts r
            LEFT JOIN dossiers d ON d.id = r.dossier_id
            LEFT JOIN payments p ON p.dossier_id = r.dossier_id
            LEFT JOIN ratings g ON g.dossier_id = r.dossier_id
            {reviewed}
            WHERE r.received_at >= ? AND r.received_at < ?
            GROUP BY {", ".join(f"{i + 1}" for i in range(keys.count(",") + 1))}"""

    def _range(self, since: date, until: date) -> tuple[Any, Any]:
        start = datetime.combine(since, time(0), tzinfo=VIETNAM)
        end = datetime.combine(until + timedelta(days=1), time(0), tzinfo=VIETNAM)
        return self.db.ts(start), self.db.ts(end)

    @retrying_busy
    def report(self, by: str, since: date, until: date) -> list[KpiRow]:
        """One row per ``by`` over dossiers received from ``since`` to ``until`` (Vietnam's
        dates, both included), in key order. By center, kiosk, day or month the figures come
        from the daily rollups (brought up to date first); by official, from the dossiers."""
        if by not in GROUPINGS:
            raise InvalidInput(f"by must be one of {', '.join(GROUPINGS)}", field="by")
        if until < since:
            raise InvalidInput("until is before since", field="until")
        if by == "official":
            if not self._desk():
                raise InvalidInput(
                    "by=official needs the official's desk, which this database does not hold",
                    field="by",
                )
            reviewed = (
                "JOIN reviews v ON v.dossier_id = r.dossier_id"
                " AND v.outcome IN ('issued', 'refused')"
            )
            with self.db.transaction(write=False) as db:
                rows = db.execute(
                    self._aggregates("v.holder", reviewed) + " ORDER BY 1",
                    self._range(since, until),
                ).fetchall()
            return [_row(*row) for row in rows]
        self.refresh()
        key = {"center": "center_code", "kiosk": "kiosk_id", "day": "day"}.get(
            by, "substr(day, 1, 7)"
        )
        with self.db.transaction(write=False) as db:
            rows = db.execute(
                f"SELECT {key}, sum(received), sum(decided), sum(on_time), sum(issued),"
                " sum(fee_due), sum(paid_online), sum(ratings), sum(satisfied),"
                f" sum(hours_total) FROM kpi_daily WHERE day >= ? AND day <= ?"
                f" GROUP BY {key} ORDER BY {key}",
                (since.isoformat(), until.isoformat()),
            ).fetchall()
        return [_row(*row) for row in rows]

    @retrying_busy
    def refresh(self, overlap: timedelta = timedelta(minutes=5)) -> int:
        """Recompute the daily rollups of every day of reception something changed on since the
        last refresh (receipts, decisions, payments, ratings; ``overlap`` covers writers whose
        clocks run a little behind); how many days were recomputed."""
        now = datetime.now(UTC)
        day = self._key("day")
        with self.db.transaction(write=True) as db:
            if self.postgres:
                db.execute("SELECT pg_advisory_xact_lock(?)", (_ROLLUP_LOCK,))
            found = db.execute("SELECT refreshed_at FROM kpi_state WHERE id = 1").fetchone()
            mark = self.db.ts(
                datetime(1970, 1, 1, tzinfo=UTC)
                if found is None
                else self.db.dt(found[0]) - overlap
            )
            changed = " UNION ".join(
                f"SELECT {day} FROM {table} JOIN receipts r ON r.dossier_id = x.{column}"
                f" WHERE x.{at} >= ?"
                for table, column, at in (
                    ("dossiers x", "id", "decided_at"),
                    ("payments x", "dossier_id", "recorded_at"),
                    ("ratings x", "dossier_id", "rated_at"),
                )
            )
            dirty = db.execute(
                f"SELECT {day} FROM receipts r WHERE r.received_at >= ? UNION {changed}",
                (mark, mark, mark, mark),
            ).fetchall()
            days = sorted({str(d) for (d,) in dirty})
            for text in days:
                when = date.fromisoformat(text)
                rows = db.execute(
                    self._aggregates("r.center_code, r.kiosk_id"), self._range(when, when)
                ).fetchall()
                db.execute("DELETE FROM kpi_daily WHERE day = ?", (text,))
                db.executemany(
                    "INSERT INTO kpi_daily (center_code, kiosk_id, day, received, decided,"
                    " on_time, issued, fee_due, paid_online, ratings, satisfied, hours_total)"
                    " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    [
                        (c, k, text, *(int(v or 0) for v in figures), float(h or 0.0))
                        for c, k, *figures, h in rows
                    ],
                )
            db.execute(
                "INSERT INTO kpi_state (id, refreshed_at) VALUES (1, ?)"
                " ON CONFLICT (id) DO UPDATE SET refreshed_at = excluded.refreshed_at",
                (self.db.ts(now),),
            )
        return len(days)


_ROLLUP_LOCK: Final = 0x5A0_6B70_6931  # pg_advisory_xact_lock key: one rollup refresh at a time


def _row(key: Any, *figures: Any) -> KpiRow:
    received, decided, on_time, issued, fee_due, paid, ratings, satisfied, hours = figures
    return KpiRow(
        key=str(key),
        received=int(received or 0),
        decided=int(decided or 0),
        on_time=int(on_time or 0),
        issued=int(issued or 0),
        fee_due=int(fee_due or 0),
        paid_online=int(paid or 0),
        ratings=int(ratings or 0),
        satisfied=int(satisfied or 0),
        processing_hours_total=float(hours or 0.0),
    )


def to_csv(rows: Sequence[KpiRow]) -> str:
    """The rows as CSV (a header, then one line per row; empty cells for undefined rates)."""
    names = [f.name for f in fields(KpiRow) if f.name != "processing_hours_total"] + [
        "on_time_rate",
        "average_processing_hours",
        "online_payment_rate",
        "electronic_result_rate",
        "digitization_rate",
        "satisfaction_rate",
    ]
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=names, lineterminator="\n")
    writer.writeheader()
    for row in rows:
        figures = row.figures()
        writer.writerow(
            {
                k: ("" if v is None else round(v, 4) if isinstance(v, float) else v)
                for k, v in figures.items()
            }
        )
    return out.getvalue()


__all__ = ["GROUPINGS", "KpiReport", "KpiRow", "to_csv"]
