"""Rendering pages (or their htmx fragment), redirects, and the small request helpers every view uses."""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping
from typing import Any

import jinja2
from jinja2_fragments import render_block
from starlette.datastructures import FormData
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response
from starlette.routing import Match

from portal import i18n
from portal.web.state import portal_of


def is_htmx(request: Request) -> bool:
    # History restoration wants the whole page, never a fragment.
    return request.headers.get("hx-request") == "true" and request.headers.get("hx-history-restore-request") != "true"


def _page_to_come_back_to(request: Request) -> str:
    """Where the language switcher returns: this page, or after a form's answer (a POST), the nearest page that can
    be opened (GET) at or above its path — never a URL that would answer 405. The form's input is not kept."""
    path = request.scope["path"]
    if request.method in ("GET", "HEAD"):
        query = request.scope.get("query_string", b"").decode("latin-1")
        return path + (f"?{query}" if query else "")
    router = request.scope.get("router") or request.app.router
    while path not in ("", "/"):
        scope = {"type": "http", "path": path, "method": "GET", "root_path": ""}
        if any(route.matches(scope)[0] == Match.FULL for route in router.routes):
            return path
        path = path.rsplit("/", 1)[0]
    return "/"


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
        "switch_path": _page_to_come_back_to(request),
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
    """The peer's address, for rate limits (behind a trusted proxy, uvicorn puts the client's here).

    An IPv6 client counts by its /64, the block one subscriber gets: otherwise one host could draw a new address
    for every request and a new rate-limit row each time.
    """
    host = request.client.host if request.client else "unknown"
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return host
    if address.version == 6 and address.ipv4_mapped is None:
        return str(ipaddress.ip_network(f"{address}/64", strict=False))
    return host


def safe_next(url: str | None, default: str = "/") -> str:
    """A same-site path to go back to; anything else (//evil, http://…) falls back to `default`."""
    if not url or not url.startswith("/") or url.startswith("//") or "\\" in url:
        return default
    return url


def posted_fields(form: FormData, *, limit: int) -> dict[str, str]:
    """A form's fields as text, each cut at `limit` characters (far above any field's own limit, so a service still
    sees and reports "too long"), without the CSRF token, which is the middleware's business."""
    return {name: str(value)[:limit] for name, value in form.items() if name != "csrf_token"}
