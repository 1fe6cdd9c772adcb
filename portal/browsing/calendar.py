"""Page views per day over the last months, and whether consent stood on each day: what the day strip draws.

Read from the per-day counts (`page_view_day`, kept in step by `browsing.records`), never from the views
themselves; the consent periods come from the ledger the page replays anyway (`ConsentState.periods`).
"""

from __future__ import annotations

import dataclasses
from datetime import date, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import Connection, bindparam, select

from portal.charts.days import Day
from portal.consent.ledger import ConsentState
from portal.models import PageViewDay

# Thirteen months: the register's default retention of browsing data; nothing older is held.
MONTHS = 13
_INSTANT = timedelta(microseconds=1)

_DAYS = PageViewDay.__table__.c
_DAYS_SINCE = (
    select(_DAYS.day, _DAYS.view_count)
    .where(_DAYS.customer_id == bindparam("customer_id"), _DAYS.day >= bindparam("since"))
    .order_by(_DAYS.day)
)


@dataclasses.dataclass(frozen=True)
class CalendarMonth:
    month: date  # its first day
    days: tuple[Day, ...]  # Europe/Paris days; consented: consent stood at some moment of it

    @property
    def consented_days(self) -> int:
        return sum(d.consented for d in self.days)

    @property
    def view_count(self) -> int:
        return sum(d.value for d in self.days)


@dataclasses.dataclass(frozen=True)
class BrowsingCalendar:
    months: tuple[CalendarMonth, ...]  # oldest first, up to today

    @property
    def days(self) -> tuple[Day, ...]:
        return tuple(d for m in self.months for d in m.days)


def browsing_calendar(
    connection: Connection, *, customer_id: int, consent: ConsentState, today: date, timezone: str
) -> BrowsingCalendar | None:
    """From the month consent was first given (or the oldest day held) to today, at most MONTHS months; None for a
    customer who never consented and has no page view."""
    zone = ZoneInfo(timezone)
    oldest = _months_later(today.replace(day=1), -(MONTHS - 1))
    counts: dict[date, int] = dict(connection.execute(_DAYS_SINCE, {"customer_id": customer_id, "since": oldest}).all())
    starts = [min(counts)] if counts else []
    if consent.periods:
        starts.append(consent.periods[0][0].astimezone(zone).date())
    if not starts:
        return None
    first = max(min(starts).replace(day=1), oldest)
    # Each period as the local days it touched: consent stood at some moment of day d when it was given before d
    # ended and withdrawn after d began (a withdrawal at midnight sharp leaves d out).
    spans = [
        (given.astimezone(zone).date(), None if gone is None else (gone - _INSTANT).astimezone(zone).date())
        for given, gone in consent.periods
    ]
    months = []
    month = first
    while month <= today:
        following = _months_later(month, 1)
        days = []
        day = month
        while day < following and day <= today:
            stood = any(begun <= day and (last is None or day <= last) for begun, last in spans)
            days.append(Day(day, stood, int(counts.get(day, 0))))
            day += timedelta(days=1)
        months.append(CalendarMonth(month, tuple(days)))
        month = following
    return BrowsingCalendar(tuple(months))


def _months_later(first: date, months: int) -> date:
    """The first day of the month `months` after the month starting on `first`."""
    index = first.year * 12 + first.month - 1 + months
    return date(index // 12, index % 12 + 1, 1)
