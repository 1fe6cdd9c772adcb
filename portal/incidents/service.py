"""Breach records (GDPR Art. 33): the facts, the 72-hour clock to notify the CNIL, the notice, the CNIL export.

Every step is audited against `incident:<reference>`, which is also the incident's timeline in the CNIL export.
"""

from __future__ import annotations

import dataclasses
import secrets
from datetime import datetime, timedelta

from sqlalchemy import func, select
from sqlmodel import Session

from portal.audit import record_audit
from portal.csvfile import csv_line
from portal.errors import NotFound
from portal.incidents.forms import IncidentFacts
from portal.models import AuditEvent, Incident, IncidentRecipient

CNIL_DEADLINE = timedelta(hours=72)  # Art. 33(1): from when the controller became aware of the breach
REFERENCE_ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"


class IncidentNotFound(NotFound):
    """No incident with this reference."""


@dataclasses.dataclass(frozen=True)
class IncidentView:
    incident: Incident
    deadline: datetime
    selected: int
    notified: int

    @property
    def pending(self) -> int:
        return self.selected - self.notified

    def overdue(self, now: datetime) -> bool:
        return self.incident.cnil_notified_at is None and now > self.deadline


def _new_reference() -> str:
    chars = "".join(secrets.choice(REFERENCE_ALPHABET) for _ in range(8))
    return f"INC-{chars[:4]}-{chars[4:]}"


def incident_by_reference(session: Session, reference: str) -> Incident:
    incident = session.scalars(select(Incident).where(Incident.reference == reference.strip().upper())).first()
    if incident is None:
        raise IncidentNotFound(reference)
    return incident


def record_incident(
    session: Session, *, facts: IncidentFacts, actor: str, now: datetime, request_id: str | None = None
) -> str:
    """Record a breach; returns its reference."""
    incident = Incident(
        reference=_new_reference(),
        discovered_at=facts.discovered_at,
        recorded_at=now,
        recorded_by=actor,
        nature=facts.nature,
        data_categories=" ".join(facts.data_categories),
        people_estimate=facts.people_estimate,
        consequences=facts.consequences,
        measures=facts.measures,
    )
    session.add(incident)
    record_audit(
        session,
        actor=actor,
        action="incident.recorded",
        target=f"incident:{incident.reference}",
        detail={"categories": list(facts.data_categories), "people_estimate": facts.people_estimate},
        now=now,
        request_id=request_id,
    )
    return incident.reference


def view_incident(session: Session, *, reference: str) -> IncidentView:
    incident = incident_by_reference(session, reference)
    selected, notified = session.execute(
        select(func.count(), func.count(IncidentRecipient.notified_at)).where(
            IncidentRecipient.incident_id == incident.id
        )
    ).one()
    return IncidentView(incident, incident.discovered_at + CNIL_DEADLINE, selected, notified)


def list_incidents(session: Session) -> list[IncidentView]:
    references = session.scalars(select(Incident.reference).order_by(Incident.discovered_at.desc())).all()
    return [view_incident(session, reference=reference) for reference in references]


def record_cnil_notification(
    session: Session,
    *,
    reference: str,
    notified_at: datetime,
    cnil_reference: str,
    actor: str,
    now: datetime,
    request_id: str | None = None,
) -> None:
    incident = incident_by_reference(session, reference)
    incident.cnil_notified_at = notified_at
    incident.cnil_reference = cnil_reference[:64]
    record_audit(
        session,
        actor=actor,
        action="incident.cnil_notified",
        target=f"incident:{incident.reference}",
        detail={
            "cnil_reference": incident.cnil_reference,
            "within_72_hours": notified_at <= incident.discovered_at + CNIL_DEADLINE,
        },  # fmt: skip
        now=now,
        request_id=request_id,
    )


def save_notice(
    session: Session,
    *,
    reference: str,
    notice: dict[str, dict[str, str]],
    actor: str,
    now: datetime,
    request_id: str | None = None,
) -> None:
    incident = incident_by_reference(session, reference)
    incident.notice = notice
    record_audit(
        session, actor=actor, action="incident.notice_saved", target=f"incident:{incident.reference}", now=now,
        request_id=request_id,
    )  # fmt: skip


CSV_COLUMNS = ("section", "when", "what", "who", "reference", "detail")


def incident_csv(
    session: Session, *, reference: str, actor: str, now: datetime, request_id: str | None = None
) -> list[str]:
    """The incident for the CNIL: its facts, its timeline (audit events) and each notification, by reference only
    (customer id and when), never the notice's contents nor anyone's contact details. Audited as an export."""
    incident = incident_by_reference(session, reference)
    target = f"incident:{incident.reference}"
    record_audit(session, actor=actor, action="incident.exported", target=target, now=now, request_id=request_id)
    lines = [csv_line(CSV_COLUMNS)]
    facts = (
        ("discovered", incident.discovered_at, incident.nature),
        ("categories", incident.recorded_at, incident.data_categories),
        ("people_estimate", incident.recorded_at, str(incident.people_estimate)),
        ("consequences", incident.recorded_at, incident.consequences),
        ("measures", incident.recorded_at, incident.measures),
    )
    for what, when, detail in facts:
        lines.append(csv_line(("incident", when.isoformat(), what, incident.recorded_by, incident.reference, detail)))
    if incident.cnil_notified_at:
        lines.append(csv_line(("incident", incident.cnil_notified_at.isoformat(), "cnil_notified", "",
                               incident.cnil_reference, "")))  # fmt: skip
    for event in session.scalars(
        select(AuditEvent).where(AuditEvent.target == target).order_by(AuditEvent.occurred_at, AuditEvent.id)
    ):
        detail = " ".join(f"{key}={value}" for key, value in sorted((event.detail or {}).items()))
        lines.append(csv_line(("timeline", event.occurred_at.isoformat(), event.action, event.actor, "", detail)))
    for customer_id, selected_by, notified_at in session.execute(
        select(IncidentRecipient.customer_id, IncidentRecipient.selected_by, IncidentRecipient.notified_at)
        .where(IncidentRecipient.incident_id == incident.id)
        .order_by(IncidentRecipient.id)
    ):
        state = "notified" if notified_at else "pending"
        told = notified_at.isoformat() if notified_at else ""
        lines.append(
            csv_line(("notification", told, state, "", f"customer:{customer_id}", f"selected_by={selected_by}"))
        )
    return lines
