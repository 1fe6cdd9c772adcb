"""The consent ledger: state from the latest event, only changes recorded, proof kept, events for the retailer."""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import func, select

from portal.consent import ledger
from portal.consent.register import PurposeRegister, load_register
from portal.db import in_transaction, transaction
from portal.models import (
    AuditEvent,
    ConsentEvent,
    ConsentWording,
    OutboxMessage,
    PageView,
    PageViewDay,
    PageViewTotal,
)
from portal.mydata.service import overview_for
from tests.factories import add_page_views, make_customer

NOW = datetime(2026, 11, 23, 10, tzinfo=UTC)


@pytest.fixture
def register(settings) -> PurposeRegister:  # type: ignore[no-untyped-def]
    return load_register(settings.purposes_file)


def record(engine, register, customer, purpose="email_newsletter", granted=True, at=NOW, **options):  # type: ignore[no-untyped-def]
    values = {"channel": "web", "actor": f"customer:{customer.id}", "locale": "fr", **options}
    return in_transaction(
        engine,
        ledger.record_consent,
        register=register,
        customer_id=customer.id,
        purpose=purpose,
        granted=granted,
        now=at,
        **values,
    )


def states(engine, customer, **options):  # type: ignore[no-untyped-def]
    with engine.connect() as connection:
        return ledger.current_consents(connection, customer_id=customer.id, **options)


def count(engine, model) -> int:  # type: ignore[no-untyped-def]
    with transaction(engine) as session:
        return session.execute(select(func.count()).select_from(model)).scalar_one()


def test_nothing_is_pre_ticked(engine, register) -> None:
    customer = make_customer(engine)
    codes = [purpose.code for purpose in register.consent_based()]
    current = states(engine, customer, purposes=codes)
    assert set(current) == set(codes)
    assert all(state == ledger.ConsentState() and state.status == "never" for state in current.values())
    assert states(engine, customer) == {}


def test_the_current_state_is_the_latest_event(engine, register) -> None:
    customer = make_customer(engine)
    assert record(engine, register, customer, granted=True, at=NOW)
    assert record(engine, register, customer, granted=False, at=NOW + timedelta(days=1), channel="store")
    state = states(engine, customer)["email_newsletter"]
    assert state.status == "withdrawn" and not state.granted
    assert state.changed_at == NOW + timedelta(days=1) and state.first_granted_at == NOW and state.channel == "store"
    assert record(engine, register, customer, granted=True, at=NOW + timedelta(days=2))
    assert states(engine, customer)["email_newsletter"].status == "granted"


def test_repeated_clicks_record_nothing(engine, register) -> None:
    customer = make_customer(engine)
    assert record(engine, register, customer, granted=True) is True
    assert record(engine, register, customer, granted=True, at=NOW + timedelta(seconds=1)) is False
    assert count(engine, ConsentEvent) == 1
    # Refusing what was never given changes nothing either.
    assert record(engine, register, customer, purpose="sms_offers", granted=False) is False
    assert count(engine, ConsentEvent) == 1 and count(engine, AuditEvent) == 1 and count(engine, OutboxMessage) == 1


def test_a_click_that_waited_behind_a_later_one_takes_effect_after_it(engine, register) -> None:
    """Two tabs, two app processes: the click whose clock read came first can reach the customer's row second. It
    is the customer's own answer, given now: recorded after the other one, never refused as "older"."""
    customer = make_customer(engine)
    assert record(engine, register, customer, granted=True, at=NOW + timedelta(milliseconds=3))
    assert record(engine, register, customer, granted=False, at=NOW) is True
    state = states(engine, customer)["email_newsletter"]
    assert not state.granted and state.changed_at == NOW + timedelta(milliseconds=3)
    with transaction(engine) as session:
        ledger_order = session.execute(
            select(ConsentEvent.granted).order_by(ConsentEvent.occurred_at, ConsentEvent.id)
        ).scalars()
        assert list(ledger_order) == [True, False]
    # An answer another channel reports as given earlier is still refused: it cannot overrule a newer one.
    with pytest.raises(ledger.ConsentRefused) as refused:
        record(engine, register, customer, granted=True, at=NOW + timedelta(days=1), occurred_at=NOW, channel="store")
    assert refused.value.reason == "older_than_latest"
    assert count(engine, ConsentEvent) == 2


def test_the_version_and_the_exact_wording_are_kept(engine, register) -> None:
    customer = make_customer(engine)
    record(engine, register, customer, locale="en")
    record(engine, register, customer, granted=False, locale="en")
    other = make_customer(engine)
    record(engine, register, other, locale="en")
    with transaction(engine) as session:
        events = session.execute(select(ConsentEvent)).scalars().all()
        wordings = session.execute(select(ConsentWording)).scalars().all()
    expected_hash = register.wording_hash("email_newsletter", "en")
    assert {(e.policy_version, e.wording_hash) for e in events} == {(register.policy_version, expected_hash)}
    assert len(wordings) == 1  # stored once per version and language
    wording = wordings[0]
    assert wording.hash == expected_hash and wording.locale == "en" and wording.purpose == "email_newsletter"
    assert wording.text == register.by_code["email_newsletter"].consent_wording("en")
    assert wording.policy_version == register.policy_version


def test_the_history_lists_every_event_newest_first(engine, register) -> None:
    customer = make_customer(engine)
    record(engine, register, customer, at=NOW)
    record(engine, register, customer, purpose="postal_mail", at=NOW + timedelta(hours=1), channel="support")
    record(engine, register, customer, granted=False, at=NOW + timedelta(hours=2))
    with engine.connect() as connection:
        events = ledger.history(connection, customer_id=customer.id)
    assert [(e.purpose, e.granted, e.channel) for e in events] == [
        ("email_newsletter", False, "web"),
        ("postal_mail", True, "support"),
        ("email_newsletter", True, "web"),
    ]
    assert all(e.policy_version == register.policy_version and e.wording_hash for e in events)


@pytest.mark.parametrize("purpose", ["order_management", "fraud_prevention", "no_such_purpose"])
def test_purposes_not_based_on_consent_are_refused(engine, register, purpose: str) -> None:
    customer = make_customer(engine)
    with pytest.raises(ledger.ConsentRefused):
        record(engine, register, customer, purpose=purpose)
    assert issubclass(ledger.ConsentRefused, ValueError)
    assert count(engine, ConsentEvent) == 0 and count(engine, AuditEvent) == 0


def test_each_change_is_audited_and_sent_to_the_retailer(engine, register) -> None:
    customer = make_customer(engine)
    record(engine, register, customer, purpose="sms_offers", channel="store", actor="staff:4")
    record(engine, register, customer, purpose="sms_offers", granted=False, at=NOW + timedelta(minutes=5))
    with transaction(engine) as session:
        audits = session.execute(select(AuditEvent).order_by(AuditEvent.id)).scalars().all()
        messages = session.execute(select(OutboxMessage).order_by(OutboxMessage.id)).scalars().all()
    assert [(a.action, a.actor, a.target, a.detail) for a in audits] == [
        ("consent.granted", "staff:4", f"customer:{customer.id}", {"purpose": "sms_offers", "channel": "store"}),
        (
            "consent.withdrawn",
            f"customer:{customer.id}",
            f"customer:{customer.id}",
            {"purpose": "sms_offers", "channel": "web"},
        ),
    ]
    assert [(m.kind, m.topic) for m in messages] == [("webhook", "consent.changed")] * 2
    event = messages[1].payload
    assert event["type"] == "consent.changed" and event["id"].startswith("evt_")
    assert event["id"] != messages[0].payload["id"]
    assert event["data"] == {
        "customer_id": customer.id,
        "retailer_customer_id": None,
        "purpose": "sms_offers",
        "granted": False,
        "occurred_at": (NOW + timedelta(minutes=5)).isoformat(),
        "channel": "web",
        "policy_version": register.policy_version,
    }


def test_withdraw_all_withdraws_only_what_is_given(engine, register) -> None:
    customer = make_customer(engine)
    record(engine, register, customer, purpose="email_newsletter")
    record(engine, register, customer, purpose="partner_sharing")
    record(engine, register, customer, purpose="postal_mail")
    record(engine, register, customer, purpose="postal_mail", granted=False)
    later = NOW + timedelta(days=1)
    withdrawn = in_transaction(
        engine,
        ledger.withdraw_all_marketing,
        register=register,
        customer_id=customer.id,
        channel="web",
        actor=f"customer:{customer.id}",
        now=later,
        locale="en",
    )
    assert withdrawn == ["email_newsletter", "partner_sharing"]
    assert not any(state.granted for state in states(engine, customer).values())
    assert count(engine, ConsentEvent) == 6
    with transaction(engine) as session:
        assert (
            session.execute(
                select(func.count()).where(AuditEvent.action == "consent.withdrawn", AuditEvent.occurred_at == later)
            ).scalar_one()
            == 2
        )


def test_deleting_the_browsing_history(engine, register) -> None:
    customer = make_customer(engine)
    other = make_customer(engine)
    add_page_views(engine, customer, 30)
    add_page_views(engine, other, 2)
    deleted = in_transaction(engine, ledger.delete_browsing_history, customer_id=customer.id, now=NOW)
    assert deleted == 30
    with transaction(engine) as session:
        for model in (PageView, PageViewDay, PageViewTotal):
            mine = session.execute(select(func.count()).where(model.customer_id == customer.id)).scalar_one()
            theirs = session.execute(select(func.count()).where(model.customer_id == other.id)).scalar_one()
            assert mine == 0 and theirs >= 1
        audit = session.execute(select(AuditEvent).where(AuditEvent.action == "browsing.deleted")).scalar_one()
        assert audit.target == f"customer:{customer.id}" and audit.detail == {"count": 30, "channel": "web"}
        overview = overview_for(session, customer_id=customer.id)
    assert overview.page_view_count == 0


def test_the_proof_of_consent_as_csv(engine, register) -> None:
    customer = make_customer(engine)
    record(engine, register, customer, purpose="postal_mail", locale="fr", at=NOW)
    record(engine, register, customer, purpose="postal_mail", granted=False, locale="en", at=NOW + timedelta(days=3))
    with engine.connect() as connection:
        text = "".join(ledger.consent_proof_csv(connection, customer_id=customer.id))
    rows = list(csv.DictReader(io.StringIO(text)))
    assert list(rows[0]) == list(ledger.PROOF_COLUMNS)
    assert [(r["purpose"], r["granted"], r["locale"]) for r in rows] == [
        ("postal_mail", "granted", "fr"),
        ("postal_mail", "withdrawn", "en"),
    ]
    assert rows[0]["occurred_at"] == NOW.isoformat() and rows[0]["policy_version"] == register.policy_version
    assert rows[0]["wording"] == register.by_code["postal_mail"].consent_wording("fr")
    assert rows[1]["wording_hash"] == register.wording_hash("postal_mail", "en")
