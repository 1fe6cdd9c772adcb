"""tombstones keep a keyed hash of the retailer's customer id

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-07 03:30:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("customer", schema=None) as batch_op:
        batch_op.add_column(sa.Column("erased_ref_hash", sqlmodel.sql.sqltypes.AutoString(length=128), nullable=True))
        batch_op.create_index("ix_customer_erased_ref_hash", ["erased_ref_hash"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("customer", schema=None) as batch_op:
        batch_op.drop_index("ix_customer_erased_ref_hash")
        batch_op.drop_column("erased_ref_hash")
