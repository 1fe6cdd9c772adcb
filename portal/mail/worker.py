"""The outbox worker: claims due messages, delivers them, retries with backoff. Nothing is dropped."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from collections.abc import Callable
from datetime import datetime, timedelta
from email.message import EmailMessage
from email.utils import make_msgid

import aiosmtplib
from sqlalchemy import Engine, or_, select, update

from portal.db import transaction
from portal.identity.housekeeping import purge_sign_in_records
from portal.models import OutboxMessage, utcnow
from portal.settings import Settings

log = logging.getLogger("portal.outbox")
LEASE = timedelta(minutes=2)
BATCH = 20
MAX_BACKOFF = timedelta(hours=1)
# Kinds this worker can deliver. Webhook events (customer.rectified, …) wait in the outbox, unclaimed and intact,
# until webhook delivery exists (the retailer API issue), rather than failing and backing off meanwhile.
TRANSPORTS = ("email",)


def backoff(attempts: int) -> timedelta:
    """10 s, 20 s, 40 s … capped at an hour, with jitter so that workers do not retry in lockstep."""
    seconds = min(10 * 2 ** max(attempts - 1, 0), MAX_BACKOFF.total_seconds())
    return timedelta(seconds=seconds * random.uniform(0.9, 1.1))


def build_mime(payload: dict, *, sender: str) -> EmailMessage:
    message = EmailMessage()
    message["From"] = sender
    message["To"] = payload["to"]
    message["Subject"] = payload["subject"]
    message["Message-ID"] = make_msgid(domain=sender.rsplit("@", 1)[-1].strip(">") or "localhost")
    message.set_content(payload["text"])
    message.add_alternative(payload["html"], subtype="html")
    return message


class OutboxWorker:
    """Delivers what the outbox holds. One runs in the web process by default; `portal worker` runs more."""

    def __init__(self, engine: Engine, settings: Settings, *, clock: Callable[[], datetime] = utcnow) -> None:
        self.engine = engine
        self.settings = settings
        self.clock = clock
        self.wakeup = asyncio.Event()
        self._last_purge: datetime | None = None
        self._stopping = False

    def claim(self, now: datetime) -> list[OutboxMessage]:
        """Lease a batch of due messages; on PostgreSQL, SKIP LOCKED keeps two workers off the same rows."""
        with transaction(self.engine) as session:
            query = (
                select(OutboxMessage)
                .where(
                    OutboxMessage.kind.in_(TRANSPORTS),  # type: ignore[attr-defined]
                    OutboxMessage.sent_at.is_(None),  # type: ignore[union-attr]
                    OutboxMessage.next_attempt_at <= now,
                    or_(OutboxMessage.locked_until.is_(None), OutboxMessage.locked_until < now),  # type: ignore[union-attr]
                )
                .order_by(OutboxMessage.next_attempt_at, OutboxMessage.id)
                .limit(BATCH)
            )
            if self.engine.dialect.name == "postgresql":
                query = query.with_for_update(skip_locked=True)
            messages = list(session.scalars(query))
            for message in messages:
                message.locked_until = now + LEASE
            return messages

    async def deliver(self, message: OutboxMessage) -> None:
        if message.kind != "email":
            raise ValueError(f"no transport for outbox kind {message.kind!r}")
        s = self.settings
        await aiosmtplib.send(
            build_mime(message.payload or {}, sender=s.mail_from),
            hostname=s.smtp_host,
            port=s.smtp_port,
            username=s.smtp_username or None,
            password=s.smtp_password or None,
            start_tls=s.smtp_starttls,
            timeout=20,
        )

    def _record(self, message_id: int, *, now: datetime, error: str | None, attempts: int) -> None:
        with transaction(self.engine) as session:
            values: dict[str, object]
            if error is None:
                # Sign-in links must not outlive their delivery in the database.
                values = {"sent_at": now, "payload": None, "locked_until": None, "last_error": None}
            else:
                values = {"next_attempt_at": now + backoff(attempts), "locked_until": None, "last_error": error[:500]}
            session.execute(
                update(OutboxMessage)
                .where(OutboxMessage.id == message_id)  # type: ignore[arg-type]
                .values(attempts=attempts, **values)
            )

    async def deliver_due(self, now: datetime | None = None) -> int:
        """Deliver every due message once; returns how many left. Failures are rescheduled, never dropped."""
        now = now or self.clock()
        sent = 0
        for message in self.claim(now):
            attempts = message.attempts + 1
            try:
                await self.deliver(message)
            except (TimeoutError, aiosmtplib.SMTPException, OSError, ValueError) as exc:
                log.warning("outbox message %s (%s) failed, attempt %s: %s", message.id, message.topic, attempts, exc)
                self._record(message.id, now=self.clock(), error=f"{type(exc).__name__}: {exc}", attempts=attempts)  # type: ignore[arg-type]
            else:
                self._record(message.id, now=self.clock(), error=None, attempts=attempts)  # type: ignore[arg-type]
                sent += 1
        self._maintenance(now)
        return sent

    def _maintenance(self, now: datetime) -> None:
        if self._last_purge and now - self._last_purge < timedelta(minutes=10):
            return
        self._last_purge = now
        with transaction(self.engine) as session:
            purge_sign_in_records(session, now=now)

    def notify(self) -> None:
        """Something was just queued: deliver now rather than at the next poll."""
        self.wakeup.set()

    def stop(self) -> None:
        """Finish the message in hand, then leave `run_forever` (used at shutdown)."""
        self._stopping = True
        self.wakeup.set()

    async def run_forever(self, poll_seconds: float = 2.0) -> None:
        self._stopping = False
        while not self._stopping:
            try:
                while await self.deliver_due() == BATCH and not self._stopping:
                    pass
            except Exception:  # the loop must survive a database hiccup; the next poll retries
                log.exception("outbox worker pass failed")
            # asyncio.timeout rather than wait_for: on Python 3.11 wait_for can swallow a cancellation that
            # arrives as the event is set, which left shutdown waiting forever.
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(poll_seconds):
                    await self.wakeup.wait()
            self.wakeup.clear()
