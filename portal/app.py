"""The Starlette application: `create_app(settings)` wires settings, database, templates, middleware, routes."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import gc
import logging
from collections.abc import AsyncIterator, Callable
from datetime import datetime

from itsdangerous import Signer
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.routing import Mount
from starlette.staticfiles import StaticFiles
from starlette.types import Receive, Scope, Send

from portal import pages
from portal.api import views as api_views
from portal.backoffice import views as backoffice_views
from portal.consent import views as consent_views
from portal.consent.register import load_register
from portal.db import make_engine
from portal.identity import views as identity_views
from portal.mail import views as mail_views
from portal.mail.compose import EmailComposer
from portal.mail.mailbox import Mailbox, start_smtp_server
from portal.mail.worker import OutboxWorker
from portal.middleware import (
    CSRFMiddleware,
    LocaleMiddleware,
    RequestContextMiddleware,
    SecurityHeadersMiddleware,
    SessionMiddleware,
)
from portal.models import utcnow
from portal.mydata import browsing_views, processing_views, profile_views, purchase_views
from portal.mydata import views as mydata_views
from portal.portability import views as portability_views
from portal.requests import views as request_views
from portal.retailer import load_retailer
from portal.settings import Settings, load_settings
from portal.staff import access as staff_access
from portal.staff import views as staff_views
from portal.staff.sessions import StaffSessionMiddleware
from portal.templating import STATIC_DIR, make_environment
from portal.web import http_exception, render, server_error

log = logging.getLogger("portal")


async def csrf_rejected(scope: Scope, receive: Receive, send: Send) -> None:
    request = Request(scope, receive)
    response = render(request, "errors/403.html", {"status_code": 403, "csrf": True}, status_code=403)
    await response(scope, receive, send)


def create_app(settings: Settings | None = None, *, clock: Callable[[], datetime] = utcnow) -> Starlette:
    """Build the portal. `clock` is injectable so tests can move time forward."""
    settings = settings or load_settings()
    retailer = load_retailer(settings.retailer_file)
    engine = make_engine(settings.database_url)
    env = make_environment(settings=settings, retailer=retailer)
    worker = OutboxWorker(engine, settings, clock=clock)

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        controller = None
        if settings.demo:
            app.state.mailbox = Mailbox()
            controller = start_smtp_server(app.state.mailbox, port=settings.demo_smtp_port)
            log.info(
                "demo mailbox: SMTP on 127.0.0.1:%s, read it at %s/dev/mailbox", controller.port, settings.base_url
            )
            worker.settings = _with_smtp(settings, controller.port)
        task = asyncio.create_task(worker.run_forever()) if settings.run_worker else None
        # Everything built at start-up (templates, catalogues, metadata) lives as long as the process: moving it
        # out of the collector's reach removes the 45–65 ms full collections that set the pages' p99 (bench/).
        gc.collect()
        gc.freeze()
        try:
            yield
        finally:
            if task:
                worker.stop()
                try:
                    await asyncio.wait_for(asyncio.shield(task), timeout=30)
                except TimeoutError:  # a delivery stuck on a dead SMTP server: it will be retried later
                    task.cancel()
                    with contextlib.suppress(asyncio.CancelledError):
                        await task
            if controller:
                controller.stop()
            engine.dispose()

    routes = [
        *pages.routes,
        *identity_views.routes,
        *mydata_views.routes,
        *purchase_views.routes,
        *browsing_views.routes,
        *processing_views.routes,
        *consent_views.routes,
        *profile_views.routes,
        *request_views.routes,
        *portability_views.routes,
        *staff_views.routes,
        *backoffice_views.routes,
        *api_views.routes,
        Mount("/static", app=StaticFiles(directory=STATIC_DIR), name="static"),
    ]
    if settings.demo:
        routes += mail_views.routes

    middleware = [
        Middleware(SecurityHeadersMiddleware, settings=settings),
        Middleware(RequestContextMiddleware),
        Middleware(LocaleMiddleware, settings=settings),
        Middleware(SessionMiddleware, settings=settings, engine=engine, clock=clock),
        Middleware(StaffSessionMiddleware, settings=settings, engine=engine, clock=clock),
        Middleware(CSRFMiddleware, settings=settings, on_reject=csrf_rejected, exempt_prefixes=("/api/",)),
    ]
    exception_handlers = {
        HTTPException: http_exception,
        mydata_views.SignInRequired: mydata_views.sign_in_required,
        staff_access.StaffSignInRequired: staff_access.staff_sign_in_required,
        staff_access.StaffPasswordChangeRequired: staff_access.staff_password_change_required,
        staff_access.StaffForbidden: staff_access.staff_forbidden,
        500: server_error,
    }
    app = Starlette(routes=routes, middleware=middleware, exception_handlers=exception_handlers, lifespan=lifespan)  # type: ignore[arg-type]
    app.state.settings = settings
    app.state.retailer = retailer
    app.state.engine = engine
    app.state.env = env
    app.state.register = load_register(settings.purposes_file)
    env.globals["register"] = app.state.register
    app.state.composer = EmailComposer(env)
    app.state.clock = clock
    app.state.worker = worker
    app.state.worker_notify = worker.notify if settings.run_worker else (lambda: None)
    app.state.session_signer = Signer(settings.secret_key, salt="portal.session")
    return app


def _with_smtp(settings: Settings, port: int) -> Settings:
    return dataclasses.replace(
        settings, smtp_host="127.0.0.1", smtp_port=port, smtp_username="", smtp_password="", smtp_starttls=False
    )
