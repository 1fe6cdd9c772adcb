"""The application's typed state, and the ways a view reaches the database: `read`, `trial`, `write` and `stream`.

A view parses its input, then makes one call:

    rows = await read(request, purchases.page_of, customer_id=customer_id, filters=filters)
    filed = await write(request, service.make_request, customer_id=customer_id, form=form, composer=state.composer)

`read` hands the service a session for a read-only unit of work (closed, never committed; on PostgreSQL, connections
that refuse writes); `trial` one in a transaction always rolled back; `write` runs it in one transaction, committed
when it returns; `stream` iterates rows from a connection while a response streams them.
`read` and `write` give the service `now` (the app's clock, which tests move), `request_id` (which ties audit events
to the log) and `timezone` (the portal's, from settings) when its signature asks for them and the view did not pass
them. They run SQLite work on the event loop and PostgreSQL work in a thread (`portal.db.run_db` says why).
"""

from __future__ import annotations

import dataclasses
import functools
import inspect
from collections.abc import Callable, Iterator
from datetime import datetime
from typing import TYPE_CHECKING, Any, ParamSpec, TypeVar

from sqlalchemy import Engine
from sqlmodel import Session
from starlette.requests import Request

from portal.db import in_transaction, run_db, takes_connection

if TYPE_CHECKING:  # types only: the web layer does not depend on these capabilities at run time
    import jinja2
    from itsdangerous import Signer

    from portal.consent.register import PurposeRegister
    from portal.mail.compose import EmailComposer
    from portal.mail.mailbox import Mailbox
    from portal.retailer import Retailer
    from portal.settings import Settings

P = ParamSpec("P")
T = TypeVar("T")
INJECTED = ("now", "request_id", "timezone")


@dataclasses.dataclass(eq=False)
class Portal:
    """Everything built once at start-up that views need; `request.app.state.portal`, read with `portal_of`."""

    settings: Settings
    retailer: Retailer
    engine: Engine
    read_engine: Engine  # `engine` on SQLite; on PostgreSQL, read-only autocommit connections (db.read_only_engine)
    env: jinja2.Environment
    register: PurposeRegister
    composer: EmailComposer
    clock: Callable[[], datetime]
    session_signer: Signer
    mailbox: Mailbox | None = None  # the demo's SMTP server, once the app has started in demo mode

    def dispose(self) -> None:
        """Close the pooled connections of both engines (at shutdown, or in tests that run no lifespan)."""
        self.engine.dispose()
        if self.read_engine is not self.engine:
            self.read_engine.dispose()


def portal_of(request: Request) -> Portal:
    return request.app.state.portal


def request_id_of(request: Request) -> str | None:
    """The id RequestContextMiddleware gave this request, which audit events carry to tie them to the log."""
    return request.scope.get("state", {}).get("request_id")


@functools.cache
def _wants(fn: Callable[..., Any]) -> frozenset[str]:
    parameters = inspect.signature(fn).parameters
    return frozenset(name for name in INJECTED if name in parameters)


def _injected(request: Request, fn: Callable[..., Any], kwargs: dict[str, Any]) -> dict[str, Any]:
    wants = _wants(fn)
    if "now" in wants and "now" not in kwargs:
        kwargs["now"] = portal_of(request).clock()
    if "request_id" in wants and "request_id" not in kwargs:
        kwargs["request_id"] = request_id_of(request)
    if "timezone" in wants and "timezone" not in kwargs:
        kwargs["timezone"] = portal_of(request).settings.timezone
    return kwargs


def _read_only(engine: Engine, fn: Callable[..., T], args: tuple[Any, ...], kwargs: dict[str, Any]) -> T:
    # Closing, not committing: what `fn` returns stays loaded, and on SQLite the transaction is rolled back.
    if takes_connection(fn):
        # A service that reads with Core gets the connection alone (db.takes_connection says why).
        with engine.connect() as connection:
            return fn(connection, *args, **kwargs)
    with Session(engine) as session:
        return fn(session, *args, **kwargs)


# `fn` is typed loosely on purpose: its `now`, `request_id` and `timezone` may be left for these helpers to give,
# which a ParamSpec cannot express.
async def read(request: Request, fn: Callable[..., T], /, *args: Any, **kwargs: Any) -> T:
    """`fn(session, *args, **kwargs)` on connections that cannot write (on PostgreSQL, `portal.db.read_only_engine`:
    no transaction around the statements); nothing it does is ever committed."""
    engine = portal_of(request).read_engine
    return await run_db(engine, _read_only, engine, fn, args, _injected(request, fn, dict(kwargs)))


async def trial(request: Request, fn: Callable[..., T], /, *args: Any, **kwargs: Any) -> T:
    """`fn(session, *args, **kwargs)` in a transaction that is always rolled back: for a read that counts what a
    write would do by doing it in a savepoint (retention's preview), which read-only connections refuse."""
    engine = portal_of(request).engine
    return await run_db(engine, _read_only, engine, fn, args, _injected(request, fn, dict(kwargs)))


async def write(
    request: Request,
    fn: Callable[..., T],
    /,
    *args: Any,
    **kwargs: Any,
) -> T:
    """`fn(session, *args, **kwargs)` in one transaction, committed when it returns and rolled back when it raises.

    `keep_on=(ExceptionType, …)` (keyword) names expected refusals whose writes are committed before they are
    raised again (attempt counters, audit events): see `portal.db.in_transaction`.
    """
    engine = portal_of(request).engine
    options = dict(kwargs)
    keep_on = options.pop("keep_on", ())
    return await run_db(engine, in_transaction, engine, fn, *args, keep_on=keep_on, **_injected(request, fn, options))


def stream(request: Request, fn: Callable[..., Iterator[T]], /, *args: Any, **kwargs: Any) -> Iterator[T]:
    """The rows `fn(connection, …)` yields, read while the response streams them (CSV exports); the connection is
    held only as long as the iteration. Starlette iterates it in a worker thread."""
    engine = portal_of(request).engine
    with engine.connect() as connection:
        yield from fn(connection, *args, **kwargs)
