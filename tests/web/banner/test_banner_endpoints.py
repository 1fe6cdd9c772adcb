"""The website banner's public endpoints: its script, CORS to the configured origins only, bad input refused with
a JSON 4xx in the caller's language, rate limits, the join of a visitor to a customer, and the DPO's figures."""

from __future__ import annotations

import gzip
import json
import uuid

import pytest
from sqlalchemy import func, select
from starlette.testclient import TestClient

from portal.api.keys import create_api_key
from portal.app import create_app
from portal.db import transaction
from portal.models import AuditEvent, BannerTally, ConsentEvent, PageView
from portal.settings import Settings
from tests.conftest import TEST_SECRET, Clock, SMTPServer, make_settings
from tests.factories import make_customer
from tests.staff_helpers import make_staff, sign_in_staff
from tests.web.helpers import sign_in_by_code

SHOP = "https://www.shop.example"
FROM_SHOP = {"origin": SHOP}
PURPOSES = ("browsing_analytics", "personalised_offers")
BUDGET = 10 * 1024  # banner.js, its CSS (and its words) together, compressed


@pytest.fixture
def settings(database_url: str, smtp: SMTPServer) -> Settings:
    return make_settings(database_url, smtp.port, banner_origins=(SHOP,), banner_limit_per_visitor=5)


def answer_body(app, visitor_id: str | None = None, choice: str = "accept_all", **changes: object) -> dict:  # type: ignore[no-untyped-def]
    value = choice == "accept_all"
    return {
        "visitor_id": visitor_id or str(uuid.uuid4()),
        "choice": choice,
        "consents": {code: value for code in PURPOSES},
        "policy_version": app.state.portal.register.policy_version,
        "banner_version": app.state.banner.banner_version,
        "locale": "fr",
        **changes,
    }


def events(engine) -> list[ConsentEvent]:  # type: ignore[no-untyped-def]
    with transaction(engine) as session:
        return list(session.scalars(select(ConsentEvent).order_by(ConsentEvent.id)))


def api_key(engine, clock: Clock, scopes=("consents:write", "browsing:write")) -> str:  # type: ignore[no-untyped-def]
    with transaction(engine) as session:
        _, key = create_api_key(session, secret_key=TEST_SECRET, name="Web shop", scopes=scopes, now=clock())
    return key


# --- The script --------------------------------------------------------------------------------------------------


def test_the_stable_entry_is_small_revalidated_and_names_the_hashed_bundle(client: TestClient, app) -> None:
    response = client.get("/consent/v1/banner.js")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/javascript")
    assert "max-age=300" in response.headers["cache-control"]
    assert "set-cookie" not in response.headers  # loaded on every page of the shop: never a portal cookie
    assert response.headers["cross-origin-resource-policy"] == "cross-origin"
    assert app.state.banner.path in response.text
    assert len(response.content) < 600
    again = client.get("/consent/v1/banner.js", headers={"if-none-match": response.headers["etag"]})
    assert again.status_code == 304 and again.content == b""


def test_the_bundle_is_cached_for_a_year_and_an_old_one_is_gone(client: TestClient, app) -> None:
    bundle = client.get(app.state.banner.path)
    assert bundle.status_code == 200
    assert bundle.headers["cache-control"] == "public, max-age=31536000, immutable"
    old = client.get("/consent/v1/banner-000000000000.js")
    assert old.status_code == 404 and old.json()["error"]["code"] == "not_found"


def test_the_banner_and_its_css_stay_under_10_kb_compressed(client: TestClient, app) -> None:
    served = client.get(app.state.banner.path).content + client.get("/consent/v1/banner.js").content
    assert len(gzip.compress(served, compresslevel=9)) < BUDGET
    assert b".pc-button" in served  # the CSS is in it, not fetched from elsewhere


def test_the_banner_speaks_both_languages_from_the_catalogues_and_the_register(client: TestClient, app) -> None:
    text = client.get(app.state.banner.path).text
    for words in ("Tout refuser", "Tout accepter", "Refuse all", "Accept all", "Gérer mes cookies", "Cookie settings"):
        assert json.dumps(words, ensure_ascii=False)[1:-1] in text
    register = app.state.portal.register
    assert register.by_code["browsing_analytics"].title.in_locale("fr") in text
    assert register.policy_version in text
    assert "http://" not in text.replace(app.state.portal.settings.base_url, "")  # no other origin is named


def test_the_banner_asks_only_about_consent_based_purposes(database_url: str, smtp: SMTPServer) -> None:
    with pytest.raises(ValueError, match="PORTAL_BANNER_PURPOSES"):
        create_app(make_settings(database_url, smtp.port, banner_purposes=("accounting",)))


# --- CORS and CSRF ----------------------------------------------------------------------------------------------


def test_a_configured_origin_gets_its_preflight_answered(client: TestClient) -> None:
    asked = {"access-control-request-method": "POST", "access-control-request-headers": "content-type"}
    response = client.options("/consent/v1/answers", headers={**FROM_SHOP, **asked})
    assert response.status_code == 204
    assert response.headers["access-control-allow-origin"] == SHOP
    assert "access-control-allow-credentials" not in response.headers
    for refused in (
        {"origin": "https://evil.example", **asked},
        {**FROM_SHOP, "access-control-request-method": "PUT"},
        {**FROM_SHOP, **asked, "access-control-request-headers": "content-type, x-anything"},
    ):
        response = client.options("/consent/v1/answers", headers=refused)
        assert response.status_code == 403
        assert "access-control-allow-origin" not in response.headers


def test_an_answer_from_the_shop_is_recorded_and_nothing_else_is_accepted(client: TestClient, app, engine) -> None:
    body = answer_body(app)
    response = client.post("/consent/v1/answers", json=body, headers=FROM_SHOP)
    assert response.status_code == 200, response.text
    assert response.json() == {"recorded": 2, "linked": False}
    assert response.headers["access-control-allow-origin"] == SHOP
    assert "set-cookie" not in response.headers
    for headers in ({"origin": "https://evil.example"}, {}, {"origin": "null"}):
        refused = client.post("/consent/v1/answers", json=answer_body(app), headers=headers)
        assert refused.status_code == 403 and refused.json()["error"]["code"] == "origin_not_allowed"
    assert [(e.visitor_id, e.purpose, e.granted, e.channel) for e in events(engine)] == [
        (body["visitor_id"], code, True, "website") for code in PURPOSES
    ]


def test_a_form_post_cannot_record_an_answer(client: TestClient, app, engine) -> None:
    # What a forged cross-site form can send: not JSON, so refused, even from the shop's own origin.
    response = client.post("/consent/v1/answers", data={"visitor_id": str(uuid.uuid4())}, headers=FROM_SHOP)
    assert response.status_code == 415
    assert events(engine) == []


# --- Bad input: a JSON 4xx in the caller's language, never a 500 ------------------------------------------------


@pytest.mark.parametrize(
    ("change", "status", "field"),
    [
        ({"visitor_id": "not-a-uuid"}, 422, "visitor_id"),
        ({"visitor_id": "AAAAAAAA-AAAA-4AAA-8AAA-AAAAAAAAAAAA"}, 422, "visitor_id"),
        ({"choice": "maybe"}, 422, "choice"),
        ({"choice": "refuse_all"}, 422, "choice"),  # refusing all while granting everything
        ({"consents": {"browsing_analytics": True}}, 422, "consents"),
        ({"consents": {"browsing_analytics": True, "personalised_offers": True, "accounting": True}}, 422, "consents"),
        ({"consents": {"browsing_analytics": "yes", "personalised_offers": True}}, 422, "consents.browsing_analytics"),
        ({"locale": "de"}, 422, "locale"),
        ({"banner_version": "x" * 200}, 422, "banner_version"),
        ({"extra": 1}, 422, "extra"),
        ({"policy_version": "1999-01"}, 409, None),
    ],
)
def test_bad_answers_are_refused_with_a_reason(client: TestClient, app, engine, change, status, field) -> None:
    body = {**answer_body(app), **change}
    response = client.post("/consent/v1/answers", json=body, headers={**FROM_SHOP, "accept-language": "fr"})
    assert response.status_code == status, response.text
    error = response.json()["error"]
    if field:
        assert [d["field"] for d in error["details"]] == [field]
        assert error["message"] == "Certaines valeurs ne sont pas valides ; voir le détail."
    else:
        assert error["code"] == "policy_changed" and "politique de confidentialité a changé" in error["message"]
    assert response.headers["access-control-allow-origin"] == SHOP  # the banner can read why
    assert events(engine) == []


@pytest.mark.parametrize(
    ("content", "content_type", "status"),
    [
        (b"{", "application/json", 400),
        (b"[]", "application/json", 422),
        (b"\xff\xfe", "application/json", 400),
        (b'{"visitor_id": "' + b"a" * 4000 + b'"}', "application/json", 413),
        (b"visitor_id=x", "text/plain", 415),
        (b'{"visitor_id": "a\\u0000"}', "application/json", 400),
    ],
)
def test_malformed_bodies_are_refused(client: TestClient, content: bytes, content_type: str, status: int) -> None:
    for path in ("/consent/v1/answers", "/consent/v1/state", "/consent/v1/shown"):
        response = client.post(
            path, content=content, headers={**FROM_SHOP, "content-type": content_type, "accept-language": "en"}
        )
        assert response.status_code == status, (path, response.text)
        assert response.json()["error"]["message"]


def test_unknown_paths_and_methods_answer_json(client: TestClient) -> None:
    assert client.get("/consent/v1/nothing").json()["error"]["code"] == "not_found"
    assert client.get("/consent/v1/answers").status_code == 405


# --- Limits -----------------------------------------------------------------------------------------------------


def test_answers_are_limited_per_visitor(client: TestClient, app, engine) -> None:
    visitor_id = str(uuid.uuid4())
    for turn in range(5):
        choice = "accept_all" if turn % 2 == 0 else "refuse_all"
        assert client.post(
            "/consent/v1/answers", json=answer_body(app, visitor_id, choice), headers=FROM_SHOP
        ).is_success
    refused = client.post("/consent/v1/answers", json=answer_body(app, visitor_id), headers=FROM_SHOP)
    assert refused.status_code == 429 and int(refused.headers["retry-after"]) > 0
    assert len(events(engine)) == 10
    # Someone else, from the same address, still answers.
    assert client.post("/consent/v1/answers", json=answer_body(app), headers=FROM_SHOP).is_success


def test_calls_are_limited_per_address(database_url: str, smtp: SMTPServer, clock: Clock) -> None:
    settings = make_settings(database_url, smtp.port, banner_origins=(SHOP,), banner_limit_per_ip=3)
    app = create_app(settings, clock=clock)
    with TestClient(app) as client:
        for _ in range(2):
            assert client.post("/consent/v1/shown", json={}, headers=FROM_SHOP).status_code == 204
        assert client.post("/consent/v1/answers", json=answer_body(app), headers=FROM_SHOP).is_success
        refused = client.post("/consent/v1/answers", json=answer_body(app), headers=FROM_SHOP)
        assert refused.status_code == 429 and refused.json()["error"]["code"] == "too_many_requests"
        assert client.post("/consent/v1/shown", json={}, headers=FROM_SHOP).status_code == 429


# --- The visitor becomes a customer -----------------------------------------------------------------------------


def test_the_web_shop_links_a_visitor_and_the_customer_finds_the_website_consent(
    client: TestClient, app, engine, clock: Clock, smtp: SMTPServer
) -> None:
    camille = make_customer(engine, email="camille@example.com", retailer_ref="CRM-1", preferred_language="fr")
    visitor_id = str(uuid.uuid4())
    assert client.post("/consent/v1/answers", json=answer_body(app, visitor_id), headers=FROM_SHOP).is_success
    state = client.post("/consent/v1/state", json={"visitor_id": visitor_id}, headers=FROM_SHOP).json()
    assert state["linked"] is False and state["consents"] == {code: True for code in PURPOSES}

    key = api_key(engine, clock)
    link = {"visitor_id": visitor_id, "customer_id": "CRM-1"}
    assert client.post("/api/v1/website-visitors/link", json=link).status_code == 401
    read_only = api_key(engine, clock, scopes=("consents:read",))
    headers = {"authorization": f"Bearer {read_only}"}
    assert client.post("/api/v1/website-visitors/link", json=link, headers=headers).status_code == 403
    headers = {"authorization": f"Bearer {key}"}
    unknown = client.post("/api/v1/website-visitors/link", json={**link, "customer_id": "CRM-404"}, headers=headers)
    assert unknown.status_code == 404
    bad = client.post("/api/v1/website-visitors/link", json={**link, "visitor_id": "x"}, headers=headers)
    assert bad.status_code == 422
    linked = client.post("/api/v1/website-visitors/link", json=link, headers=headers)
    assert linked.status_code == 200, linked.text
    assert linked.json()["joined"] == 2 and sorted(linked.json()["changed"]) == sorted(PURPOSES)

    # Browsing events sent with the visitor id are kept against that record.
    page = {"visitor_id": visitor_id, "url": "https://www.shop.example/jardin", "viewed_at": clock().isoformat()}
    ingested = client.post("/api/v1/browsing-events", json=page, headers=headers).json()
    assert ingested["kept"] == 1
    stranger = {**page, "visitor_id": str(uuid.uuid4())}
    assert client.post("/api/v1/browsing-events", json=stranger, headers=headers).json()["dropped"] == 1
    with transaction(engine) as session:
        assert session.scalar(select(func.count()).select_from(PageView)) == 1

    sign_in_by_code(client, smtp, "camille@example.com")
    history = client.get("/me/consents", headers={"accept-language": "fr"}).text
    assert "sur notre site, par son bandeau de consentement" in history

    # The customer withdraws in the portal: the banner reads it.
    page_text = client.get("/me/consents").text
    assert page_text  # signed in
    with transaction(engine) as session:
        from portal.consent import ledger

        ledger.record_consent(
            session, register=app.state.portal.register, customer_id=camille.id, purpose="browsing_analytics",
            granted=False, channel="web", actor=f"customer:{camille.id}", now=clock(), locale="fr",
        )  # fmt: skip
    clock.advance(minutes=1)
    state = client.post("/consent/v1/state", json={"visitor_id": visitor_id}, headers=FROM_SHOP).json()
    assert state["linked"] is True
    assert state["consents"] == {"browsing_analytics": False, "personalised_offers": True}
    # And browsing events after the withdrawal are dropped against that same record.
    later = {**page, "viewed_at": clock().isoformat()}
    assert client.post("/api/v1/browsing-events", json=later, headers=headers).json()["dropped"] == 1


# --- What the DPO sees ------------------------------------------------------------------------------------------


def test_the_dpo_sees_monthly_counts_without_personal_data(client: TestClient, app, engine, clock: Clock) -> None:
    client.post("/consent/v1/shown", json={}, headers=FROM_SHOP)
    client.post("/consent/v1/shown", json={}, headers=FROM_SHOP)
    client.post("/consent/v1/answers", json=answer_body(app), headers=FROM_SHOP)
    client.post("/consent/v1/answers", json=answer_body(app, choice="refuse_all"), headers=FROM_SHOP)
    custom = answer_body(app, choice="custom", consents={"browsing_analytics": True, "personalised_offers": False})
    client.post("/consent/v1/answers", json=custom, headers=FROM_SHOP)
    with transaction(engine) as session:
        tallies = {(t.metric, t.purpose): t.count for t in session.scalars(select(BannerTally))}
        audited = session.scalars(select(AuditEvent).where(AuditEvent.action == "banner.answered")).all()
    assert tallies[("shown", "")] == 2
    assert (tallies[("accept_all", "")], tallies[("refuse_all", "")], tallies[("custom", "")]) == (1, 1, 1)
    assert tallies[("granted", "browsing_analytics")] == 2 and tallies[("refused", "personalised_offers")] == 2
    assert len(audited) == 3 and all("visitor" not in json.dumps(a.detail) for a in audited)

    dpo, password, secret = make_staff(engine, role="dpo")
    sign_in_staff(client, dpo.email, password, secret, clock)
    for language, heading in (("fr", "Bandeau de consentement du site"), ("en", "Website consent banner")):
        page = client.get("/staff/reports/banner", headers={"accept-language": language})
        assert page.status_code == 200 and heading in page.text
    agent, password, secret = make_staff(engine, role="agent")
    client.cookies.clear()
    sign_in_staff(client, agent.email, password, secret, clock)
    assert client.get("/staff/reports/banner").status_code == 403
