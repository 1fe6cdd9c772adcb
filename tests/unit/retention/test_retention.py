"""Retention runs: each rule of the register before, at and after its period, legal hold, dry run, resume."""

from __future__ import annotations

import asyncio
import dataclasses
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import Engine, func, select

from portal.audit import record_audit
from portal.consent.register import PurposeRegister, load_register
from portal.db import transaction
from portal.i18n import using_locale
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
from portal.outbox.worker import OutboxWorker
from portal.retention import summary
from portal.retention.rules import build_rules
from portal.retention.service import last_run, preview, retention_overview, run_retention
from portal.settings import Settings, SettingsError
from tests.browsing_factories import add_views_at, record_consent
from tests.conftest import SMTPServer, email_composer, make_settings
from tests.factories import make_customer, make_store
from tests.purchase_factories import add_purchase

NOW = datetime(2026, 11, 23, 10, tzinfo=UTC)
SECOND = timedelta(seconds=1)
THIRTEEN_MONTHS_AGO = datetime(2025, 10, 23, 10, tzinfo=UTC)  # browsing_analytics: 13 months from collection
THREE_YEARS_AGO = datetime(2023, 11, 23, 10, tzinfo=UTC)  # marketing: 3 years from the end of the relationship
NOTICE = timedelta(days=30)  # PORTAL_INACTIVITY_NOTICE_DAYS: the warning comes this long before anonymisation


@pytest.fixture
def register(settings: Settings) -> PurposeRegister:
    return load_register(settings.purposes_file)


def count(engine: Engine, model, *conditions) -> int:  # type: ignore[no-untyped-def]
    with transaction(engine) as session:
        return session.execute(select(func.count()).select_from(model).where(*conditions)).scalar_one()


def run(engine: Engine, settings: Settings, register: PurposeRegister, *, now: datetime = NOW, **options):  # type: ignore[no-untyped-def]
    report = run_retention(engine, now=now, settings=settings, register=register, composer=email_composer(), **options)
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

    warned, _ = run(engine, settings, register, now=NOW - NOTICE)  # the warning, the notice period before
    assert warned["inactivity_warnings"] == (1, 0) and warned["inactive_customers"] == (0, 0)
    counts, _ = run(engine, settings, register)

    assert counts["inactive_customers"] == (1, 1)  # one person anonymised, one purchase kept for accounting
    assert counts["inactivity_warnings"] == (1, 0)  # at_period, due within the notice period now
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


# --- The warning before the inactivity rule anonymises anyone ---------------------------------------------------------


def warned_at(engine: Engine, customer: Customer) -> datetime | None:
    with transaction(engine) as session:
        return session.scalar(select(Customer.inactivity_warned_at).where(Customer.id == customer.id))


def erased(engine: Engine, customer: Customer) -> bool:
    with transaction(engine) as session:
        return session.scalar(select(Customer.erased_at).where(Customer.id == customer.id)) is not None


def warnings(engine: Engine) -> list[OutboxMessage]:
    with transaction(engine) as session:
        return list(session.scalars(select(OutboxMessage).where(OutboxMessage.topic == "inactivity-warning")))


def test_the_warning_comes_the_notice_period_before_and_anonymisation_not_before_it_ends(
    engine: Engine, settings: Settings, register
) -> None:
    store = make_store(engine)
    customer = make_customer(engine, created_at=datetime(2019, 1, 1, tzinfo=UTC), preferred_language="en")
    add_purchase(engine, customer, store, at=THREE_YEARS_AGO)  # anonymised from NOW + 1 s: warned from NOW - NOTICE

    early, _ = run(engine, settings, register, now=NOW - NOTICE - SECOND)
    assert early["inactivity_warnings"] == (0, 0) and warned_at(engine, customer) is None
    warn_time = NOW - NOTICE + SECOND
    first, _ = run(engine, settings, register, now=warn_time)
    assert first["inactivity_warnings"] == (1, 0) and warned_at(engine, customer) == warn_time
    assert len(warnings(engine)) == 1

    # Past the inactivity period, but warned less than the notice period ago: kept, and not warned twice.
    kept, _ = run(engine, settings, register, now=warn_time + NOTICE - SECOND)
    assert kept["inactive_customers"] == (0, 0) and kept["inactivity_warnings"] == (0, 0)
    assert not erased(engine, customer) and len(warnings(engine)) == 1
    gone, _ = run(engine, settings, register, now=warn_time + NOTICE)
    assert gone["inactive_customers"] == (1, 1) and erased(engine, customer)
    with transaction(engine) as session:
        audit = session.scalars(select(AuditEvent).where(AuditEvent.action == "customer.inactivity_warned")).one()
    assert audit.target == f"customer:{customer.id}" and audit.detail == {
        "anonymised_from": (warn_time + NOTICE).date().isoformat(),
        "emailed": True,
    }


def test_a_customer_long_past_the_period_but_never_warned_is_warned_first_never_anonymised_unwarned(
    engine: Engine, settings: Settings, register
) -> None:
    customer = make_customer(engine, created_at=datetime(2018, 1, 1, tzinfo=UTC))
    rules = {rule.code: rule for rule in build_rules(now=NOW, settings=settings, register=register)}
    with transaction(engine) as session:  # the anonymising rule alone, as if the warning rule had not run
        assert rules["inactive_customers"].pending(session).count == 0
        assert rules["inactive_customers"].remove_batch(session, 100).removed == 0
    assert pending(engine, settings, register)["inactivity_warnings"] == 1

    counts, _ = run(engine, settings, register)
    assert counts["inactivity_warnings"] == (1, 0) and counts["inactive_customers"] == (0, 0)
    assert not erased(engine, customer)
    assert pending(engine, settings, register, now=NOW + NOTICE)["inactive_customers"] == 1


def test_a_contact_after_the_warning_keeps_the_account_and_the_next_lapse_is_warned_again(
    engine: Engine, settings: Settings, register
) -> None:
    customer = make_customer(engine, created_at=datetime(2018, 1, 1, tzinfo=UTC))
    run(engine, settings, register)
    signed_in_at = NOW + timedelta(days=10)
    with transaction(engine) as session:
        record_audit(session, actor="x", action="signin.succeeded", target=f"customer:{customer.id}", now=signed_in_at)

    later, _ = run(engine, settings, register, now=NOW + NOTICE)
    assert later["inactive_customers"] == (0, 0) and later["inactivity_warnings"] == (0, 0)
    assert not erased(engine, customer) and warned_at(engine, customer) == NOW

    # Three years after that sign-in the customer lapses again: the old warning does not count, a new one comes.
    lapse = datetime(2029, 12, 3, 10, tzinfo=UTC)  # signed_in_at + 3 years
    stale, _ = run(engine, settings, register, now=lapse)
    assert stale["inactive_customers"] == (0, 0) and stale["inactivity_warnings"] == (1, 0)
    assert warned_at(engine, customer) == lapse and not erased(engine, customer)
    assert run(engine, settings, register, now=lapse + NOTICE)[0]["inactive_customers"] == (1, 0)


def test_a_customer_without_an_address_is_recorded_as_warned_and_no_email_is_queued(
    engine: Engine, settings: Settings, register
) -> None:
    customer = make_customer(engine, created_at=datetime(2018, 1, 1, tzinfo=UTC))
    with transaction(engine) as session:  # known by the tills only (loyalty card), no address
        row = session.get(Customer, customer.id)
        assert row is not None
        row.email = row.email_key = None
    run(engine, settings, register)
    assert warned_at(engine, customer) == NOW and warnings(engine) == []
    with transaction(engine) as session:
        detail = session.scalars(select(AuditEvent.detail).where(AuditEvent.action == "customer.inactivity_warned"))
        assert [d["emailed"] for d in detail] == [False]
    assert run(engine, settings, register, now=NOW + NOTICE)[0]["inactive_customers"] == (1, 0)


def test_the_notice_period_comes_from_the_settings(engine: Engine, settings: Settings, register) -> None:
    customer = make_customer(engine, created_at=datetime(2019, 1, 1, tzinfo=UTC))
    add_purchase(engine, customer, make_store(engine), at=THREE_YEARS_AGO)
    longer = dataclasses.replace(settings, inactivity_notice_days=60)
    assert pending(engine, settings, register, now=NOW - timedelta(days=45))["inactivity_warnings"] == 0
    assert pending(engine, longer, register, now=NOW - timedelta(days=45))["inactivity_warnings"] == 1
    with pytest.raises(SettingsError):
        dataclasses.replace(settings, inactivity_notice_days=0).check()


def test_the_warning_reaches_the_customer_in_their_language(
    engine: Engine, database_url: str, register, smtp: SMTPServer
) -> None:
    settings = make_settings(database_url, smtp.port)
    make_customer(engine, email="ines@example.com", first_name="Inès", preferred_language="en",
                  created_at=datetime(2018, 1, 1, tzinfo=UTC))  # fmt: skip
    make_customer(engine, email="leo@example.com", first_name="Léo", preferred_language="fr",
                  created_at=datetime(2018, 1, 1, tzinfo=UTC))  # fmt: skip
    run(engine, settings, register)
    asyncio.run(OutboxWorker(engine, settings, clock=lambda: NOW).deliver_due(NOW))

    english, french = smtp.wait_for("ines@example.com"), smtp.wait_for("leo@example.com")
    assert english.subject == "Your customer account will be anonymised on 23 December 2026"
    assert "Hello Inès" in english.text and "almost 3 years" in english.text
    assert f"{settings.base_url}/signin" in english.text and "kept for accounting" in english.text
    assert "sera anonymisé le 23 décembre 2026" in french.subject and "près de 3 ans" in french.text


def test_a_dry_run_reports_the_warnings_and_the_anonymisations(engine: Engine, settings: Settings, register) -> None:
    make_customer(engine, created_at=datetime(2018, 1, 1, tzinfo=UTC))  # to warn
    warned = make_customer(engine, created_at=datetime(2018, 1, 1, tzinfo=UTC))
    with transaction(engine) as session:
        session.get(Customer, warned.id).inactivity_warned_at = NOW - NOTICE  # type: ignore[union-attr]
    rules = build_rules(now=NOW, settings=settings, register=register)
    with transaction(engine) as session, using_locale("en"):
        lines = summary.dry_run_lines(rules, preview(session, rules=rules))
    assert any(line.startswith("inactivity_warnings (30 days before): 1 customers to warn") for line in lines)
    assert any(line.startswith("inactive_customers (3 years): 1,") for line in lines)
    assert count(engine, Customer, Customer.erased_at.is_not(None)) == 0 and warnings(engine) == []


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


def _visitor_answer(engine: Engine, *, purpose: str, at: datetime, customer: Customer | None = None) -> None:
    with transaction(engine) as session:
        session.add(
            ConsentEvent(
                customer_id=customer.id if customer else None,
                visitor_id="7f0c2a9e-5b1d-4c3e-9a8f-0123456789ab",
                purpose=purpose,
                granted=True,
                occurred_at=at,
                channel="website",
                actor="visitor",
                policy_version="2026-01",
                banner_version="b1",
            )
        )


def test_website_answers_never_linked_go_six_months_and_the_purposes_period_after_the_answer(
    engine: Engine, settings: Settings, register
) -> None:
    lapse = timedelta(days=182)  # the banner asks again after 6 months (banner/bundle.py REMEMBER_DAYS)
    _visitor_answer(engine, purpose="browsing_analytics", at=THIRTEEN_MONTHS_AGO - lapse - SECOND)  # due
    _visitor_answer(engine, purpose="browsing_analytics", at=THIRTEEN_MONTHS_AGO - lapse)  # at the limit: kept
    _visitor_answer(engine, purpose="personalised_offers", at=THIRTEEN_MONTHS_AGO - lapse - SECOND)  # 3 years: kept
    linked = active_customer(engine)
    _visitor_answer(engine, purpose="browsing_analytics", at=datetime(2020, 1, 1, tzinfo=UTC), customer=linked)

    assert pending(engine, settings, register)["website_answers"] == 1
    counts, _ = run(engine, settings, register)

    assert counts["website_answers"] == (1, 0)
    assert count(engine, ConsentEvent, ConsentEvent.customer_id.is_(None)) == 2
    # A linked visitor's answers are the customer's proof: the consent proof rule, not this one, decides.
    assert count(engine, ConsentEvent, ConsentEvent.customer_id == linked.id) == 1
    assert run(engine, settings, register)[0]["website_answers"] == (0, 0)


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


def test_portal_retention_warns_from_the_command_line_and_its_dry_run_says_so(
    engine: Engine, database_url: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from portal.cli import main

    make_customer(engine, created_at=datetime(2018, 1, 1, tzinfo=UTC))
    monkeypatch.setenv("PORTAL_DATABASE_URL", database_url)
    assert main(["retention", "--dry-run", "--lang", "en"]) == 0
    assert "inactivity_warnings (30 days before): 1 customers to warn" in capsys.readouterr().out
    assert main(["retention", "--lang", "en"]) == 0
    printed = capsys.readouterr().out
    assert "inactivity_warnings: 1 customers warned" in printed and "inactive_customers: 0 removed" in printed
    assert len(warnings(engine)) == 1
