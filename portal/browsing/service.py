"""The pages a customer viewed on the web shop, newest first and grouped by day, and where their consent stands.

The heavy demo customer holds 100,000 page views over a year (270 a day), so a page never loads them all: it reads at
most VIEWS_PER_PAGE views older than its cursor by the `(customer_id, viewed_at, id)` index, groups them by day in
the portal's time zone and takes each day's count from `page_view_day`. A page ends after MAX_DAYS_PER_PAGE days or
VIEWS_PER_PAGE views, so a busy day is cut and continues on the next page (keyset pagination: no OFFSET that grows
with the history, and the page's size does not grow with how busy a day was).
"""

from __future__ import annotations

import dataclasses
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import Connection, bindparam, or_, select
from sqlmodel import Session

# The consent ledger owns the state of a consent; the names stay importable from here for the history code.
from portal.browsing.calendar import BrowsingCalendar, browsing_calendar
from portal.consent.ledger import BROWSING_PURPOSE, ConsentState
from portal.consent.ledger import current_consents as consent_states
from portal.db import as_connection, limit_parameter
from portal.models import PageView, PageViewDay, PageViewTotal

MAX_DAYS_PER_PAGE = 14
# A page holds at most this many views, a fortnight at most: an occasional visitor gets two weeks, the heavy customer
# (270 views a day) a third of a day. Whole days of 270-600 rows made a 130 KB page that no one reads on a phone
# and cost 12 times the portal's other pages (bench/README.md, issue 17).
VIEWS_PER_PAGE = 100


@dataclasses.dataclass(frozen=True)
class PageViewRow:
    viewed_at: datetime
    url: str
    title: str | None


@dataclasses.dataclass(frozen=True)
class BrowsingDay:
    day: date  # Europe/Paris
    view_count: int  # the day's views in all, also those on the pages before or after this one
    views: tuple[PageViewRow, ...]
    continued: bool = False  # the previous page showed the day's newer views


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
MAX_VIEW_ID = 2**31 - 1  # page_view.id is a 32-bit integer on PostgreSQL: a larger one in a URL is not a cursor


@dataclasses.dataclass(frozen=True, order=True)
class ViewCursor:
    """Where a page of views starts: strictly older than this view (its time, then its id for views at one time)."""

    viewed_at: datetime
    id: int

    def token(self) -> str:
        """The cursor in a URL: microseconds since the epoch, a dot, the id (`?after=1763632800000000.41`)."""
        return f"{(self.viewed_at - _EPOCH) // timedelta(microseconds=1)}.{self.id}"

    @classmethod
    def parse(cls, token: str) -> ViewCursor | None:
        """The cursor of a URL, or None when it is not one (the view answers 400)."""
        micros, dot, view_id = token.partition(".")
        if not (dot and micros.isascii() and micros.isdigit() and view_id.isascii() and view_id.isdigit()):
            return None
        if len(micros) > 17 or len(view_id) > 10 or int(view_id) > MAX_VIEW_ID:
            return None
        try:
            moment = _EPOCH + timedelta(microseconds=int(micros))
        except OverflowError:
            return None
        return cls(moment, int(view_id))


@dataclasses.dataclass(frozen=True)
class BrowsingPage:
    consent: ConsentState
    total_views: int
    days: tuple[BrowsingDay, ...]
    before: date | None  # the day the page was asked to start before (None: the newest views, or a cursor)
    older: ViewCursor | None  # where the next page starts, when there are older views
    calendar: BrowsingCalendar | None = None  # the newest page's day strip (read when `now` is given)
    after: ViewCursor | None = None  # the cursor the page was asked for

    @property
    def first(self) -> bool:
        """The newest views: the page to come back to."""
        return self.before is None and self.after is None


_DAYS = PageViewDay.__table__.c
_VIEWS = PageView.__table__.c
_TOTALS = PageViewTotal.__table__.c

# Built once: the history pages are read far more often than anything else changes (bench/README.md).
_TOTAL = select(_TOTALS.view_count).where(_TOTALS.customer_id == bindparam("customer_id"))
# The days with views up to the cursor's, newest first: they bound the range of views the page reads.
_DAYS_UP_TO = (
    select(_DAYS.day, _DAYS.view_count)
    .where(_DAYS.customer_id == bindparam("customer_id"), _DAYS.day <= bindparam("newest"))
    .order_by(_DAYS.day.desc())
    .limit(MAX_DAYS_PER_PAGE + 1)
)
# The page's views and one more (is there an older page?), older than the cursor and no older than the days that can
# fill the page: one bounded range of the index, newest first, whatever plan the database picks (PostgreSQL, with no
# lower bound, sorted all of a customer's 100,000 views). Written as (time < t) OR (time = t AND id < i) rather than
# a row value, which both databases walk as a range.
_VIEWS_BEFORE = (
    select(_VIEWS.viewed_at, _VIEWS.url, _VIEWS.title, _VIEWS.id)
    .where(
        _VIEWS.customer_id == bindparam("customer_id"),
        _VIEWS.viewed_at >= bindparam("since", type_=_VIEWS.viewed_at.type),
        _VIEWS.viewed_at <= bindparam("at", type_=_VIEWS.viewed_at.type),
        or_(
            _VIEWS.viewed_at < bindparam("at", type_=_VIEWS.viewed_at.type),
            _VIEWS.id < bindparam("id"),
        ),
    )
    .order_by(_VIEWS.viewed_at.desc(), _VIEWS.id.desc())
    .limit(limit_parameter())
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
    after: ViewCursor | None = None,
    max_days: int = MAX_DAYS_PER_PAGE,
    views_per_page: int = VIEWS_PER_PAGE,
    now: datetime | None = None,
) -> BrowsingPage:
    """The newest views older than `after` (or than the day `before`, or all), grouped by day, with the consent; on
    the newest page, given `now`, the day strip of the last months (from the per-day counts)."""
    connection = as_connection(db)
    consent = consent_states(connection, customer_id=customer_id).get(BROWSING_PURPOSE, ConsentState())
    calendar = None
    if now is not None and before is None and after is None:
        today = now.astimezone(ZoneInfo(timezone)).date()
        calendar = browsing_calendar(
            connection, customer_id=customer_id, consent=consent, today=today, timezone=timezone
        )
    total = connection.execute(_TOTAL, {"customer_id": customer_id}).scalar() or 0
    zone = ZoneInfo(timezone)
    # Where the page starts: after a view, or at the start of the day asked for (or the end of time) with id 0, so
    # that every view at that instant is on a newer page.
    if after is not None:
        cursor, cursor_day = after, after.viewed_at.astimezone(zone).date()
    elif before is not None:
        cursor, cursor_day = ViewCursor(day_bounds(before, timezone)[0], 0), before
    else:
        cursor, cursor_day = ViewCursor(datetime.max.replace(tzinfo=UTC), 0), date.max
    limit = max(1, views_per_page)
    days_cap = min(max_days, MAX_DAYS_PER_PAGE)
    candidates = connection.execute(_DAYS_UP_TO, {"customer_id": customer_id, "newest": cursor_day}).all()
    # The fewest days whose views fill the page; the cursor's own day counts for nothing (its newer views are shown).
    window: list[tuple[date, int]] = []
    enough = 0
    for day, count in candidates[:days_cap]:
        window.append((day, int(count)))
        enough += 0 if day == cursor_day else int(count)
        if enough > limit:
            break
    if not window:
        return BrowsingPage(
            consent=consent, total_views=int(total), days=(), before=before, older=None, calendar=calendar, after=after
        )
    since = day_bounds(window[-1][0], timezone)[0]
    rows = connection.execute(
        _VIEWS_BEFORE,
        {"customer_id": customer_id, "since": since, "at": cursor.viewed_at, "id": cursor.id, "limit": limit + 1},
    ).all()
    by_day: dict[date, list[PageViewRow]] = {}
    last: ViewCursor | None = None
    cut = len(rows) > limit
    for viewed_at, url, title, view_id in rows[:limit]:
        day = viewed_at.astimezone(zone).date()
        if day not in by_day and len(by_day) == days_cap:
            cut = True
            break
        by_day.setdefault(day, []).append(PageViewRow(viewed_at, url, title))
        last = ViewCursor(viewed_at, view_id)
    # Cut inside the window: the next page starts after the last view shown; the window read whole, but older days
    # exist: it starts before the window's oldest day.
    older = last if cut else (ViewCursor(since, 0) if len(candidates) > len(window) else None)
    if not by_day:
        return BrowsingPage(
            consent=consent, total_views=int(total), days=(), before=before, older=older, calendar=calendar, after=after
        )
    counts = dict(window)
    first_day = next(iter(by_day))
    continued = after is not None and cursor_day == first_day
    days = tuple(
        BrowsingDay(
            day=day,
            # The per-day count is kept with the views; a view the count missed would not make it smaller than shown.
            view_count=max(counts.get(day, 0), len(views)),
            views=tuple(views),
            continued=continued and day == first_day,
        )
        for day, views in by_day.items()
    )
    return BrowsingPage(
        consent=consent,
        total_views=int(total),
        days=days,
        before=before,
        older=older,
        calendar=calendar,
        after=after,
    )
