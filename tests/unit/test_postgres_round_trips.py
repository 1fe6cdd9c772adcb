"""PostgreSQL round trips a request does not need: a ping before every transaction, BEGIN/COMMIT around its session
look-up, BEGIN/ROLLBACK around its reads (and the prepared statements each ROLLBACK threw away).

pool_pre_ping sent a SELECT 1 before every transaction (two per page); now only a connection idle for
PING_AFTER_IDLE_SECONDS is pinged, and one the server dropped meanwhile is replaced without the caller noticing.
The session look-up runs statement by statement (autocommit): psycopg sends no BEGIN/COMMIT around it. Reads go
through db.read_only_engine: autocommit connections on which PostgreSQL refuses writes.
"""

from __future__ import annotations

import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

from portal import db
from portal.db import make_engine
from portal.web.state import _read_only
from tests.conftest import PG_URL

pytestmark = pytest.mark.skipif(not PG_URL, reason="PORTAL_TEST_DATABASE_URL is not set")


def _counting_pings(engine, monkeypatch: pytest.MonkeyPatch) -> list[object]:  # type: ignore[no-untyped-def]
    pings: list[object] = []
    original = engine.dialect.do_ping

    def ping(dbapi_connection):  # type: ignore[no-untyped-def]
        pings.append(dbapi_connection)
        return original(dbapi_connection)

    monkeypatch.setattr(engine.dialect, "do_ping", ping)
    return pings


def test_a_busy_connection_is_not_pinged_before_each_use(monkeypatch: pytest.MonkeyPatch) -> None:
    engine = make_engine(PG_URL)
    try:
        pings = _counting_pings(engine, monkeypatch)
        for _ in range(5):
            with engine.connect() as connection:
                assert connection.execute(text("SELECT 2")).scalar_one() == 2
        assert pings == []
        monkeypatch.setattr(db, "PING_AFTER_IDLE_SECONDS", 0.0)  # now every checkout comes after "long" idling
        with engine.connect() as connection:
            assert connection.execute(text("SELECT 3")).scalar_one() == 3
        assert len(pings) == 1
    finally:
        engine.dispose()


def test_an_idle_connection_the_server_dropped_is_replaced_unseen(monkeypatch: pytest.MonkeyPatch) -> None:
    engine = make_engine(PG_URL)
    try:
        with engine.connect() as connection:
            dropped_pid = connection.execute(text("SELECT pg_backend_pid()")).scalar_one()
        # The server ends it while it sits in the pool (a restart, an idle timeout, a firewall).
        killer = make_engine(PG_URL)
        try:
            with killer.connect() as connection:
                assert connection.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": dropped_pid}).scalar_one()
        finally:
            killer.dispose()
        monkeypatch.setattr(db, "PING_AFTER_IDLE_SECONDS", 0.0)
        with engine.connect() as connection:
            assert connection.execute(text("SELECT pg_backend_pid()")).scalar_one() != dropped_pid
    finally:
        engine.dispose()


def test_the_session_look_up_runs_without_a_transaction() -> None:
    """psycopg sends BEGIN and COMMIT as round trips of their own: the per-request session look-up (a read, now and
    then one UPDATE) goes without."""
    engine = make_engine(PG_URL)
    try:
        with db.statement_by_statement(engine) as connection:
            assert connection.connection.dbapi_connection.autocommit is True  # type: ignore[union-attr]
            connection.execute(text("CREATE TEMPORARY TABLE touched (n int)"))
            connection.execute(text("INSERT INTO touched VALUES (1)"))  # committed by itself: no COMMIT to send
        with engine.connect() as connection:  # back in the pool, the connection is transactional again
            assert connection.connection.dbapi_connection.autocommit is False  # type: ignore[union-attr]
    finally:
        engine.dispose()


def test_reads_run_without_a_transaction_on_connections_that_cannot_write() -> None:
    """A page's reads: no BEGIN and ROLLBACK around them, and PostgreSQL itself refuses a write made through them."""
    engine = make_engine(PG_URL)
    reads = db.read_only_engine(engine)
    try:
        assert reads is not engine
        seen = _read_only(reads, lambda session: session.connection().connection.dbapi_connection.autocommit, (), {})
        assert seen is True

        def write(session):  # type: ignore[no-untyped-def]
            session.connection().execute(text("CREATE TABLE never_made (n int)"))

        with pytest.raises(DBAPIError, match="read-only transaction"):
            _read_only(reads, write, (), {})
        with engine.connect() as connection:
            assert connection.execute(text("SELECT to_regclass('never_made')")).scalar() is None
    finally:
        reads.dispose()
        engine.dispose()


def test_reads_keep_their_prepared_statements() -> None:
    """psycopg prepares a statement run five times on a connection, and forgets all of them at each ROLLBACK: reads
    in transactions had PostgreSQL parse and plan every statement of every page. Without a ROLLBACK they stay."""
    engine = make_engine(PG_URL)
    reads = db.read_only_engine(engine)
    statement = text("SELECT count(*) FROM pg_prepared_statements")
    try:
        counts = [
            _read_only(reads, lambda session: session.connection().execute(statement).scalar_one(), (), {})
            for _ in range(8)
        ]
        assert counts[0] == 0 and counts[-1] >= 1, counts
    finally:
        reads.dispose()
        engine.dispose()


def test_reads_plan_each_prepared_statement_once() -> None:
    """Left to choose, PostgreSQL re-planned a prepared page statement on every run when the plan for one customer
    looked cheaper than the generic one: the consent state (a LATERAL per purpose) took longer to plan than to run."""
    engine = make_engine(PG_URL)
    reads = db.read_only_engine(engine)
    statement = text("SELECT count(*) FROM pg_class WHERE relpages > :pages")
    try:
        with reads.connect() as connection:
            assert connection.execute(text("SHOW plan_cache_mode")).scalar_one() == "force_generic_plan"
            for _ in range(8):
                connection.execute(statement, {"pages": 0}).scalar_one()
            plans = connection.execute(
                text("SELECT generic_plans, custom_plans FROM pg_prepared_statements WHERE statement LIKE '%relpages%'")
            ).one()
        assert plans.generic_plans >= 1 and plans.custom_plans == 0, plans
        with engine.connect() as connection:  # the writers' connections keep PostgreSQL's own choice
            assert connection.execute(text("SHOW plan_cache_mode")).scalar_one() == "auto"
    finally:
        reads.dispose()
        engine.dispose()


def test_the_connection_given_back_last_is_the_next_one_used() -> None:
    """Warm connections first: with the pool's default first-in-first-out order, light traffic took the connection
    idle longest each time, pinged it (idle for more than PING_AFTER_IDLE_SECONDS) and prepared its statements anew."""
    for engine in (make_engine(PG_URL), db.read_only_engine(make_engine(PG_URL))):
        pid = text("SELECT pg_backend_pid()")
        try:
            with engine.connect() as first, engine.connect() as second:
                first_pid = first.execute(pid).scalar_one()
                second_pid = second.execute(pid).scalar_one()
            # `second` was given back first, `first` last: `first` is the next one used, and again after it.
            for _ in range(3):
                with engine.connect() as connection:
                    assert connection.execute(pid).scalar_one() == first_pid != second_pid
        finally:
            engine.dispose()


def test_a_trial_rolls_back_what_it_wrote() -> None:
    """Retention's preview counts by deleting in a savepoint: it runs on the transactional engine, rolled back."""
    engine = make_engine(PG_URL)
    try:

        def count_by_writing(session):  # type: ignore[no-untyped-def]
            session.connection().execute(text("CREATE TEMPORARY TABLE tried (n int)"))
            with session.begin_nested() as savepoint:  # the SAVEPOINT is sent with the next statement
                session.connection().execute(text("INSERT INTO tried VALUES (1), (2)"))
                seen = session.connection().execute(text("SELECT count(*) FROM tried")).scalar_one()
                savepoint.rollback()
            return seen, session.connection().execute(text("SELECT count(*) FROM tried")).scalar_one()

        assert _read_only(engine, count_by_writing, (), {}) == (2, 0)
    finally:
        engine.dispose()
