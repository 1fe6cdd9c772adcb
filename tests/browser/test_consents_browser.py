"""The consent page in a real Chromium: withdraw with one click each (htmx swaps the row, the live region says
so), delete the browsing history when offered, read the history; the same without JavaScript; with the keyboard
only; give consent again; and withdraw every marketing consent at once.

Each scenario signs in a customer of its own (sign-in emails are rate-limited per address), seeded here with
consents given in a store before the policy version the portal publishes. French wording is checked only where
the catalogue translates it; elsewhere elements are found by structure (ids, data-state, form actions).
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from pathlib import Path

import pytest
from playwright.sync_api import Page, expect

from portal.db import make_engine, transaction
from portal.models import ConsentEvent
from tests.browser.conftest import Inbox, Session, Sessions
from tests.browser.test_sign_in_browser import normalised, sign_in_by_code
from tests.factories import add_page_views, make_customer

pytestmark = pytest.mark.browser

LEA = "lea.morel@example.fr"  # French, htmx: withdraws SMS offers and browsing analytics, deletes her history
HUGO = "hugo.petit@example.fr"  # French, no JavaScript: the same with plain form posts
INES = "ines.roux@example.fr"  # French, keyboard only
JULES = "jules.blanc@example.com"  # English: gives consent again, then withdraws all marketing

CONSENT_PURPOSES = (
    "email_newsletter",
    "sms_offers",
    "phone_calls",
    "postal_mail",
    "personalised_offers",
    "browsing_analytics",
    "partner_sharing",
)
POLICY_VERSION = "2026-01"  # portal/config/purposes.toml [policy] version
SEEDED_AT = datetime(2025, 6, 14, 10, tzinfo=UTC)
LEA_VIEWS = 57
HUGO_VIEWS = 8
MARKER = "() => window.__consentPageMarker"


def _consent(customer_id: int, purpose: str, granted: bool, when: datetime = SEEDED_AT) -> ConsentEvent:
    """A consent given (or withdrawn) in a store under an older policy, so the history tells it apart."""
    return ConsentEvent(
        customer_id=customer_id,
        purpose=purpose,
        granted=granted,
        occurred_at=when,
        channel="store",
        actor="store:S001",
        policy_version="2025-03",
    )


@pytest.fixture(scope="module")
def seeded_database(seeded_database: str) -> str:
    """The module's database (Camille and Emma) plus one customer per scenario, with their consents."""
    engine = make_engine(seeded_database)
    try:
        lea = make_customer(engine, email=LEA, first_name="Léa", last_name="Morel")
        hugo = make_customer(engine, email=HUGO, first_name="Hugo", last_name="Petit")
        ines = make_customer(engine, email=INES, first_name="Inès", last_name="Roux")
        jules = make_customer(engine, email=JULES, first_name="Jules", last_name="Blanc", preferred_language="en")
        with transaction(engine) as session:
            for customer in (lea, hugo, ines):
                session.add(_consent(customer.id, "sms_offers", True))  # type: ignore[arg-type]
            session.add(_consent(lea.id, "email_newsletter", True))  # type: ignore[arg-type]
            for purpose in ("email_newsletter", "partner_sharing", "personalised_offers"):
                session.add(_consent(jules.id, purpose, True))  # type: ignore[arg-type]
            session.add(_consent(jules.id, "personalised_offers", False, datetime(2025, 9, 1, 8, tzinfo=UTC)))  # type: ignore[arg-type]
        add_page_views(engine, lea, LEA_VIEWS)  # also gives consent to browsing analytics
        add_page_views(engine, hugo, HUGO_VIEWS)
        with engine.connect() as connection:
            connection.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
    finally:
        engine.dispose()
    return seeded_database


# --- Helpers ---------------------------------------------------------------------------------------------------


def state_of(page: Page, purpose: str) -> str | None:
    return page.locator(f"#purpose-{purpose} .consent-status").get_attribute("data-state")


def button_of(page: Page, purpose: str):  # noqa: ANN201  (a playwright Locator)
    return page.locator(f"#purpose-{purpose} form.consent__form button[type=submit]")


def wait_until_settled(page: Page) -> None:
    """Wait until htmx has finished the last swap (no request, swap or settle under way)."""
    page.wait_for_function("() => !document.querySelector('.htmx-request, .htmx-swapping, .htmx-settling')")


def open_consents_from_overview(session: Session) -> None:
    """Signed in on /me: follow the consents card's link, as a customer would."""
    page = session.page
    page.locator('#consents-heading a[href="/me/consents"]').click()
    page.wait_for_url(session.url("/me/consents"))
    expect(page.locator("section.consent")).to_have_count(len(CONSENT_PURPOSES))


def history_rows(page: Page) -> list[list[str]]:
    """The history table's rows as the customer reads them: date, purpose, choice, channel, policy version."""
    cells = page.locator("table.consent-history__table tbody tr").evaluate_all(
        "rows => rows.map(r => Array.from(r.cells).map(c => c.innerText))"
    )
    return [[normalised(cell) for cell in cells_of_row] for cells_of_row in cells]


# --- With htmx ---------------------------------------------------------------------------------------------------


def test_withdraw_sms_and_browsing_then_delete_the_history_in_french(
    sessions: Sessions, inbox: Inbox, artifacts: Path
) -> None:
    session = sessions.open(locale="fr-FR")
    page = session.page
    sign_in_by_code(session, inbox, LEA)
    open_consents_from_overview(session)
    assert page.locator("html").get_attribute("lang") == "fr"
    expect(page.locator("h1")).to_have_text("Vos consentements")
    assert page.evaluate("() => typeof window.htmx") == "object", "htmx did not load"
    assert [state_of(page, code) for code in CONSENT_PURPOSES] == [
        "granted",
        "granted",
        "never",
        "never",
        "never",
        "granted",
        "never",
    ]
    page.screenshot(path=artifacts / "consents-fr.png", full_page=True)

    # A marker in the page's JavaScript survives only if the page is never reloaded.
    page.evaluate("() => { window.__consentPageMarker = 'still here' }")
    loads: list[str] = []
    page.on("load", lambda: loads.append(page.url))
    announce = page.locator("#consent-announce")

    sms = button_of(page, "sms_offers")
    expect(sms).to_contain_text("Retirer mon consentement")
    with page.expect_response(lambda r: r.url == session.url("/me/consents") and r.request.method == "POST") as sent:
        sms.click()
    assert sent.value.status == 200 and sent.value.request.headers.get("hx-request") == "true"
    expect(page.locator("#purpose-sms_offers .consent-status")).to_have_attribute("data-state", "withdrawn")
    expect(page.locator("#purpose-sms_offers .consent-status")).to_have_text("Consentement retiré")
    expect(button_of(page, "sms_offers")).to_contain_text("Donner mon consentement")
    expect(announce).to_have_text("Consentement retiré : Offres par SMS.")
    expect(announce).to_have_attribute("aria-live", "polite")
    assert page.url == session.url("/me/consents")
    assert page.evaluate(MARKER) == "still here"
    assert state_of(page, "email_newsletter") == "granted"  # the other rows are untouched

    # Browsing analytics: withdrawn in one click, and the row then offers to delete what was recorded.
    with page.expect_response(lambda r: r.url == session.url("/me/consents") and r.request.method == "POST"):
        button_of(page, "browsing_analytics").click()
    expect(page.locator("#purpose-browsing_analytics .consent-status")).to_have_attribute("data-state", "withdrawn")
    expect(announce).to_have_text("Consentement retiré : Mesure de votre navigation.")
    offer = page.get_by_test_id("browsing-offer")
    expect(offer).to_be_visible()
    assert str(LEA_VIEWS) in offer.inner_text()
    page.screenshot(path=artifacts / "consents-browsing-offer-fr.png", full_page=True)

    delete_url = session.url("/me/consents/browsing-history/delete")
    wait_until_settled(page)  # the offer came with the swap: htmx wires its form up once the swap settles
    with page.expect_response(lambda r: r.url == delete_url) as deleted:
        offer.locator("button[type=submit]").click()
    assert deleted.value.status == 200
    expect(page.get_by_test_id("browsing-deleted")).to_be_visible()
    assert str(LEA_VIEWS) in page.get_by_test_id("browsing-deleted").inner_text()
    expect(page.get_by_test_id("browsing-deleted")).to_be_focused()  # the button pressed is gone: focus its answer
    expect(page.get_by_test_id("browsing-offer")).to_have_count(0)
    expect(announce).to_have_text("Votre historique de navigation a été effacé.")
    assert page.url == session.url("/me/consents")
    assert page.evaluate(MARKER) == "still here"
    assert loads == [], f"the page reloaded: {loads}"

    # The history on the page shows both withdrawals, newest first, with the channel and the policy version.
    history = history_rows(page)
    assert [cells[1:] for cells in history[:2]] == [
        ["Mesure de votre navigation", "consentement retiré", "sur ce site", POLICY_VERSION],
        ["Offres par SMS", "consentement retiré", "sur ce site", POLICY_VERSION],
    ]
    page.screenshot(path=artifacts / "consents-withdrawn-fr.png", full_page=True)

    # ...and so does the page loaded afresh, where the older consents given in store follow.
    page.reload()
    assert history_rows(page)[:2] == history[:2]
    assert [cells[1:] for cells in history_rows(page)[2:]] == [
        ["Mesure de votre navigation", "consentement donné", "sur ce site", POLICY_VERSION],
        ["Lettre d'information par email", "consentement donné", "en magasin", "2025-03"],
        ["Offres par SMS", "consentement donné", "en magasin", "2025-03"],
    ]
    expect(page.get_by_test_id("browsing-offer")).to_have_count(0)

    # Nothing is left to see on the browsing page or the overview.
    session.goto("/me/browsing")
    expect(page.get_by_test_id("browsing-empty")).to_be_visible()
    expect(page.get_by_test_id("browsing-total")).to_have_count(0)
    expect(page.get_by_test_id("browsing-consent")).to_have_attribute("class", re.compile(r"notice--info"))
    session.goto("/me")
    expect(page.get_by_test_id("browsing-summary")).to_have_count(0)
    expect(page.get_by_test_id("consent-summary")).to_contain_text("1")
    session.errors.assert_none()


# --- Without JavaScript ------------------------------------------------------------------------------------------


def test_the_same_with_plain_forms_without_javascript(sessions: Sessions, inbox: Inbox, artifacts: Path) -> None:
    session = sessions.open(locale="fr-FR", java_script_enabled=False)
    page = session.page
    sign_in_by_code(session, inbox, HUGO)
    open_consents_from_overview(session)
    assert page.evaluate("() => typeof window.htmx") == "undefined"  # Playwright's own evaluate still runs

    button_of(page, "sms_offers").click()
    page.wait_for_url(session.url("/me/consents#purpose-sms_offers"))
    assert state_of(page, "sms_offers") == "withdrawn"
    expect(button_of(page, "sms_offers")).to_contain_text("Donner mon consentement")

    button_of(page, "browsing_analytics").click()
    page.wait_for_url(session.url("/me/consents#purpose-browsing_analytics"))
    assert state_of(page, "browsing_analytics") == "withdrawn"
    offer = page.get_by_test_id("browsing-offer")
    assert str(HUGO_VIEWS) in offer.inner_text()

    offer.locator("button[type=submit]").click()
    page.wait_for_url(session.url(f"/me/consents?deleted={HUGO_VIEWS}#purpose-browsing_analytics"))
    expect(page.get_by_test_id("browsing-deleted")).to_contain_text(str(HUGO_VIEWS))
    expect(page.get_by_test_id("browsing-offer")).to_have_count(0)
    assert [cells[1:] for cells in history_rows(page)[:2]] == [
        ["Mesure de votre navigation", "consentement retiré", "sur ce site", POLICY_VERSION],
        ["Offres par SMS", "consentement retiré", "sur ce site", POLICY_VERSION],
    ]
    page.screenshot(path=artifacts / "consents-nojs-fr.png", full_page=True)

    # Giving consent again works the same way.
    button_of(page, "sms_offers").click()
    page.wait_for_url(session.url("/me/consents#purpose-sms_offers"))
    assert state_of(page, "sms_offers") == "granted"
    assert history_rows(page)[0][1:] == ["Offres par SMS", "consentement donné", "sur ce site", POLICY_VERSION]

    session.goto("/me/browsing")
    expect(page.get_by_test_id("browsing-empty")).to_be_visible()
    session.errors.assert_none()


# --- Keyboard only -----------------------------------------------------------------------------------------------


def tab_to(page: Page, selector: str, *, limit: int = 60) -> int:
    """Press Tab until the element matching `selector` has the focus; return how many presses it took."""
    for presses in range(1, limit + 1):
        page.keyboard.press("Tab")
        if page.evaluate("s => document.activeElement === document.querySelector(s)", selector):
            return presses
    raise AssertionError(f"{selector} never received the focus in {limit} presses of Tab")


def test_withdraw_and_give_again_with_the_keyboard_only(sessions: Sessions, inbox: Inbox, artifacts: Path) -> None:
    session = sessions.open(locale="fr-FR")
    page = session.page
    sign_in_by_code(session, inbox, INES)
    session.goto("/me/consents")
    sms_button = "#purpose-sms_offers form.consent__form button[type=submit]"
    page.locator("body").focus()

    page.evaluate("() => { window.__consentPageMarker = 'still here' }")
    tab_to(page, sms_button)
    outline = page.evaluate("s => getComputedStyle(document.querySelector(s)).outlineStyle", sms_button)
    assert outline != "none", "the focused button shows no focus ring"
    page.screenshot(path=artifacts / "consents-keyboard-focus-fr.png")
    page.keyboard.press("Enter")
    expect(page.locator("#purpose-sms_offers .consent-status")).to_have_attribute("data-state", "withdrawn")
    expect(page.locator("#consent-announce")).to_have_text("Consentement retiré : Offres par SMS.")
    assert page.url == session.url("/me/consents")

    # The swap must not throw the keyboard user back to the top of the page: the focus stays on the row's button.
    expect(page.locator(sms_button)).to_be_focused()
    expect(page.locator(sms_button)).to_contain_text("Donner mon consentement")
    # htmx wires the new form up when the swap settles (20 ms later); a person's next key press comes after that,
    # and one sooner would fall back to the plain form post, which the marker below would catch.
    wait_until_settled(page)
    page.keyboard.press("Enter")
    expect(page.locator("#purpose-sms_offers .consent-status")).to_have_attribute("data-state", "granted")
    expect(page.locator("#consent-announce")).to_have_text("Consentement donné : Offres par SMS.")
    expect(page.locator(sms_button)).to_be_focused()
    assert page.evaluate(MARKER) == "still here", "the page reloaded"
    wait_until_settled(page)

    # The next Tab goes on to the next purpose, not back to the skip link.
    page.keyboard.press("Tab")
    expect(page.locator("#purpose-phone_calls form.consent__form button[type=submit]")).to_be_focused()
    page.screenshot(path=artifacts / "consents-keyboard-fr.png", full_page=True)
    session.errors.assert_none()


# --- Give again, withdraw all --------------------------------------------------------------------------------------


def test_give_consent_again_then_withdraw_all_marketing(sessions: Sessions, inbox: Inbox, artifacts: Path) -> None:
    session = sessions.open(locale="en-GB")
    page = session.page
    sign_in_by_code(session, inbox, JULES)
    open_consents_from_overview(session)
    assert state_of(page, "personalised_offers") == "withdrawn"
    assert state_of(page, "phone_calls") == "never"

    # Given again after a withdrawal, and given for the first time.
    for purpose in ("personalised_offers", "phone_calls"):
        expect(button_of(page, purpose)).to_contain_text("Give consent")
        button_of(page, purpose).click()
        expect(page.locator(f"#purpose-{purpose} .consent-status")).to_have_attribute("data-state", "granted")
        expect(button_of(page, purpose)).to_contain_text("Withdraw consent")
    expect(page.locator("#consent-announce")).to_have_text("Consent given: Phone calls.")
    granted = [code for code in CONSENT_PURPOSES if state_of(page, code) == "granted"]
    assert granted == ["email_newsletter", "phone_calls", "personalised_offers", "partner_sharing"]

    page.reload()
    assert [state_of(page, code) == "granted" for code in CONSENT_PURPOSES] == [
        code in granted for code in CONSENT_PURPOSES
    ]
    assert [cells[1:3] for cells in history_rows(page)[:2]] == [
        ["Phone calls", "consent given"],
        ["Personalised offers", "consent given"],
    ]

    # One button withdraws every marketing consent (an objection to direct marketing, Art. 21(2)).
    page.locator("#withdraw-all form button[type=submit]").click()
    page.wait_for_url(session.url(f"/me/consents?withdrawn={len(granted)}#withdraw-all"))
    expect(page.get_by_test_id("withdrawn-all")).to_contain_text(f"{len(granted)} consents withdrawn")
    states = {code: state_of(page, code) for code in CONSENT_PURPOSES}
    assert all(state in ("withdrawn", "never") for state in states.values()), states
    assert [code for code, state in states.items() if state == "withdrawn"] == granted
    for code in CONSENT_PURPOSES:
        expect(button_of(page, code)).to_contain_text("Give consent")
    withdrawals = [cells[1:] for cells in history_rows(page)[: len(granted)]]
    assert all(cells[1:] == ["consent withdrawn", "on this website", POLICY_VERSION] for cells in withdrawals)
    page.screenshot(path=artifacts / "consents-withdrawn-all-en.png", full_page=True)

    session.goto("/me")
    expect(page.get_by_test_id("consent-summary")).to_have_text("0 uses of your data you agreed to")
    session.errors.assert_none()
