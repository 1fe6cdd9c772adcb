"""Staff pages: sign-in (password, then code or enrolment), sign-out, own password, home, tablet placeholder, staff
accounts."""

from __future__ import annotations

from urllib.parse import urlencode

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from portal.db import in_transaction, run_db, transaction
from portal.i18n import gettext
from portal.staff import accounts, passwords, signin
from portal.staff.access import PASSWORD_PAGE, has_role, require_role, staff_of
from portal.staff.sessions import staff_cookie_name, staff_signer
from portal.web import client_ip, redirect, render, request_id_of, safe_next

HOME = "/staff"


def _next(value: object) -> str:
    target = safe_next(str(value or "")[:2000], HOME)
    return target if target == HOME or target.startswith(HOME + "/") else HOME


def _set_staff_cookie(request: Request, response: Response, raw_id: str) -> Response:
    settings = request.app.state.settings
    response.set_cookie(
        staff_cookie_name(settings),
        staff_signer(settings).sign(raw_id).decode(),
        path="/",
        httponly=True,
        samesite="lax",
        secure=settings.https,
    )
    return response


def _minutes_until(request: Request, exc: signin.AccountLocked) -> int:
    seconds = (exc.until - request.app.state.clock()).total_seconds()
    return max(1, int(seconds + 59) // 60)


def _locked_page(request: Request, exc: signin.AccountLocked, next_url: str) -> Response:
    return render(
        request,
        "staff/sign_in.html",
        {"email": "", "error": "locked", "minutes": _minutes_until(request, exc), "next": next_url},
        status_code=423,
    )


def _too_many(request: Request, exc: signin.TooManyAttempts) -> Response:
    minutes = max(1, int(exc.retry_after.total_seconds() + 59) // 60)
    return render(
        request,
        "staff/sign_in.html",
        {"email": "", "error": "too_many", "minutes": minutes, "next": HOME},
        status_code=429,
        headers={"retry-after": str(int(exc.retry_after.total_seconds()) + 1)},
    )


# --- Sign-in -----------------------------------------------------------------------------------------------------


async def sign_in_form(request: Request) -> Response:
    next_url = _next(request.query_params.get("next"))
    if request.scope["state"].get("staff"):
        return redirect(request, next_url)
    notice = None
    if request.query_params.get("signed_out") == "1":
        notice = "signed_out"
    elif request.query_params.get("ended") == "1":
        notice = "ended"
    return render(request, "staff/sign_in.html", {"email": "", "error": None, "notice": notice, "next": next_url})


async def sign_in_submit(request: Request) -> Response:
    form = await request.form()
    email = str(form.get("email", ""))[:320]
    next_url = _next(form.get("next"))
    state = request.app.state
    try:
        accepted = await run_db(
            state.engine,
            in_transaction,
            state.engine,
            signin.check_password,
            keep_on=(signin.StaffSignInError,),
            settings=state.settings,
            email=email,
            password=str(form.get("password", "")),
            ip=client_ip(request),
            now=state.clock(),
            request_id=request_id_of(request),
        )
    except signin.BadCredentials:
        return render(
            request, "staff/sign_in.html", {"email": email, "error": "credentials", "next": next_url}, status_code=400
        )
    except signin.AccountLocked as exc:
        return _locked_page(request, exc, next_url)
    except signin.TooManyAttempts as exc:
        return _too_many(request, exc)
    await _end_current_session(request)
    response = redirect(request, "/staff/sign-in/code?" + urlencode({"next": next_url}))
    return _set_staff_cookie(request, response, accepted.pending_session_id)


async def _end_current_session(request: Request) -> None:
    """Whatever staff session this browser had ends before the next one starts (rotation)."""
    raw_id = request.scope["state"].get("staff_session_raw_id")
    if raw_id:
        state = request.app.state

        def end() -> None:
            with transaction(state.engine) as session:
                signin.sign_out(
                    session,
                    settings=state.settings,
                    raw_id=raw_id,
                    now=state.clock(),
                    request_id=request_id_of(request),
                )

        await run_db(state.engine, end)


def _pending(request: Request) -> str | None:
    info = request.scope["state"].get("staff_session")
    if info is None or info.kind != signin.PENDING:
        return None
    return request.scope["state"].get("staff_session_raw_id")


async def _code_page(
    request: Request, *, next_url: str, error: str | None = None, remaining: int | None = None, status: int = 200
) -> Response:
    state = request.app.state
    raw_id = _pending(request)

    def load() -> signin.Enrolment | None:
        with transaction(state.engine) as session:
            return signin.enrolment_for(
                session, settings=state.settings, raw_id=raw_id, issuer=state.retailer.name, now=state.clock()
            )

    try:
        enrolment = await run_db(state.engine, load)
    except signin.SignInExpired:
        return redirect(request, "/staff/sign-in?" + urlencode({"next": next_url, "ended": "1"}))
    template = "staff/enrol.html" if enrolment else "staff/sign_in_code.html"
    return render(
        request,
        template,
        {"enrolment": enrolment, "error": error, "remaining": remaining, "next": next_url},
        status_code=status,
    )


async def code_form(request: Request) -> Response:
    next_url = _next(request.query_params.get("next"))
    if request.scope["state"].get("staff"):
        return redirect(request, next_url)
    if _pending(request) is None:
        return redirect(request, "/staff/sign-in?" + urlencode({"next": next_url}))
    return await _code_page(request, next_url=next_url)


async def code_submit(request: Request) -> Response:
    form = await request.form()
    next_url = _next(form.get("next"))
    state = request.app.state
    try:
        signed_in = await run_db(
            state.engine,
            in_transaction,
            state.engine,
            signin.check_code,
            keep_on=(signin.StaffSignInError,),
            settings=state.settings,
            raw_id=_pending(request),
            code=str(form.get("code", "")),
            ip=client_ip(request),
            now=state.clock(),
            request_id=request_id_of(request),
        )
    except signin.CodeRejected as exc:
        return await _code_page(request, next_url=next_url, error="wrong_code", remaining=exc.remaining, status=400)
    except signin.SignInExpired:
        return render(
            request, "staff/sign_in.html", {"email": "", "error": "expired", "next": next_url}, status_code=400
        )
    except signin.AccountLocked as exc:
        return _locked_page(request, exc, next_url)
    except signin.TooManyAttempts as exc:
        return _too_many(request, exc)
    if signed_in.password_must_change:
        # A one-time password: choosing their own comes before anything else (every other page sends back here).
        target = PASSWORD_PAGE + ("?" + urlencode({"next": next_url}) if next_url != HOME else "")
        return _set_staff_cookie(request, redirect(request, target), signed_in.session_id)
    return _set_staff_cookie(request, redirect(request, next_url), signed_in.session_id)


async def sign_out(request: Request) -> Response:
    await _end_current_session(request)
    response = redirect(request, "/staff/sign-in?signed_out=1")
    response.delete_cookie(staff_cookie_name(request.app.state.settings), path="/")
    return response


# --- Own password ------------------------------------------------------------------------------------------------


def _password_page(
    request: Request,
    *,
    next_url: str,
    error: accounts.StaffAccountError | None = None,
    changed: bool = False,
    status: int = 200,
) -> Response:
    me = staff_of(request, on_password_page=True)
    return render(
        request,
        "staff/password.html",
        {
            "me": me,
            "forced": me.password_must_change,
            "error": error,
            "error_message": gettext(error.message) if error else None,
            "changed": changed,
            "next": next_url,
            "min_length": passwords.MIN_LENGTH,
            "max_length": passwords.MAX_LENGTH,
        },
        status_code=status,
    )


async def password_form(request: Request) -> Response:
    changed = request.query_params.get("changed") == "1"
    return _password_page(request, next_url=_next(request.query_params.get("next")), changed=changed)


async def password_submit(request: Request) -> Response:
    me = staff_of(request, on_password_page=True)
    form = await request.form()
    next_url = _next(form.get("next"))
    state = request.app.state
    try:
        raw_id = await run_db(
            state.engine,
            in_transaction,
            state.engine,
            accounts.change_password,
            keep_on=(accounts.StaffAccountError, signin.AccountLocked),
            settings=state.settings,
            staff_id=me.id,
            # Cut far above the longest password accepted: the checks still see "too long", argon2 never a megabyte.
            current=str(form.get("current_password", ""))[: passwords.MAX_LENGTH + 1],
            new=str(form.get("new_password", ""))[: passwords.MAX_LENGTH + 1],
            confirmation=str(form.get("confirmation", ""))[: passwords.MAX_LENGTH + 1],
            now=state.clock(),
            request_id=request_id_of(request),
        )
    except accounts.StaffAccountError as exc:
        return _password_page(request, next_url=next_url, error=exc, status=400)
    except signin.AccountLocked as exc:
        # Too many wrong current passwords: every session of the account has ended, this one included.
        request.scope["state"]["staff"] = None
        response = _locked_page(request, exc, next_url)
        response.delete_cookie(staff_cookie_name(state.settings), path="/")
        return response
    target = PASSWORD_PAGE + "?" + urlencode({"changed": "1", **({"next": next_url} if next_url != HOME else {})})
    return _set_staff_cookie(request, redirect(request, target), raw_id)


# --- Home and placeholders ---------------------------------------------------------------------------------------


async def home(request: Request) -> Response:
    me = staff_of(request)
    return render(request, "staff/home.html", {"me": me, "is_dpo": has_role(me), "works_queue": has_role(me, "agent")})


async def tablet(request: Request) -> Response:
    require_role(request, "store")
    return render(request, "staff/tablet.html")


# --- Staff accounts (DPO) ----------------------------------------------------------------------------------------


async def _accounts_page(
    request: Request,
    *,
    form: dict[str, str] | None = None,
    error: accounts.StaffAccountError | None = None,
    created: accounts.NewStaff | None = None,
    notice: str | None = None,
    status: int = 200,
) -> Response:
    state = request.app.state

    def load() -> tuple[list[accounts.StaffSummary], list[tuple[str, str]]]:
        with transaction(state.engine) as session:
            return accounts.list_staff(session), accounts.store_choices(session)

    staff_list, stores = await run_db(state.engine, load)
    return render(
        request,
        "staff/accounts.html",
        {
            "me": staff_of(request),
            "accounts": staff_list,
            "stores": stores,
            "form": form or {"email": "", "name": "", "role": "agent", "store": ""},
            "error": error,
            "error_message": gettext(error.message) if error else None,
            "created": created,
            "notice": notice,
            "now": state.clock(),
        },
        status_code=status,
    )


async def accounts_list(request: Request) -> Response:
    require_role(request)
    notice = request.query_params.get("done")
    return await _accounts_page(request, notice=notice if notice in ACCOUNT_NOTICES else None)


ACCOUNT_NOTICES = ("disabled", "enabled", "totp_reset")


async def accounts_add(request: Request) -> Response:
    me = require_role(request)
    form = await request.form()
    values = {key: str(form.get(key, ""))[:320].strip() for key in ("email", "name", "role", "store")}
    state = request.app.state
    try:
        created = await run_db(
            state.engine,
            in_transaction,
            state.engine,
            accounts.add_staff,
            email=values["email"],
            name=values["name"],
            role=values["role"],
            store_code=values["store"] or None,
            actor=me.actor,
            now=state.clock(),
            request_id=request_id_of(request),
        )
    except accounts.StaffAccountError as exc:
        return await _accounts_page(request, form=values, error=exc, status=400)
    # The one-time password is in this response only: never in a URL, a log or the database.
    return await _accounts_page(request, created=created, status=201)


async def _account_action(request: Request, action: str) -> Response:
    me = require_role(request)
    try:
        staff_id = int(request.path_params["staff_id"])
    except ValueError:
        staff_id = 0
    state = request.app.state

    def run(session):  # type: ignore[no-untyped-def]
        common = {"staff_id": staff_id, "actor": me.actor, "now": state.clock(), "request_id": request_id_of(request)}
        if action == "totp_reset":
            return accounts.reset_totp(session, **common)
        return accounts.set_active(session, active=action == "enabled", **common)

    try:
        await run_db(state.engine, in_transaction, state.engine, run)
    except accounts.StaffAccountError as exc:
        return await _accounts_page(request, error=exc, status=409 if staff_id else 404)
    return redirect(request, f"/staff/accounts?done={action}")


async def account_disable(request: Request) -> Response:
    return await _account_action(request, "disabled")


async def account_enable(request: Request) -> Response:
    return await _account_action(request, "enabled")


async def account_reset_totp(request: Request) -> Response:
    return await _account_action(request, "totp_reset")


routes = [
    Route("/staff/sign-in", sign_in_form, methods=["GET"], name="staff_sign_in"),
    Route("/staff/sign-in", sign_in_submit, methods=["POST"]),
    Route("/staff/sign-in/code", code_form, methods=["GET"], name="staff_sign_in_code"),
    Route("/staff/sign-in/code", code_submit, methods=["POST"]),
    Route("/staff/sign-out", sign_out, methods=["POST"], name="staff_sign_out"),
    Route(PASSWORD_PAGE, password_form, methods=["GET"], name="staff_password"),
    Route(PASSWORD_PAGE, password_submit, methods=["POST"]),
    Route("/staff", home, methods=["GET"], name="staff_home"),
    Route("/staff/tablet", tablet, methods=["GET"], name="staff_tablet"),
    Route("/staff/accounts", accounts_list, methods=["GET"], name="staff_accounts"),
    Route("/staff/accounts", accounts_add, methods=["POST"]),
    Route("/staff/accounts/{staff_id}/disable", account_disable, methods=["POST"]),
    Route("/staff/accounts/{staff_id}/enable", account_enable, methods=["POST"]),
    Route("/staff/accounts/{staff_id}/reset-totp", account_reset_totp, methods=["POST"]),
]
