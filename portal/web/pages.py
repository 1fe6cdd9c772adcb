"""Pages that belong to no capability: landing, language switch, retailer colours, health check."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, RedirectResponse, Response
from starlette.routing import Route

from portal.db import ping
from portal.i18n import SUPPORTED_LOCALES
from portal.web.middleware import LANGUAGE_COOKIE
from portal.web.render import render, safe_next
from portal.web.state import portal_of, read


async def landing(request: Request) -> Response:
    return render(request, "customer/landing.html", {"signed_out": request.query_params.get("signed_out") == "1"})


async def switch_language(request: Request) -> Response:
    """Remember the visitor's explicit choice for a year; it wins over Accept-Language."""
    code = request.path_params["code"]
    if code not in SUPPORTED_LOCALES:
        return PlainTextResponse("Unsupported language / Langue non prise en charge", status_code=404)
    response = RedirectResponse(safe_next(request.query_params.get("next")), status_code=303)
    response.set_cookie(
        LANGUAGE_COOKIE,
        code,
        max_age=365 * 24 * 3600,
        path="/",
        samesite="lax",
        secure=portal_of(request).settings.https,
    )
    return response


async def branding_css(request: Request) -> Response:
    """The retailer's colours as CSS variables (a file, because the CSP forbids inline styles)."""
    retailer = portal_of(request).retailer
    css = f":root {{ --brand: {retailer.primary_colour}; --accent: {retailer.accent_colour}; }}\n"
    return Response(css, media_type="text/css", headers={"cache-control": "public, max-age=3600"})


async def healthz(request: Request) -> Response:
    """For the load balancer: 200 when the database answers, 503 otherwise."""
    try:
        await read(request, ping)
    except Exception:
        return JSONResponse({"status": "unavailable", "database": "down"}, status_code=503)
    return JSONResponse({"status": "ok", "database": "up"})


routes = [
    Route("/", landing, methods=["GET"], name="landing"),
    Route("/lang/{code}", switch_language, methods=["GET"], name="switch_language"),
    Route("/branding.css", branding_css, methods=["GET"], name="branding_css"),
    Route("/healthz", healthz, methods=["GET"], name="healthz"),
]
