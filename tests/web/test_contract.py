"""Contracts every page and email keeps, in both languages (after Warehouse's tests/functional/test_templates.py)."""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Iterator
from datetime import UTC, datetime

import jinja2.meta
import pytest
from starlette.testclient import TestClient

from portal.app import create_app
from portal.catalogs import check_catalogs
from portal.mail.compose import EMAIL_NAMES, EmailComposer
from portal.retailer import load_retailer
from portal.settings import Settings
from portal.web.templating import TEMPLATES_DIR, make_environment
from tests.conftest import BASE_URL, csrf_from, make_settings
from tests.factories import make_customer
from tests.web.helpers import ask_for_link, sign_in_by_code

LANGUAGES = ("fr", "en")

# A realistic context for every email; a test below fails when a new email has none.
EMAIL_SAMPLES: dict[str, dict[str, object]] = {
    "sign-in": {
        "link": "http://127.0.0.1:8000/signin/link?token=abc",
        "code": "123456",
        "minutes": 10,
        "first_name": "Camille",
    },
    "sign-in-unknown": {"portal_url": "http://127.0.0.1:8000"},
    "download-link": {
        "first_name": "Camille",
        "reference": "R-7K2Q-9XMD",
        "link": "http://127.0.0.1:8000/me/download/link?token=abc",
        "expires_at": datetime(2026, 11, 30, 10, tzinfo=UTC),
        "days": 7,
    },
    "erasure-completed": {
        "reference": "R-7K2Q-9XMD",
        "deleted": [{"label": "Browsing history: the pages viewed on our website", "count": 1200}],
        "withdrawn": [{"label": "Consents still given, each withdrawn", "count": 2}],
        "anonymised": [
            {
                "label": "Purchases and invoices, kept for accounting but no longer linked to the person",
                "count": 35,
                "reason": "Legal obligation: invoices and accounting records must be kept (French Commercial Code, "
                "article L123-22).",
                "retention": "10 ans à compter de la clôture de l'exercice comptable",
            }
        ],
        "kept": [
            {
                "label": "A keyed hash of the email address (the address itself is deleted)",
                "count": 1,
                "reason": "So that a later import of customer records cannot recreate a profile for this address.",
            }
        ],
    },
    "email-change-confirm": {
        "first_name": "Camille",
        "new_email": "new@example.com",
        "hours": 24,
        "link": "http://127.0.0.1:8000/me/email/confirm?token=abc",
    },
    "email-change-requested": {"first_name": "Camille", "new_email": "new@example.com", "hours": 24},
    "email-changed": {"first_name": "", "new_email": "new@example.com"},
    "request-received": {
        "first_name": "Camille",
        "reference": "R-7K2Q-9XMD",
        "type": "rectification",
        "received_at": datetime(2026, 1, 31, 9, tzinfo=UTC),
        "due_at": datetime(2026, 2, 28, 22, 59, tzinfo=UTC),
    },
    **{
        name: {
            "first_name": "Camille",
            "reference": "R-7K2Q-9XMD",
            "type": "erasure",
            "received_at": datetime(2026, 1, 31, 9, tzinfo=UTC),
            "due_at": datetime(2026, 2, 28, 22, 59, tzinfo=UTC),
            **extra,
        }
        for name, extra in {
            "request-question": {"message": "Which store did you buy it in?"},
            "request-message": {"message": "We are looking into it."},
            "request-extended": {
                "reason": "Your data is spread across three systems.",
                "due_at": datetime(2026, 4, 30, 21, 59, tzinfo=UTC),
                "original_due_at": datetime(2026, 2, 28, 22, 59, tzinfo=UTC),
                "months": 2,
            },
            "request-completed": {"outcome": "Your data has been erased."},
            "request-rejected": {"reason": "The same request was answered last week."},
            "request-cancelled": {},
        }.items()
    },
}


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


@pytest.mark.parametrize("language", LANGUAGES)
def test_every_page_renders_in_both_languages_with_a_title(client: TestClient, smtp, engine, language) -> None:
    headers = {"accept-language": language}
    make_customer(engine, email="camille@example.com")
    pages = {
        "/": 200,
        "/signin": 200,
        "/signin/link?token=forged": 400,
        "/no-such-page": 404,
    }
    for path, status in pages.items():
        response = client.get(path, headers=headers)
        assert response.status_code == status, path
        assert f'<html lang="{language}">' in response.text, path
        assert _title(response.text).split("·")[0].strip(), f"{path}: empty title"
    assert client.get("/signout", headers=headers).status_code == 405
    sent = ask_for_link(client, "camille@example.com", **headers)
    assert sent.url.path == "/signin/sent" and _title(sent.text)
    sign_in_by_code(client, smtp, "camille@example.com", count=2)
    overview = client.get("/me", headers=headers)
    assert overview.status_code == 200 and f'<html lang="{language}">' in overview.text and _title(overview.text)
    for path in (
        "/me/profile",
        "/me/purchases",
        "/me/browsing",
        "/me/processing",
        "/me/requests",
        "/me/requests/new",
        "/me/requests/new/erasure",
        "/me/requests/new/objection",
        "/me/requests/new/restriction",
        "/me/requests/new/other",
        "/me/profile/correction/birth_date",
        "/me/email/confirm?token=forged",
    ):
        page = client.get(path, headers=headers)
        assert page.status_code in (200, 400), path
        assert f'<html lang="{language}">' in page.text and _title(page.text).split("·")[0].strip(), path
        assert page.headers["cache-control"] == "no-store", path
    forbidden = client.post("/signout", data={"csrf_token": "forged"}, headers=headers)
    assert forbidden.status_code == 403 and _title(forbidden.text)
    assert csrf_from(overview.text)


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
