"""Staff authentication services: argon2 passwords, TOTP (replay refused), lockout and unlock, session timeouts,
and the account services the DPO pages and the CLI share."""

from __future__ import annotations

import dataclasses
import re
from datetime import timedelta

import pytest
from argon2 import PasswordHasher
from sqlalchemy import func, select

from portal.db import in_transaction, transaction
from portal.identity import passwords, totp
from portal.identity import staff_accounts as accounts
from portal.identity import staff_signin as signin
from portal.identity.sessions import load_session
from portal.models import AuditEvent, StaffUser
from tests.conftest import Clock
from tests.factories import make_store
from tests.staff_helpers import code_at, make_staff

IP = "203.0.113.7"


def _password(engine, settings, clock, email, password, ip=IP):  # type: ignore[no-untyped-def]
    return in_transaction(
        engine,
        signin.check_password,
        keep_on=(signin.StaffSignInError,),
        settings=settings,
        email=email,
        password=password,
        ip=ip,
        now=clock(),
    )


def _code(engine, settings, clock, raw_id, code, ip=IP):  # type: ignore[no-untyped-def]
    return in_transaction(
        engine,
        signin.check_code,
        keep_on=(signin.StaffSignInError,),
        settings=settings,
        raw_id=raw_id,
        code=code,
        ip=ip,
        now=clock(),
    )


def _staff(engine, staff_id):  # type: ignore[no-untyped-def]
    with transaction(engine) as session:
        return session.get(StaffUser, staff_id)


def _actions(engine, action):  # type: ignore[no-untyped-def]
    with transaction(engine) as session:
        return session.scalar(select(func.count()).select_from(AuditEvent).where(AuditEvent.action == action))


# --- Passwords ---------------------------------------------------------------------------------------------------


def test_passwords_are_argon2id_and_rehashed_when_the_parameters_change() -> None:
    stored = passwords.hash_password("a long enough password")
    assert stored.startswith("$argon2id$")
    assert passwords.check_password(stored, "a long enough password") == (True, None)
    assert passwords.check_password(stored, "a long enough passwore") == (False, None)
    assert passwords.check_password("not a hash", "whatever") == (False, None)

    weaker = PasswordHasher(time_cost=1, memory_cost=8192, parallelism=1).hash("a long enough password")
    matches, new_hash = passwords.check_password(weaker, "a long enough password")
    assert matches and new_hash and new_hash.startswith("$argon2id$")
    assert not passwords.HASHER.check_needs_rehash(new_hash)


def test_one_time_passwords_are_long_random_and_unambiguous() -> None:
    drawn = {passwords.one_time_password() for _ in range(50)}
    assert len(drawn) == 50
    for value in drawn:
        assert len(value) == 23 and value.count("-") == 3
        assert not set(value) & set("0O1lI")
        assert passwords.password_problem(value) is None
    assert passwords.password_problem("short") == "too_short"


def test_rehash_happens_at_sign_in(engine, settings, clock: Clock) -> None:
    staff, password, _ = make_staff(engine)
    weaker = PasswordHasher(time_cost=1, memory_cost=8192, parallelism=1).hash(password)
    with transaction(engine) as session:
        session.get(StaffUser, staff.id).password_hash = weaker
    _password(engine, settings, clock, staff.email, password)
    assert _staff(engine, staff.id).password_hash != weaker
    assert not passwords.HASHER.check_needs_rehash(_staff(engine, staff.id).password_hash)


# --- TOTP --------------------------------------------------------------------------------------------------------


def test_totp_accepts_one_step_of_drift_and_each_step_once(clock: Clock) -> None:
    secret = totp.new_secret()
    now = clock()
    step = totp.step_at(now)
    assert totp.accepted_step(secret, code_at(secret, now), now=now, last_step=None) == step
    assert totp.accepted_step(secret, code_at(secret, now - timedelta(seconds=30)), now=now, last_step=None) == step - 1
    assert totp.accepted_step(secret, code_at(secret, now + timedelta(seconds=30)), now=now, last_step=None) == step + 1
    assert totp.accepted_step(secret, code_at(secret, now - timedelta(seconds=90)), now=now, last_step=None) is None
    # Replay: the step already used, or one before it, is refused.
    assert totp.accepted_step(secret, code_at(secret, now), now=now, last_step=step) is None
    assert totp.accepted_step(secret, code_at(secret, now - timedelta(seconds=30)), now=now, last_step=step) is None
    # Spaces are forgiven, anything else is not a code.
    code = code_at(secret, now)
    assert totp.accepted_step(secret, f"{code[:3]} {code[3:]}", now=now, last_step=None) == step
    for junk in ("", "12345", "1234567", "abcdef", "１２３４５６"):
        assert totp.accepted_step(secret, junk, now=now, last_step=None) is None


def test_enrolment_shows_the_secret_grouped_and_an_otpauth_qr_code(engine, settings, clock: Clock) -> None:
    staff, password, _ = make_staff(engine, enrolled=False)
    accepted = _password(engine, settings, clock, staff.email, password)
    assert accepted.needs_enrolment
    with transaction(engine) as session:
        enrolment = signin.enrolment_for(
            session, settings=settings, raw_id=accepted.pending_session_id, issuer="Maison Aubépine", now=clock()
        )
    assert enrolment is not None
    assert enrolment.grouped_secret.replace(" ", "") == enrolment.secret == _staff(engine, staff.id).totp_secret
    assert enrolment.uri.startswith("otpauth://totp/") and f"secret={enrolment.secret}" in enrolment.uri
    assert enrolment.qr.startswith("data:image/svg+xml")
    # Signing in again before confirming shows the same secret (the phone may already hold it).
    again = _password(engine, settings, clock, staff.email, password)
    assert _staff(engine, staff.id).totp_secret == enrolment.secret

    signed_in = _code(engine, settings, clock, again.pending_session_id, code_at(enrolment.secret, clock()))
    enrolled = _staff(engine, staff.id)
    assert enrolled.totp_confirmed_at == clock() and enrolled.last_sign_in_at == clock()
    assert _actions(engine, "staff.totp_enrolled") == 1
    with transaction(engine) as session:
        info = load_session(session, settings=settings, raw_id=signed_in.session_id, now=clock())
        assert info is not None and info.kind == "staff" and info.staff_id == staff.id
        # The pending session ended when the real one started.
        assert load_session(session, settings=settings, raw_id=again.pending_session_id, now=clock()) is None


def test_a_code_is_accepted_once(engine, settings, clock: Clock) -> None:
    staff, password, secret = make_staff(engine)
    first = _password(engine, settings, clock, staff.email, password)
    _code(engine, settings, clock, first.pending_session_id, code_at(secret, clock()))
    second = _password(engine, settings, clock, staff.email, password)
    with pytest.raises(signin.CodeRejected) as refused:
        _code(engine, settings, clock, second.pending_session_id, code_at(secret, clock()))
    assert refused.value.remaining == 4
    # The next step's code is fine.
    _code(engine, settings, clock, second.pending_session_id, code_at(secret, clock() + timedelta(seconds=30)))


def test_the_code_step_needs_the_password_step(engine, settings, clock: Clock) -> None:
    staff, password, secret = make_staff(engine)
    with pytest.raises(signin.SignInExpired):
        _code(engine, settings, clock, None, code_at(secret, clock()))
    with pytest.raises(signin.SignInExpired):
        _code(engine, settings, clock, "forged-session-id", code_at(secret, clock()))
    accepted = _password(engine, settings, clock, staff.email, password)
    clock.advance(minutes=6)  # the password step is good for 5 minutes
    with pytest.raises(signin.SignInExpired):
        _code(engine, settings, clock, accepted.pending_session_id, code_at(secret, clock()))


# --- Wrong credentials and lockout -------------------------------------------------------------------------------


def test_unknown_email_wrong_password_and_disabled_account_answer_alike(engine, settings, clock: Clock) -> None:
    staff, password, _ = make_staff(engine)
    disabled, disabled_password, _ = make_staff(engine)
    with transaction(engine) as session:
        session.get(StaffUser, disabled.id).active = False
    for email, attempt in (
        ("nobody@staff.example.com", password),
        (staff.email, "wrong password!"),
        (disabled.email, disabled_password),
    ):
        with pytest.raises(signin.BadCredentials):
            _password(engine, settings, clock, email, attempt)
    # Emails are matched case-insensitively.
    assert _password(engine, settings, clock, staff.email.upper(), password).staff_id == staff.id


def test_five_failures_lock_the_account_for_15_minutes(engine, settings, clock: Clock) -> None:
    staff, password, secret = make_staff(engine)
    for _ in range(4):
        with pytest.raises(signin.BadCredentials):
            _password(engine, settings, clock, staff.email, "wrong password!")
    with pytest.raises(signin.AccountLocked) as locked:
        _password(engine, settings, clock, staff.email, "wrong password!")
    assert locked.value.until == clock() + timedelta(minutes=15)
    assert _actions(engine, "staff.locked") == 1
    assert _actions(engine, "staff.sign_in_failed") == 5
    # Even the right password is refused while locked.
    clock.advance(minutes=14, seconds=59)
    with pytest.raises(signin.AccountLocked):
        _password(engine, settings, clock, staff.email, password)
    clock.advance(seconds=1)
    accepted = _password(engine, settings, clock, staff.email, password)
    _code(engine, settings, clock, accepted.pending_session_id, code_at(secret, clock()))
    assert _staff(engine, staff.id).failed_attempts == 0


def test_wrong_codes_count_towards_the_lockout_too(engine, settings, clock: Clock) -> None:
    staff, password, secret = make_staff(engine)
    for _ in range(2):
        with pytest.raises(signin.BadCredentials):
            _password(engine, settings, clock, staff.email, "wrong password!")
    accepted = _password(engine, settings, clock, staff.email, password)
    wrong = "000000" if code_at(secret, clock()) != "000000" else "111111"
    for remaining in (2, 1):
        with pytest.raises(signin.CodeRejected) as refused:
            _code(engine, settings, clock, accepted.pending_session_id, wrong)
        assert refused.value.remaining == remaining
    with pytest.raises(signin.AccountLocked):
        _code(engine, settings, clock, accepted.pending_session_id, wrong)
    # The password step ended with the lock: even the right code cannot finish it.
    with pytest.raises(signin.SignInExpired):
        _code(engine, settings, clock, accepted.pending_session_id, code_at(secret, clock()))


def test_a_success_resets_the_count_of_failures(engine, settings, clock: Clock) -> None:
    staff, password, secret = make_staff(engine)
    for _ in range(4):
        with pytest.raises(signin.BadCredentials):
            _password(engine, settings, clock, staff.email, "wrong password!")
    accepted = _password(engine, settings, clock, staff.email, password)
    _code(engine, settings, clock, accepted.pending_session_id, code_at(secret, clock()))
    for _ in range(4):
        with pytest.raises(signin.BadCredentials):
            _password(engine, settings, clock, staff.email, "wrong password!")


def test_unknown_addresses_lock_like_real_ones(engine, settings, clock: Clock) -> None:
    for _ in range(4):
        with pytest.raises(signin.BadCredentials):
            _password(engine, settings, clock, "nobody@staff.example.com", "whatever it is")
    with pytest.raises(signin.AccountLocked):
        _password(engine, settings, clock, "nobody@staff.example.com", "whatever it is")


def test_too_many_attempts_from_one_ip(engine, settings, clock: Clock) -> None:
    settings = dataclasses.replace(settings, signin_limit_per_ip=3)  # each attempt costs an argon2 verification
    staff, password, _ = make_staff(engine)
    for n in range(settings.signin_limit_per_ip):
        with pytest.raises(signin.BadCredentials):
            _password(engine, settings, clock, f"nobody{n}@staff.example.com", "whatever it is")
    with pytest.raises(signin.TooManyAttempts):
        _password(engine, settings, clock, staff.email, password)
    _password(engine, settings, clock, staff.email, password, ip="198.51.100.1")  # another address is not limited


# --- Session timeouts --------------------------------------------------------------------------------------------


def _signed_in(engine, settings, clock):  # type: ignore[no-untyped-def]
    staff, password, secret = make_staff(engine)
    accepted = _password(engine, settings, clock, staff.email, password)
    return _code(engine, settings, clock, accepted.pending_session_id, code_at(secret, clock())).session_id


def _alive(engine, settings, clock, raw_id) -> bool:  # type: ignore[no-untyped-def]
    with transaction(engine) as session:
        return load_session(session, settings=settings, raw_id=raw_id, now=clock()) is not None


def test_staff_sessions_end_after_30_idle_minutes(engine, settings, clock: Clock) -> None:
    raw_id = _signed_in(engine, settings, clock)
    clock.advance(minutes=29)
    assert _alive(engine, settings, clock, raw_id)
    clock.advance(minutes=29)  # activity moved the idle clock on
    assert _alive(engine, settings, clock, raw_id)
    clock.advance(minutes=30)
    assert not _alive(engine, settings, clock, raw_id)


def test_staff_sessions_end_after_12_hours_whatever_the_activity(engine, settings, clock: Clock) -> None:
    raw_id = _signed_in(engine, settings, clock)
    for _ in range(12 * 3 - 1):
        clock.advance(minutes=20)
        assert _alive(engine, settings, clock, raw_id)
    clock.advance(minutes=20)
    assert not _alive(engine, settings, clock, raw_id)


def test_sign_out_ends_the_session_on_the_server(engine, settings, clock: Clock) -> None:
    raw_id = _signed_in(engine, settings, clock)
    with transaction(engine) as session:
        signin.sign_out(session, settings=settings, raw_id=raw_id, now=clock())
    assert not _alive(engine, settings, clock, raw_id)
    assert _actions(engine, "staff.signed_out") == 1


# --- Accounts ----------------------------------------------------------------------------------------------------


def _add(engine, clock, **fields):  # type: ignore[no-untyped-def]
    values = {"email": "new@staff.example.com", "name": "Nadia  Roux", "role": "agent", "store_code": None}
    values.update(fields)
    return in_transaction(engine, accounts.add_staff, actor="staff:1", now=clock(), **values)


def test_adding_an_account_draws_a_one_time_password_and_audits(engine, settings, clock: Clock) -> None:
    added = _add(engine, clock)
    assert added.generated and len(added.password) == 23
    assert added.account.name == "Nadia Roux" and added.account.role == "agent" and not added.account.enrolled
    stored = _staff(engine, added.account.id)
    assert passwords.check_password(stored.password_hash, added.password)[0]
    assert added.password not in stored.password_hash
    assert _actions(engine, "staff.created") == 1
    # The account can sign in with it, and enrols at once.
    assert _password(engine, settings, clock, "NEW@staff.example.com", added.password).needs_enrolment


def test_a_drawn_password_must_be_replaced_a_chosen_one_need_not(engine, clock: Clock) -> None:
    drawn = _add(engine, clock)
    chosen = _add(engine, clock, email="chosen@staff.example.com", password="chosen by the admin")
    assert _staff(engine, drawn.account.id).password_must_change
    assert not _staff(engine, chosen.account.id).password_must_change


def test_store_accounts_belong_to_a_store(engine, clock: Clock) -> None:
    store = make_store(engine, code="LYO-09")
    added = _add(engine, clock, role="store", store_code="LYO-09", password="chosen by the admin")
    assert not added.generated and added.account.store_code == "LYO-09"
    assert _staff(engine, added.account.id).store_id == store.id


@pytest.mark.parametrize(
    ("fields", "field"),
    [
        ({"email": "not an address"}, "email"),
        ({"name": "   "}, "name"),
        ({"name": "x" * 101}, "name"),
        ({"role": "admin"}, "role"),
        ({"role": "store"}, "store"),
        ({"role": "store", "store_code": "NOPE"}, "store"),
        ({"role": "agent", "store_code": "LYO-09"}, "store"),
        ({"password": "too short"}, "password"),
    ],
)
def test_bad_account_details_are_refused_with_the_field(engine, clock: Clock, fields, field) -> None:  # type: ignore[no-untyped-def]
    make_store(engine, code="LYO-09")
    with pytest.raises(accounts.StaffAccountError) as refused:
        _add(engine, clock, **fields)
    assert refused.value.field == field


def test_an_email_is_used_by_one_account_only(engine, clock: Clock) -> None:
    make_staff(engine, email="taken@staff.example.com")
    with pytest.raises(accounts.StaffAccountError) as refused:
        _add(engine, clock, email="Taken@Staff.example.com")
    assert refused.value.field == "email"


def test_disabling_ends_sessions_and_refuses_sign_in(engine, settings, clock: Clock) -> None:
    staff, password, secret = make_staff(engine)
    accepted = _password(engine, settings, clock, staff.email, password)
    raw_id = _code(engine, settings, clock, accepted.pending_session_id, code_at(secret, clock())).session_id
    in_transaction(engine, accounts.set_active, staff_id=staff.id, active=False, actor="cli", now=clock())
    assert not _alive(engine, settings, clock, raw_id)
    with pytest.raises(signin.BadCredentials):
        _password(engine, settings, clock, staff.email, password)
    summary = in_transaction(engine, accounts.set_active, staff_id=staff.id, active=True, actor="cli", now=clock())
    assert summary.active
    assert _password(engine, settings, clock, staff.email, password).staff_id == staff.id
    assert (_actions(engine, "staff.disabled"), _actions(engine, "staff.enabled")) == (1, 1)


def test_the_last_dpo_and_oneself_cannot_be_disabled(engine, clock: Clock) -> None:
    dpo, _, _ = make_staff(engine, role="dpo")
    with pytest.raises(accounts.StaffAccountError, match="At least one active DPO"):
        in_transaction(engine, accounts.set_active, staff_id=dpo.id, active=False, actor="cli", now=clock())
    other, _, _ = make_staff(engine, role="dpo")
    with pytest.raises(accounts.StaffAccountError, match="your own account"):
        in_transaction(engine, accounts.set_active, staff_id=dpo.id, active=False, actor=f"staff:{dpo.id}", now=clock())
    in_transaction(engine, accounts.set_active, staff_id=dpo.id, active=False, actor=f"staff:{other.id}", now=clock())
    with pytest.raises(accounts.StaffAccountError):
        in_transaction(engine, accounts.set_active, staff_id=999_999, active=False, actor="cli", now=clock())


def test_resetting_totp_makes_the_next_sign_in_enrol_again(engine, settings, clock: Clock) -> None:
    staff, password, secret = make_staff(engine)
    with transaction(engine) as session:
        staff_id = accounts.staff_id_for_email(session, staff.email.upper())
    in_transaction(engine, accounts.reset_totp, staff_id=staff_id, actor="cli", now=clock())
    accepted = _password(engine, settings, clock, staff.email, password)
    assert accepted.needs_enrolment
    new_secret = _staff(engine, staff.id).totp_secret
    assert new_secret and new_secret != secret
    with pytest.raises(signin.CodeRejected):  # the old phone's codes no longer work
        _code(engine, settings, clock, accepted.pending_session_id, code_at(secret, clock()))
    _code(engine, settings, clock, accepted.pending_session_id, code_at(new_secret, clock()))
    assert _actions(engine, "staff.totp_reset") == 1


def test_list_staff(engine, clock: Clock) -> None:
    make_staff(engine, role="agent", name="Zoé")
    make_staff(engine, role="dpo", name="anne")
    with transaction(engine) as session:
        listed = accounts.list_staff(session)
    assert [a.name for a in listed] == ["anne", "Zoé"]
    assert all(a.enrolled and a.active for a in listed)


# --- Own password ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("new", "problem"),
    [
        ("a fine password", None),
        ("x" * 11, "too_short"),
        ("x" * 12, None),
        ("x" * 256, None),
        ("x" * 257, "too_long"),
        ("the current one", "same_as_current"),
        ("Hello-Marie.Curie-2026", "contains_email"),  # whatever the case
        ("marie curie and friends", None),  # the local part is "marie.curie", dot included
    ],
)
def test_new_password_rules(new: str, problem: str | None) -> None:
    assert passwords.new_password_problem(new, current="the current one", email="Marie.Curie@staff.example.com") == (
        problem
    )


def test_a_very_short_local_part_is_not_held_against_the_password() -> None:
    # Refusing every password with an "a" in it would protect nothing.
    assert passwords.new_password_problem("a fine password", current="x", email="a@staff.example.com") is None
    assert passwords.new_password_problem("jo.jones-2026!", current="x", email="jo@staff.example.com") is None
    assert passwords.new_password_problem("ann-is-back-2026", current="x", email="ann@staff.example.com") == (
        "contains_email"
    )


def _change(engine, settings, clock, staff_id, current, new, confirmation=None):  # type: ignore[no-untyped-def]
    return in_transaction(
        engine,
        accounts.change_password,
        keep_on=(accounts.StaffAccountError, signin.AccountLocked),
        settings=settings,
        staff_id=staff_id,
        current=current,
        new=new,
        confirmation=new if confirmation is None else confirmation,
        now=clock(),
    )


def test_changing_the_password_clears_the_flag_and_ends_the_other_sessions(engine, settings, clock: Clock) -> None:
    staff, password, secret = make_staff(engine, password_must_change=True)
    accepted = _password(engine, settings, clock, staff.email, password)
    signed_in = _code(engine, settings, clock, accepted.pending_session_id, code_at(secret, clock()))
    assert signed_in.password_must_change
    other = _code(
        engine,
        settings,
        clock,
        _password(engine, settings, clock, staff.email, password).pending_session_id,
        code_at(secret, clock() + timedelta(seconds=30)),
    )
    raw_id = _change(engine, settings, clock, staff.id, password, "my own password now")
    assert not _alive(engine, settings, clock, signed_in.session_id)
    assert not _alive(engine, settings, clock, other.session_id)
    assert _alive(engine, settings, clock, raw_id)
    with transaction(engine) as session:
        info = load_session(session, settings=settings, raw_id=raw_id, now=clock())
        assert info.kind == "staff" and info.staff_id == staff.id
    row = _staff(engine, staff.id)
    assert not row.password_must_change
    assert passwords.check_password(row.password_hash, "my own password now")[0]
    assert not passwords.check_password(row.password_hash, password)[0]
    assert _actions(engine, "staff.password_changed") == 1


@pytest.mark.parametrize(
    ("current", "new", "confirmation", "field"),
    [
        ("", "my own password now", None, "current"),
        ("wrong password!", "my own password now", None, "current"),
        (None, "short", None, "new"),
        (None, None, None, "new"),  # the current one again
        (None, "my own password now", "my own password now ", "confirmation"),
    ],
)
def test_refused_password_changes_say_which_field(
    engine, settings, clock: Clock, current, new, confirmation, field
) -> None:  # type: ignore[no-untyped-def]
    staff, password, _ = make_staff(engine, password_must_change=True)
    with pytest.raises(accounts.StaffAccountError) as refused:
        _change(
            engine, settings, clock, staff.id, password if current is None else current, new or password, confirmation
        )
    assert refused.value.field == field
    row = _staff(engine, staff.id)
    assert row.password_must_change and passwords.check_password(row.password_hash, password)[0]
    assert _actions(engine, "staff.password_changed") == 0


def test_wrong_current_passwords_lock_the_account_and_end_its_sessions(engine, settings, clock: Clock) -> None:
    staff, password, secret = make_staff(engine)
    accepted = _password(engine, settings, clock, staff.email, password)
    raw_id = _code(engine, settings, clock, accepted.pending_session_id, code_at(secret, clock())).session_id
    for _ in range(4):
        with pytest.raises(accounts.StaffAccountError):
            _change(engine, settings, clock, staff.id, "wrong password!", "my own password now")
    assert _alive(engine, settings, clock, raw_id)
    with pytest.raises(signin.AccountLocked):
        _change(engine, settings, clock, staff.id, "wrong password!", "my own password now")
    assert not _alive(engine, settings, clock, raw_id)
    assert _actions(engine, "staff.locked") == 1
    with pytest.raises(signin.AccountLocked):
        _password(engine, settings, clock, staff.email, password)


# --- The command line --------------------------------------------------------------------------------------------


def test_portal_staff_commands(engine, database_url, monkeypatch, capsys) -> None:  # type: ignore[no-untyped-def]
    import io

    from portal.cli import main

    monkeypatch.setenv("PORTAL_DATABASE_URL", database_url)
    make_store(engine, code="NTE-09")
    assert main(["staff", "add", "--email", "ana@staff.example.com", "--name", "Ana Lima", "--role", "agent"]) == 0
    printed = capsys.readouterr().out
    one_time = re.search(r"One-time password, shown only now: (\S+)", printed).group(1)
    with transaction(engine) as session:
        stored = session.scalars(select(StaffUser).where(StaffUser.email == "ana@staff.example.com")).one()
        assert passwords.check_password(stored.password_hash, one_time)[0]
        assert stored.password_must_change  # a one-time password

    monkeypatch.setattr("sys.stdin", io.StringIO("a password from stdin\n"))
    argv = ["staff", "add", "--email", "sam@staff.example.com", "--name", "Sam", "--role", "store", "--store", "NTE-09"]
    assert main([*argv, "--password-stdin"]) == 0
    assert "One-time password" not in capsys.readouterr().out
    with transaction(engine) as session:
        stored = session.scalars(select(StaffUser).where(StaffUser.email == "sam@staff.example.com")).one()
        assert not stored.password_must_change  # chosen by whoever ran the command

    assert main(["staff", "list"]) == 0
    listed = capsys.readouterr().out
    assert "ana@staff.example.com\tAna Lima\tagent\t-\tactive\tno-totp" in listed and "\tstore\tNTE-09\t" in listed

    assert main(["staff", "disable", "ANA@staff.example.com"]) == 0
    assert main(["staff", "reset-totp", "sam@staff.example.com"]) == 0
    assert main(["staff", "enable", "ana@staff.example.com"]) == 0
    capsys.readouterr()

    # Clear refusals, exit code 2.
    assert main(["staff", "disable", "nobody@staff.example.com"]) == 2
    assert "No staff account has this email address." in capsys.readouterr().err
    assert main(["staff", "add", "--email", "ana@staff.example.com", "--name", "A", "--role", "dpo"]) == 2
    assert "already uses this email address" in capsys.readouterr().err
    assert main(["staff", "add", "--email", "x@staff.example.com", "--name", "X", "--role", "store"]) == 2
    assert "needs its store" in capsys.readouterr().err
    with pytest.raises(SystemExit) as bad_role:
        main(["staff", "add", "--email", "x@staff.example.com", "--name", "X", "--role", "root"])
    assert bad_role.value.code == 2
    with transaction(engine) as session:
        actions = set(session.scalars(select(AuditEvent.action).where(AuditEvent.actor == "cli")))
    assert {"staff.created", "staff.disabled", "staff.enabled", "staff.totp_reset"} <= actions
