"""Applying a batch of items sent to the retailer API, with the same steps and messages as a file import.

All or nothing: an item that fails `parse` or `check` refuses the whole batch before anything is written, so a
sender never has to guess which items were kept.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from sqlmodel import Session

from portal.imports.kinds import Kind, RowError, RowInvalid, Tally


class ItemsRefused(ValueError):
    """Some items of the batch are invalid (position in the batch, problem); nothing was written."""

    def __init__(self, errors: list[tuple[int, RowError]]) -> None:
        super().__init__("; ".join(f"item {i}: {e.message}" for i, e in errors))
        self.errors = errors


def apply_items(session: Session, kind: Kind, items: Sequence[Mapping[str, Any]]) -> Tally:
    """Parse, check and write `items` in the caller's transaction; raises ItemsRefused, writing nothing."""
    records = []
    errors: list[tuple[int, RowError]] = []
    for position, item in enumerate(items):
        try:
            records.append(kind.parse(item, position + 1))
        except RowInvalid as invalid:
            errors.extend((position, error) for error in invalid.errors)
    if errors:
        raise ItemsRefused(errors)
    problems = kind.check(session, records)
    if problems:
        raise ItemsRefused([(position, e) for position, found in sorted(problems.items()) for e in found])
    tally = Tally()
    kind.write(session, records, tally)
    return tally
