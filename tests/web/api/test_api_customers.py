"""PUT /api/v1/customers/{customer_id}: the retailer's systems create and update customers, as a file import would."""

from __future__ import annotations

from sqlalchemy import select

from portal.db import transaction
from portal.erasure.tombstone import erased_email_hash, erased_ref_hash
from portal.models import AuditEvent, Customer, OutboxMessage, ProfileChange
from tests.conftest import TEST_SECRET
from tests.factories import make_customer
from tests.web.api.test_api import auth, make_key

ALICE = {"email": "alice@example.com", "first_name": "Alice", "last_name": "Martin", "loyalty_number": "L-1"}


def writer(engine, clock) -> str:  # type: ignore[no-untyped-def]
    return make_key(engine, clock, scopes=("customers:write",))


def test_put_creates_then_updates_then_changes_nothing(client, engine, clock) -> None:  # type: ignore[no-untyped-def]
    key = writer(engine, clock)
    created = client.put("/api/v1/customers/CRM-1", json=ALICE, headers=auth(key))
    assert created.status_code == 201
    assert created.json() == {"customer_id": "CRM-1", "outcome": "created"}
    updated = client.put("/api/v1/customers/CRM-1", json={"phone": "06 12 34 56 78"}, headers=auth(key))
    assert (updated.status_code, updated.json()["outcome"]) == (200, "updated")
    again = client.put("/api/v1/customers/CRM-1", json={**ALICE, "phone": "+33612345678"}, headers=auth(key))
    assert (again.status_code, again.json()["outcome"]) == (200, "unchanged")
    with transaction(engine) as session:
        customer = session.scalars(select(Customer)).one()
        change = session.scalars(select(ProfileChange)).one()
    assert (customer.retailer_ref, customer.email, customer.phone) == ("CRM-1", "alice@example.com", "+33612345678")
    assert (change.field, change.channel, change.actor) == ("phone", "api", f"api:{key.split('.')[0]}")


def test_put_needs_the_customers_write_scope(client, engine, clock) -> None:  # type: ignore[no-untyped-def]
    reader = make_key(engine, clock, scopes=("consents:read",))
    response = client.put("/api/v1/customers/CRM-1", json=ALICE, headers=auth(reader))
    assert response.status_code == 403


def test_bad_values_are_refused_with_the_files_messages(client, engine, clock) -> None:  # type: ignore[no-untyped-def]
    key = writer(engine, clock)
    bad = {**ALICE, "email": "not-an-address", "preferred_language": "de"}
    response = client.put("/api/v1/customers/CRM-1", json=bad, headers=auth(key, **{"accept-language": "en"}))
    assert response.status_code == 422
    assert response.json()["error"]["details"] == [
        {"field": "email", "message": "Enter an email address like name@example.com."},
        {"field": "preferred_language", "message": "Choose French or English."},
    ]
    french = client.put("/api/v1/customers/CRM-1", json=bad, headers=auth(key, **{"accept-language": "fr"}))
    assert french.json()["error"]["details"][1]["message"] == "Choisissez le français ou l'anglais."
    unknown = client.put("/api/v1/customers/CRM-1", json={"colour": "blue"}, headers=auth(key))
    assert unknown.status_code == 422
    with transaction(engine) as session:
        assert session.scalars(select(Customer)).all() == []


def test_a_merge_answers_merged_and_tells_the_retailer(client, engine, clock) -> None:  # type: ignore[no-untyped-def]
    crm = make_customer(engine, retailer_ref="CRM-1", email="a@example.com", loyalty_number=None)
    till = make_customer(engine, email="b@example.com", loyalty_number="L-1")
    response = client.put(
        "/api/v1/customers/CRM-1", json={"loyalty_number": "L-1"}, headers=auth(writer(engine, clock))
    )
    assert response.json()["outcome"] == "merged"
    with transaction(engine) as session:
        assert session.scalars(select(Customer.id)).all() == [crm.id]
        event = session.scalars(select(OutboxMessage).where(OutboxMessage.topic == "customer.merged")).one()
        merged = session.scalars(select(AuditEvent).where(AuditEvent.action == "customer.merged")).one()
    assert event.kind == "webhook" and merged.detail == {**merged.detail, "merged": f"customer:{till.id}"}


def test_a_conflict_is_409_and_an_erased_customer_410(client, engine, clock) -> None:  # type: ignore[no-untyped-def]
    key = writer(engine, clock)
    make_customer(engine, retailer_ref="CRM-2", email="b@example.com")
    conflict = client.put("/api/v1/customers/CRM-1", json={"email": "b@example.com"}, headers=auth(key))
    assert conflict.status_code == 409
    assert conflict.json()["error"]["code"] == "customer_conflict"
    assert conflict.json()["error"]["details"][0]["field"] == "email"

    class Keyed:
        secret_key = TEST_SECRET

    make_customer(engine, email=None, email_key=None, erased_at=clock(),
                  erased_email_hash=erased_email_hash(Keyed, "gone@example.com"),  # type: ignore[arg-type]
                  erased_ref_hash=erased_ref_hash(Keyed, "CRM-GONE"))  # type: ignore[arg-type]  # fmt: skip
    for path, body in (("CRM-GONE", {}), ("CRM-NEW", {"email": "Gone@example.com"})):
        gone = client.put(f"/api/v1/customers/{path}", json=body, headers=auth(key))
        assert gone.status_code == 410 and gone.json()["error"]["code"] == "customer_erased"

    make_customer(engine, retailer_ref="CRM-R", restricted_at=clock())
    restricted = client.put("/api/v1/customers/CRM-R", json={"city": None, "first_name": "Zoé"}, headers=auth(key))
    assert restricted.status_code == 409 and restricted.json()["error"]["code"] == "customer_restricted"
    with transaction(engine) as session:
        assert session.scalars(select(Customer.retailer_ref).where(Customer.erased_at.is_(None))).all() == [
            "CRM-2",
            "CRM-R",
        ]
