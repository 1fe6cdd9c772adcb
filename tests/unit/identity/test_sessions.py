"""Server-side sessions: idle and absolute timeouts, sign-out, keyed storage."""

from __future__ import annotations

from portal.db import transaction
from portal.identity.sessions import end_session, load_session, open_session
from tests.conftest import Clock
from tests.factories import make_customer


def _open(engine, settings, clock, customer_id):
    with transaction(engine) as session:
        return open_session(session, settings=settings, kind="customer", customer_id=customer_id, now=clock())


def _load(engine, settings, clock, raw_id):
    with transaction(engine) as session:
        return load_session(session, settings=settings, raw_id=raw_id, now=clock())


def test_idle_timeout_ends_the_session(engine, settings, clock: Clock) -> None:
    customer = make_customer(engine)
    raw_id = _open(engine, settings, clock, customer.id)
    clock.advance(minutes=14)
    assert _load(engine, settings, clock, raw_id).customer_id == customer.id
    clock.advance(minutes=14)  # activity moved the idle clock on
    assert _load(engine, settings, clock, raw_id) is not None
    clock.advance(minutes=15)
    assert _load(engine, settings, clock, raw_id) is None
    clock.advance(seconds=1)
    assert _load(engine, settings, clock, raw_id) is None  # ended for good


def test_absolute_timeout_despite_activity(engine, settings, clock: Clock) -> None:
    customer = make_customer(engine)
    raw_id = _open(engine, settings, clock, customer.id)
    for _ in range(int(settings.customer_absolute_timeout.total_seconds() // 600) - 1):
        clock.advance(minutes=10)
        assert _load(engine, settings, clock, raw_id) is not None
    clock.advance(minutes=10)
    assert _load(engine, settings, clock, raw_id) is None


def test_sign_out_invalidates_on_the_server(engine, settings, clock) -> None:
    customer = make_customer(engine)
    raw_id = _open(engine, settings, clock, customer.id)
    with transaction(engine) as session:
        assert end_session(session, settings=settings, raw_id=raw_id, now=clock()) == customer.id
    assert _load(engine, settings, clock, raw_id) is None


def test_unknown_ids_load_nothing(engine, settings, clock) -> None:
    assert _load(engine, settings, clock, "forged") is None


def test_housekeeping_forgets_old_sign_in_records(engine, settings, clock: Clock) -> None:
    from sqlalchemy import func, select

    from portal.identity.ratelimit import hit
    from portal.models import Session as SessionRow
    from portal.outbox.housekeeping import purge_sign_in_records

    customer = make_customer(engine)
    old = _open(engine, settings, clock, customer.id)
    with transaction(engine) as session:
        hit(session, key="signin:ip:192.0.2.1", limit=5, window=settings.rate_limit_window, now=clock())
    clock.advance(days=2)
    live = _open(engine, settings, clock, customer.id)
    with transaction(engine) as session:
        counts = purge_sign_in_records(session, now=clock())
        remaining = session.scalar(select(func.count()).select_from(SessionRow))
    assert counts["sessions"] == 1 and counts["rate_limits"] == 1 and remaining == 1
    assert _load(engine, settings, clock, live) is not None and _load(engine, settings, clock, old) is None
