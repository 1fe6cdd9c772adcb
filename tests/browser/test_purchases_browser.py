"""The heavy customer's purchases in a real Chromium: five pages of them with htmx and without JavaScript, a receipt
from the fifth page, and the store filter in English and in French.

Camille has 1,241 purchases (3 in each of 3 shops, the rest on the web shop), every one of them €42.88, so pages
and totals can be worked out here. The expected order comes from the database itself (newest first, ties broken by
id), not from the portal's code. French wording may not be translated yet: elements are found by structure (ids,
hrefs, form actions) and French checks stick to what Babel formats (numbers and amounts).
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from playwright.sync_api import Page, expect
from sqlalchemy import text

from portal.db import make_engine
from tests.browser.conftest import CAMILLE, Inbox, Session, Sessions
from tests.browser.test_sign_in_browser import normalised, sign_in_by_code

pytestmark = pytest.mark.browser

PAGE_SIZE = 25
PAGES = 5
ROWS = "#purchase-rows tr:not(.purchase-more)"
MORE = "#purchase-rows tr.purchase-more a"
FILTER_FORM = 'form[action="/me/purchases"]'
MATCHING = '[data-testid="purchase-matching"]'
RECEIPT_LINES = "table.receipt-lines"

EURO_EN = re.compile(r"€\d{1,3}(?:,\d{3})*\.\d{2}")  # €1,234.56
EURO_FR = re.compile(r"\d{1,3}(?: \d{3})*,\d{2} €")  # 1 234,56 € (once normalised)
EACH_PURCHASE = {"en": "€42.88", "fr": "42,88 €"}  # every seeded purchase: 1 x 24.90 + 2 x 8.99
ALL_PURCHASES = {"en": "€53,214.08", "fr": "53 214,08 €"}  # 1,241 x 42.88
THREE_PURCHASES = {"en": "€128.64", "fr": "128,64 €"}  # one shop: 3 x 42.88
WEB_PURCHASES = {"en": "€52,828.16", "fr": "52 828,16 €"}  # 1,232 x 42.88


@pytest.fixture(scope="module")
def camille_purchase_ids(seeded_database: str) -> list[int]:
    """Camille's purchase ids as the list must show them: newest first, the higher id first on the same moment."""
    engine = make_engine(seeded_database)
    try:
        with engine.connect() as connection:
            rows = connection.execute(
                text(
                    "SELECT purchase.id FROM purchase JOIN customer ON customer.id = purchase.customer_id "
                    "WHERE customer.email_key = :email ORDER BY purchase.purchased_at DESC, purchase.id DESC"
                ),
                {"email": CAMILLE},
            )
            ids = [row.id for row in rows]
    finally:
        engine.dispose()
    assert len(ids) == 1241
    return ids


# --- Helpers ---------------------------------------------------------------------------------------------------


def open_purchases_from_overview(session: Session) -> None:
    """Signed in on /me: follow the purchases card's link."""
    page = session.page
    page.locator('#purchases-heading a[href="/me/purchases"]').click()
    page.wait_for_url(session.url("/me/purchases"))
    expect(page.locator(ROWS)).to_have_count(PAGE_SIZE)


def shown_ids(page: Page) -> list[int]:
    hrefs = page.locator(f"{ROWS} a.receipt-link").evaluate_all("links => links.map(a => a.getAttribute('href'))")
    ids = []
    for href in hrefs:
        match = re.fullmatch(r"/me/purchases/(\d+)", href)
        assert match, f"unexpected receipt link {href!r}"
        ids.append(int(match.group(1)))
    return ids


def cell_texts(page: Page, column: int) -> list[str]:
    """The text of one column of every purchase row (0: date, 1: store, 2: how bought, 3: amount, 4: receipt)."""
    texts = page.locator(ROWS).evaluate_all("(rows, column) => rows.map(row => row.cells[column].innerText)", column)
    return [normalised(t) for t in texts]


def mark_window(page: Page) -> None:
    """A marker only a full page load can wipe out."""
    page.evaluate("() => { window.__sameDocument = true; }")


def same_document(page: Page) -> bool:
    return page.evaluate("() => window.__sameDocument === true")


def check_receipt(page: Page, *, lang: str, money: re.Pattern[str]) -> None:
    """The receipt page shows its two lines, and totals formatted as money in the page's language."""
    lines = page.locator(f"{RECEIPT_LINES} tbody tr")
    expect(lines).to_have_count(2)
    expect(lines.nth(0).locator("th")).to_have_text("Arrosoir galvanisé 10 L")
    expect(lines.nth(1).locator("th")).to_have_text("Terreau 40 L")
    line_totals = [normalised(t) for t in lines.locator("td:last-child").all_inner_texts()]
    assert all(money.fullmatch(t) for t in line_totals), line_totals
    total = normalised(page.locator(f"{RECEIPT_LINES} tfoot td.num").inner_text())
    assert money.fullmatch(total), f"the receipt total {total!r} is not formatted as money in {lang}"
    assert total == EACH_PURCHASE[lang]
    meta = normalised(page.locator("dl.receipt-meta").inner_text())
    assert EACH_PURCHASE[lang] in meta


def store_options(page: Page) -> dict[str, str]:
    """The store filter's choices, label -> value, without "all stores"."""
    options = page.locator("#filter-store option").evaluate_all(
        "options => options.filter(o => o.value).map(o => [o.textContent.trim(), o.value])"
    )
    return dict(options)


def filter_by_store(page: Page, value: str) -> None:
    """Choose a store and press "Show"; htmx swaps only the results (no full page load)."""
    page.locator("#filter-store").select_option(value)
    with page.expect_response(lambda r: re.search(rf"[?&]store={value}(&|$)", r.url) is not None) as answer:
        page.locator(f"{FILTER_FORM} button[type=submit]").click()
    assert answer.value.ok
    assert answer.value.request.headers.get("hx-request") == "true", "the filter did not go through htmx"


# --- Tests -----------------------------------------------------------------------------------------------------


def test_five_pages_with_htmx_then_a_receipt_from_the_fifth(
    sessions: Sessions, inbox: Inbox, artifacts: Path, camille_purchase_ids: list[int]
) -> None:
    session = sessions.open(locale="en-GB")
    page = session.page
    sign_in_by_code(session, inbox, CAMILLE)
    open_purchases_from_overview(session)
    assert page.evaluate("() => typeof window.htmx") == "object", "htmx did not load"
    assert shown_ids(page) == camille_purchase_ids[:PAGE_SIZE]
    matching = normalised(page.locator(MATCHING).inner_text())
    assert matching == f"1,241 purchases, {ALL_PURCHASES['en']} in total"
    mark_window(page)

    for shown_pages in range(2, PAGES + 1):
        more = page.locator(MORE)
        expect(more).to_have_count(1)
        with page.expect_response(lambda r: "/me/purchases?" in r.url and "after=" in r.url) as answer:
            more.click()
        assert answer.value.ok
        assert answer.value.request.headers.get("hx-request") == "true", "the older rows were not fetched by htmx"
        expect(page.locator(ROWS)).to_have_count(PAGE_SIZE * shown_pages)
        # The first new row's receipt link takes the focus, so keyboard users carry on where the new rows start.
        expect(page.locator(ROWS).nth(PAGE_SIZE * (shown_pages - 1)).locator("a.receipt-link")).to_be_focused()
        assert same_document(page), f"showing page {shown_pages} reloaded the whole page"

    # The link appends rows without pushing a URL: still the list's own address, one list, one "more" row.
    assert page.url == session.url("/me/purchases")
    expect(page.locator("#purchase-results")).to_have_count(1)
    expect(page.locator(MORE)).to_have_count(1)
    ids = shown_ids(page)
    assert ids == camille_purchase_ids[: PAGE_SIZE * PAGES], "pages overlap, skip or reorder purchases"
    assert all(EURO_EN.fullmatch(amount) for amount in cell_texts(page, 3))
    # The fifth page's rows and the "more" row under them (the whole 125-row page would be ~9,500px high).
    page.locator(ROWS).nth(PAGE_SIZE * (PAGES - 1) - 2).evaluate("row => row.scrollIntoView({block: 'start'})")
    page.screenshot(path=artifacts / "purchases-page5.png")

    # A receipt from the fifth page.
    row = page.locator(ROWS).nth(PAGE_SIZE * (PAGES - 1) + 7)
    purchase_id = camille_purchase_ids[PAGE_SIZE * (PAGES - 1) + 7]
    row_store = normalised(row.locator("td").nth(0).inner_text())
    row_amount = normalised(row.locator("td.num").inner_text())
    row.locator("a.receipt-link").click()
    page.wait_for_url(session.url(f"/me/purchases/{purchase_id}"))
    assert not same_document(page)
    check_receipt(page, lang="en", money=EURO_EN)
    assert row_amount == EACH_PURCHASE["en"]
    assert row_store in normalised(page.locator("dl.receipt-meta").inner_text())

    page.go_back()
    page.wait_for_url(session.url("/me/purchases"))
    expect(page.locator(ROWS).first).to_be_visible()
    assert shown_ids(page)[:PAGE_SIZE] == camille_purchase_ids[:PAGE_SIZE]
    session.errors.assert_none()


def test_five_pages_and_a_receipt_without_javascript(
    sessions: Sessions, inbox: Inbox, camille_purchase_ids: list[int]
) -> None:
    session = sessions.open(java_script_enabled=False, locale="en-GB")
    page = session.page
    sign_in_by_code(session, inbox, CAMILLE)
    assert page.evaluate("() => typeof window.htmx") == "undefined", "htmx ran: JavaScript is not off"
    open_purchases_from_overview(session)

    for shown_page in range(2, PAGES + 1):
        more = page.locator(MORE)
        href = more.get_attribute("href")
        assert href is not None and href.startswith("/me/purchases?after=")
        more.click()
        page.wait_for_url(session.url(href))
        # A full page each time, holding only that page's rows.
        first = PAGE_SIZE * (shown_page - 1)
        expect(page.locator(ROWS)).to_have_count(PAGE_SIZE)
        assert shown_ids(page) == camille_purchase_ids[first : first + PAGE_SIZE], f"page {shown_page} is wrong"
        expect(page.locator("h1")).to_have_text("Older purchases")
        expect(page.locator('#purchase-results a.button[href="/me/purchases"]')).to_have_count(1)

    row = page.locator(ROWS).nth(12)
    purchase_id = camille_purchase_ids[PAGE_SIZE * (PAGES - 1) + 12]
    row.locator("a.receipt-link").click()
    page.wait_for_url(session.url(f"/me/purchases/{purchase_id}"))
    check_receipt(page, lang="en", money=EURO_EN)
    page.locator('main p a.button[href="/me/purchases"]').click()
    page.wait_for_url(session.url("/me/purchases"))
    assert shown_ids(page) == camille_purchase_ids[:PAGE_SIZE]
    session.errors.assert_none()


@pytest.mark.parametrize(
    ("locale", "lang", "money"),
    [pytest.param("en-GB", "en", EURO_EN, id="english"), pytest.param("fr-FR", "fr", EURO_FR, id="french")],
)
def test_filter_by_a_store_with_htmx(
    sessions: Sessions, inbox: Inbox, locale: str, lang: str, money: re.Pattern[str]
) -> None:
    session = sessions.open(locale=locale)
    page = session.page
    sign_in_by_code(session, inbox, CAMILLE)
    open_purchases_from_overview(session)
    assert page.locator("html").get_attribute("lang") == lang

    before = normalised(page.locator(MATCHING).inner_text())
    assert ALL_PURCHASES[lang] in before
    assert ("1,241" if lang == "en" else "1 241") in before
    amounts = cell_texts(page, 3)
    assert amounts and all(money.fullmatch(a) for a in amounts), amounts
    assert set(amounts) == {EACH_PURCHASE[lang]}

    options = store_options(page)
    assert len(options) == 4, options  # three shops and the web shop
    lyon = next(label for label in options if "Lyon" in label)
    web = list(options)[-1]  # shops by name, then the web shop
    mark_window(page)

    # One shop: its three purchases only, and the summary says so.
    filter_by_store(page, options[lyon])
    expect(page.locator(ROWS)).to_have_count(3)
    assert cell_texts(page, 1) == [lyon] * 3
    assert all(money.fullmatch(a) for a in cell_texts(page, 3))
    after = normalised(page.locator(MATCHING).inner_text())
    assert after != before
    assert THREE_PURCHASES[lang] in after and ALL_PURCHASES[lang] not in after
    expect(page.locator(MORE)).to_have_count(0)
    expect(page.locator("#purchase-results-heading")).to_be_focused()
    expect(page.locator("#filter-store")).to_have_value(options[lyon])
    assert re.search(rf"[?&]store={options[lyon]}(&|$)", page.url), f"the filter is not in the URL: {page.url}"
    assert same_document(page), "filtering reloaded the whole page"

    # The web shop: many pages, and "older purchases" keeps the filter.
    filter_by_store(page, options[web])
    expect(page.locator(ROWS)).to_have_count(PAGE_SIZE)
    assert WEB_PURCHASES[lang] in normalised(page.locator(MATCHING).inner_text())
    older = page.locator(MORE).get_attribute("href")
    assert older is not None and f"store={options[web]}" in older, older
    page.locator(MORE).click()
    expect(page.locator(ROWS)).to_have_count(2 * PAGE_SIZE)
    assert cell_texts(page, 1) == [web] * (2 * PAGE_SIZE)
    assert same_document(page)

    # Back: htmx restores the one-shop results (the whole page, fetched again: nothing is kept in localStorage).
    with page.expect_response(lambda r: f"store={options[lyon]}" in r.url) as restored:
        page.go_back()
    assert restored.value.request.headers.get("hx-history-restore-request") == "true"
    page.wait_for_url(re.compile(rf"[?&]store={options[lyon]}(&|$)"))
    expect(page.locator(ROWS)).to_have_count(3)
    assert same_document(page), "going back reloaded the whole page instead of letting htmx restore it"
    assert cell_texts(page, 1) == [lyon] * 3
    expect(page.locator("header.site-header")).to_have_count(1)
    expect(page.locator("#purchase-results")).to_have_count(1)
    assert THREE_PURCHASES[lang] in normalised(page.locator(MATCHING).inner_text())

    # And a receipt, formatted in the page's language.
    page.locator(f"{ROWS} a.receipt-link").first.click()
    page.wait_for_url(re.compile(r"/me/purchases/\d+$"))
    assert page.locator("html").get_attribute("lang") == lang
    check_receipt(page, lang=lang, money=money)
    session.errors.assert_none()
