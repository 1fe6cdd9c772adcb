"""Where a customer goes once signed in: back to the page that sent them to sign in (a page under /me opened while
signed out, such as a request linked from one of our emails, or an emailed download link),
or their overview.

The page is kept in a signed, short-lived cookie on the browser that will sign in, rather than in the sign-in URLs:
the sign-in flow crosses an email, and a path can carry a token that has no business in a link or a log.
"""

from __future__ import annotations

from itsdangerous import BadSignature, SignatureExpired, TimestampSigner
from starlette.requests import Request
from starlette.responses import Response

from portal.web.render import safe_next
from portal.web.state import portal_of

DESTINATION_COOKIE = "portal_after_signin"
# Long enough to ask for a link, open the email and sign in (the sign-in link itself lasts 10 minutes).
DESTINATION_MAX_AGE = 30 * 60


def _signer(request: Request) -> TimestampSigner:
    return TimestampSigner(portal_of(request).settings.secret_key, salt="portal.after-signin")


def remember_destination(request: Request, response: Response, path: str) -> None:
    """Come back to `path` (a path on this site) after the next sign-in from this browser."""
    response.set_cookie(
        DESTINATION_COOKIE,
        _signer(request).sign(safe_next(path, "/me")).decode(),
        max_age=DESTINATION_MAX_AGE,
        path="/",
        httponly=True,
        samesite="lax",
        secure=portal_of(request).settings.https,
    )


def destination_after_sign_in(request: Request, default: str = "/me") -> str:
    cookie = request.cookies.get(DESTINATION_COOKIE)
    if not cookie:
        return default
    try:
        return safe_next(_signer(request).unsign(cookie, max_age=DESTINATION_MAX_AGE).decode(), default)
    except (BadSignature, SignatureExpired, UnicodeDecodeError):
        return default


def forget_destination(response: Response) -> None:
    response.delete_cookie(DESTINATION_COOKIE, path="/")
