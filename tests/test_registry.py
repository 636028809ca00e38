"""The registry, the blob store, and the atomic step that stores a dossier in both."""

from __future__ import annotations

import hashlib
import os
import signal
import socket
import sqlite3
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import psycopg
import pytest

from saoy.core.errors import NotFound
from saoy.core.model import CheckResult, Outcome
from saoy.core.reception import codes
from saoy.core.storage.blobs import FileBlobStore
from saoy.core.storage.registries import create_registry
from saoy.core.storage.registry import (
    SCHEMA_VERSION,
    CopyRecord,
    DossierRecord,
    DuplicateRequest,
    PageRecord,
    Registry,
    SqliteRegistry,
    SqlRegistry,
    store_dossier,
    sweep_orphans,
)
from saoy.core.storage.registry_pg import PostgresRegistry
from saoy.v1 import verification_pb2 as vpb
from tests.pg import postgres_server, postgresql_url

from .conftest import start_server

__all__ = ["postgres_server", "postgresql_url"]

HOUR = timedelta(hours=1)
VN = timezone(timedelta(hours=7))


def sample(
    kiosk: str = "HN-0001",
    request: str | None = None,
    *,
    state: str = "ISSUED",
    pages: int = 2,
    salt: str = "",
) -> dict[str, Any]:
    """Keyword arguments of store_dossier for a consistent dossier; ``salt`` varies the bytes."""
    dossier_id = uuid.uuid4().hex
    request = request or uuid.uuid4().hex
    files = [f"page {i} of {request}{salt}".encode() * 50 for i in range(pages)]
    page_records = [
        PageRecord(
            dossier_id=dossier_id,
            index=i,
            blob_key=hashlib.sha256(data).hexdigest(),
            format="jpeg" if i % 2 else "png",
            width=1000 + i,
            height=640 + i,
            text=f"CĂN CƯỚC CÔNG DÂN trang {i}",
            mean_confidence=91.25 - i,
            document_type="cccd_front" if i == 0 else "generic",
            fields=(("full_name", "ĐỖ VĂN LONG", 0.95), ("id_number", "079094766094", 0.5))
            if i == 0
            else (),
        )
        for i, data in enumerate(files)
    ]
    created = datetime(2024, 5, 17, 9, 30, 15, 123456, tzinfo=VN)
    dossier = DossierRecord(
        id=dossier_id,
        request_id=request,
        kiosk_id=kiosk,
        state=state,
        created_at=created,
        decided_at=created + timedelta(seconds=4, microseconds=7),
        page_count=pages,
        reasons=() if state == "ISSUED" else ("trang 1 mờ / page 1 is blurred", "second"),
        checks=(
            CheckResult("readable", Outcome.PASS, "every page was read"),
            CheckResult("distinct_pages", Outcome.WARN, "pages 0 and 1 look alike"),
        ),
    )
    pdf: bytes | None = None
    copy: CopyRecord | None = None
    if state == "ISSUED":
        pdf = f"%PDF-1.7 signed copy of {request}{salt}".encode()
        copy = CopyRecord(
            code=codes.new_code(),
            dossier_id=dossier_id,
            blob_key=hashlib.sha256(pdf).hexdigest(),
            size_bytes=len(pdf),
            issuer="UBND Phường Tràng Tiền",
            issued_at=created + timedelta(seconds=4),
            pages=pages,
            revoked_at=None,
            revoke_reason=None,
        )
    return {
        "page_files": files,
        "pdf": pdf,
        "dossier": dossier,
        "pages": page_records,
        "copy": copy,
        "event_kind": state.lower(),
        "event_detail": {"pages": pages, "kiosk": kiosk},
    }


def record(registry: Registry, kw: Mapping[str, Any]) -> None:
    registry.record(kw["dossier"], kw["pages"], kw["copy"], kw["event_kind"], kw["event_detail"])


def blob_files(root: Path) -> set[str]:
    return {p.name for p in root.rglob("*") if p.is_file()}


def age(path: Path, by: timedelta) -> None:
    then = time.time() - by.total_seconds()
    os.utime(path, (then, then))


@dataclass(frozen=True)
class Backend:
    """Where a test's registry lives, and how that backend reports a broken constraint."""

    cls: type[SqlRegistry]
    location: Any  # the path or URL its constructor takes
    integrity_error: type[Exception]

    def open(self, cls: type[SqlRegistry] | None = None) -> SqlRegistry:
        """A registry there, of ``cls`` (a subclass of the backend's) when given."""
        return (cls or self.cls)(self.location)


@pytest.fixture(params=["sqlite", "postgresql"])
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> Backend:
    """Each backend in turn, empty: a new SQLite file, a new PostgreSQL database."""
    if request.param == "sqlite":
        return Backend(SqliteRegistry, tmp_path / "registry.sqlite3", sqlite3.IntegrityError)
    url = request.getfixturevalue("postgresql_url")
    return Backend(PostgresRegistry, url, psycopg.IntegrityError)


@pytest.fixture
def registry(backend: Backend) -> Iterator[SqlRegistry]:
    with backend.open() as reg:
        yield reg


@pytest.fixture
def blobs(tmp_path: Path) -> FileBlobStore:
    return FileBlobStore(tmp_path / "blobs")


# -- the registry -----------------------------------------------------------------------------


def test_record_round_trips_every_field(registry):
    kw = sample()
    record(registry, kw)
    dossier, copy = kw["dossier"], kw["copy"]

    assert registry.get_dossier(dossier.id) == dossier
    assert registry.get_copy(copy.code) == copy
    assert registry.find_by_request(dossier.kiosk_id, dossier.request_id) == (dossier, copy)
    assert registry.pages(dossier.id) == kw["pages"]
    got = registry.get_dossier(dossier.id)
    assert got.created_at.tzinfo is not None and got.created_at.utcoffset() == timedelta(0)
    assert got.created_at.microsecond == 123456
    assert isinstance(got.checks[1].outcome, Outcome)
    [event] = registry.events(dossier.id)
    assert (event.kind, dict(event.detail)) == ("issued", {"pages": 2, "kiosk": "HN-0001"})
    assert event.at.tzinfo is not None


def test_a_dossier_without_copy_round_trips(registry):
    kw = sample(state="NEEDS_REVIEW")
    record(registry, kw)
    dossier = kw["dossier"]
    assert registry.find_by_request(dossier.kiosk_id, dossier.request_id) == (dossier, None)
    assert registry.get_dossier(dossier.id).reasons == dossier.reasons


def test_unknown_things_are_none(registry):
    assert registry.find_by_request("HN-0001", "nope") is None
    assert registry.get_dossier("0" * 32) is None
    assert registry.get_copy(codes.new_code()) is None
    assert registry.pages("0" * 32) == []
    assert registry.events("0" * 32) == []


def test_duplicate_request_raises_and_keeps_the_first(registry):
    first = sample(request="req-1")
    record(registry, first)
    second = sample(request="req-1")  # same kiosk, same request_id, a different decision
    with pytest.raises(DuplicateRequest) as caught:
        record(registry, second)
    assert (caught.value.kiosk_id, caught.value.request_id) == ("HN-0001", "req-1")
    assert registry.find_by_request("HN-0001", "req-1") == (first["dossier"], first["copy"])
    assert registry.get_dossier(second["dossier"].id) is None
    assert registry.get_copy(second["copy"].code) is None
    assert registry.counts()["ISSUED"] == 1
    # The same request_id from another kiosk is another request.
    record(registry, sample(kiosk="HN-0002", request="req-1"))


def test_a_duplicate_found_only_by_the_unique_key_is_a_duplicate_request(backend):
    """What a racing duplicate meets: the existence check found nothing, the insert fails."""

    class Unchecked(backend.cls):  # type: ignore[name-defined]
        def _insert(self, db: Any, *args: Any) -> None:
            class Blind:
                def execute(self, sql: str, parameters: Any = ()) -> Any:
                    if sql.startswith("SELECT 1 FROM dossiers"):
                        return db.execute("SELECT 1 WHERE 1 = 0")
                    return db.execute(sql, parameters)

                def executemany(self, sql: str, parameters: Any) -> Any:
                    return db.executemany(sql, parameters)

            super()._insert(Blind(), *args)

    first, second = sample(request="req-1"), sample(request="req-1")
    with backend.open(Unchecked) as registry:
        record(registry, first)
        with pytest.raises(DuplicateRequest):
            record(registry, second)
        assert registry.get_dossier(second["dossier"].id) is None


def test_inconsistent_records_are_refused(registry):
    kw = sample()
    with pytest.raises(ValueError, match="needs its copy"):
        registry.record(kw["dossier"], kw["pages"], None, "issued", {})
    naive = sample()
    bad = replace(naive["dossier"], created_at=datetime(2024, 1, 1))
    with pytest.raises(ValueError, match="timezone-aware"):
        registry.record(bad, naive["pages"], naive["copy"], "issued", {})
    assert registry.counts()["ISSUED"] == 0


def test_revoke_marks_copy_and_dossier_and_logs_it(registry):
    kw = sample()
    record(registry, kw)
    code = kw["copy"].code
    at = datetime(2025, 1, 2, 3, 4, 5, tzinfo=UTC)
    revoked = registry.revoke(code, "original withdrawn", at=at)
    assert revoked.revoked_at == at and revoked.revoke_reason == "original withdrawn"
    assert registry.get_copy(code) == revoked
    assert registry.get_dossier(kw["dossier"].id).state == "REVOKED"
    assert registry.revoke(code, "again") == revoked  # revoking twice changes nothing
    assert [e.kind for e in registry.events(kw["dossier"].id)] == ["issued", "revoked"]
    with pytest.raises(NotFound):
        registry.revoke(codes.new_code(), "unknown")


def test_racing_revokes_revoke_once(registry):
    kw = sample()
    record(registry, kw)
    barrier = threading.Barrier(8)
    results: list[CopyRecord] = []

    def work(n: int) -> None:
        barrier.wait()
        results.append(registry.revoke(kw["copy"].code, f"reason {n}"))

    threads = [threading.Thread(target=work, args=(n,)) for n in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(results) == 8 and len(set(results)) == 1
    assert registry.get_copy(kw["copy"].code) == results[0]
    assert [e.kind for e in registry.events(kw["dossier"].id)] == ["issued", "revoked"]


def test_a_server_on_postgresql_certifies_a_dossier(tmp_path, postgresql_url, reference_dossier):
    running = start_server(tmp_path, registry_url=postgresql_url)
    try:
        registry = running.server.certifier.registry
        assert isinstance(registry, PostgresRegistry)
        with running.client(kiosk_id="kiosk-pg") as client:
            result = client.certify(
                [reference_dossier[0][1]], session_token=running.token("kiosk-pg")
            )
            assert result.issued is not None
            verified = client.verify_code(result.issued.code)
        assert verified.verdict == vpb.VerificationResult.VALID
        dossier = registry.get_dossier(result.dossier_id)
        assert dossier is not None and dossier.state == "ISSUED"
        assert registry.counts()["copies"] == 1
        assert not (tmp_path / "registry.sqlite3").exists()
    finally:
        running.stop()


def test_counts_and_referenced_keys(registry):
    issued, review = sample(), sample(state="REJECTED", pages=1)
    record(registry, issued)
    record(registry, review)
    counts = registry.counts()
    assert counts == {"ISSUED": 1, "NEEDS_REVIEW": 0, "REJECTED": 1, "REVOKED": 0, "copies": 1}
    expected = {p.blob_key for p in issued["pages"] + review["pages"]} | {issued["copy"].blob_key}
    assert registry.referenced_blob_keys() == expected
    assert registry.referenced([*expected, "f" * 64]) == expected


def test_database_is_wal_with_a_schema_version(tmp_path):
    path = tmp_path / "registry.sqlite3"
    SqliteRegistry(path).close()
    SqliteRegistry(path).close()  # reopening migrates nothing twice
    with sqlite3.connect(path) as db:
        assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        versions = db.execute("SELECT version FROM schema_version").fetchall()
        assert versions == [(v,) for v in range(1, SCHEMA_VERSION + 1)]
        db.execute("INSERT INTO schema_version VALUES (?, 'later')", (SCHEMA_VERSION + 1,))
    with pytest.raises(RuntimeError, match="schema version"):
        SqliteRegistry(path)


def test_postgresql_schema_has_a_version_and_native_types(postgresql_url):
    PostgresRegistry(postgresql_url).close()
    PostgresRegistry(postgresql_url).close()  # reopening migrates nothing twice
    with psycopg.connect(postgresql_url, autocommit=True) as db:
        versions = db.execute("SELECT version FROM schema_version ORDER BY version").fetchall()
        assert versions == [(v,) for v in range(1, SCHEMA_VERSION + 1)]
        types = dict(
            db.execute(
                "SELECT table_name || '.' || column_name, data_type"
                " FROM information_schema.columns WHERE table_schema = 'public'"
            ).fetchall()
        )
        assert types["dossiers.created_at"] == "timestamp with time zone"
        assert types["copies.revoked_at"] == "timestamp with time zone"
        for column in ("dossiers.checks", "dossiers.identity_evidence", "pages.fields"):
            assert types[column] == "jsonb"
        assert types["events.detail"] == "jsonb"
        db.execute("INSERT INTO schema_version VALUES (%s, now())", (SCHEMA_VERSION + 1,))
    with pytest.raises(RuntimeError, match="schema version"):
        PostgresRegistry(postgresql_url)


def test_an_unreachable_postgresql_fails_at_start():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with pytest.raises(psycopg.OperationalError):
        PostgresRegistry(f"postgresql://postgres@127.0.0.1:{port}/saoy", timeout=1)


def test_create_registry_picks_the_backend(tmp_path, postgresql_url):
    with create_registry(tmp_path / "registry.sqlite3") as registry:
        assert isinstance(registry, SqliteRegistry)
    with create_registry(postgresql_url) as registry:
        assert isinstance(registry, PostgresRegistry)
    with pytest.raises(ValueError, match="not supported"):
        create_registry("mysql://somewhere/saoy")


def test_foreign_keys_are_enforced(registry, backend):
    with pytest.raises(backend.integrity_error), registry._transaction(write=True) as db:
        db.execute(
            "INSERT INTO pages (dossier_id, idx, blob_key, format, width, height, text,"
            " mean_confidence) VALUES ('nobody', 0, ?, 'png', 1, 1, '', 0)",
            ("a" * 64,),
        )


def test_pages_recorded_before_document_analysis_read_as_generic(tmp_path):
    path = tmp_path / "registry.sqlite3"
    SqliteRegistry(path).close()
    with sqlite3.connect(path) as db:  # a row as the first schema wrote it
        db.execute(
            "INSERT INTO dossiers (id, request_id, kiosk_id, state, created_at, decided_at,"
            " page_count, reasons, checks) VALUES ('d1', 'r1', 'k1', 'REJECTED',"
            " '2024-01-01T00:00:00.000000+00:00', '2024-01-01T00:00:00.000000+00:00', 1,"
            " '[]', '[]')"
        )
        db.execute(
            "INSERT INTO pages (dossier_id, idx, blob_key, format, width, height, text,"
            " mean_confidence) VALUES ('d1', 0, ?, 'png', 1, 1, 'x', 50)",
            ("a" * 64,),
        )
    with SqliteRegistry(path) as registry:
        [page] = registry.pages("d1")
    assert (page.document_type, page.fields) == ("generic", ())


def test_concurrent_records_from_8_threads_all_land(registry, blobs):
    per_thread = 6
    errors: list[BaseException] = []

    def work(n: int) -> None:
        try:
            for i in range(per_thread):
                store_dossier(registry, blobs, **sample(kiosk=f"K{n}", request=f"r{i}"))
        except BaseException as error:  # reported below
            errors.append(error)

    threads = [threading.Thread(target=work, args=(n,)) for n in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert registry.counts()["ISSUED"] == 8 * per_thread
    for n in range(8):
        for i in range(per_thread):
            found = registry.find_by_request(f"K{n}", f"r{i}")
            assert found is not None and blobs.exists(found[1].blob_key)


def test_racing_duplicates_have_exactly_one_winner(registry, blobs):
    barrier = threading.Barrier(8)
    outcomes: list[str] = []

    def work(n: int) -> None:
        kw = sample(request="same", salt=str(n))
        barrier.wait()
        try:
            store_dossier(registry, blobs, **kw)
            outcomes.append("stored")
        except DuplicateRequest:
            outcomes.append("duplicate")

    threads = [threading.Thread(target=work, args=(n,)) for n in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(outcomes) == ["duplicate"] * 7 + ["stored"]
    # The losers' blobs are gone: exactly the winner's blobs remain.
    assert blob_files(blobs.root) == registry.referenced_blob_keys()


# -- the atomic step ----------------------------------------------------------------------------


def failing(base: type[SqlRegistry]) -> type[SqlRegistry]:
    """``base`` running every statement of the transaction, then failing before the commit."""

    class Failing(base):  # type: ignore[misc, valid-type]
        def _insert(self, *args: Any) -> None:
            super()._insert(*args)
            raise OSError("disk unplugged")

    return Failing


def test_store_dossier_writes_rows_and_blobs(registry, blobs):
    kw = sample()
    store_dossier(registry, blobs, **kw)
    for page, data in zip(kw["pages"], kw["page_files"], strict=True):
        assert blobs.get(page.blob_key) == data
    assert blobs.get(kw["copy"].blob_key) == kw["pdf"]
    assert blob_files(blobs.root) == registry.referenced_blob_keys()


def test_a_failed_transaction_leaves_no_row_and_no_new_blob(backend, blobs):
    kw = sample()
    shared = kw["page_files"][0]
    blobs.put(shared)  # already stored, by an earlier dossier with the same page
    before = blob_files(blobs.root)
    with backend.open(failing(backend.cls)) as registry:
        with pytest.raises(OSError, match="disk unplugged"):
            store_dossier(registry, blobs, **kw)
        assert registry.get_dossier(kw["dossier"].id) is None
        assert registry.pages(kw["dossier"].id) == []
        assert registry.get_copy(kw["copy"].code) is None
        assert registry.events(kw["dossier"].id) == []
    assert blob_files(blobs.root) == before
    assert blobs.get(hashlib.sha256(shared).hexdigest()) == shared


def test_a_constraint_violation_rolls_back_the_whole_dossier(registry, backend, blobs):
    first = sample()
    store_dossier(registry, blobs, **first)
    second = sample()
    # The copy row fails after the dossier and page rows went in.
    second["copy"] = replace(second["copy"], code=first["copy"].code)
    with pytest.raises(backend.integrity_error):
        store_dossier(registry, blobs, **second)
    assert registry.get_dossier(second["dossier"].id) is None
    assert registry.pages(second["dossier"].id) == []
    assert blob_files(blobs.root) == registry.referenced_blob_keys()


def test_a_blob_shared_with_a_store_in_flight_survives_a_failure(backend, blobs):
    """A fails after creating a blob that B, not yet committed, is also storing."""
    b_in_record, a_done = threading.Event(), threading.Event()

    class A(backend.cls):  # type: ignore[name-defined]
        def record(self, *args: Any, **kwargs: Any) -> None:
            assert b_in_record.wait(10)
            raise OSError("A fails")

    class B(backend.cls):  # type: ignore[name-defined]
        def record(self, *args: Any, **kwargs: Any) -> None:
            b_in_record.set()
            assert a_done.wait(10)
            super().record(*args, **kwargs)

    kw_a, kw_b = sample(), sample()
    kw_b["page_files"][0] = kw_a["page_files"][0]  # the same scan in both dossiers
    kw_b["pages"][0] = replace(kw_a["pages"][0], dossier_id=kw_b["dossier"].id)
    shared = kw_a["pages"][0].blob_key
    errors: list[BaseException] = []

    def run_a() -> None:
        try:
            store_dossier(reg_a, blobs, **kw_a)
        except OSError as error:
            errors.append(error)
        finally:
            a_done.set()

    with backend.open(A) as reg_a, backend.open(B) as reg_b:
        thread_a = threading.Thread(target=run_a)
        thread_a.start()
        while not blobs.exists(shared):  # A has put the shared page before B starts
            time.sleep(0.001)
        store_dossier(reg_b, blobs, **kw_b)
        thread_a.join()
        assert len(errors) == 1
        assert blobs.exists(shared)
        assert shared in reg_b.referenced([shared])
        assert blob_files(blobs.root) == reg_b.referenced_blob_keys()


def test_mismatched_blobs_and_records_are_refused_before_writing(registry, blobs):
    kw = sample()
    kw["page_files"] = [b"something else", kw["page_files"][1]]
    with pytest.raises(ValueError, match="different blobs"):
        store_dossier(registry, blobs, **kw)
    kw = sample()
    kw["pdf"] = b"another pdf"
    with pytest.raises(ValueError, match="does not describe"):
        store_dossier(registry, blobs, **kw)
    assert blob_files(blobs.root) == set()


def test_sweep_removes_only_old_unreferenced_blobs(registry, blobs):
    kw = sample()
    store_dossier(registry, blobs, **kw)
    for key in registry.referenced_blob_keys():
        age(blobs.open_path(key), 2 * HOUR)
    old_orphan, _ = blobs.put(b"left by a killed process")
    young_orphan, _ = blobs.put(b"a store in flight")
    age(blobs.open_path(old_orphan), 2 * HOUR)
    partial = blobs.open_path(old_orphan).parent / ".tmp-deadbeef-0"
    partial.write_bytes(b"half a blob")
    age(partial, 2 * HOUR)

    assert sweep_orphans(registry, blobs, older_than=HOUR) == 2
    assert not blobs.exists(old_orphan)
    assert not partial.exists()
    assert blobs.exists(young_orphan)
    assert registry.referenced_blob_keys() <= set(blobs.keys())
    assert sweep_orphans(registry, blobs, older_than=HOUR) == 0


def test_putting_an_old_blob_again_makes_it_young(registry, blobs):
    key, _ = blobs.put(b"an old orphan")
    age(blobs.open_path(key), 2 * HOUR)
    blobs.put(b"an old orphan")  # a new store is about to reference it
    assert sweep_orphans(registry, blobs, older_than=HOUR) == 0
    assert blobs.exists(key)


_CHILD = r"""
import os, signal, sys
from pathlib import Path
sys.path.insert(0, sys.argv[1])
from tests.test_registry import sample
from saoy.core.storage.blobs import FileBlobStore
from saoy.core.storage.registry import SqliteRegistry, store_dossier

data = Path(sys.argv[2])
registry = SqliteRegistry(data / "registry.sqlite3")
blobs = FileBlobStore(data / "blobs")
kw = sample(request=sys.argv[3])
if sys.argv[4] == "after-record":
    store_dossier(registry, blobs, **kw)
else:
    for page in kw["page_files"]:
        blobs.put(page)
print(kw["dossier"].id, flush=True)
os.kill(os.getpid(), signal.SIGKILL)
"""


def _run_and_kill(data: Path, request: str, when: str) -> str:
    done = subprocess.run(
        [sys.executable, "-c", _CHILD, str(Path(__file__).parent.parent), str(data), request, when],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == -signal.SIGKILL, done.stderr
    return done.stdout.strip()


def test_a_record_acknowledged_before_a_kill_survives(tmp_path):
    dossier_id = _run_and_kill(tmp_path, "req-kill", "after-record")
    with SqliteRegistry(tmp_path / "registry.sqlite3") as registry:
        found = registry.find_by_request("HN-0001", "req-kill")
        assert found is not None and found[0].id == dossier_id
        blobs = FileBlobStore(tmp_path / "blobs")
        assert {p.blob_key for p in registry.pages(dossier_id)} <= set(blobs.keys())
        assert blobs.exists(found[1].blob_key)


def test_a_kill_between_blob_and_commit_leaves_an_orphan_the_sweep_removes(tmp_path):
    _run_and_kill(tmp_path, "req-half", "before-record")
    blobs = FileBlobStore(tmp_path / "blobs")
    with SqliteRegistry(tmp_path / "registry.sqlite3") as registry:
        assert registry.find_by_request("HN-0001", "req-half") is None
        assert len(list(blobs.keys())) == 2
        assert sweep_orphans(registry, blobs, older_than=HOUR) == 0  # too young to tell
        assert sweep_orphans(registry, blobs, older_than=timedelta(0)) == 2
        assert list(blobs.keys()) == []


# The blob store's own contract, on files and on S3: tests/test_blobs.py.
