"""A breach notice already sent to a customer, for pages that show it (the overview, /me/notices)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import update
from sqlmodel import Session

from portal.incidents import notices, selection
from portal.models import OutboxMessage
from tests.conftest import email_composer


def notice_sent(session: Session, *, reference: str, customer: str, now: datetime) -> None:
    """Select `customer` (address or retailer id) for the incident and send them its notice; the email is marked
    delivered, so a test reading the inbox (a sign-in code) does not find it first."""
    selection.select_from_list(session, reference=reference, text=customer, actor="staff:1", now=now)
    notices.send_notices(session, reference=reference, composer=email_composer(), actor="staff:1", now=now)
    session.execute(update(OutboxMessage).where(OutboxMessage.topic == notices.EMAIL).values(sent_at=now))
