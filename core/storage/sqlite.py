"""SQLite files shared by threads: one connection per calling thread, explicit transactions,
WAL and synchronous=FULL, so that what a commit acknowledged survives a crash."""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path


class SqliteConnections:
    """The connections of one SQLite file, one per calling thread, all closed by :meth:`close`.

    ``pragmas`` are run on every new connection after busy_timeout and synchronous=FULL;
    ``what`` names the store in the error raised after :meth:`close`."""

    def __init__(
        self, path: Path, *, busy_timeout: float, what: str, pragmas: Sequence[str] = ()
    ) -> None:
        self.path = Path(path)
        self.busy_timeout = busy_timeout
        self.what = what
        self.pragmas = tuple(pragmas)
        self._local = threading.local()
        self._lock = threading.Lock()
        self._connections: list[sqlite3.Connection] = []
        self._closed = False

    def connection(self) -> sqlite3.Connection:
        """This thread's connection, opened on first use."""
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is not None and not self._closed:
            return conn
        with self._lock:
            if self._closed:
                raise RuntimeError(f"{self.what} is closed")
            conn = sqlite3.connect(
                self.path,
                timeout=self.busy_timeout,
                isolation_level=None,  # transactions are explicit: BEGIN IMMEDIATE for writes
                check_same_thread=False,  # only close() touches it from another thread
            )
            conn.execute(f"PRAGMA busy_timeout = {int(self.busy_timeout * 1000)}")
            conn.execute("PRAGMA synchronous = FULL")
            for pragma in self.pragmas:
                conn.execute(f"PRAGMA {pragma}")
            self._connections.append(conn)
        self._local.conn = conn
        return conn

    def enable_wal(self) -> None:
        """Switch the file to write-ahead logging (persistent; RuntimeError when refused)."""
        mode = self.connection().execute("PRAGMA journal_mode = WAL").fetchone()[0]
        if str(mode).lower() != "wal":
            raise RuntimeError(f"{self.path}: could not switch to WAL (journal_mode={mode})")

    @contextmanager
    def transaction(self, *, write: bool) -> Iterator[sqlite3.Connection]:
        """One transaction; writes take the write lock up front so they never fail half way on
        a lock upgrade, reads see one snapshot."""
        conn = self.connection()
        conn.execute("BEGIN IMMEDIATE" if write else "BEGIN")
        try:
            yield conn
            conn.execute("COMMIT")
        except BaseException:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise

    def close(self) -> None:
        with self._lock:
            self._closed = True
            connections, self._connections = self._connections, []
        for conn in connections:
            conn.close()
