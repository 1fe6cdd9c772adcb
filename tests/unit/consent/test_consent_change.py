"""The htmx toggle's service (`change_consent`) writes exactly what `record_consent` writes, and reads back only
the purpose's state and the history's new entry."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select

from portal.consent import ledger
from portal.consent.register import PurposeRegister, load_register
from portal.db import in_transaction, transaction
from portal.models import AuditEvent, ConsentEvent, OutboxMessage
from tests.consent_factories import add_consent_changes
from tests.factories import add_page_views, make_customer
from tests.sql_count import counting_statements

NOW = datetime(2026, 11, 23, 10, tzinfo=UTC)


@pytest.fixture
def register(settings) -> PurposeRegister:  # type: ignore[no-untyped-def]
    return load_register(settings.purposes_file)


def _click(engine, register, fn, customer_id: int, purpose: str, granted: bool, at: datetime):  # type: ignore[no-untyped-def]
    return in_transaction(
        engine,
        fn,
        register=register,
        customer_id=customer_id,
        purpose=purpose,
        granted=granted,
        channel="web",
        actor=f"customer:{customer_id}",
        now=at,
        locale="en",
        request_id="req-1",
    )


def _written(engine, customer_id: int) -> tuple[list, list, list]:  # type: ignore[no-untyped-def]
    with transaction(engine) as session:
        events = session.execute(
            select(ConsentEvent.purpose, ConsentEvent.granted, ConsentEvent.occurred_at, ConsentEvent.channel,
                   ConsentEvent.policy_version, ConsentEvent.wording_hash)
            .where(ConsentEvent.customer_id == customer_id).order_by(ConsentEvent.id)
        ).all()  # fmt: skip
        audits = session.execute(
            select(AuditEvent.occurred_at, AuditEvent.action, AuditEvent.detail, AuditEvent.request_id)
            .where(AuditEvent.target == f"customer:{customer_id}")
            .order_by(AuditEvent.id)
        ).all()
        payloads = [
            {k: v for k, v in m.payload["data"].items() if k != "customer_id"}
            for m in session.scalars(select(OutboxMessage).order_by(OutboxMessage.id))
            if m.payload and m.payload["data"]["customer_id"] == customer_id
        ]
    return [tuple(e) for e in events], [tuple(a) for a in audits], payloads


def test_the_toggle_writes_what_record_consent_writes(engine, register) -> None:
    one, two = make_customer(engine), make_customer(engine)
    clicks = [("sms_offers", True), ("sms_offers", True), ("email_newsletter", True), ("sms_offers", False)]
    for n, (purpose, granted) in enumerate(clicks):
        at = NOW + timedelta(minutes=n)
        _click(engine, register, ledger.record_consent, one.id, purpose, granted, at)
        _click(engine, register, ledger.change_consent, two.id, purpose, granted, at)
    assert _written(engine, one.id) == _written(engine, two.id)
    events, audits, payloads = _written(engine, two.id)
    assert len(events) == len(audits) == len(payloads) == 3  # the repeated click records nothing


def test_the_toggle_reads_back_the_state_and_the_new_entry(engine, register) -> None:
    customer = make_customer(engine)
    first = _click(engine, register, ledger.change_consent, customer.id, "sms_offers", True, NOW)
    assert first.changed and first.first_entry and first.consent.status == "granted"
    assert first.newest is not None and (first.newest.purpose, first.newest.granted) == ("sms_offers", True)
    second = _click(engine, register, ledger.change_consent, customer.id, "sms_offers", False, NOW + timedelta(1))
    assert second.changed and not second.first_entry and second.consent.status == "withdrawn"
    assert second.consent.first_granted_at == NOW and second.newest and not second.newest.granted
    same = _click(engine, register, ledger.change_consent, customer.id, "sms_offers", False, NOW + timedelta(2))
    assert not same.changed and same.newest is None and same.consent == second.consent


def test_the_browsing_row_also_reads_the_page_views_held(engine, register) -> None:
    customer = make_customer(engine)
    add_page_views(engine, customer, 3)  # consented by the factory
    change = _click(engine, register, ledger.change_consent, customer.id, "browsing_analytics", False, NOW)
    assert change.changed and change.held_views == 3


def test_the_toggle_costs_the_same_statements_after_ten_or_ten_thousand_changes(engine, register) -> None:
    counts = []
    for size in (10, 10_000):
        customer = make_customer(engine)
        add_consent_changes(engine, customer.id, size, purposes=("email_newsletter", "sms_offers"), end=NOW)
        with counting_statements(engine) as statements:
            change = _click(engine, register, ledger.change_consent, customer.id, "phone_calls", True, NOW)
        assert change.changed
        counts.append(len(statements))
    assert counts[0] == counts[1], counts
