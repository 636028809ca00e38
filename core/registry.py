"""The registry of dossiers, their pages, issued copies and audit events.

:class:`Registry` is the interface; :class:`SqliteRegistry` is the embedded default (one SQLite
file in WAL mode). A PostgreSQL backend belongs behind the same interface and must pass the same
tests. Rows point at blobs by their SHA-256; :func:`store_dossier` is the one atomic step that
writes both, and :func:`sweep_orphans` cleans up after a process killed half way through it.

Timestamps are stored as UTC ISO 8601 text with microseconds (fixed width, so they sort) and
come back as aware datetimes in UTC. Naive datetimes are refused.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import sqlite3
import threading
from abc import ABC, abstractmethod
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import wraps
from pathlib import Path
from types import TracebackType
from typing import Any, Final, ParamSpec, TypeVar

from saoy.core import codes
from saoy.core.blobs import BlobStore, key_of
from saoy.core.errors import NotFound, SaoyError, Unavailable
from saoy.core.model import CheckResult, Outcome
from saoy.core.sqlite import SqliteConnections

log = logging.getLogger("saoy.registry")

P = ParamSpec("P")
T = TypeVar("T")

DOSSIER_STATES: Final = ("ISSUED", "NEEDS_REVIEW", "REJECTED", "REVOKED")
"""States of a decided dossier, the only ones the registry holds."""


@dataclass(frozen=True)
class DossierRecord:
    """A decided dossier: who sent it, what was decided, and every check behind the decision."""

    id: str  # uuid4 hex
    request_id: str
    kiosk_id: str
    state: str  # one of DOSSIER_STATES
    created_at: datetime
    decided_at: datetime
    page_count: int
    reasons: tuple[str, ...]
    checks: tuple[CheckResult, ...]
    identity_evidence: Mapping[str, Any] | None = None
    """How the citizen was authenticated (face match score, liveness check, time; see
    :meth:`saoy.core.sessions.Identity.evidence`); never an image, an embedding or an ID number.
    None when the server ran without identity checks."""


@dataclass(frozen=True)
class PageRecord:
    """One page of a dossier; ``blob_key`` is the SHA-256 of the page file as received.
    ``document_type`` and ``fields`` ((name, value, confidence 0-1), in reading order) are
    what document analysis recognized on it: personal data, kept here and nowhere else."""

    dossier_id: str
    index: int
    blob_key: str
    format: str
    width: int
    height: int
    text: str
    mean_confidence: float
    document_type: str = "generic"
    fields: tuple[tuple[str, str, float], ...] = ()


@dataclass(frozen=True)
class CopyRecord:
    """An issued copy; ``blob_key`` is the SHA-256 of the signed PDF."""

    code: str  # canonical grouped form
    dossier_id: str
    blob_key: str
    size_bytes: int
    issuer: str
    issued_at: datetime
    pages: int
    revoked_at: datetime | None
    revoke_reason: str | None


@dataclass(frozen=True)
class EventRecord:
    """One audit event of a dossier. ``detail`` never carries personal data."""

    dossier_id: str
    at: datetime
    kind: str
    detail: Mapping[str, Any]


class DuplicateRequest(SaoyError):
    """A decision is already recorded for this (kiosk, request_id): replay it instead."""

    status = "ALREADY_EXISTS"
    reason = "DUPLICATE_REQUEST"

    def __init__(self, kiosk_id: str, request_id: str) -> None:
        super().__init__(
            f"request {request_id!r} of kiosk {kiosk_id!r} was already decided",
            field="header.request_id",
        )
        self.kiosk_id = kiosk_id
        self.request_id = request_id


class Registry(ABC):
    """Where decided dossiers, their pages, copies and audit events are kept."""

    @abstractmethod
    def record(
        self,
        dossier: DossierRecord,
        pages: Sequence[PageRecord],
        copy: CopyRecord | None,
        event_kind: str,
        event_detail: Mapping[str, Any],
    ) -> None:
        """Store a decided dossier with its pages, its copy and an audit event, all or nothing.

        Raises DuplicateRequest, leaving the registry unchanged, when (kiosk_id, request_id) is
        already recorded. Durable when it returns."""

    @abstractmethod
    def find_by_request(
        self, kiosk_id: str, request_id: str
    ) -> tuple[DossierRecord, CopyRecord | None] | None:
        """The dossier recorded for a request, with its copy, if any."""

    @abstractmethod
    def get_dossier(self, dossier_id: str) -> DossierRecord | None: ...

    @abstractmethod
    def get_copy(self, code: str) -> CopyRecord | None:
        """The copy under a canonical code (see :func:`saoy.core.codes.normalize`)."""

    @abstractmethod
    def copies(self) -> Iterator[CopyRecord]:
        """Every copy, in issue order."""

    @abstractmethod
    def pages(self, dossier_id: str) -> list[PageRecord]:
        """The pages of a dossier in index order."""

    @abstractmethod
    def events(self, dossier_id: str) -> list[EventRecord]:
        """The audit events of a dossier, oldest first."""

    @abstractmethod
    def revoke(self, code: str, reason: str, *, at: datetime | None = None) -> CopyRecord:
        """Revoke an issued copy (its dossier becomes REVOKED) and log it; NotFound for an
        unknown code. Revoking a revoked copy changes nothing and returns it as it is."""

    @abstractmethod
    def referenced_blob_keys(self) -> set[str]:
        """Every blob key some row points at."""

    @abstractmethod
    def referenced(self, keys: Iterable[str]) -> set[str]:
        """Those of ``keys`` that some row points at."""

    @abstractmethod
    def counts(self) -> dict[str, int]:
        """Number of dossiers in each of DOSSIER_STATES, and of copies under ``"copies"``."""

    @abstractmethod
    def close(self) -> None: ...

    def __enter__(self) -> Registry:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


def validate_records(
    dossier: DossierRecord, pages: Sequence[PageRecord], copy: CopyRecord | None
) -> None:
    """Refuse records that contradict each other (a programming error, hence ValueError)."""
    if dossier.state not in DOSSIER_STATES:
        raise ValueError(f"unknown dossier state {dossier.state!r}")
    if any(p.dossier_id != dossier.id for p in pages):
        raise ValueError("every page must belong to the dossier being recorded")
    if len({p.index for p in pages}) != len(pages):
        raise ValueError("page indexes must be distinct")
    if copy is not None:
        if copy.dossier_id != dossier.id:
            raise ValueError("the copy must belong to the dossier being recorded")
        if dossier.state not in ("ISSUED", "REVOKED"):
            raise ValueError(f"a {dossier.state} dossier has no copy")
        if not codes.is_canonical(copy.code):
            raise ValueError(f"copy code {copy.code!r} is not in canonical form")
    elif dossier.state in ("ISSUED", "REVOKED"):
        raise ValueError(f"an {dossier.state} dossier needs its copy")


def _ts(value: datetime) -> str:
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError("timestamps must be timezone-aware")
    return value.astimezone(UTC).isoformat(timespec="microseconds")


def _dt(text: str) -> datetime:
    return datetime.fromisoformat(text).astimezone(UTC)


def _opt_ts(value: datetime | None) -> str | None:
    return None if value is None else _ts(value)


def _opt_dt(text: str | None) -> datetime | None:
    return None if text is None else _dt(text)


def _checks_json(checks: Sequence[CheckResult]) -> str:
    return json.dumps(
        [[c.name, Outcome(c.outcome).value, c.reason] for c in checks], ensure_ascii=False
    )


def _checks_of(text: str) -> tuple[CheckResult, ...]:
    return tuple(
        CheckResult(name, Outcome(outcome), reason) for name, outcome, reason in json.loads(text)
    )


def _fields_json(fields: Sequence[tuple[str, str, float]]) -> str:
    return json.dumps([[n, v, float(c)] for n, v, c in fields], ensure_ascii=False)


def _fields_of(text: str) -> tuple[tuple[str, str, float], ...]:
    return tuple((name, value, float(conf)) for name, value, conf in json.loads(text))


def _evidence_json(evidence: Mapping[str, Any] | None) -> str | None:
    return None if evidence is None else json.dumps(dict(evidence), sort_keys=True)


def _now() -> datetime:
    return datetime.now(UTC)


# Each migration is a list of statements, applied in one transaction; never edit a released one,
# append a new one.
_MIGRATIONS: Final[tuple[tuple[str, ...], ...]] = (
    (
        """CREATE TABLE IF NOT EXISTS dossiers (
            id TEXT PRIMARY KEY,
            request_id TEXT NOT NULL,
            kiosk_id TEXT NOT NULL,
            state TEXT NOT NULL
                CHECK (state IN ('ISSUED', 'NEEDS_REVIEW', 'REJECTED', 'REVOKED')),
            created_at TEXT NOT NULL,
            decided_at TEXT NOT NULL,
            page_count INTEGER NOT NULL CHECK (page_count >= 0),
            reasons TEXT NOT NULL,
            checks TEXT NOT NULL,
            UNIQUE (kiosk_id, request_id)
        )""",
        """CREATE TABLE IF NOT EXISTS pages (
            dossier_id TEXT NOT NULL REFERENCES dossiers (id),
            idx INTEGER NOT NULL,
            blob_key TEXT NOT NULL CHECK (length(blob_key) = 64),
            format TEXT NOT NULL,
            width INTEGER NOT NULL,
            height INTEGER NOT NULL,
            text TEXT NOT NULL,
            mean_confidence REAL NOT NULL,
            PRIMARY KEY (dossier_id, idx)
        )""",
        """CREATE TABLE IF NOT EXISTS copies (
            code TEXT PRIMARY KEY,
            dossier_id TEXT NOT NULL UNIQUE REFERENCES dossiers (id),
            blob_key TEXT NOT NULL CHECK (length(blob_key) = 64),
            size_bytes INTEGER NOT NULL,
            issuer TEXT NOT NULL,
            issued_at TEXT NOT NULL,
            pages INTEGER NOT NULL,
            revoked_at TEXT,
            revoke_reason TEXT
        )""",
        """CREATE TABLE IF NOT EXISTS events (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            dossier_id TEXT NOT NULL REFERENCES dossiers (id),
            at TEXT NOT NULL,
            kind TEXT NOT NULL,
            detail TEXT NOT NULL
        )""",
        "CREATE INDEX IF NOT EXISTS pages_blob_key ON pages (blob_key)",
        "CREATE INDEX IF NOT EXISTS copies_blob_key ON copies (blob_key)",
        "CREATE INDEX IF NOT EXISTS events_dossier ON events (dossier_id, id)",
    ),
    ("ALTER TABLE dossiers ADD COLUMN identity_evidence TEXT",),  # JSON object, or NULL
    (
        "ALTER TABLE pages ADD COLUMN document_type TEXT NOT NULL DEFAULT 'generic'",
        "ALTER TABLE pages ADD COLUMN fields TEXT NOT NULL DEFAULT '[]'",  # [[name, value, conf]]
    ),
)
SCHEMA_VERSION: Final = len(_MIGRATIONS)

_BATCH = 500  # keys per IN (...) query, well under SQLite's parameter limit


def _busy_to_unavailable(method: Callable[P, T]) -> Callable[P, T]:
    """A lock held past the busy timeout is transient: report it as Unavailable, retryable."""

    @wraps(method)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> T:
        try:
            return method(*args, **kwargs)
        except sqlite3.OperationalError as error:
            text = str(error)
            if "locked" in text or "busy" in text:
                raise Unavailable(
                    "the registry is busy; retry with the same request_id", retry_after=1.0
                ) from error
            raise

    return wrapper


class SqliteRegistry(Registry):
    """The registry in one SQLite file: WAL, foreign keys on, synchronous=FULL so that what
    :meth:`record` acknowledged survives a crash, one connection per calling thread."""

    def __init__(self, path: Path, *, busy_timeout: float = 10.0) -> None:
        self.path = Path(path)
        self.busy_timeout = busy_timeout
        self._db = SqliteConnections(
            self.path, busy_timeout=busy_timeout, what="the registry", pragmas=["foreign_keys = ON"]
        )
        self._connection = self._db.connection
        self._transaction = self._db.transaction
        self._migrate()

    def _migrate(self) -> None:
        self._db.enable_wal()
        with self._transaction(write=True) as db:
            db.execute(
                "CREATE TABLE IF NOT EXISTS schema_version ("
                "version INTEGER PRIMARY KEY, applied_at TEXT NOT NULL)"
            )
            current = db.execute("SELECT max(version) FROM schema_version").fetchone()[0] or 0
            if current > SCHEMA_VERSION:
                raise RuntimeError(
                    f"{self.path} has schema version {current}; "
                    f"this version of saoy knows up to {SCHEMA_VERSION}"
                )
            for version in range(current + 1, SCHEMA_VERSION + 1):
                for statement in _MIGRATIONS[version - 1]:
                    db.execute(statement)
                db.execute(
                    "INSERT INTO schema_version (version, applied_at) VALUES (?, ?)",
                    (version, _ts(_now())),
                )
                log.info("registry %s migrated to schema version %d", self.path, version)

    def close(self) -> None:
        self._db.close()

    # -- writes ---------------------------------------------------------------------------------

    @_busy_to_unavailable
    def record(
        self,
        dossier: DossierRecord,
        pages: Sequence[PageRecord],
        copy: CopyRecord | None,
        event_kind: str,
        event_detail: Mapping[str, Any],
    ) -> None:
        validate_records(dossier, pages, copy)
        detail = json.dumps(dict(event_detail), ensure_ascii=False, sort_keys=True)
        try:
            with self._transaction(write=True) as db:
                self._insert(db, dossier, pages, copy, event_kind, detail)
        except sqlite3.IntegrityError as error:
            if "dossiers.kiosk_id" in str(error):
                raise DuplicateRequest(dossier.kiosk_id, dossier.request_id) from error
            raise

    def _insert(
        self,
        db: sqlite3.Connection,
        dossier: DossierRecord,
        pages: Sequence[PageRecord],
        copy: CopyRecord | None,
        event_kind: str,
        detail: str,
    ) -> None:
        """The statements of :meth:`record`, inside its transaction."""
        exists = db.execute(
            "SELECT 1 FROM dossiers WHERE kiosk_id = ? AND request_id = ?",
            (dossier.kiosk_id, dossier.request_id),
        ).fetchone()
        if exists:
            raise DuplicateRequest(dossier.kiosk_id, dossier.request_id)
        db.execute(
            "INSERT INTO dossiers (id, request_id, kiosk_id, state, created_at, decided_at,"
            " page_count, reasons, checks, identity_evidence)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                dossier.id,
                dossier.request_id,
                dossier.kiosk_id,
                dossier.state,
                _ts(dossier.created_at),
                _ts(dossier.decided_at),
                dossier.page_count,
                json.dumps(list(dossier.reasons), ensure_ascii=False),
                _checks_json(dossier.checks),
                _evidence_json(dossier.identity_evidence),
            ),
        )
        db.executemany(
            "INSERT INTO pages (dossier_id, idx, blob_key, format, width, height, text,"
            " mean_confidence, document_type, fields) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            [
                (
                    p.dossier_id,
                    p.index,
                    p.blob_key,
                    p.format,
                    p.width,
                    p.height,
                    p.text,
                    float(p.mean_confidence),
                    p.document_type,
                    _fields_json(p.fields),
                )
                for p in pages
            ],
        )
        if copy is not None:
            db.execute(
                "INSERT INTO copies (code, dossier_id, blob_key, size_bytes, issuer, issued_at,"
                " pages, revoked_at, revoke_reason) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    copy.code,
                    copy.dossier_id,
                    copy.blob_key,
                    copy.size_bytes,
                    copy.issuer,
                    _ts(copy.issued_at),
                    copy.pages,
                    _opt_ts(copy.revoked_at),
                    copy.revoke_reason,
                ),
            )
        self._event(db, dossier.id, event_kind, detail)

    @staticmethod
    def _event(db: sqlite3.Connection, dossier_id: str, kind: str, detail: str) -> None:
        db.execute(
            "INSERT INTO events (dossier_id, at, kind, detail) VALUES (?, ?, ?, ?)",
            (dossier_id, _ts(_now()), kind, detail),
        )

    @_busy_to_unavailable
    def revoke(self, code: str, reason: str, *, at: datetime | None = None) -> CopyRecord:
        when = at or _now()
        with self._transaction(write=True) as db:
            row = db.execute(_COPY_SELECT + " WHERE code = ?", (code,)).fetchone()
            if row is None:
                raise NotFound(f"No copy is registered under code {code}", field="code")
            copy = _copy_of(row)
            if copy.revoked_at is not None:
                return copy
            copy = dataclasses.replace(copy, revoked_at=when, revoke_reason=reason)
            db.execute(
                "UPDATE copies SET revoked_at = ?, revoke_reason = ? WHERE code = ?",
                (_ts(when), reason, code),
            )
            db.execute("UPDATE dossiers SET state = 'REVOKED' WHERE id = ?", (copy.dossier_id,))
            detail = json.dumps({"code": code, "reason": reason}, ensure_ascii=False)
            self._event(db, copy.dossier_id, "revoked", detail)
        return dataclasses.replace(copy, revoked_at=_dt(_ts(when)))

    # -- reads ----------------------------------------------------------------------------------

    @_busy_to_unavailable
    def find_by_request(
        self, kiosk_id: str, request_id: str
    ) -> tuple[DossierRecord, CopyRecord | None] | None:
        with self._transaction(write=False) as db:
            row = db.execute(
                _DOSSIER_SELECT + " WHERE kiosk_id = ? AND request_id = ?",
                (kiosk_id, request_id),
            ).fetchone()
            if row is None:
                return None
            dossier = _dossier_of(row)
            copy_row = db.execute(_COPY_SELECT + " WHERE dossier_id = ?", (dossier.id,)).fetchone()
        return dossier, None if copy_row is None else _copy_of(copy_row)

    @_busy_to_unavailable
    def get_dossier(self, dossier_id: str) -> DossierRecord | None:
        row = (
            self._connection().execute(_DOSSIER_SELECT + " WHERE id = ?", (dossier_id,)).fetchone()
        )
        return None if row is None else _dossier_of(row)

    @_busy_to_unavailable
    def get_copy(self, code: str) -> CopyRecord | None:
        row = self._connection().execute(_COPY_SELECT + " WHERE code = ?", (code,)).fetchone()
        return None if row is None else _copy_of(row)

    def copies(self) -> Iterator[CopyRecord]:
        rows = self._connection().execute(_COPY_SELECT + " ORDER BY issued_at, code").fetchall()
        return (_copy_of(row) for row in rows)

    @_busy_to_unavailable
    def pages(self, dossier_id: str) -> list[PageRecord]:
        rows = (
            self._connection()
            .execute(
                "SELECT dossier_id, idx, blob_key, format, width, height, text, mean_confidence,"
                " document_type, fields FROM pages WHERE dossier_id = ? ORDER BY idx",
                (dossier_id,),
            )
            .fetchall()
        )
        return [_page_of(row) for row in rows]

    @_busy_to_unavailable
    def events(self, dossier_id: str) -> list[EventRecord]:
        rows = (
            self._connection()
            .execute(
                "SELECT dossier_id, at, kind, detail FROM events WHERE dossier_id = ? ORDER BY id",
                (dossier_id,),
            )
            .fetchall()
        )
        return [EventRecord(d, _dt(at), kind, json.loads(detail)) for d, at, kind, detail in rows]

    @_busy_to_unavailable
    def referenced_blob_keys(self) -> set[str]:
        rows = (
            self._connection()
            .execute("SELECT blob_key FROM pages UNION SELECT blob_key FROM copies")
            .fetchall()
        )
        return {key for (key,) in rows}

    @_busy_to_unavailable
    def referenced(self, keys: Iterable[str]) -> set[str]:
        wanted = sorted(set(keys))
        found: set[str] = set()
        conn = self._connection()
        for start in range(0, len(wanted), _BATCH):
            batch = wanted[start : start + _BATCH]
            marks = ", ".join("?" * len(batch))
            rows = conn.execute(
                f"SELECT blob_key FROM pages WHERE blob_key IN ({marks})"
                f" UNION SELECT blob_key FROM copies WHERE blob_key IN ({marks})",
                batch + batch,
            ).fetchall()
            found.update(key for (key,) in rows)
        return found

    @_busy_to_unavailable
    def counts(self) -> dict[str, int]:
        with self._transaction(write=False) as db:
            result = dict.fromkeys(DOSSIER_STATES, 0)
            for state, n in db.execute("SELECT state, count(*) FROM dossiers GROUP BY state"):
                result[state] = n
            result["copies"] = db.execute("SELECT count(*) FROM copies").fetchone()[0]
        return result


_DOSSIER_SELECT: Final = (
    "SELECT id, request_id, kiosk_id, state, created_at, decided_at, page_count, reasons, checks,"
    " identity_evidence FROM dossiers"
)
_COPY_SELECT: Final = (
    "SELECT code, dossier_id, blob_key, size_bytes, issuer, issued_at, pages, revoked_at,"
    " revoke_reason FROM copies"
)


def _dossier_of(row: tuple[Any, ...]) -> DossierRecord:
    id_, request_id, kiosk_id, state, created, decided, page_count, reasons, checks, evidence = row
    return DossierRecord(
        id=id_,
        request_id=request_id,
        kiosk_id=kiosk_id,
        state=state,
        created_at=_dt(created),
        decided_at=_dt(decided),
        page_count=page_count,
        reasons=tuple(json.loads(reasons)),
        checks=_checks_of(checks),
        identity_evidence=None if evidence is None else json.loads(evidence),
    )


def _page_of(row: tuple[Any, ...]) -> PageRecord:
    dossier_id, idx, blob_key, fmt, width, height, text, conf, document_type, fields = row
    return PageRecord(
        dossier_id=dossier_id,
        index=idx,
        blob_key=blob_key,
        format=fmt,
        width=width,
        height=height,
        text=text,
        mean_confidence=conf,
        document_type=document_type,
        fields=_fields_of(fields),
    )


def _copy_of(row: tuple[Any, ...]) -> CopyRecord:
    code, dossier_id, blob_key, size, issuer, issued, pages, revoked, revoke_reason = row
    return CopyRecord(
        code=code,
        dossier_id=dossier_id,
        blob_key=blob_key,
        size_bytes=size,
        issuer=issuer,
        issued_at=_dt(issued),
        pages=pages,
        revoked_at=_opt_dt(revoked),
        revoke_reason=revoke_reason,
    )


# -- rows and blobs together -------------------------------------------------------------------

# Blob keys that a store in this process is writing and has not yet committed (or given up).
# A failed store deletes a blob it created only when no other store holds it here and no row
# references it; both checks and the delete happen under the lock, so a concurrent store of the
# same bytes either pins first (and the blob stays) or puts afterwards (and writes it again).
# Other processes are kept safe by the age threshold of sweep_orphans.
_pins: Counter[str] = Counter()
_pins_lock = threading.Lock()


def _pin(keys: Iterable[str]) -> None:
    with _pins_lock:
        _pins.update(keys)


def _unpin_locked(keys: Iterable[str]) -> None:
    _pins.subtract(keys)
    for key in [k for k, n in _pins.items() if n <= 0]:
        del _pins[key]


def store_dossier(
    registry: Registry,
    blobs: BlobStore,
    *,
    page_files: Sequence[bytes],
    pdf: bytes | None,
    dossier: DossierRecord,
    pages: Sequence[PageRecord],
    copy: CopyRecord | None,
    event_kind: str,
    event_detail: Mapping[str, Any],
) -> None:
    """Store a decided dossier's blobs and rows as one step: blobs first, then the registry
    transaction. If the transaction fails, the blobs this call created and nothing references
    are deleted and the error is re-raised: no row is left without its blob, and no orphan
    blob is left behind. DuplicateRequest passes through, for the caller to replay."""
    validate_records(dossier, pages, copy)
    if (pdf is None) != (copy is None):
        raise ValueError("a copy record and its PDF go together")
    files = [*page_files, *([pdf] if pdf is not None else [])]
    keys = [key_of(data) for data in files]
    page_keys = set(keys[: len(page_files)])
    if {p.blob_key for p in pages} != page_keys:
        raise ValueError("the page records and the page files name different blobs")
    if (
        copy is not None
        and pdf is not None
        and (copy.blob_key != keys[-1] or copy.size_bytes != len(pdf))
    ):
        raise ValueError("the copy record does not describe the PDF being stored")

    _pin(keys)
    created: list[str] = []
    stored = False
    try:
        for data in files:
            key, new = blobs.put(data)
            if new:
                created.append(key)
        registry.record(dossier, pages, copy, event_kind, event_detail)
        stored = True
    finally:
        with _pins_lock:
            _unpin_locked(keys)
            if not stored and created:
                _discard_unreferenced(registry, blobs, created)


def _discard_unreferenced(registry: Registry, blobs: BlobStore, keys: Sequence[str]) -> None:
    """Delete those of ``keys`` that no store holds and no row references; called with the pin
    lock held. A failure here is logged, not raised: the caller's error is the one that matters,
    and sweep_orphans collects what is left."""
    try:
        free = {k for k in keys if _pins[k] == 0}
        for key in free - registry.referenced(free):
            blobs.delete(key)
    except Exception:
        log.exception("could not remove the blobs of a failed store; the next sweep will")


def sweep_orphans(registry: Registry, blobs: BlobStore, older_than: timedelta) -> int:
    """Remove blobs that no row references and that were last written more than
    ``older_than`` ago (left by a process killed between blob write and commit), and partial
    writes as old; how many files were removed. Younger blobs are left alone: a store in flight
    in another process may be about to register them."""
    removed = blobs.discard_partial(older_than)
    cutoff = _now() - older_than
    batch: list[str] = []

    def flush() -> int:
        count = 0
        with _pins_lock:
            unpinned = [k for k in batch if _pins[k] == 0]
            for key in set(unpinned) - registry.referenced(unpinned):
                try:
                    if blobs.modified_at(key) >= cutoff:
                        continue  # re-put since it was listed
                except NotFound:
                    continue
                if blobs.delete(key):
                    count += 1
        batch.clear()
        return count

    listing = blobs.keys()  # a generator over the store, not a dict
    for key in listing:
        try:
            if blobs.modified_at(key) >= cutoff:
                continue
        except NotFound:
            continue
        batch.append(key)
        if len(batch) >= _BATCH:
            removed += flush()
    removed += flush()
    if removed:
        log.info("swept %d orphan blob file(s)", removed)
    return removed


__all__ = [
    "DOSSIER_STATES",
    "SCHEMA_VERSION",
    "CopyRecord",
    "DossierRecord",
    "DuplicateRequest",
    "EventRecord",
    "PageRecord",
    "Registry",
    "SqliteRegistry",
    "store_dossier",
    "sweep_orphans",
    "validate_records",
]
