"""PUT /api/v1/stores/{code}: the file import's stores kind, behind the purchases:write scope."""

from __future__ import annotations

from sqlalchemy import select

from portal.db import transaction
from portal.models import AuditEvent, Store
from tests.web.api.test_api import auth, make_key


def stores(engine) -> dict[str, tuple[str, str | None, str]]:  # type: ignore[no-untyped-def]
    with transaction(engine) as session:
        return {s.code: (s.name, s.city, s.kind) for s in session.scalars(select(Store))}


def test_a_store_is_created_updated_and_found_unchanged(client, engine, clock) -> None:
    key = make_key(engine, clock, scopes=("purchases:write",))
    body = {"name": "Maison Aubépine Lyon", "city": "Lyon"}
    created = client.put("/api/v1/stores/LYO-01", json=body, headers=auth(key))
    assert created.status_code == 200 and created.json() == {"code": "LYO-01", "outcome": "created"}
    assert client.put("/api/v1/stores/LYO-01", json=body, headers=auth(key)).json()["outcome"] == "unchanged"
    web = client.put("/api/v1/stores/WEB", json={"name": "Boutique en ligne", "kind": "web"}, headers=auth(key))
    assert web.json()["outcome"] == "created"
    moved = client.put("/api/v1/stores/LYO-01", json={**body, "name": "Lyon Confluence"}, headers=auth(key))
    assert moved.json()["outcome"] == "updated"
    assert stores(engine) == {"LYO-01": ("Lyon Confluence", "Lyon", "store"), "WEB": ("Boutique en ligne", None, "web")}
    with transaction(engine) as session:
        events = [(e.action, e.target, e.actor) for e in session.scalars(select(AuditEvent).order_by(AuditEvent.id))]
    prefix = key.split(".")[0]
    assert [e for e in events if e[0].startswith("store.")] == [
        ("store.created", "store:LYO-01", f"api:{prefix}"),
        ("store.created", "store:WEB", f"api:{prefix}"),
        ("store.updated", "store:LYO-01", f"api:{prefix}"),
    ]


def test_writing_stores_needs_the_purchases_write_scope(client, engine, clock) -> None:
    key = make_key(engine, clock, scopes=("customers:write",))
    refused = client.put("/api/v1/stores/A1", json={"name": "A"}, headers=auth(key))
    assert refused.status_code == 403
    assert client.put("/api/v1/stores/A1", json={"name": "A"}).status_code == 401
    assert stores(engine) == {}


def test_invalid_stores_are_refused_with_details_in_the_callers_language(client, engine, clock) -> None:
    key = make_key(engine, clock, scopes=("purchases:write",))
    too_long = client.put(
        "/api/v1/stores/" + "A" * 17, json={"name": "A"}, headers=auth(key, **{"accept-language": "en"})
    )
    assert too_long.status_code == 422
    assert too_long.json()["error"]["details"] == [
        {"field": "code", "message": "This value is not in the expected format."}
    ]
    # Control characters are refused at the door, for every route (portal/web/input_guard.py).
    control = client.put("/api/v1/stores/A1", json={"name": "A\x01"}, headers=auth(key, **{"accept-language": "fr"}))
    assert control.status_code == 400
    assert control.json()["error"]["code"] == "control_characters"
    missing = client.put("/api/v1/stores/A1", json={"city": "Lyon"}, headers=auth(key, **{"accept-language": "en"}))
    assert missing.status_code == 422 and missing.json()["error"]["details"][0]["field"] == "name"
    unknown = client.put("/api/v1/stores/A1", json={"name": "A", "kind": "kiosk"}, headers=auth(key))
    assert unknown.status_code == 422
    assert stores(engine) == {}
