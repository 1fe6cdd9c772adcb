"""Cost follows what is shown, not what has accumulated: every customer page sends the same SQL statements for a
customer with 10 records of each kind as for one with 10,000 (purchases, page views, consent events, privacy
requests, profile changes). A count, not a timing: deterministic on SQLite and PostgreSQL.

/me/consents and /me/requests are counted where their pagination is built (issue 17, another part).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import UTC, date, datetime, timedelta

import pytest
from itsdangerous import Signer
from sqlalchemy import Engine, insert, select
from starlette.testclient import TestClient

from portal.app import create_app
from portal.browsing.service import MAX_VIEW_ID, ViewCursor
from portal.db import transaction
from portal.identity.sessions import open_session
from portal.models import ConsentEvent, Customer, PrivacyRequest, ProfileChange, Purchase
from portal.settings import Settings
from portal.web.middleware import cookie_names
from tests.browsing_factories import add_daily_views, record_consent
from tests.conftest import Clock, SMTPServer, csrf_from, make_settings
from tests.factories import make_customer, make_store
from tests.purchase_factories import NewPurchase, insert_purchases
from tests.sql_count import app_engines, counting_statements
from tests.staff_helpers import make_staff, sign_in_staff

FEW, MANY = 10, 10_000
LAST_DAY = date(2026, 11, 20)
# Noon on the last day, Paris: the views of that morning (add_daily_views starts at 08:00) are older.
MIDDAY_CURSOR = ViewCursor(datetime(2026, 11, 20, 11, tzinfo=UTC), MAX_VIEW_ID)
PURPOSES = ("email_marketing", "sms_marketing", "browsing_analytics", "partners")


def _history(engine: Engine, customer: Customer, count: int) -> None:
    """`count` records of each kind the customer pages read, written in bulk."""
    assert customer.id is not None
    customer_id = customer.id
    store, web = make_store(engine), make_store(engine, kind="web")
    start = datetime(2026, 11, 20, 9, tzinfo=UTC)
    insert_purchases(
        engine,
        [
            NewPurchase(
                customer_id=customer_id,
                store_id=(store if n % 3 else web).id,  # type: ignore[arg-type]
                channel="in_store" if n % 3 else "web",
                purchased_at=start - timedelta(hours=7 * n),
                receipt_number=f"C{customer_id}-{n:06d}",
            )
            for n in range(count)
        ],
    )
    record_consent(engine, customer, granted=True, at=datetime(2020, 1, 1, tzinfo=UTC))
    # One view a day for ten days, or ten a day for a thousand days: both have older days than the newest ones.
    days = min(count, 1_000)
    add_daily_views(engine, customer, days=days, per_day=count // days, last_day=LAST_DAY)
    with transaction(engine) as session:
        session.execute(
            insert(ConsentEvent),
            [
                {
                    "customer_id": customer_id,
                    "purpose": PURPOSES[n % len(PURPOSES)],
                    "granted": n % 2 == 0,
                    "occurred_at": datetime(2021, 1, 1, tzinfo=UTC) + timedelta(minutes=n),
                    "channel": "web",
                    "actor": "customer",
                    "policy_version": "2026-01",
                }
                for n in range(count)
            ],
        )
        session.execute(
            insert(PrivacyRequest),
            [
                {
                    "reference": f"Q{customer_id:03d}{n:06d}",
                    "customer_id": customer_id,
                    "type": "access",
                    "channel": "web",
                    "status": "completed",
                    "received_at": datetime(2022, 1, 1, tzinfo=UTC) + timedelta(hours=n),
                    "due_at": datetime(2022, 2, 1, tzinfo=UTC) + timedelta(hours=n),
                    "closed_at": datetime(2022, 1, 2, tzinfo=UTC) + timedelta(hours=n),
                    "version": 1,
                }
                for n in range(count)
            ],
        )
        session.execute(
            insert(ProfileChange),
            [
                {
                    "customer_id": customer_id,
                    "field": ("phone", "city", "first_name")[n % 3],
                    "old_value": None,
                    "new_value": f"value {n}",
                    "changed_at": datetime(2022, 1, 1, tzinfo=UTC) + timedelta(minutes=n),
                    "actor": "customer",
                    "channel": "web",
                }
                for n in range(count)
            ],
        )


def _oldest_purchase(engine: Engine, customer: Customer) -> int:
    with transaction(engine) as session:
        ids = session.scalars(
            select(Purchase.id).where(Purchase.customer_id == customer.id).order_by(Purchase.purchased_at)
        ).all()
    return int(ids[len(ids) // 2])  # a purchase in the middle of the history: older ones follow it


# Each page, given the customer's middle purchase (a receipt, and the cursor of a deep page of the list).
PAGES: dict[str, Callable[[int], str]] = {
    "overview": lambda _purchase: "/me",
    "profile": lambda _purchase: "/me/profile",
    "purchases, first page": lambda _purchase: "/me/purchases",
    "purchases, a deep page": lambda purchase: f"/me/purchases?after={purchase}",
    "purchases, filtered": lambda _purchase: "/me/purchases?channel=web&year=2026",
    "receipt": lambda purchase: f"/me/purchases/{purchase}",
    "browsing, newest days": lambda _purchase: "/me/browsing",
    "browsing, older days": lambda _purchase: f"/me/browsing?before={LAST_DAY.isoformat()}",
    "browsing, the rest of a day": lambda _purchase: f"/me/browsing?after={MIDDAY_CURSOR.token()}",
    "processing": lambda _purchase: "/me/processing",
    "download": lambda _purchase: "/me/download",
    "new request": lambda _purchase: "/me/requests/new",
}


@pytest.fixture
def quiet_settings(database_url: str, smtp: SMTPServer) -> Settings:
    # No outbox worker in the process: its polling would be counted with the page's statements.
    return make_settings(database_url, smtp.port, run_worker=False)


@pytest.fixture
def quiet_client(quiet_settings: Settings, clock: Clock) -> Iterator[TestClient]:
    with TestClient(create_app(quiet_settings, clock=clock), base_url="http://testserver") as client:
        yield client


def _sign_in(client: TestClient, settings: Settings, clock: Clock, customer: Customer) -> None:
    """A customer session opened as sign-in opens it (the sign-in flow itself is tested in tests/web/identity)."""
    engine = client.app.state.portal.engine  # type: ignore[attr-defined]
    with transaction(engine) as session:
        raw_id = open_session(session, settings=settings, kind="customer", customer_id=customer.id, now=clock())
    cookie = Signer(settings.secret_key, salt="portal.session").sign(raw_id).decode()
    client.cookies.clear()
    client.cookies.set(cookie_names(settings)[0], cookie)


def _statements_per_page(
    client: TestClient, settings: Settings, clock: Clock, customer: Customer
) -> dict[str, list[str]]:
    engine = client.app.state.portal.engine  # type: ignore[attr-defined]
    _sign_in(client, settings, clock, customer)
    purchase = _oldest_purchase(engine, customer)
    counted = {}
    for name, path in PAGES.items():
        url = path(purchase)
        client.get(url)  # the first request of a page may load what every later one reuses
        with counting_statements(*app_engines(client.app)) as statements:  # type: ignore[arg-type]
            response = client.get(url, follow_redirects=False)
        assert response.status_code == 200, (name, response.status_code)
        counted[name] = list(statements)
    return counted


def test_every_customer_page_sends_the_same_statements_for_10_and_for_10000_records(
    quiet_client: TestClient, quiet_settings: Settings, clock: Clock
) -> None:
    engine = quiet_client.app.state.portal.engine  # type: ignore[attr-defined]
    few = make_customer(engine, email="few@example.com")
    many = make_customer(engine, email="many@example.com")
    _history(engine, few, FEW)
    _history(engine, many, MANY)

    with_few = _statements_per_page(quiet_client, quiet_settings, clock, few)
    with_many = _statements_per_page(quiet_client, quiet_settings, clock, many)

    assert set(with_few) == set(PAGES)
    for name in PAGES:
        assert with_few[name], f"{name}: no statement counted (the page reads nothing?)"
        assert len(with_many[name]) == len(with_few[name]), (name, with_few[name], with_many[name])
        assert with_many[name] == with_few[name], name  # the same statements, not only as many


@pytest.mark.parametrize("page", ["overview", "purchases, first page", "browsing, newest days"])
def test_the_pages_read_what_the_heavy_customer_holds(
    quiet_client: TestClient, quiet_settings: Settings, clock: Clock, page: str
) -> None:
    # The count above compares real pages: the heavy customer's pages show the heavy history.
    engine = quiet_client.app.state.portal.engine  # type: ignore[attr-defined]
    many = make_customer(engine, email="many@example.com")
    _history(engine, many, MANY)
    _sign_in(quiet_client, quiet_settings, clock, many)
    html = quiet_client.get(PAGES[page](0), headers={"accept-language": "en"}).text
    assert "10,000" in html


def _kinds(statements: list[str]) -> list[str]:
    """Each statement's verb and table: `SELECT session`, `INSERT audit_event` …"""
    kinds = []
    for statement in statements:
        words = statement.split()
        verb = words[0].upper()
        table = words[words.index("FROM") + 1] if verb == "SELECT" else words[2] if verb == "INSERT" else words[1]
        kinds.append(f"{verb} {table}")
    return kinds


def test_filing_a_request_and_a_staff_note_send_exactly_their_statements(
    quiet_client: TestClient, quiet_settings: Settings, clock: Clock
) -> None:
    # Issue 17's writes, counted rather than timed: one look-up of the session (with the staff member, for staff),
    # what the write must check, and its rows. A statement more is a cost every such request pays.
    engine = quiet_client.app.state.portal.engine  # type: ignore[attr-defined]
    customer = make_customer(engine, email="asks@example.com")
    _sign_in(quiet_client, quiet_settings, clock, customer)
    form = quiet_client.get("/me/requests/new/other")
    token = csrf_from(form.text)
    with counting_statements(*app_engines(quiet_client.app)) as filing:  # type: ignore[arg-type]
        filed = quiet_client.post(
            "/me/requests/new/other",
            data={"csrf_token": token, "message": "Where does my data go?", "submission_key": "k1"},
            follow_redirects=False,
        )
    assert filed.status_code == 303, filed.text
    assert _kinds(filing) == [
        "SELECT session",  # the session (its staff columns empty)
        "SELECT customer",  # still here, and how to write to them
        "SELECT privacy_request",  # the form's submission key, new
        "SELECT privacy_request",  # the customer's open requests (the limits)
        "INSERT rate_limit",  # the day's count
        "INSERT privacy_request",  # the request, its reference checked by the insert itself
        "INSERT request_event",
        "INSERT audit_event",
        "INSERT outbox_message",  # the acknowledgement
    ]

    staff, password, secret = make_staff(engine)
    quiet_client.cookies.clear()
    sign_in_staff(quiet_client, staff.email, password, secret, clock)
    reference = filed.headers["location"].rsplit("/", 1)[-1].split("?")[0]
    page = quiet_client.get(f"/staff/requests/{reference}")
    assert page.status_code == 200, page.text
    with counting_statements(*app_engines(quiet_client.app)) as noting:  # type: ignore[arg-type]
        noted = quiet_client.post(
            f"/staff/requests/{reference}/note",
            data={"csrf_token": csrf_from(page.text), "note": "Called back", "version": "1"},
            follow_redirects=False,
        )
    assert noted.status_code == 303, noted.text
    assert _kinds(noting) == [
        "SELECT session",  # the session and the staff member, one statement
        "SELECT privacy_request",  # what the step decides on
        "UPDATE privacy_request",  # the new version, checked against the one read
        "INSERT request_event",
        "INSERT audit_event",
    ]
