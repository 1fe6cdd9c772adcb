"""Queries behind the customer's data pages. Plain values in, plain objects out; no HTTP here."""

from __future__ import annotations

import dataclasses
from datetime import datetime
from typing import Any

from sqlalchemy import BindParameter, Connection, Row, and_, bindparam, func, select
from sqlmodel import Session

from portal.consent.ledger import granted_purposes_count
from portal.db import as_connection
from portal.errors import CustomerNotFound
from portal.incidents.notices import RECENT_NOTICE, CustomerNotice, notice_told
from portal.models import (
    ConsentEvent,
    Customer,
    Incident,
    IncidentRecipient,
    PageViewTotal,
    PrivacyRequest,
    ProfileChange,
    PurchaseTotal,
    Store,
)
from portal.models.commerce import STORE_KIND_WEB
from portal.models.customer import held_profile_fields


@dataclasses.dataclass(frozen=True)
class Overview:
    first_name: str | None
    purchase_count: int
    store_count: int  # physical stores visited
    bought_online: bool
    last_purchase_at: datetime | None
    page_view_count: int
    last_page_view_at: datetime | None
    profile_fields: list[str]
    customer_since: datetime
    profile_changed_at: datetime  # the latest change of a profile field, or the customer's creation
    restricted_at: datetime | None  # processing restricted at the customer's request (GDPR Art. 18) since then
    request_count: int
    last_request_at: datetime | None
    consents_granted: int
    last_consent_change_at: datetime | None


_CUSTOMERS = Customer.__table__.c
_TOTALS = PurchaseTotal.__table__.c
_STORES = Store.__table__.c
_VIEWS = PageViewTotal.__table__.c

# One statement, built once: the overview is the most visited page, and each extra round trip or statement built
# per request cost more than SQLite's answers (bench/README.md).
_CUSTOMER_ID: BindParameter[int] = bindparam("customer_id")
_TOTALS_JOIN = PurchaseTotal.__table__.join(Store.__table__, _STORES.id == _TOTALS.store_id)


_CHANGES = ProfileChange.__table__.c
_REQUESTS = PrivacyRequest.__table__.c
_EVENTS = ConsentEvent.__table__.c


# The purchase figures and the request figures, each read once as a derived table of one row (both databases): as
# scalar subqueries, PostgreSQL scanned the customer's totals four times and their requests twice, a third of the
# statement's time there (EXPLAIN ANALYZE, issue 17).
_PURCHASE_FIGURES = (
    select(
        _TOTALS.customer_id,
        func.sum(_TOTALS.purchase_count).label("purchase_count"),
        func.count(func.distinct(_STORES.id)).filter(_STORES.kind != STORE_KIND_WEB).label("store_count"),
        func.count(_STORES.id).filter(_STORES.kind == STORE_KIND_WEB).label("web_rows"),
        func.max(_TOTALS.last_purchase_at).label("last_purchase_at"),
    )
    .select_from(_TOTALS_JOIN)
    .where(_TOTALS.customer_id == _CUSTOMER_ID)
    .group_by(_TOTALS.customer_id)
    .subquery("purchase_figures")
)
_REQUEST_FIGURES = (
    select(
        _REQUESTS.customer_id,
        func.count().label("request_count"),
        func.max(_REQUESTS.received_at).label("last_request_at"),
    )
    .where(_REQUESTS.customer_id == _CUSTOMER_ID)
    .group_by(_REQUESTS.customer_id)
    .subquery("request_figures")
)

_OVERVIEW = (
    select(
        *(
            _CUSTOMERS[name]
            for name in ("first_name", "created_at", "erased_at", "restricted_at", *Customer.stored_profile_columns())
        ),
        func.coalesce(_PURCHASE_FIGURES.c.purchase_count, 0).label("purchase_count"),
        func.coalesce(_PURCHASE_FIGURES.c.store_count, 0).label("store_count"),
        func.coalesce(_PURCHASE_FIGURES.c.web_rows, 0).label("web_rows"),
        _PURCHASE_FIGURES.c.last_purchase_at,
        func.coalesce(_VIEWS.view_count, 0).label("page_view_count"),
        _VIEWS.last_viewed_at,
        # What the profile page dates its fields by (not updated_at, which a restriction also moves).
        select(func.max(_CHANGES.changed_at))
        .where(_CHANGES.customer_id == _CUSTOMERS.id)
        .scalar_subquery()
        .label("profile_changed_at"),
        func.coalesce(_REQUEST_FIGURES.c.request_count, 0).label("request_count"),
        _REQUEST_FIGURES.c.last_request_at,
        # Each purpose's latest answer, by index seeks: the count costs the purposes answered, not the ledger.
        granted_purposes_count().label("consents_granted"),
        select(func.max(_EVENTS.occurred_at))
        .where(_EVENTS.customer_id == _CUSTOMERS.id)
        .scalar_subquery()
        .label("last_consent_change_at"),
    )
    .select_from(
        Customer.__table__.outerjoin(PageViewTotal.__table__, _VIEWS.customer_id == _CUSTOMERS.id)
        .outerjoin(_PURCHASE_FIGURES, _PURCHASE_FIGURES.c.customer_id == _CUSTOMERS.id)
        .outerjoin(_REQUEST_FIGURES, _REQUEST_FIGURES.c.customer_id == _CUSTOMERS.id)
    )
    .where(_CUSTOMERS.id == _CUSTOMER_ID)
)

_RECIPIENTS = IncidentRecipient.__table__.c
_INCIDENTS = Incident.__table__.c
# The overview and the breach notices the customer was told of, in one statement (one row per notice, the overview
# repeated; one row without a notice when there is none): on PostgreSQL every statement is a round trip, and the
# overview is the page every customer lands on (issue 17: /me on PostgreSQL at 0.41 of SQLite).
_OVERVIEW_WITH_NOTICES = (
    _OVERVIEW.add_columns(
        _INCIDENTS.reference.label("notice_reference"),
        _INCIDENTS.discovered_at.label("notice_discovered_at"),
        _INCIDENTS.notice,
        _RECIPIENTS.notified_at,
    )
    .outerjoin(
        IncidentRecipient.__table__.join(Incident.__table__, _INCIDENTS.id == _RECIPIENTS.incident_id),
        and_(_RECIPIENTS.customer_id == _CUSTOMERS.id, _RECIPIENTS.notified_at.is_not(None)),
    )
    .order_by(_RECIPIENTS.notified_at.desc(), _RECIPIENTS.id.desc())
)


def overview_for(db: Session | Connection, *, customer_id: int) -> Overview:
    """Counts for the "Your data" page, read from the per-customer totals (a few rows, whatever the history)."""
    row = as_connection(db).execute(_OVERVIEW, {"customer_id": customer_id}).first()
    return _overview(row, customer_id)


def _overview(row: Row[Any] | None, customer_id: int) -> Overview:
    if row is None or row.erased_at is not None:
        raise CustomerNotFound(customer_id)
    return Overview(
        first_name=row.first_name,
        purchase_count=int(row.purchase_count),
        store_count=int(row.store_count),
        bought_online=int(row.web_rows) > 0,
        last_purchase_at=row.last_purchase_at,
        page_view_count=int(row.page_view_count),
        last_page_view_at=row.last_viewed_at,
        profile_fields=held_profile_fields(row._mapping),
        customer_since=row.created_at,
        profile_changed_at=row.profile_changed_at or row.created_at,
        restricted_at=row.restricted_at,
        request_count=int(row.request_count),
        last_request_at=row.last_request_at,
        consents_granted=int(row.consents_granted),
        last_consent_change_at=row.last_consent_change_at,
    )


@dataclasses.dataclass(frozen=True)
class BreachNotices:
    """The breach notices (GDPR Art. 34) the overview shows: the recent ones in full, and how many in all."""

    recent: list[CustomerNotice]
    total: int


def overview_with_notices(
    db: Session | Connection, *, customer_id: int, language: str, now: datetime
) -> tuple[Overview, BreachNotices]:
    """The overview, with the breach notices sent in the last 90 days shown in full above everything else; older
    ones are in the customer's notice history (/me/notices), which the overview links to whenever there is one."""
    rows = as_connection(db).execute(_OVERVIEW_WITH_NOTICES, {"customer_id": customer_id}).all()
    overview = _overview(rows[0] if rows else None, customer_id)
    notices = [
        notice_told(row.notice_reference, row.notice_discovered_at, row.notified_at, row.notice, language)
        for row in rows
        if row.notified_at is not None
    ]
    recent = [notice for notice in notices if notice.notified_at >= now - RECENT_NOTICE]
    return overview, BreachNotices(recent, len(notices))
