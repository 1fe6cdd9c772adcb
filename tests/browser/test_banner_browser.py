"""The consent banner on a sample retailer page served from another origin (another port of 127.0.0.1), in a real
Chromium: it shows, refusing is exactly as easy as accepting, ignoring it stores nothing, a choice is remembered
until the policy changes, Global Privacy Control is honoured, the site's analytics load only after consent, and a
visitor who signs in finds the website consent in their history on the portal, whose later choices then win on the
website. axe finds nothing serious on the page with the banner open, in French and English."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import threading
import time
import urllib.request
import uuid
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import IO

import pytest
from playwright.sync_api import Page, expect
from sqlalchemy import select

from portal.api.keys import create_api_key
from portal.db import make_engine, transaction
from portal.models import BannerTally, ConsentEvent, utcnow
from portal.settings import PROJECT_ROOT
from tests.browser.conftest import (
    CAMILLE,
    STARTUP_TIMEOUT,
    Inbox,
    LiveServer,
    Session,
    Sessions,
    _healthy,
    _server_env,
    _stop,
)
from tests.browser.test_consents_browser import button_of, wait_until_settled
from tests.browser.test_every_page_browser import _axe
from tests.browser.test_sign_in_browser import sign_in_by_code
from tests.conftest import TEST_SECRET, SMTPServer

KEY = "portal-consent"
BANNER = "#portal-consent"
GPC_INIT = "Object.defineProperty(Navigator.prototype, 'globalPrivacyControl', {get: () => true});"

SITE_JS = b"""(window.portalConsentQueue = window.portalConsentQueue || []).push(function (consent) {
  consent.onConsent("browsing_analytics", function (granted) {
    if (granted && !document.getElementById("fake-analytics")) {
      var tag = document.createElement("script");
      tag.id = "fake-analytics";
      tag.src = "/fake-analytics.js";
      document.head.appendChild(tag);
    }
    document.documentElement.setAttribute("data-analytics", String(granted));
  });
});
"""


class Shop:
    """The retailer's website: a page with the one tag, its own script using the JS API, and a fake analytics tag
    whose downloads are counted (it must never be fetched without consent)."""

    def __init__(self) -> None:
        self.portal = ""
        self.analytics_hits = 0
        shop = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802  (the http.server API)
                path = self.path.split("?")[0]
                if path in ("/", "/en"):
                    lang = "en" if path == "/en" else "fr"
                    body, kind = shop.page(lang).encode(), "text/html; charset=utf-8"
                elif path == "/site.js":
                    body, kind = SITE_JS, "text/javascript"
                elif path == "/fake-analytics.js":
                    shop.analytics_hits += 1
                    body, kind = b"window.fakeAnalyticsLoaded = true;", "text/javascript"
                else:
                    self.send_error(404)
                    return
                self.send_response(200)
                self.send_header("content-type", kind)
                self.send_header("cache-control", "no-store")
                self.send_header("content-length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.origin = f"http://127.0.0.1:{self.server.server_address[1]}"

    def page(self, lang: str) -> str:
        words = {
            "fr": ("Salons de jardin", "Gérer mes cookies", "Meubles et idées pour le jardin."),
            "en": ("Garden furniture", "Cookie settings", "Furniture and ideas for the garden."),
        }[lang]
        return f"""<!doctype html>
<html lang="{lang}"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>{words[0]} – Maison Aubépine</title><link rel="icon" href="data:,">
<script src="{self.portal}/consent/v1/banner.js" defer></script>
<script src="/site.js" defer></script>
</head><body>
<header><p><a href="/">Maison Aubépine</a></p></header>
<main><h1 id="first">{words[0]}</h1><p>{words[2]}</p></main>
<footer><a href="#" id="settings" data-portal-consent="settings">{words[1]}</a></footer>
</body></html>"""

    def start(self) -> Shop:
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture(scope="module")
def shop() -> Iterator[Shop]:
    server = Shop().start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def live_server(
    mail_server: SMTPServer, seeded_database: str, shop: Shop, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[LiveServer]:
    """The portal as conftest's live_server runs it, told that the shop's origin may record answers."""
    listening = socket.create_server(("127.0.0.1", 0))
    port = listening.getsockname()[1]
    log_path = tmp_path_factory.mktemp("banner-server") / "server.log"
    log_file: IO[bytes] = log_path.open("wb")
    env = _server_env(port, mail_server.port, seeded_database)
    env["PORTAL_BANNER_ORIGINS"] = shop.origin
    with listening:
        process = subprocess.Popen(  # noqa: S603  (this interpreter running the portal)
            [sys.executable, "-m", "tests.browser.live_portal", str(listening.fileno())],
            cwd=PROJECT_ROOT,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=log_file,
            stderr=subprocess.STDOUT,
            pass_fds=(listening.fileno(),),
        )
    server = LiveServer(base_url=f"http://127.0.0.1:{port}", process=process, log_path=log_path)
    shop.portal = server.base_url
    try:
        deadline = time.monotonic() + STARTUP_TIMEOUT
        while not _healthy(server.url("/healthz")):
            if process.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"the portal did not start:\n{server.log()}")
            time.sleep(0.1)
        yield server
    finally:
        _stop(process)
        log_file.close()


# --- Helpers ----------------------------------------------------------------------------------------------------


def visit(session: Session, shop: Shop, lang: str = "fr") -> Page:
    page = session.page
    page.goto(shop.origin + ("/en" if lang == "en" else "/"))
    page.wait_for_function("() => window.PortalConsent !== undefined")
    return page


def stored(page: Page) -> dict | None:
    raw = page.evaluate(f"() => localStorage.getItem('{KEY}')")
    return json.loads(raw) if raw else None


def wait_sent(page: Page) -> dict:
    page.wait_for_function(f"() => (JSON.parse(localStorage.getItem('{KEY}')) || {{}}).sent === true")
    value = stored(page)
    assert value is not None
    return value


def ledger_of(database_url: str, visitor_id: str) -> list[tuple[str, bool, str]]:
    engine = make_engine(database_url)
    try:
        with transaction(engine) as session:
            rows = session.scalars(
                select(ConsentEvent).where(ConsentEvent.visitor_id == visitor_id).order_by(ConsentEvent.id)
            )
            return [(e.purpose, e.granted, e.channel) for e in rows]
    finally:
        engine.dispose()


# --- The visitor's side -----------------------------------------------------------------------------------------


def test_the_banner_shows_refusing_is_as_easy_as_accepting_and_ignoring_it_stores_nothing(
    sessions: Sessions, shop: Shop, artifacts: Path
) -> None:
    session = sessions.open(locale="fr-FR")
    page = visit(session, shop)
    banner = page.locator(BANNER)
    dialog = banner.get_by_role("dialog", name="Vos choix de confidentialité")
    expect(dialog).to_be_visible()
    buttons = [
        dialog.get_by_role("button", name=name, exact=True) for name in ("Tout refuser", "Tout accepter", "Choisir")
    ]
    boxes = [button.bounding_box() for button in buttons]
    assert all(box is not None for box in boxes)
    assert len({(round(b["width"]), round(b["height"]), round(b["y"])) for b in boxes if b}) == 1  # same size, same row
    looks = [
        button.evaluate(
            "b => { const s = getComputedStyle(b); return [s.backgroundColor, s.color, s.fontWeight, s.fontSize]; }"
        )
        for button in buttons
    ]
    assert looks[0] == looks[1] == looks[2]
    # The purposes, their descriptions, recipients and the policy are reachable from the banner.
    expect(dialog.get_by_text("Mesure de votre navigation")).to_be_visible()
    expect(dialog.get_by_role("link", name="Notre politique de confidentialité")).to_have_attribute(
        "href", session.url("/privacy")
    )
    # Fixed over the page: the page's own content does not move (the host takes no room).
    assert banner.evaluate("host => host.getBoundingClientRect().height") == 0
    assert dialog.evaluate("d => getComputedStyle(d).position") == "fixed"
    page.screenshot(path=str(artifacts / "banner-fr.png"))

    page.reload()
    page.wait_for_function("() => window.PortalConsent !== undefined")
    expect(page.locator(BANNER).get_by_role("dialog")).to_be_visible()  # ignored: asked again
    assert stored(page) is None
    assert session.context.cookies() == []
    assert page.evaluate("() => window.fakeAnalyticsLoaded") is None
    assert shop.analytics_hits == 0
    session.errors.assert_none()


def test_accepting_loads_the_analytics_and_is_remembered(sessions: Sessions, shop: Shop, seeded_database: str) -> None:
    hits = shop.analytics_hits
    session = sessions.open(locale="en-GB")
    page = visit(session, shop, "en")
    page.locator(BANNER).get_by_role("button", name="Accept all", exact=True).click()
    expect(page.locator(BANNER)).to_have_count(0)
    page.wait_for_function("() => window.fakeAnalyticsLoaded === true")
    answer = wait_sent(page)
    assert answer["choices"] == {"browsing_analytics": True, "personalised_offers": True}
    assert ledger_of(seeded_database, answer["id"]) == [
        ("browsing_analytics", True, "website"),
        ("personalised_offers", True, "website"),
    ]
    page.reload()
    page.wait_for_function("() => window.fakeAnalyticsLoaded === true")  # the callback runs on every page
    expect(page.locator(BANNER)).to_have_count(0)
    assert shop.analytics_hits == hits + 2
    session.errors.assert_none()


def test_refusing_is_remembered_until_the_policy_changes_or_six_months_pass(sessions: Sessions, shop: Shop) -> None:
    session = sessions.open(locale="fr-FR")
    page = visit(session, shop)
    page.locator(BANNER).get_by_role("button", name="Tout refuser", exact=True).click()
    answer = wait_sent(page)
    assert answer["choices"] == {"browsing_analytics": False, "personalised_offers": False}
    page.reload()
    page.wait_for_function("() => window.PortalConsent !== undefined")
    expect(page.locator(BANNER)).to_have_count(0)
    assert page.evaluate("() => PortalConsent.granted('browsing_analytics')") is False
    assert page.evaluate("() => window.fakeAnalyticsLoaded") is None

    # A new policy version: asked again.
    page.evaluate(
        f"() => localStorage.setItem('{KEY}', JSON.stringify({{...{json.dumps(answer)}, policy: '2020-01'}}))"
    )
    page.reload()
    expect(page.locator(BANNER).get_by_role("dialog")).to_be_visible()
    # Six months later: asked again.
    expired = {**answer, "at": answer["at"] - 183 * 86_400_000}
    page.evaluate(f"() => localStorage.setItem('{KEY}', {json.dumps(json.dumps(expired))})")
    page.reload()
    expect(page.locator(BANNER).get_by_role("dialog")).to_be_visible()
    session.errors.assert_none()


def test_choosing_ticks_nothing_and_the_keyboard_reaches_everything(sessions: Sessions, shop: Shop) -> None:
    session = sessions.open(locale="en-GB")
    page = visit(session, shop, "en")
    dialog = page.locator(BANNER).get_by_role("dialog")
    dialog.get_by_role("button", name="Choose", exact=True).click()
    boxes = dialog.get_by_role("checkbox")
    expect(boxes).to_have_count(2)
    for index in range(2):
        expect(boxes.nth(index)).not_to_be_checked()  # nothing pre-ticked
    expect(boxes.first).to_be_focused()
    page.keyboard.press("Space")  # browsing analytics, first in the register
    dialog.get_by_role("button", name="Save my choices").focus()
    page.keyboard.press("Enter")
    page.wait_for_function("() => window.fakeAnalyticsLoaded === true")
    assert wait_sent(page)["choices"] == {"browsing_analytics": True, "personalised_offers": False}

    # "Cookie settings" reopens the choices, with the keyboard; Escape closes them (a refusal) and gives focus back.
    page.locator("#settings").focus()
    page.keyboard.press("Enter")
    expect(page.locator(BANNER).get_by_role("dialog")).to_be_focused()
    page.keyboard.press("Escape")
    expect(page.locator(BANNER)).to_have_count(0)
    expect(page.locator("#settings")).to_be_focused()
    page.wait_for_function("() => document.documentElement.getAttribute('data-analytics') === 'false'")
    assert wait_sent(page)["choices"] == {"browsing_analytics": False, "personalised_offers": False}
    session.errors.assert_none()


def test_global_privacy_control_is_a_refusal_and_the_banner_says_so(
    sessions: Sessions, shop: Shop, seeded_database: str
) -> None:
    session = sessions.open(locale="fr-FR", extra_http_headers={"Sec-GPC": "1"})
    session.context.add_init_script(GPC_INIT)
    page = visit(session, shop)
    notice = page.locator(BANNER).get_by_role("status")
    expect(notice).to_contain_text("Global Privacy Control")
    expect(page.locator(BANNER).get_by_role("dialog")).to_have_count(0)
    answer = wait_sent(page)
    assert answer["kind"] == "gpc" and not any(answer["choices"].values())
    assert page.evaluate("() => window.fakeAnalyticsLoaded") is None
    engine = make_engine(seeded_database)
    try:
        with transaction(engine) as session_db:
            gpc = session_db.scalars(select(BannerTally).where(BannerTally.metric == "gpc")).all()
        assert sum(t.count for t in gpc) >= 1
    finally:
        engine.dispose()
    # The settings say it too, and nothing is ticked.
    notice.get_by_role("button", name="Gérer mes cookies").click()
    dialog = page.locator(BANNER).get_by_role("dialog")
    expect(dialog).to_contain_text("Global Privacy Control")
    dialog.get_by_role("button", name="Choisir", exact=True).click()
    expect(dialog.get_by_role("checkbox", checked=True)).to_have_count(0)
    session.errors.assert_none()


@pytest.mark.parametrize("lang", ["fr", "en"])
def test_axe_finds_nothing_serious_with_the_banner_open(sessions: Sessions, shop: Shop, lang: str) -> None:
    session = sessions.open(locale="fr-FR" if lang == "fr" else "en-GB")
    page = visit(session, shop, lang)
    expect(page.locator(BANNER).get_by_role("dialog")).to_be_visible()
    assert page.locator(BANNER).get_by_role("dialog").get_attribute("lang") == lang
    assert _axe(page) == []
    page.locator(BANNER).get_by_role("dialog").get_by_role(
        "button", name="Choose" if lang == "en" else "Choisir"
    ).click()
    assert _axe(page) == []
    page.set_viewport_size({"width": 360, "height": 740})  # a phone: the banner fits, buttons stacked
    dialog_box = page.locator(BANNER).get_by_role("dialog").bounding_box()
    assert dialog_box is not None and dialog_box["width"] <= 360
    assert _axe(page) == []


# --- The visitor becomes a customer -----------------------------------------------------------------------------


def _link(portal: LiveServer, database_url: str, visitor_id: str, email: str) -> dict:
    engine = make_engine(database_url)
    try:
        with transaction(engine) as session:
            _, key = create_api_key(
                session, secret_key=TEST_SECRET, name="Web shop", scopes=("consents:write",), now=utcnow()
            )
    finally:
        engine.dispose()
    request = urllib.request.Request(  # noqa: S310  (our own http://127.0.0.1 URL)
        portal.url("/api/v1/website-visitors/link"),
        data=json.dumps({"visitor_id": visitor_id, "email": email}).encode(),
        headers={"authorization": f"Bearer {key}", "content-type": "application/json"},
        method="POST",
    )
    with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310
        return json.loads(response.read())


def test_the_visitor_signs_in_and_finds_the_website_consent_and_the_portal_choice_wins_on_the_site(
    sessions: Sessions, shop: Shop, inbox: Inbox, live_server: LiveServer, seeded_database: str
) -> None:
    session = sessions.open(locale="fr-FR")
    page = visit(session, shop)
    page.locator(BANNER).get_by_role("button", name="Tout accepter", exact=True).click()
    visitor_id = wait_sent(page)["id"]
    assert page.evaluate("() => PortalConsent.visitorId()") == visitor_id
    # The web shop, at sign-in, tells the portal who the visitor is.
    linked = _link(live_server, seeded_database, visitor_id, CAMILLE)
    assert linked["joined"] == 2

    portal = sessions.open(locale="fr-FR")
    sign_in_by_code(portal, inbox, CAMILLE)
    portal.goto("/me/consents")
    history = portal.page.locator("table.consent-history__table tbody")
    expect(history).to_contain_text("sur notre site, par son bandeau de consentement")
    # Camille withdraws browsing analytics in the portal.
    button_of(portal.page, "browsing_analytics").click()
    wait_until_settled(portal.page)
    expect(portal.page.locator("#purpose-browsing_analytics .consent-status")).to_have_attribute(
        "data-state", "withdrawn"
    )

    # Back on the website: the portal's later choice wins, the analytics tag is not loaded.
    hits = shop.analytics_hits
    page.reload()
    page.wait_for_function(
        "() => document.documentElement.getAttribute('data-analytics') !== null || "
        "(JSON.parse(localStorage.getItem('portal-consent')) || {}).linked === true"
    )
    page.wait_for_function("() => PortalConsent.granted('browsing_analytics') === false")
    page.reload()  # a page after the site learnt it: the callback waits for the record and never loads the tag
    page.wait_for_function("() => window.PortalConsent !== undefined")
    page.wait_for_timeout(500)
    assert page.evaluate("() => PortalConsent.granted('browsing_analytics')") is False
    assert page.evaluate("() => PortalConsent.granted('personalised_offers')") is True
    assert page.evaluate("() => window.fakeAnalyticsLoaded") is None
    assert shop.analytics_hits <= hits + 1  # at most the first reload, before it knew the visitor was linked
    assert uuid.UUID(visitor_id).version == 4
    session.errors.assert_none()
