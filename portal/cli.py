"""`portal …` on the command line: serve, demo, migrate, worker, catalog."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import dataclasses
import logging
import sys
from collections.abc import Sequence

from portal.consent.register import RegisterError
from portal.retailer import RetailerConfigError
from portal.settings import PROJECT_ROOT, SettingsError, load_settings

DEMO_DATABASE_URL = f"sqlite:///{PROJECT_ROOT / 'var' / 'demo.sqlite3'}"


def _configure_logging(level: str) -> None:
    logging.basicConfig(level=level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")


def _serve(app: object, host: str, port: int, log_level: str) -> None:
    import uvicorn

    # uvicorn's access log would print query strings, and sign-in links carry their token there: our
    # RequestContextMiddleware logs each request without it.
    uvicorn.run(app, host=host, port=port, access_log=False, log_level=log_level, proxy_headers=True)  # type: ignore[arg-type]


def cmd_migrate(args: argparse.Namespace) -> int:
    from portal.db import migrate

    settings = load_settings()
    migrate(settings.database_url)
    print("Database schema is up to date.")
    return 0


def cmd_serve(args: argparse.Namespace) -> int:
    from portal.app import create_app

    settings = load_settings()
    _configure_logging(settings.log_level)
    _serve(create_app(settings), args.host, args.port, settings.log_level)
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    from portal.app import create_app
    from portal.db import make_engine, migrate
    from portal.demo.dataset import DEMO_CUSTOMERS, ensure_demo_data

    base = load_settings(environment="demo", base_url=f"http://{args.host}:{args.port}")
    if base.database_url == load_settings(environ={}).database_url:
        base = dataclasses.replace(base, database_url=DEMO_DATABASE_URL)
    _configure_logging(base.log_level)
    migrate(base.database_url)
    engine = make_engine(base.database_url)
    summary = ensure_demo_data(engine, reset=args.reset)
    engine.dispose()
    print(summary.describe(), flush=True)
    print(
        f"\nPortal: {base.base_url}/   Mailbox: {base.base_url}/dev/mailbox\n"
        f"Sign in as the heavy customer {DEMO_CUSTOMERS[0]} or as {DEMO_CUSTOMERS[1]}, {DEMO_CUSTOMERS[2]}.\n",
        flush=True,
    )
    _serve(create_app(base), args.host, args.port, base.log_level)
    return 0


def cmd_worker(args: argparse.Namespace) -> int:
    from portal.db import make_engine
    from portal.mail.worker import OutboxWorker

    settings = load_settings()
    _configure_logging(settings.log_level)
    worker = OutboxWorker(make_engine(settings.database_url), settings)
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(worker.run_forever())
    return 0


def cmd_catalog(args: argparse.Namespace) -> int:
    from portal import catalogs

    if args.action == "update":
        catalogs.update_catalogs()
        print("messages.pot and the fr/en catalogues updated; translate the new entries.")
        return 0
    problems = catalogs.check_catalogs()
    for problem in problems:
        print(problem)
    return 1 if problems else 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="portal", description="Customer self-service privacy portal.")
    commands = parser.add_subparsers(dest="command", required=True)

    def with_address(sub: argparse.ArgumentParser) -> None:
        sub.add_argument("--host", default="127.0.0.1", help="interface to listen on (default 127.0.0.1)")
        sub.add_argument("--port", type=int, default=8000, help="port to listen on (default 8000)")

    serve = commands.add_parser("serve", help="serve the portal (settings from PORTAL_* variables)")
    with_address(serve)
    serve.set_defaults(handler=cmd_serve)

    demo = commands.add_parser("demo", help="create or refresh the demo database and serve it with a mailbox")
    with_address(demo)
    demo.add_argument("--reset", action="store_true", help="regenerate the demo dataset from scratch")
    demo.set_defaults(handler=cmd_demo)

    migrate = commands.add_parser("migrate", help="apply database migrations (Alembic)")
    migrate.set_defaults(handler=cmd_migrate)

    worker = commands.add_parser("worker", help="deliver outbox messages (emails, webhooks) in this process")
    worker.set_defaults(handler=cmd_worker)

    catalog = commands.add_parser("catalog", help="translation catalogues: update from sources, or check")
    catalog.add_argument("action", choices=["update", "check"])
    catalog.set_defaults(handler=cmd_catalog)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return int(args.handler(args))
    except (SettingsError, RetailerConfigError, RegisterError) as exc:
        print(f"Configuration error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
