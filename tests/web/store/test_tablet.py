"""The store tablet: a store account helps a customer, who unlocks their data with the emailed code; Finish and
the idle expiry end the assisted session; a request filed on a customer's behalf; the store's log of the day."""

from __future__ import annotations

from sqlalchemy import select

from portal.db import transaction
from portal.models import AuditEvent, ConsentEvent, PrivacyRequest, ProfileChange
from tests.conftest import Clock, SMTPServer, code_in, csrf_from
from tests.factories import make_customer, make_store
from tests.staff_helpers import make_staff, sign_in_staff

EN = {"accept-language": "en"}


def store_account(engine, client, clock: Clock, *, store=None):  # type: ignore[no-untyped-def]
    store = store or make_store(engine, code="LYO-PD", city="Lyon")
    staff, password, secret = make_staff(engine, role="store", store_id=store.id, name="Léa Martin")
    sign_in_staff(client, staff.email, password, secret, clock)
    return staff, store


def open_customer(client, smtp: SMTPServer, email: str, count: int = 1):  # type: ignore[no-untyped-def]
    """The customer types their address, then the emailed code, on the tablet."""
    form = client.get("/staff/tablet/customer", headers=EN)
    assert 'autocomplete="off"' in form.text
    sent = client.post(
        "/staff/tablet/customer",
        data={"email": email, "csrf_token": csrf_from(form.text)},
        headers=EN,
    )
    assert sent.status_code == 200 and "Type your code" in sent.text
    message = smtp.wait_for(email, count=count)
    return client.post(
        "/staff/tablet/code",
        data={"code": code_in(message), "csrf_token": csrf_from(sent.text)},
        headers=EN,
        follow_redirects=False,
    )


def test_the_tablet_home_names_the_store_and_offers_help(engine, client, clock: Clock) -> None:
    _staff, store = store_account(engine, client, clock)
    home = client.get("/staff/tablet", headers=EN)
    assert home.status_code == 200
    assert store.name in home.text and "Help a customer" in home.text
    assert 'href="/lang/fr' in home.text and "Sign out" in home.text


def test_a_store_account_reaches_nothing_else(engine, client, clock: Clock) -> None:
    store_account(engine, client, clock)
    for path in ("/staff/requests", "/staff/reports", "/staff/audit", "/staff/accounts"):
        assert client.get(path).status_code == 403, path
    # No customer session: the customer pages are closed, and so is the archive.
    assert client.get("/me", follow_redirects=False).status_code == 303
    assert client.post("/me/download", data={"csrf_token": "x"}).status_code == 403


def test_an_agent_has_no_tablet(engine, client, clock: Clock) -> None:
    staff, password, secret = make_staff(engine, role="agent")
    sign_in_staff(client, staff.email, password, secret, clock)
    assert client.get("/staff/tablet").status_code == 403
    assert client.get("/staff/tablet/on-behalf").status_code == 403


def test_the_code_opens_an_assisted_session_whose_writes_are_in_store(
    engine, client, clock: Clock, smtp: SMTPServer
) -> None:
    staff, store = store_account(engine, client, clock)
    customer = make_customer(engine, email="camille@example.com")
    opened = open_customer(client, smtp, "camille@example.com")
    assert opened.status_code == 303 and opened.headers["location"] == "/me"
    overview = client.get("/me", headers=EN)
    assert overview.status_code == 200 and 'data-testid="tablet-finish"' in overview.text
    assert "tablet-countdown" in overview.text and overview.headers["cache-control"] == "no-store"

    consents = client.get("/me/consents", headers=EN)
    token = csrf_from(consents.text)
    client.post("/me/consents", data={"csrf_token": token, "action": "grant", "purpose": "sms_offers"})
    client.post("/me/consents", data={"csrf_token": token, "action": "withdraw", "purpose": "sms_offers"})
    form = client.get("/me/requests/new/objection", headers=EN)
    filed = client.post(
        "/me/requests/new/objection",
        data={"csrf_token": csrf_from(form.text), "submission_key": "k1", "confirm": "yes"},
        headers=EN,
        follow_redirects=False,
    )
    assert filed.status_code == 303, filed.text
    with transaction(engine) as session:
        events = session.scalars(select(ConsentEvent).where(ConsentEvent.customer_id == customer.id)).all()
        assert [(e.channel, e.actor) for e in events] == [("store", f"staff:{staff.id}")] * 2
        request = session.scalars(select(PrivacyRequest).where(PrivacyRequest.customer_id == customer.id)).one()
        assert (request.channel, request.store_id) == ("store", store.id)
        actions = [
            e.action for e in session.scalars(select(AuditEvent).where(AuditEvent.target == f"store:{store.id}"))
        ]
        assert "tablet.session_opened" in actions


def test_the_archive_is_emailed_never_downloaded_on_the_tablet(engine, client, clock: Clock, smtp: SMTPServer) -> None:
    store_account(engine, client, clock)
    make_customer(engine, email="camille@example.com")
    open_customer(client, smtp, "camille@example.com")
    page = client.get("/me/download", headers=EN)
    assert page.status_code == 200 and "Email me my archive" in page.text and 'action="/me/download"' not in page.text
    assert client.post("/me/download", data={"csrf_token": csrf_from(page.text)}).status_code == 403
    sent = client.post("/me/archive-email", data={"csrf_token": csrf_from(page.text)}, headers=EN)
    assert sent.status_code == 200 and "7 days" in sent.text
    link = smtp.wait_for("camille@example.com", count=2)
    assert "/me/download/link?token=" in link.text


def test_finish_ends_the_session_at_once_and_nothing_remains(engine, client, clock: Clock, smtp: SMTPServer) -> None:
    store_account(engine, client, clock)
    make_customer(engine, email="camille@example.com", first_name="Camille")
    open_customer(client, smtp, "camille@example.com")
    overview = client.get("/me", headers=EN)
    old_cookie = client.cookies.get("portal_session")
    finished = client.post("/me/finish", data={"csrf_token": csrf_from(overview.text)}, follow_redirects=False)
    assert finished.status_code == 303 and finished.headers["location"] == "/staff/tablet?finished=1"
    assert finished.headers["clear-site-data"] == '"cache"'
    home = client.get(finished.headers["location"], headers=EN)
    assert "The customer's session has ended" in home.text and "Camille" not in home.text
    # The back button: the old page asks the server again, which refuses the old session.
    back = client.get("/me", follow_redirects=False)
    assert back.status_code == 303 and back.headers["location"] == "/staff/tablet?ended=1"
    client.cookies.set("portal_session", old_cookie)
    assert client.get("/me", follow_redirects=False).status_code == 303


def test_three_minutes_without_a_touch_end_the_session(engine, client, clock: Clock, smtp: SMTPServer) -> None:
    store_account(engine, client, clock)
    make_customer(engine, email="camille@example.com")
    open_customer(client, smtp, "camille@example.com")
    assert client.get("/me").status_code == 200
    clock.advance(minutes=2, seconds=59)
    assert client.get("/me").status_code == 200  # a touch moves the idle clock on
    clock.advance(minutes=3)
    gone = client.get("/me/consents", follow_redirects=False)
    assert gone.status_code == 303 and gone.headers["location"] == "/staff/tablet?ended=1"
    assert "3 minutes without a touch" in client.get("/staff/tablet?ended=1", headers=EN).text


def test_the_continue_button_keeps_the_session(engine, client, clock: Clock, smtp: SMTPServer) -> None:
    store_account(engine, client, clock)
    make_customer(engine, email="camille@example.com")
    open_customer(client, smtp, "camille@example.com")
    page = client.get("/me")
    clock.advance(minutes=2, seconds=40)
    kept = client.post("/me/continue", data={"csrf_token": csrf_from(page.text)}, headers={"hx-request": "true"})
    assert kept.status_code == 204
    clock.advance(minutes=2)
    assert client.get("/me").status_code == 200


def test_unknown_and_known_addresses_get_the_same_answer(engine, client, clock: Clock, smtp: SMTPServer) -> None:
    store_account(engine, client, clock)
    make_customer(engine, email="camille@example.com")
    answers = []
    for email in ("camille@example.com", "nobody@example.com"):
        form = client.get("/staff/tablet/customer", headers=EN)
        sent = client.post(
            "/staff/tablet/customer", data={"email": email, "csrf_token": csrf_from(form.text)}, headers=EN
        )
        answers.append((sent.status_code, sent.text.replace(csrf_from(sent.text), "")))
    assert answers[0] == answers[1]
    bad = client.post(
        "/staff/tablet/customer", data={"email": "not an address", "csrf_token": csrf_from(form.text)}, headers=EN
    )
    assert bad.status_code == 400 and "name@example.com" in bad.text


def test_a_wrong_code_says_so_and_opens_nothing(engine, client, clock: Clock, smtp: SMTPServer) -> None:
    store_account(engine, client, clock)
    make_customer(engine, email="camille@example.com")
    form = client.get("/staff/tablet/customer", headers=EN)
    sent = client.post(
        "/staff/tablet/customer", data={"email": "camille@example.com", "csrf_token": csrf_from(form.text)}, headers=EN
    )
    wrong = client.post("/staff/tablet/code", data={"code": "000000", "csrf_token": csrf_from(sent.text)}, headers=EN)
    if wrong.status_code == 303:  # one chance in a million: the real code
        return
    assert wrong.status_code == 400 and "not the right one" in wrong.text
    assert client.get("/me", follow_redirects=False).status_code == 303


ON_BEHALF = {
    "type": "access",
    "document_kind": "identity_card",
    "identity_checked": "yes",
    "first_name": "Jeanne",
    "last_name": "Roux",
    "answer_by": "post",
    "answer_contact": "12 rue de la République, 69002 Lyon",
    "description": "",
}


def test_a_request_on_the_customers_behalf_records_the_identity_check(engine, client, clock: Clock) -> None:
    staff, store = store_account(engine, client, clock)
    form = client.get("/staff/tablet/on-behalf", headers=EN)
    assert form.status_code == 200 and "never note its number" in form.text
    filed = client.post("/staff/tablet/on-behalf", data={**ON_BEHALF, "csrf_token": csrf_from(form.text)}, headers=EN)
    assert filed.status_code == 201 and "identity checked in store" in filed.text
    assert "Jeanne" not in filed.text and "République" not in filed.text
    with transaction(engine) as session:
        request = session.scalars(select(PrivacyRequest)).one()
        assert (request.channel, request.store_id, request.customer_id) == ("store", store.id, None)
        details = request.details
        assert details["identity_checked_in_store"] is True and details["checked_by"] == f"staff:{staff.id}"
        assert details["document_kind"] == "identity_card" and details["answer_by"] == "post"
        assert not any("number" in key for key in details)


def test_an_incomplete_request_on_behalf_is_refused_with_messages(engine, client, clock: Clock) -> None:
    store_account(engine, client, clock)
    form = client.get("/staff/tablet/on-behalf", headers=EN)
    incomplete = {**ON_BEHALF, "identity_checked": "", "document_kind": "photo", "csrf_token": csrf_from(form.text)}
    refused = client.post("/staff/tablet/on-behalf", data=incomplete, headers=EN)
    assert refused.status_code == 400
    assert "Confirm that you checked the document in person." in refused.text
    assert "Choose the kind of document you checked." in refused.text
    with transaction(engine) as session:
        assert session.scalars(select(PrivacyRequest)).first() is None


def test_the_stores_log_shows_today_without_personal_data(engine, client, clock: Clock, smtp: SMTPServer) -> None:
    _staff, store = store_account(engine, client, clock)
    make_customer(engine, email="camille@example.com", first_name="Camille")
    open_customer(client, smtp, "camille@example.com")
    page = client.get("/me")
    client.post("/me/finish", data={"csrf_token": csrf_from(page.text)})
    form = client.get("/staff/tablet/on-behalf", headers=EN)
    client.post("/staff/tablet/on-behalf", data={**ON_BEHALF, "csrf_token": csrf_from(form.text)}, headers=EN)
    log = client.get("/staff/tablet/log", headers=EN)
    assert log.status_code == 200
    for label in ("assisted session opened", "assisted session finished", "identity checked in store"):
        assert label in log.text, label
    assert "Léa Martin" in log.text
    assert "Camille" not in log.text and "camille@" not in log.text and "Jeanne" not in log.text

    # Another store's account sees none of it.
    other = make_store(engine, code="PAR-01", city="Paris")
    staff, password, secret = make_staff(engine, role="store", store_id=other.id)
    client.post("/staff/sign-out", data={"csrf_token": csrf_from(log.text)})
    sign_in_staff(client, staff.email, password, secret, clock)
    assert 'data-testid="log-empty"' in client.get("/staff/tablet/log", headers=EN).text


def test_the_customers_history_names_the_store(engine, client, clock: Clock, smtp: SMTPServer) -> None:
    _staff, store = store_account(engine, client, clock)
    make_customer(engine, email="camille@example.com")
    open_customer(client, smtp, "camille@example.com")
    page = client.get("/me/consents", headers=EN)
    client.post("/me/consents", data={"csrf_token": csrf_from(page.text), "action": "grant", "purpose": "sms_offers"})
    history = client.get("/me/consents", headers=EN).text
    assert f"in a store, {store.name}" in history


def test_the_queue_flags_a_request_whose_identity_was_checked_in_store(engine, client, clock: Clock) -> None:
    store_account(engine, client, clock)
    form = client.get("/staff/tablet/on-behalf", headers=EN)
    filed = client.post("/staff/tablet/on-behalf", data={**ON_BEHALF, "csrf_token": csrf_from(form.text)}, headers=EN)
    client.post("/staff/sign-out", data={"csrf_token": csrf_from(filed.text)})
    agent, password, secret = make_staff(engine, role="agent")
    sign_in_staff(client, agent.email, password, secret, clock)
    queue = client.get("/staff/requests", headers=EN)
    assert 'data-testid="identity-checked-in-store"' in queue.text and "identity checked in store" in queue.text
    with transaction(engine) as session:
        reference = session.scalars(select(PrivacyRequest.reference)).one()
    detail = client.get(f"/staff/requests/{reference}", headers=EN)
    assert "Checked in person at the store on an identity document (Identity card)" in detail.text
    assert "12 rue de la République" in detail.text  # where the answer goes, for the agent


def test_signing_out_of_the_tablet_ends_an_open_customer_session(
    engine, client, clock: Clock, smtp: SMTPServer
) -> None:
    store_account(engine, client, clock)
    make_customer(engine, email="camille@example.com")
    open_customer(client, smtp, "camille@example.com")
    home = client.get("/staff/tablet", headers=EN)
    assert "still open on this tablet" in home.text
    client.post("/staff/sign-out", data={"csrf_token": csrf_from(home.text)})
    assert client.get("/me", follow_redirects=False).status_code == 303


def test_a_rectification_on_the_tablet_is_recorded_in_store(engine, client, clock: Clock, smtp: SMTPServer) -> None:
    from tests.web.profile.test_profile_pages import form_of

    staff, _store = store_account(engine, client, clock)
    customer = make_customer(engine, email="camille@example.com", phone="+33612345678")
    open_customer(client, smtp, "camille@example.com")
    page = client.get("/me/profile", headers=EN)
    changed = client.post(
        "/me/profile", data=form_of(page.text, city="Villeurbanne"), headers=EN, follow_redirects=False
    )
    assert changed.status_code == 303
    with transaction(engine) as session:
        change = session.scalars(select(ProfileChange).where(ProfileChange.customer_id == customer.id)).one()
        assert (change.field, change.channel, change.actor) == ("city", "store", f"staff:{staff.id}")


def test_finish_is_only_for_tablet_sessions(engine, client, smtp: SMTPServer) -> None:
    from tests.web.helpers import sign_in_by_code

    make_customer(engine, email="camille@example.com")
    sign_in_by_code(client, smtp, "camille@example.com")
    page = client.get("/me")
    assert 'data-testid="tablet-finish"' not in page.text
    kept = client.post("/me/finish", data={"csrf_token": csrf_from(page.text)}, follow_redirects=False)
    assert kept.headers["location"] == "/me" and client.get("/me").status_code == 200
