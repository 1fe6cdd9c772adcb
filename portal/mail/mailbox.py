"""The demo mailbox: a real SMTP server (aiosmtpd) on loopback that keeps what it receives in memory."""

from __future__ import annotations

import asyncio
import collections
import dataclasses
import itertools
import logging
import socket
from collections.abc import Awaitable
from datetime import datetime
from email import message_from_bytes, policy
from email.message import EmailMessage

from aiosmtpd.controller import Controller

from portal.models import utcnow


@dataclasses.dataclass(frozen=True)
class ReceivedEmail:
    id: int
    received_at: datetime
    sender: str
    recipients: tuple[str, ...]
    subject: str
    text: str
    html: str


def parse_email(raw: bytes, *, id: int = 0, sender: str = "", recipients: tuple[str, ...] = ()) -> ReceivedEmail:
    message = message_from_bytes(raw, policy=policy.default)
    assert isinstance(message, EmailMessage)
    text_part = message.get_body(preferencelist=("plain",))
    html_part = message.get_body(preferencelist=("html",))
    return ReceivedEmail(
        id=id,
        received_at=utcnow(),
        sender=sender,
        recipients=recipients or tuple(str(message["To"]).split(",")),
        subject=str(message["Subject"]),
        text=text_part.get_content() if text_part else "",
        html=html_part.get_content() if html_part else "",
    )


class Mailbox:
    """aiosmtpd handler that keeps the most recent messages, newest first."""

    def __init__(self, keep: int = 500) -> None:
        self.messages: collections.deque[ReceivedEmail] = collections.deque(maxlen=keep)
        self._ids = itertools.count(1)

    async def handle_DATA(self, server, session, envelope) -> str:  # type: ignore[no-untyped-def]  # noqa: N802
        self.messages.appendleft(
            parse_email(
                envelope.original_content or envelope.content,
                id=next(self._ids),
                sender=envelope.mail_from,
                recipients=tuple(envelope.rcpt_tos),
            )
        )
        return "250 Message accepted for delivery"

    def get(self, id: int) -> ReceivedEmail | None:
        return next((m for m in self.messages if m.id == id), None)


class _BoundController(Controller):
    """An aiosmtpd controller serving a socket bound beforehand.

    aiosmtpd binds its own socket, and with port 0 it would then open its start-up connection to port 0. Binding
    first lets the kernel choose a free port that no other process can take before the server listens on it.
    """

    def __init__(self, handler: object, sock: socket.socket) -> None:
        host, port = sock.getsockname()[:2]
        super().__init__(handler, hostname=host, port=port)
        self._sock = sock

    def _create_server(self) -> Awaitable[asyncio.AbstractServer]:
        return self.loop.create_server(self._factory_invoker, sock=self._sock, ssl=self.ssl_context)


def start_smtp_server(mailbox: Mailbox, *, port: int = 0, sock: socket.socket | None = None) -> Controller:
    """Start an SMTP server feeding `mailbox` on 127.0.0.1:`port` (0 picks a free port), or on `sock`, a socket
    already bound (listening or not). `controller.port` is the port it listens on."""
    if sock is None:
        sock = socket.create_server(("127.0.0.1", port))  # SO_REUSEADDR: the demo restarts on its fixed port at once
    # aiosmtpd logs each sender and recipient at INFO: customers' addresses have no place in the log.
    logging.getLogger("mail.log").setLevel(logging.WARNING)
    controller = _BoundController(mailbox, sock)
    controller.start()
    return controller
