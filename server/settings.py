"""Server settings: read once from flags and ``SAOY_*`` environment variables, validated, frozen."""

from __future__ import annotations

import argparse
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, fields
from pathlib import Path

from saoy.core.reception.deadlines import parse_day_swaps
from saoy.core.storage.blob_stores import check_blob_url

MiB = 1024 * 1024
OCR_ENGINES = ("cascade", "tesseract", "onnx", "trueocr", "none")


@dataclass(frozen=True)
class Settings:
    """Everything the server needs to start. Flags win over environment, environment over
    defaults; nothing reads the environment after start-up."""

    host: str = "127.0.0.1"
    grpc_port: int = 50051
    http_port: int = 8080
    data_dir: Path = Path("var")
    registry_url: str = ""  # postgresql://user@host/db for the registry; empty: <data_dir> SQLite
    # Page scans and signed copies: s3://BUCKET[/PREFIX]?endpoint=http://host:port&region=NAME
    # (credentials from AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY) or file:///folder; empty:
    # files under <data_dir>
    blob_url: str = ""
    public_url: str = ""  # base of verification URLs; default http://<host>:<http_port>
    workers: int = 0  # CPU worker threads; 0 = one per core
    # "tesseract", "cascade" (Tesseract, what it is unsure of read again by the ONNX line
    # recognizer), "onnx" (ONNX Runtime det+rec), "trueocr" (optional package) or "none"
    ocr_engine: str = "cascade"
    tessdata: Path | None = None
    organization: str = "UBND Phường Hoàn Kiếm (dev)"
    pki_passphrase: str = "saoy-dev"
    max_pages: int = 20
    max_page_bytes: int = 25 * MiB
    max_dossier_bytes: int = 100 * MiB
    max_pixels: int = 60_000_000
    max_pdf_bytes: int = 32 * MiB
    stream_idle_seconds: float = 60.0  # a Certify stream silent this long is cut
    signer_backend: str = "pkcs12"  # "pkcs12": the dev PKI's files; "pkcs11": an HSM
    signing_level: str = "B-LTA"  # "B-T", "B-LT" or "B-LTA"
    pkcs11_module: str = ""  # e.g. /usr/lib/softhsm/libsofthsm2.so
    pkcs11_token: str = ""
    pkcs11_pin: str = ""
    log_origin: str = "localhost/saoy/log"  # names the transparency log in its checkpoints
    checkpoint_seconds: float = 10.0  # how often a grown log gets a signed checkpoint
    admin_tokens: Path | None = None  # officials' bearer tokens; default <data_dir>/admin.tokens
    center: str = "000.00.00.DEV"  # the desk's center of dossiers from kiosks at no center
    review_lease_seconds: float = 600.0  # how long an official's claim on a dossier holds
    identity: str = "required"  # "required": Certify needs a session token; "off": development
    redis_url: str = ""  # sessions and rate limits in Redis (shared by replicas); empty: in-process
    # Dossier work over Redis Streams (redis://…): this process is a front and `saoy worker`
    # processes (any number, any machine) read, decide and sign; empty: this process does all.
    queue_url: str = ""
    worker_concurrency: int = 2  # dossiers one worker process works at once
    queue_claim_seconds: float = 15.0  # a dossier whose worker is silent this long is taken over
    queue_max_deliveries: int = 3  # a dossier handed out this often goes to the dead letters
    # A front refuses new dossiers (RESOURCE_EXHAUSTED, RetryInfo) when the backlog would take
    # the workers longer than this to clear.
    queue_max_wait_seconds: float = 60.0
    # A received dossier still undecided this long with no worker holding it is submitted again
    # from what its receipt's transaction kept (the queue lost it).
    queue_reconcile_seconds: float = 60.0
    session_ttl_seconds: float = 300.0  # how long a token from Authenticate is accepted
    face_providers: str = "auto"  # ONNX Runtime for the face models: "auto", "cpu" or "cuda"
    face_threads: int = 1  # intra-op threads per face model; the executor runs one job per core
    tls: str = "off"  # gRPC: "off" (plaintext), "on" (server certificate) or "mutual" (kiosks' too)
    tls_cert: Path | None = None  # PEM certificate chain of the gRPC server; default: the dev PKI's
    tls_key: Path | None = None  # its PEM private key (with tls_cert)
    tls_client_ca: Path | None = None  # PEM CAs kiosk certificates must chain to; default: dev CA
    # Rate limits, token buckets (rate per second, burst); a rate of 0 is no limit. Per kiosk on
    # Authenticate and Certify, per client address on the HTTP pages and on uploads. In Redis
    # (shared by replicas) when redis_url is set, else in-process.
    authenticate_rate: float = 0.2
    authenticate_burst: int = 10
    certify_rate: float = 0.2
    certify_burst: int = 20
    http_rate: float = 5.0
    http_burst: int = 60
    upload_rate: float = 0.2
    upload_burst: int = 10
    # Retention (crypto-shredding): page scans, recognized fields and OCR text are destroyed
    # this many days after a dossier is decided; the copy's file after copy_retention_days (its
    # registration stays verifiable by code). 0 keeps them. saoy purge runs it by hand.
    retention_days: float = 0.0
    copy_retention_days: float = 0.0
    purge_interval_seconds: float = 3600.0  # how often the server runs the purge
    # The center a kiosk no one registered joins at its first dossier: "dev" (the embedded
    # default: a dev center, registered at start with the kiosks it knows), a unit code, or ""
    # to refuse such kiosks (FAILED_PRECONDITION, KIOSK_NOT_REGISTERED).
    kiosk_center: str = "dev"
    # Announced day swaps the holidays package does not know yet, DAY_OFF=WORKDAY (ISO dates),
    # comma-separated, e.g. "2027-04-30=2027-04-24": they move legal deadlines.
    day_swaps: str = ""
    # When a copy whose fee is due is released (downloadable, handed over): "at_once", or
    # "when_paid" (Tracking.ConfirmPayment); a copy of a center that waives fees, at once.
    release_copies: str = "at_once"
    # Mail to citizens: smtp://[user[:password]@]host[:port] (STARTTLS required); empty: off,
    # and a kiosk may not give an address. smtp_ca_file: PEM to trust the SMTP server with.
    smtp_url: str = ""
    smtp_from: str = "saoy@localhost.localdomain"
    smtp_ca_file: str = ""
    # The citizen app's backend: results are POSTed to app_webhook_url, signed with HMAC-SHA256
    # under the secret in app_webhook_secret_file (32 bytes or more); empty: off, and a kiosk
    # may not give an app token.
    app_webhook_url: str = ""
    app_webhook_secret_file: str = ""
    delivery_interval_seconds: float = 5.0  # how often the outbox is looked at
    delivery_max_attempts: int = 8  # tries before a notification is a dead letter
    delivery_retry_seconds: float = 30.0  # first retry delay, doubled each time (at most 1 h)
    kpi_refresh_seconds: float = 60.0  # how often today's KPI gauges are recomputed
    grace_seconds: float = 10.0
    log_level: str = "INFO"

    def __post_init__(self) -> None:
        for name in ("grpc_port", "http_port"):
            port = getattr(self, name)
            if not 0 <= port <= 65535:
                raise ValueError(f"{name} must be 0..65535, got {port}")
        if self.checkpoint_seconds <= 0:
            raise ValueError("checkpoint_seconds must be positive")
        if self.workers < 0:
            raise ValueError("workers must be >= 0")
        if self.ocr_engine not in OCR_ENGINES:
            raise ValueError(
                f"ocr_engine must be one of {', '.join(OCR_ENGINES)}, got {self.ocr_engine!r}"
            )
        if self.identity not in ("required", "off"):
            raise ValueError(f"identity must be 'required' or 'off', got {self.identity!r}")
        if self.tls not in ("off", "on", "mutual"):
            raise ValueError(f"tls must be 'off', 'on' or 'mutual', got {self.tls!r}")
        if (self.tls_cert is None) != (self.tls_key is None):
            raise ValueError("tls_cert and tls_key go together: give both or neither")
        if self.tls == "off" and self.tls_cert is not None:
            raise ValueError("tls_cert and tls_key need tls = on or mutual")
        if self.tls != "mutual" and self.tls_client_ca is not None:
            raise ValueError("tls_client_ca needs tls = mutual")
        if self.face_providers not in ("auto", "cpu", "cuda"):
            raise ValueError("face_providers must be 'auto', 'cpu' or 'cuda'")
        if self.face_threads < 0:
            raise ValueError("face_threads must be >= 0")
        if self.review_lease_seconds <= 0:
            raise ValueError("review_lease_seconds must be positive")
        if self.session_ttl_seconds <= 0:
            raise ValueError("session_ttl_seconds must be positive")
        if self.signer_backend not in ("pkcs12", "pkcs11"):
            raise ValueError("signer_backend must be 'pkcs12' or 'pkcs11'")
        if self.signing_level not in ("B-T", "B-LT", "B-LTA"):
            raise ValueError("signing_level must be B-T, B-LT or B-LTA")
        if not 1 <= self.max_pages <= 500:
            raise ValueError("max_pages must be 1..500")
        for name in ("max_page_bytes", "max_dossier_bytes", "max_pixels", "max_pdf_bytes"):
            if getattr(self, name) <= 0:
                raise ValueError(f"{name} must be positive")
        for surface in ("authenticate", "certify", "http", "upload"):
            if getattr(self, f"{surface}_rate") < 0:
                raise ValueError(f"{surface}_rate must be >= 0 (0: no limit)")
            if getattr(self, f"{surface}_burst") < 1:
                raise ValueError(f"{surface}_burst must be >= 1")
        if self.retention_days < 0 or self.copy_retention_days < 0:
            raise ValueError("retention_days and copy_retention_days must be >= 0 (0: kept)")
        if 0 < self.copy_retention_days < self.retention_days:
            raise ValueError("copy_retention_days cannot be shorter than retention_days")
        if self.purge_interval_seconds <= 0:
            raise ValueError("purge_interval_seconds must be positive")
        parse_day_swaps(self.day_swaps)  # ValueError names the swap that does not read
        check_blob_url(self.blob_url)  # ValueError says what is wrong with it
        if self.delivery_interval_seconds <= 0 or self.delivery_retry_seconds <= 0:
            raise ValueError("delivery_interval_seconds and delivery_retry_seconds must be > 0")
        if self.worker_concurrency < 1 or self.queue_max_deliveries < 1:
            raise ValueError("worker_concurrency and queue_max_deliveries must be >= 1")
        if min(self.queue_claim_seconds, self.queue_max_wait_seconds) <= 0:
            raise ValueError("queue_claim_seconds and queue_max_wait_seconds must be > 0")
        if self.queue_reconcile_seconds <= 0:
            raise ValueError("queue_reconcile_seconds must be > 0")
        if self.queue_url and not self.queue_url.startswith(("redis://", "rediss://", "unix://")):
            raise ValueError("queue_url must be a redis:// (or rediss://, unix://) URL")
        if self.kpi_refresh_seconds <= 0:
            raise ValueError("kpi_refresh_seconds must be > 0")
        if self.delivery_max_attempts < 1:
            raise ValueError("delivery_max_attempts must be >= 1")
        if self.release_copies not in ("at_once", "when_paid"):
            raise ValueError("release_copies must be 'at_once' or 'when_paid'")
        if bool(self.app_webhook_url) != bool(self.app_webhook_secret_file):
            raise ValueError("app_webhook_url and app_webhook_secret_file go together")
        if self.max_page_bytes > self.max_dossier_bytes:
            raise ValueError("max_page_bytes cannot exceed max_dossier_bytes")

    @property
    def admin_tokens_path(self) -> Path:
        return self.admin_tokens or self.data_dir / "admin.tokens"

    @property
    def worker_count(self) -> int:
        return self.workers or max(1, os.cpu_count() or 1)

    def base_url(self, bound_http_port: int | None = None) -> str:
        """Base of the verification URLs printed on copies."""
        if self.public_url:
            return self.public_url.rstrip("/")
        host = "localhost" if self.host in ("127.0.0.1", "0.0.0.0", "::", "") else self.host
        return f"http://{host}:{bound_http_port or self.http_port}"

    @classmethod
    def add_arguments(cls, parser: argparse.ArgumentParser) -> None:
        """Add one ``--flag`` per field (``data_dir`` → ``--data-dir``)."""
        defaults = cls()
        for f in fields(cls):
            default = getattr(defaults, f.name)
            parser.add_argument(
                "--" + f.name.replace("_", "-"),
                dest=f.name,
                default=None,
                help=f"(env SAOY_{f.name.upper()}; default {default!s})",
            )

    @classmethod
    def load(
        cls, flags: Mapping[str, object] | None = None, environ: Mapping[str, str] | None = None
    ) -> Settings:
        """Build settings from parsed flags (None = unset) and an environment mapping."""
        environ = os.environ if environ is None else environ
        flags = flags or {}
        values: dict[str, object] = {}
        for f in fields(cls):
            raw = flags.get(f.name)
            if raw is None:
                raw = environ.get(f"SAOY_{f.name.upper()}")
            if raw is None:
                continue
            values[f.name] = _convert(f.name, str(raw), getattr(cls(), f.name))
        return cls(**values)  # type: ignore[arg-type]


def _convert(name: str, raw: str, default: object) -> object:
    try:
        if name in ("tessdata", "admin_tokens", "tls_cert", "tls_key", "tls_client_ca"):
            return Path(raw) if raw else None
        if isinstance(default, bool):
            return raw.lower() in ("1", "true", "yes", "on")
        if isinstance(default, int):
            return int(raw)
        if isinstance(default, float):
            return float(raw)
        if isinstance(default, Path):
            return Path(raw)
        return raw
    except ValueError:
        raise ValueError(f"setting {name}: cannot read {raw!r}") from None


def parse_serve_args(argv: Sequence[str] | None = None, prog: str = "saoy serve") -> Settings:
    parser = argparse.ArgumentParser(prog=prog, description="Run the saoy server.")
    Settings.add_arguments(parser)
    return Settings.load(vars(parser.parse_args(argv)))
