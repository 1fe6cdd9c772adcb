"""Writing to the outbox: in the caller's transaction, so a message exists exactly when its action does.

Webhook events tell the retailer's systems (GDPR Art. 19: recipients are told of every rectification and erasure);
they carry references (our customer id, the retailer's own id when known), never names, addresses or values.
"""

from __future__ import annotations

import secrets
from collections.abc import Sequence
from datetime import datetime
from typing import Any, Protocol

from sqlalchemy import Connection, insert
from sqlmodel import Session

from portal.db import as_connection, note_outbox_written
from portal.mail.compose import ComposedEmail
from portal.models import WEBHOOK_TOPICS, OutboxMessage


def enqueue_email(db: Session | Connection, *, email: ComposedEmail, topic: str, now: datetime) -> int:
    """Queue `email` for the worker; it leaves only if the surrounding transaction commits. Returns the row's id."""
    # The Message-ID is drawn once, here: every retry sends the same one, so a receiver can drop the duplicate a
    # relay makes when it accepted a message and then timed out before saying so.
    payload = {**email.as_payload(), "message_key": secrets.token_hex(16)}
    row = {
        "kind": "email",
        "topic": topic,
        "payload": payload,
        "created_at": now,
        "next_attempt_at": now,
        "attempts": 0,
    }
    # On the session's connection (the session's own execute path cost as much again as the insert), telling
    # db.py's outbox watch itself, so that the worker is woken once the transaction commits.
    result = as_connection(db).execute(_INSERT_MESSAGE, row)
    note_outbox_written(db)
    key = result.inserted_primary_key
    assert key is not None
    return int(key[0])


class NamedCustomer(Protocol):
    """What names a customer in an event: a Customer, or a row of its columns."""

    @property
    def id(self) -> int | None: ...
    @property
    def retailer_ref(self) -> str | None: ...


def customer_reference(customer: NamedCustomer) -> dict[str, object]:
    """How an event names a customer: our id and, when we know it, the retailer's own (CRM, tills) id."""
    return {"customer_id": customer.id, "retailer_customer_id": customer.retailer_ref}


def queue_webhook(db: Session | Connection, *, topic: str, payload: dict, now: datetime) -> None:
    """Queue the event `topic` with `payload` as its data; it exists only if the caller's transaction commits."""
    as_connection(db).execute(_INSERT_MESSAGE, _webhook_row(topic, payload, now))
    note_outbox_written(db)


# A Core insert into the table, built once (the ORM's bulk path cost as much again on the consent toggle, see
# bench/README.md). db.py's outbox watch sees it: through the session (queue_webhooks), or told (note_outbox_written).
_INSERT_MESSAGE = insert(OutboxMessage.__table__)  # type: ignore[attr-defined]


def queue_webhooks(session: Session, *, topic: str, payloads: Sequence[dict], now: datetime) -> None:
    """Queue one event of `topic` per payload in one statement: an import's thousands of changes, at the cost of one."""
    if payloads:
        session.execute(_INSERT_MESSAGE, [_webhook_row(topic, payload, now) for payload in payloads])


def _webhook_row(topic: str, payload: dict, now: datetime) -> dict[str, Any]:
    if topic not in WEBHOOK_TOPICS:
        raise ValueError(f"unknown webhook topic {topic!r}")
    event = {
        "id": f"evt_{secrets.token_urlsafe(18)}",
        "type": topic,
        "created_at": now.isoformat(),
        "data": payload,
    }
    # endpoint_id NULL marks the event itself; the worker turns it into one delivery per subscribed endpoint.
    return {
        "kind": "webhook",
        "topic": topic,
        "payload": event,
        "created_at": now,
        "next_attempt_at": now,
        "attempts": 0,
    }
