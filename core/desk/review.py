"""The official's desk: the queue of dossiers waiting for review, leases so that two officials
never work the same dossier, and the three ways a review ends — approved (the copy is issued as
automatic issuance does it, but signed with the approving official's own key, and entered in
the certification register), refused on a ground of Decree 23/2015 art. 22, or sent back for a
rescan of one page.

Every act is an audit event (:meth:`DeskDb.audit`); an approval's copy is a leaf of the
transparency log like any issued copy. Kiosks follow a dossier through :meth:`Desk.status`
(the server streams it as ``Certification.WatchDossier``).
"""

from __future__ import annotations

import asyncio
import hashlib
import io
import json
import logging
import re
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import Executor
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, Final, TypeVar

from PIL import Image

from saoy.core.desk.deskdb import DeskDb, now
from saoy.core.desk.officials import Center, Official, Officials, PermissionDenied
from saoy.core.desk.register import (
    DUTY_NAME,
    DUTY_TITLE,
    VIETNAM,
    Register,
    RegisterNumber,
    Statement,
)
from saoy.core.documents.grammar import plausible
from saoy.core.errors import InvalidInput, NotFound, OutOfOrder, SaoyError
from saoy.core.model import CertificationBlock, CheckResult, RenderMaterial, RenderPage, Word
from saoy.core.pages.admission import Limits, admit
from saoy.core.pages.imaging import render_image
from saoy.core.pipeline import AutomaticIssue
from saoy.core.reception import codes
from saoy.core.storage.blobs import BlobStore
from saoy.core.storage.registry import (
    _COPY_COLUMNS,
    _COPY_SELECT,
    CopyRecord,
    DossierRecord,
    PageRecord,
    Registry,
    _copy_of,
    _copy_row,
    _insert_sql,
)
from saoy.core.trust.offline import QrKey, render_with_qr
from saoy.core.trust.pki import DevPki
from saoy.core.trust.publication import LogPublisher
from saoy.core.trust.signing import (
    CopySigner,
    Pkcs11CopySigner,
    Pkcs12CopySigner,
    SigningLevel,
    ValidationMaterial,
    dev_timestamper,
    import_key_to_pkcs11,
    open_pkcs11_session,
)

log = logging.getLogger("saoy.review")

T = TypeVar("T")

DEFAULT_DPI: Final = 300.0
LEASE: Final = timedelta(minutes=10)
THUMBNAIL_PIXELS: Final = 256

REFUSAL_GROUNDS: Final[dict[str, str]] = {
    # Decree 23/2015/ND-CP art. 22: originals that cannot be the basis of a certified copy
    "forged": "Bản chính bị làm giả, cấp sai thẩm quyền hoặc không đúng thẩm quyền (Điều 22.1)",
    "altered": "Bản chính bị tẩy xoá, sửa chữa, thêm, bớt nội dung không hợp lệ (Điều 22.2)",
    "damaged": "Bản chính bị hư hỏng, cũ nát, không xác định được nội dung (Điều 22.3)",
    "confidential": "Bản chính đóng dấu mật hoặc ghi rõ không được sao chụp (Điều 22.4)",
    "unlawful_content": "Bản chính có nội dung trái pháp luật, đạo đức xã hội (Điều 22.5)",
    "not_legalized": "Bản chính do nước ngoài cấp chưa được hợp pháp hoá lãnh sự (Điều 22.6)",
    "self_made": "Giấy tờ do cá nhân tự lập, không có xác nhận và đóng dấu của cơ quan có"
    " thẩm quyền (Điều 22.7)",
}
"""The grounds of refusal an official chooses from, by their stable key."""


class HeldByAnother(SaoyError):
    """Another official holds the dossier's lease."""

    status = "FAILED_PRECONDITION"
    reason = "HELD_BY_ANOTHER_OFFICIAL"


class AlreadyDecided(SaoyError):
    """The dossier's review has ended."""

    status = "FAILED_PRECONDITION"
    reason = "ALREADY_DECIDED"


@dataclass(frozen=True)
class Correction:
    page: int
    field: str
    value: str


@dataclass(frozen=True)
class QueueItem:
    dossier_id: str
    kiosk_id: str
    created_at: datetime
    reasons: tuple[str, ...]
    page_count: int
    holder: str | None  # login of the official holding the lease
    holder_name: str | None
    lease_until: datetime | None
    thumbnails: tuple[bytes, ...] = ()  # JPEG, one per page
    appointment_at: datetime | None = None  # the legal deadline its receipt gave
    center: str = ""  # the center that received it (the official's, or one of its province)


@dataclass(frozen=True)
class ReviewField:
    name: str
    value: str
    confidence: float  # 0-1
    source: str


@dataclass(frozen=True)
class ReviewPage:
    index: int
    document_type: str
    image: bytes  # the page file as the kiosk sent it
    format: str
    width: int
    height: int
    mean_confidence: float
    fields: tuple[ReviewField, ...]


@dataclass(frozen=True)
class DossierView:
    """Everything an official sees of one dossier; never a face image."""

    dossier: DossierRecord
    center: str
    pages: tuple[ReviewPage, ...]
    checks: tuple[CheckResult, ...]
    identity: dict[str, Any]
    holder: str | None
    holder_name: str | None
    lease_until: datetime | None
    outcome: str | None


@dataclass(frozen=True)
class Approval:
    copy: CopyRecord
    number: RegisterNumber
    official: str
    replayed: bool = False  # approved before: the same copy


@dataclass(frozen=True)
class DossierStatus:
    """Where a dossier stands, as its kiosk is told."""

    state: str  # "waiting" | "claimed" | "issued" | "refused" | "rescan" | "rejected"
    holder_name: str = ""
    code: str = ""
    url: str = ""
    ground: str = ""
    message: str = ""
    page: int = -1
    copy: CopyRecord | None = None


@dataclass(frozen=True)
class TokenConfig:
    """A PKCS#11 token (an HSM) holding the officials' keys, each under ``official-<login>``."""

    module: str
    token: str
    pin: str

    @staticmethod
    def label(official_id: str) -> str:
        return f"official-{official_id}"


def move_key_into_token(pki: DevPki, official: Official, token: TokenConfig) -> None:
    """Import an official's key and certificate (just issued by the dev PKI) into the token as
    a sensitive, non-extractable key, then delete the PKCS#12 file: from then on the key exists
    only in the HSM."""
    path = pki.directory / official.certificate
    session = open_pkcs11_session(token.module, token.token, token.pin, rw=True)
    try:
        import_key_to_pkcs11(session, pki.load(path), TokenConfig.label(official.id))
    finally:
        session.close()
    path.unlink()


class OfficialSigners:
    """One signer per official (their own key and the center's seal), opened on first use;
    and, with ``duty_keys``, one per center for the official on duty, who signs what the center
    issues without review (a certificate issued on first use, ``duty/<center>.p12`` in the PKI
    directory). Without ``duty_keys`` (an HSM holds the key), the server's own signer does."""

    def __init__(
        self,
        pki: DevPki,
        *,
        level: SigningLevel | str = SigningLevel.B_LTA,
        duty_keys: bool = True,
        seal: bool = True,
        token: TokenConfig | None = None,
    ) -> None:
        """``seal``: the center's seal (the dev PKI's, or the token's ``seal`` key) follows the
        official's signature. ``token``: the officials' keys are in that HSM (see
        :func:`move_key_into_token`), one logged-in session per official."""
        self.pki = pki
        self.level = SigningLevel(level)
        self.duty_keys = duty_keys
        self.seal = seal
        self.token = token
        self._signers: dict[str, CopySigner] = {}
        self._lock = threading.Lock()
        self._timestamper = dev_timestamper(pki.load(pki.tsa_path))
        self._validation = ValidationMaterial.from_dev_pki(pki)

    def for_official(self, official: Official, center: Center | None = None) -> CopySigner:
        """The official's signer, sealed with ``center``'s seal (the PKI's own without one)."""
        if self.token is None:
            key = f"{official.id}@{center.id}" if center is not None else official.id
            return self._signer(key, self.pki.directory / official.certificate, center)
        with self._lock:
            signer = self._signers.get(official.id)
            if signer is None:
                signer = Pkcs11CopySigner(
                    self.token.module,
                    self.token.token,
                    self.token.pin,
                    TokenConfig.label(official.id),
                    chain=self.pki.load(self.pki.tsa_path).chain,
                    seal_key_label="seal" if self.seal else None,
                    timestamper=self._timestamper,
                    validation=self._validation,
                    level=self.level,
                )
                self._signers[official.id] = signer
            return signer

    def on_duty(self, center: Center) -> CopySigner | None:
        """The on-duty official's signer of a center (None without ``duty_keys``)."""
        if not self.duty_keys:
            return None
        name = re.sub(r"[^A-Za-z0-9._-]", "_", center.id)
        path = self.pki.directory / "duty" / f"{name}.p12"
        with self._lock:
            if not path.is_file():
                self.pki.issue_person_certificate(
                    path,
                    common_name=f"{DUTY_NAME} — {center.name}",
                    title=DUTY_TITLE,
                    unit=center.name,
                )
        return self._signer("duty:" + center.id, path, center)

    def _seal_of(self, center: Center | None) -> Path:
        """The seal of ``center`` (issued on first use, ``seals/<center>.p12`` in the PKI
        directory, naming the center), or the PKI's own seal without a center. Called with
        the lock held."""
        if center is None:
            return self.pki.seal_path
        name = re.sub(r"[^A-Za-z0-9._-]", "_", center.id)
        path = self.pki.directory / "seals" / f"{name}.p12"
        if not path.is_file():
            self.pki.issue_seal_certificate(path, organization=center.name)
        return path

    def for_seal(self, center: Center) -> CopySigner:
        """The center's seal alone: what seals its register (not an HSM's)."""
        with self._lock:
            path = self._seal_of(center)
        return self._signer("seal:" + center.id, path, center, sealed=False)

    def _signer(
        self, key: str, path: Path, center: Center | None = None, *, sealed: bool = True
    ) -> CopySigner:
        with self._lock:
            signer = self._signers.get(key)
            if signer is None:
                signer = Pkcs12CopySigner(
                    path,
                    self.pki.passphrase,
                    seal_path=self._seal_of(center) if self.seal and sealed else None,
                    timestamper=self._timestamper,
                    validation=self._validation,
                    level=self.level,
                )
                self._signers[key] = signer
            return signer

    def close(self) -> None:
        with self._lock:
            for signer in self._signers.values():
                signer.close()
            self._signers.clear()


@dataclass
class _Work:
    """What an approval renders: the dossier, its pages and their material."""

    dossier: DossierRecord
    center: str
    pages: list[PageRecord]
    material: dict[int, RenderMaterial]
    corrections: tuple[Correction, ...]
    existing: CopyRecord | None = None
    number: RegisterNumber | None = None


class Desk:
    """The review of dossiers by officials, over the registry's database."""

    def __init__(
        self,
        *,
        db: DeskDb,
        officials: Officials,
        registry: Registry,
        blobs: BlobStore,
        signers: OfficialSigners,
        executor: Executor,
        base_url: str,
        limits: Limits,
        qr_key: QrKey | None = None,
        publisher: LogPublisher | None = None,
        lease: timedelta = LEASE,
    ) -> None:
        self.db = db
        self.officials = officials
        self.register = Register(db)
        self.registry = registry
        self.blobs = blobs
        self.signers = signers
        self.executor = executor
        self.base_url = base_url
        self.limits = limits
        self.qr_key = qr_key
        self.publisher = publisher
        self.lease = lease
        self._listeners: list[Callable[[str], None]] = []

    # -- plumbing --------------------------------------------------------------------------

    async def _run(self, fn: Callable[..., T], *args: Any) -> T:
        return await asyncio.get_running_loop().run_in_executor(self.executor, fn, *args)

    def on_change(self, listener: Callable[[str], None]) -> None:
        """Call ``listener(dossier_id)`` (from any thread) whenever a review changes."""
        self._listeners.append(listener)

    def _changed(self, dossier_id: str) -> None:
        for listener in self._listeners:
            listener(dossier_id)

    def _blob(self, dossier_id: str, key: str, *, copy: bool = False) -> bytes:
        """A blob of a dossier, wherever the store keeps it (a store that seals each
        dossier's blobs apart offers ``get_for``)."""
        get_for = getattr(self.blobs, "get_for", None)
        if get_for is not None:
            return bytes(get_for(dossier_id, key, copy=copy))
        return self.blobs.get(key)

    def _blobs_of(self, dossier_id: str, copy_key: str) -> BlobStore:
        """Where the copy of a dossier is put (``for_dossier`` of a sealing store)."""
        for_dossier = getattr(self.blobs, "for_dossier", None)
        if for_dossier is not None:
            store: BlobStore = for_dossier(dossier_id, copy_key)
            return store
        return self.blobs

    def _center_sql(self) -> str:
        return "COALESCE((SELECT center_code FROM kiosks k WHERE k.id = d.kiosk_id), ?)"

    def _locate(self, db: Any, dossier_id: str) -> tuple[str, str, str | None, Any, Any]:
        """The dossier's state and center, and its review row (holder, lease, outcome)."""
        row = db.execute(
            f"SELECT d.state, {self._center_sql()}, r.holder, r.lease_until, r.outcome"
            " FROM dossiers d LEFT JOIN reviews r ON r.dossier_id = d.id WHERE d.id = ?",
            (self.officials.default_center, dossier_id),
        ).fetchone()
        if row is None:
            raise NotFound(f"no dossier {dossier_id[:40]!r}", field="dossier_id")
        return row[0], row[1], row[2], self.db.dt(row[3]), row[4]

    _PROVINCE_OF = "SELECT province FROM service_centers WHERE code = ?"

    def _check_center(self, db: Any, official: Official, center: str) -> None:
        """An official works on the dossiers of their own center, and of any center of the same
        province (Decree 118/2025: within a province whatever the administrative boundaries)."""
        if official.center == center:
            return
        theirs = db.execute(self._PROVINCE_OF, (official.center,)).fetchone()
        its = db.execute(self._PROVINCE_OF, (center,)).fetchone()
        if theirs is None or its is None or theirs[0] != its[0]:
            raise PermissionDenied(
                f"this dossier was received at center {center}, in another province than"
                f" center {official.center}, where official {official.id} works",
                reason="OTHER_PROVINCE",
            )

    def _reach_args(self, official: Official) -> tuple[str, ...]:
        default = self.officials.default_center
        return (default, official.center, default, official.center)

    def _in_reach(self) -> str:
        """SQL: the dossier's center is the official's (first ?) or of its province (second)."""
        center = self._center_sql()
        return (
            f"({center} = ? OR {center} IN (SELECT code FROM service_centers WHERE province ="
            f" ({self._PROVINCE_OF})))"
        )

    def _holder_name(self, login: str, db: Any = None) -> str:
        """``Full Name (login)`` of an official; with ``db``, read in that transaction."""
        if db is None:
            with self.db.transaction(write=False) as own:
                return self._holder_name(login, own)
        row = db.execute("SELECT full_name FROM officials WHERE id = ?", (login,)).fetchone()
        return login if row is None else f"{row[0]} ({login})"

    def _check_open(
        self,
        db: Any,
        official: Official,
        state: str,
        holder: str | None,
        lease_until: datetime | None,
        outcome: str | None,
    ) -> None:
        if outcome is not None or state != "NEEDS_REVIEW":
            raise AlreadyDecided(
                f"this dossier's review has ended ({outcome or state.lower()})",
                field="dossier_id",
            )
        if holder and holder != official.id and lease_until is not None and lease_until > now():
            raise HeldByAnother(
                f"official {self._holder_name(holder, db)} holds this dossier until"
                f" {lease_until.astimezone(VIETNAM):%H:%M:%S}: wait, or ask them to release it",
                field="dossier_id",
            )

    # -- the queue ---------------------------------------------------------------------------

    _WAITING = (
        "FROM dossiers d LEFT JOIN reviews r ON r.dossier_id = d.id"
        " WHERE d.state = 'NEEDS_REVIEW' AND r.outcome IS NULL"
    )

    def queue(
        self, official: Official, *, thumbnails: bool = True, limit: int = 100
    ) -> list[QueueItem]:
        """The first ``limit`` dossiers waiting in the official's center: the oldest legal
        deadline (the appointment of its receipt) first, then the oldest arrival; a dossier
        received with no receipt after those with one."""
        waiting = self._WAITING.replace(
            " WHERE ", " LEFT JOIN receipts rc ON rc.dossier_id = d.id WHERE ", 1
        )
        with self.db.transaction(write=False) as db:
            rows = db.execute(
                "SELECT d.id, d.kiosk_id, d.created_at, d.reasons, d.page_count, r.holder,"
                f" r.lease_until, rc.appointment_at, {self._center_sql()}"
                f" {waiting} AND {self._in_reach()}"
                " ORDER BY CASE WHEN rc.appointment_at IS NULL THEN 1 ELSE 0 END,"
                " rc.appointment_at, d.created_at, d.id LIMIT ?",
                (self.officials.default_center, *self._reach_args(official), limit),
            ).fetchall()
        items = []
        current = now()
        for id_, kiosk, created, reasons, pages, holder, lease, appointment, center in rows:
            lease_until = self.db.dt(lease)
            if lease_until is not None and lease_until <= current:
                holder, lease_until = None, None
            items.append(
                QueueItem(
                    dossier_id=id_,
                    kiosk_id=kiosk,
                    created_at=self.db.codec.from_ts(created),
                    reasons=tuple(self.db.codec.from_json(reasons)),
                    page_count=pages,
                    holder=holder,
                    holder_name=self._holder_name(holder) if holder else None,
                    lease_until=lease_until,
                    thumbnails=self._thumbnails(id_) if thumbnails else (),
                    appointment_at=self.db.dt(appointment),
                    center=center,
                )
            )
        return items

    def waiting(self, official: Official) -> int:
        """How many dossiers wait in the official's center."""
        with self.db.transaction(write=False) as db:
            return int(
                db.execute(
                    f"SELECT count(*) {self._WAITING} AND {self._in_reach()}",
                    self._reach_args(official),
                ).fetchone()[0]
            )

    def page_image(self, official: Official, dossier_id: str, page: int) -> bytes:
        """One page's file as the kiosk sent it."""
        with self.db.transaction(write=False) as db:
            center = self._locate(db, dossier_id)[1]
            self._check_center(db, official, center)
        for p in self.registry.pages(dossier_id):
            if p.index == page:
                return self._blob(dossier_id, p.blob_key)
        raise NotFound(f"the dossier has no page {page} (0-based)", field="page")

    def _thumbnails(self, dossier_id: str) -> tuple[bytes, ...]:
        out = []
        for page in self.registry.pages(dossier_id):
            with Image.open(io.BytesIO(self._blob(dossier_id, page.blob_key))) as im:
                im.draft("RGB", (THUMBNAIL_PIXELS, THUMBNAIL_PIXELS))
                small = im.convert("RGB")
                small.thumbnail((THUMBNAIL_PIXELS, THUMBNAIL_PIXELS))
                buffer = io.BytesIO()
                small.save(buffer, "JPEG", quality=70)
            out.append(buffer.getvalue())
        return tuple(out)

    # -- leases ------------------------------------------------------------------------------

    def claim(self, official: Official, dossier_id: str) -> datetime:
        """Take (or renew) the lease on a dossier; until when it is held."""
        official.require("official", "head")
        until = now() + self.lease
        with self.db.transaction(write=True) as db:
            self._lock_dossier(db, dossier_id)
            state, center, holder, lease_until, outcome = self._locate(db, dossier_id)
            self._check_center(db, official, center)
            self._check_open(db, official, state, holder, lease_until, outcome)
            self._hold(db, dossier_id, official.id, until)
            if holder != official.id or lease_until is None or lease_until <= now():
                self.db.audit(db, official.id, "claimed", dossier_id)
        self._changed(dossier_id)
        return until

    def _lock_dossier(self, db: Any, dossier_id: str) -> None:
        """Serialize writers of one dossier (PostgreSQL; SQLite's write lock is global)."""
        db.execute("SELECT id FROM dossiers WHERE id = ?" + self.db.for_update, (dossier_id,))

    def _hold(self, db: Any, dossier_id: str, login: str | None, until: datetime | None) -> None:
        db.execute(
            "INSERT INTO reviews (dossier_id, holder, lease_until, updated_at)"
            " VALUES (?, ?, ?, ?) ON CONFLICT (dossier_id) DO UPDATE SET"
            " holder = excluded.holder, lease_until = excluded.lease_until,"
            " updated_at = excluded.updated_at",
            (dossier_id, login, None if until is None else self.db.ts(until), self.db.ts(now())),
        )

    def release(self, official: Official, dossier_id: str) -> None:
        """Give the lease back (only its holder can)."""
        with self.db.transaction(write=True) as db:
            _state, center, holder, _lease_until, outcome = self._locate(db, dossier_id)
            self._check_center(db, official, center)
            if holder == official.id and outcome is None:
                self._hold(db, dossier_id, None, None)
                self.db.audit(db, official.id, "released", dossier_id)
        self._changed(dossier_id)

    # -- one dossier -------------------------------------------------------------------------

    def get(self, official: Official, dossier_id: str) -> DossierView:
        with self.db.transaction(write=False) as db:
            _state, center, holder, lease_until, outcome = self._locate(db, dossier_id)
            self._check_center(db, official, center)
        dossier = self.registry.get_dossier(dossier_id)
        assert dossier is not None
        material = self._material(dossier_id)
        corrected = {
            (e["detail"].get("page"), e["detail"].get("field"))
            for e in self.db.audit_events(dossier_id)
            if e["kind"] == "corrected"
        }
        pages = []
        for p in self.registry.pages(dossier_id):
            kept = material.get(p.index)
            read = {f[0]: f for f in kept.fields} if kept is not None else {}
            fields = []
            for name, value, confidence in p.fields:
                if (p.index, name) in corrected:
                    source = "official"
                elif name in read:
                    source = read[name][3]
                else:
                    source = "ocr"
                fields.append(ReviewField(name, value, confidence, source))
            pages.append(
                ReviewPage(
                    index=p.index,
                    document_type=p.document_type,
                    image=self._blob(dossier_id, p.blob_key),
                    format=p.format,
                    width=p.width,
                    height=p.height,
                    mean_confidence=p.mean_confidence,
                    fields=tuple(fields),
                )
            )
        evidence = dict(dossier.identity_evidence or {})
        evidence.pop("subject", None)  # a keyed hash of the card number: nothing to review
        return DossierView(
            dossier=dossier,
            center=center,
            pages=tuple(pages),
            checks=dossier.checks,
            identity=evidence,
            holder=holder if lease_until is not None and lease_until > now() else None,
            holder_name=self._holder_name(holder) if holder else None,
            lease_until=lease_until,
            outcome=outcome,
        )

    def _material(self, dossier_id: str) -> dict[int, RenderMaterial]:
        with self.db.transaction(write=False) as db:
            rows = db.execute(
                "SELECT idx, words, rotation FROM review_pages WHERE dossier_id = ?",
                (dossier_id,),
            ).fetchall()
        out = {}
        for idx, words_json, rotation in rows:
            kept = self.db.codec.from_json(words_json)
            out[idx] = RenderMaterial(
                index=idx,
                words=tuple(Word(*w) for w in kept.get("words", [])),
                rotation=rotation,
                fields=tuple(tuple(f) for f in kept.get("fields", [])),  # type: ignore[misc]
            )
        return out

    def keep_material(self, dossier_id: str, material: Sequence[RenderMaterial]) -> None:
        """Keep what a dossier going to review needs for its copy (see RenderMaterial)."""
        with self.db.transaction(write=True) as db:
            for m in material:
                kept = {
                    "words": [
                        [w.text, w.left, w.top, w.right, w.bottom, w.confidence] for w in m.words
                    ],
                    "fields": [list(f) for f in m.fields],
                }
                db.execute(
                    "INSERT INTO review_pages (dossier_id, idx, words, rotation)"
                    " VALUES (?, ?, ?, ?) ON CONFLICT (dossier_id, idx) DO NOTHING",
                    (dossier_id, m.index, self.db.json(kept), m.rotation),
                )

    # -- approval ----------------------------------------------------------------------------

    async def approve(
        self, official: Official, dossier_id: str, corrections: Sequence[Correction] = ()
    ) -> Approval:
        """Issue the dossier's copy under the official's signature, with its register number
        and certification statement. Approving an approved dossier returns its copy."""
        official.require("official", "head")
        work = await self._run(self._prepare, official, dossier_id, tuple(corrections))
        if work.existing is not None:
            assert work.number is not None
            return Approval(work.existing, work.number, official.id, replayed=True)
        await self._run(self.claim, official, dossier_id)  # held (or renewed) while signing
        issued_at = now().replace(microsecond=0)
        number = await self._run(
            # The register and the statement are those of the center that certifies: the
            # official's, which may not be the one that received the dossier.
            self.register.reserve,
            official.center,
            dossier_id,
            official.id,
            issued_at,
        )
        stored = False
        try:
            approval = await self._issue(official, work, number, issued_at)
            stored = True
        finally:
            if not stored:
                await self._run(self.register.release, dossier_id)
        if self.publisher is not None and not approval.replayed:
            await self._run(self.publisher.issued, approval.copy)
            await self._run(self.publisher.approved, approval.copy)
        self._changed(dossier_id)
        return approval

    def _prepare(
        self, official: Official, dossier_id: str, corrections: tuple[Correction, ...]
    ) -> _Work:
        existing: tuple[CopyRecord, RegisterNumber] | None = None
        with self.db.transaction(write=False) as db:
            state, center, holder, lease_until, outcome = self._locate(db, dossier_id)
            self._check_center(db, official, center)
            if outcome == "issued" or state in ("ISSUED", "REVOKED"):
                copy_row = db.execute(
                    _COPY_SELECT + " WHERE dossier_id = ?", (dossier_id,)
                ).fetchone()
                number_row = db.execute(
                    "SELECT center, year, number FROM register_entries WHERE dossier_id = ?",
                    (dossier_id,),
                ).fetchone()
                if copy_row is not None and number_row is not None:
                    existing = _copy_of(copy_row, self.db.codec), RegisterNumber(*number_row)
            if existing is None:
                self._check_open(db, official, state, holder, lease_until, outcome)
        dossier = self.registry.get_dossier(dossier_id)
        assert dossier is not None
        if existing is not None:
            return _Work(dossier, center, [], {}, corrections, *existing)
        pages = self.registry.pages(dossier_id)
        self._check_corrections(pages, corrections)
        return _Work(dossier, center, pages, self._material(dossier_id), corrections)

    @staticmethod
    def _check_corrections(pages: list[PageRecord], corrections: tuple[Correction, ...]) -> None:
        indexes = {p.index for p in pages}
        for i, c in enumerate(corrections):
            where = f"corrections[{i}]"
            if c.page not in indexes:
                raise InvalidInput(
                    f"{where}.page: the dossier has pages 1-{len(pages)}, not {c.page + 1}",
                    field=f"{where}.page",
                )
            if not c.field or len(c.field) > 64:
                raise InvalidInput(
                    f"{where}.field: name the field to correct", field=f"{where}.field"
                )
            value = c.value.strip()
            if not value or len(value) > 500 or not plausible(c.field, value):
                raise InvalidInput(
                    f"{where}: {value[:60]!r} is not a valid {c.field}: correct it as the"
                    " document shows it (dates dd/mm/yyyy, names in letters, ID numbers of 12"
                    " digits)",
                    field=f"{where}.value",
                    reason="CORRECTION_INVALID",
                )

    def _render(self, work: _Work) -> list[RenderPage]:
        out = []
        for p in work.pages:
            page = admit(p.index, self._blob(work.dossier.id, p.blob_key), self.limits)
            image, fmt = render_image(page)
            kept = work.material.get(p.index)
            out.append(
                RenderPage(
                    image=image,
                    format=fmt,
                    width=page.width,
                    height=page.height,
                    dpi=page.dpi or DEFAULT_DPI,
                    words=kept.words if kept is not None else (),
                    text_rotation=kept.rotation if kept is not None else 0,
                )
            )
        return out

    async def _issue(
        self, official: Official, work: _Work, number: RegisterNumber, issued_at: datetime
    ) -> Approval:
        center = await self._run(self.officials.center, official.center)
        signer = await self._run(self.signers.for_official, official, center)
        code = codes.new_code()
        statement = Statement(
            number=number,
            day=issued_at.astimezone(VIETNAM).date(),
            place=center.name,
            official_name=official.full_name,
            official_title=official.title,
        )
        block = CertificationBlock(
            code=code,
            url=f"{self.base_url}/v/{code}",
            issuer=signer.issuer,
            issued_at=issued_at,
            statement=statement.lines(),
        )
        render_pages = await self._run(self._render, work)
        pdf = await self._run(render_with_qr, render_pages, block, self.qr_key)
        signed = await signer.sign(pdf)
        copy = CopyRecord(
            code=code,
            dossier_id=work.dossier.id,
            blob_key=hashlib.sha256(signed).hexdigest(),
            size_bytes=len(signed),
            issuer=signer.issuer,
            issued_at=issued_at,
            pages=len(work.pages),
            revoked_at=None,
            revoke_reason=None,
        )
        return await self._run(self._store, official, work, number, copy, signed)

    def _store(
        self,
        official: Official,
        work: _Work,
        number: RegisterNumber,
        copy: CopyRecord,
        signed: bytes,
    ) -> Approval:
        store = self._blobs_of(work.dossier.id, copy.blob_key)
        key, created = store.put(signed)
        try:
            with self.db.transaction(write=True) as db:
                self._lock_dossier(db, work.dossier.id)
                state, _, holder, lease_until, outcome = self._locate(db, work.dossier.id)
                if outcome == "issued":
                    row = db.execute(
                        _COPY_SELECT + " WHERE dossier_id = ?", (work.dossier.id,)
                    ).fetchone()
                    existing = _copy_of(row, self.db.codec)
                    stored = Approval(existing, number, official.id, replayed=True)
                else:
                    self._check_open(db, official, state, holder, lease_until, outcome)
                    self._commit(db, official, work, number, copy)
                    stored = Approval(copy, number, official.id)
        except BaseException:
            if created:
                store.delete(key)
            raise
        if stored.replayed and created:
            store.delete(key)
        return stored

    def _commit(
        self,
        db: Any,
        official: Official,
        work: _Work,
        number: RegisterNumber,
        copy: CopyRecord,
    ) -> None:
        dossier_id = work.dossier.id
        confirmed = db.execute(
            "UPDATE register_entries SET state = 'issued', code = ?, official_id = ?,"
            " issued_at = ? WHERE center = ? AND year = ? AND number = ? AND dossier_id = ?",
            (
                copy.code,
                official.id,
                self.db.ts(copy.issued_at),
                number.center,
                number.year,
                number.number,
                dossier_id,
            ),
        )
        if getattr(confirmed, "rowcount", 1) != 1:
            raise OutOfOrder(
                "the register number taken for this approval was given back: approve again",
                reason="REGISTER_NUMBER_LOST",
            )
        db.execute(_insert_sql("copies", _COPY_COLUMNS), _copy_row(copy, self.db.codec))
        db.execute(
            "UPDATE dossiers SET state = 'ISSUED', decided_at = ? WHERE id = ?",
            (self.db.ts(now()), dossier_id),
        )
        self._correct(db, official, work)
        db.execute("DELETE FROM review_pages WHERE dossier_id = ?", (dossier_id,))
        detail = {"code": copy.code, "register": str(number), "official": official.id}
        db.execute(
            "INSERT INTO reviews (dossier_id, holder, lease_until, outcome, detail, updated_at)"
            " VALUES (?, ?, NULL, 'issued', ?, ?) ON CONFLICT (dossier_id) DO UPDATE SET"
            " holder = excluded.holder, lease_until = NULL, outcome = 'issued',"
            " detail = excluded.detail, updated_at = excluded.updated_at",
            (dossier_id, official.id, self.db.json(detail), self.db.ts(now())),
        )
        db.execute(
            "INSERT INTO events (dossier_id, at, kind, detail) VALUES (?, ?, 'approved', ?)",
            (dossier_id, self.db.ts(now()), self.db.json(detail)),
        )
        self.db.audit(db, official.id, "approved", dossier_id, **detail)

    def _correct(self, db: Any, official: Official, work: _Work) -> None:
        by_page: dict[int, list[Correction]] = {}
        for c in work.corrections:
            by_page.setdefault(c.page, []).append(c)
        for page in work.pages:
            changes = by_page.get(page.index)
            if not changes:
                continue
            fields = [list(f) for f in page.fields]
            for c in changes:
                value = c.value.strip()
                previous = next((f[1] for f in fields if f[0] == c.field), None)
                for f in fields:
                    if f[0] == c.field:
                        f[1], f[2] = value, 1.0
                if previous is None:
                    fields.append([c.field, value, 1.0])
                # Which field, and whether it was read at all: the values are the citizen's
                # and stay with the page (source "official"), under the retention policy.
                self.db.audit(
                    db,
                    official.id,
                    "corrected",
                    work.dossier.id,
                    page=page.index,
                    field=c.field,
                    was_read=previous is not None,
                )
            db.execute(
                "UPDATE pages SET fields = ? WHERE dossier_id = ? AND idx = ?",
                (self.db.json(fields), work.dossier.id, page.index),
            )

    # -- refusal and rescan ------------------------------------------------------------------

    def refuse(self, official: Official, dossier_id: str, ground: str, message: str) -> None:
        """Refuse the dossier on a ground of Decree 23/2015 art. 22, with words for the
        citizen; the dossier becomes REJECTED."""
        official.require("official", "head")
        if ground not in REFUSAL_GROUNDS:
            raise InvalidInput(
                f"ground must be one of {', '.join(REFUSAL_GROUNDS)} (Decree 23/2015 art. 22)",
                field="ground",
            )
        message = " ".join(message.split())
        if not 3 <= len(message) <= 500:
            raise InvalidInput(
                "message: tell the citizen why, in 3-500 characters", field="message"
            )
        # The refusal's leaf in the transparency log: a reference code and the hash of the
        # refusal's record (no personal data, and nothing of the dossier but its id).
        at = now().replace(microsecond=0)
        reference = codes.new_code()
        record = {
            "at": at.isoformat(),
            "dossier_id": dossier_id,
            "ground": ground,
            "official": official.id,
            "reference": reference,
        }
        digest = hashlib.sha256(json.dumps(record, sort_keys=True).encode()).hexdigest()
        self._close(
            official,
            dossier_id,
            "refused",
            {
                "ground": ground,
                "message": message,
                "official": official.id,
                "reference": reference,
                "record_sha256": digest,
                "at": record["at"],
            },
            reason=f"{REFUSAL_GROUNDS[ground]}: {message}",
        )
        if self.publisher is not None:
            self.publisher.refused(reference, digest, at, self.signers.pki.organization)

    def request_rescan(self, official: Official, dossier_id: str, page: int, why: str) -> None:
        """Ask the kiosk to scan one page again; this dossier ends (REJECTED) and the kiosk
        sends a new one."""
        official.require("official", "head")
        why = " ".join(why.split())
        if not 3 <= len(why) <= 500:
            raise InvalidInput(
                "reason: say what is wrong with the page (3-500 characters)", field="reason"
            )
        dossier = self.registry.get_dossier(dossier_id)
        if dossier is not None and not 0 <= page < dossier.page_count:
            raise InvalidInput(
                f"page: the dossier has pages 0-{dossier.page_count - 1} (0-based), not {page}",
                field="page",
            )
        self._close(
            official,
            dossier_id,
            "rescan",
            {"page": page, "reason": why, "official": official.id},
            reason=f"trang {page + 1} cần quét lại / page {page + 1} must be rescanned: {why}",
        )

    def _close(
        self,
        official: Official,
        dossier_id: str,
        outcome: str,
        detail: dict[str, Any],
        *,
        reason: str,
    ) -> None:
        with self.db.transaction(write=True) as db:
            self._lock_dossier(db, dossier_id)
            state, center, holder, lease_until, current = self._locate(db, dossier_id)
            self._check_center(db, official, center)
            self._check_open(db, official, state, holder, lease_until, current)
            db.execute(
                "UPDATE dossiers SET state = 'REJECTED', decided_at = ?, reasons = ? WHERE id = ?",
                (self.db.ts(now()), self.db.json([reason]), dossier_id),
            )
            db.execute(
                "INSERT INTO reviews (dossier_id, holder, lease_until, outcome, detail,"
                " updated_at) VALUES (?, ?, NULL, ?, ?, ?) ON CONFLICT (dossier_id) DO UPDATE"
                " SET holder = excluded.holder, lease_until = NULL, outcome = excluded.outcome,"
                " detail = excluded.detail, updated_at = excluded.updated_at",
                (dossier_id, official.id, outcome, self.db.json(detail), self.db.ts(now())),
            )
            # what the copy would have needed: the words read, personal data
            db.execute("DELETE FROM review_pages WHERE dossier_id = ?", (dossier_id,))
            kind = "refused" if outcome == "refused" else "rescan_requested"
            db.execute(
                "INSERT INTO events (dossier_id, at, kind, detail) VALUES (?, ?, ?, ?)",
                (dossier_id, self.db.ts(now()), kind, self.db.json(detail)),
            )
            self.db.audit(db, official.id, kind, dossier_id, **detail)
        self._changed(dossier_id)

    def reviews_everything(self, kiosk_id: str) -> bool:
        return self.officials.reviews_everything(kiosk_id)

    def reconcile_log(self) -> int:
        """Append the approvals and refusals the transparency log lacks (a process stopped
        between a decision's commit and its leaf); how many."""
        if self.publisher is None:
            return 0
        with self.db.transaction(write=False) as db:
            approved = [
                _copy_of(row, self.db.codec)
                for row in db.execute(
                    "SELECT "
                    + ", ".join("c." + column.strip() for column in _COPY_COLUMNS.split(","))
                    + " FROM copies c JOIN reviews r ON r.dossier_id = c.dossier_id"
                    " WHERE r.outcome = 'issued'"
                ).fetchall()
            ]
            refused = [
                self.db.from_json(detail)
                for (detail,) in db.execute(
                    "SELECT detail FROM reviews WHERE outcome = 'refused'"
                ).fetchall()
            ]
        before = self.publisher.log.size()
        for copy in approved:
            self.publisher.issued(copy)
            self.publisher.approved(copy)
        for detail in refused:
            if detail and detail.get("reference") and detail.get("record_sha256"):
                self.publisher.refused(
                    detail["reference"],
                    detail["record_sha256"],
                    datetime.fromisoformat(detail["at"]),
                    self.signers.pki.organization,
                )
        return self.publisher.log.size() - before

    # -- copies issued without review ---------------------------------------------------------

    def automatic(self, dossier_id: str, kiosk_id: str, at: datetime) -> AutomaticIssue:
        """The register number, statement and on-duty signer of a copy issued at once."""
        center = self.officials.center(self.officials.center_of_kiosk(kiosk_id))
        number = self.register.reserve(center.id, dossier_id, "", at)
        statement = Statement(
            number=number,
            day=at.astimezone(VIETNAM).date(),
            place=center.name,
            official_name=DUTY_NAME,
            official_title=DUTY_TITLE,
        )
        return AutomaticIssue(statement.lines(), self.signers.on_duty(center))

    def issued_automatically(self, dossier_id: str, code: str, at: datetime) -> None:
        self.register.issued_without_review(dossier_id, code, at)

    def not_issued(self, dossier_id: str) -> None:
        self.register.release(dossier_id)

    # -- what the kiosk is told --------------------------------------------------------------

    def status(self, dossier_id: str) -> DossierStatus:
        with self.db.transaction(write=False) as db:
            row = db.execute(
                "SELECT d.state, r.holder, r.lease_until, r.outcome, r.detail, r.updated_at"
                " FROM dossiers d LEFT JOIN reviews r ON r.dossier_id = d.id WHERE d.id = ?",
                (dossier_id,),
            ).fetchone()
            copy_row = db.execute(_COPY_SELECT + " WHERE dossier_id = ?", (dossier_id,)).fetchone()
        if row is None:
            raise NotFound(f"no dossier {dossier_id[:40]!r}", field="dossier_id")
        state, holder, lease, outcome, detail_json, _updated = row
        detail = self.db.from_json(detail_json) or {}
        if copy_row is not None:
            copy = _copy_of(copy_row, self.db.codec)
            return DossierStatus(
                "issued", code=copy.code, url=f"{self.base_url}/v/{copy.code}", copy=copy
            )
        if outcome == "refused":
            return DossierStatus(
                "refused",
                ground=detail.get("ground", ""),
                message=f"{REFUSAL_GROUNDS.get(detail.get('ground', ''), '')}:"
                f" {detail.get('message', '')}",
            )
        if outcome == "rescan":
            return DossierStatus(
                "rescan",
                page=int(detail.get("page", -1)),
                message=detail.get("reason", ""),
            )
        if state != "NEEDS_REVIEW":
            return DossierStatus(state.lower())
        lease_until = self.db.dt(lease)
        if holder and lease_until is not None and lease_until > now():
            found = self.officials.get(holder)
            return DossierStatus("claimed", holder_name=found.full_name)
        return DossierStatus("waiting")


__all__ = [
    "REFUSAL_GROUNDS",
    "AlreadyDecided",
    "Approval",
    "Correction",
    "Desk",
    "DossierStatus",
    "DossierView",
    "HeldByAnother",
    "OfficialSigners",
    "QueueItem",
    "RenderMaterial",
    "ReviewField",
    "ReviewPage",
    "TokenConfig",
    "move_key_into_token",
]
