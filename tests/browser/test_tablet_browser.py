"""The store tablet in Chromium at 1024×768 and 768×1024 with touch: a store account opens an assisted session with
the customer's emailed code (from the real SMTP server), a consent withdrawn and a request filed in store, Finish,
then the back button and the history show nothing; the idle countdown with the browser's clock moved; the request
filed on a customer's behalf. A screenshot of each screen lands in test-artifacts/."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest
from playwright.sync_api import Page, expect
from sqlalchemy import select

from portal.db import make_engine, transaction
from portal.models import ConsentEvent, Customer, PrivacyRequest
from tests.browser.conftest import CAMILLE, EMMA, Inbox, Session, Sessions
from tests.conftest import code_in
from tests.factories import make_store
from tests.staff_helpers import code_at, make_staff

# The same vendored axe-core as the every-page walk (npm axe-core@4.10.3, MPL-2.0).
AXE = Path(__file__).parent / "vendor" / "axe-core-4.10.3.min.js"
AXE_TAGS = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa"]

ORIENTATIONS = {
    "landscape-fr": ({"width": 1024, "height": 768}, "fr-FR", CAMILLE, "Camille"),
    "portrait-en": ({"width": 768, "height": 1024}, "en-GB", EMMA, "Emma"),
}


@pytest.fixture(scope="module")
def store_id(seeded_database: str) -> int:
    engine = make_engine(seeded_database)
    try:
        store = make_store(engine, code="LYO-PD", city="Lyon Part-Dieu")
        assert store.id is not None
        return store.id
    finally:
        engine.dispose()


def store_account(seeded_database: str, store_id: int) -> tuple[int, str, str, str]:
    """A fresh store account (a TOTP step signs in once per account): (id, email, password, secret)."""
    engine = make_engine(seeded_database)
    try:
        staff, password, secret = make_staff(engine, role="store", store_id=store_id, name="Léa Martin")
        assert staff.id is not None
        return staff.id, staff.email, password, secret
    finally:
        engine.dispose()


def open_tablet(sessions: Sessions, viewport: dict[str, int], locale: str) -> Session:
    return sessions.open(viewport=viewport, locale=locale, has_touch=True, is_mobile=False)


def staff_sign_in(session: Session, email: str, password: str, secret: str) -> None:
    page = session.page
    session.goto("/staff/sign-in?next=/staff/tablet")
    page.locator("input[name=email]").fill(email)
    page.locator("input[name=password]").fill(password)
    page.locator("form button[type=submit]").first.click()
    page.wait_for_url("**/staff/sign-in/code**")
    page.locator("input[name=code]").fill(code_at(secret, datetime.now(UTC)))
    page.locator("form button[type=submit]").first.click()
    page.wait_for_url(session.url("/staff/tablet"))


def customer_unlocks(session: Session, inbox: Inbox, email: str, shots: Path, name: str) -> None:
    page = session.page
    page.get_by_test_id("help-customer").tap()
    page.wait_for_url(session.url("/staff/tablet/customer"))
    expect(page.locator("input[name=email]")).to_have_attribute("autocomplete", "off")
    screen(page, shots / f"tablet-{name}-2-email.png")
    before = inbox.count(email)
    page.locator("input[name=email]").fill(email)
    page.locator("main form button[type=submit]").tap()
    page.wait_for_url(session.url("/staff/tablet/code"))
    screen(page, shots / f"tablet-{name}-3-code.png")
    page.locator("input[name=code]").fill(code_in(inbox.next(email, after=before)))
    page.locator("main form button[type=submit]").tap()
    page.wait_for_url(session.url("/me"))


def screen(page: Page, path: Path) -> None:
    """A screenshot of this screen, once axe-core finds nothing serious or critical on it."""
    if not page.evaluate("() => typeof window.axe !== 'undefined'"):
        page.evaluate(AXE.read_text(encoding="utf-8"))  # through DevTools: the page's CSP does not apply
    violations = page.evaluate(
        "async (tags) => (await axe.run(document, {runOnly: {type: 'tag', values: tags}})).violations"
        ".filter((v) => v.impact === 'serious' || v.impact === 'critical')"
        ".map((v) => `${v.id} (${v.impact}): ${v.nodes.slice(0, 3).map((n) => n.target.join(' ')).join(' | ')}`)",
        AXE_TAGS,
    )
    assert violations == [], f"{path.name}: {violations}"
    page.screenshot(path=path, full_page=True)


def touch_targets_are_large(page: Page) -> None:
    selector = "main a.button, main button, header button, main input[type=radio], main input[type=checkbox]"
    small = page.evaluate(
        """(selector) => [...document.querySelectorAll(selector)]
             .filter(el => el.offsetParent !== null)
             .map(el => { const r = (el.closest('label') || el).getBoundingClientRect();
                          return [el.outerHTML.slice(0, 80), r.width, r.height]; })
             .filter(([, w, h]) => w < 44 || h < 44)""",
        selector,
    )
    assert small == [], small


@pytest.mark.parametrize("orientation", list(ORIENTATIONS))
def test_the_assisted_flow_on_a_touch_tablet(
    sessions: Sessions, inbox: Inbox, artifacts: Path, seeded_database: str, store_id: int, orientation: str
) -> None:
    viewport, locale, email, first_name = ORIENTATIONS[orientation]
    staff_id, staff_email, password, secret = store_account(seeded_database, store_id)
    session = open_tablet(sessions, viewport, locale)
    page = session.page
    staff_sign_in(session, staff_email, password, secret)
    expect(page.locator("h1")).to_contain_text("Lyon Part-Dieu")
    touch_targets_are_large(page)
    screen(page, artifacts / f"tablet-{orientation}-1-home.png")

    customer_unlocks(session, inbox, email, artifacts, orientation)
    expect(page.locator("h1")).to_contain_text(first_name)
    expect(page.get_by_test_id("tablet-finish")).to_be_visible()
    touch_targets_are_large(page)
    screen(page, artifacts / f"tablet-{orientation}-4-overview.png")

    # A consent given then withdrawn, in store.
    session.goto("/me/consents")
    page.locator("#purpose-sms_offers-button").tap()
    expect(page.locator("#purpose-sms_offers-button")).to_have_attribute("class", "button consent__button")
    page.locator("#purpose-sms_offers-button").tap()
    expect(page.locator("#purpose-sms_offers-button")).to_have_attribute(
        "class", "button button--primary consent__button"
    )
    screen(page, artifacts / f"tablet-{orientation}-5-consents.png")
    session.goto("/me/profile")  # nothing the customer types is remembered by the browser
    assert page.evaluate(
        "() => [...document.querySelectorAll('main input:not([type=hidden])')].every(f => f.autocomplete === 'off')"
    )

    # A request filed in store.
    session.goto("/me/requests/new/objection")
    page.locator("#confirm").check()
    page.locator("main form button[type=submit]").tap()
    page.wait_for_url("**/me/requests/R-*")
    screen(page, artifacts / f"tablet-{orientation}-6-request.png")

    engine = make_engine(seeded_database)
    try:
        with transaction(engine) as db:
            customer = db.scalars(select(Customer).where(Customer.email == email)).one()
            events = db.scalars(select(ConsentEvent).where(ConsentEvent.customer_id == customer.id)).all()
            assert [(e.channel, e.actor, e.granted) for e in events[-2:]] == [
                ("store", f"staff:{staff_id}", True),
                ("store", f"staff:{staff_id}", False),
            ]
            filed = db.scalars(
                select(PrivacyRequest).where(
                    PrivacyRequest.customer_id == customer.id, PrivacyRequest.type == "objection"
                )
            ).one()
            assert (filed.channel, filed.store_id) == ("store", store_id)
    finally:
        engine.dispose()

    # Finish, then nothing of the customer: not the page, not the back button, not the history.
    page.get_by_test_id("tablet-finish").tap()
    page.wait_for_url("**/staff/tablet?finished=1")
    screen(page, artifacts / f"tablet-{orientation}-7-finished.png")
    for _step in range(4):
        page.go_back()
        assert first_name not in page.content() and email not in page.content()
        assert "/me" not in page.url or page.url.endswith("/staff/tablet?ended=1")
    history_length = page.evaluate("history.length")
    assert history_length >= 1
    session.errors.assert_none()


def test_the_countdown_warns_then_finishes_with_the_clock_moved(
    sessions: Sessions, inbox: Inbox, artifacts: Path, seeded_database: str, store_id: int
) -> None:
    _staff_id, staff_email, password, secret = store_account(seeded_database, store_id)
    session = open_tablet(sessions, {"width": 1024, "height": 768}, "en-GB")
    page = session.page
    page.clock.install()
    staff_sign_in(session, staff_email, password, secret)
    customer_unlocks(session, inbox, EMMA, artifacts, "countdown")
    countdown = page.locator("#tablet-countdown")
    expect(countdown).to_be_hidden()
    page.clock.fast_forward("02:31")
    expect(countdown).to_be_visible()
    expect(countdown).to_contain_text("this session ends in")
    screen(page, artifacts / "tablet-countdown.png")
    page.get_by_test_id("tablet-continue").tap()
    expect(countdown).to_be_hidden()
    page.clock.fast_forward("03:01")
    page.wait_for_url("**/staff/tablet?finished=1")
    assert "Emma" not in page.content()
    session.errors.assert_none()


def test_a_request_on_the_customers_behalf(
    sessions: Sessions, artifacts: Path, seeded_database: str, store_id: int
) -> None:
    _staff_id, staff_email, password, secret = store_account(seeded_database, store_id)
    session = open_tablet(sessions, {"width": 768, "height": 1024}, "fr-FR")
    page = session.page
    staff_sign_in(session, staff_email, password, secret)
    session.goto("/staff/tablet/on-behalf")
    page.locator("input[name=document_kind][value=passport]").check()
    page.locator("input[name=identity_checked]").check()
    page.locator("input[name=type][value=access]").check()
    page.locator("#last_name").fill("Roux")
    page.locator("input[name=answer_by][value=post]").check()
    page.locator("#answer_contact").fill("12 rue de la République, 69002 Lyon")
    touch_targets_are_large(page)
    screen(page, artifacts / "tablet-on-behalf-form.png")
    page.locator("main form button[type=submit]").tap()
    expect(page.locator("h1")).to_have_text("Demande déposée")
    assert "Roux" not in page.content() and "République" not in page.content()
    screen(page, artifacts / "tablet-on-behalf-filed.png")
    session.goto("/staff/tablet/log")
    expect(page.locator("table")).to_contain_text("identité vérifiée en magasin")
    screen(page, artifacts / "tablet-log.png")
    session.errors.assert_none()
