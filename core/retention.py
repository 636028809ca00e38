"""Retention by crypto-shredding: each dossier's blobs encrypted under its own data keys, so
that purging a dossier is destroying a key.

A dossier gets two data keys (AES-256-GCM) when it is stored: one for its page scans, one for
its signed copy, so that the scans can be purged while the copy stays (and the copy later, where
the policy says so). Each data key is kept only wrapped by a wrapping key of the signer backend
(:mod:`saoy.core.trust.keywrap`: a key file with the dev PKI, a key in the HSM with PKCS#11), under
``<dossier id>/<kind>.key`` of the vault's storage; the sealed blobs lie beside it in
``<kind>/<sha256>``, named by the SHA-256 of their plaintext, which is what the registry's rows
name. The storage is a folder (:class:`DirVaultStorage`) or a prefix of an object store's bucket
(:class:`saoy.core.storage.blobs_s3.S3VaultStorage`): the data keys it holds are useless without the
wrapping keys, which never go there.

:func:`purge` runs the policy: past the scans' retention period, a dossier's scan key and scans
are destroyed and its recognized fields and OCR text erased from the registry (rows, copy and
audit trail stay, so the copy is still verifiable by code); past the copies' period, its copy's
key and file too. Once no dossier of a key epoch keeps a data key and the epoch is over, the
epoch's wrapping key is destroyed: a backup taken before the purge then holds nothing that
decrypts. Blobs stored before this scheme (plain files of the content-addressed store) keep
working, and are deleted by the purge as their dossiers' time comes.
"""

from __future__ import annotations

import logging
import os
import re
import secrets
import shutil
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from saoy.core.errors import NotFound
from saoy.core.storage.blobs import BlobStore, check_key, key_of
from saoy.core.storage.registry import Registry
from saoy.core.trust.keywrap import EPOCH, KEY_BYTES, KeyDestroyed, KeyWrapper

log = logging.getLogger("saoy.retention")

SCANS = "scans"
COPY = "copy"
KINDS = (SCANS, COPY)
MAGIC = b"SAOY-SEALED-1\n"
NONCE_BYTES = 12
DAY = 86400.0
_DOSSIER_ID = re.compile(r"[0-9a-f]{32}")
_KEY_NAME = re.compile(r"[0-9a-f]{32}/[a-z]+\.key")
PENDING = "pending"
"""The vault's folder of marks of dossiers being stored (see :meth:`Vault.begin`)."""
EPOCH_GRACE = timedelta(hours=1)
"""An epoch's wrapping key outlives the epoch by this much, for stores in flight at its end."""


class Purged(KeyDestroyed):
    """What was asked for was destroyed under the retention policy."""


def _check_dossier(dossier_id: str) -> str:
    if not _DOSSIER_ID.fullmatch(dossier_id):
        raise ValueError(f"not a dossier id: {dossier_id!r}")
    return dossier_id


def _write(path: Path, data: bytes) -> bool:
    """Write ``path`` crash-safely unless it exists; whether this call created it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    temp = path.with_name(f".tmp-{path.name[:16]}-{secrets.token_hex(8)}")
    try:
        with open(temp, "xb") as out:
            out.write(data)
            out.flush()
            os.fsync(out.fileno())
        os.chmod(temp, 0o600)
        try:
            os.link(temp, path)
        except FileExistsError:
            return False
    finally:
        temp.unlink(missing_ok=True)
    fd = os.open(path.parent, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
    return True


def _shred(path: Path) -> bool:
    """Overwrite ``path`` with zeros, then remove it; whether it was there."""
    try:
        size = path.stat().st_size
        with open(path, "r+b") as fh:
            fh.write(bytes(size))
            fh.flush()
            os.fsync(fh.fileno())
        path.unlink()
    except FileNotFoundError:
        return False
    return True


class VaultStorage(ABC):
    """Where a vault keeps its objects, by name: ``<dossier>/<kind>.key`` (a wrapped data key),
    ``<dossier>/<kind>.purged`` (a marker) and ``<dossier>/<kind>/<sha256>`` (a sealed blob).
    Reads of a missing object raise FileNotFoundError."""

    @abstractmethod
    def create(self, name: str, data: bytes) -> bool:
        """Write ``name`` unless it exists, durably; whether this call created it."""

    @abstractmethod
    def read(self, name: str) -> bytes:
        """The bytes of ``name``."""

    @abstractmethod
    def exists(self, name: str) -> bool:
        """Whether ``name`` is stored."""

    @abstractmethod
    def remove(self, name: str) -> bool:
        """Destroy ``name`` (overwritten first where the medium allows); whether it was there."""

    @abstractmethod
    def remove_folder(self, folder: str) -> None:
        """Remove every object whose name starts with ``folder + "/"``."""

    @abstractmethod
    def names(self, folder: str = "") -> Iterator[str]:
        """The names of the objects below ``folder`` (all of them for ``""``), at any depth."""

    @abstractmethod
    def modified_at(self, name: str) -> datetime:
        """When ``name`` was written (UTC)."""


class DirVaultStorage(VaultStorage):
    """A vault's objects as files under ``root``, written crash-safely, readable by owner only."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)
        self.root.mkdir(parents=True, exist_ok=True)

    def path(self, name: str) -> Path:
        return self.root / name

    def create(self, name: str, data: bytes) -> bool:
        return _write(self.path(name), data)

    def read(self, name: str) -> bytes:
        return self.path(name).read_bytes()

    def exists(self, name: str) -> bool:
        return self.path(name).exists()

    def remove(self, name: str) -> bool:
        return _shred(self.path(name))

    def remove_folder(self, folder: str) -> None:
        shutil.rmtree(self.path(folder), ignore_errors=True)

    def names(self, folder: str = "") -> Iterator[str]:
        base = self.path(folder) if folder else self.root
        for directory, _, files in os.walk(base):
            for name in files:
                if not name.startswith(".tmp-"):
                    yield Path(directory, name).relative_to(self.root).as_posix()

    def modified_at(self, name: str) -> datetime:
        return datetime.fromtimestamp(self.path(name).stat().st_mtime, UTC)


class Vault:
    """Sealed blobs and wrapped data keys of each dossier, in ``storage`` (a folder's path, or
    any :class:`VaultStorage`)."""

    def __init__(
        self,
        storage: Path | VaultStorage,
        wrapper: KeyWrapper,
        *,
        epoch_seconds: float = DAY,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        if epoch_seconds < 1:
            raise ValueError("epoch_seconds must be at least 1")
        self.storage = storage if isinstance(storage, VaultStorage) else DirVaultStorage(storage)
        self.wrapper = wrapper
        self.epoch_seconds = epoch_seconds
        self.clock = clock

    @property
    def root(self) -> Path:
        """The folder of a vault kept in files."""
        if not isinstance(self.storage, DirVaultStorage):
            raise TypeError("this vault keeps no files: it is kept in object storage")
        return self.storage.root

    # -- epochs -----------------------------------------------------------------------------

    def epoch_of(self, at: datetime) -> str:
        """The epoch ``at`` falls in: a UTC day, or with shorter epochs their first second."""
        start = datetime.fromtimestamp(
            (at.timestamp() // self.epoch_seconds) * self.epoch_seconds, UTC
        )
        return (
            start.strftime("%Y%m%d")
            if self.epoch_seconds == DAY
            else start.strftime("%Y%m%dT%H%M%S")
        )

    def epoch_end(self, epoch: str) -> datetime:
        fmt = "%Y%m%dT%H%M%S" if "T" in epoch else "%Y%m%d"
        start = datetime.strptime(epoch, fmt).replace(tzinfo=UTC)
        return start + timedelta(seconds=self.epoch_seconds)

    # -- keys -------------------------------------------------------------------------------

    def _key_name(self, dossier_id: str, kind: str) -> str:
        return f"{_check_dossier(dossier_id)}/{kind}.key"

    def _marker(self, dossier_id: str, kind: str) -> str:
        return f"{_check_dossier(dossier_id)}/{kind}.purged"

    def _new_key(self, dossier_id: str, kind: str) -> None:
        epoch = self.epoch_of(self.clock())
        wrapped = self.wrapper.wrap(epoch, AESGCM.generate_key(bit_length=8 * KEY_BYTES))
        self.storage.create(self._key_name(dossier_id, kind), epoch.encode() + b"\n" + wrapped)

    def data_key(self, dossier_id: str, kind: str) -> bytes:
        """The unwrapped data key; Purged once destroyed, NotFound when there never was one."""
        try:
            stored = self.storage.read(self._key_name(dossier_id, kind))
        except FileNotFoundError:
            if self.storage.exists(self._marker(dossier_id, kind)):
                raise _purged(kind) from None
            raise NotFound(f"dossier {dossier_id} has no sealed {kind}") from None
        epoch, _, wrapped = stored.partition(b"\n")
        try:
            return self.wrapper.unwrap(epoch.decode(), wrapped)
        except KeyDestroyed:
            raise _purged(kind) from None

    def holds(self, dossier_id: str, kind: str) -> bool:
        """Whether the dossier's ``kind`` was stored here (purged or not)."""
        return self.storage.exists(self._key_name(dossier_id, kind)) or self.storage.exists(
            self._marker(dossier_id, kind)
        )

    def live_epochs(self) -> set[str]:
        """The epochs some data key still needs."""
        epochs = set()
        for name in self.storage.names():
            if _KEY_NAME.fullmatch(name) is None:
                continue
            try:
                epoch = self.storage.read(name).partition(b"\n")[0].decode()
            except (FileNotFoundError, UnicodeDecodeError):
                continue
            if EPOCH.fullmatch(epoch):
                epochs.add(epoch)
        return epochs

    def dossiers(self) -> Iterator[str]:
        seen: set[str] = set()
        for name in self.storage.names():
            dossier_id = name.partition("/")[0]
            if dossier_id not in seen and _DOSSIER_ID.fullmatch(dossier_id):
                seen.add(dossier_id)
                yield dossier_id

    # -- blobs ------------------------------------------------------------------------------

    def blob_name(self, dossier_id: str, kind: str, key: str) -> str:
        """The name a sealed blob has in the vault's storage."""
        return f"{_check_dossier(dossier_id)}/{kind}/{check_key(key)}"

    def seal(self, dossier_id: str, kind: str, data: bytes) -> tuple[str, bool]:
        """Store ``data`` sealed under the dossier's ``kind`` key (made on first use); its key
        (the SHA-256 of ``data``) and whether this call created it."""
        key = key_of(data)
        name = self.blob_name(dossier_id, kind, key)
        if self.storage.exists(name):
            return key, False
        if not self.storage.exists(self._key_name(dossier_id, kind)):
            self._new_key(dossier_id, kind)
        nonce = secrets.token_bytes(NONCE_BYTES)
        sealed = AESGCM(self.data_key(dossier_id, kind)).encrypt(
            nonce, data, _aad(dossier_id, kind, key)
        )
        return key, self.storage.create(name, MAGIC + nonce + sealed)

    def open(self, dossier_id: str, kind: str, key: str) -> bytes:
        """The plaintext of a sealed blob; Purged when its key was destroyed."""
        data_key = self.data_key(dossier_id, kind)
        try:
            stored = self.storage.read(self.blob_name(dossier_id, kind, key))
        except FileNotFoundError:
            raise NotFound(f"No blob is stored under {key}", field="sha256") from None
        return unseal(data_key, dossier_id, kind, key, stored)

    def sealed(self, dossier_id: str, kind: str, key: str) -> bytes:
        """The stored (ciphertext) bytes of a sealed blob, for tests and audits."""
        return self.storage.read(self.blob_name(dossier_id, kind, key))

    def sealed_path(self, dossier_id: str, kind: str, key: str) -> Path:
        """Where a sealed blob lies in a vault kept in files (the bytes are ciphertext)."""
        return self.root / self.blob_name(dossier_id, kind, key)

    def destroy(self, dossier_id: str, kind: str) -> bool:
        """Destroy the dossier's ``kind``: its data key first (after which nothing of it
        decrypts), then its sealed blobs; a marker says it was purged. Whether there was a key."""
        folder = _check_dossier(dossier_id)
        if next(iter(self.storage.names(folder)), None) is None:
            return False
        self.storage.create(self._marker(dossier_id, kind), b"")
        destroyed = self.storage.remove(self._key_name(dossier_id, kind))
        self.storage.remove_folder(f"{folder}/{kind}")
        return destroyed

    def discard(self, dossier_id: str) -> None:
        """Remove everything of a dossier that was never recorded (a failed store)."""
        self.storage.remove_folder(_check_dossier(dossier_id))
        self.storage.remove(f"{PENDING}/{dossier_id}")

    # -- stores in flight -------------------------------------------------------------------

    def begin(self, dossier_id: str) -> None:
        """Mark a dossier whose blobs are being sealed and that is not yet recorded, so that a
        sweep finds it if the process dies before the commit."""
        self.storage.create(f"{PENDING}/{_check_dossier(dossier_id)}", b"")

    def end(self, dossier_id: str) -> None:
        """The dossier is recorded: forget its mark."""
        self.storage.remove(f"{PENDING}/{_check_dossier(dossier_id)}")

    def unfinished(self, before: datetime) -> list[str]:
        """The dossiers marked by :meth:`begin` before ``before`` and not ended since."""
        found = []
        for name in self.storage.names(PENDING):
            dossier_id = name.rpartition("/")[2]
            if not _DOSSIER_ID.fullmatch(dossier_id):
                continue
            try:
                if self.storage.modified_at(name) < before:
                    found.append(dossier_id)
            except FileNotFoundError:
                continue
        return found


def unseal(data_key: bytes, dossier_id: str, kind: str, key: str, stored: bytes) -> bytes:
    """Decrypt a sealed blob's bytes; InvalidTag when the key or the bytes are wrong."""
    if not stored.startswith(MAGIC):
        raise ValueError("not a sealed blob")
    body = stored[len(MAGIC) :]
    data = AESGCM(data_key).decrypt(
        body[:NONCE_BYTES], body[NONCE_BYTES:], _aad(dossier_id, kind, key)
    )
    if key_of(data) != key:
        raise InvalidTag()
    return data


def _aad(dossier_id: str, kind: str, key: str) -> bytes:
    """Binds a sealed blob to its place: moved to another dossier or kind, it does not open."""
    return f"saoy/{dossier_id}/{kind}/{key}".encode()


def _purged(kind: str) -> Purged:
    what = "The dossier's page scans were" if kind == SCANS else "The signed copy's file was"
    return Purged(
        f"Dữ liệu đã được xoá theo thời hạn lưu trữ / {what} destroyed at the end of the"
        " retention period; the copy's registration stays verifiable by code"
    )


class VaultBlobStore(BlobStore):
    """The server's blob store: new dossiers' blobs sealed in the vault, blobs stored before it
    read from the plain content-addressed store, which it otherwise stands for (sweeps, keys)."""

    def __init__(self, plain: BlobStore, vault: Vault) -> None:
        self.plain = plain
        self.vault = vault

    def put(self, data: bytes) -> tuple[str, bool]:
        return self.plain.put(data)

    def get(self, key: str) -> bytes:
        return self.plain.get(key)

    def exists(self, key: str) -> bool:
        return self.plain.exists(key)

    def delete(self, key: str) -> bool:
        return self.plain.delete(key)

    def keys(self) -> Iterator[str]:
        return self.plain.keys()

    def modified_at(self, key: str) -> datetime:
        return self.plain.modified_at(key)

    def ages(self) -> Iterator[tuple[str, datetime]]:
        return self.plain.ages()

    def discard_partial(self, older_than: timedelta) -> int:
        return self.plain.discard_partial(older_than)

    def for_dossier(self, dossier_id: str, copy_key: str | None) -> BlobStore:
        return _DossierBlobs(self.vault, dossier_id, copy_key)

    def discard_dossier(self, dossier_id: str) -> None:
        self.vault.discard(dossier_id)

    def recorded(self, dossier_id: str) -> None:
        self.vault.end(dossier_id)

    def discard_unrecorded(self, is_recorded: Callable[[str], bool], older_than: timedelta) -> int:
        discarded = 0
        for dossier_id in self.vault.unfinished(datetime.now(UTC) - older_than):
            if is_recorded(dossier_id):
                self.vault.end(dossier_id)  # recorded, but its mark outlived the commit
            else:
                self.vault.discard(dossier_id)
                discarded += 1
        return discarded

    def get_for(self, dossier_id: str, key: str, *, copy: bool = False) -> bytes:
        kind = COPY if copy else SCANS
        if self.vault.holds(dossier_id, kind):
            return self.vault.open(dossier_id, kind, key)
        return self.plain.get(key)


class _DossierBlobs(BlobStore):
    """One dossier's blobs as :func:`~saoy.core.storage.registry.store_dossier` writes them: the
    copy (``copy_key``) under the copy's key, every other blob under the scans' key."""

    def __init__(self, vault: Vault, dossier_id: str, copy_key: str | None) -> None:
        self.vault = vault
        self.dossier_id = dossier_id
        self.copy_key = copy_key
        self._begun = False

    def _kind(self, key: str) -> str:
        return COPY if key == self.copy_key else SCANS

    def put(self, data: bytes) -> tuple[str, bool]:
        if not self._begun:
            self.vault.begin(self.dossier_id)
            self._begun = True
        return self.vault.seal(self.dossier_id, self._kind(key_of(data)), data)

    def get(self, key: str) -> bytes:
        return self.vault.open(self.dossier_id, self._kind(key), key)

    def exists(self, key: str) -> bool:
        return self.vault.storage.exists(self._name(key))

    def delete(self, key: str) -> bool:
        return self.vault.storage.remove(self._name(key))

    def keys(self) -> Iterator[str]:
        for name in self.vault.storage.names(self.dossier_id):
            leaf = name.rpartition("/")[2]
            if len(leaf) == 64:
                yield leaf

    def modified_at(self, key: str) -> datetime:
        try:
            return self.vault.storage.modified_at(self._name(key))
        except FileNotFoundError:
            raise NotFound(f"No blob is stored under {key}", field="sha256") from None

    def _name(self, key: str) -> str:
        return self.vault.blob_name(self.dossier_id, self._kind(key), key)


# -- the policy ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class RetentionPolicy:
    """How long personal data is kept after a dossier is decided, in days; 0 keeps it."""

    scans_days: float = 0.0
    """Page scans and recognized fields (and OCR text)."""
    copies_days: float = 0.0
    """The signed copy's file (its registration, code and hash stay)."""

    def __post_init__(self) -> None:
        if self.scans_days < 0 or self.copies_days < 0:
            raise ValueError("retention periods must be >= 0 days (0: kept)")
        if self.copies_days and self.scans_days and self.copies_days < self.scans_days:
            raise ValueError("copies cannot be kept shorter than the scans they show")

    @property
    def active(self) -> bool:
        return bool(self.scans_days or self.copies_days)


@dataclass
class PurgeReport:
    """What one purge did (counts only: no ids or personal data)."""

    scans: int = 0
    copies: int = 0
    plain_blobs: int = 0
    epochs_destroyed: list[str] = field(default_factory=list)


PURGED_EVENT = "purged"
COPY_PURGED_EVENT = "copy_purged"


def purge(
    registry: Registry,
    blobs: VaultBlobStore,
    policy: RetentionPolicy,
    *,
    now: datetime | None = None,
    batch: int = 500,
) -> PurgeReport:
    """Apply ``policy`` to every dossier decided long enough before ``now``."""
    now = now or datetime.now(UTC)
    vault = blobs.vault
    report = PurgeReport()
    if policy.scans_days:
        cutoff = now - timedelta(days=policy.scans_days)
        while ids := registry.decided_before(cutoff, without_event=PURGED_EVENT, limit=batch):
            for dossier_id in ids:
                if vault.holds(dossier_id, SCANS):
                    vault.destroy(dossier_id, SCANS)
                unshared = registry.erase_personal_data(
                    dossier_id, PURGED_EVENT, {"what": "scans and recognized fields"}
                )
                # plain files from before the vault that no dossier still kept shows
                report.plain_blobs += sum(blobs.plain.delete(key) for key in unshared)
                report.scans += 1
    if policy.copies_days:
        cutoff = now - timedelta(days=policy.copies_days)
        while ids := registry.decided_before(cutoff, without_event=COPY_PURGED_EVENT, limit=batch):
            for dossier_id in ids:
                if vault.holds(dossier_id, COPY):
                    vault.destroy(dossier_id, COPY)
                elif (copy := registry.copy_of(dossier_id)) is not None:
                    report.plain_blobs += blobs.plain.delete(copy.blob_key)
                registry.mark(dossier_id, COPY_PURGED_EVENT, {"what": "signed copy file"})
                report.copies += 1
    live = vault.live_epochs()
    for epoch in vault.wrapper.epochs():
        ended = vault.epoch_end(epoch) + EPOCH_GRACE <= now
        if ended and epoch not in live and vault.wrapper.destroy(epoch):
            report.epochs_destroyed.append(epoch)
    if report.scans or report.copies or report.epochs_destroyed:
        log.info(
            "retention purge: scans of %d dossier(s), %d copy file(s), %d plain blob(s),"
            " wrapping keys of %d epoch(s) destroyed",
            report.scans,
            report.copies,
            report.plain_blobs,
            len(report.epochs_destroyed),
        )
    return report


__all__ = [
    "COPY",
    "KINDS",
    "SCANS",
    "DirVaultStorage",
    "PurgeReport",
    "Purged",
    "RetentionPolicy",
    "Vault",
    "VaultBlobStore",
    "VaultStorage",
    "purge",
    "unseal",
]
