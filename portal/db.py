"""Engines, sessions and migrations for the two supported databases (SQLite by default, PostgreSQL)."""

from __future__ import annotations

import functools
import inspect
import time
import typing
import weakref
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import anyio.to_thread
from sqlalchemy import (
    BindParameter,
    ColumnElement,
    Connection,
    Engine,
    Integer,
    bindparam,
    event,
    func,
    literal_column,
    text,
)
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import DisconnectionError
from sqlalchemy.orm import ORMExecuteState, UOWTransaction
from sqlmodel import Session, create_engine

if TYPE_CHECKING:
    from alembic.config import Config

MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"
T = TypeVar("T")
OUTBOX_TABLE = "outbox_message"


def make_engine(database_url: str) -> Engine:
    """An engine with the connection settings each database needs.

    `hide_parameters`: a database error's message and the log would otherwise carry the bound values (customer
    ids, addresses, page titles), personal data the logs must not keep.
    """
    url = make_url(database_url)
    if url.get_backend_name() == "sqlite":
        if url.database and url.database != ":memory:":
            Path(url.database).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(url, connect_args={"check_same_thread": False, "timeout": 15}, hide_parameters=True)

        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_connection, _record):  # type: ignore[no-untyped-def]
            # WAL lets readers work while one writer commits; NORMAL sync is durable across app crashes in WAL
            # mode; foreign keys are off by default in SQLite.
            cursor = dbapi_connection.cursor()
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA synchronous=NORMAL")
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.execute("PRAGMA busy_timeout=15000")
            # Deleted content is overwritten, not left in free pages: erasure must leave no copy in the file.
            cursor.execute("PRAGMA secure_delete=ON")
            cursor.close()

        return engine
    return _postgres_engine(url)


def _postgres_engine(url: str | URL, **options: Any) -> Engine:
    """A PostgreSQL pool as `make_engine` and `read_only_engine` make it: 10 + 10 connections, values out of errors.

    Last in, first out: the connection just given back is the next one used, so steady traffic keeps a few
    connections busy, whose prepared statements and plans are already made, instead of rotating through all of them.
    In first-in-first-out order, traffic lighter than one request per connection every PING_AFTER_IDLE_SECONDS would
    take the connection idle longest each time and ping it first: a round trip more on every request.
    """
    engine = create_engine(url, pool_size=10, max_overflow=10, pool_use_lifo=True, hide_parameters=True, **options)
    _ping_after_idle(engine)
    return engine


def read_only_engine(engine: Engine) -> Engine:
    """The engine pages read through (`portal.web.state.read`): on SQLite, `engine` itself; on PostgreSQL, a pool of
    its own whose connections are in autocommit and refuse to write (`default_transaction_read_only`).

    A read in a transaction costs a BEGIN and a ROLLBACK, two round trips more than its statements, and psycopg
    forgets its prepared statements at every ROLLBACK, so PostgreSQL parsed and planned each page's statements anew:
    this halves the wall time of a page (bench/README.md, issue 17). PostgreSQL itself refuses a write through these
    connections, so a read can never commit one by mistake; a read that counts by writing and rolling back uses
    `portal.web.state.trial` on `engine`. Each statement sees what was committed when it started, as in a READ
    COMMITTED transaction. Pages' LIMITs are written in (`limit_parameter`, `first_row`).

    Their prepared statements always run a generic plan (`plan_cache_mode`): left to choose, PostgreSQL planned some
    page statements anew on every run, because a plan made for one customer's values looked cheaper than the generic
    one; planning took longer than running them (0.4-2.4 ms against 0.1-0.6 ms, issue 17). A generic plan is what
    these statements are written for: each seeks an index whatever the customer (the EXPLAIN tests), and the terms a
    partial index depends on are written in, never bound.
    """
    if engine.dialect.name != "postgresql":
        return engine
    reads = _postgres_engine(engine.url, isolation_level="AUTOCOMMIT")

    @event.listens_for(reads, "connect")
    def _refuse_writes(dbapi_connection, _record):  # type: ignore[no-untyped-def]
        dbapi_connection.autocommit = True  # the SET below must not open a transaction
        dbapi_connection.execute("SET default_transaction_read_only = on")
        dbapi_connection.execute("SET plan_cache_mode = force_generic_plan")  # PostgreSQL 12+

    return reads


def limit_parameter() -> BindParameter[int]:
    """A prebuilt statement's LIMIT, given at each run as `limit` and written into the SQL, not bound.

    With a bound LIMIT, the generic plan of a prepared statement (costed for any limit) always loses to one made for
    the run's values, so PostgreSQL planned such a statement anew on every run: at 1,000,000 requests the queue's took
    longer to plan than to run (tests/unit/backoffice/test_queue_plans.py). Written in, each page size is one plan.
    """
    return bindparam("limit", type_=Integer(), literal_execute=True)


def first_row() -> ColumnElement[int]:
    """`LIMIT 1` written into the SQL, for a prebuilt statement's "the latest / the first" subqueries.

    `.limit(1)` binds the 1: PostgreSQL then found the generic plan of the overview dearer than one made per run and
    planned it anew on every page, 1.5-2.4 ms each time (pg_prepared_statements: 125 custom plans, 0 generic; issue
    17). Written in, the statement is planned once per connection, as `limit_parameter` does for a page's LIMIT.
    """
    return literal_column("1", Integer())


# A pooled connection is checked for life before use only when it sat idle this long (PostgreSQL restarted, a
# firewall dropped it). pool_pre_ping checked before every use: one round trip more per transaction, and a page
# opens two (bench/README.md, issue 17). A connection that dies while in use fails its statement either way; the
# pool then drops every connection of that generation (SQLAlchemy's disconnect handling).
PING_AFTER_IDLE_SECONDS = 5.0


def _ping_after_idle(engine: Engine) -> None:
    @event.listens_for(engine, "checkin")
    def _idle_since(_dbapi_connection, record):  # type: ignore[no-untyped-def]
        record.info["idle_since"] = time.monotonic()

    @event.listens_for(engine, "checkout")
    def _alive(dbapi_connection, record, _proxy):  # type: ignore[no-untyped-def]
        idle_since = record.info.get("idle_since")
        if idle_since is None or time.monotonic() - idle_since < PING_AFTER_IDLE_SECONDS:
            return
        try:
            alive = engine.dialect.do_ping(dbapi_connection)
        except engine.dialect.loaded_dbapi.Error as exc:
            raise DisconnectionError(str(exc)) from exc  # the pool replaces the connection and tries again
        if not alive:
            raise DisconnectionError("the connection did not answer")


@contextmanager
def transaction(engine: Engine) -> Iterator[Session]:
    """One unit of work: commits when the block ends normally, rolls back when it raises."""
    with Session(engine, expire_on_commit=False) as session, session.begin():
        yield session


@contextmanager
def statement_by_statement(engine: Engine) -> Iterator[Connection]:
    """A connection whose statements each commit on their own, for the session look-up every request makes: a read
    and, now and then, one UPDATE, which need no transaction around them. On PostgreSQL that saves the BEGIN and the
    COMMIT psycopg sends around a transaction, two of a page's round trips; SQLite, in-process, keeps its own."""
    if engine.dialect.name == "postgresql":
        with engine.connect() as connection:
            yield connection.execution_options(isolation_level="AUTOCOMMIT")
    else:
        with engine.begin() as connection:
            yield connection


async def run_db(engine: Engine, fn: Callable[..., T], /, *args: object, **kwargs: object) -> T:
    """Run synchronous database work from an async view.

    SQLite answers from a local file in microseconds, so its queries run on the event loop: a threadpool hand-off
    costs more than the query (measured 1.7x: bench/README.md). PostgreSQL waits on the network, so its work
    goes to a worker thread and never stalls other requests.
    """
    if engine.dialect.name == "sqlite":
        return fn(*args, **kwargs)
    return await anyio.to_thread.run_sync(lambda: fn(*args, **kwargs))


def alembic_config(database_url: str) -> Config:
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    config.set_main_option("sqlalchemy.url", database_url.replace("%", "%%"))
    return config


def migrate(database_url: str, revision: str = "head") -> None:
    """Bring the schema to `revision` with Alembic, which owns the schema."""
    from alembic import command

    url = make_url(database_url)
    if url.get_backend_name() == "sqlite" and url.database and url.database != ":memory:":
        Path(url.database).parent.mkdir(parents=True, exist_ok=True)
    command.upgrade(alembic_config(database_url), revision)


@functools.cache
def takes_connection(fn: Callable[..., Any]) -> bool:
    """Whether `fn` says it works on a plain connection: its first parameter typed `Session | Connection`.

    Such a service gets the connection alone, from `in_transaction` and `portal.web.state.read`: the ORM Session
    around it (its creation, its transaction's bookkeeping, its close) cost 60-90 µs a request, up to a tenth of a
    page and a fifth of a consent toggle (issue 17). The others get a Session, as every service may ask.
    """
    try:
        hints = typing.get_type_hints(fn)
        first = next(iter(inspect.signature(fn).parameters))
    except (NameError, TypeError, ValueError, StopIteration):  # no hints to read: give it what every service takes
        return False
    hint = hints.get(first)
    return hint is Connection or Connection in typing.get_args(hint)


def in_transaction(
    engine: Engine,
    fn: Callable[..., T],
    /,
    *args: object,
    keep_on: tuple[type[BaseException], ...] = (),
    **kwargs: object,
) -> T:
    """Run `fn(session, *args, **kwargs)` in one transaction (`fn(connection, …)` when it takes one).

    Exceptions listed in `keep_on` are expected outcomes (a wrong code, a rate limit): what `fn` wrote before
    raising them — attempt counters, audit events — is committed, then the exception is raised. Anything else
    rolls back.
    """
    on_connection = takes_connection(fn)
    outcome: BaseException | None = None
    outbox_written = False
    unit: AbstractContextManager[Session | Connection] = engine.begin() if on_connection else transaction(engine)
    with unit as db:
        try:
            result = fn(db, *args, **kwargs)
        except keep_on as exc:
            outcome = exc
        finally:
            if on_connection:
                # A bare connection has no after_commit: its outbox mark is taken off here whatever happens (it lives
                # on the pooled connection, and a rolled-back transaction must not wake the worker later), and the
                # worker is woken below, once the block has committed. A Session's own events do both.
                outbox_written = db.info.pop(_OUTBOX_WRITTEN, False)
    if outbox_written:
        _wake_outbox_of(engine)
    if outcome is not None:
        raise outcome
    return result


def ping(db: Session | Connection) -> None:
    """Ask the database the simplest question: raises when it cannot answer (the health check)."""
    as_connection(db).execute(text("SELECT 1"))


def as_connection(db: Session | Connection) -> Connection:
    """The Core connection behind `db`: hot read paths run prebuilt statements on it, whichever the caller holds."""
    return db.connection() if isinstance(db, Session) else db


def dialect_insert(db: Session | Connection):  # type: ignore[no-untyped-def]
    """`insert` of the engine's dialect: its `on_conflict_do_update` is how counters and totals are upserted."""
    from sqlalchemy.dialects import postgresql, sqlite

    bind = db.get_bind() if isinstance(db, Session) else db
    return postgresql.insert if bind.dialect.name == "postgresql" else sqlite.insert


def per_dialect(build: Callable[[Any], T]) -> dict[str, T]:
    """`build(insert)` once for each database the portal runs on, given that dialect's `insert` (with its ON
    CONFLICT): a hot path's upsert is built at import and picked per call by `connection.dialect.name`."""
    from sqlalchemy.dialects import postgresql, sqlite

    return {"sqlite": build(sqlite.insert), "postgresql": build(postgresql.insert)}


def sql_least(db: Session | Connection, a: ColumnElement[Any], b: ColumnElement[Any]) -> ColumnElement[Any]:
    """LEAST(a, b) in the engine's dialect (SQLite spells it as the two-argument MIN)."""
    bind = db.get_bind() if isinstance(db, Session) else db
    return func.least(a, b) if bind.dialect.name == "postgresql" else func.min(a, b)


def sql_greatest(db: Session | Connection, a: ColumnElement[Any], b: ColumnElement[Any]) -> ColumnElement[Any]:
    """GREATEST(a, b) in the engine's dialect (SQLite spells it as the two-argument MAX)."""
    bind = db.get_bind() if isinstance(db, Session) else db
    return func.greatest(a, b) if bind.dialect.name == "postgresql" else func.max(a, b)


# --- Waking the outbox worker after a commit -------------------------------------------------------------------
# Any transaction that writes an outbox row (an email, a webhook event) wakes the worker once it has committed, so no
# code path has to remember to, and a message never waits for the next poll. Watching the session, not the callers,
# is what makes it structural: ORM adds and Core inserts through a session are both seen, and outbox/enqueue.py, the
# one writer of prebuilt inserts, marks the session or the bare connection it wrote on (`in_transaction` wakes the
# worker for those). A row written and not announced is still sent, at the worker's next poll.

_OUTBOX_WRITTEN = "portal.outbox_written"
_on_outbox_commit: weakref.WeakKeyDictionary[Engine, list[Callable[[], object]]] = weakref.WeakKeyDictionary()


def on_outbox_commit(engine: Engine, callback: Callable[[], object]) -> Callable[[], None]:
    """Call `callback` after each commit on `engine` that wrote outbox rows; returns what unregisters it."""
    callbacks = _on_outbox_commit.setdefault(engine, [])
    callbacks.append(callback)
    return lambda: callbacks.remove(callback) if callback in callbacks else None


def note_outbox_written(db: Session | Connection) -> None:
    """Say that this transaction wrote outbox rows with a prebuilt insert (outbox/enqueue.py), which a session's
    events do not see and a bare connection has none: the worker is woken after the commit all the same (by the
    session's after_commit, or by `in_transaction` for a connection)."""
    db.info[_OUTBOX_WRITTEN] = True


@event.listens_for(Session, "after_flush")
def _note_outbox_adds(session: Session, _flush: UOWTransaction) -> None:
    if any(getattr(row, "__tablename__", None) == OUTBOX_TABLE for row in session.new):
        session.info[_OUTBOX_WRITTEN] = True


@event.listens_for(Session, "do_orm_execute")
def _note_outbox_inserts(state: ORMExecuteState) -> None:
    table: Any = getattr(state.statement, "table", None)
    if state.is_insert and getattr(table, "name", None) == OUTBOX_TABLE:
        state.session.info[_OUTBOX_WRITTEN] = True


@event.listens_for(Session, "after_commit")
def _wake_outbox(session: Session) -> None:
    if session.info.pop(_OUTBOX_WRITTEN, False) and isinstance(session.bind, Engine):
        _wake_outbox_of(session.bind)


def _wake_outbox_of(engine: Engine) -> None:
    for callback in list(_on_outbox_commit.get(engine, ())):
        callback()


@event.listens_for(Session, "after_rollback")
def _forget_outbox(session: Session) -> None:
    session.info.pop(_OUTBOX_WRITTEN, None)


def contains(column: ColumnElement[str], text: str) -> ColumnElement[bool]:
    """`column LIKE '%text%'`, with what a person typed taken literally (their `%` and `_` match themselves)."""
    escaped = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return column.like(f"%{escaped}%", escape="\\")


# --- Leaving no copy of erased data in SQLite's files ------------------------------------------------------------
# With secure_delete (set at connect) SQLite overwrites deleted content in the database file; the write-ahead log
# still holds the pages as they were until a checkpoint copies them back and truncates it. A transaction that erased
# someone asks for that checkpoint, run once it has committed. (PostgreSQL: see README, operations — VACUUM.)

_CHECKPOINT = "portal.wal_checkpoint"


def checkpoint_after_commit(session: Session) -> None:
    """Ask for a WAL checkpoint once this session's transaction commits (SQLite only; nothing on PostgreSQL)."""
    session.info[_CHECKPOINT] = True


@event.listens_for(Session, "after_commit")
def _checkpoint(session: Session) -> None:
    bind = session.bind
    if session.info.pop(_CHECKPOINT, False) and isinstance(bind, Engine) and bind.dialect.name == "sqlite":
        with bind.connect() as connection:
            connection.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")


@event.listens_for(Session, "after_rollback")
def _forget_checkpoint(session: Session) -> None:
    session.info.pop(_CHECKPOINT, None)
