"""The "what we do with your data" page: the purpose register told to one customer (Art. 15(1)(a)–(h)).

EDPB Guidelines 01/2022: the answer to an access request is tailored to the person, not the privacy policy alone,
so each consent-based purpose says where this customer's consent stands.
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from portal.consent import ledger
from portal.db import run_db
from portal.i18n import gettext, lazy_gettext
from portal.mydata.views import customer_id_of
from portal.web import render

LEGAL_BASIS_LABELS = {
    "consent": lazy_gettext("Your consent (GDPR article 6(1)(a))"),
    "contract": lazy_gettext("Performing our contract with you (GDPR article 6(1)(b))"),
    "legal_obligation": lazy_gettext("A legal obligation we must meet (GDPR article 6(1)(c))"),
    "legitimate_interest": lazy_gettext("Our legitimate interest (GDPR article 6(1)(f))"),
}
# Purposes whose data has its own page in the portal.
DATA_PAGES = {ledger.BROWSING_PURPOSE: "/me/browsing"}


def legal_basis_label(code: str) -> str:
    return gettext(LEGAL_BASIS_LABELS[code])


async def processing(request: Request) -> Response:
    customer_id = customer_id_of(request)
    state = request.app.state

    def load() -> dict[str, ledger.ConsentState]:
        with state.engine.connect() as connection:
            return ledger.current_consents(connection, customer_id=customer_id)

    consents = await run_db(state.engine, load)
    return render(
        request,
        "customer/processing.html",
        {
            "consents": consents,
            "no_consent": ledger.ConsentState(),
            "legal_basis_label": legal_basis_label,
            "data_pages": DATA_PAGES,
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
            "legal_basis_label": legal_basis_label,
            "data_pages": {},
        },
    )


routes = [
    Route("/me/processing", processing, methods=["GET"], name="processing"),
    Route("/privacy", privacy_policy, methods=["GET"], name="privacy_policy"),
]
