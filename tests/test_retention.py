"""Retention by crypto-shredding: each dossier's blobs sealed under its own data keys, wrapped
by the signer backend's keys; past the retention period the keys are destroyed and the fields
erased, and the copy stays verifiable by code."""

from __future__ import annotations

import dataclasses
import sqlite3
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from cryptography.exceptions import InvalidTag

from saoy.clients.sdk import CertifyResult
from saoy.core.retention import (
    COPY,
    MAGIC,
    SCANS,
    Purged,
    RetentionPolicy,
    Vault,
    VaultBlobStore,
    purge,
    unseal,
)
from saoy.core.storage.blobs import FileBlobStore, key_of
from saoy.core.storage.registries import create_registry
from saoy.core.storage.registry import store_dossier
from saoy.core.trust.keywrap import FileKeyWrapper, KeyDestroyed, Pkcs11KeyWrapper
from saoy.server.main import purge_command
from saoy.server.settings import Settings
from saoy.v1 import verification_pb2 as vpb

from .conftest import RunningServer, start_server
from .test_registry import Backend, backend, postgres_server, postgresql_url, sample

__all__ = ["backend", "postgres_server", "postgresql_url"]

DOSSIER = "0123456789abcdef0123456789abcdef"
SCAN = b"\xff\xd8 a page scan, Nguyen Van An, 001094012345 " * 50


class Clock:
    def __init__(self) -> None:
        self.now = datetime(2026, 5, 1, 8, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture
def vault(tmp_path: Path) -> Vault:
    return Vault(tmp_path / "sealed", FileKeyWrapper(tmp_path / "wrapping"), clock=Clock())


def test_a_sealed_blob_holds_no_plaintext_and_opens_only_in_its_place(vault: Vault) -> None:
    key, created = vault.seal(DOSSIER, SCANS, SCAN)
    assert created and key == key_of(SCAN)
    assert vault.seal(DOSSIER, SCANS, SCAN) == (key, False)
    stored = vault.sealed_path(DOSSIER, SCANS, key).read_bytes()
    assert stored.startswith(MAGIC) and b"001094012345" not in stored and b"Nguyen" not in stored
    assert vault.open(DOSSIER, SCANS, key) == SCAN
    data_key = vault.data_key(DOSSIER, SCANS)
    other = "f" * 32
    with pytest.raises(InvalidTag):  # moved to another dossier or kind, it does not open
        unseal(data_key, other, SCANS, key, stored)
    with pytest.raises(InvalidTag):
        unseal(data_key, DOSSIER, COPY, key, stored)
    flipped = bytearray(stored)
    flipped[-1] ^= 1
    with pytest.raises(InvalidTag):
        unseal(data_key, DOSSIER, SCANS, key, bytes(flipped))
    # each kind of each dossier has its own data key
    vault.seal(DOSSIER, COPY, b"%PDF copy")
    assert vault.data_key(DOSSIER, COPY) != data_key


def test_destroying_a_dossiers_key_leaves_nothing_that_decrypts(vault: Vault) -> None:
    key, _ = vault.seal(DOSSIER, SCANS, SCAN)
    backup = {
        p.relative_to(vault.root): p.read_bytes() for p in vault.root.rglob("*") if p.is_file()
    }
    assert vault.destroy(DOSSIER, SCANS)
    with pytest.raises(Purged, match="retention period"):
        vault.open(DOSSIER, SCANS, key)
    assert not vault.sealed_path(DOSSIER, SCANS, key).exists()
    # A backup taken before holds the wrapped key; once the epoch's wrapping key is destroyed
    # too, it no longer unwraps, and the sealed bytes stay sealed.
    epoch = vault.epoch_of(vault.clock())
    assert vault.live_epochs() == set()
    assert vault.wrapper.destroy(epoch)
    wrapped = backup[Path(DOSSIER) / "scans.key"].partition(b"\n")[2]
    with pytest.raises(KeyDestroyed):
        vault.wrapper.unwrap(epoch, wrapped)


def test_file_wrapping_keys_are_per_epoch_and_refuse_a_wrong_key(tmp_path: Path) -> None:
    wrapper = FileKeyWrapper(tmp_path)
    data_key = bytes(range(32))
    a = wrapper.wrap("20260501", data_key)
    b = wrapper.wrap("20260502", data_key)
    assert a != b and wrapper.epochs() == ["20260501", "20260502"]
    assert wrapper.unwrap("20260501", a) == data_key
    with pytest.raises(KeyDestroyed):
        wrapper.unwrap("20260502", a)
    assert (tmp_path / "20260501.key").stat().st_mode & 0o777 == 0o600
    assert wrapper.destroy("20260501") and not wrapper.destroy("20260501")
    with pytest.raises(KeyDestroyed):
        wrapper.unwrap("20260501", a)


def test_the_policy_is_checked() -> None:
    with pytest.raises(ValueError):
        RetentionPolicy(scans_days=-1)
    with pytest.raises(ValueError, match="shorter"):
        RetentionPolicy(scans_days=30, copies_days=10)
    with pytest.raises(ValueError, match="copy_retention_days"):
        Settings(retention_days=30, copy_retention_days=10)
    assert not RetentionPolicy().active


# -- the registry's side, on both backends ---------------------------------------------------


def test_purge_on_each_registry_backend_erases_shreds_and_keeps_what_others_show(
    backend: Backend, tmp_path: Path
) -> None:
    plain = FileBlobStore(tmp_path / "blobs")
    vault = Vault(tmp_path / "sealed", FileKeyWrapper(tmp_path / "wrapping"))
    blobs = VaultBlobStore(plain, vault)
    with backend.open() as registry:
        old = sample(request="shared-0001")  # stored before sealing: plain files
        store_dossier(registry, plain, **old)
        later = sample(kiosk="HN-0002", request="shared-0001")  # the same page files
        later["dossier"] = dataclasses.replace(
            later["dossier"], decided_at=later["dossier"].decided_at + timedelta(days=20)
        )
        store_dossier(registry, plain, **later)
        sealed = sample(salt="sealed")
        sealed["dossier"] = dataclasses.replace(  # a card number's keyed hash: goes with scans
            sealed["dossier"],
            identity_evidence={"method": "id_card_face", "match_score": 0.8, "subject": "5f" * 32},
        )
        store_dossier(registry, blobs, **sealed)
        waiting = sample(state="NEEDS_REVIEW", salt="waiting")
        store_dossier(registry, blobs, **waiting)
        ids = {
            k: kw["dossier"].id
            for k, kw in (("old", old), ("later", later), ("sealed", sealed), ("waiting", waiting))
        }
        keys = [p.blob_key for p in old["pages"]]
        assert not plain.exists(sealed["pages"][0].blob_key)  # sealed, not plain

        decided = old["dossier"].decided_at
        report = purge(
            registry, blobs, RetentionPolicy(scans_days=5), now=decided + timedelta(days=10)
        )
        assert report.scans == 2  # the old one and the sealed one; never one awaiting review
        for name in ("old", "sealed"):
            assert all((p.text, p.fields) == ("", ()) for p in registry.pages(ids[name]))
            assert registry.events(ids[name])[-1].kind == "purged"
            kept = registry.get_dossier(ids[name])
            assert kept is not None  # the checks' names and outcomes stay, their words go
            assert [(c.name, c.outcome.value, c.reason) for c in kept.checks] == [
                ("readable", "pass", ""),
                ("distinct_pages", "warn", ""),
            ]
        sealed_now = registry.get_dossier(ids["sealed"])
        assert sealed_now is not None
        assert sealed_now.identity_evidence == {"method": "id_card_face", "match_score": 0.8}
        assert registry.pages(ids["later"])[0].fields != ()
        assert registry.pages(ids["waiting"])[0].fields != ()
        # the old dossier's files are still shown by the later one: kept, and readable
        assert report.plain_blobs == 0 and all(plain.exists(k) for k in keys)
        with pytest.raises(Purged):
            blobs.get_for(ids["sealed"], sealed["pages"][0].blob_key)
        copy = sealed["copy"]
        assert blobs.get_for(ids["sealed"], copy.blob_key, copy=True) == sealed["pdf"]
        assert (
            blobs.get_for(ids["waiting"], waiting["pages"][0].blob_key) == waiting["page_files"][0]
        )

        report = purge(
            registry, blobs, RetentionPolicy(scans_days=5), now=decided + timedelta(days=30)
        )
        assert report.scans == 1 and report.plain_blobs == len(keys)  # now no one shows them
        assert not any(plain.exists(k) for k in keys)
        assert plain.exists(old["copy"].blob_key)  # copies are kept: copies_days is 0
        report = purge(registry, blobs, RetentionPolicy(5, 5), now=decided + timedelta(days=30))
        assert report.copies == 3 and not plain.exists(old["copy"].blob_key)
        with pytest.raises(Purged):
            blobs.get_for(ids["sealed"], copy.blob_key, copy=True)
        assert registry.get_copy(copy.code) == copy  # the registration stays
        assert (
            registry.decided_before(decided + timedelta(days=99), without_event="purged", limit=9)
            == []
        )


# -- the wrapping keys in an HSM ---------------------------------------------------------------


@pytest.fixture(scope="module")
def softhsm(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """A SoftHSM2 token for this module (SOFTHSM2_CONF points at it). The library reads its
    configuration once per process, so the token is the first one this process opened: tests
    look for their own keys in it, not for an empty token."""
    import subprocess

    from tests.test_hsm import PIN, TOKEN, _require_softhsm

    _require_softhsm()
    base = tmp_path_factory.mktemp("softhsm-retention")
    (base / "tokens").mkdir()
    conf = base / "softhsm2.conf"
    conf.write_text(
        f"directories.tokendir = {base / 'tokens'}\nobjectstore.backend = file\nlog.level = ERROR\n"
    )
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("SOFTHSM2_CONF", str(conf))
        subprocess.run(
            [
                *("softhsm2-util", "--init-token", "--free", "--label", TOKEN),
                *("--pin", PIN, "--so-pin", "11111111"),
            ],
            check=True,
            capture_output=True,
            timeout=30,
        )
        yield


@pytest.fixture
def hsm_wrapper(softhsm: None) -> Iterator[Pkcs11KeyWrapper]:
    from saoy.core.trust.signing import open_pkcs11_session
    from tests.test_hsm import PIN, SOFTHSM_MODULE, TOKEN

    wrapper = Pkcs11KeyWrapper(open_pkcs11_session(SOFTHSM_MODULE, TOKEN, PIN, rw=True))
    yield wrapper
    wrapper.close()


def test_with_the_pkcs11_signer_the_wrapping_keys_are_the_hsms(
    softhsm: None, tmp_path: Path
) -> None:
    from saoy.server.app import open_blobs
    from tests.test_hsm import PIN, SOFTHSM_MODULE, TOKEN

    settings = Settings(
        data_dir=tmp_path / "data",
        signer_backend="pkcs11",
        pkcs11_module=str(SOFTHSM_MODULE),
        pkcs11_token=TOKEN,
        pkcs11_pin=PIN,
    )
    blobs = open_blobs(settings)
    try:
        assert isinstance(blobs.vault.wrapper, Pkcs11KeyWrapper)
        key, _ = blobs.for_dossier(DOSSIER, None).put(SCAN)
        assert blobs.get_for(DOSSIER, key) == SCAN
        assert not (tmp_path / "data" / "keys" / "wrapping").exists()  # no key file anywhere
    finally:
        blobs.vault.wrapper.close()


def test_hsm_wrapping_keys_never_leave_the_token_and_can_be_destroyed(
    hsm_wrapper: Pkcs11KeyWrapper, tmp_path: Path
) -> None:
    from pkcs11 import Attribute, KeyType, ObjectClass

    vault = Vault(tmp_path / "sealed", hsm_wrapper, clock=Clock())
    key, _ = vault.seal(DOSSIER, SCANS, SCAN)
    assert vault.open(DOSSIER, SCANS, key) == SCAN
    epoch = vault.epoch_of(vault.clock())
    assert epoch in hsm_wrapper.epochs()
    aes = hsm_wrapper.session.get_key(
        object_class=ObjectClass.SECRET_KEY, key_type=KeyType.AES, label="saoy-wrap-" + epoch
    )
    assert aes[Attribute.SENSITIVE] is True and aes[Attribute.EXTRACTABLE] is False
    wrapped = (vault.root / DOSSIER / "scans.key").read_bytes().partition(b"\n")[2]
    assert hsm_wrapper.destroy(epoch) and epoch not in hsm_wrapper.epochs()
    with pytest.raises(KeyDestroyed):
        hsm_wrapper.unwrap(epoch, wrapped)
    with pytest.raises(Purged):
        vault.open(DOSSIER, SCANS, key)


# -- through a real server --------------------------------------------------------------------


@pytest.fixture(scope="module")
def letter(reference_dossier: list[tuple[str, bytes]]) -> bytes:
    return reference_dossier[3][1]  # an A4 letter: a generic document, issued when readable


def certify(running: RunningServer, page: bytes) -> CertifyResult:
    with running.client(kiosk_id="kiosk-retention") as client:
        result = client.certify([page])
    assert result.issued is not None, result.state
    return result


def page_rows(data_dir: Path, dossier_id: str) -> list[tuple[str, str]]:
    with sqlite3.connect(data_dir / "registry.sqlite3") as db:
        return list(
            db.execute("SELECT text, fields FROM pages WHERE dossier_id = ?", (dossier_id,))
        )


def http_get(url: str) -> tuple[int, bytes]:
    try:
        with urllib.request.urlopen(url, timeout=30) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as error:
        return error.code, error.read()


def test_purge_shreds_scans_and_fields_and_the_copy_stays_verifiable(
    tmp_path: Path, letter: bytes
) -> None:
    data_dir = tmp_path / "data"
    # A blob stored before the vault, as an older server stored every page: still readable.
    legacy = FileBlobStore(data_dir / "blobs")
    old_key, _ = legacy.put(b"a scan stored before sealing")
    running = start_server(
        data_dir,
        identity="off",
        ocr_engine="tesseract",
        retention_days=1e-6,
        purge_interval_seconds=3600,
    )
    try:
        result = certify(running, letter)
        assert result.issued is not None
        code, dossier_id = result.issued.code, result.events[0].dossier_id
        blobs = running.server.blobs
        assert blobs is not None and blobs.get(old_key) == b"a scan stored before sealing"
        vault = blobs.vault
        page_key = key_of(letter)
        sealed = vault.sealed_path(dossier_id, SCANS, page_key)
        assert sealed.is_file() and not legacy.exists(page_key)  # sealed, not stored plain
        assert letter not in sealed.read_bytes()
        assert blobs.get_for(dossier_id, page_key) == letter
        [(text, _fields)] = page_rows(data_dir, dossier_id)
        assert text.strip()  # the OCR text is kept until the purge
        backup = sealed.read_bytes(), (vault.root / dossier_id / "scans.key").read_bytes()
        time.sleep(0.2)  # past the retention period of 1e-6 days (86 ms)

        assert purge_command(["--data-dir", str(data_dir), "--retention-days", "0.000001"]) == 0

        # The scans no longer decrypt, the fields and the text are gone...
        assert not sealed.exists()
        with pytest.raises(Purged):
            blobs.get_for(dossier_id, page_key)
        assert page_rows(data_dir, dossier_id) == [("", "[]")]
        # ...and a backup taken before the purge forgets too once the epoch's wrapping key is
        # destroyed (here: a purge run two days on, when the epoch is over)
        registry = create_registry(data_dir / "registry.sqlite3")
        try:
            later = datetime.now(UTC) + timedelta(days=2)
            report = purge(registry, blobs, RetentionPolicy(scans_days=1e-6), now=later)
        finally:
            registry.close()
        epoch = backup[1].partition(b"\n")[0].decode()
        assert epoch not in report.epochs_destroyed
        assert vault.live_epochs() == {epoch}  # the copy's key still needs it
        # The copy stays verifiable by code, and downloadable, through the server.
        with running.client() as client:
            verdict = client.verify_code(code)
            assert verdict.verdict == vpb.VerificationResult.VALID
            pdf = client.download(code)
        status, _ = http_get(f"{running.http}/v/{code}")
        assert status == 200
        assert key_of(pdf) == result.issued.sha256
        assert blobs.get(old_key) == b"a scan stored before sealing"  # existing blobs work

        # The copies' policy destroys the copy's file too; its registration stays.
        assert (
            purge_command(
                [
                    "--data-dir",
                    str(data_dir),
                    "--retention-days",
                    "0.000001",
                    "--copy-retention-days",
                    "0.000001",
                ]
            )
            == 0
        )
        status, body = http_get(f"{running.http}/v/{code}/copy.pdf")
        assert status == 404 and b"retention period" in body
        with running.client() as client:
            assert client.verify_code(code).verdict == vpb.VerificationResult.VALID
            assert client.verify_pdf(pdf).verdict == vpb.VerificationResult.VALID
        registry = create_registry(data_dir / "registry.sqlite3")
        try:
            report = purge(registry, blobs, RetentionPolicy(1e-6, 1e-6), now=later)
            kinds = [e.kind for e in registry.events(dossier_id)]
        finally:
            registry.close()
        assert epoch in report.epochs_destroyed and vault.live_epochs() == set()
        assert kinds[-2:] == ["purged", "copy_purged"]
        with pytest.raises(KeyDestroyed):
            vault.wrapper.unwrap(epoch, backup[1].partition(b"\n")[2])
    finally:
        running.stop()


def test_saoy_purge_says_what_is_missing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from saoy.clients.cli import main as cli

    assert cli(["purge", "--data-dir", str(tmp_path)]) == 2
    assert "give --retention-days" in capsys.readouterr().err
    assert cli(["purge", "--data-dir", str(tmp_path / "nowhere"), "--retention-days", "30"]) == 2
    assert "no registry at" in capsys.readouterr().err
    assert not (tmp_path / "nowhere").exists()  # nothing made where there was nothing


def test_the_server_purges_on_its_own(tmp_path: Path, letter: bytes) -> None:
    running = start_server(
        tmp_path / "data",
        identity="off",
        ocr_engine="tesseract",
        retention_days=1e-6,
        purge_interval_seconds=0.3,
    )
    try:
        result = certify(running, letter)
        dossier_id = result.events[0].dossier_id
        deadline = time.monotonic() + 20
        while page_rows(running.data_dir, dossier_id) != [("", "[]")]:
            assert time.monotonic() < deadline, "the periodic purge did not run"
            time.sleep(0.2)
        assert running.server.blobs is not None
        with pytest.raises(Purged):
            running.server.blobs.get_for(dossier_id, key_of(letter))
        with running.client() as client:
            assert result.issued is not None
            assert client.verify_code(result.issued.code).verdict == vpb.VerificationResult.VALID
    finally:
        running.stop()
