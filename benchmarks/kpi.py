"""Time of the KPI report (saoy.core.reception.kpi) over many dossiers, against a baseline in
the same run: a bare ``count(*)`` over the same receipts (so the ratio says what the joins and
aggregates cost, whatever the machine).

Synthetic dossiers spread over 30 days and 20 centers (a tenth refused, a twentieth still under
review, half paid online, a third rated) are written straight into the registry's tables, the
daily rollups computed once, then the report by center over the month and by day over one week
is timed (median of --runs; each report first brings the rollups up to date, finding nothing
changed).

    python benchmarks/kpi.py --dossiers 100000                      # a temporary SQLite file
    python benchmarks/kpi.py --dossiers 1000000 --registry-url postgresql://user@host/db
"""

from __future__ import annotations

import argparse
import random
import statistics
import tempfile
import time
import uuid
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

from saoy.core.reception.centers import Center, Centers, ReceptionDb
from saoy.core.reception.kpi import KpiReport
from saoy.core.storage.registries import create_registry
from saoy.core.storage.registry import SqlRegistry

CENTERS = 20
DAYS = 30
START = datetime(2026, 11, 1, 1, 0, tzinfo=UTC)  # 08:00 in Vietnam
BATCH = 10_000


def fill(db: ReceptionDb, count: int, seed: int = 1) -> None:
    """``count`` receipts with their decisions, payments and ratings."""
    rng = random.Random(seed)
    centers = Centers(db)
    codes = [f"000.00.{i:02d}.H26" for i in range(CENTERS)]
    for code in codes:
        centers.register_center(Center(code, f"Trung tâm {code}", "Hà Nội", "Hà Nội"))
    ts, js = db.ts, db.codec.to_json
    for start in range(0, count, BATCH):
        receipts, dossiers, payments, ratings = [], [], [], []
        for n in range(start, min(start + BATCH, count)):
            dossier_id = uuid.UUID(int=rng.getrandbits(128)).hex
            received = START + timedelta(seconds=rng.randrange(DAYS * 86400))
            center = codes[n % CENTERS]
            due = received + timedelta(hours=rng.choice((8, 30)))
            receipts.append(
                (dossier_id, f"{center}-{n:09d}", f"k-{n % 400}", f"r{n}", center, ts(received),
                 1 + n % 4, 1, 2000, 0, ts(due))
            )  # fmt: skip
            roll = rng.random()
            state = "NEEDS_REVIEW" if roll < 0.05 else "REJECTED" if roll < 0.15 else "ISSUED"
            decided = received + timedelta(minutes=rng.randrange(1, 3000))
            dossiers.append(
                (dossier_id, f"r{n}", f"k-{n % 400}", state, ts(received), ts(decided), 1,
                 js([]), js([]))
            )  # fmt: skip
            if rng.random() < 0.5:
                payments.append((dossier_id, f"FT{n}", 2000, ts(received), ts(received)))
            if state != "NEEDS_REVIEW" and rng.random() < 0.33:
                ratings.append((dossier_id, rng.randint(1, 5), ts(decided)))
        with db.transaction(write=True) as tx:
            tx.executemany(
                "INSERT INTO receipts (dossier_id, dossier_code, kiosk_id, request_id,"
                " center_code, received_at, pages, copies, fee_vnd, fees_waived, appointment_at)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                receipts,
            )
            tx.executemany(
                "INSERT INTO dossiers (id, request_id, kiosk_id, state, created_at, decided_at,"
                " page_count, reasons, checks) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                dossiers,
            )
            tx.executemany(
                "INSERT INTO payments (dossier_id, bank_reference, amount_vnd, paid_at,"
                " recorded_at) VALUES (?, ?, ?, ?, ?)",
                payments,
            )
            tx.executemany(
                "INSERT INTO ratings (dossier_id, score, rated_at) VALUES (?, ?, ?)", ratings
            )


def timed(fn: Any, runs: int) -> float:
    fn()  # warm-up
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dossiers", type=int, default=100_000)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--registry-url", default="", help="PostgreSQL URL; default SQLite")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        location = args.registry_url or Path(folder) / "registry.sqlite3"
        registry = create_registry(location)
        assert isinstance(registry, SqlRegistry)
        db = ReceptionDb(registry)
        start = time.perf_counter()
        fill(db, args.dossiers)
        print(f"{args.dossiers} dossiers written in {time.perf_counter() - start:.1f} s")
        if registry.column_types["timestamp"] == "TIMESTAMPTZ":
            with db.transaction(write=True) as tx:
                tx.execute("ANALYZE")
        report = KpiReport(db)
        start = time.perf_counter()
        days = report.refresh()
        print(f"daily rollups of {days} days computed in {time.perf_counter() - start:.1f} s")

        def baseline() -> None:
            with db.transaction(write=False) as tx:
                tx.execute(
                    "SELECT center_code, count(*) FROM receipts GROUP BY center_code"
                ).fetchall()

        base = timed(baseline, args.runs)
        month = timed(
            lambda: report.report("center", date(2026, 11, 1), date(2026, 11, 30)), args.runs
        )
        week = timed(
            lambda: report.report("day", date(2026, 11, 10), date(2026, 11, 16)), args.runs
        )
        print(f"baseline count(*) by center:     {base * 1000:8.1f} ms")
        print(f"KPI report by center, 30 days:   {month * 1000:8.1f} ms  ({month / base:.1f}x)")
        print(f"KPI report by day, 7 days:       {week * 1000:8.1f} ms  ({week / base:.1f}x)")
        registry.close()


if __name__ == "__main__":
    main()
