"""Counting the SQL statements a piece of code sends: cost must follow what is shown, not what has accumulated."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy import Engine, event


@contextmanager
def counting_statements(engine: Engine) -> Iterator[list[str]]:
    """Yield the list of statements sent to `engine` inside the block (one entry per cursor execute, executemany
    included once), filled as they run."""
    statements: list[str] = []

    def record(conn: Any, cursor: Any, statement: str, parameters: Any, context: Any, executemany: bool) -> None:
        statements.append(statement)

    event.listen(engine, "before_cursor_execute", record)
    try:
        yield statements
    finally:
        event.remove(engine, "before_cursor_execute", record)
