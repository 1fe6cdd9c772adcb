"""Back-office pages: home, the request queue, one request and its actions, the DPO's reports and audit trail.

Every page checks the role first (agent or DPO for requests, DPO alone for reports and audit). Actions are plain
form POSTs that redirect back (no JavaScript needed); htmx enhances the queue (filtering, pages, assigning and
starting without a reload), where the answer is the redrawn row or results.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

from starlette.datastructures import FormData
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response, StreamingResponse
from starlette.routing import Route

from portal.backoffice import actions, audit_trail, detail, queue, reports
from portal.backoffice.dashboard import dashboard
from portal.consent.ledger import consent_proof_csv
from portal.erasure import approval
from portal.i18n import gettext, lazy_gettext
from portal.identity.guards import StaffPrincipal, has_role, require_role, staff_of
from portal.labels import staff_labels
from portal.requests import workflow
from portal.requests.service import RESTRICTION_GROUND_LABELS, normalise_reference
from portal.settings import Settings
from portal.web.render import is_htmx, posted_fields, redirect, safe_next
from portal.web.render import render as render_page
from portal.web.state import portal_of, read, request_id_of, stream, write

WORKERS = ("agent",)  # and the DPO, always
FORM_LIMIT = 20_000  # characters kept from any posted field; the services apply the real limits

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
    "erasure_proposed": lazy_gettext("The erasure is proposed: it will be carried out when a DPO approves it."),
    "erasure_declined": lazy_gettext("The proposed erasure was declined; the request stays open."),
    "restricted": lazy_gettext("The customer's data is now restricted: kept, but not used."),
    "restriction_lifted": lazy_gettext("The restriction was lifted."),
    "objection": lazy_gettext("Every marketing consent was withdrawn and the request completed."),
    "link_sent": lazy_gettext("A download link was emailed to the customer."),
}


def render(request: Request, template: str, context: dict[str, Any], **options: Any) -> Response:
    context = {**context, "labels": staff_labels(), "restriction_grounds": RESTRICTION_GROUND_LABELS}
    return render_page(request, template, context, **options)


async def home(request: Request) -> Response:
    me = staff_of(request)
    if me.role == "store":  # a store account has one place: the tablet
        return redirect(request, "/staff/tablet")
    return render(request, "staff/home.html", {"me": me, "is_dpo": has_role(me), "works_queue": has_role(me, "agent")})


# --- The queue ----------------------------------------------------------------------------------------------------


async def request_queue(request: Request) -> Response:
    staff = require_role(request, *WORKERS)
    filters, errors = queue.parse_filters(request.query_params)
    after = request.query_params.get("after")
    screen = await read(request, queue.queue_screen, filters=filters, staff_id=staff.id, after=after)
    query = filters.as_query()
    return render(
        request,
        "staff/requests.html",
        {
            "filters": filters,
            "errors": errors,
            "staff": staff,
            "after": after,
            "page": screen.page,
            "stores": screen.stores,
            "assignees": screen.assignees,
            "query": query,
            "next_url": "/staff/requests?" + urlencode({**query, "after": screen.page.next_cursor})
            if screen.page.next_cursor
            else None,
            "first_url": "/staff/requests" + (f"?{urlencode(query)}" if query else ""),
            "back": request.url.path + (f"?{request.url.query}" if request.url.query else ""),
            "statuses": queue.STATUS_CHOICES,
            "types": queue.REQUEST_TYPES,
            "channels": queue.CHANNELS,
            "search_customers": queue.SEARCH_CUSTOMERS,
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


async def act(request: Request) -> Response:
    """`POST /staff/requests/{reference}/{action}`: run the action, then redirect to the request (or `back`), redraw
    the queue row for htmx, or show the problem (400 bad input, 409 refused or stale)."""
    staff = require_role(request, *WORKERS)
    name = request.path_params["action"]
    if name not in actions.ACTIONS:
        raise HTTPException(404)
    reference = _reference(request)
    form = await request.form()
    state = portal_of(request)
    acting = actions.Acting(
        reference=reference,
        actor=staff.actor,
        staff_id=staff.id,
        role=staff.role,
        now=state.clock(),
        expected_version=_version(form),
        request_id=request_id_of(request),
        composer=state.composer,
        settings=state.settings,
        register=state.register,
    )
    try:
        done = await write(
            request, actions.performer(name), action=name, acting=acting, form=posted_fields(form, limit=FORM_LIMIT)
        )
    except workflow.StaleRequest:
        return await _problem(request, staff, reference, form, _stale_message(), status=409)
    except detail.CorrectionInvalid as exc:
        return await _problem(request, staff, reference, form, None, status=400, field_errors=exc.errors)
    except workflow.ActionInvalid as exc:
        return await _problem(request, staff, reference, form, exc.message, status=400)
    except workflow.TransitionRefused as exc:
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
    row = await read(request, queue.queue_row, reference=reference)
    if row is None:
        raise HTTPException(404)
    return render(
        request,
        "staff/_queue_rows.html",
        {"rows": [row], "staff": staff, "row_error": error, "row_done": done, "back": "/staff/requests"},
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


# --- The detail page ----------------------------------------------------------------------------------------------


async def request_page(request: Request) -> Response:
    staff = require_role(request, *WORKERS)
    return await _detail_page(request, staff, _reference(request), audit=True)


async def erasure_preview(request: Request) -> Response:
    staff = require_role(request, *WORKERS)
    return await _detail_page(request, staff, _reference(request), preview=True)


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
    page = await write(
        request,
        detail.detail_page,
        reference=reference,
        actor=staff.actor,
        register=state.register,
        audit=audit,
        preview=preview,
    )
    found, now = page.item, state.clock()
    done = request.query_params.get("done", "")
    return render(
        request,
        "staff/request.html",
        {
            "item": found,
            "staff": staff,
            "plan": page.plan,
            "preview": preview,
            "assignees": page.assignees,
            "error": error,
            "field_errors": field_errors or {},
            "form": {k: str(v) for k, v in form.items()} if form else {},
            "done": gettext(DONE_MESSAGES[done]) if done in DONE_MESSAGES else None,
            "correction_columns": detail.correction_columns(str(found.details.get("field", ""))),
            "can_extend": found.is_open and not found.extended and now <= found.original_due_at,
            "approval": _erasure_approval(state.settings, found, staff),
            "status_code": status,
        },
        status_code=status,
    )


def _erasure_approval(settings: Settings, item: detail.RequestDetail, staff: StaffPrincipal) -> dict[str, Any] | None:
    """Where a second pair of eyes stands on this erasure (PORTAL_ERASURE_APPROVAL=dpo); None when none is needed."""
    if settings.erasure_approval != "dpo" or item.type != "erasure":
        return None
    proposer = item.details.get(approval.PROPOSED_BY)
    return {
        "proposed": isinstance(proposer, int),
        "proposer": item.staff_names.get(proposer) if isinstance(proposer, int) else None,
        "can_approve": isinstance(proposer, int) and staff.role == "dpo" and proposer != staff.id,
    }


async def consent_proof(request: Request) -> Response:
    """The customer's consent proof (Art. 7(1)) as CSV: every event with the exact wording shown. DPO only."""
    staff = require_role(request, "dpo")
    reference = _reference(request)
    customer_id = await write(request, detail.open_consent_proof, reference=reference, actor=staff.actor)
    return StreamingResponse(
        stream(request, consent_proof_csv, customer_id=customer_id),
        media_type="text/csv; charset=utf-8",
        headers={"content-disposition": f'attachment; filename="consent-proof-{reference}.csv"'},
    )


# --- DPO: reports and the audit trail -----------------------------------------------------------------------------


async def _report(request: Request) -> tuple[reports.Report, dict[str, str]]:
    require_role(request, "dpo")
    state = portal_of(request)
    (first, last), errors = reports.parse_period(
        request.query_params, now=state.clock(), timezone=state.settings.timezone
    )
    return await read(request, reports.build_report, first_month=first, last_month=last), errors


async def reports_page(request: Request) -> Response:
    report, errors = await _report(request)
    purposes = portal_of(request).register.by_code
    # The charts are drawn from the report just read: no query of their own.
    charts = dashboard(
        report,
        type_labels=staff_labels()["types"],
        purpose_titles={code: str(purpose.title) for code, purpose in purposes.items()},
    )
    return render(
        request,
        "staff/reports.html",
        {"report": report, "errors": errors, "query": request.url.query, "charts": charts, "purposes": purposes},
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
    page = await read(request, audit_trail.audit_page, filters=filters, after=request.query_params.get("after"))
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
    await write(request, audit_trail.record_export, filters=filters, actor=staff.actor)
    return StreamingResponse(
        stream(request, audit_trail.audit_csv_lines, filters=filters, timezone=portal_of(request).settings.timezone),
        media_type="text/csv; charset=utf-8",
        headers={"content-disposition": 'attachment; filename="audit-trail.csv"'},
    )


routes = [
    Route("/staff", home, methods=["GET"], name="staff_home"),
    Route("/staff/requests", request_queue, methods=["GET"], name="staff_requests"),
    Route("/staff/requests/{reference}", request_page, methods=["GET"], name="staff_request"),
    Route("/staff/requests/{reference}/erasure", erasure_preview, methods=["GET"]),
    Route("/staff/requests/{reference}/consent-proof.csv", consent_proof, methods=["GET"]),
    # assign, start, note, message, question, extend, complete, reject, rectify, erase, restrict, lift-restriction,
    # objection, download-link: see actions.ACTIONS
    Route("/staff/requests/{reference}/{action}", act, methods=["POST"], name="staff_request_action"),
    Route("/staff/reports", reports_page, methods=["GET"], name="staff_reports"),
    Route("/staff/reports.csv", reports_csv, methods=["GET"]),
    Route("/staff/audit", audit_page, methods=["GET"], name="staff_audit"),
    Route("/staff/audit.csv", audit_csv, methods=["GET"]),
]
