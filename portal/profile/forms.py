"""Validation and normalisation of what a customer may type into their profile.

Messages are English msgids marked with `lazy_gettext`: the template translates them in the reader's language.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Mapping

import phonenumbers
from babel import Locale

from portal.i18n import SUPPORTED_LOCALES, lazy_gettext

EDITABLE_FIELDS = (
    "first_name",
    "last_name",
    "phone",
    "address_line1",
    "address_line2",
    "postal_code",
    "city",
    "country",
    "preferred_language",
)
# Metropolitan departments 01–95 (Corsica's 20xxx included), overseas 971–976 and collectivities 984–988.
FRENCH_POSTCODE = re.compile(r"^(?:(?:0[1-9]|[1-8]\d|9[0-5])\d{3}|97[1-6]\d{2}|98[4-8]\d{2})$")
NAME_PUNCTUATION = set(" -'’.")
# CLDR names some two-letter codes that are no place anyone lives at: groupings (European Union, Eurozone, United
# Nations, Outlying Oceania), the pseudo-locales' test regions and "Unknown Region".
NOT_PLACES = frozenset({"EU", "EZ", "UN", "QO", "XA", "XB", "ZZ"})
# Babel types a locale table's keys as `str | int | None`: the territory codes are strings.
COUNTRIES = frozenset(
    code
    for code in Locale.parse("en").territories
    if isinstance(code, str) and len(code) == 2 and code.isalpha() and code not in NOT_PLACES
)

MESSAGES = {
    "first_name_required": lazy_gettext("Enter your first name."),
    "last_name_required": lazy_gettext("Enter your last name."),
    "name_invalid": lazy_gettext("Use letters, spaces, hyphens and apostrophes only."),
    "too_long": lazy_gettext("Keep it to 100 characters at most."),
    "correction_too_long": lazy_gettext("Keep it to 200 characters at most."),
    "phone_invalid": lazy_gettext("Enter a valid phone number, for example 06 12 34 56 78 or +44 7700 900123."),
    "address_incomplete": lazy_gettext("Enter the street, the postcode and the town, or leave all three empty."),
    "postcode_invalid": lazy_gettext(
        "This is not a French postcode: 5 digits beginning with a department number, for example 69002."
    ),
    "postcode_foreign_invalid": lazy_gettext("Enter a postcode with letters, digits, spaces or hyphens."),
    "country_invalid": lazy_gettext("Choose a country from the list."),
    "language_invalid": lazy_gettext("Choose French or English."),
    "email_invalid": lazy_gettext("Enter an email address like name@example.com."),
    "email_same": lazy_gettext("This is already your email address."),
    "email_too_many": lazy_gettext(
        "You asked for several address changes lately. Each one sends an email, so wait an hour before asking again."
    ),
    "email_taken": lazy_gettext("This address cannot be used for your account. Contact us if you think it should."),
    "value_required": lazy_gettext("Enter the correct value."),
    "birth_date_invalid": lazy_gettext("Enter a real date of birth as day/month/year, for example 23/04/1983."),
    "comment_too_long": lazy_gettext("Keep the comment under 1,000 characters."),
}


def _clean_text(value: str | None) -> str:
    # NFC so that "é" typed two ways compares equal; collapse runs of spaces; drop control characters.
    text = unicodedata.normalize("NFC", value or "")
    text = "".join(ch for ch in text if unicodedata.category(ch)[0] != "C")
    return " ".join(text.split())


def _name(value: str | None, errors: dict[str, str], field: str, *, required: bool) -> str | None:
    text = _clean_text(value)
    if not text:
        if required:
            errors[field] = f"{field}_required"
        return None
    if len(text) > 100:
        errors[field] = "too_long"
    elif not any(ch.isalpha() for ch in text) or any(not ch.isalpha() and ch not in NAME_PUNCTUATION for ch in text):
        errors[field] = "name_invalid"
    return text


# The region a number written without its country code belongs to: the retailer's, never the postal address's (a
# customer who moves abroad keeps their French mobile; one abroad writes their number with its + code).
NATIONAL_PHONE_REGION = "FR"


def _written_internationally(value: str) -> bool:
    return value.lstrip().startswith(("+", "00"))


def normalise_phone(value: str, *, region: str = NATIONAL_PHONE_REGION) -> str | None:
    """E.164 form of a phone number, or None when it is not one.

    A number with its country code (+44 …, 0044 …) stands on its own: it is accepted when it is a valid number, or a
    number of a possible length for that country (ranges the metadata does not know yet, the ranges reserved for
    examples such as +44 7700 900123). A national number (06 …) must be a valid number of `region`.
    """
    try:
        number = phonenumbers.parse(value, region)
    except phonenumbers.NumberParseException:
        return None
    if phonenumbers.is_valid_number(number):
        pass
    elif not (
        _written_internationally(value)
        and phonenumbers.region_codes_for_country_code(number.country_code or 0)
        and phonenumbers.is_possible_number(number)
    ):
        return None
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def display_phone(e164: str | None) -> str:
    if not e164:
        return ""
    try:
        number = phonenumbers.parse(e164, None)
    except phonenumbers.NumberParseException:
        return e164
    fmt = phonenumbers.PhoneNumberFormat
    return phonenumbers.format_number(number, fmt.NATIONAL if number.country_code == 33 else fmt.INTERNATIONAL)


def _same_number(value: str, current: str | None, region: str = NATIONAL_PHONE_REGION) -> bool:
    """Whether `value` is the number already on file, even if it is not in an allocated range (fiction ranges,
    numbers recorded before validation existed): saving the rest of the profile must not fail on it."""
    if not current:
        return False
    try:
        number = phonenumbers.parse(value, region)
    except phonenumbers.NumberParseException:
        return False
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164) == current


def clean_profile_form(
    form: Mapping[str, str], *, current_phone: str | None = None
) -> tuple[dict[str, str | None], dict[str, str]]:
    """(cleaned values, errors by field). Nothing may be saved while errors is not empty."""
    errors: dict[str, str] = {}
    values: dict[str, str | None] = {
        "first_name": _name(form.get("first_name"), errors, "first_name", required=True),
        "last_name": _name(form.get("last_name"), errors, "last_name", required=True),
    }
    country = _clean_text(form.get("country")).upper() or "FR"
    if country not in COUNTRIES:
        errors["country"] = "country_invalid"
        country = "FR"
    values["country"] = country

    phone = _clean_text(form.get("phone"))
    if phone:
        normalised = normalise_phone(phone)
        if normalised is None and _same_number(phone, current_phone):
            normalised = current_phone
        if normalised is None:
            errors["phone"] = "phone_invalid"
        values["phone"] = normalised or phone
    else:
        values["phone"] = None

    line1, line2 = _clean_text(form.get("address_line1")), _clean_text(form.get("address_line2"))
    postcode, city = _clean_text(form.get("postal_code")).upper(), _clean_text(form.get("city"))
    for field, text in (("address_line1", line1), ("address_line2", line2), ("city", city)):
        if len(text) > 100:
            errors[field] = "too_long"
    if any((line1, line2, postcode, city)) and not all((line1, postcode, city)):
        for field, text in (("address_line1", line1), ("postal_code", postcode), ("city", city)):
            if not text:
                errors.setdefault(field, "address_incomplete")
    if postcode:
        if country == "FR" and not FRENCH_POSTCODE.match(postcode):
            errors["postal_code"] = "postcode_invalid"
        elif country != "FR" and not re.fullmatch(r"[A-Z0-9][A-Z0-9 -]{1,9}", postcode):
            errors["postal_code"] = "postcode_foreign_invalid"
    values.update(
        address_line1=line1 or None, address_line2=line2 or None, postal_code=postcode or None, city=city or None
    )

    language = _clean_text(form.get("preferred_language")) or "fr"
    if language not in SUPPORTED_LOCALES:
        errors["preferred_language"] = "language_invalid"
    values["preferred_language"] = language
    return values, errors
