"""Factories for purchases: one at a chosen moment, channel and receipt number through the production writer, or
many at once through the batch writer."""

from __future__ import annotations

import dataclasses
import itertools
from collections.abc import Sequence
from datetime import datetime
from zoneinfo import ZoneInfo

from sqlalchemy import Engine

from portal.db import transaction
from portal.models import Customer, Purchase, Store
from portal.purchases import records
from portal.purchases.records import record_purchase, record_purchases
from tests.conftest import TIMEZONE

PARIS = ZoneInfo(TIMEZONE)

_sequence = itertools.count(1)

Line = tuple[str, str, int, int]  # sku, label, quantity, unit price in cents

DEFAULT_LINES: list[Line] = [
    ("SKU-1", "Arrosoir galvanisé 10 L", 1, 2490),
    ("SKU-2", "Terreau 40 L", 2, 899),
]


def add_purchase(
    engine: Engine,
    customer: Customer,
    store: Store,
    *,
    at: datetime,
    channel: str | None = None,
    receipt_number: str | None = None,
    lines: list[Line] | None = None,
) -> Purchase:
    """One purchase, through the same writer as production so the totals stay in step."""
    with transaction(engine) as session:
        return record_purchase(
            session,
            customer_id=customer.id,
            store_id=store.id,  # type: ignore[arg-type]
            channel=channel or ("web" if store.kind == "web" else "in_store"),
            purchased_at=at,
            receipt_number=receipt_number or f"P{next(_sequence):08d}",
            lines=DEFAULT_LINES if lines is None else lines,
            timezone=TIMEZONE,
        )


@dataclasses.dataclass(frozen=True)
class NewPurchase:
    """What `record_purchase` is given, for `insert_purchases`."""

    customer_id: int | None  # None: a purchase nobody is linked to (after an erasure), which no total counts
    store_id: int
    channel: str
    purchased_at: datetime
    receipt_number: str
    lines: Sequence[Line] = tuple(DEFAULT_LINES)
    currency: str = "EUR"

    @property
    def total_cents(self) -> int:
        return sum(quantity * unit_price for _sku, _label, quantity, unit_price in self.lines)


def insert_purchases(engine: Engine, purchases: Sequence[NewPurchase]) -> list[int]:
    """Many purchases in one transaction through the production batch writer; their ids, in the order given.

    Going through `record_purchase` costs a flush and an upsert per purchase, which made the 1,241-purchase
    customer take seconds to build; `record_purchases` writes them in three statements with the same totals
    (tests/unit/purchases/test_records.py checks that both paths leave identical totals).
    """
    with transaction(engine) as session:
        return record_purchases(
            session,
            [
                records.NewPurchase(
                    p.customer_id, p.store_id, p.channel, p.purchased_at, p.receipt_number, p.lines, p.currency
                )
                for p in purchases
            ],
            timezone=TIMEZONE,
        )
