"""Sign-in pages: email form, "check your inbox" with the code form, the link's Continue page, sign-out."""

from __future__ import annotations

from itsdangerous import BadSignature, SignatureExpired, TimestampSigner
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from portal.i18n import get_locale
from portal.identity import service
from portal.identity.destination import destination_after_sign_in, forget_destination
from portal.identity.sessions import end_session
from portal.web.middleware import cookie_names
from portal.web.render import client_ip, redirect, render
from portal.web.state import portal_of, read, write

FLOW_COOKIE = "portal_signin"


def _flow_signer(request: Request) -> TimestampSigner:
    return TimestampSigner(portal_of(request).settings.secret_key, salt="portal.signin-flow")


def _set_cookie(request: Request, response: Response, name: str, value: str, *, max_age: int | None = None) -> None:
    response.set_cookie(
        name, value, max_age=max_age, path="/", httponly=True, samesite="lax", secure=portal_of(request).settings.https
    )


def _start_session(request: Request, signed_in: service.SignedIn, response: Response) -> Response:
    session_cookie = cookie_names(portal_of(request).settings)[0]
    _set_cookie(
        request, response, session_cookie, portal_of(request).session_signer.sign(signed_in.session_id).decode()
    )
    response.delete_cookie(FLOW_COOKIE, path="/")
    forget_destination(response)
    return response


async def _end_previous_session(request: Request) -> None:
    """Rotation: whatever session this browser had ends before a new one starts."""
    raw_id = request.scope["state"].get("session_raw_id")
    if raw_id:
        await write(request, end_session, settings=portal_of(request).settings, raw_id=raw_id)


async def signin_form(request: Request) -> Response:
    if request.scope["state"].get("session"):
        return redirect(request, "/me")
    return render(request, "customer/signin.html", {"email": "", "error": None})


async def signin_submit(request: Request) -> Response:
    form = await request.form()
    email = str(form.get("email", ""))[:320]
    state = portal_of(request)
    try:
        flow_id = await write(
            request,
            service.request_sign_in,
            keep_on=(service.SignInError,),
            settings=state.settings,
            composer=state.composer,
            email=email,
            language=get_locale(),
            ip=client_ip(request),
        )
    except service.InvalidEmail:
        return render(request, "customer/signin.html", {"email": email, "error": "invalid_email"}, status_code=400)
    except service.TooManyAttempts as exc:
        return render(
            request,
            "customer/too_many.html",
            {"minutes": _minutes(exc)},
            status_code=429,
            headers={"retry-after": str(int(exc.retry_after.total_seconds()) + 1)},
        )
    response = redirect(request, "/signin/sent")
    _set_cookie(
        request,
        response,
        FLOW_COOKIE,
        _flow_signer(request).sign(flow_id).decode(),
        max_age=int(state.settings.login_ttl.total_seconds()),
    )
    return response


def _minutes(exc: service.TooManyAttempts) -> int:
    return max(1, int(exc.retry_after.total_seconds() + 59) // 60)


def _flow_id(request: Request) -> str | None:
    cookie = request.cookies.get(FLOW_COOKIE)
    if not cookie:
        return None
    try:
        max_age = int(portal_of(request).settings.login_ttl.total_seconds())
        return _flow_signer(request).unsign(cookie, max_age=max_age).decode()
    except (BadSignature, SignatureExpired):
        return None


async def signin_sent(request: Request) -> Response:
    if _flow_id(request) is None:
        return redirect(request, "/signin")
    return render(request, "customer/signin_sent.html", {"error": None, "remaining": None})


async def signin_code(request: Request) -> Response:
    form = await request.form()
    flow_id = _flow_id(request)
    if flow_id is None:
        return render(request, "customer/signin.html", {"email": "", "error": "flow_expired"}, status_code=400)
    try:
        signed_in = await write(
            request,
            service.sign_in_with_code,
            keep_on=(service.SignInError,),
            settings=portal_of(request).settings,
            flow_id=flow_id,
            code=str(form.get("code", ""))[:32],
            ip=client_ip(request),
        )
    except service.CodeRejected as exc:
        if exc.reason == "wrong":
            return render(
                request,
                "customer/signin_sent.html",
                {"error": "wrong_code", "remaining": exc.remaining},
                status_code=400,
            )
        return render(request, "customer/signin.html", {"email": "", "error": f"code_{exc.reason}"}, status_code=400)
    except service.TooManyAttempts as exc:
        return render(request, "customer/too_many.html", {"minutes": _minutes(exc)}, status_code=429)
    await _end_previous_session(request)
    return _start_session(request, signed_in, redirect(request, destination_after_sign_in(request)))


async def signin_link(request: Request) -> Response:
    """The emailed link. Mail scanners open links, so looking only shows a Continue button."""
    token = request.query_params.get("token", "")[:200]
    try:
        await read(request, service.check_link, settings=portal_of(request).settings, token=token)
    except service.LinkRejected as exc:
        return _link_rejected(request, exc)
    return render(request, "customer/signin_link.html", {"token": token})


def _link_rejected(request: Request, exc: service.LinkRejected) -> Response:
    status = 400 if exc.reason == "invalid" else 410
    return render(
        request, "customer/link_rejected.html", {"reason": exc.reason, "email": "", "error": None}, status_code=status
    )


async def signin_link_submit(request: Request) -> Response:
    form = await request.form()
    token = str(form.get("token", ""))[:200]
    try:
        signed_in = await write(
            request,
            service.sign_in_with_link,
            keep_on=(service.SignInError,),
            settings=portal_of(request).settings,
            token=token,
        )
    except service.LinkRejected as exc:
        return _link_rejected(request, exc)
    await _end_previous_session(request)
    return _start_session(request, signed_in, redirect(request, destination_after_sign_in(request)))


async def signout(request: Request) -> Response:
    state = portal_of(request)
    raw_id = request.scope["state"].get("session_raw_id")
    if raw_id:
        await write(request, service.sign_out, settings=state.settings, raw_id=raw_id)
    response = redirect(request, "/?signed_out=1")
    response.delete_cookie(cookie_names(state.settings)[0], path="/")
    return response


routes = [
    Route("/signin", signin_form, methods=["GET"], name="signin"),
    Route("/signin", signin_submit, methods=["POST"]),
    Route("/signin/sent", signin_sent, methods=["GET"], name="signin_sent"),
    Route("/signin/code", signin_code, methods=["POST"], name="signin_code"),
    Route("/signin/link", signin_link, methods=["GET"], name="signin_link"),
    Route("/signin/link", signin_link_submit, methods=["POST"]),
    Route("/signout", signout, methods=["POST"], name="signout"),
]
