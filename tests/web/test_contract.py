"""Contracts every page and email keeps, in both languages (after Warehouse's tests/functional/test_templates.py)."""

from __future__ import annotations

import dataclasses
import itertools
import re
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from urllib.parse import urlsplit

import jinja2.meta
import pytest
from httpx2 import Response  # what Starlette's TestClient answers with
from hypothesis import HealthCheck, given
from hypothesis import settings as fuzzing
from hypothesis import strategies as st
from sqlalchemy import Engine, func
from sqlmodel import col, select
from starlette.applications import Starlette
from starlette.routing import Match, Mount, Route
from starlette.testclient import TestClient

from portal import i18n
from portal.api.keys import create_api_key
from portal.app import create_app
from portal.backoffice.actions import ACTIONS
from portal.catalogs import check_catalogs
from portal.db import transaction
from portal.i18n import SUPPORTED_LOCALES
from portal.incidents.forms import IncidentFacts
from portal.incidents.service import record_incident, save_notice
from portal.mail.compose import EMAIL_NAMES, EmailComposer
from portal.models import ApiKey, ConsentEvent, Customer, PrivacyRequest, StaffUser
from portal.portability.service import link_token
from portal.profile.service import CORRECTABLE_FIELDS
from portal.requests.service import CUSTOMER_REQUEST_TYPES, file_request
from portal.retailer import load_retailer
from portal.settings import Settings
from portal.web.templating import TEMPLATES_DIR, make_environment
from tests.conftest import BASE_URL, TEST_SECRET, TIMEZONE, Clock, SMTPServer, csrf_from, link_in, make_settings
from tests.email_samples import EMAIL_SAMPLES
from tests.factories import add_page_views, add_purchases, make_customer, make_store
from tests.incident_factories import notice_sent
from tests.staff_helpers import make_staff, sign_in_staff, submit_password
from tests.web.helpers import ask_for_link, sign_in_by_code

Account = tuple[StaffUser, str, str]  # the row, its password, its TOTP secret

LANGUAGES = ("fr", "en")


def page_templates() -> list[str]:
    """Every template that is a page: not a partial (_x), not the base, not an email."""
    names = []
    for path in sorted(TEMPLATES_DIR.rglob("*.html")):
        relative = path.relative_to(TEMPLATES_DIR).as_posix()
        if relative.startswith("emails/") or relative == "base.html" or path.name.startswith("_"):
            continue
        names.append(relative)
    return names


def test_the_catalogues_are_complete_and_messages_pot_is_current() -> None:
    assert check_catalogs() == []


@pytest.mark.parametrize("template", page_templates())
def test_every_page_template_has_a_title(app, template: str) -> None:
    compiled = app.state.portal.env.get_template(template)
    assert "title" in compiled.blocks, f"{template} defines no title block"


def test_every_email_has_a_sample() -> None:
    assert set(EMAIL_NAMES) == set(EMAIL_SAMPLES)


@pytest.mark.parametrize("language", LANGUAGES)
@pytest.mark.parametrize("name", EMAIL_NAMES)
def test_every_email_renders_with_a_one_line_subject(app, name: str, language: str) -> None:
    composer: EmailComposer = app.state.portal.composer
    email = composer.compose(name, to="camille@example.com", language=language, context=EMAIL_SAMPLES[name])
    raw_subject = app.state.portal.env.get_template(f"emails/{name}/subject.txt").render(EMAIL_SAMPLES[name]).strip()
    assert raw_subject and "\n" not in raw_subject, f"{name}: the subject must be one line"
    assert email.text.strip() and email.html.strip()
    assert f'<html lang="{language}">' in email.html
    assert "{{" not in email.text and "{%" not in email.html


def _reachable(value: object, seen: set[int] | None = None) -> Iterator[object]:
    """`value` and the data a template reaches through it: container items and dataclass fields, recursively."""
    seen = set() if seen is None else seen
    if id(value) in seen:
        return
    seen.add(id(value))
    yield value
    if isinstance(value, dict):
        children: list[object] = [*value.keys(), *value.values()]
    elif isinstance(value, list | tuple | set | frozenset):
        children = list(value)
    elif dataclasses.is_dataclass(value) and not isinstance(value, type):
        children = [getattr(value, field.name) for field in dataclasses.fields(value)]
    else:
        children = []
    for child in children:
        yield from _reachable(child, seen)


def test_templates_get_the_values_they_need_never_the_settings_or_a_secret(database_url, smtp, clock) -> None:
    secret, password = "a-secret-key-no-template-may-ever-print-0123456789", "an-smtp-password-never-shown"  # noqa: S105
    settings = make_settings(database_url, smtp.port, secret_key=secret, smtp_password=password)
    env = create_app(settings, clock=clock).state.portal.env
    for value in _reachable(dict(env.globals)):
        assert not isinstance(value, Settings), "a Jinja global is (or holds) the Settings object"
        assert value not in (secret, password), "a Jinja global is (or holds) a secret"
    assert env.globals["base_url"] == settings.base_url


def test_templates_see_every_global_the_app_sets(app) -> None:
    # A template copies the globals when it is loaded (template_locales.LocalisedEnvironment.make_globals): the app
    # must set them all before it renders anything.
    env = app.state.portal.env
    with i18n.using_locale("en"):
        assert env.get_template("base.html").globals == env.globals


def test_no_template_names_settings() -> None:
    # `settings` is not a global: a template naming it would fail, but only when that branch is rendered.
    settings = make_settings("sqlite://", smtp_port=1)
    env = make_environment(settings=settings, retailer=load_retailer(settings.retailer_file))
    for path in sorted(TEMPLATES_DIR.rglob("*.*")):
        if path.suffix not in (".html", ".txt"):
            continue
        names = jinja2.meta.find_undeclared_variables(env.parse(path.read_text(encoding="utf-8")))
        assert "settings" not in names, f"{path.relative_to(TEMPLATES_DIR)} uses settings"


@pytest.mark.parametrize("language", LANGUAGES)
def test_email_links_start_with_the_base_url(app, language: str) -> None:
    composer: EmailComposer = app.state.portal.composer
    email = composer.compose(
        "request-received", to="camille@example.com", language=language, context=EMAIL_SAMPLES["request-received"]
    )
    link = f"{BASE_URL}/me/requests/R-7K2Q-9XMD"
    assert link in email.text and f'href="{link}"' in email.html


def _title(html: str) -> str:
    match = re.search(r"<title>(.*?)</title>", html, re.S)
    assert match, "no <title>"
    return match.group(1).strip()


# --- Every route the router serves keeps its contract ----------------------------------------------------------
# The walks below start from the router's own table (`app.routes`), not from a list of URLs: every GET route needs an
# entry in GET_CONTRACT (or in NOT_PAGES, with the reason), and every path parameter is filled from real rows, so a
# new route cannot escape the contract unnoticed.

VISITOR = "visitor"  # signed out
CUSTOMER = "customer"  # signed in as Camille
API = "api"  # the retailer's systems, with an API key
STAFF_ROLES = ("agent", "dpo", "store")

PAGE = "page"  # HTML in the visitor's language, with a title
CSV = "csv"  # a file to download
JSON = "json"
CSS = "css"
LANGUAGE_SWITCH = "language switch"  # a redirect that remembers the language chosen
SCRIPT = "script"  # JavaScript other sites embed (the website banner): never a portal cookie

CAMILLE = "camille@example.com"
CAMILLE_NEW_ADDRESS = "camille.new@example.org"


@dataclasses.dataclass
class World:
    """The real rows and tokens the walks fill paths and queries with."""

    customer: Customer
    purchase_id: int
    reference: str  # Camille's erasure request, still "received": it can be cancelled, previewed and proven
    staff: dict[str, Account]  # one account per role
    api_key: str
    download_token: str  # her download link, for her access request
    sign_in_token: str = ""  # from the email the visitor walk asks for
    email_change_token: str = ""  # from the email the customer walk asks for
    incident: str = ""  # a breach with its notice written, of which Camille is told
    banner_path: str = ""  # the website banner's hashed bundle


@dataclasses.dataclass(frozen=True)
class Visit:
    """Who opens one GET route, what comes back, and the URLs to open when its path has parameters or a query."""

    who: str  # VISITOR, CUSTOMER, API, or the least staff role that may open it
    kind: str = PAGE
    urls: Callable[[World], list[str]] | None = None
    forbidden_to: str | None = None  # a staff role that gets the 403 page instead
    needs_key: bool = True  # API routes: refused with 401 without a key


def _with_reference(path: str) -> Callable[[World], list[str]]:
    return lambda world: [path.format(reference=world.reference)]


GET_CONTRACT: dict[str, Visit] = {
    # Anyone, signed out.
    "/": Visit(VISITOR),
    "/lang/{code}": Visit(
        VISITOR, LANGUAGE_SWITCH, urls=lambda world: [f"/lang/{code}?next=/privacy" for code in SUPPORTED_LOCALES]
    ),
    "/branding.css": Visit(VISITOR, CSS),
    "/healthz": Visit(VISITOR, JSON),
    "/privacy": Visit(VISITOR),
    "/signin": Visit(VISITOR),
    "/signin/sent": Visit(VISITOR),  # once a link was asked for
    "/signin/link": Visit(VISITOR, urls=lambda world: [f"/signin/link?token={world.sign_in_token}"]),
    "/staff/sign-in": Visit(VISITOR),
    "/staff/sign-in/code": Visit(VISITOR),  # once the password was accepted
    # The signed-in customer.
    "/me": Visit(CUSTOMER),
    "/me/purchases": Visit(CUSTOMER),
    "/me/purchases/{purchase_id:int}": Visit(CUSTOMER, urls=lambda world: [f"/me/purchases/{world.purchase_id}"]),
    "/me/browsing": Visit(CUSTOMER),
    "/me/consents": Visit(CUSTOMER),
    "/me/processing": Visit(CUSTOMER),
    "/me/notices": Visit(CUSTOMER),
    "/me/profile": Visit(CUSTOMER),
    "/me/email/confirm": Visit(CUSTOMER, urls=lambda world: [f"/me/email/confirm?token={world.email_change_token}"]),
    "/me/profile/correction/{field}": Visit(
        CUSTOMER, urls=lambda world: [f"/me/profile/correction/{field}" for field in CORRECTABLE_FIELDS]
    ),
    "/me/requests": Visit(CUSTOMER),
    "/me/requests/new": Visit(CUSTOMER),
    "/me/requests/new/{type}": Visit(
        CUSTOMER, urls=lambda world: [f"/me/requests/new/{type}" for type in CUSTOMER_REQUEST_TYPES]
    ),
    "/me/requests/{reference}": Visit(CUSTOMER, urls=_with_reference("/me/requests/{reference}")),
    "/me/requests/{reference}/cancel": Visit(CUSTOMER, urls=_with_reference("/me/requests/{reference}/cancel")),
    "/me/download": Visit(CUSTOMER),
    "/me/download/link": Visit(CUSTOMER, urls=lambda world: [f"/me/download/link?token={world.download_token}"]),
    # Staff: each page for the least role that opens it, and refused to a role that may not.
    "/staff": Visit("agent"),  # every role has a home page
    "/staff/password": Visit("store"),  # every role changes its own password
    "/staff/tablet": Visit("store", forbidden_to="agent"),
    "/staff/tablet/customer": Visit("store", forbidden_to="agent"),
    "/staff/tablet/code": Visit("store", forbidden_to="agent"),  # back to the email form until a code was sent
    "/staff/tablet/on-behalf": Visit("store", forbidden_to="agent"),
    "/staff/tablet/log": Visit("store", forbidden_to="agent"),
    "/staff/requests": Visit("agent", forbidden_to="store"),
    "/staff/requests/{reference}": Visit(
        "agent", urls=_with_reference("/staff/requests/{reference}"), forbidden_to="store"
    ),
    "/staff/requests/{reference}/erasure": Visit(
        "agent", urls=_with_reference("/staff/requests/{reference}/erasure"), forbidden_to="store"
    ),
    "/staff/requests/{reference}/consent-proof.csv": Visit(
        "dpo", CSV, urls=_with_reference("/staff/requests/{reference}/consent-proof.csv"), forbidden_to="agent"
    ),
    "/staff/reports": Visit("dpo", forbidden_to="agent"),
    "/staff/reports.csv": Visit("dpo", CSV, forbidden_to="agent"),
    "/staff/reports/banner": Visit("dpo", forbidden_to="agent"),
    "/staff/audit": Visit("dpo", forbidden_to="agent"),
    "/staff/audit.csv": Visit("dpo", CSV, forbidden_to="agent"),
    "/staff/accounts": Visit("dpo", forbidden_to="agent"),
    "/staff/retention": Visit("dpo", forbidden_to="agent"),
    "/staff/incidents": Visit("dpo", forbidden_to="agent"),
    "/staff/incidents/{reference}": Visit(
        "dpo", urls=lambda world: [f"/staff/incidents/{world.incident}"], forbidden_to="agent"
    ),
    "/staff/incidents/{reference}/preview": Visit(
        "dpo",
        urls=lambda world: [f"/staff/incidents/{world.incident}/preview?customer={CAMILLE}"],
        forbidden_to="agent",
    ),
    "/staff/incidents/{reference}/export.csv": Visit(
        "dpo", CSV, urls=lambda world: [f"/staff/incidents/{world.incident}/export.csv"], forbidden_to="store"
    ),
    "/staff/retention.csv": Visit("dpo", CSV, forbidden_to="store"),
    # The website banner, embedded in the retailer's pages.
    "/consent/v1/banner.js": Visit(VISITOR, SCRIPT),
    "/consent/v1/banner-{hash}.js": Visit(VISITOR, SCRIPT, urls=lambda world: [world.banner_path]),
    # The retailer's API.
    "/api/openapi.json": Visit(API, JSON, needs_key=False),  # the API's description is public
    "/api/v1/purposes": Visit(API, JSON),
    "/api/v1/customers/{customer_id}/consents": Visit(
        API, JSON, urls=lambda world: [f"/api/v1/customers/{world.customer.retailer_ref}/consents"]
    ),
}

# What the router serves that is not a page, and why no walk opens it.
NOT_PAGES: dict[str, str] = {
    "/static": "static files (test_security_headers_on_every_response checks their caching)",
}

# Routes only a demo app serves: the mailbox the demo's emails land in (test_the_demo_mailbox_exists_only_in_demo_mode).
DEMO_ONLY = {"/dev/mailbox", "/dev/mailbox/{id:int}", "/dev/mailbox/{id:int}.html"}

# Path parameters of the forms (POST routes), filled from real rows too.
FORM_PARAMETERS: dict[str, Callable[[World], str]] = {
    "reference": lambda world: world.reference,
    "staff_id": lambda world: str(world.staff["agent"][0].id),
    "type": lambda world: "erasure",
    "field": lambda world: "birth_date",
}
# Path parameters that name one of several forms served by one route: every one of them is checked.
FORM_CHOICES: dict[str, tuple[str, ...]] = {"action": tuple(ACTIONS)}


def _get_routes(app: Starlette) -> list[Route]:
    return [route for route in app.routes if isinstance(route, Route) and "GET" in (route.methods or ())]


def _form_routes(app: Starlette) -> list[Route]:
    return [route for route in app.routes if isinstance(route, Route) and "POST" in (route.methods or ())]


def _paths(app: Starlette) -> set[str]:
    return {route.path for route in app.routes if isinstance(route, Route | Mount)}


def _visit(route: Route) -> Visit:
    visit = GET_CONTRACT.get(route.path)
    assert visit is not None, (
        f"GET {route.path} ({route.name}) is in no contract: add it to GET_CONTRACT (who opens it, what it answers)"
    )
    return visit


def _urls(route: Route, world: World) -> list[str]:
    """The URLs that open `route`, each checked to reach that very route."""
    visit = _visit(route)
    if visit.urls is None:
        assert not route.param_convertors, (
            f"GET {route.path} has path parameters {sorted(route.param_convertors)}: "
            "give its GET_CONTRACT entry the urls that fill them from real rows"
        )
        return [route.path]
    urls = visit.urls(world)
    assert urls, f"GET {route.path}: no URL to open"
    for url in urls:
        match, _ = route.matches({"type": "http", "method": "GET", "path": urlsplit(url).path})
        assert match == Match.FULL, f"{url} does not reach GET {route.path}"
    return urls


def _form_urls(route: Route, world: World) -> list[str]:
    unknown = sorted(set(route.param_convertors) - set(FORM_PARAMETERS) - set(FORM_CHOICES))
    assert not unknown, f"POST {route.path}: no value for {unknown}: add them to FORM_PARAMETERS"
    fixed = {name: FORM_PARAMETERS[name](world) for name in route.param_convertors if name in FORM_PARAMETERS}
    choices = [name for name in route.param_convertors if name in FORM_CHOICES]
    combinations = itertools.product(*(FORM_CHOICES[name] for name in choices))
    return [
        route.url_path_for(route.name, **fixed, **dict(zip(choices, values, strict=True))) for values in combinations
    ]


# Two sentences run together ("…replaced it.Nothing was changed."): a block tag ate the space between them.
JOINED_SENTENCES = re.compile(r"[a-zà-ÿ)»][.!?][A-ZÀ-Ý«][a-zà-ÿ]")
_BLOCK_TAG = re.compile(
    r"</?(?:p|div|li|ul|ol|h[1-6]|t[dhr]|d[tdl]|br|section|header|footer|nav|main|option|legend)\b[^>]*>"
)


def visible_text(html: str) -> str:
    """The text a reader sees: blocks apart, inline markup gone, scripts and styles left out."""
    html = re.sub(r"<(script|style|title)\b.*?</\1>", " ", html, flags=re.S)
    return re.sub(r"<[^>]+>", "", _BLOCK_TAG.sub(" ", html))


def _page_problems(response: Response, language: str) -> list[str]:
    """What keeps `response` from being a page in `language` with a title and its sentences apart."""
    if f'<html lang="{language}">' not in response.text:
        return [f'no <html lang="{language}">']
    match = re.search(r"<title>(.*?)</title>", response.text, re.S)
    if not match or not match.group(1).split("·")[0].strip():
        return ["no title"]
    joined = JOINED_SENTENCES.search(visible_text(response.text))
    if joined:
        return [
            f"two sentences without a space between them: …{joined.string[joined.start() - 30 : joined.end() + 20]}…"
        ]
    return []


def _problems(response: Response, visit: Visit, language: str) -> list[str]:
    """What in `response` breaks the contract of `visit`."""
    status = 303 if visit.kind == LANGUAGE_SWITCH else 200
    if response.status_code != status:
        return [f"answered {response.status_code}, not {status}"]
    content_type = response.headers.get("content-type", "")
    if visit.kind == PAGE:
        problems = _page_problems(response, language)
        if visit.who == CUSTOMER and response.headers.get("cache-control") != "no-store":
            problems.append("a customer's page without cache-control: no-store")
        return problems
    if visit.kind == CSV:
        if not content_type.startswith("text/csv") or "attachment" not in response.headers.get(
            "content-disposition", ""
        ):
            return [f"not a CSV download: {content_type}"]
        header = response.text.partition("\n")[0].strip()
        return [] if header else ["a CSV without its header line"]
    if visit.kind == JSON:
        if content_type != "application/json":
            return [f"not JSON: {content_type}"]
        return [] if response.json() else ["an empty JSON document"]
    if visit.kind == CSS:
        return [] if content_type.startswith("text/css") and "--brand" in response.text else ["not the brand CSS"]
    if visit.kind == SCRIPT:
        if not content_type.startswith("text/javascript") or "set-cookie" in response.headers:
            return [f"not a cookieless script: {content_type}"]
        return [] if "PortalConsent" in response.text or "banner-" in response.text else ["not the banner"]
    if visit.kind == LANGUAGE_SWITCH:
        code = urlsplit(str(response.url)).path.rsplit("/", 1)[1]
        remembered = f"portal_lang={code}" in response.headers.get("set-cookie", "")
        return [] if remembered and response.headers["location"] == "/privacy" else ["the choice is not remembered"]
    return [f"unknown kind {visit.kind!r}"]


def _walk(client: TestClient, app: Starlette, world: World, who: str) -> list[str]:
    """Open, in both languages, every GET route of `who`; the broken contracts, each naming its route."""
    problems = []
    for route in _get_routes(app):
        visit = _visit(route)
        if visit.who != who:
            continue
        for url in _urls(route, world):
            for language in LANGUAGES:
                response = client.get(url, headers={"accept-language": language}, follow_redirects=False)
                problems += [
                    f"{who}, {language}: GET {url} ({route.path}): {p}" for p in _problems(response, visit, language)
                ]
        client.cookies.delete("portal_lang")  # a language switch must not decide the next page's language
    return problems


def _forbidden_walk(client: TestClient, app: Starlette, world: World, role: str) -> list[str]:
    """Every staff route refused to `role` answers the 403 page, in both languages."""
    problems = []
    for route in _get_routes(app):
        if _visit(route).forbidden_to != role:
            continue
        for url in _urls(route, world):
            for language in LANGUAGES:
                response = client.get(url, headers={"accept-language": language}, follow_redirects=False)
                found = [f"answered {response.status_code}, not 403"] if response.status_code != 403 else []
                found = found or _page_problems(response, language)
                problems += [f"{role}, {language}: GET {url} ({route.path}): {p}" for p in found]
    return problems


INCIDENT_FACTS = IncidentFacts(
    discovered_at=datetime(2026, 11, 20, 8, tzinfo=UTC),
    nature="A copy of the customer file was stolen.",
    data_categories=("identity", "email_address"),
    people_estimate=1200,
    consequences="Phishing emails.",
    measures="Access closed.",
)
INCIDENT_NOTICE = {
    language: {part: f"{part} ({language})" for part in ("nature", "consequences", "measures", "advice")}
    for language in ("fr", "en")
}


@pytest.fixture
def world(app: Starlette, engine: Engine, clock: Clock) -> World:
    customer = make_customer(engine, email=CAMILLE, retailer_ref="CRM-CAMILLE")
    store = make_store(engine)
    (purchase_id,) = add_purchases(engine, customer, store, 1)
    add_page_views(engine, customer, 3)
    with transaction(engine) as session:
        filed = {
            type: file_request(
                session,
                customer_id=customer.id,
                type=type,
                channel="web",
                now=clock() - timedelta(days=2),
                actor="customer",
                timezone=TIMEZONE,
            ).reference
            for type in ("erasure", "access")
        }
        incident = record_incident(session, facts=INCIDENT_FACTS, actor="staff:1", now=clock())
        save_notice(session, reference=incident, notice=INCIDENT_NOTICE, actor="staff:1", now=clock())
        notice_sent(session, reference=incident, customer=CAMILLE, now=clock())  # on /me and /me/notices
        _, api_key = create_api_key(
            session,
            secret_key=TEST_SECRET,
            name="CRM",
            scopes=("consents:read", "consents:write", "browsing:write"),
            now=clock(),
        )
    secret = app.state.portal.settings.secret_key
    return World(
        customer=customer,
        purchase_id=purchase_id,
        reference=filed["erasure"],
        staff={
            role: make_staff(engine, role=role, store_id=store.id if role == "store" else None) for role in STAFF_ROLES
        },
        api_key=api_key,
        download_token=link_token(secret, reference=filed["access"], expires_at=clock() + timedelta(days=7)),
        incident=incident,
        banner_path=app.state.banner.path,
    )


def test_every_route_the_router_serves_has_a_contract(app: Starlette, database_url: str, smtp: SMTPServer) -> None:
    served: set[str] = set()
    for route in app.routes:
        if isinstance(route, Mount):
            assert route.path in NOT_PAGES, f"mount {route.path} is in no contract: add it to NOT_PAGES, saying why"
            served.add(route.path)
            continue
        assert isinstance(route, Route), f"{route!r}: the walks only know Route and Mount"
        assert route.methods, f"{route.path} answers every method: name them"
        # PUT is the retailer API's alone (create or update by the retailer's id): the schemathesis run
        # (tests/web/api/test_api_schema.py) holds each of its operations to the OpenAPI document.
        api_only = {"PUT"} if route.path.startswith("/api/") else set()
        unknown = set(route.methods) - {"GET", "HEAD", "POST"} - api_only
        assert not unknown, f"{route.path}: no contract for {sorted(unknown)}"
        if "GET" in route.methods:
            visit = _visit(route)
            assert visit.urls is not None or not route.param_convertors, (
                f"GET {route.path}: its parameters are unfilled"
            )
            assert visit.who in (VISITOR, CUSTOMER, API, *STAFF_ROLES), f"GET {route.path}: unknown visitor {visit.who}"
            served.add(route.path)
        if "POST" in route.methods:
            unfilled = set(route.param_convertors) - set(FORM_PARAMETERS) - set(FORM_CHOICES)
            assert not unfilled, f"POST {route.path}: no value for {sorted(unfilled)} in FORM_PARAMETERS"
    # Entries for routes that are gone would make the walks look wider than they are.
    assert set(GET_CONTRACT) | set(NOT_PAGES) <= served, (
        f"no longer served: {sorted(set(GET_CONTRACT) | set(NOT_PAGES) - served)}"
    )
    demo = create_app(make_settings(database_url, smtp.port, environment="demo", demo_smtp_port=0))
    try:
        demo_only = _paths(demo) - _paths(app)
    finally:
        demo.state.portal.dispose()
    assert demo_only == DEMO_ONLY


def test_every_page_renders_in_both_languages_with_a_title(
    client: TestClient, app: Starlette, smtp: SMTPServer, world: World
) -> None:
    # Signed out, with a sign-in link asked for and a staff password accepted: the pages of the next steps.
    ask_for_link(client, CAMILLE)
    world.sign_in_token = link_in(smtp.wait_for(CAMILLE)).split("token=")[1]
    agent, password, _ = world.staff["agent"]
    assert submit_password(client, agent.email, password).status_code == 303
    problems = _walk(client, app, world, VISITOR)

    client.cookies.clear()
    assert sign_in_by_code(client, smtp, CAMILLE, count=2).status_code == 303
    profile = client.get("/me/profile")
    client.post("/me/profile/email", data={"email": CAMILLE_NEW_ADDRESS, "csrf_token": csrf_from(profile.text)})
    confirmation = smtp.wait_for(CAMILLE_NEW_ADDRESS)
    world.email_change_token = re.search(r"/me/email/confirm\?token=([\w-]+)", confirmation.text).group(1)  # type: ignore[union-attr]
    problems += _walk(client, app, world, CUSTOMER)
    assert not problems, "\n".join(problems)


def test_every_staff_page_renders_for_its_role_and_is_refused_to_the_others(
    client: TestClient, app: Starlette, world: World, clock: Clock
) -> None:
    problems: list[str] = []
    for role in STAFF_ROLES:
        client.cookies.clear()
        staff, password, secret = world.staff[role]
        sign_in_staff(client, staff.email, password, secret, clock)
        problems += _walk(client, app, world, role)
        problems += _forbidden_walk(client, app, world, role)
    assert not problems, "\n".join(problems)


def test_every_api_get_route_answers_json_and_only_with_a_key(client: TestClient, app: Starlette, world: World) -> None:
    problems = []
    for route in _get_routes(app):
        visit = _visit(route)
        if visit.who != API:
            continue
        for url in _urls(route, world):
            signed = client.get(url, headers={"authorization": f"Bearer {world.api_key}"})
            problems += [f"GET {url} with a key: {p}" for p in _problems(signed, visit, "")]
            anonymous = client.get(url)
            if visit.needs_key and (anonymous.status_code, anonymous.headers["content-type"]) != (
                401,
                "application/json",
            ):
                problems.append(f"GET {url} without a key: {anonymous.status_code} {anonymous.headers['content-type']}")
            if not visit.needs_key:
                problems += [f"GET {url} without a key: {p}" for p in _problems(anonymous, visit, "")]
    assert not problems, "\n".join(problems)


def _unchanged_rows(engine: Engine) -> tuple[object, ...]:
    """What a form could change: requests, staff accounts, customers, consents, API keys."""
    with transaction(engine) as session:
        return (
            session.exec(
                select(PrivacyRequest.reference, PrivacyRequest.status, PrivacyRequest.version).order_by(
                    col(PrivacyRequest.reference)
                )
            ).all(),
            session.exec(
                select(StaffUser.id, StaffUser.active, StaffUser.password_hash, StaffUser.totp_secret).order_by(
                    col(StaffUser.id)
                )
            ).all(),
            session.exec(
                select(Customer.id, Customer.email, Customer.last_name, Customer.erased_at).order_by(col(Customer.id))
            ).all(),
            session.exec(select(func.count()).select_from(ConsentEvent)).one(),
            session.exec(select(ApiKey.prefix, ApiKey.revoked_at).order_by(col(ApiKey.prefix))).all(),
        )


def test_every_form_refuses_a_request_without_its_token_and_the_api_without_a_key(
    client: TestClient, app: Starlette, engine: Engine, smtp: SMTPServer, world: World, clock: Clock
) -> None:
    before = _unchanged_rows(engine)
    problems = []
    routes = _form_routes(app)
    # Signed in, so that only the missing token can be why a form is refused; each body is a real form's fields
    # (the erasure's confirmation box ticked) without the token.
    assert sign_in_by_code(client, smtp, CAMILLE).status_code == 303
    for route in routes:
        if route.path.startswith(("/staff", "/api/", "/consent/v1/")):
            continue
        for url in _form_urls(route, world):
            for language in LANGUAGES:
                refused = client.post(url, data={"confirm": "yes"}, headers={"accept-language": language})
                found = [f"answered {refused.status_code}, not 403"] if refused.status_code != 403 else []
                problems += [
                    f"customer, {language}: POST {url}: {p}" for p in found or _page_problems(refused, language)
                ]
    assert client.get("/me").status_code == 200  # still signed in: the sign-out form was refused too
    client.cookies.clear()
    dpo, password, secret = world.staff["dpo"]
    sign_in_staff(client, dpo.email, password, secret, clock)
    for route in routes:
        if not route.path.startswith("/staff"):
            continue
        for url in _form_urls(route, world):
            refused = client.post(url, data={"confirm": "yes"}, headers={"accept-language": "en"})
            found = [f"answered {refused.status_code}, not 403"] if refused.status_code != 403 else []
            problems += [f"dpo: POST {url}: {p}" for p in found or _page_problems(refused, "en")]
    for route in routes:
        if not route.path.startswith("/api/"):
            continue
        (url,) = _form_urls(route, world)
        refused = client.post(url, json={})
        if (refused.status_code, refused.headers["content-type"]) != (401, "application/json"):
            problems.append(f"API: POST {url} without a key: {refused.status_code} {refused.headers['content-type']}")
        elif not refused.headers.get("www-authenticate", "").startswith("Bearer"):
            problems.append(f"API: POST {url} without a key: no WWW-Authenticate challenge")
    for route in routes:  # the website banner's endpoints: no token, but a form from another site is refused
        if not route.path.startswith("/consent/v1/"):
            continue
        for origin in ({}, {"origin": "https://elsewhere.example"}):
            refused = client.post(route.path, data={"confirm": "yes"}, headers=origin)
            if (refused.status_code, refused.headers["content-type"]) != (403, "application/json"):
                problems.append(f"banner: POST {route.path} from {origin or 'no origin'}: {refused.status_code}")
    assert not problems, "\n".join(problems)
    assert _unchanged_rows(engine) == before
    assert client.get("/staff/requests").status_code == 200  # the staff sign-out form was refused too


def test_error_pages_render_in_both_languages_with_a_title(
    client: TestClient, smtp: SMTPServer, engine: Engine
) -> None:
    make_customer(engine, email=CAMILLE)
    for language in LANGUAGES:
        headers = {"accept-language": language}
        for path, status in {"/signin/link?token=forged": 400, "/no-such-page": 404}.items():
            response = client.get(path, headers=headers)
            assert response.status_code == status, path
            assert not _page_problems(response, language), path
        assert client.get("/signout", headers=headers).status_code == 405
    assert sign_in_by_code(client, smtp, CAMILLE).status_code == 303
    overview = client.get("/me")
    assert csrf_from(overview.text)
    for language in LANGUAGES:
        forbidden = client.post("/signout", data={"csrf_token": "forged"}, headers={"accept-language": language})
        assert forbidden.status_code == 403 and not _page_problems(forbidden, language)
    assert client.get("/me").status_code == 200  # a forged token signs nobody out


def test_the_demo_mailbox_exists_only_in_demo_mode(database_url, client, smtp, clock) -> None:
    assert client.get("/dev/mailbox").status_code == 404
    settings = make_settings(database_url, smtp.port, environment="demo", demo_smtp_port=0)
    with TestClient(create_app(settings, clock=clock)) as demo:
        make_customer(demo.app.state.portal.engine, email="camille@example.com")
        for language in LANGUAGES:
            page = demo.get("/dev/mailbox", headers={"accept-language": language})
            assert page.status_code == 200 and _title(page.text)
        ask_for_link(demo, "camille@example.com")
        mailbox = demo.app.state.portal.mailbox
        for _ in range(200):
            if mailbox.messages:
                break
            __import__("time").sleep(0.02)
        message = mailbox.messages[0]
        page = demo.get(f"/dev/mailbox/{message.id}")
        assert page.status_code == 200 and "/signin/link?token=" in page.text and "<a href=" in page.text
        html = demo.get(f"/dev/mailbox/{message.id}.html")
        assert html.status_code == 200 and "default-src 'none'" in html.headers["content-security-policy"]


def test_security_headers_on_every_response(client) -> None:
    for path in ("/", "/signin", "/no-such-page", "/healthz"):
        headers = client.get(path).headers
        csp = headers["content-security-policy"]
        assert "default-src 'self'" in csp and "frame-ancestors 'none'" in csp and "unsafe-inline" not in csp
        assert headers["x-content-type-options"] == "nosniff"
        assert headers["referrer-policy"] == "no-referrer"
        assert headers["x-frame-options"] == "DENY"
    static = client.get("/static/css/portal.css?v=1")
    assert "immutable" in static.headers["cache-control"]
    assert client.get("/static/css/portal.css").headers.get_list("cache-control") == ["public, max-age=3600"]


def test_each_security_header_once_and_a_views_own_cache_policy_kept(client) -> None:
    for path in ("/", "/no-such-page", "/static/css/portal.css", "/consent/v1/banner.js"):
        response = client.get(path)
        names = [name.lower() for name, _value in response.headers.raw]
        for name in ("content-security-policy", "x-frame-options", "referrer-policy", "cache-control"):
            assert names.count(name.encode()) == 1, (path, name)
    assert client.get("/").headers["cache-control"] == "no-store"  # personal pages: never in a cache
    assert client.get("/consent/v1/banner.js").headers["cache-control"] != "no-store"  # the banner sets its own


def test_no_inline_script_or_style_in_pages(client) -> None:
    html = client.get("/").text
    assert "<script>" not in html and " style=" not in html and "<style" not in html
    assert re.search(r'<script src="/static/vendor/htmx-[\d.]+\.min\.js\?v=\w+" defer></script>', html)


def test_healthz(client) -> None:
    assert client.get("/healthz").json() == {"status": "ok", "database": "up"}


def test_vendored_htmx_is_the_pinned_release_with_its_licence() -> None:
    import hashlib

    from portal.web.templating import STATIC_DIR

    script = STATIC_DIR / "vendor" / "htmx-2.0.11.min.js"
    # npm package htmx.org@2.0.11, dist/htmx.min.js (recorded in README.md)
    assert hashlib.sha256(script.read_bytes()).hexdigest() == (
        "d6fdc75f204e6bdefa99b69bf1e6d4ac69b8a364f77929f45c13476b4000f717"
    )
    assert "Zero-Clause BSD" in (STATIC_DIR / "vendor" / "htmx-LICENSE.txt").read_text(encoding="utf-8")


# --- Fuzzing every form: bad bytes never make a 500, on SQLite or PostgreSQL -----------------------------------
# PostgreSQL refuses a NUL in text where SQLite stores it, and each database sorts and compares differently: every
# form of the route table is posted with generated text (control characters, NUL, astral and combining characters,
# very long values) in the fields forms use, as a signed-in customer and as a DPO. A 4xx with a message is right;
# a 5xx on either database is a defect.

FUZZ_FIELDS = (
    "email", "message", "note", "first_name", "last_name", "phone", "postal_code", "city", "country",
    "address_line1", "birth_date", "proposed_value", "comment", "token", "code", "q", "months", "reason",
    "outcome", "assignee", "purpose", "granted", "ground", "submission_key", "name", "password", "role",
)  # fmt: skip
_FUZZ_TEXT = st.text(st.characters(blacklist_categories=("Cs",)), max_size=40) | st.sampled_from(
    ["\x00", "a\x00b", "\x7f", "\r\n", "'; --", "%00", "9" * 400, "é" * 3000, "\u202e", "0", "-1", "yes"]
)


def test_every_form_gets_fuzzed_text_without_a_server_error(
    client: TestClient, app: Starlette, smtp: SMTPServer, world: World, clock: Clock
) -> None:
    failures: list[str] = []
    routes = [r for r in _form_routes(app) if not r.path.startswith("/api/") and "sign" not in r.path]
    customer_urls = [u for r in routes if not r.path.startswith("/staff") for u in _form_urls(r, world)]
    staff_urls = [u for r in routes if r.path.startswith("/staff") for u in _form_urls(r, world)]

    def fuzz(urls: list[str], page: str) -> None:
        token = csrf_from(client.get(page).text)

        @given(url=st.sampled_from(urls), fields=st.dictionaries(st.sampled_from(FUZZ_FIELDS), _FUZZ_TEXT))
        @fuzzing(max_examples=8 * len(urls), deadline=None, suppress_health_check=list(HealthCheck), derandomize=True)
        def post(url: str, fields: dict[str, str]) -> None:
            try:
                answer = client.post(url, data={**fields, "csrf_token": token}, follow_redirects=False)
            except Exception as crash:  # the test client re-raises what the app did not handle: a 500
                failures.append(f"POST {url} {fields!r}: {type(crash).__name__}: {crash}")
                return
            if answer.status_code >= 500:
                failures.append(f"POST {url} {fields!r}: {answer.status_code}")

        post()

    assert sign_in_by_code(client, smtp, CAMILLE).status_code == 303
    fuzz(customer_urls, "/me")
    client.cookies.clear()
    dpo, password, secret = world.staff["dpo"]
    sign_in_staff(client, dpo.email, password, secret, clock)
    fuzz(staff_urls, "/staff")
    assert not failures, "\n".join(failures[:20])
