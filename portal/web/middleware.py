"""Pure ASGI middleware: security headers, request id and access log, locale, server-side session, CSRF.

Pure ASGI rather than BaseHTTPMiddleware: no extra task per request and streaming responses pass through.
"""

from __future__ import annotations

import hmac
import logging
import secrets
import time
from collections.abc import Callable
from datetime import datetime
from urllib.parse import parse_qs

from itsdangerous import BadSignature, Signer
from python_multipart.multipart import parse_options_header
from sqlalchemy import Engine
from starlette.datastructures import Headers, MutableHeaders
from starlette.requests import cookie_parser
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from portal import i18n
from portal.db import run_db, statement_by_statement
from portal.identity.keys import keyed_hash
from portal.identity.sessions import SessionInfo, load_session
from portal.settings import Settings

access_log = logging.getLogger("portal.access")

LANGUAGE_COOKIE = "portal_lang"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "TRACE"})
MAX_FORM_BYTES = 1_000_000
# A file upload (multipart) carries its CSRF token as its first field, which must arrive within this many bytes: the
# middleware reads no further, so the file itself streams on to the view untouched.
MULTIPART_TOKEN_BYTES = 16 * 1024


def cookie_names(settings: Settings) -> tuple[str, str]:
    """(session, csrf) cookie names. `__Host-` needs Secure, which browsers only keep over HTTPS."""
    prefix = "__Host-" if settings.https else ""
    return f"{prefix}portal_session", f"{prefix}portal_csrf"


def csp_header() -> str:
    policy = {
        "default-src": ["'self'"],
        "script-src": ["'self'"],
        "style-src": ["'self'"],
        "img-src": ["'self'", "data:"],
        "font-src": ["'self'"],
        "connect-src": ["'self'"],
        "form-action": ["'self'"],
        "frame-ancestors": ["'none'"],
        "base-uri": ["'none'"],
        "object-src": ["'none'"],
    }
    return "; ".join(f"{name} {' '.join(values)}" for name, values in policy.items())


CSP = csp_header()


def security_headers(settings: Settings) -> dict[str, str]:
    headers = {
        "content-security-policy": CSP,
        "x-content-type-options": "nosniff",
        "x-frame-options": "DENY",
        "referrer-policy": "no-referrer",
        "permissions-policy": "camera=(), microphone=(), geolocation=(), payment=()",
        "cross-origin-opener-policy": "same-origin",
    }
    if settings.https:
        headers["strict-transport-security"] = "max-age=63072000; includeSubDomains"
    return headers


class SecurityHeadersMiddleware:
    """Adds the security headers and a cache policy: personal pages must never sit in a shared or disk cache."""

    def __init__(self, app: ASGIApp, settings: Settings) -> None:
        self.app = app
        # Encoded once: every response gets them, and seven look-ups through MutableHeaders, each a scan of the
        # headers, cost more than the rest of this middleware (issue 17).
        self.defaults = [
            (name.encode("latin-1"), value.encode("latin-1"))
            for name, value in {**security_headers(settings), "cache-control": "no-store"}.items()
        ]

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path: str = scope["path"]
        static = path.startswith("/static/")
        versioned = static and b"v=" in scope.get("query_string", b"")

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                if static:
                    MutableHeaders(scope=message)["cache-control"] = (
                        "public, max-age=31536000, immutable" if versioned else "public, max-age=3600"
                    )
                # What a view set itself (its own cache policy, a stricter frame rule) is kept.
                raw = message["headers"] = list(message.get("headers", ()))
                present = {name.lower() for name, _value in raw}
                raw.extend(pair for pair in self.defaults if pair[0] not in present)
            await send(message)

        await self.app(scope, receive, send_with_headers)


class RequestContextMiddleware:
    """Gives each request an id and writes one access-log line without the query string.

    Query strings can hold sign-in tokens, so they never reach a log; run uvicorn with its own access log off.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request_id = secrets.token_hex(8)
        scope.setdefault("state", {})["request_id"] = request_id
        started = time.perf_counter()
        status = 500

        async def send_logged(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                MutableHeaders(scope=message)["x-request-id"] = request_id
            await send(message)

        try:
            await self.app(scope, receive, send_logged)
        finally:
            if access_log.isEnabledFor(logging.INFO):
                access_log.info(
                    '%s "%s %s" %s %.1fms id=%s',
                    (scope.get("client") or ("-",))[0],
                    scope["method"],
                    scope["path"],
                    status,
                    (time.perf_counter() - started) * 1000,
                    request_id,
                )


def read_cookie(scope: Scope, name: str) -> str | None:
    """One cookie of the request; the header is parsed once and the result kept in the scope."""
    state = scope.setdefault("state", {})
    cookies = state.get("cookies")
    if cookies is None:
        raw = Headers(scope=scope).get("cookie")
        # Starlette's parser is lenient (a malformed header yields what it can, never an error) and much faster
        # than http.cookies.
        cookies = state["cookies"] = cookie_parser(raw) if raw else {}
    return cookies.get(name)


def read_signed_cookie(scope: Scope, name: str, signer: Signer) -> str | None:
    """The value of a cookie we signed (a session id), or None when it is missing or its signature is not ours."""
    cookie = read_cookie(scope, name)
    if not cookie:
        return None
    try:
        return signer.unsign(cookie).decode()
    except BadSignature:
        return None


class LocaleMiddleware:
    """Explicit choice (cookie) > Accept-Language > default, once per request, into a context variable."""

    def __init__(self, app: ASGIApp, settings: Settings) -> None:
        self.app = app
        self.settings = settings

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            locale = i18n.negotiate_locale(
                chosen=read_cookie(scope, LANGUAGE_COOKIE),
                accept_language=Headers(scope=scope).get("accept-language"),
                default=self.settings.default_locale,
            )
            i18n.set_locale(locale)
            i18n.set_timezone(self.settings.timezone)
            scope.setdefault("state", {})["locale"] = locale
        await self.app(scope, receive, send)


class SessionMiddleware:
    """Loads the server-side session named by the signed cookie into `request.state.session`."""

    def __init__(self, app: ASGIApp, settings: Settings, engine: Engine, clock: Callable[[], datetime]) -> None:
        self.app = app
        self.settings = settings
        self.engine = engine
        self.clock = clock
        self.signer = Signer(settings.secret_key, salt="portal.session")
        self.cookie_name = cookie_names(settings)[0]

    def raw_id(self, scope: Scope) -> str | None:
        return read_signed_cookie(scope, self.cookie_name, self.signer)

    def _load(self, raw_id: str) -> SessionInfo | None:
        with statement_by_statement(self.engine) as connection:
            return load_session(connection, settings=self.settings, raw_id=raw_id, now=self.clock())

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            state = scope.setdefault("state", {})
            # Static files and the website banner's endpoints (called from the retailer's pages) need no session.
            raw_id = None if scope["path"].startswith(("/static/", "/consent/v1/")) else self.raw_id(scope)
            state["session_raw_id"] = raw_id
            state["session"] = await run_db(self.engine, self._load, raw_id) if raw_id else None
        await self.app(scope, receive, send)


def first_field_token(content_type: str, body: bytes) -> str | None:
    """The CSRF token when it is the first field of a multipart body (forms put it first), else None; `body` may be
    only the start of the request. Nothing after that first field is read or parsed here."""
    boundary = parse_options_header(content_type)[1].get(b"boundary")
    if not boundary:
        return None
    delimiter = b"--" + boundary
    if not body.startswith(delimiter + b"\r\n"):
        return None
    head_end = body.find(b"\r\n\r\n", len(delimiter))
    value_end = body.find(b"\r\n" + delimiter, head_end + 4) if head_end >= 0 else -1
    if value_end < 0:
        return None
    for line in body[len(delimiter) + 2 : head_end].decode("latin-1").split("\r\n"):
        name, _, value = line.partition(":")
        field = parse_options_header(value)[1].get(b"name") if name.strip().lower() == "content-disposition" else None
        if field == b"csrf_token":
            return body[head_end + 4 : value_end].decode("latin-1")
    return None


class CSRFMiddleware:
    """Rejects unsafe requests that do not carry the page's CSRF token (form field or X-CSRF-Token header).

    The token is a keyed hash of the session id when signed in, else of a random cookie (double submit). Form
    bodies are read here, then replayed to the view unchanged; of a multipart body (a file upload, which cannot set
    a header without JavaScript) only the first field, the token, is read.
    """

    def __init__(
        self,
        app: ASGIApp,
        settings: Settings,
        on_reject: ASGIApp,
        exempt_prefixes: tuple[str, ...],
        cookieless_prefixes: tuple[str, ...] = (),
    ) -> None:
        self.app = app
        self.settings = settings
        self.on_reject = on_reject
        self.exempt_prefixes = exempt_prefixes
        # Paths loaded from other sites' pages (the website banner): exempt, and they never set the portal's cookie,
        # which would be a third-party cookie on every page of the retailer's site.
        self.cookieless_prefixes = cookieless_prefixes
        self.cookie_name = cookie_names(settings)[1]

    def expected_token(self, base: str) -> str:
        return keyed_hash(self.settings.secret_key, "csrf", base)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        if scope["path"].startswith(self.cookieless_prefixes):
            await self.app(scope, receive, send)
            return
        state = scope.setdefault("state", {})
        anonymous_base = read_cookie(scope, self.cookie_name)
        new_cookie = None
        if not anonymous_base or len(anonymous_base) < 20:
            anonymous_base = new_cookie = secrets.token_urlsafe(24)
        base = state.get("session_raw_id") if state.get("session") else anonymous_base
        if scope["path"] == "/staff" or scope["path"].startswith("/staff/"):
            # Staff pages are tied to the staff session (its own cookie), never to a customer session.
            staff_raw_id = state.get("staff_session_raw_id")
            base = f"staff:{staff_raw_id}" if staff_raw_id else anonymous_base
        state["csrf_token"] = self.expected_token(base)

        async def send_with_cookie(message: Message) -> None:
            if message["type"] == "http.response.start" and new_cookie:
                secure = "; Secure" if self.settings.https else ""
                MutableHeaders(scope=message).append(
                    "set-cookie", f"{self.cookie_name}={new_cookie}; Path=/; HttpOnly; SameSite=Lax{secure}"
                )
            await send(message)

        if scope["method"] in SAFE_METHODS or scope["path"].startswith(self.exempt_prefixes):
            await self.app(scope, receive, send_with_cookie)
            return

        headers = Headers(scope=scope)
        submitted = headers.get("x-csrf-token")
        body_messages: list[Message] = []
        if submitted is None and headers.get("content-type", "").startswith("application/x-www-form-urlencoded"):
            body = b""
            while True:
                message = await receive()
                body_messages.append(message)
                if message["type"] != "http.request":
                    break
                body += message.get("body", b"")
                if len(body) > MAX_FORM_BYTES:
                    break
                if not message.get("more_body", False):
                    break
            values = parse_qs(body.decode("latin-1"), max_num_fields=200).get("csrf_token")
            submitted = values[0] if values else None
        elif submitted is None and headers.get("content-type", "").startswith("multipart/form-data"):
            body = b""
            while len(body) < MULTIPART_TOKEN_BYTES:
                message = await receive()
                body_messages.append(message)
                if message["type"] != "http.request":
                    break
                body += message.get("body", b"")
                submitted = first_field_token(headers["content-type"], body)
                if submitted is not None or not message.get("more_body", False):
                    break
        if not submitted or not hmac.compare_digest(submitted.encode(), state["csrf_token"].encode()):
            await self.on_reject(scope, receive, send_with_cookie)
            return

        async def replay() -> Message:
            if body_messages:
                return body_messages.pop(0)
            return await receive()

        await self.app(scope, replay, send_with_cookie)
