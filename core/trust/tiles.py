"""The transparency log as C2SP tlog-tiles (https://c2sp.org/tlog-tiles): tile paths, which
tiles a tree size covers, entry bundles, and the subtree hashes a monitor rebuilds from tiles.

A hash tile at level ``L``, index ``N`` holds up to 256 consecutive 32-byte Merkle tree hashes
at tree level ``8 * L``: the hash of the complete subtree over leaves
``[(N * 256 + i) * 256**L, (N * 256 + i + 1) * 256**L)`` for ``i`` from 0. A full tile has 256;
a partial one (``.p/<W>``) the first ``W``, 1 to 255. An entry bundle at index ``N`` holds the
entries of the level-0 tile ``N``, each as a big-endian 16-bit length and the entry's bytes.

Paths spell ``N`` in 3-digit groups, all but the last prefixed with ``x``: 1234067 is
``x001/x234/067``. A tile is *covered* by a tree of ``size`` leaves when every hash it holds
is the hash of a complete subtree of that tree; only covered tiles of a signed checkpoint's
tree are served.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Final

from saoy.core.errors import NotFound
from saoy.core.trust.translog import (
    HASH_SIZE,
    MAX_ENTRY_BYTES,
    SubtreeHash,
    TransparencyLog,
    node_hash,
    root_from_leaves,
)

TILE_HEIGHT: Final = 8
TILE_WIDTH: Final = 1 << TILE_HEIGHT
MAX_LEVEL: Final = 63
_MAX_PATH: Final = 160
_GROUP = re.compile(r"x[0-9]{3}")
_LAST = re.compile(r"[0-9]{3}")
_LEVEL = re.compile(r"0|[1-9][0-9]?")
_WIDTH = re.compile(r"[1-9][0-9]{0,2}")


@dataclass(frozen=True)
class TileRef:
    """One tile: ``level`` None for an entry bundle, else a hash tile's level."""

    level: int | None
    index: int
    width: int = TILE_WIDTH

    def __post_init__(self) -> None:
        if self.level is not None and not 0 <= self.level <= MAX_LEVEL:
            raise ValueError(f"tile level {self.level} is outside 0..{MAX_LEVEL}")
        if self.index < 0:
            raise ValueError(f"tile index {self.index} is negative")
        if not 1 <= self.width <= TILE_WIDTH:
            raise ValueError(f"tile width {self.width} is outside 1..{TILE_WIDTH}")

    @property
    def full(self) -> bool:
        return self.width == TILE_WIDTH

    @property
    def path(self) -> str:
        """The path under the log's prefix: ``tile/<L>/<N>[.p/<W>]`` or
        ``tile/entries/<N>[.p/<W>]``."""
        level = "entries" if self.level is None else str(self.level)
        suffix = "" if self.full else f".p/{self.width}"
        return f"tile/{level}/{encode_index(self.index)}{suffix}"

    @property
    def tree_level(self) -> int:
        """The Merkle tree level of the hashes in the tile (entries: their leaves, 0)."""
        return TILE_HEIGHT * (self.level or 0)

    @property
    def first(self) -> int:
        """The index, at :attr:`tree_level`, of the tile's first hash."""
        return self.index * TILE_WIDTH

    def leaves_needed(self) -> int:
        """The smallest tree size that covers the tile."""
        return (self.first + self.width) << self.tree_level

    def covered_by(self, size: int) -> bool:
        return self.leaves_needed() <= size


def encode_index(index: int) -> str:
    """``N`` as tlog-tiles path elements: 1234067 → ``x001/x234/067``."""
    if index < 0:
        raise ValueError(f"tile index {index} is negative")
    digits = str(index)
    digits = "0" * (-len(digits) % 3) + digits
    groups = [digits[i : i + 3] for i in range(0, len(digits), 3)]
    return "/".join([*(f"x{g}" for g in groups[:-1]), groups[-1]])


def parse_tile_path(path: str) -> TileRef:
    """The tile at ``path`` (what follows ``tile/``, say ``1/x001/234.p/7``); ValueError for
    any path that is not the canonical spelling of a tile."""
    if len(path) > _MAX_PATH:
        raise ValueError("tile path is too long")
    width = TILE_WIDTH
    main, partial, rest = path.partition(".p/")
    if partial:
        if not _WIDTH.fullmatch(rest) or int(rest) >= TILE_WIDTH:
            raise ValueError(f"partial tile width {rest!r} must be 1 to {TILE_WIDTH - 1}")
        width = int(rest)
    parts = main.split("/")
    if len(parts) < 2:
        raise ValueError("tile path must be <level>/<index>")
    level: int | None
    if parts[0] == "entries":
        level = None
    elif _LEVEL.fullmatch(parts[0]) and int(parts[0]) <= MAX_LEVEL:
        level = int(parts[0])
    else:
        raise ValueError(f"tile level {parts[0]!r} must be 0 to {MAX_LEVEL} or 'entries'")
    groups, last = parts[1:-1], parts[-1]
    if not _LAST.fullmatch(last) or not all(_GROUP.fullmatch(g) for g in groups):
        raise ValueError("tile index must be 3-digit groups, all but the last x-prefixed")
    index = int("".join(g[1:] for g in groups) + last)
    if encode_index(index) != "/".join(parts[1:]):
        raise ValueError("tile index has leading zero groups")
    return TileRef(level, index, width)


def tile_width(level: int | None, index: int, size: int) -> int:
    """How many hashes (or entries) tile ``index`` at ``level`` holds in a tree of ``size``
    leaves: 256 when full, 0 when the tree has none of them."""
    count = size >> (TILE_HEIGHT * (level or 0))
    return max(0, min(TILE_WIDTH, count - index * TILE_WIDTH))


def tiles_for(size: int) -> list[TileRef]:
    """Every tile, hash tiles level by level and then entry bundles, of a tree of ``size``."""
    out: list[TileRef] = []
    level = 0
    while size >> (TILE_HEIGHT * level):
        count = size >> (TILE_HEIGHT * level)
        for index in range((count + TILE_WIDTH - 1) // TILE_WIDTH):
            out.append(TileRef(level, index, tile_width(level, index, size)))
        level += 1
    for index in range((size + TILE_WIDTH - 1) // TILE_WIDTH):
        out.append(TileRef(None, index, tile_width(None, index, size)))
    return out


def read_tile(log: TransparencyLog, ref: TileRef) -> bytes:
    """The bytes of tile ``ref`` from the stored log; NotFound when the log does not hold all
    of it (the caller checks that a signed checkpoint covers it)."""
    if ref.level is None:
        entries = log.entries(ref.first, ref.first + ref.width)
        if len(entries) == ref.width:
            return encode_bundle(entries)
    else:
        hashes = log.hashes(ref.tree_level, ref.first, ref.first + ref.width)
        if len(hashes) == ref.width:
            return b"".join(hashes)
    raise NotFound(f"the transparency log has no {ref.path}")


def encode_bundle(entries: Iterable[bytes]) -> bytes:
    """An entry bundle: each entry as a big-endian 16-bit length and its bytes."""
    out = bytearray()
    for entry in entries:
        if len(entry) > MAX_ENTRY_BYTES:
            raise ValueError(f"a bundled entry is at most {MAX_ENTRY_BYTES} bytes")
        out += len(entry).to_bytes(2, "big") + entry
    return bytes(out)


def decode_bundle(data: bytes) -> list[bytes]:
    """The entries of an entry bundle; ValueError when it is truncated."""
    entries: list[bytes] = []
    at = 0
    while at < len(data):
        if at + 2 > len(data):
            raise ValueError("entry bundle ends inside a length")
        n = int.from_bytes(data[at : at + 2], "big")
        if at + 2 + n > len(data):
            raise ValueError("entry bundle ends inside an entry")
        entries.append(data[at + 2 : at + 2 + n])
        at += 2 + n
    return entries


def split_hashes(data: bytes, width: int) -> list[bytes]:
    """The hashes of a hash tile's bytes; ValueError unless it holds exactly ``width``."""
    if len(data) != width * HASH_SIZE:
        raise ValueError(f"a tile of width {width} has {width * HASH_SIZE} bytes, not {len(data)}")
    return [data[i : i + HASH_SIZE] for i in range(0, len(data), HASH_SIZE)]


class TileReader:
    """Subtree hashes of a tree of ``size`` leaves, from hash tiles alone: what a monitor uses
    to recompute the checkpoint's root or an inclusion proof. ``fetch`` gets a tile's bytes;
    each tile is fetched once."""

    def __init__(self, size: int, fetch: Callable[[TileRef], bytes]) -> None:
        self.size = size
        self._fetch = fetch
        self._tiles: dict[TileRef, list[bytes]] = {}

    def tile(self, level: int, index: int) -> list[bytes]:
        width = tile_width(level, index, self.size)
        if width == 0:
            raise ValueError(f"a tree of {self.size} leaves has no tile {level}/{index}")
        ref = TileRef(level, index, width)
        if ref not in self._tiles:
            self._tiles[ref] = split_hashes(self._fetch(ref), width)
        return self._tiles[ref]

    def node(self, level: int, index: int) -> bytes:
        """The hash of the complete subtree ``index`` at tree ``level``: from the tile at the
        level at or below it, hashing up the tile's hashes it spans."""
        tile_level, height = divmod(level, TILE_HEIGHT)
        first = index << height  # at tree level TILE_HEIGHT * tile_level
        tile = self.tile(tile_level, first >> TILE_HEIGHT)
        offset = first % TILE_WIDTH
        return root_from_leaves(tile[offset : offset + (1 << height)])

    def subtree(self, start: int, end: int) -> bytes:
        """MTH of leaves ``[start, end)``, for the ranges RFC 9162's proofs ask for."""
        n = end - start
        if n & (n - 1) == 0:
            level = n.bit_length() - 1
            return self.node(level, start >> level)
        k = 1 << ((n - 1).bit_length() - 1)
        return node_hash(self.subtree(start, start + k), self.subtree(start + k, end))

    def root(self) -> bytes:
        return root_from_leaves([]) if self.size == 0 else self.subtree(0, self.size)

    @property
    def as_subtree(self) -> SubtreeHash:
        return self.subtree
