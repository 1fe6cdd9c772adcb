"""Queries behind the customer's data pages. Plain values in, plain objects out; no HTTP here."""

from __future__ import annotations

import dataclasses
from datetime import datetime

from sqlalchemy import Connection, bindparam, func, select
from sqlmodel import Session

from portal.models import Customer, PageViewTotal, PurchaseTotal, Store
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


class CustomerNotFound(LookupError):
    pass


_CUSTOMERS = Customer.__table__.c  # type: ignore[attr-defined]
_TOTALS = PurchaseTotal.__table__.c  # type: ignore[attr-defined]
_STORES = Store.__table__.c  # type: ignore[attr-defined]
_VIEWS = PageViewTotal.__table__.c  # type: ignore[attr-defined]

# One statement, built once: the overview is the most visited page, and each extra round trip or statement built
# per request cost more than SQLite's answers (bench/README.md).
_CUSTOMER_ID = bindparam("customer_id")
_TOTALS_JOIN = PurchaseTotal.__table__.join(Store.__table__, _STORES.id == _TOTALS.store_id)  # type: ignore[attr-defined]


def _totals(*columns):  # type: ignore[no-untyped-def]
    return select(*columns).select_from(_TOTALS_JOIN).where(_TOTALS.customer_id == _CUSTOMERS.id).scalar_subquery()


_OVERVIEW = (
    select(
        *(_CUSTOMERS[name] for name in ("first_name", "created_at", "erased_at", *Customer.stored_profile_columns())),
        _totals(func.coalesce(func.sum(_TOTALS.purchase_count), 0)).label("purchase_count"),
        _totals(func.count(func.distinct(_STORES.id)).filter(_STORES.kind != STORE_KIND_WEB)).label("store_count"),
        _totals(func.count(_STORES.id).filter(_STORES.kind == STORE_KIND_WEB)).label("web_rows"),
        _totals(func.max(_TOTALS.last_purchase_at)).label("last_purchase_at"),
        func.coalesce(_VIEWS.view_count, 0).label("page_view_count"),
        _VIEWS.last_viewed_at,
    )
    .select_from(Customer.__table__.outerjoin(PageViewTotal.__table__, _VIEWS.customer_id == _CUSTOMERS.id))  # type: ignore[attr-defined]
    .where(_CUSTOMERS.id == _CUSTOMER_ID)
)


def overview_for(db: Session | Connection, *, customer_id: int) -> Overview:
    """Counts for the "Your data" page, read from the per-customer totals (a few rows, whatever the history)."""
    connection = db.connection() if isinstance(db, Session) else db
    row = connection.execute(_OVERVIEW, {"customer_id": customer_id}).first()
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
    )
