"""Webhooks: one event per action, fanned out per subscribed endpoint, signed, retried with backoff, never lost.

Everything is real: the consent ledger and rectification write the events, the outbox worker POSTs them with httpx
to an HTTP server on 127.0.0.1, and the receiver checks the signatures as the retailer's developers would.
"""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import Engine, select

from portal.api import endpoints
from portal.cli import main
from portal.consent import ledger
from portal.consent.register import load_register
from portal.db import in_transaction, transaction
from portal.mail.compose import EmailComposer
from portal.models import AuditEvent, OutboxMessage, WebhookEndpoint
from portal.outbox.enqueue import enqueue_email, queue_webhook
from portal.outbox.signing import WebhookVerificationError, new_secret, verify_signature
from portal.outbox.worker import NO_SUBSCRIBER, OutboxWorker
from portal.profile import service as rectification
from portal.retailer import load_retailer
from portal.settings import PROJECT_ROOT
from portal.web.templating import make_environment
from tests.conftest import Clock, SMTPServer, make_settings, port_of
from tests.factories import make_customer
from tests.webhook_receiver import WebhookReceiver


@pytest.fixture
def receiver() -> Iterator[WebhookReceiver]:
    server = WebhookReceiver().start()
    yield server
    server.stop()


@pytest.fixture
def worker(engine: Engine, settings, clock: Clock) -> OutboxWorker:  # type: ignore[no-untyped-def]
    return OutboxWorker(engine, settings, clock=clock)


def run_pass(worker: OutboxWorker) -> int:
    """One worker pass on its own event loop, closing the HTTP client as `run_forever` does."""

    async def one() -> int:
        try:
            return await worker.deliver_due()
        finally:
            await worker.aclose()

    return asyncio.run(one())


def add_endpoint(engine: Engine, clock: Clock, url: str, *topics: str) -> endpoints.NewSecret:
    return in_transaction(
        engine,
        endpoints.add_endpoint,
        url=url,
        topics=topics,
        require_https=False,
        actor="cli",
        now=clock(),
    )


def give_consent(engine: Engine, settings, clock: Clock, customer, purpose: str = "sms_offers") -> None:  # type: ignore[no-untyped-def]
    in_transaction(
        engine,
        ledger.record_consent,
        register=load_register(settings.purposes_file),
        customer_id=customer.id,
        purpose=purpose,
        granted=True,
        channel="web",
        actor=f"customer:{customer.id}",
        now=clock(),
        locale="fr",
    )


def outbox(engine: Engine, **where: object) -> list[OutboxMessage]:
    with transaction(engine) as session:
        query = select(OutboxMessage).filter_by(kind="webhook", **where).order_by(OutboxMessage.id)  # type: ignore[arg-type]
        return list(session.scalars(query))


def deliveries(engine: Engine) -> list[OutboxMessage]:
    return [m for m in outbox(engine) if m.endpoint_id is not None]


def test_a_consent_change_reaches_each_subscribed_endpoint_signed(
    engine, settings, clock: Clock, worker, receiver
) -> None:
    crm = add_endpoint(engine, clock, receiver.url + "?to=crm", "consent.changed")
    shop = add_endpoint(engine, clock, receiver.url + "?to=shop", "consent.changed", "customer.rectified")
    add_endpoint(engine, clock, receiver.url + "?to=erasure-only", "customer.erased")
    customer = make_customer(engine, retailer_ref="CRM-000481")
    give_consent(engine, settings, clock, customer)

    assert run_pass(worker) == 2
    by_target = {r.path.rsplit("=", 1)[1]: r for r in receiver.received}
    assert sorted(by_target) == ["crm", "shop"]  # the endpoint not subscribed to consent.changed got nothing
    events = [
        verify_signature(secret.secret, by_target[name].headers, by_target[name].body, now=clock())
        for name, secret in (("crm", crm), ("shop", shop))
    ]
    assert events[0] == events[1]
    event = events[0]
    assert event["type"] == "consent.changed" and event["id"].startswith("evt_")
    assert by_target["crm"].headers["webhook-id"] == by_target["shop"].headers["webhook-id"] == event["id"]
    assert by_target["crm"].headers["webhook-timestamp"] == str(int(clock().timestamp()))
    assert by_target["crm"].headers["content-type"] == "application/json"
    assert event["data"] == {
        "customer_id": customer.id,
        "retailer_customer_id": "CRM-000481",
        "purpose": "sms_offers",
        "granted": True,
        "occurred_at": clock().isoformat(),
        "channel": "web",
        "policy_version": load_register(settings.purposes_file).policy_version,
    }
    # References only: nothing a person could be recognised by.
    assert "Camille" not in by_target["crm"].body.decode() and "@" not in by_target["crm"].body.decode()
    assert by_target["crm"].body == json.dumps(event, separators=(",", ":")).encode()  # compact JSON

    (queued,) = [m for m in outbox(engine) if m.endpoint_id is None]
    assert queued.sent_at == clock() and queued.last_error is None and queued.payload is None
    sent = deliveries(engine)
    assert [(m.attempts, m.sent_at, m.payload) for m in sent] == [(1, clock(), None)] * 2
    assert run_pass(worker) == 0 and len(receiver.received) == 2  # delivered once, not again


def test_the_signature_binds_the_secret_the_body_and_the_time(engine, clock: Clock, worker, receiver) -> None:
    endpoint = add_endpoint(engine, clock, receiver.url, "customer.rectified")
    with transaction(engine) as session:
        queue_webhook(session, topic="customer.rectified", payload={"customer_id": 7, "fields": ["city"]}, now=clock())
    run_pass(worker)
    (delivery,) = receiver.received
    assert verify_signature(endpoint.secret, delivery.headers, delivery.body, now=clock() + timedelta(minutes=4))
    with pytest.raises(WebhookVerificationError):
        verify_signature(new_secret(), delivery.headers, delivery.body, now=clock())
    with pytest.raises(WebhookVerificationError):
        verify_signature(endpoint.secret, delivery.headers, delivery.body.replace(b"city", b"name"), now=clock())
    with pytest.raises(WebhookVerificationError, match="tolerance"):  # a replay, ten minutes later
        verify_signature(endpoint.secret, delivery.headers, delivery.body, now=clock() + timedelta(minutes=10))
    without_signature = {k: v for k, v in delivery.headers.items() if k != "webhook-signature"}
    with pytest.raises(WebhookVerificationError, match="missing"):
        verify_signature(endpoint.secret, without_signature, delivery.body, now=clock())
    assert endpoint.secret.startswith("whsec_") and len(endpoint.secret) == len("whsec_") + 32


def test_unknown_topics_are_refused_when_queued(engine, clock: Clock) -> None:
    with pytest.raises(ValueError, match="customer.deleted"), transaction(engine) as session:
        queue_webhook(session, topic="customer.deleted", payload={}, now=clock())
    assert outbox(engine) == []


def test_a_failing_receiver_is_retried_with_backoff_then_delivered(
    engine, settings, clock: Clock, worker, receiver
) -> None:
    endpoint = add_endpoint(engine, clock, receiver.url, "consent.changed")
    give_consent(engine, settings, clock, make_customer(engine))
    receiver.fail_next = 2

    assert run_pass(worker) == 0
    (delivery,) = deliveries(engine)
    assert delivery.attempts == 1 and delivery.sent_at is None and delivery.last_error == "WebhookRejected: HTTP 500"
    assert timedelta(seconds=9) <= delivery.next_attempt_at - clock() <= timedelta(seconds=11)
    assert delivery.payload is not None and delivery.payload["body"]  # kept for the retry, byte for byte
    assert run_pass(worker) == 0 and len(receiver.received) == 1  # not due yet

    clock.advance(seconds=12)
    assert run_pass(worker) == 0
    (delivery,) = deliveries(engine)
    assert delivery.attempts == 2
    assert timedelta(seconds=18) <= delivery.next_attempt_at - clock() <= timedelta(seconds=22)  # doubled

    clock.advance(seconds=25)
    assert run_pass(worker) == 1
    (delivery,) = deliveries(engine)
    assert delivery.attempts == 3 and delivery.sent_at == clock() and delivery.last_error is None
    assert delivery.payload is None
    assert len(receiver.received) == 3
    assert len({r.headers["webhook-id"] for r in receiver.received}) == 1  # the same event each time
    assert len({r.body for r in receiver.received}) == 1  # the same bytes each time
    assert len({r.headers["webhook-timestamp"] for r in receiver.received}) == 3  # each attempt signed anew
    assert verify_signature(endpoint.secret, receiver.received[-1].headers, receiver.received[-1].body, now=clock())


def test_a_receiver_that_is_down_loses_nothing(engine, settings, clock: Clock, worker, reserved_port) -> None:
    add_endpoint(engine, clock, f"http://127.0.0.1:{port_of(reserved_port)}/hooks", "consent.changed")
    give_consent(engine, settings, clock, make_customer(engine))
    assert run_pass(worker) == 0
    clock.advance(seconds=15)
    assert run_pass(worker) == 0
    (delivery,) = deliveries(engine)
    assert delivery.attempts == 2 and delivery.sent_at is None and delivery.last_error.startswith("ConnectError")

    receiver = WebhookReceiver().start(reserved_port)
    try:
        clock.advance(minutes=1)
        assert run_pass(worker) == 1
        assert len(receiver.received) == 1
        assert deliveries(engine)[0].attempts == 3
    finally:
        receiver.stop()


def test_redirects_are_not_followed_but_retried(engine, settings, clock: Clock, worker, receiver) -> None:
    add_endpoint(engine, clock, receiver.url, "consent.changed")
    give_consent(engine, settings, clock, make_customer(engine))
    receiver.status = 302
    assert run_pass(worker) == 0
    assert [r.path for r in receiver.received] == ["/hooks/portal"]  # /elsewhere never asked
    assert deliveries(engine)[0].last_error == "WebhookRejected: HTTP 302"


def test_an_event_nobody_subscribed_to_is_marked_sent_and_noted(
    engine, settings, clock: Clock, worker, receiver
) -> None:
    add_endpoint(engine, clock, receiver.url, "customer.rectified")
    give_consent(engine, settings, clock, make_customer(engine))
    assert run_pass(worker) == 0
    (event,) = outbox(engine)
    assert event.sent_at == clock() and event.last_error == NO_SUBSCRIBER and event.payload is None
    assert receiver.received == []


def test_a_rectification_reaches_its_subscribers(engine, clock: Clock, worker, receiver) -> None:
    endpoint = add_endpoint(engine, clock, receiver.url, "customer.rectified")
    customer = make_customer(engine, retailer_ref="CRM-1")
    form = {
        "first_name": "Camille",
        "last_name": "Martin",
        "phone": "06 98 76 54 32",
        "address_line1": "1 rue Neuve",
        "address_line2": "",
        "postal_code": "69002",
        "city": "Lyon",
        "country": "FR",
        "preferred_language": "fr",
    }
    in_transaction(
        engine,
        rectification.rectify_profile,
        customer_id=customer.id,
        form=form,
        locked_fields=(),
        actor=f"customer:{customer.id}",
        channel="web",
        now=clock(),
    )
    assert run_pass(worker) == 1
    (delivery,) = receiver.received
    event = verify_signature(endpoint.secret, delivery.headers, delivery.body, now=clock())
    assert event["type"] == "customer.rectified"
    assert event["data"]["customer_id"] == customer.id and event["data"]["retailer_customer_id"] == "CRM-1"
    assert "last_name" in event["data"]["fields"] and "Martin" not in delivery.body.decode()


def test_a_disabled_endpoint_waits_and_resumes(engine, settings, clock: Clock, worker, receiver) -> None:
    endpoint = add_endpoint(engine, clock, receiver.url, "consent.changed")
    give_consent(engine, settings, clock, make_customer(engine))
    worker.fan_out(clock())  # the delivery exists, then the retailer pauses its endpoint
    in_transaction(engine, endpoints.disable_endpoint, endpoint_id=endpoint.endpoint_id, actor="cli", now=clock())

    clock.advance(hours=2)
    assert run_pass(worker) == 0 and receiver.received == []
    (delivery,) = deliveries(engine)
    assert delivery.attempts == 0 and delivery.sent_at is None and delivery.payload  # waiting, intact
    # Events that happen while it is disabled are not queued for it.
    give_consent(engine, settings, clock, make_customer(engine))
    run_pass(worker)
    assert len(deliveries(engine)) == 1

    in_transaction(engine, endpoints.enable_endpoint, endpoint_id=endpoint.endpoint_id, actor="cli", now=clock())
    assert run_pass(worker) == 1 and len(receiver.received) == 1
    assert verify_signature(endpoint.secret, receiver.received[0].headers, receiver.received[0].body, now=clock())


def test_a_rotated_secret_signs_the_retries(engine, settings, clock: Clock, worker, receiver) -> None:
    old = add_endpoint(engine, clock, receiver.url, "consent.changed")
    give_consent(engine, settings, clock, make_customer(engine))
    receiver.fail_next = 1
    run_pass(worker)
    new = in_transaction(engine, endpoints.rotate_secret, endpoint_id=old.endpoint_id, actor="cli", now=clock())
    assert new.secret != old.secret
    clock.advance(minutes=1)
    assert run_pass(worker) == 1
    retry = receiver.received[-1]
    verify_signature(new.secret, retry.headers, retry.body, now=clock())
    with pytest.raises(WebhookVerificationError):
        verify_signature(old.secret, retry.headers, retry.body, now=clock())


def test_emails_and_webhooks_go_out_in_the_same_pass(database_url, engine, clock: Clock, receiver) -> None:
    smtp = SMTPServer().start()
    try:
        settings = make_settings(database_url, smtp.port)
        composer = EmailComposer(make_environment(settings=settings, retailer=load_retailer(settings.retailer_file)))
        add_endpoint(engine, clock, receiver.url, "consent.changed")
        customer = make_customer(engine, email="camille@example.com")
        with transaction(engine) as session:
            email = composer.compose(
                "request-received",
                to="camille@example.com",
                language="fr",
                context={
                    "first_name": "Camille",
                    "reference": "R-7K2Q",
                    "type": "access",
                    "received_at": clock(),
                    "due_at": clock() + timedelta(days=30),
                },
            )
            enqueue_email(session, email=email, topic="request-received", now=clock())
        give_consent(engine, settings, clock, customer)
        assert run_pass(OutboxWorker(engine, settings, clock=clock)) == 2
        assert smtp.wait_for("camille@example.com").subject
        assert len(receiver.received) == 1
    finally:
        smtp.stop()


# --- Endpoints and the CLI ---------------------------------------------------------------------------------------


def test_endpoint_refusals_are_clear(engine, clock: Clock) -> None:
    cases = [
        (("ftp://crm.example.com/hooks", ["consent.changed"], False), "not an absolute http"),
        (("https://crm.example.com/hooks", ["consent.changed", "customer.deleted"], False), "unknown topic"),
        (("https://crm.example.com/hooks", [" ", ""], False), "at least one topic"),
        (("http://crm.example.com/hooks", ["consent.changed"], True), "https"),
        (("https://user:pw@crm.example.com/hooks", ["consent.changed"], False), "credentials"),
    ]
    for (url, topics, require_https), message in cases:
        with pytest.raises(endpoints.EndpointRefused, match=message):
            in_transaction(
                engine,
                endpoints.add_endpoint,
                url=url,
                topics=topics,
                require_https=require_https,
                actor="cli",
                now=clock(),
            )
    with transaction(engine) as session:
        assert session.scalars(select(WebhookEndpoint)).first() is None


@pytest.fixture
def cli_env(monkeypatch: pytest.MonkeyPatch, database_url: str) -> str:
    monkeypatch.setenv("PORTAL_DATABASE_URL", database_url)
    monkeypatch.setenv("PORTAL_ENVIRONMENT", "development")
    return database_url


def test_cli_adds_lists_disables_and_rotates(cli_env, engine, capsys: pytest.CaptureFixture[str]) -> None:
    url = "https://crm.example.com/hooks/portal"
    assert main(["webhook", "add", url, "--topics", "consent.changed,customer.rectified", "--description", "CRM"]) == 0
    added = capsys.readouterr().out
    secret = next(word for word in added.split() if word.startswith("whsec_"))
    with transaction(engine) as session:
        (endpoint,) = session.scalars(select(WebhookEndpoint))
    assert endpoint.secret == secret and endpoint.topics == "consent.changed customer.rectified"
    assert f"Webhook endpoint {endpoint.id} added" in added

    assert main(["webhook", "list"]) == 0
    listing = capsys.readouterr().out
    assert url in listing and "consent.changed,customer.rectified" in listing and "active" in listing
    assert "whsec_" not in listing

    assert main(["webhook", "rotate-secret", str(endpoint.id)]) == 0
    rotated = next(word for word in capsys.readouterr().out.split() if word.startswith("whsec_"))
    assert main(["webhook", "disable", str(endpoint.id)]) == 0
    assert "disabled" in capsys.readouterr().out
    with transaction(engine) as session:
        endpoint = session.get(WebhookEndpoint, endpoint.id)
        actions = list(session.scalars(select(AuditEvent.action).order_by(AuditEvent.id)))
        details = list(session.scalars(select(AuditEvent.detail).order_by(AuditEvent.id)))
    assert rotated != secret and endpoint.secret == rotated and endpoint.disabled_at is not None
    assert actions == ["webhook_endpoint.added", "webhook_endpoint.secret_rotated", "webhook_endpoint.disabled"]
    assert "whsec_" not in str(details)
    assert main(["webhook", "list"]) == 0 and "disabled" in capsys.readouterr().out


def test_cli_refuses_bad_input_with_exit_code_2(cli_env, monkeypatch, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["webhook", "add", "https://crm.example.com/h", "--topics", "consent.changed,customer.deleted"]) == 2
    assert "unknown topic customer.deleted" in capsys.readouterr().err
    assert main(["webhook", "disable", "999"]) == 2
    assert "No webhook endpoint with id 999" in capsys.readouterr().err

    monkeypatch.setenv("PORTAL_ENVIRONMENT", "production")
    monkeypatch.setenv("PORTAL_SECRET_KEY", "x" * 40)
    monkeypatch.setenv("PORTAL_BASE_URL", "https://privacy.example.com")
    assert main(["webhook", "add", "http://crm.example.com/h", "--topics", "consent.changed"]) == 2
    assert "https" in capsys.readouterr().err
    assert main(["webhook", "add", "https://crm.example.com/h", "--topics", "consent.changed"]) == 0
    assert main(["webhook", "list"]) == 0
    assert "https://crm.example.com/h" in capsys.readouterr().out


def test_the_readme_example_verifies() -> None:
    """The signed example in README.md is real: receivers can test their verification against it."""
    readme = (PROJECT_ROOT / "README.md").read_text()
    example = re.search(r"webhook-id: (\S+)\nwebhook-timestamp: (\d+)\nwebhook-signature: (\S+)\n\n(\{.*\})\n", readme)
    secret = re.search(r"With the secret `(whsec_\S+)`", readme)
    assert example and secret
    headers = {"Webhook-Id": example[1], "Webhook-Timestamp": example[2], "Webhook-Signature": example[3]}
    sent_at = datetime.fromtimestamp(int(example[2]), UTC)
    event = verify_signature(secret[1], headers, example[4].encode(), now=sent_at + timedelta(seconds=30))
    assert event["type"] == "consent.changed" and event["id"] == example[1]


def test_a_delivery_whose_lease_ran_out_is_left_for_the_next_claim(
    engine, settings, clock: Clock, worker, receiver, monkeypatch
) -> None:
    # Deliveries run side by side; one at a time, the second waits behind the first long enough to lose its lease.
    monkeypatch.setattr("portal.outbox.worker.CONCURRENCY", 1)
    add_endpoint(engine, clock, receiver.url + "?to=crm", "consent.changed")
    add_endpoint(engine, clock, receiver.url + "?to=shop", "consent.changed")
    give_consent(engine, settings, clock, make_customer(engine))
    receiver.on_receive = lambda: clock.advance(minutes=3)  # the first delivery takes longer than the lease
    assert run_pass(worker) == 1 and len(receiver.received) == 1
    left = [m for m in deliveries(engine) if m.sent_at is None]
    assert len(left) == 1 and left[0].attempts == 0  # not sent under an expired lease, not counted as a failure
    receiver.on_receive = None
    assert run_pass(worker) == 1 and len(receiver.received) == 2
