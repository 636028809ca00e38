"""The blob store's contract, on each backend: files under the data dir and S3 (a real
SeaweedFS). The same tests, the same expectations: content addressing, idempotent puts, exactly
one creator among racing puts, NotFound, the orphan sweep, and the vault sealing each dossier's
blobs apart over either."""

from __future__ import annotations

import hashlib
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from saoy.core.errors import InvalidInput, NotFound
from saoy.core.retention import (
    COPY,
    MAGIC,
    SCANS,
    Purged,
    RetentionPolicy,
    Vault,
    VaultBlobStore,
    purge,
)
from saoy.core.storage.blob_stores import BlobBackend, open_blob_backend
from saoy.core.storage.blobs import FileBlobStore, key_of
from saoy.core.storage.registry import SqliteRegistry, store_dossier, sweep_orphans
from saoy.core.trust.keywrap import FileKeyWrapper
from tests.s3 import blob_url, s3_env, seaweedfs

from .test_registry import failing, sample

__all__ = ["blob_url", "s3_env", "seaweedfs"]

DOSSIER = "0123456789abcdef0123456789abcdef"


@pytest.fixture(params=["files", "s3"])
def blob_backend(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[BlobBackend]:
    """Each backend in turn, empty: a new folder, a new bucket on the session's SeaweedFS."""
    url = "" if request.param == "files" else request.getfixturevalue("blob_url")
    backend = open_blob_backend(url, tmp_path)
    try:
        yield backend
    finally:
        backend.close()


@pytest.fixture
def registry(tmp_path: Path) -> Iterator[SqliteRegistry]:
    with SqliteRegistry(tmp_path / "registry.sqlite3") as reg:
        yield reg


def test_put_then_get(blob_backend: BlobBackend) -> None:
    blobs = blob_backend.plain
    key, created = blobs.put(b"scan")
    assert created
    assert key == hashlib.sha256(b"scan").hexdigest()
    assert blobs.get(key) == b"scan"
    assert blobs.exists(key)
    assert list(blobs.keys()) == [key]
    when = blobs.modified_at(key)
    assert when.tzinfo is not None
    assert abs(datetime.now(UTC) - when) < timedelta(seconds=30)
    [(listed, written)] = blobs.ages()
    assert listed == key and abs(written - when) < timedelta(seconds=2)


def test_putting_the_same_bytes_again_creates_nothing(blob_backend: BlobBackend) -> None:
    blobs = blob_backend.plain
    key, created = blobs.put(b"")
    assert created
    assert blobs.put(b"") == (key, False)
    assert list(blobs.keys()) == [key]
    assert blobs.get(key) == b""


def test_concurrent_puts_of_the_same_bytes_create_once(blob_backend: BlobBackend) -> None:
    blobs = blob_backend.plain
    barrier = threading.Barrier(8)
    results: list[bool] = []

    def work() -> None:
        barrier.wait()
        results.append(blobs.put(b"x" * 100_000)[1])

    threads = [threading.Thread(target=work) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(results) == [False] * 7 + [True]
    assert list(blobs.keys()) == [key_of(b"x" * 100_000)]


BAD_KEYS = [
    "../etc/passwd",
    "../../" + "a" * 58,
    "A" * 64,
    "a" * 63,
    "a" * 65,
    "",
    "g" * 64,
    "a" * 63 + "\n",
    "/" + "a" * 63,
]


@pytest.mark.parametrize("key", BAD_KEYS)
def test_bad_keys_are_refused(blob_backend: BlobBackend, key: str) -> None:
    blobs = blob_backend.plain
    for operation in (blobs.get, blobs.exists, blobs.delete, blobs.modified_at):
        with pytest.raises(InvalidInput) as caught:
            operation(key)
        assert caught.value.status == "INVALID_ARGUMENT"


def test_a_missing_blob_is_not_found(blob_backend: BlobBackend) -> None:
    blobs = blob_backend.plain
    missing = "0" * 64
    for operation in (blobs.get, blobs.modified_at):
        with pytest.raises(NotFound):
            operation(missing)
    assert not blobs.exists(missing)
    assert blobs.delete(missing) is False


def test_delete_removes_a_blob(blob_backend: BlobBackend) -> None:
    blobs = blob_backend.plain
    key, _ = blobs.put(b"to go")
    assert blobs.delete(key) is True
    assert not blobs.exists(key)
    assert list(blobs.keys()) == []
    assert blobs.put(b"to go") == (key, True)


def test_putting_a_blob_again_makes_it_young(blob_backend: BlobBackend) -> None:
    blobs = blob_backend.plain
    key, _ = blobs.put(b"an old orphan")
    first = blobs.modified_at(key)
    time.sleep(1.1)  # S3 keeps whole seconds
    assert blobs.put(b"an old orphan") == (key, False)
    assert blobs.modified_at(key) > first


def test_files_lie_under_ab_cd_written_whole(tmp_path: Path) -> None:
    blobs = FileBlobStore(tmp_path / "blobs")
    key, _ = blobs.put(b"scan")
    path = blobs.open_path(key)
    assert path == blobs.root / key[:2] / key[2:4] / key
    assert path.read_bytes() == b"scan"
    with pytest.raises(NotFound):
        blobs.open_path("0" * 64)
    for bad in BAD_KEYS:
        with pytest.raises(InvalidInput):
            blobs.open_path(bad)
    barrier = threading.Barrier(8)

    def work() -> None:
        barrier.wait()
        blobs.put(b"x" * 100_000)

    threads = [threading.Thread(target=work) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    files = {p.name for p in blobs.root.rglob("*") if p.is_file()}
    assert files == {key, key_of(b"x" * 100_000)}  # no temp file left behind


# -- the atomic step and the sweep --------------------------------------------------------------


def test_store_dossier_writes_rows_and_blobs(
    blob_backend: BlobBackend, registry: SqliteRegistry
) -> None:
    blobs = blob_backend.plain
    kw = sample()
    store_dossier(registry, blobs, **kw)
    for page, data in zip(kw["pages"], kw["page_files"], strict=True):
        assert blobs.get(page.blob_key) == data
    assert blobs.get(kw["copy"].blob_key) == kw["pdf"]
    assert set(blobs.keys()) == registry.referenced_blob_keys()


def test_a_failed_transaction_leaves_no_row_and_no_new_blob(
    blob_backend: BlobBackend, tmp_path: Path
) -> None:
    blobs = blob_backend.plain
    kw = sample()
    shared = kw["page_files"][0]
    blobs.put(shared)  # already stored, by an earlier dossier with the same page
    with failing(SqliteRegistry)(tmp_path / "registry.sqlite3") as registry:
        with pytest.raises(OSError, match="disk unplugged"):
            store_dossier(registry, blobs, **kw)
        assert registry.get_dossier(kw["dossier"].id) is None
    assert list(blobs.keys()) == [key_of(shared)]
    assert blobs.get(key_of(shared)) == shared


def test_the_sweep_removes_only_old_unreferenced_blobs(
    blob_backend: BlobBackend, registry: SqliteRegistry
) -> None:
    blobs = blob_backend.plain
    kw = sample()
    store_dossier(registry, blobs, **kw)
    old_orphan, _ = blobs.put(b"left by a killed process")
    time.sleep(2.2)
    young_orphan, _ = blobs.put(b"a store in flight")

    assert sweep_orphans(registry, blobs, older_than=timedelta(seconds=2)) == 1
    assert not blobs.exists(old_orphan)
    assert blobs.exists(young_orphan)
    assert registry.referenced_blob_keys() <= set(blobs.keys())
    assert sweep_orphans(registry, blobs, older_than=timedelta(seconds=2)) == 0


# -- the vault over each backend ----------------------------------------------------------------


def _vault(backend: BlobBackend, tmp_path: Path) -> Vault:
    return Vault(backend.sealed, FileKeyWrapper(tmp_path / "wrapping"))


def test_the_vault_seals_opens_and_destroys(blob_backend: BlobBackend, tmp_path: Path) -> None:
    vault = _vault(blob_backend, tmp_path)
    scan = b"\xff\xd8 a page scan, Nguyen Van An, 001094012345 " * 50
    key, created = vault.seal(DOSSIER, SCANS, scan)
    assert created and vault.seal(DOSSIER, SCANS, scan) == (key, False)
    stored = vault.sealed(DOSSIER, SCANS, key)
    assert stored.startswith(MAGIC) and b"001094012345" not in stored
    assert vault.open(DOSSIER, SCANS, key) == scan
    vault.seal(DOSSIER, COPY, b"%PDF copy")
    assert list(vault.dossiers()) == [DOSSIER]
    assert vault.live_epochs() == {vault.epoch_of(vault.clock())}

    assert vault.destroy(DOSSIER, SCANS)
    with pytest.raises(Purged):
        vault.open(DOSSIER, SCANS, key)
    with pytest.raises(FileNotFoundError):
        vault.sealed(DOSSIER, SCANS, key)
    assert vault.open(DOSSIER, COPY, key_of(b"%PDF copy")) == b"%PDF copy"
    vault.discard(DOSSIER)
    assert list(vault.dossiers()) == []
    assert not vault.destroy(DOSSIER, COPY)


def test_a_dossier_stored_through_the_vault_reads_back_and_a_failure_leaves_nothing(
    blob_backend: BlobBackend, tmp_path: Path
) -> None:
    blobs = VaultBlobStore(blob_backend.plain, _vault(blob_backend, tmp_path))
    kw = sample()
    with SqliteRegistry(tmp_path / "registry.sqlite3") as registry:
        store_dossier(registry, blobs, **kw)
    dossier_id = kw["dossier"].id
    copy = kw["copy"]
    assert blobs.get_for(dossier_id, copy.blob_key, copy=True) == kw["pdf"]
    for page, data in zip(kw["pages"], kw["page_files"], strict=True):
        assert blobs.get_for(dossier_id, page.blob_key) == data
    own = blobs.for_dossier(dossier_id, copy.blob_key)
    assert set(own.keys()) == {copy.blob_key, *(p.blob_key for p in kw["pages"])}
    assert list(blob_backend.plain.keys()) == []  # nothing in plain: all sealed

    failed = sample()
    with (
        failing(SqliteRegistry)(tmp_path / "registry.sqlite3") as registry,
        pytest.raises(OSError, match="disk unplugged"),
    ):
        store_dossier(registry, blobs, **failed)
    assert list(blobs.vault.dossiers()) == [dossier_id]


def test_the_retention_purge_shreds_sealed_scans_and_then_copies(
    blob_backend: BlobBackend, registry: SqliteRegistry, tmp_path: Path
) -> None:
    vault = _vault(blob_backend, tmp_path)
    blobs = VaultBlobStore(blob_backend.plain, vault)
    kw = sample()
    store_dossier(registry, blobs, **kw)
    dossier_id, copy, page = kw["dossier"].id, kw["copy"], kw["pages"][0]
    decided = kw["dossier"].decided_at

    report = purge(registry, blobs, RetentionPolicy(scans_days=5), now=decided + timedelta(days=6))
    assert report.scans == 1
    with pytest.raises(Purged):
        blobs.get_for(dossier_id, page.blob_key)
    assert set(blobs.for_dossier(dossier_id, copy.blob_key).keys()) == {copy.blob_key}
    assert blobs.get_for(dossier_id, copy.blob_key, copy=True) == kw["pdf"]

    report = purge(registry, blobs, RetentionPolicy(5, 5), now=decided + timedelta(days=6))
    assert report.copies == 1
    with pytest.raises(Purged):
        blobs.get_for(dossier_id, copy.blob_key, copy=True)
    assert list(blobs.for_dossier(dossier_id, copy.blob_key).keys()) == []
    assert vault.live_epochs() == set()  # no data key left: the epoch's wrapping key may go


def test_the_sweep_discards_sealed_dossiers_a_killed_process_never_recorded(
    blob_backend: BlobBackend, registry: SqliteRegistry, tmp_path: Path
) -> None:
    vault = _vault(blob_backend, tmp_path)
    blobs = VaultBlobStore(blob_backend.plain, vault)
    recorded = sample()
    store_dossier(registry, blobs, **recorded)
    killed = sample()  # sealed, then the process died before its commit
    own = blobs.for_dossier(killed["dossier"].id, killed["copy"].blob_key)
    for data in [*killed["page_files"], killed["pdf"]]:
        own.put(data)
    assert set(vault.dossiers()) == {recorded["dossier"].id, killed["dossier"].id}

    assert sweep_orphans(registry, blobs, older_than=timedelta(hours=1)) == 0  # in flight?
    time.sleep(1.1)  # S3 keeps whole seconds
    assert sweep_orphans(registry, blobs, older_than=timedelta(0)) == 1
    assert list(vault.dossiers()) == [recorded["dossier"].id]
    assert list(vault.storage.names("pending")) == []
    copy = recorded["copy"]
    assert blobs.get_for(recorded["dossier"].id, copy.blob_key, copy=True) == recorded["pdf"]
