"""The request state machine: every transition allowed or refused, version conflicts, extensions, emails."""

from __future__ import annotations

import inspect
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import event, select, update

from portal.db import in_transaction, transaction
from portal.i18n import using_locale
from portal.models import AuditEvent, OutboxMessage, PrivacyRequest, RequestEvent, StaffUser
from portal.requests import workflow
from portal.requests.service import RequestNotFound, file_request
from tests.conftest import TIMEZONE, email_composer, step_collaborators
from tests.factories import make_customer

PARIS = ZoneInfo("Europe/Paris")
NOW = datetime(2026, 1, 31, 10, 0, tzinfo=UTC)
ALL_STATUSES = ("received", "in_progress", "awaiting_customer", "completed", "rejected", "cancelled")


def file(engine, customer_id: int | None, *, now: datetime = NOW, type: str = "erasure") -> str:
    with transaction(engine) as session:
        return file_request(
            session,
            customer_id=customer_id,
            type=type,
            channel="web",
            now=now,
            actor=f"customer:{customer_id}",
            timezone=TIMEZONE,
        ).reference


def put_in(engine, reference: str, status: str) -> None:
    with transaction(engine) as session:
        session.execute(update(PrivacyRequest).where(PrivacyRequest.reference == reference).values(status=status))


def row(engine, reference: str) -> PrivacyRequest:
    with transaction(engine) as session:
        return session.scalars(select(PrivacyRequest).where(PrivacyRequest.reference == reference)).one()


def events(engine, reference: str) -> list[RequestEvent]:
    with transaction(engine) as session:
        request_id = session.scalar(select(PrivacyRequest.id).where(PrivacyRequest.reference == reference))
        return list(
            session.scalars(select(RequestEvent).where(RequestEvent.request_id == request_id).order_by(RequestEvent.id))
        )


def emails(engine, topic: str | None = None) -> list[OutboxMessage]:
    with transaction(engine) as session:
        query = select(OutboxMessage).where(OutboxMessage.kind == "email").order_by(OutboxMessage.id)
        if topic:
            query = query.where(OutboxMessage.topic == topic)
        return list(session.scalars(query))


def audits(engine, action: str) -> list[AuditEvent]:
    with transaction(engine) as session:
        return list(session.scalars(select(AuditEvent).where(AuditEvent.action == action)))


def make_staff_user(engine, *, role: str = "agent", active: bool = True) -> int:
    with transaction(engine) as session:
        staff = StaffUser(
            email=f"{role}-{active}@maison-aubepine.example",
            email_key=f"{role}-{active}@maison-aubepine.example",
            name="Agent",
            role=role,
            password_hash="not-used-here",
            active=active,
            created_at=NOW,
        )
        session.add(staff)
        session.flush()
        return staff.id  # type: ignore[return-value]


def act(engine, name: str, reference: str, *, now: datetime = NOW, **kwargs):
    """Call workflow.<name> with the arguments it needs, in one transaction."""
    needs = {
        "assign": {"staff_id": None},
        "ask_customer": {"message": "Which store?"},
        "customer_reply": {"message": "Lyon"},
        "message_customer": {"message": "We are on it."},
        "add_note": {"note": "Checked the loyalty system."},
        "extend": {"months": 1, "reason": "Three systems to search."},
        "complete": {"outcome": "Done."},
        "reject": {"reason": "Already answered."},
    }
    arguments = {"reference": reference, "actor": "staff:1", "now": now, **needs.get(name, {}), **kwargs}
    step = getattr(workflow, name)
    collaborators = step_collaborators(step, composer=email_composer(), timezone=TIMEZONE)
    arguments = {**collaborators, **arguments}
    return in_transaction(engine, step, **arguments)


# Where each step may start, and where it leads (None: the status does not change).
RULES = {
    "assign": (("received", "in_progress", "awaiting_customer"), None),
    "start": (("received", "awaiting_customer"), "in_progress"),
    "ask_customer": (("received", "in_progress"), "awaiting_customer"),
    "customer_reply": (("awaiting_customer",), "in_progress"),
    "message_customer": (("received", "in_progress", "awaiting_customer"), None),
    "add_note": (ALL_STATUSES, None),
    "extend": (("received", "in_progress", "awaiting_customer"), None),
    "complete": (("received", "in_progress", "awaiting_customer"), "completed"),
    "reject": (("received", "in_progress", "awaiting_customer"), "rejected"),
    "cancel": (("received",), "cancelled"),
}
CASES = [(name, status, status in allowed) for name, (allowed, _to) in RULES.items() for status in ALL_STATUSES]


@pytest.mark.parametrize(("name", "status", "allowed"), CASES, ids=[f"{n}-from-{s}" for n, s, _a in CASES])
def test_every_transition_is_allowed_or_refused(engine, composer, name: str, status: str, allowed: bool) -> None:
    customer = make_customer(engine)
    reference = file(engine, customer.id)
    put_in(engine, reference, status)
    before = events(engine, reference)
    if not allowed:
        with pytest.raises(workflow.TransitionRefused) as refused:
            act(engine, name, reference)
        assert refused.value.message and type(refused.value) is workflow.TransitionRefused
        assert row(engine, reference).version == 1 and row(engine, reference).status == status
        assert events(engine, reference) == before
        return
    state = act(engine, name, reference)
    after = row(engine, reference)
    expected = RULES[name][1] or status
    assert state.status == after.status == expected
    assert state.version == after.version == 2
    assert len(events(engine, reference)) == len(before) + 1
    assert len(audits(engine, f"request.{_action(name)}")) == 1
    if RULES[name][1] in ("completed", "rejected", "cancelled"):
        assert after.closed_at == NOW


def _action(name: str) -> str:
    return {
        "assign": "assigned",
        "start": "started",
        "ask_customer": "question_asked",
        "customer_reply": "customer_replied",
        "message_customer": "message_sent",
        "add_note": "note_added",
        "extend": "extended",
        "complete": "completed",
        "reject": "rejected",
        "cancel": "cancelled",
    }[name]


def test_a_closed_request_says_it_is_closed(engine) -> None:
    reference = file(engine, make_customer(engine).id)
    act(engine, "complete", reference)
    with using_locale("en"), pytest.raises(workflow.TransitionRefused, match="closed"):
        act(engine, "start", reference)
    with using_locale("fr"), pytest.raises(workflow.TransitionRefused, match="clôturée"):
        act(engine, "start", reference)


def test_a_full_conversation_leaves_the_timeline_the_customer_sees(engine, composer) -> None:
    customer = make_customer(engine)
    reference = file(engine, customer.id)
    agent = make_staff_user(engine)
    act(engine, "assign", reference, staff_id=agent)
    act(engine, "start", reference)
    act(engine, "add_note", reference, note="Two accounts, same person?")
    act(engine, "ask_customer", reference, message="Do you also use camille.d@example.org?")
    act(engine, "customer_reply", reference, message="Yes, both are mine.", actor=f"customer:{customer.id}")
    act(engine, "complete", reference, outcome="Both accounts erased.")
    steps = events(engine, reference)
    assert [e.kind for e in steps] == ["received", "assigned", "started", "note", "question", "reply", "completed"]
    hidden = {e.kind for e in steps if not e.visible_to_customer}
    assert hidden == {"assigned", "note"}
    final = row(engine, reference)
    assert (final.status, final.version, final.assignee_id, final.outcome) == (
        "completed",
        7,
        agent,
        "Both accounts erased.",
    )


def test_the_audit_trail_keeps_references_not_what_was_written(engine) -> None:
    reference = file(engine, make_customer(engine).id)
    act(engine, "ask_customer", reference, message="Is 06 12 34 56 78 your number?")
    (audit,) = audits(engine, "request.question_asked")
    assert audit.target == f"request:{reference}" and audit.actor == "staff:1"
    assert audit.detail == {"from": "received", "to": "awaiting_customer", "version": 2}
    assert "06 12" not in str(audit.detail)


# --- Assigning -------------------------------------------------------------------------------------------------


def test_only_an_active_agent_or_dpo_can_be_assigned(engine) -> None:
    reference = file(engine, make_customer(engine).id)
    for staff_id in (make_staff_user(engine, role="store"), make_staff_user(engine, active=False), 9999):
        with pytest.raises(workflow.ActionInvalid):
            act(engine, "assign", reference, staff_id=staff_id)
    dpo = make_staff_user(engine, role="dpo")
    assert act(engine, "assign", reference, staff_id=dpo).assignee_id == dpo
    assert act(engine, "assign", reference, staff_id=None).assignee_id is None


# --- Versions --------------------------------------------------------------------------------------------------


def test_the_second_agent_working_from_an_old_version_gets_a_clear_message(engine) -> None:
    reference = file(engine, make_customer(engine).id)
    seen_by_both = row(engine, reference).version
    act(engine, "start", reference, expected_version=seen_by_both)
    with using_locale("en"), pytest.raises(workflow.StaleRequest) as stale:
        act(engine, "reject", reference, expected_version=seen_by_both)
    assert stale.value.current_version == 2 and "Nothing was saved" in stale.value.message
    assert row(engine, reference).status == "in_progress"  # the first agent's change is not lost
    assert audits(engine, "request.rejected") == []
    # With the current version the second agent can act.
    assert act(engine, "reject", reference, expected_version=2).status == "rejected"


def test_the_version_in_the_update_decides_when_both_agents_read_before_either_wrote(engine) -> None:
    """Agent B has read version 1; agent A commits between B's read and B's write: B's UPDATE matches no row."""
    reference = file(engine, make_customer(engine).id)
    fired = []

    def agent_a_commits_first(conn, cursor, statement, parameters, context, executemany):  # type: ignore[no-untyped-def]
        if statement.lstrip().upper().startswith("UPDATE PRIVACY_REQUEST") and not fired:
            fired.append(True)
            with engine.connect() as other:  # a second connection: agent A's own transaction
                other.execute(
                    update(PrivacyRequest)
                    .where(PrivacyRequest.reference == reference)
                    .values(status="in_progress", version=PrivacyRequest.version + 1)
                )
                other.commit()

    event.listen(engine, "before_cursor_execute", agent_a_commits_first)
    try:
        with pytest.raises(workflow.StaleRequest):
            act(engine, "complete", reference)  # no expected version: B acts on what it read
    finally:
        event.remove(engine, "before_cursor_execute", agent_a_commits_first)
    final = row(engine, reference)
    assert fired and (final.status, final.version, final.outcome) == ("in_progress", 2, None)
    assert [e.kind for e in events(engine, reference)] == ["received"]


def test_an_unknown_reference_is_not_found(engine) -> None:
    with pytest.raises(RequestNotFound):
        act(engine, "start", "R-0000-0000")
    with pytest.raises(RequestNotFound):
        act(engine, "start", "not a reference")


def test_the_customer_can_only_touch_their_own_requests(engine) -> None:
    owner, other = make_customer(engine), make_customer(engine)
    reference = file(engine, owner.id)
    with pytest.raises(RequestNotFound):
        act(engine, "cancel", reference, customer_id=other.id, actor=f"customer:{other.id}")
    put_in(engine, reference, "awaiting_customer")
    with pytest.raises(RequestNotFound):
        act(engine, "customer_reply", reference, customer_id=other.id, actor=f"customer:{other.id}")
    assert act(engine, "customer_reply", reference, customer_id=owner.id).status == "in_progress"


# --- Input -----------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "field"),
    [
        ("ask_customer", "message"),
        ("customer_reply", "message"),
        ("message_customer", "message"),
        ("add_note", "note"),
        ("extend", "reason"),
        ("complete", "outcome"),
        ("reject", "reason"),
    ],
)
def test_empty_or_overlong_text_is_refused(engine, name: str, field: str) -> None:
    reference = file(engine, make_customer(engine).id)
    if name == "customer_reply":
        put_in(engine, reference, "awaiting_customer")
    for value in ("", "   \n ", "x" * 2001):
        with pytest.raises(workflow.ActionInvalid):
            act(engine, name, reference, **{field: value})
    assert row(engine, reference).version == 1


# --- Extensions ------------------------------------------------------------------------------------------------


def test_received_on_31_january_due_end_of_february_extended_to_end_of_april(engine, composer) -> None:
    reference = file(engine, make_customer(engine).id)  # 31 January 2026, 11:00 in Paris
    request = row(engine, reference)
    assert request.due_at.astimezone(PARIS) == datetime(2026, 2, 28, 23, 59, 59, 999999, tzinfo=PARIS)
    state = act(engine, "extend", reference, months=2, reason="Data in three systems.", composer=composer)
    # Winter time (UTC+1) when received, summer time (UTC+2) when due: still the end of the Paris day.
    assert state.due_at.astimezone(PARIS) == datetime(2026, 4, 30, 23, 59, 59, 999999, tzinfo=PARIS)
    assert state.due_at.astimezone(UTC) == datetime(2026, 4, 30, 21, 59, 59, 999999, tzinfo=UTC)
    assert state.extended
    after = row(engine, reference)
    assert after.due_at == request.due_at and after.extension_reason == "Data in three systems."
    (audit,) = audits(engine, "request.extended")
    assert audit.detail["months"] == 2


def test_one_month_extension_across_the_spring_clock_change(engine) -> None:
    # Received 28 February 2026 at 23:30 UTC: already 1 March in Paris. Clocks go forward on 29 March.
    received = datetime(2026, 2, 28, 23, 30, tzinfo=UTC)
    reference = file(engine, make_customer(engine).id, now=received)
    assert row(engine, reference).due_at.astimezone(PARIS).date().isoformat() == "2026-04-01"
    state = act(engine, "extend", reference, now=received + timedelta(days=3), months=1)
    assert state.due_at.astimezone(PARIS) == datetime(2026, 5, 1, 23, 59, 59, 999999, tzinfo=PARIS)


def test_an_extension_is_decided_once(engine) -> None:
    reference = file(engine, make_customer(engine).id)
    act(engine, "extend", reference, months=1)
    with using_locale("en"), pytest.raises(workflow.TransitionRefused, match="already been extended"):
        act(engine, "extend", reference, months=1)


@pytest.mark.parametrize("months", [0, 3, -1, 12])
def test_an_extension_is_one_or_two_months(engine, months: int) -> None:
    reference = file(engine, make_customer(engine).id)
    with pytest.raises(workflow.ActionInvalid):
        act(engine, "extend", reference, months=months)


def test_an_extension_is_possible_until_the_original_due_date_and_not_after(engine) -> None:
    reference = file(engine, make_customer(engine).id)
    due = row(engine, reference).due_at
    late = file(engine, make_customer(engine).id)
    with using_locale("en"), pytest.raises(workflow.TransitionRefused, match="deadline has passed"):
        act(engine, "extend", late, now=due + timedelta(microseconds=1), months=2)
    assert act(engine, "extend", reference, now=due, months=2).extended


# --- Emails ----------------------------------------------------------------------------------------------------


def test_changes_that_concern_the_customer_are_emailed_in_their_language(engine, composer) -> None:
    english = make_customer(engine, email="sam@example.com", first_name="Sam", preferred_language="en")
    french = make_customer(engine, email="camille@example.com", first_name="Camille", preferred_language="fr")
    for customer, greeting in ((english, "Hello Sam,"), (french, "Bonjour Camille,")):
        reference = file(engine, customer.id)
        act(engine, "ask_customer", reference, message="Which store?", composer=composer)
        (question,) = [m for m in emails(engine, "request-question") if m.payload["to"] == customer.email]
        assert reference in question.payload["subject"] and "Which store?" in question.payload["text"]
        assert question.payload["text"].startswith(greeting)
        assert f'<html lang="{customer.preferred_language}">' in question.payload["html"]
        assert f"/me/requests/{reference}" in question.payload["text"]


def test_every_customer_facing_step_queues_its_email(engine, composer) -> None:
    customer = make_customer(engine, email="sam@example.com", preferred_language="en")
    first = file(engine, customer.id)
    act(engine, "assign", first, staff_id=make_staff_user(engine))
    act(engine, "start", first)
    act(engine, "add_note", first)
    assert emails(engine) == []  # internal steps tell the customer nothing
    act(engine, "message_customer", first, message="We found two accounts.", composer=composer)
    act(engine, "extend", first, months=2, reason="Two accounts to merge.", composer=composer)
    act(engine, "complete", first, outcome="Both accounts erased.", composer=composer)
    second = file(engine, customer.id)
    act(engine, "reject", second, reason="Identical to your request of last week.", composer=composer)
    third = file(engine, customer.id)
    act(engine, "cancel", third, customer_id=customer.id, actor=f"customer:{customer.id}", composer=composer)
    topics = [m.topic for m in emails(engine)]
    assert topics == [
        "request-message",
        "request-extended",
        "request-completed",
        "request-rejected",
        "request-cancelled",
    ]
    by_topic = {m.topic: m.payload for m in emails(engine)}
    assert "We found two accounts." in by_topic["request-message"]["text"]
    extended = by_topic["request-extended"]["text"]
    assert "Two accounts to merge." in extended and "30 April 2026" in extended and "28 February 2026" in extended
    assert "Both accounts erased." in by_topic["request-completed"]["text"]
    rejected = by_topic["request-rejected"]
    assert "Identical to your request of last week." in rejected["text"]
    assert "CNIL" in rejected["text"] and "3 place de Fontenoy" in rejected["text"]
    assert "https://www.cnil.fr" in rejected["text"] and "www.cnil.fr" in rejected["html"]
    assert third in by_topic["request-cancelled"]["subject"]
    assert all(m.payload["to"] == "sam@example.com" for m in emails(engine))


def test_the_rejection_email_in_french_names_the_cnil(engine, composer) -> None:
    reference = file(engine, make_customer(engine, email="camille@example.com").id)
    act(engine, "reject", reference, reason="Demande identique.", composer=composer)
    (message,) = emails(engine, "request-rejected")
    assert message.payload["html"].startswith("<!doctype html>") and '<html lang="fr">' in message.payload["html"]
    assert "CNIL" in message.payload["text"] and "Demande identique." in message.payload["text"]


def test_no_email_without_an_address(engine, composer) -> None:
    act(engine, "complete", file(engine, None), composer=composer)  # a request by post, no customer record
    gone = make_customer(engine, email=None, email_key=None, erased_at=NOW)
    act(engine, "complete", file(engine, gone.id), composer=composer)
    assert emails(engine) == []


def test_a_step_that_tells_the_customer_cannot_be_called_without_the_composer(engine) -> None:
    """The law wants the customer told: no emailing step has a way to skip its email by omission."""
    emailing = ("ask_customer", "message_customer", "extend", "complete", "reject", "cancel")
    for name in emailing:
        composer = inspect.signature(getattr(workflow, name)).parameters["composer"]
        assert composer.default is inspect.Parameter.empty, name
    reference = file(engine, make_customer(engine).id)
    with pytest.raises(TypeError, match="composer"):
        in_transaction(engine, workflow.complete, reference=reference, actor="staff:1", now=NOW, outcome="Done.")
    assert row(engine, reference).status == "received"


def test_the_customer_reply_is_visible_and_not_emailed(engine, composer) -> None:
    customer = make_customer(engine)
    reference = file(engine, customer.id)
    act(engine, "ask_customer", reference, message="Which store?", composer=composer)
    act(engine, "customer_reply", reference, message="Lyon", actor=f"customer:{customer.id}")
    reply = events(engine, reference)[-1]
    assert (reply.kind, reply.note, reply.visible_to_customer, reply.actor) == (
        "reply",
        "Lyon",
        True,
        f"customer:{customer.id}",
    )
    assert [m.topic for m in emails(engine)] == ["request-question"]
