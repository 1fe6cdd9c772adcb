"""Acting on a request from the back office: find it (locked), check its type, status and version, add a timeline
step, close it with an outcome told to the customer. Erasure, restriction and objection share these.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

from sqlalchemy import select
from sqlmodel import Session

from portal.i18n import gettext
from portal.mail.compose import EmailComposer
from portal.models import Customer, PrivacyRequest
from portal.models.requests import OPEN_STATUSES
from portal.requests import workflow
from portal.requests.service import RequestNotFound, normalise_reference, record_request_event
from portal.requests.workflow import StaleRequest


class ActionRefused(workflow.TransitionRefused):
    """The request cannot be acted on this way; `message` is a translated sentence for the agent."""


def request_for(
    session: Session, *, reference: str, expected_version: int | None, types: Iterable[str]
) -> PrivacyRequest:
    """The request, locked for the rest of the transaction (PostgreSQL), after the type and version checks."""
    canonical = normalise_reference(reference)
    request = (
        session.scalars(select(PrivacyRequest).where(PrivacyRequest.reference == canonical).with_for_update()).first()
        if canonical
        else None
    )
    if request is None:
        raise RequestNotFound(reference)
    if expected_version is not None and request.version != expected_version:
        raise StaleRequest(request.reference, request.version)
    if request.type not in types:
        raise ActionRefused(gettext("This action does not apply to this type of request."))
    return request


def customer_of(session: Session, request: PrivacyRequest) -> Customer:
    customer = session.get(Customer, request.customer_id, with_for_update=True) if request.customer_id else None
    if customer is None:
        raise ActionRefused(gettext("This request is not linked to a customer account."))
    return customer


def refuse_closed(request: PrivacyRequest) -> None:
    if request.status not in OPEN_STATUSES:
        raise ActionRefused(gettext("This request is closed: it can no longer be changed."))


def add_step(
    session: Session,
    request: PrivacyRequest,
    *,
    kind: str,
    actor: str,
    now: datetime,
    note: str | None = None,
    visible: bool = True,
) -> None:
    """One step on the request's timeline, written at once: it keeps its place before the steps that follow it."""
    record_request_event(
        session,
        request_id=request.id,
        occurred_at=now,
        actor=actor,
        kind=kind,
        note=note,
        visible_to_customer=visible,
    )


def complete_with_outcome(
    session: Session,
    request: PrivacyRequest,
    customer: Customer,
    *,
    actor: str,
    now: datetime,
    outcome: str,
    composer: EmailComposer,
    request_id: str | None,
) -> None:
    """Close the request through the workflow (timeline, audit, version, email). `outcome` is the portal's own text
    (`labels.system_note`): stored as its code, it is read in each reader's language."""
    workflow.complete(
        session,
        reference=request.reference,
        actor=actor,
        now=now,
        outcome=outcome,
        expected_version=request.version,
        composer=composer,
        request_id=request_id,
    )
