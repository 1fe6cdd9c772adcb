"""The purchases kind: receipts from tills and the web shop, checked, written once, totals kept exact."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

import pytest
from sqlalchemy import Engine, func, select
from sqlmodel import Session

from portal.consent.register import load_register
from portal.db import transaction
from portal.erasure.tombstone import erased_email_hash
from portal.i18n import using_locale
from portal.imports.apply import ItemsRefused, apply_items
from portal.imports.kinds import ImportContext, RowError, RowInvalid, Tally
from portal.imports.purchases import PurchaseRow, Purchases
from portal.imports.values import Formats
from portal.models import Purchase, PurchaseLine, PurchaseTotal
from portal.settings import Settings
from tests.factories import make_customer, make_store

NOW = datetime(2026, 6, 15, 12, tzinfo=UTC)


def context(settings: Settings, **overrides: Any) -> ImportContext:
    values: dict[str, Any] = {
        "settings": settings,
        "register": load_register(settings.purposes_file),
        "now": NOW,
        "source": "import",
        "actor": "import:purchases.csv",
    }
    return ImportContext(**(values | overrides))


def row(receipt: str, sku: str = "A1", **fields: object) -> dict[str, object]:
    values: dict[str, object] = {
        "receipt_number": receipt,
        "store_code": "PAR01",
        "purchased_at": "2026-06-01T10:15:00+02:00",
        "customer_id": "C0001",
        "sku": sku,
        "label": "Arrosoir 10 L",
        "quantity": "2",
        "unit_price": "12.50",
    }
    return {name: value for name, value in (values | fields).items() if value is not None}


def parse_all(kind: Purchases, rows: Sequence[Mapping[str, object]]) -> list[PurchaseRow]:
    return [kind.parse(fields, line) for line, fields in enumerate(rows, start=2)]


def problems_of(engine: Engine, kind: Purchases, rows: Sequence[Mapping[str, object]]) -> dict[int, list[RowError]]:
    with Session(engine) as session:
        return kind.check(session, parse_all(kind, rows))


def run(engine: Engine, settings: Settings, rows: Sequence[Mapping[str, object]], **overrides: Any) -> Tally:
    """Parse, check and write `rows` as one batch, as the importer does; fails on any problem."""
    kind = Purchases(context(settings, **overrides))
    records = parse_all(kind, rows)
    tally = Tally()
    with transaction(engine) as session:
        assert kind.check(session, records) == {}
        kind.write(session, records, tally)
    return tally


def messages(problems: dict[int, list[RowError]]) -> dict[int, list[tuple[str | None, str]]]:
    return {position: [(e.field, e.message) for e in errors] for position, errors in problems.items()}


def snapshot(engine: Engine) -> tuple[list, list, list]:
    with Session(engine) as session:
        return (
            session.execute(select(Purchase).order_by(Purchase.id)).scalars().all(),
            session.execute(select(PurchaseLine).order_by(PurchaseLine.id)).scalars().all(),
            session.execute(select(PurchaseTotal).order_by(PurchaseTotal.customer_id)).scalars().all(),
        )


def assert_totals_match_a_recount(engine: Engine, timezone: str) -> None:
    """`purchase_total` equals a GROUP BY over `purchase` (years in the portal's time zone, counted in Python)."""
    from zoneinfo import ZoneInfo

    zone = ZoneInfo(timezone)
    expected: dict[tuple[int, int, int], list] = {}
    with Session(engine) as session:
        for customer_id, store_id, at, total in session.execute(
            select(Purchase.customer_id, Purchase.store_id, Purchase.purchased_at, Purchase.total_cents).where(
                Purchase.customer_id.is_not(None)
            )
        ):
            key = (customer_id, store_id, at.astimezone(zone).year)
            found = expected.setdefault(key, [0, 0, at, at])
            found[0] += 1
            found[1] += total
            found[2], found[3] = min(found[2], at), max(found[3], at)
        kept = {
            (t.customer_id, t.store_id, t.year): [
                t.purchase_count,
                t.amount_cents,
                t.first_purchase_at,
                t.last_purchase_at,
            ]
            for t in session.execute(select(PurchaseTotal)).scalars()
        }
        line_sums = dict(
            session.execute(
                select(
                    PurchaseLine.purchase_id, func.sum(PurchaseLine.quantity * PurchaseLine.unit_price_cents)
                ).group_by(PurchaseLine.purchase_id)
            ).all()
        )
        receipts = dict(session.execute(select(Purchase.id, Purchase.total_cents)).all())
    assert kept == expected
    assert receipts == line_sums


@pytest.fixture
def shop(engine: Engine):  # type: ignore[no-untyped-def]
    make_store(engine, code="PAR01", city="Paris")
    make_store(engine, code="WEB", kind="web", city="Paris")
    return engine


def test_lines_become_receipts_with_their_totals(shop: Engine, settings: Settings) -> None:
    camille = make_customer(shop, retailer_ref="C0001")
    louis = make_customer(shop, email="louis.martin@example.fr", loyalty_number="FID-0002")
    rows = [
        row("T-1", "A1"),
        row("T-1", "B2", label="Terreau 40 L", quantity="1", unit_price="8.99", line_total="8.99", total="33.99"),
        row("T-2", customer_id=None, email="Louis.Martin@Example.fr", store_code="WEB"),
        row("T-3", customer_id=None, loyalty_number="FID-0002", channel="click_and_collect"),
        row("T-4", customer_id=None),  # an anonymous till sale
    ]
    tally = run(shop, settings, rows)
    assert dict(tally.outcomes) == {"created": 3, "dropped": 1}
    assert dict(tally.reasons) == {"anonymous": 1}
    purchases, lines, _ = snapshot(shop)
    assert [(p.receipt_number, p.customer_id, p.channel, p.total_cents) for p in purchases] == [
        ("T-1", camille.id, "in_store", 3399),
        ("T-2", louis.id, "web", 2500),
        ("T-3", louis.id, "click_and_collect", 2500),
    ]
    assert purchases[0].purchased_at == datetime(2026, 6, 1, 8, 15, tzinfo=UTC)
    assert [(x.sku, x.label, x.quantity, x.unit_price_cents) for x in lines[:2]] == [
        ("A1", "Arrosoir 10 L", 2, 1250),
        ("B2", "Terreau 40 L", 1, 899),
    ]
    assert_totals_match_a_recount(shop, settings.timezone)


def test_reimporting_changes_nothing(shop: Engine, settings: Settings) -> None:
    make_customer(shop, retailer_ref="C0001")
    rows = [row("T-1", "A1"), row("T-1", "B2"), row("T-2")]
    run(shop, settings, rows)
    before = snapshot(shop)
    tally = run(shop, settings, rows)
    assert dict(tally.outcomes) == {"unchanged": 2}
    assert snapshot(shop) == before
    assert_totals_match_a_recount(shop, settings.timezone)


def test_a_receipt_repeated_identically_in_the_file_is_written_once(shop: Engine, settings: Settings) -> None:
    make_customer(shop, retailer_ref="C0001")
    tally = run(shop, settings, [row("T-1"), row("T-2"), row("T-1")])
    assert dict(tally.outcomes) == {"created": 2, "unchanged": 1}


def test_checking_the_same_rows_twice_finds_no_duplicate(shop: Engine, settings: Settings) -> None:
    make_customer(shop, retailer_ref="C0001")
    kind = Purchases(context(settings))
    records = parse_all(kind, [row("T-1"), row("T-1", "B2")])
    with Session(shop) as session:
        assert kind.check(session, records) == {}
        assert kind.check(session, records) == {}


def test_totals_add_up_with_purchases_already_there(shop: Engine, settings: Settings) -> None:
    make_customer(shop, retailer_ref="C0001")
    run(shop, settings, [row("T-1"), row("T-2", purchased_at="2025-12-31T23:30:00+01:00")])
    run(shop, settings, [row("T-3", purchased_at="2026-01-01T00:30:00+01:00"), row("T-4", store_code="WEB")])
    assert_totals_match_a_recount(shop, settings.timezone)
    _, _, totals = snapshot(shop)
    assert sorted((t.year, t.purchase_count) for t in totals) == [(2025, 1), (2026, 1), (2026, 2)]


def test_each_bad_row_is_reported_with_its_field_and_a_clear_message(shop: Engine, settings: Settings) -> None:
    make_customer(shop, retailer_ref="C0001")
    kind = Purchases(context(settings))
    cases = {
        "quantity": (row("T-1", quantity="-1"), "The quantity must be 1 or more (returns are not imported)."),
        "unit_price": (row("T-1", unit_price="douze"), "“douze” is not an amount like 12.50."),
        "line_total": (
            row("T-1", line_total="20.00"),
            "The line total €20.00 is not the quantity times the unit price (€25.00).",
        ),
        "purchased_at": (row("T-1", purchased_at="2026-06-15T14:10:00+02:00"), "This purchase is dated in the future."),
        "channel": (row("T-1", channel="phone"), "“phone” is not one of in_store, web, click_and_collect."),
        "sku": (row("T-1", sku=None), "This field is required."),
        "currency": (row("T-1", currency="euro"), "“EURO” is not a currency code like EUR."),
    }
    with using_locale("en"):
        for field, (fields, message) in cases.items():
            with pytest.raises(RowInvalid) as raised:
                kind.parse(fields, 7)
            assert [(e.field, e.message) for e in raised.value.errors] == [(field, message)]


def test_a_time_a_few_minutes_ahead_is_clock_skew_not_the_future(shop: Engine, settings: Settings) -> None:
    kind = Purchases(context(settings))
    assert kind.parse(row("T-1", purchased_at="2026-06-15T14:04:00+02:00"), 2).purchased_at > NOW


def test_problems_that_need_the_other_rows_or_the_database(shop: Engine, settings: Settings) -> None:
    make_customer(shop, retailer_ref="C0001")
    run(shop, settings, [row("T-9")])
    rows = [
        row("T-1", store_code="NICE1"),
        row("T-2", customer_id="C9999"),
        row("T-3", "A1", total="30.00"),
        row("T-3", "B2", total="30.00"),
        row("T-4", "A1"),
        row("T-4", "B2", store_code="WEB"),
        row("T-5"),
        row("T-6"),
        row("T-5", quantity="3"),
        row("T-9", quantity="3"),
    ]
    with using_locale("en"):
        found = messages(problems_of(shop, Purchases(context(settings)), rows))
    assert found == {
        0: [("store_code", "No store has the code “NICE1”: import the stores first (portal import stores).")],
        1: [("customer_id", "No customer matches: import the customers first (portal import customers).")],
        2: [("total", "The receipt total €30.00 is not the sum of its lines (€50.00).")],
        5: [("store_code", "This line of receipt T-4 differs from its first line (line 6) in this field.")],
        8: [("receipt_number", "Receipt T-5 appears earlier in the file with other content.")],
        9: [("receipt_number", "Receipt T-9 is already recorded with other content; it is not replaced.")],
    }


def test_messages_are_in_the_operators_language(shop: Engine, settings: Settings) -> None:
    kind = Purchases(context(settings))
    with using_locale("fr"), pytest.raises(RowInvalid) as raised:
        kind.parse(row("T-1", quantity="0"), 2)
    assert raised.value.errors[0].message == "La quantité doit être d'au moins 1 (les retours ne sont pas importés)."


def test_erased_and_restricted_customers_purchases_are_dropped(shop: Engine, settings: Settings) -> None:
    make_customer(
        shop,
        email=None,
        first_name=None,
        erased_at=NOW,
        erased_email_hash=erased_email_hash(settings, "zoe.petit@example.fr"),
    )
    make_customer(shop, retailer_ref="C0002", restricted_at=NOW)
    rows = [row("T-1", customer_id=None, email="Zoe.Petit@example.fr"), row("T-2", customer_id="C0002")]
    tally = run(shop, settings, rows)
    assert (dict(tally.outcomes), dict(tally.reasons)) == ({"dropped": 2}, {"erased": 1, "restricted": 1})
    assert snapshot(shop)[0] == []


def test_a_mapping_constant_and_formats_are_honoured(shop: Engine, settings: Settings) -> None:
    make_customer(shop, retailer_ref="C0001")
    formats = Formats(datetime=("%d/%m/%Y %H:%M",), decimal_comma=True, timezone="Europe/Paris")
    rows = [row("T-1", purchased_at="01/06/2026 10:15", unit_price="1 012,50")]
    run(shop, settings, rows, formats=formats, constants={"channel": "click_and_collect"})
    [purchase], [line], _ = snapshot(shop)
    assert (purchase.channel, purchase.purchased_at, line.unit_price_cents) == (
        "click_and_collect",
        datetime(2026, 6, 1, 8, 15, tzinfo=UTC),
        101250,
    )


def receipt(number: str, **fields: object) -> dict[str, object]:
    values: dict[str, object] = {
        "receipt_number": number,
        "store_code": "WEB",
        "purchased_at": datetime(2026, 6, 2, 9, tzinfo=UTC),
        "customer_id": "C0001",
        "total": 29.98,
        "lines": [
            {"sku": "A1", "label": "Gants", "quantity": 2, "unit_price": 9.99},
            {"sku": "B2", "label": "Sécateur", "quantity": 1, "unit_price": "10.00"},
        ],
    }
    return values | fields


def test_whole_receipts_through_apply_items(shop: Engine, settings: Settings) -> None:
    make_customer(shop, retailer_ref="C0001")
    items = [receipt("W-1"), receipt("W-2", customer_id=None)]
    with transaction(shop) as session:
        tally = apply_items(session, Purchases(context(settings, source="api")), items)
    assert (dict(tally.outcomes), dict(tally.reasons)) == ({"created": 1, "dropped": 1}, {"anonymous": 1})
    with transaction(shop) as session:
        again = apply_items(session, Purchases(context(settings, source="api")), [receipt("W-1")])
    assert dict(again.outcomes) == {"unchanged": 1}
    [purchase], lines, _ = snapshot(shop)
    assert (purchase.channel, purchase.total_cents, len(lines)) == ("web", 2998, 2)
    assert_totals_match_a_recount(shop, settings.timezone)


def test_a_batch_with_one_bad_receipt_is_refused_whole(shop: Engine, settings: Settings) -> None:
    make_customer(shop, retailer_ref="C0001")
    bad_line = {"sku": "C3", "label": "Bêche", "quantity": 0, "unit_price": 5}
    items = [receipt("W-1"), receipt("W-2", lines=[receipt("x")["lines"][0], bad_line]), receipt("W-3", total=1)]
    with using_locale("en"), transaction(shop) as session, pytest.raises(ItemsRefused) as raised:
        apply_items(session, Purchases(context(settings, source="api")), items)
    assert [(position, e.field) for position, e in raised.value.errors] == [(1, "lines.1.quantity")]
    with using_locale("en"), transaction(shop) as session, pytest.raises(ItemsRefused) as raised:
        apply_items(session, Purchases(context(settings, source="api")), [receipt("W-1"), receipt("W-3", total=1)])
    assert [(position, e.field, e.message) for position, e in raised.value.errors] == [
        (1, "total", "The receipt total €1.00 is not the sum of its lines (€29.98).")
    ]
    assert snapshot(shop)[0] == []
