"""Factories: build customers, stores, purchases and page views with sensible defaults."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta

from sqlalchemy import Engine

from portal.browsing.records import record_page_views
from portal.db import transaction
from portal.models import ConsentEvent, Customer, Store, email_key
from tests.conftest import TIMEZONE
from tests.purchase_factories import NewPurchase, insert_purchases

_sequence = itertools.count(1)


def make_customer(engine: Engine, **fields: object) -> Customer:
    n = next(_sequence)
    email = str(fields.pop("email", f"customer{n}@example.com"))
    values: dict[str, object] = {
        "email": email,
        "email_key": email_key(email),
        "first_name": "Camille",
        "last_name": "Durand",
        "phone": "+33612345678",
        "postal_code": "69002",
        "city": "Lyon",
        "address_line1": "12 rue des Tilleuls",
        "country": "FR",
        "preferred_language": "fr",
        "created_at": datetime(2021, 3, 4, 10, tzinfo=UTC),
        "updated_at": datetime(2021, 3, 4, 10, tzinfo=UTC),
    }
    values.update(fields)
    with transaction(engine) as session:
        customer = Customer(**values)  # type: ignore[arg-type]
        session.add(customer)
        session.flush()
        session.refresh(customer)
        return customer


def make_store(engine: Engine, *, code: str | None = None, kind: str = "store", city: str = "Lyon") -> Store:
    n = next(_sequence)
    with transaction(engine) as session:
        store = Store(code=code or f"S{n:03d}", name=f"Maison Aubépine {city} {n}", city=city, kind=kind)
        session.add(store)
        session.flush()
        session.refresh(store)
        return store


def add_purchases(
    engine: Engine, customer: Customer, store: Store, count: int, *, start: datetime | None = None
) -> list[int]:
    """`count` purchases a day apart, bulk-inserted with their totals (tests/purchase_factories.py); their ids."""
    start = start or datetime(2025, 1, 1, 9, tzinfo=UTC)
    return insert_purchases(
        engine,
        [
            NewPurchase(
                customer_id=customer.id,
                store_id=store.id,  # type: ignore[arg-type]
                channel="web" if store.kind == "web" else "in_store",
                purchased_at=start + timedelta(days=i),
                receipt_number=f"R{next(_sequence):09d}",
            )
            for i in range(count)
        ],
    )


def add_page_views(engine: Engine, customer: Customer, count: int, *, start: datetime | None = None) -> None:
    """Consent to browsing analytics, then `count` page views an hour apart.

    The views go through `record_page_views`, the retailer API's batch writer (a few statements whatever the count),
    rather than `record_page_view` three statements at a time: the counts it keeps are the same (tests/unit/
    test_records.py).
    """
    start = start or datetime(2026, 1, 1, 9, tzinfo=UTC)
    with transaction(engine) as session:
        session.add(
            ConsentEvent(
                customer_id=customer.id,  # type: ignore[arg-type]
                purpose="browsing_analytics",
                granted=True,
                occurred_at=start - timedelta(days=1),
                channel="web",
                actor="customer",
                policy_version="2026-01",
            )
        )
        record_page_views(
            session,
            [
                (customer.id, start + timedelta(hours=i), f"https://www.maison-aubepine.example/p/{i}", "Produit")  # type: ignore[misc]
                for i in range(count)
            ],
            timezone=TIMEZONE,
        )
