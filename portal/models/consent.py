"""The consent ledger: append-only events; the current state of a purpose is its latest event."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Column, ForeignKey, Index, Integer, Text
from sqlmodel import Field, SQLModel

from portal.models.types import UTCDateTime


class ConsentEvent(SQLModel, table=True):
    __tablename__ = "consent_event"
    __table_args__ = (
        # A purpose's latest answer (its current state) and its timeline: a seek, whatever the ledger's length.
        Index("ix_consent_event_customer_purpose", "customer_id", "purpose", "occurred_at", "id"),
        # The first time a purpose was given ("withdrawn" versus "never given"): a seek, not a walk of the answers.
        Index("ix_consent_event_first_granted", "customer_id", "purpose", "granted", "occurred_at", "id"),
        # The history, newest first, a page at a time (keyset on occurred_at, id).
        Index("ix_consent_event_customer_time", "customer_id", "occurred_at", "id"),
    )

    id: int | None = Field(default=None, primary_key=True)
    customer_id: int = Field(sa_column=Column(Integer, ForeignKey("customer.id"), nullable=False))
    purpose: str = Field(max_length=48)
    granted: bool
    occurred_at: datetime = Field(sa_column=Column(UTCDateTime, nullable=False))
    channel: str = Field(max_length=16)  # web | store | support | api | import
    actor: str = Field(max_length=64)  # customer | staff:<id> | system
    policy_version: str = Field(max_length=32)
    wording_hash: str | None = Field(default=None, max_length=64)


class ConsentWording(SQLModel, table=True):
    """The exact text a customer read when answering, stored once per (purpose, locale, policy version).

    Consent events keep only the SHA-256 of the wording; this table keeps the text behind each hash, so the proof
    of consent (Art. 7(1)) survives later versions of the purpose register.
    """

    __tablename__ = "consent_wording"

    hash: str = Field(primary_key=True, max_length=64)
    purpose: str = Field(max_length=48)
    locale: str = Field(max_length=8)
    policy_version: str = Field(max_length=32)
    text: str = Field(sa_column=Column(Text, nullable=False))
    created_at: datetime = Field(sa_column=Column(UTCDateTime, nullable=False))
