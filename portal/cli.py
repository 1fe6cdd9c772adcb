"""`portal …` on the command line: serve, demo, migrate, worker, webhook, catalog, import, retention."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import dataclasses
import logging
import os
import sys
from collections.abc import Sequence
from typing import Any

from portal.consent.register import RegisterError
from portal.retailer import RetailerConfigError
from portal.settings import PLACEHOLDER_SECRET, PROJECT_ROOT, Settings, SettingsError, load_settings

DEMO_DATABASE_URL = f"sqlite:///{PROJECT_ROOT / 'var' / 'demo.sqlite3'}"


def _configure_logging(level: str) -> None:
    logging.basicConfig(level=level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")


def uvicorn_options(settings: Settings) -> dict[str, object]:
    """How uvicorn serves the portal.

    No access log: uvicorn's would print query strings, and sign-in links carry their token there (our
    RequestContextMiddleware logs each request without it). X-Forwarded-For is read only from the proxies the
    settings name, so a client cannot pick the address its rate limits count under; no `server` header.
    """
    trusted = list(settings.trusted_proxies)
    return {
        "access_log": False,
        "log_level": settings.log_level,
        "proxy_headers": bool(trusted),
        "forwarded_allow_ips": trusted or None,
        "server_header": False,
    }


def _serve(app: object, host: str, port: int, settings: Settings) -> None:
    import uvicorn

    uvicorn.run(app, host=host, port=port, **uvicorn_options(settings))  # type: ignore[arg-type]  # uvicorn types its app and options more narrowly than `object`


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
    _serve(create_app(settings), args.host, args.port, settings)
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
    if base.secret_key == PLACEHOLDER_SECRET:
        print(
            "Demo mode signs cookies and links with the built-in placeholder key: fine on 127.0.0.1 for a demo, never "
            "for real customers (set PORTAL_SECRET_KEY; production refuses to start without one).",
            flush=True,
        )
    print(
        f"\nPortal: {base.base_url}/   Mailbox: {base.base_url}/dev/mailbox\n"
        f"Sign in as the heavy customer {DEMO_CUSTOMERS[0]} or as {DEMO_CUSTOMERS[1]}, {DEMO_CUSTOMERS[2]}.\n",
        flush=True,
    )
    _serve(create_app(base), args.host, args.port, base)
    return 0


def cmd_worker(args: argparse.Namespace) -> int:
    from portal.db import make_engine
    from portal.outbox.worker import OutboxWorker

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


def cmd_webhook(args: argparse.Namespace) -> int:
    from portal.api import endpoints
    from portal.db import in_transaction, make_engine, transaction
    from portal.models import utcnow

    settings = load_settings()
    engine = make_engine(settings.database_url)
    try:
        if args.action == "list":
            with transaction(engine) as session:
                listed = endpoints.list_endpoints(session)
            for e in listed:
                state = "active" if e.active else f"disabled {e.disabled_at:%Y-%m-%d %H:%M}"
                print(f"{e.id}\t{e.url}\t{','.join(e.topics)}\t{state}\t{e.description}")
            if not listed:
                print("No webhook endpoints.")
            return 0
        if args.action == "add":
            added = in_transaction(
                engine,
                endpoints.add_endpoint,
                url=args.url,
                topics=args.topics.split(","),
                description=args.description,
                require_https=settings.environment == "production",
                actor="cli",
                now=utcnow(),
            )
            print(f"Webhook endpoint {added.endpoint_id} added.")
            print(f"Signing secret, shown only now: {added.secret}")
            return 0
        action = {
            "disable": endpoints.disable_endpoint,
            "enable": endpoints.enable_endpoint,
            "rotate-secret": endpoints.rotate_secret,
        }[args.action]
        # A bool, or the NewSecret when rotating: the type depends on the action.
        outcome: Any = in_transaction(engine, action, endpoint_id=args.id, actor="cli", now=utcnow())
        if args.action == "rotate-secret":
            print(f"New signing secret of endpoint {args.id}, shown only now: {outcome.secret}")
            print("Every delivery from now on, retries included, is signed with it.")
        elif args.action == "disable":
            print(f"Endpoint {args.id} disabled; its pending deliveries wait." if outcome else "Already disabled.")
        else:
            print(f"Endpoint {args.id} enabled; waiting deliveries resume." if outcome else "Already active.")
        return 0
    except endpoints.EndpointRefused as exc:
        print(f"Refused: {exc}", file=sys.stderr)
        return 2
    except endpoints.EndpointNotFound:
        print(f"No webhook endpoint with id {args.id}.", file=sys.stderr)
        return 2
    finally:
        engine.dispose()


def cmd_apikey(args: argparse.Namespace) -> int:
    from portal.api import keys
    from portal.db import in_transaction, make_engine, transaction
    from portal.models import utcnow

    settings = load_settings()
    engine = make_engine(settings.database_url)
    try:
        if args.action == "create":
            _, full_key = in_transaction(
                engine,
                keys.create_api_key,
                secret_key=settings.secret_key,
                name=args.name,
                scopes=args.scopes.split(","),
                now=utcnow(),
            )
            print(f"API key created. Send it as 'Authorization: Bearer <key>'; it is shown only now:\n{full_key}")
        elif args.action == "revoke":
            key = in_transaction(engine, keys.revoke_api_key, prefix=args.prefix, now=utcnow())
            print(f"API key {key.prefix} ({key.name}) revoked; calls made with it are refused from now on.")
        else:
            with transaction(engine) as session:
                listed = keys.list_api_keys(session)
                for k in listed:
                    state = f"revoked {k.revoked_at:%Y-%m-%d %H:%M}" if k.revoked_at else "active"
                    used = f"{k.last_used_at:%Y-%m-%d %H:%M}" if k.last_used_at else "never used"
                    print(f"{k.prefix}\t{k.name}\t{k.scopes.replace(' ', ',')}\t{state}\t{used}")
            if not listed:
                print("No API keys.")
        return 0
    except keys.ApiKeyError as exc:
        print(f"Refused: {exc}", file=sys.stderr)
        return 2
    finally:
        engine.dispose()


def cmd_staff(args: argparse.Namespace) -> int:
    from portal.db import in_transaction, make_engine, transaction
    from portal.identity import staff_accounts as accounts
    from portal.models import utcnow

    settings = load_settings()
    engine = make_engine(settings.database_url)
    try:
        if args.action == "list":
            with transaction(engine) as session:
                listed = accounts.list_staff(session)
            for a in listed:
                state = "active" if a.active else "disabled"
                totp = "totp" if a.enrolled else "no-totp"
                print(f"{a.id}\t{a.email}\t{a.name}\t{a.role}\t{a.store_code or '-'}\t{state}\t{totp}")
            if not listed:
                print("No staff accounts.")
            return 0
        if args.action == "add":
            password = None
            if args.password_stdin:
                password = sys.stdin.readline().rstrip("\r\n")
            added = in_transaction(
                engine,
                accounts.add_staff,
                email=args.email,
                name=args.name,
                role=args.role,
                store_code=args.store,
                password=password,
                actor="cli",
                now=utcnow(),
            )
            print(f"Staff account {added.account.id} added: {added.account.email} ({added.account.role}).")
            if added.generated:
                print(f"One-time password, shown only now: {added.password}")
                print("It must be replaced by a password of their own at the first sign-in.")
            print("The authenticator app is set up at the first sign-in, on /staff/sign-in.")
            return 0

        def act(session):  # type: ignore[no-untyped-def]
            staff_id = accounts.staff_id_for_email(session, args.email)
            if args.action == "reset-totp":
                return accounts.reset_totp(session, staff_id=staff_id, actor="cli", now=utcnow())
            return accounts.set_active(
                session, staff_id=staff_id, active=args.action == "enable", actor="cli", now=utcnow()
            )

        account = in_transaction(engine, act)
        done = {
            "disable": "disabled; its sessions have ended",
            "enable": "enabled",
            "reset-totp": "must set up a new authenticator app at the next sign-in; its sessions have ended",
        }[args.action]
        print(f"Staff account {account.email} {done}.")
        return 0
    except accounts.StaffAccountError as exc:
        print(f"Refused: {exc.message}", file=sys.stderr)
        return 2
    finally:
        engine.dispose()


# Exit codes of `portal import` (README, "Importing the retailer's data").
IMPORT_DONE, IMPORT_REJECTED, IMPORT_UNUSABLE, IMPORT_INTERRUPTED = 0, 1, 2, 130


def _operator_locale(chosen: str | None, default: str) -> str:
    """--lang, else the terminal's language (LC_ALL, LC_MESSAGES, LANG: fr_FR.UTF-8 is French), else the portal's."""
    if chosen:
        return chosen
    for name in ("LC_ALL", "LC_MESSAGES", "LANG"):
        language = os.environ.get(name, "").split("_")[0].split(".")[0].lower()
        if language in ("fr", "en"):
            return language
    return default


def cmd_import(args: argparse.Namespace) -> int:
    from portal.consent.register import load_register
    from portal.db import make_engine
    from portal.i18n import gettext, set_locale
    from portal.imports.kinds import ImportContext
    from portal.imports.mapping import ColumnMapping, MappingError, load_mapping
    from portal.imports.progress import progress_for
    from portal.imports.registry import KINDS
    from portal.imports.runner import ImportRun, StopRequest
    from portal.imports.sources import SourceError
    from portal.imports.summary import refusal_lines, summary_lines
    from portal.models import utcnow

    settings = load_settings()
    set_locale(_operator_locale(args.lang, settings.default_locale))
    kind_class = KINDS.get(args.kind)
    if kind_class is None:
        print(gettext("Importing %(kind)s is not available yet in this version of the portal.", kind=args.kind),
              file=sys.stderr)  # fmt: skip
        return IMPORT_UNUSABLE
    if args.help_fields:
        print(gettext("The fields of %(kind)s, which a mapping file's [columns] table maps the export's columns to"
                      " (* required):", kind=args.kind))  # fmt: skip
        for spec in kind_class.fields:
            print(f"  {spec.name}{' *' if spec.required else ''}\t{spec.help}")
        return IMPORT_DONE
    if not args.files:
        print(gettext("Name at least one file to import (- reads standard input)."), file=sys.stderr)
        return IMPORT_UNUSABLE
    engine = make_engine(settings.database_url)
    try:
        mapping = load_mapping(args.mapping, kind_class.fields) if args.mapping else ColumnMapping()
        names = ["stdin" if name == "-" else os.path.basename(name) for name in args.files]
        context = ImportContext(
            settings=settings,
            register=load_register(settings.purposes_file),
            now=utcnow(),
            source="import",
            actor=f"import:{names[0]}{'+' if len(names) > 1 else ''}"[:64],
            formats=mapping.formats,
            constants=mapping.constants,
        )
        run = ImportRun(
            engine,
            kind_class(context),
            context,
            files=args.files,
            mapping=mapping,
            batch_size=args.batch_size,
            dry_run=args.dry_run,
            rejects_path=args.skip_invalid,
            progress=progress_for(sys.stderr),
            stop=StopRequest(),
        )
        report = run.run()
    except (SourceError, MappingError) as exc:
        print(str(exc), file=sys.stderr)
        print(gettext("Nothing was imported."), file=sys.stderr)
        return IMPORT_UNUSABLE
    except KeyboardInterrupt:
        print(gettext("Interrupted while checking the files: nothing was written."), file=sys.stderr)
        return IMPORT_INTERRUPTED
    finally:
        engine.dispose()
    if report.rejected and args.skip_invalid is None:
        for line in refusal_lines(report):
            print(line, file=sys.stderr)
        return IMPORT_REJECTED
    for line in summary_lines(report):
        print(line)
    return IMPORT_INTERRUPTED if report.interrupted else IMPORT_DONE


def cmd_retention(args: argparse.Namespace) -> int:
    from portal.consent.register import load_register
    from portal.db import make_engine, transaction
    from portal.i18n import set_locale
    from portal.mail.compose import EmailComposer
    from portal.models import utcnow
    from portal.retailer import load_retailer
    from portal.retention import summary
    from portal.retention.rules import build_rules
    from portal.retention.service import preview, run_retention
    from portal.web.templating import make_environment

    settings = load_settings()
    set_locale(_operator_locale(args.lang, settings.default_locale))
    register = load_register(settings.purposes_file)
    retailer = load_retailer(settings.retailer_file)  # the warnings to inactive customers are signed by the retailer
    engine = make_engine(settings.database_url)
    now = utcnow()
    try:
        if args.dry_run:
            rules = build_rules(now=now, settings=settings, register=register)
            with transaction(engine) as session:
                lines = summary.dry_run_lines(rules, preview(session, rules=rules))
        else:
            report = run_retention(
                engine,
                now=now,
                settings=settings,
                register=register,
                composer=EmailComposer(make_environment(settings=settings, retailer=retailer)),
                batch_size=args.batch_size,
                progress=lambda outcome: print(summary.progress_line(outcome), file=sys.stderr, flush=True),
            )
            lines = summary.run_lines(report)
    finally:
        engine.dispose()
    print("\n".join(lines))
    return 1 if not args.dry_run and report.interrupted else 0


def _positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError("must be 1 or more")
    return value


def build_parser() -> argparse.ArgumentParser:
    from portal.imports.registry import KIND_NAMES

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

    webhook = commands.add_parser("webhook", help="the retailer's webhook endpoints: add, list, disable, rotate")
    webhook_actions = webhook.add_subparsers(dest="action", required=True)
    add = webhook_actions.add_parser("add", help="add an endpoint; prints its id and signing secret once")
    add.add_argument("url", help="where events are POSTed (https in production)")
    add.add_argument("--topics", required=True, help="comma-separated: consent.changed,customer.rectified,…")
    add.add_argument("--description", default="", help="what the receiver is, e.g. CRM")
    webhook_actions.add_parser("list", help="list the endpoints (never their secrets)")
    for name, text in (
        ("disable", "stop delivering to an endpoint; its deliveries wait"),
        ("enable", "resume delivering to a disabled endpoint"),
        ("rotate-secret", "replace an endpoint's signing secret; prints the new one once"),
    ):
        webhook_actions.add_parser(name, help=text).add_argument("id", type=int, help="endpoint id (see list)")
    webhook.set_defaults(handler=cmd_webhook)

    apikey = commands.add_parser("apikey", help="API keys for the retailer's systems: create, list, revoke")
    apikey_actions = apikey.add_subparsers(dest="action", required=True)
    create = apikey_actions.add_parser("create", help="create a key; prints it once")
    create.add_argument("--name", required=True, help="what uses the key, e.g. CRM, tills, web shop")
    create.add_argument(
        "--scopes",
        required=True,
        help="comma-separated: consents:read, consents:write, browsing:write, customers:write, purchases:write",
    )
    apikey_actions.add_parser("list", help="list the keys (never their secrets)")
    revoke = apikey_actions.add_parser("revoke", help="revoke a key at once")
    revoke.add_argument("prefix", help="the key's first part, e.g. ppk_1a2b3c4d5e6f")
    apikey.set_defaults(handler=cmd_apikey)

    staff = commands.add_parser("staff", help="back-office staff accounts: add, list, disable, enable, reset-totp")
    staff_actions = staff.add_subparsers(dest="action", required=True)
    staff_add = staff_actions.add_parser("add", help="add an account; prints a one-time password once")
    staff_add.add_argument("--email", required=True, help="work email address, used to sign in")
    staff_add.add_argument("--name", required=True, help="full name, shown in request timelines")
    staff_add.add_argument("--role", required=True, choices=["agent", "store", "dpo"], help="what the account may do")
    staff_add.add_argument("--store", help="store code (store role only), e.g. LYO-01")
    staff_add.add_argument(
        "--password-stdin", action="store_true", help="read the password (12+ characters) from standard input"
    )
    staff_actions.add_parser("list", help="list the accounts (never their secrets)")
    for name, text in (
        ("disable", "disable an account; its sessions end at once"),
        ("enable", "enable a disabled account"),
        ("reset-totp", "forget the authenticator (lost phone): the next sign-in sets up a new one"),
    ):
        staff_actions.add_parser(name, help=text).add_argument("email", help="the account's email address")
    staff.set_defaults(handler=cmd_staff)

    imports = commands.add_parser(
        "import",
        help="import the retailer's customers, stores, purchases, consents or page views from CSV or JSON Lines",
        description=(
            "Every row is checked before anything is written. Exit status: 0 imported, 1 rows with errors (nothing"
            " written), 2 unusable command, file or mapping (nothing written), 130 interrupted (the summary says"
            " what was written)."
        ),
    )
    imports.add_argument("kind", choices=KIND_NAMES, help="what the files hold")
    imports.add_argument(
        "files", nargs="*", metavar="FILE", help="CSV or JSON Lines, maybe .gz; - reads standard input"
    )
    imports.add_argument("--help-fields", action="store_true", help="list the fields of KIND a mapping maps to; exit")
    imports.add_argument("--mapping", metavar="MAPPING.toml", help="the export's column names and formats")
    imports.add_argument("--dry-run", action="store_true", help="check and count everything, write nothing")
    imports.add_argument(
        "--skip-invalid", metavar="REJECTS.csv", help="import the valid rows; write the rejected ones, with why, here"
    )
    imports.add_argument("--batch-size", type=_positive, default=2000, help="rows per transaction (default 2000)")
    imports.add_argument("--lang", choices=["fr", "en"], help="language of the messages (default: from LANG)")
    imports.set_defaults(handler=cmd_import)

    retention = commands.add_parser("retention", help="delete or anonymise what the purpose register no longer allows")
    retention.add_argument("--dry-run", action="store_true", help="count what would go, per rule; change nothing")
    retention.add_argument("--batch-size", type=_positive, default=500, help="rows per transaction (default 500)")
    retention.add_argument("--lang", choices=["fr", "en"], help="language of the messages (default: from LANG)")
    retention.set_defaults(handler=cmd_retention)

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
