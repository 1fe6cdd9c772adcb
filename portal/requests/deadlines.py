"""Legal due dates (GDPR Art. 12(3)): one calendar month from receipt, extendable by two more months.

Computed on the calendar of the configured time zone (Europe/Paris): a request received at 00:30 in Paris on
1 March is a March request even though it is still February in UTC.
"""

from __future__ import annotations

import calendar
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo


def add_months(day: date, months: int) -> date:
    """Same day `months` later; the last day of the month when that day does not exist (31 Jan → 28/29 Feb)."""
    month_index = day.month - 1 + months
    year, month = day.year + month_index // 12, month_index % 12 + 1
    return date(year, month, min(day.day, calendar.monthrange(year, month)[1]))


def due_date_for(received_at: datetime, *, timezone: str, months: int = 1) -> date:
    """The calendar day by which the answer is due."""
    return add_months(received_at.astimezone(ZoneInfo(timezone)).date(), months)


def end_of_day(day: date, *, timezone: str) -> datetime:
    """The last instant of `day` in `timezone` (what "due on 28 February" means), as an aware datetime."""
    next_midnight = datetime.combine(day + timedelta(days=1), time(0), tzinfo=ZoneInfo(timezone))
    return next_midnight - timedelta(microseconds=1)


def due_at_for(received_at: datetime, *, timezone: str, months: int = 1) -> datetime:
    return end_of_day(due_date_for(received_at, timezone=timezone, months=months), timezone=timezone)
