"""Append to the audit trail. Callers pass references (customer:12, request:R-7K2Q), never personal data."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, insert
from sqlmodel import Session

from portal.db import as_connection
from portal.models import AuditEvent


def record_audit(
    db: Session | Connection,
    *,
    actor: str,
    action: str,
    now: datetime,
    target: str | None = None,
    detail: dict | None = None,
    request_id: str | None = None,
) -> None:
    """Add one audit event to the caller's transaction (a prebuilt Core insert: no ORM object, no flush)."""
    as_connection(db).execute(
        _INSERT_AUDIT,
        {
            "occurred_at": now,
            "actor": actor,
            "action": action,
            "target": target,
            "detail": detail,
            "request_id": request_id,
        },
    )


# A Core insert into the table, built once: the ORM's bulk path cost as much again per call on the consent toggle's
# hot path (bench/README.md).
_INSERT_AUDIT = insert(AuditEvent.__table__)  # type: ignore[attr-defined]


def record_audits(session: Session, events: Sequence[Mapping[str, Any]], *, now: datetime) -> None:
    """Add many audit events (actor, action, target, detail) in one statement: an import's thousands of changes."""
    if events:
        session.execute(
            _INSERT_AUDIT,
            [{"occurred_at": now, "target": None, "detail": None, "request_id": None, **event} for event in events],
        )


def staff_id_of(reference: str | None) -> int | None:
    """The staff id an actor or target reference names (`staff:12` → 12); None for anyone or anything else."""
    kind, _, number = (reference or "").partition(":")
    return int(number) if kind == "staff" and number.isdigit() and len(number) < 19 else None
