"""The retailer API, version 1. Each call: check the key and its scope, validate the body, one transaction."""

from __future__ import annotations

import functools
import json
from collections.abc import Awaitable, Callable
from typing import TypeVar

from pydantic import BaseModel, TypeAdapter, ValidationError
from sqlmodel import Session
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from portal.api import schemas, service
from portal.api.errors import (
    CUSTOMER_NOT_FOUND,
    INVALID_JSON,
    ApiProblem,
    field_message,
    problem_response,
    validation_details,
)
from portal.api.keys import ApiClient, authenticate
from portal.api.openapi import openapi_document
from portal.consent.ledger import ConsentRefused
from portal.db import run_db, transaction
from portal.web.state import portal_of

T = TypeVar("T")
MAX_BODY = 1024 * 1024  # a batch of 1,000 events fits in well under a megabyte
BROWSING_BODY = TypeAdapter(schemas.BrowsingBatch | schemas.BrowsingEvent)


def _presented_key(request: Request) -> str:
    scheme, _, credentials = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not credentials.strip():
        raise ApiProblem(401, headers={"www-authenticate": 'Bearer realm="portal"'})
    return credentials.strip()


async def _body(request: Request, model: type[BaseModel] | TypeAdapter) -> object:
    media_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if media_type != "application/json":
        raise ApiProblem(415)
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > MAX_BODY:
        raise ApiProblem(413)
    raw = await request.body()
    if len(raw) > MAX_BODY:
        raise ApiProblem(413)
    try:
        data = json.loads(raw)
    except (ValueError, UnicodeDecodeError):
        raise ApiProblem(400, code="invalid_json", message=INVALID_JSON) from None
    try:
        if isinstance(model, TypeAdapter):
            return model.validate_python(data)
        return model.model_validate(data)
    except ValidationError as exc:
        raise ApiProblem(422, details=validation_details(exc)) from None


async def _call(request: Request, scope: str | None, work: Callable[[Session, ApiClient], T]) -> T:
    """Authenticate, check `scope`, run `work` in one transaction; an ApiProblem rolls everything back."""
    state = portal_of(request)
    presented = _presented_key(request)
    now = state.clock()

    def run() -> T:
        with transaction(state.engine) as session:
            client = authenticate(session, secret_key=state.settings.secret_key, presented=presented, now=now)
            if client is None:
                raise ApiProblem(401, code="invalid_key", headers={"www-authenticate": 'Bearer error="invalid_token"'})
            if scope is not None and scope not in client.scopes:
                raise ApiProblem(403, details=[("scope", field_message("missing_scope"))])
            return work(session, client)

    return await run_db(state.engine, run)


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
    register = portal_of(request).register

    def work(session: Session, client: ApiClient) -> schemas.PurposeList:
        return schemas.PurposeList(
            policy_version=register.policy_version,
            policy_date=register.policy_date.isoformat(),
            purposes=[
                schemas.PurposeInfo(
                    code=p.code,
                    consent_based=p.consent_based,
                    legal_basis=p.legal_basis,
                    title={locale: text for locale, text in p.title.texts},
                )
                for p in register
            ],
        )

    return _json(await _call(request, None, work))


def _read_consents(
    request: Request, who: schemas.CustomerIdentifier
) -> Callable[[Session, ApiClient], schemas.CustomerConsents]:
    register = portal_of(request).register

    def work(session: Session, client: ApiClient) -> schemas.CustomerConsents:
        try:
            customer = service.find_customer(session, who)
        except service.CustomerNotFound:
            raise ApiProblem(404, code="customer_not_found", message=CUSTOMER_NOT_FOUND) from None
        return service.consents_of(session, register=register, customer=customer)

    return work


@api_view
async def customer_consents(request: Request) -> Response:
    try:
        who = schemas.CustomerIdentifier(customer_id=request.path_params["customer_id"])
    except ValidationError:  # no customer id looks like that, so no customer has it
        raise ApiProblem(404, code="customer_not_found", message=CUSTOMER_NOT_FOUND) from None
    return _json(await _call(request, "consents:read", _read_consents(request, who)))


@api_view
async def consent_lookup(request: Request) -> Response:
    _presented_key(request)  # 401 before 4xx about the body: an anonymous caller learns nothing
    who = await _body(request, schemas.ConsentLookup)
    return _json(await _call(request, "consents:read", _read_consents(request, who)))  # type: ignore[arg-type]  # _body returns an instance of the model it is given, typed as object


@api_view
async def record_consent(request: Request) -> Response:
    _presented_key(request)
    change = await _body(request, schemas.ConsentChange)
    assert isinstance(change, schemas.ConsentChange)
    register = portal_of(request).register
    now = portal_of(request).clock()

    def work(session: Session, client: ApiClient) -> schemas.ConsentChangeResult:
        known = register.by_code.get(change.purpose)
        if known is None or not known.consent_based:
            raise ApiProblem(422, details=[("purpose", field_message("unknown_purpose"))])
        try:
            return service.record_consent_change(session, register=register, change=change, actor=client.actor, now=now)
        except service.CustomerNotFound:
            raise ApiProblem(404, code="customer_not_found", message=CUSTOMER_NOT_FOUND) from None
        except ConsentRefused as refused:
            message = field_message(refused.reason)
            if refused.reason == "older_than_latest":  # a conflict with what is recorded, not a bad value
                raise ApiProblem(409, code="newer_answer_recorded", message=message) from None
            raise ApiProblem(422, details=[(refused.field, message)]) from None

    return _json(await _call(request, "consents:write", work))


@api_view
async def browsing_events(request: Request) -> Response:
    _presented_key(request)
    body = await _body(request, BROWSING_BODY)
    events = body.events if isinstance(body, schemas.BrowsingBatch) else [body]
    now = portal_of(request).clock()

    def work(session: Session, client: ApiClient) -> schemas.IngestionResult:
        try:
            return service.ingest_browsing_events(
                session,
                events=events,  # type: ignore[arg-type]  # _body returns an instance of the model it is given, typed as object
                actor=client.actor,
                now=now,
                timezone=portal_of(request).settings.timezone,
            )
        except service.EventsRefused as refused:
            raise ApiProblem(422, details=[(field, field_message(kind)) for field, kind in refused.details]) from None

    return _json(await _call(request, "browsing:write", work))


routes = [
    Route("/api/openapi.json", openapi, methods=["GET"]),
    Route("/api/v1/purposes", purposes, methods=["GET"]),
    Route("/api/v1/customers/{customer_id}/consents", customer_consents, methods=["GET"]),
    Route("/api/v1/consents/lookup", consent_lookup, methods=["POST"]),
    Route("/api/v1/consents", record_consent, methods=["POST"]),
    Route("/api/v1/browsing-events", browsing_events, methods=["POST"]),
]
