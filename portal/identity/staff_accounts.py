"""Staff accounts: add, list, disable/enable, reset the authenticator. The DPO pages and `portal staff` call these."""

from __future__ import annotations

import dataclasses
from datetime import datetime

from sqlalchemy import func, select, update
from sqlmodel import Session

from portal.audit import record_audit
from portal.i18n import lazy_gettext
from portal.identity import passwords
from portal.identity import staff_signin as signin
from portal.identity.service import InvalidEmail, normalise_email
from portal.identity.sessions import open_session
from portal.models import STAFF_ROLES, StaffUser, Store, email_key
from portal.models import Session as SessionRow
from portal.models.commerce import STORE_KIND_SHOP
from portal.settings import Settings


class StaffAccountError(ValueError):
    """A refused change. `message` is an English msgid: pages translate it with gettext, the CLI prints it."""

    def __init__(self, message: str, *, field: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.field = field


@dataclasses.dataclass(frozen=True)
class StaffSummary:
    id: int
    email: str
    name: str
    role: str
    store_code: str | None
    store_name: str | None
    active: bool
    enrolled: bool  # an authenticator app is confirmed
    locked_until: datetime | None
    created_at: datetime
    last_sign_in_at: datetime | None


@dataclasses.dataclass(frozen=True)
class NewStaff:
    account: StaffSummary
    password: str  # shown once; never stored in clear
    generated: bool


def _summary(staff: StaffUser, store: Store | None) -> StaffSummary:
    assert staff.id is not None
    return StaffSummary(
        id=staff.id,
        email=staff.email,
        name=staff.name,
        role=staff.role,
        store_code=store.code if store else None,
        store_name=store.name if store else None,
        active=staff.active,
        enrolled=staff.totp_confirmed_at is not None,
        locked_until=staff.locked_until,
        created_at=staff.created_at,
        last_sign_in_at=staff.last_sign_in_at,
    )


def list_staff(session: Session) -> list[StaffSummary]:
    rows = session.execute(
        select(StaffUser, Store)
        .outerjoin(Store, Store.id == StaffUser.store_id)
        .order_by(StaffUser.active.desc(), func.lower(StaffUser.name), StaffUser.id)
    ).all()
    return [_summary(staff, store) for staff, store in rows]


def store_choices(session: Session) -> list[tuple[str, str]]:
    """(code, name) of the shops a store account can belong to."""
    rows = session.execute(select(Store.code, Store.name).where(Store.kind == STORE_KIND_SHOP).order_by(Store.code))
    return [(code, name) for code, name in rows]


@dataclasses.dataclass(frozen=True)
class StaffDirectory:
    accounts: list[StaffSummary]
    stores: list[tuple[str, str]]  # as `store_choices` returns them


def staff_directory(session: Session) -> StaffDirectory:
    """What the accounts page shows: every staff account, and the shops a new store account can belong to."""
    return StaffDirectory(accounts=list_staff(session), stores=store_choices(session))


def staff_summary(session: Session, *, staff_id: int) -> StaffSummary:
    staff = _get(session, staff_id)
    return _summary(staff, session.get(Store, staff.store_id) if staff.store_id else None)


def staff_id_for_email(session: Session, email: str) -> int:
    staff_id = session.scalars(select(StaffUser.id).where(StaffUser.email_key == email_key(email))).first()
    if staff_id is None:
        raise StaffAccountError(lazy_gettext("No staff account has this email address."), field="email")
    return int(staff_id)


def _get(session: Session, staff_id: int) -> StaffUser:
    staff = session.get(StaffUser, staff_id)
    if staff is None:
        raise StaffAccountError(lazy_gettext("This staff account does not exist."))
    return staff


def add_staff(
    session: Session,
    *,
    email: str,
    name: str,
    role: str,
    store_code: str | None,
    actor: str,
    now: datetime,
    password: str | None = None,
    request_id: str | None = None,
) -> NewStaff:
    """Create an active account that enrols its authenticator at first sign-in; without `password`, one is drawn.

    A drawn password is a one-time password (someone else saw it): the first sign-in must replace it.
    """
    try:
        address = normalise_email(email)
    except InvalidEmail as exc:
        raise StaffAccountError(lazy_gettext("Enter a valid email address."), field="email") from exc
    name = " ".join(name.split())
    if not name or len(name) > 100:
        raise StaffAccountError(lazy_gettext("Enter a name of at most 100 characters."), field="name")
    if role not in STAFF_ROLES:
        raise StaffAccountError(lazy_gettext("Choose a role: agent, store or DPO."), field="role")
    store = None
    store_code = (store_code or "").strip() or None
    if role == "store":
        if store_code is None:
            raise StaffAccountError(lazy_gettext("A store account needs its store."), field="store")
        store = session.scalars(select(Store).where(Store.code == store_code)).first()
        if store is None:
            raise StaffAccountError(lazy_gettext("There is no store with this code."), field="store")
    elif store_code is not None:
        raise StaffAccountError(lazy_gettext("Only store accounts belong to a store."), field="store")
    if session.scalars(select(StaffUser.id).where(StaffUser.email_key == email_key(address))).first() is not None:
        raise StaffAccountError(lazy_gettext("A staff account already uses this email address."), field="email")
    generated = password is None
    if password is None:
        password = passwords.one_time_password()
    problem = passwords.password_problem(password)
    if problem == "too_short":
        raise StaffAccountError(lazy_gettext("The password needs at least 12 characters."), field="password")
    if problem:
        raise StaffAccountError(lazy_gettext("The password is too long."), field="password")
    staff = StaffUser(
        email=address,
        email_key=email_key(address),
        name=name,
        role=role,
        store_id=store.id if store else None,
        password_hash=passwords.hash_password(password),
        password_must_change=generated,
        created_at=now,
    )
    session.add(staff)
    session.flush()
    record_audit(
        session,
        actor=actor,
        action="staff.created",
        target=f"staff:{staff.id}",
        detail={"role": role, "store": store.code if store else None},
        now=now,
        request_id=request_id,
    )
    return NewStaff(account=_summary(staff, store), password=password, generated=generated)


def _active_dpo_count(session: Session) -> int:
    return int(
        session.scalar(
            select(func.count()).select_from(StaffUser).where(StaffUser.role == "dpo", StaffUser.active.is_(True))
        )
        or 0
    )


def end_staff_sessions(session: Session, *, staff_id: int, now: datetime) -> None:
    session.execute(
        update(SessionRow).where(SessionRow.staff_id == staff_id, SessionRow.ended_at.is_(None)).values(ended_at=now)
    )


def set_active(
    session: Session,
    *,
    staff_id: int,
    active: bool,
    actor: str,
    now: datetime,
    request_id: str | None = None,
) -> StaffSummary:
    """Disable (its sessions end at once) or enable an account."""
    staff = _get(session, staff_id)
    if not active and actor == f"staff:{staff_id}":
        raise StaffAccountError(lazy_gettext("You cannot disable your own account."))
    if not active and staff.role == "dpo" and staff.active and _active_dpo_count(session) <= 1:
        raise StaffAccountError(lazy_gettext("At least one active DPO account must remain."))
    if staff.active != active:
        staff.active = active
        if active:
            staff.failed_attempts = 0
            staff.locked_until = None
        else:
            end_staff_sessions(session, staff_id=staff_id, now=now)
        record_audit(
            session,
            actor=actor,
            action="staff.enabled" if active else "staff.disabled",
            target=f"staff:{staff_id}",
            now=now,
            request_id=request_id,
        )
    return staff_summary(session, staff_id=staff_id)


def reset_totp(
    session: Session, *, staff_id: int, actor: str, now: datetime, request_id: str | None = None
) -> StaffSummary:
    """Forget the authenticator (a lost phone): the next sign-in enrols a new one. Open sessions end."""
    staff = _get(session, staff_id)
    staff.totp_secret = None
    staff.totp_confirmed_at = None
    staff.totp_last_step = None
    end_staff_sessions(session, staff_id=staff_id, now=now)
    record_audit(
        session, actor=actor, action="staff.totp_reset", target=f"staff:{staff_id}", now=now, request_id=request_id
    )
    return staff_summary(session, staff_id=staff_id)


# Why a new password is refused, by `passwords.new_password_problem` id.
NEW_PASSWORD_MESSAGES = {
    "too_short": lazy_gettext("The password needs at least 12 characters."),
    "too_long": lazy_gettext("The password is too long."),
    "same_as_current": lazy_gettext("The new password must be different from your current one."),
    "contains_email": lazy_gettext("The new password must not contain your email address (the part before the @)."),
}


def change_password(
    session: Session,
    *,
    settings: Settings,
    staff_id: int,
    current: str,
    new: str,
    confirmation: str,
    now: datetime,
    request_id: str | None = None,
) -> str:
    """Replace a staff member's password with one they chose; returns the raw id of their new session.

    Every session of the account ends (whoever else holds one must sign in with the new password) and a fresh one
    replaces the caller's (rotation). A wrong current password counts towards the sign-in lockout, so a borrowed
    session cannot be used to guess it: the fifth failure raises `signin.AccountLocked` and ends the sessions too.
    Raises StaffAccountError (field current, new or confirmation); the caller commits even then.
    """
    staff = _get(session, staff_id)
    if not staff.active:
        raise StaffAccountError(lazy_gettext("This staff account does not exist."))
    problem = passwords.new_password_problem(new, current=current, email=staff.email)
    if problem:
        raise StaffAccountError(NEW_PASSWORD_MESSAGES[problem], field="new")
    if confirmation != new:
        raise StaffAccountError(lazy_gettext("The confirmation does not match the new password."), field="confirmation")
    if not current:
        raise StaffAccountError(lazy_gettext("Enter your current password."), field="current")
    matches, _rehash = passwords.check_password(staff.password_hash, current)
    if not matches:
        try:
            signin.record_failure(session, staff, reason="current_password", now=now, request_id=request_id)
        except signin.AccountLocked:
            end_staff_sessions(session, staff_id=staff_id, now=now)
            raise
        raise StaffAccountError(lazy_gettext("Your current password is not right."), field="current")
    forced = staff.password_must_change
    staff.password_hash = passwords.hash_password(new)
    staff.password_must_change = False
    staff.failed_attempts = 0
    end_staff_sessions(session, staff_id=staff_id, now=now)
    raw_id = open_session(session, settings=settings, kind="staff", customer_id=None, staff_id=staff_id, now=now)
    record_audit(
        session,
        actor=f"staff:{staff_id}",
        action="staff.password_changed",
        target=f"staff:{staff_id}",
        detail={"forced": forced},
        now=now,
        request_id=request_id,
    )
    return raw_id
