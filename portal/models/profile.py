"""Rectification history and pending email changes.

Before/after values of a rectification are personal data: they live here, with the customer (and go with them at
erasure), while the audit trail records only which fields changed and references this row.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Column, ForeignKey, Index, Integer, Text
from sqlmodel import Field, SQLModel

from portal.models.types import UTCDateTime


class ProfileChange(SQLModel, table=True):
    __tablename__ = "profile_change"
    __table_args__ = (Index("ix_profile_change_customer_field", "customer_id", "field", "changed_at"),)

    id: int | None = Field(default=None, primary_key=True)
    customer_id: int = Field(sa_column=Column(Integer, ForeignKey("customer.id", ondelete="CASCADE"), nullable=False))
    field: str = Field(max_length=32)
    old_value: str | None = Field(default=None, sa_column=Column(Text, nullable=True))
    new_value: str | None = Field(default=None, sa_column=Column(Text, nullable=True))
    changed_at: datetime = Field(sa_column=Column(UTCDateTime, nullable=False))
    actor: str = Field(max_length=64)
    channel: str = Field(max_length=16)  # web | store | support | api | import


class EmailChange(SQLModel, table=True):
    """A new address waiting for its owner to confirm it; nothing changes until then."""

    __tablename__ = "email_change"

    id: int | None = Field(default=None, primary_key=True)
    customer_id: int = Field(
        sa_column=Column(Integer, ForeignKey("customer.id", ondelete="CASCADE"), nullable=False, index=True)
    )
    new_email: str = Field(max_length=254)
    token_hash: str = Field(max_length=64, unique=True)
    created_at: datetime = Field(sa_column=Column(UTCDateTime, nullable=False))
    expires_at: datetime = Field(sa_column=Column(UTCDateTime, nullable=False))
    confirmed_at: datetime | None = Field(default=None, sa_column=Column(UTCDateTime, nullable=True))
    voided_at: datetime | None = Field(default=None, sa_column=Column(UTCDateTime, nullable=True))
