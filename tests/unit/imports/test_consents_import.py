"""Importing consents: original date, channel and version kept; history never changes the current state."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from sqlalchemy import func, select

from portal.consent import ledger
from portal.consent.register import load_register
from portal.db import in_transaction, transaction
from portal.erasure.tombstone import erased_email_hash
from portal.i18n import using_locale
from portal.imports.apply import ItemsRefused, apply_items
from portal.imports.consents import ConsentsKind
from portal.models import AuditEvent, ConsentEvent, ConsentWording, Customer, OutboxMessage
from tests.factories import make_customer
from tests.import_helpers import CONFIG, SAMPLES, context, load_mapping, make_sample_customers, mapped_rows, run

NOW = datetime(2026, 11, 23, 10, tzinfo=UTC)
MAPPING = load_mapping(CONFIG / "consents.toml")
HEADER = "N° client;E-mail;Carte fidélité;Finalité;Réponse;Date de la réponse;Version politique"


def kind(settings, **options) -> ConsentsKind:  # type: ignore[no-untyped-def]
    return ConsentsKind(context(settings, NOW, MAPPING, **options))


def sample_rows() -> list:  # type: ignore[type-arg]
    return list(mapped_rows(SAMPLES / "consents.csv", MAPPING))


def rows_of(tmp_path, *lines: str) -> list:  # type: ignore[no-untyped-def,type-arg]
    path = tmp_path / "consents.csv"
    path.write_text("\n".join((HEADER, *lines)) + "\n", encoding="utf-8")
    return list(mapped_rows(path, MAPPING))


def events_of(engine, customer) -> list[ConsentEvent]:  # type: ignore[no-untyped-def]
    with transaction(engine) as session:
        statement = select(ConsentEvent).where(ConsentEvent.customer_id == customer.id)
        return list(session.scalars(statement.order_by(ConsentEvent.occurred_at, ConsentEvent.id)))


def count(engine, model, *where) -> int:  # type: ignore[no-untyped-def]
    with transaction(engine) as session:
        return session.execute(select(func.count()).select_from(model).where(*where)).scalar_one()


def webhooks(engine) -> list[dict]:  # type: ignore[type-arg]
    with transaction(engine) as session:
        rows = session.scalars(select(OutboxMessage).where(OutboxMessage.topic == "consent.changed"))
        return [row.payload["data"] for row in rows]


def paris(text: str) -> datetime:
    from zoneinfo import ZoneInfo

    return datetime.fromisoformat(text).replace(tzinfo=ZoneInfo("Europe/Paris")).astimezone(UTC)


def test_the_sample_file_is_recorded_as_it_happened(engine, settings) -> None:
    people = make_sample_customers(engine)
    outcome = run(engine, kind(settings), sample_rows())
    assert outcome.errors == {}
    # The loyalty-card row refuses a consent never given: the ledger records only changes.
    assert outcome.tally.outcomes == {"created": 13, "unchanged": 1}
    camille = events_of(engine, people["C0001"])
    assert [(e.purpose, e.granted, e.occurred_at, e.channel, e.policy_version) for e in camille] == [
        ("email_newsletter", True, paris("2020-03-14T10:12"), "store", "2019-05"),  # version in force that day
        ("sms_offers", True, paris("2020-03-14T10:13"), "store", "2019-05"),  # as stated
        ("sms_offers", False, paris("2022-02-02T17:45"), "store", "2021-09"),
    ]
    assert all(e.actor == "import:test" and e.wording_hash is None for e in camille)  # wording of 2019 never stored
    register = load_register(settings.purposes_file)
    (hugo,) = events_of(engine, people["C0004"])
    assert hugo.policy_version == "2026-01" == register.policy_version
    assert hugo.wording_hash == register.wording_hash("personalised_offers", "fr")
    (chloe,) = events_of(engine, people["C0005"])  # named by email only
    assert chloe.purpose == "email_newsletter" and chloe.policy_version == "2023-06"
    assert events_of(engine, people["C0008"]) == []
    # Nine purposes now stand granted that stood not given: nine events for the retailer, none for C0001's SMS
    # (given, then withdrawn: not given before, not given now) nor C0006's browsing.
    sent = webhooks(engine)
    assert len(sent) == 9 and all(w["granted"] for w in sent)
    assert {(w["retailer_customer_id"], w["purpose"]) for w in sent} >= {("C0001", "email_newsletter")}
    assert count(engine, AuditEvent, AuditEvent.action.in_(["consent.granted", "consent.withdrawn"])) == 13


def test_importing_the_same_file_again_changes_nothing(engine, settings) -> None:
    make_sample_customers(engine)
    run(engine, kind(settings), sample_rows())
    before = (count(engine, ConsentEvent), count(engine, AuditEvent), count(engine, OutboxMessage))
    again = run(engine, kind(settings), sample_rows())
    assert again.errors == {} and again.tally.outcomes == {"unchanged": 14}
    assert (count(engine, ConsentEvent), count(engine, AuditEvent), count(engine, OutboxMessage)) == before


def test_every_bad_row_is_reported_with_its_field_and_a_message(engine, settings, tmp_path) -> None:
    make_sample_customers(engine)
    rows = rows_of(
        tmp_path,
        "C0001;;;newsletter;oui;14/03/2020 10:12;",
        "C0001;;;order_management;oui;14/03/2020 10:12;",
        "C0001;;;email_newsletter;peut-être;14/03/2020 10:12;",
        "C0001;;;email_newsletter;oui;2020-13-45;",
        "C0001;;;email_newsletter;oui;24/11/2026 10:00;",
        "C0001;;;email_newsletter;oui;14/03/2020 10:12;2018-01",
        "C0001;;;email_newsletter;oui;14/03/2020 10:12;2023-06",
        "C0001;;;email_newsletter;oui;14/03/2018 10:12;",
        "C0404;;;email_newsletter;oui;14/03/2020 10:12;",
        ";;;email_newsletter;oui;14/03/2020 10:12;",
        "C0002;;;email_newsletter;;;",
    )
    outcome = run(engine, kind(settings), rows)
    assert outcome.messages() == {
        2: [("purpose", "Unknown purpose “newsletter”: the register's consent purposes are email_newsletter, "
             "sms_offers, phone_calls, postal_mail, personalised_offers, browsing_analytics, partner_sharing.")],
        3: [("purpose", "“order_management” is not a purpose customers consent to: its legal basis is not consent.")],
        4: [("granted", "“peut-être” is neither yes nor no (write yes/no, oui/non, true/false or 1/0).")],
        5: [("occurred_at", "“2020-13-45” is not a date and time in the format DD/MM/YYYY HH:MM.")],
        6: [("occurred_at", "This date is in the future.")],
        7: [("policy_version", "Unknown policy version “2018-01”: the register knows 2019-05, 2021-09, 2023-06, "
             "2026-01.")],
        8: [("policy_version", "Policy version 2023-06 was published on 2023-06-12, after this answer.")],
        9: [("occurred_at", "No privacy policy was published yet on that day: the first version, 2019-05, dates from "
             "2019-05-02.")],
        10: [("customer_id", "No customer matches this row.")],
        11: [("customer_id", "The row names no customer: give customer_id, email or loyalty_number.")],
        12: [("granted", "This value is required."), ("occurred_at", "This value is required.")],
    }  # fmt: skip
    assert count(engine, ConsentEvent) == 0


def test_messages_are_in_the_operators_language(engine, settings, tmp_path) -> None:
    make_sample_customers(engine)
    rows = rows_of(tmp_path, "C0001;;;order_management;oui;14/03/2020 10:12;", "C0404;;;sms_offers;non;14/03/2020;")
    outcome = run(engine, kind(settings), rows, locale="fr")
    assert outcome.messages() == {
        2: [("purpose", "«\xa0order_management\xa0» n'est pas une finalité à laquelle les clients consentent : sa "
             "base légale n'est pas le consentement.")],
        3: [("occurred_at", "« 14/03/2020 » n'est pas une date et heure au format DD/MM/YYYY HH:MM.")],
    }  # fmt: skip


def test_an_answer_older_than_the_latest_is_history_and_the_current_state_stays(engine, settings, tmp_path) -> None:
    people = make_sample_customers(engine)
    register = load_register(settings.purposes_file)
    leo = people["C0002"]
    clicked = datetime(2026, 6, 1, 9, tzinfo=UTC)
    in_transaction(
        engine,
        ledger.record_consent,
        register=register,
        customer_id=leo.id,
        purpose="sms_offers",
        granted=True,
        channel="web",
        actor="customer",
        now=clicked,
        locale="fr",
    )
    sent_before = len(webhooks(engine))
    rows = rows_of(tmp_path, "C0002;;;sms_offers;oui;10/01/2024 11:00;", "C0002;;;sms_offers;non;01/02/2025 18:00;")
    outcome = run(engine, kind(settings), rows)
    assert outcome.errors == {} and outcome.tally.outcomes == {"created": 2}
    with engine.connect() as connection:
        state = ledger.current_consents(connection, customer_id=leo.id)["sms_offers"]
    assert state.granted and state.changed_at == clicked and state.channel == "web"
    assert state.first_granted_at == paris("2024-01-10T11:00")  # the history is the truth about the past
    assert len(webhooks(engine)) == sent_before  # nothing changed for the retailer's systems
    with transaction(engine) as session:
        audit = session.scalars(select(AuditEvent).where(AuditEvent.action == "consent.history_recorded")).one()
        assert audit.target == f"customer:{leo.id}" and audit.detail["count"] == 2
        # The ledger agrees: the click stands, so clicking "give" again records nothing.
        assert not ledger.record_consent(
            session,
            register=register,
            customer_id=leo.id,
            purpose="sms_offers",
            granted=True,
            channel="web",
            actor="customer",
            now=clicked.replace(day=2),
            locale="fr",
        )
    history = [(e.granted, e.policy_version) for e in events_of(engine, leo)]
    assert history == [(True, "2023-06"), (False, "2023-06"), (True, "2026-01")]


def test_a_newer_answer_changes_the_state_and_tells_the_retailer(engine, settings, tmp_path) -> None:
    people = make_sample_customers(engine)
    run(engine, kind(settings), sample_rows())
    outcome = run(engine, kind(settings), rows_of(tmp_path, "C0002;;;email_newsletter;non;01/11/2026 08:30;"))
    assert outcome.tally.outcomes == {"created": 1}
    with engine.connect() as connection:
        state = ledger.current_consents(connection, customer_id=people["C0002"].id)["email_newsletter"]
    assert state.status == "withdrawn" and state.channel == "store"
    assert webhooks(engine)[-1] == {
        "customer_id": people["C0002"].id,
        "retailer_customer_id": "C0002",
        "purpose": "email_newsletter",
        "granted": False,
        "occurred_at": paris("2026-11-01T08:30").isoformat(),
        "channel": "store",
        "policy_version": "2026-01",
    }


def test_two_different_answers_at_the_same_moment_need_a_person(engine, settings, tmp_path) -> None:
    make_sample_customers(engine)
    run(engine, kind(settings), sample_rows())
    rows = rows_of(
        tmp_path,
        "C0002;;;email_newsletter;non;05/10/2021 11:03;",  # the file said "oui" at that very minute
        "C0003;;;sms_offers;oui;01/03/2024 10:00;",
        "C0003;;;sms_offers;non;01/03/2024 10:00;",
    )
    outcome = run(engine, kind(settings), rows)
    message = "A different answer about this purpose is recorded at the same moment."
    assert outcome.messages() == {2: [("granted", message)], 4: [("granted", message)]}


def test_a_restricted_customer_s_own_answers_are_recorded(engine, settings, tmp_path) -> None:
    customer = make_customer(engine, retailer_ref="C0042", restricted_at=datetime(2026, 1, 1, tzinfo=UTC))
    outcome = run(engine, kind(settings), rows_of(tmp_path, "C0042;;;email_newsletter;non;01/03/2026 10:00;"))
    assert outcome.tally.outcomes == {"unchanged": 1}
    outcome = run(engine, kind(settings), rows_of(tmp_path, "C0042;;;email_newsletter;oui;01/03/2026 10:00;"))
    assert outcome.tally.outcomes == {"created": 1} and len(events_of(engine, customer)) == 1


def test_an_erased_customer_is_dropped_not_recreated(engine, settings, tmp_path) -> None:
    erased = make_customer(
        engine,
        email=None,
        email_key=None,
        erased_at=datetime(2026, 2, 1, tzinfo=UTC),
        erased_email_hash=erased_email_hash(settings, "zoe.martin@example.fr"),
    )
    rows = rows_of(tmp_path, ";Zoe.Martin@example.fr;;email_newsletter;oui;01/03/2025 10:00;")
    outcome = run(engine, kind(settings), rows)
    assert outcome.errors == {}
    assert outcome.tally.outcomes == {"dropped": 1} and outcome.tally.reasons == {"erased": 1}
    assert events_of(engine, erased) == [] and count(engine, Customer) == 1


def test_the_api_path_takes_json_values_and_refuses_a_bad_batch_whole(engine, settings) -> None:
    people = make_sample_customers(engine)
    api = ConsentsKind(context(settings, NOW, source="api"))
    good = {"customer_id": "C0003", "purpose": "sms_offers", "granted": True, "occurred_at": "2026-11-20T10:00:00Z"}
    bad = {**good, "customer_id": "C0004", "purpose": "accounting"}
    with transaction(engine) as session, pytest.raises(ItemsRefused) as refused:
        apply_items(session, api, [good, bad])
    assert [(i, e.field) for i, e in refused.value.errors] == [(1, "purpose")]
    assert count(engine, ConsentEvent) == 0
    with transaction(engine) as session:
        tally = apply_items(session, api, [good])
    assert tally.outcomes == {"created": 1}
    (event,) = events_of(engine, people["C0003"])
    assert event.channel == "api" and event.policy_version == "2026-01" and event.actor == "api:test"


def test_the_wording_shown_in_the_customer_s_language_or_the_stated_one(engine, settings, tmp_path) -> None:
    emma = make_customer(engine, retailer_ref="C0077", preferred_language="en")
    register = load_register(settings.purposes_file)
    run(engine, kind(settings), rows_of(tmp_path, "C0077;;;postal_mail;oui;01/03/2026 10:00;"))
    (event,) = events_of(engine, emma)
    assert event.wording_hash == register.wording_hash("postal_mail", "en")
    api = ConsentsKind(context(settings, NOW, source="api"))
    item = {"customer_id": "C0077", "purpose": "sms_offers", "granted": "yes", "occurred_at": "2026-03-01T10:00:00Z"}
    with transaction(engine) as session:
        apply_items(session, api, [{**item, "locale": "fr"}])
    assert events_of(engine, emma)[-1].wording_hash == register.wording_hash("sms_offers", "fr")


def test_a_conflict_found_only_when_writing_is_dropped_and_noted(engine, settings, tmp_path) -> None:
    make_sample_customers(engine)
    importer = kind(settings)
    first, second = rows_of(
        tmp_path, "C0003;;;sms_offers;oui;01/03/2024 10:00;", "C0003;;;sms_offers;non;01/03/2024 10:00;"
    )
    # Two batches of one file: each checked alone finds nothing wrong, as the runner checks every batch first.
    records = [importer.parse(fields, line) for line, fields in (first, second)]
    with transaction(engine) as session:
        assert importer.check(session, records[:1]) == {} and importer.check(session, records[1:]) == {}
    tally = run(engine, importer, [first]).tally
    with transaction(engine) as session, using_locale("en"):
        importer.write(session, records[1:], tally)
    assert tally.outcomes == {"created": 1, "dropped": 1} and tally.reasons == {"conflict": 1}
    assert tally.notes == [
        "Line 3: a different answer about “sms_offers” is recorded at the same moment; it was not imported."
    ]


def test_an_earlier_version_s_wording_is_referenced_when_the_portal_kept_it(engine, settings, tmp_path) -> None:
    people = make_sample_customers(engine)
    kept = "e" * 64  # the text of version 2023-06, stored while it was the current one
    with transaction(engine) as session:
        session.add(
            ConsentWording(
                hash=kept, purpose="postal_mail", locale="fr", policy_version="2023-06", text="Courrier", created_at=NOW
            )
        )
    rows = rows_of(tmp_path, "C0003;;;postal_mail;oui;20/07/2023 15:30;", "C0003;;;sms_offers;oui;20/07/2023 15:31;")
    run(engine, kind(settings), rows)
    assert [(e.purpose, e.wording_hash) for e in events_of(engine, people["C0003"])] == [
        ("postal_mail", kept),
        ("sms_offers", None),  # never stored: no proof of words the portal cannot show
    ]
