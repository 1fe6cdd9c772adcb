"""Exactly the rows the customer's and the staff's writes leave (issue 17's prebuilt Core inserts write what the ORM
wrote): a request filed, a staff note and assignment, a profile correction. Every column is checked."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import select

from portal.db import in_transaction, transaction
from portal.models import AuditEvent, Customer, OutboxMessage, PrivacyRequest, ProfileChange, RequestEvent
from portal.profile import service as rectification
from portal.requests import service, workflow
from portal.requests.deadlines import due_at_for
from portal.requests.service import file_request
from tests.conftest import TIMEZONE
from tests.factories import make_customer
from tests.unit.requests.test_workflow import NOW, file, make_staff_user


def dumped(engine, model, order) -> list[dict]:  # type: ignore[no-untyped-def,type-arg]
    with transaction(engine) as session:
        return [row.model_dump() for row in session.scalars(select(model).order_by(order))]


def audits(engine) -> list[tuple]:  # type: ignore[type-arg]
    return [(a["actor"], a["action"], a["target"], a["detail"]) for a in dumped(engine, AuditEvent, AuditEvent.id)]


def test_a_filed_request_is_one_request_row_one_timeline_step_and_one_audit(engine) -> None:
    customer = make_customer(engine)
    with transaction(engine) as session:
        filed = file_request(
            session,
            customer_id=customer.id,
            type="access",
            channel="store",
            store_id=None,
            now=NOW,
            actor="staff:7",
            details={"note": "at the till"},
            submission_key=f"{customer.id}:k1",
            timezone=TIMEZONE,
            request_id="rq-1",
        )
    (request,) = dumped(engine, PrivacyRequest, PrivacyRequest.id)
    assert request == {
        "id": filed.id,
        "reference": filed.reference,
        "customer_id": customer.id,
        "type": "access",
        "channel": "store",
        "store_id": None,
        "status": "received",
        "received_at": NOW,
        "due_at": due_at_for(NOW, timezone=TIMEZONE),
        "extended_due_at": None,
        "extension_reason": None,
        "assignee_id": None,
        "details": {"note": "at the till"},
        "outcome": None,
        "closed_at": None,
        "version": 1,
        "submission_key": f"{customer.id}:k1",
    }
    assert (filed.type, filed.received_at, filed.due_at, filed.created) == ("access", NOW, request["due_at"], True)
    (step,) = dumped(engine, RequestEvent, RequestEvent.id)
    assert step == {
        "id": step["id"],
        "request_id": filed.id,
        "occurred_at": NOW,
        "actor": "staff:7",
        "kind": "received",
        "note": None,
        "visible_to_customer": True,
    }
    assert audits(engine) == [("staff:7", "request.received", f"request:{filed.reference}", {
        "type": "access", "channel": "store"
    })]  # fmt: skip
    with transaction(engine) as session:  # the same key again: the same request, nothing new written
        again = file_request(
            session, customer_id=customer.id, type="access", channel="store", now=NOW + timedelta(seconds=1),
            actor="staff:7", submission_key=f"{customer.id}:k1", timezone=TIMEZONE,
        )  # fmt: skip
    assert (again.id, again.created) == (filed.id, False)
    assert len(dumped(engine, PrivacyRequest, PrivacyRequest.id)) == 1 and len(audits(engine)) == 1


def test_a_reference_already_taken_is_drawn_again_and_the_earlier_request_is_left_as_it_was(
    engine, monkeypatch
) -> None:
    # The insert itself checks the reference (ON CONFLICT DO NOTHING): a draw that collides writes nothing, on
    # either database, and the next draw files the request. The draws are fixed here; the database is real.
    customer = make_customer(engine)
    draws = iter(["R-AAAA-AAAA", "R-AAAA-AAAA", "R-AAAA-AAAA", "R-BBBB-BBBB"])
    monkeypatch.setattr(service, "new_reference", lambda: next(draws))
    filed = []
    for key in ("k1", "k2"):
        with transaction(engine) as session:
            filed.append(
                file_request(
                    session,
                    customer_id=customer.id,
                    type="other",
                    channel="web",
                    now=NOW,
                    actor="customer",
                    details={"message": key},
                    submission_key=f"{customer.id}:{key}",
                    timezone=TIMEZONE,
                )  # fmt: skip
            )
    assert [f.reference for f in filed] == ["R-AAAA-AAAA", "R-BBBB-BBBB"]
    rows = dumped(engine, PrivacyRequest, PrivacyRequest.id)
    assert [(r["id"], r["reference"], r["details"]) for r in rows] == [
        (filed[0].id, "R-AAAA-AAAA", {"message": "k1"}),
        (filed[1].id, "R-BBBB-BBBB", {"message": "k2"}),
    ]
    steps = dumped(engine, RequestEvent, RequestEvent.id)
    assert [s["request_id"] for s in steps] == [filed[0].id, filed[1].id]
    assert [target for _actor, _action, target, _detail in audits(engine)] == [
        "request:R-AAAA-AAAA",
        "request:R-BBBB-BBBB",
    ]


def test_a_staff_note_and_an_assignment_each_write_one_step_one_audit_and_a_new_version(engine) -> None:
    customer = make_customer(engine)
    agent = make_staff_user(engine)
    with transaction(engine) as session:
        reference = file_request(
            session, customer_id=customer.id, type="erasure", channel="web", now=NOW, actor="x", timezone=TIMEZONE
        ).reference
    later = NOW + timedelta(hours=1)
    state = in_transaction(
        engine, workflow.add_note, reference=reference, actor=f"staff:{agent}", now=later, note="  Called back  ",
        expected_version=1, request_id="rq-2",
    )  # fmt: skip
    assert (state.version, state.status) == (2, "received")
    state = in_transaction(
        engine, workflow.assign, reference=reference, actor=f"staff:{agent}", now=later, staff_id=agent,
        expected_version=2,
    )  # fmt: skip
    assert (state.version, state.assignee_id) == (3, agent)
    steps = [{k: v for k, v in s.items() if k != "id"} for s in dumped(engine, RequestEvent, RequestEvent.id)][1:]
    request_id = dumped(engine, PrivacyRequest, PrivacyRequest.id)[0]["id"]
    assert steps[0] == {
        "request_id": request_id,
        "occurred_at": later,
        "actor": f"staff:{agent}",
        "kind": "note",
        "note": "Called back",
        "visible_to_customer": False,
    }
    assert len(steps) == 2 and steps[1]["request_id"] == request_id and steps[1]["actor"] == f"staff:{agent}"
    assert [a[:3] for a in audits(engine)[1:]] == [
        (f"staff:{agent}", "request.note_added", f"request:{reference}"),
        (f"staff:{agent}", "request.assigned", f"request:{reference}"),
    ]
    assert audits(engine)[1][3] == {"from": "received", "to": "received", "version": 2}


def test_a_profile_correction_writes_the_customer_one_change_per_field_one_audit_and_one_webhook(engine) -> None:
    customer = make_customer(engine, first_name="Camille", last_name="Durand", phone="+33698765432", city="Lyon")
    form = {
        "first_name": "Camille",
        "last_name": "Martin",
        "phone": "06 11 22 33 44",
        "address_line1": customer.address_line1 or "",
        "address_line2": customer.address_line2 or "",
        "postal_code": customer.postal_code or "",
        "city": "Lyon",
        "country": customer.country or "FR",
        "preferred_language": customer.preferred_language,
    }
    changed = in_transaction(
        engine, rectification.rectify_profile, customer_id=customer.id, form=form, locked_fields=(),
        actor=f"customer:{customer.id}", channel="web", now=NOW, request_id="rq-3",
    )  # fmt: skip
    assert changed == ["last_name", "phone"]
    with transaction(engine) as session:
        stored = session.get(Customer, customer.id)
        assert stored is not None
        assert (stored.last_name, stored.phone, stored.updated_at) == ("Martin", "+33611223344", NOW)
    changes = [{k: v for k, v in c.items() if k != "id"} for c in dumped(engine, ProfileChange, ProfileChange.id)]
    common = {"customer_id": customer.id, "changed_at": NOW, "actor": f"customer:{customer.id}", "channel": "web"}
    assert sorted(changes, key=lambda c: c["field"]) == [
        {**common, "field": "last_name", "old_value": "Durand", "new_value": "Martin"},
        {**common, "field": "phone", "old_value": "+33698765432", "new_value": "+33611223344"},
    ]
    assert audits(engine) == [(f"customer:{customer.id}", "customer.rectified", f"customer:{customer.id}", {
        "fields": ["last_name", "phone"], "channel": "web"
    })]  # fmt: skip
    (webhook,) = dumped(engine, OutboxMessage, OutboxMessage.id)
    assert (webhook["kind"], webhook["topic"], webhook["attempts"], webhook["sent_at"]) == (
        "webhook",
        "customer.rectified",
        0,
        None,
    )
    assert webhook["payload"]["data"] == {
        "customer_id": customer.id,
        "retailer_customer_id": customer.retailer_ref,
        "fields": ["last_name", "phone"],
        "occurred_at": NOW.isoformat(),
    }
    # Nothing changed: nothing written.
    again = in_transaction(
        engine, rectification.rectify_profile, customer_id=customer.id, form=form, locked_fields=(),
        actor=f"customer:{customer.id}", channel="web", now=NOW,
    )  # fmt: skip
    assert again == [] and len(audits(engine)) == 1


def test_after_a_correction_the_loaded_customer_shows_the_new_values_with_nothing_left_to_flush(engine) -> None:
    customer = make_customer(engine, last_name="Durand", city="Lyon")
    with transaction(engine) as session:
        loaded = session.get(Customer, customer.id)
        assert loaded is not None
        rectification.apply_changes(
            session, loaded, {"last_name": ("Durand", "Martin"), "city": ("Lyon", "Paris")}, actor="staff:1",
            channel="support", now=NOW, request_id=None,
        )  # fmt: skip
        assert (loaded.last_name, loaded.city, loaded.updated_at) == ("Martin", "Paris", NOW)
        assert not session.dirty  # the row was written by the UPDATE itself: no second write at commit
        seen = session.execute(select(Customer.last_name, Customer.city).where(Customer.id == customer.id)).one()
        assert tuple(seen) == ("Martin", "Paris")


def test_a_step_in_a_session_leaves_the_request_it_holds_current_with_nothing_left_to_flush(engine, composer) -> None:
    # The steps read and write through Core; a caller that holds the request as an object (erasure, a correction)
    # still sees what was written, as when the ORM wrote it.
    customer = make_customer(engine)
    reference = file(engine, customer.id, type="other")
    with transaction(engine) as session:
        held = session.scalars(select(PrivacyRequest).where(PrivacyRequest.reference == reference)).one()
        state = workflow.complete(
            session, reference=reference, actor="staff:1", now=NOW, outcome="Answered by phone", composer=composer
        )
        assert (held.status, held.version, held.outcome, held.closed_at) == ("completed", 2, "Answered by phone", NOW)
        assert (state.status, state.version, state.closed_at) == ("completed", 2, NOW)
        assert not session.dirty
    (request,) = dumped(engine, PrivacyRequest, PrivacyRequest.id)
    assert (request["status"], request["version"], request["outcome"]) == ("completed", 2, "Answered by phone")


def test_a_step_sees_what_its_session_changed_before_it_and_emails_no_address_just_removed(engine, composer) -> None:
    # Erasure blanks the customer in its Session, then completes the request: the step's Core reads come after a
    # flush, so the completion is not emailed to the address just removed.
    customer = make_customer(engine)
    reference = file(engine, customer.id, type="erasure")
    with transaction(engine) as session:
        held = session.get(Customer, customer.id)
        assert held is not None
        held.email = None
        workflow.complete(session, reference=reference, actor="staff:1", now=NOW, outcome="Erased", composer=composer)
    assert dumped(engine, OutboxMessage, OutboxMessage.id) == []
    with transaction(engine) as session:  # the same step with the address still there does email it
        reference = file_request(
            session, customer_id=customer.id, type="other", channel="web", now=NOW, actor="x", timezone=TIMEZONE
        ).reference
        session.get(Customer, customer.id).email = "back@example.com"  # type: ignore[union-attr]
        workflow.complete(session, reference=reference, actor="staff:1", now=NOW, outcome="Done", composer=composer)
    (message,) = dumped(engine, OutboxMessage, OutboxMessage.id)
    assert message["topic"] == "request-completed" and "back@example.com" in str(message["payload"])
