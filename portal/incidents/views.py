"""Breach records and notices (/staff/incidents…, DPO only): record, notify the CNIL, select, write, preview, send.

And the customer's side, one page: the history of the notices they were sent (/me/notices).
"""

from __future__ import annotations

from typing import Any

from starlette.datastructures import UploadFile
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from portal.i18n import get_locale, gettext, lazy_gettext
from portal.identity.guards import StaffPrincipal, customer_id_of, require_role
from portal.incidents import customer_list, forms, notices, selection, service
from portal.web.render import posted_fields, redirect, render
from portal.web.state import portal_of, read, write

FORM_LIMIT = 1_000_000  # the pasted list of customers; the services apply the real limits
DONE_MESSAGES = {
    "cnil": lazy_gettext("The notification to the CNIL is recorded."),
    "notice": lazy_gettext("The notice is saved."),
}


async def _form(request: Request) -> dict[str, str]:
    return posted_fields(await request.form(), limit=FORM_LIMIT)


def _dpo(request: Request) -> StaffPrincipal:
    return require_role(request, "dpo")


async def incidents_page(
    request: Request, *, form: dict[str, str] | None = None, errors: dict[str, str] | None = None
) -> Response:
    _dpo(request)
    state = portal_of(request)
    incidents = await read(request, service.list_incidents)
    return render(
        request,
        "staff/incidents.html",
        {
            "incidents": incidents,
            "now": state.clock(),
            "categories": state.register.data_categories,
            "form": form or {},
            "errors": errors or {},
        },
        status_code=400 if errors else 200,
    )


async def record_incident(request: Request) -> Response:
    staff = _dpo(request)
    state = portal_of(request)
    form = await _form(request)
    facts, errors = forms.parse_incident(
        form, list(state.register.data_categories), now=state.clock(), timezone=state.settings.timezone
    )
    if facts is None:
        return await incidents_page(request, form=form, errors=errors)
    reference = await write(request, service.record_incident, facts=facts, actor=staff.actor)
    return redirect(request, f"/staff/incidents/{reference}")


async def incident_page(
    request: Request,
    *,
    status_code: int = 200,
    error: str | None = None,
    selected: selection.Selected | None = None,
    notice_form: dict[str, str] | None = None,
    notice_errors: dict[str, str] | None = None,
    sent: int | None = None,
) -> Response:
    _dpo(request)
    state = portal_of(request)
    item = await read(request, service.view_incident, reference=request.path_params["reference"])
    notice = item.incident.notice or {}
    done = request.query_params.get("done")
    context: dict[str, Any] = {
        "item": item,
        "now": state.clock(),
        "categories": state.register.data_categories,
        "selectable": selection.SELECTABLE_CATEGORIES,
        "notice_parts": forms.NOTICE_PARTS,
        "notice_form": notice_form
        or {f"{lang}_{part}": text for lang, parts in notice.items() for part, text in parts.items()},
        "notice_errors": notice_errors or {},
        "error": error,
        "selected": selected,
        "sent": sent,
        "done": gettext(DONE_MESSAGES[done]) if done in DONE_MESSAGES else None,
    }
    return render(request, "staff/incident.html", context, status_code=status_code)


async def record_cnil(request: Request) -> Response:
    staff = _dpo(request)
    state = portal_of(request)
    form = await _form(request)
    notified_at = forms.parse_local_datetime(form.get("cnil_notified_at", ""), timezone=state.settings.timezone)
    cnil_reference = " ".join(form.get("cnil_reference", "").split())
    if notified_at is None or not cnil_reference:
        message = gettext("Give when the CNIL was notified and the reference it gave.")
        return await incident_page(request, status_code=400, error=message)
    reference = request.path_params["reference"]
    await write(request, service.record_cnil_notification, reference=reference, notified_at=notified_at,
                cnil_reference=cnil_reference, actor=staff.actor)  # fmt: skip
    return redirect(request, f"/staff/incidents/{reference}?done=cnil")


async def select_customers(request: Request) -> Response:
    staff = _dpo(request)
    form = await _form(request)
    reference = request.path_params["reference"]
    method = form.get("method")
    try:
        if method == "store":
            first, last = forms.parse_day(form.get("first_day", "")), forms.parse_day(form.get("last_day", ""))
            if first is None or last is None:
                raise selection.SelectionRefused(lazy_gettext("Give the first and last days of the purchases."))
            result = await write(request, selection.select_by_store, reference=reference,
                                 store_code=form.get("store_code", ""), first_day=first, last_day=last,
                                 actor=staff.actor)  # fmt: skip
        elif method == "category":
            result = await write(request, selection.select_by_category, reference=reference,
                                 category=form.get("category", ""), actor=staff.actor)  # fmt: skip
        elif method == "list":
            result = await write(request, selection.select_from_list, reference=reference,
                                 text=form.get("customers", ""), actor=staff.actor)  # fmt: skip
        else:
            raise selection.SelectionRefused(lazy_gettext("Choose how to select the customers."))
    except selection.SelectionRefused as refused:
        return await incident_page(request, status_code=refused.status, error=refused.translated())
    return await incident_page(request, selected=result)


async def select_from_file(request: Request) -> Response:
    """The list of customers as an uploaded file (multipart): the file is read here, whole but bounded, and parsed
    by the service; a body announced larger than any acceptable file is refused before it is read."""
    staff = _dpo(request)
    limit = customer_list.UPLOAD_BYTES + 64 * 1024  # the file and the form around it
    announced = request.headers.get("content-length", "")
    try:
        if announced.isdigit() and int(announced) > limit:
            raise selection.SelectionRefused(
                lazy_gettext("The file is larger than 5 MB: send it in several parts."), status=413
            )
        async with request.form(max_files=1, max_fields=8) as form:  # closes the spooled file on the way out
            upload, column = form.get("customers_file"), form.get("column")
            if not isinstance(upload, UploadFile) or not upload.filename:
                raise selection.SelectionRefused(lazy_gettext("Choose the file that lists the customers."))
            data = await upload.read(customer_list.UPLOAD_BYTES + 1)
        result = await write(request, customer_list.select_from_file, reference=request.path_params["reference"],
                             data=data, column=column if isinstance(column, str) else "",
                             actor=staff.actor)  # fmt: skip
    except selection.SelectionRefused as refused:
        return await incident_page(request, status_code=refused.status, error=refused.translated())
    return await incident_page(request, selected=result)


async def save_notice(request: Request) -> Response:
    staff = _dpo(request)
    form = await _form(request)
    notice, errors = forms.parse_notice(form)
    if errors:
        return await incident_page(request, status_code=400, notice_form=form, notice_errors=errors)
    reference = request.path_params["reference"]
    await write(request, service.save_notice, reference=reference, notice=notice, actor=staff.actor)
    return redirect(request, f"/staff/incidents/{reference}?done=notice")


async def preview(request: Request) -> Response:
    _dpo(request)
    state = portal_of(request)
    reference = request.path_params["reference"]
    try:
        email = await read(request, notices.preview_notice, reference=reference,
                           customer=request.query_params.get("customer", ""), composer=state.composer)  # fmt: skip
    except selection.SelectionRefused as refused:
        return await incident_page(request, status_code=refused.status, error=refused.translated())
    return render(request, "staff/incident_preview.html", {"email": email, "reference": reference})


async def send(request: Request) -> Response:
    staff = _dpo(request)
    state = portal_of(request)
    try:
        sent = await write(request, notices.send_notices, reference=request.path_params["reference"],
                           composer=state.composer, actor=staff.actor)  # fmt: skip
    except selection.SelectionRefused as refused:
        return await incident_page(request, status_code=refused.status, error=refused.translated())
    return await incident_page(request, sent=sent)


async def export_csv(request: Request) -> Response:
    staff = _dpo(request)
    reference = request.path_params["reference"]
    lines = await write(request, service.incident_csv, reference=reference, actor=staff.actor)
    return Response(
        "".join(lines),
        media_type="text/csv; charset=utf-8",
        headers={"content-disposition": f'attachment; filename="incident-{reference}.csv"'},
    )


async def customer_notices(request: Request) -> Response:
    history = await read(request, notices.notice_history, customer_id=customer_id_of(request), language=get_locale())
    return render(request, "customer/notices.html", {"notices": history})


routes = [
    Route("/me/notices", customer_notices, methods=["GET"], name="customer_notices"),
    Route("/staff/incidents", incidents_page, methods=["GET"], name="staff_incidents"),
    Route("/staff/incidents", record_incident, methods=["POST"]),
    Route("/staff/incidents/{reference}", incident_page, methods=["GET"]),
    Route("/staff/incidents/{reference}/cnil", record_cnil, methods=["POST"]),
    Route("/staff/incidents/{reference}/select", select_customers, methods=["POST"]),
    Route("/staff/incidents/{reference}/select-file", select_from_file, methods=["POST"]),
    Route("/staff/incidents/{reference}/notice", save_notice, methods=["POST"]),
    Route("/staff/incidents/{reference}/preview", preview, methods=["GET"]),
    Route("/staff/incidents/{reference}/send", send, methods=["POST"]),
    Route("/staff/incidents/{reference}/export.csv", export_csv, methods=["GET"]),
]
