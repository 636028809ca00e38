"""Which store holds the transparency log: the registry's PostgreSQL database when the registry
is there, else a SQLite file of its own (the embedded default)."""

from __future__ import annotations

from pathlib import Path

from saoy.core.trust.translog import SqliteTransparencyLog, TransparencyLog
from saoy.core.trust.translog_pg import PgTransparencyLog

SQLITE_FILE = "translog.sqlite3"


def is_postgresql(url: str) -> bool:
    return url.startswith(("postgresql://", "postgres://"))


def open_transparency_log(registry_url: str, data_dir: Path) -> TransparencyLog:
    """The log beside the registry: in its PostgreSQL database for a ``postgresql://`` URL,
    else in ``<data_dir>/translog.sqlite3``."""
    if is_postgresql(registry_url):
        return PgTransparencyLog(registry_url)
    return SqliteTransparencyLog(Path(data_dir) / SQLITE_FILE)


__all__ = ["SQLITE_FILE", "is_postgresql", "open_transparency_log"]
