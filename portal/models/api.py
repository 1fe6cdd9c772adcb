"""What the retailer's systems use: API keys (stored hashed, scoped) and the webhook endpoints events go to."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Column
from sqlmodel import Field, SQLModel

from portal.models.types import UTCDateTime

# What a key may do. A marketing tool reads consents; a till records them; the web shop sends browsing events.
API_SCOPES = ("consents:read", "consents:write", "browsing:write", "customers:write", "purchases:write")
WEBHOOK_TOPICS = ("consent.changed", "customer.rectified", "customer.erased", "customer.merged")


class ApiKey(SQLModel, table=True):
    """A key is shown once at creation as `<prefix>.<secret>`; only the prefix and a keyed hash are kept."""

    __tablename__ = "api_key"

    id: int | None = Field(default=None, primary_key=True)
    prefix: str = Field(max_length=24, unique=True)  # public part, names the key in logs and the audit trail
    secret_hash: str = Field(max_length=64)
    name: str = Field(max_length=100)  # what the retailer calls it: "CRM", "tills", "web shop"
    scopes: str = Field(max_length=200)  # space-separated API_SCOPES
    created_at: datetime = Field(sa_column=Column(UTCDateTime, nullable=False))
    last_used_at: datetime | None = Field(default=None, sa_column=Column(UTCDateTime, nullable=True))
    revoked_at: datetime | None = Field(default=None, sa_column=Column(UTCDateTime, nullable=True))

    @property
    def scope_set(self) -> frozenset[str]:
        return frozenset(self.scopes.split())


class WebhookEndpoint(SQLModel, table=True):
    """A receiver in the retailer's systems. Each event is queued once per active endpoint subscribed to it."""

    __tablename__ = "webhook_endpoint"

    id: int | None = Field(default=None, primary_key=True)
    url: str = Field(max_length=500)
    topics: str = Field(max_length=200)  # space-separated WEBHOOK_TOPICS
    # Signing needs the secret itself (HMAC), so it is kept; it is shown once, when the endpoint is added.
    secret: str = Field(max_length=64)
    description: str = Field(default="", max_length=100)
    created_at: datetime = Field(sa_column=Column(UTCDateTime, nullable=False))
    disabled_at: datetime | None = Field(default=None, sa_column=Column(UTCDateTime, nullable=True))

    @property
    def topic_set(self) -> frozenset[str]:
        return frozenset(self.topics.split())
