"""The desk's queue by legal deadline: the dossier whose appointment (the receipt's legal
deadline) comes first is reviewed first, then the oldest arrival; a dossier received with no
receipt comes after those with one. The deadline comes with each item."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

from saoy.core.desk.review import Desk
from saoy.core.storage.blobs import FileBlobStore
from saoy.core.storage.registry import SqliteRegistry
from saoy.core.trust.pki import DevPki
from tests.test_register import CENTER, _desk, _page, _waiting_dossier, pki

__all__ = ["pki"]


def _receipt(desk: Desk, dossier_id: str, number: int, appointment: datetime) -> None:
    with desk.db.transaction(write=True) as db:
        db.execute(
            "INSERT INTO receipts (dossier_id, dossier_code, kiosk_id, request_id, center_code,"
            " received_at, pages, copies, fee_vnd, fees_waived, appointment_at)"
            " VALUES (?, ?, 'kiosk-reg', ?, ?, ?, 1, 1, 0, 1, ?)",
            (
                dossier_id,
                f"{CENTER}-261207-{number:04d}",
                "req-" + dossier_id[:16],
                CENTER,
                desk.db.ts(datetime.now(UTC)),
                desk.db.ts(appointment),
            ),
        )


def test_the_queue_puts_the_oldest_deadline_first(tmp_path: Path, pki: DevPki) -> None:
    registry = SqliteRegistry(tmp_path / "registry.sqlite3")
    try:
        desk, people = _desk(registry, tmp_path, pki)
        blobs = desk.blobs
        assert isinstance(blobs, FileBlobStore)
        page = _page()
        # in order of arrival: a (due in 3 days), b (due tomorrow), c (no receipt), d (due
        # tomorrow, as b)
        a, b, c, d = (_waiting_dossier(registry, blobs, page, "kiosk-reg") for _ in range(4))
        tomorrow = datetime.now(UTC).replace(microsecond=0) + timedelta(days=1)
        _receipt(desk, a, 1, tomorrow + timedelta(days=2))
        _receipt(desk, b, 2, tomorrow)
        _receipt(desk, d, 4, tomorrow)

        queue = desk.queue(people[0], thumbnails=False)
        assert [item.dossier_id for item in queue] == [b, d, a, c]
        assert [item.appointment_at for item in queue] == [
            tomorrow,
            tomorrow,
            tomorrow + timedelta(days=2),
            None,
        ]
        assert [item.dossier_id for item in desk.queue(people[0], limit=2)] == [b, d]
    finally:
        registry.close()
