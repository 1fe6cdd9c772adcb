"""Staff sign-in: email + password, then a TOTP code (enrolling the authenticator the first time).

Five consecutive failures, password or code, lock the account for 15 minutes. An unknown address answers exactly
like a wrong password, and locks the same way (counted per address digest, locked until 15 minutes after its
fifth failure), and every answer of the password step, locked ones included, spends one password hash: neither the
words nor the time of an answer tell whether an account exists.
"""

from __future__ import annotations

import dataclasses
from datetime import datetime, timedelta

from sqlalchemy import select
from sqlmodel import Session

from portal.audit import record_audit
from portal.identity import passwords, ratelimit, totp
from portal.identity.keys import keyed_hash
from portal.identity.sessions import end_session, load_session, open_session
from portal.models import StaffUser, email_key
from portal.settings import Settings

MAX_FAILURES = 5
LOCK_DURATION = timedelta(minutes=15)
# Failures of an unknown address count within a day (a real account's count until its next success): the counter
# lives in the rate-limit table, which housekeeping empties of day-old windows.
UNKNOWN_FAILURE_WINDOW = timedelta(days=1)
PENDING = "staff_pending"


class StaffSignInError(Exception):
    pass


class BadCredentials(StaffSignInError):
    """Unknown address, wrong password or disabled account: one answer for all three."""


class AccountLocked(StaffSignInError):
    def __init__(self, until: datetime) -> None:
        super().__init__(until)
        self.until = until


class TooManyAttempts(StaffSignInError):
    """Too many tries from this IP address."""

    def __init__(self, retry_after: timedelta) -> None:
        super().__init__(retry_after)
        self.retry_after = retry_after


class CodeRejected(StaffSignInError):
    def __init__(self, remaining: int) -> None:
        super().__init__(remaining)
        self.remaining = remaining


class SignInExpired(StaffSignInError):
    """The password step is too old or was never done: start again."""


@dataclasses.dataclass(frozen=True)
class PasswordAccepted:
    staff_id: int
    pending_session_id: str  # raw id for the staff cookie, good for the code step only
    needs_enrolment: bool


@dataclasses.dataclass(frozen=True)
class StaffSignedIn:
    staff_id: int
    session_id: str  # raw id for the staff cookie
    password_must_change: bool  # a one-time password: the next page is /staff/password


@dataclasses.dataclass(frozen=True)
class Enrolment:
    secret: str
    grouped_secret: str
    uri: str
    qr: str  # data: URI of the QR code


def _limit_ip(session: Session, *, settings: Settings, ip: str, now: datetime) -> None:
    result = ratelimit.hit(
        session,
        key=f"staff:ip:{ip}"[:128],
        limit=settings.signin_limit_per_ip,
        window=settings.rate_limit_window,
        now=now,
    )
    if not result.allowed:
        raise TooManyAttempts(result.retry_after)


def record_failure(session: Session, staff: StaffUser, *, reason: str, now: datetime, request_id: str | None) -> None:
    """Count a failure; the fifth in a row locks the account. Raises AccountLocked when it does."""
    staff.failed_attempts += 1
    record_audit(
        session,
        actor="anonymous",
        action="staff.sign_in_failed",
        target=f"staff:{staff.id}",
        detail={"reason": reason, "failures": staff.failed_attempts},
        now=now,
        request_id=request_id,
    )
    if staff.failed_attempts >= MAX_FAILURES:
        staff.failed_attempts = 0
        staff.locked_until = now + LOCK_DURATION
        record_audit(
            session,
            actor="system",
            action="staff.locked",
            target=f"staff:{staff.id}",
            detail={"minutes": int(LOCK_DURATION.total_seconds() // 60)},
            now=now,
            request_id=request_id,
        )
        raise AccountLocked(staff.locked_until)


def _locked(staff: StaffUser, now: datetime) -> bool:
    return staff.locked_until is not None and now < staff.locked_until


def check_password(
    session: Session,
    *,
    settings: Settings,
    email: str,
    password: str,
    ip: str,
    now: datetime,
    request_id: str | None = None,
) -> PasswordAccepted:
    """First step. Raises BadCredentials, AccountLocked or TooManyAttempts; the caller commits even then."""
    _limit_ip(session, settings=settings, ip=ip, now=now)
    key = email_key(email[:320])
    staff = session.scalars(select(StaffUser).where(StaffUser.email_key == key)).first() if key else None
    if staff is None or not staff.active:
        passwords.spend_equal_time(password)
        # Unknown and disabled addresses lock like real ones, so the answers cannot tell them apart.
        digest = keyed_hash(settings.secret_key, "staff-email", key)
        lock_key = f"staff:locked:{digest}"
        until = ratelimit.locked_until(session, key=lock_key, now=now)
        if until is not None:
            raise AccountLocked(until)
        counter = f"staff:unknown:{digest}"
        result = ratelimit.hit(session, key=counter, limit=MAX_FAILURES - 1, window=UNKNOWN_FAILURE_WINDOW, now=now)
        record_audit(
            session,
            actor="anonymous",
            action="staff.sign_in_failed",
            target=f"staff:{staff.id}" if staff else None,
            detail={"reason": "disabled" if staff else "unknown_email"},
            now=now,
            request_id=request_id,
        )
        if not result.allowed:
            ratelimit.reset(session, key=counter)
            ratelimit.lock(session, key=lock_key, until=now + LOCK_DURATION)
            raise AccountLocked(now + LOCK_DURATION)
        raise BadCredentials()
    if _locked(staff, now):
        passwords.spend_equal_time(password)  # as long as any other answer
        assert staff.locked_until is not None
        raise AccountLocked(staff.locked_until)
    matches, new_hash = passwords.check_password(staff.password_hash, password)
    if not matches:
        record_failure(session, staff, reason="password", now=now, request_id=request_id)
        raise BadCredentials()
    if new_hash:
        staff.password_hash = new_hash
    if staff.totp_confirmed_at is None and not staff.totp_secret:
        # Kept until confirmed: reloading the enrolment page, or signing in again, shows the same secret.
        staff.totp_secret = totp.new_secret()
    assert staff.id is not None
    raw_id = open_session(session, settings=settings, kind=PENDING, customer_id=None, staff_id=staff.id, now=now)
    return PasswordAccepted(
        staff_id=staff.id, pending_session_id=raw_id, needs_enrolment=staff.totp_confirmed_at is None
    )


def _pending_staff(session: Session, *, settings: Settings, raw_id: str | None, now: datetime) -> StaffUser:
    info = load_session(session, settings=settings, raw_id=raw_id, now=now) if raw_id else None
    if info is None or info.kind != PENDING or info.staff_id is None:
        raise SignInExpired()
    staff = session.get(StaffUser, info.staff_id)
    if staff is None or not staff.active:
        raise SignInExpired()
    return staff


def enrolment_for(
    session: Session, *, settings: Settings, raw_id: str | None, issuer: str, now: datetime
) -> Enrolment | None:
    """What the enrolment page shows (None when the account already has an authenticator)."""
    staff = _pending_staff(session, settings=settings, raw_id=raw_id, now=now)
    if staff.totp_confirmed_at is not None or not staff.totp_secret:
        return None
    uri = totp.provisioning_uri(staff.totp_secret, account=staff.email, issuer=issuer)
    return Enrolment(
        secret=staff.totp_secret, grouped_secret=totp.grouped(staff.totp_secret), uri=uri, qr=totp.qr_data_uri(uri)
    )


def check_code(
    session: Session,
    *,
    settings: Settings,
    raw_id: str | None,
    code: str,
    ip: str,
    now: datetime,
    request_id: str | None = None,
) -> StaffSignedIn:
    """Second step: the code from the authenticator (its first one confirms the enrolment). Opens the session.

    Raises CodeRejected, AccountLocked, SignInExpired or TooManyAttempts; the caller commits even then.
    """
    _limit_ip(session, settings=settings, ip=ip, now=now)
    staff = _pending_staff(session, settings=settings, raw_id=raw_id, now=now)
    assert raw_id is not None and staff.id is not None
    if _locked(staff, now):
        end_session(session, settings=settings, raw_id=raw_id, now=now)
        assert staff.locked_until is not None
        raise AccountLocked(staff.locked_until)
    step = (
        totp.accepted_step(staff.totp_secret, code[:32], now=now, last_step=staff.totp_last_step)
        if staff.totp_secret
        else None
    )
    if step is None:
        try:
            record_failure(session, staff, reason="code", now=now, request_id=request_id)
        except AccountLocked:
            end_session(session, settings=settings, raw_id=raw_id, now=now)
            raise
        raise CodeRejected(remaining=MAX_FAILURES - staff.failed_attempts)
    staff.totp_last_step = step
    staff.failed_attempts = 0
    staff.locked_until = None
    staff.last_sign_in_at = now
    if staff.totp_confirmed_at is None:
        staff.totp_confirmed_at = now
        record_audit(
            session,
            actor=f"staff:{staff.id}",
            action="staff.totp_enrolled",
            target=f"staff:{staff.id}",
            now=now,
            request_id=request_id,
        )
    # Rotation: the pending session ends and a new id is issued for the signed-in session.
    end_session(session, settings=settings, raw_id=raw_id, now=now)
    session_id = open_session(session, settings=settings, kind="staff", customer_id=None, staff_id=staff.id, now=now)
    record_audit(
        session,
        actor=f"staff:{staff.id}",
        action="staff.signed_in",
        target=f"staff:{staff.id}",
        now=now,
        request_id=request_id,
    )
    return StaffSignedIn(staff_id=staff.id, session_id=session_id, password_must_change=staff.password_must_change)


def sign_out(
    session: Session, *, settings: Settings, raw_id: str, now: datetime, request_id: str | None = None
) -> None:
    """End a staff session on the server; a signed-in one (not a pending one) is audited as a sign-out."""
    info = load_session(session, settings=settings, raw_id=raw_id, now=now)
    end_session(session, settings=settings, raw_id=raw_id, now=now)
    if info is not None and info.staff_id is not None and info.kind == "staff":
        record_audit(
            session,
            actor=f"staff:{info.staff_id}",
            action="staff.signed_out",
            target=f"staff:{info.staff_id}",
            now=now,
            request_id=request_id,
        )
