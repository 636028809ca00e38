"""The delivery worker: takes due entries of the outbox (``saoy.core.reception.delivery``) and sends
them, by email or to the citizen app's webhook, every ``delivery_interval_seconds``. Any number
of servers may run it on one registry: a claimed entry is kept from the others while it is
sent."""

from __future__ import annotations

import asyncio
import logging
import smtplib
from collections.abc import Callable
from concurrent.futures import Executor
from datetime import UTC, datetime, timedelta

from prometheus_client import Counter, Gauge

from saoy.core.reception.delivery import (
    OutboxEntry,
    PermanentFailure,
    SmtpSettings,
    WebhookSettings,
    app_body,
    copy_message,
    post_webhook,
    send_email,
    stopped_message,
)
from saoy.core.reception.reception import PortalStatus, Receipt, Reception
from saoy.core.trust.verify import Verifier
from saoy.server.metrics import Metrics

log = logging.getLogger("saoy.delivery")


class DeliveryMetrics:
    """Deliveries by outcome, and the dead letters waiting for an operator; no addresses."""

    def __init__(self, metrics: Metrics) -> None:
        self.deliveries = Counter(
            "saoy_deliveries_total",
            "Notifications handled by the delivery worker, by channel and outcome"
            " (sent, retried, dead).",
            ["channel", "outcome"],
            registry=metrics.registry,
        )
        self.dead_letters = Gauge(
            "saoy_outbox_dead_letters",
            "Notifications given up on (the target kept failing or was refused).",
            registry=metrics.registry,
        )
        self.pending = Gauge(
            "saoy_outbox_pending",
            "Notifications waiting for their dossier's result or for a retry.",
            registry=metrics.registry,
        )


class DeliveryWorker:
    def __init__(
        self,
        reception: Reception,
        verifier: Verifier,
        smtp: SmtpSettings | None,
        executor: Executor,
        metrics: DeliveryMetrics,
        *,
        interval: float = 5.0,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        webhook: WebhookSettings | None = None,
    ) -> None:
        self.reception = reception
        self.outbox = reception.outbox
        self.verifier = verifier
        self.smtp = smtp
        self.webhook = webhook
        self.executor = executor
        self.metrics = metrics
        self.interval = interval
        self.clock = clock

    async def run(self) -> None:
        """Deliver what is due now and every ``interval`` seconds, until cancelled."""
        loop = asyncio.get_running_loop()
        while True:
            try:
                await loop.run_in_executor(self.executor, self.deliver_due)
            except Exception:  # the next tick tries again
                log.exception("delivery round failed")
            await asyncio.sleep(self.interval)

    def deliver_due(self) -> int:
        """One round: every due entry handled; how many were sent."""
        sent = 0
        for entry in self.outbox.claim(self.clock()):
            sent += self._deliver(entry)
        counts = self.outbox.counts()
        self.metrics.dead_letters.set(counts["dead"])
        self.metrics.pending.set(counts["pending"])
        return sent

    def _deliver(self, entry: OutboxEntry) -> bool:
        receipt, state, copy_code = self.reception.result_of(entry.dossier_id)
        now = self.clock()
        issued = (
            state in ("ISSUED", "REVOKED")
            and copy_code
            and self.reception.released(entry.dossier_id)
        )
        if not issued and state != "REJECTED":
            # not decided, under review, or held back until its fee is paid
            self.outbox.postpone(entry, now + timedelta(seconds=self.interval))
            return False
        try:
            if entry.channel == "app":
                self._post(entry, receipt, state, copy_code if issued else None)
            else:
                self._mail(entry, receipt, copy_code if issued else None)
        except PermanentFailure as error:
            self._failed(entry, str(error), permanent=True)
            return False
        except Exception as error:  # connection, TLS, a temporary refusal: try again later
            self._failed(entry, _describe(error), permanent=False)
            return False
        self.outbox.sent(entry, self.clock())
        self.metrics.deliveries.labels(channel=entry.channel, outcome="sent").inc()
        if copy_code and issued and not self.reception.returned(entry.dossier_id):
            self.reception.record_status(entry.dossier_id, PortalStatus.RETURNED, entry.channel)
        log.info(
            "delivered the result of a dossier of center %s by %s",
            receipt.center.code,
            entry.channel,
        )
        return True

    def _mail(self, entry: OutboxEntry, receipt: Receipt, copy_code: str | None) -> None:
        if self.smtp is None:
            raise PermanentFailure("this server sends no mail")
        if copy_code:
            _, pdf = self.verifier.copy_pdf(copy_code)
            message = copy_message(
                self.smtp,
                entry.target,
                dossier_code=receipt.dossier_code,
                copy_code=copy_code,
                copy_url=f"{self.reception.base_url}/v/{copy_code}",
                status_url=receipt.status_url,
                pdf=pdf,
            )
        else:
            message = stopped_message(
                self.smtp, entry.target, dossier_code=receipt.dossier_code,
                status_url=receipt.status_url,
            )  # fmt: skip
        send_email(self.smtp, message)

    def _post(
        self, entry: OutboxEntry, receipt: Receipt, state: str, copy_code: str | None
    ) -> None:
        if self.webhook is None:
            raise PermanentFailure("this server has no app webhook")
        result: dict[str, object] = {
            "event": "result",
            "dossier_code": receipt.dossier_code,
            "state": state,
            "status_url": receipt.status_url,
        }
        if copy_code:
            result["copy_code"] = copy_code
            result["copy_url"] = f"{self.reception.base_url}/v/{copy_code}"
            result["pdf_url"] = f"{self.reception.base_url}/v/{copy_code}/copy.pdf"
        post_webhook(self.webhook, app_body(entry.target, result))

    def _failed(self, entry: OutboxEntry, error: str, *, permanent: bool) -> None:
        dead = self.outbox.failed(entry, error, self.clock(), permanent=permanent)
        outcome = "dead" if dead else "retried"
        self.metrics.deliveries.labels(channel=entry.channel, outcome=outcome).inc()
        log.warning(
            "%s delivery %s (attempt %d): %s", entry.channel, outcome, entry.attempts + 1, error
        )


def _describe(error: Exception) -> str:
    """What went wrong, without what an SMTP reply may quote (addresses)."""
    if isinstance(error, smtplib.SMTPResponseException):
        return f"{type(error).__name__} {error.smtp_code}"
    if isinstance(error, OSError):
        return f"{type(error).__name__}: {error}"
    return type(error).__name__


__all__ = ["DeliveryMetrics", "DeliveryWorker"]
