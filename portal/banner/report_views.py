"""The DPO's figures of the website banner (/staff/reports/banner): shown, answered how, per purpose, per month."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from portal.backoffice import reports
from portal.banner import service
from portal.identity.guards import require_role
from portal.web.render import render
from portal.web.state import portal_of, read


async def banner_report(request: Request) -> Response:
    require_role(request, "dpo")
    state = portal_of(request)
    (first, last), errors = reports.parse_period(
        request.query_params, now=state.clock(), timezone=state.settings.timezone
    )
    figures = await read(
        request, service.banner_figures, purposes=state.settings.banner_purposes, first=first, last=last
    )
    return render(
        request,
        "staff/banner_report.html",
        {"figures": figures, "first": first, "last": last, "errors": errors},
        status_code=400 if errors else 200,
    )


routes = [Route("/staff/reports/banner", banner_report, methods=["GET"], name="staff_banner_report")]
