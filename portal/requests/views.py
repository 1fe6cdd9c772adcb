"""The customer's requests: the list and one request's timeline."""

from __future__ import annotations

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from portal.db import run_db, transaction
from portal.mydata.views import customer_id_of
from portal.requests import service
from portal.web import render


async def my_requests(request: Request) -> Response:
    customer_id = customer_id_of(request)
    engine = request.app.state.engine

    def load() -> list[service.RequestSummary]:
        with transaction(engine) as session:
            return service.requests_of(session, customer_id=customer_id)

    return render(request, "customer/requests.html", {"requests": await run_db(engine, load)})


async def my_request(request: Request) -> Response:
    customer_id = customer_id_of(request)
    engine = request.app.state.engine
    reference = request.path_params["reference"][:32]

    def load() -> tuple[service.RequestSummary, list[service.TimelineStep]]:
        with transaction(engine) as session:
            return service.request_of(session, customer_id=customer_id, reference=reference)

    try:
        summary, steps = await run_db(engine, load)
    except service.RequestNotFound as exc:
        raise HTTPException(404) from exc
    return render(
        request,
        "customer/request_detail.html",
        {"item": summary, "steps": steps, "filed": request.query_params.get("filed") == "1"},
    )


routes = [
    Route("/me/requests", my_requests, methods=["GET"], name="my_requests"),
    Route("/me/requests/{reference}", my_request, methods=["GET"], name="my_request"),
]
