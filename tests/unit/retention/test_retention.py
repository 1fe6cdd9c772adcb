"""Retention runs: each rule of the register before, at and after its period, legal hold, dry run, resume."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import Engine, func, select

from portal.audit import record_audit
from portal.consent.register import PurposeRegister, load_register
from portal.db import transaction
from portal.models import (
    AuditEvent,
    ConsentEvent,
    Customer,
    LoginChallenge,
    OutboxMessage,
    PageView,
    PageViewDay,
    PageViewTotal,
    PrivacyRequest,
    Purchase,
    PurchaseLine,
    PurchaseTotal,
    RequestEvent,
)
from portal.retention.rules import build_rules
from portal.retention.service import last_run, preview, retention_overview, run_retention
from portal.settings import Settings
from tests.browsing_factories import add_views_at, record_consent
from tests.factories import make_customer, make_store
from tests.purchase_factories import add_purchase

NOW = datetime(2026, 11, 23, 10, tzinfo=UTC)
SECOND = timedelta(seconds=1)
THIRTEEN_MONTHS_AGO = datetime(2025, 10, 23, 10, tzinfo=UTC)  # browsing_analytics: 13 months from collection
THREE_YEARS_AGO = datetime(2023, 11, 23, 10, tzinfo=UTC)  # marketing: 3 years from the end of the relationship


@pytest.fixture
def register(settings: Settings) -> PurposeRegister:
    return load_register(settings.purposes_file)


def count(engine: Engine, model, *conditions) -> int:  # type: ignore[no-untyped-def]
    with transaction(engine) as session:
        return session.execute(select(func.count()).select_from(model).where(*conditions)).scalar_one()


def run(engine: Engine, settings: Settings, register: PurposeRegister, *, now: datetime = NOW, **options):  # type: ignore[no-untyped-def]
    report = run_retention(engine, now=now, settings=settings, register=register, **options)
    return {o.code: (o.removed, o.held) for o in report.outcomes}, report


def pending(engine: Engine, settings: Settings, register: PurposeRegister, now: datetime = NOW) -> dict[str, int]:
    rules = build_rules(now=now, settings=settings, register=register)
    with transaction(engine) as session:
        return {code: due.count for code, due in preview(session, rules=rules).items()}


def active_customer(engine: Engine, **fields: object) -> Customer:
    """A customer who signed in just now, so the inactivity rule leaves them alone."""
    customer = make_customer(engine, **fields)
    with transaction(engine) as session:
        record_audit(session, actor="x", action="signin.succeeded", target=f"customer:{customer.id}", now=NOW)
    return customer


# --- Page views ---------------------------------------------------------------------------------------------------


def test_page_views_go_after_their_period_with_their_counts(engine: Engine, settings: Settings, register) -> None:
    customer = active_customer(engine)
    moments = [THIRTEEN_MONTHS_AGO - timedelta(days=3), THIRTEEN_MONTHS_AGO - SECOND, THIRTEEN_MONTHS_AGO]
    add_views_at(engine, customer, [*moments, NOW - timedelta(days=1)])

    assert pending(engine, settings, register)["page_views"] == 2
    counts, _ = run(engine, settings, register)

    assert counts["page_views"] == (2, 0)
    with transaction(engine) as session:
        kept = sorted(session.scalars(select(PageView.viewed_at)))
        days = session.scalars(select(func.sum(PageViewDay.view_count))).one()
        total = session.get(PageViewTotal, customer.id)
    assert kept == [THIRTEEN_MONTHS_AGO, NOW - timedelta(days=1)]  # at the period: still kept
    assert days == 2 and total is not None and total.view_count == 2


# --- Inactive customers and the legal hold on their purchases -------------------------------------------------------


def test_inactive_customers_are_anonymised_as_an_erasure_would(engine: Engine, settings: Settings, register) -> None:
    store = make_store(engine)
    gone = make_customer(engine, created_at=datetime(2019, 1, 1, tzinfo=UTC))
    add_purchase(engine, gone, store, at=THREE_YEARS_AGO - SECOND)
    at_period = make_customer(engine, created_at=datetime(2019, 1, 1, tzinfo=UTC))
    add_purchase(engine, at_period, store, at=THREE_YEARS_AGO)
    restricted = make_customer(engine, created_at=datetime(2019, 1, 1, tzinfo=UTC), restricted_at=NOW)
    signed_in = make_customer(engine, created_at=datetime(2019, 1, 1, tzinfo=UTC))
    with transaction(engine) as session:
        record_audit(
            session, actor="x", action="signin.succeeded", target=f"customer:{signed_in.id}", now=NOW - timedelta(1)
        )

    counts, _ = run(engine, settings, register)

    assert counts["inactive_customers"] == (1, 1)  # one person anonymised, one purchase kept for accounting
    with transaction(engine) as session:
        erased = {c.id for c in session.scalars(select(Customer).where(Customer.erased_at.is_not(None)))}
        tombstone = session.get(Customer, gone.id)
        purchase = session.scalars(select(Purchase).where(Purchase.receipt_number.is_not(None))).all()
        webhook = session.scalars(select(OutboxMessage).where(OutboxMessage.topic == "customer.erased")).one()
    assert erased == {gone.id}
    assert tombstone is not None and tombstone.email is None and tombstone.erased_email_hash
    assert {p.customer_id for p in purchase} == {None, at_period.id}
    assert webhook.payload is not None and webhook.payload["data"]["reason"] == "retention"
    assert restricted.id not in erased and signed_in.id not in erased
    assert count(engine, PurchaseTotal, PurchaseTotal.customer_id == gone.id) == 0


# --- Invoices: kept 10 years from the close of their financial year --------------------------------------------------


def test_invoices_go_ten_years_after_their_financial_year(engine: Engine, settings: Settings, register) -> None:
    customer = active_customer(engine)
    store = make_store(engine)
    old = add_purchase(engine, customer, store, at=datetime(2015, 12, 31, 12, tzinfo=UTC))  # year closed 2016-01-01
    kept = add_purchase(engine, customer, store, at=datetime(2016, 1, 1, 12, tzinfo=UTC))

    counts, _ = run(engine, settings, register)

    assert counts["invoices"] == (1, 0)
    assert count(engine, Purchase) == 1 and count(engine, PurchaseLine, PurchaseLine.purchase_id == old.id) == 0
    with transaction(engine) as session:
        totals = session.scalars(select(PurchaseTotal)).all()
    assert [(t.year, t.purchase_count) for t in totals] == [(2016, 1)]
    assert kept.id is not None


def test_a_year_later_the_next_year_of_invoices_goes(engine: Engine, settings: Settings, register) -> None:
    customer = active_customer(engine)
    add_purchase(engine, customer, make_store(engine), at=datetime(2016, 6, 1, tzinfo=UTC))
    new_year = datetime(2026, 12, 31, 23, 0, tzinfo=UTC)  # midnight on 1 January 2027 in Paris

    assert pending(engine, settings, register, now=new_year - SECOND)["invoices"] == 0
    assert pending(engine, settings, register, now=new_year)["invoices"] == 1


# --- Proof of consent --------------------------------------------------------------------------------------------


def test_proof_of_a_withdrawn_consent_goes_after_the_purposes_period(
    engine: Engine, settings: Settings, register
) -> None:
    customer = active_customer(engine)
    other = active_customer(engine)
    for who, withdrawn_at in ((customer, THREE_YEARS_AGO - SECOND), (other, THREE_YEARS_AGO)):
        record_consent(engine, who, granted=True, at=datetime(2020, 1, 1, tzinfo=UTC), purpose="email_newsletter")
        record_consent(engine, who, granted=False, at=withdrawn_at, purpose="email_newsletter")
    record_consent(engine, customer, granted=True, at=datetime(2020, 1, 1, tzinfo=UTC), purpose="sms_offers")

    counts, _ = run(engine, settings, register)

    assert counts["consent_proof"] == (2, 0)
    with transaction(engine) as session:
        left = session.execute(select(ConsentEvent.customer_id, ConsentEvent.purpose)).all()
    assert sorted(left) == sorted(
        [(customer.id, "sms_offers"), (other.id, "email_newsletter"), (other.id, "email_newsletter")]
    )


# --- Closed requests, sent messages, sign-in records ----------------------------------------------------------------


def _request(engine: Engine, reference: str, *, status: str, closed_at: datetime | None) -> None:
    with transaction(engine) as session:
        request = PrivacyRequest(
            reference=reference,
            type="access",
            channel="web",
            status=status,
            received_at=datetime(2020, 1, 1, tzinfo=UTC),
            due_at=datetime(2020, 2, 1, tzinfo=UTC),
            closed_at=closed_at,
        )
        session.add(request)
        session.flush()
        session.add(RequestEvent(request_id=request.id, occurred_at=request.received_at, actor="system", kind="x"))


def test_closed_requests_go_after_the_configured_period(engine: Engine, settings: Settings, register) -> None:
    five_years_ago = datetime(2021, 11, 23, 10, tzinfo=UTC)  # PORTAL_CLOSED_REQUEST_RETENTION_MONTHS: 60
    _request(engine, "R-OLD", status="completed", closed_at=five_years_ago - SECOND)
    _request(engine, "R-AT", status="rejected", closed_at=five_years_ago)
    _request(engine, "R-OPEN", status="in_progress", closed_at=None)

    counts, _ = run(engine, settings, register)

    assert counts["closed_requests"] == (1, 0)
    with transaction(engine) as session:
        assert sorted(session.scalars(select(PrivacyRequest.reference))) == ["R-AT", "R-OPEN"]
    assert count(engine, RequestEvent) == 2


def test_sent_messages_and_expired_sign_in_records_go(engine: Engine, settings: Settings, register) -> None:
    with transaction(engine) as session:
        for sent_at in (NOW - timedelta(days=31), NOW - timedelta(days=29), None):
            session.add(
                OutboxMessage(
                    kind="email", topic="t", payload=None, created_at=NOW, next_attempt_at=NOW, sent_at=sent_at
                )  # fmt: skip
            )
        session.add(
            LoginChallenge(
                flow_id="f",
                email_digest="d",
                token_hash="t",
                code_hash="c",
                created_at=NOW - timedelta(3),
                expires_at=NOW - timedelta(days=2),
            )  # fmt: skip
        )

    counts, _ = run(engine, settings, register)

    assert counts["sent_messages"] == (1, 0)
    assert counts["sign_in_records"] == (1, 0)
    assert count(engine, OutboxMessage) == 2 and count(engine, LoginChallenge) == 0


# --- Dry run, interruption, idempotence, the audit event -----------------------------------------------------------


def _old_views(engine: Engine, n: int) -> Customer:
    customer = active_customer(engine)
    add_views_at(engine, customer, [THIRTEEN_MONTHS_AGO - timedelta(hours=h + 1) for h in range(n)])
    return customer


def test_a_dry_run_changes_nothing(engine: Engine, settings: Settings, register) -> None:
    _old_views(engine, 3)
    rules = build_rules(now=NOW, settings=settings, register=register)
    with transaction(engine) as session:
        due = preview(session, rules=rules)

    assert due["page_views"].count == 3
    assert due["page_views"].oldest == THIRTEEN_MONTHS_AGO - timedelta(hours=3)
    assert count(engine, PageView) == 3 and count(engine, AuditEvent, AuditEvent.action == "retention.run") == 0


def test_an_interrupted_run_resumes_and_a_second_run_removes_nothing(
    engine: Engine, settings: Settings, register
) -> None:
    _old_views(engine, 5)
    batches = iter(range(100))

    _, report = run(engine, settings, register, batch_size=2, stop=lambda: next(batches) >= 1)

    assert report.interrupted
    assert count(engine, PageView) == 3  # the one committed batch stays done
    with transaction(engine) as session:
        interrupted = last_run(session)
    assert interrupted is not None and interrupted.interrupted
    assert interrupted.counts["page_views"] == {"removed": 2, "held": 0}

    counts, report = run(engine, settings, register, batch_size=2)
    assert not report.interrupted and counts["page_views"] == (3, 0)
    assert count(engine, PageViewDay) == 0 and count(engine, PageViewTotal) == 0

    again, _ = run(engine, settings, register)
    assert all(removed == (0, 0) for removed in again.values())
    assert count(engine, AuditEvent, AuditEvent.action == "retention.run") == 3


def test_the_overview_shows_the_last_run_and_the_next(engine: Engine, settings: Settings, register) -> None:
    _old_views(engine, 2)
    run(engine, settings, register)
    _old_views(engine, 1)

    with transaction(engine) as session:
        overview = retention_overview(session, now=NOW, settings=settings, register=register)

    views = next(status for status in overview.rules if status.rule.code == "page_views")
    assert views.rule.sources == ("browsing_analytics",) and views.rule.periods == ((13, "months"),)
    assert views.last_removed == 2 and views.next_run.count == 1
    assert overview.last_run is not None and overview.last_run.occurred_at == NOW
