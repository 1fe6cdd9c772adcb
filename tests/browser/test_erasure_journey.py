"""Issue 5's scenario in a real Chromium: a customer asks for erasure; an agent signs in with a TOTP code, finds the
request first in the queue, previews and executes the erasure; the customer receives the completion email, and
asking to sign in again with that address answers that nothing is held.

English throughout (the customer's language and the browsers'), so the checks read msgids, not catalogues.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import pyotp
import pytest
from playwright.sync_api import expect

from portal.db import make_engine, migrate, transaction
from portal.identity import totp
from portal.models import ConsentEvent, PrivacyRequest
from portal.requests.service import file_request
from tests.browser.conftest import Inbox, Session, Sessions
from tests.conftest import TIMEZONE, code_in
from tests.factories import add_page_views, add_purchases, make_customer, make_store
from tests.staff_helpers import make_staff

pytestmark = pytest.mark.browser

CUSTOMER = "noah.bernard@example.org"
AGENT = "agent.erasure@staff.example.com"
AGENT_PASSWORD = "correct horse battery staple"  # noqa: S105
_SECRET: dict[str, str] = {}


@pytest.fixture(scope="module")
def seeded_database(tmp_path_factory: pytest.TempPathFactory) -> str:
    """The customer with purchases, browsing and a consent; an enrolled agent; other open requests due later."""
    path = tmp_path_factory.mktemp("erasure-db") / "portal.sqlite3"
    url = f"sqlite:///{path}"
    migrate(url)
    engine = make_engine(url)
    try:
        noah = make_customer(engine, email=CUSTOMER, first_name="Noah", last_name="Bernard", preferred_language="en")
        add_purchases(engine, noah, make_store(engine, city="Lille"), 3)
        add_page_views(engine, noah, 5)
        with transaction(engine) as session:
            session.add(
                ConsentEvent(
                    customer_id=noah.id,  # type: ignore[arg-type]
                    purpose="email_newsletter",
                    granted=True,
                    occurred_at=datetime(2026, 1, 2, tzinfo=UTC),
                    channel="web",
                    actor="customer",
                    policy_version="2026-01",
                )
            )
        _staff, _password, secret = make_staff(engine, role="agent", email=AGENT, password=AGENT_PASSWORD)
        _SECRET["agent"] = secret
        # Other open requests, extended: due after the new one, so the new one comes first in the queue.
        other = make_customer(engine, email="someone.else@example.org")
        now = datetime.now(UTC)
        with transaction(engine) as session:
            for days in (3, 6):
                filed = file_request(
                    session, customer_id=other.id, type="access", channel="web", now=now - timedelta(days=days),
                    actor="system", timezone=TIMEZONE,
                )  # fmt: skip
                request = session.get(PrivacyRequest, filed.id)
                request.extended_due_at = now + timedelta(days=60)
        with engine.connect() as connection:
            connection.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
    finally:
        engine.dispose()
    return url


def customer_signs_in(session: Session, inbox: Inbox) -> None:
    page = session.page
    session.goto("/")
    before = inbox.count(CUSTOMER)
    page.locator('form[action="/signin"] #email').fill(CUSTOMER)
    page.locator('form[action="/signin"] button[type=submit]').click()
    page.wait_for_url(session.url("/signin/sent"))
    message = inbox.next(CUSTOMER, after=before)
    page.locator('form[action="/signin/code"] #code').fill(code_in(message))
    page.locator('form[action="/signin/code"] button[type=submit]').click()
    page.wait_for_url(session.url("/me"))


def test_erasure_from_request_to_nothing_held(sessions: Sessions, inbox: Inbox) -> None:
    # 1. The customer asks for erasure and confirms.
    customer = sessions.open(locale="en-GB")
    customer_signs_in(customer, inbox)
    customer.goto("/me/requests/new/erasure")
    page = customer.page
    page.locator("#confirm").check()
    before_ack = inbox.count(CUSTOMER)
    page.locator('form[action="/me/requests/new/erasure"] button[type=submit]').click()
    page.wait_for_url(re.compile(r"/me/requests/R-[0-9A-Z]{4}-[0-9A-Z]{4}"))
    reference = re.search(r"R-[0-9A-Z]{4}-[0-9A-Z]{4}", page.url).group(0)  # type: ignore[union-attr]
    acknowledgement = inbox.next(CUSTOMER, after=before_ack)
    assert reference in acknowledgement.text

    # 2. An agent signs in with password and TOTP.
    agent = sessions.open(locale="en-GB")
    staff_page = agent.page
    agent.goto("/staff/requests")  # signed out: sent to the sign-in page, then back here
    staff_page.locator("#email").fill(AGENT)
    staff_page.locator("#password").fill(AGENT_PASSWORD)
    staff_page.locator('form[action="/staff/sign-in"] button[type=submit]').click()
    staff_page.wait_for_url(re.compile(r"/staff/sign-in/code"))
    code = pyotp.TOTP(_SECRET["agent"], interval=totp.STEP_SECONDS).now()
    staff_page.locator("#code").fill(code)
    staff_page.locator('form[action="/staff/sign-in/code"] button[type=submit]').click()
    staff_page.wait_for_url(re.compile(r"/staff/requests$"))

    # 3. The request is the first of the queue; the agent opens it and previews the erasure.
    first = staff_page.locator("table.queue tbody tr").first
    expect(first.locator("th a")).to_have_text(reference)
    expect(first).to_contain_text("n•••••@example.org")
    first.locator("th a").click()
    staff_page.wait_for_url(agent.url(f"/staff/requests/{reference}"))
    expect(staff_page.locator("h1")).to_contain_text(reference)
    staff_page.locator(f'a[href="/staff/requests/{reference}/erasure"]').click()
    plan = staff_page.locator(".erasure-plan table")
    expect(plan).to_contain_text("Deleted")
    expect(plan).to_contain_text("Kept")

    # 4. Confirmed, it runs: the request is completed and the customer record is a tombstone.
    before_completion = inbox.count(CUSTOMER)
    staff_page.locator("#confirm").check()
    staff_page.locator(f'form[action="/staff/requests/{reference}/erase"] button[type=submit]').click()
    staff_page.wait_for_url(agent.url(f"/staff/requests/{reference}?done=erased"))
    expect(staff_page.locator(".notice--success")).to_be_visible()
    expect(staff_page.locator("#customer-title + p + p")).to_contain_text("nothing is held about this person")

    # 5. The completion email reached the address before it was forgotten.
    completion = inbox.next(CUSTOMER, after=before_completion, timeout=15)
    assert reference in completion.text

    # 6. Asking to sign in again: the portal holds nothing for this address any more.
    again = sessions.open(locale="en-GB")
    again.goto("/")
    before_again = inbox.count(CUSTOMER)
    again.page.locator('form[action="/signin"] #email').fill(CUSTOMER)
    again.page.locator('form[action="/signin"] button[type=submit]').click()
    again.page.wait_for_url(again.url("/signin/sent"))
    answer = inbox.next(CUSTOMER, after=before_again)
    assert "We hold no personal data linked to this email address." in answer.text
    for session in (customer, agent, again):
        session.errors.assert_none()
