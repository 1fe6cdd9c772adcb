"""DPO reports: open requests, overdue, median and 90th percentile days to answer, per channel, store and month;
the audit trail's filters, pages and CSV."""

from __future__ import annotations

import csv
import io
from datetime import UTC, date, datetime, timedelta

import pytest
from sqlalchemy import Engine

from portal.audit import record_audit
from portal.backoffice import audit_trail, reports
from portal.db import transaction
from tests.conftest import TIMEZONE, Clock
from tests.factories import make_store
from tests.unit.backoffice.test_queue import file


def test_percentile_interpolates_between_ranks() -> None:
    assert reports.percentile([], 0.9) is None
    assert reports.percentile([4.0], 0.9) == 4.0
    assert reports.percentile([1, 2, 3, 4, 5, 6, 7, 8, 9, 10], 0.9) == pytest.approx(9.1)
    assert reports.percentile([10, 1, 5], 0.5) == 5


def answered(engine: Engine, received_at: datetime, days: float, **changes: object) -> str:
    return file(
        engine,
        received_at=received_at,
        status=changes.pop("status", "completed"),
        closed_at=received_at + timedelta(days=days),
        **changes,
    )


def test_report_counts_open_overdue_and_answer_times(engine: Engine, clock: Clock) -> None:
    now = clock()  # 23 November 2026
    store = make_store(engine, code="LYO")
    october = datetime(2026, 10, 5, 9, tzinfo=UTC)
    for days in (2, 4, 6, 8, 40):  # one answered late (after the one-month due date)
        answered(engine, october, days)
    answered(engine, october, 10, status="rejected", channel="store", store_id=store.id)
    file(engine, received_at=october, status="cancelled", closed_at=october + timedelta(days=1))
    file(engine, received_at=now - timedelta(days=40), type="erasure")  # open, overdue, received in October
    file(engine, received_at=now - timedelta(days=3), type="erasure", status="in_progress")
    file(engine, received_at=now - timedelta(days=1), type="access")
    # Received before the period: counted as open, not in the answer times.
    answered(engine, datetime(2024, 1, 10, 9, tzinfo=UTC), 100)

    with transaction(engine) as session:
        report = reports.build_report(
            session, now=now, first_month=date(2026, 1, 1), last_month=date(2026, 11, 1), timezone=TIMEZONE
        )
    assert report.open_by_type_status == {("erasure", "received"): 1, ("erasure", "in_progress"): 1,
                                          ("access", "received"): 1}  # fmt: skip
    assert report.open_total == 3 and report.overdue == 1
    assert report.overall.answered == 6  # five completed + one rejected; the cancelled one had no answer
    assert report.overall.median_days == 7.0
    assert report.overall.p90_days == 25.0  # between 10 and 40
    assert report.overall.late == 1
    assert report.by_channel["store"].answered == 1 and report.by_channel["web"].answered == 5
    assert report.by_store["LYO"].median_days == 10.0 and report.by_store[""].answered == 5
    october_figures = next(m for m in report.per_month if m.month == date(2026, 10, 1))
    assert october_figures.received == 8 and october_figures.durations.answered == 6
    november = report.per_month[-1]
    assert november.month == date(2026, 11, 1) and november.received == 2 and november.durations.median_days is None
    assert len(report.per_month) == 11

    rows = list(csv.reader(io.StringIO(reports.report_csv(report))))
    assert rows[0] == list(reports.CSV_HEADER)
    assert ["open", "erasure", "received", "1", "", "", "", ""] in rows
    assert ["overdue", "", "", "1", "", "", "", ""] in rows
    assert ["channel", "web", "", "", "5", "6.0", "27.2", "1"] in rows
    assert ["month", "2026-10", "", "8", "6", "7.0", "25.0", "1"] in rows


def test_months_are_read_in_paris(engine: Engine, clock: Clock) -> None:
    # 23:30 UTC on 31 October is 00:30 on 1 November in Paris: a November request.
    file(engine, received_at=datetime(2026, 10, 31, 23, 30, tzinfo=UTC))
    with transaction(engine) as session:
        report = reports.build_report(
            session, now=clock(), first_month=date(2026, 10, 1), last_month=date(2026, 11, 1), timezone=TIMEZONE
        )
    assert [m.received for m in report.per_month] == [0, 1]


@pytest.mark.parametrize("raw", ["2026", "2026-13", "26-01", "abcd-ef", "2026-1"])
def test_bad_months_are_refused(raw: str) -> None:
    with pytest.raises(reports.BadPeriod):
        reports.parse_month(raw)


def test_period_end_before_start_is_refused(engine: Engine, clock: Clock) -> None:
    with transaction(engine) as session, pytest.raises(reports.BadPeriod):
        reports.build_report(
            session, now=clock(), first_month=date(2026, 5, 1), last_month=date(2026, 4, 1), timezone=TIMEZONE
        )
    assert reports.default_period(clock(), "Europe/Paris") == (date(2025, 12, 1), date(2026, 11, 1))


# --- Audit trail -------------------------------------------------------------------------------------------------


def audit(engine: Engine, *events: tuple[datetime, str, str, str | None]) -> None:
    with transaction(engine) as session:
        for when, actor, action, target in events:
            record_audit(session, actor=actor, action=action, target=target, now=when, detail={"n": 1})


def test_audit_trail_filters_and_pages(engine: Engine, clock: Clock) -> None:
    day = datetime(2026, 11, 20, 9, tzinfo=UTC)
    audit(
        engine,
        (day, "staff:1", "request.viewed", "request:R-AAAA-BBBB"),
        (day + timedelta(hours=1), "staff:2", "request.completed", "request:R-AAAA-BBBB"),
        (day + timedelta(days=1), "customer:5", "consent.changed", "customer:5"),
        # 23:30 UTC on 21 November is 22 November in Paris.
        (day + timedelta(days=1, hours=14, minutes=30), "system", "request.received", "request:R-CCCC-DDDD"),
    )

    def actions(**query: str) -> list[str]:
        filters, errors = audit_trail.parse_audit_filters(query)
        assert not errors, errors
        with transaction(engine) as session:
            return [e.action for e in audit_trail.audit_page(session, filters=filters, timezone=TIMEZONE).entries]

    assert actions() == ["request.received", "consent.changed", "request.completed", "request.viewed"]
    assert actions(actor="staff:2") == ["request.completed"]
    assert actions(action="consent.changed") == ["consent.changed"]
    # A reference as a person types it finds the request's events.
    assert actions(target="r-aaaa-bbbb") == ["request.completed", "request.viewed"]
    assert actions(start="2026-11-21", end="2026-11-21") == ["consent.changed"]
    assert actions(start="2026-11-22") == ["request.received"]

    filters, _ = audit_trail.parse_audit_filters({})
    with transaction(engine) as session:
        first = audit_trail.audit_page(session, filters=filters, page_size=3, timezone=TIMEZONE)
        rest = audit_trail.audit_page(session, filters=filters, page_size=3, after=first.next_cursor, timezone=TIMEZONE)
    assert len(first.entries) == 3 and [e.action for e in rest.entries] == ["request.viewed"]
    assert rest.next_cursor is None

    with transaction(engine) as session:
        text = "".join(audit_trail.audit_csv_lines(session, filters=filters, batch=2, timezone=TIMEZONE))
    rows = list(csv.reader(io.StringIO(text)))
    assert rows[0] == list(audit_trail.CSV_HEADER)
    assert [r[3] for r in rows[1:]] == ["request.viewed", "request.completed", "consent.changed", "request.received"]
    assert rows[1][5] == '{"n": 1}' and rows[1][1] == "2026-11-20T09:00:00+00:00"


@pytest.mark.parametrize(
    ("query", "bad"),
    [
        ({"actor": "staff 1; drop"}, "actor"),
        ({"action": "<b>"}, "action"),
        ({"target": "camille"}, "target"),
        ({"start": "2026-13-01"}, "start"),
        ({"start": "2026-11-02", "end": "2026-11-01"}, "end"),
    ],
)
def test_bad_audit_filters_are_reported(query: dict[str, str], bad: str) -> None:
    _filters, errors = audit_trail.parse_audit_filters(query)
    assert list(errors) == [bad]


def test_csv_cells_cannot_become_formulas(engine: Engine) -> None:
    audit(engine, (datetime(2026, 11, 20, tzinfo=UTC), "=cmd", "-action", "@x"))
    with transaction(engine) as session:
        text = "".join(audit_trail.audit_csv_lines(session, filters=audit_trail.AuditFilters(), timezone=TIMEZONE))
    row = list(csv.reader(io.StringIO(text)))[1]
    assert row[2:5] == ["'=cmd", "'-action", "'@x"]
