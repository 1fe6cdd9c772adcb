"""Breach records: the 72-hour clock, selecting the customers concerned, the notice, sending it once, the export."""

from __future__ import annotations

import asyncio
import csv
import io
from datetime import UTC, date, datetime, timedelta

import pytest
from sqlalchemy import Engine, func, select

from portal.db import transaction
from portal.incidents import notices, selection, service
from portal.incidents.forms import IncidentFacts, parse_incident, parse_notice
from portal.mail.compose import EmailComposer
from portal.models import AuditEvent, IncidentRecipient, OutboxMessage
from portal.outbox.worker import OutboxWorker
from tests.conftest import TIMEZONE, SMTPServer, make_settings
from tests.factories import make_customer, make_store
from tests.purchase_factories import add_purchase

NOW = datetime(2026, 11, 23, 10, tzinfo=UTC)
DPO = "staff:1"
FACTS = IncidentFacts(
    discovered_at=datetime(2026, 11, 21, 9, tzinfo=UTC),
    nature="Stolen laptop",
    data_categories=("identity", "email_address"),
    people_estimate=300,
    consequences="Phishing",
    measures="Passwords reset",
)
NOTICE = {
    "fr": {
        "nature": "Vol d'un ordinateur",
        "consequences": "Hameçonnage",
        "measures": "Mots de passe changés",
        "advice": "Méfiez-vous des emails",
    },  # fmt: skip
    "en": {
        "nature": "Stolen laptop",
        "consequences": "Phishing",
        "measures": "Passwords reset",
        "advice": "Beware of emails",
    },  # fmt: skip
}


def record(engine: Engine, *, notice: bool = True) -> str:
    with transaction(engine) as session:
        reference = service.record_incident(session, facts=FACTS, actor=DPO, now=NOW)
        if notice:
            service.save_notice(session, reference=reference, notice=NOTICE, actor=DPO, now=NOW)
    return reference


def view(engine: Engine, reference: str) -> service.IncidentView:
    with transaction(engine) as session:
        return service.view_incident(session, reference=reference)


# --- Recording and the 72-hour clock ------------------------------------------------------------------------------


def test_the_form_is_checked_field_by_field() -> None:
    facts, errors = parse_incident({"discovered_at": "2026-11-24T09:00"}, ["identity"], now=NOW, timezone=TIMEZONE)
    assert facts is None
    assert set(errors) == {"discovered_at", "categories", "people_estimate", "nature", "consequences", "measures"}
    form = {"discovered_at": "2026-11-21T10:00", "category_identity": "1", "people_estimate": "12", "nature": "n",
            "consequences": "c", "measures": "m"}  # fmt: skip
    facts, errors = parse_incident(form, ["identity", "browsing"], now=NOW, timezone=TIMEZONE)
    assert errors == {} and facts is not None
    assert facts.discovered_at == datetime(2026, 11, 21, 9, tzinfo=UTC)  # 10:00 in Paris
    assert facts.data_categories == ("identity",)
    _, errors = parse_notice({"fr_nature": "x"})
    assert len(errors) == 7


def test_the_cnil_must_be_told_within_72_hours_of_discovery(engine: Engine) -> None:
    reference = record(engine)
    item = view(engine, reference)

    assert item.deadline == FACTS.discovered_at + timedelta(hours=72)
    assert not item.overdue(item.deadline) and item.overdue(item.deadline + timedelta(seconds=1))

    with transaction(engine) as session:
        service.record_cnil_notification(session, reference=reference, notified_at=NOW, cnil_reference="CNIL-42",
                                         actor=DPO, now=NOW)  # fmt: skip
    item = view(engine, reference)
    assert item.incident.cnil_reference == "CNIL-42" and not item.overdue(item.deadline + timedelta(days=9))
    with transaction(engine) as session:
        actions = session.scalars(select(AuditEvent.action).where(AuditEvent.target == f"incident:{reference}")).all()
    assert actions == ["incident.recorded", "incident.notice_saved", "incident.cnil_notified"]


# --- Selection ----------------------------------------------------------------------------------------------------


def test_selection_by_store_and_purchase_days(engine: Engine) -> None:
    store, other_store = make_store(engine, code="LYON1"), make_store(engine, code="PARIS1")
    first = make_customer(engine)
    last = make_customer(engine)
    outside = make_customer(engine)
    elsewhere = make_customer(engine)
    add_purchase(engine, first, store, at=datetime(2026, 11, 1, 0, 30, tzinfo=UTC))  # 1 November in Paris
    add_purchase(engine, last, store, at=datetime(2026, 11, 10, 22, 30, tzinfo=UTC))  # 10 November, 23:30 Paris
    add_purchase(engine, outside, store, at=datetime(2026, 11, 10, 23, 30, tzinfo=UTC))  # 11 November in Paris
    add_purchase(engine, elsewhere, other_store, at=datetime(2026, 11, 5, tzinfo=UTC))
    reference = record(engine)

    with transaction(engine) as session:
        result = selection.select_by_store(session, reference=reference, store_code="LYON1", first_day=date(2026, 11,
            1), last_day=date(2026, 11, 10), timezone=TIMEZONE, actor=DPO, now=NOW)  # fmt: skip
    assert (result.matched, result.added) == (2, 2)

    with transaction(engine) as session, pytest.raises(selection.SelectionRefused):
        selection.select_by_store(session, reference=reference, store_code="NOPE", first_day=date(2026, 11, 1),
                                  last_day=date(2026, 11, 2), timezone=TIMEZONE, actor=DPO, now=NOW)  # fmt: skip


def test_selection_by_category_and_from_a_list_reports_bad_lines(engine: Engine) -> None:
    with_phone = make_customer(engine, email="Anne@example.com")
    without_phone = make_customer(engine, phone=None, retailer_ref="CRM-2")
    make_customer(engine, email=None, email_key=None, erased_at=NOW, retailer_ref="CRM-GONE")
    reference = record(engine)

    with transaction(engine) as session:
        by_phone = selection.select_by_category(session, reference=reference, category="phone_number", actor=DPO,
                                                now=NOW)  # fmt: skip
        listed = selection.select_from_list(
            session,
            reference=reference,
            text="anne@EXAMPLE.com\n\nCRM-2\nnobody@example.com\nCRM-GONE\na@b.c, d@e.f\nCRM-2\n",
            actor=DPO,
            now=NOW,
        )
    assert (by_phone.matched, by_phone.added) == (1, 1)
    assert (listed.matched, listed.added) == (2, 1)  # Anne was selected already, by her phone number
    assert [(line.number, line.text) for line in listed.bad_lines] == [
        (4, "nobody@example.com"),
        (5, "CRM-GONE"),
        (6, "a@b.c, d@e.f"),
    ]
    assert view(engine, reference).selected == 2
    assert with_phone.id != without_phone.id
    with transaction(engine) as session, pytest.raises(selection.SelectionRefused):
        selection.select_by_category(session, reference=reference, category="payment", actor=DPO, now=NOW)


# --- The notice: preview, sending once, the customer's view, the export --------------------------------------------


def test_the_preview_is_in_the_customers_language(engine: Engine, composer: EmailComposer) -> None:
    make_customer(engine, email="en@example.com", preferred_language="en", first_name="Jo")
    make_customer(engine, email="fr@example.com", preferred_language="fr", first_name="Léa")
    reference = record(engine)
    with transaction(engine) as session:
        english = notices.preview_notice(session, reference=reference, customer="EN@example.com", composer=composer)
        french = notices.preview_notice(session, reference=reference, customer="fr@example.com", composer=composer)
    assert "security incident" in english.subject and "Beware of emails" in english.text and "Jo" in english.text
    assert "incident de sécurité" in french.subject and "Méfiez-vous des emails" in french.text
    assert reference in french.text


def test_notices_go_once_each_in_their_language_even_across_restarts(
    engine: Engine, database_url: str, composer: EmailComposer, smtp: SMTPServer
) -> None:
    settings = make_settings(database_url, smtp.port)
    addresses = {"fr1@example.com": "fr", "fr2@example.com": "fr", "en1@example.com": "en"}
    for address, language in addresses.items():
        make_customer(engine, email=address, preferred_language=language)
    reference = record(engine)
    with transaction(engine) as session:
        selection.select_by_category(session, reference=reference, category="email_address", actor=DPO, now=NOW)

    # A send that fails before its commit (the process dies) leaves nobody marked and nothing queued.
    with pytest.raises(RuntimeError), transaction(engine) as session:
        notices.send_notices(session, reference=reference, composer=composer, actor=DPO, now=NOW, limit=2)
        raise RuntimeError("the process dies")
    assert view(engine, reference).notified == 0

    sent = []
    for _ in range(4):  # batches of one; the process "restarts" between them
        with transaction(engine) as session:
            sent.append(notices.send_notices(session, reference=reference, composer=composer, actor=DPO, now=NOW,
                                             limit=1))  # fmt: skip
    assert sent == [1, 1, 1, 0]
    asyncio.run(OutboxWorker(engine, settings, clock=lambda: NOW).deliver_due(NOW))
    for address in addresses:
        smtp.wait_for(address)
    received = {m.recipients[0]: m for m in smtp.messages}
    assert sorted(received) == sorted(addresses) and len(smtp.messages) == 3
    assert "Beware of emails" in received["en1@example.com"].text
    assert "Méfiez-vous des emails" in received["fr1@example.com"].text
    with transaction(engine) as session:
        assert (
            session.scalar(select(func.count()).select_from(OutboxMessage).where(OutboxMessage.sent_at.is_(None))) == 0
        )
        customer_id = session.scalars(select(IncidentRecipient.customer_id)).first()
        shown = notices.notices_for_customer(session, customer_id=customer_id, language="fr")
    assert shown[0].reference == reference and shown[0].parts["advice"] == "Méfiez-vous des emails"


def test_nothing_is_sent_before_the_notice_is_written(engine: Engine, composer: EmailComposer) -> None:
    reference = record(engine, notice=False)
    with transaction(engine) as session, pytest.raises(selection.SelectionRefused):
        notices.send_notices(session, reference=reference, composer=composer, actor=DPO, now=NOW)


def test_the_cnil_export_holds_the_timeline_and_references_not_contents(
    engine: Engine, composer: EmailComposer
) -> None:
    customer = make_customer(engine, email="camille@example.com")
    reference = record(engine)
    with transaction(engine) as session:
        selection.select_from_list(session, reference=reference, text="camille@example.com", actor=DPO, now=NOW)
        notices.send_notices(session, reference=reference, composer=composer, actor=DPO, now=NOW)
    with transaction(engine) as session:
        lines = service.incident_csv(session, reference=reference, actor=DPO, now=NOW)
    rows = list(csv.DictReader(io.StringIO("".join(lines))))
    assert {row["what"] for row in rows if row["section"] == "timeline"} >= {
        "incident.recorded",
        "incident.recipients_selected",
        "incident.notices_sent",
    }
    notified = [row for row in rows if row["section"] == "notification"]
    assert notified == [
        {
            "section": "notification",
            "when": NOW.isoformat(),
            "what": "notified",
            "who": "",
            "reference": f"customer:{customer.id}",
            "detail": "selected_by=list",
        }  # fmt: skip
    ]
    text = "".join(lines)
    assert "camille@example.com" not in text and "Méfiez-vous" not in text
