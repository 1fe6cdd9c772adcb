"""The charts in a real Chromium, at 360 px (a phone) and 1280 px: each chart's screenshot saved in
test-artifacts/, axe-core finds nothing serious or critical on the pages that hold them, the page never scrolls
sideways, no CSP violation is reported, and the DPO's dashboard prints without its menus (a PDF is saved too)."""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from playwright.sync_api import Page, expect

from portal.browsing.records import record_page_views
from portal.db import make_engine, migrate, transaction
from tests.browser.conftest import Inbox, Session, Sessions
from tests.browser.test_every_page_browser import _axe, _horizontal_overflow
from tests.browser.test_sign_in_browser import sign_in_by_code
from tests.browsing_factories import record_consent
from tests.conftest import TIMEZONE
from tests.factories import add_purchases, make_customer, make_store
from tests.staff_helpers import code_at, make_staff
from tests.unit.backoffice.test_queue import file

pytestmark = pytest.mark.browser

CHARTED = "charted@example.com"
WIDTHS = (360, 1280)
PARIS = ZoneInfo(TIMEZONE)
_DPO: dict[str, tuple[str, str, str]] = {}
CHARTS = {
    "/me/purchases": ["chart-spending-years", "chart-spending-stores"],
    "/me/browsing": ["chart-browsing-days"],
}
DASHBOARD = [
    "chart-received",
    "chart-on-time",
    "chart-answer-days",
    "chart-extensions",
    "chart-due-weeks",
    "chart-consent-email_newsletter",
    "chart-consent-sms_offers",
]


@pytest.fixture(scope="module")
def seeded_database(tmp_path_factory: pytest.TempPathFactory) -> str:
    """A customer with three years of purchases in three shops and the web shop, a browsing history with a gap in
    consent; a year and more of requests and consents for the dashboard; a DPO account."""
    path = tmp_path_factory.mktemp("charts-db") / "portal.sqlite3"
    url = f"sqlite:///{path}"
    migrate(url)
    engine = make_engine(url)
    now = datetime.now(UTC)
    today = now.astimezone(PARIS).date()
    try:
        customer = make_customer(engine, email=CHARTED, first_name="Camille", preferred_language="fr")
        shops = [make_store(engine, city=city) for city in ("Lyon", "Paris", "Nantes")]
        web = make_store(engine, code="WEB", kind="web", city="")
        for n, (store, count) in enumerate(((shops[0], 30), (shops[1], 12), (shops[2], 5), (web, 60))):
            add_purchases(engine, customer, store, count, start=datetime(2023 + n % 3, 2, 1, 10, tzinfo=UTC))
        # Consent given eight months ago, withdrawn for six weeks, given again: views only while it stood.
        given, withdrawn, again = today - timedelta(days=240), today - timedelta(days=150), today - timedelta(days=108)
        record_consent(engine, customer, granted=True, at=_moment(given, 8))
        record_consent(engine, customer, granted=False, at=_moment(withdrawn, 20))
        record_consent(engine, customer, granted=True, at=_moment(again, 8))
        views = []
        day = given
        while day <= today:
            if day <= withdrawn or day >= again:
                views += [
                    (customer.id, _moment(day, 9) + timedelta(minutes=n), f"https://shop.example/p/{n}", "Produit")
                    for n in range(day.toordinal() * 7 % 23)
                ]
            day += timedelta(days=1)
        with transaction(engine) as session:
            record_page_views(session, views, timezone=TIMEZONE)  # type: ignore[arg-type]

        for months_ago in range(14):
            received = now - timedelta(days=30 * months_ago + 3)
            for n in range(months_ago % 4 + 1):
                kind = ("access", "erasure", "rectification", "objection")[n]
                if months_ago == 0 or n == 3:
                    file(engine, received_at=received, type=kind)  # open
                else:
                    took = 4 + 9 * n + months_ago
                    extended = received + timedelta(days=90) if n == 2 else None
                    file(engine, received_at=received, type=kind, status="completed",
                         closed_at=received + timedelta(days=took), extended_due_at=extended)  # fmt: skip
            for n in range(months_ago % 5 + 2):
                someone = make_customer(engine, email=f"consent{months_ago}-{n}@example.com")
                record_consent(engine, someone, granted=True, at=received, purpose="email_newsletter")
                record_consent(engine, someone, granted=n % 2 == 0, at=received, purpose="sms_offers")
                if n % 3 == 0:
                    later = received + timedelta(days=10)
                    record_consent(engine, someone, granted=False, at=later, purpose="email_newsletter")
        staff, password, secret = make_staff(engine, role="dpo")
        _DPO["dpo"] = (staff.email, password, secret)
        with engine.connect() as connection:
            connection.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
    finally:
        engine.dispose()
    return url


def _moment(day: date, hour: int) -> datetime:
    return datetime.combine(day, time(hour), tzinfo=PARIS).astimezone(UTC)


def _sign_in_dpo(session: Session) -> None:
    email, password, secret = _DPO["dpo"]
    page = session.page
    session.goto("/staff/sign-in")
    page.locator("#email").fill(email)
    page.locator("#password").fill(password)
    page.locator('form[action="/staff/sign-in"] button[type=submit]').click()
    page.wait_for_url(re.compile(r"/staff/sign-in/code"))
    page.locator("#code").fill(code_at(secret, datetime.now(UTC)))
    page.locator('form[action="/staff/sign-in/code"] button[type=submit]').click()
    page.wait_for_url(re.compile(r"/staff(/requests)?$"))


def _check_charts(page: Page, ids: list[str], width: int, language: str, artifacts: Path) -> list[str]:
    problems = []
    for chart in ids:
        figure = page.locator(f'figure[data-chart="{chart}"]')
        expect(figure).to_be_visible()
        svg = figure.locator("svg[role=img]")
        assert svg.get_attribute("aria-labelledby") == f"{chart}-title {chart}-desc"
        figure.scroll_into_view_if_needed()
        figure.screenshot(path=artifacts / f"chart-{chart.removeprefix('chart-')}-{width}-{language}.png")
    overflow = _horizontal_overflow(page)
    if overflow:
        problems.append(f"{page.url} at {width} px scrolls sideways: {overflow}")
    problems += [f"{page.url} at {width} px: {v}" for v in _axe(page)]
    return problems


@pytest.mark.parametrize("width", WIDTHS)
def test_the_customers_charts_on_a_phone_and_a_desktop(
    width: int, sessions: Sessions, inbox: Inbox, artifacts: Path
) -> None:
    session = sessions.open(viewport={"width": width, "height": 900}, locale="fr-FR")
    sign_in_by_code(session, inbox, CHARTED)
    problems = []
    for language in ("fr", "en"):
        session.goto(f"/lang/{language}?next=/me")
        for path, ids in CHARTS.items():
            session.goto(path)
            problems += _check_charts(session.page, ids, width, language, artifacts)
    assert problems == []
    session.errors.assert_none()  # a CSP violation (inline style or script) is reported as a console error


@pytest.mark.parametrize("width", WIDTHS)
def test_the_dpo_dashboard_on_a_phone_and_a_desktop(width: int, sessions: Sessions, artifacts: Path) -> None:
    session = sessions.open(viewport={"width": width, "height": 900})
    _sign_in_dpo(session)
    problems = []
    for language in ("fr", "en"):
        session.goto(f"/lang/{language}?next=/staff/reports")
        problems += _check_charts(session.page, DASHBOARD, width, language, artifacts)
    assert problems == []
    session.errors.assert_none()


def test_the_dashboard_prints_without_its_menus(sessions: Sessions, artifacts: Path) -> None:
    session = sessions.open(viewport={"width": 1280, "height": 900})
    _sign_in_dpo(session)
    session.goto("/lang/en?next=/staff/reports")
    page = session.page
    page.emulate_media(media="print")
    expect(page.locator(".site-header")).to_be_hidden()
    expect(page.locator("form.queue-filters")).to_be_hidden()
    expect(page.locator('figure[data-chart="chart-received"] svg')).to_be_visible()
    page.pdf(path=artifacts / "reports-print.pdf", format="A4", print_background=True)
    assert (artifacts / "reports-print.pdf").stat().st_size > 10_000
    session.errors.assert_none()
