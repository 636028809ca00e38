"""The transparency log over HTTP as C2SP tlog-tiles, under the prefix ``/log/``: the latest
signed checkpoint, hash tiles and entry bundles (https://c2sp.org/tlog-tiles). Monitors follow
the log from these alone; ``/log/key`` (the verifier key) is served beside them.

Only what a signed checkpoint covers is served: a tile or bundle beyond the latest checkpoint's
tree is 404 even when the store already holds it. A full tile never changes and is cached for a
year; a partial one is the same for ever too, but a log may drop it once the full tile exists,
so it is cached for a day; the checkpoint moves, and is cached for a few seconds at most.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from concurrent.futures import Executor
from typing import TypeVar

from aiohttp import web

from saoy.core.errors import NotFound
from saoy.core.trust.tiles import parse_tile_path, read_tile
from saoy.core.trust.translog import TransparencyLog

T = TypeVar("T")

CHECKPOINT_TYPE = "text/plain; charset=utf-8"
TILE_TYPE = "application/octet-stream"
FULL_TILE_CACHE = "public, max-age=31536000, immutable"
PARTIAL_TILE_CACHE = "public, max-age=86400"
CHECKPOINT_CACHE = "public, max-age=2, must-revalidate"


def add_log_routes(app: web.Application, log: TransparencyLog, executor: Executor) -> None:
    """``GET /log/checkpoint``, ``/log/tile/<L>/<N>[.p/<W>]``, ``/log/tile/entries/<N>[.p/<W>]``."""

    async def run(fn: Callable[..., T], *args: object) -> T:
        return await asyncio.get_running_loop().run_in_executor(executor, fn, *args)

    async def checkpoint(_: web.Request) -> web.Response:
        latest = await run(log.latest_checkpoint)
        if latest is None:
            raise web.HTTPNotFound(text="the log has no checkpoint yet")
        return web.Response(
            body=latest.note.encode(),
            headers={"Content-Type": CHECKPOINT_TYPE, "Cache-Control": CHECKPOINT_CACHE},
        )

    async def tile(request: web.Request) -> web.Response:
        try:
            ref = parse_tile_path(request.match_info["path"])
        except ValueError as error:
            raise web.HTTPNotFound(text=f"not a tile: {error}") from None
        latest = await run(log.latest_checkpoint)
        if latest is None or not ref.covered_by(latest.size):
            raise web.HTTPNotFound(text=f"no signed checkpoint covers {ref.path} yet")
        try:
            body = await run(read_tile, log, ref)
        except NotFound as error:
            raise web.HTTPNotFound(text=error.message) from None
        response = web.Response(
            body=body,
            headers={
                "Content-Type": TILE_TYPE,
                "Cache-Control": FULL_TILE_CACHE if ref.full else PARTIAL_TILE_CACHE,
            },
        )
        if ref.level is None:
            response.enable_compression()  # entry bundles: gzip or deflate when asked for
        return response

    app.router.add_get("/log/checkpoint", checkpoint)
    app.router.add_get("/log/tile/{path:.+}", tile)


__all__ = ["add_log_routes"]
