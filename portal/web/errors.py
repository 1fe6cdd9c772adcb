"""The error answers: a calm page in the visitor's language, or JSON under the API's prefix.

The web layer does not know the API: `error_handlers` is given the API's prefix and its JSON error writer by
`portal.app`, which registers what it returns.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import HTMLResponse, Response

from portal.errors import NotFound
from portal.web.render import render

log = logging.getLogger("portal.web")

ERROR_TEMPLATES = {404: "errors/404.html", 405: "errors/405.html", 403: "errors/403.html"}
JsonError = Callable[..., Response]  # (status_code, headers=None) -> the API's JSON error
Handler = Callable[[Request, Exception], Awaitable[Response]]


def error_handlers(*, json_prefix: str | tuple[str, ...], json_error: JsonError) -> dict[Any, Handler]:
    """Starlette exception handlers: HTTP errors, the domain's NotFound (a 404) and unexpected errors (a 500)."""

    def wants_json(request: Request) -> bool:
        return request.scope["path"].startswith(json_prefix)

    def page(request: Request, status: int, headers: Mapping[str, str] | None = None) -> Response:
        if wants_json(request):  # programs get JSON, in the same shape as the API's own errors
            return json_error(status, headers=headers)
        template = ERROR_TEMPLATES.get(status, "errors/generic.html")
        return render(request, template, {"status_code": status}, status_code=status, headers=headers)

    async def http_exception(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, HTTPException)
        return page(request, exc.status_code, exc.headers)

    async def not_found(request: Request, exc: Exception) -> Response:
        # Unknown, erased or someone else's: one answer, so nothing can be probed.
        return page(request, 404)

    async def server_error(request: Request, exc: Exception) -> Response:
        # The traceback goes to the log with the request id; the customer gets a calm page in their language.
        log.error("unhandled error on %s %s", request.method, request.url.path, exc_info=exc)
        if wants_json(request):
            return json_error(500)
        try:
            return render(request, "errors/500.html", {"status_code": 500}, status_code=500)
        except Exception:
            log.exception("the 500 page itself failed")
            return HTMLResponse("<!doctype html><title>Error</title><p>Internal error / Erreur interne</p>", 500)

    return {HTTPException: http_exception, NotFound: not_found, 500: server_error}
