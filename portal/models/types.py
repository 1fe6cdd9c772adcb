"""Column types shared by the tables."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import DateTime, String
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.functions import FunctionElement
from sqlalchemy.types import TypeDecorator


class UTCDateTime(TypeDecorator[datetime]):
    """Aware UTC datetimes in Python on both engines.

    PostgreSQL keeps `timestamptz`; SQLite has no time zones, so values are stored as naive UTC text (which keeps
    string comparison correct) and come back aware.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect):  # type: ignore[no-untyped-def]
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect):  # type: ignore[no-untyped-def]
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def utcnow() -> datetime:
    return datetime.now(UTC)


class bytewise(FunctionElement[str]):  # noqa: N801  (used like a SQL function)
    """Text compared byte by byte, so that a prefix is a range of an index: `x >= 'dur' AND x < 'dur\\U0010ffff'`.

    SQLite compares text bytewise already; PostgreSQL follows the database's collation, whose order a prefix range
    does not fit (en_US ignores punctuation at first), so there it is `(x) COLLATE "C"`, in the index and the query.
    """

    type = String()
    name = "bytewise"
    inherit_cache = True


@compiles(bytewise)
def _bytewise(element: bytewise, compiler: SQLCompiler, **kw: Any) -> str:
    return str(compiler.process(element.clauses, **kw))


@compiles(bytewise, "postgresql")
def _bytewise_postgresql(element: bytewise, compiler: SQLCompiler, **kw: Any) -> str:
    return f'({compiler.process(element.clauses, **kw)}) COLLATE "C"'
