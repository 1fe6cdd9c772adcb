"""Sign-in in a real Chromium against the real server: by link in French, by code in English, without
JavaScript, with the keyboard only, on a phone and a tablet; and sign-out.

Text checks stick to what the catalogues already translate; elsewhere the tests find things by structure
(ids, form actions, `lang` attributes) so a catalogue still being completed cannot break them.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from playwright.sync_api import Page, expect

from portal.mail.mailbox import ReceivedEmail
from tests.browser.conftest import CAMILLE, EMMA, Inbox, Session, Sessions
from tests.conftest import code_in, link_in

pytestmark = pytest.mark.browser

EMAIL_FORM = 'form[action="/signin"]'
CODE_FORM = 'form[action="/signin/code"]'
LINK_FORM = 'form[action="/signin/link"]'
SIGNOUT_FORM = 'form[action="/signout"]'


def normalised(text: str) -> str:
    """Whitespace as a reader sees it: French thousands use U+202F, some phrases U+00A0; lines wrap anywhere."""
    return re.sub(r"\s+", " ", text.replace("\u202f", " ").replace("\xa0", " ")).strip()


def html_lang(page: Page) -> str | None:
    return page.locator("html").get_attribute("lang")


def ask_for_sign_in(session: Session, inbox: Inbox, email: str) -> ReceivedEmail:
    """Type the address on the page shown, submit, land on "check your inbox"; return the email it sent."""
    page = session.page
    before = inbox.count(email)
    page.locator(f"{EMAIL_FORM} #email").fill(email)
    page.locator(f"{EMAIL_FORM} button[type=submit]").click()
    page.wait_for_url(session.url("/signin/sent"))
    return inbox.next(email, after=before)


def sign_in_by_code(session: Session, inbox: Inbox, email: str) -> None:
    session.goto("/")
    message = ask_for_sign_in(session, inbox, email)
    session.page.locator(f"{CODE_FORM} #code").fill(code_in(message))
    session.page.locator(f"{CODE_FORM} button[type=submit]").click()
    session.page.wait_for_url(session.url("/me"))


def test_sign_in_by_link_in_french(sessions: Sessions, inbox: Inbox, artifacts: Path) -> None:
    session = sessions.open(locale="fr-FR")
    page = session.page
    session.goto("/")
    assert html_lang(page) == "fr"
    expect(page.get_by_label("Votre adresse e-mail", exact=True)).to_be_visible()

    before = inbox.count(CAMILLE)
    page.get_by_label("Votre adresse e-mail", exact=True).fill(CAMILLE)
    page.locator(f"{EMAIL_FORM} button[type=submit]").click()
    page.wait_for_url(session.url("/signin/sent"))
    assert html_lang(page) == "fr"

    link = link_in(inbox.next(CAMILLE, after=before))
    assert link.startswith(session.url("/signin/link?token="))
    token = link.split("token=", 1)[1]
    page.goto(link)
    continue_button = page.locator(f"{LINK_FORM} button[type=submit]")
    expect(continue_button).to_have_text("Continuer")
    continue_button.click()

    page.wait_for_url(session.url("/me"))
    assert page.url == session.url("/me")  # the token does not linger in the address bar or the history
    assert token not in page.content()
    assert html_lang(page) == "fr"
    purchases = normalised(page.get_by_test_id("purchase-summary").inner_text())
    # locales/fr: "%(num)s achats" + "dans %(count)s magasins et sur la boutique en ligne".
    assert purchases == "1 241 achats dans 3 magasins et sur la boutique en ligne"
    assert normalised(page.get_by_test_id("browsing-summary").inner_text()) == "3 410 pages consultées"
    expect(page.locator("h1")).to_contain_text("Camille")

    page.screenshot(path=artifacts / "overview-fr.png", full_page=True)
    session.errors.assert_none()


def test_sign_in_by_code_in_english_after_switching_language(sessions: Sessions, inbox: Inbox, artifacts: Path) -> None:
    session = sessions.open(locale="en-GB")
    page = session.page
    session.goto("/")
    assert html_lang(page) == "en"
    assert page.evaluate("() => typeof window.htmx") == "object", "htmx did not load (CSP? missing file?)"

    # The switcher wins over Accept-Language both ways, and brings the visitor back to the same page.
    page.locator('.language-switcher a[hreflang="fr"]').click()
    page.wait_for_url(session.url("/"))
    assert html_lang(page) == "fr"
    expect(page.locator('.language-switcher [aria-current="true"]')).to_have_attribute("lang", "fr")
    page.get_by_role("link", name="English").click()
    page.wait_for_url(session.url("/"))
    assert html_lang(page) == "en"
    expect(page.locator('.language-switcher [aria-current="true"]')).to_have_text("English")

    message = ask_for_sign_in(session, inbox, CAMILLE)
    assert html_lang(page) == "en"
    page.get_by_label("6-digit code", exact=True).fill(code_in(message))
    page.locator(f"{CODE_FORM} button[type=submit]").click()

    page.wait_for_url(session.url("/me"))
    assert html_lang(page) == "en"
    expect(page.locator("h1")).to_have_text("Your data, Camille")
    purchases = normalised(page.get_by_test_id("purchase-summary").inner_text())
    assert purchases == "1,241 purchases in 3 stores and the web shop"
    assert normalised(page.get_by_test_id("browsing-summary").inner_text()) == "3,410 pages viewed"

    page.screenshot(path=artifacts / "overview-en.png", full_page=True)
    session.errors.assert_none()


def test_sign_in_by_code_works_without_javascript(sessions: Sessions, inbox: Inbox) -> None:
    session = sessions.open(java_script_enabled=False, locale="en-GB")
    page = session.page
    session.goto("/")
    assert page.evaluate("() => typeof window.htmx") == "undefined", "htmx ran: JavaScript is not off"
    message = ask_for_sign_in(session, inbox, EMMA)
    page.locator(f"{CODE_FORM} #code").fill(code_in(message))
    page.locator(f"{CODE_FORM} button[type=submit]").click()
    page.wait_for_url(session.url("/me"))
    expect(page.locator("h1")).to_have_text("Your data, Emma")
    expect(page.locator(SIGNOUT_FORM)).to_be_visible()
    session.errors.assert_none()


def test_sign_out_ends_the_session(sessions: Sessions, inbox: Inbox) -> None:
    session = sessions.open(locale="fr-FR")
    page = session.page
    sign_in_by_code(session, inbox, EMMA)
    sign_out = page.locator(f"{SIGNOUT_FORM} button[type=submit]")
    expect(sign_out).to_have_text("Se déconnecter")
    sign_out.click()

    page.wait_for_url(session.url("/?signed_out=1"))
    expect(page.locator('.notice[role="status"]')).to_be_visible()
    expect(page.locator(SIGNOUT_FORM)).to_have_count(0)
    assert "portal_session" not in {c["name"] for c in session.context.cookies()}, "the session cookie outlived it"

    page.goto(session.url("/me"))
    page.wait_for_url(session.url("/signin"))
    expect(page.locator(f"{EMAIL_FORM} #email")).to_be_visible()
    session.errors.assert_none()


def test_the_keyboard_alone_reaches_and_submits_the_form(sessions: Sessions, inbox: Inbox) -> None:
    session = sessions.open(locale="en-GB")
    page = session.page
    session.goto("/")

    page.keyboard.press("Tab")
    skip_link = page.locator("a.skip-link")
    expect(skip_link).to_be_focused()
    box = skip_link.bounding_box()
    assert box is not None and box["x"] >= 0 and box["y"] >= 0, f"the focused skip link is off screen: {box}"
    assert skip_link.get_attribute("href") == "#main"

    page.keyboard.press("Enter")
    expect(page.locator("main#main")).to_be_focused()

    email = page.locator(f"{EMAIL_FORM} #email")
    for _ in range(5):  # the email field is the first control in the main content
        page.keyboard.press("Tab")
        if email.evaluate("element => element === document.activeElement"):
            break
    expect(email).to_be_focused()

    before = inbox.count(EMMA)
    page.keyboard.type(EMMA)
    page.keyboard.press("Enter")
    page.wait_for_url(session.url("/signin/sent"))
    assert code_in(inbox.next(EMMA, after=before))
    session.errors.assert_none()


@pytest.mark.parametrize(
    ("width", "height", "mobile"),
    [pytest.param(390, 844, True, id="phone"), pytest.param(1024, 768, False, id="tablet")],
)
def test_the_landing_page_fits_phones_and_tablets(sessions: Sessions, width: int, height: int, mobile: bool) -> None:
    session = sessions.open(viewport={"width": width, "height": height}, is_mobile=mobile, has_touch=mobile)
    page = session.page
    session.goto("/")

    scroll_width, client_width = page.evaluate(
        "() => [document.documentElement.scrollWidth, document.documentElement.clientWidth]"
    )
    assert scroll_width <= client_width, f"horizontal scroll at {width}px: {scroll_width} > {client_width}"

    button = page.locator(f"{EMAIL_FORM} button[type=submit]")
    button.scroll_into_view_if_needed()
    box = button.bounding_box()
    assert box is not None and box["height"] >= 44, f"the submit button is {box and box['height']}px high"
    assert box["x"] >= 0 and box["x"] + box["width"] <= client_width, f"the submit button sticks out: {box}"
    session.errors.assert_none()
