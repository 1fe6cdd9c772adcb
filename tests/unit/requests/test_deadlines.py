"""One calendar month from receipt, on the Paris calendar (DESIGN §2)."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from portal.requests.deadlines import add_months, due_at_for, due_date_for, end_of_day
from tests.conftest import TIMEZONE

PARIS = ZoneInfo("Europe/Paris")


@pytest.mark.parametrize(
    ("received", "due"),
    [
        (date(2026, 1, 31), date(2026, 2, 28)),
        (date(2028, 1, 31), date(2028, 2, 29)),  # leap year
        (date(2026, 1, 29), date(2026, 2, 28)),
        (date(2026, 3, 31), date(2026, 4, 30)),
        (date(2026, 2, 28), date(2026, 3, 28)),
        (date(2026, 12, 15), date(2027, 1, 15)),
        (date(2026, 12, 31), date(2027, 1, 31)),
    ],
)
def test_one_calendar_month(received: date, due: date) -> None:
    assert add_months(received, 1) == due


def test_three_months_for_an_extension() -> None:
    assert add_months(date(2026, 11, 30), 3) == date(2027, 2, 28)


def test_the_paris_day_counts_not_the_utc_day() -> None:
    # 00:30 in Paris on 1 March is still 28 February in UTC.
    received = datetime(2026, 3, 1, 0, 30, tzinfo=PARIS)
    assert received.astimezone(UTC).date() == date(2026, 2, 28)
    assert due_date_for(received, timezone=TIMEZONE) == date(2026, 4, 1)


@pytest.mark.parametrize(
    ("received", "due_local"),
    [
        # Received before the spring change (UTC+1), due after it (UTC+2): still the end of the Paris day.
        (datetime(2026, 3, 10, 12, tzinfo=UTC), datetime(2026, 4, 10, 23, 59, 59, 999999, tzinfo=PARIS)),
        # Received on the day the clocks go back.
        (datetime(2026, 10, 25, 1, 30, tzinfo=UTC), datetime(2026, 11, 25, 23, 59, 59, 999999, tzinfo=PARIS)),
    ],
)
def test_due_at_is_the_end_of_the_paris_day_across_daylight_saving(received, due_local) -> None:
    due = due_at_for(received, timezone=TIMEZONE)
    assert due == due_local
    assert due.astimezone(PARIS).hour == 23 and due.astimezone(PARIS).date() == due_local.date()


@pytest.mark.parametrize(
    ("received", "months", "due"),
    [
        (date(2028, 2, 29), 1, date(2028, 3, 29)),  # received on a leap day
        (date(2027, 11, 30), 3, date(2028, 2, 29)),  # extended into a leap February
        (date(2026, 1, 31), 3, date(2026, 4, 30)),  # extended: three months from receipt, the month's last day
        (date(2026, 8, 31), 1, date(2026, 9, 30)),
        (date(2026, 5, 31), 1, date(2026, 6, 30)),
        (date(2026, 10, 31), 2, date(2026, 12, 31)),
    ],
)
def test_month_ends_and_leap_years(received: date, months: int, due: date) -> None:
    assert add_months(received, months) == due


def test_new_year_in_paris_before_it_is_in_utc() -> None:
    received = datetime(2026, 12, 31, 23, 30, tzinfo=UTC)  # 00:30 on 1 January 2027 in Paris
    assert due_date_for(received, timezone=TIMEZONE) == date(2027, 2, 1)


@pytest.mark.parametrize(
    ("day", "utc_offset_hours"),
    [(date(2026, 3, 28), 1), (date(2026, 3, 29), 2), (date(2026, 10, 24), 2), (date(2026, 10, 25), 1)],
)
def test_end_of_day_on_either_side_of_the_clock_changes(day: date, utc_offset_hours: int) -> None:
    end = end_of_day(day, timezone=TIMEZONE)
    assert end.astimezone(PARIS).date() == day and end.utcoffset().total_seconds() == utc_offset_hours * 3600  # type: ignore[union-attr]
    assert end.astimezone(UTC) == datetime(day.year, day.month, day.day, 23, 59, 59, 999999, tzinfo=UTC) - timedelta(
        hours=utc_offset_hours
    )
