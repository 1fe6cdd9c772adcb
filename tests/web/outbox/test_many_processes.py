"""Several app processes and a separate `portal worker` on one PostgreSQL, hammered at once (issue 17).

Three uvicorn processes (each with its in-process outbox worker, as `portal serve` runs by default) and one
`portal worker` share a PostgreSQL database, a real SMTP server (aiosmtpd) and a real webhook receiver. Threads toggle
consents and ask for sign-in emails through all three processes at the same time. Then: the consent ledger holds
exactly the changes made and ends in the state last chosen; every email and every webhook delivery in the outbox
arrived exactly once; the per-IP sign-in limit and the per-address email limit held across the processes.
"""

from __future__ import annotations

import collections
import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from email import message_from_bytes
from pathlib import Path

import httpx
import pytest
from itsdangerous import Signer
from sqlalchemy import Engine, func, select

from portal.api.endpoints import add_endpoint
from portal.db import make_engine, transaction
from portal.identity.ratelimit import window_start
from portal.identity.sessions import open_session
from portal.mail.mailbox import Mailbox, start_smtp_server
from portal.models import ConsentEvent, OutboxMessage, RateLimit, utcnow
from portal.settings import load_settings
from tests.conftest import PG_URL, TEST_SECRET, _truncate_postgres, csrf_from
from tests.factories import make_customer
from tests.webhook_receiver import WebhookReceiver

pytestmark = pytest.mark.skipif(not PG_URL, reason="PORTAL_TEST_DATABASE_URL is not set (PostgreSQL only)")

PROJECT_ROOT = Path(__file__).resolve().parents[3]
APP_PROCESSES = 3
CUSTOMERS = 12
TOGGLES = 6  # per customer, alternately granting and withdrawing
PURPOSE = "email_newsletter"
HAMMERED = "flooded@example.com"
HAMMERED_TRIES = 24
OTHER_ADDRESSES = 11  # with the hammered address's tries: 35 sign-in requests from one IP, 30 allowed


class CountingMailbox(Mailbox):
    """The demo mailbox, also keeping every Message-ID it was sent (to tell a second delivery of one message)."""

    def __init__(self) -> None:
        super().__init__(keep=10_000)
        self.message_ids: list[tuple[str, tuple[str, ...]]] = []
        self.lock = threading.Lock()

    async def handle_DATA(self, server, session, envelope) -> str:  # type: ignore[no-untyped-def]  # noqa: N802
        message = message_from_bytes(envelope.content)
        with self.lock:
            self.message_ids.append((str(message["Message-ID"]), tuple(envelope.rcpt_tos)))
        return str(await super().handle_DATA(server, session, envelope))


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _wait_until_up(process: subprocess.Popen[bytes], url: str, log: Path) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(f"{url} exited: {log.read_text()[-2000:]}")
        try:
            if httpx.get(url + "/healthz", timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            time.sleep(0.2)
    raise AssertionError(f"{url} did not start: {log.read_text()[-2000:]}")


@pytest.fixture
def pg_engine(request: pytest.FixtureRequest) -> Iterator[Engine]:
    url = request.getfixturevalue("postgres_schema")
    _truncate_postgres(url)
    engine = make_engine(url)
    yield engine
    engine.dispose()
    _truncate_postgres(url)


@pytest.fixture
def mailbox() -> Iterator[tuple[CountingMailbox, int]]:
    box = CountingMailbox()
    controller = start_smtp_server(box)
    yield box, controller.port
    controller.stop()


@pytest.fixture
def receiver() -> Iterator[WebhookReceiver]:
    server = WebhookReceiver().start()
    yield server
    server.stop()


@pytest.fixture
def processes(pg_engine: Engine, mailbox: tuple[CountingMailbox, int], tmp_path: Path) -> Iterator[list[str]]:
    """The app processes' base URLs; a separate `portal worker` runs beside them."""
    _box, smtp_port = mailbox
    ports = [_free_port() for _ in range(APP_PROCESSES)]
    common = {
        **{k: v for k, v in os.environ.items() if not k.startswith("PORTAL_")},
        "PORTAL_ENVIRONMENT": "test",
        "PORTAL_SECRET_KEY": TEST_SECRET,
        "PORTAL_DATABASE_URL": PG_URL,
        "PORTAL_SMTP_HOST": "127.0.0.1",
        "PORTAL_SMTP_PORT": str(smtp_port),
        "PORTAL_RUN_WORKER": "true",
    }
    started: list[tuple[subprocess.Popen[bytes], Path]] = []

    def start(name: str, command: list[str], env: dict[str, str]) -> subprocess.Popen[bytes]:
        log = tmp_path / f"{name}.log"
        with log.open("wb") as out:
            process = subprocess.Popen(  # noqa: S603  (our own command line)
                command, cwd=PROJECT_ROOT, env=env, stdout=out, stderr=subprocess.STDOUT
            )
        started.append((process, log))
        return process

    try:
        urls = []
        for index, port in enumerate(ports):
            url = f"http://127.0.0.1:{port}"
            env = {**common, "PORTAL_BASE_URL": url}
            command = [sys.executable, "-m", "uvicorn", "portal.app:create_app", "--factory", "--port", str(port)]
            process = start(f"app{index}", [*command, "--log-level", "warning", "--no-access-log"], env)
            _wait_until_up(process, url, started[-1][1])
            urls.append(url)
        start("worker", [sys.executable, "-m", "portal.cli", "worker"], {**common, "PORTAL_BASE_URL": urls[0]})
        yield urls
    finally:
        for process, _log in started:
            process.terminate()
        for process, _log in started:
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                process.kill()


def _customer_cookie(engine: Engine, customer_id: int) -> str:
    settings = load_settings(environ={"PORTAL_SECRET_KEY": TEST_SECRET, "PORTAL_ENVIRONMENT": "test"})
    with transaction(engine) as session:
        raw_id = open_session(session, settings=settings, kind="customer", customer_id=customer_id, now=utcnow())
    return Signer(TEST_SECRET, salt="portal.session").sign(raw_id).decode()


def _toggle_consents(urls: list[str], cookie: str, offset: int) -> list[bool]:
    """One customer's toggles, each through the next process; returns the states chosen, in order."""
    chosen = []
    with httpx.Client(cookies={"portal_session": cookie}, timeout=30) as client:
        token = csrf_from(client.get(urls[offset % len(urls)] + "/me/consents").text)
        for turn in range(TOGGLES):
            granted = turn % 2 == 0
            response = client.post(
                urls[(offset + turn) % len(urls)] + "/me/consents",
                data={"action": "grant" if granted else "withdraw", "purpose": PURPOSE, "csrf_token": token},
            )
            assert response.status_code == 303, response.text[:500]
            chosen.append(granted)
    return chosen


def _ask_sign_in(url: str, address: str) -> int:
    with httpx.Client(timeout=30) as client:
        token = csrf_from(client.get(url + "/signin").text)
        return client.post(url + "/signin", data={"email": address, "csrf_token": token}).status_code


def _wait_for_outbox(engine: Engine, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with engine.connect() as connection:
            waiting = connection.execute(
                select(func.count()).select_from(OutboxMessage).where(OutboxMessage.sent_at.is_(None))
            ).scalar_one()
        if not waiting:
            return
        time.sleep(0.5)
    raise AssertionError(f"{waiting} outbox messages still waiting after {timeout:.0f} s")


def test_many_processes_send_each_message_once_keep_the_ledger_and_the_limits(
    pg_engine: Engine,
    mailbox: tuple[CountingMailbox, int],
    receiver: WebhookReceiver,
    processes: list[str],
) -> None:
    box, _port = mailbox
    with transaction(pg_engine) as session:
        add_endpoint(
            session, url=receiver.url, topics=["consent.changed"], require_https=False, actor="system", now=utcnow()
        )
    customers = [make_customer(pg_engine, email=f"many{n}@example.com").id for n in range(CUSTOMERS)]
    cookies = {customer_id: _customer_cookie(pg_engine, customer_id) for customer_id in customers}
    addresses = [HAMMERED] * HAMMERED_TRIES + [f"someone{n}@example.com" for n in range(OTHER_ADDRESSES)]
    first_window = window_start(datetime.now(UTC), timedelta(minutes=15))

    with ThreadPoolExecutor(max_workers=12) as pool:
        toggles = {
            customer_id: pool.submit(_toggle_consents, processes, cookies[customer_id], index)
            for index, customer_id in enumerate(customers)
        }
        sign_ins = [
            (address, pool.submit(_ask_sign_in, processes[n % len(processes)], address))
            for n, address in enumerate(addresses)
        ]
        chosen = {customer_id: future.result() for customer_id, future in toggles.items()}
        answers = [(address, future.result()) for address, future in sign_ins]
    one_window = window_start(datetime.now(UTC), timedelta(minutes=15)) == first_window

    _wait_for_outbox(pg_engine)
    time.sleep(1)  # a duplicate, if any, would come from a second worker a moment later

    # The ledger: exactly the changes made, in the order made, ending in the state last chosen.
    with pg_engine.connect() as connection:
        events = connection.execute(
            select(ConsentEvent.customer_id, ConsentEvent.granted)
            .where(ConsentEvent.purpose == PURPOSE)
            .order_by(ConsentEvent.occurred_at, ConsentEvent.id)
        ).all()
        outbox = connection.execute(select(OutboxMessage.kind, OutboxMessage.endpoint_id)).all()
        per_ip = connection.execute(
            select(RateLimit.count).where(
                RateLimit.key == "signin:ip:127.0.0.1", RateLimit.window_start == first_window
            )
        ).scalar()
    recorded: dict[int, list[bool]] = collections.defaultdict(list)
    for customer_id, granted in events:
        recorded[customer_id].append(granted)
    assert recorded == chosen

    # Every email in the outbox arrived once (its Message-ID is drawn once per outbox row).
    emails = [kind for kind, _endpoint in outbox if kind == "email"]
    ids = collections.Counter(message_id for message_id, _to in box.message_ids)
    assert len(box.message_ids) == len(emails) and all(n == 1 for n in ids.values()), ids.most_common(3)
    # Every webhook delivery arrived once: one per consent change, each event id once.
    deliveries = [endpoint for kind, endpoint in outbox if kind == "webhook" and endpoint is not None]
    received = collections.Counter(hook.headers.get("webhook-id") for hook in receiver.received)
    assert len(deliveries) == len(receiver.received) == CUSTOMERS * TOGGLES
    assert all(n == 1 for n in received.values()), received.most_common(3)

    # The limits held across the processes: 30 sign-in requests per IP, 5 emails per address, per window.
    refused = [address for address, status in answers if status == 429]
    assert {status for _address, status in answers} <= {200, 303, 429}
    to_hammered = sum(1 for _id, to in box.message_ids if HAMMERED in to)
    hammered_allowed = sum(1 for address, status in answers if address == HAMMERED and status != 429)
    if one_window:
        assert per_ip == len(addresses)
        assert len(addresses) - len(refused) == 30
        assert to_hammered == min(5, hammered_allowed)
    else:  # the run straddled two windows: each window kept its own limit
        assert len(addresses) - len(refused) <= 60 and to_hammered <= 10
    others = [address for address, status in answers if address != HAMMERED and status != 429]
    assert len(box.message_ids) == to_hammered + len(others)
