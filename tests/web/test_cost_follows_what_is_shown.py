"""The number of SQL statements of each consent and request page, the toggle, the consent read of the API and a
browsing-events batch is the same for a customer with 10 records and one with 10,000: cost follows what is shown,
never what has accumulated (issue 17). Real, deterministic: the statements the request sends, counted."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import timedelta

import pytest
from sqlalchemy import Engine, select
from starlette.testclient import TestClient

from portal.api.keys import create_api_key
from portal.app import create_app
from portal.db import transaction
from portal.models import ConsentEvent, Customer, PrivacyRequest
from tests.conftest import TEST_SECRET, SMTPServer, csrf_from, make_settings
from tests.consent_factories import add_consent_changes
from tests.factories import make_customer
from tests.request_factories import add_requests
from tests.sql_count import app_engines, counting_statements
from tests.web.helpers import sign_in_by_code

EN = {"accept-language": "en"}
HTMX = {**EN, "hx-request": "true"}
SIZES = (10, 10_000)
PURPOSES = ("email_newsletter", "sms_offers", "browsing_analytics")


@pytest.fixture
def quiet(database_url: str, smtp: SMTPServer, clock) -> Iterator[TestClient]:  # type: ignore[no-untyped-def]
    """A second app on the same database without the in-process outbox worker, whose statements would otherwise
    mingle with the request's: sign-in happens on `client` (whose worker sends the code), the counting here."""
    app = create_app(make_settings(database_url, smtp.port, run_worker=False), clock=clock)
    with TestClient(app, base_url="http://testserver") as quiet:
        yield quiet


def _customers(engine: Engine, clock) -> dict[int, str]:  # type: ignore[no-untyped-def]
    """One customer per size, with that many consent changes and that many requests; their emails by size."""
    emails = {}
    end = clock() - timedelta(days=1)
    for size in SIZES:
        email = f"size{size}@example.com"
        customer = make_customer(engine, email=email, retailer_ref=f"REF{size}")
        add_consent_changes(engine, customer.id, size, purposes=PURPOSES, end=end)
        add_requests(engine, customer.id, size, end=end, prefix="A" if size == SIZES[0] else "B")
        emails[size] = email
    return emails


def _newest(engine: Engine) -> dict[str, tuple[str, str]]:
    """Each customer's newest consent event id and newest request reference, by email."""
    with transaction(engine) as session:
        newest = {}
        for customer in session.scalars(select(Customer)):
            event = session.scalar(
                select(ConsentEvent.id).where(ConsentEvent.customer_id == customer.id)
                .order_by(ConsentEvent.occurred_at.desc(), ConsentEvent.id.desc()).limit(1)
            )  # fmt: skip
            reference = session.scalar(
                select(PrivacyRequest.reference).where(PrivacyRequest.customer_id == customer.id)
                .order_by(PrivacyRequest.received_at.desc(), PrivacyRequest.id.desc()).limit(1)
            )  # fmt: skip
            newest[customer.email] = (str(event), str(reference))
    return newest


def _count(quiet: TestClient, call: Callable[[], object]) -> list[str]:
    call()  # warm: what happens once per session (or per process) is not what is measured
    with counting_statements(*app_engines(quiet.app)) as statements:  # type: ignore[arg-type]
        response = call()
    assert getattr(response, "status_code", 200) < 400, response
    return statements


def _per_size(client: TestClient, quiet: TestClient, smtp: SMTPServer, emails: dict[int, str], make_call) -> dict:  # type: ignore[no-untyped-def]
    counted = {}
    for size, email in emails.items():
        client.cookies.clear()
        sign_in_by_code(client, smtp, email, count=sum(1 for e in emails.values() if e == email))
        quiet.cookies.clear()
        for name, value in client.cookies.items():
            quiet.cookies.set(name, value)
        counted[size] = _count(quiet, make_call(quiet, email))
    return counted


def _same(counted: dict[int, list[str]]) -> None:
    small, big = (counted[size] for size in SIZES)
    assert len(small) == len(big), (len(small), len(big), small, big)


@pytest.mark.parametrize(
    "url",
    ["/me/consents", "/me/requests", "/me/consents?after=OLDER", "/me/requests?after=OLDER"],
)
def test_the_customer_pages(client, quiet, smtp, engine, clock, url: str) -> None:
    emails = _customers(engine, clock)

    newest = _newest(engine)

    def make_call(client, email: str):  # type: ignore[no-untyped-def]
        # "OLDER": the page after the newest entry, as its link would ask (10 records: 9 rows; 10,000: a full page).
        target = url.replace("OLDER", newest[email][0 if "consents" in url else 1])
        return lambda: client.get(target, headers=EN)

    _same(_per_size(client, quiet, smtp, emails, make_call))


@pytest.mark.parametrize("htmx", [True, False])
def test_the_consent_toggle(client, quiet, smtp, engine, clock, htmx: bool) -> None:
    emails = _customers(engine, clock)

    def make_call(client, email: str):  # type: ignore[no-untyped-def]
        page = client.get("/me/consents", headers=EN).text
        actions = iter(["grant", "withdraw"] * 2)  # each call changes the state: the warm-up and the measured one

        def toggle():  # type: ignore[no-untyped-def]
            clock.advance(seconds=1)
            headers = {**HTMX, "x-csrf-token": csrf_from(page)} if htmx else EN
            return client.post(
                "/me/consents",
                data={"csrf_token": csrf_from(page), "purpose": "phone_calls", "action": next(actions)},
                headers=headers,
                follow_redirects=False,
            )

        return toggle

    _same(_per_size(client, quiet, smtp, emails, make_call))


def _api_key(engine: Engine, clock) -> dict[str, str]:  # type: ignore[no-untyped-def]
    with transaction(engine) as session:
        _, key = create_api_key(
            session, secret_key=TEST_SECRET, name="CRM", scopes=("consents:read", "browsing:write"), now=clock()
        )
    return {"authorization": f"Bearer {key}"}


def test_the_api_consent_read(quiet, engine, clock) -> None:
    _customers(engine, clock)
    headers = _api_key(engine, clock)
    counted = {
        size: _count(quiet, lambda size=size: quiet.get(f"/api/v1/customers/REF{size}/consents", headers=headers))
        for size in SIZES
    }
    _same(counted)


def test_a_browsing_events_batch(quiet, engine, clock) -> None:
    _customers(engine, clock)  # the browsing purpose's last answer (given) stands in both ledgers
    headers = _api_key(engine, clock)

    def batch(size: int):  # type: ignore[no-untyped-def]
        now = clock()
        events = [
            {
                "customer_id": f"REF{size}",
                "url": f"https://shop.example/p/{n}",
                "viewed_at": (now - timedelta(minutes=n)).isoformat(),
            }
            for n in range(20)
        ]
        return lambda: quiet.post("/api/v1/browsing-events", json={"events": events}, headers=headers)

    counted = {size: _count(quiet, batch(size)) for size in SIZES}
    _same(counted)
