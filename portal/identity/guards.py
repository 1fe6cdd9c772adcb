"""The guards every signed-in page calls: who the customer is (`customer_id_of`), who the staff member is and whether
their role may open the page (`staff_of`, `require_role`).

Sessions are loaded by the middleware (`portal.web.middleware.SessionMiddleware` for customers,
`portal.identity.staff_sessions.StaffSessionMiddleware` for staff, each with its own cookie) into the request state;
these functions only read it. Their exceptions are turned into redirects and 403 pages by the handlers below, which
`portal.app` registers.
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import urlencode

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response

from portal.identity.destination import remember_destination
from portal.web.render import redirect, render, safe_next

# --- Customers ---------------------------------------------------------------------------------------------------


class SignInRequired(Exception):
    """Raised by views that need a signed-in customer; the app answers with a redirect to the sign-in page."""


def customer_id_of(request: Request) -> int:
    """The signed-in customer's id (self-service or an assisted tablet session); raises SignInRequired."""
    session = request.scope["state"].get("session")
    if session is None or session.kind not in ("customer", "tablet") or session.customer_id is None:
        raise SignInRequired()
    return int(session.customer_id)


@dataclass(frozen=True)
class Origin:
    """Where a customer's write comes from: self-service on the web, or a store tablet with a staff member beside
    them. Consent events, rectifications and requests record it (channel, who entered it, the store)."""

    channel: str  # "web" | "store"
    actor: str  # customer:<id>, or staff:<id> for the staff member assisting on a tablet
    store_id: int | None = None
    staff_id: int | None = None


def is_tablet(request: Request) -> bool:
    session = request.scope["state"].get("session")
    return session is not None and session.kind == "tablet"


def origin_of(request: Request) -> Origin:
    """The signed-in customer's channel (raises SignInRequired like `customer_id_of`)."""
    customer_id = customer_id_of(request)
    session = request.scope["state"]["session"]
    if session.kind == "tablet" and session.staff_id is not None:
        return Origin(
            channel="store", actor=f"staff:{session.staff_id}", store_id=session.store_id, staff_id=session.staff_id
        )
    return Origin(channel="web", actor=f"customer:{customer_id}")


# A cookie that says "this browser is a store tablet": when an assisted session has timed out, the next page goes
# back to the tablet home rather than to the customer sign-in page. It holds nothing about anyone.
TABLET_COOKIE = "portal_tablet"


async def sign_in_required(request: Request, exc: Exception) -> Response:
    """To the sign-in page; a page the customer was opening (a link in one of our emails to /me/requests/R-…, say)
    is remembered, and they land on it once signed in. On a store tablet, back to the tablet home."""
    if request.cookies.get(TABLET_COOKIE) == "1":
        return redirect(request, "/staff/tablet?ended=1")
    response = redirect(request, "/signin")
    if request.method == "GET" and request.url.path.startswith("/me"):
        query = request.url.query
        remember_destination(request, response, request.url.path + (f"?{query}" if query else ""))
    return response


# --- Staff -------------------------------------------------------------------------------------------------------

ALWAYS_ALLOWED = "dpo"  # the DPO does everything an agent does, plus accounts, reports and audit
PASSWORD_PAGE = "/staff/password"  # noqa: S105 (a path, not a password)


@dataclass(frozen=True)
class StaffPrincipal:
    id: int
    name: str
    email: str
    role: str
    store_id: int | None
    # Signed in with a one-time password someone else chose: only /staff/password (and sign-out) until replaced.
    password_must_change: bool = False

    @property
    def actor(self) -> str:
        """How the audit trail and request timelines name this person."""
        return f"staff:{self.id}"


class StaffSignInRequired(Exception):
    """No live staff session: the app answers with a redirect to /staff/sign-in?next=…"""


class StaffPasswordChangeRequired(Exception):
    """Signed in, but still on a one-time password: the app answers with a redirect to /staff/password?next=…"""


class StaffForbidden(HTTPException):
    """Signed in, but the role may not open this page (403)."""

    def __init__(self) -> None:
        super().__init__(status_code=403)


def staff_of(request: Request, *, on_password_page: bool = False) -> StaffPrincipal:
    """The signed-in staff member. Anyone still on a one-time password is held at /staff/password, whatever page
    they ask for: only that page passes `on_password_page=True`."""
    principal = request.scope.get("state", {}).get("staff")
    if principal is None:
        raise StaffSignInRequired()
    if principal.password_must_change and not on_password_page:
        raise StaffPasswordChangeRequired()
    return principal


def require_role(request: Request, *roles: str) -> StaffPrincipal:
    """The signed-in staff member, when their role is one of `roles` (the DPO always is); 403 otherwise."""
    principal = staff_of(request)
    if principal.role != ALWAYS_ALLOWED and principal.role not in roles:
        raise StaffForbidden()
    return principal


def has_role(principal: StaffPrincipal, *roles: str) -> bool:
    return principal.role == ALWAYS_ALLOWED or principal.role in roles


async def staff_sign_in_required(request: Request, exc: Exception) -> Response:
    """Back to the sign-in page, then to the page asked for (a local path only; a GET is safe to repeat)."""
    target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    query: dict[str, str] = {}
    if request.method == "GET" and target.startswith("/staff") and target != "/staff/sign-in":
        query["next"] = safe_next(target, "/staff")
    if request.scope.get("state", {}).get("staff_session_ended"):
        query["ended"] = "1"
    return redirect(request, "/staff/sign-in" + (f"?{urlencode(query)}" if query else ""))


async def staff_password_change_required(request: Request, exc: Exception) -> Response:
    """To the password page, then back to the page asked for (a GET only, as for sign-in)."""
    target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    query = ""
    if request.method == "GET" and target != "/staff":
        query = "?" + urlencode({"next": safe_next(target, "/staff")})
    return redirect(request, PASSWORD_PAGE + query)


async def staff_forbidden(request: Request, exc: Exception) -> Response:
    return render(
        request, "staff/forbidden.html", {"staff": request.scope.get("state", {}).get("staff")}, status_code=403
    )
