"""consent reads in O(purposes): the first grant of a purpose and the history by time are index seeks

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-07 06:40:00
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0013"
down_revision: str | None = "0012"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("consent_event", schema=None) as batch_op:
        batch_op.create_index(
            "ix_consent_event_first_granted", ["customer_id", "purpose", "granted", "occurred_at", "id"], unique=False
        )
        batch_op.create_index("ix_consent_event_customer_time", ["customer_id", "occurred_at", "id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("consent_event", schema=None) as batch_op:
        batch_op.drop_index("ix_consent_event_customer_time")
        batch_op.drop_index("ix_consent_event_first_granted")
