"""Leases on dossiers under review: held by one official until released or expired."""

from __future__ import annotations

import time
from datetime import timedelta
from pathlib import Path

import pytest

from saoy.core.pki import DevPki
from saoy.core.registry import SqliteRegistry
from saoy.core.review import HeldByAnother

from .test_register import _desk, _page, _waiting_dossier, pki

__all__ = ["pki"]


def test_an_abandoned_lease_expires(tmp_path: Path, pki: DevPki) -> None:
    registry = SqliteRegistry(tmp_path / "registry.sqlite3")
    try:
        desk, (an, bich, _) = _desk(registry, tmp_path, pki)
        desk.lease = timedelta(seconds=0.5)
        dossier = _waiting_dossier(registry, desk.blobs, _page(90), "kiosk-reg")  # type: ignore[arg-type]
        desk.claim(an, dossier)
        with pytest.raises(HeldByAnother) as raised:
            desk.claim(bich, dossier)
        assert "Nguyễn Văn An (cbtp0)" in raised.value.message
        assert desk.queue(bich, thumbnails=False)[0].holder == "cbtp0"
        time.sleep(0.6)
        assert desk.queue(bich, thumbnails=False)[0].holder is None  # abandoned: free again
        desk.claim(bich, dossier)
        assert desk.status(dossier).holder_name == "Trần Thị Bích"
        kinds = [(e["official"], e["kind"]) for e in desk.db.audit_events(dossier)]
        assert kinds == [("cbtp0", "claimed"), ("cbtp1", "claimed")]
    finally:
        registry.close()
