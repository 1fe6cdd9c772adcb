"""Page views per day over the last months, and whether consent stood on each day: what the day strip draws.

Read from the per-day counts (`page_view_day`, kept in step by `browsing.records`), never from the views
themselves; the consent periods from the purpose's answers since the strip's first month (`consent_timelines`
with `since`: one index range, whatever the length of the ledger).
"""

from __future__ import annotations

import dataclasses
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import Connection, bindparam, select

from portal.consent.ledger import BROWSING_PURPOSE, ConsentState, ConsentTimeline, consent_timelines
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
    """One month of days, up to today: per day of the month (index 0 is the 1st), the pages viewed and whether
    consent stood at some moment of it (Europe/Paris)."""

    month: date  # its first day
    views: tuple[int, ...]
    consented: tuple[bool, ...]

    @property
    def consented_days(self) -> int:
        return sum(self.consented)

    @property
    def days_without_consent(self) -> int:
        return len(self.consented) - sum(self.consented)

    @property
    def view_count(self) -> int:
        return sum(self.views)

    @property
    def last_day(self) -> date:
        return self.month + timedelta(days=len(self.views) - 1)


@dataclasses.dataclass(frozen=True)
class BrowsingCalendar:
    months: tuple[CalendarMonth, ...]  # oldest first, up to today


def browsing_calendar(
    connection: Connection, *, customer_id: int, consent: ConsentState, today: date, timezone: str
) -> BrowsingCalendar | None:
    """From the month consent was first given (or the oldest day held) to today, at most MONTHS months; None for a
    customer who never consented and has no page view.

    Some 400 days for a year of browsing: days are day numbers (ordinals) here, and whole months are built as
    tuples at once, so the strip costs little beside the page (bench/pages.py measures it).
    """
    zone = ZoneInfo(timezone)
    oldest = _months_later(today.replace(day=1), -(MONTHS - 1))
    rows = connection.execute(_DAYS_SINCE, {"customer_id": customer_id, "since": oldest}).all()
    counts = {day.toordinal(): int(count) for day, count in rows}
    starts = [rows[0][0]] if rows else []
    if consent.first_granted_at is not None:
        starts.append(consent.first_granted_at.astimezone(zone).date())
    if not starts:
        return None
    first = max(min(starts).replace(day=1), oldest)
    # Consent stood at some moment of day d when it was given before d ended and withdrawn after d began (a
    # withdrawal at midnight sharp leaves d out): each period as the day numbers it touched.
    last_ordinal = today.toordinal()
    since = datetime.combine(first, time.min, tzinfo=zone)
    timeline = consent_timelines(connection, customer_ids=[customer_id], purposes=[BROWSING_PURPOSE], since=since)
    consented: set[int] = set()
    for given, gone in _periods(timeline[(customer_id, BROWSING_PURPOSE)]):
        begun = given.astimezone(zone).date().toordinal()
        ended = last_ordinal if gone is None else (gone - _INSTANT).astimezone(zone).date().toordinal()
        consented.update(range(begun, ended + 1))
    months = []
    month = first
    while month <= today:
        following = _months_later(month, 1)
        numbers = range(month.toordinal(), min(following.toordinal(), last_ordinal + 1))
        views = tuple([counts.get(n, 0) for n in numbers])
        months.append(CalendarMonth(month, views, tuple([n in consented for n in numbers])))
        month = following
    return BrowsingCalendar(tuple(months))


def _periods(timeline: ConsentTimeline) -> list[tuple[datetime, datetime | None]]:
    """The timeline's spans of consent: (given, withdrawn), withdrawn None while it stands."""
    periods: list[tuple[datetime, datetime | None]] = []
    for moment, granted in zip(timeline.times, timeline.answers, strict=True):
        if granted and (not periods or periods[-1][1] is not None):
            periods.append((moment, None))
        elif not granted and periods and periods[-1][1] is None:
            periods[-1] = (periods[-1][0], moment)
    return periods


def _months_later(first: date, months: int) -> date:
    """The first day of the month `months` after the month starting on `first`."""
    index = first.year * 12 + first.month - 1 + months
    return date(index // 12, index % 12 + 1, 1)
