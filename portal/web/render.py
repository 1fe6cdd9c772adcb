"""Rendering pages (or their htmx fragment), redirects, and the error pages."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

import jinja2
from jinja2_fragments import render_block
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response

from portal import i18n
from portal.web.state import portal_of

log = logging.getLogger("portal.web.render")


def is_htmx(request: Request) -> bool:
    # History restoration wants the whole page, never a fragment.
    return request.headers.get("hx-request") == "true" and request.headers.get("hx-history-restore-request") != "true"


def page_context(request: Request) -> dict[str, Any]:
    state = request.scope.get("state", {})
    return {
        "request": request,
        "csrf_token": state.get("csrf_token", ""),
        "session": state.get("session"),
        "locale": state.get("locale", i18n.get_locale()),
        # With its query string: switching language on /signin/link?token=… must come back to the same link.
        "current_path": request.scope["path"]
        + (f"?{request.scope['query_string'].decode('latin-1')}" if request.scope.get("query_string") else ""),
    }


def render(
    request: Request,
    template: str,
    context: Mapping[str, Any] | None = None,
    *,
    status_code: int = 200,
    block: str | None = None,
    headers: Mapping[str, str] | None = None,
) -> HTMLResponse:
    """Render `template`; for an htmx request with `block` given, only that block (same template, same URL)."""
    env: jinja2.Environment = portal_of(request).env
    full_context = {**page_context(request), **(context or {})}
    if block and is_htmx(request):
        html = render_block(env, template, block, full_context)
    else:
        html = env.get_template(template).render(full_context)
    response = HTMLResponse(html, status_code=status_code, headers=dict(headers or {}))
    if block:
        response.headers["vary"] = "HX-Request"
    return response


def redirect(request: Request, url: str, *, status_code: int = 303) -> Response:
    """Redirect after a POST; htmx follows HX-Redirect with a full page load instead of swapping a fragment."""
    if is_htmx(request):
        return Response(status_code=204, headers={"hx-redirect": url})
    return RedirectResponse(url, status_code=status_code)


def client_ip(request: Request) -> str:
    """The peer's address, for rate limits (behind a proxy, uvicorn's --proxy-headers puts the client's here)."""
    return request.client.host if request.client else "unknown"


def safe_next(url: str | None, default: str = "/") -> str:
    """A same-site path to go back to; anything else (//evil, http://…) falls back to `default`."""
    if not url or not url.startswith("/") or url.startswith("//") or "\\" in url:
        return default
    return url


ERROR_TEMPLATES = {404: "errors/404.html", 405: "errors/405.html", 403: "errors/403.html"}


def _is_api(request: Request) -> bool:
    return request.scope["path"].startswith("/api/")


async def http_exception(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    if _is_api(request):  # programs get JSON, in the same shape as the API's own errors
        from portal.api.errors import status_response

        return status_response(exc.status_code, headers=exc.headers)
    template = ERROR_TEMPLATES.get(exc.status_code, "errors/generic.html")
    return render(request, template, {"status_code": exc.status_code}, status_code=exc.status_code, headers=exc.headers)


async def server_error(request: Request, exc: Exception) -> Response:
    # The traceback goes to the log with the request id; the customer gets a calm page in their language.
    log.error("unhandled error on %s %s", request.method, request.url.path, exc_info=exc)
    if _is_api(request):
        from portal.api.errors import status_response

        return status_response(500)
    try:
        return render(request, "errors/500.html", {"status_code": 500}, status_code=500)
    except Exception:
        log.exception("the 500 page itself failed")
        return HTMLResponse("<!doctype html><title>Error</title><p>Internal error / Erreur interne</p>", 500)
