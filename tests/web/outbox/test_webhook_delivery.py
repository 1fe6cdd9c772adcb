"""End to end: a customer's click on the consent page reaches the retailer's receiver through the in-process worker."""

from __future__ import annotations

import time

from portal.api import endpoints
from portal.db import in_transaction
from portal.outbox.signing import verify_signature
from tests.conftest import Clock, csrf_from
from tests.factories import make_customer
from tests.web.helpers import sign_in_by_code
from tests.webhook_receiver import WebhookReceiver


def test_a_consent_given_on_the_page_is_delivered_signed(client, smtp, engine, clock: Clock) -> None:
    receiver = WebhookReceiver().start()
    try:
        added = in_transaction(
            engine,
            endpoints.add_endpoint,
            url=receiver.url,
            topics=["consent.changed"],
            require_https=False,
            actor="cli",
            now=clock(),
        )
        customer = make_customer(engine, email="camille@example.com", retailer_ref="CRM-77")
        sign_in_by_code(client, smtp, "camille@example.com")
        page = client.get("/me/consents", headers={"accept-language": "en"}).text
        response = client.post(
            "/me/consents",
            data={"csrf_token": csrf_from(page), "purpose": "sms_offers", "action": "grant"},
            follow_redirects=False,
        )
        assert response.status_code == 303
        deadline = time.monotonic() + 10
        while not receiver.received and time.monotonic() < deadline:
            time.sleep(0.02)
        (delivery,) = receiver.received
        event = verify_signature(added.secret, delivery.headers, delivery.body, now=clock())
        assert event["type"] == "consent.changed"
        assert event["data"]["customer_id"] == customer.id and event["data"]["retailer_customer_id"] == "CRM-77"
        assert event["data"]["purpose"] == "sms_offers" and event["data"]["granted"] is True
    finally:
        receiver.stop()
