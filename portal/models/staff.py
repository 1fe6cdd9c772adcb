"""The people who work requests: support agents, store staff (tablet mode) and the DPO."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Column, ForeignKey, Integer
from sqlalchemy import false as sa_false
from sqlmodel import Field, SQLModel

from portal.models.types import UTCDateTime

# agent: the request queue; store: tablet mode only; dpo: everything, plus staff accounts, reports and audit.
STAFF_ROLES = ("agent", "store", "dpo")


class StaffUser(SQLModel, table=True):
    __tablename__ = "staff_user"

    id: int | None = Field(default=None, primary_key=True)
    email: str = Field(max_length=254)
    email_key: str = Field(max_length=254, unique=True)  # case-folded address used to sign in
    name: str = Field(max_length=100)
    role: str = Field(max_length=16)
    store_id: int | None = Field(default=None, sa_column=Column(Integer, ForeignKey("store.id"), nullable=True))
    password_hash: str = Field(max_length=200)  # argon2id
    # Base32 TOTP secret; verifying a code needs it. Null until the first sign-in enrols an authenticator.
    totp_secret: str | None = Field(default=None, max_length=64)
    totp_confirmed_at: datetime | None = Field(default=None, sa_column=Column(UTCDateTime, nullable=True))
    totp_last_step: int | None = None  # a code is accepted once: replaying the same time step is refused
    # Set for a password someone else chose (a one-time password from `portal staff add` or the DPO): the first
    # sign-in must replace it before anything else.
    password_must_change: bool = Field(default=False, sa_column_kwargs={"server_default": sa_false()})
    failed_attempts: int = 0
    locked_until: datetime | None = Field(default=None, sa_column=Column(UTCDateTime, nullable=True))
    active: bool = True
    created_at: datetime = Field(sa_column=Column(UTCDateTime, nullable=False))
    last_sign_in_at: datetime | None = Field(default=None, sa_column=Column(UTCDateTime, nullable=True))
