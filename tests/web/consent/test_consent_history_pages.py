"""The history of choices a page at a time, and the htmx toggle redrawing only what changed (row, confirmation,
the new entry), with the same audit and outbox rows as the plain form."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select

from portal.db import transaction
from portal.models import AuditEvent, ConsentEvent, OutboxMessage
from tests.conftest import csrf_from
from tests.consent_factories import add_consent_changes
from tests.factories import make_customer
from tests.web.helpers import sign_in_by_code

EN = {"accept-language": "en"}
FR = {"accept-language": "fr"}
HTMX = {**EN, "hx-request": "true"}
END = datetime(2026, 11, 1, 9, tzinfo=UTC)
PURPOSES = ("email_newsletter", "sms_offers", "partner_sharing")


def signed_in(client, smtp, engine, email: str = "camille@example.com"):  # type: ignore[no-untyped-def]
    customer = make_customer(engine, email=email)
    sign_in_by_code(client, smtp, email)
    return customer


def entry_times(html: str) -> list[str]:
    """The moments of the history's entries, in the order shown."""
    return re.findall(r'<td(?: tabindex="-1" autofocus)?><time datetime="([^"]+)"', html)


def older_link(html: str) -> str | None:
    match = re.search(r'<a class="button" href="(/me/consents\?after=\d+)#history" hx-get="([^"]+)"', html)
    if match:
        assert match.group(1) == match.group(2)
        return match.group(1)
    return None


def ledger_times(engine, customer_id: int) -> list[str]:  # type: ignore[no-untyped-def]
    with transaction(engine) as session:
        rows = session.execute(
            select(ConsentEvent.occurred_at)
            .where(ConsentEvent.customer_id == customer_id)
            .order_by(ConsentEvent.occurred_at.desc(), ConsentEvent.id.desc())
        ).scalars()
        return [moment.isoformat() for moment in rows]


def test_the_history_comes_fifty_entries_at_a_time_without_javascript(client, smtp, engine) -> None:
    customer = signed_in(client, smtp, engine)
    add_consent_changes(engine, customer.id, 120, purposes=PURPOSES, end=END)
    expected = ledger_times(engine, customer.id)
    seen: list[str] = []
    page = client.get("/me/consents", headers=EN)
    assert page.status_code == 200 and page.headers["vary"] == "HX-Request"
    assert "History of your choices" in page.text and 'id="history-rows"' in page.text
    seen += entry_times(page.text)
    link = older_link(page.text)
    pages = 1
    while link:
        page = client.get(link, headers=EN)
        assert page.status_code == 200 and "<html" in page.text and "Older choices" in page.text
        assert 'id="history-rows"' not in page.text  # a click's new entry goes to the newest choices only
        assert 'href="/me/consents#history">Back to your newest choices' in page.text
        seen += entry_times(page.text)
        link = older_link(page.text)
        pages += 1
    assert pages == 3 and seen == expected  # 50 + 50 + 20, newest first, none twice, none missing


def test_with_htmx_the_next_entries_replace_the_link(client, smtp, engine) -> None:
    customer = signed_in(client, smtp, engine)
    add_consent_changes(engine, customer.id, 60, purposes=PURPOSES, end=END)
    expected = ledger_times(engine, customer.id)
    link = older_link(client.get("/me/consents", headers=EN).text)
    assert link
    rows = client.get(link, headers=HTMX)
    assert rows.status_code == 200 and rows.headers["vary"] == "HX-Request"
    assert rows.text.lstrip().startswith("<tr>") and "<html" not in rows.text and "<table" not in rows.text
    assert entry_times(rows.text) == expected[50:]
    assert rows.text.count("autofocus") == 1 and '<td tabindex="-1" autofocus>' in rows.text
    assert older_link(rows.text) is None
    page = client.get("/me/consents", headers=EN).text
    assert re.search(r'<tr class="history-more">\s*<td colspan="5">\s*<a class="button"', page)
    assert 'hx-target="closest tr" hx-swap="outerHTML">Show older choices</a>' in page


@pytest.mark.parametrize("after", ["abc", "0", "-3", "99999999999", "999999", "OTHER"])
def test_a_bad_link_to_older_choices_is_a_clear_bad_request(client, smtp, engine, after: str) -> None:
    customer = signed_in(client, smtp, engine)
    add_consent_changes(engine, customer.id, 3, purposes=PURPOSES, end=END)
    if after == "OTHER":  # someone else's event: never a way into their history
        other = make_customer(engine, email="other@example.com")
        add_consent_changes(engine, other.id, 3, purposes=PURPOSES, end=END)
        with transaction(engine) as session:
            after = str(session.scalar(select(ConsentEvent.id).where(ConsentEvent.customer_id == other.id).limit(1)))
    for headers, message in ((EN, "This link to older choices is not valid"), (FR, "lien vers vos choix")):
        response = client.get(f"/me/consents?after={after}", headers=headers)
        assert response.status_code == 400 and message in response.text, response.text
    response = client.get("/me/consents?after=1&after=2", headers=EN)
    assert response.status_code == 400


def _toggle(client, page: str, purpose: str, action: str, htmx: bool):  # type: ignore[no-untyped-def]
    headers = {**HTMX, "x-csrf-token": csrf_from(page)} if htmx else EN
    return client.post(
        "/me/consents",
        data={"csrf_token": csrf_from(page), "purpose": purpose, "action": action},
        headers=headers,
        follow_redirects=False,
    )


def test_the_htmx_toggle_sends_the_row_the_confirmation_and_only_the_new_entry(client, smtp, engine) -> None:
    customer = signed_in(client, smtp, engine)
    add_consent_changes(engine, customer.id, 200, purposes=PURPOSES, end=END)
    page = client.get("/me/consents", headers=EN).text
    response = _toggle(client, page, "phone_calls", "grant", htmx=True)
    assert response.status_code == 200 and response.headers["vary"] == "HX-Request"
    html = response.text
    assert html.count('<section class="card consent"') == 1 and 'id="purpose-phone_calls"' in html
    assert "Consent given: Phone calls" in html or "Consent given: " in html
    assert 'id="history"' not in html and "History of your choices" not in html  # never the whole history
    oob = re.search(r'<template><tbody hx-swap-oob="afterbegin:#history-rows">(.*?)</tbody></template>', html, re.S)
    assert oob and oob.group(1).count("<tr>") == 1
    # The entry is the one the full page now shows first, byte for byte.
    page = client.get("/me/consents", headers=EN).text
    first = re.search(r'<tbody id="history-rows">\s*(<tr>.*?</tr>)', page, re.S)
    assert first and first.group(1).strip() == oob.group(1).strip()
    assert entry_times(page)[0] == ledger_times(engine, customer.id)[0]


def test_the_first_choice_ever_draws_the_history_anew(client, smtp, engine) -> None:
    signed_in(client, smtp, engine)
    page = client.get("/me/consents", headers=EN).text
    assert 'data-testid="history-empty"' in page
    html = _toggle(client, page, "sms_offers", "grant", htmx=True).text
    assert '<section class="consent-history" id="history" aria-labelledby="history-heading" hx-swap-oob="true">' in html
    assert len(entry_times(html)) == 1 and 'hx-swap-oob="afterbegin' not in html
    again = _toggle(client, page, "sms_offers", "grant", htmx=True).text  # nothing changes: no entry at all
    assert "<tr>" not in again and 'id="history"' not in again


def test_the_plain_form_still_redirects(client, smtp, engine) -> None:
    signed_in(client, smtp, engine)
    page = client.get("/me/consents", headers=EN).text
    response = _toggle(client, page, "sms_offers", "grant", htmx=False)
    assert response.status_code == 303 and response.headers["location"] == "/me/consents#purpose-sms_offers"
    assert response.headers["vary"] == "HX-Request"


def _what_was_written(engine, customer_id: int) -> tuple[list, list]:  # type: ignore[no-untyped-def]
    with transaction(engine) as session:
        events = session.execute(
            select(ConsentEvent.purpose, ConsentEvent.granted, ConsentEvent.channel, ConsentEvent.policy_version,
                   ConsentEvent.wording_hash)
            .where(ConsentEvent.customer_id == customer_id).order_by(ConsentEvent.id)
        ).all()  # fmt: skip
        audits = session.execute(
            select(AuditEvent.action, AuditEvent.detail)
            .where(AuditEvent.target == f"customer:{customer_id}", AuditEvent.action.like("consent.%"))
            .order_by(AuditEvent.id)
        ).all()
    return [tuple(e) for e in events], [tuple(a) for a in audits]


def test_htmx_and_plain_toggles_write_the_same_rows(client, smtp, engine, clock) -> None:
    """(The webhooks' payloads are compared in tests/unit/consent/test_consent_change.py: here the in-process worker
    sends them and forgets their data.)"""
    written = []
    for email, htmx in (("htmx@example.com", True), ("plain@example.com", False)):
        customer = signed_in(client, smtp, engine, email=email)
        page = client.get("/me/consents", headers=EN).text
        for purpose, action in (("sms_offers", "grant"), ("email_newsletter", "grant"), ("sms_offers", "withdraw")):
            clock.advance(seconds=1)
            assert _toggle(client, page, purpose, action, htmx=htmx).status_code == (200 if htmx else 303)
        written.append(_what_was_written(engine, customer.id))
        client.cookies.clear()
    htmx_rows, plain_rows = written
    assert htmx_rows == plain_rows
    events, audits = htmx_rows
    assert [e[:3] for e in events] == [("sms_offers", True, "web"), ("email_newsletter", True, "web"),
                                       ("sms_offers", False, "web")]  # fmt: skip
    assert [a[0] for a in audits] == ["consent.granted", "consent.granted", "consent.withdrawn"]
    assert all(e[4] for e in events)  # the wording shown is kept with every event
    with transaction(engine) as session:
        webhooks = session.scalars(select(OutboxMessage.id).where(OutboxMessage.topic == "consent.changed")).all()
    assert len(webhooks) >= 6  # one event per change, each way (plus a delivery per subscribed endpoint)


def test_the_history_is_ordered_by_moment_then_by_recording(client, smtp, engine) -> None:
    """Several answers at one moment come newest-recorded first, across page boundaries too."""
    customer = signed_in(client, smtp, engine)
    moment = END - timedelta(days=1)
    rows = [
        {"customer_id": customer.id, "purpose": PURPOSES[n % 3], "granted": n % 2 == 0, "occurred_at": moment,
         "channel": "import", "actor": "import", "policy_version": "2026-01"}
        for n in range(55)
    ]  # fmt: skip
    from sqlalchemy import insert

    with transaction(engine) as session:
        session.execute(insert(ConsentEvent.__table__), rows)
        ids = list(session.scalars(select(ConsentEvent.id).where(ConsentEvent.customer_id == customer.id)))
    page = client.get("/me/consents", headers=EN).text
    link = older_link(page)
    assert link == f"/me/consents?after={sorted(ids, reverse=True)[49]}"
    assert len(entry_times(client.get(link, headers=HTMX).text)) == 5
