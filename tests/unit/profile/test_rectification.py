"""Rectification rules: validation, what changes, history, audit, outbox, email change, correction requests."""

from __future__ import annotations

import re

import pytest
from sqlalchemy import select

from portal.db import in_transaction, transaction
from portal.models import AuditEvent, Customer, EmailChange, OutboxMessage, PrivacyRequest, ProfileChange
from portal.profile import service as rectification
from portal.profile.forms import MESSAGES, clean_profile_form, normalise_phone
from tests.conftest import TIMEZONE, Clock
from tests.factories import make_customer

LOCKED = ("birth_date", "loyalty_number")


def on_file(**overrides: object) -> dict[str, object]:
    """FORM as stored on a customer row."""
    return {**{k: v or None for k, v in FORM.items()}, "phone": "+33698765432", **overrides}


FORM = {
    "first_name": "Camille",
    "last_name": "Durand",
    "phone": "06 98 76 54 32",
    "address_line1": "12 rue des Tilleuls",
    "address_line2": "",
    "postal_code": "69002",
    "city": "Lyon",
    "country": "FR",
    "preferred_language": "fr",
}


def rectify(engine, customer, clock, **changes):
    return in_transaction(
        engine,
        rectification.rectify_profile,
        customer_id=customer.id,
        form={**FORM, **changes},
        locked_fields=LOCKED,
        actor=f"customer:{customer.id}",
        channel="web",
        now=clock(),
    )


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("06 12 34 56 78", "+33612345678"),
        ("+33 6 12 34 56 78", "+33612345678"),
        ("0033612345678", "+33612345678"),
        ("+44 7911 123456", "+447911123456"),
        ("+44 7700 900123", "+447700900123"),  # the hint's example, in the range reserved for examples
        ("0044 7911 123456", "+447911123456"),
        ("+44 12", None),
        ("+999 123456789", None),  # no such country code
        ("12", None),
        ("06 12 34", None),
        ("abc", None),
    ],
)
def test_phone_numbers_are_validated_and_normalised(raw, expected) -> None:
    assert normalise_phone(raw) == expected


@pytest.mark.parametrize(
    ("changes", "field", "code"),
    [
        ({"first_name": ""}, "first_name", "first_name_required"),
        ({"last_name": "D4rand"}, "last_name", "name_invalid"),
        ({"last_name": "<script>"}, "last_name", "name_invalid"),
        ({"phone": "0612"}, "phone", "phone_invalid"),
        ({"postal_code": "6900"}, "postal_code", "postcode_invalid"),
        ({"postal_code": "00100"}, "postal_code", "postcode_invalid"),
        ({"postal_code": "96000"}, "postal_code", "postcode_invalid"),
        ({"city": ""}, "city", "address_incomplete"),
        ({"country": "XX"}, "country", "country_invalid"),
        ({"preferred_language": "de"}, "preferred_language", "language_invalid"),
    ],
)
def test_bad_input_is_named_per_field(changes, field, code) -> None:
    _values, errors = clean_profile_form({**FORM, **changes})
    assert errors.get(field) == code


@pytest.mark.parametrize("postcode", ["69002", "20000", "97400", "98800", "01000"])
def test_french_postcodes(postcode) -> None:
    assert "postal_code" not in clean_profile_form({**FORM, "postal_code": postcode})[1]


def test_foreign_addresses_are_allowed() -> None:
    values, errors = clean_profile_form(
        {**FORM, "country": "GB", "postal_code": "sw1a 1aa", "city": "London", "phone": "+44 7911 123456"}
    )
    assert not errors and values["postal_code"] == "SW1A 1AA" and values["phone"] == "+447911123456"


@pytest.mark.parametrize(
    ("country", "phone", "expected"),
    [
        ("BE", "06 12 34 56 78", "+33612345678"),  # moved to Belgium, kept the French mobile
        ("GB", "06 12 34 56 78", "+33612345678"),  # a UK customer with a French number
        ("FR", "+44 7700 900123", "+447700900123"),  # the hint's own example
        ("GB", "+44 7911 123456", "+447911123456"),
        ("BE", "+32 470 12 34 56", "+32470123456"),
    ],
)
def test_a_phone_number_is_checked_on_its_own_never_against_the_address(country, phone, expected) -> None:
    address = {"GB": ("SW1A 1AA", "London"), "BE": ("1000", "Bruxelles"), "FR": ("69002", "Lyon")}[country]
    values, errors = clean_profile_form(
        {**FORM, "country": country, "postal_code": address[0], "city": address[1], "phone": phone}
    )
    assert not errors and values["phone"] == expected


def test_the_phone_hint_s_examples_are_accepted() -> None:
    examples = re.findall(r"\+?[\d ]{6,}\d", str(MESSAGES["phone_invalid"]))
    assert len(examples) == 2 and all(normalise_phone(example) for example in examples)


def test_a_change_keeps_before_and_after_audits_fields_only_and_tells_the_retailer(engine, clock: Clock) -> None:
    customer = make_customer(engine, **on_file(phone="+33612345678"))
    changed = rectify(engine, customer, clock, phone="06 11 22 33 44", last_name="Durand-Martin")
    assert changed == ["last_name", "phone"]
    with transaction(engine) as session:
        stored = session.get(Customer, customer.id)
        history = {c.field: (c.old_value, c.new_value) for c in session.scalars(select(ProfileChange))}
        audit = session.scalars(select(AuditEvent).where(AuditEvent.action == "customer.rectified")).one()
        webhook = session.scalars(select(OutboxMessage).where(OutboxMessage.kind == "webhook")).one()
    assert stored.phone == "+33611223344" and stored.last_name == "Durand-Martin"
    assert history == {"phone": ("+33612345678", "+33611223344"), "last_name": ("Durand", "Durand-Martin")}
    assert audit.detail == {"fields": ["last_name", "phone"], "channel": "web"}
    assert "33611223344" not in str(audit.detail) and "Martin" not in str(audit.detail)
    assert webhook.topic == "customer.rectified" and webhook.payload["type"] == "customer.rectified"
    assert webhook.payload["data"]["fields"] == ["last_name", "phone"]
    assert webhook.payload["data"]["customer_id"] == customer.id


def test_nothing_is_half_saved(engine, clock: Clock) -> None:
    customer = make_customer(engine, **on_file(phone="+33612345678"))
    with pytest.raises(rectification.ProfileInvalid) as invalid:
        rectify(engine, customer, clock, last_name="Martin", postal_code="123")
    assert invalid.value.errors == {"postal_code": "postcode_invalid"}
    with transaction(engine) as session:
        assert session.get(Customer, customer.id).last_name == "Durand"
        assert session.scalars(select(ProfileChange)).first() is None
        assert session.scalars(select(OutboxMessage)).first() is None


def test_same_values_change_nothing(engine, clock: Clock) -> None:
    customer = make_customer(engine, **on_file())
    assert rectify(engine, customer, clock) == []
    with transaction(engine) as session:
        assert session.scalars(select(AuditEvent)).first() is None


def test_locked_fields_are_not_changed_by_a_crafted_form(engine, clock: Clock) -> None:
    customer = make_customer(engine, **on_file())
    with transaction(engine) as session:
        before = session.get(Customer, customer.id).birth_date
    rectify(engine, customer, clock, birth_date="1900-01-01", loyalty_number="AUB-00000000")
    with transaction(engine) as session:
        after = session.get(Customer, customer.id)
    assert after.birth_date == before and after.loyalty_number != "AUB-00000000"


def test_last_changed_per_field(engine, clock: Clock) -> None:
    customer = make_customer(engine, **on_file())
    rectify(engine, customer, clock, city="Villeurbanne", postal_code="69100")
    first = clock()
    clock.advance(days=3)
    rectify(engine, customer, clock, city="Lyon", postal_code="69002")
    with transaction(engine) as session:
        changed = rectification.last_changed(session, customer_id=customer.id)
    # The address, shown as one field, is as recent as the latest of its columns.
    assert changed == {"city": clock(), "postal_code": clock(), "postal_address": clock()} and clock() > first


def request_change(engine, settings, composer, clock, customer, new_email):
    return in_transaction(
        engine,
        rectification.request_email_change,
        settings=settings,
        composer=composer,
        customer_id=customer.id,
        new_email=new_email,
        language="en",
        now=clock(),
    )


def outbox(engine, topic):
    with transaction(engine) as session:
        return session.scalars(select(OutboxMessage).where(OutboxMessage.topic == topic)).all()


def test_email_change_needs_the_new_address_to_confirm(engine, settings, composer, clock: Clock) -> None:
    customer = make_customer(engine, email="camille@example.com")
    request_change(engine, settings, composer, clock, customer, "Camille.New@Example.org")
    confirm = outbox(engine, "email-change-confirm")[0].payload
    notice = outbox(engine, "email-change-requested")[0].payload
    assert confirm["to"] == "Camille.New@Example.org" and notice["to"] == "camille@example.com"
    with transaction(engine) as session:
        assert session.get(Customer, customer.id).email == "camille@example.com"  # nothing changed yet
    token = re.search(r"token=([\w-]+)", confirm["text"]).group(1)
    with transaction(engine) as session:
        assert rectification.check_email_change(session, settings=settings, token=token, now=clock()) == (
            "Camille.New@Example.org"
        )
    in_transaction(
        engine, rectification.confirm_email_change, settings=settings, composer=composer, token=token, now=clock()
    )
    with transaction(engine) as session:
        stored = session.get(Customer, customer.id)
    assert (stored.email, stored.email_key) == ("Camille.New@Example.org", "camille.new@example.org")
    assert outbox(engine, "email-changed")[0].payload["to"] == "camille@example.com"
    with pytest.raises(rectification.EmailChangeRejected) as used:
        in_transaction(
            engine, rectification.confirm_email_change, settings=settings, composer=composer, token=token, now=clock()
        )
    assert used.value.reason == "used"


def test_email_change_link_expires_and_newer_request_voids_older(engine, settings, composer, clock: Clock) -> None:
    customer = make_customer(engine, email="camille@example.com")
    request_change(engine, settings, composer, clock, customer, "first@example.org")
    request_change(engine, settings, composer, clock, customer, "second@example.org")
    first, second = (
        re.search(r"token=([\w-]+)", m.payload["text"]).group(1) for m in outbox(engine, "email-change-confirm")
    )
    with transaction(engine) as session, pytest.raises(rectification.EmailChangeRejected) as rejected:
        rectification.check_email_change(session, settings=settings, token=first, now=clock())
    assert rejected.value.reason == "used"
    clock.advance(hours=25)
    with transaction(engine) as session, pytest.raises(rectification.EmailChangeRejected) as rejected:
        rectification.check_email_change(session, settings=settings, token=second, now=clock())
    assert rejected.value.reason == "expired"
    with transaction(engine) as session:
        assert len(session.scalars(select(EmailChange)).all()) == 2


@pytest.mark.parametrize(("address", "code"), [("nope", "email_invalid"), ("CAMILLE@example.com", "email_same")])
def test_unusable_new_addresses(engine, settings, composer, clock, address, code) -> None:
    customer = make_customer(engine, email="camille@example.com")
    make_customer(engine, email="other@example.com")
    with pytest.raises(rectification.ProfileInvalid) as invalid:
        request_change(engine, settings, composer, clock, customer, address)
    assert invalid.value.errors == {"email": code}
    assert outbox(engine, "email-change-confirm") == []


def test_another_customers_address_is_not_revealed_its_owner_is_told(engine, settings, composer, clock) -> None:
    """Enumeration: the page says "sent" as for any address; the owner of the address learns, by email in their
    language, that someone tried to use it, and no confirmation link exists for it."""
    customer = make_customer(engine, email="camille@example.com")
    make_customer(engine, email="other@example.com", preferred_language="en")
    request_change(engine, settings, composer, clock, customer, "Other@Example.com")  # no exception: the same answer
    assert outbox(engine, "email-change-confirm") == []
    (told,) = outbox(engine, "email-change-taken")
    assert told.payload["to"] == "other@example.com" and "already belongs to another customer" in told.payload["text"]
    with transaction(engine) as session:
        assert session.scalars(select(EmailChange)).all() == []


def test_email_changes_are_limited_per_customer_not_a_relay(engine, settings, composer, clock: Clock) -> None:
    customer = make_customer(engine, email="camille@example.com")
    for n in range(rectification.EMAIL_CHANGES_PER_HOUR):
        request_change(engine, settings, composer, clock, customer, f"new{n}@example.org")
    with pytest.raises(rectification.EmailChangeLimited):
        request_change(engine, settings, composer, clock, customer, "one.more@example.org")
    clock.advance(hours=1)
    for n in range(rectification.EMAIL_CHANGES_PER_DAY - rectification.EMAIL_CHANGES_PER_HOUR):
        request_change(engine, settings, composer, clock, customer, f"later{n}@example.org")
    with pytest.raises(rectification.EmailChangeLimited):
        request_change(engine, settings, composer, clock, customer, "one.more@example.org")
    sent = outbox(engine, "email-change-confirm")
    assert len(sent) == rectification.EMAIL_CHANGES_PER_DAY  # a day's worth, whatever the loop tried
    with transaction(engine) as session:  # and one pending change at most
        pending = session.scalars(select(EmailChange).where(EmailChange.voided_at.is_(None))).all()
        assert [p.new_email for p in pending] == ["later1@example.org"]


def test_correction_request_is_filed_once_with_its_due_date(engine, composer, clock: Clock) -> None:
    customer = make_customer(engine, email="camille@example.com")
    form = {
        "field": "birth_date",
        "proposed_value": "12/05/1984",
        "comment": "Typo at the till",
        "submission_key": "k1",
    }

    def file():  # type: ignore[no-untyped-def]
        return in_transaction(
            engine,
            rectification.request_correction,
            composer=composer,
            customer_id=customer.id,
            form=form,
            language="fr",
            now=clock(),
            timezone=TIMEZONE,
        )

    first, second = file(), file()  # a double click
    assert first.reference == second.reference and first.created and not second.created
    assert re.fullmatch(r"R-[0-9A-HJKMNP-TV-Z]{4}-[0-9A-HJKMNP-TV-Z]{4}", first.reference)
    with transaction(engine) as session:
        stored = session.scalars(select(PrivacyRequest)).one()
    # Typed day/month/year, kept as the agent's form applies it.
    assert stored.type == "rectification" and stored.details["proposed_value"] == "1984-05-12"
    assert stored.due_at.date().isoformat() == "2026-12-23"
    ack = outbox(engine, "request-received")
    assert (
        len(ack) == 1 and first.reference in ack[0].payload["subject"] and "23 décembre 2026" in ack[0].payload["text"]
    )


def test_a_number_already_on_file_is_kept_even_outside_allocated_ranges(engine, clock: Clock) -> None:
    customer = make_customer(engine, **on_file(phone="+33639980417"))  # a fiction range, as in the demo data
    assert rectify(engine, customer, clock, phone="06 39 98 04 17", city="Villeurbanne", postal_code="69100") == [
        "city",
        "postal_code",
    ]
    with pytest.raises(rectification.ProfileInvalid):
        rectify(engine, customer, clock, phone="06 39 98 04 18")
