"""Erasure (GDPR Art. 17), as an agent carries it out on a request.

Erasure runs in the caller's single transaction, so a crash midway leaves nothing half-erased:

- deleted: the contact and profile details, the browsing history with its counts, the rectification history
  (its before/after values are personal data), pending email changes, sessions, sign-in challenges and the
  rate-limit counters keyed on the address, and every undelivered email to the customer's addresses;
- anonymised: purchases are detached from the person (`purchase.customer_id` set to NULL) and kept for accounting,
  as the Code de commerce requires (the register's `accounting` purpose says how long); the per-customer purchase
  totals are deleted, since they would tie the amounts back to the tombstone;
- withdrawn: every consent still given, by new ledger events (channel "support", the agent as actor);
- kept, pseudonymised: the consent ledger stays attached to the tombstone id (proof of consent, Art. 7(1)), and the
  customer's requests and their timelines (accountability, Art. 5(2)) with their free text scrubbed of the
  customer's details; audit events are checked the same way;
- the customer row becomes a tombstone: every personal column NULL, `erased_at`, and `erased_email_hash`, a keyed
  hash of the address (`is_erased_email`) and one of the retailer's customer id (`is_erased_ref`).

The completion email is queued to the address before it is forgotten, and a `customer.erased` webhook tells the
retailer's systems (Art. 19). Running it again is harmless: the second run finds nothing to do.

Where the tombstone is honoured:
- sign-in: a tombstone has no `email_key`, so `portal.identity.service.request_sign_in` finds no customer and sends
  the "we hold no data" email, exactly as for an address never seen;
- creating customers: any code that creates a customer from an address (imports, the retailer API, the store
  tablet) calls `portal.erasure.tombstone.refuse_erased_email` first (see that module).
"""

from __future__ import annotations

import dataclasses
import re
from datetime import datetime

from sqlalchemy import delete, func, or_, select, update
from sqlmodel import Session

from portal.audit import record_audit
from portal.consent import ledger
from portal.consent.register import PurposeRegister
from portal.db import checkpoint_after_commit
from portal.erasure.tombstone import erased_email_hash, erased_ref_hash
from portal.errors import CustomerNotFound
from portal.i18n import email_language, lazy_gettext
from portal.identity.keys import keyed_hash
from portal.labels import SYSTEM_NOTE_PREFIX, note_code, system_note
from portal.mail.compose import EmailComposer
from portal.models import (
    AuditEvent,
    ConsentEvent,
    Customer,
    EmailChange,
    LoginChallenge,
    OutboxMessage,
    PageView,
    PrivacyRequest,
    ProfileChange,
    Purchase,
    PurchaseTotal,
    RateLimit,
    RequestEvent,
    WebsiteVisitor,
    email_key,
)
from portal.models.identity import Session as BrowserSession
from portal.models.requests import OPEN_STATUSES
from portal.outbox.enqueue import customer_reference, enqueue_email, queue_webhook
from portal.requests import actions
from portal.settings import Settings

ACCOUNTING_PURPOSE = "accounting"
SCRUBBED = "***"  # stands where a customer's detail was found in free text kept for accountability
# Request details worth keeping after erasure: which field a rectification was about, never the proposed value.
KEPT_DETAIL_KEYS = frozenset({"field"})
# Columns of the tombstone that keep a value: everything else about the person is set to NULL.
TOMBSTONE_KEEPS = frozenset(
    {"id", "source", "created_at", "updated_at", "erased_at", "erased_email_hash", "erased_ref_hash"}
)


# --- The plan --------------------------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class PlanLine:
    """One category of data and what erasure does to it.

    `label` and `reason` are message ids (lazy_gettext): translate them where shown, `{{ _(line.label) }}`.
    `retention` is the register's own wording of how long it is kept, when the register says.
    """

    category: str
    action: str  # deleted | anonymised | withdrawn | closed | kept
    count: int
    label: str
    reason: str | None = None
    retention: object | None = None  # LocalizedText of the purpose that keeps it; str() gives the current language


@dataclasses.dataclass(frozen=True)
class ErasurePlan:
    customer_id: int
    already_erased: bool
    lines: tuple[PlanLine, ...]

    def lines_for(self, action: str) -> list[PlanLine]:
        return [line for line in self.lines if line.action == action]

    @property
    def deleted(self) -> list[PlanLine]:
        return self.lines_for("deleted")

    @property
    def anonymised(self) -> list[PlanLine]:
        return self.lines_for("anonymised")

    @property
    def withdrawn(self) -> list[PlanLine]:
        return self.lines_for("withdrawn")

    @property
    def kept(self) -> list[PlanLine]:
        return self.lines_for("kept")


LABELS = {
    "profile": lazy_gettext(
        "Contact and profile details: name, email address, phone number, postal address, date of birth, loyalty card"
    ),
    "browsing": lazy_gettext("Browsing history: the pages viewed on our website"),
    "profile_history": lazy_gettext("History of the changes made to these details"),
    "email_changes": lazy_gettext("Changes of email address waiting for confirmation"),
    "sign_in": lazy_gettext("Sessions and sign-in links"),
    "emails": lazy_gettext("Emails waiting to be sent"),
    "purchases": lazy_gettext("Purchases and invoices, kept for accounting but no longer linked to the person"),
    "consents": lazy_gettext("Consents still given, each withdrawn"),
    "consent_proof": lazy_gettext("Record of consents given and withdrawn, without name or contact details"),
    "requests": lazy_gettext("Requests and how they were handled, without name or contact details"),
    "erased_address": lazy_gettext("A keyed hash of the email address (the address itself is deleted)"),
    "staff_notes": lazy_gettext("Notes, messages and outcomes written about the person by our staff (the steps stay)"),
    "open_requests": lazy_gettext("The person's other open requests, closed with the erasure"),
}
ERASED_OUTCOME = system_note("erased")
REASONS = {
    "purchases": lazy_gettext(
        "Legal obligation: invoices and accounting records must be kept (French Commercial Code, article L123-22)."
    ),
    "consent_proof": lazy_gettext(
        "Proof of consent (GDPR article 7): we must be able to show when and how each consent was given and withdrawn."
    ),
    "requests": lazy_gettext("Accountability (GDPR article 5): we must be able to show how each request was answered."),
    "erased_address": lazy_gettext(
        "So that a later import of customer records cannot recreate a profile for this address."
    ),
}


def _count(session: Session, model: type, *conditions: object) -> int:
    return session.execute(select(func.count()).select_from(model).where(*conditions)).scalar_one()


def _staff_texts(session: Session, customer_id: int) -> int:
    """Texts staff wrote on the customer's requests (the portal's own, stored as codes, are not personal)."""
    requests = select(PrivacyRequest.id).where(PrivacyRequest.customer_id == customer_id)
    return _count(
        session,
        RequestEvent,
        RequestEvent.request_id.in_(requests),
        RequestEvent.note.is_not(None),
        RequestEvent.note.not_like(f"{SYSTEM_NOTE_PREFIX}%"),
        RequestEvent.actor.like("staff:%"),
        RequestEvent.kind != "assigned",
    )


def _accounting_retention(register: PurposeRegister | None) -> object | None:
    purpose = register.by_code.get(ACCOUNTING_PURPOSE) if register else None
    return purpose.retention.text if purpose else None


def plan_erasure(session: Session, *, customer_id: int, register: PurposeRegister | None = None) -> ErasurePlan:
    """What erasing the customer would delete, anonymise, withdraw and keep (with why), counted; changes nothing.

    Raises CustomerNotFound. Give `register` to show how long purchases are kept.
    """
    customer = session.get(Customer, customer_id)
    if customer is None:
        raise CustomerNotFound(customer_id)
    requests = _count(session, PrivacyRequest, PrivacyRequest.customer_id == customer_id)
    proof = _count(session, ConsentEvent, ConsentEvent.customer_id == customer_id)
    if customer.erased_at is not None:
        kept = (
            PlanLine("consent_proof", "kept", proof, LABELS["consent_proof"], REASONS["consent_proof"]),
            PlanLine("requests", "kept", requests, LABELS["requests"], REASONS["requests"]),
            PlanLine("erased_address", "kept", 1, LABELS["erased_address"], REASONS["erased_address"]),
        )
        return ErasurePlan(customer_id=customer_id, already_erased=True, lines=kept)
    granted = [
        code for code, state in ledger.current_consents(session, customer_id=customer_id).items() if state.granted
    ]
    addresses = _addresses_of(session, customer)
    sign_in = _count(session, BrowserSession, BrowserSession.customer_id == customer_id) + _count(
        session, LoginChallenge, LoginChallenge.customer_id == customer_id
    )
    lines = (
        PlanLine("profile", "deleted", len(customer.held_profile_fields()), LABELS["profile"]),
        PlanLine(
            "browsing", "deleted", _count(session, PageView, PageView.customer_id == customer_id), LABELS["browsing"]
        ),
        PlanLine(
            "profile_history",
            "deleted",
            _count(session, ProfileChange, ProfileChange.customer_id == customer_id),
            LABELS["profile_history"],
        ),
        PlanLine(
            "email_changes",
            "deleted",
            _count(session, EmailChange, EmailChange.customer_id == customer_id),
            LABELS["email_changes"],
        ),
        PlanLine("sign_in", "deleted", sign_in, LABELS["sign_in"]),
        PlanLine("emails", "deleted", len(_undelivered_emails_to(session, addresses)), LABELS["emails"]),
        PlanLine(
            "purchases",
            "anonymised",
            _count(session, Purchase, Purchase.customer_id == customer_id),
            LABELS["purchases"],
            REASONS["purchases"],
            _accounting_retention(register),
        ),
        PlanLine("staff_notes", "deleted", _staff_texts(session, customer_id), LABELS["staff_notes"]),
        PlanLine(
            "open_requests",
            "closed",
            max(
                0,
                _count(
                    session,
                    PrivacyRequest,
                    PrivacyRequest.customer_id == customer_id,
                    PrivacyRequest.status.in_(OPEN_STATUSES),
                )
                - 1,
            ),
            LABELS["open_requests"],
        ),
        PlanLine("consents", "withdrawn", len(granted), LABELS["consents"]),
        PlanLine("consent_proof", "kept", proof + len(granted), LABELS["consent_proof"], REASONS["consent_proof"]),
        PlanLine("requests", "kept", requests, LABELS["requests"], REASONS["requests"]),
        PlanLine("erased_address", "kept", 1, LABELS["erased_address"], REASONS["erased_address"]),
    )
    return ErasurePlan(customer_id=customer_id, already_erased=False, lines=lines)


# --- Execution -------------------------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class ErasureReport:
    reference: str
    customer_id: int
    already_done: bool  # the request was completed and the customer erased before: nothing was changed
    counts: dict[str, int]  # rows per plan category (deleted, anonymised, withdrawn)
    withdrawn: tuple[str, ...]  # purposes whose consent was withdrawn
    scrubbed: int  # free-text values in requests and audit events where a customer's detail was found


def _addresses_of(session: Session, customer: Customer) -> set[str]:
    """Every address known for the customer: current, pending, and former ones from the rectification history."""
    addresses = {customer.email} if customer.email else set()
    addresses.update(session.scalars(select(EmailChange.new_email).where(EmailChange.customer_id == customer.id)))
    addresses.update(
        value
        for old, new in session.execute(
            select(ProfileChange.old_value, ProfileChange.new_value).where(
                ProfileChange.customer_id == customer.id, ProfileChange.field == "email"
            )
        )
        for value in (old, new)
        if value
    )
    return {email_key(address) for address in addresses}


def _challenges_of(customer_id: int, digests: set[str]):  # type: ignore[no-untyped-def]
    return or_(LoginChallenge.customer_id == customer_id, LoginChallenge.email_digest.in_(digests))


def _undelivered_emails_to(session: Session, addresses: set[str]) -> list[int]:
    # The address sits inside the JSON payload; unsent emails are few, so they are matched here, the same on both
    # engines, rather than with each dialect's JSON operators.
    rows = session.execute(
        select(OutboxMessage.id, OutboxMessage.payload).where(
            OutboxMessage.kind == "email",
            OutboxMessage.sent_at.is_(None),
        )
    )
    return [message_id for message_id, payload in rows if email_key(str((payload or {}).get("to", ""))) in addresses]


def _personal_values(session: Session, customer: Customer, addresses: set[str]) -> list[str]:
    """The customer's details as they could appear in free text, longest first (so a name inside an address goes
    with the address)."""
    values = {
        str(getattr(customer, column)) for column in Customer.stored_profile_columns() if getattr(customer, column)
    }
    values.discard(customer.preferred_language)
    values -= {customer.city or "", customer.postal_code or "", customer.country or ""}  # a town is not a person
    values.update(addresses)
    former = session.scalars(
        select(ProfileChange.old_value).where(
            ProfileChange.customer_id == customer.id,
            ProfileChange.field.in_(("first_name", "last_name", "phone", "address_line1", "address_line2")),
        )
    )
    values.update(value for value in former if value)
    return sorted((v for v in values if len(v) >= 3), key=len, reverse=True)


def _scrub_text(text: str | None, values: list[str]) -> tuple[str | None, int]:
    found = 0
    for value in values if text else ():
        text, n = re.subn(re.escape(value), SCRUBBED, text, flags=re.IGNORECASE)
        found += n
    return text, found


def _scrub_json(value: object, values: list[str]) -> tuple[object, int]:
    if isinstance(value, str):
        return _scrub_text(value, values)
    if isinstance(value, dict):
        found = 0
        cleaned = {}
        for key, item in value.items():
            cleaned[key], n = _scrub_json(item, values)
            found += n
        return cleaned, found
    if isinstance(value, list):
        pairs = [_scrub_json(item, values) for item in value]
        return [item for item, _n in pairs], sum(n for _item, n in pairs)
    return value, 0


def _scrub_requests(session: Session, customer: Customer, values: list[str]) -> tuple[int, int]:
    """Keep the customer's requests as proof, without what they or the staff wrote about the person.

    Free text cannot be scrubbed reliably (a phone number or a name can be written a hundred ways), so every note,
    outcome and extension reason a person wrote is removed: the step stays on the timeline, its text becomes
    "note removed at erasure". The portal's own texts (stored as codes) hold nothing personal and stay. Returns
    (values scrubbed from details, texts removed).
    """
    found = removed = 0
    requests = list(session.scalars(select(PrivacyRequest).where(PrivacyRequest.customer_id == customer.id)))
    gone = system_note("note_removed_at_erasure")
    for request in requests:
        if request.details:
            kept = {
                key: value
                for key, value in request.details.items()
                if key in KEPT_DETAIL_KEYS or value is None or isinstance(value, bool | int | float)
            }
            found += len(request.details) - len(kept)
            request.details = kept or None
        for column in ("outcome", "extension_reason"):
            text = getattr(request, column)
            if text and note_code(text) is None:
                setattr(request, column, gone)
                removed += 1
    if not requests:
        return found, removed
    own_words = f"customer:{customer.id}"
    for event in session.scalars(
        select(RequestEvent).where(
            RequestEvent.request_id.in_([r.id for r in requests]),
            RequestEvent.note.is_not(None),
        )
    ):
        if event.actor == own_words:  # the customer's own messages are theirs: they go, the step stays
            event.note = None
            removed += 1
        elif note_code(event.note) is None and event.kind != "assigned":  # "assigned" keeps a staff reference
            event.note = gone
            removed += 1
    return found, removed


def _scrub_audit(session: Session, customer: Customer, values: list[str]) -> int:
    """Audit details never hold personal data by design; this checks the customer's events and fixes any that do."""
    references = session.scalars(select(PrivacyRequest.reference).where(PrivacyRequest.customer_id == customer.id))
    targets = [f"customer:{customer.id}", *(f"request:{reference}" for reference in references)]
    found = 0
    for event in session.scalars(
        select(AuditEvent).where(AuditEvent.target.in_(targets), AuditEvent.detail.is_not(None))
    ):
        cleaned, n = _scrub_json(event.detail, values)
        if n:
            event.detail = cleaned  # type: ignore[assignment]  # the JSON object it was given, scrubbed
            found += n
    return found


def _delete_personal_records(session: Session, customer: Customer, addresses: set[str], settings: Settings) -> dict:
    customer_id = customer.id
    digests = {keyed_hash(settings.secret_key, "email", key) for key in addresses}
    counts = {
        "profile_history": session.execute(
            delete(ProfileChange).where(ProfileChange.customer_id == customer_id)
        ).rowcount,
        "email_changes": session.execute(delete(EmailChange).where(EmailChange.customer_id == customer_id)).rowcount,
        "sign_in": (
            session.execute(delete(BrowserSession).where(BrowserSession.customer_id == customer_id)).rowcount
            + session.execute(delete(LoginChallenge).where(_challenges_of(customer_id, digests))).rowcount
        ),
    }
    if digests:
        session.execute(delete(RateLimit).where(RateLimit.key.in_([f"signin:email:{digest}" for digest in digests])))
    # The website visitor ids the web shop tied to the person: the banner no longer knows whose they were.
    session.execute(delete(WebsiteVisitor).where(WebsiteVisitor.customer_id == customer_id))
    return counts


def _detach_purchases(session: Session, customer: Customer) -> int:
    """Purchases stay for accounting, linked to nobody; the per-customer totals would re-link them, so they go."""
    detached = session.execute(
        update(Purchase).where(Purchase.customer_id == customer.id).values(customer_id=None)
    ).rowcount
    session.execute(delete(PurchaseTotal).where(PurchaseTotal.customer_id == customer.id))
    return detached or 0


def _purge_emails(session: Session, addresses: set[str]) -> int:
    ids = _undelivered_emails_to(session, addresses)
    if ids:
        session.execute(delete(OutboxMessage).where(OutboxMessage.id.in_(ids)))
    return len(ids)


def _completion_email(
    session: Session,
    *,
    composer: EmailComposer,
    customer: Customer,
    plan: ErasurePlan,
    reference: str,
    now: datetime,
    closed_with_it: list[str],
) -> None:
    if not customer.email:
        return
    language = email_language(customer.preferred_language)  # staff erase: the customer's own language

    def lines(action: str) -> list[dict[str, object]]:
        return [
            {
                "label": line.label,
                "count": line.count,
                "reason": line.reason or "",
                "retention": line.retention.in_locale(language) if line.retention else "",
            }
            for line in plan.lines_for(action)
            if line.count or action == "kept"
        ]

    context = {
        "reference": reference,
        "deleted": lines("deleted"),
        "anonymised": lines("anonymised"),
        "withdrawn": lines("withdrawn"),
        "kept": lines("kept"),
        "closed_with_it": closed_with_it,
    }
    email = composer.compose("erasure-completed", to=customer.email, language=language, context=context)
    enqueue_email(session, email=email, topic="erasure-completed", now=now)


def _tombstone(session: Session, customer: Customer, *, settings: Settings, now: datetime) -> None:
    digest = erased_email_hash(settings, customer.email) if customer.email else None
    ref_digest = erased_ref_hash(settings, customer.retailer_ref) if customer.retailer_ref else None
    for column in Customer.__table__.columns:
        if column.name not in TOMBSTONE_KEEPS and column.nullable:
            setattr(customer, column.name, None)
    customer.preferred_language = settings.default_locale
    customer.erased_email_hash = digest
    customer.erased_ref_hash = ref_digest
    customer.erased_at = now
    customer.updated_at = now


def execute_erasure(
    session: Session,
    *,
    reference: str,
    actor: str,
    now: datetime,
    composer: EmailComposer,
    settings: Settings,
    register: PurposeRegister,
    expected_version: int | None = None,
    request_id: str | None = None,
) -> ErasureReport:
    """Erase the customer of erasure request `reference` and complete the request, in the caller's transaction.

    Raises RequestNotFound, actions.ActionRefused (not an erasure request, rejected or cancelled, no customer) or
    StaleRequest. A request already carried out answers `already_done` and changes nothing.
    """
    request = actions.request_for(session, reference=reference, expected_version=expected_version, types=("erasure",))
    customer = actions.customer_of(session, request)
    if request.status == "completed" and customer.erased_at is not None:
        return ErasureReport(request.reference, customer.id, True, {}, (), 0)
    actions.refuse_closed(request)
    customer_id: int = customer.id  # type: ignore[assignment]  # an id: set since the row was flushed
    if customer.erased_at is not None:  # erased through another request meanwhile: this one is answered too
        actions.complete_with_outcome(
            session,
            request,
            customer,
            actor=actor,
            now=now,
            outcome=ERASED_OUTCOME,
            composer=composer,
            request_id=request_id,
        )
        return ErasureReport(request.reference, customer_id, False, {}, (), 0)

    plan = plan_erasure(session, customer_id=customer_id, register=register)
    erased = _erase_records(
        session, customer, actor=actor, now=now, settings=settings, register=register, request_id=request_id
    )
    others = list(
        session.scalars(
            select(PrivacyRequest)
            .where(
                PrivacyRequest.customer_id == customer_id,
                PrivacyRequest.status.in_(OPEN_STATUSES),
                PrivacyRequest.id != request.id,
            )
            .order_by(PrivacyRequest.received_at)
        )
    )
    erased.counts["requests_closed"] = len(others)
    _completion_email(
        session,
        composer=composer,
        customer=customer,
        plan=plan,
        reference=request.reference,
        now=now,
        closed_with_it=[other.reference for other in others],
    )
    _tombstone_and_tell(
        session,
        customer,
        erased,
        actor=actor,
        now=now,
        settings=settings,
        target=f"request:{request.reference}",
        webhook={"request": request.reference},
        request_id=request_id,
    )
    # The tombstone has no address left: the workflow sends nothing, the completion email above says it all. The
    # person's other open requests end with their data: nothing is left to answer them with (the email lists them).
    closing = [(request, ERASED_OUTCOME), *((other, system_note("closed_by_erasure")) for other in others)]
    for closed, outcome in closing:
        actions.complete_with_outcome(
            session,
            closed,
            customer,
            actor=actor,
            now=now,
            outcome=outcome,
            composer=composer,
            request_id=request_id,
        )
    return ErasureReport(request.reference, customer_id, False, erased.counts, erased.withdrawn, erased.scrubbed)


@dataclasses.dataclass(frozen=True)
class _Erased:
    counts: dict[str, int]
    withdrawn: tuple[str, ...]
    scrubbed: int


def _erase_records(
    session: Session,
    customer: Customer,
    *,
    actor: str,
    now: datetime,
    settings: Settings,
    register: PurposeRegister,
    request_id: str | None,
) -> _Erased:
    """Everything erasure deletes, detaches, withdraws and scrubs, short of the tombstone itself."""
    customer_id: int = customer.id  # type: ignore[assignment]  # an id: set since the row was flushed
    addresses = _addresses_of(session, customer)
    values = _personal_values(session, customer, addresses)
    withdrawn = ledger.withdraw_all_marketing(
        session,
        register=register,
        customer_id=customer_id,
        channel="support",
        actor=actor,
        now=now,
        locale=customer.preferred_language,
        request_id=request_id,
    )
    counts = {
        "profile": len(customer.held_profile_fields()),
        "browsing": ledger.delete_browsing_history(
            session, customer_id=customer_id, now=now, actor=actor, channel="support", request_id=request_id
        ),
        **_delete_personal_records(session, customer, addresses, settings),
        "purchases": _detach_purchases(session, customer),
        "consents": len(withdrawn),
    }
    scrubbed_details, notes_removed = _scrub_requests(session, customer, values)
    scrubbed = scrubbed_details + _scrub_audit(session, customer, values)
    counts["notes_removed"] = notes_removed
    counts["emails"] = _purge_emails(session, addresses)
    return _Erased(counts, tuple(withdrawn), scrubbed)


def _tombstone_and_tell(
    session: Session,
    customer: Customer,
    erased: _Erased,
    *,
    actor: str,
    now: datetime,
    settings: Settings,
    target: str,
    webhook: dict[str, object],
    request_id: str | None,
) -> None:
    """Turn the customer into a tombstone, tell the retailer's systems (Art. 19) and audit it."""
    checkpoint_after_commit(session)  # SQLite: no copy of the deleted rows left in the write-ahead log
    reference_of_customer = customer_reference(customer)
    _tombstone(session, customer, settings=settings, now=now)
    queue_webhook(
        session,
        topic="customer.erased",
        payload={**reference_of_customer, **webhook, "occurred_at": now.isoformat()},
        now=now,
    )
    record_audit(
        session,
        actor=actor,
        action="customer.erased",
        target=target,
        detail={**erased.counts, "scrubbed": erased.scrubbed},
        now=now,
        request_id=request_id,
    )


def anonymise_customer(
    session: Session,
    *,
    customer_id: int,
    actor: str,
    now: datetime,
    settings: Settings,
    register: PurposeRegister,
    reason: str,
    request_id: str | None = None,
) -> dict[str, int] | None:
    """Erase a customer no request names (retention: `reason` says why), exactly as an erasure does, without the
    completion email (no request to answer). Returns the counts; None when already erased or unknown."""
    customer = session.get(Customer, customer_id)
    if customer is None or customer.erased_at is not None:
        return None
    erased = _erase_records(
        session, customer, actor=actor, now=now, settings=settings, register=register, request_id=request_id
    )
    _tombstone_and_tell(
        session,
        customer,
        erased,
        actor=actor,
        now=now,
        settings=settings,
        target=f"customer:{customer_id}",
        webhook={"request": None, "reason": reason},
        request_id=request_id,
    )
    return erased.counts
