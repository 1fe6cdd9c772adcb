"""The sign-in challenge lifecycle: link, code, expiry, reuse, voiding, attempts, tampering."""

from __future__ import annotations

import re

import pytest
from sqlalchemy import func, select

from portal.db import in_transaction, transaction
from portal.identity import service
from portal.models import AuditEvent, LoginChallenge, OutboxMessage
from tests.conftest import Clock
from tests.factories import make_customer


def request(engine, settings, composer, clock, email="camille@example.com", ip="192.0.2.1", language="fr"):
    flow_id = in_transaction(
        engine,
        service.request_sign_in,
        keep_on=(service.SignInError,),
        settings=settings,
        composer=composer,
        email=email,
        language=language,
        ip=ip,
        now=clock(),
    )
    with transaction(engine) as session:
        message = session.scalars(select(OutboxMessage).order_by(OutboxMessage.id.desc())).first()  # type: ignore[union-attr]
        text = message.payload["text"]
    token = re.search(r"token=([\w-]+)", text)
    code = re.search(r"\b(\d{6})\b", text)
    return flow_id, (token.group(1) if token else None), (code.group(1) if code else None), message


def by_link(engine, settings, clock, token):
    return in_transaction(
        engine, service.sign_in_with_link, keep_on=(service.SignInError,), settings=settings, token=token, now=clock()
    )


def by_code(engine, settings, clock, flow_id, code, ip="192.0.2.1"):
    return in_transaction(
        engine,
        service.sign_in_with_code,
        keep_on=(service.SignInError,),
        settings=settings,
        flow_id=flow_id,
        code=code,
        ip=ip,
        now=clock(),
    )


@pytest.fixture
def customer(engine):
    return make_customer(engine, email="Camille@Example.com")


def test_link_signs_in_once(engine, settings, composer, clock: Clock, customer) -> None:
    _flow, token, _code, message = request(engine, settings, composer, clock, email="  CAMILLE@example.com ")
    assert message.payload["to"] == "CAMILLE@example.com"
    signed_in = by_link(engine, settings, clock, token)
    assert signed_in.customer_id == customer.id and signed_in.session_id
    with pytest.raises(service.LinkRejected) as rejected:
        by_link(engine, settings, clock, token)
    assert rejected.value.reason == "used"


def test_tokens_and_codes_are_stored_only_as_keyed_hashes(engine, settings, composer, clock, customer) -> None:
    _flow, token, code, _message = request(engine, settings, composer, clock)
    with transaction(engine) as session:
        challenge = session.scalars(select(LoginChallenge)).one()
        stored = " ".join(str(v) for v in challenge.model_dump().values())
    assert token not in stored and code not in stored and "camille" not in stored.lower()


def test_link_expires_after_ten_minutes(engine, settings, composer, clock: Clock, customer) -> None:
    _flow, token, _code, _message = request(engine, settings, composer, clock)
    clock.advance(minutes=10)
    with pytest.raises(service.LinkRejected) as rejected:
        by_link(engine, settings, clock, token)
    assert rejected.value.reason == "expired"


def test_link_still_works_just_before_expiry(engine, settings, composer, clock: Clock, customer) -> None:
    _flow, token, _code, _message = request(engine, settings, composer, clock)
    clock.advance(minutes=9, seconds=59)
    assert by_link(engine, settings, clock, token).customer_id == customer.id


def test_a_newer_request_leaves_the_older_link_and_code_working(
    engine, settings, composer, clock: Clock, customer
) -> None:
    """Someone else typing the address (or a flood of requests) must not void the link its owner already has."""
    flow1, token1, code1, _ = request(engine, settings, composer, clock)
    clock.advance(seconds=30)
    flow2, token2, code2, _ = request(engine, settings, composer, clock)
    assert by_link(engine, settings, clock, token1).customer_id == customer.id
    assert by_code(engine, settings, clock, flow2, code2).customer_id == customer.id


def test_a_flooded_address_is_sent_nothing_more_and_its_owner_is_not_refused(
    engine, settings, composer, clock: Clock, customer
) -> None:
    flows = [
        request(engine, settings, composer, clock, ip=f"192.0.2.{n}") for n in range(settings.signin_limit_per_email)
    ]
    with transaction(engine) as session:
        sent = session.scalar(select(func.count()).select_from(OutboxMessage))
    owner_flow = in_transaction(
        engine,
        service.request_sign_in,
        settings=settings,
        composer=composer,
        email="camille@example.com",
        language="fr",
        ip="198.51.100.7",
        now=clock(),
    )
    assert owner_flow  # an answer like any other, not a refusal
    with transaction(engine) as session:
        assert session.scalar(select(func.count()).select_from(OutboxMessage)) == sent  # no email more
        assert "signin.throttled" in set(session.scalars(select(AuditEvent.action)))
    _, token, _, _ = flows[0]
    assert by_link(engine, settings, clock, token).customer_id == customer.id  # the first link still works


def test_wrong_codes_are_capped_per_address_per_day_then_only_links_work(
    engine, settings, composer, clock: Clock, customer
) -> None:
    """Slow brute force across fresh challenges: 10 wrong codes a day per address, then codes are off."""
    wrong_total = 0
    while wrong_total < settings.code_failures_per_day:
        flow, _, code, _ = request(engine, settings, composer, clock, ip=f"192.0.2.{wrong_total}")
        for _ in range(min(settings.code_attempts, settings.code_failures_per_day - wrong_total)):
            with pytest.raises(service.CodeRejected):
                by_code(engine, settings, clock, flow, f"{(int(code) + 1) % 1_000_000:06d}")
            wrong_total += 1
        clock.advance(minutes=16)
    flow, token, code, _ = request(engine, settings, composer, clock)
    with pytest.raises(service.CodeRejected) as refused:
        by_code(engine, settings, clock, flow, code)  # even the right code
    assert refused.value.reason == "codes_off"
    assert by_link(engine, settings, clock, token).customer_id == customer.id
    clock.advance(days=1)
    flow, _, code, _ = request(engine, settings, composer, clock)
    assert by_code(engine, settings, clock, flow, code).customer_id == customer.id


def test_tampered_or_unknown_token_is_invalid(engine, settings, composer, clock, customer) -> None:
    _flow, token, _code, _ = request(engine, settings, composer, clock)
    for bad in (token[:-1] + ("A" if token[-1] != "A" else "B"), "", "x" * 300, "../../etc"):
        with pytest.raises(service.LinkRejected) as rejected:
            by_link(engine, settings, clock, bad)
        assert rejected.value.reason == "invalid"


def test_code_signs_in_once(engine, settings, composer, clock, customer) -> None:
    flow, _token, code, _ = request(engine, settings, composer, clock)
    assert by_code(engine, settings, clock, flow, f" {code[:3]} {code[3:]} ").customer_id == customer.id
    with pytest.raises(service.CodeRejected) as rejected:
        by_code(engine, settings, clock, flow, code)
    assert rejected.value.reason == "expired"


def test_five_wrong_codes_burn_the_challenge(engine, settings, composer, clock, customer) -> None:
    flow, token, code, _ = request(engine, settings, composer, clock)
    wrong = f"{(int(code) + 1) % 1_000_000:06d}"
    remaining = []
    for _ in range(5):
        with pytest.raises(service.CodeRejected) as rejected:
            by_code(engine, settings, clock, flow, wrong)
        remaining.append((rejected.value.reason, rejected.value.remaining))
    assert remaining == [("wrong", 4), ("wrong", 3), ("wrong", 2), ("wrong", 1), ("exhausted", 0)]
    # Even the right code no longer works, and neither does the link of the same email.
    with pytest.raises(service.CodeRejected) as rejected:
        by_code(engine, settings, clock, flow, code)
    assert rejected.value.reason == "exhausted"
    with pytest.raises(service.LinkRejected):
        by_link(engine, settings, clock, token)
    with transaction(engine) as session:
        failures = session.scalar(select(func.count()).where(AuditEvent.action == "signin.code_failed"))
    assert failures == 5


def test_code_expires(engine, settings, composer, clock: Clock, customer) -> None:
    flow, _token, code, _ = request(engine, settings, composer, clock)
    clock.advance(minutes=11)
    with pytest.raises(service.CodeRejected) as rejected:
        by_code(engine, settings, clock, flow, code)
    assert rejected.value.reason == "expired"


def test_unknown_address_gets_the_no_data_email_and_can_never_sign_in(engine, settings, composer, clock) -> None:
    flow, token, code, message = request(engine, settings, composer, clock, email="nobody@example.org")
    assert token is None and code is None
    assert message.topic == "sign-in-unknown"
    assert "no personal data" in message.payload["text"] or "aucune donnée" in message.payload["text"]
    for guess in ("000000", "123456"):
        with pytest.raises(service.CodeRejected):
            by_code(engine, settings, clock, flow, guess)
    with transaction(engine) as session:
        audit = session.scalars(select(AuditEvent).where(AuditEvent.action == "signin.requested")).one()
    assert audit.target is None and "nobody" not in str(audit.detail)


def test_email_goes_out_in_the_language_used(engine, settings, composer, clock, customer) -> None:
    _f, _t, _c, french = request(engine, settings, composer, clock, language="fr")
    _f, _t, _c, english = request(engine, settings, composer, clock, language="en")
    assert "Bonjour" in french.payload["text"]
    assert "Hello" in english.payload["text"]


@pytest.mark.parametrize(
    "bad", ["", "camille", "camille@", "@example.com", "a b@example.com", "x@example", "a" * 250 + "@example.com"]
)
def test_malformed_addresses_are_refused_before_anything_is_sent(engine, settings, composer, clock, bad) -> None:
    with pytest.raises(service.InvalidEmail):
        request(engine, settings, composer, clock, email=bad)
    with transaction(engine) as session:
        assert session.scalar(select(func.count()).select_from(OutboxMessage)) == 0


def test_the_per_address_limit_sends_again_once_its_window_passes(engine, settings, composer, clock, customer) -> None:
    def emails() -> int:
        with transaction(engine) as session:
            return session.scalar(select(func.count()).select_from(OutboxMessage))

    for _ in range(settings.signin_limit_per_email + 1):
        request(engine, settings, composer, clock, ip="192.0.2.9")
    assert emails() == settings.signin_limit_per_email
    # Another address from the same IP is not affected, and the window passes.
    request(engine, settings, composer, clock, email="other@example.com", ip="192.0.2.9")
    clock.advance(minutes=15)
    request(engine, settings, composer, clock, ip="192.0.2.10")
    assert emails() == settings.signin_limit_per_email + 2


def test_rate_limit_per_ip_across_addresses(engine, settings, composer, clock) -> None:
    for i in range(settings.signin_limit_per_ip):
        request(engine, settings, composer, clock, email=f"visitor{i}@example.com", ip="198.51.100.7")
    with pytest.raises(service.TooManyAttempts):
        request(engine, settings, composer, clock, email="one-more@example.com", ip="198.51.100.7")
