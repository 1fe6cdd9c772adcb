"""The overview (/me): one card per kind of data held, with real figures."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from portal.i18n import get_locale
from portal.identity.guards import customer_id_of
from portal.mydata import service
from portal.web.render import render
from portal.web.state import read


async def overview(request: Request) -> Response:
    data, notices = await read(
        request, service.overview_with_notices, customer_id=customer_id_of(request), language=get_locale()
    )
    return render(request, "customer/overview.html", {"overview": data, "breach_notices": notices})


routes = [Route("/me", overview, methods=["GET"], name="overview")]
