"""Restriction (GDPR Art. 18) and objection (Art. 21), as an agent carries them out on a request.

Restriction sets `customer.restricted_at`: the data is kept but not used, and consent reads by the retailer's API
answer "not usable" while it is set. Objection withdraws every consent still given.
"""

from __future__ import annotations

from datetime import datetime

from sqlmodel import Session

from portal.audit import record_audit
from portal.consent import ledger
from portal.consent.register import PurposeRegister
from portal.i18n import gettext
from portal.labels import system_note
from portal.mail.compose import EmailComposer
from portal.requests import actions

OUTCOMES = {"restricted": system_note("restricted"), "objection": system_note("objection")}


def apply_restriction(
    session: Session,
    *,
    reference: str,
    actor: str,
    now: datetime,
    expected_version: int | None = None,
    composer: EmailComposer,
    request_id: str | None = None,
) -> bool:
    """Flag the customer as restricted: data kept, not used; True when the flag was newly set.

    Applies to a restriction request, which it completes, and while a contested rectification or an objection is
    being checked (Art. 18(1)(a) and (d)), which stay open.
    """
    request = actions.request_for(
        session,
        reference=reference,
        expected_version=expected_version,
        types=("restriction", "rectification", "objection"),
    )
    actions.refuse_closed(request)
    customer = actions.customer_of(session, request)
    if customer.erased_at is not None:
        raise actions.ActionRefused(gettext("This customer's data was erased: there is nothing left to restrict."))
    newly = customer.restricted_at is None
    if newly:
        customer.restricted_at = now
        customer.updated_at = now
    actions.add_step(session, request, kind="restricted", actor=actor, now=now)
    record_audit(
        session,
        actor=actor,
        action="customer.restricted",
        target=f"request:{request.reference}",
        detail={"customer": customer.id, "already": not newly},
        now=now,
        request_id=request_id,
    )
    if request.type == "restriction":
        actions.complete_with_outcome(
            session,
            request,
            customer,
            actor=actor,
            now=now,
            outcome=OUTCOMES["restricted"],
            composer=composer,
            request_id=request_id,
        )
    else:
        request.version += 1
    return newly


def lift_restriction(
    session: Session,
    *,
    reference: str,
    actor: str,
    now: datetime,
    reason: str = "",
    expected_version: int | None = None,
    request_id: str | None = None,
) -> bool:
    """Clear the customer's restriction, on the timeline of the request that set it; True when it was set.

    Art. 18(3): the customer is told before the restriction is lifted — the reason is shown on their timeline.
    """
    request = actions.request_for(
        session,
        reference=reference,
        expected_version=expected_version,
        types=("restriction", "rectification", "objection"),
    )
    customer = actions.customer_of(session, request)
    if customer.restricted_at is None:
        return False
    customer.restricted_at = None
    customer.updated_at = now
    request.version += 1
    actions.add_step(
        session, request, kind="restriction_lifted", actor=actor, now=now, note=reason.strip()[:1000] or None
    )
    record_audit(
        session,
        actor=actor,
        action="customer.restriction_lifted",
        target=f"request:{request.reference}",
        detail={"customer": customer.id},
        now=now,
        request_id=request_id,
    )
    return True


def honour_objection(
    session: Session,
    *,
    reference: str,
    actor: str,
    now: datetime,
    register: PurposeRegister,
    expected_version: int | None = None,
    composer: EmailComposer,
    request_id: str | None = None,
) -> list[str]:
    """Withdraw every consent still given (objection to direct marketing is absolute, Art. 21(2)) and complete the
    request; returns the purposes withdrawn."""
    request = actions.request_for(session, reference=reference, expected_version=expected_version, types=("objection",))
    actions.refuse_closed(request)
    customer = actions.customer_of(session, request)
    if customer.erased_at is not None:
        raise actions.ActionRefused(gettext("This customer's data was erased: there is nothing left to object to."))
    withdrawn = ledger.withdraw_all_marketing(
        session,
        register=register,
        customer_id=customer.id,
        channel="support",
        actor=actor,
        now=now,
        locale=customer.preferred_language,
        request_id=request_id,
    )
    record_audit(
        session,
        actor=actor,
        action="objection.honoured",
        target=f"request:{request.reference}",
        detail={"customer": customer.id, "purposes": withdrawn},
        now=now,
        request_id=request_id,
    )
    actions.complete_with_outcome(
        session,
        request,
        customer,
        actor=actor,
        now=now,
        outcome=OUTCOMES["objection"],
        composer=composer,
        request_id=request_id,
    )
    return withdrawn
