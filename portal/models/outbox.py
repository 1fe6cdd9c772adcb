"""Messages written in the same transaction as the action that caused them, delivered by the worker."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import JSON, Column, ForeignKey, Index, Integer, Text
from sqlmodel import Field, SQLModel

from portal.models.types import UTCDateTime


class OutboxMessage(SQLModel, table=True):
    __tablename__ = "outbox_message"
    __table_args__ = (Index("ix_outbox_due", "sent_at", "next_attempt_at"),)

    id: int | None = Field(default=None, primary_key=True)
    kind: str = Field(max_length=16)  # email | webhook
    topic: str = Field(max_length=64)  # e.g. the email template name, or the webhook event type
    # Webhooks: the receiver this copy of the event goes to (one message per subscribed endpoint).
    endpoint_id: int | None = Field(
        default=None,
        sa_column=Column(
            Integer,
            ForeignKey("webhook_endpoint.id", ondelete="CASCADE", name="fk_outbox_message_endpoint_id"),
            nullable=True,
        ),
    )
    # Rendered message. Emails can carry sign-in links, so the body is cleared once delivered.
    payload: dict | None = Field(default=None, sa_column=Column(JSON, nullable=True))
    created_at: datetime = Field(sa_column=Column(UTCDateTime, nullable=False))
    attempts: int = 0
    next_attempt_at: datetime = Field(sa_column=Column(UTCDateTime, nullable=False))
    locked_until: datetime | None = Field(default=None, sa_column=Column(UTCDateTime, nullable=True))
    sent_at: datetime | None = Field(default=None, sa_column=Column(UTCDateTime, nullable=True))
    last_error: str | None = Field(default=None, sa_column=Column(Text, nullable=True))
