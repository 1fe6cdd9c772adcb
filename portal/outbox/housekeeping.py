"""Forget what sign-in no longer needs: data minimisation applies to our own security records too."""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import delete, or_
from sqlmodel import Session

from portal.models import LoginChallenge, RateLimit
from portal.models import Session as SessionRow

# Rate-limit windows are only read while they run; a day later they count nothing.
RATE_LIMIT_GRACE = timedelta(days=1)
# Kept a day past their end, so that a support agent can still see "link used / expired" in the audit trail's
# context while a customer is on the phone; then deleted.
GRACE = timedelta(days=1)


def purge_sign_in_records(session: Session, *, now: datetime) -> dict[str, int]:
    """Delete expired challenges, ended or timed-out sessions and old rate-limit windows; returns the counts."""
    challenges = session.execute(delete(LoginChallenge).where(LoginChallenge.expires_at < now - GRACE))
    sessions_table = SessionRow.__table__.c
    sessions = session.execute(
        delete(SessionRow).where(
            or_(
                sessions_table.ended_at < now - GRACE,
                sessions_table.idle_expires_at < now - GRACE,
                sessions_table.absolute_expires_at < now - GRACE,
            )
        )
    )
    return {
        "login_challenges": challenges.rowcount or 0,
        "sessions": sessions.rowcount or 0,
        "rate_limits": session.execute(
            delete(RateLimit).where(RateLimit.window_start < now - RATE_LIMIT_GRACE)
        ).rowcount
        or 0,
    }
