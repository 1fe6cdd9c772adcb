"""The demo dataset: its volumes, its summary tables in step with the rows, consent before browsing, the privacy
requests and their timelines, determinism."""

from __future__ import annotations

import re
from collections import Counter, defaultdict
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import Engine, func, select, text
from sqlmodel import Session

from portal.backoffice.reports import build_report
from portal.consent.register import load_register
from portal.db import make_engine, migrate
from portal.demo.dataset import ANCHOR, DEMO_CUSTOMERS, DEMO_STAFF, DemoSummary, ensure_demo_data, generate
from portal.models import (
    AuditEvent,
    ConsentEvent,
    Customer,
    PageView,
    PageViewDay,
    PageViewTotal,
    PrivacyRequest,
    Purchase,
    PurchaseTotal,
    RequestEvent,
    StaffUser,
    Store,
    email_key,
)
from portal.models.customer import PROFILE_FIELDS
from portal.models.requests import OPEN_STATUSES, REQUEST_TYPES
from portal.requests.deadlines import due_at_for
from portal.requests.service import requests_of
from tests.conftest import TIMEZONE, Clock, SMTPServer, make_settings

PARIS = ZoneInfo("Europe/Paris")


def _fresh_engine(path: Path) -> Engine:
    url = f"sqlite:///{path}"
    migrate(url)
    return make_engine(url)


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Engine, DemoSummary]]:
    """One full-size generation shared by the tests of this module (they only read, but for the last one's sign-in).

    `now` is the anchor the customer data uses anyway; passing it also pins the requests' dates (without it they
    count back from the wall clock)."""
    engine = _fresh_engine(tmp_path_factory.mktemp("demo") / "demo.sqlite3")
    summary = generate(engine, now=ANCHOR)
    yield engine, summary
    engine.dispose()


def _customer_id(engine: Engine, email: str) -> int:
    with engine.connect() as connection:
        return int(connection.execute(select(Customer.id).where(Customer.email_key == email)).scalar_one())


def _scalar(engine: Engine, sql: str, **params: object) -> int:
    with engine.connect() as connection:
        return int(connection.execute(text(sql), params).scalar_one())


def test_volumes(demo: tuple[Engine, DemoSummary]) -> None:
    engine, summary = demo
    heavy = _customer_id(engine, DEMO_CUSTOMERS[0])
    assert summary.customers >= 300
    with engine.connect() as connection:
        kinds = Counter(connection.execute(select(Store.kind)).scalars())
    assert kinds == {"store": 12, "web": 1}
    assert summary.stores == 13
    assert _scalar(engine, "SELECT COUNT(*) FROM purchase WHERE customer_id = :c", c=heavy) == 10_000
    assert _scalar(engine, "SELECT COUNT(*) FROM purchase WHERE customer_id <> :c", c=heavy) >= 30_000
    assert _scalar(engine, "SELECT COUNT(*) FROM page_view WHERE customer_id = :c", c=heavy) == 100_000
    assert summary.purchases == _scalar(engine, "SELECT COUNT(*) FROM purchase")
    assert summary.page_views == _scalar(engine, "SELECT COUNT(*) FROM page_view")
    assert summary.generated and summary.seconds > 0
    assert f"{summary.customers:,} customers" in summary.describe()
    assert f"{summary.privacy_requests} privacy requests ({summary.open_requests} open)" in summary.describe()


def test_demo_customers(demo: tuple[Engine, DemoSummary]) -> None:
    engine, _ = demo
    with engine.connect() as connection:
        rows = connection.execute(
            select(Customer.id, Customer.email, Customer.preferred_language, Customer.country).order_by(Customer.id)
        ).all()
    assert [(row.email, row.preferred_language) for row in rows[:3]] == [
        (DEMO_CUSTOMERS[0], "fr"),
        (DEMO_CUSTOMERS[1], "fr"),
        (DEMO_CUSTOMERS[2], "en"),
    ]
    emails = [row.email for row in rows]
    assert len(set(emails)) == len(emails)
    assert all(email == email.lower() for email in emails)
    assert {email.split("@")[1] for email in emails} <= {"example.com", "example.org", "example.net"}  # RFC 2606
    assert {row.country for row in rows} >= {"FR", "GB"}
    with Session(engine) as session:
        heavy = session.get(Customer, rows[0].id)
        assert heavy is not None
        assert heavy.held_profile_fields() == list(PROFILE_FIELDS)  # she shows every profile field


def test_purchase_totals_equal_their_lines(demo: tuple[Engine, DemoSummary]) -> None:
    engine, _ = demo
    mismatched = _scalar(
        engine,
        "SELECT COUNT(*) FROM purchase p WHERE p.total_cents <> "
        "(SELECT COALESCE(SUM(l.quantity * l.unit_price_cents), -1) FROM purchase_line l WHERE l.purchase_id = p.id)",
    )
    assert mismatched == 0


def test_purchase_total_table_matches_the_purchases(demo: tuple[Engine, DemoSummary]) -> None:
    engine, _ = demo
    expected: dict[tuple[int, int, int], list] = {}
    per_customer: Counter[int] = Counter()
    with engine.connect() as connection:
        purchases = connection.execute(
            select(
                Purchase.customer_id, Purchase.store_id, Purchase.purchased_at, Purchase.total_cents, Purchase.channel
            )
        ).all()
        totals = connection.execute(select(PurchaseTotal)).all()
    for customer_id, store_id, purchased_at, total, channel in purchases:
        local = purchased_at.astimezone(PARIS)
        if channel == "in_store":  # shops open Monday to Saturday, 9:30 to 19:30
            assert local.weekday() != 6 and "09:30" <= f"{local:%H:%M}" < "19:30", local
        per_customer[customer_id] += 1
        key = (customer_id, store_id, local.year)
        entry = expected.setdefault(key, [0, 0, purchased_at, purchased_at])
        entry[0] += 1
        entry[1] += total
        entry[2] = min(entry[2], purchased_at)
        entry[3] = max(entry[3], purchased_at)
    actual = {
        (row.customer_id, row.store_id, row.year): [
            row.purchase_count,
            row.amount_cents,
            row.first_purchase_at,
            row.last_purchase_at,
        ]
        for row in totals
    }
    assert actual == expected
    summed: Counter[int] = Counter()
    for (customer_id, _store, _year), (count, *_rest) in actual.items():
        summed[customer_id] += count
    assert summed == per_customer


def test_page_view_days_match_the_page_views(demo: tuple[Engine, DemoSummary]) -> None:
    engine, _ = demo
    with engine.connect() as connection:
        views = connection.execute(select(PageView.customer_id, PageView.viewed_at)).all()
        days = connection.execute(select(PageViewDay.customer_id, PageViewDay.day, PageViewDay.view_count)).all()
    expected = Counter((customer_id, viewed_at.astimezone(PARIS).date()) for customer_id, viewed_at in views)
    assert {(customer_id, day): count for customer_id, day, count in days} == expected
    per_customer: defaultdict[int, int] = defaultdict(int)
    for customer_id, _day, count in days:
        per_customer[customer_id] += count
    assert per_customer == Counter(customer_id for customer_id, _ in views)
    with engine.connect() as connection:
        totals = connection.execute(
            select(PageViewTotal.customer_id, PageViewTotal.view_count, PageViewTotal.last_viewed_at)
        ).all()
    latest: dict[int, object] = {}
    for customer_id, viewed_at in views:
        latest[customer_id] = max(latest.get(customer_id, viewed_at), viewed_at)  # type: ignore[type-var]
    assert {c: (n, last) for c, n, last in totals} == {c: (per_customer[c], latest[c]) for c in per_customer}


def test_page_views_only_while_browsing_is_consented(demo: tuple[Engine, DemoSummary]) -> None:
    engine, _ = demo
    # The latest browsing_analytics event at or before each page view must be a grant.
    unconsented = _scalar(
        engine,
        "SELECT COUNT(*) FROM page_view v WHERE COALESCE(("
        "  SELECT e.granted FROM consent_event e"
        "  WHERE e.customer_id = v.customer_id AND e.purpose = 'browsing_analytics' AND e.occurred_at <= v.viewed_at"
        "  ORDER BY e.occurred_at DESC, e.id DESC LIMIT 1"
        "), :no) = :no",
        no=False,
    )
    assert unconsented == 0
    # Nobody who withdrew (and has not granted again) keeps browsing data.
    withdrawn_with_views = _scalar(
        engine,
        "SELECT COUNT(DISTINCT v.customer_id) FROM page_view v WHERE ("
        "  SELECT e.granted FROM consent_event e"
        "  WHERE e.customer_id = v.customer_id AND e.purpose = 'browsing_analytics'"
        "  ORDER BY e.occurred_at DESC, e.id DESC LIMIT 1"
        ") = :no",
        no=False,
    )
    assert withdrawn_with_views == 0
    english = _customer_id(engine, DEMO_CUSTOMERS[2])
    assert _scalar(engine, "SELECT COUNT(*) FROM page_view WHERE customer_id = :c", c=english) == 0
    consenting = _scalar(
        engine, "SELECT COUNT(DISTINCT customer_id) FROM consent_event WHERE purpose = 'browsing_analytics'"
    )
    assert 0.35 <= consenting / _scalar(engine, "SELECT COUNT(*) FROM customer") <= 0.55


def test_each_consent_records_the_policy_version_in_force_on_its_day(demo: tuple[Engine, DemoSummary]) -> None:
    engine, _ = demo
    register = load_register(make_settings("sqlite://", smtp_port=1).purposes_file)
    paris = ZoneInfo(TIMEZONE)
    with Session(engine) as session:
        events = session.execute(select(ConsentEvent.occurred_at, ConsentEvent.policy_version)).all()
    recorded = Counter(version for _, version in events)
    assert all(version == register.version_in_force(at.astimezone(paris).date()) for at, version in events)
    assert len(recorded) >= 3  # six years of history span several versions of the policy


def test_existing_data_is_kept(demo: tuple[Engine, DemoSummary]) -> None:
    engine, summary = demo
    again = ensure_demo_data(engine)
    assert not again.generated
    assert (again.customers, again.purchases, again.page_views) == (
        summary.customers,
        summary.purchases,
        summary.page_views,
    )
    assert "already present" in again.describe()


def _fingerprint(engine: Engine) -> tuple[list[str], int, int, datetime]:
    with engine.connect() as connection:
        emails = list(connection.execute(select(Customer.email).order_by(Customer.id)).scalars())
        purchases, amount = connection.execute(select(func.count(), func.sum(Purchase.total_cents))).one()
        last_view = connection.execute(select(func.max(PageView.viewed_at))).scalar_one()
    return emails, purchases, amount, last_view


def _requests_fingerprint(engine: Engine) -> tuple[list[tuple], int, int]:
    with engine.connect() as connection:
        requests = [
            tuple(row)
            for row in connection.execute(
                select(
                    PrivacyRequest.reference,
                    PrivacyRequest.customer_id,
                    PrivacyRequest.type,
                    PrivacyRequest.status,
                    PrivacyRequest.received_at,
                    PrivacyRequest.closed_at,
                    PrivacyRequest.version,
                ).order_by(PrivacyRequest.id)
            )
        ]
        events = connection.execute(select(func.count()).select_from(RequestEvent)).scalar_one()
        audits = connection.execute(select(func.count()).select_from(AuditEvent)).scalar_one()
    return requests, events, audits


def test_same_seed_same_data_and_reset_regenerates(demo: tuple[Engine, DemoSummary], tmp_path: Path) -> None:
    engine, _ = demo
    other = _fresh_engine(tmp_path / "again.sqlite3")
    try:
        before = datetime.now(UTC)
        generate(other)  # no `now`: the customer data at the anchor, the requests at the wall clock
        assert _fingerprint(other) == _fingerprint(engine)
        with Session(other) as session:
            open_requests = list(
                session.scalars(select(PrivacyRequest).where(PrivacyRequest.status.in_(OPEN_STATUSES)))  # type: ignore[attr-defined]
            )
        assert max(r.received_at for r in open_requests) > before - timedelta(days=7)
        assert any(r.effective_due_at < before for r in open_requests)  # overdue today, whatever today is
        assert any(before < r.effective_due_at < before + timedelta(days=7) for r in open_requests)
        with other.begin() as connection:
            connection.execute(text("UPDATE customer SET first_name = 'Changed'"))
        summary = ensure_demo_data(other, reset=True, now=ANCHOR)
        assert summary.generated
        assert _fingerprint(other) == _fingerprint(engine)
        assert _requests_fingerprint(other) == _requests_fingerprint(engine)  # same `now`, same requests
        assert _scalar(other, "SELECT COUNT(*) FROM customer WHERE first_name = 'Changed'") == 0
        assert _scalar(other, "SELECT COUNT(*) FROM alembic_version") == 1
    finally:
        other.dispose()


def test_demo_staff_accounts_wait_for_their_first_sign_in(demo: tuple[Engine, DemoSummary]) -> None:
    from portal.demo.dataset import DEMO_STAFF
    from portal.identity.passwords import check_password
    from portal.models import StaffUser

    engine, _ = demo
    with Session(engine) as session:
        accounts = {s.email: s for s in session.scalars(select(StaffUser))}
        assert {email for email, *_ in DEMO_STAFF} <= set(accounts)
        for email, _name, role, store_code, password in DEMO_STAFF:
            account = accounts[email]
            assert account.role == role and account.active
            assert account.totp_secret is None and account.totp_confirmed_at is None  # the first sign-in enrols
            assert check_password(account.password_hash, password)[0]
            assert not account.password_must_change  # the documented passwords stay usable (README.md)
            store = session.get(Store, account.store_id) if account.store_id else None
            assert (store.code if store else None) == store_code


# --- Privacy requests ----------------------------------------------------------------------------------------------

REFERENCE = re.compile(r"^R-[0-9A-HJKMNP-TV-Z]{4}-[0-9A-HJKMNP-TV-Z]{4}$")
CHANGES = {  # timeline kinds that move the status, and where to
    "started": "in_progress",
    "question": "awaiting_customer",
    "reply": "in_progress",
    "completed": "completed",
    "rejected": "rejected",
    "cancelled": "cancelled",
}
AUDITED = {  # timeline kind -> the audit action the workflow records with it
    "received": "request.received",
    "assigned": "request.assigned",
    "started": "request.started",
    "question": "request.question_asked",
    "reply": "request.customer_replied",
    "note": "request.note_added",
    "extended": "request.extended",
    "completed": "request.completed",
    "rejected": "request.rejected",
    "cancelled": "request.cancelled",
    "restricted": "customer.restricted",
    "restriction_lifted": "customer.restriction_lifted",
}


def _requests(engine: Engine) -> tuple[list[PrivacyRequest], dict[int, list[RequestEvent]]]:
    with Session(engine) as session:
        requests = list(session.scalars(select(PrivacyRequest).order_by(PrivacyRequest.id)))
        timelines: dict[int, list[RequestEvent]] = defaultdict(list)
        for event in session.scalars(select(RequestEvent).order_by(RequestEvent.occurred_at, RequestEvent.id)):
            timelines[event.request_id].append(event)
        session.expunge_all()
    return requests, timelines


def test_privacy_requests_mix_the_queue_needs(demo: tuple[Engine, DemoSummary]) -> None:
    engine, summary = demo
    requests, _ = _requests(engine)
    now = ANCHOR
    statuses = Counter(r.status for r in requests)
    open_requests = [r for r in requests if r.status in OPEN_STATUSES]
    assert 140 <= len(requests) == summary.privacy_requests <= 160
    assert 35 <= len(open_requests) == summary.open_requests <= 45
    assert statuses["completed"] >= 70 and statuses["rejected"] >= 5 and statuses["cancelled"] >= 3
    assert all(statuses[s] >= 5 for s in OPEN_STATUSES)
    assert {r.type for r in requests} == set(REQUEST_TYPES)
    assert {r.channel for r in requests} == {"web", "store", "support", "email", "phone"}
    assert all((r.store_id is not None) == (r.channel == "store") for r in requests)
    assert all(r.submission_key is None and REFERENCE.match(r.reference) for r in requests)
    assert len({r.reference for r in requests}) == len(requests)
    assert min(r.received_at for r in requests) > now - timedelta(days=14 * 31)
    assert max(r.received_at for r in requests) < now
    # Due dates are the legal ones, extensions counted from receipt.
    for r in requests:
        assert r.due_at == due_at_for(r.received_at, timezone=TIMEZONE)
        if r.extended_due_at is not None:
            assert r.extended_due_at in (
                due_at_for(r.received_at, months=2, timezone=TIMEZONE),
                due_at_for(r.received_at, months=3, timezone=TIMEZONE),
            )
            assert r.extension_reason
    overdue = [r for r in open_requests if r.effective_due_at < now]
    due_this_week = [r for r in open_requests if now <= r.effective_due_at < now + timedelta(days=7)]
    extended = [r for r in open_requests if r.extended_due_at is not None]
    assert len(overdue) >= 3 and len(due_this_week) >= 3 and len(extended) >= 3
    assert not any(r.extended_due_at is not None for r in overdue)
    with engine.connect() as connection:
        staff = {key: id_ for key, id_ in connection.execute(select(StaffUser.email_key, StaffUser.id))}
    agent, dpo = staff[email_key(DEMO_STAFF[0][0])], staff[email_key(DEMO_STAFF[1][0])]
    assignees = Counter(r.assignee_id for r in open_requests)
    assert assignees[agent] >= 5 and assignees[dpo] >= 3 and assignees[None] >= 5
    # Closed ones carry their answer; refusals say why.
    for r in requests:
        assert (r.closed_at is None) == (r.status in OPEN_STATUSES)
        if r.status in ("completed", "rejected"):
            assert r.outcome
    # Nobody erased, restricted, or given requests among the heavy customer's pages.
    camille = _customer_id(engine, DEMO_CUSTOMERS[0])
    assert not any(r.customer_id == camille for r in requests)
    assert (
        _scalar(engine, "SELECT COUNT(*) FROM customer WHERE erased_at IS NOT NULL OR restricted_at IS NOT NULL") == 0
    )


def test_privacy_request_timelines_and_audit_follow_the_workflow(demo: tuple[Engine, DemoSummary]) -> None:
    engine, _ = demo
    requests, timelines = _requests(engine)
    with Session(engine) as session:
        audited = Counter(
            (a.target, a.actor, a.action, a.occurred_at)
            for a in session.scalars(select(AuditEvent).where(AuditEvent.target.like("request:%")))  # type: ignore[union-attr]
        )
    for r in requests:
        steps = timelines[r.id]
        assert steps[0].kind == "received" and steps[0].occurred_at == r.received_at
        status, changes = "received", 0
        for step in steps[1:]:
            assert step.occurred_at >= r.received_at
            status = CHANGES.get(step.kind, status)
            changes += step.kind != "restricted"  # applying a restriction leaves the version to the completion
            assert step.visible_to_customer == (step.kind not in ("assigned", "note")), step.kind
        assert status == r.status, r.reference
        assert r.version == 1 + changes
        if r.closed_at is not None:
            final = [s for s in steps if s.kind in ("completed", "rejected", "cancelled")]
            assert [s.occurred_at for s in final] == [r.closed_at]
        if r.status == "awaiting_customer":
            assert [s.kind for s in steps if s.kind in CHANGES][-1] == "question"
        for step in steps:
            assert audited[(f"request:{r.reference}", step.actor, AUDITED[step.kind], step.occurred_at)] >= 1
        if r.type == "rectification":
            assert set(r.details or {}) == {"field", "proposed_value", "comment"}


def test_privacy_requests_fill_every_month_of_the_report(demo: tuple[Engine, DemoSummary]) -> None:
    engine, _ = demo
    # The twelve full months before `now` (its own month has barely begun).
    with Session(engine) as session:
        report = build_report(
            session, now=ANCHOR, first_month=date(2025, 11, 1), last_month=date(2026, 10, 1), timezone="Europe/Paris"
        )
    assert report.open_total >= 35 and report.overdue >= 3
    assert len(report.per_month) == 12
    for month in report.per_month:
        assert month.durations.answered >= 3, month
        assert month.durations.median_days is not None and month.durations.p90_days is not None
    assert report.overall.p90_days is not None and report.overall.median_days is not None
    assert report.overall.median_days < report.overall.p90_days <= 45
    assert {"web", "store", "email"} <= set(report.by_channel)
    assert len([code for code in report.by_store if code]) >= 3


def test_leo_sees_his_requests_and_the_question_waiting_for_him(demo: tuple[Engine, DemoSummary]) -> None:
    """Signed in as the README's Léo, the customer pages list both his requests and show the agent's question."""
    engine, _ = demo
    leo = _customer_id(engine, DEMO_CUSTOMERS[1])
    with Session(engine) as session:
        mine = requests_of(session, customer_id=leo).requests
    assert [(r.type, r.status) for r in mine] == [("other", "awaiting_customer"), ("access", "completed")]

    from starlette.testclient import TestClient

    from portal.app import create_app
    from tests.web.helpers import sign_in_by_link

    smtp = SMTPServer().start()
    try:
        settings = make_settings(str(engine.url), smtp.port)
        with TestClient(create_app(settings, clock=Clock(ANCHOR)), base_url="http://testserver") as client:
            assert sign_in_by_link(client, smtp, DEMO_CUSTOMERS[1]).status_code == 303
            listing = client.get("/me/requests")
            assert listing.status_code == 200
            assert all(r.reference in listing.text for r in mine)
            page = client.get(f"/me/requests/{mine[0].reference}")
            assert page.status_code == 200
            assert "partenaires de livraison" in page.text  # his question
            assert "retrait en magasin" in page.text  # the agent's, waiting for his answer
            assert 'action="/me/requests/' in page.text
    finally:
        smtp.stop()
