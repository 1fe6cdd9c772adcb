"""The shared vocabulary (portal/labels.py): every code the portal stores has a name, in both languages."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from portal import i18n, labels, models
from portal.backoffice import queue
from portal.consent import ledger, register
from portal.models import customer as customer_models
from portal.models import requests as request_models
from portal.purchases import service as purchases

# (table, the codes it must name): a new code without a name would show its raw code to people.
VOCABULARIES = {
    "request types": (labels.REQUEST_TYPES, request_models.REQUEST_TYPES),
    "request types, staff": (labels.STAFF_REQUEST_TYPES, request_models.REQUEST_TYPES),
    "request statuses": (labels.REQUEST_STATUSES, request_models.REQUEST_STATUSES),
    "request statuses, staff": (labels.STAFF_REQUEST_STATUSES, queue.STATUS_CHOICES),
    "request channels": (labels.REQUEST_CHANNELS, queue.CHANNELS),
    "consent channels": (labels.CONSENT_CHANNELS, (*ledger.CHANNELS, ledger.WEBSITE)),
    "purchase channels": (labels.PURCHASE_CHANNELS, purchases.CHANNELS),
    "legal bases": (labels.LEGAL_BASES, register.LEGAL_BASES),
    "staff roles": (labels.STAFF_ROLES, models.STAFF_ROLES),
    "languages": (labels.LANGUAGES, i18n.SUPPORTED_LOCALES),
}


@pytest.mark.parametrize("name", VOCABULARIES)
def test_each_vocabulary_names_exactly_the_codes_it_describes(name: str) -> None:
    table, codes = VOCABULARIES[name]
    assert set(table) == set(codes)


def test_profile_fields_are_all_named() -> None:
    assert set(customer_models.PROFILE_FIELDS) <= set(labels.PROFILE_FIELDS)


@pytest.mark.parametrize(
    ("lookup", "code", "english"),
    [
        (labels.legal_basis_label, "legitimate_interest", "Our legitimate interest (GDPR article 6(1)(f))"),
        (labels.purchase_channel_label, "click_and_collect", "Online, collected in store"),
        (labels.staff_role_label, "agent", "Support agent"),
        (labels.consent_channel_label, "store", "in a store"),
    ],
)
def test_lookups_translate_at_call_time(lookup: Callable[[str], str], code: str, english: str) -> None:
    with i18n.using_locale("en"):
        assert lookup(code) == english
    with i18n.using_locale("fr"):
        assert lookup(code) == i18n.translations("fr").gettext(english) != english


def test_an_unknown_code_is_shown_as_it_is() -> None:
    for lookup in labels.TEMPLATE_GLOBALS.values():
        assert lookup("no-such-code") == "no-such-code"


def test_staff_and_customers_read_the_same_request_in_their_own_words() -> None:
    with i18n.using_locale("en"):
        staff = labels.staff_labels()
        assert staff["types"]["access"] == "Access" and labels.request_type_label("access") == "access to my data"
        assert staff["statuses"]["awaiting_customer"] == "Waiting for the customer"
        assert labels.request_status_label("awaiting_customer") == "waiting for your answer"
    with i18n.using_locale("fr"):
        assert labels.staff_labels()["types"]["access"] == i18n.translations("fr").gettext("Access")


def test_every_audit_event_the_portal_records_has_a_label() -> None:
    """A new audit action without a label would show as a bare code to the DPO."""
    import re
    from pathlib import Path

    recorded = set()
    for path in Path(labels.__file__).parent.rglob("*.py"):
        recorded |= set(re.findall(r'action="([a-z_]+(?:\.[a-z_]+)?)"', path.read_text(encoding="utf-8")))
        recorded |= set(re.findall(r'"(consent\.(?:granted|withdrawn))"', path.read_text(encoding="utf-8")))
    recorded -= {"store_true", "store"}  # argparse, not audit
    assert recorded - set(labels.AUDIT_ACTIONS) == set()
    with i18n.using_locale("fr"):
        assert labels.audit_action_label("request.received") == "Demande reçue"
        assert labels.audit_actor_label("customer:34") == "Client n° 34"
        assert labels.audit_actor_label("staff:3", {"staff:3": "Alice Agent"}) == "Alice Agent"


def test_the_portal_s_own_texts_are_stored_as_codes_and_read_in_the_reader_s_language() -> None:
    stored = labels.system_note("downloaded")
    french_sentence = i18n.translations("fr").gettext(str(labels.SYSTEM_NOTES["downloaded"]))
    with i18n.using_locale("en"):
        assert labels.note_text(stored) == "You downloaded the archive of all your data."
        # A row written before the codes holds the French sentence itself: it is recognised and read in English.
        assert labels.note_text(french_sentence) == "You downloaded the archive of all your data."
        assert labels.note_text("Nous regardons cela.") == "Nous regardons cela."  # a person's words, as written
        assert labels.note_code("Nous regardons cela.") is None and labels.note_code(None) is None
    with i18n.using_locale("fr"):
        assert labels.note_text(stored) == french_sentence
    with pytest.raises(KeyError):
        labels.system_note("no-such-text")
