"""The customer's list of requests a page at a time, with and without htmx; bad links are a clear 400."""

from __future__ import annotations

import re
from datetime import UTC, datetime

import pytest

from tests.factories import make_customer
from tests.request_factories import add_requests
from tests.web.helpers import sign_in_by_code

EN = {"accept-language": "en"}
FR = {"accept-language": "fr"}
HTMX = {**EN, "hx-request": "true"}
END = datetime(2026, 11, 1, 9, tzinfo=UTC)


def references(html: str) -> list[str]:
    return re.findall(r'<th scope="row"><a href="/me/requests/(R-[0-9A-Z]{4}-[0-9A-Z]{4})"', html)


def older_link(html: str) -> str | None:
    match = re.search(r'<a class="button" href="(/me/requests\?after=[^"]+)" hx-get="([^"]+)"', html)
    if match:
        assert match.group(1) == match.group(2)
        return match.group(1)
    return None


@pytest.fixture
def customer(client, smtp, engine):  # type: ignore[no-untyped-def]
    customer = make_customer(engine, email="camille@example.com")
    sign_in_by_code(client, smtp, "camille@example.com")
    return customer


def test_the_list_comes_twenty_five_at_a_time_without_javascript(client, engine, customer) -> None:
    expected = add_requests(engine, customer.id, 60, end=END)
    page = client.get("/me/requests", headers=EN).text
    seen = references(page)
    link = older_link(page)
    pages = 1
    while link:
        page = client.get(link, headers=EN).text
        assert "<html" in page and "Back to your newest requests" in page
        seen += references(page)
        link = older_link(page)
        pages += 1
    assert pages == 3 and seen == expected


def test_with_htmx_the_next_requests_replace_the_link(client, engine, customer) -> None:
    expected = add_requests(engine, customer.id, 30, end=END)
    link = older_link(client.get("/me/requests", headers=EN).text)
    assert link == f"/me/requests?after={expected[24]}"
    rows = client.get(link, headers=HTMX)
    assert rows.status_code == 200 and rows.headers["vary"] == "HX-Request"
    assert rows.text.lstrip().startswith("<tr>") and "<table" not in rows.text and "<html" not in rows.text
    assert references(rows.text) == expected[25:] and rows.text.count("autofocus") == 1
    assert older_link(rows.text) is None


@pytest.mark.parametrize("after", ["nonsense", "R-ZZZZ-ZZZZ", "OTHER", "R-" + "A" * 40])
def test_a_bad_link_to_older_requests_is_a_clear_bad_request(client, engine, customer, after: str) -> None:
    add_requests(engine, customer.id, 3, end=END)
    if after == "OTHER":  # someone else's request: never a way into their list
        other = make_customer(engine, email="other@example.com")
        after = add_requests(engine, other.id, 3, end=END, prefix="B")[0]
    for headers, message in ((EN, "This link to older requests is not valid"), (FR, "lien vers vos demandes")):
        response = client.get(f"/me/requests?after={after}", headers=headers)
        assert response.status_code == 400 and message in response.text
    assert client.get("/me/requests?after=a&after=b", headers=EN).status_code == 400


def test_a_reference_typed_loosely_still_works_as_the_cursor(client, engine, customer) -> None:
    expected = add_requests(engine, customer.id, 30, end=END)
    loose = expected[24].lower().replace("-", "")
    assert references(client.get(f"/me/requests?after={loose}", headers=EN).text) == expected[25:]
