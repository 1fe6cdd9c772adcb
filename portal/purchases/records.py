"""The writer of purchases, which keeps the per-customer totals in the same transaction.

Every code path that adds a purchase goes through here (retailer API, imports, tests), so the
totals the pages read can never drift from the rows they summarise.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from zoneinfo import ZoneInfo

from sqlalchemy import bindparam, delete, update
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


def forget_purchases(
    session: Session, purchases: Sequence[tuple[int, int | None, int, datetime, int]], *, timezone: str
) -> int:
    """Delete purchases (id, customer id, store id, purchased at, total in cents) with their lines, and take them off
    their customer's totals (a total left with no purchase loses its row). Returns how many were deleted."""
    if not purchases:
        return 0
    ids = [purchase_id for purchase_id, *_ in purchases]
    session.execute(delete(PurchaseLine).where(PurchaseLine.purchase_id.in_(ids)))
    deleted = session.execute(delete(Purchase).where(Purchase.id.in_(ids))).rowcount
    zone = ZoneInfo(timezone)
    totals: dict[tuple[int, int, int], list[int]] = {}
    for _, customer_id, store_id, purchased_at, total in purchases:
        if customer_id is not None:
            key = (customer_id, store_id, purchased_at.astimezone(zone).year)
            count, amount = totals.get(key, [0, 0])
            totals[key] = [count + 1, amount + total]
    table = PurchaseTotal.__table__
    same_total = (
        table.c.customer_id == bindparam("c"),
        table.c.store_id == bindparam("s"),
        table.c.year == bindparam("y"),
    )
    rows = [{"c": c, "s": s, "y": y, "n": n, "a": a} for (c, s, y), (n, a) in sorted(totals.items())]
    if rows:
        session.execute(
            update(table)
            .where(*same_total)
            .values(
                purchase_count=table.c.purchase_count - bindparam("n"),
                amount_cents=table.c.amount_cents - bindparam("a"),
            ),
            rows,
        )
        session.execute(delete(table).where(*same_total, table.c.purchase_count <= 0), rows)
    return deleted or 0
