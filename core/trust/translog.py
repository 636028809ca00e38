"""The transparency log: an append-only Merkle tree of issued and revoked copies (RFC 9162
hashing), with signed checkpoints in the C2SP signed-note format.

Hashing (RFC 9162 §2.1.1): a leaf hashes as ``SHA-256(0x00 || entry)``, an inner node as
``SHA-256(0x01 || left || right)``, and the tree over ``n`` leaves splits at the largest power of
two below ``n``, so every size has a root, not only powers of two. The empty tree's root is
``SHA-256("")``.

Storage (:class:`SqliteTransparencyLog`): one SQLite file in WAL mode holds the leaves in order
and every *complete* subtree hash (the node covering leaves ``[i * 2**level, (i + 1) * 2**level)``
is written once, when its last leaf arrives, and never changes). Any subtree a proof needs is a
stored node or the hash of a few of them along the right edge, so a proof costs O(log n) indexed
reads and a handful of hashes whatever the log's size.

Checkpoints (https://c2sp.org/tlog-checkpoint, https://c2sp.org/signed-note)::

    saoy.example.vn/log
    1234
    <base64 root hash>
    time 1767225600

    — saoy.example.vn/log <base64(4-byte key hash || Ed25519 signature)>

The ``time`` line is a checkpoint extension line (seconds since the Unix epoch) covered by the
signature; readers that do not know it may ignore it. The key hash is the first four bytes of
``SHA-256(name || 0x0A || 0x01 || public key)``, as the signed-note format defines for Ed25519.

Two stores implement :class:`TransparencyLog`: :class:`SqliteTransparencyLog` here (the
embedded default) and :class:`~saoy.core.trust.translog_pg.PgTransparencyLog` (PostgreSQL,
sequencing apart from integration);
:func:`~saoy.core.trust.translog_backends.open_transparency_log` picks one. Both serve the tree
as C2SP tlog-tiles (:mod:`saoy.core.trust.tiles`): a stored node at a level that is a multiple
of 8 is a hash of a tile, and entries are at most 65,535 bytes so that an entry bundle can carry
them.

Log entries (:func:`encode_entry`) are canonical JSON with no personal data: what happened
(``issued`` or ``revoked``), the copy's verification code, the SHA-256 of its signed PDF, when,
and the issuing organization.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import re
import sqlite3
import threading
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import wraps
from pathlib import Path
from types import TracebackType
from typing import Final, ParamSpec, TypeVar

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from saoy.core.errors import InvalidInput, NotFound, Unavailable
from saoy.core.reception import codes
from saoy.core.storage.sqlite import SqliteConnections
from saoy.core.trust.secretfiles import ensure_secret_file

P = ParamSpec("P")
T = TypeVar("T")

HASH_SIZE: Final = 32
EMPTY_ROOT: Final = hashlib.sha256(b"").digest()
"""RFC 9162 root of the empty tree."""

_LEAF_PREFIX: Final = b"\x00"
_NODE_PREFIX: Final = b"\x01"


# -- hashing and proofs, pure ------------------------------------------------------------------


def leaf_hash(data: bytes) -> bytes:
    """RFC 9162 leaf hash: SHA-256(0x00 || data)."""
    return hashlib.sha256(_LEAF_PREFIX + data).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    """RFC 9162 inner node hash: SHA-256(0x01 || left || right)."""
    return hashlib.sha256(_NODE_PREFIX + left + right).digest()


def _split(n: int) -> int:
    """The largest power of two strictly below ``n`` (n >= 2)."""
    return 1 << ((n - 1).bit_length() - 1)


def root_from_leaves(leaf_hashes: Sequence[bytes]) -> bytes:
    """MTH over the leaves whose leaf hashes are given, by the RFC's recursive definition
    (the reference the stored tree is tested against)."""
    n = len(leaf_hashes)
    if n == 0:
        return EMPTY_ROOT
    if n == 1:
        return leaf_hashes[0]
    k = _split(n)
    return node_hash(root_from_leaves(leaf_hashes[:k]), root_from_leaves(leaf_hashes[k:]))


SubtreeHash = Callable[[int, int], bytes]
"""MTH of the leaves ``[start, end)`` of a tree, for ranges a proof needs."""


def inclusion_path(index: int, size: int, subtree: SubtreeHash) -> list[bytes]:
    """PATH(index, D[0:size]) of RFC 9162 §2.1.3.1, leaf-side first, with subtree hashes
    from ``subtree``."""
    if not 0 <= index < size:
        raise ValueError(f"leaf index {index} is outside a tree of size {size}")
    path: list[bytes] = []
    start, end = 0, size
    while end - start > 1:
        k = _split(end - start)
        if index < start + k:
            path.append(subtree(start + k, end))
            end = start + k
        else:
            path.append(subtree(start, start + k))
            start += k
    path.reverse()
    return path


def consistency_path(old_size: int, new_size: int, subtree: SubtreeHash) -> list[bytes]:
    """PROOF(old_size, D[0:new_size]) of RFC 9162 §2.1.4.1, with subtree hashes from
    ``subtree``; empty when the sizes are equal."""
    if not 0 < old_size <= new_size:
        raise ValueError(f"no consistency proof from size {old_size} to size {new_size}")
    proof: list[bytes] = []
    start, end, m, complete = 0, new_size, old_size, True
    while m != end - start:
        k = _split(end - start)
        if m <= k:
            proof.append(subtree(start + k, end))
            end = start + k
        else:
            proof.append(subtree(start, start + k))
            start += k
            m -= k
            complete = False
    if not complete:
        proof.append(subtree(start, end))
    proof.reverse()
    return proof


def reference_subtree(leaf_hashes: Sequence[bytes]) -> SubtreeHash:
    """A :data:`SubtreeHash` over an in-memory list of leaf hashes (for tests and tools)."""
    return lambda start, end: root_from_leaves(leaf_hashes[start:end])


def verify_inclusion(
    leaf: bytes, index: int, size: int, proof: Sequence[bytes] | None, root: bytes
) -> bool:
    """RFC 9162 §2.1.3.2: does ``proof`` show the leaf hash ``leaf`` at ``index`` in the tree
    of ``size`` leaves whose root is ``root``?"""
    path = list(proof or ())
    if index < 0 or index >= size:
        return False
    if len(leaf) != HASH_SIZE or len(root) != HASH_SIZE:
        return False
    if any(len(p) != HASH_SIZE for p in path):
        return False
    fn, sn = index, size - 1
    r = leaf
    for p in path:
        if sn == 0:
            return False
        if fn & 1 or fn == sn:
            r = node_hash(p, r)
            if not fn & 1:
                while fn and not fn & 1:
                    fn >>= 1
                    sn >>= 1
        else:
            r = node_hash(r, p)
        fn >>= 1
        sn >>= 1
    return sn == 0 and hmac.compare_digest(r, root)


def verify_consistency(
    old_size: int,
    new_size: int,
    old_root: bytes,
    new_root: bytes,
    proof: Sequence[bytes] | None,
) -> bool:
    """RFC 9162 §2.1.4.2: does ``proof`` show that the tree of ``new_size`` leaves with root
    ``new_root`` extends the tree of ``old_size`` leaves with root ``old_root``?

    Equal sizes need an empty proof and equal roots. A proof from the empty tree proves
    nothing and is refused, as is any proof with a size of zero."""
    path = list(proof or ())
    if old_size <= 0 or new_size < old_size:
        return False
    if old_size == new_size:
        return not path and hmac.compare_digest(old_root, new_root)
    if not path or any(len(p) != HASH_SIZE for p in path):
        return False
    if old_size & (old_size - 1) == 0:  # a power of two: the old root is itself a proof node
        path.insert(0, old_root)
    fn, sn = old_size - 1, new_size - 1
    while fn & 1:
        fn >>= 1
        sn >>= 1
    fr = sr = path[0]
    for c in path[1:]:
        if sn == 0:
            return False
        if fn & 1 or fn == sn:
            fr = node_hash(c, fr)
            sr = node_hash(c, sr)
            if not fn & 1:
                while fn and not fn & 1:
                    fn >>= 1
                    sn >>= 1
        else:
            sr = node_hash(sr, c)
        fn >>= 1
        sn >>= 1
    return sn == 0 and hmac.compare_digest(fr, old_root) and hmac.compare_digest(sr, new_root)


# -- log entries -------------------------------------------------------------------------------

ENTRY_KINDS: Final = ("issued", "revoked", "approved", "refused")
"""issued and revoked: a copy (code, PDF hash); approved: an official approved a copy issued
after review (the same code and hash as its issued entry); refused: an official refused a
dossier (the refusal's reference code, and the SHA-256 of the refusal's record)."""
ENTRY_VERSION: Final = 1
_ENTRY_KEYS: Final = frozenset({"v", "kind", "code", "sha256", "at", "issuer"})
_SHA256_HEX = re.compile(r"[0-9a-f]{64}")
_MAX_ISSUER = 200


@dataclass(frozen=True)
class LogEntry:
    """What one leaf records: a copy was issued or revoked. No personal data."""

    kind: str  # one of ENTRY_KINDS
    code: str  # canonical grouped verification code
    sha256: str  # of the signed PDF, lowercase hex
    at: datetime  # issued_at or revoked_at, UTC, whole seconds
    issuer: str  # the issuing organization


def _rfc3339(at: datetime) -> str:
    if at.tzinfo is None or at.utcoffset() is None:
        raise ValueError("log entry times must be timezone-aware")
    return at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def encode_entry(entry: LogEntry) -> bytes:
    """The canonical bytes of a log entry: JSON, keys sorted, no spaces, ASCII only, time as
    RFC 3339 UTC to the second. ``{"at":…,"code":…,"issuer":…,"kind":…,"sha256":…,"v":1}``"""
    if entry.kind not in ENTRY_KINDS:
        raise ValueError(f"log entry kind must be one of {ENTRY_KINDS}, got {entry.kind!r}")
    if not codes.is_canonical(entry.code):
        raise ValueError(f"log entry code {entry.code!r} is not in canonical form")
    if not _SHA256_HEX.fullmatch(entry.sha256):
        raise ValueError("log entry sha256 must be 64 lowercase hex digits")
    if not entry.issuer or len(entry.issuer) > _MAX_ISSUER:
        raise ValueError(f"log entry issuer must have 1 to {_MAX_ISSUER} characters")
    document = {
        "at": _rfc3339(entry.at),
        "code": entry.code,
        "issuer": entry.issuer,
        "kind": entry.kind,
        "sha256": entry.sha256,
        "v": ENTRY_VERSION,
    }
    return json.dumps(document, sort_keys=True, separators=(",", ":"), ensure_ascii=True).encode()


def decode_entry(data: bytes) -> LogEntry:
    """Parse canonical entry bytes; InvalidInput for anything :func:`encode_entry` would not
    have written byte for byte."""
    try:
        document = json.loads(data.decode("ascii"))
    except (UnicodeDecodeError, ValueError) as error:
        raise InvalidInput(f"log entry is not ASCII JSON: {error}") from error
    if not isinstance(document, dict) or set(document) != _ENTRY_KEYS:
        raise InvalidInput(f"log entry must be a JSON object with keys {sorted(_ENTRY_KEYS)}")
    if document["v"] != ENTRY_VERSION:
        raise InvalidInput(f"log entry version {document['v']!r} is not supported")
    fields = {k: document[k] for k in ("kind", "code", "sha256", "at", "issuer")}
    if not all(isinstance(v, str) for v in fields.values()):
        raise InvalidInput("log entry fields must be strings")
    try:
        at = datetime.strptime(fields["at"], "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)
        entry = LogEntry(fields["kind"], fields["code"], fields["sha256"], at, fields["issuer"])
        canonical = encode_entry(entry)
    except ValueError as error:
        raise InvalidInput(f"log entry is malformed: {error}") from error
    if canonical != data:
        raise InvalidInput("log entry is not in canonical form")
    return entry


# -- signed checkpoints ------------------------------------------------------------------------

_ED25519_ALG: Final = b"\x01"
_SIG_PREFIX: Final = "\u2014 "  # em dash, space
_NAME = re.compile(r"[^\s+]+")
_MAX_NOTE = 1 << 16
LOG_KEY_FILE: Final = "log-key.pem"


def key_hash(name: str, public_key: Ed25519PublicKey) -> bytes:
    """The signed-note key hash of an Ed25519 key: SHA-256(name || 0x0A || 0x01 || key)[:4]."""
    raw = public_key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return hashlib.sha256(name.encode() + b"\n" + _ED25519_ALG + raw).digest()[:4]


def verifier_key(name: str, public_key: Ed25519PublicKey) -> str:
    """The signed-note verifier key string ``name+hex(key hash)+base64(0x01 || key)``, the form
    Go's ``golang.org/x/mod/sumdb/note`` and the C2SP tools read."""
    raw = public_key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    encoded = base64.b64encode(_ED25519_ALG + raw).decode()
    return f"{name}+{key_hash(name, public_key).hex()}+{encoded}"


def parse_verifier_key(text: str) -> tuple[str, Ed25519PublicKey]:
    """The name and key of a verifier key string made by :func:`verifier_key`; InvalidInput
    when it is malformed or its key hash does not match."""
    try:
        # The name holds no "+"; the base64 key may.
        name, hash_hex, encoded = text.strip().split("+", 2)
        raw = base64.b64decode(encoded, validate=True)
        if raw[:1] != _ED25519_ALG or len(raw) != 33:
            raise ValueError("not an Ed25519 key")
        key = Ed25519PublicKey.from_public_bytes(raw[1:])
    except ValueError as error:
        raise InvalidInput(f"not a verifier key: {error}", field="key") from None
    if key_hash(name, key).hex() != hash_hex:
        raise InvalidInput("the verifier key's hash does not match its key", field="key")
    return name, key


def ensure_log_key(directory: Path) -> Path:
    """The log's Ed25519 signing key (PKCS#8 PEM, mode 0600) in ``directory``: created on first
    call (see :func:`ensure_secret_file`), reused after."""
    path = Path(directory) / LOG_KEY_FILE
    return ensure_secret_file(
        path,
        lambda: Ed25519PrivateKey.generate().private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        ),
    )


class CheckpointSigner:
    """Signs checkpoint notes with the log's Ed25519 key under the log's origin name."""

    def __init__(self, private_key: Ed25519PrivateKey, origin: str) -> None:
        if not _NAME.fullmatch(origin):
            raise ValueError(f"log origin {origin!r} must be non-empty, without spaces or '+'")
        self.origin = origin
        self._key = private_key
        self.public_key = private_key.public_key()
        self.key_hash = key_hash(origin, self.public_key)

    @classmethod
    def from_file(cls, path: Path, origin: str) -> CheckpointSigner:
        """A signer for the PKCS#8 PEM Ed25519 key at ``path`` (see :func:`ensure_log_key`)."""
        key = serialization.load_pem_private_key(Path(path).read_bytes(), password=None)
        if not isinstance(key, Ed25519PrivateKey):
            raise ValueError(f"{path}: the log key must be Ed25519, got {type(key).__name__}")
        return cls(key, origin)

    @property
    def verifier_key(self) -> str:
        return verifier_key(self.origin, self.public_key)

    def sign(self, size: int, root: bytes, at: datetime) -> str:
        """A signed checkpoint note for the tree of ``size`` leaves with ``root``."""
        body = checkpoint_body(self.origin, size, root, at)
        signature = self._key.sign(body.encode())
        blob = base64.b64encode(self.key_hash + signature).decode()
        return f"{body}\n{_SIG_PREFIX}{self.origin} {blob}\n"


def checkpoint_body(origin: str, size: int, root: bytes, at: datetime | None) -> str:
    """The signed text of a checkpoint, ending in a newline."""
    lines = [origin, str(size), base64.b64encode(root).decode()]
    if at is not None:
        lines.append(f"time {int(at.timestamp())}")
    return "\n".join(lines) + "\n"


@dataclass(frozen=True)
class Checkpoint:
    """A parsed checkpoint and whether a signature by the expected key verified."""

    origin: str
    size: int
    root: bytes
    time: datetime | None
    signature_ok: bool
    note: str


_DECIMAL = re.compile(r"0|[1-9][0-9]{0,19}")


def verify_checkpoint(
    note: str, public_key: Ed25519PublicKey, *, origin: str | None = None
) -> Checkpoint:
    """Parse a checkpoint note and check its signatures against ``public_key``.

    ``signature_ok`` is True when some signature line names a key whose key hash matches
    ``public_key`` under that name, and its Ed25519 signature over the body verifies (and, if
    ``origin`` is given, the checkpoint's origin is that one). InvalidInput when the note is not
    a well-formed checkpoint at all."""
    if len(note) > _MAX_NOTE:
        raise InvalidInput("checkpoint note is too long")
    if not note.endswith("\n") or "\n\n" not in note:
        raise InvalidInput("checkpoint note must be a body, a blank line and signature lines")
    body, _, signatures = note.partition("\n\n")
    body += "\n"
    lines = body[:-1].split("\n")
    if len(lines) < 3 or any(not line for line in lines):
        raise InvalidInput("checkpoint body must have origin, size and root hash lines")
    name, size_text, root_text = lines[:3]
    if not _DECIMAL.fullmatch(size_text):
        raise InvalidInput(f"checkpoint tree size {size_text!r} is not a decimal number")
    try:
        root = base64.b64decode(root_text, validate=True)
    except binascii.Error as error:
        raise InvalidInput("checkpoint root hash is not base64") from error
    if len(root) != HASH_SIZE or base64.b64encode(root).decode() != root_text:
        raise InvalidInput("checkpoint root hash must be 32 bytes in canonical base64")
    time: datetime | None = None
    for extra in lines[3:]:
        if extra.startswith("time ") and _DECIMAL.fullmatch(extra[5:]) and len(extra) <= 16:
            time = datetime.fromtimestamp(int(extra[5:]), UTC)
    ok = False
    sig_lines = signatures[:-1].split("\n")
    if not sig_lines or any(not line.startswith(_SIG_PREFIX) for line in sig_lines):
        raise InvalidInput("checkpoint signature lines must start with an em dash and a space")
    for line in sig_lines:
        parts = line[len(_SIG_PREFIX) :].split(" ")
        if len(parts) != 2 or not _NAME.fullmatch(parts[0]):
            raise InvalidInput("checkpoint signature line must be '— <name> <base64>'")
        try:
            blob = base64.b64decode(parts[1], validate=True)
        except binascii.Error as error:
            raise InvalidInput("checkpoint signature is not base64") from error
        if len(blob) < 5:
            raise InvalidInput("checkpoint signature is too short")
        if not hmac.compare_digest(blob[:4], key_hash(parts[0], public_key)):
            continue  # another key's signature (a witness, say)
        try:
            public_key.verify(blob[4:], body.encode())
        except InvalidSignature:
            continue
        ok = True
    if origin is not None and name != origin:
        ok = False
    return Checkpoint(name, int(size_text), root, time, ok, note)


@dataclass(frozen=True)
class InclusionProof:
    """Proof that the entry at ``index`` is in the tree a signed checkpoint commits to."""

    index: int
    size: int
    leaf_hash: bytes
    hashes: tuple[bytes, ...]
    checkpoint: str  # the signed note, verbatim
    entry: bytes  # the leaf's canonical entry bytes

    def verify(self, public_key: Ed25519PublicKey, *, origin: str | None = None) -> bool:
        """True when the checkpoint's signature verifies, it is for this tree size, the entry
        hashes to the leaf hash, and the audit path leads to the checkpoint's root."""
        try:
            checkpoint = verify_checkpoint(self.checkpoint, public_key, origin=origin)
        except InvalidInput:
            return False
        return (
            checkpoint.signature_ok
            and checkpoint.size == self.size
            and hmac.compare_digest(leaf_hash(self.entry), self.leaf_hash)
            and verify_inclusion(
                self.leaf_hash, self.index, self.size, self.hashes, checkpoint.root
            )
        )


# -- storage -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class LogLeaf:
    """One stored leaf."""

    index: int
    leaf_hash: bytes
    entry: bytes
    appended_at: datetime


@dataclass(frozen=True)
class CheckpointRecord:
    """One stored, signed checkpoint."""

    id: int
    size: int
    root: bytes
    created_at: datetime
    note: str


MAX_ENTRY_BYTES: Final = 0xFFFF
"""The largest entry: a tlog-tiles entry bundle prefixes each entry with a 16-bit length."""


def checked_entry(entry: bytes) -> bytes:
    """``entry`` as bytes; ValueError when an entry bundle could not carry it."""
    data = bytes(entry)
    if len(data) > MAX_ENTRY_BYTES:
        raise ValueError(f"a log entry is at most {MAX_ENTRY_BYTES} bytes, got {len(data)}")
    return data


class TransparencyLog(ABC):
    """An append-only Merkle log of entries with stored subtree hashes and signed checkpoints.

    ``size`` counts every durable entry; proofs and roots answer for any size up to it. A
    checkpoint commits to the whole log as it is when signed. ``hashes`` and ``entries`` give
    the stored tree level by level, which the tlog-tiles endpoints serve."""

    def __enter__(self) -> TransparencyLog:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    @abstractmethod
    def close(self) -> None:
        """Release connections."""

    def append(self, entry: bytes) -> int:
        """Append one leaf; its index. Durable when it returns."""
        return self.append_many([entry])[0]

    @abstractmethod
    def append_many(self, entries: Iterable[bytes]) -> list[int]:
        """Append leaves in order, with consecutive indexes; their indexes."""

    @abstractmethod
    def append_once(self, entry: bytes) -> int:
        """The index of the first leaf holding exactly ``entry``, appending it when there is
        none: callers racing with the same entry, in any process, get one leaf."""

    @abstractmethod
    def size(self) -> int:
        """The number of leaves."""

    @abstractmethod
    def root(self, size: int | None = None) -> bytes:
        """The root hash of the first ``size`` leaves (default: all of them)."""

    def entry(self, index: int) -> bytes:
        """The entry bytes of leaf ``index``; NotFound past the end."""
        return self.leaf(index).entry

    @abstractmethod
    def leaf(self, index: int) -> LogLeaf:
        """Leaf ``index``; NotFound past the end."""

    @abstractmethod
    def indexes_of(self, code: str) -> list[int]:
        """Indexes of the entries about the copy with this canonical code, oldest first."""

    @abstractmethod
    def inclusion_proof(self, index: int, size: int | None = None) -> list[bytes]:
        """The RFC 9162 audit path of leaf ``index`` in the tree of ``size`` leaves."""

    @abstractmethod
    def consistency_proof(self, old_size: int, new_size: int) -> list[bytes]:
        """The RFC 9162 proof that the tree of ``new_size`` leaves extends that of
        ``old_size`` (1 <= old_size <= new_size <= size)."""

    @abstractmethod
    def checkpoint(self, signer: CheckpointSigner) -> str:
        """Sign and store a checkpoint of the whole tree as it is now; the note."""

    @abstractmethod
    def latest_checkpoint(self) -> CheckpointRecord | None:
        """The newest stored checkpoint (the largest tree), if any."""

    @abstractmethod
    def checkpoints(self) -> list[CheckpointRecord]:
        """Every stored checkpoint, oldest first."""

    @abstractmethod
    def hashes(self, level: int, start: int, end: int) -> list[bytes]:
        """The stored hashes of the complete subtrees ``start`` to ``end - 1`` at ``level``
        (level 0: leaf hashes), in order; it stops early at the first one not stored."""

    @abstractmethod
    def entries(self, start: int, end: int) -> list[bytes]:
        """The entries ``start`` to ``end - 1``, in order; it stops early at the end."""

    def proof_for(self, index: int) -> InclusionProof | None:
        """Inclusion proof of entry ``index`` against the latest checkpoint; None while no
        checkpoint covers it yet. NotFound for an index past the end of the log."""
        leaf = self.leaf(index)
        latest = self.latest_checkpoint()
        if latest is None or latest.size <= index:
            return None
        hashes = self.inclusion_proof(index, latest.size)
        return InclusionProof(
            index, latest.size, leaf.leaf_hash, tuple(hashes), latest.note, leaf.entry
        )


_SCHEMA: Final = (
    """CREATE TABLE IF NOT EXISTS leaves (
        idx INTEGER PRIMARY KEY CHECK (idx >= 0),
        leaf_hash BLOB NOT NULL CHECK (length(leaf_hash) = 32),
        entry BLOB NOT NULL,
        code TEXT,
        appended_at TEXT NOT NULL
    )""",
    "CREATE INDEX IF NOT EXISTS leaves_code ON leaves (code) WHERE code IS NOT NULL",
    """CREATE TABLE IF NOT EXISTS nodes (
        level INTEGER NOT NULL CHECK (level >= 1),
        idx INTEGER NOT NULL CHECK (idx >= 0),
        hash BLOB NOT NULL CHECK (length(hash) = 32),
        PRIMARY KEY (level, idx)
    ) WITHOUT ROWID""",
    """CREATE TABLE IF NOT EXISTS checkpoints (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        size INTEGER NOT NULL CHECK (size >= 0),
        root BLOB NOT NULL CHECK (length(root) = 32),
        created_at TEXT NOT NULL,
        note TEXT NOT NULL
    )""",
)


def _busy_to_unavailable(method: Callable[P, T]) -> Callable[P, T]:
    @wraps(method)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> T:
        try:
            return method(*args, **kwargs)
        except sqlite3.OperationalError as error:
            if "locked" in str(error) or "busy" in str(error):
                raise Unavailable("the transparency log is busy; retry", retry_after=1.0) from error
            raise

    return wrapper


def _ts(value: datetime) -> str:
    return value.astimezone(UTC).isoformat(timespec="microseconds")


def _dt(text: str) -> datetime:
    return datetime.fromisoformat(text).astimezone(UTC)


def _code_of(entry: bytes) -> str | None:
    try:
        return decode_entry(entry).code
    except InvalidInput:
        return None


class SqliteTransparencyLog(TransparencyLog):
    """The log in its own SQLite file: WAL, synchronous=FULL, one connection per thread;
    appends are serialized (a lock in the process, BEGIN IMMEDIATE across processes)."""

    def __init__(
        self, path: Path, *, busy_timeout: float = 10.0, now: Callable[[], datetime] | None = None
    ) -> None:
        self.path = Path(path)
        self.busy_timeout = busy_timeout
        self._now = now or (lambda: datetime.now(UTC))
        self._append_lock = threading.Lock()
        self._db = SqliteConnections(
            self.path, busy_timeout=busy_timeout, what="the transparency log"
        )
        self._connection = self._db.connection
        self._transaction = self._db.transaction
        self._db.enable_wal()
        with self._transaction(write=True) as db:
            for statement in _SCHEMA:
                db.execute(statement)

    def close(self) -> None:
        self._db.close()

    # -- appends -------------------------------------------------------------------------------

    @_busy_to_unavailable
    def append(self, entry: bytes) -> int:
        """Append one leaf; its index. Durable when it returns."""
        return self.append_many([entry])[0]

    @_busy_to_unavailable
    def append_many(self, entries: Iterable[bytes]) -> list[int]:
        """Append leaves in order, all in one transaction; their indexes."""
        at = _ts(self._now())
        batch = [checked_entry(e) for e in entries]
        with self._append_lock, self._transaction(write=True) as db:
            size = self._size(db)
            return [self._insert(db, size + offset, e, at) for offset, e in enumerate(batch)]

    @_busy_to_unavailable
    def append_once(self, entry: bytes) -> int:
        entry = checked_entry(entry)
        at = _ts(self._now())
        with self._append_lock, self._transaction(write=True) as db:  # BEGIN IMMEDIATE
            code = _code_of(entry)  # by the index of codes; the rare entry with none, by a scan
            where = "code = ?" if code is not None else "code IS NULL AND ? IS NULL"
            row = db.execute(
                f"SELECT idx FROM leaves WHERE {where} AND leaf_hash = ? AND entry = ?"
                " ORDER BY idx LIMIT 1",
                (code, leaf_hash(entry), entry),
            ).fetchone()
            if row is not None:
                return int(row[0])
            return self._insert(db, self._size(db), entry, at)

    def _insert(self, db: sqlite3.Connection, index: int, entry: bytes, at: str) -> int:
        """Store leaf ``index`` and the subtree hashes it completes; the index."""
        h = leaf_hash(entry)
        db.execute(
            "INSERT INTO leaves (idx, leaf_hash, entry, code, appended_at) VALUES (?, ?, ?, ?, ?)",
            (index, h, entry, _code_of(entry), at),
        )
        # Each leaf that completes a perfect subtree completes it and possibly its
        # ancestors: while the node is a right child, hash it with its left sibling.
        level, i = 0, index
        while i & 1:
            h = node_hash(self._node(db, level, i - 1), h)
            level, i = level + 1, i >> 1
            db.execute("INSERT INTO nodes (level, idx, hash) VALUES (?, ?, ?)", (level, i, h))
        return index

    # -- reads ---------------------------------------------------------------------------------

    @staticmethod
    def _size(db: sqlite3.Connection) -> int:
        last = db.execute("SELECT max(idx) FROM leaves").fetchone()[0]
        return 0 if last is None else int(last) + 1

    @staticmethod
    def _node(db: sqlite3.Connection, level: int, index: int) -> bytes:
        if level == 0:
            row = db.execute("SELECT leaf_hash FROM leaves WHERE idx = ?", (index,)).fetchone()
        else:
            row = db.execute(
                "SELECT hash FROM nodes WHERE level = ? AND idx = ?", (level, index)
            ).fetchone()
        if row is None:
            raise RuntimeError(f"transparency log node ({level}, {index}) is missing")
        return bytes(row[0])

    def _subtree(self, db: sqlite3.Connection) -> SubtreeHash:
        def subtree(start: int, end: int) -> bytes:
            n = end - start
            if n & (n - 1) == 0:
                level = n.bit_length() - 1
                return self._node(db, level, start >> level)
            k = _split(n)
            return node_hash(subtree(start, start + k), subtree(start + k, end))

        return subtree

    def size(self) -> int:
        """The number of leaves."""
        return self._size(self._connection())

    def _check_size(self, db: sqlite3.Connection, size: int) -> None:
        current = self._size(db)
        if not 0 <= size <= current:
            raise InvalidInput(
                f"tree size {size} is outside the log (it has {current} leaves)", field="size"
            )

    def root(self, size: int | None = None) -> bytes:
        """The root hash of the first ``size`` leaves (default: all of them)."""
        with self._transaction(write=False) as db:
            if size is None:
                size = self._size(db)
            self._check_size(db, size)
            return EMPTY_ROOT if size == 0 else self._subtree(db)(0, size)

    def leaf(self, index: int) -> LogLeaf:
        row = (
            self._connection()
            .execute(
                "SELECT idx, leaf_hash, entry, appended_at FROM leaves WHERE idx = ?", (index,)
            )
            .fetchone()
        )
        if row is None:
            raise NotFound(f"the transparency log has no entry {index}")
        return LogLeaf(int(row[0]), bytes(row[1]), bytes(row[2]), _dt(row[3]))

    def indexes_of(self, code: str) -> list[int]:
        """Indexes of the entries about the copy with this canonical code, oldest first."""
        rows = self._connection().execute(
            "SELECT idx FROM leaves WHERE code = ? ORDER BY idx", (code,)
        )
        return [int(r[0]) for r in rows]

    def inclusion_proof(self, index: int, size: int | None = None) -> list[bytes]:
        """The RFC 9162 audit path of leaf ``index`` in the tree of ``size`` leaves."""
        with self._transaction(write=False) as db:
            if size is None:
                size = self._size(db)
            self._check_size(db, size)
            if not 0 <= index < size:
                raise InvalidInput(
                    f"leaf index {index} is outside a tree of size {size}", field="index"
                )
            return inclusion_path(index, size, self._subtree(db))

    def consistency_proof(self, old_size: int, new_size: int) -> list[bytes]:
        """The RFC 9162 proof that the tree of ``new_size`` leaves extends that of
        ``old_size`` (1 <= old_size <= new_size <= size)."""
        with self._transaction(write=False) as db:
            self._check_size(db, new_size)
            if not 0 < old_size <= new_size:
                raise InvalidInput(
                    f"a consistency proof needs 1 <= old_size <= new_size, got {old_size} and "
                    f"{new_size}",
                    field="old_size",
                )
            return consistency_path(old_size, new_size, self._subtree(db))

    # -- checkpoints ---------------------------------------------------------------------------

    @_busy_to_unavailable
    def checkpoint(self, signer: CheckpointSigner) -> str:
        """Sign and store a checkpoint of the whole tree as it is now; the note."""
        at = self._now().replace(microsecond=0)
        with self._append_lock, self._transaction(write=True) as db:
            size = self._size(db)
            root = EMPTY_ROOT if size == 0 else self._subtree(db)(0, size)
            note = signer.sign(size, root, at)
            db.execute(
                "INSERT INTO checkpoints (size, root, created_at, note) VALUES (?, ?, ?, ?)",
                (size, root, _ts(at), note),
            )
        return note

    def latest_checkpoint(self) -> CheckpointRecord | None:
        row = (
            self._connection()
            .execute(
                "SELECT id, size, root, created_at, note FROM checkpoints ORDER BY id DESC LIMIT 1"
            )
            .fetchone()
        )
        return None if row is None else _checkpoint_record(row)

    def checkpoints(self) -> list[CheckpointRecord]:
        """Every stored checkpoint, oldest first."""
        rows = self._connection().execute(
            "SELECT id, size, root, created_at, note FROM checkpoints ORDER BY id"
        )
        return [_checkpoint_record(r) for r in rows]

    def hashes(self, level: int, start: int, end: int) -> list[bytes]:
        args: tuple[int, ...] = ()
        if level == 0:
            sql = "SELECT idx, leaf_hash FROM leaves WHERE idx >= ? AND idx < ?"
        else:
            sql = "SELECT idx, hash FROM nodes WHERE level = ? AND idx >= ? AND idx < ?"
            args = (level,)
        rows = self._connection().execute(sql + " ORDER BY idx", (*args, start, end))
        return contiguous(start, rows)

    def entries(self, start: int, end: int) -> list[bytes]:
        rows = self._connection().execute(
            "SELECT idx, entry FROM leaves WHERE idx >= ? AND idx < ? ORDER BY idx", (start, end)
        )
        return contiguous(start, rows)


def contiguous(start: int, rows: Iterable[tuple[int, bytes]]) -> list[bytes]:
    """The values of ``(index, value)`` rows in index order from ``start`` up to a gap."""
    out: list[bytes] = []
    for index, value in rows:
        if int(index) != start + len(out):
            break
        out.append(bytes(value))
    return out


def _checkpoint_record(row: tuple[int, int, bytes, str, str]) -> CheckpointRecord:
    return CheckpointRecord(int(row[0]), int(row[1]), bytes(row[2]), _dt(row[3]), str(row[4]))
