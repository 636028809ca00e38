"""The registry of dossiers, their pages, issued copies and audit events.

:class:`Registry` is the interface. :class:`SqlRegistry` holds what every SQL backend shares
(statements, record/row conversions, migrations, error mapping); :class:`SqliteRegistry` is the
embedded default (one SQLite file in WAL mode) and
:class:`~saoy.core.storage.registry_pg.PostgresRegistry` the server database, both passing the same
tests; :func:`saoy.core.storage.registries.create_registry` picks one from a path or URL. Rows point
at blobs by their SHA-256; :func:`store_dossier` is the one atomic step that writes both, and
:func:`sweep_orphans` cleans up after a process killed half way through it.

Timestamps come back as aware datetimes in UTC; naive datetimes are refused. SQLite stores them
as UTC ISO 8601 text with microseconds (fixed width, so they sort), PostgreSQL as timestamptz.
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
from contextlib import AbstractContextManager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import wraps
from pathlib import Path
from types import TracebackType
from typing import Any, ClassVar, Concatenate, Final, ParamSpec, Protocol, TypeVar

from saoy.core.errors import NotFound, SaoyError, Unavailable
from saoy.core.model import CheckResult, Outcome
from saoy.core.reception import codes
from saoy.core.storage.blobs import BlobStore, key_of
from saoy.core.storage.sqlite import SqliteConnections

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
    :meth:`saoy.core.identity.sessions.Identity.evidence`); never an image, an embedding or an
    ID number. None when the server ran without identity checks."""


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
        """The copy under a canonical code (see :func:`saoy.core.reception.codes.normalize`)."""

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
    def decided_before(self, cutoff: datetime, *, without_event: str, limit: int) -> list[str]:
        """Ids of up to ``limit`` dossiers in a final state (ISSUED, REJECTED, REVOKED) decided
        before ``cutoff`` and without an event of kind ``without_event``, oldest first."""

    @abstractmethod
    def erase_personal_data(
        self, dossier_id: str, event_kind: str, detail: Mapping[str, Any]
    ) -> list[str]:
        """Erase the recognized fields and OCR text of a dossier's pages and record the event,
        in one transaction; the page blob keys that no other dossier not yet erased shows."""

    @abstractmethod
    def mark(self, dossier_id: str, event_kind: str, detail: Mapping[str, Any]) -> None:
        """Record an audit event of a dossier."""

    @abstractmethod
    def copy_of(self, dossier_id: str) -> CopyRecord | None:
        """The copy issued for a dossier, if any."""

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


def as_utc(value: datetime) -> datetime:
    """An aware datetime in UTC; naive datetimes are refused."""
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError("timestamps must be timezone-aware")
    return value.astimezone(UTC)


def _ts(value: datetime) -> str:
    return as_utc(value).isoformat(timespec="microseconds")


def _dt(text: str) -> datetime:
    return datetime.fromisoformat(text).astimezone(UTC)


def _json_text(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, sort_keys=True)


def _now() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True)
class Codec:
    """How a backend stores the values SQL databases disagree on: timestamps and JSON."""

    to_ts: Callable[[datetime], Any]
    """An aware datetime as a column value; ValueError for a naive one."""
    from_ts: Callable[[Any], datetime]
    """A column value as an aware datetime in UTC."""
    to_json: Callable[[Any], Any]
    """A JSON-able value (lists, dicts, strings, numbers) as a column value."""
    from_json: Callable[[Any], Any]
    """A column value as the JSON value it holds."""


SQLITE_CODEC: Final = Codec(to_ts=_ts, from_ts=_dt, to_json=_json_text, from_json=json.loads)
"""UTC ISO 8601 text with microseconds (fixed width, so it sorts) and JSON text."""


# -- records and rows ---------------------------------------------------------------------------
# The column lists, the statements and the conversions below serve every SQL backend; they use
# ``?`` placeholders (see SqlRegistry).

_DOSSIER_COLUMNS: Final = (
    "id, request_id, kiosk_id, state, created_at, decided_at, page_count, reasons, checks,"
    " identity_evidence"
)
_PAGE_COLUMNS: Final = (
    "dossier_id, idx, blob_key, format, width, height, text, mean_confidence, document_type, fields"
)
_COPY_COLUMNS: Final = (
    "code, dossier_id, blob_key, size_bytes, issuer, issued_at, pages, revoked_at, revoke_reason"
)
_DOSSIER_SELECT: Final = f"SELECT {_DOSSIER_COLUMNS} FROM dossiers"
_PAGE_SELECT: Final = f"SELECT {_PAGE_COLUMNS} FROM pages"
_COPY_SELECT: Final = f"SELECT {_COPY_COLUMNS} FROM copies"


def _insert_sql(table: str, columns: str) -> str:
    marks = ", ".join("?" * len(columns.split(",")))
    return f"INSERT INTO {table} ({columns}) VALUES ({marks})"


def _dossier_row(dossier: DossierRecord, codec: Codec) -> tuple[Any, ...]:
    evidence = dossier.identity_evidence
    return (
        dossier.id,
        dossier.request_id,
        dossier.kiosk_id,
        dossier.state,
        codec.to_ts(dossier.created_at),
        codec.to_ts(dossier.decided_at),
        dossier.page_count,
        codec.to_json(list(dossier.reasons)),
        codec.to_json([[c.name, Outcome(c.outcome).value, c.reason] for c in dossier.checks]),
        None if evidence is None else codec.to_json(dict(evidence)),
    )


def _dossier_of(row: Sequence[Any], codec: Codec) -> DossierRecord:
    id_, request_id, kiosk_id, state, created, decided, page_count, reasons, checks, evidence = row
    return DossierRecord(
        id=id_,
        request_id=request_id,
        kiosk_id=kiosk_id,
        state=state,
        created_at=codec.from_ts(created),
        decided_at=codec.from_ts(decided),
        page_count=page_count,
        reasons=tuple(codec.from_json(reasons)),
        checks=tuple(
            CheckResult(name, Outcome(outcome), reason)
            for name, outcome, reason in codec.from_json(checks)
        ),
        identity_evidence=None if evidence is None else codec.from_json(evidence),
    )


def _page_row(page: PageRecord, codec: Codec) -> tuple[Any, ...]:
    return (
        page.dossier_id,
        page.index,
        page.blob_key,
        page.format,
        page.width,
        page.height,
        page.text,
        float(page.mean_confidence),
        page.document_type,
        codec.to_json([[n, v, float(c)] for n, v, c in page.fields]),
    )


def _page_of(row: Sequence[Any], codec: Codec) -> PageRecord:
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
        fields=tuple((name, value, float(c)) for name, value, c in codec.from_json(fields)),
    )


def _copy_row(copy: CopyRecord, codec: Codec) -> tuple[Any, ...]:
    return (
        copy.code,
        copy.dossier_id,
        copy.blob_key,
        copy.size_bytes,
        copy.issuer,
        codec.to_ts(copy.issued_at),
        copy.pages,
        None if copy.revoked_at is None else codec.to_ts(copy.revoked_at),
        copy.revoke_reason,
    )


def _copy_of(row: Sequence[Any], codec: Codec) -> CopyRecord:
    code, dossier_id, blob_key, size, issuer, issued, pages, revoked, revoke_reason = row
    return CopyRecord(
        code=code,
        dossier_id=dossier_id,
        blob_key=blob_key,
        size_bytes=size,
        issuer=issuer,
        issued_at=codec.from_ts(issued),
        pages=pages,
        revoked_at=None if revoked is None else codec.from_ts(revoked),
        revoke_reason=revoke_reason,
    )


# Each migration is a list of statements, applied in one transaction; never edit a released one,
# append a new one. Column types in braces are the backend's (SqlRegistry.column_types), so a
# schema version means the same tables and columns on every backend.
_MIGRATIONS: Final[tuple[tuple[str, ...], ...]] = (
    (
        """CREATE TABLE IF NOT EXISTS dossiers (
            id TEXT PRIMARY KEY,
            request_id TEXT NOT NULL,
            kiosk_id TEXT NOT NULL,
            state TEXT NOT NULL
                CHECK (state IN ('ISSUED', 'NEEDS_REVIEW', 'REJECTED', 'REVOKED')),
            created_at {timestamp} NOT NULL,
            decided_at {timestamp} NOT NULL,
            page_count INTEGER NOT NULL CHECK (page_count >= 0),
            reasons {json} NOT NULL,
            checks {json} NOT NULL,
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
            mean_confidence {float} NOT NULL,
            PRIMARY KEY (dossier_id, idx)
        )""",
        """CREATE TABLE IF NOT EXISTS copies (
            code TEXT PRIMARY KEY,
            dossier_id TEXT NOT NULL UNIQUE REFERENCES dossiers (id),
            blob_key TEXT NOT NULL CHECK (length(blob_key) = 64),
            size_bytes {bigint} NOT NULL,
            issuer TEXT NOT NULL,
            issued_at {timestamp} NOT NULL,
            pages INTEGER NOT NULL,
            revoked_at {timestamp},
            revoke_reason TEXT
        )""",
        """CREATE TABLE IF NOT EXISTS events (
            id {serial},
            dossier_id TEXT NOT NULL REFERENCES dossiers (id),
            at {timestamp} NOT NULL,
            kind TEXT NOT NULL,
            detail {json} NOT NULL
        )""",
        "CREATE INDEX IF NOT EXISTS pages_blob_key ON pages (blob_key)",
        "CREATE INDEX IF NOT EXISTS copies_blob_key ON copies (blob_key)",
        "CREATE INDEX IF NOT EXISTS events_dossier ON events (dossier_id, id)",
    ),
    ("ALTER TABLE dossiers ADD COLUMN identity_evidence {json}",),  # JSON object, or NULL
    (
        "ALTER TABLE pages ADD COLUMN document_type TEXT NOT NULL DEFAULT 'generic'",
        "ALTER TABLE pages ADD COLUMN fields {json} NOT NULL DEFAULT '[]'",  # [[name, value, conf]]
    ),
)
_SCHEMA_VERSION_TABLE: Final = (
    "CREATE TABLE IF NOT EXISTS schema_version ("
    "version INTEGER PRIMARY KEY, applied_at {timestamp} NOT NULL)"
)
SCHEMA_VERSION: Final = len(_MIGRATIONS)

_BATCH = 500  # keys per IN (...) query, well under SQLite's parameter limit


class Statements(Protocol):
    """What SqlRegistry needs of a connection: statements with ``?`` placeholders."""

    def execute(self, sql: str, parameters: Any = ..., /) -> Any: ...

    def executemany(self, sql: str, parameters: Any, /) -> Any: ...


R = TypeVar("R", bound="SqlRegistry")


def _transient_to_unavailable(
    method: Callable[Concatenate[R, P], T],
) -> Callable[Concatenate[R, P], T]:
    """An error the backend calls transient (a lock held too long, a lost connection) is
    reported as Unavailable: the caller may retry."""

    @wraps(method)
    def wrapper(self: R, *args: P.args, **kwargs: P.kwargs) -> T:
        try:
            return method(self, *args, **kwargs)
        except Exception as error:
            if self._is_transient(error):
                raise Unavailable(
                    "the registry is busy; retry with the same request_id", retry_after=1.0
                ) from error
            raise

    return wrapper


class SqlRegistry(Registry):
    """The registry over a SQL database. A backend supplies its transactions, its column types,
    a :class:`Codec`, and which of its errors mean a duplicate request or a transient failure;
    the schema, the statements and the conversions are shared."""

    codec: ClassVar[Codec]
    column_types: ClassVar[Mapping[str, str]]
    dialect: ClassVar[str]  # "sqlite" or "postgresql", for what SQL cannot say the same way
    """The types the migrations name in braces: timestamp, json, float, bigint, and serial (an
    auto-numbered primary key)."""
    for_update: ClassVar[str] = ""
    """Appended to the SELECT that reads the row a write transaction is about to change."""
    where: str
    """Names the database in messages and logs, without credentials."""

    @abstractmethod
    def _transaction(self, *, write: bool) -> AbstractContextManager[Statements]:
        """One transaction: committed when the block ends, rolled back when it raises. A read
        sees one snapshot."""

    @abstractmethod
    def _is_duplicate_request(self, error: Exception) -> bool:
        """Whether ``error`` is the unique (kiosk_id, request_id) of dossiers refusing a row."""

    @abstractmethod
    def _is_transient(self, error: Exception) -> bool:
        """Whether ``error`` may go away on retry (busy, unreachable)."""

    def _lock_schema(self, db: Statements) -> None:
        """Keep other processes from migrating at the same time, until the transaction ends."""

    def _migrate(self) -> None:
        with self._transaction(write=True) as db:
            self._lock_schema(db)
            db.execute(_SCHEMA_VERSION_TABLE.format_map(self.column_types))
            current = db.execute("SELECT max(version) FROM schema_version").fetchone()[0] or 0
            if current > SCHEMA_VERSION:
                raise RuntimeError(
                    f"{self.where} has schema version {current}; "
                    f"this version of saoy knows up to {SCHEMA_VERSION}"
                )
            for version in range(current + 1, SCHEMA_VERSION + 1):
                for statement in _MIGRATIONS[version - 1]:
                    db.execute(statement.format_map(self.column_types))
                db.execute(
                    "INSERT INTO schema_version (version, applied_at) VALUES (?, ?)",
                    (version, self.codec.to_ts(_now())),
                )
                log.info("registry %s migrated to schema version %d", self.where, version)

    # -- writes ---------------------------------------------------------------------------------

    @_transient_to_unavailable
    def record(
        self,
        dossier: DossierRecord,
        pages: Sequence[PageRecord],
        copy: CopyRecord | None,
        event_kind: str,
        event_detail: Mapping[str, Any],
    ) -> None:
        validate_records(dossier, pages, copy)
        detail = self.codec.to_json(dict(event_detail))
        try:
            with self._transaction(write=True) as db:
                self._insert(db, dossier, pages, copy, event_kind, detail)
        except Exception as error:
            if self._is_duplicate_request(error):
                raise DuplicateRequest(dossier.kiosk_id, dossier.request_id) from error
            raise

    def _insert(
        self,
        db: Statements,
        dossier: DossierRecord,
        pages: Sequence[PageRecord],
        copy: CopyRecord | None,
        event_kind: str,
        detail: Any,
    ) -> None:
        """The statements of :meth:`record`, inside its transaction."""
        exists = db.execute(
            "SELECT 1 FROM dossiers WHERE kiosk_id = ? AND request_id = ?",
            (dossier.kiosk_id, dossier.request_id),
        ).fetchone()
        if exists:
            raise DuplicateRequest(dossier.kiosk_id, dossier.request_id)
        db.execute(_insert_sql("dossiers", _DOSSIER_COLUMNS), _dossier_row(dossier, self.codec))
        db.executemany(
            _insert_sql("pages", _PAGE_COLUMNS), [_page_row(p, self.codec) for p in pages]
        )
        if copy is not None:
            db.execute(_insert_sql("copies", _COPY_COLUMNS), _copy_row(copy, self.codec))
        self._event(db, dossier.id, event_kind, detail)

    def _event(self, db: Statements, dossier_id: str, kind: str, detail: Any) -> None:
        db.execute(
            "INSERT INTO events (dossier_id, at, kind, detail) VALUES (?, ?, ?, ?)",
            (dossier_id, self.codec.to_ts(_now()), kind, detail),
        )

    @_transient_to_unavailable
    def revoke(self, code: str, reason: str, *, at: datetime | None = None) -> CopyRecord:
        when = as_utc(at or _now())
        with self._transaction(write=True) as db:
            row = db.execute(_COPY_SELECT + " WHERE code = ?" + self.for_update, (code,)).fetchone()
            if row is None:
                raise NotFound(f"No copy is registered under code {code}", field="code")
            copy = _copy_of(row, self.codec)
            if copy.revoked_at is not None:
                return copy
            copy = dataclasses.replace(copy, revoked_at=when, revoke_reason=reason)
            db.execute(
                "UPDATE copies SET revoked_at = ?, revoke_reason = ? WHERE code = ?",
                (self.codec.to_ts(when), reason, code),
            )
            db.execute("UPDATE dossiers SET state = 'REVOKED' WHERE id = ?", (copy.dossier_id,))
            detail = self.codec.to_json({"code": code, "reason": reason})
            self._event(db, copy.dossier_id, "revoked", detail)
        return copy

    # -- reads ----------------------------------------------------------------------------------

    @_transient_to_unavailable
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
            dossier = _dossier_of(row, self.codec)
            copy_row = db.execute(_COPY_SELECT + " WHERE dossier_id = ?", (dossier.id,)).fetchone()
        return dossier, None if copy_row is None else _copy_of(copy_row, self.codec)

    def _rows(self, sql: str, parameters: Sequence[Any] = ()) -> list[Any]:
        with self._transaction(write=False) as db:
            return list(db.execute(sql, parameters).fetchall())

    @_transient_to_unavailable
    def get_dossier(self, dossier_id: str) -> DossierRecord | None:
        rows = self._rows(_DOSSIER_SELECT + " WHERE id = ?", (dossier_id,))
        return _dossier_of(rows[0], self.codec) if rows else None

    @_transient_to_unavailable
    def get_copy(self, code: str) -> CopyRecord | None:
        rows = self._rows(_COPY_SELECT + " WHERE code = ?", (code,))
        return _copy_of(rows[0], self.codec) if rows else None

    def copies(self) -> Iterator[CopyRecord]:
        rows = self._rows(_COPY_SELECT + " ORDER BY issued_at, code")
        return (_copy_of(row, self.codec) for row in rows)

    @_transient_to_unavailable
    def pages(self, dossier_id: str) -> list[PageRecord]:
        rows = self._rows(_PAGE_SELECT + " WHERE dossier_id = ? ORDER BY idx", (dossier_id,))
        return [_page_of(row, self.codec) for row in rows]

    @_transient_to_unavailable
    def events(self, dossier_id: str) -> list[EventRecord]:
        rows = self._rows(
            "SELECT dossier_id, at, kind, detail FROM events WHERE dossier_id = ? ORDER BY id",
            (dossier_id,),
        )
        return [
            EventRecord(d, self.codec.from_ts(at), kind, self.codec.from_json(detail))
            for d, at, kind, detail in rows
        ]

    @_transient_to_unavailable
    def decided_before(self, cutoff: datetime, *, without_event: str, limit: int) -> list[str]:
        rows = self._rows(
            "SELECT id FROM dossiers d WHERE decided_at < ?"
            " AND state IN ('ISSUED', 'REJECTED', 'REVOKED')"
            " AND NOT EXISTS (SELECT 1 FROM events e WHERE e.dossier_id = d.id AND e.kind = ?)"
            " ORDER BY decided_at, id LIMIT ?",
            (self.codec.to_ts(as_utc(cutoff)), without_event, limit),
        )
        return [dossier_id for (dossier_id,) in rows]

    @_transient_to_unavailable
    def erase_personal_data(
        self, dossier_id: str, event_kind: str, detail: Mapping[str, Any]
    ) -> list[str]:
        with self._transaction(write=True) as db:
            rows = db.execute(
                "SELECT DISTINCT blob_key FROM pages p WHERE p.dossier_id = ? AND NOT EXISTS ("
                " SELECT 1 FROM pages q WHERE q.blob_key = p.blob_key"
                " AND q.dossier_id <> p.dossier_id AND NOT EXISTS ("
                "  SELECT 1 FROM events e WHERE e.dossier_id = q.dossier_id AND e.kind = ?))",
                (dossier_id, event_kind),
            ).fetchall()
            db.execute(
                "UPDATE pages SET text = '', fields = ? WHERE dossier_id = ?",
                (self.codec.to_json([]), dossier_id),
            )
            # What the checks said may quote the documents (a date, a name read): their names
            # and outcomes stay, their words go; and the keyed hash of the card's number.
            found = db.execute(
                "SELECT checks, identity_evidence FROM dossiers WHERE id = ?", (dossier_id,)
            ).fetchone()
            if found is not None:
                checks = [[n, o, ""] for n, o, _ in self.codec.from_json(found[0])]
                evidence = None if found[1] is None else dict(self.codec.from_json(found[1]))
                if evidence is not None:
                    evidence.pop("subject", None)
                failed = [n for n, o, _ in checks if o != Outcome.PASS.value]
                db.execute(
                    "UPDATE dossiers SET reasons = ?, checks = ?, identity_evidence = ?"
                    " WHERE id = ?",
                    (
                        self.codec.to_json(failed),
                        self.codec.to_json(checks),
                        None if evidence is None else self.codec.to_json(evidence),
                        dossier_id,
                    ),
                )
            self._event(db, dossier_id, event_kind, self.codec.to_json(dict(detail)))
        return [key for (key,) in rows]

    @_transient_to_unavailable
    def mark(self, dossier_id: str, event_kind: str, detail: Mapping[str, Any]) -> None:
        with self._transaction(write=True) as db:
            self._event(db, dossier_id, event_kind, self.codec.to_json(dict(detail)))

    @_transient_to_unavailable
    def copy_of(self, dossier_id: str) -> CopyRecord | None:
        rows = self._rows(_COPY_SELECT + " WHERE dossier_id = ?", (dossier_id,))
        return _copy_of(rows[0], self.codec) if rows else None

    @_transient_to_unavailable
    def referenced_blob_keys(self) -> set[str]:
        rows = self._rows("SELECT blob_key FROM pages UNION SELECT blob_key FROM copies")
        return {key for (key,) in rows}

    @_transient_to_unavailable
    def referenced(self, keys: Iterable[str]) -> set[str]:
        wanted = sorted(set(keys))
        found: set[str] = set()
        with self._transaction(write=False) as db:
            for start in range(0, len(wanted), _BATCH):
                batch = wanted[start : start + _BATCH]
                marks = ", ".join("?" * len(batch))
                rows = db.execute(
                    f"SELECT blob_key FROM pages WHERE blob_key IN ({marks})"
                    f" UNION SELECT blob_key FROM copies WHERE blob_key IN ({marks})",
                    batch + batch,
                ).fetchall()
                found.update(key for (key,) in rows)
        return found

    @_transient_to_unavailable
    def counts(self) -> dict[str, int]:
        with self._transaction(write=False) as db:
            result = dict.fromkeys(DOSSIER_STATES, 0)
            for state, n in db.execute("SELECT state, count(*) FROM dossiers GROUP BY state"):
                result[state] = n
            result["copies"] = db.execute("SELECT count(*) FROM copies").fetchone()[0]
        return result


class SqliteRegistry(SqlRegistry):
    """The registry in one SQLite file: WAL, foreign keys on, synchronous=FULL so that what
    :meth:`record` acknowledged survives a crash, one connection per calling thread."""

    codec = SQLITE_CODEC
    dialect: ClassVar[str] = "sqlite"
    column_types: ClassVar[Mapping[str, str]] = {
        "timestamp": "TEXT",
        "json": "TEXT",
        "float": "REAL",
        "bigint": "INTEGER",
        "serial": "INTEGER PRIMARY KEY AUTOINCREMENT",
        "bytes": "BLOB",
    }
    # for_update stays empty: BEGIN IMMEDIATE already holds the write lock.

    def __init__(self, path: Path, *, busy_timeout: float = 10.0) -> None:
        self.path = Path(path)
        self.where = str(self.path)
        self.busy_timeout = busy_timeout
        self._db = SqliteConnections(
            self.path, busy_timeout=busy_timeout, what="the registry", pragmas=["foreign_keys = ON"]
        )
        self._migrate()

    def _transaction(self, *, write: bool) -> AbstractContextManager[Statements]:
        return self._db.transaction(write=write)

    def _is_duplicate_request(self, error: Exception) -> bool:
        return isinstance(error, sqlite3.IntegrityError) and "dossiers.kiosk_id" in str(error)

    def _is_transient(self, error: Exception) -> bool:
        text = str(error)
        return isinstance(error, sqlite3.OperationalError) and ("locked" in text or "busy" in text)

    def _migrate(self) -> None:
        self._db.enable_wal()
        super()._migrate()

    def close(self) -> None:
        self._db.close()


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

    # A store that seals each dossier's blobs apart (saoy.core.retention) gives its own view.
    own = blobs.for_dossier(dossier.id, keys[-1] if pdf is not None else None)
    _pin(keys)
    created: list[str] = []
    stored = False
    try:
        for data in files:
            key, new = own.put(data)
            if new:
                created.append(key)
        registry.record(dossier, pages, copy, event_kind, event_detail)
        stored = True
    finally:
        with _pins_lock:
            _unpin_locked(keys)
            if not stored and own is not blobs:
                _discard_dossier(registry, blobs, dossier.id)
            elif not stored and created:
                _discard_unreferenced(registry, blobs, created)
    if own is not blobs:
        try:
            blobs.recorded(dossier.id)
        except Exception:  # the sweep finds it recorded and forgets the mark
            log.exception("could not clear the in-flight mark of a stored dossier")


def _discard_dossier(registry: Registry, blobs: BlobStore, dossier_id: str) -> None:
    """Remove the sealed blobs of a dossier whose store failed, unless it was recorded after
    all (a commit whose answer was lost). Logged, not raised, as for the plain store."""
    try:
        if registry.get_dossier(dossier_id) is None:
            blobs.discard_dossier(dossier_id)
    except Exception:
        log.exception("could not remove the sealed blobs of a failed store")


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
    ``older_than`` ago (left by a process killed between blob write and commit), partial
    writes as old, and what a store sealing each dossier apart wrote as long ago for dossiers
    never recorded; how many blobs (or unrecorded dossiers) were removed. Younger ones are left
    alone: a store in flight in another process may be about to register them."""
    removed = blobs.discard_partial(older_than)
    removed += blobs.discard_unrecorded(
        lambda dossier_id: registry.get_dossier(dossier_id) is not None, older_than
    )
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

    for key, written in blobs.ages():  # a generator over the store, not a dict
        if written >= cutoff:
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
    "SQLITE_CODEC",
    "Codec",
    "CopyRecord",
    "DossierRecord",
    "DuplicateRequest",
    "EventRecord",
    "PageRecord",
    "Registry",
    "SqlRegistry",
    "SqliteRegistry",
    "Statements",
    "as_utc",
    "store_dossier",
    "sweep_orphans",
    "validate_records",
]
