"""The consent ledger: append-only events; the current state of a purpose is its latest event."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Column, ForeignKey, Index, Integer
from sqlmodel import Field, SQLModel

from portal.models.types import UTCDateTime


class ConsentEvent(SQLModel, table=True):
    __tablename__ = "consent_event"
    __table_args__ = (Index("ix_consent_event_customer_purpose", "customer_id", "purpose", "occurred_at", "id"),)

    id: int | None = Field(default=None, primary_key=True)
    customer_id: int = Field(sa_column=Column(Integer, ForeignKey("customer.id"), nullable=False))
    purpose: str = Field(max_length=48)
    granted: bool
    occurred_at: datetime = Field(sa_column=Column(UTCDateTime, nullable=False))
    channel: str = Field(max_length=16)  # web | store | support | api | import
    actor: str = Field(max_length=64)  # customer | staff:<id> | system
    policy_version: str = Field(max_length=32)
    wording_hash: str | None = Field(default=None, max_length=64)
