"""The customer's purchases across stores: the filtered list (with its htmx fragments) and each receipt."""

from __future__ import annotations

from urllib.parse import urlencode

from starlette.datastructures import QueryParams
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from portal.i18n import gettext, lazy_gettext
from portal.identity.guards import customer_id_of
from portal.purchases import service as purchases
from portal.purchases.charts import spending_charts
from portal.web.render import render
from portal.web.state import read

QUERY_ERRORS = {
    "store": lazy_gettext("The store chosen is not one where you made purchases."),
    "channel": lazy_gettext("The way of buying chosen is not one we know."),
    "year": lazy_gettext("The year chosen is not a valid year."),
    "after": lazy_gettext("The link to older purchases is not valid."),
}
LIST_URL = "/me/purchases"


def store_label(store: purchases.StoreRef) -> str:
    if store.is_web:
        return gettext("Web shop")
    return f"{store.name} ({store.city})" if store.city and store.city not in store.name else store.name


def list_url(filters: purchases.PurchaseFilters, **extra: str) -> str:
    query = {**filters.as_query(), **extra}
    return f"{LIST_URL}?{urlencode(query)}" if query else LIST_URL


def _one(params: QueryParams, name: str) -> str | None:
    values = params.getlist(name)
    if len(values) > 1:
        raise purchases.InvalidFilter(name)
    return values[0] if values else None


def _bad_query(request: Request, exc: purchases.InvalidQuery) -> Response:
    return render(
        request,
        "customer/purchases.html",
        {"error_message": gettext(QUERY_ERRORS[exc.field])},
        status_code=400,
    )


async def purchase_list(request: Request) -> Response:
    customer_id = customer_id_of(request)
    params = request.query_params
    try:
        filters = purchases.PurchaseFilters.parse(
            store=_one(params, "store"), channel=_one(params, "channel"), year=_one(params, "year")
        )
        after = _one(params, "after") or None
        if after is not None:
            purchases.parse_cursor(after)
    except purchases.InvalidQuery as exc:
        return _bad_query(request, exc)

    try:
        listing = await read(request, purchases.purchase_listing, customer_id=customer_id, filters=filters, after=after)
    except purchases.InvalidQuery as exc:
        return _bad_query(request, exc)
    next_after = listing.page.next_after
    context = {
        "error_message": None,
        "listing": listing,
        "filters": filters,
        "after": after,
        # After "Show", keyboard and screen-reader users land on the results rather than back at the top.
        "focus_results": bool(params) and after is None,
        "older_url": list_url(filters, after=next_after) if next_after else None,
        "newest_url": list_url(filters),
        "channels": purchases.CHANNELS,
        "store_label": store_label,
        # Drawn from the totals already read (no query of its own); htmx fragments never show them.
        "charts": None if after else spending_charts(listing.totals, store_label=store_label),
    }
    # htmx asks for the next rows ("Show older purchases") or for the filtered results ("Show"): same URL, same view.
    return render(request, "customer/purchases.html", context, block="rows" if after else "results")


async def receipt(request: Request) -> Response:
    customer_id = customer_id_of(request)
    data = await read(
        request, purchases.receipt, customer_id=customer_id, purchase_id=request.path_params["purchase_id"]
    )
    return render(
        request,
        "customer/receipt.html",
        {"receipt": data, "store_label": store_label},
    )


routes = [
    Route(LIST_URL, purchase_list, methods=["GET"], name="purchases"),
    Route(LIST_URL + "/{purchase_id:int}", receipt, methods=["GET"], name="receipt"),
]
