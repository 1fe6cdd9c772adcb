"""Pages viewed on the web shop, recorded only while the customer consents to browsing analytics."""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import Column, ForeignKey, Index, Integer
from sqlmodel import Field, SQLModel

from portal.models.types import UTCDateTime


class PageView(SQLModel, table=True):
    __tablename__ = "page_view"
    __table_args__ = (
        Index("ix_page_view_customer_time", "customer_id", "viewed_at", "id"),
        # Retention deletes the views older than the register's period, oldest first, in batches.
        Index("ix_page_view_viewed_at", "viewed_at"),
    )

    id: int | None = Field(default=None, primary_key=True)
    customer_id: int = Field(sa_column=Column(Integer, ForeignKey("customer.id", ondelete="CASCADE"), nullable=False))
    viewed_at: datetime = Field(sa_column=Column(UTCDateTime, nullable=False))
    url: str = Field(max_length=2000)
    title: str | None = Field(default=None, max_length=300)


class PageViewDay(SQLModel, table=True):
    """Page views of one customer on one day (Europe/Paris), kept in step with `page_view` by the writers."""

    __tablename__ = "page_view_day"
    # Covering index: the overview sums a year of days per customer without touching the table.
    __table_args__ = (Index("ix_page_view_day_counts", "customer_id", "day", "view_count"),)

    customer_id: int = Field(sa_column=Column(Integer, ForeignKey("customer.id", ondelete="CASCADE"), primary_key=True))
    day: date = Field(primary_key=True)
    view_count: int = 0


class PageViewTotal(SQLModel, table=True):
    """All page views of one customer: one row read by the overview, kept in step by the writers."""

    __tablename__ = "page_view_total"

    customer_id: int = Field(sa_column=Column(Integer, ForeignKey("customer.id", ondelete="CASCADE"), primary_key=True))
    view_count: int = 0
    last_viewed_at: datetime = Field(sa_column=Column(UTCDateTime, nullable=False))
