"""Factories for consent events and browsing histories (the web shop's page views)."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import Engine

from portal.browsing.records import record_page_view, record_page_views
from portal.db import transaction
from portal.models import ConsentEvent, Customer
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
    """`per_day` views on each of the `days` Paris days ending with `last_day` (no consent event added).

    Big histories (thousands of rows) go through `record_page_views`, the batch writer: a few multi-row statements
    that keep the per-day and per-customer counts exactly as `record_page_view` would
    (tests/unit/purchases/test_records.py).
    """
    assert customer.id is not None
    views: list[tuple[int, datetime, str, str | None]] = []
    for offset in range(days):
        day = last_day - timedelta(days=offset)
        start = datetime.combine(day, time(8), tzinfo=PARIS).astimezone(UTC)
        views.extend(
            (
                customer.id,
                start + timedelta(seconds=40 * n),
                f"https://www.maison-aubepine.example/d/{day.isoformat()}/{n}",
                f"Produit {n}",
            )
            for n in range(per_day)
        )
    with transaction(engine) as session:
        record_page_views(session, views, timezone=TIMEZONE)
