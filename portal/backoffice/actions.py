"""What an agent does to a request from the back office, each action named as in its URL
(`POST /staff/requests/{reference}/{action}`), taking the posted form and answering which notice to show.

Every action runs in the caller's single transaction through the request's state machine (`portal.requests`), so it
is version-checked, on the timeline, audited, and told to the customer by email where the law wants them told. The
composer is a required argument of every action that can email: no code path can drop a notice by forgetting it.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from datetime import datetime
from typing import TypedDict

from sqlalchemy import Connection
from sqlmodel import Session

from portal.backoffice import detail
from portal.consent.register import PurposeRegister
from portal.erasure import approval
from portal.erasure import service as erasure
from portal.i18n import gettext
from portal.mail.compose import EmailComposer
from portal.portability import service as portability
from portal.requests import restriction, workflow
from portal.settings import Settings

Action = Callable[..., str]


class Step(TypedDict):
    """The arguments every step of the state machine takes."""

    reference: str
    actor: str
    now: datetime
    expected_version: int | None
    request_id: str | None


@dataclasses.dataclass(frozen=True, kw_only=True)
class Acting:
    """Who acts on which request and when, the version they saw, and what the app provides to every action."""

    reference: str
    actor: str
    staff_id: int
    role: str
    now: datetime
    expected_version: int | None
    request_id: str | None
    composer: EmailComposer
    settings: Settings
    register: PurposeRegister

    @property
    def step(self) -> Step:
        return Step(
            reference=self.reference,
            actor=self.actor,
            now=self.now,
            expected_version=self.expected_version,
            request_id=self.request_id,
        )


def _assign(db: Session | Connection, acting: Acting, form: Mapping[str, str]) -> str:
    target = form.get("assignee", "")
    if target not in ("me", "none") and not (target.isdigit() and len(target) < 10):
        raise workflow.ActionInvalid(gettext("Choose who gets the request."))
    assignee = acting.staff_id if target == "me" else None if target == "none" else int(target)
    workflow.assign(db, **acting.step, staff_id=assignee)
    return "assigned" if assignee else "unassigned"


def _start(db: Session | Connection, acting: Acting, form: Mapping[str, str]) -> str:
    workflow.start(db, **acting.step)
    return "started"


def _note(db: Session | Connection, acting: Acting, form: Mapping[str, str]) -> str:
    workflow.add_note(db, **acting.step, note=form.get("note", ""))
    return "note"


def _message(db: Session | Connection, acting: Acting, form: Mapping[str, str]) -> str:
    workflow.message_customer(db, **acting.step, message=form.get("message", ""), composer=acting.composer)
    return "message"


def _question(db: Session | Connection, acting: Acting, form: Mapping[str, str]) -> str:
    workflow.ask_customer(db, **acting.step, message=form.get("message", ""), composer=acting.composer)
    return "question"


def _extend(db: Session | Connection, acting: Acting, form: Mapping[str, str]) -> str:
    raw = form.get("months", "")
    workflow.extend(
        db,
        **acting.step,
        months=int(raw) if raw in ("1", "2") else 0,  # the step refuses anything else with its own message
        reason=form.get("reason", ""),
        composer=acting.composer,
        timezone=acting.settings.timezone,
    )
    return "extended"


def _complete(db: Session | Connection, acting: Acting, form: Mapping[str, str]) -> str:
    workflow.complete(db, **acting.step, outcome=form.get("outcome", ""), composer=acting.composer)
    return "completed"


def _reject(db: Session | Connection, acting: Acting, form: Mapping[str, str]) -> str:
    workflow.reject(db, **acting.step, reason=form.get("reason", ""), composer=acting.composer)
    return "rejected"


def _rectify(session: Session, acting: Acting, form: Mapping[str, str]) -> str:
    detail.apply_correction(
        session,
        **acting.step,
        values=form,
        outcome=form.get("outcome", ""),
        composer=acting.composer,
    )
    return "rectified"


def _erase(session: Session, acting: Acting, form: Mapping[str, str]) -> str:
    if form.get("confirm") != "yes":
        raise workflow.ActionInvalid(gettext("Tick the box to confirm the erasure."))
    if acting.settings.erasure_approval == "dpo":
        if approval.proposer_of(session, acting.reference) is None:
            approval.propose(session, **acting.step, staff_id=acting.staff_id)
            return "erasure_proposed"
        approval.check_approver(session, reference=acting.reference, staff_id=acting.staff_id, role=acting.role)
    erasure.execute_erasure(
        session,
        **acting.step,
        composer=acting.composer,
        settings=acting.settings,
        register=acting.register,
    )
    return "erased"


def _decline_erasure(session: Session, acting: Acting, form: Mapping[str, str]) -> str:
    if acting.role != "dpo":
        raise workflow.TransitionRefused(gettext("Only a DPO decides on a proposed erasure."))
    approval.decline(session, **acting.step, note=form.get("note", ""))
    return "erasure_declined"


def _restrict(session: Session, acting: Acting, form: Mapping[str, str]) -> str:
    restriction.apply_restriction(session, **acting.step, composer=acting.composer)
    return "restricted"


def _lift_restriction(session: Session, acting: Acting, form: Mapping[str, str]) -> str:
    restriction.lift_restriction(session, **acting.step, reason=form.get("reason", ""))
    return "restriction_lifted"


def _objection(session: Session, acting: Acting, form: Mapping[str, str]) -> str:
    restriction.honour_objection(session, **acting.step, register=acting.register, composer=acting.composer)
    return "objection"


def _download_link(session: Session, acting: Acting, form: Mapping[str, str]) -> str:
    found = detail.request_detail(
        session, reference=acting.reference, now=acting.now, timezone=acting.settings.timezone
    )
    if found.type not in portability.LINK_REQUEST_TYPES or not found.is_open:
        raise workflow.TransitionRefused(gettext("A download link goes with an open access or portability request."))
    if acting.expected_version and acting.expected_version != found.version:
        raise workflow.StaleRequest(found.reference, found.version)
    if found.customer is None or found.customer.erased_at is not None:
        raise workflow.TransitionRefused(gettext("This customer's data was erased: there is nothing to send."))
    try:
        portability.send_download_link(
            session,
            customer_id=found.customer.id,
            reference=found.reference,
            actor=acting.actor,
            now=acting.now,
            composer=acting.composer,
            settings=acting.settings,
            request_id=acting.request_id,
        )
    except portability.DownloadLinkRefused as exc:
        raise workflow.TransitionRefused(str(exc)) from None
    return "link_sent"


# The URL's last segment -> the action. A name missing here is a 404: nothing is looked up by attribute.
ACTIONS: dict[str, Action] = {
    "assign": _assign,
    "start": _start,
    "note": _note,
    "message": _message,
    "question": _question,
    "extend": _extend,
    "complete": _complete,
    "reject": _reject,
    "rectify": _rectify,
    "erase": _erase,
    "decline-erasure": _decline_erasure,
    "restrict": _restrict,
    "lift-restriction": _lift_restriction,
    "objection": _objection,
    "download-link": _download_link,
}


# The actions that are one step of the state machine and nothing else: its Core statements run on the bare
# connection of their transaction (issue 17). The others (erasure, a correction, a restriction) work on ORM objects.
STEPS = frozenset({"assign", "start", "note", "message", "question", "extend", "complete", "reject"})


def perform(session: Session, *, action: str, acting: Acting, form: Mapping[str, str]) -> str:
    """Run `action` on the request; returns the notice to show (`assigned`, `erased` …).

    Raises KeyError for an unknown action, RequestNotFound, workflow.StaleRequest, detail.CorrectionInvalid,
    workflow.ActionInvalid (bad input: a 400) and workflow.TransitionRefused (not possible now: a 409).
    """
    return ACTIONS[action](session, acting, form)


def perform_step(db: Session | Connection, *, action: str, acting: Acting, form: Mapping[str, str]) -> str:
    """`perform` for an action of STEPS, which needs no Session (raises KeyError for any other)."""
    if action not in STEPS:
        raise KeyError(action)
    return ACTIONS[action](db, acting, form)


def performer(action: str) -> Callable[..., str]:
    """What runs `action` in its transaction: `perform_step` for a step alone, `perform` for the rest."""
    return perform_step if action in STEPS else perform
