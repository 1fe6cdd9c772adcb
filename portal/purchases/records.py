"""The writer of purchases, which keeps the per-customer totals in the same transaction.

Every code path that adds a purchase goes through here (retailer API, imports, tests), so the
totals the pages read can never drift from the rows they summarise.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from datetime import datetime
from zoneinfo import ZoneInfo

from sqlalchemy import bindparam, delete, update
from sqlmodel import Session

from portal.db import as_connection
from portal.models import Purchase, PurchaseLine, PurchaseTotal

Line = tuple[str, str, int, int]  # sku, label, quantity, unit price in cents
RECEIPTS_PER_QUERY = 5000  # well under SQLite's limit of bound values in one statement


@dataclasses.dataclass(frozen=True, slots=True)
class NewPurchase:
    """One purchase to add: its customer (None for a sale nobody is linked to, which no total counts) and lines."""

    customer_id: int | None
    store_id: int
    channel: str
    purchased_at: datetime
    receipt_number: str
    lines: Sequence[Line]
    currency: str = "EUR"

    @property
    def total_cents(self) -> int:
        return sum(quantity * unit_price for _sku, _label, quantity, unit_price in self.lines)


def record_purchase(
    session: Session,
    *,
    customer_id: int | None,
    store_id: int,
    channel: str,
    purchased_at: datetime,
    receipt_number: str,
    lines: list[Line],
    timezone: str,
    currency: str = "EUR",
) -> Purchase:
    """Add a purchase with its lines (sku, label, quantity, unit price in cents) and update the totals, whose years
    are the portal's `timezone` years (settings.timezone)."""
    new = NewPurchase(customer_id, store_id, channel, purchased_at, receipt_number, lines, currency)
    [purchase_id] = record_purchases(session, [new], timezone=timezone)
    purchase = session.get(Purchase, purchase_id)
    assert purchase is not None  # just inserted in this transaction
    return purchase


def record_purchases(session: Session, purchases: Sequence[NewPurchase], *, timezone: str) -> list[int]:
    """Add many purchases in four statements whatever their number; their ids, in the order given.

    One multi-row insert of the purchases, one query for their ids, one insert of all their lines, one upsert of the
    totals summed per (customer, store, year in `timezone`) — what imports and the API need to stay fast.
    """
    if not purchases:
        return []
    connection = as_connection(session)
    # The driver's own executemany, without SQLAlchemy's per-row parameter handling: it halves the time a million
    # rows take (bench/import.py). The column's own type still converts the moment, so it is stored as everywhere.
    mark = "?" if connection.dialect.paramstyle == "qmark" else "%s"
    moment_type = Purchase.__table__.c.purchased_at.type
    stored_moment = moment_type.dialect_impl(connection.dialect).bind_processor(connection.dialect) or (lambda v: v)
    amounts = [p.total_cents for p in purchases]
    connection.exec_driver_sql(
        f"INSERT INTO {Purchase.__tablename__}"
        " (customer_id, store_id, channel, purchased_at, receipt_number, total_cents, currency)"
        f" VALUES ({', '.join([mark] * 7)})",
        [
            (p.customer_id, p.store_id, p.channel, stored_moment(p.purchased_at), p.receipt_number, amount, p.currency)
            for p, amount in zip(purchases, amounts, strict=True)
        ],
    )
    # Read back by receipt number (unique), not with RETURNING: SQLite's driver then inserts one row at a time.
    recorded = existing_receipts(session, [p.receipt_number for p in purchases])
    ids = [recorded[p.receipt_number] for p in purchases]
    lines = [(purchase_id, *line) for purchase_id, p in zip(ids, purchases, strict=True) for line in p.lines]
    if lines:
        connection.exec_driver_sql(
            f"INSERT INTO {PurchaseLine.__tablename__} (purchase_id, sku, label, quantity, unit_price_cents)"
            f" VALUES ({mark}, {mark}, {mark}, {mark}, {mark})",
            lines,
        )
    add_to_totals(session, totals_of(purchases, timezone=timezone, amounts=amounts))
    return ids


@dataclasses.dataclass
class Totals:
    """What a batch of purchases adds to one `purchase_total` row."""

    purchase_count: int
    amount_cents: int
    first_purchase_at: datetime
    last_purchase_at: datetime


def totals_of(
    purchases: Sequence[NewPurchase], *, timezone: str, amounts: Sequence[int] | None = None
) -> dict[tuple[int, int, int], Totals]:
    """The purchases summed per (customer, store, year in `timezone`); sales linked to nobody count nowhere.
    `amounts` are the purchases' totals when the caller has them already (a sum over every line of each)."""
    zone = ZoneInfo(timezone)
    totals: dict[tuple[int, int, int], Totals] = {}
    for p, amount in zip(purchases, amounts or [p.total_cents for p in purchases], strict=True):
        if p.customer_id is None:
            continue
        key = (p.customer_id, p.store_id, p.purchased_at.astimezone(zone).year)
        total = totals.get(key)
        if total is None:
            totals[key] = Totals(1, amount, p.purchased_at, p.purchased_at)
            continue
        total.purchase_count += 1
        total.amount_cents += amount
        total.first_purchase_at = min(total.first_purchase_at, p.purchased_at)
        total.last_purchase_at = max(total.last_purchase_at, p.purchased_at)
    return totals


def add_to_totals(session: Session, totals: dict[tuple[int, int, int], Totals]) -> None:
    """Upsert the sums: counts and amounts add up to what is there, the first and last moments widen."""
    if not totals:
        return
    connection = as_connection(session)
    # The driver's own executemany, as for the purchases above: a quarter of a million rows a million import lines.
    sqlite = connection.dialect.name == "sqlite"
    mark = "?" if connection.dialect.paramstyle == "qmark" else "%s"
    least, greatest = ("min", "max") if sqlite else ("least", "greatest")
    table = PurchaseTotal.__tablename__
    moment_type = PurchaseTotal.__table__.c.first_purchase_at.type
    stored_moment = moment_type.dialect_impl(connection.dialect).bind_processor(connection.dialect) or (lambda v: v)
    connection.exec_driver_sql(
        f"INSERT INTO {table}"
        " (customer_id, store_id, year, purchase_count, amount_cents, first_purchase_at, last_purchase_at)"
        f" VALUES ({', '.join([mark] * 7)})"
        " ON CONFLICT (customer_id, store_id, year) DO UPDATE SET"
        f" purchase_count = {table}.purchase_count + excluded.purchase_count,"
        f" amount_cents = {table}.amount_cents + excluded.amount_cents,"
        f" first_purchase_at = {least}({table}.first_purchase_at, excluded.first_purchase_at),"
        f" last_purchase_at = {greatest}({table}.last_purchase_at, excluded.last_purchase_at)",
        # Sorted, so two concurrent writers lock the rows in the same order (no deadlock on PostgreSQL).
        [
            (
                customer_id,
                store_id,
                year,
                total.purchase_count,
                total.amount_cents,
                stored_moment(total.first_purchase_at),
                stored_moment(total.last_purchase_at),
            )
            for (customer_id, store_id, year), total in sorted(totals.items())
        ],
    )


def existing_receipts(session: Session, receipt_numbers: Sequence[str]) -> dict[str, int]:
    """The purchases already recorded under these receipt numbers: receipt number → purchase id."""
    wanted = sorted(set(receipt_numbers))
    found: dict[str, int] = {}
    connection = as_connection(session)
    # Through the driver: an import asks this for every receipt twice or three times (check, write, ids).
    mark = "?" if connection.dialect.paramstyle == "qmark" else "%s"
    for start in range(0, len(wanted), RECEIPTS_PER_QUERY):
        chunk = wanted[start : start + RECEIPTS_PER_QUERY]
        rows = connection.exec_driver_sql(
            f"SELECT id, receipt_number FROM {Purchase.__tablename__}"
            f" WHERE receipt_number IN ({', '.join([mark] * len(chunk))})",
            tuple(chunk),
        )
        found.update((number, purchase_id) for purchase_id, number in rows)
    return found


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
