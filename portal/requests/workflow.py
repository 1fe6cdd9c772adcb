"""The request state machine: who may move a request where, leaving a timeline, an audit trail and emails behind.

Statuses (portal/models/requests.py): received, in_progress, awaiting_customer are open; completed, rejected and
cancelled are final.

    received ──start──▶ in_progress ──ask_customer──▶ awaiting_customer
       │  │                 ▲                               │
       │  └──ask_customer───┼──────────────────────────────▶│
       │                    └───customer_reply / start ─────┘
       ├──cancel (the customer, before anyone started)──▶ cancelled
       └──complete / reject, from any open status──▶ completed | rejected

- `assign`: any open status, status unchanged (None unassigns); only an active agent or DPO can be assigned.
- `start`: received or awaiting_customer (the answer came by phone) → in_progress.
- `ask_customer`: received or in_progress → awaiting_customer; the question is emailed.
- `customer_reply`: awaiting_customer → in_progress; the customer's own action.
- `message_customer`: any open status, unchanged; the message is emailed.
- `add_note`: any status, closed ones included (a later call is worth writing down); never shown to the customer.
- `extend`: any open status, once, by one or two months, only until the original due date (Art. 12(3): the
  reasons must reach the customer within the first month), with a reason, which is emailed.
- `complete` (with the outcome) and `reject` (with the reason and the right to complain to the CNIL,
  Art. 12(4)): any open status; both are emailed.
- `cancel`: received → cancelled, by the customer; a confirmation is emailed.

Every change is checked against the version the actor saw (`expected_version`; None means "whatever is current")
and written with `UPDATE … WHERE version = :expected`, so of two agents acting at once exactly one wins and the
other gets `StaleRequest`. Each change appends a `RequestEvent`, records an audit event (references only, never
what was written) and bumps `version`, all in the caller's transaction. Emails go out in the customer's preferred
language, through the outbox, only when a `composer` is given and the customer still has an address.
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Mapping
from datetime import datetime

from sqlalchemy import Connection, Update, bindparam, select, update
from sqlalchemy.orm.attributes import set_committed_value
from sqlalchemy.orm.util import identity_key
from sqlmodel import Session

from portal.audit import record_audit
from portal.db import as_connection
from portal.i18n import email_language, gettext, using_locale
from portal.labels import note_text
from portal.mail.compose import EmailComposer
from portal.models import PrivacyRequest, StaffUser
from portal.models.requests import OPEN_STATUSES
from portal.outbox.enqueue import enqueue_email
from portal.requests.deadlines import due_at_for
from portal.requests.service import ADDRESSEE, RequestNotFound, normalise_reference, record_request_event

MAX_EXTENSION_MONTHS = 2
MESSAGE_LIMIT = 2000
REASON_LIMIT = 1000
ASSIGNABLE_ROLES = ("agent", "dpo")

__all__ = [
    "ActionInvalid",
    "LoadedRequest",
    "RequestNotFound",
    "RequestState",
    "StaleRequest",
    "TransitionRefused",
    "add_note",
    "ask_customer",
    "assign",
    "cancel",
    "close_own_download",
    "complete",
    "customer_reply",
    "extend",
    "message_customer",
    "reject",
    "start",
]


class TransitionRefused(Exception):
    """The request cannot go there from where it is; `message` is a translated sentence for the person acting."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class ActionInvalid(TransitionRefused):
    """What was typed cannot be used (empty message, reason too long, bad number of months): a 400, not a 409."""


class StaleRequest(Exception):
    """Someone changed the request since the actor loaded it; nothing was written."""

    def __init__(self, reference: str, current_version: int) -> None:
        self.reference = reference
        self.current_version = current_version
        self.message = gettext(
            "Someone else changed this request while you were working on it. Nothing was saved: "
            "look at the latest version, then try again."
        )
        super().__init__(self.message)


@dataclasses.dataclass(frozen=True)
class RequestState:
    """Where a request stands after a change (what a view needs to redraw it)."""

    reference: str
    status: str
    version: int
    assignee_id: int | None
    due_at: datetime
    extended: bool
    closed_at: datetime | None


# --- The steps -------------------------------------------------------------------------------------------------


def assign(
    db: Session | Connection,
    *,
    reference: str,
    actor: str,
    now: datetime,
    staff_id: int | None,
    expected_version: int | None = None,
    request_id: str | None = None,
) -> RequestState:
    request = _load(db, reference, expected_version)
    _require_status(request, OPEN_STATUSES)
    if staff_id is not None:
        staff = as_connection(db).execute(_ASSIGNEE, {"staff_id": staff_id}).first()
        if staff is None or not staff.active or staff.role not in ASSIGNABLE_ROLES:
            raise ActionInvalid(gettext("This person cannot be given requests: choose an active agent."))
    return _change(
        db,
        request,
        expected_version=expected_version,
        changes={"assignee_id": staff_id},
        event=_Event("assigned", note=f"staff:{staff_id}" if staff_id else None, visible=False),
        action="request.assigned",
        detail={"assignee": f"staff:{staff_id}" if staff_id else None},
        actor=actor,
        now=now,
        request_id=request_id,
    )


def start(
    db: Session | Connection,
    *,
    reference: str,
    actor: str,
    now: datetime,
    expected_version: int | None = None,
    request_id: str | None = None,
) -> RequestState:
    request = _load(db, reference, expected_version)
    _require_status(request, ("received", "awaiting_customer"))
    return _change(
        db,
        request,
        expected_version=expected_version,
        changes={"status": "in_progress"},
        event=_Event("started"),
        action="request.started",
        actor=actor,
        now=now,
        request_id=request_id,
    )


def ask_customer(
    db: Session | Connection,
    *,
    reference: str,
    actor: str,
    now: datetime,
    message: str,
    expected_version: int | None = None,
    composer: EmailComposer,
    request_id: str | None = None,
) -> RequestState:
    """Put a question to the customer; the request waits for their answer (which they give on the portal)."""
    request = _load(db, reference, expected_version)
    _require_status(request, ("received", "in_progress"))
    text = _text(message, MESSAGE_LIMIT, empty=gettext("Write the question for the customer."))
    state = _change(
        db,
        request,
        expected_version=expected_version,
        changes={"status": "awaiting_customer"},
        event=_Event("question", note=text),
        action="request.question_asked",
        actor=actor,
        now=now,
        request_id=request_id,
    )
    _email_customer(db, request, composer, "request-question", {"message": text}, now=now)
    return state


def customer_reply(
    db: Session | Connection,
    *,
    reference: str,
    actor: str,
    now: datetime,
    message: str,
    expected_version: int | None = None,
    customer_id: int | None = None,
    request_id: str | None = None,
) -> RequestState:
    """The customer answers the agent's question; the request goes back to the agent.

    `customer_id` limits the lookup to that customer's requests (another's reference is not found, not refused).
    """
    request = _load(db, reference, expected_version, customer_id=customer_id)
    if request.status != "awaiting_customer":
        raise TransitionRefused(gettext("This request is not waiting for an answer from you any more."))
    text = _text(message, MESSAGE_LIMIT, empty=gettext("Write your answer before sending it."))
    return _change(
        db,
        request,
        expected_version=expected_version,
        changes={"status": "in_progress"},
        event=_Event("reply", note=text),
        action="request.customer_replied",
        actor=actor,
        now=now,
        request_id=request_id,
    )


def message_customer(
    db: Session | Connection,
    *,
    reference: str,
    actor: str,
    now: datetime,
    message: str,
    expected_version: int | None = None,
    composer: EmailComposer,
    request_id: str | None = None,
) -> RequestState:
    request = _load(db, reference, expected_version)
    _require_status(request, OPEN_STATUSES)
    text = _text(message, MESSAGE_LIMIT, empty=gettext("Write the message for the customer."))
    state = _change(
        db,
        request,
        expected_version=expected_version,
        changes={},
        event=_Event("message", note=text),
        action="request.message_sent",
        actor=actor,
        now=now,
        request_id=request_id,
    )
    _email_customer(db, request, composer, "request-message", {"message": text}, now=now)
    return state


def add_note(
    db: Session | Connection,
    *,
    reference: str,
    actor: str,
    now: datetime,
    note: str,
    expected_version: int | None = None,
    request_id: str | None = None,
) -> RequestState:
    """An internal note for the staff; the customer never sees it (but could in an access request: stay factual)."""
    request = _load(db, reference, expected_version)
    text = _text(note, MESSAGE_LIMIT, empty=gettext("Write the note before saving it."))
    return _change(
        db,
        request,
        expected_version=expected_version,
        changes={},
        event=_Event("note", note=text, visible=False),
        action="request.note_added",
        actor=actor,
        now=now,
        request_id=request_id,
    )


def load_request(db: Session | Connection, reference: str) -> LoadedRequest:
    """The request `reference` (raises RequestNotFound), fresh from the database."""
    return _load(db, reference, None)


def set_internal_mark(
    db: Session | Connection,
    *,
    reference: str,
    actor: str,
    now: datetime,
    expected_version: int | None,
    key: str,
    value: object,
    kind: str,
    action: str,
    note: str | None = None,
    request_id: str | None = None,
) -> RequestState:
    """Set (or, with None, remove) one internal mark in the open request's details, with a staff-only timeline step:
    what the back office arranges among itself (an erasure waiting for approval) and the customer need not see."""
    request = _load(db, reference, expected_version)
    _require_status(request, OPEN_STATUSES)
    details = {k: v for k, v in (request.details or {}).items() if k != key}
    if value is not None:
        details[key] = value
    text = (
        _text(note, MESSAGE_LIMIT, empty=gettext("Say why, for the person who proposed it."))
        if note is not None
        else None
    )
    return _change(
        db,
        request,
        expected_version=expected_version,
        changes={"details": details or None},
        event=_Event(kind, note=text, visible=False),
        action=action,
        actor=actor,
        now=now,
        request_id=request_id,
    )


def extend(
    db: Session | Connection,
    *,
    reference: str,
    actor: str,
    now: datetime,
    months: int,
    reason: str,
    expected_version: int | None = None,
    composer: EmailComposer,
    timezone: str,
    request_id: str | None = None,
) -> RequestState:
    """Push the due date back by `months` (1 or 2), once, before the original due date, telling the customer why.

    The new due date counts from receipt (received 31 January, extended by two months: due 30 April), which is how
    Art. 12(3) reads: "one month", "extended by two further months", three months in all.
    """
    request = _load(db, reference, expected_version)
    _require_status(request, OPEN_STATUSES)
    if request.extended_due_at is not None:
        raise TransitionRefused(gettext("The deadline of this request has already been extended once."))
    if now > request.due_at:
        raise TransitionRefused(
            gettext("The original deadline has passed: an extension can only be decided and told before it.")
        )
    if not isinstance(months, int) or isinstance(months, bool) or not 1 <= months <= MAX_EXTENSION_MONTHS:
        raise ActionInvalid(gettext("A deadline can be extended by one or two months."))
    text = _text(reason, REASON_LIMIT, empty=gettext("Give the reason for the extension: the customer is told."))
    new_due = due_at_for(request.received_at, timezone=timezone, months=1 + months)
    state = _change(
        db,
        request,
        expected_version=expected_version,
        changes={"extended_due_at": new_due, "extension_reason": text},
        event=_Event("extended", note=text),
        action="request.extended",
        detail={"months": months, "due": new_due.isoformat()},
        actor=actor,
        now=now,
        request_id=request_id,
    )
    _email_customer(
        db,
        request,
        composer,
        "request-extended",
        {"reason": text, "due_at": new_due, "original_due_at": request.due_at, "months": months},
        now=now,
    )
    return state


def complete(
    db: Session | Connection,
    *,
    reference: str,
    actor: str,
    now: datetime,
    outcome: str,
    expected_version: int | None = None,
    composer: EmailComposer,
    request_id: str | None = None,
) -> RequestState:
    request = _load(db, reference, expected_version)
    _require_status(request, OPEN_STATUSES)
    text = _text(outcome, MESSAGE_LIMIT, empty=gettext("Tell the customer what was done."))
    state = _change(
        db,
        request,
        expected_version=expected_version,
        changes={"status": "completed", "outcome": text, "closed_at": now},
        event=_Event("completed", note=text),
        action="request.completed",
        actor=actor,
        now=now,
        request_id=request_id,
    )
    _email_customer(db, request, composer, "request-completed", {"outcome": text}, now=now)
    return state


def reject(
    db: Session | Connection,
    *,
    reference: str,
    actor: str,
    now: datetime,
    reason: str,
    expected_version: int | None = None,
    composer: EmailComposer,
    request_id: str | None = None,
) -> RequestState:
    """Refuse the request (Art. 12(5): manifestly unfounded or excessive, or an exception applies), with reasons."""
    request = _load(db, reference, expected_version)
    _require_status(request, OPEN_STATUSES)
    text = _text(reason, REASON_LIMIT, empty=gettext("Give the reason for the refusal: the customer is told."))
    state = _change(
        db,
        request,
        expected_version=expected_version,
        changes={"status": "rejected", "outcome": text, "closed_at": now},
        event=_Event("rejected", note=text),
        action="request.rejected",
        actor=actor,
        now=now,
        request_id=request_id,
    )
    _email_customer(db, request, composer, "request-rejected", {"reason": text}, now=now)
    return state


def cancel(
    db: Session | Connection,
    *,
    reference: str,
    actor: str,
    now: datetime,
    expected_version: int | None = None,
    customer_id: int | None = None,
    composer: EmailComposer,
    language: str | None = None,
    request_id: str | None = None,
) -> RequestState:
    """The customer withdraws a request nobody has started on (afterwards, they write to the agent instead).

    `language`: the page's, when the customer cancels from a page (the confirmation goes out in it).
    """
    request = _load(db, reference, expected_version, customer_id=customer_id)
    if request.status == "cancelled":
        raise TransitionRefused(gettext("This request is already cancelled."))
    if request.status in OPEN_STATUSES and request.status != "received":
        raise TransitionRefused(
            gettext("This request can no longer be cancelled: our team has already started working on it.")
        )
    _require_status(request, ("received",))
    state = _change(
        db,
        request,
        expected_version=expected_version,
        changes={"status": "cancelled", "closed_at": now},
        event=_Event("cancelled"),
        action="request.cancelled",
        actor=actor,
        now=now,
        request_id=request_id,
    )
    _email_customer(db, request, composer, "request-cancelled", {}, now=now, acting_on_page=language)
    return state


def close_own_download(
    db: Session | Connection,
    *,
    reference: str,
    actor: str,
    now: datetime,
    finished: bool,
    outcome: str = "",
    request_id: str | None = None,
) -> RequestState:
    """Close the portability request of a download the customer started themselves: completed when the archive left
    whole, cancelled when they went away. The only closing step without an email, because nobody decided anything:
    the customer did it, in front of the page (and their browser's download) that shows the result."""
    request = _load(db, reference, None)
    _require_status(request, OPEN_STATUSES)
    if finished:
        text = _text(outcome, MESSAGE_LIMIT, empty=gettext("Tell the customer what was done."))
        changes: dict[str, object] = {"status": "completed", "outcome": text, "closed_at": now}
        event, action = _Event("completed", note=text), "request.completed"
    else:
        changes, event, action = {"status": "cancelled", "closed_at": now}, _Event("cancelled"), "request.cancelled"
    return _change(
        db,
        request,
        expected_version=None,
        changes=changes,
        event=event,
        action=action,
        actor=actor,
        now=now,
        request_id=request_id,
    )


# --- How every step is written ---------------------------------------------------------------------------------


# Built once (issue 17), and Core: a step reads the columns it decides on rather than a PrivacyRequest object, so it
# runs on a bare connection where its caller has one (a staff action, a customer's reply); the ORM's loading and
# its Session cost more than SQLite's answer (bench/README.md, "Issue 17").
_REQUESTS = PrivacyRequest.__table__
_LOADED_COLUMNS = (
    _REQUESTS.c.id,
    _REQUESTS.c.reference,
    _REQUESTS.c.customer_id,
    _REQUESTS.c.type,
    _REQUESTS.c.status,
    _REQUESTS.c.version,
    _REQUESTS.c.assignee_id,
    _REQUESTS.c.received_at,
    _REQUESTS.c.due_at,
    _REQUESTS.c.extended_due_at,
    _REQUESTS.c.closed_at,
    _REQUESTS.c.details,
)
_LOADED_NAMES = frozenset(column.key for column in _LOADED_COLUMNS)
_BY_REFERENCE = select(*_LOADED_COLUMNS).where(_REQUESTS.c.reference == bindparam("reference"))
_BY_REFERENCE_OF_CUSTOMER = _BY_REFERENCE.where(_REQUESTS.c.customer_id == bindparam("customer_id"))
_VERSION = select(_REQUESTS.c.version).where(_REQUESTS.c.id == bindparam("request_id"))
_STAFF = StaffUser.__table__
_ASSIGNEE = select(_STAFF.c.active, _STAFF.c.role).where(_STAFF.c.id == bindparam("staff_id"))


@dataclasses.dataclass(frozen=True)
class LoadedRequest:
    """What a step reads of a request before changing it (the columns of `_LOADED_COLUMNS`)."""

    id: int
    reference: str
    customer_id: int | None
    type: str
    status: str
    version: int
    assignee_id: int | None
    received_at: datetime
    due_at: datetime
    extended_due_at: datetime | None
    closed_at: datetime | None
    details: dict | None

    @property
    def effective_due_at(self) -> datetime:
        return self.extended_due_at or self.due_at


@functools.cache
def _update_statement(columns: tuple[str, ...]) -> Update:
    """UPDATE of `columns` and the version, guarded by the version read (one statement per set of columns)."""
    table = _REQUESTS
    return (
        update(table)
        .where(table.c.id == bindparam("request_id"), table.c.version == bindparam("seen"))
        .values(
            {
                **{name: bindparam(f"new_{name}", type_=table.c[name].type) for name in columns},
                "version": bindparam("seen") + 1,
            }
        )
    )


@dataclasses.dataclass(frozen=True)
class _Event:
    kind: str
    note: str | None = None
    visible: bool = True


def _load(
    db: Session | Connection, reference: str, expected_version: int | None, *, customer_id: int | None = None
) -> LoadedRequest:
    if isinstance(db, Session):
        # A caller holding objects (erasure blanks the customer before it completes) has its changes in the database
        # before this step reads the request or, later, the customer's address: a Core read does not autoflush.
        db.flush()
    canonical = normalise_reference(reference)
    row = None
    if canonical and customer_id is None:
        row = as_connection(db).execute(_BY_REFERENCE, {"reference": canonical}).first()
    elif canonical:
        params = {"reference": canonical, "customer_id": customer_id}
        row = as_connection(db).execute(_BY_REFERENCE_OF_CUSTOMER, params).first()
    if row is None:
        raise RequestNotFound(reference)
    request = LoadedRequest(**row._asdict())
    # Checked before the rules: "someone changed it" explains a refusal better than the refusal itself.
    if expected_version is not None and request.version != expected_version:
        raise StaleRequest(request.reference, request.version)
    return request


def _require_status(request: PrivacyRequest, allowed: tuple[str, ...]) -> None:
    if request.status in allowed:
        return
    if request.status not in OPEN_STATUSES:
        raise TransitionRefused(gettext("This request is closed: it can no longer be changed."))
    raise TransitionRefused(gettext("This action is not possible while the request has this status."))


def _text(value: str | None, limit: int, *, empty: str) -> str:
    text = (value or "").strip()
    if not text:
        raise ActionInvalid(empty)
    if len(text) > limit:
        raise ActionInvalid(gettext("This text is too long: %(limit)s characters at most.") % {"limit": limit})
    return text


def _change(
    db: Session | Connection,
    request: LoadedRequest,
    *,
    expected_version: int | None,
    changes: Mapping[str, object],
    event: _Event,
    action: str,
    actor: str,
    now: datetime,
    detail: dict | None = None,
    request_id: str | None = None,
) -> RequestState:
    seen = request.version if expected_version is None else expected_version
    connection = as_connection(db)
    # The version in the WHERE clause is the lock: between our read and this write another agent may have
    # committed; then no row matches and nothing of ours is written.
    result = connection.execute(
        _update_statement(tuple(sorted(changes))),
        {**{f"new_{name}": value for name, value in changes.items()}, "request_id": request.id, "seen": seen},
    )
    if result.rowcount != 1:
        current = connection.execute(_VERSION, {"request_id": request.id}).scalar()
        raise StaleRequest(request.reference, current or seen)
    # What the step now holds of the request (the outcome and the extension's reason are written, not read back).
    kept = {name: value for name, value in changes.items() if name in _LOADED_NAMES}
    changed = dataclasses.replace(request, **kept, version=seen + 1)
    if isinstance(db, Session):
        _keep_in_step(db, request.id, {**changes, "version": seen + 1})
    record_request_event(
        db,
        request_id=request.id,
        occurred_at=now,
        actor=actor,
        kind=event.kind,
        note=event.note,
        visible_to_customer=event.visible,
    )
    record_audit(
        db,
        actor=actor,
        action=action,
        target=f"request:{request.reference}",
        detail={"from": request.status, "to": changed.status, "version": changed.version, **(detail or {})},
        now=now,
        request_id=request_id,
    )
    return RequestState(
        reference=changed.reference,
        status=changed.status,
        version=changed.version,
        assignee_id=changed.assignee_id,
        due_at=changed.effective_due_at,
        extended=changed.extended_due_at is not None,
        closed_at=changed.closed_at,
    )


def _keep_in_step(session: Session, request_id: int, written: Mapping[str, object]) -> None:
    """A caller that holds the request as an object in its Session (erasure, a correction) sees what was written,
    as if the ORM had written it, with nothing left to flush."""
    held = session.identity_map.get(identity_key(PrivacyRequest, request_id))
    if held is not None:
        for name, value in written.items():
            set_committed_value(held, name, value)


def _email_customer(
    db: Session | Connection,
    request: LoadedRequest,
    composer: EmailComposer,
    name: str,
    context: Mapping[str, object],
    *,
    now: datetime,
    acting_on_page: str | None = None,
) -> None:
    if request.customer_id is None:  # a request filed for no account (by post, say) is answered outside the portal
        return
    customer = as_connection(db).execute(ADDRESSEE, {"customer_id": request.customer_id}).first()
    if customer is None or customer.erased_at is not None or not customer.email:
        return
    language = email_language(customer.preferred_language, acting_on_page=acting_on_page)
    with using_locale(language):  # the portal's own texts (stored as codes) in the email's language
        context = {key: note_text(value) if isinstance(value, str) else value for key, value in context.items()}
    email = composer.compose(
        name,
        to=customer.email,
        language=language,
        context={
            "first_name": customer.first_name or "",
            "reference": request.reference,
            "type": request.type,
            "received_at": request.received_at,
            "due_at": request.effective_due_at,
            **context,
        },
    )
    enqueue_email(db, email=email, topic=name, now=now)
