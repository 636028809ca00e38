"""The tables of the official's desk — officials, their sessions, reviews, the certification
register, the officials' audit trail — kept in the registry's own database (SQLite or
PostgreSQL), so that an approval changes a dossier, its copy and its register entry in one
transaction. Centers (with their review policy) and the kiosks that belong to them are
reception's (:mod:`saoy.core.reception.centers`): the desk reads them there.

The desk's schema has its own version table (``desk_schema_version``) and migrations, applied
after the registry's and reception's; the column types in braces are the registry backend's.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any, Final

from saoy.core.reception.centers import UNIT_CODE, ReceptionDb
from saoy.core.storage.registry import Registry, SqliteRegistry, SqlRegistry, Statements

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
    # 2: the desk's own centers and kiosks folded into reception's (see _fold_centers).
    (),
    # 3: the SHA-256 of each official's certificate, for sign-in with it over mutual TLS.
    ("ALTER TABLE officials ADD COLUMN certificate_sha256 TEXT",),
)
DESK_SCHEMA_VERSION: Final = len(_MIGRATIONS)

UNDECLARED: Final = "(chưa khai báo)"
"""The province and address of a center the desk knew and reception did not, until a head of
center declares them (``saoy reception center``)."""

_OFFICIALS_V2: Final = """CREATE TABLE officials_v2 (
    id TEXT PRIMARY KEY,
    full_name TEXT NOT NULL,
    title TEXT NOT NULL,
    center TEXT NOT NULL REFERENCES service_centers (code),
    role TEXT NOT NULL CHECK (role IN ('official', 'head', 'auditor')),
    disabled INTEGER NOT NULL DEFAULT 0,
    password_hash TEXT NOT NULL,
    totp_secret TEXT NOT NULL,
    totp_last_step {bigint} NOT NULL DEFAULT 0,
    failures INTEGER NOT NULL DEFAULT 0,
    locked_until {timestamp},
    certificate TEXT NOT NULL,
    created_at {timestamp} NOT NULL
)"""
_OFFICIAL_COLUMNS: Final = (
    "id, full_name, title, center, role, disabled, password_hash, totp_secret, totp_last_step,"
    " failures, locked_until, certificate, created_at"
)


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
        self.reception = ReceptionDb(registry)  # centers and kiosks: migrated before the desk's
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
        sqlite = isinstance(self.registry, SqliteRegistry)
        if sqlite:
            # Rebuilding a table that others reference needs foreign keys off, outside any
            # transaction; they are checked again before the migration commits.
            self.registry._db.connection().execute("PRAGMA foreign_keys = OFF")
        try:
            self._apply()
        finally:
            if sqlite:
                self.registry._db.connection().execute("PRAGMA foreign_keys = ON")

    def _apply(self) -> None:
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
                if version == 2:
                    self._fold_centers(db)
                db.execute(
                    "INSERT INTO desk_schema_version (version, applied_at) VALUES (?, ?)",
                    (version, self.ts(now())),
                )
                log.info("desk tables of %s at version %d", self.registry.where, version)

    def _fold_centers(self, db: Statements) -> None:
        """Desk schema 2: the desk's centers (``desk_centers``) and kiosk assignments
        (``desk_center_kiosks``) become reception's ``service_centers`` (with the review policy)
        and ``kiosks``; officials then belong to a reception center, and the desk's tables go.

        A center only the desk knew is registered with its name and an undeclared province and
        address; a kiosk both assigned keeps reception's center (its dossier codes are that
        center's already). A desk center whose id is no unit code cannot be carried over: the
        migration stops and says which."""
        stamp = self.ts(now())
        centers = db.execute("SELECT id, name, review FROM desk_centers ORDER BY id").fetchall()
        for center_id, name, review in centers:
            known = db.execute(
                "SELECT 1 FROM service_centers WHERE code = ?", (center_id,)
            ).fetchone()
            if known is not None:
                db.execute(
                    "UPDATE service_centers SET review = ? WHERE code = ?", (review, center_id)
                )
                continue
            if not UNIT_CODE.fullmatch(center_id) or len(center_id) > 32:
                raise RuntimeError(
                    f"{self.registry.where}: the desk's center {center_id!r} is no unit code"
                    " (such as 000.00.01.H26), so it cannot become a registered center; rename"
                    " it with an earlier version of saoy, or register the center under its unit"
                    " code, then start again"
                )
            name = " ".join(str(name).split())
            db.execute(
                "INSERT INTO service_centers (code, name, province, address, fees_waived,"
                " review, created_at) VALUES (?, ?, ?, ?, 0, ?, ?)",
                (
                    center_id,
                    name if len(name) >= 2 else center_id,
                    UNDECLARED,
                    UNDECLARED,
                    review,
                    stamp,
                ),
            )
            log.warning(
                "center %s of the desk registered at reception with no province or address:"
                " declare them with saoy reception center",
                center_id,
            )
        assignments = db.execute(
            "SELECT kiosk_id, center FROM desk_center_kiosks ORDER BY kiosk_id"
        ).fetchall()
        for kiosk_id, center_id in assignments:
            row = db.execute("SELECT center_code FROM kiosks WHERE id = ?", (kiosk_id,)).fetchone()
            if row is None:
                db.execute(
                    "INSERT INTO kiosks (id, center_code, name, created_at) VALUES (?, ?, '', ?)",
                    (kiosk_id, center_id, stamp),
                )
            elif row[0] != center_id:
                log.warning(
                    "kiosk %s: the desk had it at center %s, reception at %s; it stays at %s",
                    kiosk_id,
                    center_id,
                    row[0],
                    row[0],
                )
        types = self.registry.column_types
        if isinstance(self.registry, SqliteRegistry):
            db.execute(_OFFICIALS_V2.format_map(types))
            db.execute(
                f"INSERT INTO officials_v2 ({_OFFICIAL_COLUMNS})"
                f" SELECT {_OFFICIAL_COLUMNS} FROM officials"
            )
            db.execute("DROP TABLE officials")
            db.execute("ALTER TABLE officials_v2 RENAME TO officials")
        else:
            db.execute("ALTER TABLE officials DROP CONSTRAINT officials_center_fkey")
            db.execute(
                "ALTER TABLE officials ADD CONSTRAINT officials_center_fkey"
                " FOREIGN KEY (center) REFERENCES service_centers (code)"
            )
        db.execute("DROP TABLE desk_center_kiosks")
        db.execute("DROP TABLE desk_centers")
        if isinstance(self.registry, SqliteRegistry):
            broken = db.execute("PRAGMA foreign_key_check").fetchall()
            if broken:
                raise RuntimeError(
                    f"{self.registry.where}: moving the desk's centers broke references: {broken}"
                )


__all__ = ["DESK_SCHEMA_VERSION", "UNDECLARED", "DeskDb", "now"]
