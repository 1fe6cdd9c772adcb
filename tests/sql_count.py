"""Counting the SQL statements a piece of code sends: cost must follow what is shown, not what has accumulated."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy import Engine, event
from starlette.applications import Starlette


def app_engines(app: Starlette) -> tuple[Engine, ...]:
    """The engines an app sends statements to: on PostgreSQL, pages read through an engine of their own
    (`portal.db.read_only_engine`); on SQLite it is the same engine."""
    portal = app.state.portal
    return (portal.engine,) if portal.read_engine is portal.engine else (portal.engine, portal.read_engine)


@contextmanager
def counting_statements(*engines: Engine) -> Iterator[list[str]]:
    """Yield the list of statements sent to `engines` inside the block (one entry per cursor execute, executemany
    included once), filled as they run."""
    statements: list[str] = []

    def record(conn: Any, cursor: Any, statement: str, parameters: Any, context: Any, executemany: bool) -> None:
        statements.append(statement)

    for engine in engines:
        event.listen(engine, "before_cursor_execute", record)
    try:
        yield statements
    finally:
        for engine in engines:
            event.remove(engine, "before_cursor_execute", record)
