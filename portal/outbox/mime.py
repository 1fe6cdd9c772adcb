"""The bytes an email leaves as: headers that read the same in every mail client (RFC 2047 done strictly)."""

from __future__ import annotations

from email.header import Header
from email.message import EmailMessage
from email.policy import SMTP, EmailPolicy
from email.utils import make_msgid

# Headers that are free text (an address header keeps the standard folding, which encodes only the display name).
_FREE_TEXT = frozenset({"subject"})


class _MailPolicy(EmailPolicy):
    """policy.SMTP, except that free text with non-ASCII is written as encoded-words only.

    The standard folder mixes plain words and encoded-words and may end an encoded-word inside a word or with the
    space outside it. A client that follows RFC 2047 drops the whitespace between two encoded-words, so "a été
    modifiée" became "a étémodifiée" (or gained a space) in Thunderbird and Apple Mail. Encoding the whole value as
    encoded-words split only between characters, each carrying its own spaces, decodes to exactly the text written.
    """

    def fold_binary(self, name: str, value: str) -> bytes:
        return self.fold(name, value).encode("ascii")

    def fold(self, name: str, value: str) -> str:
        text = str(value)
        if name.lower() not in _FREE_TEXT or text.isascii():
            return super().fold(name, value)
        encoded = Header(text, "utf-8", maxlinelen=self.max_line_length, header_name=name).encode(linesep=self.linesep)
        return f"{name}: {encoded}{self.linesep}"


MAIL_POLICY = _MailPolicy().clone(**{attr: getattr(SMTP, attr) for attr in ("linesep", "max_line_length")})


def build_mime(payload: dict, *, sender: str) -> EmailMessage:
    message = EmailMessage()
    message["From"] = sender
    message["To"] = payload["to"]
    message["Subject"] = payload["subject"]
    domain = sender.rsplit("@", 1)[-1].strip(">") or "localhost"
    key = payload.get("message_key")  # drawn when queued: the same on every retry (outbox/enqueue.py)
    message["Message-ID"] = f"<{key}@{domain}>" if key else make_msgid(domain=domain)
    message.set_content(payload["text"])
    message.add_alternative(payload["html"], subtype="html")
    return message


def mime_bytes(payload: dict, *, sender: str) -> bytes:
    """The message as sent: CRLF line ends, lines of at most 78 characters, headers ASCII."""
    return build_mime(payload, sender=sender).as_bytes(policy=MAIL_POLICY)
