"""Key files the server makes for itself on first start: written whole, mode 0600, never
replaced once there (two processes starting at once keep the first one's)."""

from __future__ import annotations

import contextlib
import os
import secrets
import tempfile
from collections.abc import Callable
from pathlib import Path


def ensure_secret_file(path: Path, make: Callable[[], bytes]) -> Path:
    """``path``, created with the bytes ``make()`` returns when it does not exist yet:
    written to a temporary file beside it, synced, and linked into place, so a reader never
    sees a half-written key and a key already there is never overwritten."""
    path = Path(path)
    if path.is_file():
        return path
    directory = path.parent
    directory.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=directory)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(make())
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(tmp, 0o600)
        with contextlib.suppress(FileExistsError):
            os.link(tmp, path)  # never replaces a key another process wrote meanwhile
        dir_fd = os.open(directory, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)
    finally:
        Path(tmp).unlink(missing_ok=True)
    return path


SUBJECT_KEY_FILE = "subject.key"
SUBJECT_KEY_BYTES = 32


def ensure_subject_key(directory: Path) -> bytes:
    """The key of the keyed subject hash (see :func:`saoy.core.identity.sessions.subject_of`): 32
    random bytes in ``directory``/subject.key, made on first call. Losing it only means new
    dossiers of a citizen no longer hash like earlier ones; it opens no copy."""
    path = ensure_secret_file(
        Path(directory) / SUBJECT_KEY_FILE, lambda: secrets.token_bytes(SUBJECT_KEY_BYTES)
    )
    key = path.read_bytes()
    if len(key) != SUBJECT_KEY_BYTES:
        raise ValueError(f"{path} holds {len(key)} bytes, not a {SUBJECT_KEY_BYTES}-byte key")
    return key
