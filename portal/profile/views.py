"""Profile page and rectification: direct edits, email change with confirmation, correction requests."""

from __future__ import annotations

import secrets
import unicodedata
from functools import cache, lru_cache

from babel import Locale
from markupsafe import Markup
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from portal.i18n import get_locale
from portal.identity.guards import customer_id_of, origin_of
from portal.profile import service as rectification
from portal.profile.forms import COUNTRIES, EDITABLE_FIELDS, MESSAGES, display_phone
from portal.requests.refusals import REFUSALS, refusal_response
from portal.web.render import posted_fields, redirect, render
from portal.web.state import portal_of, read, write

# Changed field names come back in the URL after a save (never their values: URLs end up in logs and history).
KNOWN_FIELDS = frozenset((*EDITABLE_FIELDS, "email"))


@lru_cache(maxsize=1024)
def _country_options(locale: str, selected: str) -> Markup:
    """The country <option>s, rendered once per language and choice: some 250 options per page view cost more than
    the rest of the page (bench/README.md)."""
    return Markup("").join(
        Markup('<option value="{}"{}>{}</option>').format(code, Markup(" selected") if code == selected else "", name)
        for code, name in _countries_in(locale)
    )


@cache
def _countries_in(locale: str) -> list[tuple[str, str]]:
    """(code, name) of every country, sorted by its name in `locale` (for the address form)."""
    names = Locale.parse({"fr": "fr_FR", "en": "en_GB"}[locale]).territories
    return sorted(((code, names.get(code, code)) for code in COUNTRIES), key=lambda item: _sort_key(item[1]))


FORM_LIMIT = 4000  # characters kept of any posted field: far above every field's own limit


def _sort_key(name: str) -> str:
    # "Émirats arabes unis" belongs with the E's, not after "Zimbabwe".
    return "".join(ch for ch in unicodedata.normalize("NFKD", name) if not unicodedata.combining(ch)).casefold()


async def _profile_page(
    request: Request,
    *,
    errors: dict[str, str] | None = None,
    values: dict | None = None,
    status_code: int = 200,
    email_errors: dict[str, str] | None = None,
    email_value: str = "",
    headers: dict[str, str] | None = None,
) -> Response:
    state = portal_of(request)
    shown = await read(request, rectification.profile_of, customer_id=customer_id_of(request))
    customer = shown.customer
    changed = [f for f in request.query_params.get("changed", "").split(",") if f in KNOWN_FIELDS]
    form = values if values is not None else {field: getattr(customer, field) or "" for field in KNOWN_FIELDS}
    if values is None:
        form["phone"] = display_phone(customer.phone)
    return render(
        request,
        "customer/profile.html",
        {
            "customer": customer,
            "changed_at": shown.last_changed,
            "history": shown.history,
            "changed": changed,
            "email_requested": request.query_params.get("email") == "sent",
            "form": form,
            "errors": errors or {},
            "email_errors": email_errors or {},
            "email_value": email_value,
            "messages": MESSAGES,
            "country_options": _country_options(get_locale(), str(form.get("country") or "FR")),
            "locked_fields": state.retailer.locked_fields,
            "display_phone": display_phone,
        },
        status_code=status_code,
        headers=headers,
    )


async def profile(request: Request) -> Response:
    return await _profile_page(request)


async def profile_submit(request: Request) -> Response:
    customer_id = customer_id_of(request)
    # Cut far above any field's limit: what was typed comes back whole with its message, never silently shortened.
    form = posted_fields(await request.form(), limit=FORM_LIMIT)
    try:
        changed = await write(
            request,
            rectification.rectify_profile,
            customer_id=customer_id,
            form=form,
            locked_fields=portal_of(request).retailer.locked_fields,
            actor=origin_of(request).actor,
            channel=origin_of(request).channel,
        )
    except rectification.ProfileInvalid as exc:
        # Shown back as typed; a field the post left out (a hand-made request) comes back empty, not as a crash.
        shown = {field: form.get(field, "") for field in KNOWN_FIELDS}
        return await _profile_page(request, errors=exc.errors, values=shown, status_code=400)
    return redirect(request, f"/me/profile?changed={','.join(changed) or 'none'}#saved")


async def email_submit(request: Request) -> Response:
    customer_id = customer_id_of(request)
    new_email = str((await request.form()).get("email", ""))[:320]
    state = portal_of(request)
    try:
        await write(
            request,
            rectification.request_email_change,
            settings=state.settings,
            composer=state.composer,
            customer_id=customer_id,
            new_email=new_email,
            language=get_locale(),
        )
    except rectification.ProfileInvalid as exc:
        return await _profile_page(request, email_errors=exc.errors, email_value=new_email, status_code=400)
    except rectification.EmailChangeLimited as exc:
        seconds = int(exc.retry_after.total_seconds()) + 1
        return await _profile_page(
            request,
            email_errors={"email": "email_too_many"},
            email_value=new_email,
            status_code=429,
            headers={"retry-after": str(seconds)},
        )
    return redirect(request, "/me/profile?email=sent#change-email")


def _email_rejected(request: Request, exc: rectification.EmailChangeRejected) -> Response:
    status = 400 if exc.reason == "invalid" else 409 if exc.reason == "taken" else 410
    return render(
        request, "customer/email_confirm.html", {"reason": exc.reason, "token": "", "new_email": ""}, status_code=status
    )


async def email_confirm(request: Request) -> Response:
    token = request.query_params.get("token", "")[:200]
    try:
        new_email = await read(
            request, rectification.check_email_change, settings=portal_of(request).settings, token=token
        )
    except rectification.EmailChangeRejected as exc:
        return _email_rejected(request, exc)
    return render(request, "customer/email_confirm.html", {"reason": None, "token": token, "new_email": new_email})


async def email_confirm_submit(request: Request) -> Response:
    token = str((await request.form()).get("token", ""))[:200]
    state = portal_of(request)
    try:
        await write(
            request,
            rectification.confirm_email_change,
            settings=state.settings,
            composer=state.composer,
            token=token,
            language=get_locale(),
        )
    except rectification.EmailChangeRejected as exc:
        return _email_rejected(request, exc)
    return render(request, "customer/email_confirm.html", {"reason": "done", "token": "", "new_email": ""})


def _correctable(request: Request) -> str:
    field = request.path_params["field"]
    if field not in rectification.CORRECTABLE_FIELDS:
        raise HTTPException(404)
    return field


async def correction_form(request: Request) -> Response:
    customer_id_of(request)
    field = _correctable(request)
    return render(
        request,
        "customer/correction.html",
        {
            "field": field,
            "values": {"submission_key": secrets.token_urlsafe(16)},
            "errors": {},
            "messages": MESSAGES,
        },
    )


def _origin(request: Request) -> dict[str, object]:
    origin = origin_of(request)
    return {"channel": origin.channel, "actor": origin.actor, "store_id": origin.store_id}


async def correction_submit(request: Request) -> Response:
    customer_id = customer_id_of(request)
    field = _correctable(request)
    form = posted_fields(await request.form(), limit=2000)
    form["field"] = field
    try:
        filed = await write(
            request,
            rectification.request_correction,
            composer=portal_of(request).composer,
            customer_id=customer_id,
            form=form,
            language=get_locale(),
            **_origin(request),
        )
    except rectification.ProfileInvalid as exc:
        return render(
            request,
            "customer/correction.html",
            {"field": field, "values": form, "errors": exc.errors, "messages": MESSAGES},
            status_code=400,
        )
    except REFUSALS as exc:
        return refusal_response(request, exc)
    return redirect(request, f"/me/requests/{filed.reference}?filed=1")


routes = [
    Route("/me/profile", profile, methods=["GET"], name="profile"),
    Route("/me/profile", profile_submit, methods=["POST"]),
    Route("/me/profile/email", email_submit, methods=["POST"], name="email_change"),
    Route("/me/email/confirm", email_confirm, methods=["GET"], name="email_confirm"),
    Route("/me/email/confirm", email_confirm_submit, methods=["POST"]),
    Route("/me/profile/correction/{field}", correction_form, methods=["GET"], name="correction"),
    Route("/me/profile/correction/{field}", correction_submit, methods=["POST"]),
]
