"""The signed-in customer's pages."""

from __future__ import annotations

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from portal.db import run_db
from portal.mydata import service
from portal.web import redirect, render


class SignInRequired(Exception):
    """Raised by views that need a signed-in customer; the app answers with a redirect to the sign-in page."""


def customer_id_of(request: Request) -> int:
    session = request.scope["state"].get("session")
    if session is None or session.kind not in ("customer", "tablet") or session.customer_id is None:
        raise SignInRequired()
    return int(session.customer_id)


async def customer_overview(request: Request, customer_id: int) -> service.Overview:
    """What we hold about the customer, counted by kind; a 404 when the customer no longer exists."""
    engine = request.app.state.engine

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


async def sign_in_required(request: Request, exc: Exception) -> Response:
    return redirect(request, "/signin")


routes = [Route("/me", overview, methods=["GET"], name="overview")]
