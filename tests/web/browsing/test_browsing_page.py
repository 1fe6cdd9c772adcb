"""The browsing history page: signed-in only, both languages, the consent explained, paginated by day."""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, timedelta

import pytest

from tests.browsing_factories import add_daily_views, add_views_at, record_consent
from tests.factories import add_page_views, make_customer
from tests.web.helpers import sign_in_by_code

EN = {"accept-language": "en"}
FR = {"accept-language": "fr"}


def signed_in(client, smtp, engine, email: str = "camille@example.com"):  # type: ignore[no-untyped-def]
    customer = make_customer(engine, email=email)
    sign_in_by_code(client, smtp, email)
    return customer


def day_headings(html: str) -> list[str]:
    return re.findall(r'<h3 id="day-(\d{4}-\d{2}-\d{2})"', html)


def test_signing_in_is_required(client) -> None:
    response = client.get("/me/browsing", follow_redirects=False)
    assert response.status_code == 303 and response.headers["location"] == "/signin"


def test_the_pages_viewed_by_day_in_english(client, smtp, engine) -> None:
    customer = signed_in(client, smtp, engine)
    add_page_views(engine, customer, 3, start=datetime(2026, 11, 2, 8, 5, tzinfo=UTC))
    response = client.get("/me/browsing", headers=EN)
    assert response.status_code == 200
    html = response.text
    assert '<html lang="en">' in html
    assert "<title>Pages you viewed on our website · Maison Aubépine</title>" in html
    assert "You have allowed browsing analytics since 1 November 2026." in html
    assert "Each page view is kept for 13 months, then erased" in html  # from the purpose register
    assert day_headings(html) == ["2026-11-02"]
    assert "Monday, 2 November 2026" in html and "3 pages" in html
    assert '<time datetime="2026-11-02T08:05:00+00:00">09:05</time>' in html  # Paris time
    assert "https://www.maison-aubepine.example/p/2" in html
    assert 'href="https://www.maison-aubepine.example' not in html  # shown as text, never followed from here
    assert "<caption" in html and "Show older pages viewed" not in html


def test_the_page_in_french(client, smtp, engine) -> None:
    customer = signed_in(client, smtp, engine)
    add_page_views(engine, customer, 1, start=datetime(2026, 11, 2, 8, tzinfo=UTC))
    html = client.get("/me/browsing", headers=FR).text
    assert '<html lang="fr">' in html
    assert "lundi 2 novembre 2026" in html
    assert "Chaque page consultée est conservée 13 mois, puis effacée" in html


def test_without_consent_the_page_says_why_nothing_is_recorded(client, smtp, engine) -> None:
    signed_in(client, smtp, engine)
    html = client.get("/me/browsing", headers=EN).text
    assert "You have never allowed browsing analytics" in html
    assert "We hold no page views, because we never record them without your consent." in html
    assert day_headings(html) == []


def test_after_a_withdrawal_the_page_says_since_when_nothing_is_recorded(client, smtp, engine) -> None:
    customer = signed_in(client, smtp, engine)
    add_page_views(engine, customer, 2, start=datetime(2026, 10, 1, 8, tzinfo=UTC))
    record_consent(engine, customer, granted=False, at=datetime(2026, 10, 5, 8, tzinfo=UTC))
    html = client.get("/me/browsing", headers=EN).text
    assert "You withdrew your consent to browsing analytics on 5 October 2026" in html
    assert day_headings(html) == ["2026-10-01"]  # recorded before the withdrawal, kept for their retention


def test_consented_but_nothing_recorded_yet(client, smtp, engine) -> None:
    customer = signed_in(client, smtp, engine)
    record_consent(engine, customer, granted=True, at=datetime(2026, 11, 20, 8, tzinfo=UTC))
    html = client.get("/me/browsing", headers=EN).text
    assert "You have allowed browsing analytics since 20 November 2026." in html
    assert "We have recorded no page yet" in html


def test_older_days_by_plain_link_and_by_htmx(client, smtp, engine) -> None:
    customer = signed_in(client, smtp, engine)
    record_consent(engine, customer, granted=True, at=datetime(2025, 1, 1, tzinfo=UTC))
    add_daily_views(engine, customer, days=20, per_day=2, last_day=date(2026, 11, 20))
    first = client.get("/me/browsing", headers=EN)
    newest = [(date(2026, 11, 20) - timedelta(days=n)).isoformat() for n in range(20)]
    assert day_headings(first.text) == newest[:14]
    assert first.headers["vary"] == "HX-Request"
    link = re.search(r'<a class="button" href="(/me/browsing\?after=\d+\.\d+)" hx-get="\1"', first.text)
    assert link, first.text
    older = client.get(link.group(1), headers=EN)
    assert older.status_code == 200 and '<html lang="en">' in older.text
    assert day_headings(older.text) == newest[14:]
    assert "Back to the most recent days" in older.text and "Show older pages viewed" not in older.text

    fragment = client.get(link.group(1), headers={**EN, "hx-request": "true"})
    assert fragment.status_code == 200 and "<html" not in fragment.text and "<h1" not in fragment.text
    assert day_headings(fragment.text) == newest[14:]
    assert 'tabindex="-1" autofocus' in fragment.text  # focus moves to the first day loaded
    assert fragment.headers["vary"] == "HX-Request"


def test_a_busy_day_continues_on_the_next_page_under_a_heading_of_its_own(client, smtp, engine) -> None:
    customer = signed_in(client, smtp, engine)
    record_consent(engine, customer, granted=True, at=datetime(2025, 1, 1, tzinfo=UTC))
    add_daily_views(engine, customer, days=2, per_day=150, last_day=date(2026, 11, 20))
    first = client.get("/me/browsing", headers=EN).text
    assert day_headings(first) == ["2026-11-20"] and "150 pages" in first and "(continued)" not in first
    link = re.search(r'href="(/me/browsing\?after=(\d+)\.(\d+))"', first)
    assert link, first
    fragment = client.get(link.group(1), headers={**EN, "hx-request": "true"}).text
    # The continued day's id differs from the first page's heading, which stays on the page above it.
    continued = f'id="day-2026-11-20-{link.group(2)}-{link.group(3)}"'
    assert continued in fragment and 'id="day-2026-11-20"' not in fragment
    assert "(continued)" in fragment and day_headings(fragment) == ["2026-11-19"]
    assert fragment.count('<td class="browsing-table__url">') == 100
    french = client.get(link.group(1), headers=FR).text
    assert "(suite)" in french


@pytest.mark.parametrize("after", ["", "1", "abc.1", "1.2.3", "-5.1", "1" * 18 + ".1", "١.1"])
def test_a_bad_cursor_is_a_400_page_not_an_error(client, smtp, engine, after: str) -> None:
    signed_in(client, smtp, engine)
    response = client.get("/me/browsing", params={"after": after}, headers=EN)
    assert response.status_code == 400
    assert '<html lang="en">' in response.text and "Error code 400" in response.text


@pytest.mark.parametrize("before", ["yesterday", "2026-13-01", "2026-02-30", "2026-1-1", "20261101", "", "2026-11-01x"])
def test_a_bad_before_is_a_400_page_not_an_error(client, smtp, engine, before: str) -> None:
    signed_in(client, smtp, engine)
    response = client.get("/me/browsing", params={"before": before}, headers=EN)
    assert response.status_code == 400
    assert '<html lang="en">' in response.text and "Error code 400" in response.text


def test_a_customer_never_sees_another_customers_views(client, smtp, engine) -> None:
    leo = make_customer(engine, email="leo@example.org")
    moment = datetime(2026, 11, 2, 9, tzinfo=UTC)
    add_views_at(engine, leo, [moment], site="leo-secret")
    record_consent(engine, leo, granted=True, at=moment - timedelta(days=3))
    camille = signed_in(client, smtp, engine)
    add_views_at(engine, camille, [moment], site="camille")
    html = client.get("/me/browsing", headers=EN).text
    assert "/camille/" in html and "leo-secret" not in html
    assert "You have never allowed browsing analytics" in html  # Léo's consent is his, not hers
    older = client.get("/me/browsing", params={"before": "2026-11-03"}, headers=EN).text
    assert "leo-secret" not in older


def test_a_year_of_heavy_browsing_shows_a_bounded_page(client, smtp, engine) -> None:
    customer = signed_in(client, smtp, engine)
    record_consent(engine, customer, granted=True, at=datetime(2025, 11, 1, tzinfo=UTC))
    add_daily_views(engine, customer, days=30, per_day=270, last_day=date(2026, 11, 20))
    html = client.get("/me/browsing", headers=EN).text
    assert "8,100 pages viewed in all" in html
    assert html.count('<td class="browsing-table__url">') == 100  # one page of views, not the day's 270
    assert day_headings(html) == ["2026-11-20"]
