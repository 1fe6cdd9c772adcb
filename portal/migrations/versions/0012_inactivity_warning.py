"""customers are warned before the inactivity rule anonymises them: when they were last warned

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-07 06:50:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import portal.models.types

revision: str = "0012"
down_revision: str | None = "0011"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("customer") as batch:
        batch.add_column(
            sa.Column("inactivity_warned_at", portal.models.types.UTCDateTime(timezone=True), nullable=True)
        )


def downgrade() -> None:
    # A plain DROP COLUMN (SQLite 3.35+), not batch mode: batch mode rebuilds the table on SQLite and loses the
    # expression indexes of the staff search (0011), which SQLite's reflection does not report.
    op.drop_column("customer", "inactivity_warned_at")
