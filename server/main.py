"""``saoy serve``: logging, settings, and the server until SIGTERM."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence

from saoy.server.app import serve
from saoy.server.settings import parse_serve_args


def serve_command(argv: Sequence[str]) -> int:
    try:
        settings = parse_serve_args(argv)
    except ValueError as error:
        print(f"error: {error}")
        return 2
    logging.basicConfig(
        level=settings.log_level.upper(),
        format="%(asctime)s %(levelname)s %(name)s %(message)s",
    )
    asyncio.run(serve(settings))
    return 0
