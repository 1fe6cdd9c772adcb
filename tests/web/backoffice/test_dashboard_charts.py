"""The DPO's dashboard on /staff/reports: each chart parsed, its bars counted and measured against known figures,
named in both languages, pointing at nothing outside the page; the same figures in the CSV."""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import Engine
from starlette.testclient import TestClient

from tests.browsing_factories import record_consent
from tests.chart_helpers import (
    assert_proportional,
    charts_in,
    description_of,
    external_references,
    rects,
    size,
    title_of,
)
from tests.conftest import Clock
from tests.factories import make_customer
from tests.sql_count import app_engines, counting_statements
from tests.staff_helpers import make_staff, sign_in_staff
from tests.unit.backoffice.test_queue import file

SVG = "{http://www.w3.org/2000/svg}"
EN = {"accept-language": "en"}
FR = {"accept-language": "fr"}
PERIOD = {"from": "2026-09", "to": "2026-11"}  # the clock: 23 November 2026


@pytest.fixture
def dpo_client(client: TestClient, engine: Engine, clock: Clock) -> TestClient:
    september, october = datetime(2026, 9, 10, 9, tzinfo=UTC), datetime(2026, 10, 6, 9, tzinfo=UTC)
    for days in (3, 5, 45):  # September: three access requests answered, one late (after its one-month due date)
        file(engine, received_at=september, status="completed", closed_at=september + timedelta(days=days))
    for _ in range(2):  # October: two erasures, one extended, both open (due 6 November, or 6 January extended)
        file(engine, received_at=october, type="erasure")
    file(engine, received_at=october, type="erasure", extended_due_at=datetime(2027, 1, 6, 9, tzinfo=UTC))
    file(engine, received_at=october, type="rectification", status="completed", closed_at=october + timedelta(days=1))
    file(engine, received_at=clock() - timedelta(days=2), type="access")  # November: one open, due 21 December
    customers = [make_customer(engine, email=f"c{n}@example.com") for n in range(4)]
    for customer in customers:  # four given in September, three withdrawn in November
        record_consent(engine, customer, granted=True, at=september, purpose="email_newsletter")
    for customer in customers[:3]:
        record_consent(engine, customer, granted=False, at=clock() - timedelta(days=1), purpose="email_newsletter")
    staff, password, secret = make_staff(engine, role="dpo")
    sign_in_staff(client, staff.email, password, secret, clock)
    return client


def bars_of(svg, series: str) -> list[float]:  # type: ignore[no-untyped-def]
    return [size(r, "height") for r in rects(svg, f"chart-bar--{series}")]


def test_the_dashboards_bars_follow_the_figures(dpo_client: TestClient) -> None:
    page = dpo_client.get("/staff/reports", params=PERIOD, headers=EN)
    assert page.status_code == 200
    charts = charts_in(page.text)
    assert set(charts) == {
        "chart-received",
        "chart-on-time",
        "chart-answer-days",
        "chart-extensions",
        "chart-due-weeks",
        "chart-consent-email_newsletter",
    }
    for svg in charts.values():
        assert external_references(svg) == []
        assert svg.get("role") == "img" and title_of(svg) and description_of(svg)

    received = charts["chart-received"]
    # September: 3 access; October: 3 erasures and 1 rectification (stacked); November: 1 access.
    assert_proportional(bars_of(received, "access") + bars_of(received, "erasure"), [3, 1, 3])
    assert len(bars_of(received, "rectification")) == 1
    assert description_of(received) == (
        "8 requests received from September 2026 to November 2026; the busiest month was October 2026 with 4."
    )

    on_time = charts["chart-on-time"]  # September 2 of 3 on time, October 1 of 1
    assert_proportional(bars_of(on_time, "ontime"), [66.7, 100])  # the share is kept to one decimal
    titles = [r.findtext(f"{SVG}title") for r in rects(on_time, "chart-bar")]
    assert titles == ["September 2026: 66.7%", "October 2026: 100%"]

    days = charts["chart-answer-days"]  # September: median 5, p90 37 (between 5 and 45); October: 1
    assert_proportional(bars_of(days, "median") + bars_of(days, "p90"), [5, 1, 37, 1])

    assert len(bars_of(charts["chart-extensions"], "extended")) == 1
    due = charts["chart-due-weeks"]  # two erasures overdue; one due the week of 21 December, one of 4 January
    assert_proportional(bars_of(due, "overdue") + bars_of(due, "due"), [2, 1, 1])
    assert len(rects(due, "chart-bar")) == 3

    consent = charts["chart-consent-email_newsletter"]  # given above the line, withdrawn below it
    assert title_of(consent) == "Consent to “Email newsletter”, given and withdrawn per month"
    given, withdrawn = rects(consent, "chart-bar--given"), rects(consent, "chart-bar--withdrawn")
    assert_proportional([size(r, "height") for r in given + withdrawn], [4, 3])
    assert size(given[0], "y") + size(given[0], "height") == pytest.approx(size(withdrawn[0], "y"), abs=0.02)


def test_the_dashboard_in_french(dpo_client: TestClient) -> None:
    charts = charts_in(dpo_client.get("/staff/reports", params=PERIOD, headers=FR).text)
    assert title_of(charts["chart-received"]) == "Demandes reçues par mois, par type"
    consent = charts["chart-consent-email_newsletter"]
    assert title_of(consent) == "Consentement « Lettre d'information par email », donné et retiré par mois"
    assert description_of(charts["chart-received"]).startswith("8 demandes reçues de septembre 2026 à novembre 2026")
    titles = [r.findtext(f"{SVG}title") for r in rects(charts["chart-on-time"], "chart-bar")]
    assert titles == ["septembre 2026 : 66,7\xa0%", "octobre 2026 : 100\xa0%"]


def test_the_csv_holds_the_dashboards_figures(dpo_client: TestClient) -> None:
    rows = list(csv.reader(io.StringIO(dpo_client.get("/staff/reports.csv", params=PERIOD).text)))
    assert ["month_type", "2026-10", "erasure", "3", "", "", "", ""] in rows
    assert ["month_extended", "2026-10", "", "1", "", "", "", ""] in rows
    assert ["due_week", "overdue", "", "2", "", "", "", ""] in rows
    assert ["consent_given", "2026-09", "email_newsletter", "4", "", "", "", ""] in rows
    assert ["consent_withdrawn", "2026-11", "email_newsletter", "3", "", "", "", ""] in rows


def test_the_dashboard_costs_no_more_statements_than_before(dpo_client: TestClient) -> None:
    """The open requests are read once (they were counted by two aggregates), the consent ledger once: the page
    makes as many statements on the report as before the charts, and the charts none."""
    with counting_statements(*app_engines(dpo_client.app)) as statements:  # type: ignore[arg-type]
        assert dpo_client.get("/staff/reports", params=PERIOD, headers=EN).status_code == 200
    assert sum("FROM privacy_request" in s for s in statements) == 2
    assert sum("FROM consent_event" in s for s in statements) == 1
