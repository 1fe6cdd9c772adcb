"""Merging: every table that names a customer is handled, so a new one cannot be forgotten."""

from __future__ import annotations

from sqlmodel import SQLModel

import portal.models  # noqa: F401  (registers every table)
from portal.imports.merge import MOVED, SUMMED


def test_every_table_naming_a_customer_follows_the_survivor() -> None:
    naming = {
        table.name
        for table in SQLModel.metadata.sorted_tables
        for key in table.foreign_keys
        if key.column.table.name == "customer"
    }
    handled = {model.__table__.name for model in (*MOVED, *SUMMED)}  # type: ignore[attr-defined]
    assert naming == handled, "a table names a customer: say in portal/imports/merge.py how a merge treats it"
