"""Factories for purchases: one at a chosen moment, channel and receipt number through the production writer, or
many at once in a few multi-row INSERTs with the totals that writer would have kept."""

from __future__ import annotations

import dataclasses
import itertools
from collections.abc import Sequence
from datetime import datetime
from zoneinfo import ZoneInfo

from sqlalchemy import Connection, Engine, insert

from portal.db import dialect_insert, sql_greatest, sql_least, transaction
from portal.models import Customer, Purchase, PurchaseLine, PurchaseTotal, Store
from portal.purchases.records import record_purchase
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


@dataclasses.dataclass
class _Total:
    purchase_count: int
    amount_cents: int
    first_purchase_at: datetime
    last_purchase_at: datetime


def insert_purchases(engine: Engine, purchases: Sequence[NewPurchase]) -> list[int]:
    """Many purchases in one transaction and a few multi-row INSERTs; their ids, in the order given.

    Going through `record_purchase` costs a flush and an upsert per purchase, which made the 1,241-purchase
    customer take seconds to build. The totals are summed here per (customer, store, Paris year) and upserted the
    way `record_purchase` upserts them, so they also add up with rows already there;
    tests/unit/purchases/test_records.py checks that both paths leave identical totals.
    """
    if not purchases:
        return []
    purchase_table = Purchase.__table__  # type: ignore[attr-defined]
    with transaction(engine) as session:
        connection = session.connection()
        ids = list(
            connection.execute(
                insert(purchase_table).returning(purchase_table.c.id, sort_by_parameter_order=True),
                [
                    {
                        "customer_id": p.customer_id,
                        "store_id": p.store_id,
                        "channel": p.channel,
                        "purchased_at": p.purchased_at,
                        "receipt_number": p.receipt_number,
                        "total_cents": p.total_cents,
                        "currency": p.currency,
                    }
                    for p in purchases
                ],
            ).scalars()
        )
        connection.execute(
            insert(PurchaseLine.__table__),  # type: ignore[attr-defined]
            [
                {
                    "purchase_id": purchase_id,
                    "sku": sku,
                    "label": label,
                    "quantity": quantity,
                    "unit_price_cents": unit_price,
                }
                for purchase_id, p in zip(ids, purchases, strict=True)
                for sku, label, quantity, unit_price in p.lines
            ],
        )
        _add_to_totals(connection, _totals_of(purchases))
    return ids


def _totals_of(purchases: Sequence[NewPurchase]) -> dict[tuple[int, int, int], _Total]:
    """The purchases summed per (customer, store, year in Paris), as `record_purchase` counts them one by one."""
    totals: dict[tuple[int, int, int], _Total] = {}
    for p in purchases:
        if p.customer_id is None:
            continue
        key = (p.customer_id, p.store_id, p.purchased_at.astimezone(PARIS).year)
        total = totals.get(key)
        if total is None:
            totals[key] = _Total(1, p.total_cents, p.purchased_at, p.purchased_at)
            continue
        total.purchase_count += 1
        total.amount_cents += p.total_cents
        total.first_purchase_at = min(total.first_purchase_at, p.purchased_at)
        total.last_purchase_at = max(total.last_purchase_at, p.purchased_at)
    return totals


def _add_to_totals(connection: Connection, totals: dict[tuple[int, int, int], _Total]) -> None:
    """Upsert the sums with the same conflict rule as `record_purchase`: counts add up, the span widens."""
    if not totals:
        return
    table = PurchaseTotal.__table__  # type: ignore[attr-defined]
    statement = dialect_insert(connection)(table)
    excluded = statement.excluded
    connection.execute(
        statement.on_conflict_do_update(
            index_elements=["customer_id", "store_id", "year"],
            set_={
                "purchase_count": table.c.purchase_count + excluded.purchase_count,
                "amount_cents": table.c.amount_cents + excluded.amount_cents,
                "first_purchase_at": sql_least(connection, table.c.first_purchase_at, excluded.first_purchase_at),
                "last_purchase_at": sql_greatest(connection, table.c.last_purchase_at, excluded.last_purchase_at),
            },
        ),
        [
            {"customer_id": customer_id, "store_id": store_id, "year": year, **dataclasses.asdict(total)}
            for (customer_id, store_id, year), total in sorted(totals.items())
        ],
    )
