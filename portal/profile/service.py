"""Rectification (GDPR Art. 16): direct edits, confirmed email changes, and correction requests.

Every change is one transaction that keeps the before and after (`ProfileChange`, with the customer's data), an
audit event naming the fields (never their values) and a `customer.rectified` event in the outbox for the
retailer's systems (Art. 19).
"""

from __future__ import annotations

import dataclasses
import functools
import secrets
from collections.abc import Mapping
from datetime import date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import Connection, Row, bindparam, func, insert, select, update
from sqlalchemy.orm.attributes import set_committed_value
from sqlalchemy.sql.dml import Update
from sqlmodel import Session

from portal.audit import record_audit
from portal.db import as_connection
from portal.errors import CustomerNotFound
from portal.i18n import email_language
from portal.identity import ratelimit
from portal.identity.keys import keyed_hash
from portal.identity.service import InvalidEmail, normalise_email
from portal.mail.compose import EmailComposer
from portal.models import Customer, EmailChange, ProfileChange, email_key
from portal.models.customer import POSTAL_ADDRESS_COLUMNS
from portal.outbox.enqueue import NamedCustomer, customer_reference, enqueue_email, queue_webhook
from portal.profile.forms import EDITABLE_FIELDS, clean_profile_form
from portal.requests.service import (
    FiledRequest,
    acknowledge_receipt,
    admit_customer_request,
    file_request,
    find_submission,
)
from portal.settings import Settings

EMAIL_CHANGE_TTL = timedelta(hours=24)
EMAIL_CHANGES_PER_HOUR = 3  # each sends a link to an address the customer typed: not a relay for anyone's mail
EMAIL_CHANGES_PER_DAY = 5
CORRECTABLE_FIELDS = ("first_name", "last_name", "phone", "postal_address", "birth_date", "loyalty_number")


class ProfileInvalid(ValueError):
    def __init__(self, errors: dict[str, str], values: Mapping[str, object]) -> None:
        super().__init__("invalid profile")
        self.errors = errors
        self.values = values


def _customer(session: Session, customer_id: int) -> Customer:
    customer = session.get(Customer, customer_id)
    if customer is None or customer.erased_at is not None:
        raise CustomerNotFound(customer_id)
    return customer


def _queue_rectified_event(
    db: Session | Connection, *, customer: NamedCustomer, fields: list[str], now: datetime
) -> None:
    # Recipients must be told (Art. 19); the webhook carries what changed, the receiver reads the new values.
    queue_webhook(
        db,
        topic="customer.rectified",
        payload={**customer_reference(customer), "fields": fields, "occurred_at": now.isoformat()},
        now=now,
    )


# One prebuilt Core insert for all of a correction's changed fields (issue 17): no ORM object and flush per field.
_INSERT_CHANGE = insert(ProfileChange.__table__)
_CUSTOMER = Customer.__table__
# The profile page and a correction read the customer as a row: loading it as an ORM object cost the page about
# 170 µs, more than all its SQL, and a correction a sixth of the request (bench/README.md, issue 17).
_CUSTOMER_ROW = select(_CUSTOMER).where(_CUSTOMER.c.id == bindparam("customer_id"))


def _customer_row(db: Session | Connection, customer_id: int) -> Row[Any]:
    """The customer's columns; CustomerNotFound for a customer who is unknown or erased."""
    row = as_connection(db).execute(_CUSTOMER_ROW, {"customer_id": customer_id}).first()
    if row is None or row.erased_at is not None:
        raise CustomerNotFound(customer_id)
    return row


@functools.cache
def _update_customer(columns: tuple[str, ...]) -> Update:
    """The customer's UPDATE of these columns, built once per set of columns (a correction changes one or two)."""
    return (
        update(_CUSTOMER)
        .where(_CUSTOMER.c.id == bindparam("customer_id"))
        .values({column: bindparam(column) for column in columns})
    )


def apply_changes(
    db: Session | Connection,
    customer: Customer | Row[Any],
    changes: dict[str, tuple[object, object]],
    *,
    actor: str,
    channel: str,
    now: datetime,
    request_id: str | None,
) -> None:
    connection = as_connection(db)
    values = {field: new for field, (_old, new) in changes.items()} | {"updated_at": now}
    connection.execute(_update_customer(tuple(sorted(values))), {**values, "customer_id": customer.id})
    if isinstance(customer, Customer):  # a loaded object says what the row now holds, with nothing left to flush
        for field, value in values.items():
            set_committed_value(customer, field, value)
    connection.execute(
        _INSERT_CHANGE,
        [
            {
                "customer_id": customer.id,
                "field": field,
                "old_value": None if old is None else str(old),
                "new_value": None if new is None else str(new),
                "changed_at": now,
                "actor": actor,
                "channel": channel,
            }
            for field, (old, new) in changes.items()
        ],
    )
    record_audit(
        db,
        actor=actor,
        action="customer.rectified",
        target=f"customer:{customer.id}",
        detail={"fields": sorted(changes), "channel": channel},
        now=now,
        request_id=request_id,
    )
    _queue_rectified_event(db, customer=customer, fields=sorted(changes), now=now)


def rectify_profile(
    db: Session | Connection,
    *,
    customer_id: int,
    form: Mapping[str, str],
    locked_fields: tuple[str, ...],
    actor: str,
    channel: str,
    now: datetime,
    request_id: str | None = None,
) -> list[str]:
    """Apply the edited profile; returns the changed fields. Raises ProfileInvalid, saving nothing."""
    customer = _customer_row(db, customer_id)
    values, errors = clean_profile_form(form, current_phone=customer.phone)
    if errors:
        raise ProfileInvalid(errors, {**values, **{k: form.get(k, "") for k in errors}})
    locked_columns = {"postal_address": ("address_line1", "address_line2", "postal_code", "city", "country")}
    frozen = {column for field in locked_fields for column in locked_columns.get(field, (field,))}
    changes = {
        field: (getattr(customer, field), values[field])
        for field in EDITABLE_FIELDS
        if field not in frozen and getattr(customer, field) != values[field]
    }
    if changes:
        apply_changes(db, customer, changes, actor=actor, channel=channel, now=now, request_id=request_id)
    return sorted(changes)


_LAST_CHANGED = (
    select(ProfileChange.field, func.max(ProfileChange.changed_at))
    .where(ProfileChange.customer_id == bindparam("customer_id"))
    .group_by(ProfileChange.field)
)


# The columns of the one "postal address" the profile page shows (the country is chosen with it).
ADDRESS_COLUMNS = (*POSTAL_ADDRESS_COLUMNS, "country")


def last_changed(db: Session | Connection, *, customer_id: int) -> dict[str, datetime]:
    """When each field was last changed (fields never changed are absent: they date from the customer's creation).

    The postal address is shown as one field but changed column by column: its date is the latest of its columns'.
    """
    rows = as_connection(db).execute(_LAST_CHANGED, {"customer_id": customer_id})
    changed = {field: changed_at for field, changed_at in rows}
    address = [changed[column] for column in ADDRESS_COLUMNS if column in changed]
    if address:
        changed["postal_address"] = max(address)
    return changed


HISTORY_SHOWN = 20  # the latest changes on the page; the archive (portability) holds them all


@dataclasses.dataclass(frozen=True)
class ChangeShown:
    field: str
    changed_at: datetime
    channel: str  # web | store | support | import | api: how the change reached us


@dataclasses.dataclass(frozen=True)
class Profile:
    customer: Row[Any]  # the customer's columns, read as they are shown (no ORM object: the page only reads them)
    last_changed: dict[str, datetime]  # by field, as `last_changed` returns it
    history: list[ChangeShown]  # the latest changes first, whoever made them (the customer, staff, an import)


_HISTORY = (
    select(ProfileChange.field, ProfileChange.changed_at, ProfileChange.channel)
    .where(ProfileChange.customer_id == bindparam("customer_id"))
    .order_by(ProfileChange.changed_at.desc(), ProfileChange.id.desc())
    .limit(HISTORY_SHOWN)
)


def profile_of(db: Session | Connection, *, customer_id: int) -> Profile:
    """The customer as the profile page shows them, with when each field last changed and the latest changes.
    Raises CustomerNotFound."""
    connection = as_connection(db)
    customer = _customer_row(connection, customer_id)
    history = [ChangeShown(*row) for row in connection.execute(_HISTORY, {"customer_id": customer_id})]
    return Profile(customer=customer, last_changed=last_changed(db, customer_id=customer_id), history=history)


# --- Email change ----------------------------------------------------------------------------------------------


def request_email_change(
    session: Session,
    *,
    settings: Settings,
    composer: EmailComposer,
    customer_id: int,
    new_email: str,
    language: str,
    now: datetime,
    request_id: str | None = None,
) -> None:
    """Send a confirmation link to the new address and tell the old one. Nothing changes until confirmed.

    Raises ProfileInvalid (bad or same address) or EmailChangeLimited. The answer never says whether the address is
    another customer's: such an address is told, by email, that it is already in use, and the page says "sent" as
    for any other. Each request emails a third party, so they are limited per customer (EMAIL_CHANGES_PER_HOUR,
    EMAIL_CHANGES_PER_DAY) and a new one voids the pending one: one pending change at most.
    """
    customer = _customer(session, customer_id)
    try:
        address = normalise_email(new_email)
    except InvalidEmail:
        raise ProfileInvalid({"email": "email_invalid"}, {"email": new_email}) from None
    if email_key(address) == customer.email_key:
        raise ProfileInvalid({"email": "email_same"}, {"email": new_email})
    for limit, window in ((EMAIL_CHANGES_PER_HOUR, timedelta(hours=1)), (EMAIL_CHANGES_PER_DAY, timedelta(days=1))):
        counted = ratelimit.hit(
            session,
            key=f"email-change:{customer_id}:{int(window.total_seconds())}",
            limit=limit,
            window=window,
            now=now,
        )
        if not counted.allowed:
            raise EmailChangeLimited(counted.retry_after)
    owner = session.execute(
        select(Customer.email, Customer.preferred_language).where(Customer.email_key == email_key(address))
    ).first()
    if owner is not None:  # the address's owner is told, in their language, and nothing else happens
        _tell_address_taken(
            session,
            settings=settings,
            composer=composer,
            address=owner.email,
            language=email_language(owner.preferred_language),  # the owner is not the one acting: their own
            now=now,
        )
        record_audit(
            session,
            actor=f"customer:{customer_id}",
            action="email_change.taken",
            target=f"customer:{customer_id}",
            now=now,
            request_id=request_id,
        )
        return
    session.execute(
        update(EmailChange)
        .where(
            EmailChange.customer_id == customer_id,
            EmailChange.confirmed_at.is_(None),
            EmailChange.voided_at.is_(None),
        )
        .values(voided_at=now)
    )
    token = secrets.token_urlsafe(32)
    session.add(
        EmailChange(
            customer_id=customer_id,
            new_email=address,
            token_hash=keyed_hash(settings.secret_key, "email-change", token),
            created_at=now,
            expires_at=now + EMAIL_CHANGE_TTL,
        )
    )
    context = {"first_name": customer.first_name or "", "new_email": address, "hours": 24}
    language = email_language(customer.preferred_language, acting_on_page=language)
    enqueue_email(
        session,
        email=composer.compose(
            "email-change-confirm",
            to=address,
            language=language,
            context={**context, "link": f"{settings.base_url}/me/email/confirm?token={token}"},
        ),
        topic="email-change-confirm",
        now=now,
    )
    if customer.email:
        enqueue_email(
            session,
            email=composer.compose("email-change-requested", to=customer.email, language=language, context=context),
            topic="email-change-requested",
            now=now,
        )
    record_audit(
        session,
        actor=f"customer:{customer_id}",
        action="email_change.requested",
        target=f"customer:{customer_id}",
        now=now,
        request_id=request_id,
    )


class EmailChangeLimited(Exception):
    """The customer asked for too many email changes lately; each one emails an address they typed."""

    def __init__(self, retry_after: timedelta) -> None:
        super().__init__("too many email changes")
        self.retry_after = retry_after


def _tell_address_taken(
    session: Session, *, settings: Settings, composer: EmailComposer, address: str, language: str, now: datetime
) -> None:
    enqueue_email(
        session,
        email=composer.compose(
            "email-change-taken", to=address, language=language, context={"portal_url": settings.base_url}
        ),
        topic="email-change-taken",
        now=now,
    )


class EmailChangeRejected(LookupError):
    """reason: invalid, expired, used (or replaced by a newer request), taken (the address got used meanwhile)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def _pending_change(session: Session, settings: Settings, token: str, now: datetime) -> EmailChange:
    change = session.scalars(
        select(EmailChange).where(
            EmailChange.token_hash == keyed_hash(settings.secret_key, "email-change", token or "")
        )
    ).first()
    if change is None:
        raise EmailChangeRejected("invalid")
    if change.confirmed_at is not None or change.voided_at is not None:
        raise EmailChangeRejected("used")
    if now >= change.expires_at:
        raise EmailChangeRejected("expired")
    return change


def check_email_change(session: Session, *, settings: Settings, token: str, now: datetime) -> str:
    """The address the link would confirm (looking does not confirm: mail scanners open links)."""
    return _pending_change(session, settings, token, now).new_email


def confirm_email_change(
    session: Session,
    *,
    settings: Settings,
    composer: EmailComposer,
    token: str,
    now: datetime,
    language: str | None = None,
    request_id: str | None = None,
) -> int:
    """Apply a confirmed email change; returns the customer id. Raises EmailChangeRejected.

    `language`: the page's, when the customer confirms from a page (the notice goes out in it).
    """
    change = _pending_change(session, settings, token, now)
    claimed = session.execute(
        update(EmailChange)
        .where(EmailChange.id == change.id, EmailChange.confirmed_at.is_(None), EmailChange.voided_at.is_(None))
        .values(confirmed_at=now)
    )
    if claimed.rowcount != 1:
        raise EmailChangeRejected("used")
    customer = _customer(session, change.customer_id)
    if session.scalars(
        select(Customer.id).where(Customer.email_key == email_key(change.new_email), Customer.id != customer.id)
    ).first():
        raise EmailChangeRejected("taken")
    old_email = customer.email
    customer.email_key = email_key(change.new_email)
    actor = f"customer:{customer.id}"
    apply_changes(
        session,
        customer,
        {"email": (old_email, change.new_email)},
        actor=actor,
        channel="web",
        now=now,
        request_id=request_id,
    )
    if old_email:
        enqueue_email(
            session,
            email=composer.compose(
                "email-changed",
                to=old_email,
                language=email_language(customer.preferred_language, acting_on_page=language),
                context={"first_name": customer.first_name or "", "new_email": change.new_email},
            ),
            topic="email-changed",
            now=now,
        )
    return customer.id  # type: ignore[return-value]  # an id: set since the row was flushed


# --- Correction requests -------------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class CorrectionForm:
    field: str
    proposed_value: str
    comment: str


def parse_birth_date(text: str, *, today: date) -> date | None:
    """A date of birth typed as the browser's date field sends it (YYYY-MM-DD) or as people write it (DD/MM/YYYY);
    None unless it is a real day between 1900 and today."""
    for pattern in ("%Y-%m-%d", "%d/%m/%Y", "%d.%m.%Y", "%d-%m-%Y"):
        try:
            day = datetime.strptime(text, pattern).date()
        except ValueError:
            continue
        return day if date(1900, 1, 1) <= day <= today else None
    return None


def clean_correction(form: Mapping[str, str], *, today: date) -> tuple[CorrectionForm, dict[str, str]]:
    field = (form.get("field") or "").strip()
    proposed = " ".join((form.get("proposed_value") or "").split())
    comment = (form.get("comment") or "").strip()
    errors: dict[str, str] = {}
    if not proposed:
        errors["proposed_value"] = "value_required"
    elif len(proposed) > 200:
        errors["proposed_value"] = "correction_too_long"
    elif field == "birth_date":  # checked where it is typed, so the agent never receives an impossible date
        born = parse_birth_date(proposed, today=today)
        if born is None:
            errors["proposed_value"] = "birth_date_invalid"
        else:
            proposed = born.isoformat()
    if len(comment) > 1000:
        errors["comment"] = "comment_too_long"
    return CorrectionForm(field=field, proposed_value=proposed, comment=comment), errors


def request_correction(
    session: Session,
    *,
    composer: EmailComposer,
    customer_id: int,
    form: Mapping[str, str],
    language: str,
    now: datetime,
    timezone: str,
    request_id: str | None = None,
    channel: str = "web",
    actor: str | None = None,
    store_id: int | None = None,
) -> FiledRequest:
    """File a rectification request for a field the customer cannot change alone; acknowledge it by email.

    Raises ProfileInvalid. The form's submission key makes a double submission file one request.
    """
    customer = _customer(session, customer_id)
    correction, errors = clean_correction(form, today=now.astimezone(ZoneInfo(timezone)).date())
    if correction.field not in CORRECTABLE_FIELDS:
        raise LookupError(correction.field)
    if errors:
        raise ProfileInvalid(errors, dict(form))
    key = (form.get("submission_key") or "").strip()[:64] or None
    submission_key = f"{customer_id}:{key}" if key else None
    earlier = find_submission(session, submission_key)
    if earlier is not None:
        return earlier
    details = {"field": correction.field, "proposed_value": correction.proposed_value, "comment": correction.comment}
    admit_customer_request(session, customer_id=customer_id, type="rectification", details=details, now=now)
    filed = file_request(
        session,
        customer_id=customer_id,
        type="rectification",
        channel=channel,
        now=now,
        actor=actor or f"customer:{customer_id}",
        store_id=store_id,
        details=details,
        submission_key=submission_key,
        timezone=timezone,
        request_id=request_id,
    )
    if filed.created and customer.email:
        acknowledge_receipt(session, customer, filed, composer=composer, language=language, now=now)
    return filed
