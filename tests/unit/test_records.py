"""The writers keep the per-customer totals equal to the rows they summarise."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlmodel import select

from portal.browsing.records import record_page_view, record_page_views
from portal.db import transaction
from portal.models import PageViewDay, PageViewTotal, PurchaseTotal
from portal.mydata.service import overview_for
from portal.purchases.records import record_purchase
from tests.conftest import TIMEZONE
from tests.factories import make_customer, make_store


def test_purchase_totals_per_store_and_paris_year(engine) -> None:
    customer = make_customer(engine)
    shop, web = make_store(engine), make_store(engine, kind="web")
    moments = [
        (shop, datetime(2025, 12, 31, 22, 30, tzinfo=UTC)),  # 23:30 in Paris: still 2025
        (shop, datetime(2025, 12, 31, 23, 30, tzinfo=UTC)),  # 00:30 in Paris: 2026
        (shop, datetime(2026, 3, 1, 10, tzinfo=UTC)),
        (web, datetime(2026, 5, 1, 10, tzinfo=UTC)),
    ]
    with transaction(engine) as session:
        for i, (store, moment) in enumerate(moments):
            record_purchase(
                session,
                customer_id=customer.id,
                store_id=store.id,
                channel="in_store",
                purchased_at=moment,
                receipt_number=f"T-{i}",
                lines=[("A", "Pelle", 2, 1250)],
                timezone=TIMEZONE,
            )
    with transaction(engine) as session:
        rows = {(t.store_id, t.year): t for t in session.exec(select(PurchaseTotal)).all()}
        overview = overview_for(session, customer_id=customer.id)
    assert sorted((store, year, t.purchase_count, t.amount_cents) for (store, year), t in rows.items()) == [
        (shop.id, 2025, 1, 2500),
        (shop.id, 2026, 2, 5000),
        (web.id, 2026, 1, 2500),
    ]
    assert rows[(shop.id, 2026)].first_purchase_at == moments[1][1]
    assert rows[(shop.id, 2026)].last_purchase_at == moments[2][1]
    assert (overview.purchase_count, overview.store_count, overview.bought_online) == (4, 1, True)
    assert overview.last_purchase_at == moments[3][1]


def test_page_view_days_and_total(engine) -> None:
    customer = make_customer(engine)
    start = datetime(2026, 6, 1, 21, 30, tzinfo=UTC)  # 23:30 in Paris
    with transaction(engine) as session:
        for minutes in (0, 20, 40, 600):
            record_page_view(
                session,
                customer_id=customer.id,
                viewed_at=start + timedelta(minutes=minutes),
                url="https://www.maison-aubepine.example/",
                title="Accueil",
                timezone=TIMEZONE,
            )
    with transaction(engine) as session:
        days = {d.day.isoformat(): d.view_count for d in session.exec(select(PageViewDay)).all()}
        total = session.get(PageViewTotal, customer.id)
        overview = overview_for(session, customer_id=customer.id)
    assert days == {"2026-06-01": 2, "2026-06-02": 2}
    assert total is not None and total.view_count == 4 and total.last_viewed_at == start + timedelta(minutes=600)
    assert overview.page_view_count == 4


def test_a_customer_with_nothing_recorded(engine) -> None:
    customer = make_customer(engine, phone=None, address_line1=None, postal_code=None, city=None)
    with transaction(engine) as session:
        overview = overview_for(session, customer_id=customer.id)
    assert (overview.purchase_count, overview.store_count, overview.page_view_count) == (0, 0, 0)
    assert overview.last_purchase_at is None and overview.last_page_view_at is None
    assert "postal_address" not in overview.profile_fields and "phone" not in overview.profile_fields


def test_a_batch_of_page_views_keeps_the_same_totals_as_one_by_one(engine) -> None:
    one, batch = make_customer(engine), make_customer(engine)
    start = datetime(2026, 3, 28, 22, 30, tzinfo=UTC)  # around the Paris clock change, across midnight there
    moments = [start + timedelta(hours=h) for h in (0, 1, 2, 26, 50, 1)]
    with transaction(engine) as session:
        for at in moments:
            record_page_view(
                session, customer_id=one.id, viewed_at=at, url="https://shop.example/", title=None, timezone=TIMEZONE
            )
        record_page_view(
            session, customer_id=batch.id, viewed_at=start, url="https://shop.example/", title=None, timezone=TIMEZONE
        )
    with transaction(engine) as session:
        record_page_views(
            session, [(batch.id, at, "https://shop.example/", "T") for at in moments[1:]], timezone=TIMEZONE
        )

    def summary(customer_id: int):  # type: ignore[no-untyped-def]
        with transaction(engine) as session:
            days = session.exec(
                select(PageViewDay.day, PageViewDay.view_count)
                .where(PageViewDay.customer_id == customer_id)
                .order_by(PageViewDay.day)
            ).all()  # noqa: E501
            total = session.get(PageViewTotal, customer_id)
            return [tuple(d) for d in days], total.view_count, total.last_viewed_at

    assert summary(batch.id) == summary(one.id)
    assert summary(one.id)[1] == 6
