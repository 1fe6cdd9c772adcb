"""the staff queue at 1,000,000 requests: partial indexes on open requests, one per filter on closed ones

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-07 07:00:00

Every filter of /staff/requests walks an index in the page's order and stops after one page (bench/staff_queue.py,
tests/unit/backoffice/test_queue_plans.py). Open requests are a few percent of the table: partial indexes keep them
apart, ordered by the due date that applies; closed requests are listed newest first by one index per filter.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0011"
down_revision: str | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

EFFECTIVE_DUE = sa.text("coalesce(extended_due_at, due_at)")
OPEN_REQUESTS = sa.text("status IN ('received', 'in_progress', 'awaiting_customer')")
FILTERS = ("type", "channel", "store_id", "assignee_id")


# The search compares the start of what an agent typed with these, bytewise (portal.models.types.bytewise): SQLite
# compares text bytewise already (and has unique indexes on email_key and reference); PostgreSQL needs COLLATE "C".
FULL_NAME = "lower((coalesce(first_name, '') || ' ') || coalesce(last_name, ''))"
SEARCH_INDEXES = {
    "sqlite": {
        "ix_customer_search_last_name": ("customer", "lower(last_name)"),
        "ix_customer_search_full_name": ("customer", FULL_NAME),
    },
    "postgresql": {
        "ix_customer_search_email": ("customer", '(email_key) COLLATE "C"'),
        "ix_customer_search_last_name": ("customer", '(lower(last_name)) COLLATE "C"'),
        "ix_customer_search_full_name": ("customer", f'({FULL_NAME}) COLLATE "C"'),
        "ix_privacy_request_search_reference": ("privacy_request", '(reference) COLLATE "C"'),
    },
}


def _name(column: str) -> str:
    return column.removesuffix("_id")


def upgrade() -> None:
    op.create_index(
        "ix_privacy_request_open_by_due",
        "privacy_request",
        [EFFECTIVE_DUE, "id"],
        sqlite_where=OPEN_REQUESTS,
        postgresql_where=OPEN_REQUESTS,
    )
    for column in FILTERS:
        op.create_index(
            f"ix_privacy_request_open_{_name(column)}",
            "privacy_request",
            [column, EFFECTIVE_DUE, "id"],
            sqlite_where=OPEN_REQUESTS,
            postgresql_where=OPEN_REQUESTS,
        )
    for column in ("status", *FILTERS):
        op.create_index(
            f"ix_privacy_request_{_name(column)}_received", "privacy_request", [column, "received_at", "id"]
        )
    for name, (table, expression) in SEARCH_INDEXES[op.get_bind().dialect.name].items():
        op.execute(f"CREATE INDEX {name} ON {table} ({expression})")


def downgrade() -> None:
    for name, (table, _expression) in SEARCH_INDEXES[op.get_bind().dialect.name].items():
        op.drop_index(name, table_name=table)
    for column in ("status", *FILTERS):
        op.drop_index(f"ix_privacy_request_{_name(column)}_received", table_name="privacy_request")
    for column in FILTERS:
        op.drop_index(f"ix_privacy_request_open_{_name(column)}", table_name="privacy_request")
    op.drop_index("ix_privacy_request_open_by_due", table_name="privacy_request")
