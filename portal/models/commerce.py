"""Stores, the web shop, purchases and their lines, and the per-customer totals kept beside them."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, Column, ForeignKey, Index, Integer
from sqlmodel import Field, SQLModel

from portal.models.types import UTCDateTime

STORE_KIND_SHOP = "store"
STORE_KIND_WEB = "web"


class Store(SQLModel, table=True):
    __tablename__ = "store"

    id: int | None = Field(default=None, primary_key=True)
    code: str = Field(max_length=16, unique=True)
    name: str = Field(max_length=100)
    city: str | None = Field(default=None, max_length=100)
    kind: str = Field(default=STORE_KIND_SHOP, max_length=8)  # store | web


class Purchase(SQLModel, table=True):
    __tablename__ = "purchase"
    __table_args__ = (
        # Newest-first listing of one customer's purchases, keyset-paginated on (purchased_at, id).
        Index("ix_purchase_customer_time", "customer_id", "purchased_at", "id"),
    )

    id: int | None = Field(default=None, primary_key=True)
    # Nullable: after erasure a purchase is kept for accounting, detached from the person.
    customer_id: int | None = Field(default=None, sa_column=Column(Integer, ForeignKey("customer.id"), nullable=True))
    store_id: int = Field(sa_column=Column(Integer, ForeignKey("store.id"), nullable=False))
    channel: str = Field(max_length=24)  # in_store | web | click_and_collect
    purchased_at: datetime = Field(sa_column=Column(UTCDateTime, nullable=False))
    receipt_number: str = Field(max_length=32, unique=True)
    total_cents: int = Field(sa_column=Column(BigInteger, nullable=False))
    currency: str = Field(default="EUR", max_length=3)


class PurchaseLine(SQLModel, table=True):
    __tablename__ = "purchase_line"

    id: int | None = Field(default=None, primary_key=True)
    purchase_id: int = Field(
        sa_column=Column(Integer, ForeignKey("purchase.id", ondelete="CASCADE"), nullable=False, index=True)
    )
    sku: str = Field(max_length=32)
    label: str = Field(max_length=200)
    quantity: int
    unit_price_cents: int = Field(sa_column=Column(BigInteger, nullable=False))


class PurchaseTotal(SQLModel, table=True):
    """Purchases of one customer in one store in one year, kept in step with `purchase` by the writers.

    Counting 10,000 scattered purchases on every page view is what made pages slow (bench/); these few rows per
    customer answer the overview and the per-store/per-year totals directly.
    """

    __tablename__ = "purchase_total"

    customer_id: int = Field(sa_column=Column(Integer, ForeignKey("customer.id", ondelete="CASCADE"), primary_key=True))
    store_id: int = Field(sa_column=Column(Integer, ForeignKey("store.id"), primary_key=True))
    year: int = Field(primary_key=True)
    purchase_count: int = 0
    amount_cents: int = Field(default=0, sa_column=Column(BigInteger, nullable=False, default=0))
    first_purchase_at: datetime = Field(sa_column=Column(UTCDateTime, nullable=False))
    last_purchase_at: datetime = Field(sa_column=Column(UTCDateTime, nullable=False))
