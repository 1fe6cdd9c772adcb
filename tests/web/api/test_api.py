"""The retailer API: keys and scopes, consent reads and writes, consent-gated browsing ingestion, JSON errors."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import func, select

from portal.api.keys import create_api_key, revoke_api_key
from portal.cli import main as cli_main
from portal.consent import ledger
from portal.db import transaction
from portal.models import ApiKey, AuditEvent, ConsentEvent, OutboxMessage, PageView, PageViewTotal
from tests.conftest import TEST_SECRET
from tests.factories import make_customer

ALL_SCOPES = ("consents:read", "consents:write", "browsing:write", "customers:write", "purchases:write")


def make_key(engine, clock, scopes=ALL_SCOPES, name="CRM") -> str:  # type: ignore[no-untyped-def]
    with transaction(engine) as session:
        _, full_key = create_api_key(session, secret_key=TEST_SECRET, name=name, scopes=scopes, now=clock())
    return full_key


def auth(key: str, **headers: str) -> dict[str, str]:
    return {"authorization": f"Bearer {key}", **headers}


def give(engine, app, customer_id: int, purpose: str, granted: bool, when) -> None:  # type: ignore[no-untyped-def]
    with transaction(engine) as session:
        ledger.record_consent(
            session,
            register=app.state.portal.register,
            customer_id=customer_id,
            purpose=purpose,
            granted=granted,
            channel="web",
            actor="customer",
            now=when,
            locale="fr",
        )


# --- Keys and scopes --------------------------------------------------------------------------------------------


def test_calls_without_a_valid_key_are_refused_with_json(client, engine, clock) -> None:
    key = make_key(engine, clock)
    prefix = key.split(".")[0]
    for headers in ({}, {"authorization": "Basic abc"}, auth(prefix + ".wrong"), auth("nonsense")):
        response = client.get("/api/v1/purposes", headers=headers)
        assert response.status_code == 401
        assert response.headers["content-type"] == "application/json"
        assert response.headers["www-authenticate"].startswith("Bearer")
        assert response.json()["error"]["code"] in ("unauthenticated", "invalid_key")
    assert client.get("/api/v1/purposes", headers=auth(key)).status_code == 200
    with transaction(engine) as session:
        stored = session.scalars(select(ApiKey)).one()
        assert key.split(".")[1] not in stored.secret_hash  # only a keyed hash is kept
        revoke_api_key(session, prefix=prefix, now=clock())
    assert client.get("/api/v1/purposes", headers=auth(key)).status_code == 401


def test_each_call_needs_its_scope(client, engine, clock) -> None:
    customer = make_customer(engine, retailer_ref="C1")
    reader = make_key(engine, clock, scopes=("consents:read",))
    writer = make_key(engine, clock, scopes=("browsing:write",))
    assert client.get("/api/v1/customers/C1/consents", headers=auth(reader)).status_code == 200
    refused = client.get("/api/v1/customers/C1/consents", headers=auth(writer))
    assert refused.status_code == 403
    assert refused.json()["error"]["code"] == "forbidden"
    change = {"customer_id": "C1", "purpose": "sms_offers", "granted": True, "channel": "store",
              "policy_version": client.app.state.portal.register.policy_version, "locale": "fr"}  # fmt: skip
    assert client.post("/api/v1/consents", json=change, headers=auth(reader)).status_code == 403
    event = {"customer_id": "C1", "url": "https://shop.example/a", "viewed_at": clock().isoformat()}
    assert client.post("/api/v1/browsing-events", json=event, headers=auth(reader)).status_code == 403
    assert client.post("/api/v1/browsing-events", json=event, headers=auth(writer)).status_code == 200
    with transaction(engine) as session:
        assert session.scalar(select(func.count()).select_from(ConsentEvent)) == 0
        assert customer.id


def test_apikey_command_creates_lists_and_revokes(database_url, monkeypatch, capsys) -> None:
    monkeypatch.setenv("PORTAL_DATABASE_URL", database_url)
    monkeypatch.setenv("PORTAL_SECRET_KEY", TEST_SECRET)
    assert cli_main(["apikey", "create", "--name", "Tills", "--scopes", "consents:read,consents:write"]) == 0
    key = capsys.readouterr().out.strip().splitlines()[-1]
    assert key.startswith("ppk_") and "." in key
    assert cli_main(["apikey", "list"]) == 0
    listed = capsys.readouterr().out
    assert "Tills" in listed and "consents:read,consents:write" in listed and key.split(".")[1] not in listed
    assert cli_main(["apikey", "create", "--name", "X", "--scopes", "everything"]) == 2
    assert "unknown scope" in capsys.readouterr().err
    assert cli_main(["apikey", "revoke", key.split(".")[0]]) == 0
    assert "revoked" in capsys.readouterr().out
    assert cli_main(["apikey", "revoke", "ppk_nothere"]) == 2


# --- Reading consents -------------------------------------------------------------------------------------------


def test_consents_read_by_customer_id_or_email_show_nothing_pre_ticked(client, app, engine, clock) -> None:
    customer = make_customer(engine, email="Lea.Martin@example.com", retailer_ref="C000042")
    key = make_key(engine, clock, scopes=("consents:read",))
    body = client.get("/api/v1/customers/C000042/consents", headers=auth(key)).json()
    codes = [p.code for p in app.state.portal.register.consent_based()]
    assert [c["purpose"] for c in body["consents"]] == codes
    assert not any(c["granted"] or c["usable"] for c in body["consents"])
    assert body["customer_id"] == "C000042" and body["restricted"] is False

    give(engine, app, customer.id, "email_newsletter", True, clock() - timedelta(days=3))
    looked_up = client.post("/api/v1/consents/lookup", json={"email": "lea.martin@EXAMPLE.com"}, headers=auth(key))
    assert looked_up.status_code == 200
    newsletter = next(c for c in looked_up.json()["consents"] if c["purpose"] == "email_newsletter")
    assert newsletter["granted"] and newsletter["usable"] and newsletter["channel"] == "web"
    sms = next(c for c in looked_up.json()["consents"] if c["purpose"] == "sms_offers")
    assert sms == {"purpose": "sms_offers", "granted": False, "usable": False, "changed_at": None, "channel": None}


def test_a_restricted_customer_reads_as_not_usable(client, app, engine, clock) -> None:
    customer = make_customer(engine, retailer_ref="C7", restricted_at=clock())
    give(engine, app, customer.id, "email_newsletter", True, clock() - timedelta(days=1))
    body = client.get("/api/v1/customers/C7/consents", headers=auth(make_key(engine, clock))).json()
    newsletter = next(c for c in body["consents"] if c["purpose"] == "email_newsletter")
    assert body["restricted"] is True and newsletter["granted"] is True and newsletter["usable"] is False


def test_unknown_and_erased_customers_are_not_found(client, engine, clock) -> None:
    make_customer(engine, email="gone@example.com", retailer_ref="C9", erased_at=clock())
    key = make_key(engine, clock)
    for response in (
        client.get("/api/v1/customers/C9/consents", headers=auth(key)),
        client.get("/api/v1/customers/nobody/consents", headers=auth(key)),
        client.post("/api/v1/consents/lookup", json={"email": "gone@example.com"}, headers=auth(key)),
    ):
        assert response.status_code == 404
        assert response.json()["error"]["code"] == "customer_not_found"


# --- Recording consents from other channels ---------------------------------------------------------------------


def test_a_consent_given_at_the_till_is_recorded_with_its_channel_and_version(client, app, engine, clock) -> None:
    customer = make_customer(engine, email="till@example.com", retailer_ref="C55")
    key = make_key(engine, clock, scopes=("consents:write",))
    version = app.state.portal.register.policy_version
    change = {"customer_id": "C55", "purpose": "sms_offers", "granted": True, "channel": "store",
              "policy_version": version, "locale": "fr",
              "occurred_at": (clock() - timedelta(minutes=20)).isoformat()}  # fmt: skip
    first = client.post("/api/v1/consents", json=change, headers=auth(key))
    assert first.status_code == 200, first.text
    assert first.json()["changed"] is True and first.json()["consent"]["granted"] is True
    again = client.post("/api/v1/consents", json=change, headers=auth(key))
    assert again.json()["changed"] is False  # idempotent: a retry records nothing
    with transaction(engine) as session:
        (event,) = session.scalars(select(ConsentEvent).where(ConsentEvent.customer_id == customer.id)).all()
        assert (event.channel, event.policy_version, event.granted) == ("store", version, True)
        assert event.actor == f"api:{key.split('.')[0]}"
        assert event.occurred_at == clock() - timedelta(minutes=20)
        assert event.wording_hash == app.state.portal.register.wording_hash("sms_offers", "fr")
        topics = session.scalars(select(OutboxMessage.topic)).all()
        assert "consent.changed" in topics
        assert session.scalars(select(AuditEvent.action)).all().count("consent.granted") == 1

    withdrawn = client.post(
        "/api/v1/consents", json={**change, "granted": False, "occurred_at": None}, headers=auth(key)
    )
    assert withdrawn.json()["consent"] == {
        "purpose": "sms_offers", "granted": False, "usable": False,
        "changed_at": clock().isoformat().replace("+00:00", "Z"), "channel": "store",
    }  # fmt: skip


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"purpose": "order_management"}, "purpose"),  # not based on consent
        ({"purpose": "no_such_purpose"}, "purpose"),
        ({"policy_version": "1999-01"}, "policy_version"),
        ({"channel": "carrier pigeon"}, "channel"),
        ({"occurred_at": "2026-11-23T10:00:00"}, "occurred_at"),  # no offset
        ({"granted": "maybe"}, "granted"),
        ({"email": "a@example.com"}, "body"),  # both email and customer_id
        ({"extra": 1}, "extra"),
    ],
)
def test_bad_consent_changes_get_422_with_the_field_named(client, engine, clock, change, field) -> None:
    make_customer(engine, retailer_ref="C1")
    base = {"customer_id": "C1", "purpose": "sms_offers", "granted": True, "channel": "store",
            "policy_version": client.app.state.portal.register.policy_version, "locale": "en"}  # fmt: skip
    response = client.post("/api/v1/consents", json={**base, **change}, headers=auth(make_key(engine, clock)))
    assert response.status_code == 422, response.text
    error = response.json()["error"]
    assert error["code"] == "invalid_request"
    assert any(d["field"] == field for d in error["details"]), error
    with transaction(engine) as session:
        assert session.scalar(select(func.count()).select_from(ConsentEvent)) == 0


def test_a_late_answer_cannot_overrule_a_newer_one(client, app, engine, clock) -> None:
    customer = make_customer(engine, retailer_ref="C2")
    give(engine, app, customer.id, "sms_offers", True, clock() - timedelta(hours=3))
    give(engine, app, customer.id, "sms_offers", False, clock() - timedelta(hours=1))
    late = {"customer_id": "C2", "purpose": "sms_offers", "granted": True, "channel": "store",
            "policy_version": app.state.portal.register.policy_version, "locale": "fr",
            "occurred_at": (clock() - timedelta(hours=2)).isoformat()}  # fmt: skip
    response = client.post("/api/v1/consents", json=late, headers=auth(make_key(engine, clock)))
    assert response.status_code == 409
    assert response.json()["error"]["code"] == "newer_answer_recorded"


# --- Browsing events --------------------------------------------------------------------------------------------


def test_browsing_events_are_kept_only_while_consent_stood(client, app, engine, clock) -> None:
    customer = make_customer(engine, email="web@example.com", retailer_ref="C3")
    now = clock()
    give(engine, app, customer.id, "browsing_analytics", True, now - timedelta(days=10))
    give(engine, app, customer.id, "browsing_analytics", False, now - timedelta(days=2))

    def at(days: float, **who: str) -> dict:
        return {
            **who,
            "url": f"https://shop.example/p/{days}",
            "title": "Produit",
            "viewed_at": (now - timedelta(days=days)).isoformat(),
        }  # noqa: E501

    events = [
        at(12, customer_id="C3"),  # before consent
        at(9, customer_id="C3"),  # while consented
        at(5, email="WEB@example.com"),  # while consented, by email
        at(1, customer_id="C3"),  # after withdrawal
        at(4, customer_id="nobody"),  # unknown customer
    ]
    response = client.post("/api/v1/browsing-events", json={"events": events}, headers=auth(make_key(engine, clock)))
    assert response.status_code == 200, response.text
    assert response.json() == {
        "received": 5, "kept": 2, "dropped": 3,
        "dropped_because": {"no_consent": 2, "unknown_customer": 1, "restricted": 0},
    }  # fmt: skip
    with transaction(engine) as session:
        urls = sorted(session.scalars(select(PageView.url).where(PageView.customer_id == customer.id)))
        assert urls == ["https://shop.example/p/5", "https://shop.example/p/9"]
        assert session.get(PageViewTotal, customer.id).view_count == 2  # the overview's totals follow
        audit = session.scalars(select(AuditEvent).where(AuditEvent.action == "browsing.ingested")).one()
        assert audit.detail == {"kept": 2, "no_consent": 2, "unknown_customer": 1, "restricted": 0}


def test_a_single_event_is_accepted_too(client, app, engine, clock) -> None:
    customer = make_customer(engine, retailer_ref="C4")
    give(engine, app, customer.id, "browsing_analytics", True, clock() - timedelta(days=1))
    event = {"customer_id": "C4", "url": "https://shop.example/", "viewed_at": clock().isoformat()}
    response = client.post("/api/v1/browsing-events", json=event, headers=auth(make_key(engine, clock)))
    assert response.json()["kept"] == 1


def test_a_batch_with_a_bad_event_is_refused_whole(client, app, engine, clock) -> None:
    customer = make_customer(engine, retailer_ref="C5")
    give(engine, app, customer.id, "browsing_analytics", True, clock() - timedelta(days=1))
    good = {"customer_id": "C5", "url": "https://shop.example/", "viewed_at": clock().isoformat()}
    key = make_key(engine, clock)
    cases = [
        ({"events": [good, {**good, "url": "javascript:alert(1)"}]}, "events.1.url"),
        ({"events": [good, {**good, "viewed_at": (clock() + timedelta(days=1)).isoformat()}]}, "events.1.viewed_at"),
        ({"events": []}, "events"),
        ({"events": [good] * 1001}, "events"),
    ]
    for body, field in cases:
        response = client.post("/api/v1/browsing-events", json=body, headers=auth(key))
        assert response.status_code == 422, (field, response.text)
        assert any(d["field"] == field for d in response.json()["error"]["details"]), (field, response.json())
    with transaction(engine) as session:
        assert session.scalar(select(func.count()).select_from(PageView)) == 0


# --- Transport-level errors -------------------------------------------------------------------------------------


def test_malformed_requests_get_json_errors_in_the_callers_language(client, engine, clock) -> None:
    key = make_key(engine, clock)
    not_json = client.post(
        "/api/v1/consents", content=b"{nope", headers=auth(key, **{"content-type": "application/json"})
    )
    assert not_json.status_code == 400 and not_json.json()["error"]["code"] == "invalid_json"
    form = client.post("/api/v1/consents", data={"a": "b"}, headers=auth(key))
    assert form.status_code == 415
    huge = client.post(
        "/api/v1/browsing-events",
        content=b"[" + b" " * (1024 * 1024 + 1) + b"]",
        headers=auth(key, **{"content-type": "application/json"}),
    )
    assert huge.status_code == 413
    assert client.delete("/api/v1/consents", headers=auth(key)).status_code == 405
    missing = client.get("/api/v2/anything", headers=auth(key))
    assert missing.status_code == 404 and missing.headers["content-type"] == "application/json"

    french = client.post("/api/v1/consents/lookup", json={}, headers=auth(key, **{"accept-language": "fr"}))
    english = client.post("/api/v1/consents/lookup", json={}, headers=auth(key, **{"accept-language": "en"}))
    assert french.status_code == english.status_code == 422
    assert french.json()["error"]["code"] == english.json()["error"]["code"]
    assert french.json()["error"]["message"] != english.json()["error"]["message"]
    assert "Identify the customer" in english.json()["error"]["details"][0]["message"]


def test_the_openapi_document_describes_every_route(client) -> None:
    document = client.get("/api/openapi.json").json()
    assert document["openapi"].startswith("3.1")
    api_paths = {route.path for route in client.app.routes if getattr(route, "path", "").startswith("/api/v1/")}
    assert set(document["paths"]) == api_paths
    for path in document["paths"].values():
        for operation in path.values():
            assert "401" in operation["responses"] and operation["security"] == [{"apiKey": []}]


def test_moments_are_iso_8601_strings_not_unix_times(client, engine, clock) -> None:
    """The document says `format: date-time`: a number (or a number in a string) is refused, not read as Unix time."""
    make_customer(engine, email="camille@example.com", retailer_ref="C0001")
    key = make_key(engine, clock)
    for moment in (1_700_000_000, "1700000000", "2026-11-20", True):
        event = {"customer_id": "C0001", "viewed_at": moment, "url": "https://shop.example/p/1"}
        answer = client.post("/api/v1/browsing-events", headers=auth(key, **{"accept-language": "en"}), json=event)
        assert answer.status_code == 422, moment
        assert any(d["field"].endswith("viewed_at") for d in answer.json()["error"]["details"])
    document = client.get("/api/openapi.json").json()
    described = document["components"]["schemas"]["BrowsingEvent"]["properties"]["viewed_at"]["description"]
    assert "5 minutes after the portal's clock" in described
