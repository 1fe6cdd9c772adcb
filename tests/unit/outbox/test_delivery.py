"""Email delivery under faults: one Message-ID for every retry, expired sign-in emails dropped, the queue retried at
once when the SMTP server comes back, and one hung connection not holding the others back."""

from __future__ import annotations

import asyncio
import socket
import threading

from sqlalchemy import select

from portal.db import transaction
from portal.mail.compose import ComposedEmail
from portal.models import OutboxMessage
from portal.outbox import worker as outbox
from portal.outbox.enqueue import enqueue_email
from portal.outbox.mime import build_mime
from tests.conftest import SMTPServer, make_settings, port_of


def queue(engine, clock, topic: str = "request-received", to: str = "camille@example.org") -> int:  # type: ignore[no-untyped-def]
    email = ComposedEmail(to=to, subject="Votre demande", text="Bonjour", html="<p>Bonjour</p>")
    with transaction(engine) as session:
        return enqueue_email(session, email=email, topic=topic, now=clock())


def rows(engine) -> dict[int, OutboxMessage]:  # type: ignore[no-untyped-def]
    with transaction(engine) as session:
        return {m.id: m for m in session.scalars(select(OutboxMessage))}


def test_every_retry_of_an_email_carries_the_message_id_drawn_when_it_was_queued(engine, clock) -> None:
    queue(engine, clock)
    (message,) = rows(engine).values()
    first = build_mime(message.payload, sender="Maison <no-reply@maison.example>")["Message-ID"]
    again = build_mime(message.payload, sender="Maison <no-reply@maison.example>")["Message-ID"]
    assert first == again == f"<{message.payload['message_key']}@maison.example>"


def test_a_sign_in_email_whose_link_expired_before_it_could_leave_is_dropped(
    database_url, engine, clock, smtp: SMTPServer
) -> None:
    settings = make_settings(database_url, smtp.port)
    late = queue(engine, clock, topic="sign-in", to="late@example.org")
    clock.advance(minutes=11)  # the SMTP server was away longer than a link lives (10 minutes)
    fresh = queue(engine, clock, topic="sign-in", to="fresh@example.org")
    worker = outbox.OutboxWorker(engine, settings, clock=clock)
    assert asyncio.run(worker.deliver_due(clock())) == 1
    smtp.wait_for("fresh@example.org")
    held = rows(engine)
    assert held[late].last_error == outbox.EXPIRED and held[late].payload is None and held[late].sent_at
    assert held[fresh].last_error is None
    assert [m.recipients for m in smtp.messages] == [("fresh@example.org",)]


def test_when_the_server_comes_back_the_waiting_queue_goes_at_once(database_url, engine, clock, reserved_port) -> None:
    settings = make_settings(database_url, port_of(reserved_port))
    worker = outbox.OutboxWorker(engine, settings, clock=clock)
    for n in range(3):
        queue(engine, clock, to=f"c{n}@example.org")
        asyncio.run(worker.deliver_due(clock()))  # refused: nobody listens yet
        clock.advance(seconds=30)
    assert all(m.next_attempt_at > clock() or m.attempts for m in rows(engine).values())
    smtp = SMTPServer()
    smtp.start(reserved_port)
    try:
        clock.advance(minutes=2)  # the oldest is due again; the others still wait for their backoff
        asyncio.run(worker.deliver_due(clock()))
        asyncio.run(worker.deliver_due(clock()))  # no time passes: the others were rescheduled for now
        assert sorted(r for m in smtp.messages for r in m.recipients) == [f"c{n}@example.org" for n in range(3)]
    finally:
        smtp.stop()


def test_a_hung_connection_does_not_hold_the_other_emails(
    database_url, engine, clock, smtp: SMTPServer, monkeypatch
) -> None:
    """A server that accepts the connection and never answers: its delivery times out on its own while the others,
    to a working server, leave at once (deliveries run side by side)."""
    hung = socket.create_server(("127.0.0.1", 0))
    stop = threading.Event()

    def hold() -> None:
        connection, _ = hung.accept()
        stop.wait()
        connection.close()

    threading.Thread(target=hold, daemon=True).start()
    monkeypatch.setattr(outbox, "DELIVERY_TIMEOUT", 2)
    settings = make_settings(database_url, smtp.port)
    stuck = queue(engine, clock, to="stuck@example.org")
    others = [queue(engine, clock, to=f"c{n}@example.org") for n in range(3)]
    worker = outbox.OutboxWorker(engine, settings, clock=clock)
    real_deliver = worker.deliver

    async def deliver(message):  # type: ignore[no-untyped-def]
        if message.id == stuck:  # this one's server hangs
            reader, writer = await asyncio.open_connection("127.0.0.1", port_of(hung))
            try:
                await reader.read(1)  # never answered
            finally:
                writer.close()
        await real_deliver(message)

    monkeypatch.setattr(worker, "deliver", deliver)
    try:
        assert asyncio.run(worker.deliver_due(clock())) == 3
        held = rows(engine)
        assert all(held[i].sent_at for i in others)
        assert held[stuck].sent_at is None and "Timeout" in (held[stuck].last_error or "")
    finally:
        stop.set()
        hung.close()
