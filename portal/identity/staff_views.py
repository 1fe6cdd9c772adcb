"""Staff sign-in pages: password, then code or enrolment; sign-out; changing one's own password."""

from __future__ import annotations

from urllib.parse import urlencode

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from portal.i18n import gettext
from portal.identity import passwords
from portal.identity import staff_accounts as accounts
from portal.identity import staff_signin as signin
from portal.identity.guards import PASSWORD_PAGE, staff_of
from portal.identity.sessions import end_session
from portal.identity.staff_sessions import staff_cookie_name, staff_signer
from portal.web.middleware import cookie_names
from portal.web.render import client_ip, redirect, render, safe_next
from portal.web.state import portal_of, write

HOME = "/staff"


def _next(value: object) -> str:
    target = safe_next(str(value or "")[:2000], HOME)
    return target if target == HOME or target.startswith(HOME + "/") else HOME


def _set_staff_cookie(request: Request, response: Response, raw_id: str) -> Response:
    settings = portal_of(request).settings
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
    seconds = (exc.until - portal_of(request).clock()).total_seconds()
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
    try:
        accepted = await write(
            request,
            signin.check_password,
            keep_on=(signin.StaffSignInError,),
            settings=portal_of(request).settings,
            email=email,
            password=str(form.get("password", "")),
            ip=client_ip(request),
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
        await write(request, signin.sign_out, settings=portal_of(request).settings, raw_id=raw_id)


def _pending(request: Request) -> str | None:
    info = request.scope["state"].get("staff_session")
    if info is None or info.kind != signin.PENDING:
        return None
    return request.scope["state"].get("staff_session_raw_id")


async def _code_page(
    request: Request, *, next_url: str, error: str | None = None, remaining: int | None = None, status: int = 200
) -> Response:
    state = portal_of(request)
    try:
        # A write: reading the pending session moves its idle clock on.
        enrolment = await write(
            request, signin.enrolment_for, settings=state.settings, raw_id=_pending(request), issuer=state.retailer.name
        )
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
    try:
        signed_in = await write(
            request,
            signin.check_code,
            keep_on=(signin.StaffSignInError,),
            settings=portal_of(request).settings,
            raw_id=_pending(request),
            code=str(form.get("code", "")),
            ip=client_ip(request),
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
    response.delete_cookie(staff_cookie_name(portal_of(request).settings), path="/")
    customer = request.scope["state"].get("session")
    if customer is not None and customer.kind == "tablet":
        # Signing out of a shop tablet ends the customer session it was assisting, if one is still open.
        settings = portal_of(request).settings
        await write(request, end_session, settings=settings, raw_id=request.scope["state"]["session_raw_id"])
        response.delete_cookie(cookie_names(settings)[0], path="/")
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
    state = portal_of(request)
    try:
        raw_id = await write(
            request,
            accounts.change_password,
            keep_on=(accounts.StaffAccountError, signin.AccountLocked),
            settings=state.settings,
            staff_id=me.id,
            # Cut far above the longest password accepted: the checks still see "too long", argon2 never a megabyte.
            current=str(form.get("current_password", ""))[: passwords.MAX_LENGTH + 1],
            new=str(form.get("new_password", ""))[: passwords.MAX_LENGTH + 1],
            confirmation=str(form.get("confirmation", ""))[: passwords.MAX_LENGTH + 1],
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


routes = [
    Route("/staff/sign-in", sign_in_form, methods=["GET"], name="staff_sign_in"),
    Route("/staff/sign-in", sign_in_submit, methods=["POST"]),
    Route("/staff/sign-in/code", code_form, methods=["GET"], name="staff_sign_in_code"),
    Route("/staff/sign-in/code", code_submit, methods=["POST"]),
    Route("/staff/sign-out", sign_out, methods=["POST"], name="staff_sign_out"),
    Route(PASSWORD_PAGE, password_form, methods=["GET"], name="staff_password"),
    Route(PASSWORD_PAGE, password_submit, methods=["POST"]),
]
