"""The tables of the official's desk — officials, their sessions, centers and their policy,
reviews, the certification register, the officials' audit trail — kept in the registry's own
database (SQLite or PostgreSQL), so that an approval changes a dossier, its copy and its
register entry in one transaction.

The desk's schema has its own version table (``desk_schema_version``) and migrations, applied
after the registry's; the column types in braces are the registry backend's.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any, Final

from saoy.core.registry import Registry, SqlRegistry, Statements

log = logging.getLogger("saoy.desk")

_MIGRATIONS: Final[tuple[tuple[str, ...], ...]] = (
    (
        """CREATE TABLE IF NOT EXISTS desk_centers (
            id TEXT PRIMARY KEY,
            name TEXT NOT NULL,
            review TEXT NOT NULL DEFAULT 'uncertain' CHECK (review IN ('uncertain', 'all'))
        )""",
        """CREATE TABLE IF NOT EXISTS desk_center_kiosks (
            kiosk_id TEXT PRIMARY KEY,
            center TEXT NOT NULL REFERENCES desk_centers (id)
        )""",
        """CREATE TABLE IF NOT EXISTS officials (
            id TEXT PRIMARY KEY,
            full_name TEXT NOT NULL,
            title TEXT NOT NULL,
            center TEXT NOT NULL REFERENCES desk_centers (id),
            role TEXT NOT NULL CHECK (role IN ('official', 'head', 'auditor')),
            disabled INTEGER NOT NULL DEFAULT 0,
            password_hash TEXT NOT NULL,
            totp_secret TEXT NOT NULL,
            totp_last_step {bigint} NOT NULL DEFAULT 0,
            failures INTEGER NOT NULL DEFAULT 0,
            locked_until {timestamp},
            certificate TEXT NOT NULL,
            created_at {timestamp} NOT NULL
        )""",
        """CREATE TABLE IF NOT EXISTS official_sessions (
            token_hash TEXT PRIMARY KEY,
            official_id TEXT NOT NULL REFERENCES officials (id),
            created_at {timestamp} NOT NULL,
            expires_at {timestamp} NOT NULL
        )""",
        """CREATE TABLE IF NOT EXISTS reviews (
            dossier_id TEXT PRIMARY KEY REFERENCES dossiers (id),
            holder TEXT REFERENCES officials (id),
            lease_until {timestamp},
            outcome TEXT CHECK (outcome IN ('issued', 'refused', 'rescan')),
            detail {json},
            updated_at {timestamp} NOT NULL
        )""",
        """CREATE TABLE IF NOT EXISTS review_pages (
            dossier_id TEXT NOT NULL REFERENCES dossiers (id),
            idx INTEGER NOT NULL,
            words {json} NOT NULL,
            rotation INTEGER NOT NULL,
            PRIMARY KEY (dossier_id, idx)
        )""",
        """CREATE TABLE IF NOT EXISTS register_books (
            center TEXT NOT NULL,
            year INTEGER NOT NULL,
            last_number INTEGER NOT NULL,
            PRIMARY KEY (center, year)
        )""",
        """CREATE TABLE IF NOT EXISTS register_entries (
            center TEXT NOT NULL,
            year INTEGER NOT NULL,
            number INTEGER NOT NULL CHECK (number >= 1),
            dossier_id TEXT UNIQUE,
            official_id TEXT,
            state TEXT NOT NULL CHECK (state IN ('reserved', 'issued', 'free')),
            code TEXT UNIQUE,
            reserved_at {timestamp},
            issued_at {timestamp},
            PRIMARY KEY (center, year, number)
        )""",
        """CREATE TABLE IF NOT EXISTS desk_audit (
            id {serial},
            at {timestamp} NOT NULL,
            official_id TEXT NOT NULL,
            kind TEXT NOT NULL,
            dossier_id TEXT,
            detail {json} NOT NULL
        )""",
        "CREATE INDEX IF NOT EXISTS desk_audit_dossier ON desk_audit (dossier_id, id)",
    ),
)
DESK_SCHEMA_VERSION: Final = len(_MIGRATIONS)


def now() -> datetime:
    return datetime.now(UTC)


class DeskDb:
    """The desk's tables in the registry's database: transactions, codec and row locking of
    the registry backend, and the desk's migrations (applied once, here)."""

    def __init__(self, registry: Registry) -> None:
        if not isinstance(registry, SqlRegistry):
            raise TypeError("the official's desk needs a SQL registry (SQLite or PostgreSQL)")
        self.registry = registry
        self.codec = registry.codec
        self.for_update = registry.for_update
        self._migrate()

    @contextmanager
    def transaction(self, *, write: bool) -> Iterator[Statements]:
        """One transaction of the registry's database (writes hold its write lock: BEGIN
        IMMEDIATE on SQLite; rows read with :attr:`for_update` on PostgreSQL)."""
        with self.registry._transaction(write=write) as db:
            yield db

    def ts(self, value: datetime) -> Any:
        return self.codec.to_ts(value)

    def dt(self, value: Any) -> datetime | None:
        return None if value is None else self.codec.from_ts(value)

    def json(self, value: Any) -> Any:
        return self.codec.to_json(value)

    def from_json(self, value: Any) -> Any:
        return None if value is None else self.codec.from_json(value)

    def audit(
        self,
        db: Statements,
        official_id: str,
        kind: str,
        dossier_id: str | None = None,
        **detail: Any,
    ) -> None:
        """One act of an official: who, when, what (``detail`` never holds personal data of
        citizens beyond the field names and values an official corrected)."""
        db.execute(
            "INSERT INTO desk_audit (at, official_id, kind, dossier_id, detail)"
            " VALUES (?, ?, ?, ?, ?)",
            (self.ts(now()), official_id, kind, dossier_id, self.json(detail)),
        )

    def audit_events(self, dossier_id: str | None = None) -> list[dict[str, Any]]:
        """The officials' acts, oldest first: all of them, or those on one dossier."""
        sql = "SELECT at, official_id, kind, dossier_id, detail FROM desk_audit"
        params: tuple[Any, ...] = ()
        if dossier_id is not None:
            sql += " WHERE dossier_id = ?"
            params = (dossier_id,)
        with self.transaction(write=False) as db:
            rows = db.execute(sql + " ORDER BY id", params).fetchall()
        return [
            {
                "at": self.dt(at),
                "official": official,
                "kind": kind,
                "dossier_id": dossier,
                "detail": self.from_json(detail),
            }
            for at, official, kind, dossier, detail in rows
        ]

    def _migrate(self) -> None:
        types = self.registry.column_types
        with self.transaction(write=True) as db:
            self.registry._lock_schema(db)
            db.execute(
                "CREATE TABLE IF NOT EXISTS desk_schema_version ("
                f"version INTEGER PRIMARY KEY, applied_at {types['timestamp']} NOT NULL)"
            )
            current = db.execute("SELECT max(version) FROM desk_schema_version").fetchone()[0]
            current = current or 0
            if current > DESK_SCHEMA_VERSION:
                raise RuntimeError(
                    f"{self.registry.where} has desk schema version {current}; this version of"
                    f" saoy knows up to {DESK_SCHEMA_VERSION}"
                )
            for version in range(current + 1, DESK_SCHEMA_VERSION + 1):
                for statement in _MIGRATIONS[version - 1]:
                    db.execute(statement.format_map(types))
                db.execute(
                    "INSERT INTO desk_schema_version (version, applied_at) VALUES (?, ?)",
                    (version, self.ts(now())),
                )
                log.info("desk tables of %s at version %d", self.registry.where, version)


__all__ = ["DESK_SCHEMA_VERSION", "DeskDb", "now"]
