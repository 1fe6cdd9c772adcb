"""Refuse control characters at the door: in the path, the query string, form fields and JSON bodies.

A NUL byte is refused by PostgreSQL's text type with an error (a 500 where SQLite stored it), and no field of the
portal holds control characters: one check here, before any view, closes that class of defect for every route,
present and future. Tabs and line breaks stay allowed in bodies (a message typed in a text area has them).
"""

from __future__ import annotations

import re
from urllib.parse import unquote_plus

from starlette.datastructures import Headers
from starlette.types import ASGIApp, Message, Receive, Scope, Send

# C0 controls and DEL; in bodies the three a text area produces are allowed.
_ANY_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_BODY_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
# In JSON a control character is written escaped (\u0000); a raw one is invalid JSON and refused by the parser.
_JSON_ESCAPED_CONTROL = re.compile(rb"\\u00(?:0[0-8bBcCeEfF]|1[0-9a-fA-F]|7[fF])")
MAX_CHECKED_BYTES = 1_000_000  # larger bodies are refused by the views' own limits


def has_control_characters(text: str) -> bool:
    return _ANY_CONTROL.search(text) is not None


class InputGuardMiddleware:
    """Answers `on_reject` (a 400 in the visitor's language, JSON under the API) when any input holds control
    characters; otherwise passes the request on, with the body it read replayed unchanged."""

    def __init__(self, app: ASGIApp, on_reject: ASGIApp) -> None:
        self.app = app
        self.on_reject = on_reject

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        query = unquote_plus(scope.get("query_string", b"").decode("latin-1"), errors="replace")
        if has_control_characters(scope["path"]) or has_control_characters(query):
            await self.on_reject(scope, receive, send)
            return
        content_type = Headers(scope=scope).get("content-type", "")
        form = content_type.startswith("application/x-www-form-urlencoded")
        json = content_type.startswith("application/json") or content_type.endswith("+json")
        if not (form or json):
            await self.app(scope, receive, send)
            return
        messages: list[Message] = []
        body = b""
        while len(body) <= MAX_CHECKED_BYTES:
            message = await receive()
            messages.append(message)
            if message["type"] != "http.request":
                break
            body += message.get("body", b"")
            if not message.get("more_body", False):
                break
        if _body_has_control_characters(body, form=form):
            await self.on_reject(scope, receive, send)
            return

        async def replay() -> Message:
            if messages:
                return messages.pop(0)
            return await receive()

        await self.app(scope, replay, send)


def _body_has_control_characters(body: bytes, *, form: bool) -> bool:
    if form:
        return (
            _BODY_CONTROL.search(unquote_plus(body.decode("latin-1"), encoding="utf-8", errors="replace")) is not None
        )
    return _JSON_ESCAPED_CONTROL.search(body) is not None or _BODY_CONTROL.search(body.decode("latin-1")) is not None
