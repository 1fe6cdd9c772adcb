"""The worker is woken by any commit that wrote outbox rows, and only then (portal.db.on_outbox_commit)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from sqlalchemy import Connection, func, insert, select
from sqlmodel import Session

from portal.db import as_connection, in_transaction, on_outbox_commit, transaction
from portal.models import AuditEvent, OutboxMessage
from portal.outbox.enqueue import queue_webhook

NOW = datetime(2026, 12, 7, 9, tzinfo=UTC)


@pytest.fixture
def wakes(engine):  # type: ignore[no-untyped-def]
    calls: list[str] = []
    stop = on_outbox_commit(engine, lambda: calls.append("wake"))
    yield calls
    stop()


def test_a_commit_with_an_outbox_row_wakes_the_worker_once(engine, wakes) -> None:
    with transaction(engine) as session:
        queue_webhook(session, topic="customer.rectified", payload={"customer_id": 1}, now=NOW)
        queue_webhook(session, topic="customer.rectified", payload={"customer_id": 2}, now=NOW)
        assert wakes == []  # not before the commit: the worker would find nothing yet
    assert wakes == ["wake"]


def test_a_core_insert_through_the_session_wakes_it_too(engine, wakes) -> None:
    with transaction(engine) as session:
        session.execute(
            insert(OutboxMessage),
            [{"kind": "email", "topic": "t", "payload": {}, "created_at": NOW, "next_attempt_at": NOW}],
        )
    assert wakes == ["wake"]


def test_other_writes_and_rolled_back_outbox_rows_do_not(engine, wakes) -> None:
    with transaction(engine) as session:
        session.add(AuditEvent(occurred_at=NOW, actor="staff:1", action="audit.exported"))
    with pytest.raises(RuntimeError), transaction(engine) as session:
        queue_webhook(session, topic="customer.rectified", payload={}, now=NOW)
        session.flush()
        raise RuntimeError("the action failed: its messages must not leave")
    with transaction(engine) as session:  # the flag of the rolled-back unit of work did not leak into this one
        session.add(AuditEvent(occurred_at=NOW, actor="staff:1", action="audit.exported"))
    assert wakes == []


def test_an_expected_refusal_that_commits_its_messages_wakes_the_worker(engine, wakes) -> None:
    class Refused(Exception):
        pass

    def refuse(session: Session) -> None:
        queue_webhook(session, topic="customer.rectified", payload={}, now=NOW)
        raise Refused

    with pytest.raises(Refused):
        in_transaction(engine, refuse, keep_on=(Refused,))
    assert wakes == ["wake"]


def test_another_engines_commits_do_not_wake_this_worker(engine, wakes, database_url) -> None:
    from portal.db import make_engine

    other = make_engine(database_url)
    try:
        with transaction(other) as session:
            queue_webhook(session, topic="customer.rectified", payload={}, now=NOW)
    finally:
        other.dispose()
    assert wakes == []


# A service typed `Session | Connection` runs on a bare connection (portal.db.takes_connection): the same promises.


class Refused(Exception):
    pass


def _queues(db: Session | Connection, *, fail: type[Exception] | None = None) -> int:
    queue_webhook(db, topic="customer.rectified", payload={"customer_id": 1}, now=NOW)
    assert isinstance(db, Connection)  # the service really ran without a Session
    if fail is not None:
        raise fail("after queueing")
    return 1


def _audits(db: Session | Connection) -> None:
    as_connection(db).execute(insert(AuditEvent).values(occurred_at=NOW, actor="staff:1", action="audit.exported"))


def _outbox_rows(engine) -> int:  # type: ignore[no-untyped-def]
    with engine.connect() as connection:
        return int(connection.scalar(select(func.count()).select_from(OutboxMessage)) or 0)


def test_on_a_connection_a_commit_with_an_outbox_row_wakes_the_worker_after_it(engine, wakes) -> None:
    seen_before_commit: list[list[str]] = []

    def queues_and_looks(db: Session | Connection) -> None:
        _queues(db)
        seen_before_commit.append(list(wakes))

    in_transaction(engine, queues_and_looks)
    assert seen_before_commit == [[]] and wakes == ["wake"] and _outbox_rows(engine) == 1


def test_on_a_connection_rolled_back_rows_do_not_wake_it_nor_leave_a_flag_behind(engine, wakes) -> None:
    with pytest.raises(RuntimeError):
        in_transaction(engine, _queues, fail=RuntimeError)
    for _ in range(3):  # whichever pooled connection the next units of work get, none carries the old flag
        in_transaction(engine, _audits)
    assert wakes == [] and _outbox_rows(engine) == 0


def test_on_a_connection_an_expected_refusal_commits_its_messages_and_wakes_it(engine, wakes) -> None:
    with pytest.raises(Refused):
        in_transaction(engine, _queues, fail=Refused, keep_on=(Refused,))
    assert wakes == ["wake"] and _outbox_rows(engine) == 1
