"""Content-addressed storage of page scans and signed PDFs, keyed by the SHA-256 of the bytes.

A key names its content, so a blob is written once and never changed: storing the same bytes
again is a no-op, and a reader holding a key from the registry always gets exactly the bytes
that were registered. :class:`FileBlobStore` keeps each blob as a file under
``root/ab/cd/<sha256>``, written crash-safely (temp file, fsync, atomic link, fsync of the
directory), so a blob either is there in full or not at all. Other backends live in modules of
their own (:mod:`saoy.core.storage.blobs_s3`: S3 object storage), picked by ``blob_url`` in
:mod:`saoy.core.storage.blob_stores`.
"""

from __future__ import annotations

import hashlib
import os
import re
import secrets
import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

from saoy.core.errors import InvalidInput, NotFound

_KEY = re.compile(r"[0-9a-f]{64}")
_TEMP_PREFIX = ".tmp-"


def key_of(data: bytes) -> str:
    """The key ``data`` is stored under: its SHA-256, lowercase hex."""
    return hashlib.sha256(data).hexdigest()


def check_key(key: str) -> str:
    """``key`` if it is 64 lowercase hex digits; anything else (a path, ``..``) is refused."""
    if not isinstance(key, str) or _KEY.fullmatch(key) is None:
        raise InvalidInput(
            "A blob key is the SHA-256 of the content: 64 lowercase hex digits",
            reason="BAD_BLOB_KEY",
            field="sha256",
        )
    return key


class BlobStore(ABC):
    """Immutable blobs addressed by the SHA-256 of their bytes."""

    @abstractmethod
    def put(self, data: bytes) -> tuple[str, bool]:
        """Store ``data``; return its key and whether this call created it (False when the same
        bytes were already there). Durable when it returns."""

    @abstractmethod
    def get(self, key: str) -> bytes:
        """The bytes under ``key``; NotFound when there are none."""

    @abstractmethod
    def exists(self, key: str) -> bool:
        """Whether a blob is stored under ``key``."""

    @abstractmethod
    def delete(self, key: str) -> bool:
        """Remove the blob under ``key``; whether there was one."""

    @abstractmethod
    def keys(self) -> Iterator[str]:
        """Every stored key, in no particular order."""

    @abstractmethod
    def modified_at(self, key: str) -> datetime:
        """When the blob under ``key`` was last written or re-put (UTC); NotFound if absent.

        Sweeps use it to leave alone blobs that a store in flight may be about to register."""

    def ages(self) -> Iterator[tuple[str, datetime]]:
        """Every stored key with :meth:`modified_at`, for sweeps; a store whose listing tells
        both at once (S3) overrides this to save a look-up per blob."""
        for key in self.keys():
            try:
                yield key, self.modified_at(key)
            except NotFound:  # removed since it was listed
                continue

    def discard_partial(self, older_than: timedelta) -> int:
        """Remove incomplete writes left by a killed process, older than ``older_than``; how
        many. Stores without such leftovers keep this default."""
        return 0

    def for_dossier(self, dossier_id: str, copy_key: str | None) -> BlobStore:
        """Where one dossier's blobs are written (``copy_key``: its signed copy's key). A store
        that seals each dossier apart (:mod:`saoy.core.retention`) returns its own view; by
        default every dossier shares this store."""
        return self

    def discard_dossier(self, dossier_id: str) -> None:  # noqa: B027 - nothing kept apart
        """Remove what :meth:`for_dossier` wrote for a dossier that was never recorded."""

    def recorded(self, dossier_id: str) -> None:  # noqa: B027 - nothing kept apart
        """Say that a dossier written through :meth:`for_dossier` is now in the registry."""

    def discard_unrecorded(self, is_recorded: Callable[[str], bool], older_than: timedelta) -> int:
        """Remove what :meth:`for_dossier` wrote, more than ``older_than`` ago, for dossiers
        that were never recorded (a process killed before its commit); how many dossiers."""
        return 0

    def get_for(self, dossier_id: str, key: str, *, copy: bool = False) -> bytes:
        """A blob of a dossier (``copy``: its signed copy), wherever that dossier's blobs lie."""
        return self.get(key)


class FileBlobStore(BlobStore):
    """Blobs as files under ``root/ab/cd/<sha256>``, written crash-safely."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)
        self.root.mkdir(parents=True, exist_ok=True)

    def _path(self, key: str) -> Path:
        check_key(key)
        return self.root / key[:2] / key[2:4] / key

    def open_path(self, key: str) -> Path:
        """The file holding ``key``, to stream it without reading it whole; NotFound if
        absent. The file must not be modified."""
        path = self._path(key)
        if not path.is_file():
            raise NotFound(f"No blob is stored under {key}", field="sha256")
        return path

    def put(self, data: bytes) -> tuple[str, bool]:
        key = key_of(data)
        path = self._path(key)
        # _touch fails if a sweep removed the blob meanwhile: then it is written afresh.
        while not _touch(path):
            if self._write(path, data):
                return key, True
        return key, False

    def _write(self, path: Path, data: bytes) -> bool:
        """Write ``data`` to ``path`` unless it exists; whether this call created it."""
        directory = path.parent
        _make_dirs(directory, self.root)
        temp = directory / f"{_TEMP_PREFIX}{path.name[:16]}-{secrets.token_hex(8)}"
        try:
            with open(temp, "xb") as out:
                out.write(data)
                out.flush()
                os.fsync(out.fileno())
            try:
                # link() fails if the key exists, so of two concurrent puts exactly one
                # reports created=True; rename() would let both claim it.
                os.link(temp, path)
            except FileExistsError:
                return False
        finally:
            temp.unlink(missing_ok=True)
        _fsync_dir(directory)
        return True

    def get(self, key: str) -> bytes:
        try:
            return self._path(key).read_bytes()
        except FileNotFoundError:
            raise NotFound(f"No blob is stored under {key}", field="sha256") from None

    def exists(self, key: str) -> bool:
        return self._path(key).is_file()

    def delete(self, key: str) -> bool:
        path = self._path(key)
        try:
            path.unlink()
        except FileNotFoundError:
            return False
        _fsync_dir(path.parent)
        return True

    def keys(self) -> Iterator[str]:
        for _, names in self._walk():
            for name in names:
                if _KEY.fullmatch(name):
                    yield name

    def modified_at(self, key: str) -> datetime:
        try:
            mtime = self._path(key).stat().st_mtime
        except FileNotFoundError:
            raise NotFound(f"No blob is stored under {key}", field="sha256") from None
        return datetime.fromtimestamp(mtime, UTC)

    def discard_partial(self, older_than: timedelta) -> int:
        limit = time.time() - older_than.total_seconds()
        removed = 0
        for directory, names in self._walk():
            for name in names:
                if not name.startswith(_TEMP_PREFIX):
                    continue
                path = directory / name
                try:
                    if path.stat().st_mtime < limit:
                        path.unlink()
                        removed += 1
                except FileNotFoundError:
                    continue
        return removed

    def _walk(self) -> Iterator[tuple[Path, list[str]]]:
        """The leaf directories ``root/ab/cd`` with their file names."""
        for first in _subdirs(self.root):
            for second in _subdirs(first):
                try:
                    names = [e.name for e in os.scandir(second) if e.is_file()]
                except FileNotFoundError:
                    continue
                yield second, names


def _subdirs(path: Path) -> list[Path]:
    try:
        return [Path(e.path) for e in os.scandir(path) if e.is_dir() and len(e.name) == 2]
    except FileNotFoundError:
        return []


def _make_dirs(directory: Path, root: Path) -> None:
    """Create ``directory`` (below ``root``) and make each new entry durable in its parent."""
    missing: list[Path] = []
    current = directory
    while current != root and not current.is_dir():
        missing.append(current)
        current = current.parent
    for path in reversed(missing):
        try:
            path.mkdir()
        except FileExistsError:
            continue
        _fsync_dir(path.parent)


def _fsync_dir(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _touch(path: Path) -> bool:
    """Refresh the modification time of a blob that is being stored again, so an orphan sweep
    running meanwhile treats it as young; whether the blob exists."""
    try:
        os.utime(path)
    except FileNotFoundError:
        return False
    return True


__all__ = ["BlobStore", "FileBlobStore", "check_key", "key_of"]
