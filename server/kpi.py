"""saoy.v1.Kpi.Report and its CSV export (``GET /kpi.csv?by=center&since=...&until=...``):
aggregates of Decision 766/QĐ-TTg, with no personal data."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from concurrent.futures import Executor
from datetime import date, datetime
from typing import ClassVar

import grpc
from aiohttp import web
from prometheus_client import Gauge

from saoy.core.errors import InvalidInput
from saoy.core.reception.deadlines import VIETNAM
from saoy.core.reception.kpi import KpiReport, KpiRow, to_csv
from saoy.server.metrics import Metrics
from saoy.v1 import kpi_pb2 as pb
from saoy.v1 import kpi_pb2_grpc as pb_grpc

log = logging.getLogger("saoy.kpi")


def _day(text: str, field: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise InvalidInput(f"{field} must be a date written YYYY-MM-DD", field=field) from None


def _figures(row: KpiRow) -> pb.KpiFigures:
    return pb.KpiFigures(**row.figures())


class KpiServicer(pb_grpc.KpiServicer):
    def __init__(self, report: KpiReport, executor: Executor) -> None:
        self.report = report
        self.executor = executor

    async def Report(
        self, request: pb.KpiRequest, context: grpc.aio.ServicerContext
    ) -> pb.KpiReportResponse:
        since, until = _day(request.since, "since"), _day(request.until, "until")
        loop = asyncio.get_running_loop()
        rows = await loop.run_in_executor(
            self.executor, self.report.report, request.by, since, until
        )
        return pb.KpiReportResponse(rows=[_figures(row) for row in rows])


def add_kpi_routes(
    app: web.Application, report: Callable[[], KpiReport | None], executor: Executor
) -> None:
    """``GET /kpi.csv?by=center&since=YYYY-MM-DD&until=YYYY-MM-DD``."""

    async def kpi_csv(request: web.Request) -> web.Response:
        found = report()
        if found is None:
            raise web.HTTPServiceUnavailable(text="starting")
        try:
            since = _day(request.query.get("since", ""), "since")
            until = _day(request.query.get("until", ""), "until")
            by = request.query.get("by", "center")
            loop = asyncio.get_running_loop()
            rows = await loop.run_in_executor(executor, found.report, by, since, until)
        except InvalidInput as error:
            raise web.HTTPBadRequest(text=error.message) from None
        return web.Response(
            text=to_csv(rows),
            content_type="text/csv",
            headers={"Content-Disposition": f'attachment; filename="kpi-{by}-{since}-{until}.csv"'},
        )

    app.router.add_get("/kpi.csv", kpi_csv)


class KpiGauges:
    """Today's KPIs per center as Prometheus gauges (labels: the center's unit code and the
    KPI; no personal data), refreshed every ``every`` seconds."""

    RATES: ClassVar[dict[str, str]] = {
        "on_time": "on_time_rate",
        "online_payment": "online_payment_rate",
        "electronic_result": "electronic_result_rate",
        "digitization": "digitization_rate",
        "satisfaction": "satisfaction_rate",
    }

    def __init__(
        self, metrics: Metrics, report: KpiReport, executor: Executor, every: float = 60.0
    ) -> None:
        self.report = report
        self.executor = executor
        self.every = every
        self.rates = Gauge(
            "saoy_kpi_ratio",
            "Today's KPI rates per center (Decision 766/QĐ-TTg): on_time 2.1, online_payment"
            " 3.6, electronic_result 4.1, digitization 4.2, satisfaction 5.4.",
            ["center", "kpi"],
            registry=metrics.registry,
        )
        self.hours = Gauge(
            "saoy_kpi_processing_hours",
            "Today's average time from reception to decision per center, hours (2.2).",
            ["center"],
            registry=metrics.registry,
        )
        self.received = Gauge(
            "saoy_kpi_received_dossiers",
            "Dossiers received today per center.",
            ["center"],
            registry=metrics.registry,
        )

    def refresh(self) -> None:
        today = datetime.now(VIETNAM).date()
        for row in self.report.report("center", today, today):
            self.received.labels(center=row.key).set(row.received)
            hours = row.average_processing_hours
            if hours is not None:
                self.hours.labels(center=row.key).set(hours)
            for kpi, attribute in self.RATES.items():
                value = getattr(row, attribute)
                if value is not None:
                    self.rates.labels(center=row.key, kpi=kpi).set(value)

    async def run(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            try:
                await loop.run_in_executor(self.executor, self.refresh)
            except Exception:  # the next tick tries again
                log.exception("KPI gauges not refreshed")
            await asyncio.sleep(self.every)


__all__ = ["KpiGauges", "KpiServicer", "add_kpi_routes"]
