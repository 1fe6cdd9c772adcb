"""Issue 15's breach scenario in a real Chromium: the DPO records an incident, sees the 72-hour deadline, selects the
customers concerned from a pasted list and from an uploaded file, writes the notice in both languages, previews it
and sends it; the customer receives it in English, and sees it on their overview and in their notice history.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import pyotp
import pytest
from playwright.sync_api import expect

from portal.db import make_engine, migrate
from portal.identity import totp
from tests.browser.conftest import Inbox, Sessions
from tests.browser.test_sign_in_browser import sign_in_by_code
from tests.factories import make_customer
from tests.staff_helpers import make_staff

pytestmark = pytest.mark.browser

CUSTOMER = "ines.martin@example.org"
DPO = "dpo.incidents@staff.example.com"
DPO_PASSWORD = "correct horse battery staple"  # noqa: S105
_SECRET: dict[str, str] = {}


@pytest.fixture(scope="module")
def seeded_database(tmp_path_factory: pytest.TempPathFactory) -> str:
    path = tmp_path_factory.mktemp("incident-db") / "portal.sqlite3"
    url = f"sqlite:///{path}"
    migrate(url)
    engine = make_engine(url)
    try:
        make_customer(engine, email=CUSTOMER, first_name="Inès", preferred_language="en")
        _staff, _password, secret = make_staff(engine, role="dpo", email=DPO, password=DPO_PASSWORD)
        _SECRET["dpo"] = secret
        with engine.connect() as connection:
            connection.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
    finally:
        engine.dispose()
    return url


def test_the_dpo_records_an_incident_and_notifies_a_selection(sessions: Sessions, inbox: Inbox) -> None:
    dpo = sessions.open(locale="en-GB")
    page = dpo.page
    dpo.goto("/staff/incidents")  # signed out: sent to the sign-in page, then back here
    page.locator("#email").fill(DPO)
    page.locator("#password").fill(DPO_PASSWORD)
    page.locator('form[action="/staff/sign-in"] button[type=submit]').click()
    page.wait_for_url(re.compile(r"/staff/sign-in/code"))
    page.locator("#code").fill(pyotp.TOTP(_SECRET["dpo"], interval=totp.STEP_SECONDS).now())
    page.locator('form[action="/staff/sign-in/code"] button[type=submit]').click()
    page.wait_for_url(re.compile(r"/staff/incidents$"))

    discovered = (datetime.now(UTC) - timedelta(days=1)).strftime("%Y-%m-%dT%H:%M")
    page.locator("#discovered_at").fill(discovered)
    page.locator("#nature").fill("A backup of the customer file was left readable online.")
    page.locator('input[name="category_email_address"]').check()
    page.locator("#people_estimate").fill("350")
    page.locator("#consequences").fill("Unwanted or fraudulent emails.")
    page.locator("#measures").fill("The backup was removed and access logs reviewed.")
    page.locator('form[action="/staff/incidents"] button[type=submit]').click()
    page.wait_for_url(re.compile(r"/staff/incidents/INC-[0-9A-Z]{4}-[0-9A-Z]{4}$"))
    expect(page.get_by_test_id("cnil-deadline")).to_contain_text("Notify the CNIL by")

    page.locator("#customers").fill(f"{CUSTOMER}\nnot.a.customer@example.org")
    page.locator('form[action$="/select"]:has(#customers) button[type=submit]').click()
    expect(page.get_by_test_id("selection-result")).to_contain_text("1 customers found, 1 newly selected")
    expect(page.get_by_test_id("selection-result")).to_contain_text("not.a.customer@example.org")

    # The same customer from an uploaded CSV (multipart, its CSRF token as the first field): found, not added twice.
    listing = f"\ufeffemail;name\r\n{CUSTOMER};Martin\r\nnobody@example.org;X\r\n".encode()
    page.locator("#customers_file").set_input_files(
        files=[{"name": "concerned.csv", "mimeType": "text/csv", "buffer": listing}]
    )
    page.locator('form[action$="/select-file"] button[type=submit]').click()
    expect(page.get_by_test_id("selection-result")).to_contain_text("1 customers found, 0 newly selected")
    expect(page.get_by_test_id("selection-result")).to_contain_text("line 3, « nobody@example.org »")

    for language in ("fr", "en"):
        for part in ("nature", "consequences", "measures", "advice"):
            page.locator(f"#{language}_{part}").fill(f"{part} ({language})")
    page.locator('form[action$="/notice"] button[type=submit]').click()
    page.wait_for_url(re.compile(r"done=notice$"))

    page.locator("#preview-customer").fill(CUSTOMER)
    page.locator('form[action$="/preview"] button[type=submit]').click()
    expect(page.get_by_test_id("notice-preview")).to_contain_text("advice (en)")
    page.go_back()

    before = inbox.count(CUSTOMER)
    page.locator('form[action$="/send"] button[type=submit]').click()
    expect(page.get_by_test_id("sent-result")).to_contain_text("1 notices queued")
    email = inbox.next(CUSTOMER, after=before)
    assert "security incident" in email.subject and "advice (en)" in email.text
    expect(page.get_by_test_id("recipient-count")).to_contain_text("1 selected, 1 told")
    dpo.errors.assert_none()

    # The customer, signed in, sees the notice on the overview and reaches the history from it.
    customer = sessions.open(locale="en-GB")
    sign_in_by_code(customer, inbox, CUSTOMER)
    expect(customer.page.get_by_test_id("breach-notice")).to_contain_text("advice (en)")
    customer.page.get_by_test_id("breach-notice").get_by_role("link").click()
    customer.page.wait_for_url(customer.url("/me/notices"))
    expect(customer.page.get_by_test_id("notice-history")).to_contain_text("nature (en)")
    customer.errors.assert_none()
