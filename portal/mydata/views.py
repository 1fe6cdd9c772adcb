"""The overview (/me): one card per kind of data held, with real figures."""

from __future__ import annotations

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from portal.db import run_db
from portal.identity.guards import customer_id_of
from portal.mydata import service
from portal.web.render import render
from portal.web.state import portal_of


async def customer_overview(request: Request, customer_id: int) -> service.Overview:
    """What we hold about the customer, counted by kind; a 404 when the customer no longer exists."""
    engine = portal_of(request).engine

    def load() -> service.Overview:
        with engine.connect() as connection:
            return service.overview_for(connection, customer_id=customer_id)

    try:
        return await run_db(engine, load)
    except service.CustomerNotFound as exc:
        raise HTTPException(404) from exc


async def overview(request: Request) -> Response:
    data = await customer_overview(request, customer_id_of(request))
    return render(request, "customer/overview.html", {"overview": data})


routes = [Route("/me", overview, methods=["GET"], name="overview")]
