"""Shared fixtures: a real saoy server on free ports, and synthetic documents."""

from __future__ import annotations

import asyncio
import shutil
import sqlite3
import threading
from collections.abc import Iterator
from concurrent.futures import Future
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Browser, Page, sync_playwright

from saoy.clients.sdk import KioskClient
from saoy.clients.simulator import docgen
from saoy.core.identity.sessions import Identity
from saoy.server.app import SaoyServer, create_server
from saoy.server.settings import Settings


@dataclass
class RunningServer:
    """A server running on its own event loop in a background thread."""

    server: SaoyServer
    loop: asyncio.AbstractEventLoop
    data_dir: Path

    @property
    def target(self) -> str:
        return f"127.0.0.1:{self.server.grpc_port}"

    @property
    def http(self) -> str:
        return f"http://127.0.0.1:{self.server.http_port}"

    def client(self, **kwargs: Any) -> KioskClient:
        return KioskClient(self.target, **kwargs)

    def token(self, kiosk_id: str = "kiosk-dev", *, match_score: float = 0.75) -> str:
        """A session token for ``kiosk_id`` from the server's own session store, as if the
        citizen had passed Identity.Authenticate there (tests of the real RPC do that)."""
        sessions = self.server.sessions
        assert sessions is not None, "this server runs with identity checks off"
        identity = Identity(
            kiosk_id=kiosk_id,
            subject=None,
            match_score=match_score,
            liveness="head_turn:left+screen",
            authenticated_at=datetime.now(UTC),
        )
        return sessions.issue(kiosk_id, identity)

    def count(self, table: str) -> int:
        with sqlite3.connect(self.data_dir / "registry.sqlite3") as db:
            return int(db.execute(f"SELECT count(*) FROM {table}").fetchone()[0])

    def blob_count(self) -> int:
        """Files of the blob store: plain (stored before sealing) and sealed, with their keys."""
        return sum(
            1
            for folder in ("blobs", "sealed")
            for p in (self.data_dir / folder).rglob("*")
            if p.is_file()
        )

    def snapshot(self) -> tuple[int, int, int, int]:
        """Rows and blobs: compared before and after a failure to prove nothing was left."""
        return (
            self.count("dossiers"),
            self.count("pages"),
            self.count("copies"),
            self.blob_count(),
        )

    def stop(self) -> None:
        asyncio.run_coroutine_threadsafe(self.server.stop(grace=1), self.loop).result(30)
        self.loop.call_soon_threadsafe(self.loop.stop)


RATE_LIMITS_OFF = {
    "authenticate_rate": 0.0,
    "certify_rate": 0.0,
    "http_rate": 0.0,
    "upload_rate": 0.0,
}
"""Test servers make calls far faster than kiosks: rate limits are off unless a test sets them."""


def start_server(data_dir: Path, **overrides: Any) -> RunningServer:
    settings = Settings(
        host="127.0.0.1",
        grpc_port=0,
        http_port=0,
        data_dir=data_dir,
        workers=2,
        **{"checkpoint_seconds": 0.2, **RATE_LIMITS_OFF, **overrides},
    )
    loop = asyncio.new_event_loop()
    started: Future[SaoyServer] = Future()

    def run() -> None:
        asyncio.set_event_loop(loop)

        async def boot() -> None:
            try:
                started.set_result(await create_server(settings))
            except BaseException as error:  # surface start-up failures in the test
                started.set_exception(error)

        task = loop.create_task(boot())
        loop.run_forever()
        task.result()

    threading.Thread(target=run, name="saoy-test-server", daemon=True).start()
    return RunningServer(started.result(timeout=60), loop, data_dir)


@pytest.fixture(scope="session")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    running = start_server(tmp_path_factory.mktemp("saoy-data"))
    yield running
    running.stop()


@pytest.fixture(scope="session")
def reference_dossier() -> list[tuple[str, bytes]]:
    return docgen.reference_dossier(seed=7)


# Pages are tested in Debian's Chromium (package chromium), driven by Playwright.
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    assert Path(CHROMIUM).exists(), "Debian's chromium is missing: run `make setup`"
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS
        )
        yield browser
        browser.close()


@pytest.fixture
def page(browser: Browser) -> Iterator[Page]:
    context = browser.new_context(accept_downloads=True)
    yield context.new_page()
    context.close()
