"""Importing page views: kept only where browsing consent stood at their time, never twice, counts exact."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select

from portal.db import transaction
from portal.erasure.tombstone import erased_email_hash
from portal.imports.apply import ItemsRefused, apply_items
from portal.imports.browsing import PageViewsKind
from portal.imports.consents import ConsentsKind
from portal.models import AuditEvent, PageView, PageViewDay, PageViewTotal
from tests.browsing_factories import record_consent
from tests.factories import make_customer
from tests.import_helpers import CONFIG, SAMPLES, context, load_mapping, make_sample_customers, mapped_rows, run

NOW = datetime(2026, 11, 23, 10, tzinfo=UTC)
MAPPING = load_mapping(CONFIG / "page-views.toml")
PARIS = ZoneInfo("Europe/Paris")


def kind(settings) -> PageViewsKind:  # type: ignore[no-untyped-def]
    return PageViewsKind(context(settings, NOW, MAPPING))


def with_sample_consents(engine, settings):  # type: ignore[no-untyped-def]
    """The sample customers and their consents (C0002 consents to browsing since 2021, C0006 from February to
    September 2026), imported from the consents sample."""
    people = make_sample_customers(engine)
    mapping = load_mapping(CONFIG / "consents.toml")
    outcome = run(
        engine, ConsentsKind(context(settings, NOW, mapping)), list(mapped_rows(SAMPLES / "consents.csv", mapping))
    )
    assert outcome.errors == {}
    return people


def views(engine) -> list[tuple[int, datetime, str, str | None]]:  # type: ignore[no-untyped-def]
    with transaction(engine) as session:
        rows = session.execute(
            select(PageView.customer_id, PageView.viewed_at, PageView.url, PageView.title).order_by(PageView.id)
        )
        return [tuple(row) for row in rows]  # type: ignore[misc]


def assert_counts_match_a_recount(engine) -> None:  # type: ignore[no-untyped-def]
    held = views(engine)
    with transaction(engine) as session:
        days = {
            (c, day): n
            for c, day, n in session.execute(select(PageViewDay.customer_id, PageViewDay.day, PageViewDay.view_count))
        }
        totals = {
            c: (n, last)
            for c, n, last in session.execute(
                select(PageViewTotal.customer_id, PageViewTotal.view_count, PageViewTotal.last_viewed_at)
            )
        }
    assert days == Counter((c, at.astimezone(PARIS).date()) for c, at, _, _ in held)
    per_customer = Counter(c for c, _, _, _ in held)
    assert totals == {c: (n, max(at for who, at, _, _ in held if who == c)) for c, n in per_customer.items()}


@pytest.mark.parametrize("sample", ["page-views.csv", "page-views.jsonl"])
def test_views_are_kept_only_where_browsing_consent_stood_at_their_time(engine, settings, sample) -> None:
    people = with_sample_consents(engine, settings)
    outcome = run(engine, kind(settings), list(mapped_rows(SAMPLES / sample, MAPPING)))
    assert outcome.errors == {}
    assert outcome.tally.outcomes == {"created": 4, "dropped": 4}
    assert outcome.tally.reasons == {"no_consent": 2, "unknown_customer": 1, "past_retention": 1}
    kept = views(engine)
    assert [(c, at.astimezone(PARIS).isoformat()) for c, at, _, _ in kept] == [
        (people["C0002"].id, "2026-10-02T14:03:11+02:00"),
        (people["C0002"].id, "2026-10-02T14:05:40+02:00"),
        (people["C0002"].id, "2026-10-20T09:12:00+02:00"),  # written without an offset: Paris time
        (people["C0006"].id, "2026-07-14T21:30:00+02:00"),  # while consented; the October one came after withdrawal
    ]
    assert kept[0][2:] == ("https://www.maison-aubepine.example/fr/linge-de-maison", "Linge de maison")
    assert_counts_match_a_recount(engine)
    with transaction(engine) as session:
        audit = session.scalars(select(AuditEvent).where(AuditEvent.action == "browsing.ingested")).one()
    assert audit.detail == {
        "kept": 4,
        "unchanged": 0,
        "erased": 0,
        "unknown_customer": 1,
        "restricted": 0,
        "past_retention": 1,
        "no_consent": 2,
        "source": "import",
    }


def test_importing_the_same_export_again_adds_nothing(engine, settings) -> None:
    with_sample_consents(engine, settings)
    rows = list(mapped_rows(SAMPLES / "page-views.jsonl", MAPPING))
    run(engine, kind(settings), rows)
    before = views(engine)
    again = run(engine, kind(settings), rows + rows)  # the same views twice in one file, too
    assert again.tally.outcomes == {"unchanged": 8, "dropped": 8}
    assert views(engine) == before
    assert_counts_match_a_recount(engine)


def test_the_same_view_twice_in_a_file_is_kept_once(engine, settings) -> None:
    with_sample_consents(engine, settings)
    rows = list(mapped_rows(SAMPLES / "page-views.csv", MAPPING))[1:2]
    outcome = run(engine, kind(settings), rows + rows)
    assert outcome.tally.outcomes == {"created": 1, "unchanged": 1}
    assert len(views(engine)) == 1
    assert_counts_match_a_recount(engine)


def test_restricted_and_erased_customers_views_are_dropped(engine, settings) -> None:
    restricted = make_customer(engine, retailer_ref="C0100", restricted_at=datetime(2026, 1, 1, tzinfo=UTC))
    record_consent(engine, restricted, granted=True, at=datetime(2025, 1, 1, tzinfo=UTC))
    make_customer(
        engine,
        email=None,
        email_key=None,
        erased_at=datetime(2026, 2, 1, tzinfo=UTC),
        erased_email_hash=erased_email_hash(settings, "zoe.martin@example.fr"),
    )
    page = "https://www.maison-aubepine.example/fr/"
    rows = [
        (2, {"customer_id": "C0100", "viewed_at": "2026-03-01T10:00:00Z", "url": page}),
        (3, {"email": "ZOE.martin@example.fr", "viewed_at": "2026-03-01T10:00:00Z", "url": page}),
    ]
    outcome = run(engine, PageViewsKind(context(settings, NOW)), rows)
    assert outcome.errors == {} and outcome.tally.reasons == {"restricted": 1, "erased": 1}
    assert views(engine) == []


def test_every_bad_row_is_reported(engine, settings) -> None:
    page = "https://www.maison-aubepine.example/fr/"
    rows = [
        (2, {"customer_id": "C0001", "viewed_at": "2026-11-24T10:00:00Z", "url": page}),
        (3, {"customer_id": "C0001", "viewed_at": "hier", "url": "javascript:alert(1)"}),
        (4, {"viewed_at": "2026-03-01T10:00:00Z"}),
        (5, {"customer_id": "C0001", "viewed_at": "2026-03-01T10:00:00Z", "url": page, "title": "x" * 301}),
    ]
    outcome = run(engine, PageViewsKind(context(settings, NOW)), rows)
    assert outcome.messages() == {
        2: [("viewed_at", "This date is in the future.")],
        3: [
            ("viewed_at", "“hier” is not a date and time in the format YYYY-MM-DDTHH:MM:SS."),
            ("url", "“javascript:alert(1)” is not a web address (http:// or https://, at most 2000 characters)."),
        ],
        4: [("url", "This value is required."), ("customer_id", "The row names no customer: give customer_id, "
            "email or loyalty_number.")],
        5: [("title", "At most 300 characters.")],
    }  # fmt: skip


def test_the_api_path_refuses_a_bad_batch_whole(engine, settings) -> None:
    people = with_sample_consents(engine, settings)
    api = PageViewsKind(context(settings, NOW, source="api"))
    good = {
        "customer_id": people["C0002"].retailer_ref,
        "viewed_at": "2026-11-01T10:00:00Z",
        "url": "https://a.example/",
    }
    with transaction(engine) as session, pytest.raises(ItemsRefused):
        apply_items(session, api, [good, {**good, "url": "nowhere"}])
    with transaction(engine) as session:
        assert apply_items(session, api, [good]).outcomes == {"created": 1}
    assert_counts_match_a_recount(engine)


def test_views_older_than_the_retention_period_are_dropped(engine, settings) -> None:
    customer = make_customer(engine, retailer_ref="C0200")
    record_consent(engine, customer, granted=True, at=datetime(2024, 1, 1, tzinfo=UTC))
    page = "https://www.maison-aubepine.example/fr/"
    rows = [  # browsing data is kept 13 months (portal/config/purposes.toml): from 23 October 2025 on, here
        (2, {"customer_id": "C0200", "viewed_at": "2025-10-22T21:59:59Z", "url": page}),
        (3, {"customer_id": "C0200", "viewed_at": "2025-10-23T10:00:00Z", "url": page}),
    ]
    outcome = run(engine, PageViewsKind(context(settings, NOW)), rows)
    assert outcome.tally.outcomes == {"created": 1, "dropped": 1} and outcome.tally.reasons == {"past_retention": 1}
    assert_counts_match_a_recount(engine)
