"""The purchases service: order, keyset pages, filters on Paris years, totals, receipts and whose they are."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta

import pytest

from portal.purchases import service as purchases
from portal.purchases.service import (
    InvalidCursor,
    InvalidFilter,
    PurchaseFilters,
    PurchaseNotFound,
    purchase_listing,
    purchase_page,
    purchase_totals,
    receipt,
    stores_bought_in,
    year_bounds,
)
from tests.conftest import TIMEZONE
from tests.factories import make_customer, make_store
from tests.purchase_factories import add_purchase

NOON = datetime(2025, 6, 1, 12, tzinfo=UTC)


def walk(engine, *, customer_id: int, filters: PurchaseFilters, page_size: int) -> list[list[int]]:
    """Every page of the list, following the cursors as the "Show older purchases" link does."""
    pages: list[list[int]] = []
    after = None
    with engine.connect() as connection:
        while True:
            page = purchase_page(
                connection,
                customer_id=customer_id,
                filters=filters,
                after=after,
                page_size=page_size,
                timezone=TIMEZONE,
            )
            pages.append([p.id for p in page.purchases])
            if page.next_after is None:
                return pages
            assert len(pages) < 100, "the cursor does not move"
            after = page.next_after


@pytest.fixture
def shop(engine):
    return make_store(engine, city="Lyon")


@pytest.fixture
def web(engine):
    return make_store(engine, code="WEB", kind="web", city="")


def test_newest_first_with_ties_broken_by_id(engine, shop) -> None:
    customer = make_customer(engine)
    older = add_purchase(engine, customer, shop, at=NOON - timedelta(days=1))
    same_a = add_purchase(engine, customer, shop, at=NOON)
    same_b = add_purchase(engine, customer, shop, at=NOON)
    newest = add_purchase(engine, customer, shop, at=NOON + timedelta(seconds=1))
    with engine.connect() as connection:
        page = purchase_page(connection, customer_id=customer.id, filters=PurchaseFilters(), timezone=TIMEZONE)
    assert [p.id for p in page.purchases] == [newest.id, same_b.id, same_a.id, older.id]
    assert page.next_after is None
    first = page.purchases[0]
    assert first.receipt_number == newest.receipt_number and first.store.id == shop.id
    assert first.total_cents == 2490 + 2 * 899 and first.currency == "EUR" and first.channel == "in_store"
    assert first.purchased_at == NOON + timedelta(seconds=1)


@pytest.mark.parametrize("page_size", [1, 2, 3, 5, 25])
def test_keyset_pages_cover_everything_once_even_across_equal_timestamps(engine, shop, web, page_size) -> None:
    customer = make_customer(engine)
    moments = (
        [NOON] * 7 + [NOON - timedelta(hours=1)] * 3 + [NOON + timedelta(microseconds=1)] + [NOON - timedelta(days=400)]
    )
    created = [add_purchase(engine, customer, shop if i % 2 else web, at=at) for i, at in enumerate(moments)]
    expected = [p.id for p in sorted(created, key=lambda p: (p.purchased_at, p.id), reverse=True)]

    pages = walk(engine, customer_id=customer.id, filters=PurchaseFilters(), page_size=page_size)

    assert list(itertools.chain.from_iterable(pages)) == expected
    assert all(len(page) == page_size for page in pages[:-1]) and 0 < len(pages[-1]) <= page_size


def test_a_customer_sees_only_their_own_purchases(engine, shop) -> None:
    mine, theirs = make_customer(engine), make_customer(engine)
    own = [add_purchase(engine, mine, shop, at=NOON + timedelta(hours=i)) for i in range(3)]
    for i in range(4):
        add_purchase(engine, theirs, shop, at=NOON + timedelta(hours=i, minutes=30))
    pages = walk(engine, customer_id=mine.id, filters=PurchaseFilters(), page_size=2)
    assert sorted(itertools.chain.from_iterable(pages)) == sorted(p.id for p in own)


def test_filters_by_store_channel_and_paris_year(engine, shop, web) -> None:
    customer = make_customer(engine)
    last_of_2025 = add_purchase(engine, customer, shop, at=datetime(2025, 12, 31, 22, 59, 59, tzinfo=UTC))  # 23:59:59
    first_of_2026 = add_purchase(engine, customer, shop, at=datetime(2025, 12, 31, 23, tzinfo=UTC))  # 00:00 in Paris
    summer_2026 = add_purchase(engine, customer, web, at=datetime(2026, 7, 1, 8, tzinfo=UTC), channel="web")
    collected = add_purchase(engine, customer, web, at=datetime(2026, 7, 2, 8, tzinfo=UTC), channel="click_and_collect")
    first_of_2025 = add_purchase(engine, customer, web, at=datetime(2024, 12, 31, 23, tzinfo=UTC), channel="web")
    last_of_2024 = add_purchase(engine, customer, shop, at=datetime(2024, 12, 31, 22, 59, tzinfo=UTC))

    def ids(**filters: object) -> list[int]:
        pages = walk(engine, customer_id=customer.id, filters=PurchaseFilters(**filters), page_size=2)  # type: ignore[arg-type]
        return list(itertools.chain.from_iterable(pages))

    assert ids(year=2025) == [last_of_2025.id, first_of_2025.id]
    assert ids(year=2026) == [collected.id, summer_2026.id, first_of_2026.id]
    assert ids(year=2024) == [last_of_2024.id]
    assert ids(year=2023) == []
    assert ids(store_id=web.id) == [collected.id, summer_2026.id, first_of_2025.id]
    assert ids(channel="in_store") == [first_of_2026.id, last_of_2025.id, last_of_2024.id]
    assert ids(channel="click_and_collect") == [collected.id]
    assert ids(store_id=web.id, year=2026, channel="web") == [summer_2026.id]
    assert ids(store_id=shop.id, channel="web") == []


def test_year_bounds_follow_the_winter_offset() -> None:
    assert year_bounds(2026, TIMEZONE) == (
        datetime(2025, 12, 31, 23, tzinfo=UTC),
        datetime(2026, 12, 31, 23, tzinfo=UTC),
    )


def test_a_year_filter_with_a_cursor_from_outside_the_year(engine, shop) -> None:
    # The filters changed after "Show older purchases": the cursor points at a 2026 purchase, the list at 2025.
    customer = make_customer(engine)
    in_2026 = add_purchase(engine, customer, shop, at=datetime(2026, 3, 1, tzinfo=UTC))
    add_purchase(engine, customer, shop, at=datetime(2026, 1, 15, tzinfo=UTC))  # older than the cursor, not 2025
    in_2025 = [add_purchase(engine, customer, shop, at=datetime(2025, 3, d, tzinfo=UTC)) for d in (1, 2)]
    in_2024 = add_purchase(engine, customer, shop, at=datetime(2024, 3, 1, tzinfo=UTC))
    with engine.connect() as connection:
        page = purchase_page(
            connection,
            customer_id=customer.id,
            filters=PurchaseFilters(year=2025),
            after=str(in_2026.id),
            timezone=TIMEZONE,
        )
        assert [p.id for p in page.purchases] == [in_2025[1].id, in_2025[0].id]
        page = purchase_page(
            connection,
            customer_id=customer.id,
            filters=PurchaseFilters(year=2025),
            after=str(in_2024.id),
            timezone=TIMEZONE,
        )
        assert page.purchases == ()


@pytest.mark.parametrize(
    "cursor", ["abc", "0", "-1", "1.5", " 1", "1 ", "12345678901", "2147483648", "１２", "1e3", "0x10"]
)
def test_malformed_cursors_are_refused_with_a_value_error(engine, shop, cursor) -> None:
    customer = make_customer(engine)
    add_purchase(engine, customer, shop, at=NOON)
    with engine.connect() as connection, pytest.raises(InvalidCursor) as raised:
        purchase_page(connection, customer_id=customer.id, filters=PurchaseFilters(), after=cursor, timezone=TIMEZONE)
    assert isinstance(raised.value, ValueError) and raised.value.field == "after"


def test_a_cursor_from_another_customer_is_not_found(engine, shop) -> None:
    mine, theirs = make_customer(engine), make_customer(engine)
    add_purchase(engine, mine, shop, at=NOON)
    other = add_purchase(engine, theirs, shop, at=NOON + timedelta(days=1))
    with engine.connect() as connection:
        with pytest.raises(PurchaseNotFound):
            purchase_page(
                connection, customer_id=mine.id, filters=PurchaseFilters(), after=str(other.id), timezone=TIMEZONE
            )
        with pytest.raises(PurchaseNotFound):
            purchase_page(
                connection, customer_id=mine.id, filters=PurchaseFilters(), after="2147483647", timezone=TIMEZONE
            )


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ({"store": "abc"}, "store"),
        ({"store": "0"}, "store"),
        ({"store": "-3"}, "store"),
        ({"store": "99999999999"}, "store"),
        ({"channel": "shop"}, "channel"),
        ({"channel": "WEB"}, "channel"),
        ({"year": "25"}, "year"),
        ({"year": "20x5"}, "year"),
        ({"year": "1800"}, "year"),
        ({"year": "９９９９"}, "year"),
    ],
)
def test_filters_are_validated(query, field) -> None:
    with pytest.raises(InvalidFilter) as raised:
        PurchaseFilters.parse(**query)
    assert isinstance(raised.value, ValueError) and raised.value.field == field


def test_empty_filters_mean_any() -> None:
    assert PurchaseFilters.parse(store="", channel="", year="") == PurchaseFilters()
    assert not PurchaseFilters().active
    parsed = PurchaseFilters.parse(store="7", channel="click_and_collect", year="2025")
    assert parsed == PurchaseFilters(store_id=7, channel="click_and_collect", year=2025) and parsed.active
    assert parsed.as_query() == {"store": "7", "channel": "click_and_collect", "year": "2025"}


def test_totals_per_store_and_per_year_from_the_summary_table(engine, shop, web) -> None:
    customer, other = make_customer(engine), make_customer(engine)
    other_shop = make_store(engine, city="Brest")
    add_purchase(engine, customer, shop, at=datetime(2025, 12, 31, 23, 30, tzinfo=UTC), lines=[("A", "Pelle", 1, 1000)])
    add_purchase(engine, customer, shop, at=datetime(2025, 5, 1, tzinfo=UTC), lines=[("A", "Pelle", 2, 1000)])
    add_purchase(engine, customer, web, at=datetime(2025, 6, 1, tzinfo=UTC), lines=[("B", "Bêche", 1, 4550)])
    add_purchase(engine, other, other_shop, at=datetime(2025, 6, 1, tzinfo=UTC))

    with engine.connect() as connection:
        totals = purchase_totals(connection, customer_id=customer.id)
        stores = stores_bought_in(connection, customer_id=customer.id)

    assert [(t.store.id, t.purchase_count, t.amount_cents) for t in totals.by_store] == [
        (shop.id, 2, 3000),
        (web.id, 1, 4550),  # the web shop comes after the shops
    ]
    assert [(t.year, t.purchase_count, t.amount_cents) for t in totals.by_year] == [(2026, 1, 1000), (2025, 2, 6550)]
    assert (totals.purchase_count, totals.amount_cents, totals.currency) == (3, 7550, "EUR")
    assert stores == totals.stores and [store.name for store in stores] == [shop.name, web.name]
    assert totals.years == (2026, 2025)
    assert totals.matching(PurchaseFilters(store_id=shop.id, year=2025)) == purchases.Matching(1, 2000)
    assert totals.matching(PurchaseFilters(year=2026)) == purchases.Matching(1, 1000)
    assert totals.matching(PurchaseFilters()) == purchases.Matching(3, 7550)
    assert totals.matching(PurchaseFilters(year=2020)) == purchases.Matching(0, 0)
    assert totals.matching(PurchaseFilters(channel="web")) is None  # the totals do not know channels


def test_a_customer_without_purchases(engine) -> None:
    customer = make_customer(engine)
    with engine.connect() as connection:
        listing = purchase_listing(connection, customer_id=customer.id, filters=PurchaseFilters(), timezone=TIMEZONE)
    assert listing.page.purchases == () and listing.page.next_after is None
    assert listing.totals.by_store == () and listing.totals.purchase_count == 0
    assert listing.matching == purchases.Matching(0, 0)


def test_the_listing_refuses_a_store_the_customer_never_bought_in(engine, shop) -> None:
    customer, other = make_customer(engine), make_customer(engine)
    elsewhere = make_store(engine, city="Brest")
    add_purchase(engine, customer, shop, at=NOON)
    add_purchase(engine, other, elsewhere, at=NOON)
    with engine.connect() as connection:
        listing = purchase_listing(
            connection, customer_id=customer.id, filters=PurchaseFilters(store_id=shop.id), timezone=TIMEZONE
        )
        assert len(listing.page.purchases) == 1 and listing.matching == purchases.Matching(1, 4288)
        with pytest.raises(InvalidFilter):
            purchase_listing(
                connection, customer_id=customer.id, filters=PurchaseFilters(store_id=elsewhere.id), timezone=TIMEZONE
            )


def test_receipt_with_its_lines(engine, shop) -> None:
    customer = make_customer(engine)
    bought = add_purchase(
        engine,
        customer,
        shop,
        at=NOON,
        receipt_number="LYO-0001",
        lines=[("SKU-9", "Sécateur", 1, 3290), ("SKU-3", "Gants", 3, 750)],
    )
    with engine.connect() as connection:
        found = receipt(connection, customer_id=customer.id, purchase_id=bought.id)
    assert found.purchase.receipt_number == "LYO-0001" and found.purchase.store.name == shop.name
    assert [(line.sku, line.label, line.quantity, line.unit_price_cents, line.total_cents) for line in found.lines] == [
        ("SKU-9", "Sécateur", 1, 3290, 3290),
        ("SKU-3", "Gants", 3, 750, 2250),
    ]
    assert found.purchase.total_cents == 5540 == sum(line.total_cents for line in found.lines)


def test_someone_elses_receipt_and_a_missing_one_get_the_same_answer(engine, shop) -> None:
    mine, theirs = make_customer(engine), make_customer(engine)
    add_purchase(engine, mine, shop, at=NOON)
    other = add_purchase(engine, theirs, shop, at=NOON)
    with engine.connect() as connection:
        for purchase_id in (other.id, other.id + 1000, 0, 2**31, 10**30):
            with pytest.raises(PurchaseNotFound):
                receipt(connection, customer_id=mine.id, purchase_id=purchase_id)


def test_the_list_query_walks_the_customer_time_index(engine) -> None:
    """Every shape of the list query seeks in ix_purchase_customer_time and never sorts: page 50 costs page 1."""
    if engine.dialect.name != "sqlite":
        pytest.skip("EXPLAIN QUERY PLAN is SQLite's")
    # Values as SQLite stores them (naive UTC text): the plan depends on the shape, not on the values.
    params = {
        "customer_id": 1,
        "limit": 26,
        "since": "2025-01-01 00:00:00.000000",
        "until": "2026-01-01 00:00:00.000000",
        "store_id": 1,
        "channel": "web",
        "before_at": "2025-06-01 12:00:00.000000",
        "before_id": 10,
    }
    names = ("since", "until", "store", "channel", "after")
    with engine.connect() as connection:
        for shape in itertools.product([False, True], repeat=len(names)):
            statement = purchases._page_statement(**dict(zip(names, shape, strict=True)))
            # As a run sends it: the LIMIT written in (db.limit_parameter).
            state = statement.compile(dialect=connection.dialect).construct_expanded_state(params)
            rows = connection.exec_driver_sql(
                f"EXPLAIN QUERY PLAN {state.statement}",
                tuple(state.parameters[name] for name in state.positiontup or ()),
            )
            plan = " / ".join(row[3] for row in rows)
            assert "USING INDEX ix_purchase_customer_time (customer_id=?" in plan, (shape, plan)
            assert "TEMP B-TREE" not in plan, (shape, plan)
