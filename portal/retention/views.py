"""The DPO's retention page (/staff/retention) and its CSV: each rule, its period and source, the last run, the next."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from portal.identity.guards import require_role
from portal.retention import service
from portal.retention.rules import STARTS_LABELS
from portal.web.render import render
from portal.web.state import portal_of, trial


async def _overview(request: Request) -> service.RetentionOverview:
    require_role(request, "dpo")
    state = portal_of(request)
    return await trial(request, service.retention_overview, settings=state.settings, register=state.register)


async def retention_page(request: Request) -> Response:
    overview = await _overview(request)
    return render(
        request,
        "staff/retention.html",
        {"overview": overview, "starts_labels": STARTS_LABELS, "purposes": portal_of(request).register.by_code},
    )


async def retention_csv(request: Request) -> Response:
    overview = await _overview(request)
    return Response(
        "".join(service.retention_csv(overview)),  # a few lines, written here while the request's language is set
        media_type="text/csv; charset=utf-8",
        headers={"content-disposition": 'attachment; filename="retention.csv"'},
    )


routes = [
    Route("/staff/retention", retention_page, methods=["GET"], name="staff_retention"),
    Route("/staff/retention.csv", retention_csv, methods=["GET"]),
]
