"""The "what we do with your data" page: the purpose register, tailored to the signed-in customer, with their rights."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from pathlib import Path

import pytest
from starlette.testclient import TestClient

from portal.app import create_app
from portal.consent.register import RegisterError, load_register
from portal.i18n import using_locale
from portal.settings import Settings
from tests.browsing_factories import record_consent
from tests.conftest import make_settings
from tests.factories import make_customer
from tests.web.helpers import sign_in_by_code

EN = {"accept-language": "en"}
FR = {"accept-language": "fr"}
REGISTER = load_register(Settings().purposes_file)


def section(html: str, code: str) -> str:
    match = re.search(rf'<section class="card purpose" id="purpose-{code}".*?</section>', html, re.S)
    assert match, f"no section for {code}"
    return match.group(0)


def signed_in(client, smtp, engine, email: str = "camille@example.com"):  # type: ignore[no-untyped-def]
    customer = make_customer(engine, email=email)
    sign_in_by_code(client, smtp, email)
    return customer


def test_signing_in_is_required(client) -> None:
    response = client.get("/me/processing", follow_redirects=False)
    assert response.status_code == 303 and response.headers["location"] == "/signin"


def test_every_purpose_with_its_article_15_information_in_english(client, smtp, engine) -> None:
    signed_in(client, smtp, engine)
    response = client.get("/me/processing", headers=EN)
    assert response.status_code == 200
    html = response.text
    assert '<html lang="en">' in html and "<title>What we do with your data · Maison Aubépine</title>" in html
    assert "Privacy policy version 2026-01 of 5 January 2026." in html
    codes = re.findall(r'<section class="card purpose" id="purpose-(\w+)"', html)
    assert codes == [p.code for p in REGISTER.consent_based()] + ["order_management", "accounting", "fraud_prevention"]
    with using_locale("en"):
        for purpose in REGISTER:
            text = section(html, purpose.code)
            for value in (purpose.title, purpose.description, purpose.retention.text, purpose.source):
                assert str(value).replace("'", "&#39;") in text, (purpose.code, str(value))
            for term in (*purpose.data_categories, *purpose.recipients):
                assert f"<li>{term}</li>".replace("'", "&#39;") in text, (purpose.code, str(term))
    assert "Your consent (GDPR article 6(1)(a))" in section(html, "sms_offers")
    assert "Performing our contract with you" in section(html, "order_management")
    assert "A legal obligation we must meet" in section(html, "accounting")
    fraud = section(html, "fraud_prevention")
    assert "Our legitimate interest" in fraud and "You can object to it at any time" in fraud
    assert "<dt>Profiling</dt>" in fraud and "<dt>Profiling</dt>" not in section(html, "accounting")
    assert "10 years from the close of the financial year" in section(html, "accounting")
    assert '<a href="/me/browsing">' in section(html, "browsing_analytics")


def test_the_rights_the_cnil_and_the_dpo(client, smtp, engine) -> None:
    signed_in(client, smtp, engine)
    html = client.get("/me/processing", headers=EN).text
    rights = re.search(r'<section id="rights".*?</section>', html, re.S)
    assert rights
    for right in (
        "Access",
        "Rectification",
        "Erasure",
        "Restriction",
        "Portability",
        "Objection",
        "Withdrawing consent",
        "Complaint",
    ):
        assert f"<strong>{right}</strong>" in rights.group(0)
    assert '<a href="https://www.cnil.fr" rel="noreferrer noopener">' in html
    assert "We answer within one month" in html
    assert '<a href="mailto:dpo@maison-aubepine.example">' in html
    assert "Maison Aubépine — DPO, 12 rue des Tilleuls, 69002 Lyon, France" in html


def test_the_page_in_french_speaks_the_registers_french(client, smtp, engine) -> None:
    signed_in(client, smtp, engine)
    html = client.get("/me/processing", headers=FR).text
    assert '<html lang="fr">' in html
    assert "Offres par SMS" in html and "Offers by text message" not in html
    assert "10 ans à compter de la clôture de l&#39;exercice comptable" in html


def test_each_consent_based_purpose_says_where_this_customers_consent_stands(client, smtp, engine) -> None:
    customer = signed_in(client, smtp, engine)
    other = make_customer(engine, email="leo@example.org")
    record_consent(engine, other, granted=True, at=datetime(2025, 5, 1, tzinfo=UTC), purpose="partner_sharing")
    record_consent(engine, customer, granted=True, at=datetime(2025, 2, 3, tzinfo=UTC), purpose="sms_offers")
    record_consent(engine, customer, granted=True, at=datetime(2024, 1, 1, tzinfo=UTC), purpose="email_newsletter")
    record_consent(engine, customer, granted=False, at=datetime(2025, 6, 9, tzinfo=UTC), purpose="email_newsletter")
    html = client.get("/me/processing", headers=EN).text
    assert "You gave your consent on 3 February 2025." in section(html, "sms_offers")
    assert "You withdrew your consent on 9 June 2025: we no longer do this." in section(html, "email_newsletter")
    assert "You have not given your consent" in section(html, "partner_sharing")  # Léo's consent is not hers
    for code in ("order_management", "accounting", "fraud_prevention"):
        assert "consent-status" not in section(html, code)


def test_the_purposes_text_rendered_once_never_carries_one_customers_data_to_another(client, smtp, engine) -> None:
    """The retailer's text is rendered once per language and kept (static_fragment); the consent and the dates are
    each customer's own, on every page and on the public policy drawn from the same template."""
    customer = signed_in(client, smtp, engine)
    record_consent(engine, customer, granted=True, at=datetime(2025, 2, 3, tzinfo=UTC), purpose="sms_offers")
    first = client.get("/me/processing", headers=EN).text
    make_customer(engine, email="leo@example.org")
    client.cookies.clear()  # the next customer, on the same application and its kept fragments
    sign_in_by_code(client, smtp, "leo@example.org")
    second = client.get("/me/processing", headers=EN).text
    french = client.get("/me/processing", headers=FR).text
    client.cookies.clear()
    public = client.get("/privacy", headers=EN).text
    assert "You gave your consent on 3 February 2025." in section(first, "sms_offers")
    assert "You have not given your consent" in section(second, "sms_offers")
    assert "You gave your consent" not in second and "consent-status" not in public
    assert '<a href="/me/browsing">' in section(second, "browsing_analytics")
    assert '<a href="/me/browsing">' not in section(public, "browsing_analytics")

    def facts(html: str, code: str) -> str:
        return section(html, code).split('<dl class="meta purpose__facts">')[1].split("<dt>How long")[0]

    for purpose in REGISTER:  # and the kept text is the whole text, in every page that shows it
        assert facts(first, purpose.code) == facts(second, purpose.code) == facts(public, purpose.code)
    assert "Offres par SMS" in french and "Offers by text message" not in french
    assert "<dt>Base légale</dt>" in french and "<dt>Legal basis</dt>" not in french


def test_the_page_reads_whatever_the_register_says(tmp_path: Path, database_url, smtp, clock, engine) -> None:
    shipped = Settings().purposes_file.read_text(encoding="utf-8")
    path = tmp_path / "purposes.toml"
    path.write_text(shipped.replace('title.en = "Postal mail"', 'title.en = "Letters through the door"'), "utf-8")
    with pytest.raises(RegisterError) as error:  # the wording changed: publish a new version, as the retailer would
        load_register(path)
    digest = re.search(r'wording_digest = "(\w+)"', str(error.value))
    assert digest
    text = re.sub(r'wording_digest = "\w+"', f'wording_digest = "{digest.group(1)}"', path.read_text("utf-8"))
    path.write_text(text.replace('version = "2026-01"', 'version = "2026-02"'), "utf-8")
    settings = make_settings(database_url, smtp.port, purposes_file=path)
    make_customer(engine, email="camille@example.com")
    with TestClient(create_app(settings, clock=clock)) as client:
        sign_in_by_code(client, smtp, "camille@example.com")
        html = client.get("/me/processing", headers=EN).text
    assert "Letters through the door" in section(html, "postal_mail")
    assert "Privacy policy version 2026-02" in html
