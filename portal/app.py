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
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Mount
from starlette.staticfiles import StaticFiles
from starlette.types import Receive, Scope, Send

from portal.api import errors as api_errors
from portal.api import views as api_views
from portal.backoffice import accounts_views
from portal.backoffice import views as backoffice_views
from portal.banner import report_views as banner_report_views
from portal.banner import views as banner_views
from portal.banner.bundle import build_bundle
from portal.banner.cors import BannerCorsMiddleware
from portal.browsing import views as browsing_views
from portal.consent import views as consent_views
from portal.consent.register import load_register
from portal.db import make_engine, on_outbox_commit, read_only_engine
from portal.identity import guards, staff_views
from portal.identity import views as identity_views
from portal.identity.staff_sessions import StaffSessionMiddleware
from portal.incidents import views as incident_views
from portal.mail import views as mail_views
from portal.mail.compose import EmailComposer
from portal.mail.mailbox import Mailbox, start_smtp_server
from portal.models import utcnow
from portal.mydata import views as mydata_views
from portal.outbox.worker import OutboxWorker
from portal.portability import views as portability_views
from portal.profile import views as profile_views
from portal.purchases import views as purchase_views
from portal.requests import views as request_views
from portal.retailer import load_retailer
from portal.retention import views as retention_views
from portal.settings import Settings, load_settings
from portal.store import views as store_views
from portal.web import pages
from portal.web.errors import error_handlers
from portal.web.input_guard import InputGuardMiddleware
from portal.web.middleware import (
    CSRFMiddleware,
    LocaleMiddleware,
    RequestContextMiddleware,
    SecurityHeadersMiddleware,
    SessionMiddleware,
)
from portal.web.render import render
from portal.web.routing import SegmentRouter
from portal.web.state import Portal
from portal.web.templating import STATIC_DIR, make_environment

log = logging.getLogger("portal")
# Where programs, not people, are answered: errors are JSON (the retailer API, the website banner's endpoints).
JSON_PREFIXES = ("/api/", "/consent/v1/")


async def input_rejected(scope: Scope, receive: Receive, send: Send) -> None:
    request = Request(scope, receive)
    response: Response
    if scope["path"].startswith(JSON_PREFIXES):
        response = api_errors.problem_response(
            api_errors.ApiProblem(400, code="control_characters", message=api_errors.CONTROL_CHARACTERS)
        )
    else:
        response = render(request, "errors/bad_characters.html", {"status_code": 400}, status_code=400)
    await response(scope, receive, send)


async def csrf_rejected(scope: Scope, receive: Receive, send: Send) -> None:
    request = Request(scope, receive)
    response = render(request, "errors/403.html", {"status_code": 403, "csrf": True}, status_code=403)
    await response(scope, receive, send)


def create_app(settings: Settings | None = None, *, clock: Callable[[], datetime] = utcnow) -> Starlette:
    """Build the portal. `clock` is injectable so tests can move time forward."""
    settings = settings or load_settings()
    retailer = load_retailer(settings.retailer_file)
    engine = make_engine(settings.database_url)
    read_engine = read_only_engine(engine)
    env = make_environment(settings=settings, retailer=retailer)
    worker = OutboxWorker(engine, settings, clock=clock)

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        controller = None
        if settings.demo:
            app.state.portal.mailbox = Mailbox()
            controller = start_smtp_server(app.state.portal.mailbox, port=settings.demo_smtp_port)
            log.info(
                "demo mailbox: SMTP on 127.0.0.1:%s, read it at %s/dev/mailbox", controller.port, settings.base_url
            )
            worker.settings = _with_smtp(settings, controller.port)
        task, stop_waking = None, None
        if settings.run_worker:
            task = asyncio.create_task(worker.run_forever())
            # Whatever commits outbox rows wakes the worker at once (from a thread too, on PostgreSQL).
            loop = asyncio.get_running_loop()
            stop_waking = on_outbox_commit(engine, lambda: loop.call_soon_threadsafe(worker.notify))
        # Everything built at start-up (templates, catalogues, metadata) lives as long as the process: moving it
        # out of the collector's reach removes the 45–65 ms full collections that set the pages' p99 (bench/).
        gc.collect()
        gc.freeze()
        try:
            yield
        finally:
            if stop_waking:
                stop_waking()
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
            app.state.portal.dispose()

    routes = [
        *pages.routes,
        *identity_views.routes,
        *mydata_views.routes,
        *purchase_views.routes,
        *browsing_views.routes,
        *consent_views.routes,
        *profile_views.routes,
        *request_views.routes,
        *portability_views.routes,
        *staff_views.routes,
        *store_views.routes,
        *accounts_views.routes,
        *backoffice_views.routes,
        *retention_views.routes,
        *incident_views.routes,
        *api_views.routes,
        *banner_views.routes,
        *banner_report_views.routes,
        Mount("/static", app=StaticFiles(directory=STATIC_DIR), name="static"),
    ]
    if settings.demo:
        routes += mail_views.routes

    middleware = [
        Middleware(SecurityHeadersMiddleware, settings=settings),
        Middleware(RequestContextMiddleware),
        Middleware(LocaleMiddleware, settings=settings),
        Middleware(BannerCorsMiddleware, origins=settings.banner_origins),
        Middleware(SessionMiddleware, settings=settings, engine=engine, clock=clock),
        Middleware(StaffSessionMiddleware, settings=settings, engine=engine, clock=clock),
        Middleware(
            CSRFMiddleware,
            settings=settings,
            on_reject=csrf_rejected,
            exempt_prefixes=("/api/",),
            cookieless_prefixes=("/consent/v1/",),
        ),
        Middleware(InputGuardMiddleware, on_reject=input_rejected),
    ]
    exception_handlers = {
        **error_handlers(json_prefix=JSON_PREFIXES, json_error=api_errors.status_response),
        guards.SignInRequired: guards.sign_in_required,
        guards.StaffSignInRequired: guards.staff_sign_in_required,
        guards.StaffPasswordChangeRequired: guards.staff_password_change_required,
        guards.StaffForbidden: guards.staff_forbidden,
    }
    app = Starlette(middleware=middleware, exception_handlers=exception_handlers)
    app.router = SegmentRouter(routes, lifespan=lifespan)  # Starlette's Router, trying only the routes a path allows
    register = load_register(settings.purposes_file)
    env.globals["register"] = register
    app.state.portal = Portal(
        settings=settings,
        retailer=retailer,
        engine=engine,
        read_engine=read_engine,
        env=env,
        register=register,
        composer=EmailComposer(env),
        clock=clock,
        session_signer=Signer(settings.secret_key, salt="portal.session"),
    )
    app.state.worker = worker
    app.state.banner = build_bundle(
        base_url=settings.base_url,
        register=register,
        purposes=settings.banner_purposes,
        retailer=retailer.name,
        default_locale=settings.default_locale,
    )
    return app


def _with_smtp(settings: Settings, port: int) -> Settings:
    return dataclasses.replace(
        settings, smtp_host="127.0.0.1", smtp_port=port, smtp_username="", smtp_password="", smtp_starttls=False
    )
