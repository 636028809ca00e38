"""The transparency log as C2SP tlog-tiles: tile paths, tiles read from both stores, and a
monitor that follows a running server over HTTP from its checkpoint, tiles and entry bundles
alone."""

from __future__ import annotations

import gzip
import hashlib
import urllib.error
import urllib.request
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from saoy.core.errors import NotFound
from saoy.core.reception import codes
from saoy.core.trust.tiles import (
    TILE_WIDTH,
    TileReader,
    TileRef,
    decode_bundle,
    encode_bundle,
    encode_index,
    parse_tile_path,
    read_tile,
    split_hashes,
    tile_width,
    tiles_for,
)
from saoy.core.trust.translog import (
    CheckpointSigner,
    LogEntry,
    SqliteTransparencyLog,
    TransparencyLog,
    decode_entry,
    encode_entry,
    inclusion_path,
    leaf_hash,
    parse_verifier_key,
    reference_subtree,
    root_from_leaves,
    verify_checkpoint,
    verify_inclusion,
)
from saoy.core.trust.translog_pg import PgTransparencyLog
from tests.conftest import RunningServer, start_server
from tests.pg import postgres_server, postgresql_url

__all__ = ["postgres_server", "postgresql_url"]

# -- paths ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("index", "path"),
    [(0, "000"), (7, "007"), (999, "999"), (1000, "x001/000"), (1234067, "x001/x234/067")],
)
def test_tile_index_is_spelled_in_x_prefixed_groups(index: int, path: str) -> None:
    assert encode_index(index) == path
    assert parse_tile_path(f"3/{path}") == TileRef(3, index)
    assert TileRef(3, index).path == f"tile/3/{path}"


def test_paths_of_partial_tiles_and_entry_bundles_round_trip() -> None:
    for ref in (TileRef(0, 5, 17), TileRef(None, 1234067, 255), TileRef(None, 0), TileRef(63, 1)):
        assert ref.path.startswith("tile/")
        assert parse_tile_path(ref.path.removeprefix("tile/")) == ref
    assert TileRef(None, 2, 9).path == "tile/entries/002.p/9"
    assert TileRef(1, 1000, 256).full and not TileRef(1, 1000, 255).full


@pytest.mark.parametrize(
    "path",
    [
        "0/1",  # not 3 digits
        "0/x000/001",  # a leading zero group
        "0/001/002",  # the first group lacks its x
        "00/000",  # a level with a leading zero
        "64/000",  # a level past 63
        "-1/000",
        "0/000.p/0",  # an empty partial tile
        "0/000.p/256",  # a partial tile as wide as a full one
        "0/000.p/07",  # a width with a leading zero
        "0/000.p/",
        "entries/",
        "0/000/",
        "0/x001",
        "level/000",
        "0/" + "x999/" * 60 + "999",  # past any tree a log holds
    ],
)
def test_non_canonical_tile_paths_are_refused(path: str) -> None:
    with pytest.raises(ValueError):
        parse_tile_path(path)


def test_tiles_of_a_tree_follow_the_spec_example() -> None:
    """tlog-tiles: a tree of 70,000 leaves has 273 full level-0 tiles and one of width 112,
    one full level-1 tile and one of width 17, and one level-2 tile of width 1."""
    tiles = tiles_for(70_000)
    hashes = [t for t in tiles if t.level is not None]
    assert [(t.level, t.width) for t in hashes if not t.full] == [(0, 112), (1, 17), (2, 1)]
    assert sum(1 for t in hashes if t.level == 0 and t.full) == 273
    assert sum(1 for t in hashes if t.level == 1 and t.full) == 1
    assert len([t for t in tiles if t.level is None]) == 274
    assert {(t.level, t.width) for t in tiles_for(256) if t.level is not None} == {(0, 256), (1, 1)}
    assert tiles_for(0) == []
    assert tile_width(0, 273, 70_000) == 112 and tile_width(0, 274, 70_000) == 0
    assert all(t.covered_by(70_000) for t in tiles)
    assert not TileRef(0, 273, 113).covered_by(70_000)
    assert not TileRef(2, 0, 2).covered_by(70_000)


def test_entry_bundles_round_trip_and_truncation_is_refused() -> None:
    entries = [b"", b"a", b"x" * 300, b"\x00\xff" * 10]
    bundle = encode_bundle(entries)
    assert bundle[:2] == b"\x00\x00" and bundle[2:5] == b"\x00\x01a"
    assert decode_bundle(bundle) == entries
    with pytest.raises(ValueError):
        decode_bundle(bundle[:-1])
    with pytest.raises(ValueError):
        encode_bundle([b"x" * 65536])


# -- tiles from the stored log, on both stores ------------------------------------------------


@pytest.fixture(params=["sqlite", "postgresql"])
def tlog(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[TransparencyLog]:
    if request.param == "postgresql":
        log: TransparencyLog = PgTransparencyLog(request.getfixturevalue("postgresql_url"))
    else:
        log = SqliteTransparencyLog(tmp_path / "log.sqlite3")
    with log:
        yield log


def test_tiles_read_from_the_store_rebuild_the_tree(tlog: TransparencyLog) -> None:
    entries = [b"entry %d" % i for i in range(70_000 // 100)]  # 700: full and partial tiles
    tlog.append_many(entries)
    size = tlog.size()
    leaves = [leaf_hash(e) for e in entries]
    reader = TileReader(size, lambda ref: read_tile(tlog, ref))
    assert reader.root() == tlog.root() == root_from_leaves(leaves)
    level1 = split_hashes(read_tile(tlog, TileRef(1, 0, 2)), 2)
    assert level1 == [root_from_leaves(leaves[:256]), root_from_leaves(leaves[256:512])]
    assert decode_bundle(read_tile(tlog, TileRef(None, 2, 188))) == entries[512:]
    for index in (0, 255, 256, 511, 699):
        path = inclusion_path(index, size, reader.as_subtree)
        assert path == inclusion_path(index, size, reference_subtree(leaves))
    with pytest.raises(NotFound):
        read_tile(tlog, TileRef(0, 2, 189))  # one past the end
    with pytest.raises(NotFound):
        read_tile(tlog, TileRef(1, 0, 3))  # the third level-8 subtree is not complete
    with pytest.raises(ValueError):
        tlog.append(b"x" * 65536)  # an entry no bundle could carry


# -- a monitor following a running server over HTTP -------------------------------------------


def fetch(url: str) -> tuple[int, dict[str, str], bytes]:
    request = urllib.request.Request(url, headers={"Accept-Encoding": "gzip, identity"})
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            body = response.read()
            if response.headers.get("Content-Encoding") == "gzip":
                body = gzip.decompress(body)
            return response.status, dict(response.headers), body
    except urllib.error.HTTPError as error:
        return error.code, dict(error.headers), error.read()


def synthetic_entry(i: int) -> bytes:
    """An entry as the server writes them, about a copy no dossier backs."""
    at = datetime(2026, 5, 1, tzinfo=UTC)
    sha = hashlib.sha256(b"copy %d" % i).hexdigest()
    return encode_entry(LogEntry("issued", codes.new_code(), sha, at, "UBND Phường Bến Nghé"))


@pytest.fixture(params=["sqlite", "postgresql"])
def log_server(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[RunningServer]:
    """A server whose checkpoints this test signs itself (the loop would take an hour)."""
    url = request.getfixturevalue("postgresql_url") if request.param == "postgresql" else ""
    running = start_server(tmp_path, registry_url=url, checkpoint_seconds=3600.0)
    yield running
    running.stop()


def test_a_monitor_rebuilds_the_log_and_proves_a_copy_from_tiles_alone(
    log_server: RunningServer, reference_dossier: list[tuple[str, bytes]]
) -> None:
    server = log_server
    translog = server.server.translog
    signer: CheckpointSigner = server.server.verifier.publisher.signer  # type: ignore[union-attr]
    assert isinstance(translog, PgTransparencyLog) is bool(server.server.settings.registry_url)
    translog.append_many(synthetic_entry(i) for i in range(300))
    with server.client(kiosk_id="kiosk-tiles") as client:
        result = client.certify(
            [reference_dossier[1][1]], session_token=server.token("kiosk-tiles")
        )
    assert result.issued is not None
    code = result.issued.code
    translog.append_many(synthetic_entry(i) for i in range(300, 560))

    # Nothing past the start-up checkpoint (of the empty log) is served before one is signed.
    base = f"{server.http}/log"
    status, _, _ = fetch(f"{base}/tile/0/000")
    assert status == 404
    translog.checkpoint(signer)
    translog.append_many(synthetic_entry(i) for i in range(560, 570))  # not yet checkpointed

    status, headers, key_text = fetch(f"{base}/key")
    origin, key = parse_verifier_key(key_text.decode())
    status, headers, note = fetch(f"{base}/checkpoint")
    assert status == 200 and headers["Content-Type"] == "text/plain; charset=utf-8"
    assert "immutable" not in headers["Cache-Control"]
    checkpoint = verify_checkpoint(note.decode(), key, origin=origin)
    assert checkpoint.signature_ok and checkpoint.size == 561
    size = checkpoint.size

    tiles: dict[TileRef, bytes] = {}
    for ref in tiles_for(size):
        status, headers, body = fetch(f"{base}/{ref.path}")
        assert status == 200, ref.path
        assert headers["Content-Type"] == "application/octet-stream"
        immutable = "immutable" in headers["Cache-Control"]
        assert immutable is ref.full, ref.path
        if ref.level is None:  # entry bundles are compressed at the HTTP layer
            assert headers.get("Content-Encoding") == "gzip", ref.path
        tiles[ref] = body
    bundles = [tiles[r] for r in sorted(tiles, key=lambda r: r.index) if r.level is None]
    entries = [e for bundle in bundles for e in decode_bundle(bundle)]
    assert len(entries) == size
    leaves = [leaf_hash(e) for e in entries]
    level0 = [tiles[r] for r in sorted(tiles, key=lambda r: r.index) if r.level == 0]
    assert b"".join(leaves) == b"".join(level0)  # each entry hashes to its leaf in the tile
    assert root_from_leaves(leaves) == checkpoint.root

    reader = TileReader(size, lambda ref: tiles[ref])
    assert reader.root() == checkpoint.root
    index = next(i for i, e in enumerate(entries) if decode_entry(e).code == code)
    assert decode_entry(entries[index]).kind == "issued"
    proof = inclusion_path(index, size, reader.as_subtree)
    assert verify_inclusion(leaf_hash(entries[index]), index, size, proof, checkpoint.root)
    assert not verify_inclusion(leaf_hash(entries[index - 1]), index, size, proof, checkpoint.root)

    # Beyond the signed checkpoint, or not a tile: 404, though the store holds the entries.
    for path in (
        "tile/0/002.p/50",  # the checkpoint's partial tile is 49 wide
        "tile/0/003.p/1",
        "tile/0/002",
        "tile/entries/002.p/50",
        "tile/entries/002",
        "tile/1/000",
        "tile/1/000.p/3",
        "tile/2/000.p/1",
        "tile/0/2",
        "tile/0/x000/002",
        "tile/0/002.p/256",
    ):
        status, _, _ = fetch(f"{base}/{path}")
        assert status == 404, path
    assert tile_width(0, 2, size) == 49 and tile_width(1, 0, size) == 2
    assert len(tiles) == 3 + 1 + 3 and TILE_WIDTH == 256
