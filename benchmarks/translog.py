"""Throughput of the transparency log: appends from many threads, integration and checkpoint,
tile reads; the SQLite log (the baseline) and, given a server, the PostgreSQL log in the same run.

On PostgreSQL, appends only sequence (the threads' appends share transactions: group commit) and
the checkpoint integrates the tree; on SQLite each append writes its tree nodes and waits for the
file's write lock. The figures are entries per second and milliseconds per tile; the ratio to
SQLite is what to compare between machines.

    python benchmarks/translog.py --entries 20000 --threads 8
    python benchmarks/translog.py --entries 20000 --threads 8 \\
        --postgresql-url postgresql://user@host/postgres   # a scratch database is made there
"""

from __future__ import annotations

import argparse
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import psycopg
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from saoy.core.trust.tiles import TileRef, read_tile
from saoy.core.trust.translog import CheckpointSigner, SqliteTransparencyLog, TransparencyLog
from saoy.core.trust.translog_pg import PgTransparencyLog


@dataclass
class Figures:
    appends_per_s: float
    checkpoint_s: float
    tile_ms: float


def measure(log: TransparencyLog, entries: int, threads: int) -> Figures:
    signer = CheckpointSigner(Ed25519PrivateKey.generate(), "bench/log")
    per_thread = entries // threads

    def work(n: int) -> None:
        for i in range(per_thread):
            log.append(b'{"bench":%d,"thread":%d}' % (i, n))

    pool = [threading.Thread(target=work, args=(n,)) for n in range(threads)]
    start = time.perf_counter()
    for t in pool:
        t.start()
    for t in pool:
        t.join()
    appended = time.perf_counter() - start
    start = time.perf_counter()
    log.checkpoint(signer)
    checkpoint = time.perf_counter() - start
    full = log.size() // 256
    start = time.perf_counter()
    for index in range(full):
        read_tile(log, TileRef(0, index))
        read_tile(log, TileRef(None, index))
    tiles = (time.perf_counter() - start) / max(1, 2 * full)
    return Figures(per_thread * threads / appended, checkpoint, tiles * 1000)


@contextmanager
def scratch_database(url: str) -> Iterator[str]:
    """A new database on the server of ``url``, dropped afterwards."""
    name = f"saoy_bench_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(url, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    try:
        yield url.rsplit("/", 1)[0] + "/" + name
    finally:
        with psycopg.connect(url, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def report(name: str, figures: Figures, base: Figures) -> None:
    def ratio(value: float, baseline: float) -> str:
        return f"({value / baseline:5.2f}x)" if baseline else ""

    print(
        f"{name:<11} appends {figures.appends_per_s:9.0f}/s "
        f"{ratio(figures.appends_per_s, base.appends_per_s):9}"
        f"  checkpoint {figures.checkpoint_s * 1000:8.1f} ms "
        f"{ratio(figures.checkpoint_s, base.checkpoint_s):9}"
        f"  tile {figures.tile_ms:6.2f} ms {ratio(figures.tile_ms, base.tile_ms)}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--entries", type=int, default=20_000)
    parser.add_argument("--threads", type=int, default=8)
    parser.add_argument("--postgresql-url", default="", help="a server to make a scratch db on")
    args = parser.parse_args()
    print(f"{args.entries} entries appended one by one from {args.threads} threads")
    with (
        tempfile.TemporaryDirectory() as folder,
        SqliteTransparencyLog(Path(folder) / "translog.sqlite3") as sqlite_log,
    ):
        base = measure(sqlite_log, args.entries, args.threads)
    report("SQLite", base, base)
    if args.postgresql_url:
        with (
            scratch_database(args.postgresql_url) as url,
            PgTransparencyLog(url, max_connections=args.threads) as pg_log,
        ):
            report("PostgreSQL", measure(pg_log, args.entries, args.threads), base)


if __name__ == "__main__":
    main()
