"""The banner's public endpoints under /consent/v1/: its script, the visitor's answers, their current choices, and
the count of banners shown. Called from the retailer's pages (CORS: cors.py), answered in JSON, never with a cookie."""

from __future__ import annotations

import math
from typing import TypeVar

from pydantic import BaseModel
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from portal.api.bodies import json_body
from portal.api.errors import ApiProblem, problem_response
from portal.banner import service
from portal.banner.bundle import Bundle
from portal.banner.schemas import BannerAnswer, Shown, VisitorOnly
from portal.i18n import gettext, lazy_gettext
from portal.web.render import client_ip
from portal.web.state import portal_of, read, write

M = TypeVar("M", bound=BaseModel)
MAX_BODY = 2048  # an answer for twenty purposes fits in under a kilobyte
SCRIPT = "text/javascript; charset=utf-8"
LOADER_CACHE = "public, max-age=300, stale-while-revalidate=86400"
BUNDLE_CACHE = "public, max-age=31536000, immutable"

POLICY_CHANGED = lazy_gettext("The privacy policy changed since the page was loaded: reload the page to see it.")
TOO_MANY = lazy_gettext("Too many answers from here in a short time: try again in a few minutes.")
REFUSALS = {
    "purposes_mismatch": lazy_gettext("Answer for exactly the purposes the banner shows, each true or false."),
    "choice_mismatch": lazy_gettext("This button does not match the choices sent."),
}


def bundle_of(request: Request) -> Bundle:
    return request.app.state.banner


def _limits(request: Request) -> service.Limits:
    settings = portal_of(request).settings
    return service.Limits(
        per_ip=settings.banner_limit_per_ip,
        per_visitor=settings.banner_limit_per_visitor,
        window=settings.rate_limit_window,
        secret_key=settings.secret_key,
    )


async def _body(request: Request, model: type[M]) -> M:
    return await json_body(request, model, max_bytes=MAX_BODY)


def _too_many(refused: service.TooManyCalls) -> ApiProblem:
    seconds = str(max(1, math.ceil(refused.retry_after.total_seconds())))
    return ApiProblem(429, code="too_many_requests", message=TOO_MANY, headers={"retry-after": seconds})


async def _count_call(request: Request, visitor_id: str | None) -> None:
    """The rate limits, in their own transaction (service.count_call says why); ApiProblem 429 past one."""
    try:
        await write(
            request, service.count_call, client_ip=client_ip(request), visitor_id=visitor_id, limits=_limits(request),
            keep_on=(service.TooManyCalls,),
        )  # fmt: skip
    except service.TooManyCalls as refused:
        raise _too_many(refused) from None


async def loader(request: Request) -> Response:
    bundle = bundle_of(request)
    headers = {"etag": bundle.loader_etag, "cache-control": LOADER_CACHE}
    if bundle.loader_etag in request.headers.get("if-none-match", ""):
        return Response(status_code=304, headers=headers)
    return Response(bundle.loader, media_type=SCRIPT, headers=headers)


async def script(request: Request) -> Response:
    bundle = bundle_of(request)
    if request.path_params["hash"] != bundle.script_hash[:12]:
        # An old bundle is gone: its loader (five minutes of cache at most) now names the new one.
        return problem_response(ApiProblem(404))
    return Response(bundle.script, media_type=SCRIPT, headers={"cache-control": BUNDLE_CACHE})


async def answers(request: Request) -> Response:
    try:
        answer = await _body(request, BannerAnswer)
        await _count_call(request, answer.visitor_id)
        state = portal_of(request)
        try:
            result = await write(
                request,
                service.record_answer,
                register=state.register,
                purposes=state.settings.banner_purposes,
                answer=answer,
            )
        except service.AnswerRefused as refused:
            if refused.reason == "policy_changed":
                raise ApiProblem(409, code="policy_changed", message=POLICY_CHANGED) from None
            raise ApiProblem(422, details=[(refused.field, gettext(REFUSALS[refused.reason]))]) from None
    except ApiProblem as problem:
        return problem_response(problem)
    return JSONResponse({"recorded": result.recorded, "linked": result.linked})


async def visitor_state(request: Request) -> Response:
    try:
        who = await _body(request, VisitorOnly)
    except ApiProblem as problem:
        return problem_response(problem)
    state = portal_of(request)
    found = await read(
        request,
        service.visitor_state,
        register=state.register,
        purposes=state.settings.banner_purposes,
        visitor_id=who.visitor_id,
    )
    return JSONResponse(
        {"linked": found.linked, "policy_version": found.policy_version, "consents": found.consents},
        headers={"cache-control": "no-store"},
    )


async def shown(request: Request) -> Response:
    try:
        await _body(request, Shown)
        await _count_call(request, None)
        await write(request, service.count_shown)
    except ApiProblem as problem:
        return problem_response(problem)
    return Response(status_code=204)


routes = [
    Route("/consent/v1/banner.js", loader, methods=["GET"]),
    Route("/consent/v1/banner-{hash}.js", script, methods=["GET"]),
    Route("/consent/v1/answers", answers, methods=["POST"]),
    Route("/consent/v1/state", visitor_state, methods=["POST"]),
    Route("/consent/v1/shown", shown, methods=["POST"]),
]
