"""The writer of purchases, which keeps the per-customer totals in the same transaction.

Every code path that adds a purchase goes through here (retailer API, imports, tests), so the
totals the pages read can never drift from the rows they summarise.
"""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

from sqlmodel import Session

from portal.db import dialect_insert, sql_greatest, sql_least
from portal.models import Purchase, PurchaseLine, PurchaseTotal


def record_purchase(
    session: Session,
    *,
    customer_id: int | None,
    store_id: int,
    channel: str,
    purchased_at: datetime,
    receipt_number: str,
    lines: list[tuple[str, str, int, int]],
    timezone: str,
    currency: str = "EUR",
) -> Purchase:
    """Add a purchase with its lines (sku, label, quantity, unit price in cents) and update the totals, whose years
    are the portal's `timezone` years (settings.timezone)."""
    total = sum(quantity * unit_price for _sku, _label, quantity, unit_price in lines)
    purchase = Purchase(
        customer_id=customer_id,
        store_id=store_id,
        channel=channel,
        purchased_at=purchased_at,
        receipt_number=receipt_number,
        total_cents=total,
        currency=currency,
    )
    session.add(purchase)
    session.flush()
    for sku, label, quantity, unit_price in lines:
        session.add(
            PurchaseLine(purchase_id=purchase.id, sku=sku, label=label, quantity=quantity, unit_price_cents=unit_price)
        )
    if customer_id is not None:
        table = PurchaseTotal.__table__
        statement = dialect_insert(session)(table).values(
            customer_id=customer_id,
            store_id=store_id,
            year=purchased_at.astimezone(ZoneInfo(timezone)).year,
            purchase_count=1,
            amount_cents=total,
            first_purchase_at=purchased_at,
            last_purchase_at=purchased_at,
        )
        excluded = statement.excluded
        session.execute(
            statement.on_conflict_do_update(
                index_elements=["customer_id", "store_id", "year"],
                set_={
                    "purchase_count": table.c.purchase_count + 1,
                    "amount_cents": table.c.amount_cents + excluded.amount_cents,
                    "first_purchase_at": sql_least(session, table.c.first_purchase_at, excluded.first_purchase_at),
                    "last_purchase_at": sql_greatest(session, table.c.last_purchase_at, excluded.last_purchase_at),
                },
            )
        )
    return purchase
