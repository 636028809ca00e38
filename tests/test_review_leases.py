"""The desk in the core: leases held by one official until released or expired, and the
transparency log made whole at start when a decision's leaf is missing."""

from __future__ import annotations

import time
from datetime import timedelta
from pathlib import Path

import pytest

from saoy.core.desk.review import HeldByAnother
from saoy.core.storage.registry import SqliteRegistry
from saoy.core.trust.pki import DevPki

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


def test_decisions_missing_from_the_log_are_appended_at_start(tmp_path: Path, pki: DevPki) -> None:
    import asyncio

    from saoy.core.trust.publication import LogPublisher
    from saoy.core.trust.translog import (
        CheckpointSigner,
        SqliteTransparencyLog,
        decode_entry,
        ensure_log_key,
    )

    registry = SqliteRegistry(tmp_path / "registry.sqlite3")
    translog = SqliteTransparencyLog(tmp_path / "translog.sqlite3")
    try:
        desk, (an, bich, _) = _desk(registry, tmp_path, pki)
        blobs = desk.blobs
        approved = _waiting_dossier(registry, blobs, _page(70), "kiosk-reg")  # type: ignore[arg-type]
        refused = _waiting_dossier(registry, blobs, _page(71), "kiosk-reg")  # type: ignore[arg-type]
        copy = asyncio.run(desk.approve(an, approved)).copy  # decided with no log at hand
        desk.refuse(bich, refused, "damaged", "Bản chính bị rách")
        desk.publisher = LogPublisher(
            translog,
            CheckpointSigner.from_file(ensure_log_key(tmp_path / "keys"), "test/log"),
            registry,
        )
        assert desk.reconcile_log() == 3  # issued + approved, refused
        assert desk.reconcile_log() == 0  # once
        kinds = [decode_entry(translog.entry(i)).kind for i in translog.indexes_of(copy.code)]
        assert kinds == ["issued", "approved"]
    finally:
        translog.close()
        registry.close()
