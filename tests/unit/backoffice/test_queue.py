"""The staff queue: filters, search, order by effective due date, keyset pages, days left, masked addresses."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import Engine, update

from portal.backoffice import queue
from portal.db import transaction
from portal.models import PrivacyRequest
from portal.requests.service import file_request
from tests.conftest import TIMEZONE, Clock
from tests.factories import make_customer, make_store
from tests.staff_helpers import make_staff


def file(engine: Engine, *, received_at: datetime, customer_id: int | None = None, **changes: object) -> str:
    """A request received at `received_at`, then given `changes` (status, assignee, extension...) directly."""
    with transaction(engine) as session:
        filed = file_request(
            session,
            customer_id=customer_id,
            type=str(changes.pop("type", "access")),
            channel=str(changes.pop("channel", "web")),
            store_id=changes.pop("store_id", None),  # type: ignore[arg-type]
            now=received_at,
            actor="system",
            timezone=TIMEZONE,
        )
        if changes:
            session.execute(update(PrivacyRequest).where(PrivacyRequest.id == filed.id).values(**changes))
        return str(changes.get("reference", filed.reference))


def page(engine: Engine, clock: Clock, staff_id: int | None = None, after: str | None = None, size: int = 25, **query):
    filters, errors = queue.parse_filters(query)
    assert not errors, errors
    with transaction(engine) as session:
        return queue.queue_page(
            session, filters=filters, staff_id=staff_id, now=clock(), after=after, page_size=size, timezone=TIMEZONE
        )


def references(result: queue.QueuePage) -> list[str]:
    return [row.reference for row in result.rows]


def test_masked_email_keeps_the_first_letter_and_the_domain() -> None:
    assert queue.mask_email("camille.durand@example.com") == "c•••••@example.com"
    assert queue.mask_email("a@b.fr") == "a•••••@b.fr"
    assert queue.mask_email(None) == "—"
    assert queue.mask_email("not-an-address") == "—"


def test_days_left_counts_calendar_days_in_paris() -> None:
    # 23:30 UTC on 30 March is already 31 March in Paris (summer time): a request due on 31 March is due today.
    due = datetime(2026, 3, 31, 21, 59, 59, tzinfo=UTC)  # end of 31 March, Paris time
    assert queue.days_left(due, datetime(2026, 3, 30, 23, 30, tzinfo=UTC), timezone=TIMEZONE) == 0
    assert queue.days_left(due, datetime(2026, 3, 30, 21, 30, tzinfo=UTC), timezone=TIMEZONE) == 1
    assert queue.days_left(due, datetime(2026, 4, 1, 8, tzinfo=UTC), timezone=TIMEZONE) == -1
    # Across the change to winter time (25 October 2026) a day is still one day.
    assert (
        queue.days_left(
            datetime(2026, 10, 26, 22, tzinfo=UTC), datetime(2026, 10, 24, 10, tzinfo=UTC), timezone=TIMEZONE
        )
        == 2
    )


def test_open_requests_come_by_effective_due_date_and_closed_ones_stay_out(engine: Engine, clock: Clock) -> None:
    now = clock()
    late = file(engine, received_at=now - timedelta(days=40))
    soon = file(engine, received_at=now - timedelta(days=27))
    fresh = file(engine, received_at=now - timedelta(days=2))
    # Received earliest, but extended by two months: it comes last.
    extended = file(engine, received_at=now - timedelta(days=45), extended_due_at=now + timedelta(days=45))
    file(engine, received_at=now - timedelta(days=30), status="completed", closed_at=now)
    result = page(engine, clock)
    assert references(result) == [late, soon, fresh, extended]
    late_row, soon_row, fresh_row, extended_row = result.rows
    assert late_row.overdue and not late_row.due_soon and late_row.days_left < 0
    assert soon_row.due_soon and not soon_row.overdue
    assert not fresh_row.due_soon and not fresh_row.overdue
    assert extended_row.extended and extended_row.days_left == 45
    assert result.next_cursor is None


def test_keyset_pages_cover_every_open_request_once(engine: Engine, clock: Clock) -> None:
    now = clock()
    # Several requests share a due date (same day): the id breaks the tie, so no row is skipped or repeated.
    made = [file(engine, received_at=now - timedelta(days=i % 5, hours=i)) for i in range(23)]
    seen: list[str] = []
    after = None
    for _ in range(10):
        result = page(engine, clock, after=after, size=5)
        seen += references(result)
        after = result.next_cursor
        if after is None:
            break
    assert sorted(seen) == sorted(made) and len(seen) == len(set(seen)) == 23


def test_closed_requests_come_newest_first_with_their_own_cursor(engine: Engine, clock: Clock) -> None:
    now = clock()
    made = [file(engine, received_at=now - timedelta(days=60 - i), status="completed", closed_at=now) for i in range(7)]
    first = page(engine, clock, status="completed", size=4)
    assert references(first) == made[::-1][:4]
    second = page(engine, clock, status="completed", size=4, after=first.next_cursor)
    assert references(second) == made[::-1][4:] and second.next_cursor is None
    assert len(references(page(engine, clock, status="all"))) == 7


def test_newest_first_means_by_receipt_even_when_older_requests_were_recorded_later(
    engine: Engine, clock: Clock
) -> None:
    now = clock()
    # Recorded in this order (an import, a request typed in from a letter…): ids do not follow receipt.
    ages = [3, 40, 1, 400, 20, 2, 90]
    made = {age: file(engine, received_at=now - timedelta(days=age), status="completed", closed_at=now) for age in ages}
    expected = [made[age] for age in sorted(ages)]
    first = page(engine, clock, status="closed", size=4)
    second = page(engine, clock, status="closed", size=4, after=first.next_cursor)
    assert references(first) + references(second) == expected and second.next_cursor is None


def test_filters_by_type_channel_store_assignee_and_due(engine: Engine, clock: Clock) -> None:
    now = clock()
    store = make_store(engine)
    agent, _, _ = make_staff(engine)
    other, _, _ = make_staff(engine)
    erasure = file(engine, received_at=now - timedelta(days=3), type="erasure")
    in_store = file(engine, received_at=now - timedelta(days=4), channel="store", store_id=store.id)
    mine = file(engine, received_at=now - timedelta(days=5), assignee_id=agent.id, status="in_progress")
    theirs = file(engine, received_at=now - timedelta(days=6), assignee_id=other.id)
    overdue = file(engine, received_at=now - timedelta(days=35))
    due_soon = file(engine, received_at=now - timedelta(days=26))
    assert references(page(engine, clock, type="erasure")) == [erasure]
    assert references(page(engine, clock, channel="store")) == [in_store]
    assert references(page(engine, clock, store=str(store.id))) == [in_store]
    assert references(page(engine, clock, agent.id, assignee="me")) == [mine]
    assert references(page(engine, clock, assignee=str(other.id))) == [theirs]
    assert mine not in references(page(engine, clock, assignee="none"))
    assert references(page(engine, clock, status="in_progress")) == [mine]
    assert references(page(engine, clock, due="overdue")) == [overdue]
    assert references(page(engine, clock, due="week")) == [due_soon]
    row = page(engine, clock, agent.id, assignee="me").rows[0]
    assert row.assignee_name == agent.name and row.assignee_id == agent.id


def test_search_by_the_start_of_a_reference_an_email_or_a_name(engine: Engine, clock: Clock) -> None:
    now = clock()
    customer = make_customer(engine, email="Camille.Durand@Example.com", first_name="Camille", last_name="Durand")
    other = make_customer(engine, email="someone@example.com", first_name="Léo", last_name="Bernard")
    theirs = file(engine, received_at=now - timedelta(days=1), customer_id=customer.id)
    closed = file(engine, received_at=now - timedelta(days=50), customer_id=customer.id, status="completed")
    file(engine, received_at=now - timedelta(days=1), customer_id=other.id)
    # Typed in lower case, with spaces around: the email key matches.
    found = page(engine, clock, q="  camille.durand@example.com ", status="all")
    assert set(references(found)) == {theirs, closed}
    assert found.rows[0].masked_email == "C•••••@Example.com"
    assert references(page(engine, clock, q=theirs.lower().replace("-", ""))) == [theirs]
    assert references(page(engine, clock, q="nobody@example.com")) == []
    # The start of an address, of a last name, of "first last" (any case), of a reference (with or without R-).
    assert set(references(page(engine, clock, q="camille.DURAND@exa", status="all"))) == {theirs, closed}
    assert set(references(page(engine, clock, q="durAND", status="all"))) == {theirs, closed}
    assert set(references(page(engine, clock, q="camille durand", status="all"))) == {theirs, closed}
    assert references(page(engine, clock, q=theirs[2:6])) == [theirs]
    assert references(page(engine, clock, q=theirs[:7].lower())) == [theirs]
    # A reference whose own first character is R, typed without "R-": the R is not taken for the prefix's.
    r_first = file(engine, received_at=now - timedelta(days=2), customer_id=other.id, reference="R-RN6C-NX91")
    assert references(page(engine, clock, q="RN6C")) == [r_first]
    assert references(page(engine, clock, q="rrn6cn")) == [r_first]
    # The middle of something is not the start of it: each search is one range of an index.
    assert references(page(engine, clock, q="durand@example.com", status="all")) == []
    assert references(page(engine, clock, q="bernard", status="all")) != [theirs]
    # What a person types is looked for as it is: LIKE's wildcards match themselves only.
    assert references(page(engine, clock, q="%%%", status="all")) == []
    assert references(page(engine, clock, q="___", status="all")) == []


def test_a_search_matching_too_many_customers_lists_some_and_says_so(engine: Engine, clock: Clock) -> None:
    now = clock()
    for n in range(queue.SEARCH_CUSTOMERS + 1):
        customer = make_customer(engine, email=f"martin{n}@example.com", last_name="Martin")
        file(engine, received_at=now - timedelta(days=1, minutes=n), customer_id=customer.id)
    found = page(engine, clock, q="martin", size=100)
    assert found.search_capped and len(found.rows) == queue.SEARCH_CUSTOMERS
    narrowed = page(engine, clock, q="martin1", size=100)  # martin1, martin10 … martin19
    assert not narrowed.search_capped and len(narrowed.rows) == 11


@pytest.mark.parametrize(
    ("query", "bad"),
    [
        ({"status": "sleeping"}, "status"),
        ({"type": "<script>"}, "type"),
        ({"channel": "pigeon"}, "channel"),
        ({"store": "abc"}, "store"),
        ({"store": "9" * 30}, "store"),
        ({"assignee": "everyone"}, "assignee"),
        ({"due": "yesterday"}, "due"),
        ({"q": "ca"}, "q"),
    ],
)
def test_bad_filter_values_are_reported_and_left_out(query: dict[str, str], bad: str) -> None:
    filters, errors = queue.parse_filters(query)
    assert list(errors) == [bad]
    assert filters == queue.QueueFilters()


def test_filters_round_trip_through_the_url() -> None:
    query = {"status": "all", "type": "erasure", "channel": "store", "store": "3", "assignee": "me", "due": "week"}
    filters, errors = queue.parse_filters(query)
    assert not errors and filters.as_query() == query
    assert queue.QueueFilters().as_query() == {}


@pytest.mark.parametrize("cursor", ["", "abc", "1.2.3", "99999999999999999999999999.1", "-5", "12.x"])
def test_malformed_cursors_start_from_the_first_page(engine: Engine, clock: Clock, cursor: str) -> None:
    made = file(engine, received_at=clock() - timedelta(days=1))
    assert references(page(engine, clock, after=cursor)) == [made]
