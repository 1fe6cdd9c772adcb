"""the website consent banner: visitors' answers in the consent ledger, linked visitors, monthly banner counts

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-07 06:30:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

import portal.models.types

revision: str = "0010"
down_revision: str | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("consent_event", schema=None) as batch_op:
        batch_op.add_column(sa.Column("visitor_id", sqlmodel.sql.sqltypes.AutoString(length=36), nullable=True))
        batch_op.add_column(sa.Column("banner_version", sqlmodel.sql.sqltypes.AutoString(length=16), nullable=True))
        batch_op.alter_column("customer_id", existing_type=sa.Integer(), nullable=True)
        batch_op.create_check_constraint("ck_consent_event_whose", "customer_id IS NOT NULL OR visitor_id IS NOT NULL")
        batch_op.create_index(
            "ix_consent_event_visitor_purpose", ["visitor_id", "purpose", "occurred_at", "id"], unique=False
        )
    op.create_table(
        "website_visitor",
        sa.Column("visitor_id", sqlmodel.sql.sqltypes.AutoString(length=36), nullable=False),
        sa.Column("customer_id", sa.Integer(), nullable=False),
        sa.Column("linked_at", portal.models.types.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["customer_id"], ["customer.id"]),
        sa.PrimaryKeyConstraint("visitor_id"),
    )
    op.create_index("ix_website_visitor_customer", "website_visitor", ["customer_id"], unique=False)
    op.create_table(
        "banner_tally",
        sa.Column("month", sqlmodel.sql.sqltypes.AutoString(length=7), nullable=False),
        sa.Column("metric", sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
        sa.Column("purpose", sqlmodel.sql.sqltypes.AutoString(length=48), nullable=False),
        sa.Column("count", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("month", "metric", "purpose"),
    )


def downgrade() -> None:
    op.drop_table("banner_tally")
    op.drop_index("ix_website_visitor_customer", table_name="website_visitor")
    op.drop_table("website_visitor")
    # Visitors' answers never linked to a customer have no place in the older schema.
    op.execute("DELETE FROM consent_event WHERE customer_id IS NULL")
    with op.batch_alter_table("consent_event", schema=None) as batch_op:
        batch_op.drop_index("ix_consent_event_visitor_purpose")
        batch_op.drop_constraint("ck_consent_event_whose", type_="check")
        batch_op.alter_column("customer_id", existing_type=sa.Integer(), nullable=False)
        batch_op.drop_column("banner_version")
        batch_op.drop_column("visitor_id")
