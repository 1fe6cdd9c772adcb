"""Store tablet mode: what a store account reaches on the shop's shared tablet."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from portal.identity.guards import require_role
from portal.web.render import render


async def tablet(request: Request) -> Response:
    require_role(request, "store")
    return render(request, "staff/tablet.html")


routes = [Route("/staff/tablet", tablet, methods=["GET"], name="staff_tablet")]
