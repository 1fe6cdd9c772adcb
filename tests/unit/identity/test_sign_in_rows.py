"""Exactly the rows each sign-in write leaves: the prebuilt Core statements (issue 17) write what the ORM wrote.

Every column of the challenge, the outbox message, the audit event, the session and the rate-limit counters is
checked, for a known and an unknown address, a wrong code, a right code and a flooded address.
"""

from __future__ import annotations

import pytest
from sqlalchemy import select

from portal.db import in_transaction, transaction
from portal.identity import ratelimit, service
from portal.identity.keys import keyed_hash
from portal.models import AuditEvent, LoginChallenge, OutboxMessage, RateLimit, email_key
from portal.models import Session as SessionRow
from tests.conftest import Clock
from tests.factories import make_customer
from tests.unit.identity.test_sign_in_service import by_code, request


def rows(engine, model, order):  # type: ignore[no-untyped-def]
    with transaction(engine) as session:
        return [row.model_dump() for row in session.scalars(select(model).order_by(order))]


def audits(engine) -> list[tuple]:  # type: ignore[type-arg]
    return [(a["actor"], a["action"], a["target"], a["detail"]) for a in rows(engine, AuditEvent, AuditEvent.id)]


def limits(engine) -> dict[str, int]:
    return {r["key"]: r["count"] for r in rows(engine, RateLimit, RateLimit.key)}


@pytest.fixture
def customer(engine):
    return make_customer(engine, email="camille@example.com", first_name="Camille", preferred_language="en")


def test_a_request_for_a_known_address_writes_one_challenge_one_email_one_audit_and_two_counts(
    engine, settings, composer, clock: Clock, customer
) -> None:
    now = clock()
    flow_id, token, code, _message = request(engine, settings, composer, clock, language="fr")
    digest = keyed_hash(settings.secret_key, "email", email_key("camille@example.com"))
    (challenge,) = rows(engine, LoginChallenge, LoginChallenge.id)
    assert challenge == {
        "id": challenge["id"],
        "flow_id": flow_id,
        "email_digest": digest,
        "customer_id": customer.id,
        "token_hash": keyed_hash(settings.secret_key, "login-token", token),
        "code_hash": keyed_hash(settings.secret_key, "login-code", f"{flow_id}:{code}"),
        "language": "fr",
        "created_at": now,
        "expires_at": now + settings.login_ttl,
        "attempts": 0,
        "used_at": None,
        "voided_at": None,
    }
    (message,) = rows(engine, OutboxMessage, OutboxMessage.id)
    payload = message.pop("payload")
    assert message == {
        "id": message["id"],
        "kind": "email",
        "topic": "sign-in",
        "endpoint_id": None,
        "created_at": now,
        "attempts": 0,
        "next_attempt_at": now,
        "locked_until": None,
        "sent_at": None,
        "last_error": None,
    }
    assert payload["to"] == "camille@example.com" and len(payload["message_key"]) == 32
    assert "Camille" in payload["text"] and code in payload["text"]  # the customer's own language: English
    assert audits(engine) == [("anonymous", "signin.requested", f"customer:{customer.id}", None)]
    assert limits(engine) == {"signin:ip:192.0.2.1": 1, f"signin:email:{digest}": 1}


def test_a_request_for_an_unknown_address_writes_the_same_rows_without_a_customer(
    engine, settings, composer, clock: Clock
) -> None:
    flow_id, token, code, message = request(engine, settings, composer, clock, email="nobody@example.com")
    assert token is None and code is None  # the no-data email carries neither
    (challenge,) = rows(engine, LoginChallenge, LoginChallenge.id)
    assert challenge["flow_id"] == flow_id and challenge["customer_id"] is None and challenge["attempts"] == 0
    assert message.topic == "sign-in-unknown" and message.kind == "email" and message.sent_at is None
    assert audits(engine) == [("anonymous", "signin.requested", None, {"address": "unknown"})]
    assert sorted(limits(engine).values()) == [1, 1]


def test_counts_add_up_across_requests_and_a_flooded_address_is_audited_without_an_email(
    engine, settings, composer, clock: Clock, customer
) -> None:
    for _ in range(settings.signin_limit_per_email + 1):
        request(engine, settings, composer, clock)
    digest = keyed_hash(settings.secret_key, "email", email_key("camille@example.com"))
    assert limits(engine) == {
        "signin:ip:192.0.2.1": settings.signin_limit_per_email + 1,
        f"signin:email:{digest}": settings.signin_limit_per_email + 1,
    }
    assert len(rows(engine, OutboxMessage, OutboxMessage.id)) == settings.signin_limit_per_email
    assert [a[1] for a in audits(engine)][-2:] == ["signin.requested", "signin.throttled"]


def test_a_wrong_code_counts_a_try_a_failure_and_an_audit_and_a_right_code_opens_one_session(
    engine, settings, composer, clock: Clock, customer
) -> None:
    flow_id, _token, code, _message = request(engine, settings, composer, clock, language="fr")
    wrong = f"{(int(code) + 1) % 1_000_000:06d}"
    with pytest.raises(service.CodeRejected) as rejected:
        by_code(engine, settings, clock, flow_id, wrong, ip="192.0.2.9")
    assert (rejected.value.reason, rejected.value.remaining) == ("wrong", settings.code_attempts - 1)
    digest = keyed_hash(settings.secret_key, "email", email_key("camille@example.com"))
    assert limits(engine)[f"codefail:{digest}"] == 1 and limits(engine)["code:ip:192.0.2.9"] == 1
    assert audits(engine)[-1] == (
        "anonymous",
        "signin.code_failed",
        f"customer:{customer.id}",
        {"remaining": settings.code_attempts - 1},
    )

    now = clock()
    signed_in = by_code(engine, settings, clock, flow_id, f" {code[:3]} {code[3:]} ", ip="192.0.2.9")
    assert (signed_in.customer_id, signed_in.language) == (customer.id, "fr")  # the language of the page used
    (challenge,) = rows(engine, LoginChallenge, LoginChallenge.id)
    assert challenge["attempts"] == 2 and challenge["used_at"] == now and challenge["voided_at"] is None
    (opened,) = rows(engine, SessionRow, SessionRow.id)
    assert opened == {
        "id": opened["id"],
        "id_hash": keyed_hash(settings.secret_key, "session", signed_in.session_id),
        "kind": "customer",
        "customer_id": customer.id,
        "staff_id": None,
        "created_at": now,
        "last_seen_at": now,
        "idle_expires_at": now + settings.customer_idle_timeout,
        "absolute_expires_at": now + settings.customer_absolute_timeout,
        "ended_at": None,
    }
    assert audits(engine)[-1] == ("customer:" + str(customer.id), "signin.succeeded", f"customer:{customer.id}", {
        "method": "code"
    })  # fmt: skip
    assert limits(engine)["code:ip:192.0.2.9"] == 2 and limits(engine)[f"codefail:{digest}"] == 1


def test_an_unknown_flow_counts_the_ip_and_writes_nothing_else(engine, settings, composer, clock, customer) -> None:
    with pytest.raises(service.CodeRejected) as rejected:
        by_code(engine, settings, clock, "no-such-flow", "123456", ip="192.0.2.9")
    assert rejected.value.reason == "expired"
    assert limits(engine) == {"code:ip:192.0.2.9": 1} and audits(engine) == []


def test_a_hit_counts_in_its_window_and_reports_the_time_left(engine, clock: Clock) -> None:
    from datetime import timedelta

    window = timedelta(minutes=15)

    def hit():  # type: ignore[no-untyped-def]
        return in_transaction(engine, ratelimit.hit, key="k", limit=2, window=window, now=clock())

    first, second, third = hit(), hit(), hit()
    assert [r.count for r in (first, second, third)] == [1, 2, 3]
    assert [r.allowed for r in (first, second, third)] == [True, True, False]
    assert third.retry_after == ratelimit.window_start(clock(), window) + window - clock()
    with transaction(engine) as session:
        assert ratelimit.count(session, key="k", window=window, now=clock()) == 3
        assert ratelimit.count(session, key="other", window=window, now=clock()) == 0
    clock.advance(seconds=window.total_seconds())
    assert hit().count == 1
