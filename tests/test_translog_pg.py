"""The transparency log in PostgreSQL: processes and threads appending at once get distinct,
contiguous indexes while an integrator builds the tree and signs checkpoints beside them;
appends never wait for integration, and a failed batch leaves no gap."""

from __future__ import annotations

import multiprocessing
import threading
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import psycopg
import pytest

from saoy.core.trust.translog import (
    CheckpointSigner,
    consistency_path,
    ensure_log_key,
    leaf_hash,
    reference_subtree,
    root_from_leaves,
    verify_checkpoint,
)
from saoy.core.trust.translog_backends import open_transparency_log
from saoy.core.trust.translog_pg import _INTEGRATOR_LOCK, INTEGRATION_BATCH, PgTransparencyLog
from tests.pg import postgres_server, postgresql_url

__all__ = ["postgres_server", "postgresql_url"]

ORIGIN = "saoy.test/log"


def append_from_process(url: str, worker: int, threads: int, rounds: int) -> list[list[int]]:
    """Runs in a process of its own: ``threads`` threads append, alone or in batches of
    three; the indexes of each call, with the entries it appended known from their names."""
    calls: list[list[int]] = []
    lock = threading.Lock()
    with PgTransparencyLog(url) as log:

        def run(thread: int) -> None:
            for i in range(rounds):
                name = b"p%d-t%d-%d" % (worker, thread, i)
                if i % 3:
                    got = [log.append(name)]
                else:
                    got = log.append_many([name + b"-a", name + b"-b", name + b"-c"])
                with lock:
                    calls.append(got)

        pool = [threading.Thread(target=run, args=(t,)) for t in range(threads)]
        for t in pool:
            t.start()
        for t in pool:
            t.join()
    return calls


def test_processes_and_threads_append_while_checkpoints_are_signed(
    postgresql_url: str, tmp_path: Path
) -> None:
    log = PgTransparencyLog(postgresql_url)
    signer = CheckpointSigner.from_file(ensure_log_key(tmp_path), ORIGIN)
    notes: list[str] = []
    done = threading.Event()

    def integrate() -> None:  # the checkpoint loop of another server, signing all along
        while not done.is_set():
            notes.append(log.checkpoint(signer))
            time.sleep(0.01)

    integrator = threading.Thread(target=integrate)
    integrator.start()
    workers, threads, rounds = 3, 4, 15
    try:
        context = multiprocessing.get_context("spawn")
        with ProcessPoolExecutor(workers, mp_context=context) as pool:
            futures = [
                pool.submit(append_from_process, postgresql_url, w, threads, rounds)
                for w in range(workers)
            ]
            calls = [call for f in futures for call in f.result(timeout=120)]
    finally:
        done.set()
        integrator.join()
    notes.append(log.checkpoint(signer))
    try:
        size = sum(len(call) for call in calls)
        assert size == workers * threads * 25  # 5 batches of 3 and 10 single entries
        indexes = sorted(i for call in calls for i in call)
        assert indexes == list(range(size))  # distinct, and no gap
        assert all(call == list(range(call[0], call[0] + len(call))) for call in calls)
        entries = [log.entry(i) for i in range(size)]
        for call in calls:  # a batch's entries lie at its indexes, in its order
            if len(call) == 3:
                assert [entries[i][-2:] for i in call] == [b"-a", b"-b", b"-c"]
                assert len({entries[i][:-2] for i in call}) == 1
        leaves = [leaf_hash(e) for e in entries]
        assert log.size() == log.integrated_size() == size
        assert log.root() == root_from_leaves(leaves)
        sizes = []
        for note in notes:  # every checkpoint signed while appends raced is of a true prefix
            checkpoint = verify_checkpoint(note, signer.public_key, origin=ORIGIN)
            assert checkpoint.signature_ok
            assert checkpoint.root == root_from_leaves(leaves[: checkpoint.size])
            sizes.append(checkpoint.size)
        assert sizes == sorted(sizes) and sizes[-1] == size
        assert [c.size for c in log.checkpoints()] == sizes
        middle = sizes[len(sizes) // 2] or 1
        want = consistency_path(middle, size, reference_subtree(leaves))
        assert log.consistency_proof(middle, size) == want
    finally:
        log.close()


def test_appends_do_not_wait_for_the_integrator(postgresql_url: str, tmp_path: Path) -> None:
    signer = CheckpointSigner.from_file(ensure_log_key(tmp_path), ORIGIN)
    with PgTransparencyLog(postgresql_url) as log, psycopg.connect(postgresql_url) as other:
        other.execute("SELECT pg_advisory_lock(%s)", (_INTEGRATOR_LOCK,))  # a slow integrator
        started = time.monotonic()
        assert log.append_many([b"e%d" % i for i in range(INTEGRATION_BATCH + 10)])[-1] == (
            INTEGRATION_BATCH + 9
        )
        assert log.append(b"one more") == INTEGRATION_BATCH + 10
        assert time.monotonic() - started < 5
        assert log.size() == INTEGRATION_BATCH + 11 and log.integrated_size() == 0
        assert log.entry(3) == b"e3" and log.indexes_of("none") == []
        other.execute("SELECT pg_advisory_unlock(%s)", (_INTEGRATOR_LOCK,))
        other.commit()
        log.checkpoint(signer)  # integrates in more than one round
        assert log.integrated_size() == INTEGRATION_BATCH + 11
    entries = [b"e%d" % i for i in range(INTEGRATION_BATCH + 10)] + [b"one more"]
    with PgTransparencyLog(postgresql_url) as reopened:  # another process, later
        reopened.append_many([b"later %d" % i for i in range(300)])
        entries += [b"later %d" % i for i in range(300)]
        assert reopened.root() == root_from_leaves([leaf_hash(e) for e in entries])
        latest = reopened.latest_checkpoint()
        assert latest is not None and latest.size == INTEGRATION_BATCH + 11


def test_a_failed_batch_gives_its_indexes_back(postgresql_url: str) -> None:
    with PgTransparencyLog(postgresql_url) as log:
        log.append_many([b"a", b"b"])
        with psycopg.connect(postgresql_url) as db:  # a stray row where the next batch goes
            db.execute(
                "INSERT INTO tlog_leaves (idx, leaf_hash, entry, appended_at)"
                " VALUES (3, %s, 'x', now())",
                (leaf_hash(b"x"),),
            )
        with pytest.raises(psycopg.errors.UniqueViolation):
            log.append_many([b"c", b"d"])
        with psycopg.connect(postgresql_url) as db:
            db.execute("DELETE FROM tlog_leaves WHERE idx = 3")
        assert log.size() == 2
        assert log.append_many([b"c", b"d"]) == [2, 3]
        assert log.root() == root_from_leaves([leaf_hash(e) for e in (b"a", b"b", b"c", b"d")])


def test_the_log_lives_beside_the_registry(postgresql_url: str, tmp_path: Path) -> None:
    with open_transparency_log(postgresql_url, tmp_path) as log:
        assert isinstance(log, PgTransparencyLog)
        log.append(b"x")
    assert not (tmp_path / "translog.sqlite3").exists()
    with open_transparency_log("", tmp_path) as log:
        assert not isinstance(log, PgTransparencyLog) and log.size() == 0
    assert (tmp_path / "translog.sqlite3").exists()
