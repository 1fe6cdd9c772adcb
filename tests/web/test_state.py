"""The views' way to the database (portal.web.state): one unit of work per call, with the clock, the request id and
the portal's time zone given to the service when it asks for them."""

from __future__ import annotations

import asyncio
from datetime import datetime

import pytest
from sqlalchemy import Connection, func, insert, select
from sqlmodel import Session
from starlette.requests import Request

from portal.db import as_connection
from portal.models import AuditEvent, utcnow
from portal.web.state import portal_of, read, write
from tests.conftest import TIMEZONE, Clock


@pytest.fixture
def app(app):  # type: ignore[no-untyped-def]
    """The app without its lifespan: its engine's connections are closed here instead."""
    yield app
    app.state.portal.dispose()


def _request(app) -> Request:  # type: ignore[no-untyped-def]
    return Request({"type": "http", "app": app, "state": {"request_id": "req-42"}, "headers": []})


def _audit(session: Session, *, actor: str, now: datetime, request_id: str | None, fail: bool = False) -> str:
    session.add(AuditEvent(occurred_at=now, actor=actor, action="test.written", request_id=request_id))
    if fail:
        raise LookupError("refused after writing")
    return actor


def _count(session: Session) -> int:
    return int(session.scalar(select(func.count()).select_from(AuditEvent)) or 0)


def _seen(
    session: Session, *, now: datetime, request_id: str | None, timezone: str
) -> tuple[datetime, str | None, str]:
    return now, request_id, timezone


def test_the_clock_the_request_id_and_the_time_zone_are_given_when_asked_for(app, clock: Clock) -> None:
    request = _request(app)
    assert portal_of(request).settings.timezone == TIMEZONE
    assert asyncio.run(read(request, _seen)) == (clock(), "req-42", TIMEZONE)
    # What the view passes wins over what would be injected.
    assert asyncio.run(read(request, _seen, timezone="Europe/London"))[2] == "Europe/London"


def test_write_commits_once_and_rolls_back_on_an_error(app, clock: Clock) -> None:
    request = _request(app)
    assert asyncio.run(write(request, _audit, actor="staff:1")) == "staff:1"
    with pytest.raises(LookupError):
        asyncio.run(write(request, _audit, actor="staff:2", fail=True))
    assert asyncio.run(read(request, _count)) == 1
    with portal_of(request).engine.connect() as connection:
        row = connection.execute(select(AuditEvent.actor, AuditEvent.request_id, AuditEvent.occurred_at)).one()
    assert (row.actor, row.request_id) == ("staff:1", "req-42")


def test_an_expected_refusal_keeps_what_was_written_before_it(app) -> None:
    request = _request(app)
    with pytest.raises(LookupError):
        asyncio.run(write(request, _audit, actor="staff:3", fail=True, keep_on=(LookupError,)))
    assert asyncio.run(read(request, _count)) == 1


def test_read_never_commits(app) -> None:
    request = _request(app)
    asyncio.run(read(request, _audit, actor="staff:4"))
    assert asyncio.run(read(request, _count)) == 0


def _what_it_got(db: Session | Connection) -> str:
    return type(db).__name__


def _session_only(session: Session) -> str:
    return type(session).__name__


def _writes_on_a_connection(db: Session | Connection) -> int:
    as_connection(db).execute(insert(AuditEvent).values(occurred_at=utcnow(), actor="x", action="test.written"))
    return int(as_connection(db).scalar(select(func.count()).select_from(AuditEvent)) or 0)


def test_a_service_that_takes_a_connection_reads_without_an_orm_session(app) -> None:
    """Its type says it works on either: it gets the bare connection, and what it does is still never committed."""
    request = _request(app)
    assert asyncio.run(read(request, _what_it_got)) == "Connection"
    assert asyncio.run(read(request, _session_only)) == "Session"
    assert asyncio.run(read(request, lambda db: type(db).__name__)) == "Session"  # no type to read: a Session
    if portal_of(request).engine.dialect.name == "sqlite":  # PostgreSQL's read connections refuse the write itself
        assert asyncio.run(read(request, _writes_on_a_connection)) == 1
    assert asyncio.run(read(request, _count)) == 0
