"""The ledger's website visitors: anonymous answers, the join to a customer, and who wins (the latest answer)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select

from portal.consent import ledger
from portal.consent.register import PurposeRegister, load_register
from portal.db import in_transaction, transaction
from portal.errors import CustomerNotFound
from portal.models import AuditEvent, ConsentEvent, OutboxMessage, WebsiteVisitor
from tests.factories import make_customer

NOW = datetime(2026, 11, 23, 10, tzinfo=UTC)
ANALYTICS = "browsing_analytics"


@pytest.fixture
def register(settings) -> PurposeRegister:  # type: ignore[no-untyped-def]
    return load_register(settings.purposes_file)


def visitor() -> str:
    return str(uuid.uuid4())


def answer(engine, register, visitor_id, granted, *, purpose=ANALYTICS, at=NOW) -> bool:  # type: ignore[no-untyped-def]
    return in_transaction(
        engine,
        ledger.record_visitor_consent,
        register=register,
        visitor_id=visitor_id,
        purpose=purpose,
        granted=granted,
        now=at,
        locale="fr",
        banner_version="0123456789ab",
    )


def link(engine, register, visitor_id, customer, *, at=NOW) -> ledger.VisitorLink:  # type: ignore[no-untyped-def]
    return in_transaction(
        engine,
        ledger.link_visitor,
        register=register,
        visitor_id=visitor_id,
        customer_id=customer.id,
        actor="api:ppk_test",
        now=at,
    )


def state_of(engine, visitor_id, purpose=ANALYTICS):  # type: ignore[no-untyped-def]
    with engine.connect() as connection:
        return ledger.visitor_consents(connection, visitor_id=visitor_id, purposes=[purpose])


def test_an_anonymous_answer_is_an_event_of_the_ledger_with_its_proof(engine, register) -> None:
    someone = visitor()
    assert answer(engine, register, someone, False)  # a first refusal is an answer: recorded
    assert not answer(engine, register, someone, False)  # the same again: nothing
    assert answer(engine, register, someone, True, at=NOW + timedelta(minutes=1))
    with transaction(engine) as session:
        events = session.scalars(select(ConsentEvent).order_by(ConsentEvent.id)).all()
    assert [(e.customer_id, e.visitor_id, e.granted, e.channel) for e in events] == [
        (None, someone, False, "website"),
        (None, someone, True, "website"),
    ]
    assert {e.policy_version for e in events} == {register.policy_version}
    assert {e.wording_hash for e in events} == {register.wording_hash(ANALYTICS, "fr")}
    assert {e.banner_version for e in events} == {"0123456789ab"}
    customer_id, states = state_of(engine, someone)
    assert customer_id is None and states[ANALYTICS].granted


def test_a_purpose_not_based_on_consent_is_refused(engine, register) -> None:
    with pytest.raises(ledger.ConsentRefused):
        answer(engine, register, visitor(), True, purpose="accounting")


def test_a_visitor_never_answering_reads_as_not_given(engine) -> None:
    customer_id, states = state_of(engine, visitor())
    assert customer_id is None and states[ANALYTICS] == ledger.ConsentState()


def test_linking_joins_the_answers_to_the_customer_and_the_latest_answer_stands(engine, register) -> None:
    customer = make_customer(engine)
    in_transaction(  # given in a store before visiting the website
        engine, ledger.record_consent, register=register, customer_id=customer.id, purpose=ANALYTICS,
        granted=True, channel="store", actor="staff:1", now=NOW - timedelta(days=3), locale="fr",
    )  # fmt: skip
    someone = visitor()
    answer(engine, register, someone, False)  # refused on the website later
    joined = link(engine, register, someone, customer, at=NOW + timedelta(hours=1))
    assert joined == ledger.VisitorLink(joined=1, changed=(ANALYTICS,), relinked=False)
    with engine.connect() as connection:
        history = ledger.history(connection, customer_id=customer.id)
        assert not ledger.current_consents(connection, customer_id=customer.id)[ANALYTICS].granted
    assert [(r.channel, r.granted) for r in history] == [("website", False), ("store", True)]
    with transaction(engine) as session:
        webhooks = session.scalars(select(OutboxMessage).where(OutboxMessage.kind == "webhook")).all()
        audit = session.scalars(select(AuditEvent).where(AuditEvent.action == "consent.visitor_linked")).one()
    assert any(w.payload["data"]["purpose"] == ANALYTICS and w.payload["data"]["granted"] is False for w in webhooks)
    assert audit.detail == {"joined": 1, "changed": [ANALYTICS], "relinked": False}
    assert someone not in str(audit.detail)  # the visitor id is the ledger's proof key, not the audit trail's


def test_an_older_website_answer_does_not_overrule_a_later_choice_made_elsewhere(engine, register) -> None:
    customer = make_customer(engine)
    someone = visitor()
    answer(engine, register, someone, False, at=NOW - timedelta(days=2))  # refused on the website
    in_transaction(  # then given in the portal
        engine, ledger.record_consent, register=register, customer_id=customer.id, purpose=ANALYTICS,
        granted=True, channel="web", actor=f"customer:{customer.id}", now=NOW - timedelta(days=1), locale="fr",
    )  # fmt: skip
    joined = link(engine, register, someone, customer)
    assert (joined.joined, joined.changed) == (1, ())
    customer_id, states = state_of(engine, someone)
    assert customer_id == customer.id and states[ANALYTICS].granted  # the banner now shows the portal's choice


def test_a_later_choice_made_in_the_portal_wins_on_the_website(engine, register) -> None:
    customer = make_customer(engine)
    someone = visitor()
    answer(engine, register, someone, True, at=NOW - timedelta(days=2))
    link(engine, register, someone, customer, at=NOW - timedelta(days=1))
    assert state_of(engine, someone)[1][ANALYTICS].granted
    in_transaction(
        engine, ledger.record_consent, register=register, customer_id=customer.id, purpose=ANALYTICS,
        granted=False, channel="web", actor=f"customer:{customer.id}", now=NOW, locale="fr",
    )  # fmt: skip
    assert not state_of(engine, someone)[1][ANALYTICS].granted


def test_a_linked_visitor_answers_for_the_customer(engine, register) -> None:
    customer = make_customer(engine)
    someone = visitor()
    link(engine, register, someone, customer)
    assert answer(engine, register, someone, True, at=NOW + timedelta(minutes=5))
    with engine.connect() as connection:
        (event,) = ledger.history(connection, customer_id=customer.id)
    assert (event.channel, event.granted, event.actor) == ("website", True, "visitor")
    with transaction(engine) as session:
        stored = session.scalars(select(ConsentEvent)).one()
    assert (stored.customer_id, stored.visitor_id) == (customer.id, someone)


def test_linking_again_is_harmless_and_a_shared_computer_follows_the_last_customer(engine, register) -> None:
    first, second = make_customer(engine), make_customer(engine)
    someone = visitor()
    answer(engine, register, someone, True)
    assert link(engine, register, someone, first).joined == 1
    assert link(engine, register, someone, first) == ledger.VisitorLink(joined=0, changed=(), relinked=False)
    assert link(engine, register, someone, second).relinked
    customer_id, states = state_of(engine, someone)
    assert customer_id == second.id and not states[ANALYTICS].granted  # the first customer's answer stays theirs
    with engine.connect() as connection:
        assert ledger.current_consents(connection, customer_id=first.id)[ANALYTICS].granted


def test_an_erased_customer_cannot_be_linked_and_their_links_are_forgotten(engine, register) -> None:
    customer = make_customer(engine)
    someone = visitor()
    link(engine, register, someone, customer)
    with transaction(engine) as session:
        session.get(type(customer), customer.id).erased_at = NOW  # type: ignore[union-attr]
    assert state_of(engine, someone)[0] is None  # the banner no longer reads an erased person's consents
    with pytest.raises(CustomerNotFound):
        link(engine, register, visitor(), customer)
    with transaction(engine) as session:
        assert session.scalars(select(WebsiteVisitor)).all() != []  # the erasure itself deletes it (erasure tests)


def test_erasure_forgets_whose_visitor_id_it_was_and_keeps_the_proof(engine, register, settings, composer) -> None:
    from tests.unit.erasure.test_erasure import erase, file

    customer = make_customer(engine)
    someone = visitor()
    answer(engine, register, someone, True)
    link(engine, register, someone, customer)
    erase(engine, file(engine, customer.id), composer=composer, settings=settings, register=register)
    with transaction(engine) as session:
        assert session.scalars(select(WebsiteVisitor)).all() == []
        proof = session.scalars(select(ConsentEvent)).all()
    # The website consent stays as proof, followed by the withdrawal the erasure records.
    assert [(e.customer_id, e.granted, e.channel) for e in proof] == [
        (customer.id, True, "website"),
        (customer.id, False, "support"),
    ]
    assert state_of(engine, someone)[0] is None  # the banner no longer follows an erased person
