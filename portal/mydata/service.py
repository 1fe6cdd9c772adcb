"""Queries behind the customer's data pages. Plain values in, plain objects out; no HTTP here."""

from __future__ import annotations

import dataclasses
from datetime import date, datetime

from sqlalchemy import func, select
from sqlmodel import Session

from portal.models import Customer, PageViewDay, PurchaseTotal, Store
from portal.models.commerce import STORE_KIND_WEB


@dataclasses.dataclass(frozen=True)
class Overview:
    first_name: str | None
    purchase_count: int
    store_count: int  # physical stores visited
    bought_online: bool
    last_purchase_at: datetime | None
    page_view_count: int
    last_page_view_day: date | None
    profile_fields: list[str]
    customer_since: datetime


class CustomerNotFound(LookupError):
    pass


def overview_for(session: Session, *, customer_id: int) -> Overview:
    """Counts for the "Your data" page, read from the per-customer totals (a few rows, whatever the history)."""
    customer = session.get(Customer, customer_id)
    if customer is None or customer.erased_at is not None:
        raise CustomerNotFound(customer_id)
    purchases = session.execute(
        select(
            func.coalesce(func.sum(PurchaseTotal.purchase_count), 0),
            func.count(func.distinct(Store.id)).filter(Store.kind != STORE_KIND_WEB),
            func.count(Store.id).filter(Store.kind == STORE_KIND_WEB),
            func.max(PurchaseTotal.last_purchase_at),
        )
        .select_from(PurchaseTotal)
        .join(Store, Store.id == PurchaseTotal.store_id)  # type: ignore[arg-type]
        .where(PurchaseTotal.customer_id == customer_id)
    ).one()
    browsing = session.execute(
        select(func.coalesce(func.sum(PageViewDay.view_count), 0), func.max(PageViewDay.day)).where(
            PageViewDay.customer_id == customer_id
        )
    ).one()
    return Overview(
        first_name=customer.first_name,
        purchase_count=int(purchases[0]),
        store_count=int(purchases[1]),
        bought_online=int(purchases[2]) > 0,
        last_purchase_at=purchases[3],
        page_view_count=int(browsing[0]),
        last_page_view_day=browsing[1],
        profile_fields=customer.held_profile_fields(),
        customer_since=customer.created_at,
    )
