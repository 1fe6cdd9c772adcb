"""Reading the audit trail: filters, keyset pages (newest first) and a CSV export for the DPO.

The trail is append-only, so the id orders events as time does and serves as the cursor.
"""

from __future__ import annotations

import dataclasses
import io
import json
from collections.abc import Iterator, Mapping
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import ColumnElement, Connection, String, cast, func, literal, select
from sqlmodel import Session

from portal.audit import record_audit, staff_id_of
from portal.csvfile import SafeWriter
from portal.db import as_connection, contains
from portal.i18n import lazy_gettext
from portal.models import AuditEvent, StaffUser
from portal.requests.service import normalise_reference

PAGE_SIZE = 50
NON_PERSON_ACTORS = ("system", "cli")  # who acts when no person does (the worker, the portal command)
MESSAGES = {
    "actor": lazy_gettext("Enter part of a staff member's name, or an actor such as staff:12, customer:34 or system."),
    "action": lazy_gettext("Enter an action such as request.received."),
    "target": lazy_gettext("Enter a request reference (R-XXXX-XXXX) or a target such as customer:34."),
    "start": lazy_gettext("Enter a date as YYYY-MM-DD."),
    "end": lazy_gettext("Enter a date as YYYY-MM-DD, on or after the start date."),
}


@dataclasses.dataclass(frozen=True)
class AuditFilters:
    actor: str = ""
    action: str = ""
    target: str = ""  # canonical: request:R-XXXX-XXXX, customer:34, ...
    start: date | None = None
    end: date | None = None

    def as_query(self) -> dict[str, str]:
        values = {
            "actor": self.actor,
            "action": self.action,
            "target": self.target,
            "start": self.start.isoformat() if self.start else "",
            "end": self.end.isoformat() if self.end else "",
        }
        return {k: v for k, v in values.items() if v}


def _token(raw: str | None) -> str:
    return "".join((raw or "").split())[:64]


def _is_reference_like(value: str) -> bool:
    # actor/target values are "kind:id" or a bare word: letters, digits and a few separators only.
    return all(ch.isalnum() or ch in ":._-" for ch in value)


def is_actor_reference(actor: str) -> bool:
    """`staff:12`, `customer:34`, `system`, `cli`…: a reference; anything else typed in the field is part of a name."""
    return _is_reference_like(actor) and (":" in actor or actor in NON_PERSON_ACTORS)


def _is_name_like(value: str) -> bool:
    return all(ch.isalpha() or ch in " -'’." for ch in value)


def parse_audit_filters(query: Mapping[str, str]) -> tuple[AuditFilters, dict[str, str]]:
    errors: dict[str, str] = {}
    actor = " ".join((query.get("actor") or "").split())[:64]
    if actor and not (is_actor_reference(actor) or _is_name_like(actor)):
        errors["actor"], actor = MESSAGES["actor"], ""
    action = _token(query.get("action"))
    if action and not _is_reference_like(action):
        errors["action"], action = MESSAGES["action"], ""
    target = _token(query.get("target"))
    if target:
        reference = normalise_reference(target.removeprefix("request:"))
        if reference:
            target = f"request:{reference}"
        elif ":" not in target or not _is_reference_like(target):
            errors["target"], target = MESSAGES["target"], ""
    dates: dict[str, date | None] = {}
    for name in ("start", "end"):
        raw = (query.get(name) or "").strip()
        try:
            dates[name] = date.fromisoformat(raw) if raw else None
        except ValueError:
            errors[name], dates[name] = MESSAGES[name], None
    if dates["start"] and dates["end"] and dates["end"] < dates["start"]:
        errors["end"], dates["end"] = MESSAGES["end"], None
    return AuditFilters(actor=actor, action=action, target=target, start=dates["start"], end=dates["end"]), errors


@dataclasses.dataclass(frozen=True)
class AuditEntry:
    id: int
    occurred_at: datetime
    actor: str
    action: str
    target: str | None
    detail: dict | None
    request_id: str | None


@dataclasses.dataclass(frozen=True)
class AuditPage:
    entries: list[AuditEntry]
    next_cursor: str | None
    names: dict[str, str] = dataclasses.field(default_factory=dict)  # "staff:12" -> the staff member's name


def _conditions(filters: AuditFilters, timezone: str) -> list[ColumnElement[bool]]:
    zone = ZoneInfo(timezone)
    terms: list[ColumnElement[bool]] = []
    if filters.actor and is_actor_reference(filters.actor):
        terms.append(AuditEvent.actor == filters.actor)
    elif filters.actor:  # part of a name: every staff member whose name contains it
        staff_actor = literal("staff:") + cast(StaffUser.id, String)
        named = select(staff_actor).where(contains(func.lower(StaffUser.name), filters.actor.lower()))
        terms.append(AuditEvent.actor.in_(named))
    if filters.action:
        terms.append(AuditEvent.action == filters.action)
    if filters.target:
        terms.append(AuditEvent.target == filters.target)
    if filters.start:
        terms.append(AuditEvent.occurred_at >= datetime.combine(filters.start, datetime.min.time(), tzinfo=zone))
    if filters.end:
        next_day = datetime.combine(filters.end + timedelta(days=1), datetime.min.time(), tzinfo=zone)
        terms.append(AuditEvent.occurred_at < next_day)
    return terms


_COLUMNS = (
    AuditEvent.id,
    AuditEvent.occurred_at,
    AuditEvent.actor,
    AuditEvent.action,
    AuditEvent.target,
    AuditEvent.detail,
    AuditEvent.request_id,
)


def audit_page(
    db: Session | Connection,
    *,
    filters: AuditFilters,
    after: str | None = None,
    page_size: int = PAGE_SIZE,
    timezone: str,
) -> AuditPage:
    """Events matching `filters`, newest first, after the cursor (an event id; anything else means the start)."""
    terms = _conditions(filters, timezone)
    raw = (after or "").strip()
    if raw.isdigit() and len(raw) < 19:
        terms.append(AuditEvent.id < int(raw))
    statement = select(*_COLUMNS).where(*terms).order_by(AuditEvent.id.desc()).limit(page_size + 1)
    connection = as_connection(db)
    entries = [AuditEntry(*row) for row in connection.execute(statement)]
    more = len(entries) > page_size
    entries = entries[:page_size]
    return AuditPage(
        entries=entries,
        next_cursor=str(entries[-1].id) if more and entries else None,
        names=_staff_names(connection, {entry.actor for entry in entries}),
    )


def _staff_names(connection: Connection, actors: set[str]) -> dict[str, str]:
    """The names of the staff members among `actors`, keyed by their reference."""
    ids = {staff_id for staff_id in map(staff_id_of, actors) if staff_id is not None}
    if not ids:
        return {}
    rows = connection.execute(select(StaffUser.id, StaffUser.name).where(StaffUser.id.in_(ids)))
    return {f"staff:{staff_id}": name for staff_id, name in rows}


CSV_HEADER = ("id", "occurred_at", "actor", "action", "target", "detail", "request_id")


def audit_csv_lines(
    db: Session | Connection, *, filters: AuditFilters, timezone: str, batch: int = 1000
) -> Iterator[str]:
    """Every matching event, oldest first, as CSV lines (UTC ISO times), read in batches by id."""
    connection = as_connection(db)
    buffer = io.StringIO()
    writer = SafeWriter(buffer)
    writer.writerow(CSV_HEADER)
    yield buffer.getvalue()
    last_id = 0
    terms = _conditions(filters, timezone)
    while True:
        statement = select(*_COLUMNS).where(*terms, AuditEvent.id > last_id).order_by(AuditEvent.id).limit(batch)
        rows = connection.execute(statement).all()
        if not rows:
            return
        buffer.seek(0)
        buffer.truncate()
        for id_, occurred_at, actor, action, target, detail, request_id in rows:
            writer.writerow(
                (
                    id_,
                    occurred_at.isoformat(),
                    actor,
                    action,
                    target or "",
                    json.dumps(detail, sort_keys=True, ensure_ascii=False) if detail else "",
                    request_id or "",
                )
            )
        yield buffer.getvalue()
        last_id = rows[-1][0]


def record_export(
    session: Session, *, filters: AuditFilters, actor: str, now: datetime, request_id: str | None = None
) -> None:
    """Exporting the trail is itself worth recording, with the filters used."""
    record_audit(
        session,
        actor=actor,
        action="audit.exported",
        now=now,
        detail=filters.as_query() or None,
        request_id=request_id,
    )
