"""The day strip of /me/browsing: one slot a day since consent was first given, a bar as tall as the day's page
views, the days without consent drawn as empty dashed slots; named in both languages; drawn from the per-day
counts (no read of the page views themselves)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from tests.browsing_factories import add_views_at, record_consent
from tests.chart_helpers import (
    assert_proportional,
    charts_in,
    description_of,
    external_references,
    path_boxes,
    title_of,
)
from tests.factories import make_customer
from tests.sql_count import app_engines, counting_statements
from tests.web.helpers import sign_in_by_code

EN = {"accept-language": "en"}
FR = {"accept-language": "fr"}
STRIP = "chart-browsing-days"


def hours(day: datetime, count: int) -> list[datetime]:
    return [day + timedelta(minutes=10 * n) for n in range(count)]


def strip_customer(client, smtp, engine):  # type: ignore[no-untyped-def]
    """Consent from 10 September 2026, withdrawn on 5 October, given again on 1 November (the clock: 23 November)."""
    customer = make_customer(engine, email="strip@example.com")
    record_consent(engine, customer, granted=True, at=datetime(2026, 9, 10, 10, tzinfo=UTC))
    add_views_at(engine, customer, hours(datetime(2026, 9, 15, 9, tzinfo=UTC), 3))
    add_views_at(engine, customer, hours(datetime(2026, 9, 20, 9, tzinfo=UTC), 6), site="b")
    record_consent(engine, customer, granted=False, at=datetime(2026, 10, 5, 8, tzinfo=UTC))
    record_consent(engine, customer, granted=True, at=datetime(2026, 11, 1, 8, tzinfo=UTC))
    add_views_at(engine, customer, hours(datetime(2026, 11, 2, 9, tzinfo=UTC), 1), site="c")
    assert sign_in_by_code(client, smtp, "strip@example.com").status_code == 303
    return customer


def test_bars_for_days_with_views_and_empty_slots_for_days_without_consent(client, smtp, engine) -> None:
    strip_customer(client, smtp, engine)
    html = client.get("/me/browsing", headers=EN).text
    svg = charts_in(html)[STRIP]
    months = [t.text for t in svg.iter("{http://www.w3.org/2000/svg}text")]
    assert months == ["Sept 2026", "Oct 2026", "Nov 2026"]
    bars = path_boxes(svg, "chart-day--some")
    assert len(bars) == 3
    assert_proportional([height for _x, _y, _w, height in bars], [3, 6, 1])
    assert [x for x, _y, _w, _h in bars] == [64 + 14 * 10, 64 + 19 * 10, 64 + 1 * 10]  # 15 and 20 Sept, 2 Nov
    # Before consent (1–9 September) and from the day after the withdrawal to the new consent (6–31 October).
    assert len(path_boxes(svg, "chart-day--off")) == 9 + 26
    # Consented days without a page: 21 in September, 5 in October, 23 in November, less the 3 days with pages.
    assert len(path_boxes(svg, "chart-day--none")) == 21 + 5 + 23 - 3
    assert title_of(svg) == "Pages viewed per day"
    assert description_of(svg) == (
        "From 1 September 2026 to 23 November 2026: 10 pages viewed. Days with pages: 3; days with consent: 49; "
        "days without consent, when nothing was recorded: 35."
    )
    assert external_references(svg) == []
    assert '<td class="num">9</td>' in html  # September's pages in the table of figures


def test_the_strip_in_french(client, smtp, engine) -> None:
    strip_customer(client, smtp, engine)
    svg = charts_in(client.get("/me/browsing", headers=FR).text)[STRIP]
    assert title_of(svg) == "Pages consultées par jour"
    assert description_of(svg).startswith(
        "Du 1 septembre 2026 au 23 novembre 2026 : 10 pages consultées. Jours avec pages : 3"
    )
    assert [t.text for t in svg.iter("{http://www.w3.org/2000/svg}text")] == ["sept. 2026", "oct. 2026", "nov. 2026"]


def test_never_consented_and_nothing_held_draws_no_strip(client, smtp, engine) -> None:
    make_customer(engine, email="nobody@example.com")
    sign_in_by_code(client, smtp, "nobody@example.com")
    html = client.get("/me/browsing", headers=EN).text
    assert STRIP not in html and "we never record them without your consent" in html


def test_the_strip_reads_the_day_counts_not_the_views(client, smtp, engine) -> None:
    """Only the newest page draws it, from `page_view_day`: the htmx page of older days reads no strip."""
    strip_customer(client, smtp, engine)
    with counting_statements(*app_engines(client.app)) as statements:
        html = client.get("/me/browsing", headers=EN).text
        older = client.get("/me/browsing?before=2026-09-16", headers={**EN, "hx-request": "true"}).text
    assert STRIP in html and STRIP not in older
    reads_of_days = [s for s in statements if "FROM page_view_day" in s]
    assert len(reads_of_days) == 3  # the newest page: its days and the strip's; the older page: its days
