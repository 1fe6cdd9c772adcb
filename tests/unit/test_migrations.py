"""Alembic owns the schema: the migrations must produce exactly what the models declare, and go back down."""

from __future__ import annotations

from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlmodel import SQLModel

import portal.models  # noqa: F401
from portal.db import alembic_config, make_engine
from portal.models.types import bytewise


def _bytewise_index_pairs(differences: list) -> set[str]:
    """Names of bytewise (COLLATE "C") indexes Alembic reports as removed and added: it cannot compare a collated
    expression with the one it reflects, but the pair says the index is there on both sides."""
    removed = {d[1].name for d in differences if isinstance(d, tuple) and d[0] == "remove_index"}
    added = {
        d[1].name
        for d in differences
        if isinstance(d, tuple) and d[0] == "add_index" and any(isinstance(e, bytewise) for e in d[1].expressions)
    }
    return removed & added


def test_migrations_match_the_models(database_url: str) -> None:
    engine = make_engine(database_url)
    with engine.connect() as connection:
        differences = compare_metadata(MigrationContext.configure(connection), SQLModel.metadata)
    engine.dispose()
    paired = _bytewise_index_pairs(differences)
    differences = [d for d in differences if not (isinstance(d, tuple) and getattr(d[1], "name", None) in paired)]
    assert differences == [], "run an Alembic autogenerate: the models and the migrations differ"


def test_downgrade_to_base_and_back(database_url: str) -> None:
    config = alembic_config(database_url)
    command.downgrade(config, "base")
    command.upgrade(config, "head")
