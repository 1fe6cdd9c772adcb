"""The consent ledger: append-only events; the current state of a purpose is its latest event.

An event belongs to a customer, or to an anonymous website visitor (the consent banner's random visitor id) until
the web shop says which customer that visitor is (`WebsiteVisitor`): the visitor's events then join that customer's
ledger, keeping the visitor id as the proof key of the answer given on the website.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import CheckConstraint, Column, ForeignKey, Index, Integer, Text
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
        Index("ix_consent_event_visitor_purpose", "visitor_id", "purpose", "occurred_at", "id"),
        CheckConstraint("customer_id IS NOT NULL OR visitor_id IS NOT NULL", name="ck_consent_event_whose"),
    )

    id: int | None = Field(default=None, primary_key=True)
    # None only for an anonymous website visitor's answer, until the visitor is linked to a customer.
    customer_id: int | None = Field(default=None, sa_column=Column(Integer, ForeignKey("customer.id"), nullable=True))
    purpose: str = Field(max_length=48)
    granted: bool
    occurred_at: datetime = Field(sa_column=Column(UTCDateTime, nullable=False))
    channel: str = Field(max_length=16)  # web | store | support | api | import | website
    actor: str = Field(max_length=64)  # customer | staff:<id> | system | visitor
    policy_version: str = Field(max_length=32)
    wording_hash: str | None = Field(default=None, max_length=64)
    # Answers given in the consent banner on the retailer's website: the visitor id (random, first-party) and the
    # version of the banner that asked.
    visitor_id: str | None = Field(default=None, max_length=36)
    banner_version: str | None = Field(default=None, max_length=16)


class WebsiteVisitor(SQLModel, table=True):
    """A website visitor the web shop identified as a customer (at sign-in or checkout): nothing else is kept about
    visitors. Only the latest customer is kept: on a shared computer, the banner follows whoever signed in last."""

    __tablename__ = "website_visitor"
    __table_args__ = (Index("ix_website_visitor_customer", "customer_id"),)

    visitor_id: str = Field(primary_key=True, max_length=36)
    customer_id: int = Field(sa_column=Column(Integer, ForeignKey("customer.id"), nullable=False))
    linked_at: datetime = Field(sa_column=Column(UTCDateTime, nullable=False))


class BannerTally(SQLModel, table=True):
    """Counts of what the website banner was shown and answered, per month (portal time zone), for the DPO's report.

    Counters, not events: they say how many, never who (no visitor id, no address, no time finer than the month).
    `purpose` is "" for the counts that concern the whole banner (shown, accept_all, refuse_all, custom, gpc).
    """

    __tablename__ = "banner_tally"

    month: str = Field(primary_key=True, max_length=7)  # YYYY-MM
    metric: str = Field(primary_key=True, max_length=16)
    purpose: str = Field(primary_key=True, max_length=48, default="")
    count: int = 0


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
