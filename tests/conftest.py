"""Shared fixtures: a migrated database per test (SQLite, and PostgreSQL when PORTAL_TEST_DATABASE_URL is set),
a real SMTP server (aiosmtpd) on loopback, a movable clock, the app and its TestClient."""

from __future__ import annotations

import functools
import inspect
import os
import re
import shutil
import socket
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from aiosmtpd.controller import Controller
from sqlalchemy import Engine, text
from sqlmodel import SQLModel
from starlette.testclient import TestClient

from portal.app import create_app
from portal.db import make_engine, migrate
from portal.mail.compose import EmailComposer
from portal.mail.mailbox import Mailbox, ReceivedEmail, start_smtp_server
from portal.retailer import load_retailer
from portal.settings import Settings, load_settings
from portal.web.templating import make_environment

PG_URL = os.environ.get("PORTAL_TEST_DATABASE_URL", "")
BASE_URL = "http://127.0.0.1:8000"
TEST_SECRET = "test-secret-key-that-is-long-enough-0123456789"
TIMEZONE = "Europe/Paris"  # the portal's default (settings.timezone), which services take explicitly


class Clock:
    """A clock the test moves by hand; the app, services and worker all read it."""

    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta: float) -> datetime:
        self.now += timedelta(**delta)
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock(datetime(2026, 11, 23, 10, 0, tzinfo=UTC))


# --- Databases -----------------------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One migrated SQLite file; each test gets a copy (cheaper than migrating every time)."""
    path = tmp_path_factory.mktemp("db") / "template.sqlite3"
    migrate(f"sqlite:///{path}")
    engine = make_engine(f"sqlite:///{path}")
    with engine.connect() as connection:
        connection.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
    engine.dispose()
    return path


@pytest.fixture(scope="session")
def postgres_schema() -> str:
    """A freshly migrated schema in the PostgreSQL test database."""
    engine = make_engine(PG_URL)
    with engine.begin() as connection:
        connection.execute(text("DROP SCHEMA IF EXISTS public CASCADE"))
        connection.execute(text("CREATE SCHEMA public"))
    engine.dispose()
    migrate(PG_URL)
    return PG_URL


def _truncate_postgres(url: str) -> None:
    import portal.models  # noqa: F401

    engine = make_engine(url)
    names = ", ".join(f'"{table.name}"' for table in SQLModel.metadata.sorted_tables)
    with engine.begin() as connection:
        connection.execute(text(f"TRUNCATE {names} RESTART IDENTITY CASCADE"))
    engine.dispose()


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgresql)])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A migrated, empty database: SQLite always, PostgreSQL too when PORTAL_TEST_DATABASE_URL is set."""
    if request.param == "sqlite":
        path = tmp_path / "portal.sqlite3"
        shutil.copy(request.getfixturevalue("sqlite_template"), path)
        yield f"sqlite:///{path}"
        return
    if not PG_URL:
        pytest.skip("PORTAL_TEST_DATABASE_URL is not set")
    url = request.getfixturevalue("postgres_schema")
    _truncate_postgres(url)
    yield url
    _truncate_postgres(url)


@pytest.fixture
def engine(database_url: str) -> Iterator[Engine]:
    engine = make_engine(database_url)
    yield engine
    engine.dispose()


# --- Email -----------------------------------------------------------------------------------------------------


class SMTPServer:
    """A real aiosmtpd server on 127.0.0.1 and what it received."""

    def __init__(self) -> None:
        self.mailbox = Mailbox()
        self.controller: Controller | None = None
        self.port = 0

    def start(self, sock: socket.socket | None = None) -> SMTPServer:
        """Listen on a free port, or on `sock` (from `reserve_port`) when the test already gave its port out."""
        self.controller = start_smtp_server(self.mailbox, sock=sock)
        self.port = self.controller.port
        return self

    def stop(self) -> None:
        if self.controller:
            self.controller.stop()
            self.controller = None

    @property
    def messages(self) -> list[ReceivedEmail]:
        return list(self.mailbox.messages)

    def wait_for(self, to: str, *, count: int = 1, timeout: float = 10.0) -> ReceivedEmail:
        """The newest message to `to`, once at least `count` arrived for that address."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            mine = [m for m in self.mailbox.messages if to.lower() in (r.lower() for r in m.recipients)]
            if len(mine) >= count:
                return mine[0]
            time.sleep(0.02)
        raise AssertionError(f"no email for {to} within {timeout}s; received: {[m.recipients for m in self.messages]}")


@pytest.fixture
def smtp() -> Iterator[SMTPServer]:
    server = SMTPServer().start()
    yield server
    server.stop()


@pytest.fixture
def reserved_port() -> Iterator[socket.socket]:
    """A socket bound to a free port on 127.0.0.1 but not listening yet: connections to the port are refused until
    the test hands the socket to a server, and no other process can take the port meanwhile (which probing for a
    free port, closing the probe and binding again later could not promise)."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    yield sock
    sock.close()  # a no-op once the server it was handed to has closed it


def port_of(sock: socket.socket) -> int:
    return int(sock.getsockname()[1])


def link_in(email: ReceivedEmail) -> str:
    match = re.search(r"https?://\S+/signin/link\?token=[\w-]+", email.text)
    assert match, email.text
    return match.group(0)


def code_in(email: ReceivedEmail) -> str:
    match = re.search(r"\b(\d{6})\b", email.text)
    assert match, email.text
    return match.group(1)


# --- App -------------------------------------------------------------------------------------------------------


def make_settings(database_url: str, smtp_port: int, **overrides: object) -> Settings:
    values: dict[str, object] = {
        "environment": "test",
        "secret_key": TEST_SECRET,
        "base_url": BASE_URL,
        "database_url": database_url,
        "smtp_host": "127.0.0.1",
        "smtp_port": smtp_port,
        "mail_from": "Maison Aubépine <no-reply@maison-aubepine.example>",
    }
    return load_settings(environ={}, **{**values, **overrides})


@pytest.fixture
def settings(database_url: str, smtp: SMTPServer) -> Settings:
    return make_settings(database_url, smtp.port)


@pytest.fixture
def app(settings: Settings, clock: Clock):  # type: ignore[no-untyped-def]
    return create_app(settings, clock=clock)


@pytest.fixture
def client(app) -> Iterator[TestClient]:  # type: ignore[no-untyped-def]
    with TestClient(app, base_url="http://testserver") as client:
        yield client


@functools.cache
def email_composer() -> EmailComposer:
    """The app's email composer, for tests that drive services directly (every emailing service requires one)."""
    settings = make_settings("sqlite://", smtp_port=1)
    return EmailComposer(make_environment(settings=settings, retailer=load_retailer(settings.retailer_file)))


def step_collaborators(step: Callable[..., object], *, composer: EmailComposer, timezone: str) -> dict[str, object]:
    """Of the composer and the time zone, what the workflow `step` takes (only the steps that tell the customer take
    a composer, and it is required there)."""
    accepts = inspect.signature(step).parameters
    offered = {"composer": composer, "timezone": timezone}
    return {name: value for name, value in offered.items() if name in accepts}


def csrf_from(html: str) -> str:
    match = re.search(r'name="csrf_token" value="([^"]+)"', html)
    assert match, "no CSRF token in the page"
    return match.group(1)


def local_path(url: str) -> str:
    return url.removeprefix(BASE_URL)
