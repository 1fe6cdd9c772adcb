"""The consent page: every consent-based purpose, one button each, with and without htmx, and the history."""

from __future__ import annotations

import re

from sqlalchemy import func, select

from portal.db import transaction
from portal.models import AuditEvent, ConsentEvent
from tests.conftest import csrf_from
from tests.factories import add_page_views, make_customer
from tests.web.helpers import sign_in_by_code

EN = {"accept-language": "en"}
FR = {"accept-language": "fr"}
HTMX = {**EN, "hx-request": "true"}


def signed_in(client, smtp, engine, email: str = "camille@example.com"):  # type: ignore[no-untyped-def]
    customer = make_customer(engine, email=email)
    sign_in_by_code(client, smtp, email)
    return customer


def row(html: str, code: str) -> str:
    match = re.search(rf'<section class="card consent" id="purpose-{code}".*?</section>', html, re.S)
    assert match, f"no row for {code}"
    return match.group(0)


def post(client, page: str, headers=EN, **data: str):  # type: ignore[no-untyped-def]
    return client.post(
        "/me/consents", data={"csrf_token": csrf_from(page), **data}, headers=headers, follow_redirects=False
    )


def events(engine) -> int:  # type: ignore[no-untyped-def]
    with transaction(engine) as session:
        return session.execute(select(func.count()).select_from(ConsentEvent)).scalar_one()


def test_signing_in_is_required(client) -> None:
    response = client.get("/me/consents", follow_redirects=False)
    assert response.status_code == 303 and response.headers["location"] == "/signin"


def test_every_consent_purpose_in_english_nothing_given(client, smtp, engine) -> None:
    signed_in(client, smtp, engine)
    response = client.get("/me/consents", headers=EN)
    html = response.text
    assert response.status_code == 200 and '<html lang="en">' in html
    assert "<title>Your consents · Maison Aubépine</title>" in html
    codes = re.findall(r'<section class="card consent" id="purpose-(\w+)"', html)
    register = client.app.state.portal.register
    assert codes == [purpose.code for purpose in register.consent_based()]
    assert "purpose-order_management" not in html
    for code in codes:
        assert 'data-state="never"' in row(html, code) and 'name="action" value="grant"' in row(html, code)
    assert "Email newsletter" in html and "Withdraw all my consents and object to direct marketing" in html
    assert 'aria-live="polite"' in html and 'data-testid="history-empty"' in html


def test_the_page_in_french(client, smtp, engine) -> None:
    signed_in(client, smtp, engine)
    html = client.get("/me/consents", headers=FR).text
    assert '<html lang="fr">' in html
    register = client.app.state.portal.register
    assert f'<h3 id="purpose-postal_mail-title">{register.by_code["postal_mail"].title.in_locale("fr")}</h3>' in html


def test_give_then_withdraw_without_javascript(client, smtp, engine) -> None:
    signed_in(client, smtp, engine)
    page = client.get("/me/consents", headers=EN).text
    response = post(client, page, purpose="postal_mail", action="grant")
    assert response.status_code == 303 and response.headers["location"] == "/me/consents#purpose-postal_mail"
    assert response.headers["vary"] == "HX-Request"
    page = client.get("/me/consents", headers=EN).text
    postal = row(page, "postal_mail")
    assert "Consent given" in postal and "Withdraw consent" in postal and "on this website" in postal
    assert post(client, page, purpose="postal_mail", action="grant").status_code == 303  # a second click
    assert events(engine) == 1
    post(client, page, purpose="postal_mail", action="withdraw")
    page = client.get("/me/consents", headers=EN).text
    assert "Consent withdrawn" in row(page, "postal_mail")
    history = page[page.index('id="history-heading"') :]
    assert history.count("<tr>") == 3  # the header and two events
    assert "consent withdrawn" in history and "consent given" in history
    assert client.app.state.portal.register.policy_version in history


def test_with_htmx_only_the_row_comes_back(client, smtp, engine) -> None:
    signed_in(client, smtp, engine)
    page = client.get("/me/consents", headers=EN).text
    response = client.post(
        "/me/consents",
        data={"purpose": "sms_offers", "action": "grant"},
        headers={**HTMX, "x-csrf-token": csrf_from(page)},
    )
    assert response.status_code == 200 and response.headers["vary"] == "HX-Request"
    html = response.text
    assert "<html" not in html and html.count('<section class="card consent"') == 1
    assert 'id="purpose-sms_offers"' in html and "Consent given" in html
    assert 'hx-swap-oob="innerHTML"' in html and "Consent given: Offers by text message." in html


def test_a_csrf_token_is_required(client, smtp, engine) -> None:
    signed_in(client, smtp, engine)
    response = client.post("/me/consents", data={"purpose": "sms_offers", "action": "grant"}, headers=EN)
    assert response.status_code == 403
    assert events(engine) == 0


def test_an_unknown_or_non_consent_purpose_is_a_clear_bad_request(client, smtp, engine) -> None:
    signed_in(client, smtp, engine)
    page = client.get("/me/consents", headers=EN).text
    for purpose in ("order_management", "no_such_thing"):
        response = post(client, page, purpose=purpose, action="grant")
        assert response.status_code == 400
        assert "This choice could not be recorded" in response.text and "nothing was changed" in response.text
    assert post(client, page, purpose="sms_offers", action="maybe").status_code == 400
    assert events(engine) == 0


def test_withdraw_all_marketing(client, smtp, engine) -> None:
    signed_in(client, smtp, engine)
    page = client.get("/me/consents", headers=EN).text
    for code in ("email_newsletter", "phone_calls", "partner_sharing"):
        post(client, page, purpose=code, action="grant")
    response = post(client, page, action="withdraw_all_marketing")
    assert response.status_code == 303 and response.headers["location"] == "/me/consents?withdrawn=3#withdraw-all"
    page = client.get(response.headers["location"], headers=EN).text
    assert "Done: 3 consents withdrawn." in page
    assert 'data-state="granted"' not in page
    response = post(client, page, action="withdraw_all_marketing")
    assert "nothing to withdraw" in client.get(response.headers["location"], headers=EN).text
    assert events(engine) == 6


def test_withdrawing_browsing_analytics_offers_to_delete_the_history(client, smtp, engine) -> None:
    customer = signed_in(client, smtp, engine)
    add_page_views(engine, customer, 5)  # consented (by the factory) and recorded
    assert "5 pages viewed" in client.get("/me", headers=EN).text
    page = client.get("/me/consents", headers=EN).text
    assert 'data-testid="browsing-offer"' not in page
    assert "Consent given" in row(page, "browsing_analytics")
    post(client, page, purpose="browsing_analytics", action="withdraw")
    page = client.get("/me/consents", headers=EN).text
    browsing = row(page, "browsing_analytics")
    assert 'data-testid="browsing-offer"' in browsing and "We still hold 5 page views" in browsing
    response = client.post(
        "/me/consents/browsing-history/delete", data={"csrf_token": csrf_from(page)}, follow_redirects=False
    )
    assert response.status_code == 303
    assert response.headers["location"] == "/me/consents?deleted=5#purpose-browsing_analytics"
    page = client.get(response.headers["location"], headers=EN).text
    assert "Done: we deleted 5 page views." in page and 'data-testid="browsing-offer"' not in page
    overview = client.get("/me", headers=EN).text
    assert 'href="/me/consents"' in overview
    assert 'data-testid="browsing-summary"' not in overview and "We hold no record of the pages you viewed" in overview
    with transaction(engine) as session:
        audit = session.execute(select(AuditEvent).where(AuditEvent.action == "browsing.deleted")).scalar_one()
    assert audit.detail == {"count": 5, "channel": "web"}


def test_deleting_the_history_with_htmx_returns_the_row(client, smtp, engine) -> None:
    customer = signed_in(client, smtp, engine)
    add_page_views(engine, customer, 2)
    page = client.get("/me/consents", headers=EN).text
    post(client, page, purpose="browsing_analytics", action="withdraw")
    response = client.post("/me/consents/browsing-history/delete", headers={**HTMX, "x-csrf-token": csrf_from(page)})
    assert response.status_code == 200 and "<html" not in response.text
    assert "Done: we deleted 2 page views." in response.text and "Your browsing history was deleted." in response.text


def test_the_other_pages_link_to_the_consents(client, smtp, engine) -> None:
    signed_in(client, smtp, engine)
    processing = client.get("/me/processing", headers=EN).text
    assert 'href="/me/consents#purpose-email_newsletter"' in processing
    assert 'href="/me/consents#purpose-order_management"' not in processing
    browsing = client.get("/me/browsing", headers=EN).text
    assert 'href="/me/consents#purpose-browsing_analytics"' in browsing


def test_a_restricted_customer_sees_the_restriction_where_they_act(client, smtp, engine) -> None:
    from datetime import UTC, datetime

    from sqlalchemy import update

    from portal.models import Customer

    customer = signed_in(client, smtp, engine)
    with transaction(engine) as session:
        session.execute(
            update(Customer)
            .where(Customer.id == customer.id)
            .values(restricted_at=datetime(2026, 11, 20, 9, tzinfo=UTC))
        )
    english_overview = re.sub(r"\s+", " ", client.get("/me", headers=EN).text)
    assert "Since 20 November 2026, the use of your data is restricted at your request" in english_overview
    english = re.sub(r"\s+", " ", client.get("/me/consents", headers=EN).text)
    assert "The consents you give are recorded and apply once the restriction is lifted." in english
    french = re.sub(r"\s+", " ", client.get("/me/consents", headers=FR).text)
    assert "Depuis le 20 novembre 2026, l’utilisation de vos données est limitée" in french.replace("'", "’")
    with transaction(engine) as session:
        session.execute(update(Customer).where(Customer.id == customer.id).values(restricted_at=None))
    assert "restricted at your request" not in client.get("/me/consents", headers=EN).text
    assert "restricted at your request" not in client.get("/me", headers=EN).text
