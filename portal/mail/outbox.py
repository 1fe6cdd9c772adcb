"""Writing to the outbox: in the caller's transaction, so a message exists exactly when its action does."""

from __future__ import annotations

from datetime import datetime

from sqlmodel import Session

from portal.mail.compose import ComposedEmail
from portal.models import OutboxMessage


def enqueue_email(session: Session, *, email: ComposedEmail, topic: str, now: datetime) -> OutboxMessage:
    """Queue `email` for the worker; it leaves only if the surrounding transaction commits."""
    message = OutboxMessage(kind="email", topic=topic, payload=email.as_payload(), created_at=now, next_attempt_at=now)
    session.add(message)
    return message
