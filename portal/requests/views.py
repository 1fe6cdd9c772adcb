"""The customer's requests: making one, the list, one request's timeline, answering a question, cancelling."""

from __future__ import annotations

import secrets

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from portal.i18n import get_locale
from portal.identity.guards import customer_id_of, origin_of
from portal.mydata.service import overview_for
from portal.requests import service, workflow
from portal.requests.refusals import REFUSALS, refusal_response
from portal.web.render import posted_fields, redirect, render
from portal.web.state import portal_of, read, write

FORM_LIMIT = 4000  # characters kept from any posted field; the services apply the real limits
# What the detail page says after a redirect (?filed=1 …): names only, never values, in the URL.
NOTICES = ("filed", "already", "answered", "cancelled")


async def _form(request: Request) -> dict[str, str]:
    return posted_fields(await request.form(), limit=FORM_LIMIT)


def _reference(request: Request) -> str:
    return request.path_params["reference"][:32]


async def my_requests(request: Request) -> Response:
    values = request.query_params.getlist("after")
    try:
        if len(values) > 1 or (values and len(values[0]) > 32):
            raise service.InvalidRequestsCursor("after")
        after = values[0] if values and values[0] else None
        page = await read(request, service.requests_of, customer_id=customer_id_of(request), after=after)
    except service.InvalidRequestsCursor:
        return render(request, "errors/requests_link_rejected.html", {"status_code": 400}, status_code=400)
    too_many_open = request.query_params.get("too_many_open") == "1"
    # htmx asks for the next requests ("Show older requests"): same URL, only the rows.
    return render(
        request,
        "customer/requests.html",
        {"page": page, "too_many_open": too_many_open, "open_per_type": service.OPEN_PER_TYPE},
        block="rows" if page.after else None,
    )


# --- Making a request ------------------------------------------------------------------------------------------


async def new_request(request: Request) -> Response:
    customer_id_of(request)
    return render(request, "customer/requests_new.html", {"types": service.CUSTOMER_REQUEST_TYPES})


def _request_type(request: Request) -> str:
    type = request.path_params["type"]
    if type not in service.CUSTOMER_REQUEST_TYPES:
        raise HTTPException(404)
    return type


async def _request_form_page(
    request: Request,
    *,
    customer_id: int,
    type: str,
    values: dict[str, str],
    errors: dict[str, str],
    status_code: int = 200,
) -> Response:
    state = portal_of(request)
    held = await read(request, overview_for, customer_id=customer_id) if type == "erasure" else None
    register = state.register
    return render(
        request,
        "customer/requests_form.html",
        {
            "type": type,
            "values": values,
            "errors": errors,
            "messages": service.FORM_MESSAGES,
            "held": held,
            "accounting": register.by_code.get("accounting"),
            "objectionable": [p for p in register if p.can_object],
            "grounds": service.RESTRICTION_GROUND_LABELS,
        },
        status_code=status_code,
    )


async def request_form(request: Request) -> Response:
    if request.path_params["type"] == "rectification":
        # Corrections start from the profile page, which knows the fields and their rules.
        return redirect(request, "/me/profile")
    customer_id = customer_id_of(request)
    type = _request_type(request)
    return await _request_form_page(
        request, customer_id=customer_id, type=type, values={"submission_key": secrets.token_urlsafe(16)}, errors={}
    )


async def request_submit(request: Request) -> Response:
    customer_id = customer_id_of(request)
    origin = origin_of(request)
    type = _request_type(request)
    form = await _form(request)
    try:
        filed = await write(
            request,
            service.make_request,
            composer=portal_of(request).composer,
            customer_id=customer_id,
            type=type,
            form=form,
            language=get_locale(),
            channel=origin.channel,
            actor=origin.actor,
            store_id=origin.store_id,
        )
    except service.RequestFormInvalid as exc:
        return await _request_form_page(
            request, customer_id=customer_id, type=type, values=form, errors=exc.errors, status_code=400
        )
    except REFUSALS as exc:
        return refusal_response(request, exc)
    except LookupError as exc:
        raise HTTPException(404) from exc
    return redirect(request, f"/me/requests/{filed.reference}?filed=1")


# --- One request -----------------------------------------------------------------------------------------------


async def _detail_page(
    request: Request,
    *,
    notice: str | None = None,
    error: str | None = None,
    reply: str = "",
    reply_error: str | None = None,
    status_code: int = 200,
) -> Response:
    summary, steps = await read(
        request, service.request_of, customer_id=customer_id_of(request), reference=_reference(request)
    )
    questions = [step for step in steps if step.kind == "question"]
    if notice is None:
        notice = next((name for name in NOTICES if request.query_params.get(name)), None)
    return render(
        request,
        "customer/request_detail.html",
        {
            "item": summary,
            "steps": steps,
            "question": questions[-1] if questions and summary.status == "awaiting_customer" else None,
            "notice": notice,
            "error": error,
            "reply": reply,
            "reply_error": reply_error,
            "grounds": service.RESTRICTION_GROUND_LABELS,
        },
        status_code=status_code,
    )


async def my_request(request: Request) -> Response:
    return await _detail_page(request)


async def reply_submit(request: Request) -> Response:
    customer_id = customer_id_of(request)
    reference = _reference(request)
    form = await _form(request)
    try:
        changed = await write(
            request,
            workflow.customer_reply,
            reference=reference,
            actor=f"customer:{customer_id}",
            message=form.get("message", ""),
            customer_id=customer_id,
        )
    except workflow.ActionInvalid as exc:
        return await _detail_page(request, reply_error=exc.message, reply=form.get("message", ""), status_code=400)
    except workflow.TransitionRefused as exc:
        return await _detail_page(request, error=exc.message, status_code=409)
    return redirect(request, f"/me/requests/{changed.reference}?answered=1")


async def _summary(request: Request, customer_id: int) -> service.RequestSummary:
    summary, _steps = await read(request, service.request_of, customer_id=customer_id, reference=_reference(request))
    return summary


async def cancel_confirm(request: Request) -> Response:
    summary = await _summary(request, customer_id_of(request))
    if summary.status != "received":  # nothing to confirm: the request page says where it stands
        return redirect(request, f"/me/requests/{summary.reference}")
    return render(request, "customer/requests_cancel.html", {"item": summary})


async def cancel_submit(request: Request) -> Response:
    customer_id = customer_id_of(request)
    reference = _reference(request)
    try:
        changed = await write(
            request,
            workflow.cancel,
            reference=reference,
            actor=f"customer:{customer_id}",
            customer_id=customer_id,
            composer=portal_of(request).composer,
            language=get_locale(),
        )
    except workflow.TransitionRefused as exc:
        summary = await _summary(request, customer_id)
        if summary.status == "cancelled":  # a double click: the first one did it
            return redirect(request, f"/me/requests/{summary.reference}?cancelled=1")
        return await _detail_page(request, error=exc.message, status_code=409)
    return redirect(request, f"/me/requests/{changed.reference}?cancelled=1")


routes = [
    Route("/me/requests", my_requests, methods=["GET"], name="my_requests"),
    Route("/me/requests/new", new_request, methods=["GET"], name="new_request"),
    Route("/me/requests/new/{type}", request_form, methods=["GET"], name="request_form"),
    Route("/me/requests/new/{type}", request_submit, methods=["POST"]),
    Route("/me/requests/{reference}", my_request, methods=["GET"], name="my_request"),
    Route("/me/requests/{reference}/reply", reply_submit, methods=["POST"], name="request_reply"),
    Route("/me/requests/{reference}/cancel", cancel_confirm, methods=["GET"], name="request_cancel"),
    Route("/me/requests/{reference}/cancel", cancel_submit, methods=["POST"]),
]
