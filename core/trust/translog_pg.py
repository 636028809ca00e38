"""The transparency log in PostgreSQL: sequencing apart from integration.

Appending only *sequences*: one short transaction moves the counter row of ``tlog_sequence``
forward by the size of a batch and inserts the batch's leaves at the indexes it was given. The
counter row's lock serializes sequencers, so their transactions commit in index order: whatever
any process reads, the leaves form a prefix of the log with no gap, and an aborted batch gives
its indexes back with its rollback. Appends made by threads of one process at the same time
share one transaction (a group commit).

*Integration* builds the tree: under a transaction-scoped advisory lock (one integrator across
all processes), it reads the leaves past the integrated size of ``tlog_tree``, hashes them into
the right edge of the tree (kept as its compact range: the complete subtrees along the edge),
stores each subtree hash as it completes in ``tlog_nodes``, and moves ``tlog_tree`` to the new
size and root. A checkpoint integrates and signs in that one transaction, so a signed size is
always integrated. Writers never wait for the tree; a reader asking about a size not yet
integrated integrates first. Stored hashes at levels 0, 8, 16, … are the tlog-tiles hash tiles.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future
from contextlib import contextmanager
from datetime import UTC, datetime
from functools import wraps
from typing import Any, Final, ParamSpec, TypeVar

import psycopg
from psycopg_pool import ConnectionPool

from saoy.core.errors import InvalidInput, NotFound, Unavailable
from saoy.core.trust.translog import (
    EMPTY_ROOT,
    CheckpointRecord,
    CheckpointSigner,
    LogLeaf,
    SubtreeHash,
    TransparencyLog,
    checked_entry,
    consistency_path,
    contiguous,
    decode_entry,
    inclusion_path,
    leaf_hash,
    node_hash,
)

P = ParamSpec("P")
T = TypeVar("T")

_SCHEMA_LOCK: Final = 0x5A0_746C_6F67  # pg_advisory_xact_lock key: one schema creator
_INTEGRATOR_LOCK: Final = 0x5A0_746C_6F68  # pg_advisory_xact_lock key: one integrator
_ONCE_LOCKS: Final = 0x746C_6F69  # first of two int4 keys (apart from the bigint keys above)
INTEGRATION_BATCH: Final = 4096
"""Leaves read and hashed per round of integration."""

_SCHEMA: Final = (
    """CREATE TABLE IF NOT EXISTS tlog_sequence (
        id SMALLINT PRIMARY KEY CHECK (id = 0),
        next BIGINT NOT NULL CHECK (next >= 0)
    )""",
    "INSERT INTO tlog_sequence (id, next) VALUES (0, 0) ON CONFLICT DO NOTHING",
    """CREATE TABLE IF NOT EXISTS tlog_leaves (
        idx BIGINT PRIMARY KEY CHECK (idx >= 0),
        leaf_hash BYTEA NOT NULL CHECK (length(leaf_hash) = 32),
        entry BYTEA NOT NULL CHECK (length(entry) <= 65535),
        code TEXT,
        appended_at TIMESTAMPTZ NOT NULL
    )""",
    "CREATE INDEX IF NOT EXISTS tlog_leaves_code ON tlog_leaves (code) WHERE code IS NOT NULL",
    """CREATE TABLE IF NOT EXISTS tlog_nodes (
        level SMALLINT NOT NULL CHECK (level BETWEEN 1 AND 63),
        idx BIGINT NOT NULL CHECK (idx >= 0),
        hash BYTEA NOT NULL CHECK (length(hash) = 32),
        PRIMARY KEY (level, idx)
    )""",
    """CREATE TABLE IF NOT EXISTS tlog_tree (
        id SMALLINT PRIMARY KEY CHECK (id = 0),
        size BIGINT NOT NULL CHECK (size >= 0),
        root BYTEA NOT NULL CHECK (length(root) = 32)
    )""",
    """CREATE TABLE IF NOT EXISTS tlog_checkpoints (
        id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
        size BIGINT NOT NULL CHECK (size >= 0),
        root BYTEA NOT NULL CHECK (length(root) = 32),
        created_at TIMESTAMPTZ NOT NULL,
        note TEXT NOT NULL
    )""",
)

Conn = psycopg.Connection[Any]


def _unavailable(method: Callable[P, T]) -> Callable[P, T]:
    """Lost or refused connections and an exhausted pool are worth a retry, not a crash."""

    @wraps(method)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> T:
        try:
            return method(*args, **kwargs)
        except psycopg.OperationalError as error:
            raise Unavailable(
                "the transparency log's database is unavailable; retry", retry_after=1.0
            ) from error

    return wrapper


def _code_of(entry: bytes) -> str | None:
    try:
        return decode_entry(entry).code
    except InvalidInput:
        return None


class _GroupCommit:
    """Batches of entries submitted by threads at once share one sequencing transaction: the
    first thread to get the leader lock commits everything queued by then, including what
    threads queued while the previous batch was committing."""

    def __init__(self, commit: Callable[[list[bytes]], int]) -> None:
        self._commit = commit  # entries -> the index of the first
        self._queue_lock = threading.Lock()
        self._leader = threading.Lock()
        self._queue: list[tuple[list[bytes], Future[list[int]]]] = []

    def submit(self, entries: list[bytes]) -> list[int]:
        future: Future[list[int]] = Future()
        with self._queue_lock:
            self._queue.append((entries, future))
        with self._leader:
            # A leader before us has set our result, or our batch is still queued.
            if not future.done():
                with self._queue_lock:
                    batch, self._queue = self._queue, []
                self._flush(batch)
        return future.result()

    def _flush(self, batch: list[tuple[list[bytes], Future[list[int]]]]) -> None:
        try:
            first = self._commit([e for entries, _ in batch for e in entries])
        except BaseException as error:
            for _, future in batch:
                future.set_exception(error)
            return
        for entries, future in batch:
            future.set_result(list(range(first, first + len(entries))))
            first += len(entries)


def _compact_range(size: int) -> list[tuple[int, int]]:
    """The (level, index) of the complete subtrees along the right edge of a tree of
    ``size`` leaves, largest first: its compact range."""
    out: list[tuple[int, int]] = []
    start = 0
    for level in range(size.bit_length() - 1, -1, -1):
        if size >> level & 1:
            out.append((level, start >> level))
            start += 1 << level
    return out


def _fold(edge: list[tuple[int, bytes]]) -> bytes:
    """The root of a tree from its compact range's hashes."""
    if not edge:
        return EMPTY_ROOT
    root = edge[-1][1]
    for _, h in reversed(edge[:-1]):
        root = node_hash(h, root)
    return root


class PgTransparencyLog(TransparencyLog):
    """The log in a PostgreSQL database (the registry's), through a pool of connections shared
    by the calling threads. Any number of processes may append and integrate at once."""

    def __init__(
        self,
        url: str,
        *,
        max_connections: int = 8,
        timeout: float = 10.0,
        now: Callable[[], datetime] | None = None,
    ) -> None:
        """Connect to ``url`` (a libpq URL) and create the log's tables if they are missing.
        An unreachable database or a refused login raises here."""
        self._now = now or (lambda: datetime.now(UTC))
        psycopg.connect(url, connect_timeout=max(1, round(timeout))).close()
        self._pool: ConnectionPool[Conn] = ConnectionPool(
            url,
            min_size=1,
            max_size=max_connections,
            timeout=timeout,
            check=ConnectionPool.check_connection,
            name="saoy-translog",
            open=True,
        )
        self._sequencer = _GroupCommit(self._sequence)
        try:
            with self._pool.connection() as conn:
                conn.execute("SELECT pg_advisory_xact_lock(%s)", (_SCHEMA_LOCK,))
                for statement in _SCHEMA:
                    conn.execute(statement)
                conn.execute(
                    "INSERT INTO tlog_tree (id, size, root) VALUES (0, 0, %s)"
                    " ON CONFLICT DO NOTHING",
                    (EMPTY_ROOT,),
                )
        except BaseException:
            self._pool.close()
            raise

    def close(self) -> None:
        self._pool.close()

    @contextmanager
    def _connection(self) -> Iterator[Conn]:
        # The pool commits when the block ends and rolls back when it raises.
        with self._pool.connection() as conn:
            yield conn

    # -- sequencing ----------------------------------------------------------------------------

    @_unavailable
    def append_many(self, entries: Iterable[bytes]) -> list[int]:
        batch = [checked_entry(e) for e in entries]
        return self._sequencer.submit(batch) if batch else []

    @_unavailable
    def append_once(self, entry: bytes) -> int:
        entry = checked_entry(entry)
        h = leaf_hash(entry)
        with self._connection() as conn:
            # Racers with the same entry queue on a lock of its hash (held to the commit), so
            # the second one's look finds the first one's leaf.
            key = int.from_bytes(h[:4], "big", signed=True)
            conn.execute("SELECT pg_advisory_xact_lock(%s, %s)", (_ONCE_LOCKS, key))
            code = _code_of(entry)  # by the index of codes; the rare entry with none, by a scan
            where = "code = %s" if code is not None else "code IS NULL AND %s::text IS NULL"
            row = conn.execute(
                f"SELECT idx FROM tlog_leaves WHERE {where} AND leaf_hash = %s AND entry = %s"
                " ORDER BY idx LIMIT 1",
                (code, h, entry),
            ).fetchone()
            if row is not None:
                return int(row[0])
            return self._sequence_on(conn, [entry])

    def _sequence(self, entries: list[bytes]) -> int:
        """One transaction: take the next ``len(entries)`` indexes and insert the leaves."""
        with self._connection() as conn:
            return self._sequence_on(conn, entries)

    def _sequence_on(self, conn: Conn, entries: list[bytes]) -> int:
        """Take the next ``len(entries)`` indexes and insert the leaves; the first index."""
        at = self._now()
        row = conn.execute(
            "UPDATE tlog_sequence SET next = next + %s WHERE id = 0 RETURNING next - %s",
            (len(entries), len(entries)),
        ).fetchone()
        assert row is not None, "tlog_sequence has lost its row"
        first = int(row[0])
        with (
            conn.cursor() as cursor,
            cursor.copy(
                "COPY tlog_leaves (idx, leaf_hash, entry, code, appended_at) FROM STDIN"
            ) as copy,
        ):
            for offset, entry in enumerate(entries):
                copy.write_row((first + offset, leaf_hash(entry), entry, _code_of(entry), at))
        return first

    # -- integration ---------------------------------------------------------------------------

    @_unavailable
    def integrate(self) -> int:
        """Hash every sequenced leaf into the stored tree; the integrated size."""
        with self._connection() as conn:
            conn.execute("SELECT pg_advisory_xact_lock(%s)", (_INTEGRATOR_LOCK,))
            return self._integrate(conn)[0]

    def integrated_size(self) -> int:
        with self._connection() as conn:
            row = conn.execute("SELECT size FROM tlog_tree WHERE id = 0").fetchone()
        assert row is not None
        return int(row[0])

    def _integrate(self, conn: Conn) -> tuple[int, bytes]:
        """Under the integrator lock: extend the tree to every leaf sequenced so far."""
        row = conn.execute("SELECT size, root FROM tlog_tree WHERE id = 0 FOR UPDATE").fetchone()
        assert row is not None, "tlog_tree has lost its row"
        size, root = int(row[0]), bytes(row[1])
        edge: list[tuple[int, bytes]] | None = None
        while True:
            rows = conn.execute(
                "SELECT idx, leaf_hash FROM tlog_leaves WHERE idx >= %s ORDER BY idx LIMIT %s",
                (size, INTEGRATION_BATCH),
            ).fetchall()
            if not rows:
                break
            if edge is None:
                ranges = _compact_range(size)
                nodes = self._nodes(conn, ranges)
                edge = [(level, nodes[(level, index)]) for level, index in ranges]
            new_nodes: list[tuple[int, int, bytes]] = []
            gap = False
            for index, h in rows:
                if int(index) != size:  # cannot happen while sequencers commit in index order
                    gap = True
                    break
                edge.append((0, bytes(h)))
                level = 0
                while len(edge) >= 2 and edge[-2][0] == level:
                    right = edge.pop()[1]
                    left = edge.pop()[1]
                    level += 1
                    edge.append((level, node_hash(left, right)))
                    new_nodes.append((level, size >> level, edge[-1][1]))
                size += 1
            with (
                conn.cursor() as cursor,
                cursor.copy("COPY tlog_nodes (level, idx, hash) FROM STDIN") as copy,
            ):
                for node in new_nodes:
                    copy.write_row(node)
            root = _fold(edge)
            if gap or len(rows) < INTEGRATION_BATCH:
                break
        conn.execute("UPDATE tlog_tree SET size = %s, root = %s WHERE id = 0", (size, root))
        return size, root

    # -- reads ---------------------------------------------------------------------------------

    @staticmethod
    def _nodes(conn: Conn, wanted: Iterable[tuple[int, int]]) -> dict[tuple[int, int], bytes]:
        """The stored hashes of the complete subtrees ``(level, index)``, in one query."""
        wanted = set(wanted)
        leaves = [index for level, index in wanted if level == 0]
        levels = [level for level, _ in wanted if level]
        indexes = [index for level, index in wanted if level]
        found: dict[tuple[int, int], bytes] = {}
        if leaves:
            for index, h in conn.execute(
                "SELECT idx, leaf_hash FROM tlog_leaves WHERE idx = ANY(%s)", (leaves,)
            ):
                found[(0, int(index))] = bytes(h)
        if levels:
            for level, index, h in conn.execute(
                "SELECT n.level, n.idx, n.hash FROM tlog_nodes n"
                " JOIN unnest(%s::smallint[], %s::bigint[]) AS w(level, idx)"
                " ON n.level = w.level AND n.idx = w.idx",
                (levels, indexes),
            ):
                found[(int(level), int(index))] = bytes(h)
        missing = wanted - found.keys()
        if missing:
            raise RuntimeError(f"transparency log nodes {sorted(missing)[:4]} are missing")
        return found

    def _with_subtrees(self, conn: Conn, compute: Callable[[SubtreeHash], T]) -> T:
        """``compute`` over the stored tree, with every node it needs read in one query: a
        first pass records the complete subtrees asked for, the second gets their hashes."""
        wanted: list[tuple[int, int]] = []

        def split(start: int, end: int, lookup: Callable[[int, int], bytes]) -> bytes:
            n = end - start
            if n & (n - 1) == 0:
                level = n.bit_length() - 1
                return lookup(level, start >> level)
            k = 1 << ((n - 1).bit_length() - 1)
            return node_hash(split(start, start + k, lookup), split(start + k, end, lookup))

        def record(level: int, index: int) -> bytes:
            wanted.append((level, index))
            return EMPTY_ROOT

        compute(lambda start, end: split(start, end, record))
        nodes = self._nodes(conn, wanted)
        return compute(lambda start, end: split(start, end, lambda lv, i: nodes[(lv, i)]))

    def _sizes(self, conn: Conn) -> tuple[int, int]:
        """The sequenced and the integrated size."""
        row = conn.execute(
            "SELECT s.next, t.size FROM tlog_sequence s, tlog_tree t WHERE s.id = 0 AND t.id = 0"
        ).fetchone()
        assert row is not None
        return int(row[0]), int(row[1])

    @_unavailable
    def size(self) -> int:
        with self._connection() as conn:
            return self._sizes(conn)[0]

    def _ready(self, conn: Conn, size: int | None) -> int:
        """``size`` (default: the log's), checked against the log and integrated."""
        sequenced, integrated = self._sizes(conn)
        if size is None:
            size = sequenced
        if not 0 <= size <= sequenced:
            raise InvalidInput(
                f"tree size {size} is outside the log (it has {sequenced} leaves)", field="size"
            )
        if size > integrated:  # integrate on this connection, then read in a new transaction
            conn.execute("SELECT pg_advisory_xact_lock(%s)", (_INTEGRATOR_LOCK,))
            self._integrate(conn)
            conn.commit()
        return size

    @_unavailable
    def root(self, size: int | None = None) -> bytes:
        with self._connection() as conn:
            size = self._ready(conn, size)
            if size == 0:
                return EMPTY_ROOT
            return self._with_subtrees(conn, lambda subtree: subtree(0, size))

    @_unavailable
    def leaf(self, index: int) -> LogLeaf:
        with self._connection() as conn:
            row = conn.execute(
                "SELECT idx, leaf_hash, entry, appended_at FROM tlog_leaves WHERE idx = %s",
                (index,),
            ).fetchone()
        if row is None:
            raise NotFound(f"the transparency log has no entry {index}")
        return LogLeaf(int(row[0]), bytes(row[1]), bytes(row[2]), row[3].astimezone(UTC))

    @_unavailable
    def indexes_of(self, code: str) -> list[int]:
        with self._connection() as conn:
            rows = conn.execute(
                "SELECT idx FROM tlog_leaves WHERE code = %s ORDER BY idx", (code,)
            ).fetchall()
        return [int(r[0]) for r in rows]

    @_unavailable
    def inclusion_proof(self, index: int, size: int | None = None) -> list[bytes]:
        with self._connection() as conn:
            size = self._ready(conn, size)
            if not 0 <= index < size:
                raise InvalidInput(
                    f"leaf index {index} is outside a tree of size {size}", field="index"
                )
            tree_size = size
            return self._with_subtrees(conn, lambda st: inclusion_path(index, tree_size, st))

    @_unavailable
    def consistency_proof(self, old_size: int, new_size: int) -> list[bytes]:
        with self._connection() as conn:
            self._ready(conn, new_size)
            if not 0 < old_size <= new_size:
                raise InvalidInput(
                    f"a consistency proof needs 1 <= old_size <= new_size, got {old_size} and "
                    f"{new_size}",
                    field="old_size",
                )
            return self._with_subtrees(conn, lambda st: consistency_path(old_size, new_size, st))

    @_unavailable
    def hashes(self, level: int, start: int, end: int) -> list[bytes]:
        with self._connection() as conn:
            if level == 0:
                rows = conn.execute(
                    "SELECT idx, leaf_hash FROM tlog_leaves WHERE idx >= %s AND idx < %s"
                    " ORDER BY idx",
                    (start, end),
                ).fetchall()
            else:
                if end << level > self._sizes(conn)[1]:  # past the tree: integrate first
                    self._ready(conn, None)
                rows = conn.execute(
                    "SELECT idx, hash FROM tlog_nodes WHERE level = %s AND idx >= %s AND idx < %s"
                    " ORDER BY idx",
                    (level, start, end),
                ).fetchall()
        return contiguous(start, rows)

    @_unavailable
    def entries(self, start: int, end: int) -> list[bytes]:
        with self._connection() as conn:
            rows = conn.execute(
                "SELECT idx, entry FROM tlog_leaves WHERE idx >= %s AND idx < %s ORDER BY idx",
                (start, end),
            ).fetchall()
        return contiguous(start, rows)

    # -- checkpoints ---------------------------------------------------------------------------

    @_unavailable
    def checkpoint(self, signer: CheckpointSigner) -> str:
        """Integrate, then sign and store a checkpoint of the tree, in one transaction under
        the integrator lock (so checkpoints are stored in the order of their sizes)."""
        at = self._now().replace(microsecond=0)
        with self._connection() as conn:
            conn.execute("SELECT pg_advisory_xact_lock(%s)", (_INTEGRATOR_LOCK,))
            size, root = self._integrate(conn)
            note = signer.sign(size, root, at)
            conn.execute(
                "INSERT INTO tlog_checkpoints (size, root, created_at, note)"
                " VALUES (%s, %s, %s, %s)",
                (size, root, at, note),
            )
        return note

    @_unavailable
    def latest_checkpoint(self) -> CheckpointRecord | None:
        with self._connection() as conn:
            row = conn.execute(
                "SELECT id, size, root, created_at, note FROM tlog_checkpoints"
                " ORDER BY id DESC LIMIT 1"
            ).fetchone()
        return None if row is None else _record(row)

    @_unavailable
    def checkpoints(self) -> list[CheckpointRecord]:
        with self._connection() as conn:
            rows = conn.execute(
                "SELECT id, size, root, created_at, note FROM tlog_checkpoints ORDER BY id"
            ).fetchall()
        return [_record(r) for r in rows]


def _record(row: tuple[Any, ...]) -> CheckpointRecord:
    return CheckpointRecord(
        int(row[0]), int(row[1]), bytes(row[2]), row[3].astimezone(UTC), str(row[4])
    )


__all__ = ["INTEGRATION_BATCH", "PgTransparencyLog"]
