"""The demo mailbox: a real SMTP server (aiosmtpd) on loopback that keeps what it receives in memory."""

from __future__ import annotations

import collections
import dataclasses
import itertools
import socket
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


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def start_smtp_server(mailbox: Mailbox, *, port: int) -> Controller:
    """Start an SMTP server on 127.0.0.1:`port` (0 picks a free port) feeding `mailbox`."""
    if port == 0:
        port = free_port()
    controller = Controller(mailbox, hostname="127.0.0.1", port=port)
    controller.start()
    return controller
