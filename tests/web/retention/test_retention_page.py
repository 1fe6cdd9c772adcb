"""The DPO's retention page and its CSV; agents and store staff are refused."""

from __future__ import annotations

import csv
import io
from datetime import timedelta

from sqlalchemy import Engine
from starlette.testclient import TestClient

from portal.consent.register import load_register
from portal.retention.service import run_retention
from portal.settings import Settings
from tests.browsing_factories import add_views_at
from tests.conftest import Clock, email_composer
from tests.factories import make_customer, make_store
from tests.staff_helpers import make_staff, sign_in_staff


def _sign_in(client: TestClient, engine: Engine, clock: Clock, role: str) -> None:
    store = make_store(engine) if role == "store" else None
    staff, password, secret = make_staff(engine, role=role, store_id=store.id if store else None)
    sign_in_staff(client, staff.email, password, secret, clock)


def test_agents_and_store_staff_are_refused(client: TestClient, engine: Engine, clock: Clock) -> None:
    for role in ("agent", "store"):
        client.cookies.clear()
        _sign_in(client, engine, clock, role)
        for path in ("/staff/retention", "/staff/retention.csv"):
            assert client.get(path).status_code == 403, (role, path)


def test_the_dpo_sees_each_rule_the_last_run_and_the_next(
    client: TestClient, engine: Engine, clock: Clock, settings: Settings
) -> None:
    customer = make_customer(engine)
    add_views_at(engine, customer, [clock() - timedelta(days=500), clock() - timedelta(days=450)])
    register = load_register(settings.purposes_file)
    run_retention(engine, now=clock(), settings=settings, register=register, composer=email_composer())
    add_views_at(engine, customer, [clock() - timedelta(days=420)])
    _sign_in(client, engine, clock, "dpo")

    client.get("/lang/en")
    page = client.get("/staff/retention")

    assert page.status_code == 200
    assert "Page views and their day summaries deleted" in page.text
    assert "Browsing analytics" in page.text and "13 months" in page.text
    assert "PORTAL_CLOSED_REQUEST_RETENTION_MONTHS" in page.text

    rows = list(csv.DictReader(io.StringIO(client.get("/staff/retention.csv").text)))
    views = next(row for row in rows if row["rule"] == "page_views")
    assert views["last_removed"] == "2" and views["next_removes"] == "1" and views["source"] == "browsing_analytics"
