"""The customer's consent pages: /me/consents (give or withdraw per purpose, withdraw everything, the history),
/me/processing (the purpose register told to this customer) and /privacy (the public privacy policy).

Every button is a plain form POST answered by a redirect back to the purpose, so the page works without
JavaScript; htmx only swaps the purpose's row in place (`customer/_consent_row.html`, the same markup the page
includes).

/me/processing answers Art. 15(1)(a)–(h). EDPB Guidelines 01/2022: the answer to an access request is tailored to the
person, not the privacy policy alone, so each consent-based purpose says where this customer's consent stands.
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from portal.consent import ledger
from portal.i18n import get_locale
from portal.identity.guards import customer_id_of, origin_of
from portal.retention.customer import processing_for
from portal.web.render import is_htmx, redirect, render
from portal.web.state import portal_of, read, write

ACTIONS = {"grant": True, "withdraw": False}
VARY = {"vary": "HX-Request"}


def _count(raw: str | None) -> int | None:
    return int(raw) if raw is not None and raw.isdigit() and len(raw) < 10 else None


def _history_link_rejected(request: Request) -> Response:
    return render(request, "errors/history_link_rejected.html", {"status_code": 400}, status_code=400, headers=VARY)


async def consents(request: Request) -> Response:
    codes = [purpose.code for purpose in portal_of(request).register.consent_based()]
    customer_id = customer_id_of(request)
    values = request.query_params.getlist("after")
    try:
        if len(values) > 1:
            raise ledger.InvalidHistoryCursor("after")
        after = ledger.parse_history_cursor(values[0]) if values and values[0] else None
        if after is not None and is_htmx(request):
            # "Show older choices" with htmx: only the next entries, in place of the link.
            history = await read(request, ledger.history_page, customer_id=customer_id, after=after)
            return render(request, "customer/_consent_history_rows.html", {"history": history}, headers=VARY)
        page = await read(request, ledger.consents_page, customer_id=customer_id, purposes=codes, after=after)
    except ledger.InvalidHistoryCursor:
        return _history_link_rejected(request)
    return render(
        request,
        "customer/consents.html",
        {
            "consents": page.consents,
            "history": page.history,
            "held_views": page.held_views,
            "restricted_at": page.restricted_at,
            "deleted_views": _count(request.query_params.get("deleted")),
            "withdrawn_all": _count(request.query_params.get("withdrawn")),
            "announce": None,
        },
        headers=VARY,
    )


def _refused(request: Request) -> Response:
    return render(request, "errors/consent_refused.html", {"status_code": 400}, status_code=400, headers=VARY)


def _row(
    request: Request, purpose_code: str, consent: ledger.ConsentState, held_views: int, **extra: object
) -> Response:
    """Only the purpose's row, for htmx, with a message for the page's live region (and, out of band, the history's
    new entry when there is one: never the whole history)."""
    context = {
        "purpose": portal_of(request).register.by_code[purpose_code],
        "consent": consent,
        "held_views": held_views,
        "deleted_views": None,
        "newest": None,
        **extra,
    }
    return render(request, "customer/_consent_row.html", context, headers=VARY)


async def consents_submit(request: Request) -> Response:
    customer_id = customer_id_of(request)
    origin = origin_of(request)
    form = await request.form()
    action = str(form.get("action", ""))[:32]
    purpose = str(form.get("purpose", ""))[:64]
    common = {
        "register": portal_of(request).register,
        "customer_id": customer_id,
        "channel": origin.channel,
        "actor": origin.actor,
        "locale": get_locale(),
    }
    if action == "withdraw_all_marketing":
        withdrawn = await write(request, ledger.withdraw_all_marketing, **common)
        response = redirect(request, f"/me/consents?withdrawn={len(withdrawn)}#withdraw-all")
        response.headers.update(VARY)
        return response
    if action not in ACTIONS:
        return _refused(request)
    try:
        if is_htmx(request):
            change = await write(request, ledger.change_consent, purpose=purpose, granted=ACTIONS[action], **common)
            return _row(
                request,
                purpose,
                change.consent,
                change.held_views,
                announce=action,
                newest=change.newest,
                first_entry=change.first_entry,
            )
        await write(request, ledger.record_consent, purpose=purpose, granted=ACTIONS[action], **common)
    except ledger.ConsentRefused:
        return _refused(request)
    response = redirect(request, f"/me/consents#purpose-{purpose}")
    response.headers.update(VARY)
    return response


async def browsing_history_delete(request: Request) -> Response:
    customer_id = customer_id_of(request)
    origin = origin_of(request)
    deleted = await write(
        request, ledger.delete_browsing_history, customer_id=customer_id, actor=origin.actor, channel=origin.channel
    )
    if is_htmx(request):
        # Deleting page views changes no consent: the row is redrawn, the history stays as it is.
        states = await read(
            request, ledger.current_consents, customer_id=customer_id, purposes=[ledger.BROWSING_PURPOSE]
        )
        consent = states[ledger.BROWSING_PURPOSE]
        return _row(request, ledger.BROWSING_PURPOSE, consent, 0, deleted_views=deleted, announce="deleted")
    response = redirect(request, f"/me/consents?deleted={deleted}#purpose-{ledger.BROWSING_PURPOSE}")
    response.headers.update(VARY)
    return response


# --- What we do with your data, and the privacy policy ---------------------------------------------------------

# Legal bases are named by `legal_basis_label`, a template global (portal/labels.py), as in the archive.

# Purposes whose data has its own page in the portal.
DATA_PAGES = {ledger.BROWSING_PURPOSE: "/me/browsing"}


async def processing(request: Request) -> Response:
    consents, deletions = await read(
        request, processing_for, customer_id=customer_id_of(request), register=portal_of(request).register
    )
    return render(
        request,
        "customer/processing.html",
        {
            "consents": consents,
            "no_consent": ledger.ConsentState(),
            "data_pages": DATA_PAGES,
            "deletions": deletions,
        },
    )


async def privacy_policy(request: Request) -> Response:
    """The public privacy policy, generated from the same register (no sign-in: it is linked from every page)."""
    return render(
        request,
        "customer/privacy_policy.html",
        {
            "consents": None,
            "no_consent": ledger.ConsentState(),
            "data_pages": {},
            "deletions": {},
        },
    )


routes = [
    Route("/me/consents", consents, methods=["GET"], name="consents"),
    Route("/me/consents", consents_submit, methods=["POST"]),
    Route("/me/consents/browsing-history/delete", browsing_history_delete, methods=["POST"], name="browsing_delete"),
    Route("/me/processing", processing, methods=["GET"], name="processing"),
    Route("/privacy", privacy_policy, methods=["GET"], name="privacy_policy"),
]
