"""Store tablet mode: what a store account reaches on the shop's shared tablet.

The assisted session is a customer session of kind `tablet` (its own cookie, the customer's), so the customer pages
under /me serve it as they are, laid out for touch; `/me/finish` ends it from any of them. The staff member's own
session (the staff cookie) stays, and the tablet home is theirs.
"""

from __future__ import annotations

from itsdangerous import BadSignature, SignatureExpired, TimestampSigner
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from portal.i18n import get_locale, lazy_gettext
from portal.identity import service as signin
from portal.identity.guards import TABLET_COOKIE, StaffPrincipal, customer_id_of, origin_of, require_role
from portal.identity.sessions import end_session
from portal.portability.service import DownloadLinkRefused
from portal.store import service
from portal.web.middleware import cookie_names
from portal.web.render import client_ip, redirect, render
from portal.web.state import portal_of, read, write

HOME = "/staff/tablet"
FLOW_COOKIE = "portal_tablet_flow"

ON_BEHALF_MESSAGES = {
    "type_missing": lazy_gettext("Choose what the customer asks for."),
    "name_missing": lazy_gettext("Type the customer's name as it appears on the document."),
    "document_missing": lazy_gettext("Choose the kind of document you checked."),
    "identity_not_checked": lazy_gettext("Confirm that you checked the document in person."),
    "answer_by_missing": lazy_gettext("Choose how the customer wants the answer."),
    "contact_missing": lazy_gettext("The customer types the postal address or phone number for the answer."),
    "description_missing": lazy_gettext("Say in a few words what the customer asks for."),
}


def _store_account(request: Request) -> StaffPrincipal:
    staff = require_role(request, "store")
    if staff.store_id is None:  # a DPO, or a store account whose store was removed: no till to run
        raise HTTPException(403)
    return staff


def _flow_signer(request: Request) -> TimestampSigner:
    return TimestampSigner(portal_of(request).settings.secret_key, salt="portal.tablet-flow")


def _flow_id(request: Request) -> str | None:
    cookie = request.cookies.get(FLOW_COOKIE)
    if not cookie:
        return None
    try:
        max_age = int(portal_of(request).settings.login_ttl.total_seconds())
        return _flow_signer(request).unsign(cookie, max_age=max_age).decode()
    except (BadSignature, SignatureExpired):
        return None


def _cookie(request: Request, response: Response, name: str, value: str, *, max_age: int | None = None) -> None:
    response.set_cookie(
        name, value, max_age=max_age, path="/", httponly=True, samesite="lax", secure=portal_of(request).settings.https
    )


def _live_assisted_session(request: Request) -> bool:
    session = request.scope["state"].get("session")
    return session is not None and session.kind == "tablet"


# --- Home --------------------------------------------------------------------------------------------------------


async def home(request: Request) -> Response:
    staff = _store_account(request)
    store = await read(request, service.store_named, store_id=staff.store_id)
    notice = (
        request.query_params.get("ended") == "1" and "ended" or (request.query_params.get("finished") and "finished")
    )
    response = render(
        request,
        "store/home.html",
        {"store": store, "notice": notice or None, "customer_open": _live_assisted_session(request)},
    )
    # A session that timed out leaves its cookie behind: forget it, nothing of it is shown any more.
    if not _live_assisted_session(request):
        response.delete_cookie(cookie_names(portal_of(request).settings)[0], path="/")
    return response


# --- Help a customer: email, then code ---------------------------------------------------------------------------


async def customer_form(request: Request) -> Response:
    _store_account(request)
    return render(request, "store/customer_email.html", {"email": "", "error": None})


async def customer_submit(request: Request) -> Response:
    _store_account(request)
    form = await request.form()
    email = str(form.get("email", ""))[:320]
    state = portal_of(request)
    try:
        flow_id = await write(
            request,
            service.request_code,
            keep_on=(signin.SignInError,),
            settings=state.settings,
            composer=state.composer,
            email=email,
            language=get_locale(),
            ip=client_ip(request),
        )
    except signin.InvalidEmail:
        return render(request, "store/customer_email.html", {"email": email, "error": "invalid_email"}, status_code=400)
    except signin.TooManyAttempts:
        return render(request, "store/customer_email.html", {"email": "", "error": "too_many"}, status_code=429)
    response = redirect(request, f"{HOME}/code")
    max_age = int(state.settings.login_ttl.total_seconds())
    _cookie(request, response, FLOW_COOKIE, _flow_signer(request).sign(flow_id).decode(), max_age=max_age)
    return response


async def code_form(request: Request) -> Response:
    _store_account(request)
    if _flow_id(request) is None:  # no code sent yet (or long ago): the address comes first
        return render(request, "store/customer_email.html", {"email": "", "error": None})
    return render(request, "store/customer_code.html", {"error": None, "remaining": None})


async def code_submit(request: Request) -> Response:
    staff = _store_account(request)
    assert staff.store_id is not None
    form = await request.form()
    flow_id = _flow_id(request)
    if flow_id is None:
        return render(request, "store/customer_email.html", {"email": "", "error": "flow_expired"}, status_code=400)
    state = portal_of(request)
    try:
        signed_in = await write(
            request,
            service.open_assisted_session,
            keep_on=(signin.SignInError,),
            settings=state.settings,
            flow_id=flow_id,
            code=str(form.get("code", ""))[:32],
            ip=client_ip(request),
            staff_id=staff.id,
            store_id=staff.store_id,
        )
    except signin.CodeRejected as exc:
        if exc.reason == "wrong":
            context = {"error": "wrong_code", "remaining": exc.remaining}
            return render(request, "store/customer_code.html", context, status_code=400)
        return render(
            request, "store/customer_email.html", {"email": "", "error": f"code_{exc.reason}"}, status_code=400
        )
    except signin.TooManyAttempts:
        return render(request, "store/customer_email.html", {"email": "", "error": "too_many"}, status_code=429)
    previous = request.scope["state"].get("session_raw_id")
    if previous:  # whatever customer session this browser still had ends first
        await write(request, end_session, settings=state.settings, raw_id=previous)
    response = redirect(request, "/me")
    session_cookie = cookie_names(state.settings)[0]
    _cookie(request, response, session_cookie, state.session_signer.sign(signed_in.session_id).decode())
    _cookie(request, response, TABLET_COOKIE, "1")
    response.delete_cookie(FLOW_COOKIE, path="/")
    return response


# --- In the assisted session (customer pages) --------------------------------------------------------------------


async def finish(request: Request) -> Response:
    """Finish: the customer's session ends at once, and the browser is told to drop what it cached."""
    state = portal_of(request)
    session = request.scope["state"].get("session")
    if session is not None and session.kind != "tablet":
        return redirect(request, "/me")  # self-service signs out with its own button
    raw_id = request.scope["state"].get("session_raw_id")
    if raw_id:
        await write(request, service.finish_assisted_session, settings=state.settings, raw_id=raw_id)
    response = redirect(request, f"{HOME}?finished=1")
    response.delete_cookie(cookie_names(state.settings)[0], path="/")
    response.headers["clear-site-data"] = '"cache"'
    return response


async def keep_alive(request: Request) -> Response:
    """The countdown's Continue: any request moves the idle clock on; without JavaScript, back to the overview."""
    customer_id_of(request)
    if request.headers.get("hx-request") == "true":
        return Response(status_code=204)
    return redirect(request, "/me")


async def email_archive(request: Request) -> Response:
    customer_id = customer_id_of(request)
    origin = origin_of(request)
    if origin.staff_id is None or origin.store_id is None:
        raise HTTPException(403)  # self-service downloads the archive itself
    state = portal_of(request)
    try:
        filed = await write(
            request,
            service.email_archive,
            customer_id=customer_id,
            staff_id=origin.staff_id,
            store_id=origin.store_id,
            composer=state.composer,
            settings=state.settings,
        )
    except DownloadLinkRefused:
        return render(request, "store/archive_emailed.html", {"reference": None}, status_code=409)
    return render(request, "store/archive_emailed.html", {"reference": filed.reference})


# --- On the customer's behalf ------------------------------------------------------------------------------------


def _on_behalf_page(
    request: Request, values: dict[str, str], errors: dict[str, str], status_code: int = 200
) -> Response:
    return render(
        request,
        "store/on_behalf.html",
        {
            "values": values,
            "errors": errors,
            "messages": ON_BEHALF_MESSAGES,
            "types": service.ON_BEHALF_TYPES,
            "document_kinds": service.DOCUMENT_KINDS,
        },
        status_code=status_code,
    )


async def on_behalf_form(request: Request) -> Response:
    _store_account(request)
    return _on_behalf_page(request, {}, {})


async def on_behalf_submit(request: Request) -> Response:
    staff = _store_account(request)
    form = {key: str(value)[:4000] for key, value in (await request.form()).items() if key != "csrf_token"}
    try:
        filed = await write(request, service.file_on_behalf, staff_id=staff.id, store_id=staff.store_id, form=form)
    except service.OnBehalfInvalid as exc:
        return _on_behalf_page(request, exc.values, exc.errors, status_code=400)
    return render(request, "store/on_behalf_filed.html", {"filed": filed}, status_code=201)


# --- The store's day ---------------------------------------------------------------------------------------------


async def log(request: Request) -> Response:
    staff = _store_account(request)
    state = portal_of(request)
    store = await read(request, service.store_named, store_id=staff.store_id)
    entries = await read(request, service.todays_log, store_id=store.id, timezone=state.settings.timezone)
    return render(request, "store/log.html", {"store": store, "entries": entries})


routes = [
    Route(HOME, home, methods=["GET"], name="staff_tablet"),
    Route(f"{HOME}/customer", customer_form, methods=["GET"], name="tablet_customer"),
    Route(f"{HOME}/customer", customer_submit, methods=["POST"]),
    Route(f"{HOME}/code", code_form, methods=["GET"], name="tablet_code"),
    Route(f"{HOME}/code", code_submit, methods=["POST"]),
    Route(f"{HOME}/on-behalf", on_behalf_form, methods=["GET"], name="tablet_on_behalf"),
    Route(f"{HOME}/on-behalf", on_behalf_submit, methods=["POST"]),
    Route(f"{HOME}/log", log, methods=["GET"], name="tablet_log"),
    Route("/me/finish", finish, methods=["POST"], name="tablet_finish"),
    Route("/me/continue", keep_alive, methods=["POST"], name="tablet_continue"),
    Route("/me/archive-email", email_archive, methods=["POST"], name="tablet_archive_email"),
]
