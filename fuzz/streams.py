"""The stream harnesses' input format and their in-process server.

An input is a sequence of records, each ``tag (1 byte) | length (3 bytes, big-endian) |
payload``; a record cut short by the end of the input keeps what there is. The harnesses turn
each record into one message of the stream (which message, by the tag), so the fuzzer mutates
whole messages, their order and their fields, and ``make_seeds.py`` writes well-formed
sequences with :func:`encode`.

:func:`start_server` runs a real saoy server (``create_server``, the interceptors, the
servicers) in this process, on its own event loop thread, with a throwaway data dir; the
harness talks to it over a loopback channel like a kiosk does.
"""

from __future__ import annotations

import asyncio
import atexit
import shutil
import struct
import tempfile
import threading
from collections.abc import Iterator, Sequence
from concurrent.futures import Future
from pathlib import Path
from typing import Any


def records(data: bytes) -> Iterator[tuple[int, bytes]]:
    """The (tag, payload) records of ``data``."""
    at = 0
    while at < len(data):
        tag = data[at]
        length = int.from_bytes(data[at + 1 : at + 4], "big")
        payload = data[at + 4 : at + 4 + length]
        at += 4 + length
        yield tag, payload


def encode(items: Sequence[tuple[int, bytes]]) -> bytes:
    """Records as one input (the inverse of :func:`records`)."""
    return b"".join(
        struct.pack(">B", tag) + len(payload).to_bytes(3, "big") + payload for tag, payload in items
    )


def fields(payload: bytes, count: int) -> list[str]:
    """``payload`` split at NUL bytes into ``count`` text fields (missing ones empty)."""
    parts = payload.split(b"\x00", count - 1)
    parts += [b""] * (count - len(parts))
    return [p.decode("utf-8", "replace") for p in parts]


def start_server(**overrides: Any) -> str:
    """Start a saoy server in this process; its gRPC target. Rate limits are off, OCR is off,
    copies are signed at B-T: the harness measures the protocol, not the engines."""
    from saoy.server.app import create_server
    from saoy.server.settings import Settings

    data_dir = Path(tempfile.mkdtemp(prefix="saoy-fuzz-"))
    settings = Settings(
        host="127.0.0.1",
        grpc_port=0,
        http_port=0,
        data_dir=data_dir,
        workers=2,
        checkpoint_seconds=5.0,
        ocr_engine="none",
        signing_level="B-T",
        stream_idle_seconds=5.0,
        authenticate_rate=0.0,
        certify_rate=0.0,
        http_rate=0.0,
        upload_rate=0.0,
        **overrides,
    )
    loop = asyncio.new_event_loop()
    started: Future[Any] = Future()

    def run() -> None:
        asyncio.set_event_loop(loop)

        async def boot() -> None:
            try:
                started.set_result(await create_server(settings))
            except BaseException as error:
                started.set_exception(error)

        task = loop.create_task(boot())
        loop.run_forever()
        task.result()

    threading.Thread(target=run, name="saoy-fuzz-server", daemon=True).start()
    server = started.result(timeout=120)

    def stop() -> None:
        try:
            asyncio.run_coroutine_threadsafe(server.stop(grace=0), loop).result(10)
        finally:
            shutil.rmtree(data_dir, ignore_errors=True)

    atexit.register(stop)
    return f"127.0.0.1:{server.grpc_port}"
