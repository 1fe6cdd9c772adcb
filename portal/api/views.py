"""The retailer API, version 1. Each call: check the key and its scope, validate the body, one transaction."""

from __future__ import annotations

import functools
import re
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from pydantic import BaseModel, TypeAdapter, ValidationError
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from portal.api import customers, schemas, service, upserts
from portal.api.bodies import json_body
from portal.api.errors import (
    CUSTOMER_CONFLICT,
    CUSTOMER_ERASED,
    CUSTOMER_NOT_FOUND,
    CUSTOMER_RESTRICTED,
    ApiProblem,
    field_message,
    problem_response,
)
from portal.api.openapi import openapi_document
from portal.consent.ledger import ConsentRefused
from portal.db import takes_connection
from portal.imports.apply import ItemsRefused
from portal.web.state import portal_of, write

T = TypeVar("T")
M = TypeVar("M", bound=BaseModel)
MAX_BODY = 1024 * 1024  # a batch of 1,000 events fits in well under a megabyte
PURCHASES_BODY: TypeAdapter[schemas.PurchaseBatch | schemas.Receipt] = TypeAdapter(
    schemas.PurchaseBatch | schemas.Receipt
)
BROWSING_BODY: TypeAdapter[schemas.BrowsingBatch | schemas.BrowsingEvent] = TypeAdapter(
    schemas.BrowsingBatch | schemas.BrowsingEvent
)


def _presented_key(request: Request) -> str:
    scheme, _, credentials = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not credentials.strip():
        raise ApiProblem(401, headers={"www-authenticate": 'Bearer realm="portal"'})
    return credentials.strip()


async def _call(request: Request, scope: str | None, work: Callable[..., T], /, **arguments: Any) -> T:
    """Check the key and its `scope`, then `work(session, **arguments)`, in one transaction: a refusal rolls
    everything back (see `service.as_client`)."""
    presented = _presented_key(request)
    try:
        return await write(
            request,
            # A work typed `Session | Connection` runs on the bare connection, the others on a Session.
            service.on_connection if takes_connection(work) else service.on_session,
            secret_key=portal_of(request).settings.secret_key,
            presented=presented,
            scope=scope,
            work=work,
            arguments=arguments,
        )
    except service.KeyRefused:
        raise ApiProblem(
            401, code="invalid_key", headers={"www-authenticate": 'Bearer error="invalid_token"'}
        ) from None
    except service.ScopeMissing:
        raise ApiProblem(403, details=[("scope", field_message("missing_scope"))]) from None


def _customer_not_found() -> ApiProblem:
    return ApiProblem(404, code="customer_not_found", message=CUSTOMER_NOT_FOUND)


def _json(model: BaseModel, status_code: int = 200) -> JSONResponse:
    return JSONResponse(model.model_dump(mode="json"), status_code=status_code)


def api_view(handler: Callable[[Request], Awaitable[Response]]) -> Callable[[Request], Awaitable[Response]]:
    """Turn the ApiProblem a handler raises into its JSON error response."""

    @functools.wraps(handler)
    async def view(request: Request) -> Response:
        try:
            return await handler(request)
        except ApiProblem as problem:
            return problem_response(problem)

    return view


async def openapi(request: Request) -> Response:
    register = portal_of(request).register
    codes = tuple(purpose.code for purpose in register.consent_based())
    return JSONResponse(openapi_document(portal_of(request).settings.base_url, codes))


@api_view
async def purposes(request: Request) -> Response:
    return _json(await _call(request, None, service.purpose_list, register=portal_of(request).register))


async def _consents(request: Request, who: schemas.CustomerIdentifier) -> Response:
    register = portal_of(request).register
    try:
        return _json(await _call(request, "consents:read", service.customer_consents, register=register, who=who))
    except service.CustomerNotFound:
        raise _customer_not_found() from None


@api_view
async def customer_consents(request: Request) -> Response:
    try:
        who = schemas.CustomerIdentifier(customer_id=request.path_params["customer_id"])
    except ValidationError:  # no customer id looks like that, so no customer has it
        raise _customer_not_found() from None
    return await _consents(request, who)


@api_view
async def consent_lookup(request: Request) -> Response:
    _presented_key(request)  # 401 before 4xx about the body: an anonymous caller learns nothing
    return await _consents(request, await json_body(request, schemas.ConsentLookup, max_bytes=MAX_BODY))


@api_view
async def record_consent(request: Request) -> Response:
    _presented_key(request)
    change = await json_body(request, schemas.ConsentChange, max_bytes=MAX_BODY)
    register = portal_of(request).register
    try:
        result = await _call(request, "consents:write", service.record_consent_change, register=register, change=change)
    except service.CustomerNotFound:
        raise _customer_not_found() from None
    except ConsentRefused as refused:
        message = field_message(refused.reason)
        if refused.reason == "older_than_latest":  # a conflict with what is recorded, not a bad value
            raise ApiProblem(409, code="newer_answer_recorded", message=message) from None
        raise ApiProblem(422, details=[(refused.field, message)]) from None
    return _json(result)


@api_view
async def link_website_visitor(request: Request) -> Response:
    _presented_key(request)
    link = await json_body(request, schemas.VisitorLink, max_bytes=MAX_BODY)
    register = portal_of(request).register
    try:
        result = await _call(request, "consents:write", service.link_website_visitor, register=register, link=link)
    except service.CustomerNotFound:
        raise _customer_not_found() from None
    return _json(result)


@api_view
async def browsing_events(request: Request) -> Response:
    _presented_key(request)
    body = await json_body(request, BROWSING_BODY, max_bytes=MAX_BODY)
    events = body.events if isinstance(body, schemas.BrowsingBatch) else [body]
    try:
        result = await _call(
            request,
            "browsing:write",
            service.ingest_browsing_events,
            events=events,
            timezone=portal_of(request).settings.timezone,
        )
    except service.EventsRefused as refused:
        raise ApiProblem(422, details=[(field, field_message(kind)) for field, kind in refused.details]) from None
    return _json(result)


def refused_items(refused: ItemsRefused, names: dict[str, str] | None = None, batch: str | None = None) -> ApiProblem:
    """A 422 naming each refused field as the sender calls it (`names`: our field → the body's or the URL's name);
    in a batch, prefixed by the list and the item's position (`purchases.3.store_code`), as pydantic names them."""
    names = names or {}
    details = []
    for position, error in refused.errors:
        field = names.get(error.field or "", error.field or "body")
        details.append((f"{batch}.{position}.{field}" if batch else field, error.message))
    return ApiProblem(422, details=details)


@api_view
async def put_store(request: Request) -> Response:
    _presented_key(request)
    code = request.path_params["code"]
    change = await json_body(request, schemas.StoreChange, max_bytes=MAX_BODY)
    if not re.fullmatch(schemas.STORE_CODE_PATTERN, code):
        raise ApiProblem(422, details=[("code", field_message("string_pattern_mismatch"))])
    portal = portal_of(request)
    try:
        result = await _call(
            request, "purchases:write", upserts.put_store, code=code, change=change,
            settings=portal.settings, register=portal.register,
        )  # fmt: skip
    except ItemsRefused as refused:
        raise refused_items(refused, {"store_code": "code"}) from None
    return _json(result)


@api_view
async def put_customer(request: Request) -> Response:
    _presented_key(request)
    body = await json_body(request, schemas.CustomerWrite, max_bytes=MAX_BODY)
    state = portal_of(request)
    try:
        result = await _call(
            request,
            "customers:write",
            customers.put_customer,
            settings=state.settings,
            register=state.register,
            customer_id=request.path_params["customer_id"],
            body=body,
        )
    except ItemsRefused as refused:
        details = [(error.field or "body", error.message) for _position, error in refused.errors]
        if any(error.reason == "conflict" for _position, error in refused.errors):
            raise ApiProblem(409, code="customer_conflict", message=CUSTOMER_CONFLICT, details=details) from None
        raise refused_items(refused) from None
    except customers.CustomerWriteRefused as refused:
        if refused.reason == "erased":
            raise ApiProblem(410, code="customer_erased", message=CUSTOMER_ERASED) from None
        raise ApiProblem(409, code="customer_restricted", message=CUSTOMER_RESTRICTED) from None
    return _json(result, 201 if result.outcome == "created" else 200)


@api_view
async def post_purchases(request: Request) -> Response:
    _presented_key(request)
    body = await json_body(request, PURCHASES_BODY, max_bytes=MAX_BODY)
    batch = isinstance(body, schemas.PurchaseBatch)
    receipts = body.purchases if isinstance(body, schemas.PurchaseBatch) else [body]
    portal = portal_of(request)
    try:
        result = await _call(
            request, "purchases:write", upserts.post_purchases, receipts=receipts,
            settings=portal.settings, register=portal.register,
        )  # fmt: skip
    except ItemsRefused as refused:
        # Named as the body names them: purchases.3.lines.1.quantity in a batch, lines.1.quantity for one receipt.
        named = [(error.field or "receipt_number", error.message, position) for position, error in refused.errors]
        raise ApiProblem(
            422,
            details=[
                (f"purchases.{position}.{field}" if batch else field, message) for field, message, position in named
            ],
        ) from None
    return _json(result)


routes = [
    Route("/api/openapi.json", openapi, methods=["GET"]),
    Route("/api/v1/purposes", purposes, methods=["GET"]),
    Route("/api/v1/customers/{customer_id}/consents", customer_consents, methods=["GET"]),
    Route("/api/v1/customers/{customer_id}", put_customer, methods=["PUT"]),
    Route("/api/v1/consents/lookup", consent_lookup, methods=["POST"]),
    Route("/api/v1/consents", record_consent, methods=["POST"]),
    Route("/api/v1/browsing-events", browsing_events, methods=["POST"]),
    Route("/api/v1/website-visitors/link", link_website_visitor, methods=["POST"]),
    Route("/api/v1/stores/{code}", put_store, methods=["PUT"]),
    Route("/api/v1/purchases", post_purchases, methods=["POST"]),
]
