"""The browsing history service: consent state from the ledger, views grouped by Paris day, keyset pages."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest
from sqlalchemy import Engine, event

from portal.browsing.service import (
    MAX_DAYS_PER_PAGE,
    VIEWS_PER_PAGE,
    ConsentState,
    ViewCursor,
    browsing_page,
    consent_states,
    day_bounds,
)
from tests.browsing_factories import add_daily_views, add_views_at, record_consent
from tests.conftest import TIMEZONE
from tests.factories import make_customer


def page(engine: Engine, customer_id: int, **options):  # type: ignore[no-untyped-def]
    with engine.connect() as connection:
        return browsing_page(connection, customer_id=customer_id, timezone=TIMEZONE, **options)


def test_a_customer_who_never_answered_has_not_consented(engine) -> None:
    customer = make_customer(engine)
    result = page(engine, customer.id)
    assert result.consent == ConsentState() and result.consent.status == "never"
    assert result.days == () and result.total_views == 0 and result.older is None


def test_the_current_state_is_the_latest_event(engine) -> None:
    customer = make_customer(engine)
    first = datetime(2025, 4, 1, 8, tzinfo=UTC)
    record_consent(engine, customer, granted=False, at=first - timedelta(days=30))  # refused at sign-up
    with engine.connect() as connection:
        assert consent_states(connection, customer_id=customer.id)["browsing_analytics"].status == "never"
    record_consent(engine, customer, granted=True, at=first)
    record_consent(engine, customer, granted=False, at=first + timedelta(days=10))
    record_consent(engine, customer, granted=True, at=first + timedelta(days=20), purpose="sms_offers")
    with engine.connect() as connection:
        states = consent_states(connection, customer_id=customer.id)
    assert states["browsing_analytics"].status == "withdrawn"
    assert states["browsing_analytics"].changed_at == first + timedelta(days=10)
    assert states["browsing_analytics"].first_granted_at == first
    assert states["sms_offers"].status == "granted"
    record_consent(engine, customer, granted=True, at=first + timedelta(days=40))
    consent = page(engine, customer.id).consent
    assert consent.status == "granted" and consent.changed_at == first + timedelta(days=40)


def test_views_are_grouped_by_paris_day_across_a_clock_change(engine) -> None:
    customer = make_customer(engine)
    # Clocks go forward in Paris on 29 March 2026: that day lasts 23 hours.
    moments = [
        datetime(2026, 3, 28, 22, 59, tzinfo=UTC),  # 23:59 on the 28th in Paris (UTC+1)
        datetime(2026, 3, 28, 23, 0, tzinfo=UTC),  # 00:00 on the 29th
        datetime(2026, 3, 29, 21, 59, tzinfo=UTC),  # 23:59 on the 29th (UTC+2)
        datetime(2026, 3, 29, 22, 0, tzinfo=UTC),  # 00:00 on the 30th
    ]
    add_views_at(engine, customer, moments)
    start, end = day_bounds(date(2026, 3, 29), TIMEZONE)
    assert (start, end) == (moments[1], moments[3]) and end - start == timedelta(hours=23)
    result = page(engine, customer.id)
    assert [(d.day, d.view_count) for d in result.days] == [
        (date(2026, 3, 30), 1),
        (date(2026, 3, 29), 2),
        (date(2026, 3, 28), 1),
    ]
    assert [v.viewed_at for v in result.days[1].views] == [moments[2], moments[1]]  # newest first
    assert result.total_views == 4


def test_keyset_pages_cover_every_day_once(engine) -> None:
    customer = make_customer(engine)
    add_daily_views(engine, customer, days=30, per_day=2, last_day=date(2026, 11, 20))
    seen: list[date] = []
    after = None
    pages = 0
    while True:
        result = page(engine, customer.id, after=after)
        pages += 1
        assert len(result.days) <= MAX_DAYS_PER_PAGE
        for day in result.days:
            assert day.view_count == len(day.views) == 2 and not day.continued
            assert all(v.viewed_at < day_bounds(day.day, TIMEZONE)[1] for v in day.views)
        seen += [d.day for d in result.days]
        if result.older is None:
            break
        assert result.older.viewed_at == result.days[-1].views[-1].viewed_at
        after = result.older
    assert pages == 3
    assert seen == [date(2026, 11, 20) - timedelta(days=n) for n in range(30)]


def test_a_busy_day_is_cut_and_continues_on_the_next_page(engine) -> None:
    customer = make_customer(engine)
    per_day = VIEWS_PER_PAGE + 30
    add_daily_views(engine, customer, days=3, per_day=per_day, last_day=date(2026, 11, 20))
    pages = []
    after = None
    while True:
        result = page(engine, customer.id, after=after)
        pages.append(result)
        if result.older is None:
            break
        after = ViewCursor.parse(result.older.token())  # as the next page's link carries it
        assert after == result.older
    shown = [v.url for p in pages for d in p.days for v in d.views]
    assert len(shown) == len(set(shown)) == 3 * per_day  # none lost, none repeated
    assert all(sum(len(d.views) for d in p.days) <= VIEWS_PER_PAGE for p in pages)
    first, second = pages[0], pages[1]
    assert [(d.day, len(d.views), d.view_count, d.continued) for d in first.days] == [
        (date(2026, 11, 20), VIEWS_PER_PAGE, per_day, False)
    ]
    assert [(d.day, len(d.views), d.view_count, d.continued) for d in second.days] == [
        (date(2026, 11, 20), 30, per_day, True),
        (date(2026, 11, 19), VIEWS_PER_PAGE - 30, per_day, False),
    ]
    assert not first.calendar and second.after == first.older and not second.first


def test_views_at_the_same_instant_are_split_by_id_without_loss(engine) -> None:
    customer = make_customer(engine)
    moment = datetime(2026, 11, 20, 9, tzinfo=UTC)
    add_views_at(engine, customer, [moment] * (VIEWS_PER_PAGE + 7))
    first = page(engine, customer.id)
    assert first.older is not None and first.older.viewed_at == moment
    second = page(engine, customer.id, after=first.older)
    urls = [v.url for p in (first, second) for d in p.days for v in d.views]
    assert len(urls) == len(set(urls)) == VIEWS_PER_PAGE + 7 and second.older is None


BAD_CURSORS = [
    "",
    "1",
    "1.",
    ".1",
    "a.1",
    "1.b",
    "-1.2",
    "1.2.3",
    "١٢.3",
    "1" * 18 + ".1",
    "1." + "9" * 19,
    "1.2147483648",
]


@pytest.mark.parametrize("token", BAD_CURSORS)
def test_a_cursor_that_is_not_one_is_refused(token: str) -> None:
    assert ViewCursor.parse(token) is None


def test_before_shows_only_older_days(engine) -> None:
    customer = make_customer(engine)
    add_daily_views(engine, customer, days=5, per_day=1, last_day=date(2026, 11, 20))
    result = page(engine, customer.id, before=date(2026, 11, 18))
    assert [d.day for d in result.days] == [date(2026, 11, 17), date(2026, 11, 16)]
    assert result.older is None
    assert page(engine, customer.id, before=date(2000, 1, 1)).days == ()


def test_a_busy_history_loads_a_bounded_page(engine) -> None:
    customer = make_customer(engine)
    add_daily_views(engine, customer, days=40, per_day=270, last_day=date(2026, 11, 20))
    statements: list[str] = []

    def count(conn, cursor, statement, parameters, context, executemany):  # type: ignore[no-untyped-def]
        statements.append(statement)

    event.listen(engine, "after_cursor_execute", count)
    try:
        result = page(engine, customer.id)
    finally:
        event.remove(engine, "after_cursor_execute", count)
    rows = sum(len(d.views) for d in result.days)
    assert result.total_views == 40 * 270
    assert [(d.day, d.view_count) for d in result.days] == [(date(2026, 11, 20), 270)]
    assert rows == VIEWS_PER_PAGE
    # The consent state (a recursive WITH over the ledger's index), the total, one range of views and the counts of
    # the days shown: never a query per day.
    assert len([s for s in statements if s.lstrip().upper().startswith(("SELECT", "WITH"))]) == 4
    assert result.older == ViewCursor(result.days[0].views[-1].viewed_at, result.older.id)


def test_another_customers_views_never_show(engine) -> None:
    camille, leo = make_customer(engine), make_customer(engine)
    moment = datetime(2026, 11, 2, 9, tzinfo=UTC)
    add_views_at(engine, camille, [moment], site="camille")
    add_views_at(engine, leo, [moment, moment + timedelta(minutes=1)], site="leo")
    record_consent(engine, leo, granted=True, at=moment - timedelta(days=1))
    result = page(engine, camille.id)
    assert [v.url for d in result.days for v in d.views] == [
        f"https://www.maison-aubepine.example/camille/{camille.id}/0"
    ]
    assert result.total_views == 1 and result.consent.status == "never"
