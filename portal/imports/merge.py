"""Merging two customer records that turn out to be one person: everything follows the survivor, nothing is lost.

Every table that names a customer is listed here, either moved (its rows now name the survivor) or summed (the
per-customer totals, added into the survivor's so they stay exact); tests/unit/imports/test_merge.py fails when a
table with a customer foreign key is in neither list. The consent ledger moves whole with its proof: the current
state of a purpose is still its latest event, now across both records.
"""

from __future__ import annotations

import dataclasses
from datetime import datetime

from sqlalchemy import Table, delete, select, update
from sqlmodel import Session

from portal.audit import record_audit
from portal.db import dialect_insert, sql_greatest, sql_least
from portal.models import (
    ConsentEvent,
    Customer,
    EmailChange,
    IncidentRecipient,
    LoginChallenge,
    PageView,
    PageViewDay,
    PageViewTotal,
    PrivacyRequest,
    ProfileChange,
    Purchase,
    PurchaseTotal,
    WebsiteVisitor,
)
from portal.models import Session as BrowserSession
from portal.outbox.enqueue import queue_webhook

MOVED: tuple[type, ...] = (
    Purchase,
    ConsentEvent,
    PageView,
    PrivacyRequest,
    ProfileChange,
    EmailChange,
    BrowserSession,
    LoginChallenge,
    WebsiteVisitor,  # the website visitor ids the web shop tied to either record
)
# Combined rather than moved: per-customer summaries, and breach notices (one per incident and customer).
SUMMED: tuple[type, ...] = (PurchaseTotal, PageViewDay, PageViewTotal, IncidentRecipient)
# What the survivor takes from the other record when it holds nothing for it.
FILLED = (*Customer.stored_profile_columns(), "country", "retailer_ref")


@dataclasses.dataclass(frozen=True)
class MergeReport:
    survivor_id: int
    absorbed_id: int
    moved: dict[str, int]
    filled: tuple[str, ...]


def _table(model: type) -> Table:
    return model.__table__


def _sum_purchase_totals(session: Session, survivor: int, absorbed: int) -> int:
    table = _table(PurchaseTotal)
    rows = session.execute(select(table).where(table.c.customer_id == absorbed)).mappings().all()
    if rows:
        statement = dialect_insert(session)(table)
        excluded = statement.excluded
        session.execute(
            statement.on_conflict_do_update(
                index_elements=["customer_id", "store_id", "year"],
                set_={
                    "purchase_count": table.c.purchase_count + excluded.purchase_count,
                    "amount_cents": table.c.amount_cents + excluded.amount_cents,
                    "first_purchase_at": sql_least(session, table.c.first_purchase_at, excluded.first_purchase_at),
                    "last_purchase_at": sql_greatest(session, table.c.last_purchase_at, excluded.last_purchase_at),
                },
            ),
            [{**row, "customer_id": survivor} for row in rows],
        )
        session.execute(delete(table).where(table.c.customer_id == absorbed))
    return len(rows)


def _sum_page_view_days(session: Session, survivor: int, absorbed: int) -> int:
    table = _table(PageViewDay)
    rows = session.execute(select(table).where(table.c.customer_id == absorbed)).mappings().all()
    if rows:
        statement = dialect_insert(session)(table)
        session.execute(
            statement.on_conflict_do_update(
                index_elements=["customer_id", "day"],
                set_={"view_count": table.c.view_count + statement.excluded.view_count},
            ),
            [{**row, "customer_id": survivor} for row in rows],
        )
        session.execute(delete(table).where(table.c.customer_id == absorbed))
    return len(rows)


def _sum_page_view_total(session: Session, survivor: int, absorbed: int) -> int:
    table = _table(PageViewTotal)
    rows = session.execute(select(table).where(table.c.customer_id == absorbed)).mappings().all()
    if rows:
        statement = dialect_insert(session)(table)
        session.execute(
            statement.on_conflict_do_update(
                index_elements=["customer_id"],
                set_={
                    "view_count": table.c.view_count + statement.excluded.view_count,
                    "last_viewed_at": sql_greatest(session, table.c.last_viewed_at, statement.excluded.last_viewed_at),
                },
            ),
            [{**row, "customer_id": survivor} for row in rows],
        )
        session.execute(delete(table).where(table.c.customer_id == absorbed))
    return len(rows)


def _combine_incident_recipients(session: Session, survivor: int, absorbed: int) -> int:
    """The survivor is concerned by every incident either record was; told if either was (never told twice)."""
    table = _table(IncidentRecipient)
    theirs = {
        row.incident_id: row for row in session.execute(select(table).where(table.c.customer_id == absorbed)).mappings()
    }
    ours = {
        row.incident_id: row for row in session.execute(select(table).where(table.c.customer_id == survivor)).mappings()
    }
    for incident_id, row in theirs.items():
        mine = ours.get(incident_id)
        if mine is None:
            session.execute(update(table).where(table.c.id == row.id).values(customer_id=survivor))
            continue
        if mine.notified_at is None and row.notified_at is not None:
            session.execute(update(table).where(table.c.id == mine.id).values(notified_at=row.notified_at))
        session.execute(delete(table).where(table.c.id == row.id))
    return len(theirs)


_SUMMERS = {
    "incident_recipient": _combine_incident_recipients,
    "purchase_total": _sum_purchase_totals,
    "page_view_day": _sum_page_view_days,
    "page_view_total": _sum_page_view_total,
}


def merge_customers(
    session: Session, survivor: Customer, absorbed: Customer, *, actor: str, source: str, now: datetime
) -> MergeReport:
    """Move everything of `absorbed` to `survivor`, fill the survivor's empty fields from it, delete it; audited,
    and told to the retailer's systems (`customer.merged`). In the caller's transaction."""
    session.flush()
    survivor_id: int = survivor.id  # type: ignore[assignment]  # both rows are flushed
    absorbed_id: int = absorbed.id  # type: ignore[assignment]
    moved: dict[str, int] = {}
    for model in MOVED:
        table = _table(model)
        result = session.execute(
            update(table).where(table.c.customer_id == absorbed_id).values(customer_id=survivor_id)
        )
        moved[table.name] = result.rowcount or 0
    for model in SUMMED:
        moved[_table(model).name] = _SUMMERS[_table(model).name](session, survivor_id, absorbed_id)
    kept = {column: getattr(absorbed, column) for column in (*FILLED, "email_key")}
    absorbed_ref = absorbed.retailer_ref
    # The absorbed row goes first: its address, id and card are unique keys the survivor may take over.
    session.expunge(absorbed)
    session.execute(delete(_table(Customer)).where(_table(Customer).c.id == absorbed_id))
    filled = tuple(column for column in FILLED if getattr(survivor, column) in (None, "") and kept[column])
    for column in filled:
        setattr(survivor, column, kept[column])
    if "email" in filled:
        survivor.email_key = kept["email_key"]
    survivor.created_at = min(survivor.created_at, absorbed.created_at)
    survivor.updated_at = now
    session.flush()
    record_audit(
        session,
        actor=actor,
        action="customer.merged",
        target=f"customer:{survivor_id}",
        detail={"merged": f"customer:{absorbed_id}", "moved": moved, "filled": sorted(filled), "channel": source},
        now=now,
    )
    queue_webhook(
        session,
        topic="customer.merged",
        payload={
            "customer_id": survivor_id,
            "retailer_customer_id": survivor.retailer_ref,
            "merged_customer_id": absorbed_id,
            "merged_retailer_customer_id": absorbed_ref,
            "occurred_at": now.isoformat(),
        },
        now=now,
    )
    return MergeReport(survivor_id=survivor_id, absorbed_id=absorbed_id, moved=moved, filled=filled)
