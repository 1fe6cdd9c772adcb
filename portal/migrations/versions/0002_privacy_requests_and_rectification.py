"""privacy requests and rectification

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-23 12:32:39.312579
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

import portal.models.types

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "email_change",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("customer_id", sa.Integer(), nullable=False),
        sa.Column("new_email", sqlmodel.sql.sqltypes.AutoString(length=254), nullable=False),
        sa.Column("token_hash", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("created_at", portal.models.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("expires_at", portal.models.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("confirmed_at", portal.models.types.UTCDateTime(timezone=True), nullable=True),
        sa.Column("voided_at", portal.models.types.UTCDateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(["customer_id"], ["customer.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("token_hash"),
    )
    with op.batch_alter_table("email_change", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_email_change_customer_id"), ["customer_id"], unique=False)

    op.create_table(
        "privacy_request",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("reference", sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
        sa.Column("customer_id", sa.Integer(), nullable=True),
        sa.Column("type", sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
        sa.Column("channel", sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
        sa.Column("store_id", sa.Integer(), nullable=True),
        sa.Column("status", sqlmodel.sql.sqltypes.AutoString(length=24), nullable=False),
        sa.Column("received_at", portal.models.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("due_at", portal.models.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("extended_due_at", portal.models.types.UTCDateTime(timezone=True), nullable=True),
        sa.Column("extension_reason", sa.Text(), nullable=True),
        sa.Column("assignee_id", sa.Integer(), nullable=True),
        sa.Column("details", sa.JSON(), nullable=True),
        sa.Column("outcome", sa.Text(), nullable=True),
        sa.Column("closed_at", portal.models.types.UTCDateTime(timezone=True), nullable=True),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("submission_key", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=True),
        sa.ForeignKeyConstraint(
            ["customer_id"],
            ["customer.id"],
        ),
        sa.ForeignKeyConstraint(
            ["store_id"],
            ["store.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("reference"),
        sa.UniqueConstraint("submission_key"),
    )
    with op.batch_alter_table("privacy_request", schema=None) as batch_op:
        batch_op.create_index("ix_privacy_request_customer", ["customer_id", "received_at"], unique=False)
        batch_op.create_index("ix_privacy_request_open_due", ["status", "due_at"], unique=False)

    op.create_table(
        "profile_change",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("customer_id", sa.Integer(), nullable=False),
        sa.Column("field", sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
        sa.Column("old_value", sa.Text(), nullable=True),
        sa.Column("new_value", sa.Text(), nullable=True),
        sa.Column("changed_at", portal.models.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("actor", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("channel", sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
        sa.ForeignKeyConstraint(["customer_id"], ["customer.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("profile_change", schema=None) as batch_op:
        batch_op.create_index("ix_profile_change_customer_field", ["customer_id", "field", "changed_at"], unique=False)

    op.create_table(
        "request_event",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("request_id", sa.Integer(), nullable=False),
        sa.Column("occurred_at", portal.models.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("actor", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("kind", sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
        sa.Column("note", sa.Text(), nullable=True),
        sa.Column("visible_to_customer", sa.Boolean(), nullable=False),
        sa.ForeignKeyConstraint(["request_id"], ["privacy_request.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("request_event", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_request_event_request_id"), ["request_id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("request_event", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_request_event_request_id"))

    op.drop_table("request_event")
    with op.batch_alter_table("profile_change", schema=None) as batch_op:
        batch_op.drop_index("ix_profile_change_customer_field")

    op.drop_table("profile_change")
    with op.batch_alter_table("privacy_request", schema=None) as batch_op:
        batch_op.drop_index("ix_privacy_request_open_due")
        batch_op.drop_index("ix_privacy_request_customer")

    op.drop_table("privacy_request")
    with op.batch_alter_table("email_change", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_email_change_customer_id"))

    op.drop_table("email_change")
