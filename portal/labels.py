"""Names of domain values as people read them, translated at display time (pages, emails, the archive).

Each vocabulary is written once, here: a table of `lazy_gettext` names (extracted for translation, translated only
when shown, in the reader's language) and a small lookup that falls back to the raw code for a value it does not
know. Templates reach the lookups through `TEMPLATE_GLOBALS`.
"""

from __future__ import annotations

from portal.i18n import gettext, lazy_gettext

PROFILE_FIELDS = {
    "first_name": lazy_gettext("first name"),
    "last_name": lazy_gettext("last name"),
    "email": lazy_gettext("email address"),
    "phone": lazy_gettext("phone number"),
    "postal_address": lazy_gettext("postal address"),
    "address_line1": lazy_gettext("street address"),
    "address_line2": lazy_gettext("address, second line"),
    "postal_code": lazy_gettext("postcode"),
    "city": lazy_gettext("town or city"),
    "country": lazy_gettext("country"),
    "birth_date": lazy_gettext("date of birth"),
    "loyalty_number": lazy_gettext("loyalty card number"),
    "preferred_language": lazy_gettext("preferred language"),
}
REQUEST_TYPES = {
    "access": lazy_gettext("access to my data"),
    "rectification": lazy_gettext("correction of my data"),
    "erasure": lazy_gettext("erasure of my data"),
    "portability": lazy_gettext("copy of my data (portability)"),
    "objection": lazy_gettext("objection"),
    "restriction": lazy_gettext("restriction of use"),
    "other": lazy_gettext("question"),
}
REQUEST_STATUSES = {
    "received": lazy_gettext("received"),
    "in_progress": lazy_gettext("in progress"),
    "awaiting_customer": lazy_gettext("waiting for your answer"),
    "completed": lazy_gettext("completed"),
    "rejected": lazy_gettext("refused"),
    "cancelled": lazy_gettext("cancelled"),
}
TIMELINE_STEPS = {
    "received": lazy_gettext("Request received"),
    "status_changed": lazy_gettext("Status changed"),
    "message": lazy_gettext("Message"),
    "started": lazy_gettext("Our team started working on it"),
    "question": lazy_gettext("Question for you"),
    "reply": lazy_gettext("Your answer"),
    "assigned": lazy_gettext("Assigned"),
    "note": lazy_gettext("Internal note"),
    "extended": lazy_gettext("Deadline extended"),
    "restricted": lazy_gettext("Use of your data restricted"),
    "restriction_lifted": lazy_gettext("Restriction lifted"),
    "completed": lazy_gettext("Request completed"),
    "rejected": lazy_gettext("Request refused"),
    "cancelled": lazy_gettext("Request cancelled"),
}
# Where a consent was given or withdrawn (consent/ledger.py CHANNELS).
CONSENT_CHANNELS = {
    "web": lazy_gettext("on this website"),
    "store": lazy_gettext("in a store"),
    "support": lazy_gettext("through our customer service"),
    "import": lazy_gettext("imported from our customer records"),
    "api": lazy_gettext("through our systems (API)"),
}
# How a purchase was made (purchases/service.py CHANNELS): the purchases pages, the receipt and the archive.
PURCHASE_CHANNELS = {
    "in_store": lazy_gettext("In store"),
    "web": lazy_gettext("Online, delivered"),
    "click_and_collect": lazy_gettext("Online, collected in store"),
}
# The purpose register's legal bases (consent/register.py LEGAL_BASES): /me/processing, /privacy and the archive.
LEGAL_BASES = {
    "consent": lazy_gettext("Your consent (GDPR article 6(1)(a))"),
    "contract": lazy_gettext("Performing our contract with you (GDPR article 6(1)(b))"),
    "legal_obligation": lazy_gettext("A legal obligation we must meet (GDPR article 6(1)(c))"),
    "legitimate_interest": lazy_gettext("Our legitimate interest (GDPR article 6(1)(f))"),
}
LANGUAGES = {"fr": lazy_gettext("French"), "en": lazy_gettext("English")}


def _label(table: dict[str, str], value: str) -> str:
    return gettext(table[value]) if value in table else value


def field_label(field: str) -> str:
    return _label(PROFILE_FIELDS, field)


def request_type_label(value: str) -> str:
    return _label(REQUEST_TYPES, value)


def request_status_label(value: str) -> str:
    return _label(REQUEST_STATUSES, value)


def timeline_step_label(value: str) -> str:
    return _label(TIMELINE_STEPS, value)


def consent_channel_label(value: str) -> str:
    return _label(CONSENT_CHANNELS, value)


def purchase_channel_label(value: str) -> str:
    return _label(PURCHASE_CHANNELS, value)


def legal_basis_label(value: str) -> str:
    return _label(LEGAL_BASES, value)


def language_label(value: str) -> str:
    return _label(LANGUAGES, value)


TEMPLATE_GLOBALS = {
    "field_label": field_label,
    "request_type_label": request_type_label,
    "request_status_label": request_status_label,
    "timeline_step_label": timeline_step_label,
    "language_label": language_label,
    "consent_channel_label": consent_channel_label,
    "purchase_channel_label": purchase_channel_label,
    "legal_basis_label": legal_basis_label,
}
