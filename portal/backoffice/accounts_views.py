"""Staff accounts (/staff/accounts, DPO only): list, add, disable, enable, forget an authenticator."""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from portal.db import in_transaction, run_db, transaction
from portal.i18n import gettext
from portal.identity import staff_accounts as accounts
from portal.identity.guards import require_role, staff_of
from portal.web.render import redirect, render
from portal.web.state import portal_of, request_id_of


async def _accounts_page(
    request: Request,
    *,
    form: dict[str, str] | None = None,
    error: accounts.StaffAccountError | None = None,
    created: accounts.NewStaff | None = None,
    notice: str | None = None,
    status: int = 200,
) -> Response:
    state = portal_of(request)

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
    state = portal_of(request)
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
    state = portal_of(request)

    def run(session):  # type: ignore[no-untyped-def]
        common: dict[str, Any] = {
            "staff_id": staff_id,
            "actor": me.actor,
            "now": state.clock(),
            "request_id": request_id_of(request),
        }
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
    Route("/staff/accounts", accounts_list, methods=["GET"], name="staff_accounts"),
    Route("/staff/accounts", accounts_add, methods=["POST"]),
    Route("/staff/accounts/{staff_id}/disable", account_disable, methods=["POST"]),
    Route("/staff/accounts/{staff_id}/enable", account_enable, methods=["POST"]),
    Route("/staff/accounts/{staff_id}/reset-totp", account_reset_totp, methods=["POST"]),
]
