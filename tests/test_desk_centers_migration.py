"""Desk schema 2: the desk's own centers and kiosk assignments (``desk_centers``,
``desk_center_kiosks``) fold into reception's ``service_centers`` and ``kiosks``, on SQLite and
PostgreSQL, with the officials, their sessions and the register kept."""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psycopg
import pytest

from saoy.core.desk import deskdb
from saoy.core.desk.deskdb import UNDECLARED, DeskDb
from saoy.core.desk.officials import Officials
from saoy.core.reception.centers import Center, Centers, ReceptionDb
from saoy.core.storage.registry import SqliteRegistry, SqlRegistry
from saoy.core.storage.registry_pg import PostgresRegistry
from tests.pg import postgres_server, postgresql_url

__all__ = ["postgres_server", "postgresql_url"]

H26 = Center("000.00.01.H26", "Trung tâm Hoàn Kiếm", "Thành phố Hà Nội", "Phường Hoàn Kiếm")
HUE = "000.00.02.HUE"


@pytest.fixture(params=["sqlite", "postgresql"])
def location(request: pytest.FixtureRequest, tmp_path: Path) -> Any:
    if request.param == "sqlite":
        return tmp_path / "registry.sqlite3"
    return request.getfixturevalue("postgresql_url")


def _open(location: Any) -> SqlRegistry:
    if isinstance(location, Path):
        return SqliteRegistry(location)
    return PostgresRegistry(location)


def _desk_v1(registry: SqlRegistry, centers: list[tuple[str, str, str]]) -> None:
    """The desk's tables as version 1 left them, with centers, kiosks, an official at each
    center, a session and a register book."""
    Centers(ReceptionDb(registry)).register_center(H26)
    Centers(ReceptionDb(registry)).register_kiosk("kiosk-both", H26.code, "Sảnh tầng 1")
    at = registry.codec.to_ts(datetime(2026, 12, 1, tzinfo=UTC))
    types = registry.column_types
    with registry._transaction(write=True) as db:
        db.execute(
            "CREATE TABLE desk_schema_version (version INTEGER PRIMARY KEY,"
            f" applied_at {types['timestamp']} NOT NULL)"
        )
        for statement in deskdb._MIGRATIONS[0]:
            db.execute(statement.format_map(types))
        db.execute("INSERT INTO desk_schema_version (version, applied_at) VALUES (1, ?)", (at,))
        for center_id, name, review in centers:
            db.execute(
                "INSERT INTO desk_centers (id, name, review) VALUES (?, ?, ?)",
                (center_id, name, review),
            )
            db.execute(
                "INSERT INTO officials (id, full_name, title, center, role, password_hash,"
                " totp_secret, certificate, created_at) VALUES (?, ?, ?, ?, 'official', 'h',"
                " 's', 'c.p12', ?)",
                (f"cb{center_id[-3:].lower()}", "Nguyễn Văn A", "CB", center_id, at),
            )
        kiosks = {"kiosk-both": centers[-1][0], "kiosk-desk": centers[-1][0]}
        for kiosk_id, center_id in kiosks.items():
            db.execute(
                "INSERT INTO desk_center_kiosks (kiosk_id, center) VALUES (?, ?)",
                (kiosk_id, center_id),
            )
        official = db.execute("SELECT min(id) FROM officials").fetchone()[0]
        db.execute(
            "INSERT INTO official_sessions (token_hash, official_id, created_at, expires_at)"
            " VALUES ('t', ?, ?, ?)",
            (official, at, at),
        )
        db.execute(
            "INSERT INTO register_books (center, year, last_number) VALUES (?, 2026, 7)",
            (H26.code,),
        )


def _tables(registry: SqlRegistry) -> set[str]:
    with registry._transaction(write=False) as db:
        if isinstance(registry, SqliteRegistry):
            rows = db.execute("SELECT name FROM sqlite_master WHERE type = 'table'").fetchall()
        else:
            rows = db.execute(
                "SELECT table_name FROM information_schema.tables"
                " WHERE table_schema = current_schema()"
            ).fetchall()
    return {name for (name,) in rows}


def test_the_desks_centers_become_receptions(location: Any) -> None:
    registry = _open(location)
    try:
        _desk_v1(registry, [(H26.code, "UBND Phường Hoàn Kiếm", "all"), (HUE, "UBND Huế", "all")])
    finally:
        registry.close()

    registry = _open(location)
    try:
        db = DeskDb(registry)
        centers = Centers(db.reception)
        # a center reception knew keeps its record and takes the desk's policy
        assert centers.center(H26.code) == H26
        assert centers.review(H26.code) == "all"
        # a center only the desk knew is registered, its province and address undeclared
        hue = centers.center(HUE)
        assert (hue.name, hue.province, hue.address) == ("UBND Huế", UNDECLARED, UNDECLARED)
        assert centers.review(HUE) == "all"
        # kiosks: the desk's own joins its center; one both knew stays where reception had it
        assert centers.kiosk("kiosk-desk").center_code == HUE  # type: ignore[union-attr]
        both = centers.kiosk("kiosk-both")
        assert both is not None and (both.center_code, both.name) == (H26.code, "Sảnh tầng 1")
        # the desk's tables are gone; officials, sessions and the register are kept
        tables = _tables(registry)
        assert not {"desk_centers", "desk_center_kiosks", "officials_v2"} & tables
        officials = Officials(db, default_center=H26.code)
        assert sorted(o.center for o in officials.list()) == [H26.code, HUE]
        assert officials.reviews_everything("kiosk-desk")
        assert officials.center_of_kiosk("kiosk-both") == H26.code
        with registry._transaction(write=False) as tx:
            assert tx.execute("SELECT count(*) FROM official_sessions").fetchone()[0] == 1
            assert tx.execute("SELECT last_number FROM register_books").fetchone()[0] == 7
            version = tx.execute("SELECT max(version) FROM desk_schema_version").fetchone()[0]
            assert version == deskdb.DESK_SCHEMA_VERSION
        # an official now belongs to a registered center: the reference is reception's
        error = sqlite3.IntegrityError if isinstance(location, Path) else psycopg.IntegrityError
        with pytest.raises(error), registry._transaction(write=True) as tx:
            tx.execute(
                "INSERT INTO officials (id, full_name, title, center, role, password_hash,"
                " totp_secret, certificate, created_at) VALUES ('x', 'X', 'X', '000.00.09.NO',"
                " 'official', 'h', 's', 'c', ?)",
                (registry.codec.to_ts(datetime.now(UTC)),),
            )
    finally:
        registry.close()

    registry = _open(location)  # reopening migrates nothing twice
    try:
        DeskDb(registry)
    finally:
        registry.close()


def test_a_desk_center_that_is_no_unit_code_stops_the_migration(location: Any) -> None:
    registry = _open(location)
    try:
        _desk_v1(registry, [("thu", "Phường Thử", "uncertain")])
    finally:
        registry.close()
    registry = _open(location)
    try:
        with pytest.raises(RuntimeError, match="'thu' is no unit code"):
            DeskDb(registry)
        # nothing changed: the desk's tables are still there, at version 1
        assert {"desk_centers", "desk_center_kiosks"} <= _tables(registry)
        with registry._transaction(write=False) as tx:
            assert tx.execute("SELECT max(version) FROM desk_schema_version").fetchone()[0] == 1
    finally:
        registry.close()
