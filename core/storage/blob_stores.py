"""The blob store factory: the backend named by ``blob_url``.

It lives apart from :mod:`saoy.core.storage.blobs` (the interface and the file backend) so that
the base never imports its own implementations, and boto3 is loaded only when S3 is used.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

from saoy.core.retention import DirVaultStorage, VaultStorage
from saoy.core.storage.blobs import BlobStore, FileBlobStore


@dataclass(frozen=True)
class BlobBackend:
    """Where the server's blobs go: the content-addressed store (blobs stored before sealing,
    orphan sweeps) and the storage of the vault that seals each dossier's blobs."""

    plain: BlobStore
    sealed: VaultStorage
    where: str
    """Said in logs: a folder, or the bucket and endpoint (never a credential)."""
    close: Callable[[], None] = field(default=lambda: None)


def check_blob_url(url: str) -> None:
    """ValueError saying what is wrong with ``url``; nothing for a good one (or empty)."""
    if not url:
        return
    scheme = urlsplit(url).scheme
    if scheme == "s3":
        from saoy.core.storage.blobs_s3 import parse_s3_url

        parse_s3_url(url)
    elif scheme == "file":
        _file_root(url)
    else:
        raise ValueError(
            f"blob_url must be s3://BUCKET?endpoint=... or file:///folder (empty: files under"
            f" the data dir), got {url!r}"
        )


def open_blob_backend(url: str, data_dir: Path) -> BlobBackend:
    """The backend ``url`` names: ``s3://BUCKET[/PREFIX]?endpoint=URL&region=NAME`` (the
    bucket created if missing; Unavailable when the store cannot be reached), ``file:///folder``,
    or, empty, files under ``data_dir`` (``blobs/`` and ``sealed/``)."""
    check_blob_url(url)
    if url.startswith("s3:"):
        from saoy.core.storage.blobs_s3 import S3BlobStore, S3Bucket, S3VaultStorage, parse_s3_url

        bucket = S3Bucket(parse_s3_url(url))
        try:
            bucket.ensure_bucket()
        except BaseException:
            bucket.close()
            raise
        return BlobBackend(
            S3BlobStore(bucket), S3VaultStorage(bucket), str(bucket.location), bucket.close
        )
    root = _file_root(url) if url else data_dir
    return BlobBackend(FileBlobStore(root / "blobs"), DirVaultStorage(root / "sealed"), str(root))


def _file_root(url: str) -> Path:
    parts = urlsplit(url)
    if parts.netloc not in ("", "localhost") or not parts.path.startswith("/"):
        raise ValueError(f"blob_url: a file URL names an absolute local folder, got {url!r}")
    return Path(parts.path)


__all__ = ["BlobBackend", "check_blob_url", "open_blob_backend"]
