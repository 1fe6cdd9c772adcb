"""requests listed newest first by when they were received

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-07 02:15:00
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("privacy_request", schema=None) as batch_op:
        batch_op.create_index("ix_privacy_request_received", ["received_at", "id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("privacy_request", schema=None) as batch_op:
        batch_op.drop_index("ix_privacy_request_received")
