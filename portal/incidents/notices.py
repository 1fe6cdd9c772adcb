"""Telling the customers a breach concerns (GDPR Art. 34), in their language, each exactly once.

Sending works in batches: each batch queues the emails through the outbox and marks those customers notified in one
transaction, so a batch is either wholly sent-and-marked or not at all. A crash or restart between batches, or two
DPOs pressing "send" at once (rows locked, SKIP LOCKED on PostgreSQL), can never tell anyone twice; pressing again
simply continues with who is left.
"""

from __future__ import annotations

import dataclasses
from datetime import datetime, timedelta

from sqlalchemy import select
from sqlmodel import Session

from portal.audit import record_audit
from portal.errors import CustomerNotFound
from portal.i18n import lazy_gettext
from portal.incidents.selection import SelectionRefused
from portal.incidents.service import incident_by_reference
from portal.mail.compose import ComposedEmail, EmailComposer
from portal.models import Customer, Incident, IncidentRecipient, email_key
from portal.outbox.enqueue import enqueue_email

EMAIL = "incident-notice"
BATCH = 200  # emails queued per press of "send": the outbox worker then delivers them at its own pace
# How long a notice stays in full on the customer's overview; it stays in their notice history (/me/notices) for good.
RECENT_NOTICE = timedelta(days=90)


@dataclasses.dataclass(frozen=True)
class CustomerNotice:
    reference: str
    discovered_at: datetime
    notified_at: datetime
    parts: dict[str, str]  # nature, consequences, measures, advice, in the customer's language


def _context(incident: Incident, customer: Customer) -> dict[str, object]:
    language = customer.preferred_language if customer.preferred_language in (incident.notice or {}) else "fr"
    return {
        "reference": incident.reference,
        "first_name": customer.first_name,
        "discovered_at": incident.discovered_at,
        **(incident.notice or {}).get(language, {}),
    }


def _compose(composer: EmailComposer, incident: Incident, customer: Customer) -> ComposedEmail:
    return composer.compose(
        EMAIL, to=customer.email or "", language=customer.preferred_language, context=_context(incident, customer)
    )


def preview_notice(session: Session, *, reference: str, customer: str, composer: EmailComposer) -> ComposedEmail:
    """The notice as the customer named by `customer` (address or retailer id) would receive it, in their language."""
    incident = incident_by_reference(session, reference)
    if not incident.notice:
        raise SelectionRefused(lazy_gettext("Write the notice first."))
    key = customer.strip()
    column = Customer.email_key if "@" in key else Customer.retailer_ref
    found = session.scalars(
        select(Customer).where(column == (email_key(key) if "@" in key else key), Customer.erased_at.is_(None))
    ).first()
    if found is None or not found.email:
        raise SelectionRefused(lazy_gettext("No customer with this address or id"))
    return _compose(composer, incident, found)


def send_notices(
    session: Session,
    *,
    reference: str,
    composer: EmailComposer,
    actor: str,
    now: datetime,
    limit: int = BATCH,
    request_id: str | None = None,
) -> int:
    """Queue the notice to up to `limit` selected customers not told yet; returns how many were queued."""
    incident = incident_by_reference(session, reference)
    if not incident.notice:
        raise SelectionRefused(lazy_gettext("Write the notice first."))
    pending = session.execute(
        select(IncidentRecipient, Customer)
        .join(Customer, Customer.id == IncidentRecipient.customer_id)
        .where(
            IncidentRecipient.incident_id == incident.id,
            IncidentRecipient.notified_at.is_(None),
            Customer.erased_at.is_(None),
            Customer.email.is_not(None),
        )
        .order_by(IncidentRecipient.id)
        .limit(limit)
        .with_for_update(skip_locked=True, of=IncidentRecipient)
    ).all()
    for recipient, customer in pending:
        enqueue_email(session, email=_compose(composer, incident, customer), topic=EMAIL, now=now)
        recipient.notified_at = now
    if pending:
        record_audit(
            session,
            actor=actor,
            action="incident.notices_sent",
            target=f"incident:{incident.reference}",
            detail={"count": len(pending)},
            now=now,
            request_id=request_id,
        )
    return len(pending)


def notices_for_customer(session: Session, *, customer_id: int, language: str) -> list[CustomerNotice]:
    """The breach notices sent to the customer, newest first, in `language` when the notice has it."""
    rows = session.execute(
        select(Incident, IncidentRecipient.notified_at)
        .join(IncidentRecipient, IncidentRecipient.incident_id == Incident.id)
        .where(IncidentRecipient.customer_id == customer_id, IncidentRecipient.notified_at.is_not(None))
        .order_by(IncidentRecipient.notified_at.desc())
    ).all()
    return [
        notice_told(incident.reference, incident.discovered_at, notified_at, incident.notice, language)
        for incident, notified_at in rows
    ]


def notice_told(
    reference: str, discovered_at: datetime, notified_at: datetime, texts: dict | None, language: str
) -> CustomerNotice:
    """A notice as the customer reads it: in `language` when the notice has it, else in French."""
    texts = texts or {}
    return CustomerNotice(reference, discovered_at, notified_at, texts.get(language) or texts.get("fr") or {})


def notice_history(session: Session, *, customer_id: int, language: str) -> list[CustomerNotice]:
    """Every breach notice the customer was sent, newest first (/me/notices); refuses an erased or unknown id."""
    held = session.scalar(select(Customer.id).where(Customer.id == customer_id, Customer.erased_at.is_(None)))
    if held is None:
        raise CustomerNotFound(customer_id)
    return notices_for_customer(session, customer_id=customer_id, language=language)
