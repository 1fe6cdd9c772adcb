"""Reading one customer row of the retailer's files or API: the profile pages' rules, and their messages.

A value left empty is not given: a CRM export with an empty phone column leaves the phone on file as it is (exports
often lack columns for some customers; an import must not erase what the customer told us elsewhere).
"""

from __future__ import annotations

import dataclasses
import re
import unicodedata
from collections.abc import Mapping
from datetime import date
from typing import Any

from portal.i18n import SUPPORTED_LOCALES, gettext
from portal.identity.service import InvalidEmail, normalise_email
from portal.imports.kinds import FieldSpec, RowError, RowInvalid
from portal.imports.lookup import CustomerRef
from portal.imports.values import Formats, read_date
from portal.models import email_key
from portal.profile.forms import COUNTRIES, FRENCH_POSTCODE, MESSAGES, NAME_PUNCTUATION, normalise_phone

FIELDS = (
    FieldSpec("customer_id", help="The retailer's customer id (CRM, tills); matches first."),
    FieldSpec("email", help="Email address; matches second (any case)."),
    FieldSpec("first_name", help="First name."),
    FieldSpec("last_name", help="Last name."),
    FieldSpec("phone", help="Phone number, national (of the row's country) or international."),
    FieldSpec("address_line1", help="Street and number; give it with the postcode and the town."),
    FieldSpec("address_line2", help="Second address line."),
    FieldSpec("postal_code", help="Postcode (a French one for France)."),
    FieldSpec("city", help="Town or city."),
    FieldSpec("country", help="ISO 3166 two-letter country code (FR when not given)."),
    FieldSpec("birth_date", help="Date of birth, between 1900 and today."),
    FieldSpec("loyalty_number", help="Loyalty card number; matches third."),
    FieldSpec("preferred_language", help="fr or en."),
)
ADDRESS = ("address_line1", "postal_code", "city")
NAME_LIMIT = 100
LIMITS = {"customer_id": 64, "loyalty_number": 32, "address_line1": 100, "address_line2": 100, "city": 100}
CONTROL = re.compile(r"[\x00-\x1f\x7f]")


@dataclasses.dataclass
class CustomerRow:
    """One customer as a row gives it: `values` holds the customer columns it sets (never an empty one)."""

    line: int
    values: dict[str, Any]

    @property
    def ref(self) -> CustomerRef:
        return CustomerRef(
            retailer_id=self.values.get("retailer_ref"),
            email=self.values.get("email"),
            loyalty_number=self.values.get("loyalty_number"),
        )


class _Row:
    def __init__(self, fields: Mapping[str, Any], today: date, formats: Formats) -> None:
        self.fields = fields
        self.today = today
        self.formats = formats
        self.errors: list[RowError] = []
        self.values: dict[str, Any] = {}

    def fail(self, field: str, message: str) -> None:
        self.errors.append(RowError(field, message))

    def text(self, field: str) -> str | None:
        """The field as text (JSON numbers are accepted for ids and postcodes); None when empty or not given."""
        raw = self.fields.get(field)
        if raw is None:
            return None
        if isinstance(raw, bool) or not isinstance(raw, str | int | float):
            self.fail(field, gettext("Expected a string."))
            return None
        text = unicodedata.normalize("NFC", str(raw)).strip()
        if CONTROL.search(text):
            self.fail(field, gettext("This value contains control characters."))
            return None
        text = " ".join(text.split())
        limit = LIMITS.get(field)
        if limit and len(text) > limit:
            self.fail(field, gettext("This text is too long: %(limit)s characters at most.", limit=limit))
            return None
        return text or None

    def name(self, field: str) -> None:
        text = self.text(field)
        if text is None:
            return
        if len(text) > NAME_LIMIT:
            self.fail(field, gettext(MESSAGES["too_long"]))
        elif not any(ch.isalpha() for ch in text) or any(
            not ch.isalpha() and ch not in NAME_PUNCTUATION for ch in text
        ):
            self.fail(field, gettext(MESSAGES["name_invalid"]))
        else:
            self.values[field] = text

    def email(self) -> None:
        text = self.text("email")
        if text is None:
            return
        try:
            self.values["email"] = normalise_email(text)
        except InvalidEmail:
            self.fail("email", gettext(MESSAGES["email_invalid"]))

    def country(self) -> str:
        text = self.text("country")
        if text is None:
            return "FR"
        if text.upper() not in COUNTRIES:
            self.fail("country", gettext(MESSAGES["country_invalid"]))
            return "FR"
        self.values["country"] = text.upper()
        return text.upper()

    def phone(self, country: str) -> None:
        text = self.text("phone")
        if text is None:
            return
        normalised = normalise_phone(text, region=country)
        if normalised is None:
            self.fail("phone", gettext(MESSAGES["phone_invalid"]))
        else:
            self.values["phone"] = normalised

    def address(self, country: str) -> None:
        given = {field: self.text(field) for field in ("address_line1", "address_line2", "postal_code", "city")}
        if not any(given.values()):
            return
        missing = [field for field in ADDRESS if not given[field]]
        for field in missing:
            self.fail(field, gettext(MESSAGES["address_incomplete"]))
        postcode = (given["postal_code"] or "").upper()
        if postcode and country == "FR" and not FRENCH_POSTCODE.match(postcode):
            self.fail("postal_code", gettext(MESSAGES["postcode_invalid"]))
        elif postcode and country != "FR" and not re.fullmatch(r"[A-Z0-9][A-Z0-9 -]{1,9}", postcode):
            self.fail("postal_code", gettext(MESSAGES["postcode_foreign_invalid"]))
        elif not missing:
            self.values.update({**given, "postal_code": postcode})

    def birth_date(self) -> None:
        text = self.text("birth_date")
        if text is None:
            return
        try:
            day = read_date(text, self.formats)
        except ValueError as invalid:
            self.fail("birth_date", str(invalid))
            return
        if not date(1900, 1, 1) <= day <= self.today:
            self.fail("birth_date", gettext(MESSAGES["birth_date_invalid"]))
        else:
            self.values["birth_date"] = day

    def language(self) -> None:
        text = self.text("preferred_language")
        if text is None:
            return
        if text.lower() not in SUPPORTED_LOCALES:
            self.fail("preferred_language", gettext(MESSAGES["language_invalid"]))
        else:
            self.values["preferred_language"] = text.lower()


def parse_customer(fields: Mapping[str, Any], line: int, *, today: date, formats: Formats) -> CustomerRow:
    """The row's customer columns, cleaned; raises RowInvalid with every problem of the row."""
    row = _Row(fields, today, formats)
    retailer_id = row.text("customer_id")
    if retailer_id is not None:
        row.values["retailer_ref"] = retailer_id
    row.email()
    row.name("first_name")
    row.name("last_name")
    country = row.country()
    row.phone(country)
    row.address(country)
    row.birth_date()
    loyalty = row.text("loyalty_number")
    if loyalty is not None:
        row.values["loyalty_number"] = loyalty
    row.language()
    if not row.errors and not ({"retailer_ref", "email", "loyalty_number"} & row.values.keys()):
        row.errors.append(
            RowError(None, gettext("Give the customer's id, email address or loyalty number: the row names nobody."))
        )
    if row.errors:
        raise RowInvalid(row.errors)
    if "email" in row.values:
        row.values["email_key"] = email_key(row.values["email"])
    return CustomerRow(line=line, values=row.values)
