"""The retention rules: what each purpose of the register lets the portal keep, and how long, as queries.

Each rule reads its period from the purpose register (or, for records no purpose covers, from the settings), never
from a constant here: change the register and the next run applies it. A rule knows three things: what is due now
(`pending`: count and oldest), how to remove one batch of it (`remove_batch`), and where its period comes from.
Most rules have one shape, a condition on rows and a way to forget a batch of them, and are made by `batched_rule`;
consent proof (per purpose) and sign-in records (one purge) write their own two functions.
Batches are small, self-contained transactions chosen by the same condition each time, so a run stopped midway
resumes by simply running again, and a second run finds nothing to do.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import ColumnElement, Row, Select, String, and_, cast, delete, exists, func, literal, or_, select
from sqlalchemy.orm import aliased
from sqlmodel import Session

from portal.audit import record_audit
from portal.banner.bundle import REMEMBER_DAYS
from portal.browsing.records import forget_page_views
from portal.consent.register import LocalizedText, Purpose, PurposeRegister, Retention
from portal.erasure.service import anonymise_customer
from portal.i18n import lazy_gettext, using_locale
from portal.labels import period_words
from portal.mail.compose import EmailComposer
from portal.models import (
    AuditEvent,
    ConsentEvent,
    Customer,
    OutboxMessage,
    PageView,
    PrivacyRequest,
    Purchase,
    PurchaseTotal,
    RequestEvent,
)
from portal.models.requests import OPEN_STATUSES
from portal.outbox.enqueue import enqueue_email
from portal.outbox.housekeeping import purge_sign_in_records
from portal.purchases.records import forget_purchases
from portal.settings import Settings

BROWSING_CATEGORY = "browsing"  # the register's data category of page views
INVOICE_CATEGORY = "invoices"  # the register's data category of what accounting must keep
# Delivered emails and webhooks: their bodies are cleared at delivery; the row only says something was sent.
SENT_MESSAGES_KEPT = timedelta(days=30)
ACTOR = "system"
# What a rule's period counts from, in words (register.RETENTION_STARTS, "setting" for the portal's own records, and
# "notice" for the warning that comes that long before the inactivity rule applies).
STARTS_LABELS = {
    "collection": lazy_gettext("from when each record was collected"),
    "end_of_relationship": lazy_gettext("from the customer's last purchase or contact"),
    "end_of_contract": lazy_gettext("from the end of each purchase's contract"),
    "end_of_financial_year": lazy_gettext("from the close of the record's financial year"),
    "setting": lazy_gettext("from when the record was closed or used"),
    "notice": lazy_gettext("before an inactive customer is anonymised"),
    "choice_end": lazy_gettext("from when the website visitor's choice lapsed (6 months after it)"),
}


@dataclasses.dataclass(frozen=True)
class Pending:
    count: int
    oldest: datetime | None


@dataclasses.dataclass(frozen=True)
class Removed:
    removed: int  # rows deleted or people anonymised
    held: int = 0  # rows under legal hold kept, detached from the person


@dataclasses.dataclass(frozen=True, kw_only=True)
class Context:
    now: datetime
    timezone: str
    settings: Settings
    register: PurposeRegister
    # Required to run the rules that tell a customer (a run); None only to count what is due (dry run, DPO page).
    composer: EmailComposer | None = None


@dataclasses.dataclass(frozen=True, kw_only=True)
class Rule:
    """One retention rule. `label` is a message id (translate where shown); `period` speaks the current language."""

    code: str
    label: str
    periods: tuple[tuple[int, str], ...]  # (amount, unit): one per distinct period of the rule's purposes
    starts: str  # one of register.RETENTION_STARTS, or "setting" or "notice"
    sources: tuple[str, ...]  # the purposes (codes) or setting that set the period
    cutoff: datetime  # what started before this is due
    pending: Callable[[Session], Pending]
    remove_batch: Callable[[Session, int], Removed]
    warns: bool = False  # the rule tells customers and removes nothing: its count is of customers warned

    @property
    def period(self) -> str:
        """The period in words, in the current language ("13 mois", "3 years")."""
        return " / ".join(period_words(amount, unit) for amount, unit in self.periods)


def _period_of(retention: Retention) -> tuple[tuple[int, str], ...]:
    return ((retention.amount, retention.unit),)


def _longest(purposes: list[Purpose], context: Context) -> Purpose | None:
    """The purpose keeping its data longest (the earliest cutoff): data serving several purposes lives that long."""
    return min(purposes, key=lambda p: p.retention.earliest_kept(context.now), default=None)


def _start_of_local_year(moment: datetime, timezone: str) -> datetime:
    local = moment.astimezone(ZoneInfo(timezone))
    return local.replace(month=1, day=1, hour=0, minute=0, second=0, microsecond=0)


def batched_rule(
    *,
    code: str,
    label: str,
    periods: tuple[tuple[int, str], ...],
    starts: str,
    sources: tuple[str, ...],
    cutoff: datetime,
    due: ColumnElement[bool],
    oldest: ColumnElement[Any],
    batch: Select[Any],
    forget: Callable[[Session, Sequence[Row[Any]]], Removed],
    warns: bool = False,
) -> Rule:
    """A rule of the common shape: `due` says which rows are due (the same condition counts them and picks each
    batch), `oldest` is what the dry run reports the minimum of, `batch` selects a batch's rows (ordered, without its
    WHERE and LIMIT) and `forget` removes them in the caller's transaction."""

    def pending(session: Session) -> Pending:
        count, first = session.execute(select(func.count(), func.min(oldest)).where(due)).one()
        return Pending(count, first)

    def remove_batch(session: Session, size: int) -> Removed:
        rows = session.execute(batch.where(due).limit(size)).all()
        return forget(session, rows) if rows else Removed(0)

    return Rule(code=code, label=label, periods=periods, starts=starts, sources=sources, cutoff=cutoff,
                pending=pending, remove_batch=remove_batch, warns=warns)  # fmt: skip


def _deleting(model: Any) -> Callable[[Session, Sequence[Row[Any]]], Removed]:
    """A rule's `forget` that deletes the batch's rows of `model` by id (the batch selects `model.id`)."""

    def forget(session: Session, rows: Sequence[Row[Any]]) -> Removed:
        ids = [row.id for row in rows]
        return Removed(session.execute(delete(model).where(model.id.in_(ids))).rowcount or 0)

    return forget


def _consent_periods(purposes: list[Purpose]) -> tuple[tuple[int, str], ...]:
    """The distinct periods of the consent-based purposes, shortest unit first."""
    return tuple(sorted({(p.retention.amount, p.retention.unit) for p in purposes}, key=lambda pair: pair[::-1]))


# --- Page views (data category "browsing", counted from collection) ------------------------------------------------


def page_views_rule(context: Context) -> Rule | None:
    purpose = _longest([p for p in context.register if BROWSING_CATEGORY in _categories(p)], context)
    if purpose is None:
        return None
    cutoff = purpose.retention.earliest_kept(context.now)
    return batched_rule(
        code="page_views",
        label=lazy_gettext("Page views and their day summaries deleted"),
        periods=_period_of(purpose.retention),
        starts=purpose.retention.starts,
        sources=(purpose.code,),
        cutoff=cutoff,
        due=PageView.viewed_at < cutoff,
        oldest=PageView.viewed_at,
        batch=select(PageView.id, PageView.customer_id, PageView.viewed_at).order_by(PageView.id),
        forget=lambda session, rows: Removed(
            forget_page_views(session, [tuple(row) for row in rows], timezone=context.timezone)
        ),
    )


def _categories(purpose: Purpose) -> set[str]:
    return {term.code for term in purpose.data_categories}


# --- Inactive customers (purposes counted from the end of the relationship) ----------------------------------------


def _no_contact_since(moment):  # type: ignore[no-untyped-def]
    """No purchase, sign-in, request (nor an open one) or consent answer at or after `moment`, a datetime or a
    column of the customer's row (e.g. when they were warned)."""
    reference = literal("customer:") + cast(Customer.id, String)
    return and_(
        ~exists().where(PurchaseTotal.customer_id == Customer.id, PurchaseTotal.last_purchase_at >= moment),
        ~exists().where(
            PrivacyRequest.customer_id == Customer.id,
            (PrivacyRequest.received_at >= moment) | PrivacyRequest.status.in_(OPEN_STATUSES),
        ),
        ~exists().where(ConsentEvent.customer_id == Customer.id, ConsentEvent.occurred_at >= moment),
        ~exists().where(
            AuditEvent.target == reference,
            AuditEvent.occurred_at >= moment,
            AuditEvent.action == "signin.succeeded",
        ),
    )


def _inactive_since(cutoff: datetime):  # type: ignore[no-untyped-def]
    """Customers still held whose last purchase, sign-in, request or consent answer is before `cutoff`."""
    return and_(
        Customer.erased_at.is_(None),
        Customer.restricted_at.is_(None),  # Art. 18: restricted data is kept, not used, until the restriction ends
        Customer.created_at < cutoff,
        _no_contact_since(cutoff),
    )


def _warned_and_inactive_since():  # type: ignore[no-untyped-def]
    """Customers warned of the inactivity rule, with no contact since the warning (which a contact makes stale)."""
    return and_(Customer.inactivity_warned_at.is_not(None), _no_contact_since(Customer.inactivity_warned_at))


def _inactivity_purposes(context: Context) -> tuple[list[Purpose], Purpose | None]:
    purposes = [p for p in context.register if p.retention.starts == "end_of_relationship"]
    return purposes, _longest(purposes, context)


INACTIVITY_WARNING_EMAIL = "inactivity-warning"
INACTIVITY_WARNINGS = "inactivity_warnings"  # the rule's code


def inactivity_warnings_rule(context: Context) -> Rule | None:
    """Warn, by email in their language, the customers the inactivity rule will anonymise within the notice period
    (PORTAL_INACTIVITY_NOTICE_DAYS), unless warned already since their last contact. Customers without an address
    are recorded as warned (nobody can be told) so the rule still applies to them; the audit event says so."""
    purposes, purpose = _inactivity_purposes(context)
    if purpose is None:
        return None
    notice = timedelta(days=context.settings.inactivity_notice_days)
    cutoff = purpose.retention.earliest_kept(context.now + notice)
    anonymised_from = context.now + notice

    def warn(session: Session, rows: Sequence[Row[Any]]) -> Removed:
        if context.composer is None:
            raise RuntimeError("a retention run needs the email composer: it warns customers")
        for (customer,) in rows:
            if customer.email:
                with using_locale(customer.preferred_language):
                    period = period_words(purpose.retention.amount, purpose.retention.unit)
                email = context.composer.compose(
                    INACTIVITY_WARNING_EMAIL,
                    to=customer.email,
                    language=customer.preferred_language,
                    context={"first_name": customer.first_name, "on": anonymised_from, "period": period},
                )
                enqueue_email(session, email=email, topic=INACTIVITY_WARNING_EMAIL, now=context.now)
            customer.inactivity_warned_at = context.now
            record_audit(
                session,
                actor=ACTOR,
                action="customer.inactivity_warned",
                target=f"customer:{customer.id}",
                detail={"anonymised_from": anonymised_from.date().isoformat(), "emailed": bool(customer.email)},
                now=context.now,
            )
        return Removed(len(rows))

    return batched_rule(
        code=INACTIVITY_WARNINGS,
        label=lazy_gettext("Inactive customers warned by email before they are anonymised"),
        periods=((context.settings.inactivity_notice_days, "days"),),
        starts="notice",
        sources=(*(p.code for p in purposes), "PORTAL_INACTIVITY_NOTICE_DAYS"),
        cutoff=cutoff,
        due=and_(_inactive_since(cutoff), ~_warned_and_inactive_since()),
        oldest=Customer.created_at,
        batch=select(Customer).order_by(Customer.id),
        forget=warn,
        warns=True,
    )


def inactive_customers_rule(context: Context) -> Rule | None:
    """Anonymise the customers inactive for the period who were warned at least the notice period ago and had no
    contact since. The query selects warned rows only: an unwarned customer cannot be anonymised by this rule."""
    purposes, purpose = _inactivity_purposes(context)
    if purpose is None:
        return None
    cutoff = purpose.retention.earliest_kept(context.now)
    warned_before = context.now - timedelta(days=context.settings.inactivity_notice_days)

    def anonymise(session: Session, rows: Sequence[Row[Any]]) -> Removed:
        removed = held = 0
        for (customer_id,) in rows:
            counts = anonymise_customer(
                session,
                customer_id=customer_id,
                actor=ACTOR,
                now=context.now,
                settings=context.settings,
                register=context.register,
                reason="retention",
            )
            if counts is not None:
                removed += 1
                held += counts.get("purchases", 0)
        return Removed(removed, held)

    return batched_rule(
        code="inactive_customers",
        label=lazy_gettext("Inactive customers anonymised as an erasure would (purchases kept for accounting)"),
        periods=_period_of(purpose.retention),
        starts=purpose.retention.starts,
        sources=tuple(p.code for p in purposes),
        cutoff=cutoff,
        due=and_(_inactive_since(cutoff), _warned_and_inactive_since(), Customer.inactivity_warned_at <= warned_before),
        oldest=Customer.created_at,
        batch=select(Customer.id).order_by(Customer.id),
        forget=anonymise,
    )


# --- Invoices (legal hold: kept for accounting, from the end of the financial year) ---------------------------------


def invoices_rule(context: Context) -> Rule | None:
    purposes = [p for p in context.register if INVOICE_CATEGORY in _categories(p)]
    purpose = _longest(purposes, context)
    if purpose is None:
        return None
    kept_from = purpose.retention.earliest_kept(context.now)
    # The financial year is the calendar year: a purchase's period starts when its year closes.
    cutoff = (
        _start_of_local_year(kept_from, context.timezone)
        if purpose.retention.starts == "end_of_financial_year"
        else kept_from
    )
    return batched_rule(
        code="invoices",
        label=lazy_gettext("Purchases and invoices deleted once accounting no longer needs them"),
        periods=_period_of(purpose.retention),
        starts=purpose.retention.starts,
        sources=(purpose.code,),
        cutoff=cutoff,
        due=Purchase.purchased_at < cutoff,
        oldest=Purchase.purchased_at,
        batch=select(
            Purchase.id, Purchase.customer_id, Purchase.store_id, Purchase.purchased_at, Purchase.total_cents
        ).order_by(Purchase.id),
        forget=lambda session, rows: Removed(
            forget_purchases(session, [tuple(row) for row in rows], timezone=context.timezone)
        ),
    )


# --- Proof of consent (as long as the consent, then the purpose's period) -------------------------------------------


def _withdrawn_customers(purpose: str, cutoff: datetime):  # type: ignore[no-untyped-def]
    """The customers whose last answer for `purpose` is a withdrawal older than `cutoff`."""
    last, later = aliased(ConsentEvent), aliased(ConsentEvent)
    return select(last.customer_id).where(
        last.purpose == purpose,
        last.granted.is_(False),
        last.occurred_at < cutoff,
        ~exists().where(
            later.customer_id == last.customer_id,
            later.purpose == purpose,
            (later.occurred_at > last.occurred_at) | and_(later.occurred_at == last.occurred_at, later.id > last.id),
        ),
    )


def consent_proof_rule(context: Context) -> Rule | None:
    purposes = context.register.consent_based()
    if not purposes:
        return None
    cutoffs = {p.code: p.retention.earliest_kept(context.now) for p in purposes}

    def pending(session: Session) -> Pending:
        count, oldest = 0, None
        for code, cutoff in cutoffs.items():
            n, first = session.execute(
                select(func.count(), func.min(ConsentEvent.occurred_at)).where(
                    ConsentEvent.purpose == code, ConsentEvent.customer_id.in_(_withdrawn_customers(code, cutoff))
                )
            ).one()
            count += n
            oldest = min(filter(None, (oldest, first)), default=None)
        return Pending(count, oldest)

    def remove_batch(session: Session, size: int) -> Removed:
        # Up to `size` customers per purpose: a batch removing fewer than `size` events left none due anywhere.
        deleted = 0
        for code, cutoff in cutoffs.items():
            customers = session.scalars(_withdrawn_customers(code, cutoff).limit(size)).all()
            if customers:
                deleted += (
                    session.execute(
                        delete(ConsentEvent).where(
                            ConsentEvent.purpose == code, ConsentEvent.customer_id.in_(customers)
                        )
                    ).rowcount
                    or 0
                )
        return Removed(deleted)

    return Rule(
        code="consent_proof",
        label=lazy_gettext("Proof of a withdrawn consent deleted once its purpose's period has passed"),
        periods=_consent_periods(purposes),
        starts="end_of_relationship",
        sources=tuple(cutoffs),
        cutoff=min(cutoffs.values()),
        pending=pending,
        remove_batch=remove_batch,
    )


# --- Website visitors' answers never linked to a customer ---------------------------------------------------------


def website_answers_rule(context: Context) -> Rule | None:
    """An anonymous visitor's banner answer is a choice the banner keeps 6 months, then asks again; its proof is kept
    the purpose's period after that, as a customer's consent proof is, then deleted. A visitor the web shop linked
    to a customer has their answers in the customer's ledger (customer_id set): consent_proof_rule covers those."""
    purposes = context.register.consent_based()
    if not purposes:
        return None
    lapse = timedelta(days=REMEMBER_DAYS)
    cutoffs = {p.code: p.retention.earliest_kept(context.now) - lapse for p in purposes}

    return batched_rule(
        code="website_answers",
        label=lazy_gettext("Website visitors' answers never linked to a customer deleted"),
        periods=_consent_periods(purposes),
        starts="choice_end",
        sources=tuple(cutoffs),
        cutoff=min(cutoffs.values()),
        due=and_(
            ConsentEvent.customer_id.is_(None),
            or_(
                *(
                    and_(ConsentEvent.purpose == code, ConsentEvent.occurred_at < cutoff)
                    for code, cutoff in cutoffs.items()
                )
            ),
        ),
        oldest=ConsentEvent.occurred_at,
        batch=select(ConsentEvent.id).order_by(ConsentEvent.id),
        forget=_deleting(ConsentEvent),
    )


# --- Records no purpose covers: closed requests, sent messages, sign-in records -------------------------------------


def closed_requests_rule(context: Context) -> Rule:
    months = context.settings.closed_request_retention_months
    retention = Retention(amount=months, unit="months", starts="collection", text=LocalizedText(()))
    cutoff = retention.earliest_kept(context.now)

    def delete_requests(session: Session, rows: Sequence[Row[Any]]) -> Removed:
        ids = [row.id for row in rows]
        session.execute(delete(RequestEvent).where(RequestEvent.request_id.in_(ids)))
        return Removed(session.execute(delete(PrivacyRequest).where(PrivacyRequest.id.in_(ids))).rowcount or 0)

    return batched_rule(
        code="closed_requests",
        label=lazy_gettext("Closed requests and their timelines deleted"),
        periods=((months, "months"),),
        starts="setting",
        sources=("PORTAL_CLOSED_REQUEST_RETENTION_MONTHS",),
        cutoff=cutoff,
        due=and_(PrivacyRequest.status.not_in(OPEN_STATUSES), PrivacyRequest.closed_at < cutoff),
        oldest=PrivacyRequest.closed_at,
        batch=select(PrivacyRequest.id).order_by(PrivacyRequest.id),
        forget=delete_requests,
    )


def sent_messages_rule(context: Context) -> Rule:
    cutoff = context.now - SENT_MESSAGES_KEPT

    return batched_rule(
        code="sent_messages",
        label=lazy_gettext("Emails and webhooks already delivered deleted"),
        periods=((SENT_MESSAGES_KEPT.days, "days"),),
        starts="setting",
        sources=("portal",),
        cutoff=cutoff,
        due=OutboxMessage.sent_at < cutoff,
        oldest=OutboxMessage.sent_at,
        batch=select(OutboxMessage.id).order_by(OutboxMessage.id),
        forget=_deleting(OutboxMessage),
    )


def sign_in_rule(context: Context) -> Rule:
    def pending(session: Session) -> Pending:
        # Counted by deleting in a savepoint rolled back: the same conditions as the purge, never a copy of them.
        with session.begin_nested() as savepoint:
            counts = purge_sign_in_records(session, now=context.now)
            savepoint.rollback()
        return Pending(sum(counts.values()), None)

    def remove_batch(session: Session, size: int) -> Removed:
        return Removed(sum(purge_sign_in_records(session, now=context.now).values()))

    return Rule(
        code="sign_in_records",
        label=lazy_gettext("Expired sign-in links, sessions and rate-limit counters deleted"),
        periods=((1, "days"),),
        starts="setting",
        sources=("portal",),
        cutoff=context.now,
        pending=pending,
        remove_batch=remove_batch,
    )


RULE_BUILDERS = (
    page_views_rule,
    inactivity_warnings_rule,  # before the anonymisation: a customer warned in this run is not anonymised in it
    inactive_customers_rule,
    invoices_rule,
    consent_proof_rule,
    website_answers_rule,
    closed_requests_rule,
    sent_messages_rule,
    sign_in_rule,
)


def build_rules(
    *, now: datetime, settings: Settings, register: PurposeRegister, composer: EmailComposer | None = None
) -> tuple[Rule, ...]:
    """Every rule the register and settings define, in the order a run applies them (a run gives the composer)."""
    context = Context(now=now, timezone=settings.timezone, settings=settings, register=register, composer=composer)
    return tuple(rule for build in RULE_BUILDERS if (rule := build(context)) is not None)
