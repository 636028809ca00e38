"""Queued dossiers received and not yet decided, kept in the registry's database.

When fronts and workers share a work queue, a dossier's pages and job travel through Redis,
which may lose what it acknowledged (a restart without its data). So that nothing a kiosk was
given a receipt for is lost, the front writes the dossier's job and pages in the transaction
that writes its receipt (:meth:`Intakes.add`); once the dossier is decided they are deleted. A
reconciler (``saoy.server.dossiers.Reconciler``) looks for intakes older than a grace period
whose work no worker holds, and submits them again; the result reaches the citizen through the
status page and the outbox (email, app), whether or not the kiosk is still there.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from saoy.core.reception.centers import ReceptionDb, retrying_busy


@dataclass(frozen=True)
class Intake:
    """A received dossier's job (the work queue's fields) and its pages' files, in order."""

    job: dict[str, str]
    pages: tuple[bytes, ...]


@dataclass(frozen=True)
class Pending:
    """An intake not yet decided: its dossier, job, when it was last submitted, how often."""

    dossier_id: str
    job: dict[str, str]
    submitted_at: datetime
    attempts: int


class Intakes:
    def __init__(self, db: ReceptionDb) -> None:
        self.db = db

    def add(self, statements: Any, dossier_id: str, intake: Intake, at: datetime) -> None:
        """Keep a dossier's job and pages, inside the caller's transaction (its receipt's)."""
        statements.execute(
            "INSERT INTO intakes (dossier_id, job, submitted_at) VALUES (?, ?, ?)",
            (dossier_id, self.db.codec.to_json(intake.job), self.db.ts(at)),
        )
        for index, data in enumerate(intake.pages):
            statements.execute(
                "INSERT INTO intake_pages (dossier_id, idx, data) VALUES (?, ?, ?)",
                (dossier_id, index, data),
            )

    @retrying_busy
    def forget_decided(self) -> int:
        """Delete the intakes of dossiers decided since (their pages are in the registry's
        blobs now, sealed, under the retention policy); how many."""
        decided = "SELECT i.dossier_id FROM intakes i JOIN dossiers d ON d.id = i.dossier_id"
        with self.db.transaction(write=True) as db:
            db.execute(f"DELETE FROM intake_pages WHERE dossier_id IN ({decided})")
            gone = db.execute(f"DELETE FROM intakes WHERE dossier_id IN ({decided})").rowcount
        return int(gone or 0)

    @retrying_busy
    def stale(self, older_than: datetime, limit: int = 20) -> list[Pending]:
        """Undecided intakes last submitted before ``older_than``, oldest first."""
        with self.db.transaction(write=False) as db:
            rows = db.execute(
                "SELECT i.dossier_id, i.job, i.submitted_at, i.attempts FROM intakes i"
                " LEFT JOIN dossiers d ON d.id = i.dossier_id"
                " WHERE d.id IS NULL AND i.submitted_at < ? ORDER BY i.submitted_at LIMIT ?",
                (self.db.ts(older_than), limit),
            ).fetchall()
        return [
            Pending(d, self.db.codec.from_json(job), self.db.dt(at), int(n))
            for d, job, at, n in rows
        ]

    @retrying_busy
    def claim(self, pending: Pending, now: datetime) -> bool:
        """Take an intake to submit it again; False when another reconciler took it first."""
        with self.db.transaction(write=True) as db:
            taken = db.execute(
                "UPDATE intakes SET submitted_at = ?, attempts = attempts + 1"
                " WHERE dossier_id = ? AND submitted_at = ?",
                (self.db.ts(now), pending.dossier_id, self.db.ts(pending.submitted_at)),
            ).rowcount
        return bool(taken)

    @retrying_busy
    def pages(self, dossier_id: str) -> list[bytes]:
        with self.db.transaction(write=False) as db:
            rows = db.execute(
                "SELECT data FROM intake_pages WHERE dossier_id = ? ORDER BY idx", (dossier_id,)
            ).fetchall()
        return [bytes(data) for (data,) in rows]

    @retrying_busy
    def give_up(self, dossier_id: str) -> None:
        """Stop trying a dossier that keeps failing: its pages are deleted."""
        with self.db.transaction(write=True) as db:
            db.execute("DELETE FROM intake_pages WHERE dossier_id = ?", (dossier_id,))
            db.execute("DELETE FROM intakes WHERE dossier_id = ?", (dossier_id,))
