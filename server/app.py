"""One factory builds the server: collaborators, servicers, health, reflection, interceptors,
and the HTTP side. ``saoy serve`` runs it until SIGTERM."""

from __future__ import annotations

import asyncio
import logging
import signal
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

import grpc
from aiohttp import web
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection

from saoy.core.desk.deskdb import DeskDb
from saoy.core.desk.officials import Officials
from saoy.core.desk.review import Desk, OfficialSigners, TokenConfig
from saoy.core.documents import DocumentReader
from saoy.core.documents.places import gazetteer
from saoy.core.identity.face import FaceEngine
from saoy.core.identity.sessions import SessionStore, create_session_store
from saoy.core.ocr.engines import create_engine
from saoy.core.pages.admission import Limits
from saoy.core.pipeline import Certifier, PipelineConfig
from saoy.core.ratelimit import RateLimiter, create_rate_limiter
from saoy.core.reception.kpi import KpiReport
from saoy.core.retention import RetentionPolicy, Vault, VaultBlobStore, purge
from saoy.core.storage.blob_stores import open_blob_backend
from saoy.core.storage.blobs import BlobStore
from saoy.core.storage.registries import create_registry
from saoy.core.storage.registry import Registry, sweep_orphans
from saoy.core.trust.keywrap import FileKeyWrapper, KeyWrapper, Pkcs11KeyWrapper
from saoy.core.trust.pki import DevPki, ensure_dev_pki
from saoy.core.trust.publication import LogPublisher
from saoy.core.trust.secretfiles import ensure_subject_key
from saoy.core.trust.signing import create_copy_signer, open_pkcs11_session
from saoy.core.trust.translog import CheckpointSigner, TransparencyLog, ensure_log_key
from saoy.core.trust.translog_backends import open_transparency_log
from saoy.core.trust.verify import Verifier
from saoy.core.workqueue import WorkQueue
from saoy.server.administration import (
    AdministrationServicer,
    ensure_admin_token,
    load_token_digests,
)
from saoy.server.certification import CertificationServicer
from saoy.server.desk_web import add_desk_routes
from saoy.server.dossiers import QueuedDossiers, QueueGauges, Reconciler
from saoy.server.http import create_http_app
from saoy.server.identity import IdentityServicer
from saoy.server.interceptors import ErrorInterceptor, KioskRevocations, RevocationInterceptor
from saoy.server.kpi import KpiGauges, KpiServicer
from saoy.server.log_http import add_log_routes
from saoy.server.metrics import Metrics
from saoy.server.ratelimit import RateLimitInterceptor, buckets_of, rate_limit_middleware
from saoy.server.review import DossierWatch, ReviewMetrics, ReviewServicer
from saoy.server.settings import MiB, Settings
from saoy.server.tracking import (
    TrackingServicer,
    add_status_routes,
    create_delivery,
    create_reception,
)
from saoy.server.verification import VerificationServicer
from saoy.v1 import (
    administration_pb2,
    administration_pb2_grpc,
    certification_pb2,
    certification_pb2_grpc,
    identity_pb2,
    identity_pb2_grpc,
    kpi_pb2,
    kpi_pb2_grpc,
    review_pb2,
    review_pb2_grpc,
    tracking_pb2,
    tracking_pb2_grpc,
    verification_pb2,
    verification_pb2_grpc,
)

log = logging.getLogger("saoy.server")

IDENTITY_SERVICE = identity_pb2.DESCRIPTOR.services_by_name["Identity"].full_name
SERVICE_NAMES = (
    IDENTITY_SERVICE,
    certification_pb2.DESCRIPTOR.services_by_name["Certification"].full_name,
    verification_pb2.DESCRIPTOR.services_by_name["Verification"].full_name,
    administration_pb2.DESCRIPTOR.services_by_name["Administration"].full_name,
    tracking_pb2.DESCRIPTOR.services_by_name["Tracking"].full_name,
    kpi_pb2.DESCRIPTOR.services_by_name["Kpi"].full_name,
    review_pb2.DESCRIPTOR.services_by_name["Review"].full_name,
)
ORPHAN_AGE = timedelta(minutes=10)


@dataclass
class Readiness:
    """Whether the server takes new work; read by /healthz, flipped on shutdown."""

    serving: bool = False


@dataclass
class SaoyServer:
    """A running server: the gRPC server, the HTTP site, and what they share."""

    settings: Settings
    grpc_server: grpc.aio.Server
    grpc_port: int
    http_runner: web.AppRunner
    http_port: int
    health: health.aio.HealthServicer
    metrics: Metrics
    executor: ThreadPoolExecutor
    certifier: Certifier
    verifier: Verifier
    readiness: Readiness
    background: list[asyncio.Future[None]]
    translog: TransparencyLog
    sessions: SessionStore | None = None  # None: identity checks are off
    limiter: RateLimiter | None = None
    blobs: VaultBlobStore | None = None
    face: FaceEngine | None = None
    desk: Desk | None = None
    queue: WorkQueue | None = None  # a front's work queue (settings.queue_url)
    _stopped: asyncio.Event = field(default_factory=asyncio.Event)

    @property
    def base_url(self) -> str:
        return self.settings.base_url(self.http_port)

    async def stop(self, grace: float | None = None) -> None:
        """Flip health to NOT_SERVING, let streams in flight finish within the grace period,
        then close everything."""
        if self._stopped.is_set():
            return
        self._stopped.set()
        self.readiness.serving = False
        await self.health.enter_graceful_shutdown()
        await self.grpc_server.stop(self.settings.grace_seconds if grace is None else grace)
        await self.http_runner.cleanup()
        for task in self.background:
            task.cancel()
        await asyncio.gather(*self.background, return_exceptions=True)
        if self.queue is not None:
            await self.queue.close()
        self.executor.shutdown(wait=True, cancel_futures=True)
        self.certifier.registry.close()
        self.certifier.signer.close()
        if self.desk is not None:
            self.desk.signers.close()
        if self.certifier.reader is not None:
            self.certifier.reader.close()
        self.translog.close()
        if self.sessions is not None:
            self.sessions.close()
        if self.limiter is not None:
            self.limiter.close()
        if self.blobs is not None:
            self.blobs.vault.wrapper.close()
        log.info("stopped")

    async def wait(self) -> None:
        await self._stopped.wait()


async def create_server(settings: Settings, *, metrics: Metrics | None = None) -> SaoyServer:
    """Build and start a server on the settings' ports (0 binds a free one)."""
    metrics = metrics or Metrics()
    data_dir = settings.data_dir
    data_dir.mkdir(parents=True, exist_ok=True)

    pki = open_dev_pki(settings)
    credentials = _grpc_credentials(settings, pki)
    signer = create_copy_signer(
        pki,
        backend=settings.signer_backend,
        level=settings.signing_level,
        pkcs11_module=settings.pkcs11_module or None,
        pkcs11_token=settings.pkcs11_token or None,
        pkcs11_pin=settings.pkcs11_pin or None,
    )
    registry = create_registry(settings.registry_url or data_dir / "registry.sqlite3")
    blobs = open_blobs(settings)
    swept = sweep_orphans(registry, blobs, older_than=ORPHAN_AGE)
    if swept:
        log.warning("removed %d orphan blob(s) left by an interrupted store", swept)
    translog = open_transparency_log(settings.registry_url, data_dir)
    publisher = LogPublisher(
        translog,
        CheckpointSigner.from_file(ensure_log_key(data_dir / "keys"), settings.log_origin),
        registry,
    )
    publisher.reconcile()
    publisher.checkpoint_if_grown()
    with_tesseract = settings.ocr_engine in ("tesseract", "cascade")
    ocr_options = {"tessdata": settings.tessdata} if with_tesseract else {}
    ocr = create_engine(settings.ocr_engine, **ocr_options)
    face, sessions = _load_identity(settings)
    executor = ThreadPoolExecutor(settings.worker_count, thread_name_prefix="saoy-cpu")
    metrics.build.info(
        {
            "ocr_engine": ocr.name,
            "workers": str(settings.worker_count),
            "signer": settings.signer_backend,
            "signing_level": str(signer.level),
            "identity": settings.identity,
            "face_provider": face.provider if face is not None else "none",
        }
    )

    limiter = create_rate_limiter(settings.redis_url, buckets_of(settings))
    # HTTP first: the verification URLs printed on copies need its bound port.
    holder: dict[str, Any] = {"publisher": publisher}
    health_servicer = health.aio.HealthServicer()
    readiness = Readiness()
    http_app = create_http_app(
        verifier=lambda: holder.get("verifier"),
        executor=executor,
        metrics=metrics,
        ready=lambda: readiness.serving,
        crl=pki.crl_bytes,
        ocsp=pki.ocsp_response,
        certificate=pki.certificate_pem,
        log_key=lambda: holder["publisher"].signer.verifier_key,
        max_upload_bytes=settings.max_pdf_bytes + MiB,
        middlewares=[rate_limit_middleware(limiter, metrics)],
    )
    add_status_routes(http_app, lambda: holder.get("reception"), executor)
    review_metrics = ReviewMetrics(metrics.registry)
    add_desk_routes(http_app, lambda: holder.get("desk"), executor, review_metrics)
    add_log_routes(http_app, translog, executor)
    runner = web.AppRunner(http_app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, settings.host, settings.http_port)
    await site.start()
    http_port = runner.addresses[0][1]
    base_url = settings.base_url(http_port)

    verifier = Verifier(
        registry=registry,
        blobs=blobs,
        trust_roots=[pki.root_certificate()],
        crls=pki.crls,
        base_url=base_url,
        publisher=publisher,
    )
    holder["verifier"] = verifier
    reception = create_reception(settings, registry, base_url)
    if reception.hold_unpaid:
        verifier.release = reception.release_check
    delivery = create_delivery(settings, reception, verifier, executor, metrics)
    holder["reception"] = reception
    limits = Limits(max_page_bytes=settings.max_page_bytes, max_pixels=settings.max_pixels)
    desk = _open_desk(settings, pki, registry, blobs, executor, base_url, limits, publisher)
    holder["desk"] = desk
    certifier = Certifier(
        config=PipelineConfig(
            limits=Limits(max_page_bytes=settings.max_page_bytes, max_pixels=settings.max_pixels),
            base_url=base_url,
        ),
        ocr=ocr,
        signer=signer,
        registry=registry,
        blobs=blobs,
        executor=executor,
        observer=metrics,
        publisher=publisher,
        qr_key=pki.qr_signer(),
        reader=DocumentReader(settings.tessdata),
        review=desk,
    )
    gazetteer()  # the official list of administrative units, loaded now rather than per page

    interceptors: list[grpc.aio.ServerInterceptor] = [ErrorInterceptor(metrics)]
    revocations = None
    if settings.tls == "mutual":
        # Every call's client certificate is checked against the issuing CA's CRL, re-read
        # when it changes: a revoked kiosk is refused at its next call, not at its expiry.
        revocations = KioskRevocations(pki)
        interceptors.append(RevocationInterceptor(revocations))
    interceptors.append(RateLimitInterceptor(limiter, metrics))
    server = grpc.aio.server(
        interceptors=interceptors,
        options=[
            ("grpc.max_receive_message_length", settings.max_pdf_bytes + 64 * 1024),
            ("grpc.max_send_message_length", 2 * MiB),
        ],
    )
    queue, dossiers = None, None
    if settings.queue_url:
        # A front: the dossiers are worked by saoy worker processes through the queue.
        queue = WorkQueue(
            settings.queue_url,
            claim_idle=settings.queue_claim_seconds,
            max_deliveries=settings.queue_max_deliveries,
        )
        dossiers = QueuedDossiers(queue, max_wait_seconds=settings.queue_max_wait_seconds)
    certification_pb2_grpc.add_CertificationServicer_to_server(
        CertificationServicer(
            certifier,
            settings,
            metrics,
            sessions,
            match_threshold=face.config.match_threshold if face is not None else None,
            bind_kiosk=settings.tls == "mutual",
            reception=reception,
            watch=DossierWatch(desk, registry, executor, bind_kiosk=settings.tls == "mutual"),
            runner=dossiers,
        ),
        server,
    )
    review_pb2_grpc.add_ReviewServicer_to_server(
        ReviewServicer(desk, desk.officials, executor, review_metrics), server
    )
    services = SERVICE_NAMES
    if face is not None and sessions is not None:
        identity_pb2_grpc.add_IdentityServicer_to_server(
            IdentityServicer(
                face,
                sessions,
                executor,
                subject_key=ensure_subject_key(data_dir / "keys"),
                bind_kiosk=settings.tls == "mutual",
            ),
            server,
        )
    else:
        services = tuple(name for name in SERVICE_NAMES if name != IDENTITY_SERVICE)
    verification_pb2_grpc.add_VerificationServicer_to_server(
        VerificationServicer(verifier, executor, metrics, settings.max_pdf_bytes, publisher),
        server,
    )
    tracking_pb2_grpc.add_TrackingServicer_to_server(TrackingServicer(reception, executor), server)
    kpi_pb2_grpc.add_KpiServicer_to_server(KpiServicer(KpiReport(reception.db), executor), server)
    ensure_admin_token(settings.admin_tokens_path)
    administration_pb2_grpc.add_AdministrationServicer_to_server(
        AdministrationServicer(
            verifier,
            executor,
            load_token_digests(settings.admin_tokens_path),
            officials=desk.officials,
        ),
        server,
    )
    health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)
    reflection.enable_server_reflection(
        (*services, health.SERVICE_NAME, reflection.SERVICE_NAME), server
    )
    address = f"{settings.host}:{settings.grpc_port}"
    if credentials is None:
        grpc_port = server.add_insecure_port(address)
    else:
        grpc_port = server.add_secure_port(address, credentials)
    await server.start()
    for name in ("", *services):
        await health_servicer.set(name, health_pb2.HealthCheckResponse.SERVING)
    readiness.serving = True
    checkpoints = asyncio.ensure_future(
        _checkpoint_loop(publisher, executor, settings.checkpoint_seconds, metrics)
    )
    background: list[asyncio.Future[None]] = [checkpoints]
    if delivery is not None:
        background.append(asyncio.ensure_future(delivery.run()))
    gauges = KpiGauges(metrics, KpiReport(reception.db), executor, settings.kpi_refresh_seconds)
    background.append(asyncio.ensure_future(gauges.run()))
    if revocations is not None:
        background.append(asyncio.ensure_future(revocations.watch()))
    if queue is not None:
        background.append(asyncio.ensure_future(QueueGauges(queue, metrics.registry).run()))
        reconciler = Reconciler(
            queue,
            reception.intakes,
            grace=settings.queue_reconcile_seconds,
            max_attempts=settings.queue_max_deliveries,
        )
        background.append(asyncio.ensure_future(reconciler.run()))
    policy = retention_policy(settings)
    if policy.active:
        background.append(
            asyncio.ensure_future(
                _purge_loop(registry, blobs, policy, executor, settings.purge_interval_seconds)
            )
        )
    log.info(
        "serving gRPC on %s:%d (tls=%s), HTTP on %s (ocr=%s, identity=%s, workers=%d, data=%s)",
        settings.host,
        grpc_port,
        settings.tls,
        base_url,
        ocr.name,
        settings.identity,
        settings.worker_count,
        data_dir,
    )
    saoy = SaoyServer(
        settings=settings,
        grpc_server=server,
        grpc_port=grpc_port,
        http_runner=runner,
        http_port=http_port,
        health=health_servicer,
        metrics=metrics,
        executor=executor,
        certifier=certifier,
        verifier=verifier,
        readiness=readiness,
        background=background,
        translog=translog,
        sessions=sessions,
        face=face,
        limiter=limiter,
        desk=desk,
        blobs=blobs,
        queue=queue,
    )
    return saoy


def _open_desk(
    settings: Settings,
    pki: DevPki,
    registry: Registry,
    blobs: BlobStore,
    executor: ThreadPoolExecutor,
    base_url: str,
    limits: Limits,
    publisher: LogPublisher,
) -> Desk:
    """The official's desk over the registry's database; numbers of the certification
    register left reserved by an approval that never finished are given back."""
    db = DeskDb(registry)
    officials = Officials(db, default_center=settings.center)
    desk = Desk(
        db=db,
        officials=officials,
        registry=registry,
        blobs=blobs,
        signers=OfficialSigners(
            pki,
            level=settings.signing_level,
            duty_keys=settings.signer_backend == "pkcs12",
            token=(
                TokenConfig(settings.pkcs11_module, settings.pkcs11_token, settings.pkcs11_pin)
                if settings.signer_backend == "pkcs11"
                else None
            ),
        ),
        executor=executor,
        base_url=base_url,
        limits=limits,
        qr_key=pki.qr_signer(),
        publisher=publisher,
        lease=timedelta(seconds=settings.review_lease_seconds),
    )
    appended = desk.reconcile_log()
    if appended:
        log.warning("appended %d approval or refusal leaf(s) missing from the log", appended)
    released = desk.register.release_stale()
    if released:
        log.warning("gave back %d register number(s) of unfinished approvals", released)
    return desk


def open_dev_pki(settings: Settings) -> DevPki:
    """The dev PKI under ``<data_dir>/pki``, generated on first use."""
    return ensure_dev_pki(
        settings.data_dir / "pki",
        organization=settings.organization,
        passphrase=settings.pki_passphrase.encode(),
        crl_base_url=settings.base_url() + "/pki/",
    )


def open_blobs(settings: Settings) -> VaultBlobStore:
    """The blob store where ``blob_url`` says (an S3 bucket, its bucket created if missing; by
    default files under the data dir): new dossiers sealed in the vault (``sealed/``), their
    data keys wrapped by the signer backend's keys (key files under ``<data_dir>/keys/wrapping``,
    or the HSM with ``signer_backend = pkcs11``); blobs stored before under ``blobs/``."""
    backend = open_blob_backend(settings.blob_url, settings.data_dir)
    log.info("page scans and copies in %s", backend.where)
    wrapper: KeyWrapper
    if settings.signer_backend == "pkcs11":
        wrapper = Pkcs11KeyWrapper(
            open_pkcs11_session(
                settings.pkcs11_module, settings.pkcs11_token, settings.pkcs11_pin, rw=True
            )
        )
    else:
        wrapper = FileKeyWrapper(settings.data_dir / "keys" / "wrapping")
    return VaultBlobStore(backend.plain, Vault(backend.sealed, wrapper))


def retention_policy(settings: Settings) -> RetentionPolicy:
    return RetentionPolicy(
        scans_days=settings.retention_days, copies_days=settings.copy_retention_days
    )


async def _purge_loop(
    registry: Registry,
    blobs: VaultBlobStore,
    policy: RetentionPolicy,
    executor: ThreadPoolExecutor,
    every: float,
) -> None:
    """Run the retention purge now and every ``every`` seconds."""
    loop = asyncio.get_running_loop()
    while True:
        try:
            await loop.run_in_executor(executor, lambda: purge(registry, blobs, policy))
        except Exception:  # retried on the next tick
            log.exception("retention purge failed")
        await asyncio.sleep(every)


def _grpc_credentials(settings: Settings, pki: DevPki) -> grpc.ServerCredentials | None:
    """The gRPC port's TLS credentials, or None for plaintext (``tls = off``). With ``mutual``
    the handshake itself demands a client certificate chaining to ``tls_client_ca`` (default:
    the dev PKI's CAs), for every service on the port."""
    if settings.tls == "off":
        return None
    if settings.tls_cert is not None and settings.tls_key is not None:
        chain, key = settings.tls_cert.read_bytes(), settings.tls_key.read_bytes()
    else:
        names = [settings.host]
        if settings.public_url:
            names.append(urlsplit(settings.public_url).hostname or "")
        chain, key = pki.tls_server_credentials(names)
    mutual = settings.tls == "mutual"
    client_ca = None
    if mutual:
        client_ca = (
            settings.tls_client_ca.read_bytes()
            if settings.tls_client_ca is not None
            else pki.tls_ca_pem()
        )
    return grpc.ssl_server_credentials(
        [(key, chain)], root_certificates=client_ca, require_client_auth=mutual
    )


def _load_identity(settings: Settings) -> tuple[FaceEngine | None, SessionStore | None]:
    """The face models (loaded once, here) and the session store, or neither when identity
    checks are off."""
    if settings.identity == "off":
        log.warning(
            "IDENTITY CHECKS ARE OFF (identity=off): Certify accepts dossiers without a session"
            " token, so anyone at any kiosk can obtain certified copies. Development and load"
            " tests only; never run a kiosk-facing server like this."
        )
        return None, None
    face = FaceEngine.load(providers=settings.face_providers, threads=settings.face_threads)
    sessions = create_session_store(settings.redis_url, ttl=settings.session_ttl_seconds)
    log.info(
        "identity required: face models on %s, sessions %s (ttl %g s)",
        face.provider,
        "in Redis" if settings.redis_url else "in process",
        settings.session_ttl_seconds,
    )
    return face, sessions


async def _checkpoint_loop(
    publisher: LogPublisher, executor: ThreadPoolExecutor, every: float, metrics: Metrics
) -> None:
    """Sign a checkpoint whenever the log has grown, every ``every`` seconds; export the log's
    size, the entries no checkpoint covers yet, and the latest checkpoint's age."""
    loop = asyncio.get_running_loop()
    while True:
        await asyncio.sleep(every)
        try:
            latest = await loop.run_in_executor(executor, publisher.checkpoint_if_grown)
            size = await loop.run_in_executor(executor, publisher.log.size)
        except Exception:  # a failed checkpoint is retried on the next tick
            log.exception("checkpoint failed")
            continue
        metrics.log_size.set(size)
        metrics.log_unsigned.set(size - (latest.size if latest is not None else 0))
        if latest is not None:
            age = (datetime.now(UTC) - latest.created_at).total_seconds()
            metrics.checkpoint_age.set(max(0.0, age))


async def serve(settings: Settings) -> None:
    """Run until SIGTERM or SIGINT, then shut down gracefully."""
    server = await create_server(settings)
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, lambda: asyncio.ensure_future(server.stop()))
    await server.wait()
