"""What sign-in needs: login challenges, server-side sessions and rate-limit counters."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Column, ForeignKey, Index, Integer
from sqlmodel import Field, SQLModel

from portal.models.types import UTCDateTime


class LoginChallenge(SQLModel, table=True):
    """One emailed link + code. Holds keyed hashes only, never the token, the code or the address."""

    __tablename__ = "login_challenge"
    __table_args__ = (Index("ix_login_challenge_email_digest", "email_digest", "created_at"),)

    id: int | None = Field(default=None, primary_key=True)
    flow_id: str = Field(max_length=64, unique=True)  # ties the code form to this challenge (signed cookie)
    email_digest: str = Field(max_length=64)  # HMAC of the address: voids older challenges, no plaintext kept
    customer_id: int | None = Field(
        default=None, sa_column=Column(Integer, ForeignKey("customer.id", ondelete="CASCADE"), nullable=True)
    )
    token_hash: str = Field(max_length=64, unique=True)
    code_hash: str = Field(max_length=64)
    language: str = Field(default="fr", max_length=8)
    created_at: datetime = Field(sa_column=Column(UTCDateTime, nullable=False))
    expires_at: datetime = Field(sa_column=Column(UTCDateTime, nullable=False))
    attempts: int = 0
    used_at: datetime | None = Field(default=None, sa_column=Column(UTCDateTime, nullable=True))
    voided_at: datetime | None = Field(default=None, sa_column=Column(UTCDateTime, nullable=True))


class Session(SQLModel, table=True):
    """A signed-in browser. The cookie carries a signed random id; only its keyed hash is stored."""

    __tablename__ = "session"

    id: int | None = Field(default=None, primary_key=True)
    id_hash: str = Field(max_length=64, unique=True)
    kind: str = Field(max_length=16)  # customer | tablet | staff
    customer_id: int | None = Field(
        default=None, sa_column=Column(Integer, ForeignKey("customer.id", ondelete="CASCADE"), nullable=True)
    )
    staff_id: int | None = Field(
        default=None,
        sa_column=Column(
            Integer, ForeignKey("staff_user.id", ondelete="CASCADE", name="fk_session_staff_id"), nullable=True
        ),
    )
    created_at: datetime = Field(sa_column=Column(UTCDateTime, nullable=False))
    last_seen_at: datetime = Field(sa_column=Column(UTCDateTime, nullable=False))
    idle_expires_at: datetime = Field(sa_column=Column(UTCDateTime, nullable=False))
    absolute_expires_at: datetime = Field(sa_column=Column(UTCDateTime, nullable=False))
    ended_at: datetime | None = Field(default=None, sa_column=Column(UTCDateTime, nullable=True))


class RateLimit(SQLModel, table=True):
    """A fixed-window counter, kept in the database so that every app process sees the same count."""

    __tablename__ = "rate_limit"

    key: str = Field(max_length=128, primary_key=True)
    window_start: datetime = Field(sa_column=Column(UTCDateTime, primary_key=True))
    count: int = 0
