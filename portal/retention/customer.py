"""When each kind of a customer's data will go, as /me/processing tells them (Art. 13(2)(a), 15(1)(d))."""

from __future__ import annotations

import calendar
import dataclasses
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import BindParameter, Connection, bindparam, func, select
from sqlmodel import Session

from portal.consent import ledger
from portal.consent.register import PurposeRegister, Retention
from portal.db import as_connection, first_row
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


_CUSTOMER_ID: BindParameter[int] = bindparam("customer_id")
_SIGNIN_TARGET: BindParameter[str] = bindparam("signin_target")


def _latest(column, *where):  # type: ignore[no-untyped-def]
    return select(func.max(column)).where(*where).scalar_subquery()


# Everything the deletion dates start from, in one statement built once: /me/processing is a customer page, and each
# statement built per request or sent apart cost more than SQLite's answers (a round trip each on PostgreSQL).
_STARTING_POINTS = select(
    select(Customer.created_at).where(Customer.id == _CUSTOMER_ID).scalar_subquery().label("created_at"),
    _latest(PurchaseTotal.last_purchase_at, PurchaseTotal.customer_id == _CUSTOMER_ID).label("last_purchase_at"),
    _latest(PrivacyRequest.received_at, PrivacyRequest.customer_id == _CUSTOMER_ID).label("last_request_at"),
    _latest(ConsentEvent.occurred_at, ConsentEvent.customer_id == _CUSTOMER_ID).label("last_consent_at"),
    # The newest sign-in walks the customer's audit trail backwards from its end and stops at the first sign-in
    # (ix_audit_event_target); MAX() with the action filter read the whole trail.
    select(AuditEvent.occurred_at)
    .where(AuditEvent.target == _SIGNIN_TARGET, AuditEvent.action == "signin.succeeded")
    .order_by(AuditEvent.occurred_at.desc())
    .limit(first_row())
    .scalar_subquery()
    .label("last_signin_at"),
    select(func.min(PageView.viewed_at))
    .where(PageView.customer_id == _CUSTOMER_ID)
    .scalar_subquery()
    .label("oldest_view"),
    select(func.min(Purchase.purchased_at))
    .where(Purchase.customer_id == _CUSTOMER_ID)
    .scalar_subquery()
    .label("oldest_purchase"),
)


def deletion_dates(
    db: Session | Connection, *, customer_id: int, register: PurposeRegister, timezone: str
) -> dict[str, list[DeletionDate]]:
    """Per purpose code, when the customer's data it keeps will be deleted or anonymised, oldest record first."""
    zone = ZoneInfo(timezone)
    dates: dict[str, list[DeletionDate]] = {}

    def add(purpose_code: str, kind: str, retention: Retention, moment: datetime) -> None:
        on = _after(moment, retention).astimezone(zone).date()
        dates.setdefault(purpose_code, []).append(DeletionDate(kind, retention.amount, retention.unit, on))

    # What a caller's session added and has not flushed yet counts, as autoflush would make it; the statement then runs
    # on the connection: Session.execute's ORM handling of this Core select was a sixth of /me/processing (issue 17).
    if isinstance(db, Session):
        db.flush()
    params = {"customer_id": customer_id, "signin_target": f"customer:{customer_id}"}
    row = as_connection(db).execute(_STARTING_POINTS, params).one()
    # What the inactivity rule counts: creation, purchase, sign-in, request, consent answer.
    contacts = (row.created_at, row.last_purchase_at, row.last_request_at, row.last_consent_at, row.last_signin_at)
    last_contact = max((moment for moment in contacts if moment is not None), default=None)
    oldest_view, oldest_purchase = row.oldest_view, row.oldest_purchase
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
    db: Session | Connection, *, customer_id: int, register: PurposeRegister, timezone: str
) -> tuple[dict[str, ledger.ConsentState], dict[str, list[DeletionDate]]]:
    """What /me/processing shows the customer: their consent per purpose, and when each kind of their data goes."""
    consents = ledger.current_consents(db, customer_id=customer_id)
    return consents, deletion_dates(db, customer_id=customer_id, register=register, timezone=timezone)
