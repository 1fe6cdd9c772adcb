"""Strict CORS for the banner's endpoints: only the retailer's configured origins may call them from a page.

Why the endpoints are safe from cross-site request forgery by design, with no token and no cookie:
- they hold no ambient authority: no cookie of the portal is read or set (`credentials: "omit"` on the banner's side,
  `Access-Control-Allow-Credentials` never sent), so a forged request can do nothing a visitor could not do with their
  own random id;
- they accept only `Content-Type: application/json`, which a form or an `<img>` cannot send, and which makes a
  browser ask first (preflight): we answer it only for a configured origin;
- every POST must carry an `Origin` header naming a configured origin (browsers always send it on cross-origin POSTs);
  a request without one, or from elsewhere, is refused with 403 before its body is read.
The loader and the bundle (GET, public code) are open to every site, like any script on a CDN.
"""

from __future__ import annotations

from starlette.datastructures import Headers, MutableHeaders
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from portal.api.errors import ApiProblem, problem_response
from portal.i18n import lazy_gettext

PREFIX = "/consent/v1/"
PREFLIGHT_MAX_AGE = "7200"  # Chromium's ceiling: at most one preflight per endpoint every two hours per visitor
ORIGIN_REFUSED = "origin_not_allowed"
ORIGIN_MESSAGE = lazy_gettext(
    "This website is not one the portal takes consent answers from (PORTAL_BANNER_ORIGINS lists them)."
)


def _origin_refused() -> Response:
    response = problem_response(ApiProblem(403, code=ORIGIN_REFUSED, message=ORIGIN_MESSAGE))
    response.headers["vary"] = "Origin"
    return response


class BannerCorsMiddleware:
    """Preflights and `Access-Control-Allow-Origin` for PREFIX; refuses a POST from an origin not configured."""

    def __init__(self, app: ASGIApp, origins: tuple[str, ...]) -> None:
        self.app = app
        self.origins = frozenset(origins)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not scope["path"].startswith(PREFIX):
            await self.app(scope, receive, send)
            return
        headers = Headers(scope=scope)
        origin = headers.get("origin")
        allowed = origin is not None and origin in self.origins
        method = scope["method"]
        if method == "OPTIONS":
            await self._preflight(headers, origin if allowed else None)(scope, receive, send)
            return
        if method == "POST" and not allowed:
            await _origin_refused()(scope, receive, send)
            return

        async def send_with_cors(message: Message) -> None:
            if message["type"] == "http.response.start":
                response_headers = MutableHeaders(scope=message)
                response_headers.append("vary", "Origin")
                if allowed and origin:
                    response_headers["access-control-allow-origin"] = origin
                # The loader and the bundle are scripts other sites embed (and may require with COEP).
                response_headers["cross-origin-resource-policy"] = "cross-origin"
            await send(message)

        await self.app(scope, receive, send_with_cors)

    def _preflight(self, headers: Headers, origin: str | None) -> Response:
        asked_headers = {h.strip().lower() for h in headers.get("access-control-request-headers", "").split(",")}
        asked_headers.discard("")
        if (
            origin is None
            or headers.get("access-control-request-method") != "POST"
            or not asked_headers <= {"content-type"}
        ):
            return _origin_refused()
        return Response(
            status_code=204,
            headers={
                "access-control-allow-origin": origin,
                "access-control-allow-methods": "POST",
                "access-control-allow-headers": "Content-Type",
                "access-control-max-age": PREFLIGHT_MAX_AGE,
                "vary": "Origin",
            },
        )
