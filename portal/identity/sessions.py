"""Server-side sessions: the browser holds a signed random id; the database holds its keyed hash and clocks."""

from __future__ import annotations

import dataclasses
import secrets
from datetime import datetime, timedelta

from sqlalchemy import Connection, bindparam, insert, select, update
from sqlmodel import Session

from portal.db import as_connection
from portal.identity.keys import keyed_hash
from portal.models import Session as SessionRow
from portal.models import StaffUser
from portal.settings import Settings

# last_seen is written at most this often: idle timeouts are minutes long, a write per page view is waste.
TOUCH_EVERY = timedelta(seconds=30)


@dataclasses.dataclass(frozen=True)
class SessionInfo:
    id: int
    kind: str
    customer_id: int | None
    created_at: datetime
    idle_expires_at: datetime
    absolute_expires_at: datetime
    staff_id: int | None = None
    store_id: int | None = None  # a tablet session: the store of the staff member assisting


def timeouts(settings: Settings, kind: str) -> tuple[timedelta, timedelta]:
    """(idle, absolute) timeouts of a session kind (DESIGN §5)."""
    if kind == "customer":
        return settings.customer_idle_timeout, settings.customer_absolute_timeout
    if kind == "tablet":
        return timedelta(minutes=3), timedelta(minutes=30)
    if kind == "staff_pending":  # password accepted, code not yet: a few minutes to open the authenticator app
        return timedelta(minutes=5), timedelta(minutes=10)
    return timedelta(minutes=30), timedelta(hours=12)  # staff


def _hash(settings: Settings, raw_id: str) -> str:
    return keyed_hash(settings.secret_key, "session", raw_id)


def open_session(
    db: Session | Connection,
    *,
    settings: Settings,
    kind: str,
    customer_id: int | None,
    now: datetime,
    staff_id: int | None = None,
) -> str:
    """Create a session and return the raw id for the cookie (the only place it ever exists)."""
    raw_id = secrets.token_urlsafe(32)
    idle, absolute = timeouts(settings, kind)
    as_connection(db).execute(
        _INSERT,
        {
            "id_hash": _hash(settings, raw_id),
            "kind": kind,
            "customer_id": customer_id,
            "staff_id": staff_id,
            "created_at": now,
            "last_seen_at": now,
            "idle_expires_at": now + idle,
            "absolute_expires_at": now + absolute,
            "ended_at": None,
        },
    )
    return raw_id


# Built once (every sign-in opens one): a Core insert of the same row, without an ORM object and its flush.
_INSERT = insert(SessionRow.__table__)


_SESSIONS = SessionRow.__table__.c
_STAFF = StaffUser.__table__.c
# Built once: this runs on every signed-in request, and building statements cost more than SQLite's answer.
_LOAD = (
    select(
        _SESSIONS.id,
        _SESSIONS.kind,
        _SESSIONS.customer_id,
        _SESSIONS.staff_id,
        _SESSIONS.created_at,
        _SESSIONS.last_seen_at,
        _SESSIONS.idle_expires_at,
        _SESSIONS.absolute_expires_at,
        _SESSIONS.ended_at,
        _STAFF.store_id,
        # The staff member's, for the back office's principal (nulls for a customer's session): one statement.
        _STAFF.id.label("staff_key"),
        _STAFF.name.label("staff_name"),
        _STAFF.email.label("staff_email"),
        _STAFF.role.label("staff_role"),
        _STAFF.active.label("staff_active"),
        _STAFF.password_must_change.label("staff_password_must_change"),
    )
    .select_from(SessionRow.__table__.outerjoin(StaffUser.__table__, _STAFF.id == _SESSIONS.staff_id))
    .where(_SESSIONS.id_hash == bindparam("id_hash"))
)
_END = update(SessionRow).where(_SESSIONS.id == bindparam("session_id")).values(ended_at=bindparam("now"))
_TOUCH = (
    update(SessionRow)
    .where(_SESSIONS.id == bindparam("session_id"))
    .values(last_seen_at=bindparam("now"), idle_expires_at=bindparam("idle_until"))
)


def load_session(db: Session | Connection, *, settings: Settings, raw_id: str, now: datetime) -> SessionInfo | None:
    """The live session behind `raw_id`, its idle clock moved on; None when unknown, ended or timed out."""
    return load_session_and_staff(db, settings=settings, raw_id=raw_id, now=now)[0]


@dataclasses.dataclass(frozen=True)
class StaffColumns:
    """The staff member a staff session belongs to, read with the session (the same statement)."""

    id: int
    name: str
    email: str
    role: str
    store_id: int | None
    active: bool
    password_must_change: bool


def load_session_and_staff(
    db: Session | Connection, *, settings: Settings, raw_id: str, now: datetime
) -> tuple[SessionInfo | None, StaffColumns | None]:
    """`load_session`, with the staff member of a live staff session (None for a customer's, or an account gone)."""
    connection = as_connection(db)
    row = connection.execute(_LOAD, {"id_hash": _hash(settings, raw_id)}).first()
    if row is None or row.ended_at is not None:
        return None, None
    if now >= row.idle_expires_at or now >= row.absolute_expires_at:
        connection.execute(_END, {"session_id": row.id, "now": now})
        return None, None
    idle_expires_at = row.idle_expires_at
    if now - row.last_seen_at >= TOUCH_EVERY:
        idle, _absolute = timeouts(settings, row.kind)
        idle_expires_at = min(now + idle, row.absolute_expires_at)
        connection.execute(_TOUCH, {"session_id": row.id, "now": now, "idle_until": idle_expires_at})
    info = SessionInfo(
        id=row.id,
        kind=row.kind,
        customer_id=row.customer_id,
        created_at=row.created_at,
        idle_expires_at=idle_expires_at,
        absolute_expires_at=row.absolute_expires_at,
        staff_id=row.staff_id,
        store_id=row.store_id,
    )
    staff = None
    if row.staff_key is not None:
        staff = StaffColumns(
            id=row.staff_key,
            name=row.staff_name,
            email=row.staff_email,
            role=row.staff_role,
            store_id=row.store_id,
            active=bool(row.staff_active),
            password_must_change=bool(row.staff_password_must_change),
        )
    return info, staff


def session_row(session: Session, *, settings: Settings, raw_id: str) -> SessionRow | None:
    """The stored session behind a cookie's raw id, live or not."""
    return session.scalars(select(SessionRow).where(SessionRow.id_hash == _hash(settings, raw_id))).first()


def end_session(session: Session, *, settings: Settings, raw_id: str, now: datetime) -> int | None:
    """End the session on the server (a copied cookie is worthless afterwards); returns its customer id."""
    row = session.scalars(select(SessionRow).where(SessionRow.id_hash == _hash(settings, raw_id))).first()
    if row is None or row.ended_at is not None:
        return None
    row.ended_at = now
    return row.customer_id


def end_customer_sessions(session: Session, *, customer_id: int, now: datetime) -> None:
    session.execute(
        update(SessionRow)
        .where(SessionRow.customer_id == customer_id, SessionRow.ended_at.is_(None))
        .values(ended_at=now)
    )
