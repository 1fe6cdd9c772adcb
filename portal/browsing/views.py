"""The customer's browsing history page: the newest views first, grouped by day, with where their consent stands."""

from __future__ import annotations

import re
from datetime import date

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from portal.browsing import service as browsing
from portal.browsing.charts import views_strip
from portal.identity.guards import customer_id_of
from portal.web.render import is_htmx, render
from portal.web.state import portal_of, read

ISO_DAY = re.compile(r"^\d{4}-\d{2}-\d{2}$")


def parse_before(raw: str | None) -> date | None:
    """The `before` day of the query string; anything but YYYY-MM-DD is a bad request, never a server error."""
    if raw is None:
        return None
    if not ISO_DAY.match(raw):
        raise HTTPException(400)
    try:
        return date.fromisoformat(raw)
    except ValueError as exc:
        raise HTTPException(400) from exc


def parse_after(raw: str | None) -> browsing.ViewCursor | None:
    """The `after` cursor of the query string (a page that continues a day); a malformed one is a bad request."""
    if raw is None:
        return None
    cursor = browsing.ViewCursor.parse(raw)
    if cursor is None:
        raise HTTPException(400)
    return cursor


async def browsing_history(request: Request) -> Response:
    customer_id = customer_id_of(request)
    before = parse_before(request.query_params.get("before"))
    after = parse_after(request.query_params.get("after"))
    page = await read(request, browsing.browsing_page, customer_id=customer_id, before=before, after=after)
    return render(
        request,
        "customer/browsing.html",
        {
            "page": page,
            "purpose": portal_of(request).register.by_code[browsing.BROWSING_PURPOSE],
            "fragment": is_htmx(request),
            # Drawn from the per-day counts the service read for the newest page only.
            "strip": views_strip(page.calendar) if page.calendar else None,
        },
        block="days",
    )


routes = [Route("/me/browsing", browsing_history, methods=["GET"], name="browsing")]
