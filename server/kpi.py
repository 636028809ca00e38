"""saoy.v1.Kpi.Report and its CSV export (``GET /kpi.csv?by=center&since=...&until=...``):
aggregates of Decision 766/QĐ-TTg, with no personal data."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from concurrent.futures import Executor
from datetime import date

import grpc
from aiohttp import web

from saoy.core.errors import InvalidInput
from saoy.core.kpi import KpiReport, KpiRow, to_csv
from saoy.v1 import kpi_pb2 as pb
from saoy.v1 import kpi_pb2_grpc as pb_grpc


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


__all__ = ["KpiServicer", "add_kpi_routes"]
