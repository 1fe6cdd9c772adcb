"""Erasure that really erases, restriction and objection: the plan, one transaction, the tombstone, nothing left."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import Engine, func, inspect, make_url, select, text

from portal.audit import record_audit
from portal.consent import ledger
from portal.consent.register import PurposeRegister, load_register
from portal.db import in_transaction, transaction
from portal.erasure import service as erasure
from portal.erasure import tombstone
from portal.identity.service import request_sign_in
from portal.identity.sessions import open_session
from portal.imports.lookup import CustomerRef, is_erased
from portal.models import (
    AuditEvent,
    ConsentEvent,
    Customer,
    LoginChallenge,
    OutboxMessage,
    PageView,
    PageViewDay,
    PageViewTotal,
    PrivacyRequest,
    ProfileChange,
    Purchase,
    PurchaseLine,
    PurchaseTotal,
    RequestEvent,
)
from portal.models.identity import Session as BrowserSession
from portal.outbox.worker import OutboxWorker
from portal.profile import service as rectification
from portal.requests import restriction, workflow
from portal.requests.actions import ActionRefused
from portal.requests.service import RequestNotFound, file_request
from tests.conftest import TIMEZONE, email_composer, make_settings
from tests.factories import add_page_views, add_purchases, make_customer, make_store

NOW = datetime(2026, 11, 23, 10, tzinfo=UTC)
AGENT = "staff:7"
# The person to forget: values found nowhere else in the database, so that any trace of them is hers.
PERSON = {
    "email": "Mireille.Quintavalle@example.org",
    "first_name": "Mireille",
    "last_name": "Quintavalle",
    "phone": "+33698765432",
    "address_line1": "3 allée des Peupliers",  # rectified below; the old value must go too
    "address_line2": "Bâtiment Capucine",
    "postal_code": "69004",
    "city": "Lyon",
    "birth_date": date(1979, 8, 14),
    "loyalty_number": "AUB-77665544",
    "retailer_ref": "CRM-QV-0042",
}
NEW_STREET = "7 impasse des Glycines"
NEW_EMAIL = "mireille.q@example.net"
NEEDLES = (
    "Mireille.Quintavalle@example.org",
    "mireille.quintavalle",
    "Mireille",
    "Quintavalle",
    "+33698765432",
    "98765432",
    "3 allée des Peupliers",
    "7 impasse des Glycines",
    "Capucine",
    "1979-08-14",
    "AUB-77665544",
    NEW_EMAIL,
)
MARKETING = ("email_newsletter", "sms_offers", "personalised_offers")


@pytest.fixture
def register(settings) -> PurposeRegister:  # type: ignore[no-untyped-def]
    return load_register(settings.purposes_file)


def count(engine: Engine, model, *conditions) -> int:  # type: ignore[no-untyped-def]
    with transaction(engine) as session:
        return session.execute(select(func.count()).select_from(model).where(*conditions)).scalar_one()


def grant(engine: Engine, register: PurposeRegister, customer_id: int, purpose: str, at: datetime) -> None:
    in_transaction(
        engine,
        ledger.record_consent,
        register=register,
        customer_id=customer_id,
        purpose=purpose,
        granted=True,
        channel="web",
        actor=f"customer:{customer_id}",
        now=at,
        locale="fr",
    )


def file(engine: Engine, customer_id: int, type: str = "erasure", at: datetime = NOW) -> str:
    return in_transaction(
        engine,
        file_request,
        customer_id=customer_id,
        type=type,
        channel="web",
        now=at,
        actor=f"customer:{customer_id}",
        timezone=TIMEZONE,
    ).reference


def heavy_customer(engine: Engine, register: PurposeRegister, settings, composer) -> tuple[int, str]:  # type: ignore[no-untyped-def]
    """A customer with a bit of everything: purchases, page views, consents, requests with messages, a rectified
    address, a pending email change, sessions, a sign-in challenge and emails waiting in the outbox."""
    customer = make_customer(engine, **PERSON)
    cid: int = customer.id  # type: ignore[assignment]
    shop, web = make_store(engine), make_store(engine, kind="web", city="Paris")
    add_purchases(engine, customer, shop, 12)
    add_purchases(engine, customer, web, 8, start=datetime(2024, 3, 1, 9, tzinfo=UTC))
    add_page_views(engine, customer, 150)
    for purpose in MARKETING:
        grant(engine, register, cid, purpose, NOW - timedelta(days=30))
    past = NOW - timedelta(days=20)
    in_transaction(
        engine,
        rectification.rectify_profile,
        customer_id=cid,
        form={
            "first_name": "Mireille",
            "last_name": "Quintavalle",
            "phone": "06 98 76 54 32",
            "address_line1": NEW_STREET,
            "address_line2": "Bâtiment Capucine",
            "postal_code": "69004",
            "city": "Lyon",
            "country": "FR",
            "preferred_language": "fr",
        },
        locked_fields=("birth_date", "loyalty_number"),
        actor=f"customer:{cid}",
        channel="web",
        now=past,
    )
    correction = in_transaction(
        engine,
        rectification.request_correction,
        composer=composer,
        customer_id=cid,
        form={"field": "last_name", "proposed_value": "Quintavalle-Roux", "comment": "Née Quintavalle, mariée Roux"},
        language="fr",
        now=past,
        timezone=TIMEZONE,
    )
    in_transaction(
        engine,
        workflow.ask_customer,
        reference=correction.reference,
        actor=AGENT,
        now=past + timedelta(hours=1),
        message="Bonjour Mireille, pouvez-vous confirmer le nom Quintavalle-Roux ?",
        composer=composer,
    )
    in_transaction(
        engine,
        workflow.customer_reply,
        reference=correction.reference,
        actor=f"customer:{cid}",
        now=past + timedelta(hours=2),
        message="Oui, et j'habite 7 impasse des Glycines, joignable au 06 98 76 54 32.",
    )
    in_transaction(
        engine,
        workflow.add_note,
        reference=correction.reference,
        actor=AGENT,
        now=past + timedelta(hours=3),
        note="Appelé Mme Quintavalle au +33698765432",
    )
    in_transaction(
        engine,
        rectification.request_email_change,
        settings=settings,
        composer=composer,
        customer_id=cid,
        new_email=NEW_EMAIL,
        language="fr",
        now=NOW - timedelta(hours=2),
    )
    with transaction(engine) as session:
        open_session(session, settings=settings, kind="customer", customer_id=cid, now=NOW - timedelta(minutes=5))
        # A past bug must not survive erasure either: the audit trail is checked too.
        record_audit(
            session, actor=AGENT, action="legacy.note", target=f"customer:{cid}", detail={"who": "Mireille"}, now=past
        )
    in_transaction(
        engine,
        request_sign_in,
        settings=settings,
        composer=composer,
        email=PERSON["email"],
        language="fr",
        ip="127.0.0.1",
        now=NOW - timedelta(minutes=1),
    )
    return cid, file(engine, cid)


def erase(engine: Engine, reference: str, *, composer, settings, register, at: datetime = NOW, **options):  # type: ignore[no-untyped-def]
    return in_transaction(
        engine,
        erasure.execute_erasure,
        reference=reference,
        actor=AGENT,
        now=at,
        composer=composer,
        settings=settings,
        register=register,
        **options,
    )


def traces(engine: Engine, needles: tuple[str, ...]) -> list[tuple[str, str, str]]:
    """Every (table, column, needle) where a needle appears, in every column of every table of the database, sorted:
    neither the tables nor their rows come back in a set order (PostgreSQL once listed them differently between two
    calls of one test)."""
    found = []
    lowered = [needle.casefold() for needle in needles]
    inspector = inspect(engine)
    with engine.connect() as connection:
        for table in inspector.get_table_names():
            columns = [column["name"] for column in inspector.get_columns(table)]
            quoted = ", ".join(f'"{name}"' for name in columns)
            for row in connection.execute(text(f'SELECT {quoted} FROM "{table}"')):  # noqa: S608 (names from the schema)
                for name, value in zip(columns, row, strict=True):
                    if value is None:
                        continue
                    shown = (
                        json.dumps(value, ensure_ascii=False, default=str)
                        if isinstance(value, dict | list)
                        else str(value)
                    )
                    shown = shown.casefold()
                    found.extend((table, name, needle) for needle in lowered if needle in shown)
    return sorted(found)


# --- The plan --------------------------------------------------------------------------------------------------


def test_the_plan_counts_what_goes_what_is_anonymised_and_what_is_kept_and_changes_nothing(
    engine, settings, composer, register
) -> None:
    cid, _reference = heavy_customer(engine, register, settings, composer)
    before = traces(engine, NEEDLES)
    with transaction(engine) as session:
        plan = erasure.plan_erasure(session, customer_id=cid, register=register)
    by = {line.category: line for line in plan.lines}
    assert not plan.already_erased
    assert {line.action for line in plan.lines} == {"deleted", "anonymised", "withdrawn", "closed", "kept"}
    assert by["browsing"].count == 150 and by["browsing"].action == "deleted"
    assert by["purchases"].count == 20 and by["purchases"].action == "anonymised"
    assert by["consents"].count == 4  # the three marketing purposes and browsing analytics
    assert by["profile"].count == 8 and by["profile_history"].count == 1  # the street
    assert by["email_changes"].count == 1 and by["sign_in"].count == 2  # one session, one sign-in challenge
    assert by["emails"].count == 5  # request received, question, email change (new and old address), sign-in
    assert by["requests"].count == 2 and by["requests"].action == "kept"
    # Whatever is kept says why, and the accounting retention is the register's own wording.
    assert all(line.reason for line in plan.anonymised + plan.kept)
    assert "10" in by["purchases"].retention.in_locale("en")  # type: ignore[union-attr]
    assert traces(engine, NEEDLES) == before


def test_planning_an_unknown_customer_is_refused(engine) -> None:
    with transaction(engine) as session, pytest.raises(erasure.CustomerNotFound):
        erasure.plan_erasure(session, customer_id=4242)


# --- Execution -------------------------------------------------------------------------------------------------


def test_after_erasure_the_whole_database_holds_nothing_about_the_person(
    engine, database_url, smtp, composer, register
) -> None:
    settings = make_settings(database_url, smtp.port)
    other = make_customer(engine, email="jules.marchand@example.com", first_name="Jules", last_name="Marchand")
    cid, reference = heavy_customer(engine, register, settings, composer)
    assert {table for table, _column, _needle in traces(engine, NEEDLES)} >= {
        "customer",
        "profile_change",
        "email_change",
        "privacy_request",
        "request_event",
        "outbox_message",
        "audit_event",
    }

    report = erase(engine, reference, composer=composer, settings=settings, register=register)

    # Only the completion email still knows the address, until it leaves; the worker then forgets it.
    left = traces(engine, NEEDLES)
    assert left and {(table, column) for table, column, _needle in left} == {("outbox_message", "payload")}
    worker = OutboxWorker(engine, settings, clock=lambda: NOW)
    asyncio.run(worker.deliver_due(NOW))
    email = smtp.wait_for(PERSON["email"])
    assert reference in email.subject and "20" in email.text  # the purchases kept, anonymised
    assert [list(m.recipients) for m in smtp.messages] == [[PERSON["email"]]]  # every older email was purged, not sent
    assert traces(engine, NEEDLES) == []

    assert report.counts["browsing"] == 150 and report.counts["purchases"] == 20
    assert report.counts["emails"] == 5 and report.scrubbed >= 1 and report.counts["notes_removed"] >= 3
    assert set(report.withdrawn) == {*MARKETING, "browsing_analytics"}
    # The other customer is untouched.
    with transaction(engine) as session:
        untouched = session.get(Customer, other.id)
        assert untouched and untouched.email == "jules.marchand@example.com" and untouched.first_name == "Jules"


def test_erasure_makes_a_tombstone_detaches_purchases_and_keeps_the_proof(engine, settings, composer, register) -> None:
    cid, reference = heavy_customer(engine, register, settings, composer)
    lines_before = count(engine, PurchaseLine)
    events_before = count(engine, ConsentEvent, ConsentEvent.customer_id == cid)

    erase(engine, reference, composer=composer, settings=settings, register=register)

    with transaction(engine) as session:
        customer = session.get(Customer, cid)
        assert customer is not None and customer.erased_at == NOW
        personal = [c.name for c in Customer.__table__.columns if c.name not in erasure.TOMBSTONE_KEEPS and c.nullable]  # type: ignore[attr-defined]
        assert personal and all(getattr(customer, name) is None for name in personal)
        assert customer.erased_email_hash == tombstone.erased_email_hash(settings, PERSON["email"])
        assert customer.erased_ref_hash == tombstone.erased_ref_hash(settings, PERSON["retailer_ref"])
        assert is_erased(session, settings, CustomerRef(retailer_id="CRM-QV-0042"))
        assert is_erased(session, settings, CustomerRef(email="mireille.QUINTAVALLE@example.org"))
        assert not is_erased(session, settings, CustomerRef(retailer_id="CRM-QV-0043", email="x@example.org"))
        # The ledger stays with the tombstone, each consent still given now withdrawn by the agent via support.
        withdrawals = session.scalars(
            select(ConsentEvent).where(ConsentEvent.customer_id == cid, ConsentEvent.occurred_at == NOW)
        ).all()
        assert {(e.purpose, e.granted, e.channel, e.actor) for e in withdrawals} == {
            (p, False, "support", AGENT) for p in (*MARKETING, "browsing_analytics")
        }
        assert not any(state.granted for state in ledger.current_consents(session, customer_id=cid).values())
        request = session.scalars(select(PrivacyRequest).where(PrivacyRequest.reference == reference)).one()
        assert request.status == "completed" and request.closed_at == NOW and request.version == 2
        steps = session.scalars(
            select(RequestEvent.kind).where(RequestEvent.request_id == request.id).order_by(RequestEvent.id)  # type: ignore[arg-type]
        ).all()
        assert steps == ["received", "completed"]
        # The rectification request is kept as proof, without the proposed value, the comment or her own reply.
        correction = session.scalars(
            select(PrivacyRequest).where(PrivacyRequest.customer_id == cid, PrivacyRequest.type == "rectification")
        ).one()
        assert correction.details == {"field": "last_name"}
        notes = dict(
            session.execute(
                select(RequestEvent.kind, RequestEvent.note).where(RequestEvent.request_id == correction.id)
            ).all()
        )
        # What staff wrote is removed whole (no scrubbing finds every spelling of a detail); the steps stay.
        assert notes["reply"] is None and notes["note"] == "system:note_removed_at_erasure"
        assert notes["question"] == "system:note_removed_at_erasure"
        erased = session.scalars(select(AuditEvent).where(AuditEvent.action == "customer.erased")).one()
        assert erased.target == f"request:{reference}" and erased.actor == AGENT
        webhook = session.scalars(
            select(OutboxMessage).where(OutboxMessage.kind == "webhook", OutboxMessage.topic == "customer.erased")
        ).one()
        data = webhook.payload["data"]  # type: ignore[index]
        assert data["customer_id"] == cid and data["request"] == reference
        assert set(data) == {"customer_id", "retailer_customer_id", "request", "occurred_at"}
        pending = session.scalars(
            select(OutboxMessage.topic).where(OutboxMessage.kind == "email", OutboxMessage.sent_at.is_(None))  # type: ignore[union-attr]
        ).all()
        assert pending == ["erasure-completed"]
    assert count(engine, Purchase, Purchase.customer_id.is_(None)) == 20  # type: ignore[union-attr]
    assert count(engine, PurchaseLine) == lines_before
    for model in (PageView, PageViewDay, PageViewTotal, PurchaseTotal, ProfileChange):
        assert count(engine, model, model.customer_id == cid) == 0
    assert count(engine, BrowserSession, BrowserSession.customer_id == cid) == 0
    assert count(engine, LoginChallenge) == 0
    assert count(engine, ConsentEvent, ConsentEvent.customer_id == cid) == events_before + 4


def test_the_completion_email_says_what_went_and_what_stays_in_the_customers_language(
    engine, settings, composer, register
) -> None:
    customer = make_customer(engine, email="emma.w@example.net", preferred_language="en")
    add_purchases(engine, customer, make_store(engine), 3)
    reference = file(engine, customer.id)  # type: ignore[arg-type]
    erase(engine, reference, composer=composer, settings=settings, register=register)
    with transaction(engine) as session:
        message = session.scalars(select(OutboxMessage).where(OutboxMessage.topic == "erasure-completed")).one()
    payload = message.payload or {}
    assert payload["to"] == "emma.w@example.net" and reference in payload["subject"]
    assert "10 years from the close of the financial year" in payload["text"]  # the register's retention, in English
    assert "Purchases and invoices" in payload["text"] and "(3)" in payload["text"]
    assert "CNIL" in payload["text"] and "CNIL" in payload["html"]


def test_running_it_twice_is_harmless(engine, settings, composer, register) -> None:
    cid, reference = heavy_customer(engine, register, settings, composer)
    erase(engine, reference, composer=composer, settings=settings, register=register)
    audits, outbox = count(engine, AuditEvent), count(engine, OutboxMessage)

    again = erase(
        engine, reference, composer=composer, settings=settings, register=register, at=NOW + timedelta(hours=1)
    )

    assert again.already_done and again.counts == {} and again.customer_id == cid
    assert (count(engine, AuditEvent), count(engine, OutboxMessage)) == (audits, outbox)
    with transaction(engine) as session:
        assert erasure.plan_erasure(session, customer_id=cid).already_erased


def test_a_second_open_erasure_request_is_answered_with_nothing_left_to_do(
    engine, settings, composer, register
) -> None:
    customer = make_customer(engine)
    first, second = file(engine, customer.id), file(engine, customer.id, at=NOW + timedelta(minutes=1))  # type: ignore[arg-type]
    erase(engine, first, composer=composer, settings=settings, register=register)
    with transaction(engine) as session:  # closed with the first one
        request = session.scalars(select(PrivacyRequest).where(PrivacyRequest.reference == second)).one()
        assert request.status == "completed" and request.outcome == "system:closed_by_erasure"
    report = erase(engine, second, composer=composer, settings=settings, register=register)
    assert report.already_done and report.counts == {}


def test_a_crash_midway_leaves_nothing_half_erased(engine, settings, composer, register, monkeypatch) -> None:
    cid, reference = heavy_customer(engine, register, settings, composer)
    before = {
        "traces": traces(engine, NEEDLES),
        "views": count(engine, PageView, PageView.customer_id == cid),
        "purchases": count(engine, Purchase, Purchase.customer_id == cid),
        "consents": count(engine, ConsentEvent),
        "outbox": count(engine, OutboxMessage),
        "audit": count(engine, AuditEvent),
        "sessions": count(engine, BrowserSession),
    }

    def crash(*args, **kwargs):  # type: ignore[no-untyped-def]
        raise RuntimeError("the power went out")

    monkeypatch.setattr(erasure, "_tombstone", crash)  # the last step before the webhook: everything else ran
    with pytest.raises(RuntimeError):
        erase(engine, reference, composer=composer, settings=settings, register=register)

    assert before == {
        "traces": traces(engine, NEEDLES),
        "views": count(engine, PageView, PageView.customer_id == cid),
        "purchases": count(engine, Purchase, Purchase.customer_id == cid),
        "consents": count(engine, ConsentEvent),
        "outbox": count(engine, OutboxMessage),
        "audit": count(engine, AuditEvent),
        "sessions": count(engine, BrowserSession),
    }
    with transaction(engine) as session:
        request = session.scalars(select(PrivacyRequest).where(PrivacyRequest.reference == reference)).one()
        assert request.status == "received" and request.version == 1
        assert session.get(Customer, cid).erased_at is None  # type: ignore[union-attr]
    monkeypatch.undo()
    assert not erase(engine, reference, composer=composer, settings=settings, register=register).already_done


# --- The tombstone at sign-in and import time ------------------------------------------------------------------


def test_an_erased_address_is_unknown_at_sign_in_and_cannot_be_recreated(engine, settings, composer, register) -> None:
    customer = make_customer(engine, email="Paul.Erased@example.com")
    erase(engine, file(engine, customer.id), composer=composer, settings=settings, register=register)  # type: ignore[arg-type]
    with transaction(engine) as session:
        for spelling in ("paul.erased@example.com", " PAUL.ERASED@EXAMPLE.COM "):
            assert tombstone.is_erased_email(session, settings, spelling)
        assert not tombstone.is_erased_email(session, settings, "someone.else@example.com")
        with pytest.raises(tombstone.ErasedAddress):
            tombstone.refuse_erased_email(session, settings, "Paul.Erased@example.com")
        tombstone.refuse_erased_email(session, settings, "someone.else@example.com")

    later = NOW + timedelta(days=3)
    in_transaction(
        engine,
        request_sign_in,
        settings=settings,
        composer=composer,
        email="paul.erased@example.com",
        language="en",
        ip="127.0.0.1",
        now=later,
    )
    with transaction(engine) as session:
        challenge = session.scalars(select(LoginChallenge)).one()
        assert challenge.customer_id is None  # the same answer as for an address never seen
        topics = session.scalars(select(OutboxMessage.topic).where(OutboxMessage.created_at == later)).all()
        assert topics == ["sign-in-unknown"]


# --- Refusals --------------------------------------------------------------------------------------------------


def test_erasure_refuses_what_it_cannot_do(engine, settings, composer, register) -> None:
    customer = make_customer(engine)
    options = {"composer": composer, "settings": settings, "register": register}
    with pytest.raises(RequestNotFound):
        erase(engine, "R-0000-0000", **options)
    with pytest.raises(RequestNotFound):
        erase(engine, "not a reference", **options)
    access = file(engine, customer.id, "access")  # type: ignore[arg-type]
    with pytest.raises(ActionRefused) as refused:
        erase(engine, access, **options)
    assert refused.value.message
    reference = file(engine, customer.id)  # type: ignore[arg-type]
    with pytest.raises(workflow.StaleRequest):
        erase(engine, reference, expected_version=7, **options)
    in_transaction(
        engine,
        workflow.reject,
        reference=reference,
        actor=AGENT,
        now=NOW,
        reason="Identité non vérifiée",
        composer=email_composer(),
    )
    with pytest.raises(ActionRefused):
        erase(engine, reference, **options)
    with transaction(engine) as session:
        assert session.get(Customer, customer.id).erased_at is None  # type: ignore[union-attr]
    orphan = in_transaction(
        engine, file_request, customer_id=None, type="erasure", channel="post", now=NOW, actor=AGENT, timezone=TIMEZONE
    ).reference
    with pytest.raises(ActionRefused):
        erase(engine, orphan, **options)


# --- Restriction and objection ---------------------------------------------------------------------------------


def test_restriction_flags_the_customer_completes_the_request_and_can_be_lifted(engine, settings, composer) -> None:
    customer = make_customer(engine)
    reference = file(engine, customer.id, "restriction")  # type: ignore[arg-type]
    assert in_transaction(
        engine,
        restriction.apply_restriction,
        reference=reference,
        actor=AGENT,
        now=NOW,
        expected_version=1,
        composer=composer,
    )
    with transaction(engine) as session:
        assert session.get(Customer, customer.id).restricted_at == NOW  # type: ignore[union-attr]
        request = session.scalars(select(PrivacyRequest).where(PrivacyRequest.reference == reference)).one()
        assert request.status == "completed" and request.outcome
        steps = session.scalars(
            select(RequestEvent.kind).where(RequestEvent.request_id == request.id).order_by(RequestEvent.id)
        ).all()
        assert steps == ["received", "restricted", "completed"]
        audit = select(AuditEvent.action).where(AuditEvent.target == f"request:{reference}")
        assert session.scalars(audit.order_by(AuditEvent.id)).all() == [  # type: ignore[arg-type]
            "request.received",
            "customer.restricted",
            "request.completed",
        ]
        email = session.scalars(select(OutboxMessage).where(OutboxMessage.topic == "request-completed")).one()
        assert email.payload["to"] == customer.email  # type: ignore[index]

    lifted = in_transaction(
        engine,
        restriction.lift_restriction,
        reference=reference,
        actor=AGENT,
        now=NOW + timedelta(days=10),
        reason="Votre adresse a été vérifiée.",
    )
    assert lifted
    assert not in_transaction(engine, restriction.lift_restriction, reference=reference, actor=AGENT, now=NOW)
    with transaction(engine) as session:
        assert session.get(Customer, customer.id).restricted_at is None  # type: ignore[union-attr]
        event = session.scalars(select(RequestEvent).where(RequestEvent.kind == "restriction_lifted")).one()
        assert event.note == "Votre adresse a été vérifiée." and event.visible_to_customer


def test_restriction_while_a_rectification_is_checked_leaves_the_request_open(engine) -> None:
    customer = make_customer(engine)
    reference = file(engine, customer.id, "rectification")  # type: ignore[arg-type]
    in_transaction(
        engine, restriction.apply_restriction, reference=reference, actor=AGENT, now=NOW, composer=email_composer()
    )
    with transaction(engine) as session:
        request = session.scalars(select(PrivacyRequest).where(PrivacyRequest.reference == reference)).one()
        assert request.status == "received" and request.version == 2
        assert session.get(Customer, customer.id).restricted_at == NOW  # type: ignore[union-attr]
    with pytest.raises(ActionRefused):
        in_transaction(
            engine,
            restriction.apply_restriction,
            reference=file(engine, customer.id, "access"),
            actor=AGENT,
            now=NOW,  # type: ignore[arg-type]
            composer=email_composer(),
        )


def test_objection_withdraws_every_consent_and_completes_the_request(engine, composer, register) -> None:
    customer = make_customer(engine)
    for purpose in (*MARKETING, "partner_sharing"):
        grant(engine, register, customer.id, purpose, NOW - timedelta(days=3))  # type: ignore[arg-type]
    reference = file(engine, customer.id, "objection")  # type: ignore[arg-type]
    withdrawn = in_transaction(
        engine,
        restriction.honour_objection,
        reference=reference,
        actor=AGENT,
        now=NOW,
        register=register,
        composer=composer,
    )
    assert set(withdrawn) == {*MARKETING, "partner_sharing"}
    with transaction(engine) as session:
        assert not any(s.granted for s in ledger.current_consents(session, customer_id=customer.id).values())  # type: ignore[arg-type]
        latest = session.scalars(select(ConsentEvent).where(ConsentEvent.occurred_at == NOW)).all()
        assert {(e.channel, e.actor, e.granted) for e in latest} == {("support", AGENT, False)}
        request = session.scalars(select(PrivacyRequest).where(PrivacyRequest.reference == reference)).one()
        assert request.status == "completed"
        webhooks = session.scalars(select(OutboxMessage).where(OutboxMessage.topic == "consent.changed")).all()
        assert len(webhooks) == 8  # four grants, four withdrawals
    with pytest.raises(ActionRefused):  # closed now
        in_transaction(
            engine,
            restriction.honour_objection,
            reference=reference,
            actor=AGENT,
            now=NOW,
            register=register,
            composer=email_composer(),
        )


def test_on_sqlite_no_copy_of_the_erased_person_is_left_in_the_database_files(
    engine, database_url, smtp, composer, register
) -> None:
    """Deleted rows survive in SQLite's free pages and write-ahead log unless secure_delete is on and the log is
    checkpointed after the erasure; the bytes of both files must not hold the person's phone or street any more
    (their name and address stay in the completion email until it leaves)."""
    if not database_url.startswith("sqlite"):
        pytest.skip("PostgreSQL: VACUUM and backup retention, documented in the README")
    settings = make_settings(database_url, smtp.port)
    _cid, reference = heavy_customer(engine, register, settings, composer)
    path = Path(make_url(database_url).database or "")
    files = [path, path.with_name(path.name + "-wal")]
    needles = (b"98765432", b"Peupliers")

    def holding() -> list[str]:
        return [f"{f.name}: {n!r}" for f in files if f.exists() for n in needles if n in f.read_bytes()]

    assert holding()
    erase(engine, reference, composer=composer, settings=settings, register=register)
    assert holding() == []


def test_staff_notes_go_and_the_other_open_requests_close_with_the_erasure(
    engine, database_url, smtp, composer, register
) -> None:
    """Staff wrote the person's details another way ("Leo ***, tél 06 39 98 30 19"): no scrubbing finds every
    spelling, so staff texts are removed (the steps stay); the person's other open requests are closed with it."""
    settings = make_settings(database_url, smtp.port)
    leo = make_customer(engine, email="leo@example.org", first_name="Léo", phone="+33639983019")
    question = file(engine, leo.id, type="other")
    in_transaction(
        engine, workflow.add_note, reference=question, actor=AGENT, now=NOW, note="Leo ***, tél 06 39 98 30 19"
    )
    reference = file(engine, leo.id)
    with transaction(engine) as session:
        plan = erasure.plan_erasure(session, customer_id=leo.id, register=register)
        planned = {line.category: (line.action, line.count) for line in plan.lines}
    assert planned["staff_notes"] == ("deleted", 1) and planned["open_requests"] == ("closed", 1)
    report = erase(engine, reference, composer=composer, settings=settings, register=register)
    assert report.counts["notes_removed"] == 1 and report.counts["requests_closed"] == 1
    with transaction(engine) as session:
        other = session.scalars(select(PrivacyRequest).where(PrivacyRequest.reference == question)).one()
        assert other.status == "completed" and other.outcome == "system:closed_by_erasure"
        notes = session.scalars(select(RequestEvent.note).where(RequestEvent.request_id == other.id)).all()
    assert "system:note_removed_at_erasure" in notes and not any("06 39" in (n or "") for n in notes)
    asyncio.run(OutboxWorker(engine, settings, clock=lambda: NOW).deliver_due(NOW))
    assert question in smtp.wait_for("leo@example.org").text  # the completion email names the request closed
