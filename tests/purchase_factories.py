"""Factories for purchases at chosen moments, channels and receipt numbers (tests/factories.py spaces them a day
apart with one channel per store)."""

from __future__ import annotations

import itertools
from datetime import datetime

from sqlalchemy import Engine

from portal.db import transaction
from portal.models import Customer, Purchase, Store
from portal.purchases.records import record_purchase
from tests.conftest import TIMEZONE

_sequence = itertools.count(1)

DEFAULT_LINES: list[tuple[str, str, int, int]] = [
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
    lines: list[tuple[str, str, int, int]] | None = None,
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
