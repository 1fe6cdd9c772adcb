"""Secondary buttons are readable wherever they stand (WCAG 2.1 AA: 4.5:1 for their text, 3:1 for their border),
at rest and under the pointer: a class of button once white on the near-white page (1.1:1)."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import Locator

from tests.browser.conftest import EMMA, Inbox, Sessions
from tests.browser.test_sign_in_browser import sign_in_by_code

pytestmark = pytest.mark.browser

# The WCAG contrast ratio between an element's text colour and the first opaque background behind it.
CONTRAST = """(element) => {
  const rgb = (css) => css.match(/[\\d.]+/g).map(Number);
  const luminance = ([r, g, b]) => {
    const channel = (v) => { v /= 255; return v <= 0.03928 ? v / 12.92 : ((v + 0.055) / 1.055) ** 2.4; };
    return 0.2126 * channel(r) + 0.7152 * channel(g) + 0.0722 * channel(b);
  };
  let node = element, background = null;
  while (node) {
    const colour = rgb(getComputedStyle(node).backgroundColor);
    if (colour.length < 4 || colour[3] > 0) { background = colour; break; }
    node = node.parentElement;
  }
  background = background || [255, 255, 255];
  const ratio = (a, b) => {
    const [light, dark] = [luminance(a), luminance(b)].sort((x, y) => y - x);
    return (light + 0.05) / (dark + 0.05);
  };
  const style = getComputedStyle(element);
  return {text: ratio(rgb(style.color), background), border: ratio(rgb(style.borderTopColor), background)};
}"""


def _readable(button: Locator, where: str) -> None:
    for state in ("at rest", "hovered"):
        if state == "hovered":
            button.hover()
        measured = button.evaluate(CONTRAST)
        assert measured["text"] >= 4.5, f"{where}, {state}: text contrast {measured['text']:.2f}:1"
        if state == "at rest":
            assert measured["border"] >= 3, f"{where}: border contrast {measured['border']:.2f}:1"


def test_secondary_buttons_are_readable_on_the_page_and_in_the_header(sessions: Sessions, inbox: Inbox) -> None:
    session = sessions.open(locale="en-GB")
    sign_in_by_code(session, inbox, EMMA)
    page = session.page
    session.goto("/me/requests/new/other")
    page.locator("#message").fill("Which stores keep my receipts?")
    page.get_by_role("button", name="Send my request").click()
    page.wait_for_url(re.compile(r"/me/requests/R-"))
    _readable(page.get_by_role("link", name="Cancel this request"), "request page")
    _readable(page.locator(".site-header").get_by_role("button", name="Sign out"), "header")
    page.get_by_role("link", name="Cancel this request").click()
    page.wait_for_url(re.compile(r"/cancel$"))
    _readable(page.get_by_role("link", name="No, keep it"), "cancel page")
    session.errors.assert_none()
