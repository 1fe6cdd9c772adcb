"""Browser fixtures: a real SMTP server, a seeded SQLite file, the portal under uvicorn, and Chromium.

Like Datasette's browser tests: the real server runs in a subprocess on a socket bound here (port 0), we poll it
until it answers, and tear it down at the end. One server (and one SMTP server) serves the whole module; every test
gets a fresh browser context, so cookies and language choices never leak from one test to the next.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import IO

import pytest
from playwright.sync_api import Browser, BrowserContext, ConsoleMessage, Error, Page, Playwright, sync_playwright

from portal.db import make_engine, migrate
from portal.mail.mailbox import ReceivedEmail
from portal.settings import PROJECT_ROOT
from tests.conftest import TEST_SECRET, SMTPServer
from tests.factories import add_page_views, add_purchases, make_customer, make_store

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
]
ARTIFACTS = PROJECT_ROOT / "test-artifacts"

CAMILLE = "camille.durand@example.com"  # French, the heavy customer: 1,241 purchases, 3,410 pages viewed
EMMA = "emma.wilson@example.net"  # English, a light customer

STARTUP_TIMEOUT = 20.0


# --- Email -----------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def mail_server() -> Iterator[SMTPServer]:
    """A real SMTP server (aiosmtpd on 127.0.0.1) the portal delivers to; shared by the module's tests."""
    server = SMTPServer().start()
    yield server
    server.stop()


class Inbox:
    """The module's mailbox, seen one address at a time: `count` before acting, then `next` waits for a newer one."""

    def __init__(self, smtp: SMTPServer) -> None:
        self.smtp = smtp

    def count(self, to: str) -> int:
        return sum(1 for m in self.smtp.messages if to.lower() in (r.lower() for r in m.recipients))

    def next(self, to: str, *, after: int, timeout: float = 10.0) -> ReceivedEmail:
        """The newest email to `to` once more than `after` have arrived (never an older test's email)."""
        return self.smtp.wait_for(to, count=after + 1, timeout=timeout)


@pytest.fixture
def inbox(mail_server: SMTPServer) -> Inbox:
    return Inbox(mail_server)


# --- Database --------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def seeded_database(tmp_path_factory: pytest.TempPathFactory) -> str:
    """A migrated SQLite file seeded so the overview shows real counts."""
    path = tmp_path_factory.mktemp("browser-db") / "portal.sqlite3"
    url = f"sqlite:///{path}"
    migrate(url)
    engine = make_engine(url)
    try:
        camille = make_customer(engine, email=CAMILLE, first_name="Camille", preferred_language="fr")
        shops = [make_store(engine, city=city) for city in ("Lyon", "Paris", "Nantes")]
        web = make_store(engine, code="WEB", kind="web", city="")
        for shop in shops:
            add_purchases(engine, camille, shop, 3)
        # One web order a day ending in 2025, so the overview never shows a purchase in the future.
        add_purchases(engine, camille, web, 1241 - 9, start=datetime(2022, 1, 3, 9, tzinfo=UTC))
        add_page_views(engine, camille, 3410)

        emma = make_customer(
            engine,
            email=EMMA,
            first_name="Emma",
            last_name="Wilson",
            preferred_language="en",
            country="GB",
            city="Bristol",
            postal_code="BS1 4DJ",
            phone="+447700900123",
        )
        add_purchases(engine, emma, shops[1], 2)
        with engine.connect() as connection:
            connection.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
    finally:
        engine.dispose()
    return url


# --- The portal under uvicorn ----------------------------------------------------------------------------------


@dataclass
class LiveServer:
    base_url: str
    process: subprocess.Popen[bytes]
    log_path: Path

    def url(self, path: str = "/") -> str:
        return self.base_url + path

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")


def _server_env(port: int, smtp_port: int, database_url: str) -> dict[str, str]:
    env = {name: value for name, value in os.environ.items() if not name.startswith("PORTAL_")}
    env.update(
        {
            "PORTAL_ENVIRONMENT": "test",
            "PORTAL_SECRET_KEY": TEST_SECRET,
            "PORTAL_BASE_URL": f"http://127.0.0.1:{port}",
            "PORTAL_DATABASE_URL": database_url,
            "PORTAL_SMTP_HOST": "127.0.0.1",
            "PORTAL_SMTP_PORT": str(smtp_port),
            "PORTAL_LOG_LEVEL": "warning",
            "PYTHONUNBUFFERED": "1",
        }
    )
    return env


def _healthy(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=1) as response:  # noqa: S310  (our own http://127.0.0.1 URL)
            return response.status == 200
    except (urllib.error.URLError, ConnectionError, TimeoutError):
        return False


def _stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)


@pytest.fixture(scope="module")
def live_server(
    mail_server: SMTPServer, seeded_database: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[LiveServer]:
    """The portal under uvicorn in its own process (tests/browser/live_portal.py), polled on /healthz until it
    answers 200.

    The socket is bound to port 0 and listening here, then inherited by the server process: the port is known
    before the server starts and nobody else can take it meanwhile; early health checks wait in its backlog.
    """
    listening = socket.create_server(("127.0.0.1", 0))
    port = listening.getsockname()[1]
    log_path = tmp_path_factory.mktemp("browser-server") / "server.log"
    log_file: IO[bytes] = log_path.open("wb")
    with listening:  # the server process keeps its own copy
        process = subprocess.Popen(  # noqa: S603  (a fixed command line: this interpreter running the portal)
            [sys.executable, "-m", "tests.browser.live_portal", str(listening.fileno())],
            cwd=PROJECT_ROOT,
            env=_server_env(port, mail_server.port, seeded_database),
            stdin=subprocess.DEVNULL,
            stdout=log_file,
            stderr=subprocess.STDOUT,
            pass_fds=(listening.fileno(),),
        )
    server = LiveServer(base_url=f"http://127.0.0.1:{port}", process=process, log_path=log_path)
    try:
        deadline = time.monotonic() + STARTUP_TIMEOUT
        while not _healthy(server.url("/healthz")):
            if process.poll() is not None:
                pytest.fail(f"the portal exited with code {process.returncode} before answering:\n{server.log()}")
            if time.monotonic() > deadline:
                pytest.fail(f"the portal did not answer /healthz within {STARTUP_TIMEOUT:.0f}s:\n{server.log()}")
            time.sleep(0.1)
        yield server
    finally:
        _stop(process)
        log_file.close()


# --- Chromium ---------------------------------------------------------------------------------------------------


@pytest.fixture(scope="package")
def playwright() -> Iterator[Playwright]:
    with sync_playwright() as p:
        yield p


@pytest.fixture(scope="package")
def browser(playwright: Playwright) -> Iterator[Browser]:
    if not CHROMIUM.exists():
        pytest.fail(
            f"{CHROMIUM} is missing: the browser tests drive Debian's Chromium. "
            "Run `.ci/dev test`, which installs it (playwright cannot download browsers here).",
            pytrace=False,
        )
    browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, headless=True)
    yield browser
    browser.close()


class PageErrors:
    """Console messages of type "error" and uncaught exceptions (CSP violations included) of the pages it watches."""

    def __init__(self) -> None:
        self.errors: list[str] = []

    def watch(self, page: Page) -> None:
        page.on("console", self._on_console)
        page.on("pageerror", self._on_page_error)

    def _on_console(self, message: ConsoleMessage) -> None:
        if message.type == "error":
            where = message.location.get("url") or (message.page.url if message.page else "?")
            self.errors.append(f"console error on {where}: {message.text}")

    def _on_page_error(self, error: Error) -> None:
        self.errors.append(f"uncaught {error.name}: {error.message}\n{error.stack or ''}")

    def assert_none(self) -> None:
        assert self.errors == [], "\n".join(self.errors)


@dataclass
class Session:
    """One browser context and its first page, bound to the live server."""

    server: LiveServer
    context: BrowserContext
    page: Page
    errors: PageErrors

    def url(self, path: str = "/") -> str:
        return self.server.url(path)

    def goto(self, path: str) -> None:
        response = self.page.goto(self.url(path))
        assert response is not None and response.ok, f"GET {path}: {response and response.status}"


class Sessions:
    """Opens browser contexts on demand (each test may want its own locale, viewport or JavaScript setting)."""

    def __init__(self, browser: Browser, server: LiveServer) -> None:
        self.browser = browser
        self.server = server
        self.opened: list[BrowserContext] = []

    def open(self, **options: object) -> Session:
        options = {"base_url": self.server.base_url, **options}
        context = self.browser.new_context(**options)  # type: ignore[arg-type]
        context.set_default_timeout(10_000)
        self.opened.append(context)
        errors = PageErrors()
        page = context.new_page()
        errors.watch(page)
        return Session(server=self.server, context=context, page=page, errors=errors)

    def close(self) -> None:
        for context in self.opened:
            context.close()
        self.opened.clear()


@pytest.fixture
def sessions(browser: Browser, live_server: LiveServer) -> Iterator[Sessions]:
    opened = Sessions(browser, live_server)
    yield opened
    opened.close()


@pytest.fixture(scope="session")
def artifacts() -> Path:
    """test-artifacts/ at the repository root (git-ignored): screenshots worth looking at after a run."""
    ARTIFACTS.mkdir(exist_ok=True)
    return ARTIFACTS
