"""Staff sessions: their own cookie, so a staff session never mixes with a customer's in the same browser."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from itsdangerous import Signer
from sqlalchemy import Connection, Engine, update
from starlette.types import ASGIApp, Receive, Scope, Send

from portal.db import run_db, statement_by_statement
from portal.identity.guards import StaffPrincipal
from portal.identity.sessions import SessionInfo, load_session_and_staff
from portal.models import Session as SessionRow
from portal.settings import Settings
from portal.web.middleware import read_signed_cookie

STAFF_PREFIX = "/staff"
SIGNER_SALT = "portal.staff-session"
_SESSIONS = SessionRow.__table__.c  # type: ignore[attr-defined]  # SQLModel's __table__, which mypy does not see


def staff_cookie_name(settings: Settings) -> str:
    """`__Host-` needs Secure, which browsers only keep over HTTPS."""
    return f"{'__Host-' if settings.https else ''}portal_staff"


def staff_signer(settings: Settings) -> Signer:
    return Signer(settings.secret_key, salt=SIGNER_SALT)


def load_principal(
    connection: Connection, *, settings: Settings, raw_id: str, now: datetime
) -> tuple[SessionInfo | None, StaffPrincipal | None]:
    """The live staff session behind `raw_id` and, once fully signed in, who it is (one statement, both)."""
    info, staff = load_session_and_staff(connection, settings=settings, raw_id=raw_id, now=now)
    if info is None or info.staff_id is None or info.kind not in ("staff", "staff_pending"):
        return None, None
    if staff is None or not staff.active:
        # Disabled since: the session dies with the account.
        connection.execute(update(SessionRow).where(_SESSIONS.id == info.id).values(ended_at=now))
        return None, None
    if info.kind != "staff":
        return info, None
    return info, StaffPrincipal(
        id=staff.id,
        name=staff.name,
        email=staff.email,
        role=staff.role,
        store_id=staff.store_id,
        password_must_change=staff.password_must_change,
    )


class StaffSessionMiddleware:
    """On /staff paths, loads the staff session (`state.staff_session`) and its principal (`state.staff`)."""

    def __init__(self, app: ASGIApp, settings: Settings, engine: Engine, clock: Callable[[], datetime]) -> None:
        self.app = app
        self.settings = settings
        self.engine = engine
        self.clock = clock
        self.signer = staff_signer(settings)
        self.cookie_name = staff_cookie_name(settings)

    def raw_id(self, scope: Scope) -> str | None:
        return read_signed_cookie(scope, self.cookie_name, self.signer)

    def _load(self, raw_id: str) -> tuple[SessionInfo | None, StaffPrincipal | None]:
        with statement_by_statement(self.engine) as connection:
            return load_principal(connection, settings=self.settings, raw_id=raw_id, now=self.clock())

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and (scope["path"] == STAFF_PREFIX or scope["path"].startswith(STAFF_PREFIX + "/")):
            state = scope.setdefault("state", {})
            raw_id = self.raw_id(scope)
            info, principal = await run_db(self.engine, self._load, raw_id) if raw_id else (None, None)
            state["staff_session_raw_id"] = raw_id if info else None
            state["staff_session"] = info
            state["staff"] = principal
            # A cookie whose session timed out or was ended: the sign-in page says why it is back.
            state["staff_session_ended"] = raw_id is not None and info is None
        await self.app(scope, receive, send)
