"""Factories for consent events and browsing histories (the web shop's page views)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import Engine, func, select

from portal.browsing.records import record_page_view
from portal.db import transaction
from portal.models import ConsentEvent, Customer, PageView, PageViewDay, PageViewTotal
from tests.conftest import TIMEZONE

PARIS = ZoneInfo(TIMEZONE)


def record_consent(
    engine: Engine,
    customer: Customer,
    *,
    granted: bool,
    at: datetime,
    purpose: str = "browsing_analytics",
    channel: str = "web",
) -> None:
    with transaction(engine) as session:
        session.add(
            ConsentEvent(
                customer_id=customer.id,  # type: ignore[arg-type]
                purpose=purpose,
                granted=granted,
                occurred_at=at,
                channel=channel,
                actor="customer",
                policy_version="2026-01",
            )
        )


def add_views_at(engine: Engine, customer: Customer, moments: Iterable[datetime], *, site: str = "aubepine") -> None:
    """One page view at each moment, through the same writer as the retailer's API (no consent event added)."""
    with transaction(engine) as session:
        for n, moment in enumerate(moments):
            record_page_view(
                session,
                customer_id=customer.id,  # type: ignore[arg-type]
                viewed_at=moment,
                url=f"https://www.maison-aubepine.example/{site}/{customer.id}/{n}",
                title=f"Page {n} de {site}",
                timezone=TIMEZONE,
            )


def add_daily_views(engine: Engine, customer: Customer, *, days: int, per_day: int, last_day: date) -> None:
    """`per_day` views on each of the `days` Paris days ending with `last_day`, bulk-inserted with their totals.

    Big histories (thousands of rows) go in with Core inserts; the summary rows are computed from the same list,
    exactly as `record_page_view` would have kept them.
    """
    rows = []
    for offset in range(days):
        day = last_day - timedelta(days=offset)
        start = datetime.combine(day, time(8), tzinfo=PARIS).astimezone(UTC)
        for n in range(per_day):
            rows.append(
                {
                    "customer_id": customer.id,
                    "viewed_at": start + timedelta(seconds=40 * n),
                    "url": f"https://www.maison-aubepine.example/d/{day.isoformat()}/{n}",
                    "title": f"Produit {n}",
                }
            )
    per_day_counts = Counter(row["viewed_at"].astimezone(PARIS).date() for row in rows)
    with transaction(engine) as session:
        connection = session.connection()
        connection.execute(PageView.__table__.insert(), rows)  # type: ignore[attr-defined]
        connection.execute(
            PageViewDay.__table__.insert(),  # type: ignore[attr-defined]
            [{"customer_id": customer.id, "day": day, "view_count": count} for day, count in per_day_counts.items()],
        )
        table = PageView.__table__  # type: ignore[attr-defined]
        last = connection.execute(select(func.max(table.c.viewed_at)).where(table.c.customer_id == customer.id))
        connection.execute(
            PageViewTotal.__table__.insert(),  # type: ignore[attr-defined]
            [{"customer_id": customer.id, "view_count": len(rows), "last_viewed_at": last.scalar()}],
        )
