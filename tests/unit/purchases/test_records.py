"""The writers keep the per-customer totals equal to the rows they summarise."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

from sqlalchemy import Engine
from sqlmodel import col, select

from portal.browsing.records import record_page_view, record_page_views
from portal.db import transaction
from portal.models import PageView, PageViewDay, PageViewTotal, Purchase, PurchaseLine, PurchaseTotal
from portal.mydata.service import overview_for
from portal.purchases.records import record_purchase
from tests.browsing_factories import add_daily_views, add_views_at
from tests.conftest import TIMEZONE
from tests.factories import add_page_views, add_purchases, make_customer, make_store
from tests.purchase_factories import NewPurchase, add_purchase, insert_purchases


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


# --- The bulk factories keep the same totals as the writers ----------------------------------------------------
# Fixtures build big histories with multi-row INSERTs (tests/purchase_factories.py, tests/factories.py); pages read
# only the totals, so a factory that summed differently would make every page test check the wrong numbers.


PurchaseTotals = list[tuple[int, int, int, int, datetime, datetime]]  # store, year, count, amount, first, last
PageViewCounts = tuple[list[tuple[date, int]], tuple[int, datetime] | None]  # (day, count)s, (count, last view)


def _purchase_totals(engine: Engine, customer_id: int | None) -> PurchaseTotals:
    with transaction(engine) as session:
        rows = session.exec(select(PurchaseTotal).where(PurchaseTotal.customer_id == customer_id)).all()
        return sorted(
            (t.store_id, t.year, t.purchase_count, t.amount_cents, t.first_purchase_at, t.last_purchase_at)
            for t in rows
        )


def _page_view_totals(engine: Engine, customer_id: int | None) -> PageViewCounts:
    with transaction(engine) as session:
        days = session.exec(select(PageViewDay).where(PageViewDay.customer_id == customer_id)).all()
        total = session.get(PageViewTotal, customer_id)
        return (
            sorted((d.day, d.view_count) for d in days),
            (total.view_count, total.last_viewed_at) if total else None,
        )


def _replay_purchases(engine: Engine, ids: list[int], customer_id: int | None) -> None:
    """The purchases `ids` again, for `customer_id`, one by one through `record_purchase`."""
    with transaction(engine) as session:
        purchases = session.exec(select(Purchase).where(col(Purchase.id).in_(ids)).order_by(col(Purchase.id))).all()
        lines: dict[int, list[tuple[str, str, int, int]]] = {purchase_id: [] for purchase_id in ids}
        for line in session.exec(select(PurchaseLine).order_by(col(PurchaseLine.id))).all():
            if line.purchase_id in lines:
                lines[line.purchase_id].append((line.sku, line.label, line.quantity, line.unit_price_cents))
        for purchase in purchases:
            record_purchase(
                session,
                customer_id=customer_id,
                store_id=purchase.store_id,
                channel=purchase.channel,
                purchased_at=purchase.purchased_at,
                receipt_number=f"AGAIN-{purchase.receipt_number}",
                lines=lines[purchase.id],  # type: ignore[index]
                timezone=TIMEZONE,
            )


def test_bulk_inserted_purchases_leave_the_totals_record_purchase_leaves(engine) -> None:
    bulk, one_by_one = make_customer(engine), make_customer(engine)
    shop, web = make_store(engine), make_store(engine, kind="web")
    for customer in (bulk, one_by_one):  # totals already there: the bulk upsert must add to them, not replace them
        add_purchase(engine, customer, shop, at=datetime(2025, 6, 1, 10, tzinfo=UTC))
    # A day apart across two Paris New Years (2025 begins at 23:00 UTC), and both clock changes.
    ids = add_purchases(engine, bulk, shop, 400, start=datetime(2024, 12, 1, 22, 30, tzinfo=UTC))
    edges = insert_purchases(
        engine,
        [
            NewPurchase(
                bulk.id, web.id, "web", datetime(2025, 12, 31, 23, 30, tzinfo=UTC), "EDGE-1", [("A", "Pelle", 3, 1250)]
            ),
            NewPurchase(bulk.id, web.id, "click_and_collect", datetime(2025, 12, 31, 22, 59, tzinfo=UTC), "EDGE-2"),
            NewPurchase(bulk.id, shop.id, "in_store", datetime(2025, 6, 1, 9, tzinfo=UTC), "EDGE-3", []),
        ],
    )
    insert_purchases(engine, [NewPurchase(None, shop.id, "in_store", datetime(2025, 6, 2, 9, tzinfo=UTC), "ERASED-1")])
    _replay_purchases(engine, ids + edges, one_by_one.id)

    assert _purchase_totals(engine, bulk.id) == _purchase_totals(engine, one_by_one.id)
    years = {(store, year): count for store, year, count, *_ in _purchase_totals(engine, bulk.id)}
    # The purchase linked to nobody is in no total.
    assert years == {
        (shop.id, 2024): 31,
        (shop.id, 2025): 1 + 365 + 1,
        (shop.id, 2026): 4,
        (web.id, 2025): 1,
        (web.id, 2026): 1,
    }
    with transaction(engine) as session:
        receipts = {
            p.id: p.receipt_number for p in session.exec(select(Purchase).where(col(Purchase.id).in_(edges))).all()
        }
        lines = session.exec(select(PurchaseLine).where(PurchaseLine.purchase_id == edges[0])).all()
        unlinked = session.exec(select(Purchase).where(col(Purchase.customer_id).is_(None))).all()
    assert [receipts[i] for i in edges] == ["EDGE-1", "EDGE-2", "EDGE-3"]  # the ids come back in the order given
    assert [(x.sku, x.quantity, x.unit_price_cents) for x in lines] == [("A", 3, 1250)]
    assert [p.receipt_number for p in unlinked] == ["ERASED-1"]  # in no customer's totals


def test_bulk_page_view_factories_leave_the_counts_record_page_view_leaves(engine) -> None:
    bulk, one_by_one = make_customer(engine), make_customer(engine)
    first = datetime(2026, 3, 1, 9, tzinfo=UTC)
    for customer in (bulk, one_by_one):  # counts already there: the batch must add to them
        add_views_at(engine, customer, [first])
    # An hour apart from 21:00 UTC, so Paris midnight splits each day, over the spring clock change.
    add_page_views(engine, bulk, 900, start=datetime(2026, 3, 20, 21, tzinfo=UTC))
    add_daily_views(engine, bulk, days=45, per_day=30, last_day=date(2026, 11, 1))  # the autumn one too
    with transaction(engine) as session:
        moments = session.exec(
            select(PageView.viewed_at).where(PageView.customer_id == bulk.id, PageView.viewed_at != first)
        ).all()
    add_views_at(engine, one_by_one, moments)

    assert _page_view_totals(engine, bulk.id) == _page_view_totals(engine, one_by_one.id)
    days, (count, last_viewed_at) = _page_view_totals(engine, bulk.id)
    assert count == 1 + 900 + 45 * 30 and last_viewed_at == max(moments)
    assert dict(days)[date(2026, 3, 29)] == 23  # the day the clocks go forward has 23 hours
    assert dict(days)[date(2026, 10, 25)] == 30
