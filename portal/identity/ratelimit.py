"""Fixed-window rate limits counted in the database, so every app process and worker sees one count."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime, timedelta

from sqlmodel import Session

from portal.db import dialect_insert
from portal.models import RateLimit


@dataclasses.dataclass(frozen=True)
class LimitResult:
    allowed: bool
    count: int
    retry_after: timedelta


def window_start(now: datetime, window: timedelta) -> datetime:
    seconds = int(window.total_seconds())
    epoch = int(now.timestamp())
    return datetime.fromtimestamp(epoch - epoch % seconds, UTC)


def hit(session: Session, *, key: str, limit: int, window: timedelta, now: datetime) -> LimitResult:
    """Count one attempt under `key`; allowed while the window's count stays within `limit`."""
    start = window_start(now, window)
    insert = dialect_insert(session)
    statement = (
        insert(RateLimit)
        .values(key=key, window_start=start, count=1)
        .on_conflict_do_update(index_elements=["key", "window_start"], set_={"count": RateLimit.__table__.c.count + 1})
        .returning(RateLimit.__table__.c.count)
    )
    count = session.execute(statement).scalar_one()
    return LimitResult(allowed=count <= limit, count=count, retry_after=start + window - now)
