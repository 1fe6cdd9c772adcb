"""Every page, for everyone who opens it, in both languages: it fits the screen (no horizontal page scroll at 360,
768 and 1024 px: a wide table scrolls in its own box) and axe-core finds nothing serious or critical, also while a
secondary button is hovered or focused.

The pages come from the router's table through the contract of tests/web/test_contract.py, so a new page is walked
here as soon as it has its contract entry.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from playwright.sync_api import Page

from portal.app import create_app
from portal.db import make_engine, migrate, transaction
from portal.incidents.service import record_incident, save_notice
from portal.portability.service import link_token
from portal.requests.service import file_request
from tests.browser.conftest import Inbox, LiveServer, Session, Sessions
from tests.conftest import TEST_SECRET, TIMEZONE, code_in, make_settings
from tests.factories import add_page_views, add_purchases, make_customer, make_store
from tests.incident_factories import notice_sent
from tests.staff_helpers import code_at, make_staff
from tests.web.test_contract import (
    CUSTOMER,
    INCIDENT_FACTS,
    INCIDENT_NOTICE,
    PAGE,
    STAFF_ROLES,
    VISITOR,
    Account,
    World,
    _get_routes,
    _urls,
    _visit,
)

pytestmark = pytest.mark.browser

CAMILLE = "camille.layout@example.com"
WIDTHS = (360, 768, 1024)
AXE = Path(__file__).parent / "vendor" / "axe-core-4.10.3.min.js"
AXE_SHA256 = "880970c081707360e64f34cea25ff91892f5bc95675b0776925b9709dd8a68bb"  # npm axe-core@4.10.3, axe.min.js
AXE_TAGS = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa"]
# Secondary actions: their text and border against the page must stay readable hovered and focused too.
SECONDARY_BUTTONS = ".button:not(.button--primary):not(.button--danger)"
_WORLD: dict[str, World] = {}


@pytest.fixture(scope="module")
def seeded_database(tmp_path_factory: pytest.TempPathFactory) -> str:
    """A customer with every kind of data and two open requests; one staff account per role."""
    path = tmp_path_factory.mktemp("every-page-db") / "portal.sqlite3"
    url = f"sqlite:///{path}"
    migrate(url)
    engine = make_engine(url)
    try:
        camille = make_customer(engine, email=CAMILLE, first_name="Camille", retailer_ref="CRM-CAMILLE")
        store = make_store(engine, city="Lyon")
        purchase_ids = add_purchases(engine, camille, store, 30)
        add_page_views(engine, camille, 40)
        now = datetime.now(UTC)
        with transaction(engine) as session:
            filed = {
                type: file_request(
                    session, customer_id=camille.id, type=type, channel="web", now=now - timedelta(days=2),
                    actor=f"customer:{camille.id}", timezone=TIMEZONE,
                ).reference
                for type in ("erasure", "access")
            }  # fmt: skip
            incident = record_incident(session, facts=INCIDENT_FACTS, actor="staff:1", now=now)
            save_notice(session, reference=incident, notice=INCIDENT_NOTICE, actor="staff:1", now=now)
            notice_sent(session, reference=incident, customer=CAMILLE, now=now)  # on /me and /me/notices
        staff: dict[str, Account] = {
            role: make_staff(engine, role=role, store_id=store.id if role == "store" else None) for role in STAFF_ROLES
        }
        _WORLD["world"] = World(
            customer=camille,
            purchase_id=purchase_ids[0],
            reference=filed["erasure"],
            staff=staff,
            api_key="",
            download_token=link_token(TEST_SECRET, reference=filed["access"], expires_at=now + timedelta(days=7)),
            sign_in_token="expired-or-forged",  # noqa: S106  (the page that says the link cannot be used)
            email_change_token="expired-or-forged",  # noqa: S106
            incident=incident,
        )
        with engine.connect() as connection:
            connection.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
    finally:
        engine.dispose()
    return url


def _pages_of(who: str, seeded_database: str) -> Iterator[str]:
    """Every URL of a page `who` opens, from the router's table."""
    app = create_app(make_settings(seeded_database, smtp_port=1))
    try:
        for route in _get_routes(app):
            visit = _visit(route)
            if visit.who == who and visit.kind == PAGE:
                yield from _urls(route, _WORLD["world"])
    finally:
        app.state.portal.dispose()


def _sign_in(session: Session, who: str, inbox: Inbox) -> None:
    page = session.page
    if who == CUSTOMER:
        session.goto("/signin")
        before = inbox.count(CAMILLE)
        page.locator('form[action="/signin"] #email').fill(CAMILLE)
        page.locator('form[action="/signin"] button[type=submit]').click()
        page.wait_for_url(session.url("/signin/sent"))
        page.locator('form[action="/signin/code"] #code').fill(code_in(inbox.next(CAMILLE, after=before)))
        page.locator('form[action="/signin/code"] button[type=submit]').click()
        page.wait_for_url(session.url("/me"))
    elif who in STAFF_ROLES:
        staff, password, secret = _WORLD["world"].staff[who]
        session.goto("/staff/sign-in")
        page.locator("#email").fill(staff.email)
        page.locator("#password").fill(password)
        page.locator('form[action="/staff/sign-in"] button[type=submit]').click()
        page.wait_for_url(re.compile(r"/staff/sign-in/code"))
        page.locator("#code").fill(code_at(secret, datetime.now(UTC)))
        page.locator('form[action="/staff/sign-in/code"] button[type=submit]').click()
        page.wait_for_url(re.compile(r"/staff(/requests|/tablet)?$"))


def _horizontal_overflow(page: Page) -> str | None:
    """What sticks out of the page on the right, when the page scrolls sideways."""
    return page.evaluate(
        """() => {
          const width = document.documentElement.clientWidth;
          if (document.documentElement.scrollWidth <= width) return null;
          const clipped = (e) => {
            for (let a = e.parentElement; a && a !== document.body; a = a.parentElement) {
              if (getComputedStyle(a).overflowX !== 'visible') return true;
            }
            return false;
          };
          const culprits = [...document.querySelectorAll('body *')]
            .filter((e) => e.getBoundingClientRect().right > width + 1 && !clipped(e))
            .filter((e) => !e.parentElement || e.parentElement.getBoundingClientRect().right <= width + 1)
            .slice(0, 3)
            .map((e) => e.tagName.toLowerCase() + (e.className ? '.' + String(e.className).split(' ').join('.') : ''));
          return `${document.documentElement.scrollWidth}px wide: ${culprits.join(', ')}`;
        }"""
    )


def _axe(page: Page, context: str | None = None, rules: list[str] | None = None) -> list[str]:
    """axe-core's serious and critical violations on the page (or the elements `context` selects)."""
    if not page.evaluate("() => typeof window.axe !== 'undefined'"):
        page.evaluate(AXE.read_text(encoding="utf-8"))  # through DevTools: the page's CSP does not apply
    options = (
        {"runOnly": {"type": "rule", "values": rules}} if rules else {"runOnly": {"type": "tag", "values": AXE_TAGS}}
    )
    violations = page.evaluate(
        "async ([context, options]) => (await axe.run(context || document, options)).violations"
        ".filter((v) => v.impact === 'serious' || v.impact === 'critical')"
        ".map((v) => `${v.id} (${v.impact}): ${v.nodes.slice(0, 3).map((n) => n.target.join(' ')).join(' | ')}`)",
        [context, options],
    )
    return list(violations)


def _secondary_button_states(page: Page) -> list[str]:
    problems = []
    buttons = page.locator(SECONDARY_BUTTONS)
    for index in range(min(buttons.count(), 6)):
        button = buttons.nth(index)
        if not button.is_visible():
            continue
        selector = f"{SECONDARY_BUTTONS} >> nth={index}"
        button.hover()
        problems += [f"hovered {selector}: {v}" for v in _axe(page, None, ["color-contrast"])]
        button.focus()
        page.mouse.move(0, 0)
        problems += [f"focused {selector}: {v}" for v in _axe(page, None, ["color-contrast"])]
    return problems


@pytest.mark.parametrize("who", [VISITOR, CUSTOMER, *STAFF_ROLES])
def test_every_page_fits_the_screen_and_passes_axe_in_both_languages(
    who: str, sessions: Sessions, inbox: Inbox, live_server: LiveServer, seeded_database: str
) -> None:
    assert hashlib.sha256(AXE.read_bytes()).hexdigest() == AXE_SHA256
    urls = list(_pages_of(who, seeded_database))
    assert urls, f"no page for {who}"
    session = sessions.open(viewport={"width": WIDTHS[-1], "height": 800})
    _sign_in(session, who, inbox)
    page, problems = session.page, []
    for language in ("fr", "en"):
        page.goto(session.url(f"/lang/{language}?next=/privacy"))
        for url in urls:
            response = page.goto(session.url(url))
            where = f"{who}, {language}, {url}"
            if response is None or response.status >= 500:
                problems.append(f"{where}: answered {response and response.status}")
                continue
            for width in WIDTHS:
                page.set_viewport_size({"width": width, "height": 800})
                overflow = _horizontal_overflow(page)
                if overflow:
                    problems.append(f"{where} at {width} px: the page scrolls sideways, {overflow}")
            problems += [f"{where}: {v}" for v in _axe(page)]
            problems += [f"{where}: {v}" for v in _secondary_button_states(page)]
            page.set_viewport_size({"width": WIDTHS[-1], "height": 800})
    assert not problems, "\n".join(problems)
