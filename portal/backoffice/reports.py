"""Figures for the DPO: what is open, what is late, how long answers take (Art. 5(2) accountability).

"Days to complete" runs from receipt to the answer (completed or refused; a cancelled request had no answer), in
days with one decimal. Months are calendar months in the portal's time zone.
"""

from __future__ import annotations

import dataclasses
import io
import math
import statistics
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import func, select
from sqlmodel import Session

from portal.backoffice.queue import effective_due
from portal.csvfile import SafeWriter
from portal.i18n import gettext
from portal.models import PrivacyRequest, Store
from portal.models.requests import OPEN_STATUSES
from portal.requests.deadlines import add_months, end_of_day

ANSWERED_STATUSES = ("completed", "rejected")


def percentile(values: Sequence[float], fraction: float) -> float | None:
    """Linear interpolation between the closest ranks (numpy's default); None for no values."""
    if not values:
        return None
    ordered = sorted(values)
    position = (len(ordered) - 1) * fraction
    low, high = math.floor(position), math.ceil(position)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


@dataclasses.dataclass(frozen=True)
class Durations:
    """Answered requests of a group and how long they took, in days."""

    answered: int
    median_days: float | None
    p90_days: float | None
    late: int  # answered after the (effective) due date

    @classmethod
    def of(cls, days: Sequence[float], late: int) -> Durations:
        median = statistics.median(days) if days else None
        p90 = percentile(days, 0.9)
        return cls(
            answered=len(days),
            median_days=None if median is None else round(median, 1),
            p90_days=None if p90 is None else round(p90, 1),
            late=late,
        )


@dataclasses.dataclass(frozen=True)
class MonthFigures:
    month: date  # first day of the month
    received: int
    durations: Durations


@dataclasses.dataclass(frozen=True)
class Report:
    start: date  # first day included (receipt date, portal time zone)
    end: date  # last day included
    open_by_type_status: dict[tuple[str, str], int]
    open_total: int
    overdue: int
    overall: Durations
    by_channel: dict[str, Durations]
    by_store: dict[str, Durations]  # store code, or "" for requests not made in a store
    per_month: list[MonthFigures]


class BadPeriod(ValueError):
    pass


def parse_month(raw: str | None) -> date | None:
    """'2026-03' → 1 March 2026; None for empty; BadPeriod for anything else."""
    raw = (raw or "").strip()
    if not raw:
        return None
    try:
        year, month = raw.split("-")
        if len(year) != 4 or len(month) != 2:
            raise ValueError(raw)
        return date(int(year), int(month), 1)
    except ValueError:
        raise BadPeriod(raw) from None


def default_period(now: datetime, timezone: str) -> tuple[date, date]:
    """The twelve months ending with the current one."""
    first = now.astimezone(ZoneInfo(timezone)).date().replace(day=1)
    return add_months(first, -11), first


def parse_period(query: Mapping[str, str], *, now: datetime, timezone: str) -> tuple[tuple[date, date], dict[str, str]]:
    """The months `from`–`to` asked for (default: the last twelve), and a translated message per bad field."""
    errors: dict[str, str] = {}
    first, last = default_period(now, timezone)
    values = {}
    for name, default in (("from", first), ("to", last)):
        try:
            values[name] = parse_month(query.get(name)) or default
        except BadPeriod:
            errors[name] = gettext("Enter a month as YYYY-MM.")
            values[name] = default
    if values["to"] < values["from"] or (values["to"].year - values["from"].year) > 10:
        errors["to"] = gettext("Enter an end month on or after the start month, at most ten years later.")
        values["from"], values["to"] = first, last
    return (values["from"], values["to"]), errors


def build_report(
    session: Session,
    *,
    now: datetime,
    first_month: date,
    last_month: date,
    timezone: str,
) -> Report:
    """Open requests now, and the durations of requests received from `first_month` to `last_month` included."""
    if last_month < first_month:
        raise BadPeriod("end before start")
    if (last_month.year - first_month.year) * 12 + last_month.month - first_month.month > 120:
        raise BadPeriod("more than ten years")
    connection = session.connection()
    open_rows = connection.execute(
        select(PrivacyRequest.type, PrivacyRequest.status, func.count())
        .where(PrivacyRequest.status.in_(OPEN_STATUSES))
        .group_by(PrivacyRequest.type, PrivacyRequest.status)
    )
    open_by_type_status = {(type_, status): count for type_, status, count in open_rows}
    overdue = connection.execute(
        select(func.count()).where(PrivacyRequest.status.in_(OPEN_STATUSES), effective_due < now)
    ).scalar_one()

    zone = ZoneInfo(timezone)
    start = datetime.combine(first_month, datetime.min.time(), tzinfo=zone)
    end = end_of_day(add_months(last_month, 1) - timedelta(days=1), timezone=timezone)
    rows = connection.execute(
        select(
            PrivacyRequest.received_at,
            PrivacyRequest.closed_at,
            PrivacyRequest.status,
            PrivacyRequest.channel,
            Store.code,
            PrivacyRequest.due_at,
            PrivacyRequest.extended_due_at,
        )
        .select_from(PrivacyRequest)
        .outerjoin(Store, Store.id == PrivacyRequest.store_id)
        .where(PrivacyRequest.received_at >= start, PrivacyRequest.received_at <= end)
    )
    received_per_month: dict[date, int] = defaultdict(int)
    days: dict[str, dict[str, list[float]]] = {
        group: defaultdict(list) for group in ("all", "channel", "store", "month")
    }
    late: dict[str, dict[str, int]] = {key: defaultdict(int) for key in days}
    for received_at, closed_at, status, channel, store_code, due_at, extended_due_at in rows:
        month = received_at.astimezone(zone).date().replace(day=1)
        received_per_month[month] += 1
        if status not in ANSWERED_STATUSES or closed_at is None:
            continue
        took = (closed_at - received_at).total_seconds() / 86400
        was_late = closed_at > (extended_due_at or due_at)
        for group, key in (
            ("all", ""),
            ("channel", channel),
            ("store", store_code or ""),
            ("month", month.isoformat()),
        ):
            days[group][key].append(took)
            late[group][key] += was_late

    def durations(group: str, key: str) -> Durations:
        return Durations.of(days[group].get(key, []), late[group].get(key, 0))

    months = []
    month = first_month
    while month <= last_month:
        months.append(MonthFigures(month, received_per_month.get(month, 0), durations("month", month.isoformat())))
        month = add_months(month, 1)
    return Report(
        start=first_month,
        end=last_month,
        open_by_type_status=open_by_type_status,
        open_total=sum(open_by_type_status.values()),
        overdue=overdue,
        overall=durations("all", ""),
        by_channel={key: durations("channel", key) for key in sorted(days["channel"])},
        by_store={key: durations("store", key) for key in sorted(days["store"])},
        per_month=months,
    )


CSV_HEADER = ("section", "group", "status", "count", "answered", "median_days", "p90_days", "answered_late")


def _number(value: float | None) -> str:
    return "" if value is None else f"{value:.1f}"


def report_rows(report: Report) -> Iterable[tuple[str, ...]]:
    """The report as flat rows under CSV_HEADER (machine-readable: codes, not translated labels)."""
    yield CSV_HEADER
    for (type_, status), count in sorted(report.open_by_type_status.items()):
        yield ("open", type_, status, str(count), "", "", "", "")
    yield ("open_total", "", "", str(report.open_total), "", "", "", "")
    yield ("overdue", "", "", str(report.overdue), "", "", "", "")

    def timing(section: str, group: str, d: Durations, count: str = "") -> tuple[str, ...]:
        return (section, group, "", count, str(d.answered), _number(d.median_days), _number(d.p90_days), str(d.late))

    yield timing("all", f"{report.start:%Y-%m}..{report.end:%Y-%m}", report.overall)
    for channel, d in report.by_channel.items():
        yield timing("channel", channel, d)
    for store, d in report.by_store.items():
        yield timing("store", store, d)
    for m in report.per_month:
        yield timing("month", f"{m.month:%Y-%m}", m.durations, str(m.received))


def report_csv(report: Report) -> str:
    buffer = io.StringIO()
    SafeWriter(buffer).writerows(report_rows(report))
    return buffer.getvalue()
