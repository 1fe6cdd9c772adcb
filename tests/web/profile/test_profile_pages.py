"""Profile page, rectification forms, email change and correction requests through HTTP, in both languages."""

from __future__ import annotations

import re

import pytest
from sqlalchemy import select

from portal.db import transaction
from portal.models import Customer, PrivacyRequest
from tests.conftest import TIMEZONE, csrf_from, local_path
from tests.web.helpers import sign_in_by_code

EMAIL = "camille@example.com"
EN = {"accept-language": "en"}


@pytest.fixture
def customer(engine):
    from tests.factories import make_customer

    return make_customer(engine, email=EMAIL, phone="+33612345678", birth_date=None, loyalty_number="AUB-12345678")


@pytest.fixture
def signed_in(client, smtp, customer):
    assert sign_in_by_code(client, smtp, EMAIL).status_code == 303
    return client


def form_of(page_html: str, **changes: str) -> dict[str, str]:
    values = dict(re.findall(r'<input id="(\w+)" name="\w+" type="(?:text|tel)" value="([^"]*)"', page_html))
    values.update(country="FR", preferred_language="fr", csrf_token=csrf_from(page_html))
    values.update(changes)
    return values


def test_profile_shows_every_field_with_its_date(signed_in) -> None:
    page = signed_in.get("/me/profile", headers=EN)
    assert page.status_code == 200 and page.headers["cache-control"] == "no-store"
    text = re.sub(r"\s+", " ", page.text)
    for label in (
        "First name",
        "Last name",
        "Email address",
        "Phone number",
        "Postal address",
        "Date of birth",
        "Loyalty card number",
        "Preferred language",
        "Customer since",
        "Where this data came from",
    ):
        assert label in text, label
    assert "06 12 34 56 78" in text and "AUB-12345678" in text and "last changed 4 March 2021" in text
    assert 'href="/me/profile/correction/loyalty_number"' in text


def test_changing_the_address_dates_the_address_and_the_overview(signed_in) -> None:
    page = signed_in.get("/me/profile", headers=EN)
    changed = signed_in.post(
        "/me/profile",
        headers=EN,
        data=form_of(page.text, address_line1="3 rue des Tilleuls", postal_code="69003", city="Lyon"),
        follow_redirects=False,
    )
    assert changed.status_code == 303
    held = re.sub(r"\s+", " ", signed_in.get("/me/profile", headers=EN).text)
    address_row = held.split("Postal address", 1)[1].split("</dd>", 1)[0]
    assert "3 rue des Tilleuls" in address_row and "last changed 23 November 2026" in address_row
    overview = re.sub(r"\s+", " ", signed_in.get("/me", headers=EN).text)
    assert "Last changed: 23 November 2026" in overview


@pytest.mark.parametrize("language", ["fr", "en"])
def test_the_country_list_offers_places_people_live_only(signed_in, language: str) -> None:
    page = signed_in.get("/me/profile", headers={"accept-language": language}).text
    offered = set(re.findall(r'<option value="([A-Z]{2})"', page))
    assert {"FR", "BE", "GB", "DE", "RE", "XK"} <= offered
    for code in ("EU", "EZ", "UN", "QO", "XA", "XB", "ZZ"):  # groupings, pseudo-regions, "Unknown Region"
        assert code not in offered, code
    assert "Pseudo" not in page and "Eurozone" not in page and "zone euro" not in page
    refused = signed_in.post("/me/profile", data=form_of(page, country="EU"), headers={"accept-language": language})
    assert refused.status_code == 400


def test_messages_say_which_field_and_what_limit(signed_in) -> None:
    page = signed_in.get("/me/profile", headers=EN)
    long_city = "Saint-" + "x" * 400
    response = signed_in.post(
        "/me/profile", headers=EN, data=form_of(page.text, first_name="", postal_code="99999", city=long_city)
    )
    assert response.status_code == 400
    assert "Enter your first name." in response.text
    assert "This is not a French postcode" in response.text
    assert "Keep it to 100 characters at most." in response.text
    assert f'value="{long_city}"' in response.text  # shown back whole, not cut


def test_rectify_the_phone_in_french(signed_in, engine, customer) -> None:
    page = signed_in.get("/me/profile")
    response = signed_in.post("/me/profile", data=form_of(page.text, phone="07 81 22 33 44"), follow_redirects=False)
    assert response.status_code == 303 and response.headers["location"] == "/me/profile?changed=phone#saved"
    after = signed_in.get(response.headers["location"])
    assert '<html lang="fr">' in after.text and "enregistré" in after.text and "07 81 22 33 44" in after.text
    with transaction(engine) as session:
        assert session.get(Customer, customer.id).phone == "+33781223344"


def test_bad_input_comes_back_with_the_values_and_messages(signed_in, engine, customer) -> None:
    page = signed_in.get("/me/profile", headers=EN)
    response = signed_in.post(
        "/me/profile", headers=EN, data=form_of(page.text, phone="12", postal_code="6900", last_name="Martin")
    )
    assert response.status_code == 400
    assert 'value="12"' in response.text and 'value="6900"' in response.text and 'value="Martin"' in response.text
    assert "Enter a valid phone number" in response.text and "This is not a French postcode" in response.text
    assert response.text.count('aria-invalid="true"') == 2
    with transaction(engine) as session:
        assert session.get(Customer, customer.id).last_name != "Martin"  # nothing half-saved


def test_email_change_with_confirmation(signed_in, smtp, engine, customer) -> None:
    assert customer.preferred_language == "fr"  # she prefers French, and acts from the English pages
    page = signed_in.get("/me/profile", headers=EN)
    response = signed_in.post(
        "/me/profile/email", headers=EN, data={"email": "camille.new@example.org", "csrf_token": csrf_from(page.text)}
    )
    assert response.status_code == 200 and "We sent a confirmation link" in response.text
    notice = smtp.wait_for(EMAIL, count=2)  # the sign-in code, then the notice
    assert "camille.new@example.org" in notice.text and "Hello" in notice.text
    confirmation = smtp.wait_for("camille.new@example.org")
    assert "Confirm" in confirmation.subject or "confirm" in confirmation.subject
    link = re.search(r"http://\S+/me/email/confirm\?token=[\w-]+", confirmation.text).group(0)
    with transaction(engine) as session:
        assert session.get(Customer, customer.id).email == EMAIL
    look = signed_in.get(local_path(link), headers=EN)
    assert look.status_code == 200 and "camille.new@example.org" in look.text
    done = signed_in.post(
        "/me/email/confirm", headers=EN, data={"token": link.split("token=")[1], "csrf_token": csrf_from(look.text)}
    )
    assert done.status_code == 200 and "has been changed" in done.text
    with transaction(engine) as session:
        assert session.get(Customer, customer.id).email == "camille.new@example.org"
    changed = smtp.wait_for(EMAIL, count=3)
    assert "camille.new@example.org" in changed.text and "has been changed" in changed.subject  # English, as the page
    again = signed_in.get(local_path(link), headers=EN)
    assert again.status_code == 410


@pytest.mark.parametrize("token", ["", "forged", "x" * 500])
def test_bad_confirmation_links_get_a_clear_page(client, token) -> None:
    page = client.get(f"/me/email/confirm?token={token}", headers=EN)
    assert page.status_code == 400 and "cannot be used" in page.text


def test_correction_request_lands_in_my_requests(signed_in, smtp, engine) -> None:
    form = signed_in.get("/me/profile/correction/birth_date", headers=EN)
    assert form.status_code == 200 and "date of birth" in form.text
    key = re.search(r'name="submission_key" value="([^"]+)"', form.text).group(1)
    data = {"proposed_value": "12/05/1984", "comment": "", "submission_key": key, "csrf_token": csrf_from(form.text)}
    first = signed_in.post("/me/profile/correction/birth_date", data=data, headers=EN, follow_redirects=False)
    second = signed_in.post("/me/profile/correction/birth_date", data=data, headers=EN, follow_redirects=False)
    assert first.headers["location"] == second.headers["location"]  # a double submission files one request
    detail = signed_in.get(first.headers["location"], headers=EN)
    reference = re.search(r"R-[0-9A-Z]{4}-[0-9A-Z]{4}", detail.text).group(0)
    assert "Correction of my data" in detail.text and "12 May 1984" in detail.text and "Request received" in detail.text
    listing = re.sub(r"\s+", " ", signed_in.get("/me/requests", headers=EN).text)
    assert reference in listing and "23 December 2026" in listing and "Received" in listing
    ack = smtp.wait_for(EMAIL, count=2)
    assert reference in ack.subject
    with transaction(engine) as session:
        assert len(session.scalars(select(PrivacyRequest)).all()) == 1


def test_correction_needs_a_value(signed_in) -> None:
    form = signed_in.get("/me/profile/correction/loyalty_number", headers=EN)
    response = signed_in.post(
        "/me/profile/correction/loyalty_number",
        headers=EN,
        data={"proposed_value": " ", "csrf_token": csrf_from(form.text)},
    )
    assert response.status_code == 400 and "Enter the correct value" in response.text


@pytest.mark.parametrize("typed", ["31/02/1983", "1983-02-31", "12/05/2999", "next Tuesday", "05/1984"])
def test_an_impossible_date_of_birth_is_refused_where_it_is_typed(signed_in, typed: str) -> None:
    form = signed_in.get("/me/profile/correction/birth_date", headers=EN)
    assert "Day, month and year, for example 23/04/1983." in form.text
    response = signed_in.post(
        "/me/profile/correction/birth_date",
        headers=EN,
        data={"proposed_value": typed, "csrf_token": csrf_from(form.text)},
    )
    assert response.status_code == 400
    assert "Enter a real date of birth as day/month/year, for example 23/04/1983." in response.text


def test_a_date_of_birth_reaches_the_agent_in_the_form_they_apply(signed_in, engine) -> None:
    form = signed_in.get("/me/profile/correction/birth_date", headers=EN)
    key = re.search(r'name="submission_key" value="([^"]+)"', form.text).group(1)
    data = {"proposed_value": "23/04/1983", "submission_key": key, "csrf_token": csrf_from(form.text)}
    assert signed_in.post("/me/profile/correction/birth_date", data=data, follow_redirects=False).status_code == 303
    with transaction(engine) as session:
        filed = session.scalars(select(PrivacyRequest)).one()
        assert filed.details["proposed_value"] == "1983-04-23"


def test_unknown_correction_field_is_a_404(signed_in) -> None:
    assert signed_in.get("/me/profile/correction/email").status_code == 404
    assert signed_in.get("/me/profile/correction/is_admin").status_code == 404


def test_pages_need_a_signed_in_customer(client) -> None:
    for path in ("/me/profile", "/me/requests", "/me/requests/R-AAAA-BBBB", "/me/profile/correction/birth_date"):
        assert client.get(path, follow_redirects=False).headers["location"] == "/signin", path


def test_another_customers_request_is_a_404(signed_in, engine, clock) -> None:
    from portal.requests.service import file_request
    from tests.factories import make_customer

    other = make_customer(engine, email="other@example.com")
    with transaction(engine) as session:
        filed = file_request(
            session,
            customer_id=other.id,
            type="erasure",
            channel="web",
            now=clock(),
            actor=f"customer:{other.id}",
            timezone=TIMEZONE,
        )
    page = signed_in.get(f"/me/requests/{filed.reference}", headers=EN)
    assert page.status_code == 404 and "Answer due by" not in page.text and "rasure" not in page.text
    assert filed.reference not in signed_in.get("/me/requests").text
    assert signed_in.get("/me/requests/not-a-reference").status_code == 404


def test_overview_cards_lead_to_each_page(signed_in) -> None:
    html = signed_in.get("/me", headers=EN).text
    for path in ("/me/profile", "/me/purchases", "/me/browsing", "/me/consents", "/me/processing", "/me/requests"):
        assert f'href="{path}"' in html, path


def test_a_missing_date_of_birth_reads_as_a_date_in_french(signed_in) -> None:
    text = re.sub(r"\s+", " ", signed_in.get("/me/profile", headers={"accept-language": "fr"}).text)
    assert 'Date de naissance</dt> <dd><span class="hint">non renseignée</span>' in text
