"""Centers (the units that receive dossiers) and the kiosks that belong to them.

A center is a registered unit: its unit code (mã đơn vị, the prefix of every dossier code it
gives, Circular 01/2018/TT-VPCP art. 19), its name, province and address, whether it waives the
certification fee, and the bank account its fees are paid into (VietQR). Every kiosk belongs to
one center: the center that receives the dossiers scanned there. Any center serves any citizen,
whatever their residence (Decree 118/2025/NĐ-CP).

The tables live in the registry's own database (SQLite or PostgreSQL) with their own schema
version (``reception_schema_version``, see :class:`ReceptionDb`), beside the dossier codes,
receipts and status changes of :mod:`saoy.core.reception.reception`.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import wraps
from typing import Any, Final, ParamSpec, TypeVar

from saoy.core.errors import InvalidInput, NotFound, OutOfOrder, Unavailable
from saoy.core.reception.vietqr import Payee
from saoy.core.storage.registry import Registry, SqlRegistry, Statements

log = logging.getLogger("saoy.centers")

P = ParamSpec("P")
T = TypeVar("T")

UNIT_CODE: Final = re.compile(r"[0-9A-Z]{1,8}(?:\.[0-9A-Z]{1,8}){0,5}")
"""A unit code such as ``000.00.01.H26``: groups of digits and capitals joined by dots."""
KIOSK: Final = re.compile(r"[A-Za-z0-9_.-]{1,64}")

DEV_CENTER_CODE: Final = "000.00.00.DEV"
DEV_KIOSKS: Final = ("kiosk-dev", "kiosk-cli")
REVIEW_POLICIES: Final = ("uncertain", "all")
"""A center's review policy: only dossiers the machine is unsure of wait for an official, or
every dossier does."""
"""Kiosks the embedded default registers at the dev center: the SDK's and the CLI's default."""


@dataclass(frozen=True)
class Center:
    """A unit that receives dossiers."""

    code: str
    name: str
    province: str
    address: str
    fees_waived: bool = False
    payee: Payee | None = None
    """Where fees are paid (VietQR); None: at the counter only."""

    def __post_init__(self) -> None:
        if not UNIT_CODE.fullmatch(self.code) or len(self.code) > 32:
            raise InvalidInput(
                f"center code {self.code[:40]!r} must be a unit code such as 000.00.01.H26"
                " (groups of digits and capital letters joined by dots)",
                field="center.code",
            )
        for name in ("name", "province", "address"):
            value = getattr(self, name)
            if not 2 <= len(value.strip()) <= 200:
                raise InvalidInput(
                    f"center.{name}: give the center's {name} (2-200 characters)",
                    field=f"center.{name}",
                )


@dataclass(frozen=True)
class Kiosk:
    id: str
    center_code: str
    name: str = ""


DEV_CENTER: Final = Center(
    code=DEV_CENTER_CODE,
    name="Trung tâm Phục vụ hành chính công (dev)",
    province="Thành phố Hà Nội",
    address="Phường Hoàn Kiếm, Thành phố Hà Nội",
    payee=Payee(bank_bin="970436", account="0000000000"),
)
"""The center the embedded default registers: a development stand-in, its account a dummy."""


class KioskNotRegistered(OutOfOrder):
    """Certify from a kiosk no center has registered, on a server that takes no strangers."""

    reason = "KIOSK_NOT_REGISTERED"


def _now() -> datetime:
    return datetime.now(UTC)


# -- the tables ---------------------------------------------------------------------------------

_Step = str | dict[str, tuple[str, ...]]  # a statement, or statements per SQL dialect
_MIGRATIONS: Final[tuple[tuple[_Step, ...], ...]] = (
    (
        """CREATE TABLE IF NOT EXISTS service_centers (
            code TEXT PRIMARY KEY,
            name TEXT NOT NULL,
            province TEXT NOT NULL,
            address TEXT NOT NULL,
            fees_waived INTEGER NOT NULL DEFAULT 0,
            payee_bin TEXT,
            payee_account TEXT,
            created_at {timestamp} NOT NULL
        )""",
        """CREATE TABLE IF NOT EXISTS kiosks (
            id TEXT PRIMARY KEY,
            center_code TEXT NOT NULL REFERENCES service_centers (code),
            name TEXT NOT NULL DEFAULT '',
            created_at {timestamp} NOT NULL
        )""",
        # The daily sequence of dossier codes per center: day is the local date, YYMMDD.
        """CREATE TABLE IF NOT EXISTS dossier_sequences (
            center_code TEXT NOT NULL REFERENCES service_centers (code),
            day TEXT NOT NULL,
            last INTEGER NOT NULL,
            PRIMARY KEY (center_code, day)
        )""",
        # The receipt of a dossier, written when its pages are in and before it is decided (so
        # no reference to dossiers, whose row comes with the decision).
        """CREATE TABLE IF NOT EXISTS receipts (
            dossier_id TEXT PRIMARY KEY,
            dossier_code TEXT NOT NULL UNIQUE,
            kiosk_id TEXT NOT NULL,
            request_id TEXT NOT NULL,
            center_code TEXT NOT NULL REFERENCES service_centers (code),
            received_at {timestamp} NOT NULL,
            pages INTEGER NOT NULL CHECK (pages >= 1),
            copies INTEGER NOT NULL CHECK (copies >= 1),
            fee_vnd {bigint} NOT NULL CHECK (fee_vnd >= 0),
            fees_waived INTEGER NOT NULL,
            appointment_at {timestamp} NOT NULL,
            UNIQUE (kiosk_id, request_id)
        )""",
        # Every change of a dossier's portal status, timestamped.
        """CREATE TABLE IF NOT EXISTS dossier_statuses (
            id {serial},
            dossier_id TEXT NOT NULL,
            status INTEGER NOT NULL,
            at {timestamp} NOT NULL,
            note TEXT NOT NULL DEFAULT ''
        )""",
        "CREATE INDEX IF NOT EXISTS dossier_statuses_dossier ON dossier_statuses (dossier_id, id)",
        "CREATE INDEX IF NOT EXISTS receipts_center ON receipts (center_code, received_at)",
    ),
    (
        # A dossier's fee, paid: as the bank's signed notice said (Tracking.ConfirmPayment).
        """CREATE TABLE IF NOT EXISTS payments (
            dossier_id TEXT PRIMARY KEY REFERENCES receipts (dossier_id),
            bank_reference TEXT NOT NULL UNIQUE,
            amount_vnd {bigint} NOT NULL CHECK (amount_vnd > 0),
            paid_at {timestamp} NOT NULL,
            recorded_at {timestamp} NOT NULL
        )""",
    ),
    (
        # Notifications to deliver (email; the app since version 7), kept across restarts until
        # delivered; the target (the citizen's address or token) is cleared once delivered or
        # given up.
        """CREATE TABLE IF NOT EXISTS outbox (
            id {serial},
            dossier_id TEXT NOT NULL REFERENCES receipts (dossier_id),
            channel TEXT NOT NULL CHECK (channel IN ('email')),
            target TEXT,
            state TEXT NOT NULL CHECK (state IN ('pending', 'sent', 'dead')),
            attempts INTEGER NOT NULL DEFAULT 0,
            next_at {timestamp} NOT NULL,
            last_error TEXT NOT NULL DEFAULT '',
            created_at {timestamp} NOT NULL,
            done_at {timestamp}
        )""",
        "CREATE INDEX IF NOT EXISTS outbox_due ON outbox (state, next_at)",
    ),
    (
        # The citizen's rating of the service (1-5), once per dossier (Decision 766, 5.4).
        """CREATE TABLE IF NOT EXISTS ratings (
            dossier_id TEXT PRIMARY KEY REFERENCES receipts (dossier_id),
            score INTEGER NOT NULL CHECK (score BETWEEN 1 AND 5),
            rated_at {timestamp} NOT NULL
        )""",
    ),
    (
        # KPI rollups: the figures of each center and kiosk per day of reception (Vietnam's
        # date), recomputed for the days something changed since kpi_state.refreshed_at.
        """CREATE TABLE IF NOT EXISTS kpi_daily (
            center_code TEXT NOT NULL,
            kiosk_id TEXT NOT NULL,
            day TEXT NOT NULL,
            received INTEGER NOT NULL,
            decided INTEGER NOT NULL,
            on_time INTEGER NOT NULL,
            issued INTEGER NOT NULL,
            fee_due INTEGER NOT NULL,
            paid_online INTEGER NOT NULL,
            ratings INTEGER NOT NULL,
            satisfied INTEGER NOT NULL,
            hours_total {float} NOT NULL,
            PRIMARY KEY (day, center_code, kiosk_id)
        )""",
        """CREATE TABLE IF NOT EXISTS kpi_state (
            id INTEGER PRIMARY KEY CHECK (id = 1),
            refreshed_at {timestamp} NOT NULL
        )""",
        "CREATE INDEX IF NOT EXISTS receipts_received ON receipts (received_at)",
        "CREATE INDEX IF NOT EXISTS reception_dossiers_decided ON dossiers (decided_at)",
        "CREATE INDEX IF NOT EXISTS payments_recorded ON payments (recorded_at)",
        "CREATE INDEX IF NOT EXISTS ratings_rated ON ratings (rated_at)",
    ),
    (
        # The review policy of a center: only what the machine is unsure of waits for an
        # official (uncertain), or every dossier does (all).
        "ALTER TABLE service_centers ADD COLUMN review TEXT NOT NULL DEFAULT 'uncertain'"
        " CHECK (review IN ('uncertain', 'all'))",
    ),
    (
        # The citizen's app as a channel of the outbox, beside email.
        {
            "postgresql": (
                "ALTER TABLE outbox DROP CONSTRAINT IF EXISTS outbox_channel_check",
                "ALTER TABLE outbox ADD CONSTRAINT outbox_channel_check"
                " CHECK (channel IN ('email', 'app'))",
            ),
            "sqlite": (  # no ALTER of a CHECK: the table is built again
                """CREATE TABLE outbox_next (
                    id {serial},
                    dossier_id TEXT NOT NULL REFERENCES receipts (dossier_id),
                    channel TEXT NOT NULL CHECK (channel IN ('email', 'app')),
                    target TEXT,
                    state TEXT NOT NULL CHECK (state IN ('pending', 'sent', 'dead')),
                    attempts INTEGER NOT NULL DEFAULT 0,
                    next_at {timestamp} NOT NULL,
                    last_error TEXT NOT NULL DEFAULT '',
                    created_at {timestamp} NOT NULL,
                    done_at {timestamp}
                )""",
                "INSERT INTO outbox_next SELECT id, dossier_id, channel, target, state, attempts,"
                " next_at, last_error, created_at, done_at FROM outbox",
                "DROP TABLE outbox",
                "ALTER TABLE outbox_next RENAME TO outbox",
                "CREATE INDEX IF NOT EXISTS outbox_due ON outbox (state, next_at)",
            ),
        },
    ),
    (
        # A queued dossier received and not yet decided: what its worker needs (the job and
        # the pages), committed with its receipt, so that a dossier whose work the queue lost
        # is worked again (saoy.core.reception.intakes); deleted once it is decided.
        """CREATE TABLE IF NOT EXISTS intakes (
            dossier_id TEXT PRIMARY KEY REFERENCES receipts (dossier_id),
            job {json} NOT NULL,
            submitted_at {timestamp} NOT NULL,
            attempts INTEGER NOT NULL DEFAULT 0
        )""",
        """CREATE TABLE IF NOT EXISTS intake_pages (
            dossier_id TEXT NOT NULL REFERENCES intakes (dossier_id),
            idx INTEGER NOT NULL,
            data {bytes} NOT NULL,
            PRIMARY KEY (dossier_id, idx)
        )""",
        "CREATE INDEX IF NOT EXISTS intakes_submitted ON intakes (submitted_at)",
    ),
)
RECEPTION_SCHEMA_VERSION: Final = len(_MIGRATIONS)


class ReceptionDb:
    """The reception's tables in the registry's database: its transactions, codec and
    backend, and the reception's own migrations (applied once, here)."""

    def __init__(self, registry: Registry) -> None:
        if not isinstance(registry, SqlRegistry):
            raise TypeError("centers and receipts need a SQL registry (SQLite or PostgreSQL)")
        self.registry = registry
        self.codec = registry.codec
        self.column_types = registry.column_types
        self._migrate()

    @contextmanager
    def transaction(self, *, write: bool) -> Iterator[Statements]:
        with self.registry._transaction(write=write) as db:
            yield db

    def transient(self, error: Exception) -> bool:
        return self.registry._is_transient(error)

    def ts(self, value: datetime) -> Any:
        return self.codec.to_ts(value)

    def dt(self, value: Any) -> datetime:
        return self.codec.from_ts(value)

    def _migrate(self) -> None:
        with self.transaction(write=True) as db:
            self.registry._lock_schema(db)
            db.execute(
                "CREATE TABLE IF NOT EXISTS reception_schema_version (version INTEGER PRIMARY KEY,"
                f" applied_at {self.column_types['timestamp']} NOT NULL)"
            )
            current = db.execute("SELECT max(version) FROM reception_schema_version").fetchone()
            current = current[0] or 0
            if current > RECEPTION_SCHEMA_VERSION:
                raise RuntimeError(
                    f"{self.registry.where} has reception schema version {current}; this"
                    f" version of saoy knows up to {RECEPTION_SCHEMA_VERSION}"
                )
            for version in range(current + 1, RECEPTION_SCHEMA_VERSION + 1):
                for step in _MIGRATIONS[version - 1]:
                    statements = (step,) if isinstance(step, str) else step[self.registry.dialect]
                    for statement in statements:
                        db.execute(statement.format_map(self.column_types))
                db.execute(
                    "INSERT INTO reception_schema_version (version, applied_at) VALUES (?, ?)",
                    (version, self.ts(_now())),
                )
                log.info("reception tables of %s at version %d", self.registry.where, version)


def retrying_busy(method: Callable[P, T]) -> Callable[P, T]:
    """A transient database error (busy, connection lost) becomes Unavailable: retry later."""

    @wraps(method)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> T:
        owner = args[0]
        try:
            return method(*args, **kwargs)
        except Exception as error:
            if owner.db.transient(error):  # type: ignore[attr-defined]
                raise Unavailable(
                    "the registry is busy; retry with the same request", retry_after=1.0
                ) from error
            raise

    return wrapper


# -- centers and kiosks -------------------------------------------------------------------------

_CENTER_COLUMNS: Final = "code, name, province, address, fees_waived, payee_bin, payee_account"


def center_of(row: Any) -> Center:
    code, name, province, address, waived, payee_bin, payee_account = row
    payee = Payee(payee_bin, payee_account) if payee_bin and payee_account else None
    return Center(code, name, province, address, bool(waived), payee)


class Centers:
    """Registered centers and kiosks."""

    def __init__(self, db: ReceptionDb) -> None:
        self.db = db

    @retrying_busy
    def register_center(self, center: Center) -> Center:
        """Register a center, or update the one with its code."""
        payee = center.payee
        with self.db.transaction(write=True) as db:
            db.execute(
                f"INSERT INTO service_centers ({_CENTER_COLUMNS}, created_at)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (code) DO UPDATE SET"
                " name = excluded.name, province = excluded.province,"
                " address = excluded.address, fees_waived = excluded.fees_waived,"
                " payee_bin = excluded.payee_bin, payee_account = excluded.payee_account",
                (
                    center.code,
                    center.name.strip(),
                    center.province.strip(),
                    center.address.strip(),
                    int(center.fees_waived),
                    payee.bank_bin if payee else None,
                    payee.account if payee else None,
                    self.db.ts(_now()),
                ),
            )
        return self.center(center.code)

    @retrying_busy
    def center(self, code: str) -> Center:
        with self.db.transaction(write=False) as db:
            row = db.execute(
                f"SELECT {_CENTER_COLUMNS} FROM service_centers WHERE code = ?", (code,)
            ).fetchone()
        if row is None:
            raise NotFound(
                f"no center is registered under unit code {code[:40]!r}: register it first",
                field="center.code",
            )
        return center_of(row)

    @retrying_busy
    def centers(self, province: str | None = None) -> list[Center]:
        """Every center (of one province), by code."""
        sql = f"SELECT {_CENTER_COLUMNS} FROM service_centers"
        params: tuple[Any, ...] = ()
        if province is not None:
            sql, params = sql + " WHERE province = ?", (province,)
        with self.db.transaction(write=False) as db:
            rows = db.execute(sql + " ORDER BY code", params).fetchall()
        return [center_of(row) for row in rows]

    @retrying_busy
    def register_kiosk(self, kiosk_id: str, center_code: str, name: str = "") -> Kiosk:
        """Register a kiosk at a center, or move it to that center."""
        if not KIOSK.fullmatch(kiosk_id):
            raise InvalidInput(
                "kiosk id must be 1-64 characters of A-Z, a-z, 0-9, _, . or -", field="kiosk.id"
            )
        self.center(center_code)  # NotFound names the unknown center
        with self.db.transaction(write=True) as db:
            db.execute(
                "INSERT INTO kiosks (id, center_code, name, created_at) VALUES (?, ?, ?, ?)"
                " ON CONFLICT (id) DO UPDATE SET center_code = excluded.center_code,"
                " name = excluded.name",
                (kiosk_id, center_code, name.strip(), self.db.ts(_now())),
            )
        return Kiosk(kiosk_id, center_code, name.strip())

    @retrying_busy
    def kiosk(self, kiosk_id: str) -> Kiosk | None:
        with self.db.transaction(write=False) as db:
            row = db.execute(
                "SELECT id, center_code, name FROM kiosks WHERE id = ?", (kiosk_id,)
            ).fetchone()
        return None if row is None else Kiosk(*row)

    @retrying_busy
    def kiosks(self, center_code: str | None = None) -> list[Kiosk]:
        sql = "SELECT id, center_code, name FROM kiosks"
        params: tuple[Any, ...] = ()
        if center_code is not None:
            sql, params = sql + " WHERE center_code = ?", (center_code,)
        with self.db.transaction(write=False) as db:
            rows = db.execute(sql + " ORDER BY id", params).fetchall()
        return [Kiosk(*row) for row in rows]

    def ensure_dev(self, kiosks: Iterable[str] = DEV_KIOSKS) -> Center:
        """The embedded default: the dev center, and ``kiosks`` plus every kiosk some dossier
        already came from registered at it (those registered elsewhere stay where they are)."""
        center = self.register_center(DEV_CENTER) if not self._has(DEV_CENTER_CODE) else None
        with self.db.transaction(write=False) as db:
            seen = [k for (k,) in db.execute("SELECT DISTINCT kiosk_id FROM dossiers").fetchall()]
        for kiosk_id in sorted({*kiosks, *seen}):
            if KIOSK.fullmatch(kiosk_id) and self.kiosk(kiosk_id) is None:
                self.register_kiosk(kiosk_id, DEV_CENTER_CODE)
        return center or self.center(DEV_CENTER_CODE)

    @retrying_busy
    def set_review(self, code: str, review: str) -> None:
        """Set a registered center's review policy (one of :data:`REVIEW_POLICIES`)."""
        if review not in REVIEW_POLICIES:
            raise InvalidInput(
                f"review must be one of {', '.join(REVIEW_POLICIES)}, not {review!r}",
                field="review",
            )
        self.center(code)  # NotFound names the unknown center
        with self.db.transaction(write=True) as db:
            db.execute("UPDATE service_centers SET review = ? WHERE code = ?", (review, code))

    @retrying_busy
    def review(self, code: str) -> str:
        """A registered center's review policy."""
        with self.db.transaction(write=False) as db:
            row = db.execute(
                "SELECT review FROM service_centers WHERE code = ?", (code,)
            ).fetchone()
        if row is None:
            self.center(code)  # NotFound
        return str(row[0])

    def _has(self, code: str) -> bool:
        with self.db.transaction(write=False) as db:
            return (
                db.execute("SELECT 1 FROM service_centers WHERE code = ?", (code,)).fetchone()
                is not None
            )

    def center_of_kiosk(self, kiosk_id: str, *, default_center: str = "") -> Center:
        """The center receiving a kiosk's dossiers. A kiosk no one registered joins
        ``default_center`` (the dev center in the embedded default) at its first dossier; with
        no default it is refused before any page is read."""
        kiosk = self.kiosk(kiosk_id)
        if kiosk is not None:
            return self.center(kiosk.center_code)
        if not default_center:
            raise KioskNotRegistered(
                f"kiosk {kiosk_id} belongs to no center: a head of center must register it at"
                " their center before it takes dossiers",
                field="header.kiosk_id",
            )
        self.register_kiosk(kiosk_id, default_center)
        log.info("kiosk %s registered at center %s at its first dossier", kiosk_id, default_center)
        return self.center(default_center)


__all__ = [
    "DEV_CENTER",
    "DEV_CENTER_CODE",
    "DEV_KIOSKS",
    "RECEPTION_SCHEMA_VERSION",
    "REVIEW_POLICIES",
    "UNIT_CODE",
    "Center",
    "Centers",
    "Kiosk",
    "KioskNotRegistered",
    "ReceptionDb",
]
