"""/me/processing tells the customer when each kind of their data will be deleted."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import Engine
from starlette.testclient import TestClient

from tests.browsing_factories import add_views_at
from tests.conftest import SMTPServer
from tests.factories import make_customer
from tests.web.helpers import sign_in_by_code


def test_the_customer_sees_when_their_page_views_go(client: TestClient, engine: Engine, smtp: SMTPServer) -> None:
    customer = make_customer(engine, email="lea@example.com", preferred_language="en")
    add_views_at(engine, customer, [datetime(2026, 1, 31, 12, tzinfo=UTC)])
    client.get("/lang/en")
    assert sign_in_by_code(client, smtp, "lea@example.com").status_code == 303

    page = client.get("/me/processing")

    assert "Your page views are kept 13 months: the oldest will be deleted on" in page.text
    assert "deleted on 28 February 2027" in page.text
    assert "your data will be anonymised on" in page.text
