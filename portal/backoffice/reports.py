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

from sqlalchemy import Connection, case, func, literal, literal_column, select
from sqlmodel import Session

from portal.backoffice.queue import effective_due
from portal.csvfile import SafeWriter
from portal.i18n import gettext
from portal.models import ConsentEvent, PrivacyRequest, Store
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
    received_by_type: dict[str, int] = dataclasses.field(default_factory=dict)
    extended: int = 0  # requests received that month whose deadline was extended

    @property
    def on_time_percent(self) -> float | None:
        """Of the requests answered, the share answered by their (effective) due date, in percent."""
        answered = self.durations.answered
        return None if not answered else round(100 * (answered - self.durations.late) / answered, 1)


@dataclasses.dataclass(frozen=True)
class DueWeek:
    """Open requests by the week their (effective) due date falls in; `monday` None gathers the overdue ones."""

    monday: date | None
    count: int


@dataclasses.dataclass(frozen=True)
class ConsentMonth:
    month: date
    given: int
    withdrawn: int


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
    open_by_due_week: list[DueWeek] = dataclasses.field(default_factory=list)
    # Consent events recorded per purpose and month of the period (any channel), purposes by code.
    consent_per_month: dict[str, list[ConsentMonth]] = dataclasses.field(default_factory=dict)


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
    zone = ZoneInfo(timezone)
    # One row per open request (a few hundred at most): counted by type and status, overdue and by due week here,
    # in one statement rather than three aggregates.
    open_by_type_status: dict[tuple[str, str], int] = defaultdict(int)
    overdue = 0
    this_monday = _monday(now.astimezone(zone).date())
    due_weeks: dict[date, int] = defaultdict(int)
    for type_, status, due in connection.execute(
        select(PrivacyRequest.type, PrivacyRequest.status, effective_due).where(
            PrivacyRequest.status.in_(OPEN_STATUSES)
        )
    ):
        open_by_type_status[(type_, status)] += 1
        if due < now:
            overdue += 1
        else:
            due_weeks[max(_monday(due.astimezone(zone).date()), this_monday)] += 1
    last_week = max(due_weeks, default=this_monday)
    open_by_due_week = [DueWeek(None, overdue)]
    week = this_monday
    while week <= last_week:
        open_by_due_week.append(DueWeek(week, due_weeks.get(week, 0)))
        week += timedelta(days=7)

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
            PrivacyRequest.type,
        )
        .select_from(PrivacyRequest)
        .outerjoin(Store, Store.id == PrivacyRequest.store_id)
        .where(PrivacyRequest.received_at >= start, PrivacyRequest.received_at <= end)
    )
    received_per_month: dict[date, int] = defaultdict(int)
    by_type: dict[date, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    extended: dict[date, int] = defaultdict(int)
    days: dict[str, dict[str, list[float]]] = {
        group: defaultdict(list) for group in ("all", "channel", "store", "month")
    }
    late: dict[str, dict[str, int]] = {key: defaultdict(int) for key in days}
    for received_at, closed_at, status, channel, store_code, due_at, extended_due_at, type_ in rows:
        month = received_at.astimezone(zone).date().replace(day=1)
        received_per_month[month] += 1
        by_type[month][type_] += 1
        extended[month] += extended_due_at is not None
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
        months.append(
            MonthFigures(
                month,
                received_per_month.get(month, 0),
                durations("month", month.isoformat()),
                received_by_type=dict(by_type.get(month, {})),
                extended=extended.get(month, 0),
            )
        )
        month = add_months(month, 1)
    return Report(
        start=first_month,
        end=last_month,
        open_by_type_status=dict(open_by_type_status),
        open_total=sum(open_by_type_status.values()),
        overdue=overdue,
        overall=durations("all", ""),
        by_channel={key: durations("channel", key) for key in sorted(days["channel"])},
        by_store={key: durations("store", key) for key in sorted(days["store"])},
        per_month=months,
        open_by_due_week=open_by_due_week,
        consent_per_month=_consent_per_month(connection, [m.month for m in months], end=end, zone=zone),
    )


def _monday(day: date) -> date:
    return day - timedelta(days=day.weekday())


def _consent_per_month(
    connection: Connection, months: list[date], *, end: datetime, zone: ZoneInfo
) -> dict[str, list[ConsentMonth]]:
    """Consents given and withdrawn per purpose and month, counted by the database in one grouped statement.

    The months' bounds are instants computed here in the portal's time zone, so the bucketing is the same on SQLite
    and PostgreSQL (neither is asked about time zones). The range has no index of its own: this is the DPO's page,
    and the ledger holds a few events per customer.
    """
    if not months:
        return {}
    bounds = [datetime.combine(m, datetime.min.time(), tzinfo=zone) for m in months[1:]]
    occurred = ConsentEvent.occurred_at
    whens = [(occurred < bound, n) for n, bound in enumerate(bounds)]
    bucket = (case(*whens, else_=len(bounds)) if whens else literal(0)).label("bucket")
    start = datetime.combine(months[0], datetime.min.time(), tzinfo=zone)
    rows = connection.execute(
        select(ConsentEvent.purpose, bucket, ConsentEvent.granted, func.count())
        .where(occurred >= start, occurred <= end)
        # By the output column's name: the CASE repeated would carry new parameters, which PostgreSQL would not
        # recognise as the same expression.
        .group_by(ConsentEvent.purpose, literal_column("bucket"), ConsentEvent.granted)
    )
    counts: dict[str, list[list[int]]] = {}
    for purpose, index, granted, count in rows:
        counts.setdefault(purpose, [[0, 0] for _ in months])[int(index)][0 if granted else 1] += count
    return {
        purpose: [
            ConsentMonth(month, given, withdrawn) for month, (given, withdrawn) in zip(months, cells, strict=True)
        ]
        for purpose, cells in sorted(counts.items())
    }


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
    # The dashboard's other figures, after the ones above so existing readers of the file are undisturbed.
    for m in report.per_month:
        for type_, count in sorted(m.received_by_type.items()):
            yield ("month_type", f"{m.month:%Y-%m}", type_, str(count), "", "", "", "")
        yield ("month_extended", f"{m.month:%Y-%m}", "", str(m.extended), "", "", "", "")
    for week in report.open_by_due_week:
        yield (
            "due_week",
            "overdue" if week.monday is None else week.monday.isoformat(),
            "",
            str(week.count),
            "",
            "",
            "",
            "",
        )
    for purpose, cells in report.consent_per_month.items():
        for cell in cells:
            yield ("consent_given", f"{cell.month:%Y-%m}", purpose, str(cell.given), "", "", "", "")
            yield ("consent_withdrawn", f"{cell.month:%Y-%m}", purpose, str(cell.withdrawn), "", "", "", "")


def report_csv(report: Report) -> str:
    buffer = io.StringIO()
    SafeWriter(buffer).writerows(report_rows(report))
    return buffer.getvalue()
