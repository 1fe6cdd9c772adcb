"""queue and erased address indexes; staff passwords that must be changed

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-23 14:35:18.718238
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("staff_user", schema=None) as batch_op:
        batch_op.add_column(sa.Column("password_must_change", sa.Boolean(), server_default=sa.false(), nullable=False))
    with op.batch_alter_table("customer", schema=None) as batch_op:
        batch_op.create_index("ix_customer_erased_email_hash", ["erased_email_hash"], unique=False)
    # An expression index (autogenerate cannot see those): the queue orders open requests by the due date that applies.
    op.create_index(
        "ix_privacy_request_status_effective_due",
        "privacy_request",
        ["status", sa.text("coalesce(extended_due_at, due_at)"), "id"],
    )


def downgrade() -> None:
    with op.batch_alter_table("staff_user", schema=None) as batch_op:
        batch_op.drop_column("password_must_change")
    op.drop_index("ix_privacy_request_status_effective_due", table_name="privacy_request")
    with op.batch_alter_table("customer", schema=None) as batch_op:
        batch_op.drop_index("ix_customer_erased_email_hash")
