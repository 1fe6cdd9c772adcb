"""personal data breaches and the customers told of them; page views by time, for retention

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-07 04:25:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

import portal.models.types

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "incident",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("reference", sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
        sa.Column("discovered_at", portal.models.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("recorded_at", portal.models.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("recorded_by", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("nature", sa.Text(), nullable=False),
        sa.Column("data_categories", sqlmodel.sql.sqltypes.AutoString(length=500), nullable=False),
        sa.Column("people_estimate", sa.Integer(), nullable=False),
        sa.Column("consequences", sa.Text(), nullable=False),
        sa.Column("measures", sa.Text(), nullable=False),
        sa.Column("cnil_notified_at", portal.models.types.UTCDateTime(timezone=True), nullable=True),
        sa.Column("cnil_reference", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=True),
        sa.Column("notice", sa.JSON(), nullable=True),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("reference"),
    )
    op.create_table(
        "incident_recipient",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("incident_id", sa.Integer(), nullable=False),
        sa.Column("customer_id", sa.Integer(), nullable=False),
        sa.Column("selected_at", portal.models.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("selected_by", sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
        sa.Column("notified_at", portal.models.types.UTCDateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["customer_id"], ["customer.id"], name="fk_incident_recipient_customer", ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["incident_id"], ["incident.id"], name="fk_incident_recipient_incident", ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("incident_id", "customer_id", name="uq_incident_recipient"),
    )
    op.create_index("ix_incident_recipient_customer", "incident_recipient", ["customer_id"], unique=False)
    with op.batch_alter_table("page_view", schema=None) as batch_op:
        batch_op.create_index("ix_page_view_viewed_at", ["viewed_at"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("page_view", schema=None) as batch_op:
        batch_op.drop_index("ix_page_view_viewed_at")
    op.drop_index("ix_incident_recipient_customer", table_name="incident_recipient")
    op.drop_table("incident_recipient")
    op.drop_table("incident")
