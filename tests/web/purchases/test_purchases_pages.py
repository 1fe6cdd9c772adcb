"""The purchases pages as a browser sees them, with and without htmx, and what another customer can never see."""

from __future__ import annotations

import dataclasses
import re
from datetime import UTC, datetime, timedelta

import pytest
from starlette.testclient import TestClient

from portal.models import Purchase, Store
from tests.factories import make_customer, make_store
from tests.purchase_factories import add_purchase
from tests.sql_count import app_engines, counting_statements
from tests.web.helpers import sign_in_by_code

ALICE = "alice@example.com"
BRUNO = "bruno@example.org"
EN = {"accept-language": "en"}
HTMX = {**EN, "hx-request": "true"}
START = datetime(2025, 1, 1, 9, tzinfo=UTC)


@dataclasses.dataclass
class Shopping:
    lyon: Store
    paris: Store  # only Bruno bought there
    web: Store
    alice: list[Purchase]  # newest first
    bruno: list[Purchase]


@pytest.fixture
def shopping(engine) -> Shopping:
    alice, bruno = make_customer(engine, email=ALICE), make_customer(engine, email=BRUNO)
    lyon, paris = make_store(engine, city="Lyon"), make_store(engine, city="Paris")
    web = make_store(engine, code="WEB", kind="web", city="")
    alice_purchases = [
        add_purchase(engine, alice, lyon, at=START + timedelta(days=i), receipt_number=f"ALICE-{i:03d}")
        for i in range(28)
    ]
    alice_purchases.append(
        add_purchase(
            engine,
            alice,
            web,
            at=datetime(2026, 3, 14, 15, 30, tzinfo=UTC),
            channel="click_and_collect",
            receipt_number="ALICE-WEB-1",
            lines=[("SEC-01", "Sécateur de précision", 1, 123450), ("GNT-02", "Gants de jardin", 3, 1250)],
        )
    )
    alice_purchases.append(
        add_purchase(engine, alice, web, at=datetime(2026, 1, 2, tzinfo=UTC), receipt_number="ALICE-WEB-2")
    )
    bruno_purchases = [
        add_purchase(engine, bruno, store, at=START + timedelta(days=i, hours=1), receipt_number=f"BRUNO-{i:03d}")
        for i, store in enumerate([paris, web, lyon, paris, web])
    ]
    newest_first = sorted(alice_purchases, key=lambda p: (p.purchased_at, p.id), reverse=True)
    return Shopping(lyon=lyon, paris=paris, web=web, alice=newest_first, bruno=bruno_purchases)


@pytest.fixture
def alice_client(client: TestClient, smtp, shopping) -> TestClient:
    assert sign_in_by_code(client, smtp, ALICE).status_code == 303
    return client


def receipts_in(html: str) -> list[str]:
    return re.findall(r'href="/me/purchases/\d+"[^>]*>Receipt ([\w-]+)</a>', html)


def older_link(html: str) -> str | None:
    match = re.search(r'<a class="button" href="([^"]+)" hx-get="\1"[^>]*>Show older purchases</a>', html)
    return match.group(1).replace("&amp;", "&") if match else None


def flat(text: str) -> str:
    return re.sub(r"\s+", " ", text.replace("\xa0", " ").replace("\u202f", " "))


def test_the_list_in_english_newest_first_with_totals(alice_client: TestClient, shopping: Shopping) -> None:
    page = alice_client.get("/me/purchases", headers=EN)
    assert page.status_code == 200
    assert page.headers["cache-control"] == "no-store"
    assert page.headers["vary"] == "HX-Request"
    assert '<html lang="en">' in page.text
    assert "<title>Your purchases ·" in page.text
    assert '<a href="/me">Your data</a>' in page.text
    assert receipts_in(page.text) == [p.receipt_number for p in shopping.alice[:25]]
    text = flat(page.text)
    assert "<caption>Your purchases, newest first</caption>" in text
    assert '<th scope="col">Date</th>' in text and '<th scope="col" class="num">Amount</th>' in text
    assert "30 purchases, €2,515.52 in total" in text  # 29 × €42.88 + €1,272.00
    assert "14 March 2026" in text and "€1,272.00" in text and "Online, collected in store" in text
    # Totals per store and per year, from the summary table.
    assert re.search(
        r"Totals per store.*Web shop</a></th> <td class=\"num\">2</td> <td class=\"num\">€1,314.88</td>", text
    )
    assert re.search(r'href="/me/purchases\?year=2025">2025</a></th> <td class="num">28</td>', text)
    # A GET form with labels, enhanced by htmx, offering only the stores Alice bought in.
    assert '<form method="get" action="/me/purchases"' in page.text and 'hx-push-url="true"' in page.text
    assert '<label for="filter-store">Store</label>' in page.text
    assert f'<option value="{shopping.lyon.id}">' in page.text and f'value="{shopping.paris.id}"' not in page.text
    assert not any(p.receipt_number in page.text for p in shopping.bruno)


def test_amounts_and_dates_in_french(alice_client: TestClient, shopping: Shopping) -> None:
    page = alice_client.get("/me/purchases", headers={"accept-language": "fr"})
    assert page.status_code == 200 and '<html lang="fr">' in page.text
    text = flat(page.text)
    assert "2 515,52 €" in text and "42,88 €" in text and "14 mars 2026" in text
    receipt = alice_client.get(f"/me/purchases/{shopping.alice[0].id}", headers={"accept-language": "fr"})
    assert '<html lang="fr">' in receipt.text and "1 234,50 €" in flat(receipt.text)


def test_older_purchases_by_plain_links_without_javascript(alice_client: TestClient, shopping: Shopping) -> None:
    seen: list[str] = []
    url: str | None = "/me/purchases"
    while url:
        page = alice_client.get(url, headers=EN)
        assert page.status_code == 200 and "<html" in page.text
        seen += receipts_in(page.text)
        url = older_link(page.text)
        assert len(seen) <= 30
    assert seen == [p.receipt_number for p in shopping.alice]
    assert "<title>Older purchases ·" in page.text and "Back to the newest purchases" in page.text


def test_htmx_gets_only_the_next_rows(alice_client: TestClient, shopping: Shopping) -> None:
    older = older_link(alice_client.get("/me/purchases", headers=EN).text)
    assert older == f"/me/purchases?after={shopping.alice[24].id}"
    rows = alice_client.get(older, headers=HTMX)
    assert rows.status_code == 200
    assert rows.headers["vary"] == "HX-Request" and rows.headers["cache-control"] == "no-store"
    assert rows.text.lstrip().startswith("<tr>") and "<html" not in rows.text and "<table" not in rows.text
    assert receipts_in(rows.text) == [p.receipt_number for p in shopping.alice[25:]]
    assert older_link(rows.text) is None  # the last page: no further link
    assert re.search(r'href="/me/purchases/\d+" autofocus>', rows.text)  # focus moves to the first new row
    # The same URL without htmx is a whole page.
    assert "<html" in alice_client.get(older, headers=EN).text


def test_a_later_page_reads_one_page_and_never_counts(alice_client: TestClient, shopping: Shopping) -> None:
    with counting_statements(*app_engines(alice_client.app)) as seen:  # type: ignore[arg-type]
        page = alice_client.get(f"/me/purchases?after={shopping.alice[24].id}", headers=HTMX)
    statements = [statement.lower() for statement in seen]
    assert page.status_code == 200
    reads = [s for s in statements if "from purchase" in s]
    assert reads and not any("count(" in s for s in reads), reads
    assert not any("purchase_line" in s for s in statements), "the list must not read receipt lines"
    assert any("limit" in s for s in reads)


def test_the_load_more_link_is_enhanced_to_append_rows(alice_client: TestClient, shopping: Shopping) -> None:
    page = alice_client.get("/me/purchases", headers=EN).text
    link = re.search(r'<a class="button" href="([^"]+)" hx-get="([^"]+)" hx-target="([^"]+)" hx-swap="([^"]+)">', page)
    assert link and link.group(1) == link.group(2) and link.group(1).startswith("/me/purchases?after=")
    # The link sits in the table's last row, which the next rows (and their own link) replace.
    assert (link.group(3), link.group(4)) == ("closest tr", "outerHTML")
    assert re.search(r'<tr class="purchase-more">\s*<td colspan="5">\s*<a class="button"', page)


def test_htmx_filters_swap_the_results_only(alice_client: TestClient, shopping: Shopping) -> None:
    url = f"/me/purchases?store={shopping.web.id}&channel=&year="
    fragment = alice_client.get(url, headers=HTMX)
    assert fragment.status_code == 200 and fragment.headers["vary"] == "HX-Request"
    assert fragment.text.lstrip().startswith('<section id="purchase-results"') and "<form" not in fragment.text
    assert receipts_in(fragment.text) == ["ALICE-WEB-1", "ALICE-WEB-2"]
    assert "2 purchases, €1,314.88 in total" in flat(fragment.text)
    assert 'href="/me/purchases">Clear the filters</a>' in fragment.text

    full = alice_client.get(url, headers=EN)
    assert "<html" in full.text and receipts_in(full.text) == ["ALICE-WEB-1", "ALICE-WEB-2"]
    assert f'<option value="{shopping.web.id}" selected>Web shop</option>' in full.text


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("year=2026", ["ALICE-WEB-1", "ALICE-WEB-2"]),
        ("channel=click_and_collect", ["ALICE-WEB-1"]),
        ("channel=web", ["ALICE-WEB-2"]),
        ("year=2025&channel=in_store", None),  # the 28 purchases in Lyon, in two pages
        ("year=2024", []),
    ],
)
def test_filters(alice_client: TestClient, shopping: Shopping, query: str, expected: list[str] | None) -> None:
    page = alice_client.get(f"/me/purchases?{query}", headers=EN)
    assert page.status_code == 200
    if expected is None:
        assert receipts_in(page.text) == [f"ALICE-{i:03d}" for i in range(27, 2, -1)]
        assert older_link(page.text) == f"/me/purchases?channel=in_store&year=2025&after={shopping.alice[26].id}"
    else:
        assert receipts_in(page.text) == expected
    if not expected and expected is not None:
        assert "No purchase matches these filters." in page.text
    if "channel" in query:  # the totals cannot count channels: no figure rather than a slow count
        assert 'data-testid="purchase-matching"' not in page.text


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ("store=abc", "The store chosen is not one where you made purchases."),
        ("store=99999999999999999999", "The store chosen is not one where you made purchases."),
        ("store=1&store=2", "The store chosen is not one where you made purchases."),
        ("channel=telepathy", "The way of buying chosen is not one we know."),
        ("year=twenty", "The year chosen is not a valid year."),
        ("year=99999", "The year chosen is not a valid year."),
        ("after=abc", "The link to older purchases is not valid."),
        ("after=-5", "The link to older purchases is not valid."),
        ("after=1e9", "The link to older purchases is not valid."),
        ("after=99999999999999999999999", "The link to older purchases is not valid."),
        ("after=%ff%fe", "The link to older purchases is not valid."),  # (a NUL is refused at the door: security/)
    ],
)
def test_bad_query_parameters_get_a_clear_400(alice_client: TestClient, query: str, message: str) -> None:
    for headers in (EN, HTMX):
        page = alice_client.get(f"/me/purchases?{query}", headers=headers)
        assert page.status_code == 400, page.text
        assert message in page.text and page.headers["cache-control"] == "no-store"
        assert "<title>This list of purchases cannot be shown ·" in page.text
        assert 'href="/me/purchases">Show all your purchases</a>' in page.text


def test_a_receipt_with_its_lines(alice_client: TestClient, shopping: Shopping) -> None:
    purchase = shopping.alice[0]
    page = alice_client.get(f"/me/purchases/{purchase.id}", headers=EN)
    assert page.status_code == 200 and page.headers["cache-control"] == "no-store"
    assert "<title>Receipt ALICE-WEB-1 ·" in page.text
    text = flat(page.text)
    assert '<caption id="receipt-lines-caption">Items on this receipt</caption>' in text
    assert (
        '<th scope="row">Sécateur de précision</th> <td>SEC-01</td> <td class="num">1</td>'
        ' <td class="num">€1,234.50</td> <td class="num">€1,234.50</td>'
    ) in text
    assert '<td>GNT-02</td> <td class="num">3</td> <td class="num">€12.50</td> <td class="num">€37.50</td>' in text
    assert '<th scope="row" colspan="4">Total</th> <td class="num">€1,272.00</td>' in text
    assert "14 Mar 2026, 16:30:00" in text  # Paris time
    assert "Online, collected in store" in text and "Web shop" in text
    assert 'href="/me/purchases">Back to your purchases</a>' in text and '<a href="/me">Your data</a>' in text


def test_another_customers_receipt_is_not_found(alice_client: TestClient, shopping: Shopping) -> None:
    for purchase in shopping.bruno:
        page = alice_client.get(f"/me/purchases/{purchase.id}", headers=EN)
        assert page.status_code == 404
        assert purchase.receipt_number not in page.text and "BRUNO" not in page.text
    missing = max(p.id for p in shopping.bruno) + 1000
    assert alice_client.get(f"/me/purchases/{missing}", headers=EN).status_code == 404
    assert alice_client.get("/me/purchases/99999999999999999999999", headers=EN).status_code == 404
    assert alice_client.get("/me/purchases/abc", headers=EN).status_code == 404


def test_another_customers_page_of_purchases_is_not_found(alice_client: TestClient, shopping: Shopping) -> None:
    for headers in (EN, HTMX):
        page = alice_client.get(f"/me/purchases?after={shopping.bruno[-1].id}", headers=headers)
        assert page.status_code == 404 and "BRUNO" not in page.text
    # Nor can Alice filter on a store where only Bruno bought.
    page = alice_client.get(f"/me/purchases?store={shopping.paris.id}", headers=EN)
    assert page.status_code == 400 and "BRUNO" not in page.text


def test_bruno_sees_only_his_own(client: TestClient, smtp, shopping: Shopping) -> None:
    sign_in_by_code(client, smtp, BRUNO)
    page = client.get("/me/purchases", headers=EN)
    assert receipts_in(page.text) == [p.receipt_number for p in reversed(shopping.bruno)]
    assert "ALICE" not in page.text
    assert client.get(f"/me/purchases/{shopping.alice[0].id}", headers=EN).status_code == 404


def test_signed_out_visitors_go_to_the_sign_in_page(client: TestClient, shopping: Shopping) -> None:
    for url in ("/me/purchases", f"/me/purchases/{shopping.alice[0].id}", "/me/purchases?after=abc"):
        response = client.get(url, follow_redirects=False)
        assert response.status_code == 303 and response.headers["location"] == "/signin"
