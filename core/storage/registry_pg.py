"""The registry in a PostgreSQL database.

Same tables, statements and semantics as :class:`~saoy.core.storage.registry.SqliteRegistry`
(see :class:`~saoy.core.storage.registry.SqlRegistry`); JSON columns are JSONB and timestamps
timestamptz. Writes run at READ COMMITTED: the unique (kiosk_id, request_id) of dossiers settles
racing duplicates, and a revoke locks the copy's row. Reads of several rows see one REPEATABLE
READ snapshot.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from datetime import UTC
from typing import Any, ClassVar, Final

import psycopg
from psycopg.conninfo import conninfo_to_dict
from psycopg.errors import UniqueViolation
from psycopg.types.json import Jsonb
from psycopg_pool import ConnectionPool

from saoy.core.storage.registry import Codec, SqlRegistry, Statements, as_utc

PG_CODEC: Final = Codec(
    to_ts=as_utc,
    from_ts=lambda value: value.astimezone(UTC),
    to_json=Jsonb,
    from_json=lambda value: value,  # psycopg loads JSONB itself
)
"""Aware datetimes for timestamptz; JSON values wrapped for JSONB and loaded by psycopg."""

_MIGRATION_LOCK: Final = 0x5A0_7265_6769  # pg_advisory_xact_lock key: one migrator at a time


class _Statements:
    """A psycopg connection taking the ``?`` placeholders of the shared statements (none of
    which contains a literal ``?`` or ``%``)."""

    def __init__(self, conn: psycopg.Connection[Any]) -> None:
        self._conn = conn

    def execute(self, sql: str, parameters: Any = None, /) -> psycopg.Cursor[Any]:
        return self._conn.execute(sql.replace("?", "%s"), parameters)

    def executemany(self, sql: str, parameters: Any, /) -> None:
        with self._conn.cursor() as cursor:
            cursor.executemany(sql.replace("?", "%s"), parameters)


def _describe(url: str) -> str:
    """The URL without user or password, for messages."""
    info = conninfo_to_dict(url)
    return f"postgresql://{info.get('host', '')}:{info.get('port', 5432)}/{info.get('dbname', '')}"


class PostgresRegistry(SqlRegistry):
    """The registry in a PostgreSQL database, through a pool of connections shared by the
    calling threads; a connection found broken is replaced before use."""

    codec = PG_CODEC
    dialect: ClassVar[str] = "postgresql"
    column_types: ClassVar[Mapping[str, str]] = {
        "timestamp": "TIMESTAMPTZ",
        "json": "JSONB",
        "float": "DOUBLE PRECISION",
        "bigint": "BIGINT",
        "serial": "BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY",
        "bytes": "BYTEA",
    }
    for_update = " FOR UPDATE"

    def __init__(self, url: str, *, max_connections: int = 16, timeout: float = 10.0) -> None:
        """Connect to ``url`` (a libpq URL or conninfo string) and bring its schema up to date.
        Up to ``max_connections`` are open at once; a caller waits at most ``timeout``
        seconds for one. An unreachable database or a refused login raises here."""
        self.url = url
        self.where = _describe(url)
        # One direct connection first: its error says why (refused, bad password, no database).
        psycopg.connect(url, connect_timeout=max(1, round(timeout))).close()
        self._pool: ConnectionPool[psycopg.Connection[Any]] = ConnectionPool(
            url,
            min_size=1,
            max_size=max_connections,
            timeout=timeout,
            check=ConnectionPool.check_connection,
            name="saoy-registry",
            open=True,
        )
        try:
            self._migrate()
        except BaseException:
            self._pool.close()
            raise

    @contextmanager
    def _transaction(self, *, write: bool) -> Iterator[Statements]:
        # The pool commits when the block ends and rolls back when it raises.
        with self._pool.connection() as conn:
            if not write:
                conn.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
            yield _Statements(conn)

    def _lock_schema(self, db: Statements) -> None:
        db.execute("SELECT pg_advisory_xact_lock(?)", (_MIGRATION_LOCK,))

    def _is_duplicate_request(self, error: Exception) -> bool:
        # PostgreSQL's name for the UNIQUE (kiosk_id, request_id) of the dossiers table
        key = "dossiers_kiosk_id_request_id_key"
        return isinstance(error, UniqueViolation) and error.diag.constraint_name == key

    def _is_transient(self, error: Exception) -> bool:
        # Lost or refused connections, an exhausted pool, deadlocks and serialization failures.
        return isinstance(error, psycopg.OperationalError)

    def close(self) -> None:
        self._pool.close()


__all__ = ["PG_CODEC", "PostgresRegistry"]
