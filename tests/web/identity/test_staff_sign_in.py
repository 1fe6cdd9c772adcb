"""Staff sign-in through the real pages: enrolment, wrong password or code in both languages, lockout, idle
timeout, sign-out, CSRF, the separate cookie, role checks, and the DPO's staff accounts pages."""

from __future__ import annotations

import dataclasses
import re
from urllib.parse import parse_qs, urlsplit

import pytest
from markupsafe import escape
from sqlalchemy import select
from starlette.testclient import TestClient

from portal.app import create_app
from portal.db import transaction
from portal.i18n import gettext, using_locale
from portal.identity import passwords
from portal.models import AuditEvent, StaffUser
from tests.conftest import Clock, csrf_from
from tests.factories import make_store
from tests.staff_helpers import code_at, make_staff, sign_in_staff, submit_code, submit_password
from tests.timing import interleaved_timings, mann_whitney_p

CREDENTIALS = "This email address and password do not match an active staff account."
LOCKED = "Too many failed attempts: this account is locked for 15 minutes."


def _in(locale: str, message: str) -> str:
    """The message as the page shows it in `locale` (escaped like Jinja does)."""
    with using_locale(locale):
        return str(escape(gettext(message)))


def _sign_in_as(engine, client, clock, role: str = "agent", **fields):  # type: ignore[no-untyped-def]
    staff, password, secret = make_staff(engine, role=role, **fields)
    sign_in_staff(client, staff.email, password, secret, clock)
    return staff


# --- The flow ----------------------------------------------------------------------------------------------------


def test_first_sign_in_enrols_the_authenticator_then_opens_the_back_office(engine, client, clock: Clock) -> None:
    staff, password, _ = make_staff(engine, role="agent", name="Inès Moreau", enrolled=False)
    response = submit_password(client, staff.email, password)
    assert response.status_code == 303
    assert response.headers["location"].startswith("/staff/sign-in/code")

    page = client.get(response.headers["location"])
    assert page.status_code == 200
    secret = re.search(r'<p class="enrol-secret"><code>([A-Z2-7 ]+)</code></p>', page.text).group(1)
    assert re.fullmatch(r"([A-Z2-7]{4} )+[A-Z2-7]{1,4}", secret)
    secret = secret.replace(" ", "")
    assert 'src="data:image/svg+xml' in page.text  # the QR code, without inline script or style
    assert "<script>" not in page.text and "style=" not in page.text
    with transaction(engine) as session:
        assert session.get(StaffUser, staff.id).totp_secret == secret

    done = submit_code(client, code_at(secret, clock()))
    assert done.status_code == 303 and done.headers["location"] == "/staff"
    assert "portal_staff" in done.cookies or "portal_staff" in client.cookies
    home = client.get("/staff")
    assert home.status_code == 200
    assert "Inès Moreau" in home.text and 'href="/staff/requests"' in home.text
    assert 'href="/staff/accounts"' not in home.text  # agents do not manage staff
    with transaction(engine) as session:
        assert session.get(StaffUser, staff.id).totp_confirmed_at == clock()

    # The next sign-in asks for a code, not for enrolment.
    client.post("/staff/sign-out", data={"csrf_token": csrf_from(home.text)})
    clock.advance(seconds=30)
    submit_password(client, staff.email, password)
    code_page = client.get("/staff/sign-in/code")
    assert "enrol-secret" not in code_page.text and secret not in code_page.text


def test_a_dpo_sees_the_whole_navigation(engine, client, clock: Clock) -> None:
    _sign_in_as(engine, client, clock, role="dpo", name="Julien Lefèvre")
    home = client.get("/staff", headers={"accept-language": "en"})
    for link in ("/staff/requests", "/staff/accounts", "/staff/reports", "/staff/audit", "/staff/tablet"):
        assert f'href="{link}"' in home.text
    assert "Julien Lefèvre" in home.text and "Data protection officer" in home.text


@pytest.mark.parametrize("locale", ["fr", "en"])
def test_wrong_password_and_unknown_email_get_the_same_message(engine, client, locale: str) -> None:
    staff, _, _ = make_staff(engine)
    wrong = submit_password(client, staff.email, "not the password", **{"accept-language": locale})
    unknown = submit_password(client, "nobody@staff.example.com", "not the password", **{"accept-language": locale})
    for response in (wrong, unknown):
        assert response.status_code == 400
        assert f'<html lang="{locale}">' in response.text
        assert _in(locale, CREDENTIALS) in response.text
    assert "portal_staff" not in client.cookies


@pytest.mark.parametrize("locale", ["fr", "en"])
def test_a_wrong_code_says_how_many_tries_are_left(engine, client, clock: Clock, locale: str) -> None:
    staff, password, secret = make_staff(engine)
    submit_password(client, staff.email, password)
    wrong = "000000" if code_at(secret, clock()) != "000000" else "111111"
    response = submit_code(client, wrong, **{"accept-language": locale})
    assert response.status_code == 400
    assert f'<html lang="{locale}">' in response.text
    with using_locale(locale):
        from portal.i18n import ngettext

        expected = ngettext(
            "This code is not valid (codes change every 30 seconds and each works once). %(num)s attempt left "
            "before the account is locked.",
            "This code is not valid (codes change every 30 seconds and each works once). %(num)s attempts left "
            "before the account is locked.",
            4,
        )
    assert str(escape(expected)) in response.text
    # The right code still works on the same page.
    assert submit_code(client, code_at(secret, clock())).headers["location"] == "/staff"


@pytest.mark.parametrize("locale", ["fr", "en"])
def test_five_failures_lock_the_account(engine, client, clock: Clock, locale: str) -> None:
    staff, password, secret = make_staff(engine)
    headers = {"accept-language": locale}
    for _ in range(4):
        assert submit_password(client, staff.email, "not the password", **headers).status_code == 400
    locked = submit_password(client, staff.email, "not the password", **headers)
    assert locked.status_code == 423
    assert _in(locale, LOCKED) in locked.text
    # The right password does not help while locked; 15 minutes later it does.
    assert submit_password(client, staff.email, password, **headers).status_code == 423
    clock.advance(minutes=15)
    sign_in_staff(client, staff.email, password, secret, clock)
    with transaction(engine) as session:
        actions = list(session.scalars(select(AuditEvent.action).where(AuditEvent.target == f"staff:{staff.id}")))
    assert actions.count("staff.sign_in_failed") == 5 and "staff.locked" in actions and "staff.signed_in" in actions


def test_the_code_page_needs_the_password_first(engine, client) -> None:
    response = client.get("/staff/sign-in/code", follow_redirects=False)
    assert response.status_code == 303 and response.headers["location"].startswith("/staff/sign-in")
    page = client.get("/staff/sign-in")
    refused = client.post(
        "/staff/sign-in/code",
        data={"code": "123456", "csrf_token": csrf_from(page.text)},
        headers={"accept-language": "en"},
    )
    assert refused.status_code == 400
    assert "Enter your email address and password again." in refused.text


# --- Sessions ----------------------------------------------------------------------------------------------------


def test_the_session_ends_after_30_idle_minutes(engine, client, clock: Clock) -> None:
    _sign_in_as(engine, client, clock, role="dpo")
    clock.advance(minutes=29)
    assert client.get("/staff/accounts").status_code == 200
    clock.advance(minutes=29)
    assert client.get("/staff/accounts").status_code == 200
    clock.advance(minutes=30, seconds=1)
    response = client.get("/staff/accounts?x=1", follow_redirects=False)
    assert response.status_code == 303
    location = urlsplit(response.headers["location"])
    assert location.path == "/staff/sign-in"
    assert parse_qs(location.query) == {"next": ["/staff/accounts?x=1"], "ended": ["1"]}
    page = client.get(response.headers["location"], headers={"accept-language": "en"})
    assert "Your session has ended" in page.text


def test_sign_in_returns_to_the_page_asked_for_and_only_to_staff_pages(engine, client, clock: Clock) -> None:
    staff, password, secret = make_staff(engine, role="dpo")
    response = client.get("/staff/accounts", follow_redirects=False)
    assert response.headers["location"] == "/staff/sign-in?next=%2Fstaff%2Faccounts"
    page = client.get(response.headers["location"])
    assert 'name="next" value="/staff/accounts"' in page.text
    sent = client.post(
        "/staff/sign-in",
        data={
            "email": staff.email,
            "password": password,
            "next": "/staff/accounts",
            "csrf_token": csrf_from(page.text),
        },
        follow_redirects=False,
    )
    code_page = client.get(sent.headers["location"])
    done = client.post(
        "/staff/sign-in/code",
        data={"code": code_at(secret, clock()), "next": "/staff/accounts", "csrf_token": csrf_from(code_page.text)},
        follow_redirects=False,
    )
    assert done.headers["location"] == "/staff/accounts"
    for evil in ("//evil.example/staff", "https://evil.example/", "/me", "/staff\\..\\x"):
        assert client.get(f"/staff/sign-in?next={evil}", follow_redirects=False).headers["location"] == "/staff"


def test_htmx_requests_are_sent_to_sign_in_with_hx_redirect(client) -> None:
    response = client.get("/staff/accounts", headers={"hx-request": "true"}, follow_redirects=False)
    assert response.status_code == 204
    assert response.headers["hx-redirect"].startswith("/staff/sign-in")


def test_sign_out_ends_the_session_on_the_server(engine, client, clock: Clock) -> None:
    _sign_in_as(engine, client, clock)
    home = client.get("/staff")
    stolen = client.cookies["portal_staff"]
    response = client.post("/staff/sign-out", data={"csrf_token": csrf_from(home.text)}, follow_redirects=False)
    assert response.headers["location"] == "/staff/sign-in?signed_out=1"
    assert "portal_staff" not in client.cookies
    replay = TestClient(client.app, cookies={"portal_staff": stolen})  # a copied cookie is worthless now
    assert replay.get("/staff", follow_redirects=False).status_code == 303


def test_the_staff_session_is_rotated_at_sign_in(engine, client, clock: Clock) -> None:
    staff, password, secret = make_staff(engine)
    submit_password(client, staff.email, password)
    pending = client.cookies["portal_staff"]
    submit_code(client, code_at(secret, clock()))
    assert client.cookies["portal_staff"] != pending
    replay = TestClient(client.app, cookies={"portal_staff": pending})
    assert replay.get("/staff", follow_redirects=False).status_code == 303


def test_staff_and_customer_sessions_never_mix(engine, client, app, clock: Clock) -> None:
    _sign_in_as(engine, client, clock, role="dpo")
    assert "portal_session" not in client.cookies
    assert client.get("/me", follow_redirects=False).headers["location"] == "/signin"
    # A customer cookie opens no staff page.
    other = TestClient(app, cookies={"portal_session": client.cookies["portal_staff"]})
    assert other.get("/staff", follow_redirects=False).status_code == 303


# --- CSRF --------------------------------------------------------------------------------------------------------


def test_staff_forms_need_their_csrf_token(engine, client, app, clock: Clock) -> None:
    staff, password, _ = make_staff(engine, role="dpo")
    assert client.post("/staff/sign-in", data={"email": staff.email, "password": password}).status_code == 403
    _sign_in_as(engine, client, clock, role="dpo")
    form = {"email": "x@staff.example.com", "name": "X", "role": "agent", "store": ""}
    assert client.post("/staff/accounts", data=form).status_code == 403
    # A token from another browser's page does not work either.
    foreign = csrf_from(TestClient(app).get("/staff/sign-in").text)
    assert client.post("/staff/accounts", data={**form, "csrf_token": foreign}).status_code == 403
    token = csrf_from(client.get("/staff/accounts").text)
    assert client.post("/staff/accounts", data={**form, "csrf_token": token}).status_code == 201


# --- Roles -------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("path", ["/staff", "/staff/accounts", "/staff/tablet", "/staff/requests", "/staff/reports"])
def test_signed_out_visitors_are_sent_to_sign_in(client, path: str) -> None:
    response = client.get(path, follow_redirects=False)
    assert response.status_code == 303
    assert response.headers["location"].startswith("/staff/sign-in")


def test_a_store_account_only_reaches_tablet_mode(engine, client, clock: Clock) -> None:
    store = make_store(engine, code="LYO-07")
    _sign_in_as(engine, client, clock, role="store", store_id=store.id)
    for path in ("/staff/requests", "/staff/accounts", "/staff/reports", "/staff/audit"):
        response = client.get(path, headers={"accept-language": "en"})
        assert response.status_code == 403, path
        assert "Your role does not give access to this page." in response.text
    tablet = client.get("/staff/tablet", headers={"accept-language": "en"})
    assert tablet.status_code == 200 and "Help a customer" in tablet.text
    home = client.get("/staff")  # a store account's home is the tablet
    assert home.url.path == "/staff/tablet" and 'href="/staff/requests"' not in home.text


def test_an_agent_cannot_manage_staff(engine, client, clock: Clock) -> None:
    victim, _, _ = make_staff(engine)
    _sign_in_as(engine, client, clock, role="agent")
    assert client.get("/staff/accounts").status_code == 403
    assert client.get("/staff/tablet").status_code == 403
    token = csrf_from(client.get("/staff").text)
    form = {"email": "x@staff.example.com", "name": "X", "role": "dpo", "store": "", "csrf_token": token}
    assert client.post("/staff/accounts", data=form).status_code == 403
    for action in ("disable", "enable", "reset-totp"):
        assert client.post(f"/staff/accounts/{victim.id}/{action}", data={"csrf_token": token}).status_code == 403
    with transaction(engine) as session:
        assert session.get(StaffUser, victim.id).active
        assert session.scalars(select(StaffUser).where(StaffUser.email == "x@staff.example.com")).first() is None


# --- Staff accounts (DPO) ----------------------------------------------------------------------------------------


def test_the_dpo_adds_an_account_that_enrols_at_first_sign_in(engine, app, client, clock: Clock) -> None:
    store = make_store(engine, code="PAR-05")
    _sign_in_as(engine, client, clock, role="dpo")
    token = csrf_from(client.get("/staff/accounts").text)
    form = {"email": "sarah@staff.example.com", "name": "Sarah Martin", "role": "store", "store": "PAR-05"}
    created = client.post("/staff/accounts", data={**form, "csrf_token": token}, headers={"accept-language": "en"})
    assert created.status_code == 201
    one_time = re.search(r'<p class="one-time-password"><code>([^<]+)</code></p>', created.text).group(1)
    assert "Sarah Martin" in created.text and "PAR-05" in created.text
    assert "Active — authenticator not set up yet" in created.text
    assert "At their first sign-in they must replace it with a password of their own." in created.text
    with transaction(engine) as session:
        row = session.scalars(select(StaffUser).where(StaffUser.email == "sarah@staff.example.com")).one()
        assert row.role == "store" and row.store_id == store.id and one_time not in row.password_hash
    # Shown once: the list does not show it again.
    assert one_time not in client.get("/staff/accounts").text

    sarah = TestClient(app)
    assert submit_password(sarah, "sarah@staff.example.com", one_time).status_code == 303
    enrol = sarah.get("/staff/sign-in/code")
    assert "enrol-secret" in enrol.text
    # After enrolling, the one-time password is replaced before anything else.
    secret = re.search(r'<p class="enrol-secret"><code>([A-Z2-7 ]+)</code></p>', enrol.text).group(1).replace(" ", "")
    assert submit_code(sarah, code_at(secret, clock())).headers["location"] == "/staff/password"
    assert sarah.get("/staff/tablet", follow_redirects=False).headers["location"] == (
        "/staff/password?next=%2Fstaff%2Ftablet"
    )


@pytest.mark.parametrize("locale", ["fr", "en"])
def test_bad_account_details_get_a_message(engine, client, clock: Clock, locale: str) -> None:
    make_store(engine, code="PAR-06")
    _sign_in_as(engine, client, clock, role="dpo")
    token = csrf_from(client.get("/staff/accounts").text)
    cases = [
        ({"email": "nope", "name": "X", "role": "agent"}, "Enter a valid email address."),
        ({"email": "a@staff.example.com", "name": "", "role": "agent"}, "Enter a name of at most 100 characters."),
        ({"email": "a@staff.example.com", "name": "X", "role": "root"}, "Choose a role: agent, store or DPO."),
        ({"email": "a@staff.example.com", "name": "X", "role": "store"}, "A store account needs its store."),
        ({"email": "a@staff.example.com", "name": "X", "role": "agent", "store": "PAR-06"}, "Only store accounts"),
    ]
    for form, message in cases:
        response = client.post(
            "/staff/accounts", data={"store": "", **form, "csrf_token": token}, headers={"accept-language": locale}
        )
        assert response.status_code == 400
        with using_locale(locale):
            expected = gettext(message) if message.endswith(".") else message
        if locale == "en" or expected != message:
            assert str(escape(expected)) in response.text
        assert 'aria-invalid="true"' in response.text


def test_the_dpo_disables_enables_and_resets_an_account(engine, app, client, clock: Clock) -> None:
    agent, password, secret = make_staff(engine, role="agent")
    agent_browser = TestClient(app)
    sign_in_staff(agent_browser, agent.email, password, secret, clock)
    _sign_in_as(engine, client, clock, role="dpo")
    token = csrf_from(client.get("/staff/accounts").text)

    disabled = client.post(f"/staff/accounts/{agent.id}/disable", data={"csrf_token": token})
    assert disabled.status_code == 200 and str(disabled.url).endswith("/staff/accounts?done=disabled")
    # The agent's open session ended at once, and signing in is refused.
    assert agent_browser.get("/staff", follow_redirects=False).status_code == 303
    assert submit_password(agent_browser, agent.email, password).status_code == 400

    client.post(f"/staff/accounts/{agent.id}/enable", data={"csrf_token": token})
    client.post(f"/staff/accounts/{agent.id}/reset-totp", data={"csrf_token": token})
    assert submit_password(agent_browser, agent.email, password).status_code == 303
    assert "enrol-secret" in agent_browser.get("/staff/sign-in/code").text

    assert client.post("/staff/accounts/999999/disable", data={"csrf_token": token}).status_code == 409
    assert client.post("/staff/accounts/abc/disable", data={"csrf_token": token}).status_code == 404
    with transaction(engine) as session:
        actions = list(session.scalars(select(AuditEvent.action).where(AuditEvent.target == f"staff:{agent.id}")))
    assert {"staff.disabled", "staff.enabled", "staff.totp_reset"} <= set(actions)


def test_the_dpo_cannot_disable_themselves(engine, client, clock: Clock) -> None:
    dpo = _sign_in_as(engine, client, clock, role="dpo")
    make_staff(engine, role="dpo")
    token = csrf_from(client.get("/staff/accounts").text)
    response = client.post(f"/staff/accounts/{dpo.id}/disable", data={"csrf_token": token})
    assert response.status_code == 409
    assert client.get("/staff").status_code == 200


# --- Own password ------------------------------------------------------------------------------------------------

NEW_PASSWORD = "a password of my very own"  # noqa: S105


def _change_password(client, current: str, new: str, confirmation: str | None = None, **headers: str):  # type: ignore[no-untyped-def]
    page = client.get("/staff/password", headers=headers)
    assert page.status_code == 200
    data = {
        "current_password": current,
        "new_password": new,
        "confirmation": new if confirmation is None else confirmation,
        "csrf_token": csrf_from(page.text),
    }
    return client.post("/staff/password", data=data, headers=headers, follow_redirects=False)


def test_a_one_time_password_must_be_replaced_before_anything_else(engine, app, client, clock: Clock) -> None:
    staff, password, secret = make_staff(engine, role="agent", password_must_change=True)
    # Asked for the queue while signed out: sign-in, code, then the password page, which remembers the queue.
    response = client.get("/staff/requests", follow_redirects=False)
    assert response.headers["location"] == "/staff/sign-in?next=%2Fstaff%2Frequests"
    page = client.get(response.headers["location"])
    client.post(
        "/staff/sign-in",
        data={
            "email": staff.email,
            "password": password,
            "next": "/staff/requests",
            "csrf_token": csrf_from(page.text),
        },
    )
    code_page = client.get("/staff/sign-in/code?next=%2Fstaff%2Frequests")
    done = client.post(
        "/staff/sign-in/code",
        data={"code": code_at(secret, clock()), "next": "/staff/requests", "csrf_token": csrf_from(code_page.text)},
        follow_redirects=False,
    )
    assert done.status_code == 303
    assert done.headers["location"] == "/staff/password?next=%2Fstaff%2Frequests"

    # Every other staff page sends back there; htmx gets HX-Redirect.
    for path, location in (
        ("/staff/requests", "/staff/password?next=%2Fstaff%2Frequests"),
        ("/staff", "/staff/password"),
        ("/staff/tablet", "/staff/password?next=%2Fstaff%2Ftablet"),
    ):
        response = client.get(path, follow_redirects=False)
        assert (response.status_code, response.headers["location"]) == (303, location), path
    assert client.get("/staff/requests", headers={"hx-request": "true"}).headers["hx-redirect"] == (
        "/staff/password?next=%2Fstaff%2Frequests"
    )
    page = client.get("/staff/password?next=%2Fstaff%2Frequests", headers={"accept-language": "en"})
    assert page.status_code == 200
    assert "Choose your own password" in page.text and "You signed in with a one-time password." in page.text
    assert 'href="/staff/requests"' not in page.text  # no navigation until then, but sign-out works
    assert 'action="/staff/sign-out"' in page.text
    assert 'name="next" value="/staff/requests"' in page.text

    cookie = client.cookies["portal_staff"]
    changed = client.post(
        "/staff/password",
        data={
            "current_password": password,
            "new_password": NEW_PASSWORD,
            "confirmation": NEW_PASSWORD,
            "next": "/staff/requests",
            "csrf_token": csrf_from(page.text),
        },
        follow_redirects=False,
    )
    assert changed.status_code == 303
    assert changed.headers["location"] == "/staff/password?changed=1&next=%2Fstaff%2Frequests"
    assert client.cookies["portal_staff"] != cookie  # rotated
    assert TestClient(app, cookies={"portal_staff": cookie}).get("/staff", follow_redirects=False).status_code == 303
    confirmation = client.get(changed.headers["location"], headers={"accept-language": "en"})
    assert "Your password is changed." in confirmation.text and 'href="/staff/requests"' in confirmation.text
    assert client.get("/staff/requests").status_code == 200
    assert client.get("/staff").status_code == 200

    with transaction(engine) as session:
        row = session.get(StaffUser, staff.id)
        assert not row.password_must_change
        assert passwords.check_password(row.password_hash, NEW_PASSWORD)[0]
        event = session.scalars(select(AuditEvent).where(AuditEvent.action == "staff.password_changed")).one()
        assert event.actor == event.target == f"staff:{staff.id}" and event.detail == {"forced": True}
    # The one-time password is gone for good.
    other = TestClient(app)
    assert submit_password(other, staff.email, password).status_code == 400
    clock.advance(seconds=30)
    assert sign_in_staff(other, staff.email, NEW_PASSWORD, secret, clock).headers["location"] == "/staff"


@pytest.mark.parametrize("locale", ["fr", "en"])
def test_each_refused_new_password_gets_its_message(engine, client, clock: Clock, locale: str) -> None:
    staff, password, _ = _forced(engine, client, clock, email="marguerite.dupont@staff.example.com")
    cases = [
        ("", NEW_PASSWORD, None, "current", "Enter your current password."),
        ("not my password", NEW_PASSWORD, None, "current", "Your current password is not right."),
        (password, "too short", None, "new", "The password needs at least 12 characters."),
        (password, "x" * 257, None, "new", "The password is too long."),
        (password, password, None, "new", "The new password must be different from your current one."),
        (
            password,
            "Marguerite.Dupont-2026",
            None,
            "new",
            "The new password must not contain your email address (the part before the @).",
        ),
        (
            password,
            NEW_PASSWORD,
            NEW_PASSWORD + "!",
            "confirmation",
            "The confirmation does not match the new password.",
        ),
    ]
    for current, new, confirmation, field, message in cases:
        response = _change_password(client, current, new, confirmation, **{"accept-language": locale})
        assert response.status_code == 400, message
        assert f'<html lang="{locale}">' in response.text
        assert _in(locale, message) in response.text, message
        assert re.search(rf'id="password-{field}"[^>]*aria-invalid="true"', response.text, re.S), field
        assert NEW_PASSWORD not in response.text  # passwords are never sent back
    with transaction(engine) as session:
        row = session.get(StaffUser, staff.id)
        assert row.password_must_change and passwords.check_password(row.password_hash, password)[0]
        assert row.failed_attempts == 1  # the wrong current password counts towards the lockout
    assert client.get("/staff", follow_redirects=False).headers["location"] == "/staff/password"


def _forced(engine, client, clock, **fields):  # type: ignore[no-untyped-def]
    staff, password, secret = make_staff(engine, password_must_change=True, **fields)
    assert sign_in_staff(client, staff.email, password, secret, clock).headers["location"] == "/staff/password"
    return staff, password, secret


def test_anyone_signed_in_can_change_their_password(engine, app, client, clock: Clock) -> None:
    staff, password, secret = make_staff(engine, role="dpo")
    elsewhere = TestClient(app)
    sign_in_staff(elsewhere, staff.email, password, secret, clock)
    sign_in_staff(client, staff.email, password, secret, clock)
    home = client.get("/staff", headers={"accept-language": "en"})
    assert 'href="/staff/password"' in home.text and "My password" in home.text
    page = client.get("/staff/password", headers={"accept-language": "en"})
    assert "Change your password" in page.text and "one-time password" not in page.text
    assert 'href="/staff/accounts"' in page.text  # the navigation stays

    changed = _change_password(client, password, NEW_PASSWORD)
    assert changed.headers["location"] == "/staff/password?changed=1"
    assert (
        "Your password is changed." in client.get(changed.headers["location"], headers={"accept-language": "en"}).text
    )
    assert client.get("/staff/accounts").status_code == 200
    # The other browser's session has ended.
    assert elsewhere.get("/staff", follow_redirects=False).headers["location"].startswith("/staff/sign-in")
    with transaction(engine) as session:
        event = session.scalars(select(AuditEvent).where(AuditEvent.action == "staff.password_changed")).one()
        assert event.detail == {"forced": False}
        assert passwords.check_password(session.get(StaffUser, staff.id).password_hash, NEW_PASSWORD)[0]


def test_the_password_page_needs_a_signed_in_session_and_its_csrf_token(engine, client, clock: Clock) -> None:
    response = client.get("/staff/password", follow_redirects=False)
    assert response.headers["location"] == "/staff/sign-in?next=%2Fstaff%2Fpassword"
    staff, password, _ = _forced(engine, client, clock)
    refused = client.post(
        "/staff/password",
        data={"current_password": password, "new_password": NEW_PASSWORD, "confirmation": NEW_PASSWORD},
    )
    assert refused.status_code == 403
    with transaction(engine) as session:
        assert session.get(StaffUser, staff.id).password_must_change


def test_five_wrong_current_passwords_lock_the_account_and_end_the_session(engine, client, clock: Clock) -> None:
    staff, password, secret = _forced(engine, client, clock)
    for _ in range(4):
        assert _change_password(client, "not my password", NEW_PASSWORD).status_code == 400
    locked = _change_password(client, "not my password", NEW_PASSWORD, **{"accept-language": "en"})
    assert locked.status_code == 423 and _in("en", LOCKED) in locked.text
    assert "portal_staff" not in client.cookies
    assert client.get("/staff", follow_redirects=False).headers["location"].startswith("/staff/sign-in")
    assert submit_password(client, staff.email, password).status_code == 423


def test_portal_staff_add_sets_a_one_time_password_to_replace(
    engine, database_url, client, clock, monkeypatch, capsys
) -> None:  # type: ignore[no-untyped-def]
    import io

    from portal.cli import main

    monkeypatch.setenv("PORTAL_DATABASE_URL", database_url)
    assert main(["staff", "add", "--email", "ana@staff.example.com", "--name", "Ana Lima", "--role", "agent"]) == 0
    printed = capsys.readouterr().out
    one_time = re.search(r"One-time password, shown only now: (\S+)", printed).group(1)
    assert "must be replaced by a password of their own" in printed
    monkeypatch.setattr("sys.stdin", io.StringIO("a password from stdin\n"))
    assert (
        main(
            ["staff", "add", "--email", "sam@staff.example.com", "--name", "Sam", "--role", "agent", "--password-stdin"]
        )
        == 0
    )
    with transaction(engine) as session:
        flags = dict(session.execute(select(StaffUser.email, StaffUser.password_must_change)).all())
    assert flags == {"ana@staff.example.com": True, "sam@staff.example.com": False}

    # Ana's first sign-in: password, enrolment, then her own password before anything else.
    assert submit_password(client, "ana@staff.example.com", one_time).status_code == 303
    page = client.get("/staff/sign-in/code")
    secret = re.search(r'<p class="enrol-secret"><code>([A-Z2-7 ]+)</code></p>', page.text).group(1).replace(" ", "")
    assert submit_code(client, code_at(secret, clock())).headers["location"] == "/staff/password"
    assert client.get("/staff/requests", follow_redirects=False).headers["location"].startswith("/staff/password")
    assert _change_password(client, one_time, NEW_PASSWORD).status_code == 303
    assert client.get("/staff/requests").status_code == 200


def _without_tokens(html: str) -> str:
    return re.sub(r'name="csrf_token" value="[^"]*"', "", html)


def test_a_locked_account_and_a_locked_unknown_address_answer_alike_in_words_and_time(engine, settings, clock) -> None:
    """Enumeration: after five failures, a real account and an address without one give the same bytes, and their
    answer times are not told apart by a rank test over many samples (before: 9 ms against 510 ms)."""
    # The per-IP limit would answer every sample alike (429) and hide the difference this test looks for.
    app = create_app(dataclasses.replace(settings, signin_limit_per_ip=10_000), clock=clock)
    with TestClient(app, base_url="http://testserver") as client:
        _compare_locked_answers(engine, client, clock)


def _compare_locked_answers(engine, client, clock) -> None:  # type: ignore[no-untyped-def]
    staff, _, _ = make_staff(engine)
    unknown = "nobody@staff.example.com"
    for address in (staff.email, unknown):
        for _ in range(5):
            submit_password(client, address, "not the password")
    real = submit_password(client, staff.email, "not the password")
    ghost = submit_password(client, unknown, "not the password")
    assert real.status_code == ghost.status_code == 423
    assert _without_tokens(real.text) == _without_tokens(ghost.text)
    clock.advance(minutes=14)
    page = client.get("/staff/sign-in")
    token = csrf_from(page.text)

    def attempt(address: str):  # type: ignore[no-untyped-def]
        def post() -> None:
            answer = client.post("/staff/sign-in", data={"email": address, "password": "guess", "csrf_token": token})
            assert answer.status_code == 423

        return post

    real_times, ghost_times = interleaved_timings(attempt(staff.email), attempt(unknown), samples=20)
    assert mann_whitney_p(real_times, ghost_times) > 1e-4, (sorted(real_times), sorted(ghost_times))
    clock.advance(minutes=2)  # both locks end together: 15 minutes after each one's fifth failure
    assert submit_password(client, staff.email, "not the password").status_code == 400
    assert submit_password(client, unknown, "not the password").status_code == 400
