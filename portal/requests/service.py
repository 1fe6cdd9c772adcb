"""Filing requests and reading them back for the customer. Plain values in, plain objects out."""

from __future__ import annotations

import dataclasses
import secrets
from datetime import datetime

from sqlalchemy import select
from sqlmodel import Session

from portal.audit import record_audit
from portal.models import PrivacyRequest, RequestEvent
from portal.models.requests import REQUEST_TYPES
from portal.requests.deadlines import due_at_for

# Crockford's base32 without I, L, O, U: no letters read as digits, nothing rude by accident.
REFERENCE_ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"


def new_reference() -> str:
    """A short, non-sequential public reference such as R-7K2Q-9XMD (40 random bits)."""
    chars = "".join(secrets.choice(REFERENCE_ALPHABET) for _ in range(8))
    return f"R-{chars[:4]}-{chars[4:]}"


def normalise_reference(raw: str) -> str | None:
    """The canonical form of a reference a person typed (case, dashes, O/0 and I/L/1 confusions), or None."""
    cleaned = (raw or "").upper().replace("-", "").replace(" ", "")
    cleaned = cleaned.removeprefix("R")
    cleaned = cleaned.translate(str.maketrans({"O": "0", "I": "1", "L": "1"}))
    if len(cleaned) != 8 or any(c not in REFERENCE_ALPHABET for c in cleaned):
        return None
    return f"R-{cleaned[:4]}-{cleaned[4:]}"


@dataclasses.dataclass(frozen=True)
class FiledRequest:
    id: int
    reference: str
    type: str
    received_at: datetime
    due_at: datetime
    created: bool  # False when an identical submission had already filed it


def file_request(
    session: Session,
    *,
    customer_id: int | None,
    type: str,
    channel: str,
    now: datetime,
    actor: str,
    details: dict | None = None,
    store_id: int | None = None,
    submission_key: str | None = None,
    timezone: str = "Europe/Paris",
    request_id: str | None = None,
) -> FiledRequest:
    """Record a request with its legal due date and the first step of its timeline (and audit it)."""
    if type not in REQUEST_TYPES:
        raise ValueError(f"unknown request type {type!r}")
    if submission_key:
        existing = session.scalars(
            select(PrivacyRequest).where(PrivacyRequest.submission_key == submission_key)
        ).first()
        if existing is not None:
            return _filed(existing, created=False)
    for _attempt in range(5):  # 40 random bits: a collision is rare, and retried rather than trusted away
        reference = new_reference()
        if session.scalars(select(PrivacyRequest.id).where(PrivacyRequest.reference == reference)).first() is None:
            break
    request = PrivacyRequest(
        reference=reference,
        customer_id=customer_id,
        type=type,
        channel=channel,
        store_id=store_id,
        received_at=now,
        due_at=due_at_for(now, timezone=timezone),
        details=details,
        submission_key=submission_key,
    )
    session.add(request)
    session.flush()
    session.add(RequestEvent(request_id=request.id, occurred_at=now, actor=actor, kind="received"))  # type: ignore[arg-type]
    record_audit(
        session,
        actor=actor,
        action="request.received",
        target=f"request:{reference}",
        detail={"type": type, "channel": channel},
        now=now,
        request_id=request_id,
    )
    return _filed(request, created=True)


def _filed(request: PrivacyRequest, *, created: bool) -> FiledRequest:
    return FiledRequest(
        id=request.id,  # type: ignore[arg-type]
        reference=request.reference,
        type=request.type,
        received_at=request.received_at,
        due_at=request.effective_due_at,
        created=created,
    )


@dataclasses.dataclass(frozen=True)
class RequestSummary:
    reference: str
    type: str
    status: str
    channel: str
    received_at: datetime
    due_at: datetime
    extended: bool
    closed_at: datetime | None
    details: dict | None


@dataclasses.dataclass(frozen=True)
class TimelineStep:
    occurred_at: datetime
    kind: str
    note: str | None
    by_customer: bool


def _summary(request: PrivacyRequest) -> RequestSummary:
    return RequestSummary(
        reference=request.reference,
        type=request.type,
        status=request.status,
        channel=request.channel,
        received_at=request.received_at,
        due_at=request.effective_due_at,
        extended=request.extended_due_at is not None,
        closed_at=request.closed_at,
        details=request.details,
    )


def requests_of(session: Session, *, customer_id: int) -> list[RequestSummary]:
    """The customer's requests, newest first."""
    rows = session.scalars(
        select(PrivacyRequest)
        .where(PrivacyRequest.customer_id == customer_id)
        .order_by(PrivacyRequest.received_at.desc(), PrivacyRequest.id.desc())  # type: ignore[attr-defined]
    )
    return [_summary(row) for row in rows]


class RequestNotFound(LookupError):
    """Unknown reference, or another customer's: the same answer, so references cannot be probed."""


def request_of(session: Session, *, customer_id: int, reference: str) -> tuple[RequestSummary, list[TimelineStep]]:
    """One of the customer's requests with the steps of its timeline they may see."""
    canonical = normalise_reference(reference)
    request = (
        session.scalars(
            select(PrivacyRequest).where(
                PrivacyRequest.reference == canonical, PrivacyRequest.customer_id == customer_id
            )
        ).first()
        if canonical
        else None
    )
    if request is None:
        raise RequestNotFound(reference)
    events = session.scalars(
        select(RequestEvent)
        .where(RequestEvent.request_id == request.id, RequestEvent.visible_to_customer.is_(True))  # type: ignore[attr-defined]
        .order_by(RequestEvent.occurred_at, RequestEvent.id)  # type: ignore[arg-type]
    )
    steps = [
        TimelineStep(occurred_at=e.occurred_at, kind=e.kind, note=e.note, by_customer=e.actor.startswith("customer:"))
        for e in events
    ]
    return _summary(request), steps
