"""Writers of page views, which keep the per-day and per-customer counts in the same transaction.

Every code path that adds a page view goes through here (retailer API, imports, tests), so the counts the pages
read can never drift from the rows they summarise. Consent is checked by the caller.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import Connection, bindparam, delete, insert, update
from sqlmodel import Session

from portal.db import as_connection, dialect_insert, sql_greatest
from portal.models import PageView, PageViewDay, PageViewTotal


def record_page_view(
    session: Session, *, customer_id: int, viewed_at: datetime, url: str, title: str | None, timezone: str
) -> PageView:
    """Add a page view and count it on its day in the portal's `timezone`. Consent is checked by the caller."""
    view = PageView(customer_id=customer_id, viewed_at=viewed_at, url=url, title=title)
    session.add(view)
    table = PageViewDay.__table__
    statement = dialect_insert(session)(table).values(
        customer_id=customer_id, day=viewed_at.astimezone(ZoneInfo(timezone)).date(), view_count=1
    )
    session.execute(
        statement.on_conflict_do_update(
            index_elements=["customer_id", "day"], set_={"view_count": table.c.view_count + 1}
        )
    )
    totals = PageViewTotal.__table__
    statement = dialect_insert(session)(totals).values(customer_id=customer_id, view_count=1, last_viewed_at=viewed_at)
    session.execute(
        statement.on_conflict_do_update(
            index_elements=["customer_id"],
            set_={
                "view_count": totals.c.view_count + 1,
                "last_viewed_at": sql_greatest(session, totals.c.last_viewed_at, statement.excluded.last_viewed_at),
            },
        )
    )
    return view


# The batch writer's upserts, built once per engine kind (the upsert is the dialect's): an ingestion call builds no
# statement (bench/README.md, browsing ingestion's profile).
_BATCH_UPSERTS: dict[str, tuple[Any, Any]] = {}


def _batch_upserts(db: Session | Connection) -> tuple[Any, Any]:
    dialect = as_connection(db).dialect.name
    upserts = _BATCH_UPSERTS.get(dialect)
    if upserts is None:
        days = PageViewDay.__table__
        day = dialect_insert(db)(days)
        totals = PageViewTotal.__table__
        total = dialect_insert(db)(totals)
        upserts = _BATCH_UPSERTS[dialect] = (
            day.on_conflict_do_update(
                index_elements=["customer_id", "day"], set_={"view_count": days.c.view_count + day.excluded.view_count}
            ),
            total.on_conflict_do_update(
                index_elements=["customer_id"],
                set_={
                    "view_count": totals.c.view_count + total.excluded.view_count,
                    "last_viewed_at": sql_greatest(db, totals.c.last_viewed_at, total.excluded.last_viewed_at),
                },
            ),
        )
    return upserts


_INSERT_VIEWS = insert(PageView.__table__)


def record_page_views(
    db: Session | Connection, views: Sequence[tuple[int, datetime, str, str | None]], *, timezone: str
) -> None:
    """Add many page views (customer id, viewed at, url, title) in a few statements, whatever their number.

    The retailer's site sends batches: one multi-row insert, then one upsert per (customer, day) and per customer,
    instead of three statements per view. Consent is checked by the caller.
    """
    if not views:
        return
    # On the connection: the ORM session's execute path cost more than these statements (issue 17).
    connection = as_connection(db)
    connection.execute(
        _INSERT_VIEWS, [{"customer_id": c, "viewed_at": at, "url": url, "title": title} for c, at, url, title in views]
    )
    zone = ZoneInfo(timezone)
    days = Counter((c, at.astimezone(zone).date()) for c, at, _, _ in views)
    counts: Counter[int] = Counter(c for c, _, _, _ in views)
    latest: dict[int, datetime] = {}
    for c, at, _, _ in views:
        latest[c] = max(latest.get(c, at), at)
    day_upsert, total_upsert = _batch_upserts(db)
    connection.execute(
        day_upsert, [{"customer_id": c, "day": day, "view_count": n} for (c, day), n in sorted(days.items())]
    )
    connection.execute(
        total_upsert,
        [{"customer_id": c, "view_count": counts[c], "last_viewed_at": latest[c]} for c in sorted(counts)],
    )


def forget_page_views(session: Session, views: Sequence[tuple[int, int, datetime]], *, timezone: str) -> int:
    """Delete page views (id, customer id, viewed at) and take them off their day's and customer's counts.

    Retention deletes the oldest views while newer ones stay, so the counts are decremented, not dropped; a day or
    customer left with none loses its row. One executemany per table, whatever the number of days and customers.
    Returns how many views were deleted.
    """
    if not views:
        return 0
    deleted = session.execute(delete(PageView).where(PageView.id.in_([view_id for view_id, _, _ in views]))).rowcount
    zone = ZoneInfo(timezone)
    days = Counter((c, at.astimezone(zone).date()) for _, c, at in views)
    day_table = PageViewDay.__table__
    same_day = (day_table.c.customer_id == bindparam("c"), day_table.c.day == bindparam("d"))
    day_rows = [{"c": c, "d": day, "n": n} for (c, day), n in sorted(days.items())]
    session.execute(update(day_table).where(*same_day).values(view_count=day_table.c.view_count - bindparam("n")),
                    day_rows)  # fmt: skip
    session.execute(delete(day_table).where(*same_day, day_table.c.view_count <= 0), day_rows)
    totals = PageViewTotal.__table__
    customer_rows = [{"c": c, "n": n} for c, n in sorted(Counter(c for _, c, _ in views).items())]
    same_customer = totals.c.customer_id == bindparam("c")
    session.execute(update(totals).where(same_customer).values(view_count=totals.c.view_count - bindparam("n")),
                    customer_rows)  # fmt: skip
    session.execute(delete(totals).where(same_customer, totals.c.view_count <= 0), customer_rows)
    return deleted or 0
