"""The customers kind: clean rows, bad rows and their messages, one record per person, rights honoured."""

from __future__ import annotations

import csv
import dataclasses
import tomllib
from collections import Counter
from collections.abc import Iterable, Mapping
from datetime import UTC, date, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import Engine, func, select

from portal.consent import ledger
from portal.consent.register import load_register
from portal.db import transaction
from portal.i18n import using_locale
from portal.imports.apply import ItemsRefused, apply_items
from portal.imports.customers import CustomersKind
from portal.imports.kinds import ImportContext, RowError, RowInvalid, Tally
from portal.imports.registry import KINDS
from portal.imports.values import Formats
from portal.models import (
    AuditEvent,
    ConsentEvent,
    Customer,
    OutboxMessage,
    PageView,
    PageViewDay,
    PageViewTotal,
    ProfileChange,
    Purchase,
    PurchaseTotal,
)
from portal.settings import Settings
from tests.factories import add_page_views, make_customer, make_store
from tests.purchase_factories import add_purchase

NOW = datetime(2026, 11, 23, 10, tzinfo=UTC)
CONFIG = Path(__file__).parents[3] / "portal" / "config" / "import"
SAMPLE = CONFIG / "samples" / "customers.csv"
MAPPING = CONFIG / "customers.toml"


def context(settings: Settings, source: str = "import") -> ImportContext:
    return ImportContext(
        settings=settings,
        register=load_register(settings.purposes_file),
        now=NOW,
        source=source,
        actor="import:customers.csv" if source == "import" else "api:test",
    )


def run(engine: Engine, settings: Settings, rows: Iterable[Mapping[str, object]], **formats: object) -> Tally:
    """Parse, check and write `rows` as one batch, the way a file's rows go (all checked, then written)."""
    kind = CustomersKind(dataclasses.replace(context(settings), formats=Formats(**formats)))  # type: ignore[arg-type]
    records = [kind.parse(row, line) for line, row in enumerate(rows, start=2)]
    tally = Tally()
    with transaction(engine) as session:
        assert kind.check(session, records) == {}
        kind.write(session, records, tally)
    return tally


def problems(engine: Engine, settings: Settings, rows: list[dict[str, object]]) -> dict[int, list[RowError]]:
    kind = CustomersKind(context(settings))
    with transaction(engine) as session:
        return kind.check(session, [kind.parse(row, line) for line, row in enumerate(rows, start=2)])


def customers(engine: Engine) -> list[Customer]:
    with transaction(engine) as session:
        return list(session.scalars(select(Customer).where(Customer.erased_at.is_(None)).order_by(Customer.id)))


def changes(engine: Engine, customer_id: int) -> list[tuple[str, str | None, str | None, str]]:
    with transaction(engine) as session:
        rows = session.execute(
            select(ProfileChange.field, ProfileChange.old_value, ProfileChange.new_value, ProfileChange.channel)
            .where(ProfileChange.customer_id == customer_id)
            .order_by(ProfileChange.field)
        )
        return [tuple(row) for row in rows]  # type: ignore[misc]


def sample_rows() -> list[dict[str, str | None]]:
    """The sample export, its columns renamed by the example mapping (the runner's job, done by hand here)."""
    mapping = tomllib.loads(MAPPING.read_text(encoding="utf-8"))
    ours = {theirs: field for field, theirs in mapping["columns"].items()}
    with SAMPLE.open(encoding="utf-8") as file:
        rows = csv.DictReader(file, delimiter=mapping["csv"]["delimiter"])
        return [{ours[k]: (v.strip() or None) for k, v in row.items()} for row in rows]


ALICE = {
    "customer_id": "CRM-1",
    "email": "Alice.Martin@example.com",
    "first_name": "Alice",
    "last_name": "Martin",
    "phone": "06 12 34 56 78",
    "address_line1": "3 place Bellecour",
    "postal_code": "69002",
    "city": "Lyon",
    "birth_date": "1985-04-23",
    "loyalty_number": "L-1001",
    "preferred_language": "fr",
}


def test_the_kind_is_registered() -> None:
    assert KINDS["customers"] is CustomersKind


def test_clean_rows_create_customers_once(engine, settings) -> None:  # type: ignore[no-untyped-def]
    tally = run(engine, settings, [ALICE, {"customer_id": "CRM-2", "email": "bob@example.com", "country": "be"}])
    assert tally.outcomes == {"created": 2}
    alice, bob = customers(engine)
    assert (alice.retailer_ref, alice.email, alice.email_key, alice.phone) == (
        "CRM-1",
        "Alice.Martin@example.com",
        "alice.martin@example.com",
        "+33612345678",
    )
    assert (alice.birth_date, alice.loyalty_number, alice.source) == (date(1985, 4, 23), "L-1001", "import")
    assert (bob.country, bob.preferred_language) == ("BE", settings.default_locale)
    assert run(engine, settings, [ALICE]).outcomes == {"unchanged": 1}  # re-import: nothing changes
    assert changes(engine, alice.id) == []


def test_the_sample_file_has_one_record_per_person(engine, settings) -> None:  # type: ignore[no-untyped-def]
    rows = sample_rows()
    tally = run(engine, settings, rows, date=("%d/%m/%Y",))
    people = customers(engine)
    assert len(people) < len(rows)  # the CRM and the till both know one person
    assert tally.outcomes["created"] == len(people)
    assert tally.outcomes["created"] + tally.outcomes["updated"] + tally.outcomes["unchanged"] == len(rows)
    again = run(engine, settings, rows, date=("%d/%m/%Y",))
    assert again.outcomes == {"unchanged": len(rows)}


@pytest.mark.parametrize(
    ("row", "field", "message"),
    [
        ({"email": "not-an-address"}, "email", "Enter an email address like name@example.com."),
        ({"first_name": "R2D2"}, "first_name", "Use letters, spaces, hyphens and apostrophes only."),
        ({"phone": "12"}, "phone", "Enter a valid phone number, for example 06 12 34 56 78 or +44 7700 900123."),
        ({"country": "XX"}, "country", "Choose a country from the list."),
        ({"preferred_language": "de"}, "preferred_language", "Choose French or English."),
        (
            {"birth_date": "2030-01-01"},
            "birth_date",
            "Enter a real date of birth as day/month/year, for example 23/04/1983.",
        ),  # fmt: skip
        ({"birth_date": "23 avril"}, "birth_date", "“23 avril” is not a date in the format YYYY-MM-DD."),
        (
            {"postal_code": "00001"},
            "postal_code",
            "This is not a French postcode: 5 digits beginning with a department number, for example 69002.",
        ),  # fmt: skip
        (
            {"address_line1": None},
            "address_line1",
            "Enter the street, the postcode and the town, or leave all three empty.",
        ),  # fmt: skip
        ({"customer_id": "x" * 65}, "customer_id", "This text is too long: 64 characters at most."),
        ({"last_name": "Mar\x07tin"}, "last_name", "This value contains control characters."),
        (
            {"customer_id": None, "email": None, "loyalty_number": None},
            None,
            "Give the customer's id, email address or loyalty number: the row names nobody.",
        ),  # fmt: skip
    ],
)
def test_each_bad_value_is_reported_on_its_field(settings, row, field, message) -> None:  # type: ignore[no-untyped-def]
    kind = CustomersKind(context(settings))
    with using_locale("en"), pytest.raises(RowInvalid) as invalid:
        kind.parse({**ALICE, **row}, 7)
    assert invalid.value.errors == [RowError(field, message)]


def test_messages_are_in_the_operators_language(settings) -> None:  # type: ignore[no-untyped-def]
    kind = CustomersKind(context(settings))
    with using_locale("fr"), pytest.raises(RowInvalid) as invalid:
        kind.parse({**ALICE, "preferred_language": "de"}, 7)
    assert invalid.value.errors[0].message == "Choisissez le français ou l'anglais."


def test_a_changed_row_updates_only_what_changed_and_leaves_its_history(engine, settings) -> None:  # type: ignore[no-untyped-def]
    run(engine, settings, [ALICE])
    tally = run(engine, settings, [{**ALICE, "city": "Villeurbanne", "postal_code": "69100", "phone": None}])
    assert tally.outcomes == {"updated": 1}
    (alice,) = customers(engine)
    assert (alice.city, alice.postal_code, alice.phone) == ("Villeurbanne", "69100", "+33612345678")
    assert changes(engine, alice.id) == [
        ("city", "Lyon", "Villeurbanne", "import"),
        ("postal_code", "69002", "69100", "import"),
    ]
    with transaction(engine) as session:
        topics = session.scalars(select(OutboxMessage.topic).where(OutboxMessage.kind == "webhook")).all()
        actions = session.scalars(select(AuditEvent.action).order_by(AuditEvent.id)).all()
    assert topics == ["customer.rectified"]
    assert actions == ["customer.imported", "customer.rectified", "customer.imported"]


def test_the_same_person_twice_in_a_file_is_one_record(engine, settings) -> None:  # type: ignore[no-untyped-def]
    till = {"email": "alice.martin@EXAMPLE.com", "loyalty_number": "L-1001", "phone": "0698765432"}
    tally = run(engine, settings, [ALICE, till])
    assert tally.outcomes == {"created": 1, "updated": 1}
    (alice,) = customers(engine)
    assert (alice.retailer_ref, alice.phone) == ("CRM-1", "+33698765432")


def test_an_existing_customer_matched_by_email_gets_the_retailer_id(engine, settings) -> None:  # type: ignore[no-untyped-def]
    web = make_customer(engine, email="alice.martin@example.com", loyalty_number=None)
    tally = run(engine, settings, [ALICE])
    assert tally.outcomes == {"updated": 1}
    (alice,) = customers(engine)
    assert (alice.id, alice.retailer_ref, alice.loyalty_number) == (web.id, "CRM-1", "L-1001")


def _purchases_and_consent(engine, settings, customer, store, receipt):  # type: ignore[no-untyped-def]
    add_purchase(engine, customer, store, at=datetime(2025, 3, 1, 10, tzinfo=UTC), receipt_number=receipt)
    with transaction(engine) as session:
        ledger.record_consent(
            session,
            register=load_register(settings.purposes_file),
            customer_id=customer.id,
            purpose="email_newsletter",
            granted=True,
            channel="store",
            actor="store",
            now=datetime(2024, 5, 1, tzinfo=UTC),
            locale="fr",
        )


def _recount(engine: Engine) -> tuple[list, list]:  # type: ignore[type-arg]
    with transaction(engine) as session:
        totals = PurchaseTotal.__table__.c  # type: ignore[attr-defined]
        kept = session.execute(
            select(totals.customer_id, totals.store_id, totals.purchase_count, totals.amount_cents).order_by(
                totals.customer_id, totals.store_id
            )
        ).all()
        counted = session.execute(
            select(Purchase.customer_id, Purchase.store_id, func.count(), func.sum(Purchase.total_cents))
            .where(Purchase.customer_id.is_not(None))
            .group_by(Purchase.customer_id, Purchase.store_id)
            .order_by(Purchase.customer_id, Purchase.store_id)
        ).all()  # fmt: skip
    return [tuple(r) for r in kept], [tuple(r) for r in counted]


@pytest.mark.parametrize("by", ["email", "loyalty_number"])
def test_two_records_of_one_person_are_merged_with_everything_they_hold(engine, settings, by) -> None:  # type: ignore[no-untyped-def]
    store = make_store(engine)
    crm = make_customer(engine, retailer_ref="CRM-1", email="alice@crm.example", loyalty_number=None,
                        created_at=datetime(2020, 1, 1, tzinfo=UTC))  # fmt: skip
    till = make_customer(
        engine, email="alice.martin@example.com", loyalty_number="L-1001", birth_date=date(1985, 4, 23)
    )
    _purchases_and_consent(engine, settings, crm, store, "R-1")
    _purchases_and_consent(engine, settings, till, store, "R-2")
    add_page_views(engine, crm, 30)
    add_page_views(engine, till, 30, start=datetime(2026, 1, 2, 8, tzinfo=UTC))  # one day shared with the other
    row = {"customer_id": "CRM-1", by: {"email": till.email, "loyalty_number": "L-1001"}[by]}
    with using_locale("en"):
        tally = run(engine, settings, [row])
    assert tally.outcomes == {"merged": 1}
    assert tally.notes == [f"Line 2: customer records {crm.id} and {till.id} were one person; merged into {crm.id}."]
    (alice,) = customers(engine)
    assert alice.id == crm.id
    assert (alice.loyalty_number, alice.birth_date) == ("L-1001", date(1985, 4, 23))  # filled from the other
    with transaction(engine) as session:
        assert session.scalars(select(Purchase.customer_id).distinct()).all() == [crm.id]
        assert session.scalars(select(ConsentEvent.customer_id).distinct()).all() == [crm.id]
        merged = session.scalars(select(AuditEvent).where(AuditEvent.action == "customer.merged")).one()
        webhook = session.scalars(select(OutboxMessage).where(OutboxMessage.topic == "customer.merged")).one()
    assert merged.target == f"customer:{crm.id}" and merged.detail["merged"] == f"customer:{till.id}"
    assert webhook.payload["data"]["merged_customer_id"] == till.id
    assert "email" not in str(webhook.payload) and "Martin" not in str(webhook.payload)
    kept, counted = _recount(engine)
    assert kept == counted and kept[0][2] == 2
    with transaction(engine) as session:
        days = session.execute(select(PageViewDay.day, PageViewDay.view_count).order_by(PageViewDay.day)).all()
        total = session.scalars(select(PageViewTotal.view_count).where(PageViewTotal.customer_id == crm.id)).one()
        viewed = session.execute(select(PageView.customer_id, func.count()).group_by(PageView.customer_id)).all()
    assert viewed == [(crm.id, 60)] and total == 60 and sum(n for _day, n in days) == 60
    paris = ZoneInfo("Europe/Paris")
    with transaction(engine) as session:
        recounted = Counter(at.astimezone(paris).date() for at in session.scalars(select(PageView.viewed_at)))
    assert dict(days) == dict(recounted)  # type: ignore[arg-type]
    with transaction(engine) as session:
        assert ledger.current_consents(session, customer_id=crm.id)["email_newsletter"].granted
    assert run(engine, settings, [row]).outcomes == {"unchanged": 1}


def test_a_merge_with_a_record_made_by_the_same_file(engine, settings) -> None:  # type: ignore[no-untyped-def]
    till = make_customer(engine, email="bob@example.com", loyalty_number="L-9")
    tally = run(engine, settings, [{"customer_id": "CRM-9", "loyalty_number": "L-9"}, {"customer_id": "CRM-7"}])
    assert tally.outcomes == {"updated": 1, "created": 1}
    assert [c.retailer_ref for c in customers(engine)] == ["CRM-9", "CRM-7"]
    assert customers(engine)[0].id == till.id


@pytest.mark.parametrize(
    ("existing", "row", "message"),
    [
        (
            [{"retailer_ref": "CRM-1", "email": "a@example.com"}, {"retailer_ref": "CRM-2", "email": "b@example.com"}],
            {"customer_id": "CRM-1", "email": "b@example.com"},
            "This row names two customer records with different customer ids (CRM-1, CRM-2): a person must decide "
            "whether they are the same.",
        ),
        (
            [{"retailer_ref": "CRM-1", "loyalty_number": "L-1"}, {"email": "b@example.com", "loyalty_number": "L-2"}],
            {"customer_id": "CRM-1", "email": "b@example.com"},
            "This row names two customer records with different loyalty cards (L-1, L-2): a person must decide "
            "which one is right.",
        ),
        (
            [{"email": "b@example.com", "loyalty_number": "L-2"}],
            {"email": "b@example.com", "loyalty_number": "L-3"},
            "The customer with this email address has another loyalty card (L-2): a person must decide which one "
            "is right.",
        ),
        (
            [{"email": "b@example.com", "retailer_ref": "CRM-2"}],
            {"email": "b@example.com", "customer_id": "CRM-3"},
            "This customer is already on file under another customer id (CRM-2): a person must decide whether they "
            "are the same.",
        ),
        (
            [{"retailer_ref": "CRM-1"}, {"email": "b@example.com", "restricted_at": NOW}],
            {"customer_id": "CRM-1", "email": "b@example.com"},
            "This row names two customer records, one of them with its processing restricted: a person must "
            "decide whether to merge them.",
        ),
    ],
)
def test_a_conflict_is_reported_not_guessed(engine, settings, existing, row, message) -> None:  # type: ignore[no-untyped-def]
    for fields in existing:
        make_customer(engine, **{"loyalty_number": None, **fields})
    before = [(c.id, c.retailer_ref, c.email, c.loyalty_number) for c in customers(engine)]
    with using_locale("en"):
        found = problems(engine, settings, [row])
    assert list(found) == [0]
    assert found[0][0].message == message and found[0][0].reason == "conflict"
    with transaction(engine) as session, pytest.raises(ItemsRefused):
        apply_items(session, CustomersKind(context(settings, "api")), [row])
    assert [(c.id, c.retailer_ref, c.email, c.loyalty_number) for c in customers(engine)] == before


def test_a_conflict_between_two_rows_of_one_file(engine, settings) -> None:  # type: ignore[no-untyped-def]
    rows = [{"customer_id": "CRM-1", "email": "a@example.com"}, {"customer_id": "CRM-2", "email": "a@example.com"}]
    assert list(problems(engine, settings, rows)) == [1]


def test_an_erased_customer_is_not_recreated_by_email_or_by_id(engine, settings) -> None:  # type: ignore[no-untyped-def]
    from portal.erasure.tombstone import erased_email_hash, erased_ref_hash

    make_customer(engine, email=None, email_key=None, erased_at=NOW,
                  erased_email_hash=erased_email_hash(settings, "gone@example.com"),
                  erased_ref_hash=erased_ref_hash(settings, "CRM-GONE"))  # fmt: skip
    rows = [
        {"email": "Gone@Example.com", "first_name": "Zoé"},
        {"customer_id": "CRM-GONE", "email": "new@example.com"},
        {"customer_id": "CRM-NEW", "email": "new2@example.com"},
    ]
    tally = run(engine, settings, rows)
    assert tally.outcomes == {"dropped": 2, "created": 1}
    assert tally.reasons == {"erased": 2}
    assert [c.retailer_ref for c in customers(engine)] == ["CRM-NEW"]


def test_a_restricted_customer_is_neither_enriched_nor_changed(engine, settings) -> None:  # type: ignore[no-untyped-def]
    restricted = make_customer(engine, retailer_ref="CRM-1", restricted_at=NOW, loyalty_number=None)
    tally = run(engine, settings, [{"customer_id": "CRM-1", "loyalty_number": "L-1", "city": None, "first_name": "Al"}])
    assert tally.outcomes == {"dropped": 1} and tally.reasons == {"restricted": 1}
    (customer,) = customers(engine)
    assert (customer.loyalty_number, customer.first_name) == (None, restricted.first_name)
    assert changes(engine, restricted.id) == []


def test_the_api_applies_the_same_rules_through_apply_items(engine, settings) -> None:  # type: ignore[no-untyped-def]
    with transaction(engine) as session:
        tally = apply_items(session, CustomersKind(context(settings, "api")), [ALICE])
    assert tally.outcomes == {"created": 1}
    with transaction(engine) as session:
        moved = {**ALICE, "city": "Bron", "postal_code": "69500"}
        tally = apply_items(session, CustomersKind(context(settings, "api")), [moved])
    assert tally.outcomes == {"updated": 1}
    (alice,) = customers(engine)
    assert {channel for *_rest, channel in changes(engine, alice.id)} == {"api"}
    with transaction(engine) as session, pytest.raises(ItemsRefused) as refused:
        apply_items(session, CustomersKind(context(settings, "api")), [{**ALICE, "email": "nope"}])
    assert [(position, error.field) for position, error in refused.value.errors] == [(0, "email")]


def test_json_values_are_accepted(settings) -> None:  # type: ignore[no-untyped-def]
    row = CustomersKind(context(settings)).parse({"customer_id": 1234, "postal_code": 69002, "address_line1": "1 rue",
                                                  "city": "Lyon", "email": "a@example.com"}, 1)  # fmt: skip
    assert (row.values["retailer_ref"], row.values["postal_code"]) == ("1234", "69002")
    with pytest.raises(RowInvalid):
        CustomersKind(context(settings)).parse({"customer_id": {"a": 1}}, 1)
