"""Many dossiers at once through a real server, on SQLite and on PostgreSQL: every one gets its
own dossier code, the center's daily sequence has no gap, and each can be tracked."""

from __future__ import annotations

import io
import re
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from saoy.clients.sdk import CertifyResult, KioskClient, TrackingClient
from saoy.clients.simulator import docgen
from saoy.core.reception.centers import DEV_CENTER_CODE
from saoy.v1 import tracking_pb2 as tpb
from tests.pg import postgres_server, postgresql_url

from .conftest import RunningServer, start_server

__all__ = ["postgres_server", "postgresql_url"]

KIOSKS, PER_KIOSK = 4, 3
CODE = re.compile(re.escape(DEV_CENTER_CODE) + r"-(\d{6})-(\d{4})")


def card_jpeg(seed: int = 3) -> bytes:
    """The front of a generated ID card as a JPEG: a page the quality gate admits."""
    buffer = io.BytesIO()
    docgen.id_card_front(docgen.random_person(seed), seed=seed).image.save(buffer, "JPEG")
    return buffer.getvalue()


@pytest.fixture(params=["sqlite", "postgresql"])
def quick_server(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[RunningServer]:
    """A server without OCR or identity checks: what is measured here is reception."""
    registry_url = request.getfixturevalue("postgresql_url") if request.param != "sqlite" else ""
    running = start_server(
        tmp_path / "data",
        identity="off",
        ocr_engine="none",
        signing_level="B-T",
        registry_url=registry_url,
    )
    yield running
    running.stop()


def test_concurrent_dossiers_get_distinct_codes_in_one_daily_sequence(
    quick_server: RunningServer,
) -> None:
    page = card_jpeg()

    def one(n: int) -> CertifyResult:
        with KioskClient(quick_server.target, kiosk_id=f"kiosk-c{n % KIOSKS}") as client:
            return client.certify([page])

    with ThreadPoolExecutor(KIOSKS * 2) as pool:
        results = list(pool.map(one, range(KIOSKS * PER_KIOSK)))
    receipts = [r.received for r in results]
    assert all(r is not None for r in receipts)
    codes = [r.dossier_code for r in receipts]  # type: ignore[union-attr]
    matches = [CODE.fullmatch(c) for c in codes]
    assert all(matches), codes
    assert len({m[1] for m in matches}) == 1  # type: ignore[index]
    assert sorted(int(m[2]) for m in matches) == list(range(1, len(codes) + 1))  # type: ignore[index]
    assert len({r.dossier_id for r in results}) == len(results)

    with TrackingClient(quick_server.target) as tracking:
        for result in results[:3]:
            receipt = result.received
            found = tracking.get(receipt.dossier_code, receipt.lookup_secret)  # type: ignore[union-attr]
            assert found.dossier_code == receipt.dossier_code  # type: ignore[union-attr]
            decided = {"ISSUED": tpb.PORTAL_STATUS_RETURNED, "REJECTED": tpb.PORTAL_STATUS_STOPPED}
            assert found.status == decided.get(result.state, tpb.PORTAL_STATUS_PROCESSING)
