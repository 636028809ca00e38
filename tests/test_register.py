"""The certification register: numbers unique and gap-free under concurrent approvals, on
SQLite and on PostgreSQL; a number given back by a failed approval is the next one taken; the
book exported as CSV; the certification statement's wording."""

from __future__ import annotations

import asyncio
import csv
import io
import time
import traceback
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, date, datetime
from pathlib import Path

import pytest
from PIL import Image

from saoy.core.desk.deskdb import DeskDb
from saoy.core.desk.officials import Official, Officials
from saoy.core.desk.register import RegisterNumber, Statement, year_of
from saoy.core.desk.review import Desk, OfficialSigners
from saoy.core.model import CheckResult, Outcome
from saoy.core.pages.admission import Limits
from saoy.core.reception.centers import Center
from saoy.core.storage.blobs import FileBlobStore
from saoy.core.storage.registries import create_registry
from saoy.core.storage.registry import (
    DossierRecord,
    PageRecord,
    Registry,
    SqliteRegistry,
    store_dossier,
)
from saoy.core.trust.pki import DevPki, ensure_dev_pki
from tests.pg import postgres_server, postgresql_url

__all__ = ["postgres_server", "postgresql_url"]

CENTER = "000.00.09.REG"
SO_CENTER = Center(CENTER, "UBND Phường Sổ", "Thành phố Hà Nội", "Phường Sổ, Hà Nội")
APPROVALS = 50


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> DevPki:
    return ensure_dev_pki(
        tmp_path_factory.mktemp("pki") / "pki",
        organization="UBND Phường Sổ (test)",
        passphrase=b"test",
    )


def _page(shade: int = 245) -> bytes:
    """A small page: the register is under test, not the pages."""
    buffer = io.BytesIO()
    Image.new("RGB", (600, 400), (250, 250, shade)).save(buffer, "PNG", dpi=(300, 300))
    return buffer.getvalue()


@pytest.fixture(scope="module")
def page() -> bytes:
    return _page()


def _waiting_dossier(registry: Registry, blobs: FileBlobStore, page: bytes, kiosk: str) -> str:
    dossier_id = uuid.uuid4().hex
    now = datetime.now(UTC)
    dossier = DossierRecord(
        id=dossier_id,
        request_id="req-" + dossier_id[:16],
        kiosk_id=kiosk,
        state="NEEDS_REVIEW",
        created_at=now,
        decided_at=now,
        page_count=1,
        reasons=("an official must look",),
        checks=(CheckResult("pages_admitted", Outcome.PASS, "1 page(s) admitted"),),
    )
    import hashlib

    record = PageRecord(
        dossier_id=dossier_id,
        index=0,
        blob_key=hashlib.sha256(page).hexdigest(),
        format="png",
        width=600,
        height=400,
        text="",
        mean_confidence=0.0,
        fields=(("full_name", "NGUYỄN VĂN A", 0.4),),
    )
    store_dossier(
        registry,
        blobs,
        page_files=[page],
        pdf=None,
        dossier=dossier,
        pages=[record],
        copy=None,
        event_kind="needs_review",
        event_detail={"pages": 1},
    )
    return dossier_id


def _desk(registry: Registry, tmp_path: Path, pki: DevPki) -> tuple[Desk, list[Official]]:
    db = DeskDb(registry)
    officials = Officials(db, default_center="000.00.00.DEV")
    officials.centers.register_center(SO_CENTER)
    officials.set_center(CENTER, kiosks=("kiosk-reg",))
    people = [
        officials.add(
            pki,
            login=f"cbtp{i}",
            full_name=name,
            title="Công chức Tư pháp - Hộ tịch",
            center=CENTER,
        ).official
        for i, name in enumerate(("Nguyễn Văn An", "Trần Thị Bích", "Lê Văn Cường"))
    ]
    desk = Desk(
        db=db,
        officials=officials,
        registry=registry,
        blobs=FileBlobStore(tmp_path / "blobs"),
        # the register is under test: the official's signature alone, time-stamped (B-T)
        signers=OfficialSigners(pki, level="B-T", seal=False),
        executor=ThreadPoolExecutor(8),
        base_url="http://localhost:8080",
        limits=Limits(max_page_bytes=25 << 20, max_pixels=60_000_000),
    )
    return desk, people


def _approve_concurrently(registry: Registry, tmp_path: Path, pki: DevPki, page: bytes) -> None:
    desk, people = _desk(registry, tmp_path, pki)
    blobs = desk.blobs
    assert isinstance(blobs, FileBlobStore)
    dossiers = [_waiting_dossier(registry, blobs, page, "kiosk-reg") for _ in range(APPROVALS)]

    async def approve_all() -> list[object]:
        return await asyncio.gather(
            *(desk.approve(people[i % len(people)], d) for i, d in enumerate(dossiers)),
            # every fifth dossier approved twice at once: the same copy, one number
            *(desk.approve(people[(i + 1) % len(people)], d) for i, d in enumerate(dossiers[::5])),
            return_exceptions=True,
        )

    started = time.perf_counter()
    results = asyncio.run(approve_all())
    elapsed = time.perf_counter() - started
    copies = [r for r in results if not isinstance(r, BaseException)]
    failures = [r for r in results if isinstance(r, BaseException)]
    # a second approval racing the first may find it held (FAILED_PRECONDITION); nothing else
    unexpected = [f for f in failures if getattr(f, "status", "") != "FAILED_PRECONDITION"]
    assert not unexpected, "".join(traceback.format_exception(unexpected[0]))
    year = year_of(datetime.now(UTC))
    entries = desk.register.entries(CENTER, year)
    numbers = [e["number"] for e in entries]
    assert numbers == list(range(1, APPROVALS + 1)), numbers  # unique, gap-free
    assert all(e["state"] == "issued" for e in entries)
    assert len({e["code"] for e in entries}) == APPROVALS
    assert {e["dossier_id"] for e in entries} == set(dossiers)
    assert len(copies) >= APPROVALS
    print(
        f"\n{APPROVALS} approvals (+{len(dossiers[::5])} racing) in {elapsed:.2f} s "
        f"on {registry.__class__.__name__}"
    )
    desk.executor.shutdown()  # type: ignore[attr-defined]


def test_register_numbers_are_gap_free_under_concurrent_approvals_on_sqlite(
    tmp_path: Path, pki: DevPki, page: bytes
) -> None:
    registry = SqliteRegistry(tmp_path / "registry.sqlite3")
    try:
        _approve_concurrently(registry, tmp_path, pki, page)
    finally:
        registry.close()


def test_register_numbers_are_gap_free_under_concurrent_approvals_on_postgresql(
    tmp_path: Path, pki: DevPki, page: bytes, postgresql_url: str
) -> None:
    registry = create_registry(postgresql_url)
    try:
        _approve_concurrently(registry, tmp_path, pki, page)
    finally:
        registry.close()


@pytest.fixture
def sqlite_desk(tmp_path: Path, pki: DevPki) -> Iterator[tuple[Desk, list[Official]]]:
    registry = SqliteRegistry(tmp_path / "registry.sqlite3")
    desk, people = _desk(registry, tmp_path, pki)
    yield desk, people
    registry.close()


def test_a_number_given_back_by_a_failed_approval_is_taken_next(
    sqlite_desk: tuple[Desk, list[Official]],
) -> None:
    desk, people = sqlite_desk
    blobs = desk.blobs
    assert isinstance(blobs, FileBlobStore)
    first, broken, third = (
        _waiting_dossier(desk.registry, blobs, _page(shade), "kiosk-reg")
        for shade in (200, 210, 220)
    )
    asyncio.run(desk.approve(people[0], first))
    damaged = FileBlobStore(blobs.root)
    damaged.delete(desk.registry.pages(broken)[0].blob_key)  # its page can no longer be read
    with pytest.raises(Exception):  # noqa: B017 - whatever the store says
        asyncio.run(desk.approve(people[0], broken))
    third_approval = asyncio.run(desk.approve(people[1], third))
    assert third_approval.number.number == 2  # the number the failed approval gave back
    year = year_of(datetime.now(UTC))
    assert [e["number"] for e in desk.register.entries(CENTER, year)] == [1, 2]

    exported = list(csv.DictReader(io.StringIO(desk.register.export_csv(CENTER, year))))
    assert [row["number"] for row in exported] == ["1", "2"]
    assert exported[1]["code"] == third_approval.copy.code
    assert exported[1]["official_name"] == "Trần Thị Bích"
    assert exported[0]["book"] == f"01/{year}-SCT/BS"
    assert exported[0]["issued_at"].endswith("+07:00")
    assert "NGUYỄN" not in desk.register.export_csv(CENTER, year)  # no citizen's data


def test_the_certification_statement_reads_as_the_circular_has_it() -> None:
    statement = Statement(
        number=RegisterNumber(CENTER, 2026, 12),
        day=date(2026, 12, 7),
        place="UBND Phường Hoàn Kiếm",
        official_name="Nguyễn Thị Lan",
        official_title="Công chức Tư pháp - Hộ tịch",
    )
    assert statement.lines() == (
        "LỜI CHỨNG: Chứng thực bản sao đúng với bản chính.",
        "Số chứng thực: 12  Quyển số: 01/2026-SCT/BS",
        "UBND Phường Hoàn Kiếm, ngày 07 tháng 12 năm 2026",
        "Người thực hiện chứng thực: Nguyễn Thị Lan — Công chức Tư pháp - Hộ tịch (đã ký số)",
    )
    assert str(statement.number) == "Số chứng thực 12, Quyển số 01/2026-SCT/BS"
