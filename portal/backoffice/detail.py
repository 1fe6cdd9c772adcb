"""One request as an agent sees it: the request, the customer's data summary, the whole timeline (internal notes
included), and applying a correction the customer asked for."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from datetime import date, datetime

from sqlalchemy import select
from sqlmodel import Session

from portal.audit import record_audit, staff_id_of
from portal.backoffice.queue import Choice, assignee_choices, days_left
from portal.consent.register import PurposeRegister
from portal.erasure.service import ErasurePlan, plan_erasure
from portal.errors import CustomerNotFound, RequestNotFound
from portal.i18n import gettext
from portal.models import Customer, PrivacyRequest, RequestEvent, StaffUser, Store
from portal.models.requests import OPEN_STATUSES
from portal.mydata.service import Overview, overview_for
from portal.profile import service as rectification
from portal.profile.forms import EDITABLE_FIELDS, MESSAGES
from portal.requests import workflow
from portal.requests.service import find_request

ADDRESS_COLUMNS = ("address_line1", "address_line2", "postal_code", "city", "country")


@dataclasses.dataclass(frozen=True)
class CustomerSummary:
    id: int
    first_name: str | None
    last_name: str | None
    email: str | None
    phone: str | None
    address: tuple[str, ...]  # the non-empty lines of the postal address
    country: str | None
    birth_date: date | None
    loyalty_number: str | None
    preferred_language: str
    restricted_at: datetime | None
    erased_at: datetime | None
    overview: Overview | None  # None once erased


@dataclasses.dataclass(frozen=True)
class TimelineEntry:
    occurred_at: datetime
    actor: str
    actor_name: str | None
    kind: str
    note: str | None
    visible_to_customer: bool


@dataclasses.dataclass(frozen=True)
class RequestDetail:
    reference: str
    type: str
    channel: str
    status: str
    store_name: str | None
    received_at: datetime
    original_due_at: datetime
    due_at: datetime
    extended: bool
    extension_reason: str | None
    days_left: int
    assignee_id: int | None
    assignee_name: str | None
    details: dict
    outcome: str | None
    closed_at: datetime | None
    version: int
    customer: CustomerSummary | None
    timeline: list[TimelineEntry]
    staff_names: dict[int, str] = dataclasses.field(default_factory=dict)  # who the ids in `details` are

    @property
    def is_open(self) -> bool:
        return self.status in OPEN_STATUSES

    @property
    def overdue(self) -> bool:
        return self.is_open and self.days_left < 0


def _find(session: Session, reference: str) -> PrivacyRequest:
    found = find_request(session, reference)
    if found is None:
        raise RequestNotFound(reference)
    return found


def _customer_summary(session: Session, customer_id: int | None) -> CustomerSummary | None:
    customer = session.get(Customer, customer_id) if customer_id is not None else None
    if customer is None:
        return None
    try:
        overview = overview_for(session, customer_id=customer.id)
    except CustomerNotFound:
        overview = None
    address = tuple(
        line
        for line in (
            customer.address_line1,
            customer.address_line2,
            " ".join(p for p in (customer.postal_code, customer.city) if p),
        )
        if line
    )
    return CustomerSummary(
        id=customer.id,
        first_name=customer.first_name,
        last_name=customer.last_name,
        email=customer.email,
        phone=customer.phone,
        address=address,
        country=customer.country,
        birth_date=customer.birth_date,
        loyalty_number=customer.loyalty_number,
        preferred_language=customer.preferred_language,
        restricted_at=customer.restricted_at,
        erased_at=customer.erased_at,
        overview=overview,
    )


def request_detail(session: Session, *, reference: str, now: datetime, timezone: str) -> RequestDetail:
    """Everything the detail page shows. Raises RequestNotFound."""
    request = _find(session, reference)
    store = session.get(Store, request.store_id) if request.store_id else None
    names = {id_: name for id_, name in session.execute(select(StaffUser.id, StaffUser.name))}
    events = session.scalars(
        select(RequestEvent)
        .where(RequestEvent.request_id == request.id)
        .order_by(RequestEvent.occurred_at, RequestEvent.id)
    )

    def staff_name(reference: str | None) -> str | None:
        staff_id = staff_id_of(reference)
        return names.get(staff_id) if staff_id is not None else None

    timeline = []
    for event in events:
        note = event.note
        if event.kind == "assigned" and note:  # the assignee is kept as a reference: show who it is
            note = staff_name(note) or note
        timeline.append(
            TimelineEntry(
                event.occurred_at, event.actor, staff_name(event.actor), event.kind, note, event.visible_to_customer
            )
        )
    return RequestDetail(
        reference=request.reference,
        type=request.type,
        channel=request.channel,
        status=request.status,
        store_name=store.name if store else None,
        received_at=request.received_at,
        original_due_at=request.due_at,
        due_at=request.effective_due_at,
        extended=request.extended_due_at is not None,
        extension_reason=request.extension_reason,
        days_left=days_left(request.effective_due_at, now, timezone=timezone),
        assignee_id=request.assignee_id,
        assignee_name=names.get(request.assignee_id) if request.assignee_id else None,
        details=dict(request.details or {}),
        outcome=request.outcome,
        closed_at=request.closed_at,
        version=request.version,
        customer=_customer_summary(session, request.customer_id),
        timeline=timeline,
        staff_names=names,
    )


def record_view(session: Session, *, detail: RequestDetail, actor: str, now: datetime, request_id: str | None) -> None:
    """A staff member saw the customer's data: the audit trail says who, when, through which request."""
    record_audit(
        session,
        actor=actor,
        action="customer.viewed",
        target=f"request:{detail.reference}",
        detail={"customer": detail.customer.id} if detail.customer else None,
        now=now,
        request_id=request_id,
    )


@dataclasses.dataclass(frozen=True)
class DetailPage:
    """The request page: the request, the erasure plan when previewing one, who it can be assigned to."""

    item: RequestDetail
    plan: ErasurePlan | None
    assignees: list[Choice]


def detail_page(
    session: Session,
    *,
    reference: str,
    actor: str,
    now: datetime,
    timezone: str,
    register: PurposeRegister,
    audit: bool = False,
    preview: bool = False,
    request_id: str | None = None,
) -> DetailPage:
    """What the request page shows; `audit` records that the staff member saw the customer's data (opening the
    page does, redrawing it after an action does not). Raises RequestNotFound."""
    found = request_detail(session, reference=reference, now=now, timezone=timezone)
    if audit and found.customer is not None:
        record_view(session, detail=found, actor=actor, now=now, request_id=request_id)
    plan = None
    if preview and found.type == "erasure" and found.customer is not None:
        plan = plan_erasure(session, customer_id=found.customer.id, register=register)
    return DetailPage(found, plan, assignee_choices(session))


def open_consent_proof(
    session: Session, *, reference: str, actor: str, now: datetime, timezone: str, request_id: str | None = None
) -> int:
    """The id of the customer whose consent proof the DPO exports through request `reference`; the export is
    audited. Raises RequestNotFound, or CustomerNotFound when the request has no customer left."""
    found = request_detail(session, reference=reference, now=now, timezone=timezone)
    if found.customer is None or found.customer.erased_at is not None:
        raise CustomerNotFound(reference)
    record_audit(
        session,
        actor=actor,
        action="consent_proof.exported",
        target=f"request:{found.reference}",
        now=now,
        request_id=request_id,
    )
    return found.customer.id


# --- Applying a rectification ------------------------------------------------------------------------------------


class CorrectionInvalid(ValueError):
    def __init__(self, errors: dict[str, str]) -> None:
        super().__init__("invalid correction")
        self.errors = errors  # field -> translated message


def correction_columns(field: str) -> tuple[str, ...]:
    """The form inputs an agent fills to apply a correction of `field`."""
    return ADDRESS_COLUMNS if field == "postal_address" else (field,)


def apply_correction(
    session: Session,
    *,
    reference: str,
    actor: str,
    now: datetime,
    values: Mapping[str, str],
    outcome: str,
    expected_version: int | None,
    composer: object | None = None,
    request_id: str | None = None,
) -> list[str]:
    """Write the corrected value(s) of a rectification request to the profile, then complete the request.

    The values go through the same validation as the customer's own edits (`rectify_profile`); the change carries
    its before/after history, audit event and `customer.rectified` webhook. Returns the changed columns.
    Raises CorrectionInvalid, workflow.TransitionRefused / StaleRequest, RequestNotFound.
    """
    request = _find(session, reference)
    if request.type != "rectification":
        raise workflow.TransitionRefused(gettext("Only a rectification request can be applied this way."))
    if expected_version is not None and request.version != expected_version:
        raise workflow.StaleRequest(request.reference, request.version)
    if request.status not in OPEN_STATUSES:
        raise workflow.TransitionRefused(gettext("This request is closed: nothing can be applied any more."))
    customer = session.get(Customer, request.customer_id) if request.customer_id else None
    if customer is None or customer.erased_at is not None:
        raise workflow.TransitionRefused(gettext("This customer's data was erased: there is nothing to correct."))
    field = str((request.details or {}).get("field", ""))
    if field in ("birth_date", "loyalty_number"):
        changed = _apply_locked_field(session, customer, field, values, actor=actor, now=now, request_id=request_id)
    elif field in (*EDITABLE_FIELDS, "postal_address"):
        form = {column: _as_form_value(getattr(customer, column)) for column in EDITABLE_FIELDS}
        form.update({column: values.get(column, "") for column in correction_columns(field)})
        try:
            changed = rectification.rectify_profile(
                session,
                customer_id=customer.id,
                form=form,
                locked_fields=(),
                actor=actor,
                channel="support",
                now=now,
                request_id=request_id,
            )
        except rectification.ProfileInvalid as exc:
            raise CorrectionInvalid({k: gettext(MESSAGES[v]) for k, v in exc.errors.items()}) from None
    else:
        raise workflow.TransitionRefused(gettext("This request does not name a field that can be corrected."))
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
    return changed


def _as_form_value(value: object) -> str:
    return "" if value is None else str(value)


def _apply_locked_field(
    session: Session,
    customer: Customer,
    field: str,
    values: Mapping[str, str],
    *,
    actor: str,
    now: datetime,
    request_id: str | None,
) -> list[str]:
    # The customer cannot edit these two alone (they are checked against a document or the loyalty system), so
    # the profile form's rules do not cover them.
    raw = " ".join((values.get(field) or "").split())
    new: object
    if field == "birth_date":
        try:
            new = date.fromisoformat(raw)
        except ValueError:
            raise CorrectionInvalid({field: gettext("Enter the date as YYYY-MM-DD.")}) from None
        if not date(1900, 1, 1) <= new <= now.date():
            raise CorrectionInvalid({field: gettext("Enter a date of birth in the past.")})
    else:
        if not raw or len(raw) > 32 or not all(ch.isalnum() or ch in " -" for ch in raw):
            raise CorrectionInvalid({field: gettext("Enter the card number: letters, digits and hyphens only.")})
        new = raw
    old = getattr(customer, field)
    if old == new:
        return []
    rectification.apply_changes(  # the same write path as every other rectification: history, audit, webhook
        session,
        customer,
        {field: (old, new)},
        actor=actor,
        channel="support",
        now=now,
        request_id=request_id,
    )
    return [field]
