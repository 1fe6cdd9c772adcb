"""The outbox worker: claims due messages, delivers them, retries with backoff. Nothing is dropped."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from collections.abc import Callable
from datetime import datetime, timedelta
from email.utils import parseaddr

import aiosmtplib
import httpx
from sqlalchemy import Engine, or_, select, update

from portal.db import transaction
from portal.models import OutboxMessage, WebhookEndpoint, utcnow
from portal.outbox.housekeeping import purge_sign_in_records
from portal.outbox.mime import mime_bytes
from portal.outbox.signing import event_body, signed_headers
from portal.portability.service import close_abandoned_downloads
from portal.settings import Settings

log = logging.getLogger("portal.outbox")
LEASE = timedelta(minutes=2)
BATCH = 20
MAX_BACKOFF = timedelta(hours=1)
TRANSPORTS = ("email", "webhook")
WEBHOOK_TIMEOUT = 10.0  # seconds; a slow receiver is retried later rather than holding up the emails behind it
NO_SUBSCRIBER = "no active endpoint subscribed to this topic"


class WebhookRejected(Exception):
    """The receiver answered, but not with a 2xx (redirects included: they are not followed)."""


# Per SMTP operation, and for a whole delivery; deliveries run side by side, at most this many at once.
SMTP_TIMEOUT = 10
DELIVERY_TIMEOUT = 30
CONCURRENCY = 8
# A sign-in email whose link expired before it could leave is dropped (recorded with this error), not sent.
SIGN_IN_TOPICS = frozenset({"sign-in", "sign-in-unknown"})
EXPIRED = "expired before delivery: not sent"


class EndpointUnavailable(Exception):
    """The endpoint was disabled (or removed) after the delivery was claimed; it waits for it."""


# Deliveries whose endpoint is active; those of a disabled endpoint stay in the outbox, unclaimed, until re-enabled.
_ACTIVE_ENDPOINTS = select(WebhookEndpoint.id).where(WebhookEndpoint.disabled_at.is_(None))


def backoff(attempts: int) -> timedelta:
    """10 s, 20 s, 40 s … capped at an hour, with jitter so that workers do not retry in lockstep."""
    seconds = min(10 * 2 ** max(attempts - 1, 0), MAX_BACKOFF.total_seconds())
    return timedelta(seconds=seconds * random.uniform(0.9, 1.1))


DELIVERY_FAILURES = (
    TimeoutError,
    OSError,
    ValueError,
    aiosmtplib.SMTPException,
    httpx.HTTPError,  # timeouts, refused connections, broken responses
    WebhookRejected,
    EndpointUnavailable,
)


class OutboxWorker:
    """Delivers what the outbox holds. One runs in the web process by default; `portal worker` runs more."""

    def __init__(self, engine: Engine, settings: Settings, *, clock: Callable[[], datetime] = utcnow) -> None:
        self.engine = engine
        self.settings = settings
        self.clock = clock
        self.wakeup = asyncio.Event()
        self._last_purge: datetime | None = None
        self._stopping = False
        self._http: httpx.AsyncClient | None = None
        self._http_loop: asyncio.AbstractEventLoop | None = None

    def claim(self, now: datetime) -> list[OutboxMessage]:
        """Lease a batch of due messages; on PostgreSQL, SKIP LOCKED keeps two workers off the same rows."""
        with transaction(self.engine) as session:
            query = (
                select(OutboxMessage)
                .where(
                    OutboxMessage.kind.in_(TRANSPORTS),
                    # A webhook event (no endpoint) is fanned out, not delivered.
                    or_(OutboxMessage.kind != "webhook", OutboxMessage.endpoint_id.in_(_ACTIVE_ENDPOINTS)),
                    OutboxMessage.sent_at.is_(None),
                    OutboxMessage.next_attempt_at <= now,
                    or_(OutboxMessage.locked_until.is_(None), OutboxMessage.locked_until < now),
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

    def fan_out(self, now: datetime) -> int:
        """Turn due webhook events into one delivery per active endpoint subscribed to their topic; returns how many.

        All in one transaction: the deliveries exist exactly when their event is marked sent.
        """
        with transaction(self.engine) as session:
            query = (
                select(OutboxMessage)
                .where(
                    OutboxMessage.kind == "webhook",
                    OutboxMessage.endpoint_id.is_(None),
                    OutboxMessage.sent_at.is_(None),
                    OutboxMessage.next_attempt_at <= now,
                )
                .order_by(OutboxMessage.next_attempt_at, OutboxMessage.id)
                .limit(BATCH * 5)
            )
            if self.engine.dialect.name == "postgresql":
                query = query.with_for_update(skip_locked=True)
            events = list(session.scalars(query))
            if not events:
                return 0
            endpoints = list(session.scalars(select(WebhookEndpoint).where(WebhookEndpoint.disabled_at.is_(None))))
            created = 0
            for event in events:
                subscribers = [e for e in endpoints if event.topic in e.topic_set]
                event_id, body = (event.payload or {}).get("id"), event_body(event.payload or {})
                # One conditional update claims the event and empties it: the copies carry it from now on and, like
                # a sent email, it keeps no content. The guard keeps a second worker (SQLite has no SKIP LOCKED)
                # from fanning the same event out twice.
                claimed = session.execute(
                    update(OutboxMessage)
                    .where(OutboxMessage.id == event.id, OutboxMessage.sent_at.is_(None))
                    .values(
                        sent_at=now, locked_until=None, payload=None, last_error=None if subscribers else NO_SUBSCRIBER
                    )
                )
                if claimed.rowcount != 1:
                    continue
                for endpoint in subscribers:
                    session.add(
                        OutboxMessage(
                            kind="webhook",
                            topic=event.topic,
                            endpoint_id=endpoint.id,
                            payload={"id": event_id, "body": body},
                            created_at=now,
                            next_attempt_at=now,
                        )
                    )
                created += len(subscribers)
            return created

    def _http_client(self) -> httpx.AsyncClient:
        # One client (and connection pool) per worker; a new one if the worker is driven from another event loop.
        loop = asyncio.get_running_loop()
        if self._http is None or self._http_loop is not loop:
            self._http = httpx.AsyncClient(timeout=WEBHOOK_TIMEOUT, follow_redirects=False)
            self._http_loop = loop
        return self._http

    async def aclose(self) -> None:
        if self._http is not None and self._http_loop is asyncio.get_running_loop():
            await self._http.aclose()
        self._http = self._http_loop = None

    async def deliver_webhook(self, message: OutboxMessage, now: datetime) -> None:
        with transaction(self.engine) as session:
            endpoint = session.get(WebhookEndpoint, message.endpoint_id)
            if endpoint is None or endpoint.disabled_at is not None:
                raise EndpointUnavailable(f"endpoint {message.endpoint_id} is disabled")
            url, secret = endpoint.url, endpoint.secret
        payload = message.payload or {}
        body: str = payload["body"]
        headers = signed_headers(secret, msg_id=payload["id"], body=body, now=now)
        headers["user-agent"] = "privacy-portal-webhooks/1"
        # httpx's timeout bounds each phase (connect, write, read); this bounds the whole delivery.
        async with asyncio.timeout(WEBHOOK_TIMEOUT):
            response = await self._http_client().post(url, content=body.encode(), headers=headers)
        if not response.is_success:
            raise WebhookRejected(f"HTTP {response.status_code}")

    async def deliver(self, message: OutboxMessage) -> None:
        if message.kind == "webhook":
            await self.deliver_webhook(message, self.clock())
            return
        if message.kind != "email":
            raise ValueError(f"no transport for outbox kind {message.kind!r}")
        s, payload = self.settings, message.payload or {}
        # Sent as bytes flattened by our policy: given the message object, aiosmtplib would fold it with its own.
        await aiosmtplib.send(
            mime_bytes(payload, sender=s.mail_from),
            sender=parseaddr(s.mail_from)[1],
            recipients=[payload["to"]],
            hostname=s.smtp_host,
            port=s.smtp_port,
            username=s.smtp_username or None,
            password=s.smtp_password or None,
            start_tls=s.smtp_starttls,
            timeout=SMTP_TIMEOUT,
        )

    def _record(self, message_id: int, *, now: datetime, error: str | None, attempts: int) -> None:
        with transaction(self.engine) as session:
            values: dict[str, object]
            if error is None:
                # Sign-in links must not outlive their delivery in the database.
                values = {"sent_at": now, "payload": None, "locked_until": None, "last_error": None}
                if attempts > 1:
                    # The server is back: what waits for its backoff goes now, not up to an hour later (a sign-in
                    # email would otherwise arrive with its link already expired).
                    session.execute(
                        update(OutboxMessage)
                        .where(
                            OutboxMessage.kind == "email",
                            OutboxMessage.sent_at.is_(None),
                            OutboxMessage.attempts > 0,
                            OutboxMessage.next_attempt_at > now,
                        )
                        .values(next_attempt_at=now)
                    )
            elif error == EXPIRED:
                values = {"sent_at": now, "payload": None, "locked_until": None, "last_error": EXPIRED}
            else:
                values = {"next_attempt_at": now + backoff(attempts), "locked_until": None, "last_error": error[:500]}
            session.execute(
                update(OutboxMessage).where(OutboxMessage.id == message_id).values(attempts=attempts, **values)
            )

    async def deliver_due(self, now: datetime | None = None) -> int:
        """Deliver every due message once; returns how many left. Failures are rescheduled, never dropped.

        Deliveries run side by side (at most CONCURRENCY, each bounded by its own timeout): one hung connection
        no longer holds every other email behind it.
        """
        now = now or self.clock()
        self.fan_out(now)
        limit = asyncio.Semaphore(CONCURRENCY)

        async def one(message: OutboxMessage) -> bool:
            async with limit:
                return await self._deliver_one(message, now)

        results = await asyncio.gather(*(one(message) for message in self.claim(now)))
        self._maintenance(now)
        return sum(results)

    def _expired_sign_in(self, message: OutboxMessage, now: datetime) -> bool:
        """A sign-in email whose link has expired is worth nothing to its reader: it is dropped, not sent."""
        return message.topic in SIGN_IN_TOPICS and message.created_at + self.settings.login_ttl <= now

    async def _deliver_one(self, message: OutboxMessage, now: datetime) -> bool:
        if message.locked_until and self.clock() >= message.locked_until:
            # Slow deliveries ate this one's lease: another worker may hold it now, so leave it to be claimed.
            return False
        attempts = message.attempts + 1
        if message.kind == "email" and self._expired_sign_in(message, self.clock()):
            log.info("outbox message %s (%s) expired before delivery: dropped", message.id, message.topic)
            self._record(message.id, now=self.clock(), error=EXPIRED, attempts=attempts)
            return False
        try:
            async with asyncio.timeout(DELIVERY_TIMEOUT):
                await self.deliver(message)
        except DELIVERY_FAILURES as exc:
            # Never the body: an email can hold a sign-in link. Endpoint and status say enough for webhooks.
            log.warning(
                "outbox message %s (%s%s) failed, attempt %s: %s",
                message.id,
                message.topic,
                f", endpoint {message.endpoint_id}" if message.endpoint_id else "",
                attempts,
                f"{type(exc).__name__}: {exc}",
            )
            self._record(message.id, now=self.clock(), error=f"{type(exc).__name__}: {exc}", attempts=attempts)
        else:
            self._record(message.id, now=self.clock(), error=None, attempts=attempts)
            return True
        return False

    def _maintenance(self, now: datetime) -> None:
        if self._last_purge and now - self._last_purge < timedelta(minutes=10):
            return
        self._last_purge = now
        with transaction(self.engine) as session:
            purge_sign_in_records(session, now=now)
        with transaction(self.engine) as session:
            close_abandoned_downloads(session, now=now)

    def notify(self) -> None:
        """Something was just queued: deliver now rather than at the next poll."""
        self.wakeup.set()

    def stop(self) -> None:
        """Finish the message in hand, then leave `run_forever` (used at shutdown)."""
        self._stopping = True
        self.wakeup.set()

    async def run_forever(self, poll_seconds: float = 2.0) -> None:
        self._stopping = False
        try:
            await self._loop(poll_seconds)
        finally:
            await self.aclose()

    async def _loop(self, poll_seconds: float) -> None:
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
