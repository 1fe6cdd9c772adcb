"""The pages a customer viewed on the web shop, a few days at a time, and where their consent stands.

The heavy demo customer holds 100,000 page views over a year, so a page never loads them all: the per-day counts
(`page_view_day`) choose which days to show, newest first, and only those days' views are read, by a UTC range on
the `(customer_id, viewed_at, id)` index. The next page starts before the oldest day shown (keyset pagination: no
OFFSET that grows with the history).
"""

from __future__ import annotations

import dataclasses
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import Connection, bindparam, select
from sqlmodel import Session

# The consent ledger owns the state of a consent; the names stay importable from here for the history code.
from portal.browsing.calendar import BrowsingCalendar, browsing_calendar
from portal.consent.ledger import BROWSING_PURPOSE, ConsentState
from portal.consent.ledger import current_consents as consent_states
from portal.db import as_connection
from portal.models import PageView, PageViewDay, PageViewTotal

MAX_DAYS_PER_PAGE = 14
# Days are added to a page until it holds this many views; a busy day always comes whole, even alone. 270 views a
# day (the heavy customer) make two days a page, an occasional visitor gets a fortnight.
VIEWS_PER_PAGE = 600


@dataclasses.dataclass(frozen=True)
class PageViewRow:
    viewed_at: datetime
    url: str
    title: str | None


@dataclasses.dataclass(frozen=True)
class BrowsingDay:
    day: date  # Europe/Paris
    view_count: int
    views: tuple[PageViewRow, ...]


@dataclasses.dataclass(frozen=True)
class BrowsingPage:
    consent: ConsentState
    total_views: int
    days: tuple[BrowsingDay, ...]
    before: date | None  # the page asked for (None: the newest days)
    older: date | None  # `before` of the next page, when there are older days
    calendar: BrowsingCalendar | None = None  # the newest page's day strip (read when `now` is given)


_DAYS = PageViewDay.__table__.c
_VIEWS = PageView.__table__.c
_TOTALS = PageViewTotal.__table__.c

# Built once: the history pages are read far more often than anything else changes (bench/README.md).
_TOTAL = select(_TOTALS.view_count).where(_TOTALS.customer_id == bindparam("customer_id"))
_DAYS_BEFORE = (
    select(_DAYS.day, _DAYS.view_count)
    .where(_DAYS.customer_id == bindparam("customer_id"), _DAYS.day < bindparam("before"))
    .order_by(_DAYS.day.desc())
    .limit(MAX_DAYS_PER_PAGE + 1)
)
_VIEWS_BETWEEN = (
    select(_VIEWS.viewed_at, _VIEWS.url, _VIEWS.title)
    .where(
        _VIEWS.customer_id == bindparam("customer_id"),
        _VIEWS.viewed_at >= bindparam("start", type_=_VIEWS.viewed_at.type),
        _VIEWS.viewed_at < bindparam("end", type_=_VIEWS.viewed_at.type),
    )
    .order_by(_VIEWS.viewed_at.desc(), _VIEWS.id.desc())
)


def day_bounds(day: date, timezone: str) -> tuple[datetime, datetime]:
    """The UTC instants where a day in `timezone` and the next one start (23 or 25 hours apart when clocks change)."""
    zone = ZoneInfo(timezone)
    return (
        datetime.combine(day, time(), tzinfo=zone).astimezone(UTC),
        datetime.combine(day + timedelta(days=1), time(), tzinfo=zone).astimezone(UTC),
    )


def browsing_page(
    db: Session | Connection,
    *,
    customer_id: int,
    timezone: str,
    before: date | None = None,
    max_days: int = MAX_DAYS_PER_PAGE,
    views_per_page: int = VIEWS_PER_PAGE,
    now: datetime | None = None,
) -> BrowsingPage:
    """The newest days with page views before `before` (all days when None), with their views and the consent;
    on the newest page, given `now`, the day strip of the last months (from the per-day counts)."""
    connection = as_connection(db)
    consent = consent_states(connection, customer_id=customer_id).get(BROWSING_PURPOSE, ConsentState())
    calendar = None
    if now is not None and before is None:
        today = now.astimezone(ZoneInfo(timezone)).date()
        calendar = browsing_calendar(
            connection, customer_id=customer_id, consent=consent, today=today, timezone=timezone
        )
    total = connection.execute(_TOTAL, {"customer_id": customer_id}).scalar() or 0
    candidates = connection.execute(_DAYS_BEFORE, {"customer_id": customer_id, "before": before or date.max}).all()
    shown: list[tuple[date, int]] = []
    running = 0
    for day, count in candidates[: min(max_days, MAX_DAYS_PER_PAGE)]:
        if shown and running + count > views_per_page:
            break
        shown.append((day, int(count)))
        running += count
    older = shown[-1][0] if len(candidates) > len(shown) else None
    if not shown:
        return BrowsingPage(
            consent=consent, total_views=int(total), days=(), before=before, older=None, calendar=calendar
        )

    start, _ = day_bounds(shown[-1][0], timezone)
    _, end = day_bounds(shown[0][0], timezone)
    zone = ZoneInfo(timezone)
    by_day: dict[date, list[PageViewRow]] = {day: [] for day, _count in shown}
    rows = connection.execute(_VIEWS_BETWEEN, {"customer_id": customer_id, "start": start, "end": end})
    for viewed_at, url, title in rows:
        by_day.setdefault(viewed_at.astimezone(zone).date(), []).append(PageViewRow(viewed_at, url, title))
    days = tuple(BrowsingDay(day=day, view_count=count, views=tuple(by_day[day])) for day, count in shown)
    return BrowsingPage(
        consent=consent, total_views=int(total), days=days, before=before, older=older, calendar=calendar
    )
