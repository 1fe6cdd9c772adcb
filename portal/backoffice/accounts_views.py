"""Staff accounts (/staff/accounts, DPO only): list, add, disable, enable, forget an authenticator."""

from __future__ import annotations

from collections.abc import Callable

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from portal.i18n import gettext
from portal.identity import staff_accounts as accounts
from portal.identity.guards import require_role, staff_of
from portal.web.render import redirect, render
from portal.web.state import portal_of, read, write


async def _accounts_page(
    request: Request,
    *,
    form: dict[str, str] | None = None,
    error: accounts.StaffAccountError | None = None,
    created: accounts.NewStaff | None = None,
    notice: str | None = None,
    status: int = 200,
) -> Response:
    directory = await read(request, accounts.staff_directory)
    return render(
        request,
        "staff/accounts.html",
        {
            "me": staff_of(request),
            "accounts": directory.accounts,
            "stores": directory.stores,
            "form": form or {"email": "", "name": "", "role": "agent", "store": ""},
            "error": error,
            "error_message": gettext(error.message) if error else None,
            "created": created,
            "notice": notice,
            "now": portal_of(request).clock(),
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
    try:
        created = await write(
            request,
            accounts.add_staff,
            email=values["email"],
            name=values["name"],
            role=values["role"],
            store_code=values["store"] or None,
            actor=me.actor,
        )
    except accounts.StaffAccountError as exc:
        return await _accounts_page(request, form=values, error=exc, status=400)
    # The one-time password is in this response only: never in a URL, a log or the database.
    return await _accounts_page(request, created=created, status=201)


async def _account_action(
    request: Request, done: str, change: Callable[..., accounts.StaffSummary], **options: bool
) -> Response:
    me = require_role(request)
    try:
        staff_id = int(request.path_params["staff_id"])
    except ValueError:
        staff_id = 0  # no account has it: the service's refusal is the 404
    try:
        await write(request, change, staff_id=staff_id, actor=me.actor, **options)
    except accounts.StaffAccountError as exc:
        return await _accounts_page(request, error=exc, status=409 if staff_id else 404)
    return redirect(request, f"/staff/accounts?done={done}")


async def account_disable(request: Request) -> Response:
    return await _account_action(request, "disabled", accounts.set_active, active=False)


async def account_enable(request: Request) -> Response:
    return await _account_action(request, "enabled", accounts.set_active, active=True)


async def account_reset_totp(request: Request) -> Response:
    return await _account_action(request, "totp_reset", accounts.reset_totp)


routes = [
    Route("/staff/accounts", accounts_list, methods=["GET"], name="staff_accounts"),
    Route("/staff/accounts", accounts_add, methods=["POST"]),
    Route("/staff/accounts/{staff_id}/disable", account_disable, methods=["POST"]),
    Route("/staff/accounts/{staff_id}/enable", account_enable, methods=["POST"]),
    Route("/staff/accounts/{staff_id}/reset-totp", account_reset_totp, methods=["POST"]),
]
