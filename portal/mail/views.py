"""/dev/mailbox: what the demo SMTP server received, so magic links can be followed. Demo mode only."""

from __future__ import annotations

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import HTMLResponse, Response
from starlette.routing import Route

from portal.mail.mailbox import Mailbox
from portal.web.render import render
from portal.web.state import portal_of


def _mailbox(request: Request) -> Mailbox:
    mailbox = portal_of(request).mailbox
    if mailbox is None:
        raise HTTPException(404)
    return mailbox


async def mailbox_index(request: Request) -> Response:
    return render(request, "dev/mailbox.html", {"messages": list(_mailbox(request).messages)})


async def mailbox_message(request: Request) -> Response:
    message = _mailbox(request).get(request.path_params["id"])
    if message is None:
        raise HTTPException(404)
    return render(request, "dev/message.html", {"message": message})


async def mailbox_html(request: Request) -> Response:
    """The HTML part as its own document, with a CSP that lets it show but not run anything."""
    message = _mailbox(request).get(request.path_params["id"])
    if message is None:
        raise HTTPException(404)
    return HTMLResponse(
        message.html,
        headers={"content-security-policy": "default-src 'none'; style-src 'unsafe-inline'; img-src 'self' data:"},
    )


routes = [
    Route("/dev/mailbox", mailbox_index, methods=["GET"], name="mailbox"),
    Route("/dev/mailbox/{id:int}", mailbox_message, methods=["GET"], name="mailbox_message"),
    Route("/dev/mailbox/{id:int}.html", mailbox_html, methods=["GET"], name="mailbox_html"),
]
