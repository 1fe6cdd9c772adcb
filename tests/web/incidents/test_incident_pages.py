"""The DPO's incident pages through HTTP; agents and store staff refused; the customer sees the notice on /me."""

from __future__ import annotations

import re

from sqlalchemy import Engine
from starlette.testclient import TestClient

from tests.conftest import Clock, SMTPServer, csrf_from
from tests.factories import make_customer, make_store
from tests.purchase_factories import add_purchase
from tests.staff_helpers import make_staff, sign_in_staff
from tests.web.helpers import sign_in_by_code

CAMILLE = "camille@example.com"


def _sign_in(client: TestClient, engine: Engine, clock: Clock, role: str) -> None:
    store = make_store(engine) if role == "store" else None
    staff, password, secret = make_staff(engine, role=role, store_id=store.id if store else None)
    sign_in_staff(client, staff.email, password, secret, clock)


def _post(client: TestClient, page: str, path: str, **data: str):  # type: ignore[no-untyped-def]
    return client.post(path, data={"csrf_token": csrf_from(page), **data}, follow_redirects=False)


def test_agents_and_store_staff_are_refused(client: TestClient, engine: Engine, clock: Clock) -> None:
    for role in ("agent", "store"):
        client.cookies.clear()
        _sign_in(client, engine, clock, role)
        assert client.get("/staff/incidents").status_code == 403, role
        page = client.get("/staff")
        assert _post(client, page.text, "/staff/incidents", nature="x").status_code == 403, role


def test_the_dpo_records_an_incident_selects_previews_and_sends(
    client: TestClient, engine: Engine, clock: Clock, smtp: SMTPServer
) -> None:
    store = make_store(engine, code="LYON1")
    camille = make_customer(engine, email=CAMILLE, preferred_language="en", first_name="Camille")
    add_purchase(engine, camille, store, at=clock())
    _sign_in(client, engine, clock, "dpo")
    client.get("/lang/en")

    page = client.get("/staff/incidents")
    refused = _post(client, page.text, "/staff/incidents", nature="", people_estimate="many")
    assert refused.status_code == 400 and "Tick at least one category" in refused.text

    facts = {"discovered_at": "2026-11-22T08:00", "nature": "Stolen backup", "category_identity": "1",
             "people_estimate": "40", "consequences": "Phishing", "measures": "Keys rotated"}  # fmt: skip
    recorded = _post(client, page.text, "/staff/incidents", **facts)
    assert recorded.status_code == 303
    url = recorded.headers["location"]
    page = client.get(url)
    assert "Notify the CNIL by" in page.text and "Stolen backup" in page.text

    selected = _post(client, page.text, f"{url}/select", method="store", store_code="LYON1", first_day="2026-11-01",
                     last_day="2026-11-30")  # fmt: skip
    assert selected.status_code == 200 and "1 customers found, 1 newly selected" in selected.text
    listed = _post(client, page.text, f"{url}/select", method="list", customers=f"{CAMILLE}\nwho@example.com")
    assert "line 2" in listed.text and "who@example.com" in listed.text

    parts = ("nature", "consequences", "measures", "advice")
    notice = {f"{lang}_{part}": f"{part} {lang}" for lang in ("fr", "en") for part in parts}
    assert _post(client, page.text, f"{url}/notice", **notice).status_code == 303
    preview = client.get(f"{url}/preview", params={"customer": CAMILLE})
    assert "advice en" in preview.text and "advice fr" not in preview.text

    sent = _post(client, page.text, f"{url}/send")
    assert sent.status_code == 200 and "1 notices queued" in sent.text
    again = _post(client, page.text, f"{url}/send")
    assert "0 notices queued" in again.text
    cnil = _post(client, page.text, f"{url}/cnil", cnil_notified_at="2026-11-23T09:00", cnil_reference="CNIL-77")
    assert cnil.status_code == 303
    export = client.get(f"{url}/export.csv")
    assert export.status_code == 200 and "CNIL-77" in export.text and f"customer:{camille.id}" in export.text

    # Camille, signed in, sees the notice on her overview.
    client.cookies.clear()
    client.get("/lang/en")
    assert "advice en" in smtp.wait_for(CAMILLE).text  # the notice, delivered by the app's outbox worker
    assert sign_in_by_code(client, smtp, CAMILLE, count=2).status_code == 303
    overview = client.get("/me")
    assert re.search(r"A security incident concerns your data", overview.text) and "advice en" in overview.text
