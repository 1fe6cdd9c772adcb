"""Back-office pages: the request queue, one request and its actions, the DPO's reports and audit trail.

Every page checks the role first (agent or DPO for requests, DPO alone for reports and audit). Actions are plain
form POSTs that redirect back (no JavaScript needed); htmx enhances the queue (filtering, pages, assigning and
starting without a reload), where the answer is the redrawn row or results.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any
from urllib.parse import urlencode

from starlette.datastructures import FormData
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response, StreamingResponse
from starlette.routing import Route

from portal.audit import record_audit
from portal.backoffice import audit_trail, detail, queue, reports
from portal.consent.ledger import consent_proof_csv
from portal.db import run_db, transaction
from portal.erasure import service as erasure
from portal.i18n import gettext, lazy_gettext
from portal.identity.guards import StaffPrincipal, has_role, require_role, staff_of
from portal.labels import staff_labels
from portal.portability import service as portability
from portal.requests import restriction, workflow
from portal.requests.service import RESTRICTION_GROUND_LABELS, RequestNotFound, normalise_reference
from portal.web.render import is_htmx, redirect, safe_next
from portal.web.render import render as render_page
from portal.web.state import portal_of, request_id_of

WORKERS = ("agent",)  # and the DPO, always

DONE_MESSAGES = {
    "assigned": lazy_gettext("The request is now assigned to you."),
    "unassigned": lazy_gettext("The request is no longer assigned."),
    "started": lazy_gettext("The request is in progress."),
    "note": lazy_gettext("Your internal note was saved."),
    "message": lazy_gettext("Your message was sent to the customer."),
    "question": lazy_gettext("Your question was sent to the customer; the request waits for their answer."),
    "extended": lazy_gettext("The deadline was extended and the customer told why."),
    "completed": lazy_gettext("The request is completed and the customer was told."),
    "rejected": lazy_gettext("The request was refused and the customer told why."),
    "rectified": lazy_gettext("The correction was applied and the request completed."),
    "erased": lazy_gettext("The customer's data was erased and the request completed."),
    "restricted": lazy_gettext("The customer's data is now restricted: kept, but not used."),
    "restriction_lifted": lazy_gettext("The restriction was lifted."),
    "objection": lazy_gettext("Every marketing consent was withdrawn and the request completed."),
    "link_sent": lazy_gettext("A download link was emailed to the customer."),
}


def render(request: Request, template: str, context: dict[str, Any], **options: Any) -> Response:
    context = {**context, "labels": staff_labels(), "restriction_grounds": RESTRICTION_GROUND_LABELS}
    return render_page(request, template, context, **options)


def _now(request: Request) -> datetime:
    return portal_of(request).clock()


def _timezone(request: Request) -> str:
    return portal_of(request).settings.timezone


# --- The queue ----------------------------------------------------------------------------------------------------


async def request_queue(request: Request) -> Response:
    staff = require_role(request, *WORKERS)
    filters, errors = queue.parse_filters(request.query_params)
    after = request.query_params.get("after")
    engine = portal_of(request).engine
    now, timezone = _now(request), _timezone(request)

    def load() -> tuple[queue.QueuePage, list[queue.Choice], list[queue.Choice]]:
        with transaction(engine) as session:
            page = queue.queue_page(
                session, filters=filters, staff_id=staff.id, now=now, after=after, timezone=timezone
            )
            return page, queue.store_choices(session), queue.assignee_choices(session)

    page, stores, assignees = await run_db(engine, load)
    query = filters.as_query()
    return render(
        request,
        "staff/requests.html",
        {
            "filters": filters,
            "errors": errors,
            "staff": staff,
            "after": after,
            "page": page,
            "stores": stores,
            "assignees": assignees,
            "query": query,
            "next_url": "/staff/requests?" + urlencode({**query, "after": page.next_cursor})
            if page.next_cursor
            else None,
            "first_url": "/staff/requests" + (f"?{urlencode(query)}" if query else ""),
            "back": request.url.path + (f"?{request.url.query}" if request.url.query else ""),
            "statuses": queue.STATUS_CHOICES,
            "types": queue.REQUEST_TYPES,
            "channels": queue.CHANNELS,
        },
        status_code=400 if errors else 200,
        block="results",
    )


# --- Acting on a request ------------------------------------------------------------------------------------------


def _version(form: FormData) -> int | None:
    raw = str(form.get("version") or "").strip()
    return int(raw) if raw.isdigit() and len(raw) < 10 else None


def _reference(request: Request) -> str:
    reference = normalise_reference(request.path_params["reference"][:32])
    if reference is None:
        raise HTTPException(404)
    return reference


def _acting(request: Request, staff: StaffPrincipal, form: FormData) -> dict[str, Any]:
    """What every step on a request is called with: which request, who acts and when, the version they saw."""
    return {
        "reference": _reference(request),
        "actor": staff.actor,
        "now": _now(request),
        "expected_version": _version(form),
        "request_id": request_id_of(request),
    }


async def _act(
    request: Request,
    staff: StaffPrincipal,
    action: Callable[..., object],
    done: str,
    *,
    form: FormData | None = None,
) -> Response:
    """Run `action(session, form)` in one transaction and answer: redirect to the detail page (or `back`), the row
    for htmx in the queue, or the detail page with the problem (400 bad input, 409 refused or stale)."""
    reference = _reference(request)
    form = form if form is not None else await request.form()
    engine = portal_of(request).engine

    def run() -> None:
        with transaction(engine) as session:
            action(session, form)

    try:
        await run_db(engine, run)
    except RequestNotFound as exc:
        raise HTTPException(404) from exc
    except workflow.StaleRequest:
        return await _problem(request, staff, reference, form, _stale_message(), status=409)
    except detail.CorrectionInvalid as exc:
        return await _problem(request, staff, reference, form, None, status=400, field_errors=exc.errors)
    except workflow.ActionInvalid as exc:
        return await _problem(request, staff, reference, form, exc.message, status=400)
    except workflow.TransitionRefused as exc:  # ActionRefused too
        return await _problem(request, staff, reference, form, exc.message, status=409)
    back = str(form.get("back") or "")
    if is_htmx(request) and form.get("from") == "queue":
        return await _queue_row(request, staff, reference, done=done)
    if back.startswith("/staff/requests?") or back == "/staff/requests":
        return redirect(request, safe_next(back, "/staff/requests"))
    return redirect(request, f"/staff/requests/{reference}?done={done}")


def _stale_message() -> str:
    return gettext("Someone else changed this request meanwhile: reload the page to see the latest version.")


async def _queue_row(
    request: Request, staff: StaffPrincipal, reference: str, *, done: str | None = None, error: str | None = None
) -> Response:
    engine = portal_of(request).engine
    now, timezone = _now(request), _timezone(request)

    def load() -> queue.QueueRow | None:
        with transaction(engine) as session:
            return queue.queue_row(session, reference=reference, now=now, timezone=timezone)

    row = await run_db(engine, load)
    if row is None:
        raise HTTPException(404)
    return render(
        request,
        "staff/_queue_row.html",
        {"row": row, "staff": staff, "row_error": error, "row_done": done, "back": "/staff/requests"},
    )


async def _problem(
    request: Request,
    staff: StaffPrincipal,
    reference: str,
    form: FormData,
    message: str | None,
    *,
    status: int,
    field_errors: dict[str, str] | None = None,
) -> Response:
    if is_htmx(request) and form.get("from") == "queue":
        # htmx swaps successful answers only: the row comes back redrawn, with the problem written in it.
        return await _queue_row(request, staff, reference, error=message)
    return await _detail_page(
        request, staff, reference, error=message, field_errors=field_errors or {}, form=form, status=status
    )


async def assign(request: Request) -> Response:
    staff = require_role(request, *WORKERS)
    form = await request.form()
    target = str(form.get("assignee") or "")
    if target not in ("me", "none") and not (target.isdigit() and len(target) < 10):
        return await _problem(
            request, staff, _reference(request), form, gettext("Choose who gets the request."), status=400
        )
    assignee = staff.id if target == "me" else None if target == "none" else int(target)

    def action(session, form):  # type: ignore[no-untyped-def]
        workflow.assign(
            session,
            **_acting(request, staff, form),
            staff_id=assignee,
        )

    return await _act(request, staff, action, "assigned" if assignee else "unassigned", form=form)


async def start(request: Request) -> Response:
    staff = require_role(request, *WORKERS)

    def action(session, form):  # type: ignore[no-untyped-def]
        workflow.start(
            session,
            **_acting(request, staff, form),
        )

    return await _act(request, staff, action, "started")


def _text_action(name: str, argument: str, done: str, *, composer: bool = True) -> Callable[..., Any]:
    """A view for a workflow step that takes one text from the form (`argument`: the form field and keyword)."""

    async def view(request: Request) -> Response:
        staff = require_role(request, *WORKERS)

        def action(session, form):  # type: ignore[no-untyped-def]
            extra = {"composer": portal_of(request).composer} if composer else {}
            getattr(workflow, name)(
                session,
                **_acting(request, staff, form),
                **{argument: str(form.get(argument) or "")},
                **extra,
            )

        return await _act(request, staff, action, done)

    view.__name__ = name
    return view


async def extend(request: Request) -> Response:
    staff = require_role(request, *WORKERS)

    def action(session, form):  # type: ignore[no-untyped-def]
        raw = str(form.get("months") or "")
        months = int(raw) if raw in ("1", "2") else 0  # the service refuses anything else with its own message
        workflow.extend(
            session,
            **_acting(request, staff, form),
            months=months,
            reason=str(form.get("reason") or ""),
            composer=portal_of(request).composer,
            timezone=_timezone(request),
        )

    return await _act(request, staff, action, "extended")


async def rectify(request: Request) -> Response:
    staff = require_role(request, *WORKERS)

    def action(session, form):  # type: ignore[no-untyped-def]
        detail.apply_correction(
            session,
            **_acting(request, staff, form),
            values={k: str(v) for k, v in form.items()},
            outcome=str(form.get("outcome") or ""),
            composer=portal_of(request).composer,
        )

    return await _act(request, staff, action, "rectified")


async def erasure_preview(request: Request) -> Response:
    staff = require_role(request, *WORKERS)
    return await _detail_page(request, staff, _reference(request), preview=True)


async def erase(request: Request) -> Response:
    staff = require_role(request, *WORKERS)
    state = portal_of(request)

    def action(session, form):  # type: ignore[no-untyped-def]
        if form.get("confirm") != "yes":
            raise workflow.ActionInvalid(gettext("Tick the box to confirm the erasure."))
        erasure.execute_erasure(
            session,
            **_acting(request, staff, form),
            composer=state.composer,
            settings=state.settings,
            register=state.register,
        )

    return await _act(request, staff, action, "erased")


async def restrict(request: Request) -> Response:
    staff = require_role(request, *WORKERS)

    def action(session, form):  # type: ignore[no-untyped-def]
        restriction.apply_restriction(
            session,
            **_acting(request, staff, form),
        )

    return await _act(request, staff, action, "restricted")


async def lift_restriction(request: Request) -> Response:
    staff = require_role(request, *WORKERS)

    def action(session, form):  # type: ignore[no-untyped-def]
        restriction.lift_restriction(
            session,
            **_acting(request, staff, form),
            reason=str(form.get("reason") or ""),
        )

    return await _act(request, staff, action, "restriction_lifted")


async def honour_objection(request: Request) -> Response:
    staff = require_role(request, *WORKERS)

    def action(session, form):  # type: ignore[no-untyped-def]
        restriction.honour_objection(
            session,
            **_acting(request, staff, form),
            register=portal_of(request).register,
        )

    return await _act(request, staff, action, "objection")


async def send_link(request: Request) -> Response:
    staff = require_role(request, *WORKERS)
    state = portal_of(request)

    def action(session, form):  # type: ignore[no-untyped-def]
        found = detail.request_detail(session, reference=_reference(request), now=_now(request))
        if found.type not in ("access", "portability") or not found.is_open:
            raise workflow.TransitionRefused(
                gettext("A download link goes with an open access or portability request.")
            )
        if (expected := _version(form)) and expected != found.version:
            raise workflow.StaleRequest(found.reference, found.version)
        if found.customer is None or found.customer.erased_at is not None:
            raise workflow.TransitionRefused(gettext("This customer's data was erased: there is nothing to send."))
        try:
            portability.send_download_link(
                session,
                customer_id=found.customer.id,
                reference=found.reference,
                actor=staff.actor,
                now=_now(request),
                composer=state.composer,
                settings=state.settings,
                request_id=request_id_of(request),
            )
        except portability.DownloadLinkRefused as exc:
            raise workflow.TransitionRefused(str(exc)) from None

    return await _act(request, staff, action, "link_sent")


# --- The detail page ----------------------------------------------------------------------------------------------


async def request_page(request: Request) -> Response:
    staff = require_role(request, *WORKERS)
    return await _detail_page(request, staff, _reference(request), audit=True)


async def _detail_page(
    request: Request,
    staff: StaffPrincipal,
    reference: str,
    *,
    audit: bool = False,
    preview: bool = False,
    error: str | None = None,
    field_errors: dict[str, str] | None = None,
    form: FormData | None = None,
    status: int = 200,
) -> Response:
    state = portal_of(request)
    engine = state.engine
    now, timezone = _now(request), _timezone(request)

    def load() -> tuple[detail.RequestDetail, erasure.ErasurePlan | None, list[queue.Choice]]:
        with transaction(engine) as session:
            found = detail.request_detail(session, reference=reference, now=now, timezone=timezone)
            if audit and found.customer is not None:
                detail.record_view(session, detail=found, actor=staff.actor, now=now, request_id=request_id_of(request))
            plan = None
            if preview and found.type == "erasure" and found.customer is not None:
                plan = erasure.plan_erasure(session, customer_id=found.customer.id, register=state.register)
            return found, plan, queue.assignee_choices(session)

    try:
        found, plan, assignees = await run_db(engine, load)
    except RequestNotFound as exc:
        raise HTTPException(404) from exc
    done = request.query_params.get("done", "")
    return render(
        request,
        "staff/request.html",
        {
            "item": found,
            "staff": staff,
            "plan": plan,
            "preview": preview,
            "assignees": assignees,
            "error": error,
            "field_errors": field_errors or {},
            "form": {k: str(v) for k, v in form.items()} if form else {},
            "done": gettext(DONE_MESSAGES[done]) if done in DONE_MESSAGES else None,
            "correction_columns": detail.correction_columns(str(found.details.get("field", ""))),
            "can_extend": found.is_open and not found.extended and now <= found.original_due_at,
            "status_code": status,
        },
        status_code=status,
    )


async def consent_proof(request: Request) -> Response:
    """The customer's consent proof (Art. 7(1)) as CSV: every event with the exact wording shown. DPO only."""
    staff = require_role(request, "dpo")
    reference = _reference(request)
    engine, now = portal_of(request).engine, _now(request)

    def customer_of_request() -> int:
        with transaction(engine) as session:
            found = detail.request_detail(session, reference=reference, now=now, timezone=_timezone(request))
            if found.customer is None or found.customer.erased_at is not None:
                raise HTTPException(404)
            record_audit(
                session,
                actor=staff.actor,
                action="consent_proof.exported",
                target=f"request:{found.reference}",
                now=now,
                request_id=request_id_of(request),
            )
            return found.customer.id

    try:
        customer_id = await run_db(engine, customer_of_request)
    except RequestNotFound as exc:
        raise HTTPException(404) from exc

    def lines():  # type: ignore[no-untyped-def]
        with engine.connect() as connection:
            yield from consent_proof_csv(connection, customer_id=customer_id)

    return StreamingResponse(
        lines(),
        media_type="text/csv; charset=utf-8",
        headers={"content-disposition": f'attachment; filename="consent-proof-{reference}.csv"'},
    )


# --- DPO: reports and the audit trail -----------------------------------------------------------------------------


def _period(request: Request) -> tuple[tuple[Any, Any], dict[str, str]]:
    errors: dict[str, str] = {}
    first, last = reports.default_period(_now(request), _timezone(request))
    values = {}
    for name, default in (("from", first), ("to", last)):
        try:
            values[name] = reports.parse_month(request.query_params.get(name)) or default
        except reports.BadPeriod:
            errors[name] = gettext("Enter a month as YYYY-MM.")
            values[name] = default
    if values["to"] < values["from"] or (values["to"].year - values["from"].year) > 10:
        errors["to"] = gettext("Enter an end month on or after the start month, at most ten years later.")
        values["from"], values["to"] = first, last
    return (values["from"], values["to"]), errors


async def _report(request: Request) -> tuple[reports.Report, dict[str, str]]:
    require_role(request, "dpo")
    (first, last), errors = _period(request)
    engine = portal_of(request).engine
    now, timezone = _now(request), _timezone(request)

    def load() -> reports.Report:
        with transaction(engine) as session:
            return reports.build_report(session, now=now, first_month=first, last_month=last, timezone=timezone)

    return await run_db(engine, load), errors


async def reports_page(request: Request) -> Response:
    report, errors = await _report(request)
    return render(
        request,
        "staff/reports.html",
        {"report": report, "errors": errors, "query": request.url.query},
        status_code=400 if errors else 200,
    )


async def reports_csv(request: Request) -> Response:
    report, errors = await _report(request)
    if errors:
        return PlainTextResponse("\n".join(errors.values()), status_code=400)
    name = f"requests-report-{report.start:%Y-%m}-{report.end:%Y-%m}.csv"
    return Response(
        reports.report_csv(report),
        media_type="text/csv; charset=utf-8",
        headers={"content-disposition": f'attachment; filename="{name}"'},
    )


async def audit_page(request: Request) -> Response:
    require_role(request, "dpo")
    filters, errors = audit_trail.parse_audit_filters(request.query_params)
    engine = portal_of(request).engine
    after = request.query_params.get("after")

    def load() -> audit_trail.AuditPage:
        with engine.connect() as connection:
            return audit_trail.audit_page(connection, filters=filters, after=after, timezone=_timezone(request))

    page = await run_db(engine, load)
    query = filters.as_query()
    return render(
        request,
        "staff/audit.html",
        {
            "page": page,
            "filters": filters,
            "errors": errors,
            "query": query,
            "csv_url": "/staff/audit.csv" + (f"?{urlencode(query)}" if query else ""),
            "next_url": "/staff/audit?" + urlencode({**query, "after": page.next_cursor}) if page.next_cursor else None,
        },
        status_code=400 if errors else 200,
        block="results",
    )


async def audit_csv(request: Request) -> Response:
    staff = require_role(request, "dpo")
    filters, errors = audit_trail.parse_audit_filters(request.query_params)
    if errors:
        return PlainTextResponse("\n".join(errors.values()), status_code=400)
    engine = portal_of(request).engine
    timezone, now = _timezone(request), _now(request)

    def record_export() -> None:  # exporting the trail is itself worth recording
        with transaction(engine) as session:
            record_audit(
                session, actor=staff.actor, action="audit.exported", now=now, detail=filters.as_query() or None
            )

    await run_db(engine, record_export)

    def lines():  # type: ignore[no-untyped-def]
        with engine.connect() as connection:
            yield from audit_trail.audit_csv_lines(connection, filters=filters, timezone=timezone)

    return StreamingResponse(
        lines(),
        media_type="text/csv; charset=utf-8",
        headers={"content-disposition": 'attachment; filename="audit-trail.csv"'},
    )


async def home(request: Request) -> Response:
    me = staff_of(request)
    return render(request, "staff/home.html", {"me": me, "is_dpo": has_role(me), "works_queue": has_role(me, "agent")})


routes = [
    Route("/staff", home, methods=["GET"], name="staff_home"),
    Route("/staff/requests", request_queue, methods=["GET"], name="staff_requests"),
    Route("/staff/requests/{reference}", request_page, methods=["GET"], name="staff_request"),
    Route("/staff/requests/{reference}/assign", assign, methods=["POST"]),
    Route("/staff/requests/{reference}/start", start, methods=["POST"]),
    Route(
        "/staff/requests/{reference}/note", _text_action("add_note", "note", "note", composer=False), methods=["POST"]
    ),
    Route(
        "/staff/requests/{reference}/message", _text_action("message_customer", "message", "message"), methods=["POST"]
    ),
    Route(
        "/staff/requests/{reference}/question", _text_action("ask_customer", "message", "question"), methods=["POST"]
    ),
    Route("/staff/requests/{reference}/extend", extend, methods=["POST"]),
    Route("/staff/requests/{reference}/complete", _text_action("complete", "outcome", "completed"), methods=["POST"]),
    Route("/staff/requests/{reference}/reject", _text_action("reject", "reason", "rejected"), methods=["POST"]),
    Route("/staff/requests/{reference}/rectify", rectify, methods=["POST"]),
    Route("/staff/requests/{reference}/erasure", erasure_preview, methods=["GET"]),
    Route("/staff/requests/{reference}/erase", erase, methods=["POST"]),
    Route("/staff/requests/{reference}/restrict", restrict, methods=["POST"]),
    Route("/staff/requests/{reference}/lift-restriction", lift_restriction, methods=["POST"]),
    Route("/staff/requests/{reference}/objection", honour_objection, methods=["POST"]),
    Route("/staff/requests/{reference}/download-link", send_link, methods=["POST"]),
    Route("/staff/requests/{reference}/consent-proof.csv", consent_proof, methods=["GET"]),
    Route("/staff/reports", reports_page, methods=["GET"], name="staff_reports"),
    Route("/staff/reports.csv", reports_csv, methods=["GET"]),
    Route("/staff/audit", audit_page, methods=["GET"], name="staff_audit"),
    Route("/staff/audit.csv", audit_csv, methods=["GET"]),
]
