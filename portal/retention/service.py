"""Retention runs: apply every rule of the register in batches, or count what a run would remove.

A run owns its transactions (one per batch), so it takes the engine: a crash or Ctrl-C loses at most the batch in
flight, which rolls back whole; running again picks up where it stopped, since each batch selects what is still
due. The run ends with one audit event holding the counts per rule (`retention.run`), also when interrupted, which
the DPO's page reads as "the last run".
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterator
from datetime import datetime

from sqlalchemy import Engine, select
from sqlmodel import Session

from portal.audit import record_audit
from portal.consent.register import PurposeRegister
from portal.csvfile import csv_line
from portal.db import transaction
from portal.i18n import gettext
from portal.mail.compose import EmailComposer
from portal.models import AuditEvent
from portal.retention.rules import ACTOR, STARTS_LABELS, Pending, Rule, build_rules
from portal.settings import Settings

RUN_ACTION = "retention.run"
DEFAULT_BATCH = 500


@dataclasses.dataclass
class RuleOutcome:
    code: str
    removed: int = 0
    held: int = 0
    done: bool = False


@dataclasses.dataclass(frozen=True)
class RunReport:
    outcomes: tuple[RuleOutcome, ...]
    interrupted: bool

    def as_detail(self) -> dict[str, object]:
        return {
            "rules": {o.code: {"removed": o.removed, "held": o.held} for o in self.outcomes},
            "interrupted": self.interrupted,
        }


@dataclasses.dataclass(frozen=True)
class LastRun:
    occurred_at: datetime
    counts: dict[str, dict[str, int]]
    interrupted: bool


def preview(session: Session, *, rules: tuple[Rule, ...]) -> dict[str, Pending]:
    """What each rule would remove now, with the oldest record it would touch; changes nothing."""
    return {rule.code: rule.pending(session) for rule in rules}


def run_retention(
    engine: Engine,
    *,
    now: datetime,
    settings: Settings,
    register: PurposeRegister,
    composer: EmailComposer,
    batch_size: int = DEFAULT_BATCH,
    progress: Callable[[RuleOutcome], None] = lambda outcome: None,
    stop: Callable[[], bool] = lambda: False,
) -> RunReport:
    """Apply every rule in batches of `batch_size`, one transaction each; `stop` is asked between batches.

    Ctrl-C (KeyboardInterrupt) and `stop` end the run after the last committed batch; the audit event says so.
    """
    rules = build_rules(now=now, settings=settings, register=register, composer=composer)
    outcomes = tuple(RuleOutcome(rule.code) for rule in rules)
    interrupted = False
    try:
        for rule, outcome in zip(rules, outcomes, strict=True):
            while not outcome.done:
                if stop():
                    raise KeyboardInterrupt
                with transaction(engine) as session:
                    removed = rule.remove_batch(session, batch_size)
                outcome.removed += removed.removed
                outcome.held += removed.held
                # A batch that removed fewer than asked found the last of what was due (sign-in records: one pass).
                outcome.done = removed.removed < batch_size or rule.code == "sign_in_records"
                progress(outcome)
    except KeyboardInterrupt:
        interrupted = True
    report = RunReport(outcomes, interrupted)
    with transaction(engine) as session:
        record_audit(session, actor=ACTOR, action=RUN_ACTION, target=None, detail=report.as_detail(), now=now)
    return report


def last_run(session: Session) -> LastRun | None:
    """The latest retention run's counts, from its audit event."""
    event = session.scalars(
        select(AuditEvent).where(AuditEvent.action == RUN_ACTION).order_by(AuditEvent.occurred_at.desc()).limit(1)
    ).first()
    if event is None or not event.detail:
        return None
    return LastRun(event.occurred_at, dict(event.detail.get("rules", {})), bool(event.detail.get("interrupted")))


@dataclasses.dataclass(frozen=True)
class RuleStatus:
    rule: Rule
    last_removed: int | None
    last_held: int | None
    next_run: Pending


@dataclasses.dataclass(frozen=True)
class RetentionOverview:
    rules: tuple[RuleStatus, ...]
    last_run: LastRun | None


def retention_overview(
    session: Session, *, now: datetime, settings: Settings, register: PurposeRegister
) -> RetentionOverview:
    """The DPO's view: each rule, its period and source, what the last run removed and what the next would."""
    rules = build_rules(now=now, settings=settings, register=register)
    previous = last_run(session)
    pending = preview(session, rules=rules)
    statuses = []
    for rule in rules:
        counts = previous.counts.get(rule.code) if previous else None
        statuses.append(
            RuleStatus(
                rule=rule,
                last_removed=counts.get("removed") if counts else None,
                last_held=counts.get("held") if counts else None,
                next_run=pending[rule.code],
            )
        )
    return RetentionOverview(tuple(statuses), previous)


CSV_COLUMNS = ("rule", "what", "period", "counted", "source", "last_run", "last_removed", "last_held", "next_removes",
               "next_oldest")  # fmt: skip


def retention_csv(overview: RetentionOverview) -> Iterator[str]:
    """The overview as CSV, for the DPO's reports (the labels in the current language)."""
    yield csv_line(CSV_COLUMNS)
    ran = overview.last_run.occurred_at.isoformat() if overview.last_run else ""
    for status in overview.rules:
        rule = status.rule
        oldest = status.next_run.oldest.isoformat() if status.next_run.oldest else ""
        yield csv_line(
            (rule.code, gettext(rule.label), rule.period, gettext(STARTS_LABELS[rule.starts]), " ".join(rule.sources))
            + (ran, status.last_removed, status.last_held, status.next_run.count, oldest)
        )
