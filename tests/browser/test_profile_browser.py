"""Rectification in a real Chromium: the phone number in French, the email address with its confirmation."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from tests.browser.conftest import CAMILLE, EMMA, Inbox, Sessions
from tests.browser.test_sign_in_browser import normalised, sign_in_by_code

pytestmark = pytest.mark.browser


def test_rectify_the_phone_number_in_french(sessions: Sessions, inbox: Inbox) -> None:
    session = sessions.open(locale="fr-FR")
    sign_in_by_code(session, inbox, CAMILLE)
    page = session.page
    page.locator('a[href="/me/profile"]').first.click()
    page.wait_for_url(session.url("/me/profile"))
    assert page.locator("html").get_attribute("lang") == "fr"
    page.locator("#phone").fill("07 81 22 33 44")
    page.locator('form[action="/me/profile"] button[type=submit]').click()
    page.wait_for_url(re.compile(r"/me/profile\?changed=phone"))
    expect(page.locator("#saved")).to_be_visible()
    assert "07 81 22 33 44" in normalised(page.locator(".held").inner_text())
    assert page.locator("#phone").input_value() == "07 81 22 33 44"
    session.errors.assert_none()


def test_a_bad_phone_number_is_explained_next_to_the_field(sessions: Sessions, inbox: Inbox) -> None:
    session = sessions.open(locale="en-GB")
    sign_in_by_code(session, inbox, EMMA)
    page = session.page
    session.goto("/me/profile")
    page.locator("#phone").fill("12")
    page.locator('form[action="/me/profile"] button[type=submit]').click()
    expect(page.locator("#phone-error")).to_contain_text("Enter a valid phone number")
    assert page.locator("#phone").get_attribute("aria-invalid") == "true"
    assert page.locator("#phone").input_value() == "12"
    # Chromium logs the form's 400 answer as a console error; that answer is the point of this test.


def test_change_the_email_address_with_confirmation(sessions: Sessions, inbox: Inbox) -> None:
    session = sessions.open(locale="en-GB")
    sign_in_by_code(session, inbox, EMMA)
    page = session.page
    session.goto("/me/profile")
    new_address = "emma.new@example.org"
    before = inbox.count(new_address)
    page.locator("#email").fill(new_address)
    page.locator('form[action="/me/profile/email"] button[type=submit]').click()
    page.wait_for_url(re.compile(r"/me/profile\?email=sent"))
    confirmation = inbox.next(new_address, after=before)
    link = re.search(r"https?://\S+/me/email/confirm\?token=[\w-]+", confirmation.text).group(0)  # type: ignore[union-attr]

    # The link may be opened anywhere, e.g. on the phone where the new mailbox is.
    other_device = sessions.open(locale="en-GB")
    other_device.page.goto(link)
    expect(other_device.page.locator("strong")).to_contain_text(new_address)
    other_device.page.locator('form[action="/me/email/confirm"] button[type=submit]').click()
    expect(other_device.page.locator("h1")).to_contain_text("has been changed")

    session.goto("/me/profile")
    assert new_address in page.locator(".held").inner_text()
    session.errors.assert_none()
    other_device.errors.assert_none()
