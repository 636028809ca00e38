"""Page scans and signed copies in S3-compatible object storage (AWS S3, SeaweedFS, MinIO…).

One bucket holds both parts of the server's blob store: the content-addressed blobs under
``<prefix>blobs/<sha256>`` (:class:`S3BlobStore`) and the vault's sealed blobs and wrapped data
keys under ``<prefix>sealed/<dossier>/…`` (:class:`S3VaultStorage`). A wrapped data key in the
bucket is useless without its wrapping key, which stays with the signer backend (a key file or
the HSM): destroying that is what shreds a dossier, whatever copies or versions the bucket keeps.

Writes are conditional (``If-None-Match: *``), so of two puts of the same bytes exactly one
creates the object, and an object is never half there: S3 makes it visible only once it is whole
and stored. Every call is bounded (connect and read timeouts, a few retries), so a store that is
down fails in seconds with :class:`~saoy.core.errors.Unavailable`, never a hang.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from urllib.parse import parse_qs, urlsplit

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from saoy.core.errors import NotFound, Unavailable
from saoy.core.retention import VaultStorage
from saoy.core.storage.blobs import BlobStore, check_key, key_of

_MISSING = frozenset({"NoSuchKey", "404", "NotFound"})
_EXISTS = frozenset({"PreconditionFailed", "412"})
_RACING = frozenset({"ConditionalRequestConflict", "409", "OperationAborted"})
_BUCKET_OWNED = frozenset({"BucketAlreadyOwnedByYou", "BucketAlreadyExists"})
_DENIED = frozenset(
    {"AccessDenied", "403", "InvalidAccessKeyId", "SignatureDoesNotMatch", "Forbidden"}
)


@dataclass(frozen=True)
class S3Location:
    """Where blobs go: ``s3://BUCKET[/PREFIX]?endpoint=URL&region=NAME``."""

    bucket: str
    prefix: str = ""
    """Key prefix inside the bucket: empty, or ending in ``/``."""
    endpoint: str | None = None
    """Base URL of an S3-compatible server; None: AWS's own endpoint for the region."""
    region: str | None = None

    def __str__(self) -> str:
        where = f"s3://{self.bucket}/{self.prefix}".rstrip("/")
        return f"{where} at {self.endpoint}" if self.endpoint else where


def parse_s3_url(url: str) -> S3Location:
    """The location an ``s3://`` URL names; ValueError saying what is wrong otherwise.

    Credentials are not taken from the URL (it is shown in logs and process lists): they come
    from the standard AWS chain, ``AWS_ACCESS_KEY_ID`` and ``AWS_SECRET_ACCESS_KEY`` first."""
    parts = urlsplit(url)
    if parts.scheme != "s3":
        raise ValueError(f"blob_url must be an s3:// URL, got {url!r}")
    if parts.username or parts.password:
        raise ValueError(
            "blob_url must not carry credentials: set AWS_ACCESS_KEY_ID and"
            " AWS_SECRET_ACCESS_KEY in the environment instead"
        )
    bucket = parts.hostname or ""
    if not 3 <= len(bucket) <= 63 or not all(c.isalnum() or c in ".-" for c in bucket):
        raise ValueError(
            f"blob_url: {bucket!r} is not a bucket name (3 to 63 letters, digits, '.' or '-'):"
            " write s3://BUCKET?endpoint=http://host:port"
        )
    query = parse_qs(parts.query, keep_blank_values=True)
    unknown = set(query) - {"endpoint", "region"}
    if unknown:
        raise ValueError(
            f"blob_url: unknown parameter(s) {', '.join(sorted(unknown))} (known: endpoint,"
            " region; credentials come from AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY)"
        )
    endpoint = query.get("endpoint", [""])[-1] or None
    if endpoint is not None:
        target = urlsplit(endpoint)
        if target.scheme not in ("http", "https") or not target.hostname:
            raise ValueError(
                f"blob_url: endpoint must be an http(s)://host:port URL, got {endpoint!r}"
            )
    prefix = parts.path.strip("/")
    return S3Location(
        bucket=bucket,
        prefix=prefix + "/" if prefix else "",
        endpoint=endpoint,
        region=query.get("region", [""])[-1] or None,
    )


class S3Bucket:
    """One bucket through one thread-safe client, each call bounded in time, every failure of
    the store or the network turned into :class:`~saoy.core.errors.Unavailable`: a refused
    connection fails at once, a server that accepts and never answers after ``attempts`` times
    ``read_timeout`` (24 s by default; a put of a 25 MiB page is answered well within 8 s)."""

    def __init__(
        self,
        location: S3Location,
        *,
        connect_timeout: float = 2.0,
        read_timeout: float = 8.0,
        attempts: int = 3,
        pool: int = 32,
    ) -> None:
        self.location = location
        config = Config(
            connect_timeout=connect_timeout,
            read_timeout=read_timeout,
            retries={"total_max_attempts": attempts, "mode": "standard"},
            max_pool_connections=pool,
            s3={"addressing_style": "path"} if location.endpoint else {},
            # Only the conditional put's own checksum: no trailing checksums that older
            # S3-compatible servers reject.
            request_checksum_calculation="when_required",
            response_checksum_validation="when_required",
        )
        self.client = boto3.session.Session().client(
            "s3",
            endpoint_url=location.endpoint,
            region_name=location.region or "us-east-1",
            config=config,
        )

    # -- errors -------------------------------------------------------------------------------

    def _unavailable(self, error: Exception, doing: str) -> Unavailable:
        where = self.location
        if isinstance(error, ClientError):
            code = _code(error)
            if code in _DENIED:
                cause = (
                    f"it refused the credentials ({code}): check AWS_ACCESS_KEY_ID and"
                    " AWS_SECRET_ACCESS_KEY, and that they may read and write the bucket"
                )
            elif code == "NoSuchBucket":
                cause = f"bucket {where.bucket!r} does not exist"
            else:
                cause = f"it answered {code}"
        elif type(error).__name__ in ("NoCredentialsError", "PartialCredentialsError"):
            cause = "no credentials: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY"
        else:
            cause = (
                f"it cannot be reached ({type(error).__name__}): check that it runs and that"
                " blob_url names it"
            )
        return Unavailable(
            f"Kho lưu trữ tạm thời không sẵn sàng, vui lòng thử lại sau / Object storage {where}"
            f" failed while {doing}: {cause}.",
            reason="BLOB_STORE_UNAVAILABLE",
            retry_after=5.0,
        )

    # -- calls --------------------------------------------------------------------------------

    def ensure_bucket(self) -> None:
        """Create the bucket unless it exists."""
        bucket = self.location.bucket
        try:
            self.client.head_bucket(Bucket=bucket)
            return
        except ClientError as error:
            if _code(error) not in _MISSING and _code(error) != "NoSuchBucket":
                raise self._unavailable(error, "opening the bucket") from None
        except BotoCoreError as error:
            raise self._unavailable(error, "opening the bucket") from None
        region = self.location.region
        extra = (
            {"CreateBucketConfiguration": {"LocationConstraint": region}}
            if region and region != "us-east-1"
            else {}
        )
        try:
            self.client.create_bucket(Bucket=bucket, **extra)
        except ClientError as error:
            if _code(error) not in _BUCKET_OWNED:
                raise self._unavailable(error, "creating the bucket") from None
        except BotoCoreError as error:
            raise self._unavailable(error, "creating the bucket") from None

    def create(self, key: str, data: bytes) -> bool:
        """Write ``key`` unless it exists; whether this call created it. Raises _Racing when
        another writer of the same key was mid-way (the caller looks again)."""
        try:
            self.client.put_object(Bucket=self.location.bucket, Key=key, Body=data, IfNoneMatch="*")
        except ClientError as error:
            code = _code(error)
            if code in _EXISTS:
                return False
            if code in _RACING:
                raise _Racing() from None
            raise self._unavailable(error, "storing a file") from None
        except BotoCoreError as error:
            raise self._unavailable(error, "storing a file") from None
        return True

    def touch(self, key: str) -> bool:
        """Give ``key`` a new modification time (a copy onto itself); whether it exists."""
        bucket = self.location.bucket
        try:
            self.client.copy_object(
                Bucket=bucket,
                Key=key,
                CopySource={"Bucket": bucket, "Key": key},
                MetadataDirective="REPLACE",
                Metadata={"touched": datetime.now(UTC).isoformat()},
            )
        except ClientError as error:
            if _code(error) in _MISSING:
                return False
            raise self._unavailable(error, "refreshing a file") from None
        except BotoCoreError as error:
            raise self._unavailable(error, "refreshing a file") from None
        return True

    def read(self, key: str) -> bytes | None:
        """The bytes of ``key``; None when it is absent."""
        try:
            answer = self.client.get_object(Bucket=self.location.bucket, Key=key)
            return bytes(answer["Body"].read())
        except ClientError as error:
            if _code(error) in _MISSING:
                return None
            raise self._unavailable(error, "reading a file") from None
        except BotoCoreError as error:
            raise self._unavailable(error, "reading a file") from None

    def modified_at(self, key: str) -> datetime | None:
        """When ``key`` was last written (UTC); None when it is absent."""
        try:
            answer = self.client.head_object(Bucket=self.location.bucket, Key=key)
        except ClientError as error:
            if _code(error) in _MISSING:
                return None
            raise self._unavailable(error, "looking up a file") from None
        except BotoCoreError as error:
            raise self._unavailable(error, "looking up a file") from None
        return _utc(answer["LastModified"])

    def delete(self, key: str) -> bool:
        """Remove ``key``; whether it was there."""
        if self.modified_at(key) is None:
            return False
        try:
            self.client.delete_object(Bucket=self.location.bucket, Key=key)
        except (ClientError, BotoCoreError) as error:
            raise self._unavailable(error, "removing a file") from None
        return True

    def delete_many(self, keys: Sequence[str]) -> None:
        """Remove ``keys`` (absent ones included), a thousand per request."""
        for start in range(0, len(keys), 1000):
            chunk = [{"Key": k} for k in keys[start : start + 1000]]
            try:
                answer = self.client.delete_objects(
                    Bucket=self.location.bucket, Delete={"Objects": chunk, "Quiet": True}
                )
            except (ClientError, BotoCoreError) as error:
                raise self._unavailable(error, "removing files") from None
            failed = [e for e in answer.get("Errors", []) if e.get("Code") not in _MISSING]
            if failed:
                raise Unavailable(
                    f"Object storage {self.location} did not remove {len(failed)} file(s):"
                    f" {failed[0].get('Code')}",
                    reason="BLOB_STORE_UNAVAILABLE",
                )

    def listing(self, prefix: str) -> Iterator[tuple[str, datetime]]:
        """Every key starting with ``prefix``, with its modification time, page by page."""
        pages = self.client.get_paginator("list_objects_v2").paginate(
            Bucket=self.location.bucket, Prefix=prefix
        )
        try:
            for page in pages:
                for entry in page.get("Contents", []):
                    yield entry["Key"], _utc(entry["LastModified"])
        except (ClientError, BotoCoreError) as error:
            raise self._unavailable(error, "listing files") from None

    def close(self) -> None:
        self.client.close()


class _Racing(Exception):
    """Another conditional write of the same key was in progress."""


class S3BlobStore(BlobStore):
    """Content-addressed blobs as objects ``<prefix>blobs/<sha256>`` of one bucket."""

    def __init__(self, bucket: S3Bucket, *, folder: str = "blobs/") -> None:
        self.bucket = bucket
        self.prefix = bucket.location.prefix + folder

    def _key(self, key: str) -> str:
        return self.prefix + check_key(key)

    def put(self, data: bytes) -> tuple[str, bool]:
        key = key_of(data)
        name = self._key(key)
        # As for files: refresh a blob that is there (so a sweep leaves it alone), write it
        # when it is not; a sweep removing it in between sends the loop round again.
        while not self.bucket.touch(name):
            try:
                if self.bucket.create(name, data):
                    return key, True
            except _Racing:
                continue
        return key, False

    def get(self, key: str) -> bytes:
        data = self.bucket.read(self._key(key))
        if data is None:
            raise NotFound(f"No blob is stored under {key}", field="sha256")
        return data

    def exists(self, key: str) -> bool:
        return self.bucket.modified_at(self._key(key)) is not None

    def delete(self, key: str) -> bool:
        return self.bucket.delete(self._key(key))

    def keys(self) -> Iterator[str]:
        for key, _ in self.ages():
            yield key

    def ages(self) -> Iterator[tuple[str, datetime]]:
        for name, written in self.bucket.listing(self.prefix):
            leaf = name[len(self.prefix) :]
            if len(leaf) == 64 and "/" not in leaf:
                yield leaf, written

    def modified_at(self, key: str) -> datetime:
        when = self.bucket.modified_at(self._key(key))
        if when is None:
            raise NotFound(f"No blob is stored under {key}", field="sha256")
        return when


class S3VaultStorage(VaultStorage):
    """A vault's objects (:class:`~saoy.core.retention.VaultStorage`) under
    ``<prefix>sealed/`` of one bucket."""

    def __init__(self, bucket: S3Bucket, *, folder: str = "sealed/") -> None:
        self.bucket = bucket
        self.prefix = bucket.location.prefix + folder

    def create(self, name: str, data: bytes) -> bool:
        while True:
            try:
                return self.bucket.create(self.prefix + name, data)
            except _Racing:
                continue

    def read(self, name: str) -> bytes:
        data = self.bucket.read(self.prefix + name)
        if data is None:
            raise FileNotFoundError(name)
        return data

    def exists(self, name: str) -> bool:
        return self.bucket.modified_at(self.prefix + name) is not None

    def remove(self, name: str) -> bool:
        return self.bucket.delete(self.prefix + name)

    def remove_folder(self, folder: str) -> None:
        below = self.prefix + folder.rstrip("/") + "/"
        self.bucket.delete_many([name for name, _ in self.bucket.listing(below)])

    def names(self, folder: str = "") -> Iterator[str]:
        below = self.prefix + (folder.rstrip("/") + "/" if folder else "")
        for name, _ in self.bucket.listing(below):
            yield name[len(self.prefix) :]

    def modified_at(self, name: str) -> datetime:
        when = self.bucket.modified_at(self.prefix + name)
        if when is None:
            raise FileNotFoundError(name)
        return when


def _code(error: ClientError) -> str:
    return str(error.response.get("Error", {}).get("Code", ""))


def _utc(when: datetime) -> datetime:
    return when.astimezone(UTC) if when.tzinfo else when.replace(tzinfo=UTC)


__all__ = ["S3BlobStore", "S3Bucket", "S3Location", "S3VaultStorage", "parse_s3_url"]
