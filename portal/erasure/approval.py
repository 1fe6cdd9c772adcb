"""A second pair of eyes on erasure (OWASP ASVS 5.0 2.3.5): with PORTAL_ERASURE_APPROVAL=dpo, an erasure is first
proposed by one person, then carried out only when a DPO other than the proposer approves it.

The proposal lives on the request (its details, `erasure_proposed_by`) and on its timeline, hidden from the
customer: a wait for an internal approval is not an answer. Off by default: a small team has one DPO who also acts.
"""

from __future__ import annotations

from datetime import datetime

from sqlmodel import Session

from portal.i18n import gettext
from portal.requests import workflow

PROPOSED_BY = "erasure_proposed_by"


class ApprovalRefused(workflow.TransitionRefused):
    """Who acts may not carry out this erasure now (not a DPO, or the person who proposed it)."""


def proposer_of(session: Session, reference: str) -> int | None:
    """The staff id of whoever proposed the erasure of request `reference`, if it waits for approval."""
    request = workflow.load_request(session, reference)
    value = (request.details or {}).get(PROPOSED_BY)
    return value if isinstance(value, int) else None


def propose(
    session: Session,
    *,
    reference: str,
    actor: str,
    staff_id: int,
    now: datetime,
    expected_version: int | None,
    request_id: str | None,
) -> None:
    workflow.set_internal_mark(
        session,
        reference=reference,
        actor=actor,
        now=now,
        expected_version=expected_version,
        key=PROPOSED_BY,
        value=staff_id,
        kind="erasure_proposed",
        action="erasure.proposed",
        request_id=request_id,
    )


def check_approver(session: Session, *, reference: str, staff_id: int, role: str) -> None:
    """Raises ApprovalRefused unless a DPO other than the proposer acts."""
    proposer = proposer_of(session, reference)
    if role != "dpo":
        raise ApprovalRefused(gettext("This erasure waits for a DPO's approval."))
    if proposer == staff_id:
        raise ApprovalRefused(gettext("You proposed this erasure: another DPO must approve it."))


def decline(
    session: Session,
    *,
    reference: str,
    actor: str,
    now: datetime,
    note: str,
    expected_version: int | None,
    request_id: str | None,
) -> None:
    workflow.set_internal_mark(
        session,
        reference=reference,
        actor=actor,
        now=now,
        expected_version=expected_version,
        key=PROPOSED_BY,
        value=None,
        kind="erasure_declined",
        action="erasure.declined",
        note=note,
        request_id=request_id,
    )
