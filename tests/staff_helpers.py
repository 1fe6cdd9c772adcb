"""Staff accounts for tests, and signing in through the real staff sign-in form (password, then a TOTP code)."""

from __future__ import annotations

import functools
import itertools
import time
from datetime import UTC, datetime, timedelta

import pyotp
from sqlalchemy import Engine
from starlette.testclient import TestClient

from portal.db import transaction
from portal.identity import passwords, totp
from portal.models import StaffUser, email_key
from tests.conftest import Clock, csrf_from

_sequence = itertools.count(1)


@functools.cache
def _hashed(password: str) -> str:
    # argon2 is slow on purpose: tests reuse one hash per password.
    return passwords.hash_password(password)


DEFAULT_PASSWORD = "correct horse battery staple"  # noqa: S105


def make_staff(
    engine: Engine,
    *,
    role: str = "agent",
    email: str | None = None,
    password: str = DEFAULT_PASSWORD,
    store_id: int | None = None,
    name: str | None = None,
    enrolled: bool = True,
    password_must_change: bool = False,
) -> tuple[StaffUser, str, str]:
    """A ready-to-use active staff account with an enrolled authenticator: (row, password, TOTP secret).

    With `enrolled=False` the account has no authenticator yet (its first sign-in enrols one) and the secret is "".
    With `password_must_change=True` its password is a one-time one, to be replaced right after signing in.
    """
    n = next(_sequence)
    email = email or f"{role}{n}@staff.example.com"
    secret = totp.new_secret() if enrolled else ""
    with transaction(engine) as session:
        staff = StaffUser(
            email=email,
            email_key=email_key(email),
            name=name or f"{role.capitalize()} {n}",
            role=role,
            store_id=store_id,
            password_hash=_hashed(password),
            totp_secret=secret or None,
            totp_confirmed_at=datetime(2026, 1, 5, 9, tzinfo=UTC) if enrolled else None,
            password_must_change=password_must_change,
            created_at=datetime(2026, 1, 5, 9, tzinfo=UTC),
        )
        session.add(staff)
        session.flush()
        session.refresh(staff)
        return staff, password, secret


def code_at(secret: str, moment: datetime) -> str:
    return pyotp.TOTP(secret, interval=totp.STEP_SECONDS).at(moment)


_USED_STEPS: dict[str, int] = {}


def fresh_code(secret: str) -> str:
    """A code of a time step this process has not used yet for `secret`: the portal takes each step once (a code
    replayed in the same 30 s is refused), so a second sign-in of the same account needs the next step's code."""
    while True:
        current = totp.step_at(datetime.now(UTC))
        step = max(current, _USED_STEPS.get(secret, current - 1) + 1)
        if step <= current + totp.DRIFT_STEPS:  # within the drift the portal accepts
            _USED_STEPS[secret] = step
            return pyotp.TOTP(secret, interval=totp.STEP_SECONDS).generate_otp(step)
        time.sleep(0.5)


def submit_password(client: TestClient, email: str, password: str, **headers: str):  # type: ignore[no-untyped-def]
    page = client.get("/staff/sign-in", headers=headers)
    return client.post(
        "/staff/sign-in",
        data={"email": email, "password": password, "csrf_token": csrf_from(page.text)},
        headers=headers,
        follow_redirects=False,
    )


def submit_code(client: TestClient, code: str, **headers: str):  # type: ignore[no-untyped-def]
    page = client.get("/staff/sign-in/code", headers=headers)
    return client.post(
        "/staff/sign-in/code",
        data={"code": code, "csrf_token": csrf_from(page.text)},
        headers=headers,
        follow_redirects=False,
    )


def sign_in_staff(client: TestClient, email: str, password: str, totp_secret: str, clock: Clock):  # type: ignore[no-untyped-def]
    """Sign in as an enrolled staff member; returns the final redirect (303 to /staff or the `next` page).

    A time step is accepted once: when this account already used the current step, the next step's code (still
    inside the accepted drift) is sent, so a test can sign the same person in twice without moving the clock.
    """
    response = submit_password(client, email, password)
    assert response.status_code == 303, response.text
    assert response.headers["location"].startswith("/staff/sign-in/code"), response.headers["location"]
    response = submit_code(client, code_at(totp_secret, clock()))
    if response.status_code != 303:
        response = submit_code(client, code_at(totp_secret, clock() + timedelta(seconds=totp.STEP_SECONDS)))
    assert response.status_code == 303, response.text
    return response
