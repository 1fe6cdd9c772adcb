"""The store tablet: assisted sessions opened with the customer's emailed code, requests filed on a customer's behalf
after an identity document was checked in person, and the store's log of the day.

Every step is audited with the store as target (`store:<id>`) and the staff member as actor, so "who did what at
this till" is one indexed query on the audit trail, and the log shows no personal data.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from datetime import datetime, time, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlmodel import Session

from portal.audit import record_audit
from portal.identity import service as signin
from portal.identity.sessions import end_session, session_row
from portal.mail.compose import EmailComposer
from portal.models import AuditEvent, StaffUser, Store
from portal.portability.service import send_download_link
from portal.requests.service import FiledRequest, file_request
from portal.settings import Settings

# What a customer without access to their email may ask for at the till (Art. 15–21).
ON_BEHALF_TYPES = ("access", "rectification", "erasure", "objection", "restriction", "other")
# Looked at, never copied or kept (EDPB 01/2022): only the kind is recorded.
DOCUMENT_KINDS = ("identity_card", "passport", "driving_licence", "residence_permit")
ANSWER_BY = ("post", "phone")
LOG_ACTIONS = (
    "tablet.session_opened",
    "tablet.session_finished",
    "tablet.archive_emailed",
    "tablet.request_on_behalf",
)
FIELD_LIMITS = {"first_name": 100, "last_name": 100, "answer_contact": 300, "description": 2000}


class NotAStoreAccount(Exception):
    """The staff account is bound to no store: it cannot run a tablet."""


@dataclasses.dataclass(frozen=True)
class StoreName:
    id: int
    code: str
    name: str
    city: str | None


def store_named(session: Session, *, store_id: int | None) -> StoreName:
    store = session.get(Store, store_id) if store_id is not None else None
    if store is None or store.id is None:
        raise NotAStoreAccount()
    return StoreName(id=store.id, code=store.code, name=store.name, city=store.city)


def _audit(
    session: Session,
    *,
    staff_id: int,
    store_id: int,
    action: str,
    now: datetime,
    request_id: str | None,
    **detail: object,
) -> None:
    record_audit(
        session,
        actor=f"staff:{staff_id}",
        action=action,
        target=f"store:{store_id}",
        detail=dict(detail) or None,
        now=now,
        request_id=request_id,
    )


# --- Assisted sessions -------------------------------------------------------------------------------------------


def request_code(
    session: Session,
    *,
    settings: Settings,
    composer: EmailComposer,
    email: str,
    language: str,
    ip: str,
    now: datetime,
    request_id: str | None = None,
) -> str:
    """Email the customer their code, with self-service's rules (limits, same answer for unknown addresses)."""
    return signin.request_sign_in(
        session,
        settings=settings,
        composer=composer,
        email=email,
        language=language,
        ip=ip,
        now=now,
        request_id=request_id,
    )


def open_assisted_session(
    session: Session,
    *,
    settings: Settings,
    flow_id: str,
    code: str,
    ip: str,
    staff_id: int,
    store_id: int,
    now: datetime,
    request_id: str | None = None,
) -> signin.SignedIn:
    """The customer's code opens a `tablet` session tied to the staff member (and through them, the store)."""
    signed_in = signin.sign_in_with_code(
        session,
        settings=settings,
        flow_id=flow_id,
        code=code,
        ip=ip,
        now=now,
        request_id=request_id,
        kind="tablet",
        staff_id=staff_id,
    )
    _audit(
        session, staff_id=staff_id, store_id=store_id, action="tablet.session_opened", now=now, request_id=request_id
    )
    return signed_in


def finish_assisted_session(
    session: Session, *, settings: Settings, raw_id: str, now: datetime, request_id: str | None = None
) -> bool:
    """End a tablet session at once (a copied cookie is worthless afterwards); False when there was none live."""
    row = session_row(session, settings=settings, raw_id=raw_id)
    if row is None or row.kind != "tablet" or row.ended_at is not None:
        return False
    end_session(session, settings=settings, raw_id=raw_id, now=now)
    staff = session.get(StaffUser, row.staff_id) if row.staff_id is not None else None
    if staff is not None and staff.store_id is not None and staff.id is not None:
        _audit(
            session,
            staff_id=staff.id,
            store_id=staff.store_id,
            action="tablet.session_finished",
            now=now,
            request_id=request_id,
        )
    return True


def email_archive(
    session: Session,
    *,
    customer_id: int,
    staff_id: int,
    store_id: int,
    composer: EmailComposer,
    settings: Settings,
    now: datetime,
    timezone: str,
    request_id: str | None = None,
) -> FiledRequest:
    """Portability from a tablet: no file lands on the shared device; the customer is emailed the 7-day link.

    Raises portability.DownloadLinkRefused when the customer has no address to send it to.
    """
    actor = f"staff:{staff_id}"
    filed = file_request(
        session,
        customer_id=customer_id,
        type="portability",
        channel="store",
        store_id=store_id,
        now=now,
        actor=actor,
        timezone=timezone,
        request_id=request_id,
    )
    send_download_link(
        session,
        customer_id=customer_id,
        reference=filed.reference,
        actor=actor,
        now=now,
        composer=composer,
        settings=settings,
        request_id=request_id,
    )
    _audit(
        session, staff_id=staff_id, store_id=store_id, action="tablet.archive_emailed", now=now, request_id=request_id
    )
    return filed


# --- On the customer's behalf ------------------------------------------------------------------------------------


class OnBehalfInvalid(ValueError):
    def __init__(self, errors: dict[str, str], values: Mapping[str, str]) -> None:
        super().__init__("on-behalf request refused")
        self.errors = errors
        self.values = dict(values)


def clean_on_behalf(form: Mapping[str, str]) -> tuple[dict[str, str], dict[str, str]]:
    """(details, errors by field). Error codes are translated by the view."""
    values = {key: " ".join(str(form.get(key, "")).split()) for key in ("type", "document_kind", "answer_by")}
    for key, limit in FIELD_LIMITS.items():
        values[key] = str(form.get(key, "")).strip()
        if len(values[key]) > limit:
            values[key] = values[key][:limit]
    errors: dict[str, str] = {}
    if values["type"] not in ON_BEHALF_TYPES:
        errors["type"] = "type_missing"
    if not values["first_name"] and not values["last_name"]:
        errors["last_name"] = "name_missing"
    if values["document_kind"] not in DOCUMENT_KINDS:
        errors["document_kind"] = "document_missing"
    if form.get("identity_checked") != "yes":
        errors["identity_checked"] = "identity_not_checked"
    if values["answer_by"] not in ANSWER_BY:
        errors["answer_by"] = "answer_by_missing"
    if len(values["answer_contact"]) < 5:
        errors["answer_contact"] = "contact_missing"
    if not values["description"] and values["type"] in ("rectification", "other"):
        errors["description"] = "description_missing"
    return values, errors


def file_on_behalf(
    session: Session,
    *,
    staff_id: int,
    store_id: int,
    form: Mapping[str, str],
    now: datetime,
    timezone: str,
    request_id: str | None = None,
) -> FiledRequest:
    """File a request for a customer who cannot reach their email, identity checked in person by `staff_id`.

    Records that the check happened, by whom, when and the kind of document — never its number or a copy — and
    how the customer wants the answer. The back office matches the customer; the tablet shows nothing of them.
    """
    values, errors = clean_on_behalf(form)
    if errors:
        raise OnBehalfInvalid(errors, form)
    details: dict[str, object] = {
        "identity_checked_in_store": True,
        "checked_by": f"staff:{staff_id}",
        "checked_at": now.isoformat(),
        "document_kind": values["document_kind"],
        "first_name": values["first_name"],
        "last_name": values["last_name"],
        "answer_by": values["answer_by"],
        "answer_contact": values["answer_contact"],
        "description": values["description"],
    }
    filed = file_request(
        session,
        customer_id=None,
        type=values["type"],
        channel="store",
        store_id=store_id,
        now=now,
        actor=f"staff:{staff_id}",
        details=details,
        timezone=timezone,
        request_id=request_id,
    )
    _audit(
        session,
        staff_id=staff_id,
        store_id=store_id,
        action="tablet.request_on_behalf",
        now=now,
        request_id=request_id,
        reference=filed.reference,
        document_kind=values["document_kind"],
    )
    return filed


# --- The store's log of the day ----------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class LogEntry:
    occurred_at: datetime
    action: str
    staff_name: str
    reference: str | None


def todays_log(session: Session, *, store_id: int, now: datetime, timezone: str) -> list[LogEntry]:
    """What was done at this store's tablets today (local day): times, kinds of action, who — no customer data."""
    zone = ZoneInfo(timezone)
    today = now.astimezone(zone).date()
    start = datetime.combine(today, time(0), tzinfo=zone)
    end = datetime.combine(today + timedelta(days=1), time(0), tzinfo=zone)
    rows = session.execute(
        select(AuditEvent.occurred_at, AuditEvent.action, AuditEvent.actor, AuditEvent.detail)
        .where(
            AuditEvent.target == f"store:{store_id}",
            AuditEvent.occurred_at >= start,
            AuditEvent.occurred_at < end,
            AuditEvent.action.in_(LOG_ACTIONS),
        )
        .order_by(AuditEvent.occurred_at.desc(), AuditEvent.id.desc())
    ).all()
    staff_ids = {int(actor.split(":", 1)[1]) for _at, _action, actor, _detail in rows if actor.startswith("staff:")}
    names: dict[int, str] = dict(
        session.execute(select(StaffUser.id, StaffUser.name).where(StaffUser.id.in_(staff_ids))).all()
    )
    return [
        LogEntry(
            occurred_at=at,
            action=action,
            staff_name=names.get(int(actor.split(":", 1)[1]), "") if actor.startswith("staff:") else "",
            reference=(detail or {}).get("reference"),
        )
        for at, action, actor, detail in rows
    ]
