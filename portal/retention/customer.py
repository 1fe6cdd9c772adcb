"""When each kind of a customer's data will go, as /me/processing tells them (Art. 13(2)(a), 15(1)(d))."""

from __future__ import annotations

import calendar
import dataclasses
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import String, cast, func, literal, select
from sqlmodel import Session

from portal.consent import ledger
from portal.consent.register import PurposeRegister, Retention
from portal.labels import period_words
from portal.models import AuditEvent, ConsentEvent, Customer, PageView, PrivacyRequest, Purchase, PurchaseTotal
from portal.retention.rules import BROWSING_CATEGORY, INVOICE_CATEGORY


@dataclasses.dataclass(frozen=True)
class DeletionDate:
    kind: str  # page_views | profile | purchases
    amount: int
    unit: str
    on: date  # in the portal's time zone

    @property
    def period(self) -> str:
        """The period in words, in the current language."""
        return period_words(self.amount, self.unit)


def _after(moment: datetime, retention: Retention) -> datetime:
    """`moment` plus the period (calendar months, clamped to the month's end): the inverse of earliest_kept."""
    if retention.unit == "days":
        return moment + timedelta(days=retention.amount)
    year, month = divmod(moment.year * 12 + moment.month - 1 + (retention.months or 0), 12)
    day = min(moment.day, calendar.monthrange(year, month + 1)[1])
    return moment.replace(year=year, month=month + 1, day=day)


def _last_contact(session: Session, customer_id: int) -> datetime | None:
    """The latest of what the inactivity rule counts: creation, purchase, sign-in, request, consent answer."""
    moments = [
        session.scalar(select(Customer.created_at).where(Customer.id == customer_id)),
        session.scalar(
            select(func.max(PurchaseTotal.last_purchase_at)).where(PurchaseTotal.customer_id == customer_id)
        ),
        session.scalar(select(func.max(PrivacyRequest.received_at)).where(PrivacyRequest.customer_id == customer_id)),
        session.scalar(select(func.max(ConsentEvent.occurred_at)).where(ConsentEvent.customer_id == customer_id)),
        session.scalar(
            select(func.max(AuditEvent.occurred_at)).where(
                AuditEvent.target == literal("customer:") + cast(literal(customer_id), String),
                AuditEvent.action == "signin.succeeded",
            )
        ),
    ]
    return max((moment for moment in moments if moment is not None), default=None)


def deletion_dates(
    session: Session, *, customer_id: int, register: PurposeRegister, timezone: str
) -> dict[str, list[DeletionDate]]:
    """Per purpose code, when the customer's data it keeps will be deleted or anonymised, oldest record first."""
    zone = ZoneInfo(timezone)
    dates: dict[str, list[DeletionDate]] = {}

    def add(purpose_code: str, kind: str, retention: Retention, moment: datetime) -> None:
        on = _after(moment, retention).astimezone(zone).date()
        dates.setdefault(purpose_code, []).append(DeletionDate(kind, retention.amount, retention.unit, on))

    oldest_view = session.scalar(select(func.min(PageView.viewed_at)).where(PageView.customer_id == customer_id))
    last_contact = _last_contact(session, customer_id)
    oldest_purchase = session.scalar(select(func.min(Purchase.purchased_at)).where(Purchase.customer_id == customer_id))
    for purpose in register:
        categories = {term.code for term in purpose.data_categories}
        retention = purpose.retention
        if BROWSING_CATEGORY in categories and retention.starts == "collection" and oldest_view:
            add(purpose.code, "page_views", retention, oldest_view)
        if retention.starts == "end_of_relationship" and last_contact:
            add(purpose.code, "profile", retention, last_contact)
        if INVOICE_CATEGORY in categories and retention.starts == "end_of_financial_year" and oldest_purchase:
            year_end = datetime(oldest_purchase.astimezone(zone).year + 1, 1, 1, tzinfo=zone)
            add(purpose.code, "purchases", retention, year_end)
    return dates


def processing_for(
    session: Session, *, customer_id: int, register: PurposeRegister, timezone: str
) -> tuple[dict[str, ledger.ConsentState], dict[str, list[DeletionDate]]]:
    """What /me/processing shows the customer: their consent per purpose, and when each kind of their data goes."""
    consents = ledger.current_consents(session, customer_id=customer_id)
    return consents, deletion_dates(session, customer_id=customer_id, register=register, timezone=timezone)
