"""POST /api/v1/purchases: the file import's purchases kind, behind the purchases:write scope, all or nothing."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import func, select

from portal.db import transaction
from portal.models import AuditEvent, Purchase, PurchaseLine, PurchaseTotal
from tests.factories import make_customer, make_store
from tests.web.api.test_api import auth, make_key


def receipt(number: str, **fields: object) -> dict[str, object]:
    body: dict[str, object] = {
        "receipt_number": number,
        "store_code": "WEB",
        "purchased_at": "2026-06-02T09:30:00+02:00",
        "customer_id": "C0001",
        "total": "34.97",
        "lines": [
            {"sku": "GANT-01", "label": "Gants de jardin", "quantity": 2, "unit_price": 9.99},
            {"sku": "SEC-02", "label": "Sécateur", "quantity": 1, "unit_price": "14.99", "line_total": "14.99"},
        ],
    }
    return body | fields


def counts(engine) -> tuple[int, int, int]:  # type: ignore[no-untyped-def]
    with transaction(engine) as session:
        return tuple(
            session.execute(select(func.count()).select_from(table)).scalar_one()
            for table in (Purchase, PurchaseLine, PurchaseTotal)
        )  # type: ignore[return-value]


def test_receipts_are_recorded_once_and_counted(client, engine, clock) -> None:
    make_store(engine, code="WEB", kind="web")
    customer = make_customer(engine, retailer_ref="C0001")
    make_customer(engine, retailer_ref="C0002", restricted_at=datetime(2026, 1, 1, tzinfo=UTC))
    key = make_key(engine, clock, scopes=("purchases:write",))
    batch = {"purchases": [receipt("W-1"), receipt("W-2", customer_id=None), receipt("W-3", customer_id="C0002")]}
    answer = client.post("/api/v1/purchases", json=batch, headers=auth(key))
    assert answer.status_code == 200
    assert answer.json() == {
        "received": 3,
        "created": 1,
        "unchanged": 0,
        "dropped": 2,
        "dropped_because": {"anonymous": 1, "erased": 0, "restricted": 1},
    }
    again = client.post("/api/v1/purchases", json=receipt("W-1"), headers=auth(key))
    assert (again.json()["created"], again.json()["unchanged"]) == (0, 1)
    assert counts(engine) == (1, 2, 1)
    with transaction(engine) as session:
        purchase = session.scalars(select(Purchase)).one()
        total = session.scalars(select(PurchaseTotal)).one()
        actions = [e.action for e in session.scalars(select(AuditEvent).order_by(AuditEvent.id))]
    assert (purchase.customer_id, purchase.channel, purchase.total_cents) == (customer.id, "web", 3497)
    assert purchase.purchased_at == datetime(2026, 6, 2, 7, 30, tzinfo=UTC)
    assert (total.purchase_count, total.amount_cents) == (1, 3497)
    assert actions.count("purchases.imported") == 2


def test_a_batch_with_one_bad_receipt_is_refused_whole_naming_the_field(client, engine, clock) -> None:
    make_store(engine, code="WEB", kind="web")
    make_customer(engine, retailer_ref="C0001")
    key = make_key(engine, clock, scopes=("purchases:write",))
    bad = receipt("W-4", lines=[{"sku": "A", "quantity": 0, "unit_price": 1}], total=None)
    batch = {"purchases": [receipt("W-1"), receipt("W-2"), receipt("W-3"), bad]}
    refused = client.post("/api/v1/purchases", json=batch, headers=auth(key, **{"accept-language": "en"}))
    assert refused.status_code == 422
    assert refused.json()["error"]["details"] == [
        {
            "field": "purchases.3.lines.0.quantity",
            "message": "The quantity must be 1 or more (returns are not imported).",
        }
    ]
    unknown = client.post(
        "/api/v1/purchases", json=receipt("W-5", store_code="NICE"), headers=auth(key, **{"accept-language": "fr"})
    )
    assert unknown.status_code == 422
    assert unknown.json()["error"]["details"] == [
        {
            "field": "store_code",
            "message": "Aucun magasin n'a le code « NICE » : importez d'abord les magasins (portal import stores).",
        }
    ]
    wrong_total = client.post(
        "/api/v1/purchases", json=receipt("W-6", total="30.00"), headers=auth(key, **{"accept-language": "en"})
    )
    assert wrong_total.json()["error"]["details"] == [
        {"field": "total", "message": "The receipt total €30.00 is not the sum of its lines (€34.97)."}
    ]
    shapeless = client.post(
        "/api/v1/purchases",
        json={"purchases": [receipt("W-7", lines=[])]},
        headers=auth(key, **{"accept-language": "en"}),
    )
    assert shapeless.status_code == 422
    assert shapeless.json()["error"]["details"][0]["field"] == "purchases.0.lines"
    assert counts(engine) == (0, 0, 0)


def test_a_receipt_sent_again_with_other_content_is_refused(client, engine, clock) -> None:
    make_store(engine, code="WEB", kind="web")
    make_customer(engine, retailer_ref="C0001")
    key = make_key(engine, clock, scopes=("purchases:write",))
    assert client.post("/api/v1/purchases", json=receipt("W-1"), headers=auth(key)).status_code == 200
    changed = receipt("W-1", purchased_at="2026-06-02T10:30:00+02:00")
    refused = client.post("/api/v1/purchases", json=changed, headers=auth(key, **{"accept-language": "en"}))
    assert refused.status_code == 422
    assert refused.json()["error"]["details"] == [
        {
            "field": "receipt_number",
            "message": "Receipt W-1 is already recorded with other content; it is not replaced.",
        }
    ]


def test_recording_purchases_needs_the_purchases_write_scope(client, engine, clock) -> None:
    key = make_key(engine, clock, scopes=("customers:write",))
    assert client.post("/api/v1/purchases", json=receipt("W-1"), headers=auth(key)).status_code == 403
    assert client.post("/api/v1/purchases", json=receipt("W-1")).status_code == 401
    assert counts(engine) == (0, 0, 0)


def test_the_document_describes_the_operation(client) -> None:
    document = client.get("/api/openapi.json").json()
    operation = document["paths"]["/api/v1/purchases"]["post"]
    assert operation["operationId"] == "recordPurchases"
    assert set(document["components"]["schemas"]) >= {"Receipt", "PurchaseBatch", "PurchaseResult"}
