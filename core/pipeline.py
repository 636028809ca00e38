"""The certification pipeline of one dossier, from admitted pages to a decided, stored outcome.

The server owns the stream protocol; this module owns the work. One :class:`Certifier` is built
at start-up with its collaborators (OCR engine, signer, registry, blob store, a bounded executor)
and one :class:`DossierContext` is made per dossier. CPU work runs in the executor so the event
loop only moves bytes; OCR and document analysis of a page start as soon as the page is accepted,
overlapping the upload of the next one. Once every page is read, the dossier's validity rules
decide: a failed rule rejects it, an uncertain one sends it to an official, and only a dossier
that passes every check is issued.

Recognized fields are personal data: they go to the kiosk and into the registry, never into logs
or metric labels.
"""

from __future__ import annotations

import asyncio
import ctypes
import hashlib
import logging
import threading
import time
import uuid
from collections.abc import AsyncIterator, Callable, Sequence
from concurrent.futures import Executor
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta, timezone
from typing import Any, Protocol, TypeVar

from saoy.core.documents import (
    DocumentReader,
    Field,
    PageAnalysis,
    PageView,
    analyze_view,
    page_view,
    reconcile,
)
from saoy.core.documents.analysis import quarter_turns_upright, read_turned
from saoy.core.documents.grammar import vietnamese_word
from saoy.core.documents.reader import Orientation
from saoy.core.documents.rules import dossier_checks
from saoy.core.errors import DeadlineExceeded
from saoy.core.model import (
    AdmittedPage,
    CertificationBlock,
    CheckResult,
    OcrResult,
    Outcome,
    RenderMaterial,
    RenderPage,
)
from saoy.core.ocr.tesseract import OcrEngine
from saoy.core.pages.admission import Limits, admit_decoded, quality_issues
from saoy.core.pages.imaging import (
    PreparedPage,
    prepare,
    render_image,
    result_to_source,
    turned,
)
from saoy.core.reception import codes
from saoy.core.storage.blobs import BlobStore
from saoy.core.storage.registry import (
    CopyRecord,
    DossierRecord,
    DuplicateRequest,
    PageRecord,
    Registry,
    store_dossier,
)
from saoy.core.trust.offline import QrKey, render_with_qr
from saoy.core.trust.publication import LogPublisher
from saoy.core.trust.signing import CopySigner

log = logging.getLogger("saoy.pipeline")

T = TypeVar("T")

DEFAULT_DPI = 300.0
VIETNAM = timezone(timedelta(hours=7), "ICT")

# The machine-readable reason of a rejection, by the first failed check.
REJECTION_REASONS = {
    "page_usable": "PAGE_UNUSABLE",  # blank, or no document on it
    "decree_23_certifiable": "NOT_CERTIFIABLE",  # marked confidential
    "mrz_check_digits": "MRZ_INVALID",
    "qr_code": "QR_INVALID",
    "id_number_structure": "ID_NUMBER_INVALID",
    "fields_agree": "FIELDS_DISAGREE",
    "card_not_expired": "EXPIRED",
}


def local_today() -> date:
    """Today at the kiosks (Vietnam, UTC+7): the day that decides whether a card has expired."""
    return datetime.now(VIETNAM).date()


def rejection_reason(check: CheckResult) -> str:
    return REJECTION_REASONS.get(check.name, check.name.upper())


class ReviewHooks(Protocol):
    """What the pipeline asks of the official's desk (see :mod:`saoy.core.desk.review`)."""

    def reviews_everything(self, kiosk_id: str) -> bool:
        """Whether the kiosk's center has every dossier reviewed (``review=all``)."""
        ...

    def keep_material(self, dossier_id: str, material: Sequence[RenderMaterial]) -> None:
        """Keep what the copy of a dossier sent to review will need."""
        ...

    def automatic(self, dossier_id: str, kiosk_id: str, at: datetime) -> AutomaticIssue:
        """The register number (taken now), the statement and the signer (the on-duty
        official's key of the kiosk's center) of a copy issued without review."""
        ...

    def issued_automatically(self, dossier_id: str, code: str, at: datetime) -> None:
        """The copy was stored: its register entry names it."""
        ...

    def not_issued(self, dossier_id: str) -> None:
        """The copy was not stored: give its register number back."""
        ...


@dataclass(frozen=True)
class AutomaticIssue:
    """How a copy issued without review is signed and what its statement says."""

    statement: tuple[str, ...]
    signer: CopySigner | None = None  # None: the Certifier's own signer


POLICY_CHECK = "review_policy"
"""The check a clean dossier gets under ``review=all``: WARN, so that an official approves."""


class StageObserver(Protocol):
    def observe_stage(self, stage: str, seconds: float) -> None: ...

    def observe_queue_wait(self, seconds: float) -> None: ...


@dataclass(frozen=True)
class PipelineConfig:
    limits: Limits
    base_url: str  # verification URLs are f"{base_url}/v/{code}"
    today: Callable[[], date] = local_today  # the day validity rules judge expiry on
    economical: bool = True
    """Spend the CPU a dossier needs and no more, for the same reading: native kernels on one
    thread each (the executor already runs a page per core); no orientation detection on a
    page whose reading shows it upright (see :func:`reader_for`). False: as before, for
    ``benchmarks/cost.py`` to compare."""

    def url_for(self, code: str) -> str:
        return f"{self.base_url}/v/{code}"


# Events of a dossier, in the order they happen. The server maps them onto the proto.


@dataclass(frozen=True)
class PageAccepted:
    page: AdmittedPage


@dataclass(frozen=True)
class PageRejected:
    index: int
    reason: str
    message: str


@dataclass(frozen=True)
class RecognizedPage:
    index: int
    document_type: str  # one of saoy.core.documents.DOCUMENT_TYPES
    word_count: int
    mean_confidence: float  # 0-100
    fields: tuple[Field, ...] = ()  # confidences 0-1
    type_confidence: float = 0.0  # 0-1
    variant: str = ""  # "2021" | "2024" for ID cards, when it can be told
    condition: str = "ok"  # "ok" | "blank" | "no_text" | "rotated"
    rotation: int = 0  # degrees the page was turned counter-clockwise in the scan

    @classmethod
    def of(cls, page: PageAnalysis) -> RecognizedPage:
        return cls(
            index=page.index,
            document_type=page.document_type,
            word_count=page.word_count,
            mean_confidence=round(page.mean_confidence, 1),
            fields=page.fields,
            type_confidence=round(page.confidence, 3),
            variant=page.variant or "",
            condition=page.condition,
            rotation=page.rotation,
        )


@dataclass(frozen=True)
class Recognized:
    pages: tuple[RecognizedPage, ...]


@dataclass(frozen=True)
class Validated:
    checks: tuple[CheckResult, ...]


@dataclass(frozen=True)
class Issued:
    code: str
    url: str
    sha256: str
    pages: int
    size_bytes: int
    issuer: str
    issued_at: datetime


@dataclass(frozen=True)
class NeedsReview:
    reasons: tuple[str, ...]
    dossier_id: str = ""  # set on a replay: the dossier decided before


@dataclass(frozen=True)
class Rejected:
    reason: str
    message: str


Terminal = Issued | NeedsReview | Rejected
Event = Recognized | Validated | Terminal


@dataclass
class _PageWork:
    page: AdmittedPage
    # The words mapped onto the scan (the copy's text layer), and the page's analysis.
    reading: asyncio.Future[tuple[OcrResult, PageAnalysis]]


@dataclass
class DossierContext:
    """Per-dossier state: what was received, and the work started on it."""

    request_id: str
    kiosk_id: str
    deadline: float | None = None  # time.monotonic() value, None = no deadline
    dossier_id: str = field(default_factory=lambda: uuid.uuid4().hex)
    created_at: datetime = field(default_factory=lambda: datetime.now(UTC))
    pages: dict[int, _PageWork] = field(default_factory=dict)
    today: date | None = None  # the day the dossier is judged on, fixed by its first page
    identity_evidence: dict[str, Any] | None = None  # kept on the dossier (see DossierRecord)
    hints: dict[int, str] = field(default_factory=dict)  # page index -> type the kiosk named

    def check_deadline(self, stage: str) -> None:
        if self.deadline is not None and time.monotonic() > self.deadline:
            raise DeadlineExceeded(
                f"the deadline passed before {stage}; retry with the same request_id",
                reason="DEADLINE_EXCEEDED",
            )

    def discard(self) -> None:
        """Drop work in flight (a cut stream): nothing of this dossier is kept."""
        for work in self.pages.values():
            work.reading.cancel()
        self.pages.clear()


def decision_of(dossier: DossierRecord, copy: CopyRecord | None, base_url: str) -> Terminal:
    """The terminal event of a decided dossier, for replays of its request_id."""
    if copy is not None:
        return Issued(
            code=copy.code,
            url=f"{base_url}/v/{copy.code}",
            sha256=copy.blob_key,
            pages=copy.pages,
            size_bytes=copy.size_bytes,
            issuer=copy.issuer,
            issued_at=copy.issued_at,
        )
    if dossier.state == "NEEDS_REVIEW":
        return NeedsReview(dossier.reasons, dossier.id)
    failed = next((c for c in dossier.checks if c.outcome is Outcome.FAIL), None)
    return Rejected(
        "REJECTED" if failed is None else rejection_reason(failed),
        "; ".join(dossier.reasons) or "the dossier was rejected",
    )


class Certifier:
    """Runs the stages of a dossier with the collaborators it was built with."""

    def __init__(
        self,
        *,
        config: PipelineConfig,
        ocr: OcrEngine,
        signer: CopySigner,
        registry: Registry,
        blobs: BlobStore,
        executor: Executor,
        observer: StageObserver | None = None,
        publisher: LogPublisher | None = None,
        qr_key: QrKey | None = None,
        reader: DocumentReader | None = None,
        review: ReviewHooks | None = None,
    ) -> None:
        """``qr_key`` signs the offline payload printed in every copy's QR; without it the QR
        carries the verification URL alone (and the copy cannot be checked offline).
        ``reader`` gives document analysis a second, MRZ-only reading and page orientation
        detection; without it turned pages read as pages without text."""
        self.config = config
        self.ocr = ocr
        self.signer = signer
        self.registry = registry
        self.blobs = blobs
        self.executor = executor
        self.observer = observer
        self.publisher = publisher
        self.qr_key = qr_key
        self.reader = reader
        self.review = review

    async def _run(self, stage: str, fn: Callable[..., T], *args: Any) -> T:
        """Run CPU work in the executor. The stage's time is measured inside the worker, so
        it excludes the wait for a free worker, which is observed on its own."""
        queued = time.perf_counter()

        def timed() -> T:
            kernel_threads(1 if self.config.economical else None)
            start = time.perf_counter()
            if self.observer is not None:
                self.observer.observe_queue_wait(start - queued)
            try:
                return fn(*args)
            finally:
                self._observe(stage, time.perf_counter() - start)

        return await asyncio.get_running_loop().run_in_executor(self.executor, timed)

    def _observe(self, stage: str, seconds: float) -> None:
        if self.observer is not None:
            self.observer.observe_stage(stage, seconds)

    async def replay(self, kiosk_id: str, request_id: str) -> Terminal | None:
        """The decision already taken for this request, if any."""
        found = await self._run("lookup", self.registry.find_by_request, kiosk_id, request_id)
        if found is None:
            return None
        return decision_of(found[0], found[1], self.config.base_url)

    async def add_page(
        self, ctx: DossierContext, index: int, data: bytes
    ) -> PageAccepted | PageRejected:
        """Admit one page file; on success start its OCR and analysis at once. Bad files raise
        SaoyError."""
        page, image = await self._run("admit", admit_decoded, index, data, self.config.limits)
        prepared = await self._run("preprocess", prepare, page, image)  # no second decode
        issues = quality_issues(page, prepared)
        if issues:
            first = issues[0]
            return PageRejected(index, first.reason, first.message)
        previous = ctx.pages.pop(index, None)
        if previous is not None:
            previous.reading.cancel()
        if ctx.today is None:
            ctx.today = self.config.today()
        reading = asyncio.ensure_future(self._read_page(page, prepared, ctx.today))
        ctx.pages[index] = _PageWork(page, reading)
        return PageAccepted(page)

    async def _read_page(
        self, page: AdmittedPage, prepared: PreparedPage, today: date
    ) -> tuple[OcrResult, PageAnalysis]:
        """Take seals and QR codes off the page, OCR it, then analyse it: type, fields, MRZ,
        QR code, seal, markings. A page found turned is turned upright and read again."""
        on_scan, analysis = await self._read_once(page, prepared, today)
        for turns in quarter_turns_upright(analysis):
            again_on_scan, again = await self._read_once(page, turned(prepared, turns), today)
            upright = read_turned(analysis, again, turns)
            if upright is not None:
                return again_on_scan, upright
        return on_scan, analysis

    async def _read_once(
        self, page: AdmittedPage, prepared: PreparedPage, today: date
    ) -> tuple[OcrResult, PageAnalysis]:
        view = await self._run("clean", page_view, page, prepared)
        raw, on_scan = await self._run("ocr", _read, self.ocr, view, prepared)
        reader = reader_for(self.reader, raw) if self.config.economical else self.reader
        analysis = await self._run("analyze", analyze_view, page.index, view, raw, today, reader)
        return on_scan, analysis

    async def process(self, ctx: DossierContext) -> AsyncIterator[Event]:
        """Recognize, validate, and decide the dossier; the last event is terminal."""
        works = [ctx.pages[i] for i in sorted(ctx.pages)]
        readings = await asyncio.gather(*(w.reading for w in works))
        results = [result for result, _ in readings]
        analyses = list(reconcile([analysis for _, analysis in readings]))
        ctx.check_deadline("recognition")
        yield Recognized(tuple(RecognizedPage.of(a) for a in analyses))

        today = ctx.today or self.config.today()
        checks = await self._run("validate", _checks, works, analyses, today, ctx.hints)
        clean = all(c.outcome is Outcome.PASS for c in checks)
        if (
            clean
            and self.review is not None
            and await self._run("policy", self.review.reviews_everything, ctx.kiosk_id)
        ):
            policy = CheckResult(
                POLICY_CHECK,
                Outcome.WARN,
                "the center's policy is that an official reviews every dossier",
            )
            checks = (*checks, policy)
        yield Validated(checks)

        failed = [c for c in checks if c.outcome is Outcome.FAIL]
        warned = [c for c in checks if c.outcome is Outcome.WARN]
        if failed:
            yield await self._decide_without_copy(ctx, works, results, checks, "REJECTED", failed)
            return
        if warned:
            decided = await self._decide_without_copy(
                ctx, works, results, checks, "NEEDS_REVIEW", warned
            )
            fresh = isinstance(decided, NeedsReview) and not decided.dossier_id
            if self.review is not None and fresh:
                material = [
                    RenderMaterial(
                        index=w.page.index,
                        words=r.words,
                        rotation=a.rotation,
                        fields=tuple((f.name, f.value, f.confidence, f.source) for f in a.fields),
                    )
                    for w, r, a in zip(works, results, analyses, strict=True)
                ]
                await self._run("store", self.review.keep_material, ctx.dossier_id, material)
            yield decided
            return
        yield await self._issue(ctx, works, results, analyses, checks)

    def _page_records(
        self, ctx: DossierContext, works: list[_PageWork], results: list[OcrResult]
    ) -> list[PageRecord]:
        records = []
        for w, r in zip(works, results, strict=True):
            analysis = w.reading.result()[1]  # done: the dossier was read before it is stored
            records.append(
                PageRecord(
                    dossier_id=ctx.dossier_id,
                    index=w.page.index,
                    blob_key=w.page.sha256,
                    format=w.page.format,
                    width=w.page.width,
                    height=w.page.height,
                    text=r.text,
                    mean_confidence=r.mean_confidence,
                    document_type=analysis.document_type,
                    fields=tuple((f.name, f.value, f.confidence) for f in analysis.fields),
                )
            )
        return records

    async def _decide_without_copy(
        self,
        ctx: DossierContext,
        works: list[_PageWork],
        results: list[OcrResult],
        checks: tuple[CheckResult, ...],
        state: str,
        causes: list[CheckResult],
    ) -> Terminal:
        reasons = tuple(c.reason for c in causes)
        dossier = self._dossier(ctx, state, len(works), reasons, checks)
        stored = await self._store(ctx, works, results, dossier, None, None)
        if stored is not None:
            return stored
        if state == "NEEDS_REVIEW":
            return NeedsReview(reasons)
        return Rejected(rejection_reason(causes[0]), "; ".join(reasons))

    def _dossier(
        self,
        ctx: DossierContext,
        state: str,
        page_count: int,
        reasons: tuple[str, ...],
        checks: tuple[CheckResult, ...],
    ) -> DossierRecord:
        return DossierRecord(
            id=ctx.dossier_id,
            request_id=ctx.request_id,
            kiosk_id=ctx.kiosk_id,
            state=state,
            created_at=ctx.created_at,
            decided_at=datetime.now(UTC),
            page_count=page_count,
            reasons=reasons,
            checks=checks,
            identity_evidence=ctx.identity_evidence,
        )

    async def _issue(
        self,
        ctx: DossierContext,
        works: list[_PageWork],
        results: list[OcrResult],
        analyses: list[PageAnalysis],
        checks: tuple[CheckResult, ...],
    ) -> Terminal:
        code = codes.new_code()
        issued_at = datetime.now(UTC).replace(microsecond=0)
        signer: CopySigner = self.signer
        statement: tuple[str, ...] = ()
        if self.review is not None:
            duty = await self._run(
                "register", self.review.automatic, ctx.dossier_id, ctx.kiosk_id, issued_at
            )
            signer, statement = duty.signer or self.signer, duty.statement
        stored = False
        try:
            terminal = await self._issue_signed(
                ctx, works, results, analyses, checks, code, issued_at, signer, statement
            )
            stored = isinstance(terminal, Issued) and terminal.code == code
        finally:
            if self.review is not None:
                if stored:
                    await self._run(
                        "register",
                        self.review.issued_automatically,
                        ctx.dossier_id,
                        code,
                        issued_at,
                    )
                else:
                    await self._run("register", self.review.not_issued, ctx.dossier_id)
        return terminal

    async def _issue_signed(
        self,
        ctx: DossierContext,
        works: list[_PageWork],
        results: list[OcrResult],
        analyses: list[PageAnalysis],
        checks: tuple[CheckResult, ...],
        code: str,
        issued_at: datetime,
        signer: CopySigner,
        statement: tuple[str, ...],
    ) -> Terminal:
        block = CertificationBlock(
            code=code,
            url=self.config.url_for(code),
            issuer=signer.issuer,
            issued_at=issued_at,
            statement=statement,
        )
        render_pages = await self._run(
            "render", _render_pages, [w.page for w in works], results, analyses
        )
        pdf = await self._run("render", render_with_qr, render_pages, block, self.qr_key)
        ctx.check_deadline("signing")
        start = time.perf_counter()
        signed = await signer.sign(pdf)
        self._observe("sign", time.perf_counter() - start)
        ctx.check_deadline("storage")

        dossier = self._dossier(ctx, "ISSUED", len(works), (), checks)
        copy = CopyRecord(
            code=code,
            dossier_id=ctx.dossier_id,
            blob_key=hashlib.sha256(signed).hexdigest(),
            size_bytes=len(signed),
            issuer=signer.issuer,
            issued_at=issued_at,
            pages=len(works),
            revoked_at=None,
            revoke_reason=None,
        )
        replayed = await self._store(ctx, works, results, dossier, copy, signed)
        if replayed is not None:
            return replayed
        if self.publisher is not None:
            await self._run("publish", self.publisher.issued, copy)
        return Issued(
            code=code,
            url=block.url,
            sha256=copy.blob_key,
            pages=copy.pages,
            size_bytes=copy.size_bytes,
            issuer=copy.issuer,
            issued_at=issued_at,
        )

    async def _store(
        self,
        ctx: DossierContext,
        works: list[_PageWork],
        results: list[OcrResult],
        dossier: DossierRecord,
        copy: CopyRecord | None,
        pdf: bytes | None,
    ) -> Terminal | None:
        """Store the outcome in one atomic step. If another stream with the same request_id
        won the race, return its decision instead."""
        pages = self._page_records(ctx, works, results)
        try:
            await self._run(
                "store",
                lambda: store_dossier(
                    self.registry,
                    self.blobs,
                    page_files=[w.page.data for w in works],
                    pdf=pdf,
                    dossier=dossier,
                    pages=pages,
                    copy=copy,
                    event_kind=dossier.state.lower(),
                    event_detail={"pages": len(works), "kiosk": ctx.kiosk_id},
                ),
            )
        except DuplicateRequest:
            replay = await self.replay(ctx.kiosk_id, ctx.request_id)
            if replay is None:
                raise
            return replay
        return None


UPRIGHT_CONFIDENCE = 80.0
"""A page read with this mean word confidence (0-100) and more, in level lines of Vietnamese
words, is upright. Read upside down, pages and cards of both corpora score under 55; read on
their side, Tesseract reads the lines as vertical text (boxes taller than wide)."""
UPRIGHT_WORDS = 20  # words of three characters and more read with confidence 50 and more
UPRIGHT_LEVEL = 0.9  # of those, the share whose box is wider than tall
UPRIGHT_SYLLABLES = 0.6  # of the words of letters, the share that are Vietnamese syllables


def reads_upright(result: OcrResult) -> bool:
    """Whether the page's reading shows the page upright: confident, in level lines, and in
    Vietnamese words (upside down, a reader's nonsense is no language)."""
    if result.mean_confidence < UPRIGHT_CONFIDENCE:
        return False
    words = [w for w in result.words if len(w.text) >= 3 and w.confidence >= 50]
    if len(words) < UPRIGHT_WORDS:
        return False
    level = sum(w.right - w.left > w.bottom - w.top for w in words)
    if level < UPRIGHT_LEVEL * len(words):
        return False
    letters = [t for t in (w.text.strip(".,:;!?()\"'") for w in result.words) if t.isalpha()]
    syllables = sum(vietnamese_word(t) for t in letters)
    return syllables >= UPRIGHT_SYLLABLES * max(1, len(letters))


class _KnownUpright(DocumentReader):
    """The document reader for one page whose reading shows it upright: orientation detection
    answers so without looking; every other reading is the wrapped reader's (its Tesseract
    API objects, shared)."""

    def __init__(self, reader: DocumentReader) -> None:  # the wrapped reader is set up
        self._reader = reader

    def __getattr__(self, name: str) -> Any:
        return getattr(self._reader, name)

    def orientation(self, gray: Any) -> Orientation | None:
        return Orientation(0, 100.0)

    def close(self) -> None:
        """The wrapped reader is closed by its owner."""


def reader_for(reader: DocumentReader | None, result: OcrResult) -> DocumentReader | None:
    """The document reader to analyse a page read as ``result`` with: ``reader``, but where
    the reading shows the page upright (:func:`reads_upright`) one that skips orientation
    detection (Tesseract's OSD costs as much as reading a card)."""
    if reader is None or not reads_upright(result):
        return reader
    return _KnownUpright(reader)


_openmp_lock = threading.Lock()
_openmp: list[Any] = []  # [libgomp or None, OpenMP's default team size], once looked up
_thread = threading.local()


def kernel_threads(count: int | None) -> None:
    """Run the OpenMP loops that the calling thread starts (the native kernels', see
    ``saoy.native``) on ``count`` threads; None: OpenMP's default, one per core. Each CPU
    worker reads a page of its own, so a kernel that spreads over every core adds only
    threads that wait for each other, spinning, and each page costs more CPU than it needs.
    A no-op where OpenMP's runtime (libgomp) is not loaded."""
    if getattr(_thread, "kernel_threads", "unset") == count:
        return
    with _openmp_lock:
        if not _openmp:
            try:
                lib: Any = ctypes.CDLL("libgomp.so.1")
                _openmp.extend([lib, int(lib.omp_get_max_threads())])
            except (OSError, AttributeError):
                _openmp.extend([None, 0])
    lib, default = _openmp
    if lib is not None:
        lib.omp_set_num_threads(count if count is not None else default)  # this thread's
    _thread.kernel_threads = count


def _read(engine: OcrEngine, view: PageView, prepared: PreparedPage) -> tuple[OcrResult, OcrResult]:
    """OCR the prepared (cropped, deskewed, cleaned) page: the words as read, which is what
    document analysis looks at, and the same with their boxes mapped back onto the scan, which
    is what the copy shows."""
    raw = engine.recognize(view.ocr_gray)
    return raw, result_to_source(raw, prepared)


def _checks(
    works: list[_PageWork],
    analyses: list[PageAnalysis],
    today: date,
    hints: dict[int, str],
) -> tuple[CheckResult, ...]:
    """Every check over the dossier: the document rules over the analysed pages (see
    :mod:`saoy.core.documents.rules`), and that no page was sent twice."""
    checks = [CheckResult("pages_admitted", Outcome.PASS, f"{len(works)} page(s) admitted")]
    checks.extend(dossier_checks(analyses, today, hints))
    seen: dict[str, int] = {}
    duplicates = []
    for w in works:
        first = seen.setdefault(w.page.sha256, w.page.index)
        if first != w.page.index:
            duplicates.append(f"{w.page.index + 1} = {first + 1}")
    if duplicates:
        checks.append(
            CheckResult(
                "distinct_pages",
                Outcome.WARN,
                "the same file was sent twice: pages " + ", ".join(duplicates),
            )
        )
    else:
        checks.append(CheckResult("distinct_pages", Outcome.PASS, "every page is distinct"))
    return tuple(checks)


def _render_pages(
    pages: list[AdmittedPage], results: list[OcrResult], analyses: list[PageAnalysis]
) -> list[RenderPage]:
    out = []
    for page, result, analysis in zip(pages, results, analyses, strict=True):
        image, fmt = render_image(page)
        out.append(
            RenderPage(
                image=image,
                format=fmt,
                width=page.width,
                height=page.height,
                dpi=page.dpi or DEFAULT_DPI,
                words=result.words,
                text_rotation=analysis.rotation,
            )
        )
    return out


__all__ = [
    "Certifier",
    "DossierContext",
    "Event",
    "Issued",
    "NeedsReview",
    "PageAccepted",
    "PageRejected",
    "PipelineConfig",
    "Recognized",
    "RecognizedPage",
    "Rejected",
    "Terminal",
    "Validated",
]
