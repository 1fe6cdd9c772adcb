"""The purpose register is validated at start-up, with messages naming the file, the purpose and the field."""

from __future__ import annotations

import hashlib
import re
from datetime import UTC, date, datetime
from pathlib import Path

import pytest

from portal.consent.register import RegisterError, load_register
from portal.i18n import using_locale
from portal.settings import Settings

SHIPPED = Settings().purposes_file
CONSENT_PURPOSES = [
    "email_newsletter",
    "sms_offers",
    "phone_calls",
    "postal_mail",
    "personalised_offers",
    "browsing_analytics",
    "partner_sharing",
]


def write(tmp_path: Path, *changes: tuple[str, str]) -> Path:
    text = SHIPPED.read_text(encoding="utf-8")
    for old, new in changes:
        assert old in text, old
        text = text.replace(old, new, 1)
    path = tmp_path / "purposes.toml"
    path.write_text(text, encoding="utf-8")
    return path


def with_new_digest(path: Path) -> Path:
    """Accept a wording change the way the retailer would: copy the digest the error message prints."""
    with pytest.raises(RegisterError) as error:
        load_register(path)
    digest = re.search(r'wording_digest = "([0-9a-f]{64})"', str(error.value))
    assert digest, str(error.value)
    text = re.sub(r'wording_digest = "[^"]*"', f'wording_digest = "{digest.group(1)}"', path.read_text("utf-8"))
    path.write_text(text, encoding="utf-8")
    return path


def test_the_shipped_register_is_valid_and_complete() -> None:
    register = load_register(SHIPPED)
    assert [p.code for p in register] == [
        *CONSENT_PURPOSES,
        "order_management",
        "accounting",
        "fraud_prevention",
    ]
    assert [p.code for p in register.consent_based()] == CONSENT_PURPOSES
    assert {p.code: p.legal_basis for p in register if not p.consent_based} == {
        "order_management": "contract",
        "accounting": "legal_obligation",
        "fraud_prevention": "legitimate_interest",
    }
    assert register.policy_version == "2026-01" and register.policy_date == date(2026, 1, 5)
    for purpose in register:
        for locale in ("fr", "en"):
            for field in ("title", "description", "source"):
                assert purpose.text(field, locale), (purpose.code, field, locale)
            assert purpose.retention.text.in_locale(locale)
        assert purpose.data_categories and purpose.recipients
    assert register.by_code["personalised_offers"].profiling


def test_retention_is_configured_per_purpose() -> None:
    register = load_register(SHIPPED)
    browsing = register.by_code["browsing_analytics"].retention
    assert (browsing.amount, browsing.unit, browsing.starts, browsing.months) == (13, "months", "collection", 13)
    assert register.by_code["accounting"].retention.months == 120
    assert register.by_code["email_newsletter"].retention.starts == "end_of_relationship"
    # Calendar months, clamped to the end of a shorter month.
    assert browsing.earliest_kept(datetime(2026, 3, 31, 12, tzinfo=UTC)) == datetime(2025, 2, 28, 12, tzinfo=UTC)


def test_texts_follow_the_current_language() -> None:
    purpose = load_register(SHIPPED).by_code["sms_offers"]
    with using_locale("en"):
        assert str(purpose.title) == "Offers by text message" == purpose.text("title")
        assert str(purpose.recipients[0]) == "Maison Aubépine's marketing team"
    with using_locale("fr"):
        assert str(purpose.title) == "Offres par SMS"


def test_wording_hash_is_the_sha256_of_the_exact_consent_wording_and_stable() -> None:
    register = load_register(SHIPPED)
    purpose = register.by_code["sms_offers"]
    shown = f"{purpose.title.in_locale('fr')}\n\n{purpose.description.in_locale('fr')}"
    assert register.wording_hash("sms_offers", "fr") == hashlib.sha256(shown.encode()).hexdigest()
    assert register.wording_hash("sms_offers", "fr") == load_register(SHIPPED).wording_hash("sms_offers", "fr")
    assert register.wording_hash("sms_offers", "fr") != register.wording_hash("sms_offers", "en")
    with pytest.raises(KeyError):
        register.wording_hash("no_such_purpose", "fr")


def test_layout_and_comments_do_not_change_the_wording(tmp_path: Path) -> None:
    path = write(
        tmp_path, ("\n[policy]\n", "\n# reformatted\n[policy]\n"), ('code = "sms_offers"', 'code   =   "sms_offers"')
    )
    assert load_register(path).wording_digest == load_register(SHIPPED).wording_digest


def test_a_wording_change_without_a_new_version_is_refused(tmp_path: Path) -> None:
    path = write(tmp_path, ("au plus quatre fois par mois", "au plus dix fois par mois"))
    with pytest.raises(RegisterError) as error:
        load_register(path)
    message = str(error.value)
    assert str(path) in message and "[policy]" in message and "'2026-01'" in message
    assert "new [policy] version" in message and re.search(r'wording_digest = "[0-9a-f]{64}"', message)
    # Retention and recipients are wording too: the policy tells customers about them.
    retention = write(tmp_path, ('retention.period = "13 months"', 'retention.period = "25 months"'))
    with pytest.raises(RegisterError, match="wording changed"):
        load_register(retention)


def test_a_new_version_with_its_digest_is_accepted_and_changes_the_hash(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        ("au plus quatre fois par mois", "au plus dix fois par mois"),
        ('version = "2026-01"', 'version = "2026-02"'),
        ("date = 2026-01-05", "date = 2026-02-01"),
    )
    register = load_register(with_new_digest(path))
    assert register.policy_version == "2026-02" and register.policy_date == date(2026, 2, 1)
    before = load_register(SHIPPED)
    assert register.wording_hash("sms_offers", "fr") != before.wording_hash("sms_offers", "fr")
    assert register.wording_hash("sms_offers", "en") == before.wording_hash("sms_offers", "en")


def test_a_missing_digest_prints_the_one_to_record(tmp_path: Path) -> None:
    path = write(tmp_path, ('wording_digest = "', 'old_digest = "'))
    with pytest.raises(RegisterError, match=r'wording_digest is missing.*wording_digest = "[0-9a-f]{64}"'):
        load_register(path)


@pytest.mark.parametrize(
    ("change", "where", "message"),
    [
        (('title.en = "Offers by text message"\n', ""), "purpose 'sms_offers'", "title.en is missing or empty"),
        (('title.en = "Offers by text message"', 'title.en = "  "'), "purpose 'sms_offers'", "title.en is missing"),
        (('title.en = "Offers by text message"', 'title.de = "SMS"'), "purpose 'sms_offers'", "title.de: unknown"),
        (
            ('description.fr = "Recevoir par SMS', 'summary.fr = "Recevoir par SMS'),
            "purpose 'sms_offers'",
            "unknown field 'summary'",
        ),
        (
            ('legal_basis = "contract"', 'legal_basis = "contractual"'),
            "purpose 'order_management'",
            "legal_basis must be one of consent, contract, legal_obligation, legitimate_interest, not 'contractual'",
        ),
        (('code = "sms_offers"', 'code = "email_newsletter"'), "purpose 'email_newsletter'", "duplicate code"),
        (('code = "sms_offers"', 'code = "SMS offers"'), "purpose #2", "code must be lowercase"),
        (
            (
                'code = "browsing_analytics"\nlegal_basis = "consent"',
                'code = "browsing_analytics"\nlegal_basis = "legitimate_interest"',
            ),
            "purpose 'browsing_analytics'",
            'legal_basis must be "consent": the portal records page views only while the customer consents',
        ),
        (
            ('recipients = ["marketing_team", "sms_provider"]', "recipients = []"),
            "purpose 'sms_offers'",
            "recipients must be a non-empty list",
        ),
        (
            ('recipients = ["marketing_team", "sms_provider"]', 'recipients = ["marketing_team", "sms_robot"]'),
            "purpose 'sms_offers'",
            "recipients: 'sms_robot' is not defined under [recipients]",
        ),
        (
            ('data_categories = ["identity", "phone_number"]', 'data_categories = ["identity", "phone"]'),
            "purpose 'sms_offers'",
            "data_categories: 'phone' is not defined under [data_categories]",
        ),
        (
            ('retention.period = "13 months"', 'retention.period = "13 moons"'),
            "purpose 'browsing_analytics'",
            "retention.period must be a positive number of days, months or years",
        ),
        (
            ('retention.period = "13 months"', 'retention.period = "0 months"'),
            "purpose 'browsing_analytics'",
            "retention.period must be a positive",
        ),
        (
            ('retention.period = "13 months"', "retention.period = 13"),
            "purpose 'browsing_analytics'",
            "retention.period must be a positive",
        ),
        (
            ('retention.starts = "collection"', 'retention.starts = "forever"'),
            "purpose 'browsing_analytics'",
            "retention.starts must be one of collection, end_of_relationship",
        ),
        (
            ('retention.text.en = "Each page view is kept for 13 months, then erased"\n', ""),
            "purpose 'browsing_analytics'",
            "retention.text.en is missing or empty",
        ),
        (
            ('source.en = "Our website, while you browse it signed in to your account"\n', ""),
            "purpose 'browsing_analytics'",
            "source.en is missing or empty",
        ),
        (
            (
                'legal_basis = "legitimate_interest"\ncan_object = true',
                'legal_basis = "legitimate_interest"\ncan_object = false',
            ),
            "purpose 'fraud_prevention'",
            "can_object must be true",
        ),
        (
            ('legal_basis = "contract"\ncan_object = false', 'legal_basis = "contract"\ncan_object = true'),
            "purpose 'order_management'",
            "can_object must be false",
        ),
        (("can_object = true", 'can_object = "yes"'), "purpose 'email_newsletter'", "can_object must be true or false"),
        (('en = "Phone number"', 'de = "Telefonnummer"'), "[data_categories.phone_number]", "de: unknown language"),
        (('fr = "Adresse postale"\n', ""), "[data_categories.postal_address]", "fr is missing or empty"),
        (('version = "2026-01"', 'version = ""'), "[policy]", "version must be a short non-empty string"),
        (("date = 2026-01-05", 'date = "5 janvier 2026"'), "[policy]", "date must be a TOML date"),
        (("\n[policy]\n", "\n[policy\n"), "not valid TOML", ""),
    ],
)
def test_bad_registers_are_refused_with_a_message_saying_where(tmp_path: Path, change, where, message) -> None:
    path = write(tmp_path, change)
    with pytest.raises(RegisterError) as error:
        load_register(path)
    assert str(error.value).startswith(f"{path}: {where}"), str(error.value)
    assert message in str(error.value)


def test_the_browsing_purpose_must_exist(tmp_path: Path) -> None:
    path = write(tmp_path, ('code = "browsing_analytics"', 'code = "site_analytics"'))
    with pytest.raises(RegisterError, match="purpose 'browsing_analytics' is missing"):
        load_register(path)


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(RegisterError, match="not found.*PORTAL_PURPOSES_FILE"):
        load_register(tmp_path / "nope.toml")


def test_the_app_refuses_to_start_with_a_bad_register(tmp_path: Path, database_url: str) -> None:
    from portal.app import create_app
    from tests.conftest import make_settings

    bad = write(tmp_path, ('legal_basis = "contract"', 'legal_basis = "whim"'))
    with pytest.raises(RegisterError, match="legal_basis"):
        create_app(make_settings(database_url, 1, purposes_file=bad))
    assert create_app(make_settings(database_url, 1)).state.portal.register.policy_version == "2026-01"
