"""Fixed-window rate limits counted in the database, so every app process and worker sees one count."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime, timedelta

from sqlalchemy import Connection, bindparam, delete, func, select
from sqlmodel import Session

from portal.db import as_connection, dialect_insert, per_dialect
from portal.models import RateLimit

_TABLE = RateLimit.__table__


def _counting_upsert(insert):  # type: ignore[no-untyped-def]
    return (
        insert(_TABLE)
        .values(key=bindparam("key"), window_start=bindparam("window_start"), count=1)
        .on_conflict_do_update(index_elements=["key", "window_start"], set_={"count": _TABLE.c.count + 1})
        .returning(_TABLE.c.count)
    )


# Built once per dialect: sign-in counts two or three limits per request, and building the upsert each time cost
# more than running it (a quarter of POST /signin's samples, bench/README.md "Issue 17: the writes").
_HIT = per_dialect(_counting_upsert)
_COUNT = select(_TABLE.c.count).where(_TABLE.c.key == bindparam("key"), _TABLE.c.window_start == bindparam("start"))


@dataclasses.dataclass(frozen=True)
class LimitResult:
    allowed: bool
    count: int
    retry_after: timedelta


def window_start(now: datetime, window: timedelta) -> datetime:
    seconds = int(window.total_seconds())
    epoch = int(now.timestamp())
    return datetime.fromtimestamp(epoch - epoch % seconds, UTC)


def hit(db: Session | Connection, *, key: str, limit: int, window: timedelta, now: datetime) -> LimitResult:
    """Count one attempt under `key`; allowed while the window's count stays within `limit`."""
    start = window_start(now, window)
    connection = as_connection(db)
    count = connection.execute(_HIT[connection.dialect.name], {"key": key, "window_start": start}).scalar_one()
    return LimitResult(allowed=count <= limit, count=count, retry_after=start + window - now)


def count(db: Session | Connection, *, key: str, window: timedelta, now: datetime) -> int:
    """The current window's count under `key`, without counting an attempt."""
    found = as_connection(db).execute(_COUNT, {"key": key, "start": window_start(now, window)}).scalar()
    return found or 0


# A lock is a row of the same table whose window_start holds the time the lock ends (count 0): housekeeping removes
# it a day after it ended, like any spent window. Used for addresses that have no account, which must lock exactly
# like real ones (staff_signin.py), without a table of their own that would list what was tried.


def lock(session: Session, *, key: str, until: datetime) -> None:
    insert = dialect_insert(session)
    session.execute(insert(RateLimit).values(key=key, window_start=until, count=0).on_conflict_do_nothing())


def locked_until(session: Session, *, key: str, now: datetime) -> datetime | None:
    table = RateLimit.__table__
    return session.execute(
        select(func.max(table.c.window_start)).where(table.c.key == key, table.c.window_start > now)
    ).scalar_one()


def reset(session: Session, *, key: str) -> None:
    session.execute(delete(RateLimit).where(RateLimit.__table__.c.key == key))
