"""Privacy requests (GDPR rights exercised) and their timeline."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import JSON, Column, ForeignKey, Index, Integer, Text, func, text
from sqlmodel import Field, SQLModel

from portal.models.types import UTCDateTime, bytewise

REQUEST_TYPES = ("access", "rectification", "erasure", "portability", "objection", "restriction", "other")
REQUEST_STATUSES = ("received", "in_progress", "awaiting_customer", "completed", "rejected", "cancelled")
OPEN_STATUSES = ("received", "in_progress", "awaiting_customer")


class PrivacyRequest(SQLModel, table=True):
    __tablename__ = "privacy_request"
    __table_args__ = (
        Index("ix_privacy_request_customer", "customer_id", "received_at"),
        Index("ix_privacy_request_open_due", "status", "due_at"),
        # Closed and "all" lists, newest first (bench/staff_queue.py: 100,000 requests).
        Index("ix_privacy_request_received", "received_at", "id"),
    )

    id: int | None = Field(default=None, primary_key=True)
    reference: str = Field(max_length=16, unique=True)  # public, short, non-sequential
    customer_id: int | None = Field(default=None, sa_column=Column(Integer, ForeignKey("customer.id"), nullable=True))
    type: str = Field(max_length=16)
    channel: str = Field(max_length=16)  # web | store | support | email | phone | post
    store_id: int | None = Field(default=None, sa_column=Column(Integer, ForeignKey("store.id"), nullable=True))
    status: str = Field(default="received", max_length=24)
    received_at: datetime = Field(sa_column=Column(UTCDateTime, nullable=False))
    due_at: datetime = Field(sa_column=Column(UTCDateTime, nullable=False))
    extended_due_at: datetime | None = Field(default=None, sa_column=Column(UTCDateTime, nullable=True))
    extension_reason: str | None = Field(default=None, sa_column=Column(Text, nullable=True))
    assignee_id: int | None = None
    # What the customer asked, in their words (e.g. the field, the proposed value and a comment).
    details: dict | None = Field(default=None, sa_column=Column(JSON, nullable=True))
    outcome: str | None = Field(default=None, sa_column=Column(Text, nullable=True))
    closed_at: datetime | None = Field(default=None, sa_column=Column(UTCDateTime, nullable=True))
    version: int = 1  # optimistic locking for concurrent agents
    # A second submission of the same form (double click, reload) finds the first request by this key.
    submission_key: str | None = Field(default=None, max_length=64, unique=True)

    @property
    def effective_due_at(self) -> datetime:
        return self.extended_due_at or self.due_at


class RequestEvent(SQLModel, table=True):
    """One step of a request's timeline: who, when, what, and whether the customer sees it."""

    __tablename__ = "request_event"

    id: int | None = Field(default=None, primary_key=True)
    request_id: int = Field(
        sa_column=Column(Integer, ForeignKey("privacy_request.id", ondelete="CASCADE"), nullable=False, index=True)
    )
    occurred_at: datetime = Field(sa_column=Column(UTCDateTime, nullable=False))
    actor: str = Field(max_length=64)  # customer:<id> | staff:<id> | system
    kind: str = Field(max_length=32)  # received | status_changed | message | note | extended | ...
    note: str | None = Field(default=None, sa_column=Column(Text, nullable=True))
    visible_to_customer: bool = True


# The staff queue at 1,000,000 requests (portal/backoffice/queue.py, bench/staff_queue.py): every filter the page
# offers walks an index in the page's order and stops after one page; nothing sorts the open backlog or scans the table.
_table = PrivacyRequest.__table__  # type: ignore[attr-defined]  # SQLModel's __table__, which mypy does not see
_effective_due = func.coalesce(_table.c.extended_due_at, _table.c.due_at)
# Written as the queue writes it (queue.is_open): a partial index serves only queries whose WHERE visibly implies it.
OPEN_REQUESTS = text("status IN ('received', 'in_progress', 'awaiting_customer')")

# One open status, by the due date that applies (extended or not).
Index("ix_privacy_request_status_effective_due", _table.c.status, _effective_due, _table.c.id)
# Open requests (a few percent of the table): by due date, and by each filter then due date.
Index(
    "ix_privacy_request_open_by_due",
    _effective_due,
    _table.c.id,
    sqlite_where=OPEN_REQUESTS,
    postgresql_where=OPEN_REQUESTS,
)
for _column in ("type", "channel", "store_id", "assignee_id"):
    Index(
        f"ix_privacy_request_open_{_column.removesuffix('_id')}",
        _table.c[_column],
        _effective_due,
        _table.c.id,
        sqlite_where=OPEN_REQUESTS,
        postgresql_where=OPEN_REQUESTS,
    )
# Closed or all requests, newest first: by one status, and by each filter.
for _column in ("status", "type", "channel", "store_id", "assignee_id"):
    Index(
        f"ix_privacy_request_{_column.removesuffix('_id')}_received",
        _table.c[_column],
        _table.c.received_at,
        _table.c.id,
    )
# The search by the start of a reference (SQLite's unique index on reference compares bytewise already).
SEARCH_REFERENCE = bytewise(_table.c.reference)
Index("ix_privacy_request_search_reference", SEARCH_REFERENCE).ddl_if(dialect="postgresql")
