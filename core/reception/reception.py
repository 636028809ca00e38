"""A dossier's reception and where it stands: its dossier code, its receipt, and every change
of its status, as the national public service portal knows them.

- **Dossier code** (Circular 01/2018/TT-VPCP, art. 19): ``<unit code>-YYMMDD-XXXX``, the
  receiving center's unit code, the local date of reception and a daily sequence per center,
  drawn in the same transaction that writes the receipt (unique under any concurrency, on SQLite
  and PostgreSQL alike). It names the dossier; the copy's verification code
  (:mod:`saoy.core.reception.codes`) is another thing, unguessable, and only an issued copy
  has one.
- **Receipt** (phiếu tiếp nhận và hẹn trả kết quả): the code, pages, copies asked for, the fee
  (:mod:`saoy.core.reception.fees`), the appointment (:mod:`saoy.core.reception.deadlines`), a
  VietQR payload for the fee, and a **look-up secret**, printed on the receipt and in its QR
  (the status page's URL). The secret is an HMAC of the dossier code under a server key, so it
  is never stored and a retried stream gets the same one back. Without it nothing of a dossier
  is shown; a wrong secret reads exactly like an unknown code.
- **Payment**: the bank's (or its gateway's) notice that the fee was paid, a JSON body signed
  with HMAC-SHA256 under a key shared with the bank (:func:`verify_payment_notice`); recorded
  once per dossier (:meth:`Reception.confirm_payment`), for the amount on the receipt.
- **Statuses** (:class:`PortalStatus`), each change timestamped: 2 when the receipt is written
  and 4 as processing starts; the decision read from the dossier's registry row (9 when a copy
  was issued, 8 when it was refused; a dossier an official must review stays at 4, or is at 5
  once the official asks for a rescan, read from the desk's reviews); 10 when the result is
  handed over.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import re
import secrets
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from enum import IntEnum
from pathlib import Path
from typing import Any, Final
from urllib.parse import quote

from saoy.core.errors import InvalidInput, NotFound, OutOfOrder, SaoyError, Unauthenticated
from saoy.core.reception import codes
from saoy.core.reception.centers import Center, Centers, ReceptionDb, center_of, retrying_busy
from saoy.core.reception.deadlines import VIETNAM, WorkCalendar, appointment, is_late
from saoy.core.reception.delivery import Outbox
from saoy.core.reception.fees import Fee, certification_fee
from saoy.core.reception.intakes import Intake, Intakes
from saoy.core.reception.vietqr import payment_payload
from saoy.core.storage.registry import CopyRecord, Registry
from saoy.core.trust.secretfiles import ensure_secret_file

log = logging.getLogger("saoy.reception")

SEQUENCE_DIGITS: Final = 4
MAX_SEQUENCE: Final = 10**SEQUENCE_DIGITS - 1
SECRET_SYMBOLS: Final = 10  # 50 bits, Crockford base32
_SECRET_LABEL: Final = b"saoy/dossier-lookup/v1\0"


class PortalStatus(IntEnum):
    """The national public service portal's status codes of a dossier."""

    REGISTERED = 1
    RECEIVED = 2
    PROCESSING = 4
    SUPPLEMENT_REQUESTED = 5
    STOPPED = 8
    PROCESSED = 9
    RETURNED = 10

    @property
    def vi(self) -> str:
        return _TEXT[self][0]

    @property
    def en(self) -> str:
        return _TEXT[self][1]


_TEXT: Final = {
    PortalStatus.REGISTERED: ("Mới đăng ký", "Registered"),
    PortalStatus.RECEIVED: ("Được tiếp nhận", "Received"),
    PortalStatus.PROCESSING: ("Đang xử lý", "Being processed"),
    PortalStatus.SUPPLEMENT_REQUESTED: ("Yêu cầu bổ sung", "More documents requested"),
    PortalStatus.STOPPED: ("Dừng xử lý", "Processing stopped"),
    PortalStatus.PROCESSED: ("Đã xử lý xong", "Processed"),
    PortalStatus.RETURNED: ("Đã trả kết quả", "Result returned"),
}

STATUS_OF_STATE: Final = {
    "RECEIVING": PortalStatus.RECEIVED,
    "PROCESSING": PortalStatus.PROCESSING,
    "NEEDS_REVIEW": PortalStatus.PROCESSING,
    "RESCAN_REQUESTED": PortalStatus.SUPPLEMENT_REQUESTED,
    "REJECTED": PortalStatus.STOPPED,
    "ISSUED": PortalStatus.PROCESSED,
    "REVOKED": PortalStatus.PROCESSED,
}
"""The portal's status of each state of a dossier (see DESIGN.md, the flow of one dossier)."""

FINAL_STATUSES: Final = frozenset({PortalStatus.STOPPED, PortalStatus.RETURNED})
"""After these nothing more happens to a dossier."""


class SequenceExhausted(SaoyError):
    status = "RESOURCE_EXHAUSTED"
    reason = "DOSSIER_SEQUENCE_EXHAUSTED"


class FeeUnpaid(OutOfOrder):
    """A copy is held back until its dossier's fee is paid."""

    reason = "FEE_UNPAID"


class AlreadyRated(SaoyError):
    status = "ALREADY_EXISTS"
    reason = "ALREADY_RATED"


class AlreadyPaid(SaoyError):
    status = "ALREADY_EXISTS"
    reason = "ALREADY_PAID"


@dataclass(frozen=True)
class Payment:
    """A fee paid, as the bank's notice says."""

    dossier_code: str
    amount_vnd: int
    bank_reference: str
    paid_at: datetime


@dataclass(frozen=True)
class StatusChange:
    status: PortalStatus
    at: datetime
    note: str = ""


@dataclass(frozen=True)
class Receipt:
    """The receipt of a dossier (phiếu tiếp nhận và hẹn trả kết quả)."""

    dossier_id: str
    dossier_code: str
    kiosk_id: str
    request_id: str
    center: Center
    received_at: datetime
    pages: int
    copies: int
    fee: Fee
    appointment_at: datetime
    lookup_secret: str = ""
    status_url: str = ""
    payment_qr: str = ""
    """The VietQR payload for the fee; empty when nothing is due or the center takes none."""


@dataclass(frozen=True)
class DossierView:
    """Where a dossier stands, for whoever holds its code and secret: nothing personal."""

    receipt: Receipt
    status: PortalStatus
    history: tuple[StatusChange, ...]
    state: str  # RECEIVING until decided, then the registry's state
    decided_at: datetime | None
    late: bool
    """Decided after the appointment, or still undecided past it."""
    copy_code: str | None
    copy_url: str | None
    payment: Payment | None = None

    @property
    def final(self) -> bool:
        return self.status in FINAL_STATUSES


def _now() -> datetime:
    return datetime.now(UTC)


def dossier_code(unit_code: str, received_at: datetime, sequence: int) -> str:
    """``<unit code>-YYMMDD-XXXX`` for the local (Vietnam) date of reception."""
    if not 1 <= sequence <= MAX_SEQUENCE:
        raise ValueError(f"sequence {sequence} is outside 1..{MAX_SEQUENCE}")
    day = received_at.astimezone(VIETNAM).strftime("%y%m%d")
    return f"{unit_code}-{day}-{sequence:0{SEQUENCE_DIGITS}d}"


def normalize_dossier_code(text: str) -> str:
    """A dossier code as typed: spaces dropped, letters in capitals."""
    code = "".join(text.split()).upper()
    if not 15 <= len(code) <= 64:
        raise InvalidInput(
            "dossier_code: give the dossier code printed on the receipt, e.g."
            " 000.00.01.H26-261207-0001",
            field="dossier_code",
        )
    return code


def lookup_secret(key: bytes, code: str) -> str:
    """The look-up secret of a dossier code: 10 Crockford base32 symbols of an HMAC-SHA256,
    written in two groups of five."""
    digest = hmac.new(key, _SECRET_LABEL + code.encode(), hashlib.sha256).digest()
    value = int.from_bytes(digest[:8], "big") >> (64 - 5 * SECRET_SYMBOLS)
    symbols = "".join(
        codes.ALPHABET[(value >> (5 * i)) & 31] for i in reversed(range(SECRET_SYMBOLS))
    )
    return f"{symbols[:5]}-{symbols[5:]}"


LOOKUP_KEY_FILE: Final = "lookup.key"


def ensure_lookup_key(directory: Path) -> bytes:
    """The key of the look-up secrets: 32 random bytes in ``directory``/lookup.key, made on
    first call. Replacing it changes every receipt's secret (old receipts stop opening)."""
    path = ensure_secret_file(Path(directory) / LOOKUP_KEY_FILE, lambda: secrets.token_bytes(32))
    key = path.read_bytes()
    if len(key) != 32:
        raise ValueError(f"{path} holds {len(key)} bytes, not a 32-byte key")
    return key


PAYMENT_KEY_FILE: Final = "payment-callback.key"
_BANK_REFERENCE = re.compile(r"[A-Za-z0-9_.-]{1,64}")


def ensure_payment_key(directory: Path) -> bytes:
    """The key the bank signs its payment notices with: 32 random bytes in
    ``directory``/payment-callback.key, made on first call, to be shared with the bank."""
    path = ensure_secret_file(Path(directory) / PAYMENT_KEY_FILE, lambda: secrets.token_bytes(32))
    return path.read_bytes()


def sign_payment_notice(key: bytes, body: bytes) -> str:
    """The signature a notice carries: HMAC-SHA256 of the body, lowercase hex."""
    return hmac.new(key, body, hashlib.sha256).hexdigest()


def verify_payment_notice(key: bytes, body: bytes, signature: str) -> Payment:
    """The payment a notice reports, once its signature is checked (Unauthenticated when it
    does not verify: nothing in the body is looked at before). The body is JSON:
    ``{"dossier_code", "amount_vnd", "bank_reference", "paid_at"}`` (ISO 8601 with offset)."""
    given = signature.strip().removeprefix("sha256=").lower()
    if not hmac.compare_digest(sign_payment_notice(key, body).encode(), given.encode()):
        raise Unauthenticated(
            "the payment notice's signature does not verify: it was not signed with the"
            " bank's key, or the body was changed; nothing was recorded",
            reason="BAD_SIGNATURE",
            field="signature",
        )
    try:
        data = json.loads(body)
        code = normalize_dossier_code(str(data["dossier_code"]))
        amount = data["amount_vnd"]
        reference = str(data["bank_reference"])
        paid_at = datetime.fromisoformat(str(data["paid_at"]))
    except (ValueError, KeyError, TypeError) as error:
        raise InvalidInput(
            "body: a JSON object with dossier_code, amount_vnd (integer VND), bank_reference"
            f" and paid_at (ISO 8601 with offset) is expected ({type(error).__name__})",
            field="body",
        ) from None
    if not isinstance(amount, int) or isinstance(amount, bool) or amount <= 0:
        raise InvalidInput("body.amount_vnd must be a positive integer of VND", field="body")
    if not _BANK_REFERENCE.fullmatch(reference):
        raise InvalidInput(
            "body.bank_reference must be 1-64 of A-Z, a-z, 0-9, _, . or -", field="body"
        )
    if paid_at.tzinfo is None:
        raise InvalidInput("body.paid_at must carry its UTC offset", field="body")
    return Payment(code, amount, reference, paid_at)


def _canonical_secret(text: str) -> str:
    cleaned = "".join(c for c in text.upper() if c not in " -\t")
    return cleaned.replace("O", "0").replace("I", "1").replace("L", "1")


class Reception:
    """Receives dossiers (codes, receipts, statuses) and answers where they stand."""

    def __init__(
        self,
        registry: Registry,
        *,
        lookup_key: bytes,
        base_url: str,
        calendar: WorkCalendar | None = None,
        default_center: str = "",
        clock: Callable[[], datetime] = _now,
        payment_key: bytes | None = None,
        hold_unpaid: bool = False,
    ) -> None:
        """``default_center``: the center a kiosk nobody registered joins at its first
        dossier; empty, such a kiosk is refused. ``payment_key``: the key the bank signs its
        payment notices with (None: no notice is accepted). ``hold_unpaid``: a copy whose fee
        is due is released (downloadable, handed over) once paid; else at once."""
        if len(lookup_key) < 16:
            raise ValueError("the look-up key must be at least 16 bytes")
        self.registry = registry
        self.db = ReceptionDb(registry)
        self.centers = Centers(self.db)
        self.lookup_key = lookup_key
        self.base_url = base_url.rstrip("/")
        self.calendar = calendar or WorkCalendar()
        self.default_center = default_center
        self.clock = clock
        self.payment_key = payment_key
        self.hold_unpaid = hold_unpaid
        self.outbox = Outbox(self.db)
        self.intakes = Intakes(self.db)
        self.email_enabled = False
        """Whether a citizen may give an email address (the server sends mail)."""
        self.app_enabled = False
        """Whether a citizen may give their app's token (the server posts to its webhook)."""
        self._desk_reviews = False  # whether the official's desk keeps its reviews here

    # -- the receipt ----------------------------------------------------------------------------

    def center_of_kiosk(self, kiosk_id: str) -> Center:
        return self.centers.center_of_kiosk(kiosk_id, default_center=self.default_center)

    def status_url(self, code: str, secret: str) -> str:
        return f"{self.base_url}/d/{quote(code, safe='')}?s={quote(secret, safe='')}"

    def _complete(self, receipt: Receipt) -> Receipt:
        """The parts of a receipt that are derived, not stored: secret, URL, payment QR."""
        secret = lookup_secret(self.lookup_key, receipt.dossier_code)
        payee = receipt.center.payee
        qr = ""
        if payee is not None and receipt.fee.total_vnd > 0:
            qr = payment_payload(payee, receipt.fee.total_vnd, receipt.dossier_code[-25:])
        return replace(
            receipt,
            lookup_secret=secret,
            status_url=self.status_url(receipt.dossier_code, secret),
            payment_qr=qr,
        )

    @retrying_busy
    def find(self, kiosk_id: str, request_id: str) -> Receipt | None:
        """The receipt already given for a kiosk's request, if any."""
        with self.db.transaction(write=False) as db:
            row = db.execute(
                _RECEIPT_SELECT + " WHERE r.kiosk_id = ? AND r.request_id = ?",
                (kiosk_id, request_id),
            ).fetchone()
        return None if row is None else self._complete(self._receipt_of(row))

    @retrying_busy
    def receive(
        self,
        *,
        dossier_id: str,
        kiosk_id: str,
        request_id: str,
        center: Center,
        pages: int,
        copies: int,
        email: str = "",
        app_token: str = "",
        intake: Intake | None = None,
    ) -> Receipt:
        """Give the dossier its code and receipt (status 2, then 4 as processing starts), in
        one transaction, with ``email`` and ``app_token`` (when given) queued for the result and
        a queued dossier's ``intake`` kept until it is decided; a request already received gets
        its receipt back unchanged."""
        fee = certification_fee(pages, copies, waived=center.fees_waived)
        received_at = self.clock()
        due = appointment(received_at, self.calendar)
        day = received_at.astimezone(VIETNAM).strftime("%y%m%d")
        for attempt in range(2):
            try:
                with self.db.transaction(write=True) as db:
                    found = db.execute(
                        _RECEIPT_SELECT + " WHERE r.kiosk_id = ? AND r.request_id = ?",
                        (kiosk_id, request_id),
                    ).fetchone()
                    if found is not None:
                        return self._complete(self._receipt_of(found))
                    sequence = db.execute(
                        "INSERT INTO dossier_sequences (center_code, day, last) VALUES (?, ?, 1)"
                        " ON CONFLICT (center_code, day) DO UPDATE"
                        " SET last = dossier_sequences.last + 1 RETURNING last",
                        (center.code, day),
                    ).fetchone()[0]
                    if sequence > MAX_SEQUENCE:
                        raise SequenceExhausted(
                            f"center {center.code} has given {MAX_SEQUENCE} dossier codes today;"
                            " no more can be given before tomorrow",
                            retry_after=3600.0,
                        )
                    code = dossier_code(center.code, received_at, sequence)
                    db.execute(
                        "INSERT INTO receipts (dossier_id, dossier_code, kiosk_id, request_id,"
                        " center_code, received_at, pages, copies, fee_vnd, fees_waived,"
                        " appointment_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                        (
                            dossier_id,
                            code,
                            kiosk_id,
                            request_id,
                            center.code,
                            self.db.ts(received_at),
                            pages,
                            copies,
                            fee.total_vnd,
                            int(fee.waived),
                            self.db.ts(due),
                        ),
                    )
                    for status in (PortalStatus.RECEIVED, PortalStatus.PROCESSING):
                        self._status(db, dossier_id, status, received_at, "kiosk")
                    if email:
                        self.outbox.add(db, dossier_id, "email", email, received_at)
                    if app_token:
                        self.outbox.add(db, dossier_id, "app", app_token, received_at)
                    if intake is not None:
                        self.intakes.add(db, dossier_id, intake, received_at)
            except Exception as error:
                # Two streams of one request raced (PostgreSQL: the second insert of the same
                # (kiosk_id, request_id) fails): the receipt of the first is the answer.
                if attempt == 0 and _is_unique_violation(error):
                    continue
                raise
            receipt = Receipt(
                dossier_id=dossier_id,
                dossier_code=code,
                kiosk_id=kiosk_id,
                request_id=request_id,
                center=center,
                received_at=received_at,
                pages=pages,
                copies=copies,
                fee=fee,
                appointment_at=due,
            )
            return self._complete(receipt)
        raise AssertionError("unreachable")

    def _status(
        self, db: Any, dossier_id: str, status: PortalStatus, at: datetime, note: str
    ) -> None:
        db.execute(
            "INSERT INTO dossier_statuses (dossier_id, status, at, note) VALUES (?, ?, ?, ?)",
            (dossier_id, int(status), self.db.ts(at), note),
        )

    @retrying_busy
    def record_status(self, dossier_id: str, status: PortalStatus, note: str = "") -> None:
        """Record a change of a dossier's status now (e.g. RETURNED once the result is handed
        over; the decision itself is read from the dossier's row)."""
        with self.db.transaction(write=True) as db:
            self._status(db, dossier_id, status, self.clock(), note)

    @retrying_busy
    def released(self, dossier_id: str) -> bool:
        """Whether the dossier's copy may be handed over: at once, unless fees are held back
        and this one's is due and unpaid. A dossier without a receipt is released."""
        if not self.hold_unpaid:
            return True
        with self.db.transaction(write=False) as db:
            row = db.execute(
                "SELECT r.fee_vnd, p.dossier_id FROM receipts r"
                " LEFT JOIN payments p ON p.dossier_id = r.dossier_id WHERE r.dossier_id = ?",
                (dossier_id,),
            ).fetchone()
        return row is None or row[0] == 0 or row[1] is not None

    def release_check(self, copy: CopyRecord) -> None:
        """Raise FeeUnpaid while ``copy`` is held back (see :meth:`released`)."""
        if not self.released(copy.dossier_id):
            raise FeeUnpaid(
                "Bản sao được trả sau khi nộp lệ phí / the copy is released once its fee is"
                " paid: pay with the VietQR code on the receipt or on the dossier's status page",
                field="code",
            )

    def handed_over(self, dossier_id: str, via: str = "kiosk") -> bool:
        """Record that the result was handed over (status 10), if it is released; once (a
        result handed over again, e.g. to a kiosk watching the dossier anew, records nothing)."""
        if not self.released(dossier_id):
            return False
        if not self.returned(dossier_id):
            self.record_status(dossier_id, PortalStatus.RETURNED, via)
        return True

    @retrying_busy
    def confirm_payment(self, payment: Payment) -> tuple[Payment, bool]:
        """Record a verified payment of a dossier's fee; the payment as recorded, and whether
        it was recorded before (the same bank reference again: nothing changes)."""
        with self.db.transaction(write=True) as db:
            row = db.execute(
                _RECEIPT_SELECT + " WHERE r.dossier_code = ?" + self.registry.for_update,
                (payment.dossier_code,),
            ).fetchone()
            if row is None:
                raise NotFound(
                    f"no dossier has the code {payment.dossier_code}", field="body.dossier_code"
                )
            receipt = self._receipt_of(row)
            earlier = db.execute(
                "SELECT p.bank_reference, p.amount_vnd, p.paid_at, r.dossier_code"
                " FROM payments p JOIN receipts r ON r.dossier_id = p.dossier_id"
                " WHERE p.dossier_id = ? OR p.bank_reference = ?",
                (receipt.dossier_id, payment.bank_reference),
            ).fetchall()
            for reference, amount, paid_at, code in earlier:
                if reference == payment.bank_reference and code == payment.dossier_code:
                    return Payment(code, int(amount), reference, self.db.dt(paid_at)), True
                raise AlreadyPaid(
                    f"dossier {code} was already paid by bank reference {reference}:"
                    " a second payment is not recorded; refund it",
                    field="body.bank_reference",
                )
            due = receipt.fee.total_vnd
            if due == 0:
                raise OutOfOrder(
                    f"dossier {receipt.dossier_code} owes no fee: refund the payment",
                    reason="NOTHING_DUE",
                    field="body.amount_vnd",
                )
            if payment.amount_vnd != due:
                raise OutOfOrder(
                    f"body.amount_vnd is {payment.amount_vnd} but the fee of dossier"
                    f" {receipt.dossier_code} is {due} VND: the payment is not recorded",
                    reason="AMOUNT_MISMATCH",
                    field="body.amount_vnd",
                )
            db.execute(
                "INSERT INTO payments (dossier_id, bank_reference, amount_vnd, paid_at,"
                " recorded_at) VALUES (?, ?, ?, ?, ?)",
                (
                    receipt.dossier_id,
                    payment.bank_reference,
                    payment.amount_vnd,
                    self.db.ts(payment.paid_at),
                    self.db.ts(self.clock()),
                ),
            )
            issued = db.execute(
                "SELECT 1 FROM copies WHERE dossier_id = ?", (receipt.dossier_id,)
            ).fetchone()
            if self.hold_unpaid and issued is not None:
                # The copy was held back for this payment: it is handed over now.
                self._status(db, receipt.dossier_id, PortalStatus.RETURNED, self.clock(), "paid")
        log.info("fee paid for a dossier of center %s", receipt.center.code)
        return payment, False

    @retrying_busy
    def result_of(self, dossier_id: str) -> tuple[Receipt, str, str | None]:
        """A received dossier's receipt, its state (RECEIVING until decided) and its copy's
        code, if issued."""
        with self.db.transaction(write=False) as db:
            row = db.execute(_RECEIPT_SELECT + " WHERE r.dossier_id = ?", (dossier_id,)).fetchone()
            if row is None:
                raise NotFound(f"no receipt for dossier {dossier_id}", field="dossier_id")
            decided = db.execute(
                "SELECT d.state, c.code FROM dossiers d LEFT JOIN copies c ON c.dossier_id = d.id"
                " WHERE d.id = ?",
                (dossier_id,),
            ).fetchone()
        receipt = self._complete(self._receipt_of(row))
        if decided is None:
            return receipt, "RECEIVING", None
        return receipt, str(decided[0]), decided[1]

    @retrying_busy
    def returned(self, dossier_id: str) -> bool:
        """Whether status 10 (result handed over) is recorded for the dossier."""
        with self.db.transaction(write=False) as db:
            row = db.execute(
                "SELECT 1 FROM dossier_statuses WHERE dossier_id = ? AND status = ?",
                (dossier_id, int(PortalStatus.RETURNED)),
            ).fetchone()
        return row is not None

    @retrying_busy
    def rate(self, code_text: str, secret_text: str, score: int) -> datetime:
        """The citizen's rating (1-5) of a dossier that has its result, once; when it was
        recorded. NotFound as :meth:`view`; a second rating is AlreadyRated."""
        if not 1 <= score <= 5:
            raise InvalidInput(
                f"score is {score}: rate from 1 (poor) to 5 (very good)", field="score"
            )
        view = self.view(code_text, secret_text)
        if view.status not in (PortalStatus.PROCESSED, PortalStatus.RETURNED, PortalStatus.STOPPED):
            raise OutOfOrder(
                "the dossier has no result yet: rate the service once it has one",
                reason="NO_RESULT_YET",
                field="dossier_code",
            )
        at = self.clock()
        try:
            with self.db.transaction(write=True) as db:
                if db.execute(
                    "SELECT 1 FROM ratings WHERE dossier_id = ?", (view.receipt.dossier_id,)
                ).fetchone():
                    raise AlreadyRated(
                        "this dossier was already rated: one rating per dossier", field="score"
                    )
                db.execute(
                    "INSERT INTO ratings (dossier_id, score, rated_at) VALUES (?, ?, ?)",
                    (view.receipt.dossier_id, score, self.db.ts(at)),
                )
        except Exception as error:
            if _is_unique_violation(error):  # two ratings raced: the first one stands
                raise AlreadyRated(
                    "this dossier was already rated: one rating per dossier", field="score"
                ) from error
            raise
        return at

    # -- where a dossier stands ---------------------------------------------------------------

    def check_secret(self, code_text: str, secret_text: str) -> str:
        """The canonical dossier code when ``secret_text`` is its look-up secret; otherwise the
        same NotFound as for an unknown code, so that codes cannot be probed."""
        code = normalize_dossier_code(code_text)
        expected = _canonical_secret(lookup_secret(self.lookup_key, code))
        if not hmac.compare_digest(expected.encode(), _canonical_secret(secret_text).encode()):
            raise _not_found()
        return code

    @retrying_busy
    def view(self, code_text: str, secret_text: str) -> DossierView:
        """Where the dossier stands; NotFound for an unknown code or a wrong secret alike."""
        code = self.check_secret(code_text, secret_text)
        desk = self._has_desk_reviews()
        with self.db.transaction(write=False) as db:
            row = db.execute(_RECEIPT_SELECT + " WHERE r.dossier_code = ?", (code,)).fetchone()
            if row is None:
                raise _not_found()
            receipt = self._complete(self._receipt_of(row))
            changes = [
                StatusChange(PortalStatus(s), self.db.dt(at), note)
                for s, at, note in db.execute(
                    "SELECT status, at, note FROM dossier_statuses WHERE dossier_id = ?"
                    " ORDER BY at, id",
                    (receipt.dossier_id,),
                ).fetchall()
            ]
            paid = db.execute(
                "SELECT bank_reference, amount_vnd, paid_at FROM payments WHERE dossier_id = ?",
                (receipt.dossier_id,),
            ).fetchone()
            decided = db.execute(
                "SELECT d.state, d.decided_at, c.code FROM dossiers d"
                " LEFT JOIN copies c ON c.dossier_id = d.id WHERE d.id = ?",
                (receipt.dossier_id,),
            ).fetchone()
            rescan = None
            if desk:
                rescan = db.execute(
                    "SELECT updated_at FROM reviews WHERE dossier_id = ? AND outcome = 'rescan'",
                    (receipt.dossier_id,),
                ).fetchone()
        if rescan is not None and all(
            c.status != PortalStatus.SUPPLEMENT_REQUESTED for c in changes
        ):
            changes.append(
                StatusChange(PortalStatus.SUPPLEMENT_REQUESTED, self.db.dt(rescan[0]), "review")
            )
            changes.sort(key=lambda c: c.at)
        state, decided_at, copy_code = "RECEIVING", None, None
        if decided is not None:
            state, decided_raw, copy_code = decided
            # decided_at, not the copy's issued_at (whole seconds): the decision never reads as
            # earlier than the receipt it follows.
            decided_at = max(self.db.dt(decided_raw), receipt.received_at)
            status = STATUS_OF_STATE.get(state)
            # The decision, unless a recorded change already says as much.
            if status is not None and all(c.status != status for c in changes):
                changes.append(StatusChange(status, decided_at, "decision"))
                changes.sort(key=lambda c: c.at)
        current = changes[-1].status if changes else PortalStatus.RECEIVED
        done = current in (PortalStatus.PROCESSED, PortalStatus.RETURNED, PortalStatus.STOPPED)
        late = (
            is_late(receipt.appointment_at, decided_at)
            if decided_at is not None and done
            else is_late(receipt.appointment_at, self.clock())
        )
        return DossierView(
            receipt=receipt,
            status=current,
            history=tuple(changes),
            state=state,
            decided_at=decided_at if done else None,
            late=late,
            copy_code=copy_code,
            copy_url=None if copy_code is None else f"{self.base_url}/v/{copy_code}",
            payment=None
            if paid is None
            else Payment(receipt.dossier_code, int(paid[1]), paid[0], self.db.dt(paid[2])),
        )

    def _has_desk_reviews(self) -> bool:
        """Whether the official's desk keeps its reviews in this database (its tables are made
        when the desk starts; once found, they stay)."""
        if not self._desk_reviews:
            try:
                with self.db.transaction(write=False) as db:
                    db.execute("SELECT dossier_id, outcome, updated_at FROM reviews WHERE 1 = 0")
                self._desk_reviews = True
            except Exception as error:
                if self.db.transient(error):
                    raise
        return self._desk_reviews

    def _receipt_of(self, row: Any) -> Receipt:
        (
            dossier_id,
            code,
            kiosk_id,
            request_id,
            received_at,
            pages,
            copies,
            fee_vnd,
            waived,
            appointment_at,
            *center_row,
        ) = row
        center = center_of(center_row)
        fee = certification_fee(pages, copies, waived=bool(waived))
        if fee.total_vnd != fee_vnd:  # the circular changed since: the receipt's fee stands
            fee = replace(fee, total_vnd=int(fee_vnd))
        return Receipt(
            dossier_id=dossier_id,
            dossier_code=code,
            kiosk_id=kiosk_id,
            request_id=request_id,
            center=center,
            received_at=self.db.dt(received_at),
            pages=pages,
            copies=copies,
            fee=fee,
            appointment_at=self.db.dt(appointment_at).astimezone(VIETNAM),
        )


_RECEIPT_SELECT: Final = (
    "SELECT r.dossier_id, r.dossier_code, r.kiosk_id, r.request_id, r.received_at, r.pages,"
    " r.copies, r.fee_vnd, r.fees_waived, r.appointment_at, c.code, c.name, c.province,"
    " c.address, c.fees_waived, c.payee_bin, c.payee_account"
    " FROM receipts r JOIN service_centers c ON c.code = r.center_code"
)


def _not_found() -> NotFound:
    return NotFound(
        "no dossier matches this code and look-up secret: check both on the receipt",
        reason="DOSSIER_NOT_FOUND",
        field="secret",
    )


def _is_unique_violation(error: Exception) -> bool:
    import sqlite3

    if isinstance(error, sqlite3.IntegrityError):
        return "UNIQUE" in str(error)
    return type(error).__name__ == "UniqueViolation"


__all__ = [
    "FINAL_STATUSES",
    "STATUS_OF_STATE",
    "AlreadyPaid",
    "AlreadyRated",
    "DossierView",
    "FeeUnpaid",
    "Payment",
    "PortalStatus",
    "Receipt",
    "Reception",
    "SequenceExhausted",
    "StatusChange",
    "dossier_code",
    "ensure_lookup_key",
    "ensure_payment_key",
    "lookup_secret",
    "normalize_dossier_code",
    "sign_payment_notice",
    "verify_payment_notice",
]
