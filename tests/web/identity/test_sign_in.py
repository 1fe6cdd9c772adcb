"""The whole sign-in, by link and by code, with emails read from a real SMTP server."""

from __future__ import annotations

import asyncio
import logging
import re
from concurrent.futures import ThreadPoolExecutor

import pytest
from sqlalchemy import select
from starlette.testclient import TestClient

from portal.app import create_app
from portal.db import transaction
from portal.models import AuditEvent, OutboxMessage
from tests.conftest import SMTPServer, code_in, csrf_from, link_in, local_path, make_settings, port_of
from tests.factories import add_page_views, add_purchases, make_customer, make_store
from tests.web.helpers import ask_for_link, sign_in_by_code, sign_in_by_link

EMAIL = "camille.durand@example.com"


@pytest.fixture
def customer(engine):
    customer = make_customer(engine, email="Camille.Durand@example.com", first_name="Camille")
    shops = [make_store(engine, city=city) for city in ("Lyon", "Paris", "Nantes")]
    web = make_store(engine, code="WEB", kind="web", city="")
    for shop in shops:
        add_purchases(engine, customer, shop, 3)
    add_purchases(engine, customer, web, 1241 - 9)
    add_page_views(engine, customer, 3410)
    return customer


def test_sign_in_by_link_lands_on_a_clean_overview_with_real_counts(client: TestClient, smtp, customer, caplog) -> None:
    caplog.set_level(logging.DEBUG)
    ask_for_link(client, EMAIL, **{"accept-language": "en"})
    message = smtp.wait_for(EMAIL)
    assert message.subject.startswith("Your sign-in link")
    assert message.html and '<a href="http://127.0.0.1:8000/signin/link?token=' in message.html
    link = link_in(message)
    token = link.split("token=")[1]

    continue_page = client.get(local_path(link), headers={"accept-language": "en"})
    assert continue_page.status_code == 200
    assert "Continue" in continue_page.text
    assert continue_page.headers["referrer-policy"] == "no-referrer"
    assert client.cookies.get("portal_session") is None  # opening the link alone signs nobody in

    response = client.post(
        "/signin/link", data={"token": token, "csrf_token": csrf_from(continue_page.text)}, follow_redirects=False
    )
    assert response.status_code == 303 and response.headers["location"] == "/me"
    cookie = response.headers["set-cookie"]
    assert "portal_session=" in cookie and "HttpOnly" in cookie and "SameSite=lax" in cookie

    overview = client.get("/me", headers={"accept-language": "en"})
    assert overview.status_code == 200
    assert overview.headers["cache-control"] == "no-store"
    text = re.sub(r"\s+", " ", overview.text)
    assert "1,241 purchases in 3 stores and the web shop" in text
    assert "3,410 pages viewed" in text
    assert "Your data, Camille" in text
    assert token not in overview.text
    # Everything the portal logs, at every level (the test's own HTTP client and SMTP server are not the portal).
    portal_records = [r for r in caplog.records if not r.name.startswith(("httpx", "mail.log"))]
    assert any(r.name == "portal.access" and "/signin/link" in r.getMessage() for r in portal_records)
    assert not any(token in r.getMessage() for r in portal_records), "a sign-in token reached a log"
    # The demo's SMTP server (the one the tests use) keeps addresses out of the log too.
    assert not any(EMAIL in r.getMessage() for r in caplog.records if r.name.startswith("mail.log"))


def test_the_link_works_once(client, smtp, customer) -> None:
    assert sign_in_by_link(client, smtp, EMAIL).status_code == 303
    page = client.get(local_path(link_in(smtp.wait_for(EMAIL))), headers={"accept-language": "en"})
    assert page.status_code == 410
    assert "This link has already been used" in page.text
    assert 'name="email"' in page.text  # offers a new link


def test_sign_in_by_code_in_french(client, smtp, customer) -> None:
    response = sign_in_by_code(client, smtp, EMAIL)
    assert response.status_code == 303 and response.headers["location"] == "/me"
    overview = client.get("/me")
    text = re.sub(r"\s+", " ", overview.text)
    assert '<html lang="fr">' in overview.text
    assert "1 241 achats dans 3 magasins et sur la boutique en ligne" in text.replace("\u202f", " ").replace(
        "\xa0", " "
    )


def test_wrong_codes_tell_how_many_tries_remain_then_stop(client, smtp, customer) -> None:
    sent = ask_for_link(client, EMAIL, **{"accept-language": "en"})
    code = code_in(smtp.wait_for(EMAIL))
    wrong = f"{(int(code) + 1) % 1_000_000:06d}"
    for remaining in (4, 3, 2, 1):
        page = client.post(
            "/signin/code", data={"code": wrong, "csrf_token": csrf_from(sent.text)}, headers={"accept-language": "en"}
        )
        assert page.status_code == 400
        assert f"{remaining} tr" in page.text
    page = client.post(
        "/signin/code", data={"code": wrong, "csrf_token": csrf_from(sent.text)}, headers={"accept-language": "en"}
    )
    assert page.status_code == 400 and "Too many wrong codes" in page.text
    page = client.post("/signin/code", data={"code": code, "csrf_token": csrf_from(sent.text)})
    assert page.status_code == 400
    assert client.get("/me", follow_redirects=False).status_code == 303


def test_known_and_unknown_addresses_get_identical_pages(client, smtp, customer) -> None:
    known = ask_for_link(client, EMAIL)
    unknown = ask_for_link(client, "stranger@example.org")
    assert known.status_code == unknown.status_code == 200
    assert known.url.path == unknown.url.path == "/signin/sent"
    assert known.text == unknown.text
    stranger_mail = smtp.wait_for("stranger@example.org")
    assert "aucune donnée personnelle" in stranger_mail.text
    assert "token=" not in stranger_mail.text


def test_forms_without_csrf_token_are_refused(client, smtp, customer) -> None:
    client.get("/signin")
    for data in ({"email": EMAIL}, {"email": EMAIL, "csrf_token": "forged"}):
        response = client.post("/signin", data=data)
        assert response.status_code == 403
        assert "expiré" in response.text  # French by default
    assert client.post("/signin", data={"email": EMAIL}, headers={"x-csrf-token": "nope"}).status_code == 403
    with transaction(client.app.state.portal.engine) as session:
        assert session.scalars(select(OutboxMessage)).first() is None


def test_htmx_requests_carry_the_token_in_a_header(client, smtp, customer) -> None:
    page = client.get("/signin")
    token = csrf_from(page.text)
    assert f'hx-headers=\'{{"X-CSRF-Token": "{token}"}}\'' in page.text
    response = client.post("/signin", data={"email": EMAIL}, headers={"x-csrf-token": token, "hx-request": "true"})
    assert response.status_code == 204 and response.headers["hx-redirect"] == "/signin/sent"


def test_sign_out_invalidates_the_session_on_the_server(client, smtp, customer) -> None:
    sign_in_by_link(client, smtp, EMAIL)
    stolen = client.cookies.get("portal_session")
    overview = client.get("/me")
    response = client.post("/signout", data={"csrf_token": csrf_from(overview.text)}, follow_redirects=False)
    assert response.status_code == 303 and response.headers["location"] == "/?signed_out=1"
    assert client.get("/me", follow_redirects=False).headers["location"] == "/signin"
    replay = TestClient(client.app, cookies={"portal_session": stolen})
    assert replay.get("/me", follow_redirects=False).status_code == 303


def test_signing_in_again_rotates_the_session(client, smtp, customer) -> None:
    sign_in_by_link(client, smtp, EMAIL)
    first = client.cookies.get("portal_session")
    sign_in_by_code(client, smtp, EMAIL, count=2)
    second = client.cookies.get("portal_session")
    assert first != second
    replay = TestClient(client.app, cookies={"portal_session": first})
    assert replay.get("/me", follow_redirects=False).status_code == 303


def test_idle_session_times_out(client, smtp, customer, clock) -> None:
    sign_in_by_link(client, smtp, EMAIL)
    clock.advance(minutes=16)
    assert client.get("/me", follow_redirects=False).headers["location"] == "/signin"


@pytest.mark.parametrize("token", ["", "abc", "x" * 5000, "%00%ff", "' OR 1=1 --"])
def test_tampered_links_get_a_clear_page_never_a_500(client, token) -> None:
    page = client.get(f"/signin/link?token={token}", headers={"accept-language": "en"})
    assert page.status_code == 400
    # A NUL is refused at the door, before the link is looked at (portal/web/input_guard.py).
    assert ("control characters" if "%00" in token else "This link is not valid") in page.text
    form = client.get("/signin")
    posted = client.post("/signin/link", data={"token": token, "csrf_token": csrf_from(form.text)})
    assert posted.status_code == 400


def test_expired_link_offers_a_new_one(client, smtp, customer, clock) -> None:
    ask_for_link(client, EMAIL)
    link = link_in(smtp.wait_for(EMAIL))
    clock.advance(minutes=11)
    page = client.get(local_path(link), headers={"accept-language": "en"})
    assert page.status_code == 410 and "This link has expired" in page.text and 'name="email"' in page.text


def test_invalid_email_comes_back_with_the_value_and_a_message(client) -> None:
    page = client.get("/signin")
    response = client.post("/signin", data={"email": "camille@", "csrf_token": csrf_from(page.text)})
    assert response.status_code == 400
    assert 'value="camille@"' in response.text and 'aria-invalid="true"' in response.text
    assert "Saisissez une adresse" in response.text


def test_rate_limited_requests_get_429_per_ip_but_never_lock_out_an_address(client, smtp, engine, customer) -> None:
    for _ in range(6):  # beyond the per-address limit: the same answer, and no more emails
        assert ask_for_link(client, EMAIL).status_code == 200
    with transaction(engine) as session:
        actions = list(session.scalars(select(AuditEvent.action)))
    assert actions.count("signin.requested") == 5 and actions.count("signin.throttled") == 1
    for n in range(30 - 6):
        ask_for_link(client, f"other{n}@example.org")
    response = ask_for_link(client, EMAIL, **{"accept-language": "en"})
    assert response.status_code == 429 and "Too many attempts" in response.text
    assert int(response.headers["retry-after"]) > 0


def test_code_page_without_a_pending_sign_in_goes_back_to_the_form(client) -> None:
    assert client.get("/signin/sent", follow_redirects=False).headers["location"] == "/signin"
    page = client.get("/signin")
    assert client.post("/signin/code", data={"code": "123456", "csrf_token": csrf_from(page.text)}).status_code == 400


def test_https_deployments_use_host_prefixed_secure_cookies(database_url, smtp, clock) -> None:
    settings = make_settings(database_url, smtp.port, base_url="https://privacy.example.com")
    with TestClient(create_app(settings, clock=clock), base_url="https://privacy.example.com") as client:
        make_customer(client.app.state.portal.engine, email=EMAIL)
        response = sign_in_by_link(client, smtp, EMAIL)
        cookie = next(c for c in response.headers.get_list("set-cookie") if "portal_session" in c)
        assert cookie.startswith("__Host-portal_session=") and "Secure" in cookie and "Path=/" in cookie
        assert "strict-transport-security" in client.get("/").headers


def run_in_thread(coroutine):  # type: ignore[no-untyped-def]
    """Run a coroutine on its own loop, whatever loop this thread may already be running."""
    with ThreadPoolExecutor(1) as pool:
        return pool.submit(asyncio.run, coroutine).result()


def test_delivery_is_retried_until_the_smtp_server_comes_back(database_url, clock, reserved_port) -> None:
    smtp = SMTPServer()
    settings = make_settings(database_url, port_of(reserved_port), run_worker=False)
    app = create_app(settings, clock=clock)
    with TestClient(app) as client:
        make_customer(app.state.portal.engine, email=EMAIL)
        ask_for_link(client, EMAIL)
    worker = app.state.worker
    assert run_in_thread(worker.deliver_due()) == 0  # nobody listens on the port
    with transaction(app.state.portal.engine) as session:
        message = session.scalars(select(OutboxMessage)).one()
        assert message.attempts == 1 and message.sent_at is None and "Error" in message.last_error
        assert message.next_attempt_at > clock()
    assert run_in_thread(worker.deliver_due()) == 0  # not due yet: backoff
    smtp.start(reserved_port)
    try:
        clock.advance(minutes=1)
        assert run_in_thread(worker.deliver_due()) == 1
        assert smtp.wait_for(EMAIL).subject
        with transaction(app.state.portal.engine) as session:
            message = session.scalars(select(OutboxMessage)).one()
            assert message.sent_at is not None and message.attempts == 2
            assert message.payload is None  # the link does not outlive its delivery
    finally:
        smtp.stop()
        app.state.portal.dispose()
