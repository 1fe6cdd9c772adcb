"""The spending charts of /me/purchases: one bar per year and per store, as long as the amount, named in the
reader's language, pointing at nothing outside the page; drawn from the totals (no query of their own)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from starlette.testclient import TestClient

from tests.chart_helpers import (
    assert_proportional,
    charts_in,
    description_of,
    external_references,
    rects,
    size,
    title_of,
)
from tests.factories import make_customer, make_store
from tests.purchase_factories import add_purchase
from tests.sql_count import app_engines, counting_statements
from tests.web.helpers import sign_in_by_code

DENISE = "denise@example.com"
LINES_100 = [("SKU-1", "Bêche", 1, 10000)]  # €100.00
LINES_50 = [("SKU-2", "Râteau", 1, 5000)]  # €50.00


@pytest.fixture
def denise_client(client: TestClient, engine, smtp) -> TestClient:
    denise = make_customer(engine, email=DENISE)
    lyon, nantes = make_store(engine, city="Lyon"), make_store(engine, city="Nantes")
    web = make_store(engine, code="WEB", kind="web", city="")
    add_purchase(engine, denise, lyon, at=datetime(2025, 3, 1, 10, tzinfo=UTC), lines=LINES_100)
    add_purchase(engine, denise, lyon, at=datetime(2025, 6, 1, 10, tzinfo=UTC), lines=LINES_100)
    add_purchase(engine, denise, nantes, at=datetime(2026, 2, 1, 10, tzinfo=UTC), lines=LINES_50)
    add_purchase(engine, denise, web, at=datetime(2026, 4, 1, 10, tzinfo=UTC), lines=LINES_100 + LINES_50)
    assert sign_in_by_code(client, smtp, DENISE).status_code == 303
    return client


def test_one_bar_per_year_and_per_store_as_long_as_the_amount(denise_client: TestClient) -> None:
    page = denise_client.get("/me/purchases", headers={"accept-language": "en"})
    assert page.status_code == 200
    charts = charts_in(page.text)
    assert set(charts) == {"chart-spending-years", "chart-spending-stores"}

    years = charts["chart-spending-years"]
    bars = rects(years, "chart-bar")
    # 2025: €200 (two at Lyon), 2026: €200 (€50 at Nantes, €150 on the web shop): oldest year first.
    assert [b.findtext("{http://www.w3.org/2000/svg}title") for b in bars] == ["2025: €200.00", "2026: €200.00"]
    assert_proportional([size(b, "width") for b in bars], [200, 200])

    stores = charts["chart-spending-stores"]
    bars = rects(stores, "chart-bar")
    assert len(bars) == 3
    titles = [b.findtext("{http://www.w3.org/2000/svg}title") or "" for b in bars]
    amounts = {title.rsplit(": ", 1)[1] for title in titles}
    assert amounts == {"€200.00", "€50.00", "€150.00"}
    values = [float(t.rsplit("€", 1)[1]) for t in titles]
    assert_proportional([size(b, "width") for b in bars], values)
    assert any(t.startswith("Web shop: ") for t in titles)

    assert title_of(years) == "Your spending per year"
    assert description_of(years) == "2 years, €400.00 in all; the most was €200.00 in 2025."
    assert title_of(stores) == "Your spending per store"
    assert "€200.00 at Maison Aubépine Lyon" in description_of(stores)
    for svg in charts.values():
        assert external_references(svg) == []
        assert svg.get("role") == "img"


def test_the_charts_speak_french_with_babel_amounts(denise_client: TestClient) -> None:
    denise_client.get("/lang/fr?next=/me")
    page = denise_client.get("/me/purchases")
    charts = charts_in(page.text)
    years = charts["chart-spending-years"]
    assert title_of(years) == "Vos dépenses par année"
    assert description_of(years) == "2 années, 400,00\xa0€ en tout ; le plus : 200,00\xa0€ en 2025."
    assert title_of(charts["chart-spending-stores"]) == "Vos dépenses par magasin"
    titles = [b.findtext("{http://www.w3.org/2000/svg}title") for b in rects(years, "chart-bar")]
    assert titles == ["2025 : 200,00\xa0€", "2026 : 200,00\xa0€"]


def test_the_charts_add_no_query(denise_client: TestClient) -> None:
    """The charts are drawn from the totals the page already reads: the page makes as many statements as the
    totals and the list need, with or without charts (the htmx fragment of the next rows draws none)."""
    with counting_statements(*app_engines(denise_client.app)) as statements:  # type: ignore[arg-type]
        page = denise_client.get("/me/purchases", headers={"accept-language": "en"})
    assert page.status_code == 200 and "chart-spending-years" in page.text
    assert sum("purchase_total" in s for s in statements) == 1
