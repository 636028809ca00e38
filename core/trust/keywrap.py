"""Wrapping keys: the keys of the signer backend that encrypt each dossier's data keys.

A dossier's blobs are encrypted under its own data keys (see :mod:`saoy.core.retention`);
those are stored only wrapped, by a wrapping key of an *epoch* (a UTC day by default). Purging
a dossier destroys its wrapped data key; once every dossier of an epoch is purged and the epoch
is over, the epoch's wrapping key is destroyed too, so that a backup of the registry or the
blobs taken before the purge holds nothing that still decrypts.

Two backends, as for signing keys: :class:`FileKeyWrapper` keeps AES-256 wrapping keys as
files beside the dev PKI (mode 0600, RFC 3394 AES key wrap), :class:`Pkcs11KeyWrapper` keeps
them in the HSM, generated there as sensitive, non-extractable AES keys that only encrypt and
decrypt: the data keys are unwrapped inside the token and the wrapping key never leaves it.
"""

from __future__ import annotations

import os
import re
import secrets
import threading
from abc import ABC, abstractmethod
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.keywrap import InvalidUnwrap, aes_key_unwrap, aes_key_wrap

from saoy.core.errors import NotFound
from saoy.core.trust.secretfiles import ensure_secret_file

EPOCH = re.compile(r"[0-9]{8}(T[0-9]{6})?")
"""An epoch's name: a UTC day ``YYYYMMDD``, or a second ``YYYYMMDDTHHMMSS``."""
KEY_BYTES = 32


class KeyDestroyed(NotFound):
    """The key needed to read data was destroyed (its retention period ended)."""

    reason = "PURGED"


def check_epoch(epoch: str) -> str:
    if not EPOCH.fullmatch(epoch):
        raise ValueError(f"not an epoch name: {epoch!r}")
    return epoch


class KeyWrapper(ABC):
    """Wraps and unwraps data keys under per-epoch wrapping keys, made on first use."""

    name: str

    @abstractmethod
    def wrap(self, epoch: str, data_key: bytes) -> bytes:
        """``data_key`` wrapped by the epoch's wrapping key (made if there is none yet)."""

    @abstractmethod
    def unwrap(self, epoch: str, wrapped: bytes) -> bytes:
        """The data key; KeyDestroyed when the epoch's key is gone or does not open it."""

    @abstractmethod
    def destroy(self, epoch: str) -> bool:
        """Destroy the epoch's wrapping key; whether there was one."""

    @abstractmethod
    def epochs(self) -> list[str]:
        """The epochs whose wrapping keys exist, oldest first."""

    def close(self) -> None:  # noqa: B027 - optional for backends without resources
        """Release the backend's session."""


def _destroyed(epoch: str) -> KeyDestroyed:
    return KeyDestroyed(
        f"the wrapping key of {epoch} was destroyed: data of that period was purged under the"
        " retention policy"
    )


class FileKeyWrapper(KeyWrapper):
    """Wrapping keys as files ``<directory>/<epoch>.key`` (32 random bytes, mode 0600)."""

    name = "file"

    def __init__(self, directory: Path) -> None:
        self.directory = Path(directory)

    def _path(self, epoch: str) -> Path:
        return self.directory / f"{check_epoch(epoch)}.key"

    def _key(self, epoch: str, *, make: bool) -> bytes:
        path = self._path(epoch)
        if make:
            ensure_secret_file(path, lambda: secrets.token_bytes(KEY_BYTES))
        try:
            key = path.read_bytes()
        except FileNotFoundError:
            raise _destroyed(epoch) from None
        if len(key) != KEY_BYTES:
            raise ValueError(f"{path} holds {len(key)} bytes, not a {KEY_BYTES}-byte key")
        return key

    def wrap(self, epoch: str, data_key: bytes) -> bytes:
        return aes_key_wrap(self._key(epoch, make=True), data_key)

    def unwrap(self, epoch: str, wrapped: bytes) -> bytes:
        try:
            return aes_key_unwrap(self._key(epoch, make=False), wrapped)
        except InvalidUnwrap:
            raise _destroyed(epoch) from None

    def destroy(self, epoch: str) -> bool:
        path = self._path(epoch)
        try:
            with open(path, "r+b") as fh:  # overwrite first: the blocks may outlive the name
                fh.write(bytes(KEY_BYTES))
                fh.flush()
                os.fsync(fh.fileno())
            path.unlink()
        except FileNotFoundError:
            return False
        return True

    def epochs(self) -> list[str]:
        if not self.directory.is_dir():
            return []
        return sorted(p.stem for p in self.directory.glob("*.key") if EPOCH.fullmatch(p.stem))


class Pkcs11KeyWrapper(KeyWrapper):
    """Wrapping keys in a PKCS#11 token, labelled ``<prefix><epoch>``: AES-256, generated in
    the token, sensitive and non-extractable, allowed to encrypt and decrypt only. A data key
    is wrapped as IV ‖ AES-CBC-PAD(data key) computed in the token; a wrong or destroyed key
    cannot open it (and the data key then fails AES-GCM's tag on the blobs)."""

    name = "pkcs11"

    def __init__(self, session: Any, prefix: str = "saoy-wrap-") -> None:
        self.session = session
        self.prefix = prefix
        self._lock = threading.Lock()

    def _find(self, epoch: str) -> Any | None:
        from pkcs11 import Attribute, KeyType, ObjectClass

        found = list(
            self.session.get_objects(
                {
                    Attribute.CLASS: ObjectClass.SECRET_KEY,
                    Attribute.KEY_TYPE: KeyType.AES,
                    Attribute.LABEL: self.prefix + check_epoch(epoch),
                }
            )
        )
        return found[0] if found else None

    def _key(self, epoch: str, *, make: bool) -> Any:
        from pkcs11 import Attribute, KeyType

        with self._lock:
            key = self._find(epoch)
            if key is None and make:
                key = self.session.generate_key(
                    KeyType.AES,
                    256,
                    label=self.prefix + epoch,
                    store=True,
                    template={
                        Attribute.SENSITIVE: True,
                        Attribute.EXTRACTABLE: False,
                        Attribute.ENCRYPT: True,
                        Attribute.DECRYPT: True,
                        Attribute.WRAP: False,
                        Attribute.UNWRAP: False,
                        Attribute.SIGN: False,
                        Attribute.VERIFY: False,
                    },
                )
        if key is None:
            raise _destroyed(epoch)
        return key

    def wrap(self, epoch: str, data_key: bytes) -> bytes:
        iv = secrets.token_bytes(16)
        key = self._key(epoch, make=True)
        with self._lock:
            return iv + bytes(key.encrypt(data_key, mechanism_param=iv))

    def unwrap(self, epoch: str, wrapped: bytes) -> bytes:
        from pkcs11.exceptions import PKCS11Error

        key = self._key(epoch, make=False)
        try:
            with self._lock:
                data_key = bytes(key.decrypt(wrapped[16:], mechanism_param=wrapped[:16]))
        except PKCS11Error:
            raise _destroyed(epoch) from None
        if len(data_key) != KEY_BYTES:
            raise _destroyed(epoch)
        return data_key

    def destroy(self, epoch: str) -> bool:
        with self._lock:
            key = self._find(epoch)
            if key is None:
                return False
            key.destroy()
        return True

    def epochs(self) -> list[str]:
        from pkcs11 import Attribute, KeyType, ObjectClass

        with self._lock:
            keys = self.session.get_objects(
                {Attribute.CLASS: ObjectClass.SECRET_KEY, Attribute.KEY_TYPE: KeyType.AES}
            )
            labels = [str(k.label) for k in keys]
        return sorted(
            label[len(self.prefix) :]
            for label in labels
            if label.startswith(self.prefix) and EPOCH.fullmatch(label[len(self.prefix) :])
        )

    def close(self) -> None:
        self.session.close()


__all__ = [
    "FileKeyWrapper",
    "KeyDestroyed",
    "KeyWrapper",
    "Pkcs11KeyWrapper",
    "check_epoch",
]
