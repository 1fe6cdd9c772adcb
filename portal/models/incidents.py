"""Personal data breaches (GDPR Art. 33-34): the DPO's record of each, and who was told."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import JSON, Column, ForeignKey, Index, Integer, Text, UniqueConstraint
from sqlmodel import Field, SQLModel

from portal.models.types import UTCDateTime


class Incident(SQLModel, table=True):
    __tablename__ = "incident"

    id: int | None = Field(default=None, primary_key=True)
    reference: str = Field(max_length=16, unique=True)  # INC-XXXX-XXXX: what the DPO and the CNIL export name
    discovered_at: datetime = Field(sa_column=Column(UTCDateTime, nullable=False))  # the 72 hours count from here
    recorded_at: datetime = Field(sa_column=Column(UTCDateTime, nullable=False))
    recorded_by: str = Field(max_length=64)
    nature: str = Field(sa_column=Column(Text, nullable=False))
    data_categories: str = Field(max_length=500)  # space-separated codes of the register's data categories
    people_estimate: int
    consequences: str = Field(sa_column=Column(Text, nullable=False))
    measures: str = Field(sa_column=Column(Text, nullable=False))
    cnil_notified_at: datetime | None = Field(default=None, sa_column=Column(UTCDateTime, nullable=True))
    cnil_reference: str | None = Field(default=None, max_length=64)
    # The notice to customers, per language: {"fr": {"nature": …, "consequences": …, "measures": …, "advice": …}}.
    notice: dict | None = Field(default=None, sa_column=Column(JSON, nullable=True))


class IncidentRecipient(SQLModel, table=True):
    """A customer concerned by an incident: selected, then told once (`notified_at`, set with the queued email)."""

    __tablename__ = "incident_recipient"
    __table_args__ = (
        UniqueConstraint("incident_id", "customer_id", name="uq_incident_recipient"),
        Index("ix_incident_recipient_customer", "customer_id"),
    )

    id: int | None = Field(default=None, primary_key=True)
    incident_id: int = Field(
        sa_column=Column(
            Integer,
            ForeignKey("incident.id", ondelete="CASCADE", name="fk_incident_recipient_incident"),
            nullable=False,
        )
    )
    customer_id: int = Field(
        sa_column=Column(
            Integer,
            ForeignKey("customer.id", ondelete="CASCADE", name="fk_incident_recipient_customer"),
            nullable=False,
        )
    )
    selected_at: datetime = Field(sa_column=Column(UTCDateTime, nullable=False))
    selected_by: str = Field(max_length=16)  # store | category | list | file
    notified_at: datetime | None = Field(default=None, sa_column=Column(UTCDateTime, nullable=True))
