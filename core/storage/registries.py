"""The registry factory: the backend named by a path or URL.

It lives apart from :mod:`saoy.core.storage.registry` (the interface and the SQLite backend) so that
the base never imports its own implementations.
"""

from __future__ import annotations

from pathlib import Path

from saoy.core.storage.registry import Registry, SqliteRegistry
from saoy.core.storage.registry_pg import PostgresRegistry


def create_registry(location: str | Path) -> Registry:
    """The registry at ``location``: a ``postgresql://`` (or ``postgres://``) URL opens a
    :class:`~saoy.core.storage.registry_pg.PostgresRegistry`; a path, a SQLite file."""
    text = str(location)
    if text.startswith(("postgresql://", "postgres://")):
        return PostgresRegistry(text)
    if "://" in text:
        raise ValueError(f"registry location {text.split('://')[0]}://... is not supported")
    return SqliteRegistry(Path(location))
