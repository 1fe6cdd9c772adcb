"""The banner's answers recorded in the consent ledger, what a visitor's choices are now, and its monthly counts.

Every answer goes through the ledger (`ledger.record_visitor_consent`), in one transaction with the rate-limit
counts, the monthly counts and an audit event. The counts (`banner_tally`) are how many, per month, never who.
"""

from __future__ import annotations

import dataclasses
from collections import defaultdict
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import Connection, select
from sqlmodel import Session

from portal.audit import record_audit
from portal.banner.schemas import BannerAnswer
from portal.consent import ledger
from portal.consent.register import PurposeRegister
from portal.db import as_connection, dialect_insert
from portal.identity import ratelimit
from portal.identity.keys import keyed_hash
from portal.models import BannerTally

# Banner-wide counts; each purpose also has "granted" and "refused" counts.
METRICS = ("shown", "accept_all", "refuse_all", "custom", "gpc")


class AnswerRefused(ValueError):
    """Nothing was recorded; `reason` is a stable code, `field` the body's field at fault."""

    def __init__(self, reason: str, field: str = "body") -> None:
        super().__init__(reason)
        self.reason = reason  # policy_changed | purposes_mismatch | choice_mismatch
        self.field = field


class TooManyCalls(Exception):
    """A rate limit is reached; the counts stay (committed), nothing else is recorded."""

    def __init__(self, retry_after: timedelta) -> None:
        super().__init__("rate limited")
        self.retry_after = retry_after


@dataclasses.dataclass(frozen=True)
class Limits:
    per_ip: int
    per_visitor: int
    window: timedelta
    secret_key: str  # the visitor id is counted under a keyed hash: the counters do not hold it


@dataclasses.dataclass(frozen=True)
class AnswerResult:
    recorded: int  # events written to the ledger (purposes whose answer changed)
    linked: bool  # the visitor is a known customer: the answer went into their ledger


@dataclasses.dataclass(frozen=True)
class VisitorState:
    linked: bool
    policy_version: str
    consents: dict[str, bool]


def _limit(session: Session, *, key: str, limit: int, limits: Limits, now: datetime) -> None:
    result = ratelimit.hit(session, key=key, limit=limit, window=limits.window, now=now)
    if not result.allowed:
        raise TooManyCalls(result.retry_after)


def count_call(session: Session, *, client_ip: str, visitor_id: str | None, limits: Limits, now: datetime) -> None:
    """Count one call against the per-IP limit (and the per-visitor one for an answer); TooManyCalls past either.

    Its own short transaction, before the work: every call from one address updates the same counter row, and on
    PostgreSQL that row stays locked until the transaction ends, so it must not wait for the answer's writes.
    """
    _limit(session, key=f"banner:ip:{client_ip}", limit=limits.per_ip, limits=limits, now=now)
    if visitor_id is not None:
        visitor_key = keyed_hash(limits.secret_key, "banner-visitor", visitor_id)[:32]
        _limit(session, key=f"banner:visitor:{visitor_key}", limit=limits.per_visitor, limits=limits, now=now)


def month_of(now: datetime, timezone: str) -> str:
    return now.astimezone(ZoneInfo(timezone)).strftime("%Y-%m")


def _tally(session: Session, *, month: str, counts: list[tuple[str, str]]) -> None:
    """Add one to each (metric, purpose) count of `month`, in one statement."""
    table = BannerTally.__table__
    statement = dialect_insert(session)(table).values(
        [{"month": month, "metric": metric, "purpose": purpose, "count": 1} for metric, purpose in counts]
    )
    session.execute(
        statement.on_conflict_do_update(
            index_elements=["month", "metric", "purpose"],
            set_={"count": table.c["count"] + statement.excluded["count"]},
        )
    )


def record_answer(
    session: Session,
    *,
    register: PurposeRegister,
    purposes: tuple[str, ...],
    answer: BannerAnswer,
    now: datetime,
    timezone: str,
    request_id: str | None = None,
) -> AnswerResult:
    """Record a visitor's answer to the banner, purpose by purpose, in the consent ledger (after `count_call`).

    Refused (AnswerRefused, nothing recorded) when the policy changed since the banner was loaded (it must ask again
    with the new wording), when the purposes are not exactly those the banner asks about, or when the button does
    not match the choices (accept all that refuses something).
    """
    if answer.policy_version != register.policy_version:
        raise AnswerRefused("policy_changed", "policy_version")
    if set(answer.consents) != set(purposes):
        raise AnswerRefused("purposes_mismatch", "consents")
    values = set(answer.consents.values())
    if (answer.choice == "accept_all" and values != {True}) or (
        answer.choice in ("refuse_all", "gpc") and values != {False}
    ):
        raise AnswerRefused("choice_mismatch", "choice")
    recorded, customer_id = ledger.record_visitor_answers(
        session,
        register=register,
        visitor_id=answer.visitor_id,
        answers={code: answer.consents[code] for code in purposes},  # in the banner's order
        now=now,
        locale=answer.locale,
        banner_version=answer.banner_version,
        request_id=request_id,
    )
    linked = customer_id is not None
    # Counts only: the visitor id is the proof key of the ledger's events, not something for the audit trail.
    record_audit(
        session,
        actor="visitor",
        action="banner.answered",
        detail={"choice": answer.choice, "recorded": recorded, "linked": linked},
        now=now,
        request_id=request_id,
    )
    # Last, as every answer of the month updates these rows: locked (PostgreSQL) only for the end of the transaction.
    counts = [(answer.choice, "")] + [("granted" if answer.consents[c] else "refused", c) for c in purposes]
    _tally(session, month=month_of(now, timezone), counts=counts)
    return AnswerResult(recorded=recorded, linked=linked)


def count_shown(session: Session, *, now: datetime, timezone: str) -> None:
    """The banner was shown to someone (no id is sent: a count, not a record of who); after `count_call`."""
    _tally(session, month=month_of(now, timezone), counts=[("shown", "")])


def visitor_state(
    db: Session | Connection, *, register: PurposeRegister, purposes: tuple[str, ...], visitor_id: str
) -> VisitorState:
    """The visitor's current choices: their customer's, once the web shop linked them (a later choice made in the
    portal wins on the website too), else their own answers."""
    customer_id, states = ledger.visitor_consents(db, visitor_id=visitor_id, purposes=purposes)
    return VisitorState(
        linked=customer_id is not None,
        policy_version=register.policy_version,
        consents={code: states[code].granted for code in purposes},
    )


# --- The DPO's figures ------------------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class MonthCounts:
    month: date  # first day of the month
    counts: dict[str, int]  # METRICS → count
    granted: dict[str, int]  # purpose → answers granting it
    refused: dict[str, int]  # purpose → answers refusing it

    @property
    def answered(self) -> int:
        return sum(self.counts.get(metric, 0) for metric in METRICS if metric != "shown")


@dataclasses.dataclass(frozen=True)
class BannerFigures:
    purposes: tuple[str, ...]
    months: list[MonthCounts]  # newest first
    total: MonthCounts  # every month shown together (its `month` is the first one's)


def banner_figures(db: Session | Connection, *, purposes: tuple[str, ...], first: date, last: date) -> BannerFigures:
    """The banner's counts per month from `first` to `last` (first days of months), newest first, and their total."""
    table = BannerTally.__table__
    rows = as_connection(db).execute(
        select(table.c.month, table.c.metric, table.c.purpose, table.c["count"]).where(
            table.c.month >= first.strftime("%Y-%m"), table.c.month <= last.strftime("%Y-%m")
        )
    )
    by_month: dict[str, tuple[dict[str, int], dict[str, int], dict[str, int]]] = defaultdict(
        lambda: (defaultdict(int), defaultdict(int), defaultdict(int))
    )
    for month, metric, purpose, count in rows:
        counts, granted, refused = by_month[month]
        if metric == "granted":
            granted[purpose] += count
        elif metric == "refused":
            refused[purpose] += count
        else:
            counts[metric] += count
    months = []
    cursor = date(last.year, last.month, 1)
    while cursor >= date(first.year, first.month, 1):
        counts, granted, refused = by_month.get(cursor.strftime("%Y-%m"), ({}, {}, {}))
        months.append(MonthCounts(cursor, dict(counts), dict(granted), dict(refused)))
        cursor = date(cursor.year - (cursor.month == 1), cursor.month - 1 or 12, 1)
    total = MonthCounts(
        date(first.year, first.month, 1),
        {metric: sum(m.counts.get(metric, 0) for m in months) for metric in METRICS},
        {code: sum(m.granted.get(code, 0) for m in months) for code in purposes},
        {code: sum(m.refused.get(code, 0) for m in months) for code in purposes},
    )
    return BannerFigures(purposes=purposes, months=months, total=total)
